/* The FUSE view (see nsfuse.h), shaped like libfuse's passthrough_ll.c: an
 * ops table, each op a helper that returns 0 or -errno and one reply.
 *
 * Inodes.  The namespace has paths, not inode numbers, and the same qid
 * can appear at several paths (a servant bound twice) while two servers'
 * qids can collide, so FUSE's inode numbers are our own: a table from the
 * path (from the namespace's root) to a slot, the slot's index being the
 * inode number (1 is the root).  A slot counts its lookups as FUSE defines
 * them: +1 for every fuse_reply_entry / fuse_reply_create and every entry
 * a readdirplus gives; forget subtracts; at 0 the slot is free for a new
 * path, with its generation raised so that FUSE tells the two apart.  The
 * root is never forgotten.  st_ino is the inode number, so that du, find
 * and cp -r, which recognise a file by (st_dev, st_ino), see each path
 * once.  A rename changes the paths of the slot and every slot below it.
 *
 * Files.  An open file is an ns descriptor (fi->fh); reads and writes are
 * ns_pread / ns_pwrite at FUSE's offsets.  Servants' files (#c, #e, #p
 * ...) often say length 0 and are made as they are read, so they are open
 * with direct_io (no page cache, reads past the stated length); a mounted
 * server's files go through the page cache like any file.  A directory
 * handle holds the whole listing, read at opendir, so that readdir's
 * offsets are indexes in a fixed list.
 *
 * What fails and how: a rename across directories is EXDEV (9P renames
 * within a directory only; mv then copies), rename's RENAME_EXCHANGE is
 * EINVAL, links, symlinks and device nodes EPERM, a change of owner EPERM;
 * xattrs are not implemented (libfuse answers ENOSYS, which the kernel
 * turns into EOPNOTSUPP).  A rename onto an existing name removes that
 * name first (9P refuses to rename onto one; POSIX replaces), so it is not
 * atomic.
 */
#define FUSE_USE_VERSION 34
#include "nsfuse.h"

#include <errno.h>
#include <fuse_lowlevel.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "uksim/kdata.h"
#include "uksim/ns.h"
#include "uksim/xalloc.h"

#define TIMEOUT 1.0 /* seconds FUSE may cache an entry or attributes */
#define NBUCKET 4096

struct inode {
  char *path; /* NULL: a free slot */
  uint64_t nlookup;
  uint64_t gen;
  uint8_t dev; /* the servant's letter at the last lookup ('M' a server) */
  size_t next; /* the next slot in its hash chain, or on the free list */
};

static struct {
  struct inode *v;
  size_t n, cap;
  size_t bucket[NBUCKET];
  size_t free; /* the first free slot, 0 none */
  struct fuse_session *se;
} fs;

static size_t hash(const char *s) {
  size_t h = 5381;
  while (*s)
    h = h * 33 + (unsigned char)*s++;
  return h % NBUCKET;
}

static size_t ino_find(const char *path) {
  for (size_t i = fs.bucket[hash(path)]; i; i = fs.v[i].next)
    if (strcmp(fs.v[i].path, path) == 0)
      return i;
  return 0;
}

static void chain_add(size_t i) {
  size_t h = hash(fs.v[i].path);
  fs.v[i].next = fs.bucket[h];
  fs.bucket[h] = i;
}

static void chain_del(size_t i) {
  size_t *p = &fs.bucket[hash(fs.v[i].path)];
  while (*p != i)
    p = &fs.v[*p].next;
  *p = fs.v[i].next;
}

/* A free slot, or a new one. */
static size_t slot_new(void) {
  if (fs.free) {
    size_t i = fs.free;
    fs.free = fs.v[i].next;
    return i;
  }
  if (fs.n == fs.cap) {
    fs.cap = fs.cap ? 2 * fs.cap : 256;
    fs.v = xreallocarray(fs.v, fs.cap, sizeof *fs.v);
  }
  memset(&fs.v[fs.n], 0, sizeof fs.v[0]);
  return fs.n++;
}

