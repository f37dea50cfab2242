/* diskfs: a 9P file server whose files live on a block device, the file
 * server of Orthros (issue 14): after a failover the backup OS mounts the
 * same device and finds every file.
 *
 *   diskfs [--name NAME] [--state-max B] [--trace] [--sync CTL]
 *          DEVICE SIZE [SRV]
 *
 * DEVICE is any file of the server's namespace used as a block device of
 * SIZE bytes (a size such as 64M): #S/sd0/data, or a file another
 * server holds (created empty if it does not exist).  SRV, when given, is
 * a posted server (/srv/SRV) mounted on /n first, so that DEVICE may be
 * /n/FILE of it.  Service "diskfs" by default.  A device with no
 * superblock (its first block missing or zeros) is formatted; one whose
 * file system fails the mount check (diskfs_layout.c) is refused with the
 * reason on stderr, and the server exits.  --sync CTL names the device's
 * control file (#S/sd0/ctl): "sync" written to it is the barrier that
 * keeps the order of writes behind a write-back cache (diskfs_layout.h,
 * "Ordering"); without it the device is taken to write in order.
 *
 * The on-disk format, its limits and what a write cut off at any block
 * leaves are in diskfs_layout.h.  Every 9P request that changes the tree
 * has written the change to the device before it is answered; nothing
 * that must survive is cached (the kernel's buffer cache under #S makes
 * the block writes cheap).  The server's state (p9host.c) is its clients'
 * fids, the device's name, the user names fids hold and how many fids
 * have each inode open: an open fid reads on after a replacement or a
 * restart, since the tree it names is on the device.
 *
 * Plan 9 semantics as net9p's memfs (the reference): a created file's
 * permissions are masked by its directory's, DMEXCL files are open on one
 * fid at a time, a wstat changes all it asks or nothing, permission bits
 * are kept but not checked.  A file's group is its owner (no groups are
 * kept), its atime is its mtime.  9P2000 only: the 9P2000.L operations
 * are not offered.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "diskfs_layout.h"
#include "p9host.h"
#include "p9state.h"
#include "uksim/ap.h"
#include "uksim/ns.h"
#include "uksim/num.h"

#define STATE_MAX_DEFAULT (4ull << 20)
/* Distinct user names the server remembers for its fids (as memfs). */
#define DISKFS_USERS_MAX 256
/* How long SRV may take to post itself. */
#define MOUNT_WAIT_MS 10000

struct args {
  const char *device, *srv, *ctl;
  uint64_t size;
};

struct diskfs {
  const struct args *a;
  int fd;  /* the device, open in this namespace */
  int ctl; /* its control file (--sync), or -1 */
  struct dfs fs;
  char *user[DISKFS_USERS_MAX]; /* [0] is "uksim", the root's owner */
  uint32_t nuser;
  uint32_t nopen[DFS_NINODES]; /* fids open on each inode */
};

/* --- the device ------------------------------------------------------ */

static long dev_pread(void *arg, void *buf, size_t n, uint64_t off) {
  return ns_pread(((struct diskfs *)arg)->fd, buf, n, off);
}

static long dev_pwrite(void *arg, const void *buf, size_t n, uint64_t off) {
  return ns_pwrite(((struct diskfs *)arg)->fd, buf, n, off);
}

static int dev_sync(void *arg) {
  long r = ns_pwrite(((struct diskfs *)arg)->ctl, "sync", 4, 0);
  return r < 0 ? (int)r : 0;
}

/* Mounts /srv/SRV on /n, waiting for it to be posted: its entry is
 * made, then names its service (until then a mount says -ENOTCONN). */
static int mount_srv(const char *srv) {
  char path[KABI_NAME_MAX + 8];
  int r = -ENOENT;
  snprintf(path, sizeof path, "/srv/%s", srv);
  for (int ms = 0; ms < MOUNT_WAIT_MS && r < 0; ms += 10) {
    int fd = ns_open(path, NS_ORDWR);
    r = fd < 0 ? fd : ns_mount(fd, "/n", NS_MREPL | NS_MCREATE, "");
    if (fd >= 0)
      ns_close(fd);
    if (r == -ENOENT || r == -ENOTCONN)
      ap_sleep(10 * 1000000ull);
    else
      break;
  }
  return r;
}

