/* #e — environment variables per namespace group (Plan 9's port/devenv.c,
 * with the group being the namespace group rather than Plan 9's separate
 * Egrp: an RFNAMEG child gets a copy, RFCNAMEG an empty environment, and a
 * shared group shares its variables).
 *
 * The variables of every group live in one pool, env[UK_ENV_MAX] in the
 * region, each naming its group by id; a group holds at most
 * UK_ENV_NS_MAX.  A variable's qid path is its slot + 1 with the slot's
 * generation above bit 32, so a chan on a removed variable does not reach
 * whatever takes the slot next.  The root (qid path 0) lists and walks the
 * variables of the caller's group (dev.h convention 2: vfs_up), so a '#e'
 * bound in a namespace shows each process its own environment; an open
 * variable stays that variable whatever group its reader is in later.
 *
 * Values are bytes (a NUL is a byte like any other), at most
 * UK_ENV_VAL_MAX of them (-EFBIG, nothing written); a write at an offset
 * past the end fills the gap with zeros; OTRUNC empties on open.
 */
#include <errno.h>
#include <string.h>

#include "dev.h"
#include "vfs.h"
#include "vfs_int.h"

/* The caller's group id, or UK_VFS_NONE. */
static uint32_t caller_ns(const struct uk_kdata *kd) {
  uint32_t up = vfs_up();
  if (up >= UK_PROC_MAX || !kd->vfs.vproc[up].attached)
    return UK_VFS_NONE;
  return kd->vfs.vproc[up].ns;
}

/* The slot of the LIVE variable chan c names, or -ENOENT. */
static int var_slot(const struct uk_kdata *kd, const struct uk_chan *c) {
  int i = vfs__qslot(c->qid.path, UK_ENV_MAX);
  if (i < 0)
    return -ENOENT;
  const struct uk_envvar *v = &kd->vfs.env[i];
  if (v->state != UK_ENV_LIVE || v->gen != VFS_QGEN(c->qid.path))
    return -ENOENT;
  return i;
}

static void var_dir(const struct uk_kdata *kd, int i, struct vfs_dir *d) {
  const struct uk_envvar *v = &kd->vfs.env[i];
  vfs__dir(d, VFS_QPATH(i, v->gen), 0, 0664u, v->len, v->name);
}

/* The slot of the n-th (0, 1, ...) variable of group ns, or -1. */
static int nth_var(const struct uk_kdata *kd, uint32_t ns, int n) {
  for (int i = 0; ns != UK_VFS_NONE && i < UK_ENV_MAX; i++)
    if (kd->vfs.env[i].state == UK_ENV_LIVE && kd->vfs.env[i].ns == ns &&
        n-- == 0)
      return i;
  return -1;
}

static int envgen(const struct uk_kdata *kd, const struct uk_chan *c, int i,
                  struct vfs_dir *d) {
  if (i == VFS_GEN_PARENT || (i == VFS_GEN_SELF && c->qid.path == 0)) {
    vfs__dir(d, 0, UK_QTDIR, VFS_DMDIR | 0775u, 0, "#e");
    return 1;
  }
  int s = i == VFS_GEN_SELF ? var_slot(kd, c) : -1;
  if (i >= 0 && c->qid.path == 0)
    s = nth_var(kd, caller_ns(kd), i);
  if (s < 0)
    return 0;
  var_dir(kd, s, d);
  return 1;
}

/* The slot of variable `name` of group ns, or -1. */
static int var_find(const struct uk_kdata *kd, uint32_t ns, const char *name) {
  for (int i = 0; i < UK_ENV_MAX; i++) {
    const struct uk_envvar *v = &kd->vfs.env[i];
    if (v->state == UK_ENV_LIVE && v->ns == ns && strcmp(v->name, name) == 0)
      return i;
  }
  return -1;
}

static uint32_t group_vars(const struct uk_kdata *kd, uint32_t ns) {
  uint32_t n = 0;
  for (int i = 0; i < UK_ENV_MAX; i++)
    n += kd->vfs.env[i].state == UK_ENV_LIVE && kd->vfs.env[i].ns == ns;
  return n;
}

/* A free slot made LIVE for group ns, value empty: its index, or -1. */
static int var_alloc(struct uk_kdata *kd, uint32_t ns, const char *name) {
  for (int i = 0; i < UK_ENV_MAX; i++) {
    struct uk_envvar *v = &kd->vfs.env[i];
    if (v->state != UK_ENV_FREE)
      continue;
    uint16_t gen = (uint16_t)(v->gen + 1);
    memset(v, 0, sizeof *v);
    v->gen = gen != 0 ? gen : 1;
    v->state = UK_ENV_LIVE;
    v->ns = ns;
    strcpy(v->name, name);
    return i;
  }
  return -1;
}

