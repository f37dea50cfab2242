/* Namespace calls (KABI_NS, seed 002 §5.1 and Fig. 3): the kernel side of
 * uksim/ns.h over the vfs tables (vfs/vfs.h) and servants (vfs/dev.h).
 *
 * A call names the caller's ns control ICA; the kernel maps it (one cached
 * mapping per process) and reads the paths and a small write's bytes from
 * it, writes a small read's bytes and records into it, all while the caller
 * waits.  A large read or write names a data ICA the caller holds, mapped
 * for the call.
 *
 * A call a servant cannot finish yet (-EAGAIN: a pipe with nothing in it, a
 * full pipe, an empty console) is deferred: the process waits with its call
 * kept in k->proc[p].ns_call, and every namespace call that changed
 * something retries the waiting ones, in process order (deterministic under
 * lock-step), until none completes.  Nothing has changed when a servant
 * says -EAGAIN, so a retry starts the call afresh.
 *
 * Every process gets a namespace when it starts (kern__ns_start): a copy, a
 * share or a clean one from another process, or a fresh one: "#/" as root
 * and cwd with the servants bound where Plan 9's /lib/namespace puts them
 * (#c after /dev, #e on /env and #s on /srv accepting creates, #p on
 * /proc), each only if that servant exists.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dev.h"
#include "kern.h"
#include "uksim/9p.h"
#include "vfs.h"

/* The ICA bytes of one call: the control ICA and perhaps a data ICA. */
struct nscall {
  struct kabi_ns_args a;
  uint8_t *ctl;
  uint64_t ctl_size;
  uint8_t *data; /* mapped for this call, or NULL */
  uint64_t data_size;
  char path[2][UK_PATH_MAX + 1];
  struct kabi_ns_ans ans;
};

/* Mapping ICAs ------------------------------------------------------------ */

static void unmap_cached(struct kern_proc *kp) {
  if (kp->ns_map != NULL)
    munmap(kp->ns_map, kp->ns_map_size);
  kp->ns_map = NULL;
  kp->ns_map_id = 0;
}

/* The process's control ICA, mapped once and kept while it names the same
 * ICA (id with generation: a freed and reused slot is another ICA). */
static int map_ctl(struct kern *k, uint32_t p, uint32_t id, uint8_t **base,
                   uint64_t *size) {
  struct kern_proc *kp = &k->proc[p];
  int i = kern_ica_lookup(k->kd, id);
  if (i < 0 || !kern_ica_held_by(k->kd, id, UK_HOLD_PROC, p))
    return -EPERM;
  if (kp->ns_map_id != id) {
    unmap_cached(kp);
    uint64_t n = k->kd->ica[i].size;
    void *m =
        mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, k->ica_fd[i], 0);
    if (m == MAP_FAILED)
      return -ENOMEM;
    kp->ns_map = m;
    kp->ns_map_size = n;
    kp->ns_map_id = id;
  }
  *base = kp->ns_map;
  *size = kp->ns_map_size;
  return 0;
}

static int map_data(struct kern *k, uint32_t p, struct nscall *c) {
  uint32_t id = c->a.data;
  int i = kern_ica_lookup(k->kd, id);
  if (i < 0 || !kern_ica_held_by(k->kd, id, UK_HOLD_PROC, p))
    return -EPERM;
  uint64_t n = k->kd->ica[i].size;
  if (c->a.n > n)
    return -EINVAL;
  void *m = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, k->ica_fd[i], 0);
  if (m == MAP_FAILED)
    return -ENOMEM;
  c->data = m;
  c->data_size = n;
  return 0;
}

void kern__ns_forget_ica(struct kern *k, uint32_t id) {
  for (uint32_t p = 0; p < UK_PROC_MAX; p++)
    if (k->proc[p].ns_map_id == id)
      unmap_cached(&k->proc[p]);
}

/* Reading the call -------------------------------------------------------- */

