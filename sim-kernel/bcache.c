/* The disk's write-back buffer cache, kept in ICAs (kdisk.h has the design
 * and the entry state machine; uksim/kdata.h struct uk_bcache the table).
 *
 * The table in kernel data is what a reader from outside needs; what only
 * this process needs is here: the segments' mappings, a hash of block
 * numbers to entries (chained through next[]), the free entries, and the
 * clock's reference bits.  Entries are made a segment (UK_BCACHE_SEG
 * blocks, one ICA) at a time, up to the size setting; when none is free a
 * clean one is evicted by the clock.
 *
 * A write takes all its entries first (pinned, so the clock spares them)
 * and copies only once it has them all: a write the cache cannot hold now
 * changes nothing and says -EAGAIN.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kdisk.h"
#include "uksim/kabi.h"

#define BC_HASH_BITS 15 /* 2 buckets per entry */
#define BC_HASH (1u << BC_HASH_BITS)

struct bcache {
  struct uk_bcache *t;
  struct kdisk *d;
  struct bcache_seg_ops ops;
  uint8_t *base[UK_BCACHE_SEGS_MAX];
  uint32_t head[BC_HASH];       /* entry index, UK_NIL: none */
  uint32_t next[UK_BCACHE_MAX]; /* chain of one bucket */
  uint8_t ref[UK_BCACHE_MAX];   /* the clock's "used lately" */
  uint8_t pin[UK_BCACHE_MAX];   /* taken by the write in progress */
  uint32_t freel[UK_BCACHE_MAX], nfree;
  uint32_t hand;  /* the clock */
  uint32_t wb_at; /* where the next write-back batch starts looking */
  uint32_t got[UK_BCACHE_MAX + 1]; /* the write in progress: its entries */
  uint8_t bounce[UK_DISK_BLOCK];   /* a read the cache has no room for */
};

static uint32_t bucket(uint64_t b) {
  return (uint32_t)((b * 0x9e3779b97f4a7c15ull) >> (64 - BC_HASH_BITS));
}

static uint8_t *data_of(struct bcache *bc, uint32_t i) {
  return bc->base[i / UK_BCACHE_SEG] + bc->t->ent[i].off;
}

/* The entry caching block b, or UK_NIL. */
static uint32_t lookup(struct bcache *bc, uint64_t b) {
  for (uint32_t i = bc->head[bucket(b)]; i != UK_NIL; i = bc->next[i])
    if (bc->t->ent[i].block == b)
      return i;
  return UK_NIL;
}

static void hash_add(struct bcache *bc, uint32_t i) {
  uint32_t h = bucket(bc->t->ent[i].block);
  bc->next[i] = bc->head[h];
  bc->head[h] = i;
}

static void hash_del(struct bcache *bc, uint32_t i) {
  uint32_t *p = &bc->head[bucket(bc->t->ent[i].block)];
  while (*p != i)
    p = &bc->next[*p];
  *p = bc->next[i];
}

/* Segment nseg made of ICA ica mapped at base, its entries FREE and not
 * yet in the free list (the caller says which are free); its number. */
static uint32_t seg_add(struct bcache *bc, uint32_t ica, uint8_t *base) {
  uint32_t s = bc->t->hdr.nseg++;
  bc->base[s] = base;
  bc->t->seg_ica[s] = ica;
  for (uint32_t j = 0; j < UK_BCACHE_SEG; j++)
    bc->t->ent[s * UK_BCACHE_SEG + j] = (struct uk_bcache_ent){
        .ica = ica, .off = j * UK_DISK_BLOCK, .state = UK_BC_FREE};
  return s;
}

/* One more segment of free entries; -ENOSPC at the size setting, or the
 * ICA's error (the budget: then the setting drops to what we have). */
