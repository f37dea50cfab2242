/* libuksim's namespace calls (uksim/ns.h): each is one KABI_NS call with
 * its paths and small data in this process's ns control ICA, created at
 * the first call and kept for the life of the process.  A read or write of
 * more than NS_SMALL bytes goes through a data ICA, kept too and grown as
 * needed (ns_read_ica and ns_write_ica take the caller's own).
 *
 * The two ICAs are the process's, shared by its threads: a call writes its
 * paths and data into them, makes the call and reads its answer out of
 * them, all under the library's lock (lock.c), so that another thread's
 * call cannot overwrite them in between.
 *
 * The calls that shape the process's kernel state (opens, closes, dups,
 * pipes, binds, mounts, seeks, moving reads and writes) are noted in its
 * replay journal (uksim/journal.h) under the same lock, with the call's
 * result, so that the journal's order is the kernel's. */
#include "uksim/ns.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "conn.h"
#include "journal_int.h"
#include "lock.h"
#include "uksim/kdata.h"

/* Room for two paths and a small write, or a small read. */
#define CTL_SIZE (KABI_NS_SMALL + 2 * (UK_PATH_MAX + 1) + 1024)

static uk_ica ctl;  /* the ns control ICA */
static uk_ica bulk; /* the data ICA of large ns_read/ns_write */

static int ctl_ready(void) {
  return ctl.base != NULL ? 0 : ica_create(CTL_SIZE, KABI_ICA_CONTROL, &ctl);
}

/* Puts the paths at the start of the control ICA. */
static int put_paths(struct kabi_ns_args *a, const char *p0, const char *p1) {
  size_t n0 = p0 ? strlen(p0) : 0, n1 = p1 ? strlen(p1) : 0;
  if (n0 > UK_PATH_MAX || n1 > UK_PATH_MAX)
    return -ENAMETOOLONG;
  memcpy(ctl.base, p0 ? p0 : "", n0);
  memcpy((char *)ctl.base + n0, p1 ? p1 : "", n1);
  a->len[0] = (uint32_t)n0;
  a->len[1] = (uint32_t)n1;
  return 0;
}

/* Makes the call; *ans gets the answer's payload. */
static long ns_call(struct kabi_ns_args *a, struct kabi_ns_ans *ans) {
  kabi_msg m;
  struct kabi_ns_ans none;
  if (ans == NULL)
    ans = &none;
  a->ctl = ctl.id;
  kabi_msg_init(&m, KABI_NS, 0, 0, a, sizeof *a);
  int r = uk__call(&m);
  kabi_msg_close_fds(&m);
  if (r < 0)
    return r;
  if (kabi_payload(&m, ans, sizeof *ans) < 0)
    return -EPROTO;
  return (long)ans->ret;
}

static long paths_locked(uint32_t call, const char *p0, const char *p1,
                         struct kabi_ns_args *a, struct kabi_ns_ans *ans) {
  int r = ctl_ready();
  if (r < 0)
    return r;
  a->call = call;
  if ((r = put_paths(a, p0, p1)) < 0)
    return r;
  return ns_call(a, ans);
}

static long fd_locked(uint32_t call, int fd, struct kabi_ns_args *a,
                      struct kabi_ns_ans *ans) {
  int r = ctl_ready();
  if (r < 0)
    return r;
  a->call = call;
  a->fd = fd;
  return ns_call(a, ans);
}

/* A call with paths p0 and p1 (either may be NULL), under the lock: the
 * paths go through the control ICA. */
static long call_paths(uint32_t call, const char *p0, const char *p1,
                       struct kabi_ns_args *a, struct kabi_ns_ans *ans) {
  uk__lock();
  long r = paths_locked(call, p0, p1, a, ans);
  uk__unlock();
  return r;
}

/* A call on fd, under the lock: its answer may be in the control ICA. */
static long call_fd(uint32_t call, int fd, struct kabi_ns_args *a,
                    struct kabi_ns_ans *ans) {
  uk__lock();
  long r = fd_locked(call, fd, a, ans);
  uk__unlock();
  return r;
}

