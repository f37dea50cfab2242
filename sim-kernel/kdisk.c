/* The disk device: a LevelDB database of UK_DISK_BLOCK-byte blocks
 * (kdisk.h has the format and the ownership rule), and the failover
 * write-back that reads nothing but a dead kernel's kernel data.
 *
 * This file does not know struct kern: a backup kernel, a tool or a unit
 * test calls kdisk_writeback_from with a mapping of the dead region. */
#include <errno.h>
#include <leveldb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kdisk.h"
#include "uksim/kabi.h"

struct kdisk {
  leveldb_t *db;
  leveldb_options_t *opt;
  leveldb_readoptions_t *ro;
  leveldb_writeoptions_t *wo;
};

struct kdisk_batch {
  leveldb_writebatch_t *b;
};

static void key_of(uint64_t b, char key[8]) {
  for (int i = 7; i >= 0; i--, b >>= 8)
    key[i] = (char)(b & 0xff);
}

/* LevelDB says "lock ... Resource temporarily unavailable" (another
 * process) or "lock ... already held by process" (this one). */
static int open_error(const char *msg) {
  return strstr(msg, "lock") != NULL ? -EBUSY : -EIO;
}

int kdisk_open(const char *path, struct kdisk **out, char *err, size_t len) {
  struct kdisk *d = calloc(1, sizeof *d);
  char *e = NULL;
  if (d == NULL)
    return -ENOMEM;
  d->opt = leveldb_options_create();
  leveldb_options_set_create_if_missing(d->opt, 1);
  /* Blocks are large and written in large batches: a memtable that holds a
   * whole batch, and no compression (the CPU it costs is the write-back's
   * time, and disk contents compress poorly). */
  leveldb_options_set_write_buffer_size(d->opt, KDISK_MEMTABLE_BYTES);
  leveldb_options_set_max_file_size(d->opt, KDISK_MEMTABLE_BYTES);
  leveldb_options_set_compression(d->opt, leveldb_no_compression);
  d->db = leveldb_open(d->opt, path, &e);
  if (e != NULL) {
    int r = open_error(e);
    snprintf(err, len, "%s", e);
    leveldb_free(e);
    leveldb_options_destroy(d->opt);
    free(d);
    return r;
  }
  d->ro = leveldb_readoptions_create();
  d->wo = leveldb_writeoptions_create();
  leveldb_writeoptions_set_sync(d->wo, 1); /* a sync means on the disk */
  *out = d;
  return 0;
}

void kdisk_close(struct kdisk *d) {
  if (d == NULL)
    return;
  leveldb_close(d->db);
  leveldb_readoptions_destroy(d->ro);
  leveldb_writeoptions_destroy(d->wo);
  leveldb_options_destroy(d->opt);
  free(d);
}

int kdisk_read(struct kdisk *d, uint64_t b, void *buf) {
  char key[8], *e = NULL;
  size_t n = 0;
  key_of(b, key);
  char *v = leveldb_get(d->db, d->ro, key, sizeof key, &n, &e);
  if (e != NULL) {
    leveldb_free(e);
    return -EIO;
  }
  memset(buf, 0, UK_DISK_BLOCK);
  if (v != NULL) /* a value of another size is someone else's: cut or pad */
    memcpy(buf, v, n < UK_DISK_BLOCK ? n : UK_DISK_BLOCK);
  leveldb_free(v);
  return 0;
}

struct kdisk_batch *kdisk_batch_new(void) {
  struct kdisk_batch *wb = malloc(sizeof *wb);
  if (wb == NULL)
    abort(); /* out of memory: as xmalloc */
  wb->b = leveldb_writebatch_create();
  return wb;
}

void kdisk_batch_put(struct kdisk_batch *wb, uint64_t b, const void *buf) {
  char key[8];
  key_of(b, key);
  leveldb_writebatch_put(wb->b, key, sizeof key, buf, UK_DISK_BLOCK);
}

int kdisk_batch_commit(struct kdisk *d, struct kdisk_batch *wb) {
  char *e = NULL;
  leveldb_write(d->db, d->wo, wb->b, &e);
  leveldb_writebatch_destroy(wb->b);
  free(wb);
  if (e != NULL) {
    leveldb_free(e);
    return -EIO;
  }
  return 0;
}

/* Write-back from a dead kernel ----------------------------------------- */

bool kdisk_dead_entry_ok(const struct uk_kdata *dead, uint32_t i) {
  const struct uk_bcache *t = &dead->bcache;
  const struct uk_bcache_ent *e = &t->ent[i];
  uint32_t s = i / UK_BCACHE_SEG;
  if (s >= t->hdr.nseg || e->gen == 0 || e->ica != t->seg_ica[s] ||
      e->off != (i % UK_BCACHE_SEG) * UK_DISK_BLOCK ||
      e->block >= t->hdr.disk_bytes / UK_DISK_BLOCK)
    return false;
  uint32_t x = KABI_ICA_INDEX(e->ica);
  if (x >= UK_ICA_MAX)
    return false;
  const struct uk_ica_ent *ie = &dead->ica[x];
  return ie->state == UK_ICA_LIVE && ie->gen == KABI_ICA_GEN(e->ica) &&
         ie->holder_kind == UK_HOLD_KERNEL && ie->size == UK_BCACHE_SEG_BYTES;
}