/* The device, created when it does not exist (a file another server
 * holds; a servant's device such as #S/sd0/data refuses the create). */
static int open_device(const char *path) {
  int fd = ns_open(path, NS_ORDWR);
  return fd == -ENOENT ? ns_create(path, NS_ORDWR, 0600) : fd;
}

/* Opens the device and mounts its file system, formatting a device that
 * has none; NULL with *err after saying why. */
static struct diskfs *diskfs_open(const struct args *a, int *err) {
  struct diskfs *d = calloc(1, sizeof(*d));
  struct dfs_dev dev = {.pread = dev_pread, .pwrite = dev_pwrite};
  char why[200] = "";
  int r = 0;
  if (!d) {
    *err = -ENOMEM;
    return NULL;
  }
  d->a = a;
  d->ctl = -1;
  dev.arg = d;
  if (a->srv && (r = mount_srv(a->srv)) < 0)
    fprintf(stderr, "diskfs: mount /srv/%s: %s\n", a->srv, strerror(-r));
  if (r == 0 && (r = d->fd = open_device(a->device)) < 0)
    fprintf(stderr, "diskfs: %s: %s\n", a->device, strerror(-r));
  if (r >= 0 && a->ctl && (r = d->ctl = ns_open(a->ctl, NS_OWRITE)) < 0)
    fprintf(stderr, "diskfs: --sync %s: %s\n", a->ctl, strerror(-r));
  if (r >= 0 && a->ctl)
    dev.barrier = dev_sync;
  if (r >= 0 &&
      (r = dfs_mount(&d->fs, &dev, a->size, why, sizeof why)) == -ENODATA) {
    fprintf(stderr, "diskfs: %s: no file system: formatting\n", a->device);
    if ((r = dfs_format(&dev, a->size, "uksim")) == 0)
      r = dfs_mount(&d->fs, &dev, a->size, why, sizeof why);
  }
  if (r == -EUCLEAN)
    fprintf(stderr, "diskfs: %s: refusing a corrupt file system: %s\n",
            a->device, why);
  else if (r < 0)
    fprintf(stderr, "diskfs: %s: %s\n", a->device, strerror(-r));
  if (r < 0) {
    free(d);
    *err = r;
    return NULL;
  }
  if (d->fs.repaired)
    fprintf(stderr, "diskfs: %s: %u stale bitmap bits repaired\n", a->device,
            d->fs.repaired);
  return d;
}

/* --- users ----------------------------------------------------------- */

/* The index of user name u, added if new; -EUSERS when the table is
 * full.  An empty name is Plan 9's anonymous "none". */
static long user_index(struct diskfs *d, p9_str u) {
  if (u.len == 0)
    u = p9_str_c("none");
  for (uint32_t i = 0; i < d->nuser; i++)
    if (p9_str_eq(u, d->user[i]))
      return i;
  if (d->nuser == DISKFS_USERS_MAX)
    return -EUSERS;
  d->user[d->nuser] = p9_str_dup(u);
  return d->nuser++;
}

/* A fid's uid comes from the state on a restart: bounded here. */
static const char *user_name(const struct diskfs *d, uint32_t uid) {
  return uid < d->nuser ? d->user[uid] : "none";
}

/* --- ops ------------------------------------------------------------- */

#define D(r) ((struct diskfs *)p9_srv_aux((r)->srv))

static uint32_t now(void) {
  return (uint32_t)time(NULL);
}

static p9_qid qid_of(const struct diskfs *d, uint32_t i) {
  const struct dfs_inode *n = &d->fs.ino[i];
  return (p9_qid){(uint8_t)(n->mode >> 24), n->vers, dfs_aux(&d->fs, i)};
}

/* The fid's inode, or -1 after responding "file has been removed". */
static long fid_ino(p9_req *r, p9_fid *f) {
  long i = dfs_lookup_aux(&D(r)->fs, f->aux);
  if (i < 0)
    p9_respond_error(r, "file has been removed");
  return i;
}

static bool is_dir(const struct diskfs *d, uint32_t i) {
  return d->fs.ino[i].mode & P9_DMDIR;
}

