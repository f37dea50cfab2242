/* #s — the server registry /srv (seed 002 §4.3, Plan 9's port/devsrv.c).
 *
 * An entry is an open server link: in uksim, a service of the kernel's
 * server info table.  A server posts itself as Plan 9's do, in two steps:
 * create "#s/NAME", then write its service's name ("ramfs") into it; a read
 * gives the name back (no newline), remove unposts.  The kernel's mount
 * asks vfs_srv_lookup which service an entry names.  The entries are one
 * table for the whole kernel (Plan 9's #s is global too), srv[UK_SRV_MAX]
 * in the region; a posted entry keeps the service's index and the
 * generation it had, so an entry whose service went (the slot freed or
 * reused) is told from a live one.  A service being replaced or restarted
 * keeps its slot and generation: its entries stay good.
 *
 * A post is one write at offset 0 of the whole name (a trailing newline
 * dropped): an unknown service is -ENOENT, a second post or one at an
 * offset -EBUSY.  Qid paths as #e's (vfs_int.h VFS_QPATH): slot + 1, the
 * slot's generation above bit 32.  Anyone may post or remove (no owners
 * yet).
 */
#include <errno.h>
#include <string.h>

#include "dev.h"
#include "vfs_int.h"

/* The slot of the entry chan c names, or -ENOENT if it went. */
static int ent_slot(const struct uk_kdata *kd, const struct uk_chan *c) {
  int i = vfs__qslot(c->qid.path, UK_SRV_MAX);
  if (i < 0 || kd->vfs.srv[i].state == UK_SRV_FREE ||
      kd->vfs.srv[i].gen != VFS_QGEN(c->qid.path))
    return -ENOENT;
  return i;
}

static void ent_dir(const struct uk_kdata *kd, int i, struct vfs_dir *d) {
  const struct uk_srvent *e = &kd->vfs.srv[i];
  vfs__dir(d, VFS_QPATH(i, e->gen), 0, 0666u, strlen(e->posted), e->name);
}

static int srvgen(const struct uk_kdata *kd, const struct uk_chan *c, int i,
                  struct vfs_dir *d) {
  if (i == VFS_GEN_PARENT || (i == VFS_GEN_SELF && c->qid.path == 0)) {
    vfs__dir(d, 0, UK_QTDIR, VFS_DMDIR | 0777u, 0, "#s");
    return 1;
  }
  if (i == VFS_GEN_SELF) {
    int s = ent_slot(kd, c);
    if (s >= 0)
      ent_dir(kd, s, d);
    return s >= 0;
  }
  for (int s = 0; c->qid.path == 0 && s < UK_SRV_MAX; s++)
    if (kd->vfs.srv[s].state != UK_SRV_FREE && i-- == 0) {
      ent_dir(kd, s, d);
      return 1;
    }
  return 0;
}

static int srvcreate(struct uk_kdata *kd, struct uk_chan *dir, const char *name,
                     uint32_t perm, uint8_t mode) {
  int r = vfs__check_name(name, UK_SRV_NAME_MAX), slot = -1;
  if (r < 0)
    return r;
  if (perm & VFS_DMDIR)
    return -EPERM;
  for (int i = 0; i < UK_SRV_MAX; i++) {
    const struct uk_srvent *e = &kd->vfs.srv[i];
    if (e->state != UK_SRV_FREE && strcmp(e->name, name) == 0)
      return -EEXIST;
    if (e->state == UK_SRV_FREE && slot < 0)
      slot = i;
  }
  if (slot < 0)
    return -ENOSPC;
  struct uk_srvent *e = &kd->vfs.srv[slot];
  uint16_t gen = (uint16_t)(e->gen + 1);
  memset(e, 0, sizeof *e);
  e->gen = gen != 0 ? gen : 1;
  e->state = UK_SRV_CREATED;
  strcpy(e->name, name);
  vfs__created(dir, VFS_QPATH(slot, e->gen), mode, name);
  return 0;
}

static long srvread(struct uk_kdata *kd, const struct uk_chan *c, void *buf,
                    uint32_t n, uint64_t off) {
  if (c->qid.path == 0)
    return vfs_devdirread(kd, c, buf, n, off);
  int i = ent_slot(kd, c);
  if (i < 0)
    return i;
  const char *name = kd->vfs.srv[i].posted;
  return vfs__read_str(buf, n, off, name, strlen(name));
}

/* The service named buf[0..n) (a trailing newline allowed), or -1. */
static int svc_named(const struct uk_kdata *kd, const char *buf, uint32_t n) {
  if (n > 0 && buf[n - 1] == '\n')
    n--;
  if (n == 0 || n >= KABI_NAME_MAX || memchr(buf, '\0', n) != NULL)
    return -1;
  for (int s = 0; s < UK_SVC_MAX; s++)
    if (kd->svc[s].state != UK_SVC_FREE &&
        strncmp(kd->svc[s].name, buf, n) == 0 && kd->svc[s].name[n] == '\0')
      return s;
  return -1;
}

static long srvwrite(struct uk_kdata *kd, struct uk_chan *c, const void *buf,
                     uint32_t n, uint64_t off) {
  int i = ent_slot(kd, c);
  if (i < 0)
    return i;
  struct uk_srvent *e = &kd->vfs.srv[i];
  if (e->state == UK_SRV_POSTED || off != 0)
    return -EBUSY; /* posted once; unpost by removing */
  int s = svc_named(kd, buf, n);
  if (s < 0)
    return -ENOENT; /* no such service */
  e->state = UK_SRV_POSTED;
  e->svc = (uint32_t)s;
  e->svc_gen = kd->svc[s].gen;
  strcpy(e->posted, kd->svc[s].name);
  return (long)n;
}

static int srvremove(struct uk_kdata *kd, struct uk_chan *c) {
  if (c->qid.path == 0)
    return -EPERM;
  int i = ent_slot(kd, c);
  if (i < 0)
    return i;
  struct uk_srvent *e = &kd->vfs.srv[i];
  uint16_t gen = e->gen;
  memset(e, 0, sizeof *e);
  e->gen = gen;
  return 0;
}

int vfs_srv_lookup(const struct uk_kdata *kd, const struct uk_chan *c,
                   uint32_t *svc) {
  if (c == NULL || c->type != 's' || c->qid.path == 0 ||
      vfs__qslot(c->qid.path, UK_SRV_MAX) < 0)
    return -EINVAL;
  int i = ent_slot(kd, c);
  if (i < 0)
    return i;
  const struct uk_srvent *e = &kd->vfs.srv[i];
  if (e->state != UK_SRV_POSTED || e->svc >= UK_SVC_MAX ||
      kd->svc[e->svc].state == UK_SVC_FREE || kd->svc[e->svc].gen != e->svc_gen)
    return -ENOTCONN;
  *svc = e->svc;
  return 0;
}

const struct vfs_dev vfs_srvdev = {
    .dc = 's',
    .name = "srv",
    .gen = srvgen,
    .read = srvread,
    .write = srvwrite,
    .create = srvcreate,
    .remove = srvremove,
};