/* An open or create, noted: the journal keeps it as an open (the file
 * exists from now on). */
static int open_noted(uint32_t call, const char *path, int mode,
                      struct kabi_ns_args *a) {
  uk__lock();
  int r = (int)call_paths(call, path, NULL, a, NULL);
  uk_journal_open(uk__journal(), path, mode, r);
  uk__unlock();
  return r;
}

int ns_open(const char *path, int mode) {
  struct kabi_ns_args a = {.flags = (uint32_t)mode};
  return open_noted(KABI_NS_OPEN, path, mode, &a);
}

int ns_create(const char *path, int mode, uint32_t perm) {
  struct kabi_ns_args a = {.flags = (uint32_t)mode, .perm = perm};
  return open_noted(KABI_NS_CREATE, path, mode, &a);
}

/* A data ICA of at least n bytes for a large read or write. */
static int bulk_ready(size_t n) {
  if (bulk.base != NULL && bulk.size >= n)
    return 0;
  if (bulk.base != NULL)
    ica_release(&bulk);
  size_t size = 1u << 16;
  while (size < n)
    size *= 2;
  return ica_create(size, KABI_ICA_DATA, &bulk);
}

static long io_locked(uint32_t call, int fd, void *buf, size_t n,
                      uint64_t off) {
  bool write = call == KABI_NS_WRITE;
  if (n > UINT32_MAX)
    n = UINT32_MAX;
  int r = ctl_ready();
  if (r < 0)
    return r;
  if (n > KABI_NS_SMALL && (r = bulk_ready(n)) < 0)
    return r;
  uk_ica *data = n > KABI_NS_SMALL ? &bulk : NULL;
  uint8_t *at = data ? data->base : ctl.base;
  struct kabi_ns_args a = {
      .n = (uint32_t)n, .off = off, .data = data ? data->id : KABI_ICA_NONE};
  struct kabi_ns_ans ans;
  if (write)
    memcpy(at, buf, n);
  long got = fd_locked(call, fd, &a, &ans);
  if (!write && got > 0) {
    if ((size_t)got > n)
      return -EPROTO;
    memcpy(buf, data ? (uint8_t *)data->base : (uint8_t *)ctl.base + ans.at,
           (size_t)got);
  }
  return got;
}

/* A read or write: the data goes through the control or the bulk ICA. */
static long io(uint32_t call, int fd, void *buf, size_t n, uint64_t off) {
  uk__lock();
  long r = io_locked(call, fd, buf, n, off);
  uk_journal_io(uk__journal(), fd, off, r);
  uk__unlock();
  return r;
}

long ns_read(int fd, void *buf, size_t n) {
  return io(KABI_NS_READ, fd, buf, n, KABI_NS_OFF_CUR);
}

long ns_write(int fd, const void *buf, size_t n) {
  return io(KABI_NS_WRITE, fd, (void *)buf, n, KABI_NS_OFF_CUR);
}

long ns_pread(int fd, void *buf, size_t n, uint64_t off) {
  return off == KABI_NS_OFF_CUR ? -EINVAL : io(KABI_NS_READ, fd, buf, n, off);
}

long ns_pwrite(int fd, const void *buf, size_t n, uint64_t off) {
  return off == KABI_NS_OFF_CUR ? -EINVAL
                                : io(KABI_NS_WRITE, fd, (void *)buf, n, off);
}

static long io_ica(uint32_t call, int fd, uk_ica *data, size_t n,
                   uint64_t off) {
  if (data == NULL || data->base == NULL || n > data->size || n > UINT32_MAX)
    return -EINVAL;
  struct kabi_ns_args a = {.n = (uint32_t)n, .off = off, .data = data->id};
  uk__lock();
  long r = call_fd(call, fd, &a, NULL);
  uk_journal_io(uk__journal(), fd, off, r);
  uk__unlock();
  return r;
}

