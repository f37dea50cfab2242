/* The servant table and the generic ops (dev.h): Plan 9's devtab and
 * port/dev.c.  The dispatch functions check what every servant would
 * otherwise check (the chan is live and of a known servant, open for the
 * op) and call the servant's op or the default.
 */
#include <errno.h>
#include <string.h>

#include "dev.h"
#include "vfs.h"
#include "vfs_int.h"

/* The servants of vfs/, by letter.  A new servant adds its line here. */
static const struct vfs_dev *const vfs_devtab[] = {
    &vfs_rootdev, &vfs_consdev, &vfs_envdev,  &vfs_srvdev, &vfs_pipedev,
    &vfs_procdev, &vfs_kerndev, &vfs_diskdev, &vfs_ipdev,
};

/* Servants registered at run time (dev.h: vfs_dev_add). */
static const struct vfs_dev *extra[VFS_DEV_EXTRA];

const struct vfs_dev *vfs_dev_lookup(uint8_t dc) {
  for (size_t i = 0; i < sizeof vfs_devtab / sizeof vfs_devtab[0]; i++)
    if (vfs_devtab[i]->dc == dc)
      return vfs_devtab[i];
  for (int i = 0; i < VFS_DEV_EXTRA && extra[i] != NULL; i++)
    if (extra[i]->dc == dc)
      return extra[i];
  return NULL;
}

int vfs_dev_add(const struct vfs_dev *d) {
  const struct vfs_dev *had = vfs_dev_lookup(d->dc);
  if (had == d)
    return 0;
  if (had != NULL)
    return -EEXIST;
  for (int i = 0; i < VFS_DEV_EXTRA; i++)
    if (extra[i] == NULL) {
      extra[i] = d;
      return 0;
    }
  return -ENOSPC;
}

/* The kernel's hooks (dev.h convention 2).  The one static that is not a
 * table: it points into the kernel, not into the region. */
static const struct vfs_host *host;

void vfs_host_set(const struct vfs_host *h) {
  host = h;
}

const struct vfs_host *vfs_host_get(void) {
  return host;
}

uint32_t vfs_up(void) {
  return host != NULL ? host->up : UK_NIL;
}

uint64_t vfs_now_ns(void) {
  return host != NULL && host->now_ns != NULL ? host->now_ns(host->arg) : 0;
}

int vfs_kill(uint32_t p, const char *note) {
  if (host == NULL || host->kill == NULL)
    return -ENOSYS;
  return host->kill(host->arg, p, note);
}

/* --- Helpers for servants (vfs_int.h). --- */

void vfs__dir(struct vfs_dir *d, uint64_t path, uint8_t qtype, uint32_t mode,
              uint64_t length, const char *name) {
  memset(d, 0, sizeof *d);
  d->qid.path = path;
  d->qid.type = qtype;
  d->mode = mode;
  d->length = length;
  strncpy(d->name, name, VFS_DIRNAME_MAX);
}

void vfs__path_append(struct uk_chan *c, const char *name) {
  size_t n = strlen(c->path), k = strlen(name);
  if (n == 0 || n + 1 + k > UK_PATH_MAX)
    return; /* no name to extend, or no room: fd2path says -ENOENT */
  if (c->path[n - 1] != '/')
    c->path[n++] = '/';
  memcpy(c->path + n, name, k + 1);
}

int vfs__flat_gen(const struct vfs__ent *tab, int n, const char *root,
                  const struct uk_chan *c, int i, struct vfs_dir *d) {
  uint64_t p = c->qid.path;
  if (p > (uint64_t)n)
    return 0;
  if (i == VFS_GEN_PARENT || (i == VFS_GEN_SELF && p == 0)) {
    vfs__dir(d, 0, UK_QTDIR, VFS_DMDIR | 0555u, 0, root);
    return 1;
  }
  if (i == VFS_GEN_SELF)
    i = (int)p - 1;
  else if (p != 0)
    return 0; /* a file has no entries */
  if (i < 0 || i >= n)
    return 0;
  vfs__dir(d, (uint64_t)i + 1, 0, tab[i].mode, 0, tab[i].name);
  return 1;
}

int vfs__check_name(const char *name, size_t max) {
  if (name[0] == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
      strchr(name, '/') != NULL)
    return -EINVAL;
  return strlen(name) > max ? -ENAMETOOLONG : 0;
}

void vfs__created(struct uk_chan *dir, uint64_t path, uint8_t mode,
                  const char *name) {
  dir->qid.path = path;
  dir->qid.type = 0;
  dir->qid.vers = 0;
  dir->mode = mode & (3u | VFS_OTRUNC);
  dir->flags |= UK_CHAN_F_OPEN;
  dir->offset = 0;
  vfs__path_append(dir, name);
}