static void fs_attach(p9_req *r) {
  long u = user_index(D(r), r->ifcall.uname);
  if (u < 0) {
    p9_respond(r, (int)u);
    return;
  }
  r->fid->uid = (uint32_t)u;
  r->fid->aux = dfs_aux(&D(r)->fs, 0);
  r->ofcall.qid = qid_of(D(r), 0);
  p9_respond(r, 0);
}

static void fs_walk(p9_req *r) {
  struct diskfs *d = D(r);
  long cur = fid_ino(r, r->fid), next;
  uint16_t k;
  if (cur < 0)
    return;
  for (k = 0; k < r->ifcall.nwname; k++) {
    p9_str w = r->ifcall.wname[k];
    if (!is_dir(d, (uint32_t)cur))
      break;
    next = p9_str_eq(w, "..")  ? (long)d->fs.ino[cur].parent
           : p9_str_eq(w, ".") ? cur
                               : dfs_find(&d->fs, (uint32_t)cur, w.s, w.len);
    if (next < 0)
      break;
    cur = next;
    r->ofcall.wqid[k] = qid_of(d, (uint32_t)cur);
  }
  r->ofcall.nwqid = k;
  r->newaux = dfs_aux(&d->fs, (uint32_t)cur);
  p9_respond(r, k == 0 && r->ifcall.nwname ? -ENOENT : 0);
}

/* Once an open or create has answered success the library makes the fid
 * open, so the count goes up here and down in fs_destroyfid. */
static void fs_open(p9_req *r) {
  struct diskfs *d = D(r);
  long i = fid_ino(r, r->fid);
  int err = 0;
  if (i < 0)
    return;
  if ((d->fs.ino[i].mode & P9_DMEXCL) && d->nopen[i]) {
    p9_respond_error(r, "exclusive use file already open");
    return;
  }
  if ((r->ifcall.mode & P9_OTRUNC) && !is_dir(d, (uint32_t)i))
    err = dfs_truncate(&d->fs, (uint32_t)i, 0, now());
  if (err == 0)
    d->nopen[i]++;
  r->ofcall.qid = qid_of(d, (uint32_t)i);
  p9_respond(r, err);
}

/* open(5): a Tcreate's permissions are masked by the directory's,
 * perm & (~0666 | (dir.perm & 0666)) for a file and 0777 for a
 * directory. */
static uint32_t create_mode(uint32_t perm, uint32_t dirmode) {
  uint32_t keep = (perm & P9_DMDIR) ? 0777 : 0666;
  perm &= ~keep | (dirmode & keep);
  return perm & (P9_DMDIR | P9_DMAPPEND | P9_DMEXCL | 0777);
}

static void fs_create(p9_req *r) {
  struct diskfs *d = D(r);
  long dir = fid_ino(r, r->fid), i;
  if (dir < 0)
    return;
  i = dfs_create(&d->fs, (uint32_t)dir, r->ifcall.name.s, r->ifcall.name.len,
                 create_mode(r->ifcall.perm, d->fs.ino[dir].mode),
                 user_name(d, r->fid->uid), now());
  if (i < 0) {
    p9_respond(r, (int)i);
    return;
  }
  r->fid->aux = dfs_aux(&d->fs, (uint32_t)i);
  r->ofcall.qid = qid_of(d, (uint32_t)i);
  d->nopen[i]++; /* the fid is open on the new file */
  p9_respond(r, 0);
}

static void fs_destroyfid(p9_srv *srv, p9_fid *f) {
  struct diskfs *d = p9_srv_aux(srv);
  long i = dfs_lookup_aux(&d->fs, f->aux);
  if (i >= 0 && f->omode != P9_ONONE && d->nopen[i])
    d->nopen[i]--;
}

static void fill_stat(const struct diskfs *d, uint32_t i, p9_stat *st) {
  const struct dfs_inode *n = &d->fs.ino[i];
  memset(st, 0, sizeof(*st));
  st->qid = qid_of(d, i);
  st->mode = n->mode;
  st->atime = st->mtime = n->mtime;
  st->length = n->length;
  st->name = p9_str_c(n->name);
  st->uid = st->gid = st->muid = p9_str_c(n->uid);
}