bool kdisk_state_dirty(uint8_t state) {
  return state == UK_BC_DIRTY || state == UK_BC_WRITING;
}

int kdisk_dead_cache(const struct uk_kdata *dead) {
  if (dead->hdr.magic != UK_KDATA_MAGIC || dead->hdr.layout != UK_KDATA_LAYOUT)
    return -EINVAL;
  if (dead->bcache.hdr.block_size == 0)
    return 0; /* it had no disk */
  return dead->bcache.hdr.block_size == UK_DISK_BLOCK ? 1 : -EINVAL;
}

/* qsort by seq: a later Put of a key in one batch wins, so older first. */
static const struct uk_bcache_ent *sort_ents;
static int by_seq(const void *a, const void *b) {
  uint64_t x = sort_ents[*(const uint32_t *)a].seq;
  uint64_t y = sort_ents[*(const uint32_t *)b].seq;
  return (x > y) - (x < y);
}

/* The trusted dirty entries of dead, oldest write first, in idx[]. */
static uint32_t dead_dirty(const struct uk_kdata *dead, uint32_t *idx,
                           struct kdisk_wb_stats *st) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < UK_BCACHE_MAX; i++) {
    if (!kdisk_state_dirty(dead->bcache.ent[i].state))
      continue;
    if (kdisk_dead_entry_ok(dead, i))
      idx[n++] = i;
    else
      st->torn++;
  }
  sort_ents = dead->bcache.ent;
  qsort(idx, n, sizeof *idx, by_seq);
  return n;
}

/* The base of segment s, mapped once; NULL if it cannot be had. */
static const uint8_t *dead_seg(const struct uk_kdata *dead, uint32_t s,
                               void *(*map_ica)(uint32_t, void *), void *arg,
                               const uint8_t **bases) {
  if (bases[s] == NULL)
    bases[s] = map_ica(dead->bcache.seg_ica[s], arg);
  return bases[s];
}

int kdisk_writeback_from(const struct uk_kdata *dead,
                         void *(*map_ica)(uint32_t id, void *arg), void *arg,
                         struct kdisk *d, struct kdisk_wb_stats *st) {
  st->written = st->torn = st->batches = 0; /* the tick is the caller's */
  int has = kdisk_dead_cache(dead);
  if (has <= 0)
    return has;
  uint32_t *idx = malloc(UK_BCACHE_MAX * sizeof *idx);
  const uint8_t *bases[UK_BCACHE_SEGS_MAX] = {0};
  if (idx == NULL)
    return -ENOMEM;
  uint32_t n = dead_dirty(dead, idx, st);
  struct kdisk_batch *wb = NULL;
  uint32_t in = 0;
  int r = 0;
  for (uint32_t j = 0; j < n && r == 0; j++) {
    const struct uk_bcache_ent *e = &dead->bcache.ent[idx[j]];
    const uint8_t *base =
        dead_seg(dead, idx[j] / UK_BCACHE_SEG, map_ica, arg, bases);
    if (base == NULL) {
      st->torn++;
      continue;
    }
    if (wb == NULL)
      wb = kdisk_batch_new();
    kdisk_batch_put(wb, e->block, base + e->off);
    st->written++;
    if (++in == KDISK_BATCH_BLOCKS) {
      r = kdisk_batch_commit(d, wb);
      st->batches += r == 0;
      wb = NULL;
      in = 0;
      if (st->tick)
        st->tick(st->tick_arg);
    }
  }
  if (wb != NULL) { /* the loop left r == 0: a failed commit freed it */
    r = kdisk_batch_commit(d, wb);
    st->batches += r == 0;
  }
  free(idx);
  return r;
}

/* kdisk_writeback_fds: ICAs mapped from descriptors, undone at the end. */
struct fd_maps {
  const int *fd;
  void *base[UK_BCACHE_SEGS_MAX];
  uint32_t n;
};

static void *map_fd(uint32_t id, void *arg) {
  struct fd_maps *m = arg;
  uint32_t i = KABI_ICA_INDEX(id);
  if (i >= UK_ICA_MAX || m->fd[i] < 0 || m->n == UK_BCACHE_SEGS_MAX)
    return NULL;
  void *p = mmap(NULL, UK_BCACHE_SEG_BYTES, PROT_READ, MAP_SHARED, m->fd[i], 0);
  if (p == MAP_FAILED)
    return NULL; /* e.g. a memfd shorter than a segment: its blocks torn */
  m->base[m->n++] = p;
  return p;
}

int kdisk_writeback_fds(const struct uk_kdata *dead, const int *ica_fd,
                        struct kdisk *d, struct kdisk_wb_stats *st) {
  struct fd_maps m = {.fd = ica_fd};
  int r = kdisk_writeback_from(dead, map_fd, &m, d, st);
  for (uint32_t i = 0; i < m.n; i++)
    munmap(m.base[i], UK_BCACHE_SEG_BYTES);
  return r;
}