static int parse(struct kern *k, uint32_t p, const kabi_msg *m,
                 struct nscall *c) {
  memset(c, 0, sizeof *c);
  if (kabi_payload(m, &c->a, sizeof c->a) < 0)
    return -EINVAL;
  if (c->a.call == 0 || c->a.call >= KABI_NS_CALL_MAX)
    return -ENOSYS;
  int r = map_ctl(k, p, c->a.ctl, &c->ctl, &c->ctl_size);
  if (r < 0)
    return r;
  uint64_t used = (uint64_t)c->a.len[0] + c->a.len[1];
  if (c->a.len[0] > UK_PATH_MAX || c->a.len[1] > UK_PATH_MAX)
    return -ENAMETOOLONG;
  if (used > c->ctl_size)
    return -EINVAL;
  memcpy(c->path[0], c->ctl, c->a.len[0]);
  memcpy(c->path[1], c->ctl + c->a.len[0], c->a.len[1]);
  return 0;
}

/* Where a small write's bytes are, or a read's go: the data ICA, else the
 * control ICA after the paths (a read: from 0). */
static int io_buf(struct kern *k, uint32_t p, struct nscall *c, bool write,
                  uint8_t **buf) {
  if (c->a.data != KABI_ICA_NONE) {
    int r = map_data(k, p, c);
    if (r < 0)
      return r;
    *buf = c->data;
    return 0;
  }
  uint64_t at = write ? (uint64_t)c->a.len[0] + c->a.len[1] : 0;
  if (c->a.n > KABI_NS_SMALL || at + c->a.n > c->ctl_size)
    return -EINVAL;
  c->ans.at = (uint32_t)at;
  *buf = c->ctl + at;
  return 0;
}

/* Paths and chans --------------------------------------------------------- */

/* namec, and a mounted server's chan gets a fid of its own (kmnt.c). */
static int namec(struct kern *k, uint32_t p, const struct nscall *c, int i,
                 uint32_t *chan) {
  int r = vfs_namec(k->kd, p, c->path[i], c->a.len[i], chan);
  if (r == 0 && (r = kern__mnt_fix(k, *chan)) < 0)
    vfs_chan_unref(k->kd, *chan);
  return r;
}

static struct uk_chan *chan_of(struct kern *k, uint32_t id) {
  return &k->kd->vfs.chan[UK_VFS_INDEX(id)];
}

/* Drops the kernel's reference on chan id. */
static void chan_put(struct kern *k, uint32_t id) {
  vfs_chan_unref(k->kd, id); /* the last reference closes it (dev.h) */
}

/* The chan a walk that reached c sees: the first member of a union bound
 * on it (a new reference), else c itself (another reference). */
static uint32_t mounted(struct kern *k, uint32_t p, uint32_t c) {
  uint32_t ns = k->kd->vfs.vproc[p].ns;
  int m = vfs_mount_lookup(k->kd, ns, c);
  int pos = 0;
  uint32_t top = m >= 0 ? vfs_union_next(k->kd, ns, m, &pos) : UK_VFS_NONE;
  if (top == UK_VFS_NONE)
    top = c;
  vfs_chan_ref(k->kd, top);
  return top;
}

static void dir_out(const struct vfs_dir *d, uint8_t type, struct kabi_dir *o) {
  memset(o, 0, sizeof *o);
  o->qid_path = d->qid.path;
  o->qid_vers = d->qid.vers;
  o->qid_type = d->qid.type;
  o->dev_type = type;
  o->mode = d->mode;
  o->length = d->length;
  memcpy(o->name, d->name, sizeof d->name);
  strcpy(o->uid, "uksim");
  strcpy(o->gid, "uksim");
  strcpy(o->muid, "uksim");
}

static int stat_chan(struct kern *k, uint32_t p, uint32_t id,
                     struct nscall *c) {
  if (c->ctl_size < sizeof(struct kabi_dir))
    return -EINVAL;
  uint32_t top = mounted(k, p, id);
  struct vfs_dir d;
  int r;
  if (chan_of(k, top)->type == UK_CHAN_MNT) {
    r = kern__mnt_stat(k, chan_of(k, top), (struct kabi_dir *)c->ctl);
  } else if ((r = vfs_dev_stat(k->kd, top, &d)) == 0) {
    dir_out(&d, chan_of(k, top)->type, (struct kabi_dir *)c->ctl);
  }
  chan_put(k, top);
  c->ans.at = 0;
  return r < 0 ? r : (int)sizeof(struct kabi_dir);
}