static int grow(struct bcache *bc) {
  struct uk_bcache_hdr *h = &bc->t->hdr;
  uint32_t s = h->nseg, ica;
  void *base;
  if (s >= h->seg_max)
    return -ENOSPC;
  int r = bc->ops.seg_new(bc->ops.arg, &ica, &base);
  if (r < 0) {
    h->seg_max = s;
    return r;
  }
  seg_add(bc, ica, base);
  for (uint32_t j = UK_BCACHE_SEG; j-- > 0;)
    bc->freel[bc->nfree++] = s * UK_BCACHE_SEG + j;
  return 0;
}

/* A clean entry no write holds, not used since the hand last passed. */
static uint32_t evict(struct bcache *bc) {
  uint32_t n = bc->t->hdr.nseg * UK_BCACHE_SEG;
  for (uint32_t k = 0; n > 0 && k < 2 * n; k++) {
    uint32_t i = bc->hand;
    bc->hand = (bc->hand + 1) % n;
    if (bc->t->ent[i].state != UK_BC_CLEAN || bc->pin[i])
      continue;
    if (bc->ref[i]) {
      bc->ref[i] = 0;
      continue;
    }
    hash_del(bc, i);
    bc->t->ent[i].state = UK_BC_FREE;
    bc->t->hdr.ncached--;
    bc->t->hdr.evictions++;
    return i;
  }
  return UK_NIL;
}

/* An entry for block b, hashed, with state st: a free one, one of a new
 * segment, or an evicted clean one; UK_NIL if none. */
static uint32_t take(struct bcache *bc, uint64_t b, uint8_t st) {
  uint32_t i = UK_NIL;
  if (bc->nfree == 0 && grow(bc) < 0 && (i = evict(bc)) == UK_NIL)
    return UK_NIL;
  if (i == UK_NIL)
    i = bc->freel[--bc->nfree];
  struct uk_bcache_ent *e = &bc->t->ent[i];
  e->block = b;
  e->gen = e->gen + 1 ? e->gen + 1 : 1; /* never 0: 0 is "never used" */
  e->state = st;
  bc->t->hdr.ncached++;
  bc->ref[i] = 1;
  hash_add(bc, i);
  return i;
}

/* Gives entry i back (a write that could not get all of its entries). */
static void give_back(struct bcache *bc, uint32_t i) {
  hash_del(bc, i);
  bc->t->ent[i].state = UK_BC_FREE;
  bc->t->hdr.ncached--;
  bc->freel[bc->nfree++] = i;
}

struct bcache *bcache_new(struct uk_bcache *t, struct kdisk *d,
                          const char *name, uint64_t disk_bytes,
                          uint32_t cache_mib,
                          const struct bcache_seg_ops *ops) {
  struct bcache *bc = calloc(1, sizeof *bc);
  if (bc == NULL)
    abort(); /* out of memory: as xmalloc */
  memset(t, 0, sizeof *t);
  bc->t = t;
  bc->d = d;
  bc->ops = *ops;
  memset(bc->head, 0xff, sizeof bc->head);
  uint64_t segs = ((uint64_t)cache_mib << 20) / UK_BCACHE_SEG_BYTES;
  if (((uint64_t)cache_mib << 20) % UK_BCACHE_SEG_BYTES)
    segs++;
  t->hdr.seg_max =
      segs > UK_BCACHE_SEGS_MAX ? UK_BCACHE_SEGS_MAX : (uint32_t)segs;
  t->hdr.disk_bytes = disk_bytes - disk_bytes % UK_DISK_BLOCK;
  strncpy(t->hdr.disk, name, UK_DISK_NAME_MAX);
  t->hdr.block_size = UK_DISK_BLOCK;
  return bc;
}

void bcache_free(struct bcache *bc) {
  if (bc == NULL)
    return;
  (void)bcache_writeback(bc); /* a failure leaves the blocks lost: as a
                                 disk that fails at shutdown */
  for (uint32_t s = 0; s < bc->t->hdr.nseg; s++)
    bc->ops.seg_drop(bc->ops.arg, bc->t->seg_ica[s], bc->base[s]);
  memset(bc->t, 0, sizeof *bc->t);
  free(bc);
}