static void read_dir(p9_req *r, struct diskfs *d, uint32_t dir) {
  uint32_t pos = 0;
  long i = 0;
  p9_stat st;
  for (uint64_t k = 0; i >= 0 && k < r->fid->dirindex; k++)
    i = dfs_next_child(&d->fs, dir, &pos);
  while (i >= 0 && (i = dfs_next_child(&d->fs, dir, &pos)) >= 0) {
    fill_stat(d, (uint32_t)i, &st);
    if (p9_dirread_put(r, &st) < 0)
      break;
  }
  p9_respond(r, 0);
}

static void fs_read(p9_req *r) {
  struct diskfs *d = D(r);
  long i = fid_ino(r, r->fid), n;
  if (i < 0)
    return;
  if (is_dir(d, (uint32_t)i)) {
    read_dir(r, d, (uint32_t)i);
    return;
  }
  n = dfs_read(&d->fs, (uint32_t)i, r->ifcall.offset, r->buf, r->ifcall.count);
  if (n >= 0)
    r->ofcall.count = (uint32_t)n;
  p9_respond(r, n < 0 ? (int)n : 0);
}

static void fs_write(p9_req *r) {
  struct diskfs *d = D(r);
  long i = fid_ino(r, r->fid), n;
  uint64_t off = r->ifcall.offset;
  if (i < 0)
    return;
  if (d->fs.ino[i].mode & P9_DMAPPEND)
    off = d->fs.ino[i].length;
  n = dfs_write(&d->fs, (uint32_t)i, off, r->ifcall.data, r->ifcall.count,
                now());
  if (n >= 0)
    r->ofcall.count = (uint32_t)n;
  p9_respond(r, n < 0 ? (int)n : 0);
}

static void fs_remove(p9_req *r) {
  long i = fid_ino(r, r->fid);
  if (i >= 0)
    p9_respond(r, dfs_remove(&D(r)->fs, (uint32_t)i));
}

static void fs_stat(p9_req *r) {
  long i = fid_ino(r, r->fid);
  if (i < 0)
    return;
  fill_stat(D(r), (uint32_t)i, &r->ofcall.stat);
  p9_respond(r, 0);
}

/* The changes a wstat asks of inode i, or why they may not be made
 * (stat(5)): the directory bit and the owner stay, and a group must be
 * the owner (no groups are kept). */
static int wstat_attr(const struct diskfs *d, uint32_t i, const p9_stat *st,
                      struct dfs_attr *a) {
  const struct dfs_inode *n = &d->fs.ino[i];
  *a = (struct dfs_attr){
      .length = st->length, .mode = st->mode, .mtime = st->mtime};
  if (st->mode != ~0u && (st->mode & P9_DMDIR) != (n->mode & P9_DMDIR))
    return -EPERM;
  if (st->mode != ~0u)
    a->mode &= P9_DMAPPEND | P9_DMEXCL | 0777;
  if ((st->uid.len && !p9_str_eq(st->uid, n->uid)) ||
      (st->gid.len && !p9_str_eq(st->gid, n->uid)))
    return -EPERM;
  if (st->name.len && !p9_str_eq(st->name, n->name)) {
    a->name = st->name.s;
    a->name_len = st->name.len;
  }
  if (is_dir(d, i) && st->length == 0)
    a->length = DFS_KEEP64;
  return dfs_change_check(&d->fs, i, a);
}

/* wstat(5): "Either all the changes in wstat request happen, or none of
 * them does": checked first, then one commit on the device. */
static void fs_wstat(p9_req *r) {
  struct diskfs *d = D(r);
  struct dfs_attr a;
  long i = fid_ino(r, r->fid);
  int err;
  if (i < 0)
    return;
  if ((err = wstat_attr(d, (uint32_t)i, &r->ifcall.stat, &a)) == 0)
    err = dfs_change(&d->fs, (uint32_t)i, &a);
  p9_respond(r, err);
}

static const struct p9_srv_ops diskfs_ops = {
    .attach = fs_attach,
    .walk = fs_walk,
    .open = fs_open,
    .create = fs_create,
    .read = fs_read,
    .write = fs_write,
    .remove = fs_remove,
    .stat = fs_stat,
    .wstat = fs_wstat,
    .destroyfid = fs_destroyfid,
};

