/*
 * hostfs.c: a host directory served through the p9_srv ops table (the
 * u9fs role of seed 002): what `uksim 9p serve --dir` exports on the
 * stream transport and servers/hostfs.c over ICAs.
 *
 * Each fid owns a handle (its aux is generation << 32 | index into
 * `h`): the file's path relative to the served directory, and the
 * descriptor it was opened with.  A path is a chain of names the library
 * has checked (no '/', never "." or ".."); ".." in a walk removes the last
 * name and stops at the served directory, so no path names anything
 * above it.  Every path is opened relative to the directory's descriptor
 * with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), or where the
 * kernel lacks openat2 one name at a time with O_NOFOLLOW: a symbolic
 * link is never followed (a walk to one fails, a directory read leaves it
 * out, as it does devices and sockets), so a link planted in the tree
 * cannot lead out of it either.
 *
 * Files are the host's: permissions are the server process's, checked by
 * the host kernel; the served user names are the host's owner and group.
 * A Twstat is checked whole before any change, then applied length, mode,
 * mtime, name: a host error after the first change (the disk fills) can
 * still leave part of it done.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/openat2.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "p9_impl.h"

typedef struct handle {
  bool used;
  uint32_t gen;
  char *path;    /* relative to the served directory; "" is itself */
  int fd;        /* open for I/O, or -1 */
  DIR *dir;      /* a directory being read (owns fd) */
  uint64_t dpos; /* entries the stream has given since it was rewound */
  uint8_t omode; /* P9_ONONE, or the mode its fid opened it with */
  uint32_t next; /* free list */
} handle;

struct p9_hostfs {
  int root; /* the served directory */
  char *dir;
  handle *h;
  uint32_t nh, cap, free;
  bool no_openat2;
  char owner[64], group[64]; /* names for the stat being built */
};

/* --- paths ------------------------------------------------------------ */

/* Opens path beneath the served directory, following no symbolic link
 * anywhere on the way. */
static int open_beneath(p9_hostfs *fs, const char *path, int flags,
                        mode_t mode) {
  struct open_how how = {.flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC),
                         .mode = (flags & O_CREAT) ? mode : 0,
                         .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
                                    RESOLVE_NO_MAGICLINKS};
  const char *p = *path ? path : ".";
  int fd, dfd;
  char *copy, *save = NULL, *e, *next;
  if (!fs->no_openat2) {
    fd = (int)syscall(SYS_openat2, fs->root, p, &how, sizeof(how));
    if (fd >= 0 || errno != ENOSYS)
      return fd >= 0 ? fd : -errno;
    fs->no_openat2 = true;
  }
  if (!*path) {
    fd = openat(fs->root, ".", flags | O_CLOEXEC, mode);
    return fd < 0 ? -errno : fd;
  }
  copy = xstrdup(path);
  dfd = dup(fs->root);
  for (e = strtok_r(copy, "/", &save); e && dfd >= 0; e = next) {
    next = strtok_r(NULL, "/", &save);
    fd = openat(dfd, e,
                next ? O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
                     : flags | O_NOFOLLOW | O_CLOEXEC,
                mode);
    close(dfd);
    dfd = fd;
  }
  fd = dfd < 0 ? -errno : dfd;
  free(copy);
  return fd;
}

/* path with name appended (".." drops the last name, "." nothing). */
static char *join(const char *path, p9_str name) {
  char *out;
  if (p9_str_eq(name, "."))
    return xstrdup(path);
  if (p9_str_eq(name, "..")) {
    const char *slash = strrchr(path, '/');
    return slash ? xstrndup(path, (size_t)(slash - path)) : xstrdup("");
  }
  out = xmalloc(strlen(path) + name.len + 2);
  sprintf(out, "%s%s%.*s", path, *path ? "/" : "", (int)name.len, name.s);
  return out;
}

