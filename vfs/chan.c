/* The chan table (vfs.h "Tables"): one entry per file a namespace, a
 * descriptor or a call in progress refers to.
 *
 * A slot's generation changes on each reuse and is never 0, so a chan id is
 * never UK_VFS_NONE and a stale one is refused.  A mounted server's chan
 * whose last reference goes waits in UK_CHAN_CLUNK until the kernel has
 * told the server; the table is the record of the clunks owed.
 */
#include <errno.h>
#include <string.h>

#include "vfs.h"
#include "vfs_int.h"

int vfs_chan_new(struct uk_kdata *kd, uint8_t type, uint32_t dev,
                 const struct uk_qid *qid, uint32_t *id) {
  for (uint32_t i = 0; i < UK_CHAN_MAX; i++) {
    struct uk_chan *c = &kd->vfs.chan[i];
    if (c->state != UK_CHAN_FREE)
      continue;
    uint16_t gen = (uint16_t)(c->gen + 1);
    memset(c, 0, sizeof *c);
    c->gen = gen != 0 ? gen : 1;
    c->state = UK_CHAN_LIVE;
    c->type = type;
    c->dev = dev;
    c->qid = *qid;
    c->ref = 1;
    *id = UK_VFS_ID(i, c->gen);
    return 0;
  }
  return -ENFILE;
}

/* Any slot that id names, whatever its state: the clunk functions need
 * CLUNK chans, everything else LIVE ones. */
static int chan_slot(const struct uk_kdata *kd, uint32_t id) {
  uint32_t i = UK_VFS_INDEX(id);
  if (id == UK_VFS_NONE || i >= UK_CHAN_MAX ||
      kd->vfs.chan[i].gen != UK_VFS_GEN(id))
    return -EBADF;
  return (int)i;
}

int vfs_chan_lookup(const struct uk_kdata *kd, uint32_t id) {
  int i = chan_slot(kd, id);
  if (i < 0 || kd->vfs.chan[i].state != UK_CHAN_LIVE)
    return -EBADF;
  return i;
}

int vfs_chan_ref(struct uk_kdata *kd, uint32_t id) {
  int i = vfs_chan_lookup(kd, id);
  if (i < 0)
    return i;
  kd->vfs.chan[i].ref++;
  return 0;
}

int vfs_chan_unref(struct uk_kdata *kd, uint32_t id) {
  int i = vfs_chan_lookup(kd, id);
  if (i < 0)
    return i;
  struct uk_chan *c = &kd->vfs.chan[i];
  if (--c->ref > 0)
    return 0;
  if (c->type == UK_CHAN_MNT) {
    c->state = UK_CHAN_CLUNK;
    return 1;
  }
  vfs__chan_last(kd, (uint32_t)i);
  return 0;
}

void vfs__unref(struct uk_kdata *kd, uint32_t id, int *clunks) {
  int r = vfs_chan_unref(kd, id);
  if (r > 0)
    *clunks += r;
}

bool vfs_chan_same(const struct uk_kdata *kd, uint32_t a, uint32_t b) {
  int i = vfs_chan_lookup(kd, a), j = vfs_chan_lookup(kd, b);
  if (i < 0 || j < 0)
    return false;
  const struct uk_chan *x = &kd->vfs.chan[i], *y = &kd->vfs.chan[j];
  return x->type == y->type && x->dev == y->dev && x->qid.path == y->qid.path;
}

bool vfs_chan_isdir(const struct uk_kdata *kd, uint32_t id) {
  int i = vfs_chan_lookup(kd, id);
  return i >= 0 && (kd->vfs.chan[i].qid.type & UK_QTDIR) != 0;
}

uint32_t vfs_clunk_next(const struct uk_kdata *kd) {
  for (uint32_t i = 0; i < UK_CHAN_MAX; i++) {
    const struct uk_chan *c = &kd->vfs.chan[i];
    if (c->state == UK_CHAN_CLUNK)
      return UK_VFS_ID(i, c->gen);
  }
  return UK_VFS_NONE;
}

int vfs_chan_clunked(struct uk_kdata *kd, uint32_t id) {
  int i = chan_slot(kd, id);
  if (i < 0 || kd->vfs.chan[i].state != UK_CHAN_CLUNK)
    return -EBADF;
  kd->vfs.chan[i].state = UK_CHAN_FREE;
  return 0;
}

uint32_t vfs_chan_live(const struct uk_kdata *kd) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < UK_CHAN_MAX; i++)
    n += kd->vfs.chan[i].state != UK_CHAN_FREE;
  return n;
}