/* The inode of path with one more lookup (a new slot if it had none);
 * dev is the servant that answered the lookup. */
static size_t ino_ref(const char *path, uint8_t dev) {
  size_t i = ino_find(path);
  if (i == 0) {
    i = slot_new();
    fs.v[i].path = xstrdup(path);
    fs.v[i].gen++;
    chain_add(i);
  }
  fs.v[i].nlookup++;
  fs.v[i].dev = dev;
  return i;
}

static void ino_forget(fuse_ino_t ino, uint64_t n) {
  if (ino <= 1 || ino >= fs.n || fs.v[ino].path == NULL)
    return;
  struct inode *e = &fs.v[ino];
  e->nlookup = n >= e->nlookup ? 0 : e->nlookup - n;
  if (e->nlookup == 0) {
    chain_del(ino);
    free(e->path);
    e->path = NULL;
    e->next = fs.free;
    fs.free = ino;
  }
}

static const char *ino_path(fuse_ino_t ino) {
  return ino >= 1 && ino < fs.n ? fs.v[ino].path : NULL;
}

/* After a rename of from to to: the slot of from and those under it. */
static void ino_rename(const char *from, const char *to) {
  size_t fl = strlen(from);
  for (size_t i = 2; i < fs.n; i++) {
    char *p = fs.v[i].path;
    if (p == NULL || strncmp(p, from, fl) != 0 || (p[fl] && p[fl] != '/'))
      continue;
    size_t tl = strlen(to), rest = strlen(p + fl);
    char *np = xmalloc(tl + rest + 1);
    memcpy(np, to, tl);
    memcpy(np + tl, p + fl, rest + 1);
    chain_del(i);
    fs.v[i].path = np;
    chain_add(i);
    free(p);
  }
}

static void ino_init(void) {
  fs.n = 2;
  fs.cap = 256;
  fs.v = xcalloc(fs.cap, sizeof *fs.v);
  fs.v[1].path = xstrdup("/");
  fs.v[1].nlookup = 1;
  chain_add(1);
}

static void ino_fini(void) {
  for (size_t i = 1; i < fs.n; i++)
    free(fs.v[i].path);
  free(fs.v);
  memset(&fs, 0, sizeof fs);
}

/* parent's path + "/" + name into out, within the kernel's path limit. */
static int join(fuse_ino_t parent, const char *name, char *out) {
  const char *p = ino_path(parent);
  if (p == NULL)
    return -ESTALE;
  int n = snprintf(out, UK_PATH_MAX + 1, "%s%s%s", p,
                   strcmp(p, "/") == 0 ? "" : "/", name);
  return n < 0 || n > UK_PATH_MAX ? -ENAMETOOLONG : 0;
}

/* A kernel that went away ends the session; a mounted server that went
 * away (its calls answer -ECONNRESET too) fails only its own calls. */
static int check(int r) {
  if (r < 0 && ns_kernel_gone())
    fuse_session_exit(fs.se);
  return r;
}

static void to_stat(const ns_dir *d, fuse_ino_t ino, struct stat *st) {
  memset(st, 0, sizeof *st);
  st->st_ino = ino;
  st->st_mode = (d->mode & NS_DMDIR ? S_IFDIR : S_IFREG) | (d->mode & 0777);
  st->st_nlink = 1; /* unknown: find must not count subdirectories */
  st->st_uid = getuid();
  st->st_gid = getgid();
  st->st_size = (off_t)d->length;
  st->st_blocks = (blkcnt_t)((d->length + 511) / 512);
  st->st_blksize = NS_SMALL;
  st->st_atime = d->atime;
  st->st_mtime = d->mtime;
  st->st_ctime = d->mtime;
}