void vfs__chan_last(struct uk_kdata *kd, uint32_t i) {
  struct uk_chan *c = &kd->vfs.chan[i];
  const struct vfs_dev *d = vfs_dev_lookup(c->type);
  if (d != NULL && d->close != NULL && (c->flags & UK_CHAN_F_OPEN))
    d->close(kd, c);
  c->state = UK_CHAN_FREE;
  if (d != NULL && d->free != NULL)
    d->free(kd, c);
}

/* --- Generic ops. --- */

int vfs_devattach(uint8_t dc, const char *spec, struct uk_chan *c) {
  if (spec[0] != '\0')
    return -EINVAL;
  memset(c, 0, sizeof *c);
  c->type = dc;
  c->qid.type = UK_QTDIR;
  return 0;
}

static vfs_gen_fn gen_of(const struct uk_chan *c) {
  const struct vfs_dev *d = vfs_dev_lookup(c->type);
  return d == NULL ? NULL : d->gen;
}

int vfs_devwalk(const struct uk_kdata *kd, const struct uk_chan *dir,
                const char *name, struct uk_qid *qid) {
  vfs_gen_fn gen = gen_of(dir);
  struct vfs_dir d;
  if (gen == NULL)
    return -ENOENT;
  if (strcmp(name, "..") == 0) {
    if (gen(kd, dir, VFS_GEN_PARENT, &d) != 1)
      return -ENOENT;
    *qid = d.qid;
    return 0;
  }
  for (int i = 0; gen(kd, dir, i, &d) == 1; i++)
    if (strcmp(d.name, name) == 0) {
      *qid = d.qid;
      return 0;
    }
  return -ENOENT;
}

int vfs_devstat(const struct uk_kdata *kd, const struct uk_chan *c,
                struct vfs_dir *d) {
  vfs_gen_fn gen = gen_of(c);
  if (gen == NULL || gen(kd, c, VFS_GEN_SELF, d) != 1)
    return -ENOENT;
  return 0;
}

int vfs_devopen(struct uk_kdata *kd, struct uk_chan *c, uint8_t mode) {
  (void)kd;
  if (mode & ~(3u | VFS_OTRUNC | VFS_ORCLOSE))
    return -EINVAL;
  if ((c->qid.type & UK_QTDIR) &&
      ((mode & 3u) != VFS_OREAD || (mode & VFS_OTRUNC)))
    return -EISDIR;
  if (mode & VFS_ORCLOSE)
    return -EPERM;
  /* [Plan 9] a device file has nothing to truncate: OTRUNC is dropped, so
   * `echo x > /dev/cons` works as it does there. */
  mode &= (uint8_t)~VFS_OTRUNC;
  c->mode = mode;
  c->flags |= UK_CHAN_F_OPEN;
  c->offset = 0;
  return 0;
}

long vfs_devdirread(const struct uk_kdata *kd, const struct uk_chan *c,
                    void *buf, uint32_t n, uint64_t off) {
  const uint32_t rec = sizeof(struct vfs_dir);
  vfs_gen_fn gen = gen_of(c);
  if (!(c->qid.type & UK_QTDIR))
    return -EPERM;
  if (off % rec != 0 || n < rec)
    return -EINVAL;
  if (gen == NULL)
    return 0;
  long got = 0;
  struct vfs_dir d;
  for (uint64_t i = off / rec; got + rec <= n && i < INT32_MAX; i++) {
    if (gen(kd, c, (int)i, &d) != 1)
      break;
    memcpy((char *)buf + got, &d, rec);
    got += rec;
  }
  return got;
}

/* --- Dispatch. --- */

/* The LIVE chan c and its servant into *ch and *dev. */
static int chan_dev(const struct uk_kdata *kd, uint32_t c,
                    const struct uk_chan **ch, const struct vfs_dev **dev) {
  int i = vfs_chan_lookup(kd, c);
  if (i < 0)
    return -EBADF;
  *ch = &kd->vfs.chan[i];
  *dev = vfs_dev_lookup((*ch)->type);
  return *dev == NULL ? -ENODEV : 0;
}

static bool readable(const struct uk_chan *c) {
  return (c->flags & UK_CHAN_F_OPEN) && (c->mode & 3u) != VFS_OWRITE;
}

static bool writable(const struct uk_chan *c) {
  unsigned m = c->mode & 3u;
  return (c->flags & UK_CHAN_F_OPEN) && (m == VFS_OWRITE || m == VFS_ORDWR);
}