/* Directory reads --------------------------------------------------------
 * A directory's offset counts records across the whole union; each read
 * lists the members again from their start and skips what was read before
 * (directories of servants are small; a member's entries are shown only if
 * no earlier member has that name). */

struct dirlist {
  struct kern *k; /* for has_name */
  uint64_t skip;  /* records still to skip */
  struct kabi_dir *out;
  uint32_t max, n; /* records room / given */
};

static bool has_name(void *arg, uint32_t dir, const char *name) {
  struct kern *k = arg;
  struct uk_qid q;
  return vfs_dev_walk(k->kd, chan_of(k, dir), name, &q) == 0;
}

/* Offers entry d of member pos of union m (m < 0: no union) to l. */
static void offer(struct dirlist *l, uint32_t p, int m, int pos,
                  const struct kabi_dir *d) {
  struct kern *k = l->k;
  uint32_t ns = k->kd->vfs.vproc[p].ns;
  if (l->n >= l->max)
    return;
  if (m >= 0 && !vfs_union_shows(k->kd, ns, m, pos, d->name, has_name, k))
    return;
  if (l->skip > 0) {
    l->skip--;
    return;
  }
  l->out[l->n++] = *d;
}

struct mlist {
  struct dirlist *l;
  uint32_t p;
  int m, pos;
};

static int offer_stat(void *arg, const struct p9_stat *st) {
  struct mlist *ml = arg;
  struct kabi_dir d;
  kern__mnt_dir(st, &d);
  offer(ml->l, ml->p, ml->m, ml->pos, &d);
  return ml->l->n < ml->l->max ? 0 : 1;
}

/* Reads member `id` whole, offering each entry the union shows. */
static int list_member(struct kern *k, uint32_t p, int m, int pos, uint32_t id,
                       struct dirlist *l) {
  const struct uk_chan *mc = chan_of(k, id);
  if (mc->type == UK_CHAN_MNT) {
    struct mlist ml = {.l = l, .p = p, .m = m, .pos = pos};
    return kern__mnt_list(k, mc, offer_stat, &ml);
  }
  uint32_t tmp;
  int r = vfs_chan_new(k->kd, mc->type, mc->dev, &mc->qid, &tmp);
  if (r < 0)
    return r;
  if ((r = vfs_dev_open(k->kd, tmp, VFS_OREAD)) < 0) {
    vfs_chan_unref(k->kd, tmp);
    return r;
  }
  struct vfs_dir d;
  struct kabi_dir kd;
  uint64_t off = 0;
  while (l->n < l->max) {
    long got = vfs_dev_read(k->kd, tmp, &d, sizeof d, off);
    if (got <= 0) {
      r = (int)got;
      break;
    }
    off += (uint64_t)got;
    dir_out(&d, mc->type, &kd);
    offer(l, p, m, pos, &kd);
  }
  chan_put(k, tmp);
  return r;
}

static long read_dir(struct kern *k, uint32_t p, uint32_t id, uint8_t *buf,
                     uint32_t n, uint64_t off) {
  struct dirlist l = {.k = k,
                      .skip = off,
                      .out = (struct kabi_dir *)buf,
                      .max = n / sizeof(struct kabi_dir)};
  if (l.max == 0)
    return -EINVAL;
  uint32_t ns = k->kd->vfs.vproc[p].ns;
  int m = vfs_mount_lookup(k->kd, ns, id);
  int pos = 0, r = 0;
  if (m < 0)
    r = list_member(k, p, -1, 0, id, &l);
  for (uint32_t mem;
       m >= 0 && r >= 0 && l.n < l.max &&
       (mem = vfs_union_next(k->kd, ns, m, &pos)) != UK_VFS_NONE;) {
    int at = pos;
    r = list_member(k, p, m, at, mem, &l);
  }
  if (k->mblocked)
    return -EINPROGRESS; /* a walk for the union's names is out: the offset
                            must not move for this run */
  return r < 0 ? r : (long)l.n * (long)sizeof *l.out;
}

/* The calls --------------------------------------------------------------- */

static uint32_t fd_chan(struct kern *k, uint32_t p, int fd) {
  return vfs_fd_lookup(k->kd, p, fd);
}

static int put_fd(struct kern *k, uint32_t p, uint32_t chan) {
  int fd;
  int r = vfs_fd_new(k->kd, p, chan, &fd);
  if (r < 0) {
    chan_put(k, chan);
    return r;
  }
  return fd;
}