const struct uk_bcache *bcache_table(const struct bcache *bc) {
  return bc->t;
}

/* Reading ----------------------------------------------------------------- */

/* Block b's bytes: cached, or read into a new clean entry, or (no room)
 * into the bounce buffer.  NULL on a disk error. */
static const uint8_t *block_for_read(struct bcache *bc, uint64_t b) {
  uint32_t i = lookup(bc, b);
  if (i != UK_NIL) {
    bc->t->hdr.hits++;
    bc->ref[i] = 1;
    return data_of(bc, i);
  }
  bc->t->hdr.misses++;
  i = take(bc, b, UK_BC_CLEAN);
  uint8_t *buf = i == UK_NIL ? bc->bounce : data_of(bc, i);
  if (kdisk_read(bc->d, b, buf) < 0) {
    if (i != UK_NIL)
      give_back(bc, i);
    return NULL;
  }
  return buf;
}

/* n cut so that [off, off + n) ends at the disk's end. */
static uint32_t clip(const struct bcache *bc, uint32_t n, uint64_t off) {
  uint64_t size = bc->t->hdr.disk_bytes;
  return off + n > size ? (uint32_t)(size - off) : n;
}

long bcache_read(struct bcache *bc, void *buf, uint32_t n, uint64_t off) {
  if (off >= bc->t->hdr.disk_bytes)
    return 0;
  n = clip(bc, n, off);
  for (uint32_t done = 0; done < n;) {
    uint64_t b = (off + done) / UK_DISK_BLOCK;
    uint32_t in = (uint32_t)((off + done) % UK_DISK_BLOCK);
    uint32_t len =
        UK_DISK_BLOCK - in < n - done ? UK_DISK_BLOCK - in : n - done;
    const uint8_t *src = block_for_read(bc, b);
    if (src == NULL)
      return done > 0 ? (long)done : -EIO;
    memcpy((uint8_t *)buf + done, src + in, len);
    done += len;
  }
  return n;
}

/* Writing ----------------------------------------------------------------- */

/* Takes and pins the entries of blocks first..last into got[]; a block the
 * write covers only in part is read first.  0, or -EAGAIN/-EIO with every
 * entry it took given back and nothing pinned. */
static int take_all(struct bcache *bc, uint64_t first, uint64_t last,
                    uint64_t off, uint32_t n) {
  int r = 0;
  uint32_t k = 0;
  for (uint64_t b = first; b <= last && r == 0; b++, k++) {
    uint32_t i = lookup(bc, b);
    bool whole = b * UK_DISK_BLOCK >= off && (b + 1) * UK_DISK_BLOCK <= off + n;
    if (i == UK_NIL && (i = take(bc, b, UK_BC_FREE)) == UK_NIL)
      r = -EAGAIN;
    else if (bc->t->ent[i].state == UK_BC_FREE && !whole &&
             kdisk_read(bc->d, b, data_of(bc, i)) < 0)
      r = -EIO;
    else
      bc->pin[i] = 1;
    bc->got[k] = i;
    if (r < 0 && i != UK_NIL && bc->t->ent[i].state == UK_BC_FREE)
      give_back(bc, i);
  }
  for (uint32_t j = 0; r < 0 && j + 1 < k; j++) {
    uint32_t i = bc->got[j];
    bc->pin[i] = 0;
    if (bc->t->ent[i].state == UK_BC_FREE)
      give_back(bc, i);
  }
  return r;
}

static void mark_dirty(struct bcache *bc, uint32_t i) {
  struct uk_bcache_ent *e = &bc->t->ent[i];
  if (e->state != UK_BC_DIRTY && e->state != UK_BC_WRITING)
    bc->t->hdr.ndirty++;
  e->state = UK_BC_DIRTY;
  e->seq = ++bc->t->hdr.wseq;
  bc->pin[i] = 0;
  bc->ref[i] = 1;
}