/* --- the server's state ---------------------------------------------- */

static void *fresh(void *arg, int *err) {
  struct diskfs *d = diskfs_open(arg, err);
  if (d)
    user_index(d, p9_str_c("uksim"));
  return d;
}

static void describe(void *fs, Uksim__P9s__State *st) {
  struct diskfs *d = fs;
  Uksim__P9s__Diskfs *p = malloc(sizeof(*p));
  if (!p)
    abort();
  uksim__p9s__diskfs__init(p);
  p->device = (char *)d->a->device;
  p->users = d->user;
  p->n_users = d->nuser;
  p->nopen = d->nopen;
  p->n_nopen = DFS_NINODES;
  st->diskfs = p;
}

static void described(Uksim__P9s__State *st) {
  free(st->diskfs);
}

/* What the state says that is not on the device, checked. */
static int take_state(struct diskfs *d, const Uksim__P9s__Diskfs *p, char *why,
                      size_t whylen) {
  if (p->n_users == 0 || p->n_users > DISKFS_USERS_MAX ||
      p->n_nopen > DFS_NINODES) {
    snprintf(why, whylen, "%zu users, %zu inodes: out of range", p->n_users,
             p->n_nopen);
    return -EINVAL;
  }
  for (size_t k = 0; k < p->n_users; k++)
    d->user[d->nuser++] = strdup(p->users[k] ? p->users[k] : "none");
  memcpy(d->nopen, p->nopen, p->n_nopen * sizeof(*d->nopen));
  return 0;
}

static void *load(void *arg, const Uksim__P9s__State *st, int *err, char *why,
                  size_t whylen) {
  const struct args *a = arg;
  const Uksim__P9s__Diskfs *p = st->diskfs;
  struct diskfs *d;
  if (!p || !p->device || strcmp(p->device, a->device) != 0) {
    snprintf(why, whylen, "the state is of device '%s', not '%s'",
             p && p->device ? p->device : "", a->device);
    *err = -EINVAL;
    return NULL;
  }
  if (!(d = diskfs_open(a, err))) {
    snprintf(why, whylen, "%s: cannot mount its file system", a->device);
    return NULL;
  }
  if ((*err = take_state(d, p, why, whylen)) < 0)
    return NULL; /* the server refuses the state and exits */
  return d;
}

/* Takes "--sync CTL" out of argv (the options p9h_parse does not know),
 * or NULL if it is not there. */
static const char *take_sync(int *argc, char **argv) {
  const char *ctl = NULL;
  int k = 1;
  for (int i = 1; i < *argc; i++)
    if (strcmp(argv[i], "--sync") == 0 && i + 1 < *argc)
      ctl = argv[++i];
    else
      argv[k++] = argv[i];
  *argc = k;
  argv[k] = NULL;
  return ctl;
}

int main(int argc, char **argv) {
  struct p9h_opts o = {.service = "diskfs", .state_max = STATE_MAX_DEFAULT};
  struct args a = {0};
  struct p9h_backend b = {.kind = "diskfs",
                          .ops = &diskfs_ops,
                          .arg = &a,
                          .fresh = fresh,
                          .describe = describe,
                          .described = described,
                          .load = load};
  int r;
  a.ctl = take_sync(&argc, argv);
  if (p9h_parse(&argc, argv, &o) < 0 || argc < 3 || argc > 4) {
    fputs("usage: diskfs [--name NAME] [--state-max B] [--trace] [--sync CTL] "
          "DEVICE SIZE [SRV]\n",
          stderr);
    return 2;
  }
  a.device = argv[1];
  a.srv = argc == 4 ? argv[3] : NULL;
  if (num_opt_u64("diskfs", "SIZE", argv[2], DFS_SIZE_MIN, DFS_SIZE_MAX,
                  NUM_SIZE, &a.size) < 0)
    return 2;
  r = p9h_run(&b, &o);
  if (r < 0)
    fprintf(stderr, "diskfs: %s: %s\n", a.device, strerror(-r));
  return r < 0;
}