static int do_open(struct kern *k, uint32_t p, struct nscall *c) {
  uint32_t at, ch;
  int r = namec(k, p, c, 0, &at);
  if (r < 0)
    return r;
  /* A directory keeps the chan reached (its reads list the union there);
   * a file bound over another opens what is bound. */
  if (vfs_chan_isdir(k->kd, at)) {
    ch = at;
  } else {
    ch = mounted(k, p, at);
    vfs_chan_unref(k->kd, at);
    if (chan_of(k, ch)->ref > 1) { /* a bound chan: open a copy of it */
      const struct uk_chan *b = chan_of(k, ch);
      uint32_t cp;
      if ((r = vfs_chan_new(k->kd, b->type, b->dev, &b->qid, &cp)) < 0) {
        vfs_chan_unref(k->kd, ch);
        return r;
      }
      memcpy(chan_of(k, cp)->path, b->path, sizeof b->path);
      vfs_chan_unref(k->kd, ch);
      ch = cp;
      if ((r = kern__mnt_fix(k, ch)) < 0) {
        vfs_chan_unref(k->kd, ch);
        return r;
      }
    }
  }
  if ((r = vfs_dev_open(k->kd, ch, (uint8_t)c->a.flags)) < 0) {
    vfs_chan_unref(k->kd, ch);
    return r;
  }
  return put_fd(k, p, ch);
}

/* Splits path 0 at its last name: the directory part stays in path[0]. */
static int split_last(struct nscall *c, char *name) {
  char *s = c->path[0];
  size_t n = c->a.len[0];
  while (n > 1 && s[n - 1] == '/')
    n--;
  size_t i = n;
  while (i > 0 && s[i - 1] != '/')
    i--;
  size_t k = n - i;
  if (k == 0 || k > VFS_DIRNAME_MAX || (k == 1 && s[i] == '.') ||
      (k == 2 && s[i] == '.' && s[i + 1] == '.'))
    return -EINVAL;
  memcpy(name, s + i, k);
  name[k] = '\0';
  if (i == 0) {
    s[0] = '.';
    c->a.len[0] = 1;
  } else {
    c->a.len[0] = (uint32_t)(i > 1 ? i - 1 : 1);
  }
  s[c->a.len[0]] = '\0';
  return 0;
}

static int do_create(struct kern *k, uint32_t p, struct nscall *c) {
  char name[VFS_DIRNAME_MAX + 1];
  int r = split_last(c, name);
  uint32_t dir, target, nc;
  if (r < 0 || (r = namec(k, p, c, 0, &dir)) < 0)
    return r;
  r = vfs_create_target(k->kd, k->kd->vfs.vproc[p].ns, dir, &target);
  if (r == 0) {
    const struct uk_chan *t = chan_of(k, target);
    r = vfs_chan_new(k->kd, t->type, t->dev, &t->qid, &nc);
  }
  if (r == 0) {
    char full[UK_PATH_MAX + 1];
    const char *dp = chan_of(k, dir)->path;
    int n = snprintf(full, sizeof full, "%s%s%s", dp,
                     dp[0] && strcmp(dp, "/") ? "/" : "", name);
    if (n > 0 && n <= UK_PATH_MAX)
      memcpy(chan_of(k, nc)->path, full, (size_t)n + 1);
    r = vfs_dev_create(k->kd, nc, name, c->a.perm, (uint8_t)c->a.flags);
    if (r < 0)
      vfs_chan_unref(k->kd, nc);
  }
  chan_put(k, dir);
  return r < 0 ? r : put_fd(k, p, nc);
}