/* The directory holding path, opened for *at calls; *name its last name. */
static int open_parent(p9_hostfs *fs, const char *path, const char **name) {
  const char *slash = strrchr(path, '/');
  char *dir = slash ? xstrndup(path, (size_t)(slash - path)) : xstrdup("");
  int fd = open_beneath(fs, dir, O_PATH | O_DIRECTORY, 0);
  *name = slash ? slash + 1 : path;
  free(dir);
  return fd;
}

/* What a path is, without following it: 0 for a directory or a regular
 * file, else -ENOENT (missing, or a link, device or socket we never
 * serve). */
static int stat_path(p9_hostfs *fs, const char *path, struct stat *st) {
  int fd = open_beneath(fs, path, O_PATH, 0), err = 0;
  if (fd < 0)
    return fd == -ELOOP ? -ENOENT : fd;
  if (fstat(fd, st) < 0)
    err = -errno;
  close(fd);
  if (!err && !S_ISDIR(st->st_mode) && !S_ISREG(st->st_mode))
    err = -ENOENT;
  return err;
}

static p9_qid qid_of(const struct stat *st) {
  return (p9_qid){
      S_ISDIR(st->st_mode) ? P9_QTDIR : P9_QTFILE,
      (uint32_t)(st->st_mtim.tv_sec ^ st->st_mtim.tv_nsec ^ st->st_size),
      (uint64_t)st->st_ino};
}

/* --- handles ---------------------------------------------------------- */

static uint64_t handle_new(p9_hostfs *fs, char *path) {
  uint32_t i;
  if (fs->free != P9__NIL) {
    i = fs->free;
    fs->free = fs->h[i].next;
  } else {
    if (fs->nh == fs->cap) {
      fs->cap = fs->cap ? 2 * fs->cap : 64;
      fs->h = xrealloc(fs->h, fs->cap * sizeof(*fs->h));
    }
    i = fs->nh++;
    fs->h[i].gen = 1; /* aux 0, a fid's before any op set it, is no handle */
  }
  fs->h[i] = (handle){.used = true,
                      .gen = fs->h[i].gen,
                      .path = path,
                      .fd = -1,
                      .omode = P9_ONONE};
  return (uint64_t)fs->h[i].gen << 32 | i;
}

static void handle_close(handle *h) {
  if (h->dir)
    closedir(h->dir);
  else if (h->fd >= 0)
    close(h->fd);
  h->dir = NULL;
  h->fd = -1;
}

static void handle_free(p9_hostfs *fs, uint64_t aux) {
  uint32_t i = (uint32_t)aux;
  handle *h = &fs->h[i];
  handle_close(h);
  free(h->path);
  *h = (handle){.gen = h->gen + 1, .next = fs->free, .fd = -1};
  fs->free = i;
}

static handle *lookup(p9_hostfs *fs, uint64_t aux) {
  uint32_t i = (uint32_t)aux;
  if (i >= fs->nh || !fs->h[i].used || fs->h[i].gen != (uint32_t)(aux >> 32))
    return NULL;
  return &fs->h[i];
}

#define FS(r) ((p9_hostfs *)p9_srv_aux((r)->srv))

static handle *fid_handle(p9_req *r, p9_fid *f) {
  handle *h = lookup(FS(r), f->aux);
  if (!h)
    p9_respond(r, -EBADF);
  return h;
}

/* --- stat ------------------------------------------------------------- */

static void names(p9_hostfs *fs, const struct stat *st) {
  struct passwd pw, *pp = NULL;
  struct group gr, *gp = NULL;
  char buf[4096];
  if (getpwuid_r(st->st_uid, &pw, buf, sizeof(buf), &pp) == 0 && pp)
    snprintf(fs->owner, sizeof(fs->owner), "%s", pw.pw_name);
  else
    snprintf(fs->owner, sizeof(fs->owner), "%u", (unsigned)st->st_uid);
  if (getgrgid_r(st->st_gid, &gr, buf, sizeof(buf), &gp) == 0 && gp)
    snprintf(fs->group, sizeof(fs->group), "%s", gr.gr_name);
  else
    snprintf(fs->group, sizeof(fs->group), "%u", (unsigned)st->st_gid);
}