long bcache_write(struct bcache *bc, const void *buf, uint32_t n,
                  uint64_t off) {
  if (n == 0)
    return 0;
  if (off >= bc->t->hdr.disk_bytes)
    return -ENOSPC;
  n = clip(bc, n, off);
  uint64_t first = off / UK_DISK_BLOCK, last = (off + n - 1) / UK_DISK_BLOCK;
  if (last - first + 1 > (uint64_t)bc->t->hdr.seg_max * UK_BCACHE_SEG)
    return -EFBIG;
  int r = take_all(bc, first, last, off, n);
  if (r < 0) {
    bc->t->hdr.waits += r == -EAGAIN;
    return r;
  }
  for (uint32_t done = 0, k = 0; done < n; k++) {
    uint32_t in = (uint32_t)((off + done) % UK_DISK_BLOCK);
    uint32_t len =
        UK_DISK_BLOCK - in < n - done ? UK_DISK_BLOCK - in : n - done;
    memcpy(data_of(bc, bc->got[k]) + in, (const uint8_t *)buf + done, len);
    mark_dirty(bc, bc->got[k]);
    done += len;
  }
  return n;
}

/* Write-back -------------------------------------------------------------- */

/* Puts up to max dirty entries, from the write-back cursor on, in one
 * batch and commits it.  Returns the blocks written (0: none is dirty) or
 * an error, after which they are DIRTY again. */
long bcache_writeback_some(struct bcache *bc, uint32_t max) {
  uint32_t n = bc->t->hdr.nseg * UK_BCACHE_SEG, k = 0;
  struct kdisk_batch *wb = NULL;
  if (max > KDISK_BATCH_BLOCKS)
    max = KDISK_BATCH_BLOCKS;
  for (uint32_t seen = 0; seen < n && k < max && bc->t->hdr.ndirty > k;
       seen++, bc->wb_at = (bc->wb_at + 1) % n) {
    struct uk_bcache_ent *e = &bc->t->ent[bc->wb_at];
    if (e->state != UK_BC_DIRTY)
      continue;
    if (wb == NULL)
      wb = kdisk_batch_new();
    e->state = UK_BC_WRITING;
    kdisk_batch_put(wb, e->block, data_of(bc, bc->wb_at));
    bc->got[k++] = bc->wb_at;
  }
  if (wb == NULL)
    return 0;
  int r = kdisk_batch_commit(bc->d, wb);
  for (uint32_t j = 0; j < k; j++)
    bc->t->ent[bc->got[j]].state = r < 0 ? UK_BC_DIRTY : UK_BC_CLEAN;
  if (r < 0)
    return r;
  bc->t->hdr.ndirty -= k;
  bc->t->hdr.blocks_written += k;
  bc->t->hdr.writebacks++;
  return k;
}

int bcache_writeback(struct bcache *bc) {
  long r;
  while ((r = bcache_writeback_some(bc, KDISK_BATCH_BLOCKS)) > 0)
    ;
  return (int)r;
}

/* Adoption (kdisk.h's header has the rules) ------------------------------ */

_Static_assert(KDISK_BATCH_BLOCKS >= UK_BCACHE_SEG,
               "a segment written back at adoption is one batch");

/* qsort by block, then by seq: the last of a run of one block is its
 * latest write. */