/* The entry FUSE gets for path, one lookup counted. */
static int entry_of(const char *path, struct fuse_entry_param *e) {
  ns_dir d;
  int r = check(ns_stat(path, &d));
  if (r < 0)
    return r;
  memset(e, 0, sizeof *e);
  e->ino = ino_ref(path, d.dev_type);
  e->generation = fs.v[e->ino].gen;
  e->attr_timeout = e->entry_timeout = TIMEOUT;
  to_stat(&d, e->ino, &e->attr);
  return 0;
}

static void reply_entry_or_err(fuse_req_t req, int r,
                               const struct fuse_entry_param *e) {
  if (r < 0)
    fuse_reply_err(req, -r);
  else
    fuse_reply_entry(req, e);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
  char path[UK_PATH_MAX + 1];
  struct fuse_entry_param e;
  int r = join(parent, name, path);
  if (r == 0)
    r = entry_of(path, &e);
  reply_entry_or_err(req, r, &e);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t n) {
  ino_forget(ino, n);
  fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count,
                            struct fuse_forget_data *f) {
  for (size_t i = 0; i < count; i++)
    ino_forget(f[i].ino, f[i].nlookup);
  fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi) {
  (void)fi;
  const char *path = ino_path(ino);
  ns_dir d;
  struct stat st;
  int r = path ? check(ns_stat(path, &d)) : -ESTALE;
  if (r < 0) {
    fuse_reply_err(req, -r);
    return;
  }
  fs.v[ino].dev = d.dev_type;
  to_stat(&d, ino, &st);
  fuse_reply_attr(req, &st, TIMEOUT);
}

/* setattr as one wstat: length (truncate), mode, mtime; owners cannot
 * change (9P's are names we do not map). */
static int set_attr(const char *path, const struct stat *a, int set) {
  ns_dir d;
  if (set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))
    return -EPERM;
  ns_dir_keep(&d);
  if (set & FUSE_SET_ATTR_SIZE)
    d.length = (uint64_t)a->st_size;
  if (set & FUSE_SET_ATTR_MODE) {
    ns_dir cur;
    int r = check(ns_stat(path, &cur));
    if (r < 0)
      return r;
    d.mode = (cur.mode & ~0777u) | (a->st_mode & 0777);
  }
  if (set & FUSE_SET_ATTR_MTIME_NOW)
    d.mtime = (uint32_t)time(NULL);
  else if (set & FUSE_SET_ATTR_MTIME)
    d.mtime = (uint32_t)a->st_mtime;
  /* atime alone is not the server's to keep (9P sets it on reads). */
  if (!(set & (FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_MTIME |
               FUSE_SET_ATTR_MTIME_NOW)))
    return 0;
  return check(ns_wstat(path, &d));
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *a, int set,
                       struct fuse_file_info *fi) {
  const char *path = ino_path(ino);
  int r = path ? set_attr(path, a, set) : -ESTALE;
  if (r < 0) {
    fuse_reply_err(req, -r);
    return;
  }
  op_getattr(req, ino, fi);
}

/* A directory handle: the whole listing, read at opendir. */
struct dirh {
  ns_dir *d;
  size_t n;
};

static int read_listing(const char *path, struct dirh *h) {
  int fd = check(ns_open(path, NS_OREAD));
  if (fd < 0)
    return fd;
  size_t cap = 0;
  long n;
  do {
    if (cap - h->n < 16) {
      cap = cap ? 2 * cap : 64;
      h->d = xreallocarray(h->d, cap, sizeof *h->d);
    }
    n = check((int)ns_dirread(fd, h->d + h->n, cap - h->n));
    if (n > 0)
      h->n += (size_t)n;
  } while (n > 0);
  ns_close(fd);
  return n < 0 ? (int)n : 0;
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi) {
  const char *path = ino_path(ino);
  struct dirh *h = xcalloc(1, sizeof *h);
  int r = path ? read_listing(path, h) : -ESTALE;
  if (r < 0) {
    free(h->d);
    free(h);
    fuse_reply_err(req, -r);
    return;
  }
  fi->fh = (uint64_t)(uintptr_t)h;
  fuse_reply_open(req, fi);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino,
                          struct fuse_file_info *fi) {
  (void)ino;
  struct dirh *h = (struct dirh *)(uintptr_t)fi->fh;
  free(h->d);
  free(h);
  fuse_reply_err(req, 0);
}