/* A stat(5) entry for st named name; strings valid until the next call. */
static void fill_stat(p9_hostfs *fs, const struct stat *st, const char *name,
                      p9_stat *out) {
  names(fs, st);
  memset(out, 0, sizeof(*out));
  out->qid = qid_of(st);
  out->mode =
      (uint32_t)(st->st_mode & 0777) | (S_ISDIR(st->st_mode) ? P9_DMDIR : 0);
  out->atime = (uint32_t)st->st_atim.tv_sec;
  out->mtime = (uint32_t)st->st_mtim.tv_sec;
  out->length = S_ISDIR(st->st_mode) ? 0 : (uint64_t)st->st_size;
  out->name = p9_str_c(name);
  out->uid = p9_str_c(fs->owner);
  out->gid = p9_str_c(fs->group);
  out->muid = p9_str_c(fs->owner);
}

static const char *base_name(const char *path) {
  const char *slash = strrchr(path, '/');
  return *path == 0 ? "/" : slash ? slash + 1 : path;
}

/* --- ops -------------------------------------------------------------- */

static void hf_attach(p9_req *r) {
  struct stat st;
  int err = stat_path(FS(r), "", &st);
  if (err) {
    p9_respond(r, err);
    return;
  }
  r->fid->aux = handle_new(FS(r), xstrdup(""));
  r->ofcall.qid = qid_of(&st);
  p9_respond(r, 0);
}

static void hf_walk(p9_req *r) {
  handle *h = fid_handle(r, r->fid);
  char *path, *next;
  struct stat st;
  int err = 0;
  uint16_t k;
  if (!h)
    return;
  path = xstrdup(h->path);
  for (k = 0; k < r->ifcall.nwname; k++) {
    if (k && !(r->ofcall.wqid[k - 1].type & P9_QTDIR)) {
      err = -ENOTDIR;
      break;
    }
    next = join(path, r->ifcall.wname[k]);
    err = stat_path(FS(r), next, &st);
    if (err) {
      free(next);
      break;
    }
    free(path);
    path = next;
    r->ofcall.wqid[k] = qid_of(&st);
  }
  r->ofcall.nwqid = k;
  if (k < r->ifcall.nwname) {
    free(path);
  } else if (r->newfid == r->fid) {
    free(h->path); /* the fid walks itself: its handle follows */
    h->path = path;
    r->newaux = r->fid->aux;
  } else {
    r->newaux = handle_new(FS(r), path);
  }
  p9_respond(r, k == 0 ? (err ? err : -ENOENT) : 0);
}

static int open_flags(uint8_t mode, bool dir) {
  static const int acc[4] = {O_RDONLY, O_WRONLY, O_RDWR, O_RDONLY};
  if (dir)
    return O_RDONLY | O_DIRECTORY;
  return acc[mode & 3] | ((mode & P9_OTRUNC) ? O_TRUNC : 0);
}

/* Opens h's file as its fid asks; the errno, or 0. */
static int handle_open(p9_hostfs *fs, handle *h, uint8_t mode, bool dir) {
  int fd = open_beneath(fs, h->path, open_flags(mode, dir), 0);
  if (fd < 0)
    return fd == -ELOOP ? -ENOENT : fd;
  h->fd = fd;
  h->omode = mode;
  h->dpos = 0;
  return 0;
}

static void hf_open(p9_req *r) {
  handle *h = fid_handle(r, r->fid);
  struct stat st;
  int err;
  if (!h)
    return;
  err = handle_open(FS(r), h, r->ifcall.mode, r->fid->qid.type & P9_QTDIR);
  if (!err && fstat(h->fd, &st) == 0)
    r->ofcall.qid = qid_of(&st);
  p9_respond(r, err);
}