static long ns_rw(struct kern *k, uint32_t p, struct nscall *c, bool write) {
  uint32_t id = fd_chan(k, p, c->a.fd);
  uint8_t *buf;
  if (id == UK_VFS_NONE)
    return -EBADF;
  int r = io_buf(k, p, c, write, &buf);
  if (r < 0)
    return r;
  struct uk_chan *ch = chan_of(k, id);
  bool cur = c->a.off == KABI_NS_OFF_CUR;
  uint64_t off = cur ? ch->offset : c->a.off;
  long n;
  if (!write && vfs_chan_isdir(k->kd, id)) {
    if (!(ch->flags & UK_CHAN_F_OPEN))
      return -EBADF;
    n = read_dir(k, p, id, buf, c->a.n, off / sizeof(struct kabi_dir));
    if (n > 0 && cur)
      ch->offset += (uint64_t)n;
    return n;
  }
  n = write ? vfs_dev_write(k->kd, id, buf, c->a.n, off)
            : vfs_dev_read(k->kd, id, buf, c->a.n, off);
  if (n > 0 && cur)
    chan_of(k, id)->offset += (uint64_t)n;
  return n;
}

static int do_close(struct kern *k, uint32_t p, int fd) {
  uint32_t id = fd_chan(k, p, fd);
  if (id == UK_VFS_NONE)
    return -EBADF;
  int r = vfs_fd_close(k->kd, p, fd);
  return r < 0 ? r : 0;
}

static int do_stat(struct kern *k, uint32_t p, struct nscall *c) {
  uint32_t id;
  if (c->a.call == KABI_NS_FSTAT) {
    if ((id = fd_chan(k, p, c->a.fd)) == UK_VFS_NONE)
      return -EBADF;
    vfs_chan_ref(k->kd, id);
  } else {
    int r = namec(k, p, c, 0, &id);
    if (r < 0)
      return r;
  }
  int r = stat_chan(k, p, id, c);
  chan_put(k, id);
  return r;
}

/* Only a mounted server's files change their stat; servants have none
 * to change ([Plan 9] devwstat's default is an error too). */
static int do_wstat(struct kern *k, uint32_t p, struct nscall *c) {
  struct kabi_dir d;
  uint32_t id;
  if ((uint64_t)c->a.len[0] + sizeof d > c->ctl_size)
    return -EINVAL;
  memcpy(&d, c->ctl + c->a.len[0], sizeof d);
  int r = namec(k, p, c, 0, &id);
  if (r < 0)
    return r;
  r = chan_of(k, id)->type == UK_CHAN_MNT
          ? kern__mnt_wstat(k, chan_of(k, id), &d)
          : -EPERM;
  chan_put(k, id);
  return r < 0 ? r : 0;
}

static int do_remove(struct kern *k, uint32_t p, struct nscall *c) {
  uint32_t id;
  int r = namec(k, p, c, 0, &id);
  if (r < 0)
    return r;
  r = vfs_dev_remove(k->kd, id);
  chan_put(k, id);
  return r < 0 ? r : 0;
}

static int do_chdir(struct kern *k, uint32_t p, struct nscall *c) {
  uint32_t id;
  int r = namec(k, p, c, 0, &id);
  if (r < 0)
    return r;
  r = vfs_chdir(k->kd, p, id);
  chan_put(k, id);
  return r < 0 ? r : 0;
}

static int do_fd2path(struct kern *k, uint32_t p, struct nscall *c) {
  int r = vfs_fd2path(k->kd, p, c->a.fd, (char *)c->ctl,
                      c->ctl_size < UK_PATH_MAX + 1 ? c->ctl_size
                                                    : UK_PATH_MAX + 1);
  c->ans.at = 0;
  return r < 0 ? r : (int)strlen((char *)c->ctl);
}

static int do_dup(struct kern *k, uint32_t p, struct nscall *c) {
  int fd;
  int r = vfs_fd_dup(k->kd, p, c->a.fd, c->a.fd2, &fd);
  return r < 0 ? r : fd;
}

static int do_bind(struct kern *k, uint32_t p, struct nscall *c) {
  uint32_t n, o;
  int r = namec(k, p, c, 0, &n);
  if (r < 0)
    return r;
  if ((r = namec(k, p, c, 1, &o)) == 0) {
    r = vfs_bind(k->kd, k->kd->vfs.vproc[p].ns, n, o, c->a.flags);
    chan_put(k, o);
  }
  chan_put(k, n);
  return r < 0 ? r : 0;
}

static int do_unmount(struct kern *k, uint32_t p, struct nscall *c) {
  uint32_t n = UK_VFS_NONE, o;
  int r = c->a.len[0] > 0 ? namec(k, p, c, 0, &n) : 0;
  if (r < 0)
    return r;
  if ((r = namec(k, p, c, 1, &o)) == 0) {
    r = vfs_unmount(k->kd, k->kd->vfs.vproc[p].ns, n, o);
    chan_put(k, o);
  }
  if (n != UK_VFS_NONE)
    chan_put(k, n);
  return r < 0 ? r : 0;
}