long ns_read_ica(int fd, uk_ica *data, size_t n, uint64_t off) {
  return io_ica(KABI_NS_READ, fd, data, n, off);
}

long ns_write_ica(int fd, uk_ica *data, size_t n, uint64_t off) {
  return io_ica(KABI_NS_WRITE, fd, data, n, off);
}

int64_t ns_seek(int fd, int64_t off, int whence) {
  struct kabi_ns_args a = {.off = (uint64_t)off, .flags = (uint32_t)whence};
  uk__lock();
  int64_t r = call_fd(KABI_NS_SEEK, fd, &a, NULL);
  uk_journal_seek(uk__journal(), fd, r);
  uk__unlock();
  return r;
}

int ns_close(int fd) {
  struct kabi_ns_args a = {0};
  uk__lock();
  int r = (int)call_fd(KABI_NS_CLOSE, fd, &a, NULL);
  uk_journal_close(uk__journal(), fd, r);
  uk__unlock();
  return r;
}

long ns_dirread(int fd, ns_dir *d, size_t nd) {
  size_t max = KABI_NS_SMALL / sizeof *d;
  long n = ns_read(fd, d, (nd < max ? nd : max) * sizeof *d);
  return n < 0 ? n : n / (long)sizeof *d;
}

static int stat_answer(long r, const struct kabi_ns_ans *ans, ns_dir *d) {
  if (r < 0)
    return (int)r;
  if (r != sizeof *d || ans->at + sizeof *d > ctl.size)
    return -EPROTO;
  memcpy(d, (uint8_t *)ctl.base + ans->at, sizeof *d);
  d->name[sizeof d->name - 1] = '\0';
  return 0;
}

int ns_stat(const char *path, ns_dir *d) {
  struct kabi_ns_args a = {0};
  struct kabi_ns_ans ans;
  uk__lock(); /* the answer is read out of the control ICA */
  int r = stat_answer(call_paths(KABI_NS_STAT, path, NULL, &a, &ans), &ans, d);
  uk__unlock();
  return r;
}

int ns_fstat(int fd, ns_dir *d) {
  struct kabi_ns_args a = {0};
  struct kabi_ns_ans ans;
  uk__lock(); /* the answer is read out of the control ICA */
  int r = stat_answer(call_fd(KABI_NS_FSTAT, fd, &a, &ans), &ans, d);
  uk__unlock();
  return r;
}

void ns_dir_keep(ns_dir *d) {
  memset(d, 0, sizeof *d);
  d->qid_path = KABI_DIR_KEEP64;
  d->qid_vers = KABI_DIR_KEEP32;
  d->mode = KABI_DIR_KEEP32;
  d->atime = d->mtime = KABI_DIR_KEEP32;
  d->length = KABI_DIR_KEEP64;
}

static int wstat_locked(const char *path, const ns_dir *d) {
  struct kabi_ns_args a = {0};
  int r = ctl_ready();
  if (r < 0)
    return r;
  a.call = KABI_NS_WSTAT;
  if ((r = put_paths(&a, path, NULL)) < 0)
    return r;
  memcpy((uint8_t *)ctl.base + a.len[0], d, sizeof *d);
  return (int)ns_call(&a, NULL);
}

int ns_wstat(const char *path, const ns_dir *d) {
  uk__lock();
  int r = wstat_locked(path, d);
  uk__unlock();
  return r;
}

int ns_remove(const char *path) {
  struct kabi_ns_args a = {0};
  return (int)call_paths(KABI_NS_REMOVE, path, NULL, &a, NULL);
}

int ns_chdir(const char *path) {
  struct kabi_ns_args a = {0};
  uk__lock();
  int r = (int)call_paths(KABI_NS_CHDIR, path, NULL, &a, NULL);
  uk_journal_chdir(uk__journal(), path, r);
  uk__unlock();
  return r;
}