/* Creates name in h's directory and opens it; h becomes the new file. */
static int create_in(p9_hostfs *fs, handle *h, p9_req *r, struct stat *st) {
  p9_str name = r->ifcall.name;
  char *path = join(h->path, name);
  const char *last;
  int dfd = open_parent(fs, path, &last), fd, err = 0;
  bool dir = (r->ifcall.perm & P9_DMDIR) != 0;
  if (dfd < 0) {
    free(path);
    return dfd;
  }
  if (dir && mkdirat(dfd, last, r->ifcall.perm & 0777) < 0)
    err = -errno;
  fd = err ? -1
           : openat(dfd, last,
                    dir ? O_RDONLY | O_DIRECTORY | O_NOFOLLOW
                        : open_flags(r->ifcall.mode, false) | O_CREAT | O_EXCL |
                              O_NOFOLLOW,
                    r->ifcall.perm & 0777);
  if (!err && (fd < 0 || fstat(fd, st) < 0))
    err = -errno;
  close(dfd);
  if (err) {
    if (fd >= 0)
      close(fd);
    free(path);
    return err;
  }
  free(h->path);
  *h = (handle){.used = true,
                .gen = h->gen,
                .path = path,
                .fd = fd,
                .omode = r->ifcall.mode};
  return 0;
}

static void hf_create(p9_req *r) {
  handle *h = fid_handle(r, r->fid);
  struct stat st;
  int err;
  if (!h)
    return;
  if (!(err = create_in(FS(r), h, r, &st)))
    r->ofcall.qid = qid_of(&st);
  p9_respond(r, err);
}

/* Whether entry e of directory dfd is one we serve (a directory or a
 * regular file, not "." or ".."); fills st. */
static bool servable(int dfd, const struct dirent *e, struct stat *st) {
  if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
    return false;
  if (fstatat(dfd, e->d_name, st, AT_SYMLINK_NOFOLLOW) < 0)
    return false;
  return S_ISDIR(st->st_mode) || S_ISREG(st->st_mode);
}

/* Puts the stream where r->fid->dirindex says: rewound and skipped
 * forward when they differ (a first read, a restart, a restored fid). */
static int dir_seek(p9_hostfs *fs, handle *h, uint64_t want) {
  struct dirent *e;
  struct stat st;
  if (!h->dir) {
    if (h->fd < 0 && handle_open(fs, h, P9_OREAD, true) < 0)
      return -EBADF;
    if (!(h->dir = fdopendir(h->fd)))
      return -errno;
    h->dpos = 0;
  }
  if (h->dpos == want)
    return 0;
  rewinddir(h->dir);
  for (h->dpos = 0; h->dpos < want && (e = readdir(h->dir));)
    h->dpos += servable(dirfd(h->dir), e, &st);
  return 0;
}

static void read_dir(p9_req *r, handle *h) {
  struct dirent *e;
  struct stat st;
  p9_stat ps;
  long at;
  int err = dir_seek(FS(r), h, r->fid->dirindex);
  while (!err && (at = telldir(h->dir), e = readdir(h->dir))) {
    if (!servable(dirfd(h->dir), e, &st))
      continue;
    fill_stat(FS(r), &st, e->d_name, &ps);
    if (p9_dirread_put(r, &ps) < 0) {
      seekdir(h->dir, at); /* the next read starts with it */
      break;
    }
    h->dpos++;
  }
  p9_respond(r, err);
}

static void hf_read(p9_req *r) {
  handle *h = fid_handle(r, r->fid);
  ssize_t n;
  if (!h)
    return;
  if (r->fid->qid.type & P9_QTDIR) {
    read_dir(r, h);
    return;
  }
  if (h->fd < 0) {
    p9_respond_error(r, "file has been removed");
    return;
  }
  n = pread(h->fd, r->buf, r->ifcall.count, (off_t)r->ifcall.offset);
  if (n >= 0)
    r->ofcall.count = (uint32_t)n;
  p9_respond(r, n < 0 ? -errno : 0);
}

static void hf_write(p9_req *r) {
  handle *h = fid_handle(r, r->fid);
  ssize_t n;
  if (!h)
    return;
  if (h->fd < 0) {
    p9_respond_error(r, "file has been removed");
    return;
  }
  n = pwrite(h->fd, r->ifcall.data, r->ifcall.count, (off_t)r->ifcall.offset);
  if (n >= 0)
    r->ofcall.count = (uint32_t)n;
  p9_respond(r, n < 0 ? -errno : 0);
}