/* One readdirplus entry at buf: its size, 0 when it does not fit (and
 * then no lookup is counted). */
static size_t add_plus(fuse_req_t req, fuse_ino_t dir, const ns_dir *d,
                       char *buf, size_t rem, off_t next) {
  char path[UK_PATH_MAX + 1];
  struct fuse_entry_param e;
  if (join(dir, d->name, path) < 0)
    return (size_t)-1; /* skipped: too long to reach */
  size_t want = fuse_add_direntry_plus(req, NULL, 0, d->name, NULL, 0);
  if (want > rem)
    return 0;
  memset(&e, 0, sizeof e);
  e.ino = ino_ref(path, d->dev_type);
  e.generation = fs.v[e.ino].gen;
  /* A partial record (a 9P2000.L server's listing has no lengths) must
   * not be cached: a stat of the file asks again. */
  e.attr_timeout = e.entry_timeout =
      (d->flags & KABI_DIR_PARTIAL) ? 0 : TIMEOUT;
  to_stat(d, e.ino, &e.attr);
  return fuse_add_direntry_plus(req, buf, rem, d->name, &e, next);
}

/* One plain readdir entry: st_ino is the inode if the path has one. */
static size_t add_plain(fuse_req_t req, fuse_ino_t dir, const ns_dir *d,
                        char *buf, size_t rem, off_t next) {
  char path[UK_PATH_MAX + 1];
  struct stat st;
  memset(&st, 0, sizeof st);
  st.st_mode = d->mode & NS_DMDIR ? S_IFDIR : S_IFREG;
  st.st_ino = join(dir, d->name, path) == 0 ? ino_find(path) : 0;
  if (st.st_ino == 0)
    st.st_ino = d->qid_path | 1ull << 63; /* not yet looked up */
  size_t n = fuse_add_direntry(req, buf, rem, d->name, &st, next);
  return n > rem ? 0 : n;
}

