/* The disk's buffer cache as a version-neutral image (kimage.proto Cache;
 * issue 15, the file-cache step of a kernel update): the extractor and the
 * builder of one kernel-data layout, built once per layout as kimage.c is
 * (kimg_v1_* and kimg_v2_*).
 *
 * What moves is the cache's table, never a block.  The old cache's
 * segments are ICAs the machine holds and hands to the new kernel by id;
 * the builder writes, into a region of its own layout, the segment table,
 * an ICA entry for each carried segment (kernel-held, one segment's size)
 * and a dirty entry for each carried block.  The new kernel then adopts
 * that region's cache as it adopts a dead kernel's of its own version at
 * an Orthros failover (bcache_adopt, kdisk.h): the entries become dirty
 * entries of its own cache in the same ICAs, no byte copied.
 *
 * The old region may be torn (the old kernel may be hung in the middle of
 * a write): a segment is carried only if the ICA table vouches for it
 * (live, same generation, kernel-held, one segment's size), a dirty entry
 * only if its segment is carried and its ICA, offset, generation and block
 * agree with the segment table (kdisk_dead_entry_ok's rules).  Every dirty
 * entry left out is counted in Cache.torn.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kimage.h"
#include "kimage.pb-c.h"
#include "kimage_int.h"
#include "uksim/xalloc.h"

typedef Uksim__Kimage__Cache Cache;
typedef Uksim__Kimage__CacheEntry Entry;

static bool dirty_state(uint8_t s) {
  return s == UK_BC_DIRTY || s == UK_BC_WRITING;
}

/* Extraction ----------------------------------------------------------------
 */

/* Segment s's ICA id if the ICA table vouches for it, else KABI_ICA_NONE. */
static uint32_t seg_carried(const struct uk_kdata *kd, uint32_t s) {
  uint32_t id = kd->bcache.seg_ica[s], x = KABI_ICA_INDEX(id);
  if (id == KABI_ICA_NONE || x >= UK_ICA_MAX)
    return KABI_ICA_NONE;
  const struct uk_ica_ent *e = &kd->ica[x];
  bool ok = e->state == UK_ICA_LIVE && e->gen == KABI_ICA_GEN(id) &&
            e->holder_kind == UK_HOLD_KERNEL && e->size == UK_BCACHE_SEG_BYTES;
  return ok ? id : KABI_ICA_NONE;
}

/* Whether old entry i (dirty) agrees with the carried segment table. */
static bool entry_carried(const struct uk_bcache_ent *e, uint32_t i,
                          const Cache *c) {
  uint32_t s = i / UK_BCACHE_SEG;
  return s < c->n_seg_ica && c->seg_ica[s] != KABI_ICA_NONE &&
         e->ica == c->seg_ica[s] && e->gen != 0 &&
         e->off == (i % UK_BCACHE_SEG) * UK_DISK_BLOCK &&
         e->block < c->disk_bytes / UK_DISK_BLOCK;
}

/* The segments (nseg of them) and the dirty entries they vouch for, into
 * c; seg and ent are the caller's arrays (UK_BCACHE_SEGS_MAX and
 * UK_BCACHE_MAX long). */
static void take_cache(const struct uk_kdata *kd, uint32_t nseg, Cache *c,
                       uint32_t *seg, Entry *ent, Entry **ptr) {
  c->seg_ica = seg;
  for (uint32_t s = 0; s < nseg; s++)
    seg[c->n_seg_ica++] = seg_carried(kd, s);
  c->dirty = ptr;
  for (uint32_t i = 0; i < UK_BCACHE_MAX; i++) {
    const struct uk_bcache_ent *e = &kd->bcache.ent[i];
    struct uk_bcache_ent v = *e; /* torn: one copy, checked and used */
    if (!dirty_state(v.state))
      continue;
    if (!entry_carried(&v, i, c)) {
      c->torn++;
      continue;
    }
    Entry *o = &ent[c->n_dirty];
    uksim__kimage__cache_entry__init(o);
    o->index = i;
    o->block = v.block;
    o->seq = v.seq;
    o->gen = v.gen;
    ptr[c->n_dirty++] = o;
  }
}

int KIMG_FN(extract_cache)(const void *region, size_t len, uint8_t **buf,
                           size_t *n) {
  const struct uk_kdata *kd = region;
  if (!kimg__region_ok(kd, len))
    return -EPROTO;
  const struct uk_bcache_hdr *h = &kd->bcache.hdr;
  char disk[UK_DISK_NAME_MAX + 1] = {0};
  memcpy(disk, h->disk, UK_DISK_NAME_MAX); /* torn: never past the field */
  Cache c = UKSIM__KIMAGE__CACHE__INIT;
  c.version = KIMG_VERSION;
  c.from_layout = UK_KDATA_LAYOUT;
  c.disk = disk;
  c.disk_bytes = h->disk_bytes;
  c.wseq = h->wseq;
  uint32_t *seg = xcalloc(UK_BCACHE_SEGS_MAX, sizeof *seg);
  Entry *ent = xcalloc(UK_BCACHE_MAX, sizeof *ent);
  Entry **ptr = xcalloc(UK_BCACHE_MAX, sizeof *ptr);
  uint32_t nseg = h->nseg; /* read once: the kernel may be writing it */
  if (h->block_size == UK_DISK_BLOCK) {
    c.block_size = UK_DISK_BLOCK;
    take_cache(kd, nseg < UK_BCACHE_SEGS_MAX ? nseg : UK_BCACHE_SEGS_MAX, &c,
               seg, ent, ptr);
  } else if (h->block_size != 0) {
    c.torn = h->ndirty; /* a header no cache has: nothing is trusted */
  }
  *n = uksim__kimage__cache__get_packed_size(&c);
  *buf = xmalloc(*n ? *n : 1);
  uksim__kimage__cache__pack(&c, *buf);
  free(seg);
  free(ent);
  free(ptr);
  return 0;
}