static int remove_path(p9_hostfs *fs, const char *path, bool dir) {
  const char *last;
  int dfd, err = 0;
  if (!*path)
    return -EPERM; /* the served directory itself */
  if ((dfd = open_parent(fs, path, &last)) < 0)
    return dfd;
  if (unlinkat(dfd, last, dir ? AT_REMOVEDIR : 0) < 0)
    err = -errno;
  close(dfd);
  return err;
}

static void hf_remove(p9_req *r) {
  handle *h = fid_handle(r, r->fid);
  if (h)
    p9_respond(r, remove_path(FS(r), h->path, r->fid->qid.type & P9_QTDIR));
}

static void hf_stat(p9_req *r) {
  handle *h = fid_handle(r, r->fid);
  struct stat st;
  int err;
  if (!h)
    return;
  err =
      h->fd >= 0 && fstat(h->fd, &st) == 0 ? 0 : stat_path(FS(r), h->path, &st);
  if (!err)
    fill_stat(FS(r), &st, base_name(h->path), &r->ofcall.stat);
  p9_respond(r, err);
}

/* Whether anything at all (a link too) is at path. */
static bool fstat_exists(p9_hostfs *fs, const char *path, struct stat *st) {
  const char *last;
  int dfd = open_parent(fs, path, &last);
  bool there;
  if (dfd < 0)
    return false;
  there = fstatat(dfd, last, st, AT_SYMLINK_NOFOLLOW) == 0;
  close(dfd);
  return there;
}

/* Every change ws asks of h's file checked first (stat(5): all or none). */
static int wstat_check(p9_hostfs *fs, handle *h, const p9_stat *ws,
                       const struct stat *st, char **newpath) {
  bool dir = S_ISDIR(st->st_mode);
  struct stat other;
  *newpath = NULL;
  if (ws->mode != ~0u && ((ws->mode & P9_DMDIR) != 0) != dir)
    return -EPERM;
  if (ws->length != ~0ull && dir && ws->length != 0)
    return -EISDIR;
  if (ws->uid.len && !p9_str_eq(ws->uid, fs->owner))
    return -EPERM;
  if (ws->gid.len && !p9_str_eq(ws->gid, fs->group))
    return -EPERM; /* the server cannot change a host file's group */
  if (!ws->name.len || p9_str_eq(ws->name, base_name(h->path)))
    return 0;
  if (!*h->path)
    return -EPERM;
  {
    char *parent = join(h->path, p9_str_c(".."));
    *newpath = join(parent, ws->name);
    free(parent);
  }
  /* "it is an error to change the name to that of an existing file" */
  return fstat_exists(fs, *newpath, &other) ? -EEXIST : 0;
}

/* Changes through an O_PATH descriptor's /proc name: chmod and utimensat
 * then reach the file opened beneath the served directory, never what a
 * link planted since would name. */
static int wstat_attrs(p9_hostfs *fs, handle *h, const p9_stat *ws) {
  int fd = open_beneath(fs, h->path, O_PATH, 0), err = 0;
  char proc[64];
  if (fd < 0)
    return fd;
  snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
  if (ws->mode != ~0u && chmod(proc, ws->mode & 0777) < 0)
    err = -errno;
  if (!err && ws->mtime != ~0u) {
    struct timespec ts[2] = {{0, UTIME_OMIT}, {ws->mtime, 0}};
    if (utimensat(AT_FDCWD, proc, ts, 0) < 0)
      err = -errno;
  }
  close(fd);
  return err;
}

static int rename_path(p9_hostfs *fs, handle *h, char *newpath) {
  const char *a, *b;
  int da = open_parent(fs, h->path, &a), db = open_parent(fs, newpath, &b);
  int err = 0;
  if (da < 0 || db < 0 || renameat2(da, a, db, b, RENAME_NOREPLACE) < 0)
    err = da < 0 ? da : db < 0 ? db : -errno;
  if (da >= 0)
    close(da);
  if (db >= 0)
    close(db);
  if (err) {
    free(newpath);
    return err;
  }
  free(h->path);
  h->path = newpath;
  return 0;
}