static void readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size,
                           off_t off, struct fuse_file_info *fi, bool plus) {
  struct dirh *h = (struct dirh *)(uintptr_t)fi->fh;
  char *buf = xmalloc(size);
  size_t used = 0;
  for (size_t i = (size_t)off; i < h->n; i++) {
    size_t n = plus ? add_plus(req, ino, &h->d[i], buf + used, size - used,
                               (off_t)i + 1)
                    : add_plain(req, ino, &h->d[i], buf + used, size - used,
                                (off_t)i + 1);
    if (n == 0)
      break;
    if (n != (size_t)-1)
      used += n;
  }
  fuse_reply_buf(req, buf, used);
  free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi) {
  readdir_common(req, ino, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
                           off_t off, struct fuse_file_info *fi) {
  readdir_common(req, ino, size, off, fi, true);
}

/* open(2) flags as an open(5) mode. */
static int ns_mode(int flags) {
  int m = (flags & O_ACCMODE) == O_WRONLY ? NS_OWRITE
          : (flags & O_ACCMODE) == O_RDWR ? NS_ORDWR
                                          : NS_OREAD;
  return m | (flags & O_TRUNC ? NS_OTRUNC : 0);
}

/* Servants' files are made as they are read (see the top of the file);
 * the lookup that made the inode said whose the file is, so an open
 * costs no stat. */
static void set_caching(fuse_ino_t ino, struct fuse_file_info *fi) {
  fi->direct_io = fs.v[ino].dev != 'M';
  fi->keep_cache = 0;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  const char *path = ino_path(ino);
  int fd = path ? check(ns_open(path, ns_mode(fi->flags))) : -ESTALE;
  if (fd < 0) {
    fuse_reply_err(req, -fd);
    return;
  }
  set_caching(ino, fi);
  fi->fh = (uint64_t)fd;
  fuse_reply_open(req, fi);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
                      mode_t mode, struct fuse_file_info *fi) {
  char path[UK_PATH_MAX + 1];
  struct fuse_entry_param e;
  int r = join(parent, name, path);
  int fd = r < 0 ? r : check(ns_create(path, ns_mode(fi->flags), mode & 0777));
  if (fd < 0) {
    fuse_reply_err(req, -fd);
    return;
  }
  if ((r = entry_of(path, &e)) < 0) {
    ns_close(fd);
    fuse_reply_err(req, -r);
    return;
  }
  set_caching(e.ino, fi);
  fi->fh = (uint64_t)fd;
  fuse_reply_create(req, &e, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi) {
  (void)ino;
  char *buf = xmalloc(size);
  long n = check((int)ns_pread((int)fi->fh, buf, size, (uint64_t)off));
  if (n < 0)
    fuse_reply_err(req, (int)-n);
  else
    fuse_reply_buf(req, buf, (size_t)n);
  free(buf);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
                     size_t size, off_t off, struct fuse_file_info *fi) {
  (void)ino;
  long n = check((int)ns_pwrite((int)fi->fh, buf, size, (uint64_t)off));
  if (n < 0)
    fuse_reply_err(req, (int)-n);
  else
    fuse_reply_write(req, (size_t)n);
}

static void op_release(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi) {
  (void)ino;
  int r = check(ns_close((int)fi->fh));
  fuse_reply_err(req, -r);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
                     struct fuse_file_info *fi) {
  (void)ino, (void)datasync, (void)fi;
  fuse_reply_err(req, 0); /* every write already reached the server */
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
                     mode_t mode) {
  char path[UK_PATH_MAX + 1];
  struct fuse_entry_param e;
  int r = join(parent, name, path);
  int fd =
      r < 0 ? r : check(ns_create(path, NS_OREAD, NS_DMDIR | (mode & 0777)));
  if (fd >= 0) {
    ns_close(fd);
    r = entry_of(path, &e);
  } else {
    r = fd;
  }
  reply_entry_or_err(req, r, &e);
}

static void op_remove(fuse_req_t req, fuse_ino_t parent, const char *name) {
  char path[UK_PATH_MAX + 1];
  int r = join(parent, name, path);
  if (r == 0)
    r = check(ns_remove(path));
  fuse_reply_err(req, -r);
}

/* A rename within one directory: wstat of the name, after removing a
 * target that exists (see the top of the file). */
static int rename_in_dir(const char *from, const char *to, const char *name,
                         unsigned flags) {
  ns_dir d;
  if (check(ns_stat(to, &d)) == 0) {
    if (flags & RENAME_NOREPLACE)
      return -EEXIST;
    int r = check(ns_remove(to));
    if (r < 0)
      return r;
  }
  ns_dir_keep(&d);
  snprintf(d.name, sizeof d.name, "%s", name);
  int r = check(ns_wstat(from, &d));
  if (r == 0)
    ino_rename(from, to);
  return r;
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
                      fuse_ino_t newparent, const char *newname,
                      unsigned int flags) {
  char from[UK_PATH_MAX + 1], to[UK_PATH_MAX + 1];
  int r = 0;
  if (flags & RENAME_EXCHANGE)
    r = -EINVAL;
  else if (parent != newparent)
    r = -EXDEV; /* 9P renames within a directory only */
  else if (strlen(newname) > KABI_DIR_NAME_MAX)
    r = -ENAMETOOLONG;
  if (r == 0 && (r = join(parent, name, from)) == 0 &&
      (r = join(newparent, newname, to)) == 0)
    r = rename_in_dir(from, to, newname, flags);
  fuse_reply_err(req, -r);
}

static void op_no_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
                       const char *newname) {
  (void)ino, (void)newparent, (void)newname;
  fuse_reply_err(req, EPERM);
}

static void op_no_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
                          const char *name) {
  (void)link, (void)parent, (void)name;
  fuse_reply_err(req, EPERM);
}