/* Building ------------------------------------------------------------------
 * All or nothing: the image is checked whole before anything is written.
 */

/* Whether segment s's ICA id appears again later in the table. */
static bool seg_repeated(const Cache *c, size_t s) {
  for (size_t t = s + 1; t < c->n_seg_ica; t++)
    if (c->seg_ica[t] == c->seg_ica[s])
      return true;
  return false;
}

static int check_segments(const struct uk_kdata *kd, const Cache *c) {
  for (size_t s = 0; s < c->n_seg_ica; s++) {
    uint32_t id = c->seg_ica[s], x = KABI_ICA_INDEX(id);
    if (id == KABI_ICA_NONE)
      continue;
    if (x >= UK_ICA_MAX || seg_repeated(c, s))
      return -EINVAL;
    if (kd->ica[x].state != UK_ICA_FREE)
      return -EEXIST; /* another image's ICA has that index */
  }
  return 0;
}

static int check_cache(const struct uk_kdata *kd, const Cache *c) {
  if (c->block_size == 0)
    return c->n_seg_ica || c->n_dirty ? -EINVAL : 0;
  if (c->block_size != UK_DISK_BLOCK || c->n_seg_ica > UK_BCACHE_SEGS_MAX)
    return -EINVAL;
  if (kd->bcache.hdr.block_size != 0)
    return -EEXIST; /* a cache was built here already */
  int r = check_segments(kd, c);
  for (size_t k = 0; r == 0 && k < c->n_dirty; k++) {
    const Entry *e = c->dirty[k];
    uint32_t s = e->index / UK_BCACHE_SEG;
    if (s >= c->n_seg_ica || c->seg_ica[s] == KABI_ICA_NONE || e->gen == 0 ||
        e->block >= c->disk_bytes / UK_DISK_BLOCK)
      r = -EINVAL;
  }
  return r;
}

/* The ICA entry of a carried segment: the kernel's own, one segment. */
static void put_seg_ica(struct uk_kdata *kd, uint32_t id) {
  struct uk_ica_ent *e = &kd->ica[KABI_ICA_INDEX(id)];
  memset(e, 0, sizeof *e);
  e->gen = (uint16_t)KABI_ICA_GEN(id);
  e->state = UK_ICA_LIVE;
  e->kind = KABI_ICA_DATA;
  e->holder_kind = UK_HOLD_KERNEL;
  e->size = UK_BCACHE_SEG_BYTES;
}

static void put_entry(struct uk_bcache *t, const Entry *o) {
  struct uk_bcache_ent *e = &t->ent[o->index];
  if (e->state == UK_BC_FREE) {
    t->hdr.ncached++;
    t->hdr.ndirty++;
  }
  e->block = o->block;
  e->seq = o->seq;
  e->gen = o->gen;
  e->state = UK_BC_DIRTY;
  e->ica = t->seg_ica[o->index / UK_BCACHE_SEG];
  e->off = (o->index % UK_BCACHE_SEG) * UK_DISK_BLOCK;
}

static void put_cache(struct uk_kdata *kd, const Cache *c) {
  struct uk_bcache *t = &kd->bcache;
  t->hdr.block_size = c->block_size;
  t->hdr.disk_bytes = c->disk_bytes;
  t->hdr.wseq = c->wseq;
  t->hdr.nseg = t->hdr.seg_max = (uint32_t)c->n_seg_ica;
  strncpy(t->hdr.disk, c->disk, UK_DISK_NAME_MAX);
  for (size_t s = 0; s < c->n_seg_ica; s++) {
    t->seg_ica[s] = c->seg_ica[s];
    if (c->seg_ica[s] != KABI_ICA_NONE)
      put_seg_ica(kd, c->seg_ica[s]);
  }
  for (size_t k = 0; k < c->n_dirty; k++)
    put_entry(t, c->dirty[k]);
}

int KIMG_FN(build_cache)(void *region, size_t len, const uint8_t *buf,
                         size_t n) {
  struct uk_kdata *kd = region;
  if (!kimg__region_ok(kd, len))
    return -EPROTO;
  if (n > KIMG_CACHE_MAX_BYTES)
    return -EBADMSG;
  Cache *c = uksim__kimage__cache__unpack(NULL, n, buf);
  if (c == NULL)
    return -EBADMSG;
  int r = c->version > KIMG_VERSION ? -EPROTO : check_cache(kd, c);
  if (r == 0 && c->block_size != 0)
    put_cache(kd, c);
  uksim__kimage__cache__free_unpacked(c, NULL);
  return r;
}

uint32_t KIMG_FN(cache_dirty)(const void *region, size_t len) {
  const struct uk_kdata *kd = region;
  return kimg__region_ok(kd, len) ? kd->bcache.hdr.ndirty : 0;
}