/* A length change of a fid not open for writing opens the file for it. */
static int truncate_path(p9_hostfs *fs, const char *path, uint64_t len) {
  int fd = open_beneath(fs, path, O_WRONLY, 0), err = 0;
  if (fd < 0)
    return fd;
  if (ftruncate(fd, (off_t)len) < 0)
    err = -errno;
  close(fd);
  return err;
}

static void hf_wstat(p9_req *r) {
  p9_hostfs *fs = FS(r);
  handle *h = fid_handle(r, r->fid);
  p9_stat *ws = &r->ifcall.stat;
  struct stat st;
  char *newpath = NULL;
  int err;
  if (!h)
    return;
  if ((err = stat_path(fs, h->path, &st)) == 0) {
    names(fs, &st);
    err = wstat_check(fs, h, ws, &st, &newpath);
  }
  if (!err && ws->length != ~0ull && !S_ISDIR(st.st_mode))
    err = truncate_path(fs, h->path, ws->length);
  if (!err)
    err = wstat_attrs(fs, h, ws);
  if (!err && newpath) {
    err = rename_path(fs, h, newpath); /* takes newpath */
    newpath = NULL;
  }
  free(newpath);
  p9_respond(r, err);
}

static void hf_destroyfid(p9_srv *srv, p9_fid *f) {
  p9_hostfs *fs = p9_srv_aux(srv);
  if (lookup(fs, f->aux))
    handle_free(fs, f->aux);
}

static uint64_t hf_clonefid(p9_srv *srv, const p9_fid *f) {
  p9_hostfs *fs = p9_srv_aux(srv);
  handle *h = lookup(fs, f->aux);
  return h ? handle_new(fs, xstrdup(h->path)) : f->aux;
}

static void hf_mkdir(p9_req *r) {
  handle *d = fid_handle(r, r->dfid);
  const char *last;
  char *path;
  struct stat st;
  int dfd, err = 0;
  if (!d)
    return;
  path = join(d->path, r->ifcall.name);
  if ((dfd = open_parent(FS(r), path, &last)) < 0)
    err = dfd;
  else if (mkdirat(dfd, last, r->ifcall.lmode & 0777) < 0 ||
           fstatat(dfd, last, &st, AT_SYMLINK_NOFOLLOW) < 0)
    err = -errno;
  if (dfd >= 0)
    close(dfd);
  if (!err)
    r->ofcall.qid = qid_of(&st);
  free(path);
  p9_respond(r, err);
}

static void hf_unlinkat(p9_req *r) {
  handle *d = fid_handle(r, r->fid);
  char *path;
  struct stat st;
  int err;
  if (!d)
    return;
  path = join(d->path, r->ifcall.name);
  err = stat_path(FS(r), path, &st);
  if (!err)
    err = remove_path(FS(r), path, S_ISDIR(st.st_mode));
  free(path);
  p9_respond(r, err);
}

static void hf_statfs(p9_req *r) {
  struct statvfs sv;
  if (fstatvfs(FS(r)->root, &sv) < 0) {
    p9_respond(r, -errno);
    return;
  }
  r->ofcall.statfs = (p9_statfs){.type = 0x01021997,
                                 .bsize = (uint32_t)sv.f_bsize,
                                 .blocks = sv.f_blocks,
                                 .bfree = sv.f_bfree,
                                 .bavail = sv.f_bavail,
                                 .files = sv.f_files,
                                 .ffree = sv.f_ffree,
                                 .fsid = sv.f_fsid,
                                 .namelen = 255};
  p9_respond(r, 0);
}