static void op_no_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
                        mode_t mode, dev_t rdev) {
  (void)parent, (void)name, (void)mode, (void)rdev;
  fuse_reply_err(req, EPERM); /* regular files come through create */
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino) {
  (void)ino;
  struct statvfs s;
  memset(&s, 0, sizeof s);
  s.f_bsize = s.f_frsize = 512;
  s.f_namemax = KABI_DIR_NAME_MAX;
  fuse_reply_statfs(req, &s);
}

static const struct fuse_lowlevel_ops ops = {
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .releasedir = op_releasedir,
    .open = op_open,
    .create = op_create,
    .read = op_read,
    .write = op_write,
    .release = op_release,
    .fsync = op_fsync,
    .mkdir = op_mkdir,
    .unlink = op_remove,
    .rmdir = op_remove,
    .rename = op_rename,
    .link = op_no_link,
    .symlink = op_no_symlink,
    .mknod = op_no_mknod,
    .statfs = op_statfs,
};

/* The machine halting closes the kernel connection; the loop, blocked in
 * a read of /dev/fuse, would not notice, so this thread waits for the
 * hang-up and takes the mount away lazily, which ends that read. */
static void *watch_kernel(void *arg) {
  const char *dir = arg;
  const char *s = getenv("UKSIM_FD");
  struct pollfd p = {.fd = s ? atoi(s) : -1, .events = POLLRDHUP};
  while (poll(&p, 1, -1) < 0 ||
         !(p.revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL)))
    p.revents = 0;
  fuse_session_exit(fs.se);
  char *argv[] = {"fusermount3", "-u", "-z", (char *)dir, NULL};
  pid_t pid;
  extern char **environ;
  if (posix_spawnp(&pid, "fusermount3", NULL, NULL, argv, environ) == 0)
    waitpid(pid, NULL, 0);
  return NULL;
}

static struct fuse_session *session_new(const struct nsfuse_opts *o) {
  char fsopt[256];
  snprintf(fsopt, sizeof fsopt, "fsname=%s,subtype=uksim", o->fsname);
  char *argv[] = {"uksim-mount", "-o", fsopt, o->debug ? "-d" : NULL, NULL};
  struct fuse_args args = FUSE_ARGS_INIT(o->debug ? 4 : 3, argv);
  struct fuse_session *se = fuse_session_new(&args, &ops, sizeof ops, NULL);
  fuse_opt_free_args(&args);
  return se;
}

int nsfuse_serve(const struct nsfuse_opts *o) {
  ino_init();
  fs.se = session_new(o);
  if (fs.se == NULL) {
    ino_fini();
    return -EINVAL;
  }
  int r = -EIO;
  if (fuse_set_signal_handlers(fs.se) != 0)
    goto error;
  if (fuse_session_mount(fs.se, o->dir) != 0)
    goto error_signals;
  pthread_t watcher;
  bool watching =
      pthread_create(&watcher, NULL, watch_kernel, (void *)o->dir) == 0;
  if (o->ready)
    o->ready(o->arg);
  r = fuse_session_loop(fs.se);
  r = r > 0 ? 0 : r; /* a signal's number: a requested end */
  fuse_session_unmount(fs.se);
  if (watching) {
    pthread_cancel(watcher);
    pthread_join(watcher, NULL);
  }
error_signals:
  fuse_remove_signal_handlers(fs.se);
error:
  fuse_session_destroy(fs.se);
  ino_fini();
  return r;
}