static void var_free(struct uk_envvar *v) {
  uint16_t gen = v->gen;
  memset(v, 0, sizeof *v);
  v->gen = gen;
}

static int check_mode(uint8_t mode) {
  if (mode & ~(3u | VFS_OTRUNC | VFS_ORCLOSE))
    return -EINVAL;
  return mode & VFS_ORCLOSE ? -EPERM : 0;
}

static int envcreate(struct uk_kdata *kd, struct uk_chan *dir, const char *name,
                     uint32_t perm, uint8_t mode) {
  uint32_t ns = caller_ns(kd);
  int r = vfs__check_name(name, UK_ENV_NAME_MAX);
  if (r == 0)
    r = check_mode(mode);
  if (r < 0)
    return r;
  if (perm & VFS_DMDIR)
    return -EPERM; /* no directories in #e */
  if (ns == UK_VFS_NONE)
    return -ESRCH;
  if (var_find(kd, ns, name) >= 0)
    return -EEXIST;
  if (group_vars(kd, ns) >= UK_ENV_NS_MAX)
    return -ENOSPC;
  int i = var_alloc(kd, ns, name);
  if (i < 0)
    return -ENOSPC;
  vfs__created(dir, VFS_QPATH(i, kd->vfs.env[i].gen), mode, name);
  return 0;
}

static int envopen(struct uk_kdata *kd, struct uk_chan *c, uint8_t mode) {
  if (c->qid.path == 0)
    return vfs_devopen(kd, c, mode);
  int r = check_mode(mode), i = var_slot(kd, c);
  if (r < 0)
    return r;
  if (i < 0)
    return i;
  if ((mode & VFS_OTRUNC) && (mode & 3u) != VFS_OREAD)
    kd->vfs.env[i].len = 0;
  c->mode = mode;
  c->flags |= UK_CHAN_F_OPEN;
  c->offset = 0;
  return 0;
}

static long envread(struct uk_kdata *kd, const struct uk_chan *c, void *buf,
                    uint32_t n, uint64_t off) {
  if (c->qid.path == 0)
    return vfs_devdirread(kd, c, buf, n, off);
  int i = var_slot(kd, c);
  if (i < 0)
    return i;
  return vfs__read_str(buf, n, off, kd->vfs.env[i].val, kd->vfs.env[i].len);
}

static long envwrite(struct uk_kdata *kd, struct uk_chan *c, const void *buf,
                     uint32_t n, uint64_t off) {
  int i = var_slot(kd, c);
  if (i < 0)
    return i;
  struct uk_envvar *v = &kd->vfs.env[i];
  if (off > UK_ENV_VAL_MAX || n > UK_ENV_VAL_MAX - off)
    return -EFBIG;
  if (off > v->len)
    memset(v->val + v->len, 0, (size_t)off - v->len);
  memcpy(v->val + off, buf, n);
  if (off + n > v->len)
    v->len = (uint32_t)(off + n);
  return (long)n;
}

static int envremove(struct uk_kdata *kd, struct uk_chan *c) {
  if (c->qid.path == 0)
    return -EPERM;
  int i = var_slot(kd, c);
  if (i < 0)
    return i;
  var_free(&kd->vfs.env[i]);
  return 0;
}

bool vfs__env_fits(const struct uk_kdata *kd, uint32_t from) {
  uint32_t free = 0;
  for (int i = 0; i < UK_ENV_MAX; i++)
    free += kd->vfs.env[i].state == UK_ENV_FREE;
  return group_vars(kd, from) <= free;
}

void vfs__env_copy(struct uk_kdata *kd, uint32_t from, uint32_t to) {
  for (int i = 0; i < UK_ENV_MAX; i++) {
    const struct uk_envvar *v = &kd->vfs.env[i];
    if (v->state != UK_ENV_LIVE || v->ns != from)
      continue;
    int j = var_alloc(kd, to, v->name); /* vfs__env_fits said there is room */
    kd->vfs.env[j].len = v->len;
    memcpy(kd->vfs.env[j].val, v->val, v->len);
  }
}

void vfs__env_free(struct uk_kdata *kd, uint32_t ns) {
  for (int i = 0; i < UK_ENV_MAX; i++)
    if (kd->vfs.env[i].state == UK_ENV_LIVE && kd->vfs.env[i].ns == ns)
      var_free(&kd->vfs.env[i]);
}

const struct vfs_dev vfs_envdev = {
    .dc = 'e',
    .name = "env",
    .gen = envgen,
    .open = envopen,
    .read = envread,
    .write = envwrite,
    .create = envcreate,
    .remove = envremove,
};