int vfs_dev_attach(const struct uk_kdata *kd, uint8_t dc, const char *spec,
                   struct uk_chan *c) {
  const struct vfs_dev *d = vfs_dev_lookup(dc);
  if (d == NULL)
    return -ENODEV;
  return d->attach ? d->attach(kd, spec, c) : vfs_devattach(dc, spec, c);
}

int vfs_dev_walk(const struct uk_kdata *kd, const struct uk_chan *dir,
                 const char *name, struct uk_qid *qid) {
  const struct vfs_dev *d = vfs_dev_lookup(dir->type);
  if (d == NULL)
    return -ENODEV;
  if (!(dir->qid.type & UK_QTDIR))
    return -ENOTDIR;
  return d->walk ? d->walk(kd, dir, name, qid)
                 : vfs_devwalk(kd, dir, name, qid);
}

int vfs_dev_stat(const struct uk_kdata *kd, uint32_t c, struct vfs_dir *d) {
  const struct uk_chan *ch;
  const struct vfs_dev *dev;
  int r = chan_dev(kd, c, &ch, &dev);
  if (r < 0)
    return r;
  return dev->stat ? dev->stat(kd, ch, d) : vfs_devstat(kd, ch, d);
}

int vfs_dev_open(struct uk_kdata *kd, uint32_t c, uint8_t mode) {
  const struct uk_chan *ch;
  const struct vfs_dev *dev;
  int r = chan_dev(kd, c, &ch, &dev);
  if (r < 0)
    return r;
  if (ch->flags & UK_CHAN_F_OPEN)
    return -EBADF;
  struct uk_chan *w = &kd->vfs.chan[UK_VFS_INDEX(c)];
  return dev->open ? dev->open(kd, w, mode) : vfs_devopen(kd, w, mode);
}

long vfs_dev_read(struct uk_kdata *kd, uint32_t c, void *buf, uint32_t n,
                  uint64_t off) {
  const struct uk_chan *ch;
  const struct vfs_dev *dev;
  int r = chan_dev(kd, c, &ch, &dev);
  if (r < 0)
    return r;
  if (!readable(ch))
    return -EBADF;
  if (dev->read)
    return dev->read(kd, ch, buf, n, off);
  return vfs_devdirread(kd, ch, buf, n, off);
}

long vfs_dev_write(struct uk_kdata *kd, uint32_t c, const void *buf, uint32_t n,
                   uint64_t off) {
  const struct uk_chan *ch;
  const struct vfs_dev *dev;
  int r = chan_dev(kd, c, &ch, &dev);
  if (r < 0)
    return r;
  if (!writable(ch))
    return -EBADF;
  if (dev->write == NULL)
    return -EPERM;
  return dev->write(kd, &kd->vfs.chan[UK_VFS_INDEX(c)], buf, n, off);
}

int vfs_dev_create(struct uk_kdata *kd, uint32_t dir, const char *name,
                   uint32_t perm, uint8_t mode) {
  const struct uk_chan *ch;
  const struct vfs_dev *dev;
  int r = chan_dev(kd, dir, &ch, &dev);
  if (r < 0)
    return r;
  if (ch->flags & UK_CHAN_F_OPEN)
    return -EBADF;
  if (!(ch->qid.type & UK_QTDIR))
    return -ENOTDIR;
  if (dev->create == NULL)
    return -EPERM;
  return dev->create(kd, &kd->vfs.chan[UK_VFS_INDEX(dir)], name, perm, mode);
}

int vfs_dev_remove(struct uk_kdata *kd, uint32_t c) {
  const struct uk_chan *ch;
  const struct vfs_dev *dev;
  int r = chan_dev(kd, c, &ch, &dev);
  if (r < 0)
    return r;
  if (dev->remove == NULL)
    return -EPERM;
  return dev->remove(kd, &kd->vfs.chan[UK_VFS_INDEX(c)]);
}

int vfs_dev_close(struct uk_kdata *kd, uint32_t c) {
  const struct uk_chan *ch;
  const struct vfs_dev *dev;
  int r = chan_dev(kd, c, &ch, &dev);
  if (r < 0)
    return r;
  if (!(ch->flags & UK_CHAN_F_OPEN))
    return -EBADF;
  struct uk_chan *w = &kd->vfs.chan[UK_VFS_INDEX(c)];
  if (dev->close)
    dev->close(kd, w);
  w->flags &= (uint8_t)~UK_CHAN_F_OPEN;
  w->mode = 0;
  w->offset = 0;
  return 0;
}
