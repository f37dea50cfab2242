/* Processes' namespaces and descriptor tables (vfs.h "Processes",
 * "Descriptors").
 *
 * vproc[p] is the namespace half of process p: its group, root and cwd
 * chans and UK_FD_MAX descriptors, each holding one chan reference.  A
 * process that was never attached, or was released, is all zero.  The only
 * step that can fail in a fork is getting the child's group, so it comes
 * first and the references follow.
 */
#include <errno.h>
#include <string.h>

#include "vfs.h"
#include "vfs_int.h"

/* The attached process p, or NULL. */
static struct uk_vproc *vproc(struct uk_kdata *kd, uint32_t p) {
  if (p >= UK_PROC_MAX || !kd->vfs.vproc[p].attached)
    return NULL;
  return &kd->vfs.vproc[p];
}

static bool fd_valid(const struct uk_vproc *v, int fd) {
  return fd >= 0 && fd < UK_FD_MAX && v->fd[fd] != UK_VFS_NONE;
}

static int fd_lowest_free(const struct uk_vproc *v) {
  for (int i = 0; i < UK_FD_MAX; i++)
    if (v->fd[i] == UK_VFS_NONE)
      return i;
  return -EMFILE;
}

int vfs_proc_attach(struct uk_kdata *kd, uint32_t p, uint32_t ns, uint32_t root,
                    uint32_t cwd) {
  if (p >= UK_PROC_MAX)
    return -ESRCH;
  if (kd->vfs.vproc[p].attached)
    return -EBUSY;
  if (vfs_ns_lookup(kd, ns) < 0)
    return -EINVAL;
  if (vfs_chan_lookup(kd, root) < 0 || vfs_chan_lookup(kd, cwd) < 0)
    return -EBADF;
  struct uk_vproc *v = &kd->vfs.vproc[p];
  vfs_ns_ref(kd, ns);
  vfs_chan_ref(kd, root);
  vfs_chan_ref(kd, cwd);
  v->attached = 1;
  v->ns = ns;
  v->root = root;
  v->cwd = cwd;
  return 0;
}

/* A group for a process whose current one is ns, as rfflags ask: shared
 * (a new reference), a copy, or a clean one. */
static int ns_for(struct uk_kdata *kd, uint32_t ns, uint32_t rfflags,
                  uint32_t *out) {
  if (rfflags & VFS_RFNAMEG)
    return vfs_ns_copy(kd, ns, out);
  if (rfflags & VFS_RFCNAMEG)
    return vfs_ns_new(kd, out);
  *out = ns;
  return vfs_ns_ref(kd, ns);
}

static int check_rfflags(uint32_t rfflags) {
  const uint32_t names = VFS_RFNAMEG | VFS_RFCNAMEG;
  const uint32_t fds = VFS_RFFDG | VFS_RFCFDG;
  if ((rfflags & ~(names | fds)) != 0 || (rfflags & names) == names ||
      (rfflags & fds) == fds)
    return -EINVAL;
  return 0;
}

int vfs_proc_fork(struct uk_kdata *kd, uint32_t parent, uint32_t child,
                  uint32_t rfflags) {
  int r = check_rfflags(rfflags);
  if (r < 0)
    return r;
  const struct uk_vproc *pv = vproc(kd, parent);
  if (pv == NULL || child >= UK_PROC_MAX)
    return -ESRCH;
  if (kd->vfs.vproc[child].attached)
    return -EBUSY;
  uint32_t ns;
  r = ns_for(kd, pv->ns, rfflags, &ns);
  if (r < 0)
    return r;
  struct uk_vproc *cv = &kd->vfs.vproc[child];
  cv->attached = 1;
  cv->ns = ns;
  cv->root = pv->root;
  cv->cwd = pv->cwd;
  vfs_chan_ref(kd, cv->root);
  vfs_chan_ref(kd, cv->cwd);
  for (int i = 0; i < UK_FD_MAX && !(rfflags & VFS_RFCFDG); i++)
    if (pv->fd[i] != UK_VFS_NONE) {
      cv->fd[i] = pv->fd[i];
      vfs_chan_ref(kd, cv->fd[i]);
    }
  return 0;
}