static int fd2path_locked(int fd, char *buf, size_t len) {
  struct kabi_ns_args a = {0};
  struct kabi_ns_ans ans;
  long r = fd_locked(KABI_NS_FD2PATH, fd, &a, &ans);
  if (r < 0)
    return (int)r;
  if ((size_t)r + 1 > len)
    return -ERANGE;
  if (ans.at + (size_t)r > ctl.size)
    return -EPROTO;
  memcpy(buf, (uint8_t *)ctl.base + ans.at, (size_t)r);
  buf[r] = '\0';
  return 0;
}

int ns_fd2path(int fd, char *buf, size_t len) {
  uk__lock();
  int r = fd2path_locked(fd, buf, len);
  uk__unlock();
  return r;
}

int ns_dup(int oldfd, int newfd) {
  struct kabi_ns_args a = {.fd2 = newfd < 0 ? -1 : newfd};
  uk__lock();
  int r = (int)call_fd(KABI_NS_DUP, oldfd, &a, NULL);
  uk_journal_dup(uk__journal(), oldfd, r);
  uk__unlock();
  return r;
}

int ns_pipe(int fd[2]) {
  struct kabi_ns_args a = {0};
  uk__lock();
  long r = call_fd(KABI_NS_PIPE, -1, &a, NULL);
  if (r >= 0) {
    fd[0] = (int)(r & 0xffff);
    fd[1] = (int)(r >> 16);
    uk_journal_pipe(uk__journal(), fd, 0);
  }
  uk__unlock();
  return r < 0 ? (int)r : 0;
}

int ns_bind(const char *new_, const char *old, int flag) {
  struct kabi_ns_args a = {.flags = (uint32_t)flag};
  uk__lock();
  int r = (int)call_paths(KABI_NS_BIND, new_, old, &a, NULL);
  uk_journal_bind(uk__journal(), new_, old, flag, r);
  uk__unlock();
  return r;
}

int ns_mount(int fd, const char *old, int flag, const char *aname) {
  struct kabi_ns_args a = {.fd = fd, .flags = (uint32_t)flag};
  uk__lock();
  int r = (int)call_paths(KABI_NS_MOUNT, old, aname ? aname : "", &a, NULL);
  uk_journal_mount(uk__journal(), fd, old, flag, aname, r);
  uk__unlock();
  return r;
}

int ns_mount_addr(const char *addr, const char *old, int flag,
                  const char *aname) {
  char spec[UK_PATH_MAX + 1];
  int n = snprintf(spec, sizeof spec, "%s%s%s", addr,
                   aname && aname[0] ? " " : "", aname ? aname : "");
  if (n < 0 || n > UK_PATH_MAX || strchr(addr, ' '))
    return n > UK_PATH_MAX ? -ENAMETOOLONG : -EINVAL;
  struct kabi_ns_args a = {.fd = -1, .flags = (uint32_t)flag};
  uk__lock();
  int r = (int)call_paths(KABI_NS_MOUNT, old, spec, &a, NULL);
  uk_journal_mount_addr(uk__journal(), spec, old, flag, r);
  uk__unlock();
  return r;
}

int ns_unmount(const char *new_, const char *old) {
  struct kabi_ns_args a = {0};
  uk__lock();
  int r = (int)call_paths(KABI_NS_UNMOUNT, new_, old, &a, NULL);
  uk_journal_unmount(uk__journal(), new_, old, r);
  uk__unlock();
  return r;
}

int ns_rfork(int flags) {
  struct kabi_ns_args a = {.flags = (uint32_t)flags};
  uk__lock();
  int r = (int)call_fd(KABI_NS_RFORK, -1, &a, NULL);
  uk_journal_rfork(uk__journal(), flags, r);
  uk__unlock();
  return r;
}

int ns_import(const char *addr, const char *remote, const char *local,
              int flag) {
  return ns_mount_addr(addr, local, flag, remote); /* aname: the path */
}

const char *ns_import_strerror(int err) {
  if (err == -EACCES)
    return "the exporter wants a key this node does not prove (boot this "
           "node with --node-key FILE, the exporter's --key)";
  return strerror(-err);
}

bool ns_kernel_gone(void) {
  return uk__kernel_gone();
}