static long do_seek(struct kern *k, uint32_t p, struct nscall *c) {
  uint32_t id = fd_chan(k, p, c->a.fd);
  if (id == UK_VFS_NONE)
    return -EBADF;
  struct uk_chan *ch = chan_of(k, id);
  int64_t base = 0, off = (int64_t)c->a.off;
  if (c->a.flags == 1) {
    base = (int64_t)ch->offset;
  } else if (c->a.flags == 2) {
    struct vfs_dir d;
    struct kabi_dir md;
    int r = ch->type == UK_CHAN_MNT ? kern__mnt_stat(k, ch, &md)
                                    : vfs_dev_stat(k->kd, id, &d);
    if (r < 0)
      return r;
    base = (int64_t)(ch->type == UK_CHAN_MNT ? md.length : d.length);
  } else if (c->a.flags != 0) {
    return -EINVAL;
  }
  if (vfs_chan_isdir(k->kd, id) && !(c->a.flags == 0 && off == 0))
    return -EISDIR; /* a directory only rewinds */
  if (base + off < 0)
    return -EINVAL;
  ch->offset = (uint64_t)(base + off);
  return (long)ch->offset;
}

static long do_pipe(struct kern *k, uint32_t p) {
  uint32_t c0, c1;
  int r = kern__pipe_new(k, &c0, &c1);
  if (r < 0)
    return r;
  int f0, f1;
  if ((r = vfs_fd_new(k->kd, p, c0, &f0)) < 0) {
    chan_put(k, c0);
    chan_put(k, c1);
    return r;
  }
  if ((r = vfs_fd_new(k->kd, p, c1, &f1)) < 0) {
    do_close(k, p, f0);
    chan_put(k, c1);
    return r;
  }
  return (long)f0 | (long)f1 << 16;
}

static long ns_run(struct kern *k, uint32_t p, struct nscall *c) {
  switch (c->a.call) {
  case KABI_NS_OPEN:
    return do_open(k, p, c);
  case KABI_NS_CREATE:
    return do_create(k, p, c);
  case KABI_NS_READ:
    return ns_rw(k, p, c, false);
  case KABI_NS_WRITE:
    return ns_rw(k, p, c, true);
  case KABI_NS_CLOSE:
    return do_close(k, p, c->a.fd);
  case KABI_NS_STAT:
  case KABI_NS_FSTAT:
    return do_stat(k, p, c);
  case KABI_NS_WSTAT:
    return do_wstat(k, p, c);
  case KABI_NS_REMOVE:
    return do_remove(k, p, c);
  case KABI_NS_CHDIR:
    return do_chdir(k, p, c);
  case KABI_NS_FD2PATH:
    return do_fd2path(k, p, c);
  case KABI_NS_DUP:
    return do_dup(k, p, c);
  case KABI_NS_PIPE:
    return do_pipe(k, p);
  case KABI_NS_BIND:
    return do_bind(k, p, c);
  case KABI_NS_MOUNT:
    return kern__mnt_mount(k, p, c->a.fd, c->path[0], c->a.len[0], c->path[1],
                           c->a.flags);
  case KABI_NS_UNMOUNT:
    return do_unmount(k, p, c);
  case KABI_NS_RFORK: {
    int r = vfs_proc_rfork(k->kd, p, c->a.flags);
    return r < 0 ? r : 0;
  }
  case KABI_NS_SEEK:
    return do_seek(k, p, c);
  default:
    return -ENOSYS;
  }
}

/* Running, deferring and retrying ---------------------------------------- */

static void answer(struct kern *k, uint32_t p, uint32_t seq,
                   const struct nscall *c, long r) {
  struct kabi_ns_ans ans = c->ans;
  kabi_msg m;
  ans.ret = r;
  kabi_msg_init(&m, KABI_ANS_NS, seq, r < 0 ? (int32_t)r : 0, &ans, sizeof ans);
  kern__answer(k, p, &m);
}