static const struct uk_bcache_ent *adopt_ents;
static int by_block_seq(const void *a, const void *b) {
  const struct uk_bcache_ent *x = &adopt_ents[*(const uint32_t *)a];
  const struct uk_bcache_ent *y = &adopt_ents[*(const uint32_t *)b];
  if (x->block != y->block)
    return (x->block > y->block) - (x->block < y->block);
  return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Marks in want[] the dead entries to adopt: dirty, trusted, the latest
 * write of their block, a block this cache does not have. */
static void pick(struct bcache *bc, const struct uk_kdata *dead, uint8_t *want,
                 struct bcache_adopt_stats *st) {
  uint32_t *idx = malloc(UK_BCACHE_MAX * sizeof *idx), n = 0;
  if (idx == NULL)
    abort(); /* out of memory: as xmalloc */
  for (uint32_t i = 0; i < UK_BCACHE_MAX; i++) {
    if (!kdisk_state_dirty(dead->bcache.ent[i].state))
      continue;
    if (kdisk_dead_entry_ok(dead, i) &&
        dead->bcache.ent[i].block < bc->t->hdr.disk_bytes / UK_DISK_BLOCK)
      idx[n++] = i;
    else
      st->torn++;
  }
  adopt_ents = dead->bcache.ent;
  qsort(idx, n, sizeof *idx, by_block_seq);
  for (uint32_t j = 0; j < n; j++) {
    uint64_t b = dead->bcache.ent[idx[j]].block;
    bool later = j + 1 < n && dead->bcache.ent[idx[j + 1]].block == b;
    if (later || lookup(bc, b) != UK_NIL)
      st->stale++;
    else
      want[idx[j]] = 1;
  }
  free(idx);
}

/* Dead segment ds, mapped at base and kept as ICA ica, made a segment of
 * this cache with its wanted entries dirty. */
static void install(struct bcache *bc, const struct uk_bcache *dt, uint32_t ds,
                    uint8_t *base, uint32_t ica, const uint8_t *want,
                    struct bcache_adopt_stats *st) {
  struct uk_bcache_hdr *h = &bc->t->hdr;
  uint32_t s = seg_add(bc, ica, base);
  for (uint32_t j = UK_BCACHE_SEG; j-- > 0;) {
    uint32_t i = s * UK_BCACHE_SEG + j, di = ds * UK_BCACHE_SEG + j;
    if (!want[di]) {
      bc->freel[bc->nfree++] = i;
      continue;
    }
    struct uk_bcache_ent *e = &bc->t->ent[i];
    e->block = dt->ent[di].block;
    e->gen = dt->ent[di].gen;
    e->seq = dt->ent[di].seq;
    e->state = UK_BC_DIRTY;
    h->wseq = e->seq > h->wseq ? e->seq : h->wseq;
    h->ncached++;
    h->ndirty++;
    bc->ref[i] = 1;
    hash_add(bc, i);
    st->adopted++;
  }
  st->segs++;
  if (h->nseg > h->seg_max) { /* the setting rises: the check holds */
    h->seg_max = h->nseg;
    st->over++;
  }
}

/* The wanted entries of dead segment ds (at base) written back now, in one
 * atomic batch. */
static int write_seg(struct bcache *bc, const struct uk_bcache *dt, uint32_t ds,
                     const uint8_t *base, const uint8_t *want,
                     struct bcache_adopt_stats *st) {
  struct kdisk_batch *wb = kdisk_batch_new();
  uint32_t n = 0;
  for (uint32_t j = 0; j < UK_BCACHE_SEG; j++)
    if (want[ds * UK_BCACHE_SEG + j]) {
      kdisk_batch_put(wb, dt->ent[ds * UK_BCACHE_SEG + j].block,
                      base + j * UK_DISK_BLOCK);
      n++;
    }
  int r = kdisk_batch_commit(bc->d, wb);
  if (r == 0) {
    st->written += n;
    bc->t->hdr.blocks_written += n;
    bc->t->hdr.writebacks++;
  }
  return r;
}

static uint32_t count_wanted(const uint8_t *want, uint32_t ds) {
  uint32_t n = 0;
  for (uint32_t j = 0; j < UK_BCACHE_SEG; j++)
    n += want[ds * UK_BCACHE_SEG + j];
  return n;
}

/* Dead segment ds: kept as a segment of this cache when it has room and
 * the kernel takes the ICA, else its blocks written back now. */
static int adopt_seg(struct bcache *bc, const struct uk_bcache *dt, uint32_t ds,
                     int *ica_fd, const uint8_t *want,
                     struct bcache_adopt_stats *st) {
  uint32_t n = count_wanted(want, ds), ica;
  uint32_t x = KABI_ICA_INDEX(dt->seg_ica[ds]); /* < UK_ICA_MAX: checked */
  if (n == 0)
    return 0;
  uint8_t *base = ica_fd[x] < 0
                      ? MAP_FAILED
                      : mmap(NULL, UK_BCACHE_SEG_BYTES, PROT_READ | PROT_WRITE,
                             MAP_SHARED, ica_fd[x], 0);
  if (base == MAP_FAILED) {
    st->torn += n; /* the machine has no memory for it */
    return 0;
  }
  if (bc->t->hdr.nseg < UK_BCACHE_SEGS_MAX && bc->ops.seg_keep &&
      bc->ops.seg_keep(bc->ops.arg, ica_fd[x], &ica) == 0) {
    ica_fd[x] = -1;
    install(bc, dt, ds, base, ica, want, st);
    return 0;
  }
  int r = write_seg(bc, dt, ds, base, want, st);
  munmap(base, UK_BCACHE_SEG_BYTES);
  if (st->tick)
    st->tick(st->tick_arg);
  return r;
}

int bcache_adopt(struct bcache *bc, const struct uk_kdata *dead, int *ica_fd,
                 struct bcache_adopt_stats *st) {
  *st = (struct bcache_adopt_stats){.tick = st->tick, .tick_arg = st->tick_arg};
  int r = kdisk_dead_cache(dead);
  if (r <= 0)
    return r;
  uint8_t *want = calloc(UK_BCACHE_MAX, 1);
  if (want == NULL)
    abort(); /* out of memory: as xmalloc */
  pick(bc, dead, want, st);
  for (uint32_t ds = 0; ds < UK_BCACHE_SEGS_MAX && r >= 0; ds++)
    r = adopt_seg(bc, &dead->bcache, ds, ica_fd, want, st);
  free(want);
  return r < 0 ? r : 0;
}

/* Invariants ------------------------------------------------------------- */

/* Entry i against the segment table: its ICA and offset, its state. */
static const char *ent_wrong(const struct uk_bcache *t, uint32_t i) {
  const struct uk_bcache_ent *e = &t->ent[i];
  if (i >= t->hdr.nseg * UK_BCACHE_SEG)
    return e->state == UK_BC_FREE ? NULL : "an entry beyond the segments";
  if (e->state > UK_BC_WRITING)
    return "an entry state out of range";
  if (e->ica != t->seg_ica[i / UK_BCACHE_SEG] ||
      e->off != (i % UK_BCACHE_SEG) * UK_DISK_BLOCK)
    return "an entry whose ICA or offset is not its segment's";
  if (e->state != UK_BC_FREE &&
      (e->gen == 0 || e->block >= t->hdr.disk_bytes / UK_DISK_BLOCK))
    return "a cached entry with gen 0 or a block past the disk";
  return NULL;
}

int bcache_check(const struct uk_bcache *t, char *why, size_t len) {
  const char *w = NULL;
  uint32_t cached = 0, dirty = 0;
  if (t->hdr.block_size == 0)
    return 0; /* no disk */
  if (t->hdr.block_size != UK_DISK_BLOCK || t->hdr.nseg > t->hdr.seg_max ||
      t->hdr.seg_max > UK_BCACHE_SEGS_MAX)
    w = "a header out of range";
  for (uint32_t i = 0; w == NULL && i < UK_BCACHE_MAX; i++) {
    w = ent_wrong(t, i);
    cached += t->ent[i].state != UK_BC_FREE;
    dirty += t->ent[i].state == UK_BC_DIRTY || t->ent[i].state == UK_BC_WRITING;
  }
  if (w == NULL && (cached != t->hdr.ncached || dirty != t->hdr.ndirty))
    w = "counts that disagree with the entries";
  if (w == NULL)
    return 0;
  snprintf(why, len, "%s", w);
  return -EINVAL;
}