static void close_all(struct uk_kdata *kd, struct uk_vproc *v, int *clunks) {
  for (int i = 0; i < UK_FD_MAX; i++)
    if (v->fd[i] != UK_VFS_NONE) {
      vfs__unref(kd, v->fd[i], clunks);
      v->fd[i] = UK_VFS_NONE;
    }
}

int vfs_proc_rfork(struct uk_kdata *kd, uint32_t p, uint32_t rfflags) {
  int r = check_rfflags(rfflags);
  if (r < 0)
    return r;
  struct uk_vproc *v = vproc(kd, p);
  if (v == NULL)
    return -ESRCH;
  int clunks = 0;
  if (rfflags & (VFS_RFNAMEG | VFS_RFCNAMEG)) {
    uint32_t ns;
    r = ns_for(kd, v->ns, rfflags, &ns);
    if (r < 0)
      return r;
    r = vfs_ns_unref(kd, v->ns);
    clunks += r > 0 ? r : 0;
    v->ns = ns;
  }
  if (rfflags & VFS_RFCFDG)
    close_all(kd, v, &clunks);
  return clunks;
}

int vfs_proc_release(struct uk_kdata *kd, uint32_t p) {
  struct uk_vproc *v = vproc(kd, p);
  if (v == NULL)
    return -ESRCH;
  int clunks = 0;
  close_all(kd, v, &clunks);
  vfs__unref(kd, v->cwd, &clunks);
  vfs__unref(kd, v->root, &clunks);
  int r = vfs_ns_unref(kd, v->ns);
  clunks += r > 0 ? r : 0;
  memset(v, 0, sizeof *v);
  return clunks;
}

int vfs_chdir(struct uk_kdata *kd, uint32_t p, uint32_t c) {
  struct uk_vproc *v = vproc(kd, p);
  if (v == NULL)
    return -ESRCH;
  if (vfs_chan_lookup(kd, c) < 0)
    return -EBADF;
  if (!vfs_chan_isdir(kd, c))
    return -ENOTDIR;
  int clunks = 0;
  vfs_chan_ref(kd, c);
  vfs__unref(kd, v->cwd, &clunks);
  v->cwd = c;
  return clunks;
}

int vfs_fd_new(struct uk_kdata *kd, uint32_t p, uint32_t c, int *fd) {
  struct uk_vproc *v = vproc(kd, p);
  if (v == NULL)
    return -ESRCH;
  if (vfs_chan_lookup(kd, c) < 0)
    return -EBADF;
  int i = fd_lowest_free(v);
  if (i < 0)
    return i;
  v->fd[i] = c; /* the caller's reference; dropped in vfs_fd_close */
  *fd = i;
  return 0;
}

uint32_t vfs_fd_lookup(const struct uk_kdata *kd, uint32_t p, int fd) {
  if (p >= UK_PROC_MAX || !kd->vfs.vproc[p].attached ||
      !fd_valid(&kd->vfs.vproc[p], fd))
    return UK_VFS_NONE;
  return kd->vfs.vproc[p].fd[fd];
}

int vfs_fd_dup(struct uk_kdata *kd, uint32_t p, int oldfd, int newfd, int *fd) {
  struct uk_vproc *v = vproc(kd, p);
  if (v == NULL)
    return -ESRCH;
  if (!fd_valid(v, oldfd) || newfd < -1 || newfd >= UK_FD_MAX)
    return -EBADF;
  if (newfd == -1 && (newfd = fd_lowest_free(v)) < 0)
    return newfd;
  *fd = newfd;
  if (newfd == oldfd)
    return 0;
  int clunks = 0;
  vfs_chan_ref(kd, v->fd[oldfd]);
  if (v->fd[newfd] != UK_VFS_NONE)
    vfs__unref(kd, v->fd[newfd], &clunks);
  v->fd[newfd] = v->fd[oldfd];
  return clunks;
}

int vfs_fd_close(struct uk_kdata *kd, uint32_t p, int fd) {
  struct uk_vproc *v = vproc(kd, p);
  if (v == NULL)
    return -ESRCH;
  if (!fd_valid(v, fd))
    return -EBADF;
  int clunks = 0;
  vfs__unref(kd, v->fd[fd], &clunks);
  v->fd[fd] = UK_VFS_NONE;
  return clunks;
}