/* Runs call m of p once: the result, -EAGAIN (a servant would block) or
 * -EINPROGRESS (a mounted server's answer is awaited: kmnt.c).  A run the
 * mount driver's log does not match starts afresh. */
static long run_once(struct kern *k, uint32_t p, const kabi_msg *m,
                     struct nscall *c) {
  long n;
  for (int tries = 0;; tries++) {
    int r = parse(k, p, m, c);
    if (r < 0)
      return r;
    kern__vfs_up(k, p);
    k->mdata = c->a.data;
    n = ns_run(k, p, c);
    if (k->mblocked)
      n = -EINPROGRESS;
    k->mdata = KABI_ICA_NONE;
    kern__vfs_up(k, UK_NIL);
    if (c->data != NULL)
      munmap(c->data, c->data_size);
    c->data = NULL;
    if (n != -ERESTART || tries > 0)
      break;
    kern__mnt_forget(k, p); /* the tables changed under the log */
  }
  return n == -ERESTART ? -EAGAIN : n;
}

static bool changes(uint32_t call) {
  return call != KABI_NS_STAT && call != KABI_NS_FSTAT &&
         call != KABI_NS_FD2PATH;
}

/* For a monitor (seed 003): the chan a read that would block waits on,
 * and since when (kept from the first wait, not each retry). */
static void wait_note(struct kern *k, uint32_t p, const kabi_msg *m, long r) {
  struct kabi_ns_args a;
  uk_psched_t *pp = kd_psched(k, p);
  uint32_t chan = UK_VFS_NONE;
  if (r == -EAGAIN && kabi_payload(m, &a, sizeof a) == 0 &&
      a.call == KABI_NS_READ)
    chan = fd_chan(k, p, a.fd);
  if (chan != pp->wait_chan || pp->wait_ns == 0)
    pp->wait_ns = uv_hrtime();
  pp->wait_chan = chan;
}

/* A call is over: it waits on nothing. */
static void wait_clear(struct kern *k, uint32_t p) {
  kd_psched(k, p)->wait_chan = UK_VFS_NONE;
  kd_psched(k, p)->wait_ns = 0;
}

/* Call m of p is over with r: answered, its log settled. */
static void finish(struct kern *k, uint32_t p, const kabi_msg *m,
                   const struct nscall *c, long r) {
  wait_clear(k, p);
  kern__mnt_call_over(k, p);
  kern__cons_flush(k);
  answer(k, p, m->hdr.seq, c, r);
}

static void wait_call(struct kern *k, uint32_t p, const kabi_msg *m, long r) {
  struct kern_proc *kp = &k->proc[p];
  if (&kp->ns_call != m)
    kp->ns_call = *m;
  kp->ns_waiting = r == -EAGAIN; /* -EINPROGRESS: resumed by its answer */
  kd_psched(k, p)->wait_seq = m->hdr.seq;
  wait_note(k, p, m, r);
  kd_proc(k, p)->state = UK_PROC_WAITING;
  kd_psched(k, p)->wait_op = KABI_NS;
}

/* The injected stalled driver (kfault.c): the pipe servant no longer
 * wakes the readers waiting on it. */
static bool stalled(struct kern *k, uint32_t p) {
  uint32_t chan = kd_psched(k, p)->wait_chan;
  return kern__fault_stall(k) && chan != UK_VFS_NONE &&
         chan_of(k, chan)->type == '|';
}

/* Retries the deferred calls until none completes. */
static void retry_waiting(struct kern *k) {
  struct nscall c;
  for (bool again = true; again;) {
    again = false;
    for (uint32_t p = 0; p < UK_PROC_MAX; p++) {
      struct kern_proc *kp = &k->proc[p];
      if (!kp->ns_waiting || stalled(k, p))
        continue;
      long r = run_once(k, p, &kp->ns_call, &c);
      if (r == -EAGAIN || r == -EINPROGRESS) {
        wait_call(k, p, &kp->ns_call, r);
        continue;
      }
      kp->ns_waiting = false;
      kd_proc(k, p)->state = UK_PROC_RUNNING;
      finish(k, p, &kp->ns_call, &c, r);
      again = true;
    }
  }
}

void kern__ns_retry(struct kern *k) {
  retry_waiting(k);
}