static const struct p9_srv_ops hostfs_ops = {
    .attach = hf_attach,
    .walk = hf_walk,
    .open = hf_open,
    .create = hf_create,
    .read = hf_read,
    .write = hf_write,
    .remove = hf_remove,
    .stat = hf_stat,
    .wstat = hf_wstat,
    .destroyfid = hf_destroyfid,
    .clonefid = hf_clonefid,
    .mkdir = hf_mkdir,
    .unlinkat = hf_unlinkat,
    .statfs = hf_statfs,
};

const struct p9_srv_ops *p9_hostfs_ops(void) {
  return &hostfs_ops;
}

/* --- lifetime and images ---------------------------------------------- */

p9_hostfs *p9_hostfs_new(const char *dir, int *err) {
  p9_hostfs *fs;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    *err = -errno;
    return NULL;
  }
  fs = xcalloc(1, sizeof(*fs));
  fs->root = fd;
  fs->dir = xstrdup(dir);
  fs->free = P9__NIL;
  return fs;
}

void p9_hostfs_free(p9_hostfs *fs) {
  if (!fs)
    return;
  for (uint32_t i = 0; i < fs->nh; i++)
    if (fs->h[i].used) {
      handle_close(&fs->h[i]);
      free(fs->h[i].path);
    }
  free(fs->h);
  free(fs->dir);
  close(fs->root);
  free(fs);
}

const char *p9_hostfs_dir(const p9_hostfs *fs) {
  return fs->dir;
}

void p9_hostfs_image_get(p9_hostfs *fs, p9_hostfs_image *img) {
  img->nhandle = fs->nh;
  img->handle = xmalloc((fs->nh ? fs->nh : 1) * sizeof(*img->handle));
  for (uint32_t i = 0; i < fs->nh; i++)
    img->handle[i] = (p9_hostfs_handle){.used = fs->h[i].used,
                                        .gen = fs->h[i].gen,
                                        .path = fs->h[i].path,
                                        .omode = fs->h[i].omode};
}

void p9_hostfs_image_free(p9_hostfs_image *img) {
  free(img->handle);
  memset(img, 0, sizeof(*img));
}

/* A path an image may hold: names joined by '/', none empty, "." or "..". */
static bool path_ok(const char *p) {
  const char *e;
  if (!*p)
    return true;
  for (;; p = e + 1) {
    e = strchr(p, '/');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (n == 0 || n > 255 || (n == 1 && p[0] == '.') ||
        (n == 2 && p[0] == '.' && p[1] == '.'))
      return false;
    if (!e)
      return true;
  }
}

/* An open handle is opened again as its fid had it, without truncating:
 * a file gone since reads as removed. */
static void handle_in(p9_hostfs *fs, uint32_t i, const p9_hostfs_handle *s) {
  handle *h = &fs->h[i];
  struct stat st;
  *h = (handle){
      .used = s->used, .gen = s->gen ? s->gen : 1, .fd = -1, .omode = P9_ONONE};
  if (!s->used) {
    h->next = fs->free;
    fs->free = i;
    return;
  }
  h->path = xstrdup(s->path);
  if (s->omode != P9_ONONE && stat_path(fs, h->path, &st) == 0)
    handle_open(fs, h, s->omode & ~P9_OTRUNC, S_ISDIR(st.st_mode));
  h->omode = s->omode;
}

p9_hostfs *p9_hostfs_load(const char *dir, const p9_hostfs_image *img,
                          int *err) {
  p9_hostfs *fs;
  for (uint32_t i = 0; i < img->nhandle; i++)
    if (img->handle[i].used &&
        (!img->handle[i].path || !path_ok(img->handle[i].path))) {
      *err = -EINVAL;
      return NULL;
    }
  if (!(fs = p9_hostfs_new(dir, err)))
    return NULL;
  fs->h = xmalloc((img->nhandle ? img->nhandle : 1) * sizeof(*fs->h));
  fs->nh = fs->cap = img->nhandle;
  for (uint32_t i = img->nhandle; i-- > 0;)
    handle_in(fs, i, &img->handle[i]);
  if (!fs->cap) {
    free(fs->h);
    fs->h = NULL;
  }
  return fs;
}