int kern__do_ns(struct kern *k, uint32_t p, kabi_msg *m) {
  struct nscall c;
  long r = run_once(k, p, m, &c);
  if (r == -EAGAIN || r == -EINPROGRESS) {
    wait_call(k, p, m, r);
    return KERN_DEFER;
  }
  finish(k, p, m, &c, r);
  if (r >= 0 && changes(c.a.call))
    retry_waiting(k);
  return KERN_ANSWERED;
}

void kern__ns_resume(struct kern *k, uint32_t p) {
  struct kern_proc *kp = &k->proc[p];
  struct nscall c;
  if (kd_proc(k, p)->state != UK_PROC_WAITING ||
      kd_psched(k, p)->wait_op != KABI_NS)
    return;
  long r = run_once(k, p, &kp->ns_call, &c);
  if (r == -EAGAIN || r == -EINPROGRESS) {
    wait_call(k, p, &kp->ns_call, r);
    return;
  }
  kp->ns_waiting = false;
  kd_proc(k, p)->state = UK_PROC_RUNNING;
  finish(k, p, &kp->ns_call, &c, r);
  retry_waiting(k);
}

/* Process life ------------------------------------------------------------ */

/* Binds servant dev on path old of p's namespace with flag. */
static void boot_bind(struct kern *k, uint32_t p, const char *dev,
                      const char *old, uint32_t flag) {
  uint32_t n, o;
  if (vfs_dev_lookup((uint8_t)dev[1]) == NULL)
    return;
  if (vfs_namec(k->kd, p, dev, strlen(dev), &n) < 0)
    return;
  if (vfs_namec(k->kd, p, old, strlen(old), &o) == 0) {
    (void)vfs_bind(k->kd, k->kd->vfs.vproc[p].ns, n, o, flag);
    vfs_chan_unref(k->kd, o);
  }
  vfs_chan_unref(k->kd, n);
}

static int fresh_ns(struct kern *k, uint32_t p) {
  uint32_t ns, root;
  int r = vfs_ns_new(k->kd, &ns);
  if (r < 0)
    return r;
  struct uk_chan c;
  if ((r = vfs_dev_attach(k->kd, '/', "", &c)) < 0 ||
      (r = vfs_chan_new(k->kd, c.type, c.dev, &c.qid, &root)) < 0) {
    vfs_ns_unref(k->kd, ns);
    return r;
  }
  strcpy(chan_of(k, root)->path, "/");
  r = vfs_proc_attach(k->kd, p, ns, root, root);
  vfs_chan_unref(k->kd, root);
  vfs_ns_unref(k->kd, ns);
  if (r < 0)
    return r;
  /* Plan 9's /lib/namespace: bind #c /dev, bind -c #e /env, bind -c #s
   * /srv, bind #p /proc, bind #I /net ('-a' for /dev here, so more can
   * join it). */
  boot_bind(k, p, "#c", "/dev", VFS_MAFTER);
  boot_bind(k, p, "#e", "/env", VFS_MREPL | VFS_MCREATE);
  boot_bind(k, p, "#s", "/srv", VFS_MREPL | VFS_MCREATE);
  boot_bind(k, p, "#p", "/proc", VFS_MREPL);
  boot_bind(k, p, "#I", "/net", VFS_MREPL);
  return 0;
}

int kern__ns_start(struct kern *k, uint32_t p, int from, uint32_t rfflags) {
  if (from < 0 || from >= UK_PROC_MAX || !k->kd->vfs.vproc[from].attached)
    return fresh_ns(k, p);
  return vfs_proc_fork(k->kd, (uint32_t)from, p, rfflags);
}

void kern__ns_exit(struct kern *k, uint32_t p) {
  struct kern_proc *kp = &k->proc[p];
  kp->ns_waiting = false;
  unmap_cached(kp);
  kern__mnt_forget(k, p);
  if (!k->kd->vfs.vproc[p].attached)
    return;
  for (int fd = 0; fd < UK_FD_MAX; fd++)
    if (k->kd->vfs.vproc[p].fd[fd] != UK_VFS_NONE)
      do_close(k, p, fd);
  vfs_proc_release(k->kd, p);
  kern__mnt_clunks(k);
  retry_waiting(k); /* a pipe's writer gone: its reader sees the end */
}
