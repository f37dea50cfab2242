/* The disk device and its buffer cache (sim-kernel/kdisk.h): a real
 * LevelDB in a temporary directory and segments in memfds, as the kernel's
 * ICAs are.  Checked: hits and misses, eviction of clean blocks only, the
 * dirty accounting, -EAGAIN when everything is dirty, write-back by
 * reading LevelDB itself, the disk's lock, and the failover write-back from
 * a dead kernel's table alone (with a torn entry). */
#include <criterion/criterion.h>
#include <errno.h>
#include <leveldb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kdisk.h"
#include "ktab.h"

#define BLK UK_DISK_BLOCK
#define SEGS_MAX 8

static char dir[64];
static struct kdisk *disk;
static struct uk_kdata *kd;
static int seg_fd[UK_ICA_MAX];
static unsigned segs_made;

/* A segment is a memfd and an entry of kd's ICA table, held by the kernel,
 * as kern__ica_new makes them. */
static int seg_new(void *arg, uint32_t *ica, void **base) {
  (void)arg;
  int fd = memfd_create("seg", MFD_CLOEXEC);
  cr_assert_geq(fd, 0);
  cr_assert_eq(ftruncate(fd, UK_BCACHE_SEG_BYTES), 0);
  cr_assert_eq(
      kern_ica_alloc(kd, KABI_ICA_DATA, UK_BCACHE_SEG_BYTES, UK_NIL, ica), 0);
  kern_ica_move(kd, *ica, UK_HOLD_KERNEL, 0);
  *base = mmap(NULL, UK_BCACHE_SEG_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED,
               fd, 0);
  cr_assert_neq(*base, MAP_FAILED);
  seg_fd[KABI_ICA_INDEX(*ica)] = fd;
  segs_made++;
  return 0;
}

static void seg_drop(void *arg, uint32_t ica, void *base) {
  (void)arg;
  munmap(base, UK_BCACHE_SEG_BYTES);
  close(seg_fd[KABI_ICA_INDEX(ica)]);
  kern_ica_free(kd, ica);
}

static const struct bcache_seg_ops ops = {.seg_new = seg_new,
                                          .seg_drop = seg_drop};

static void setup(void) {
  char err[256];
  snprintf(dir, sizeof dir, "/tmp/test_bcache.XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
  cr_assert_eq(kdisk_open(dir, &disk, err, sizeof err), 0, "%s", err);
  kd = malloc(sizeof *kd);
  kern_kdata_init(kd, 1, 1, 1ull << 32);
  segs_made = 0;
  for (int i = 0; i < UK_ICA_MAX; i++)
    seg_fd[i] = -1;
}

static void teardown(void) {
  kdisk_close(disk); /* NULL if a test closed it to read LevelDB */
  free(kd);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  cr_assert_eq(system(cmd), 0);
}

/* A cache of `mib` MiB over a 64 MiB disk. */
static struct bcache *cache(uint32_t mib) {
  return bcache_new(&kd->bcache, disk, dir, 64ull << 20, mib, &ops);
}

/* The table's invariants hold (bcache_check). */
static void check(void) {
  char why[128];
  cr_assert_eq(bcache_check(&kd->bcache, why, sizeof why), 0, "%s", why);
}

static void fill(uint8_t *b, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++)
    b[i] = (uint8_t)(seed * 131 + i * 7);
}

/* Block b as LevelDB holds it, read with LevelDB's own API. */
static bool db_block(const char *path, uint64_t b, uint8_t *out) {
  char key[8], *e = NULL;
  for (int i = 7; i >= 0; i--, b >>= 8)
    key[i] = (char)(b & 0xff);
  leveldb_options_t *o = leveldb_options_create();
  leveldb_t *db = leveldb_open(o, path, &e);
  cr_assert_null(e, "%s", e);
  leveldb_readoptions_t *ro = leveldb_readoptions_create();
  size_t n = 0;
  char *v = leveldb_get(db, ro, key, 8, &n, &e);
  if (v != NULL)
    memcpy(out, v, n < BLK ? n : BLK);
  leveldb_free(v);
  leveldb_readoptions_destroy(ro);
  leveldb_close(db);
  leveldb_options_destroy(o);
  return v != NULL;
}

TestSuite(bcache, .init = setup, .fini = teardown, .timeout = 60);

Test(bcache, unwritten_blocks_read_as_zeros_and_a_second_read_hits) {
  struct bcache *bc = cache(4);
  static uint8_t buf[3 * BLK];
  memset(buf, 0xaa, sizeof buf);
  cr_assert_eq(bcache_read(bc, buf, sizeof buf, BLK / 2), (long)sizeof buf);
  for (size_t i = 0; i < sizeof buf; i++)
    cr_assert_eq(buf[i], 0);
  cr_assert_eq(kd->bcache.hdr.misses, 4); /* half, 2 whole, half */
  cr_assert_eq(bcache_read(bc, buf, 10, BLK), 10);
  cr_assert_eq(kd->bcache.hdr.hits, 1);
  cr_assert_eq(kd->bcache.hdr.ncached, 4);
  cr_assert_eq(kd->bcache.hdr.ndirty, 0);
  check();
  bcache_free(bc);
}

/* Closes the disk so that LevelDB can be read directly (its lock). */
static void close_disk(void) {
  kdisk_close(disk);
  disk = NULL;
}

Test(bcache, a_write_spanning_blocks_is_dirty_until_written_back) {
  struct bcache *bc = cache(4);
  static uint8_t w[2 * BLK + 100], r[sizeof w], blk[BLK];
  fill(w, sizeof w, 1);
  cr_assert_eq(bcache_write(bc, w, sizeof w, BLK - 50), (long)sizeof w);
  cr_assert_eq(kd->bcache.hdr.ndirty, 4);
  cr_assert_eq(bcache_read(bc, r, sizeof r, BLK - 50), (long)sizeof r);
  cr_assert_arr_eq(r, w, sizeof w);
  for (uint32_t i = 0; i < 4; i++)
    cr_assert_eq(kd->bcache.ent[i].state, UK_BC_DIRTY);
  cr_assert_eq(bcache_writeback(bc), 0);
  cr_assert_eq(kd->bcache.hdr.ndirty, 0);
  cr_assert_eq(kd->bcache.hdr.blocks_written, 4);
  cr_assert_eq(kd->bcache.hdr.writebacks, 1);
  bcache_free(bc);
  close_disk();
  cr_assert(db_block(dir, 1, blk));
  cr_assert_arr_eq(blk, w + 50, BLK);
  cr_assert(db_block(dir, 0, blk));
  cr_assert_arr_eq(blk + BLK - 50, w, 50);
  cr_assert_eq(blk[0], 0); /* what the write did not cover stays zero */
  cr_assert(!db_block(dir, 4, blk));
}

Test(bcache, nothing_reaches_the_disk_before_a_write_back) {
  struct bcache *bc = cache(4);
  static uint8_t w[BLK], blk[BLK];
  fill(w, sizeof w, 2);
  cr_assert_eq(bcache_write(bc, w, BLK, 3 * BLK), BLK);
  /* A reader of the disk (a fresh open would need the lock: read it
   * through the device, bypassing the cache). */
  cr_assert_eq(kdisk_read(disk, 3, blk), 0);
  for (size_t i = 0; i < BLK; i++)
    cr_assert_eq(blk[i], 0);
  bcache_free(bc); /* writes back */
  cr_assert_eq(kdisk_read(disk, 3, blk), 0);
  cr_assert_arr_eq(blk, w, BLK);
}

Test(bcache, a_full_cache_evicts_clean_blocks_only) {
  struct bcache *bc = cache(4); /* one segment: 64 blocks */
  static uint8_t w[BLK], r[BLK];
  fill(w, sizeof w, 3);
  cr_assert_eq(bcache_write(bc, w, BLK, 0), BLK); /* block 0 dirty */
  for (uint64_t b = 1; b < 200; b++)              /* 199 reads: evictions */
    cr_assert_eq(bcache_read(bc, r, 1, b * BLK), 1);
  cr_assert_eq(kd->bcache.hdr.nseg, 1);
  cr_assert_eq(segs_made, 1);
  cr_assert_eq(kd->bcache.hdr.ncached, UK_BCACHE_SEG);
  cr_assert_geq(kd->bcache.hdr.evictions, 200 - UK_BCACHE_SEG);
  cr_assert_eq(kd->bcache.hdr.ndirty, 1);
  uint32_t hits = (uint32_t)kd->bcache.hdr.hits;
  cr_assert_eq(bcache_read(bc, r, BLK, 0), BLK); /* the dirty one stayed */
  cr_assert_eq(kd->bcache.hdr.hits, hits + 1);
  cr_assert_arr_eq(r, w, BLK);
  check();
  bcache_free(bc);
}

Test(bcache, a_write_waits_when_every_block_is_dirty_and_changes_nothing) {
  struct bcache *bc = cache(4);
  static uint8_t w[UK_BCACHE_SEG * BLK];
  fill(w, sizeof w, 4);
  cr_assert_eq(bcache_write(bc, w, sizeof w, 0), (long)sizeof w);
  cr_assert_eq(kd->bcache.hdr.ndirty, UK_BCACHE_SEG);
  struct uk_bcache before = kd->bcache;
  cr_assert_eq(bcache_write(bc, w, 10, 100ull * BLK), -EAGAIN);
  cr_assert_eq(kd->bcache.hdr.waits, 1);
  before.hdr.waits = 1;
  cr_assert_eq(memcmp(&before, &kd->bcache, sizeof before), 0);
  cr_assert_eq(bcache_writeback(bc), 0);
  cr_assert_eq(bcache_write(bc, w, 10, 100ull * BLK), 10);
  cr_assert_eq(kd->bcache.hdr.ndirty, 1);
  check();
  bcache_free(bc);
}

Test(bcache, bad_offsets_and_sizes_are_errors) {
  struct bcache *bc = cache(4);
  static uint8_t w[UK_BCACHE_SEG * BLK + 1];
  uint64_t end = 64ull << 20;
  cr_assert_eq(bcache_write(bc, w, 1, end), -ENOSPC);
  cr_assert_eq(bcache_write(bc, w, 1, UINT64_MAX), -ENOSPC);
  cr_assert_eq(bcache_read(bc, w, 1, end), 0);
  cr_assert_eq(bcache_read(bc, w, 1, UINT64_MAX - 5), 0);
  cr_assert_eq(bcache_write(bc, w, 10, end - 4), 4); /* cut at the end */
  cr_assert_eq(bcache_read(bc, w, 10, end - 4), 4);
  cr_assert_eq(bcache_write(bc, w, sizeof w, 0), -EFBIG); /* > the cache */
  cr_assert_eq(bcache_write(bc, w, 0, 0), 0);
  check();
  bcache_free(bc);
}

Test(bcache, the_disk_has_one_owner) {
  struct kdisk *other;
  char err[256];
  cr_assert_eq(kdisk_open(dir, &other, err, sizeof err), -EBUSY);
  close_disk();
  cr_assert_eq(kdisk_open(dir, &other, err, sizeof err), 0, "%s", err);
  disk = other; /* the next owner, once the first let go */
}

/* The failover path: kd is "dead"; its segments are reached by ICA id. */
static void *map_seg(uint32_t id, void *arg) {
  (void)arg;
  void *m = mmap(NULL, UK_BCACHE_SEG_BYTES, PROT_READ, MAP_SHARED,
                 seg_fd[KABI_ICA_INDEX(id)], 0);
  return m == MAP_FAILED ? NULL : m;
}

Test(bcache, a_dead_kernels_dirty_blocks_are_written_from_its_tables) {
  struct bcache *bc = cache(8);
  static uint8_t w[3 * BLK], blk[BLK];
  fill(w, sizeof w, 5);
  cr_assert_eq(bcache_write(bc, w, BLK, 10ull * BLK), BLK); /* entry 0 */
  cr_assert_eq(bcache_writeback(bc), 0);                    /* clean */
  cr_assert_eq(bcache_write(bc, w + BLK, BLK, 11ull * BLK), BLK);
  cr_assert_eq(bcache_write(bc, w + 2 * BLK, BLK, 12ull * BLK), BLK);
  cr_assert_eq(bcache_write(bc, w, BLK, 13ull * BLK), BLK);
  check();
  /* Entry 3 (block 13) is torn: its offset disagrees with its index. */
  kd->bcache.ent[3].off += 1;
  char why[128];
  cr_assert_eq(bcache_check(&kd->bcache, why, sizeof why), -EINVAL);
  cr_assert_str_eq(why, "an entry whose ICA or offset is not its segment's");
  /* The kernel dies: nothing of bc is used from here on. */
  struct kdisk_wb_stats st = {0};
  cr_assert_eq(kdisk_writeback_from(kd, map_seg, NULL, disk, &st), 0);
  cr_assert_eq(st.written, 2);
  cr_assert_eq(st.torn, 1);
  cr_assert_eq(st.batches, 1);
  cr_assert_eq(kdisk_read(disk, 11, blk), 0);
  cr_assert_arr_eq(blk, w + BLK, BLK);
  cr_assert_eq(kdisk_read(disk, 12, blk), 0);
  cr_assert_arr_eq(blk, w + 2 * BLK, BLK);
  cr_assert_eq(kdisk_read(disk, 13, blk), 0);
  cr_assert_eq(blk[5], 0); /* the torn one was skipped */
  /* Not a kernel-data region: refused. */
  kd->hdr.layout++;
  cr_assert_eq(kdisk_writeback_from(kd, map_seg, NULL, disk, &st), -EINVAL);
  kd->hdr.layout--;
  kd->bcache.ent[3].off -= 1;
  bcache_free(bc);
}

/* kd's cache table made garbage: every entry wrong in some way, the
 * segments' ICAs and their count too (seed: srand's). */
static void scramble(unsigned seed) {
  srand(seed);
  for (uint32_t i = 0; i < UK_BCACHE_MAX; i++) {
    struct uk_bcache_ent *e = &kd->bcache.ent[i];
    e->state = (uint8_t)(rand() % 5);
    e->block = (uint64_t)rand() << 20;
    e->ica = (uint32_t)rand();
    e->off = (uint32_t)rand();
    e->gen = (uint32_t)rand();
  }
  for (uint32_t s = 0; s < UK_BCACHE_SEGS_MAX; s++)
    kd->bcache.seg_ica[s] = (uint32_t)rand();
  kd->bcache.hdr.nseg = (uint32_t)rand();
}

Test(bcache, a_dead_table_with_garbage_is_skipped_not_followed) {
  struct bcache *bc = cache(4);
  static uint8_t w[BLK];
  fill(w, sizeof w, 6);
  cr_assert_eq(bcache_write(bc, w, BLK, 0), BLK);
  struct uk_bcache saved = kd->bcache;
  scramble(7);
  char why[128];
  cr_assert_eq(bcache_check(&kd->bcache, why, sizeof why), -EINVAL);
  struct kdisk_wb_stats st = {0};
  cr_assert_eq(kdisk_writeback_from(kd, map_seg, NULL, disk, &st), 0);
  cr_assert_eq(st.written, 0);
  cr_assert_gt(st.torn, 0);
  kd->bcache = saved;
  bcache_free(bc);
}

Test(bcache, the_failover_write_back_takes_the_machines_descriptors) {
  struct bcache *bc = cache(8);
  static uint8_t w[BLK], blk[BLK];
  fill(w, sizeof w, 8);
  for (uint64_t b = 0; b < 70; b++) /* two segments */
    cr_assert_eq(bcache_write(bc, w, BLK, b * BLK), BLK);
  /* The same copy of the region as the other test, read-only this time. */
  size_t size = sizeof *kd;
  struct uk_kdata *ro = mmap(NULL, size, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  cr_assert_neq(ro, MAP_FAILED);
  memcpy(ro, kd, size);
  cr_assert_eq(mprotect(ro, size, PROT_READ), 0);
  struct kdisk_wb_stats st = {0};
  cr_assert_eq(kdisk_writeback_fds(ro, seg_fd, disk, &st), 0);
  cr_assert_eq(st.written, 70);
  cr_assert_eq(st.torn, 0);
  for (uint64_t b = 0; b < 70; b += 23) {
    cr_assert_eq(kdisk_read(disk, b, blk), 0);
    cr_assert_arr_eq(blk, w, BLK);
  }
  /* A segment the machine no longer holds: its blocks are torn, not read. */
  int keep = seg_fd[KABI_ICA_INDEX(kd->bcache.seg_ica[1])];
  seg_fd[KABI_ICA_INDEX(kd->bcache.seg_ica[1])] = -1;
  cr_assert_eq(kdisk_writeback_fds(ro, seg_fd, disk, &st), 0);
  cr_assert_eq(st.written, 64);
  cr_assert_eq(st.torn, 6);
  seg_fd[KABI_ICA_INDEX(kd->bcache.seg_ica[1])] = keep;
  munmap(ro, size);
  bcache_free(bc);
}

/* Random reads, writes and write-backs against a plain array of the disk's
 * bytes (SQLite's way with tricky structures): contents and invariants
 * after every step, in a cache small enough to evict and to wait. */
Test(bcache, random_operations_agree_with_a_flat_model) {
  enum { SPAN = 8u << 20 };
  struct bcache *bc = cache(4);
  uint8_t *model = calloc(1, SPAN), *buf = malloc(3 * BLK);
  srand(11);
  for (int step = 0; step < 400; step++) {
    uint32_t n = 1 + (uint32_t)rand() % (3 * BLK);
    uint64_t off = (uint64_t)rand() % (SPAN - n);
    int op = rand() % 10;
    if (op < 5) {
      fill(buf, n, (unsigned)step);
      long r = bcache_write(bc, buf, n, off);
      if (r == -EAGAIN) {
        cr_assert_eq(bcache_writeback_some(bc, KDISK_STEP_BLOCKS) > 0, 1);
        r = bcache_write(bc, buf, n, off);
      }
      cr_assert_eq(r, (long)n, "step %d: %ld", step, r);
      memcpy(model + off, buf, n);
    } else if (op < 9) {
      cr_assert_eq(bcache_read(bc, buf, n, off), (long)n);
      cr_assert_eq(memcmp(buf, model + off, n), 0, "step %d", step);
    } else {
      cr_assert_geq(bcache_writeback_some(bc, 1 + rand() % 8), 0);
    }
    check();
  }
  cr_assert_gt(kd->bcache.hdr.waits, 0);     /* it did fill with dirt */
  cr_assert_gt(kd->bcache.hdr.evictions, 0); /* and evicted */
  bcache_free(bc); /* writes back: the disk now says what the model says */
  for (uint64_t b = 0; b < SPAN / BLK; b++) {
    cr_assert_eq(kdisk_read(disk, b, buf), 0);
    cr_assert_eq(memcmp(buf, model + b * BLK, BLK), 0, "block %llu",
                 (unsigned long long)b);
  }
  free(model);
  free(buf);
}

/* Cache adoption (bcache_adopt) -------------------------------------------
 *
 * kd is the dead kernel's region, as above; a new kernel ("side") has its
 * own region and cache over the same disk, its segments ICAs of its own
 * table, and takes a dead segment by keeping its descriptor (seg_keep, as
 * kern__ica_keep does), up to `keeps` of them (its ICA budget). */
struct side {
  struct uk_kdata *kd;
  struct bcache *bc;
  int fd[UK_ICA_MAX];
  int keeps;
};

static int side_ica(struct side *s, int fd, uint32_t *ica) {
  cr_assert_eq(
      kern_ica_alloc(s->kd, KABI_ICA_DATA, UK_BCACHE_SEG_BYTES, UK_NIL, ica),
      0);
  kern_ica_move(s->kd, *ica, UK_HOLD_KERNEL, 0);
  s->fd[KABI_ICA_INDEX(*ica)] = fd;
  return 0;
}

static int side_new(void *arg, uint32_t *ica, void **base) {
  int fd = memfd_create("seg", MFD_CLOEXEC);
  cr_assert_eq(ftruncate(fd, UK_BCACHE_SEG_BYTES), 0);
  *base = mmap(NULL, UK_BCACHE_SEG_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED,
               fd, 0);
  cr_assert_neq(*base, MAP_FAILED);
  return side_ica(arg, fd, ica);
}

static void side_drop(void *arg, uint32_t ica, void *base) {
  struct side *s = arg;
  munmap(base, UK_BCACHE_SEG_BYTES);
  close(s->fd[KABI_ICA_INDEX(ica)]);
  s->fd[KABI_ICA_INDEX(ica)] = -1;
  kern_ica_free(s->kd, ica);
}

static int side_keep(void *arg, int fd, uint32_t *ica) {
  struct side *s = arg;
  if (s->keeps == 0)
    return -ENOMEM;
  s->keeps--;
  return side_ica(s, fd, ica);
}

/* A new kernel with a cache of mib MiB that may keep `keeps` segments. */
static struct side *side_up(uint32_t mib, int keeps) {
  struct side *s = calloc(1, sizeof *s);
  s->kd = malloc(sizeof *s->kd);
  kern_kdata_init(s->kd, 2, 2, 1ull << 32);
  for (int i = 0; i < UK_ICA_MAX; i++)
    s->fd[i] = -1;
  s->keeps = keeps;
  struct bcache_seg_ops o = {.seg_new = side_new,
                             .seg_drop = side_drop,
                             .seg_keep = side_keep,
                             .arg = s};
  s->bc = bcache_new(&s->kd->bcache, disk, dir, 64ull << 20, mib, &o);
  return s;
}

static void side_down(struct side *s) {
  bcache_free(s->bc);
  free(s->kd);
  free(s);
}

/* Duplicates of the dead kernel's descriptors, as the machine hands them
 * over (the dead cache keeps its own to be freed at the end). */
static void machine_fds(int *fd) {
  for (int i = 0; i < UK_ICA_MAX; i++)
    fd[i] = seg_fd[i] < 0 ? -1 : dup(seg_fd[i]);
}

static void close_fds(int *fd) {
  for (int i = 0; i < UK_ICA_MAX; i++)
    if (fd[i] >= 0)
      close(fd[i]);
}

/* The dead kernel (kd) dies: a new kernel with a cache of mib MiB that may
 * keep `keeps` segments adopts its cache from the machine's descriptors
 * (fds, the caller's to close). */
static struct side *adopt_dead(int *fds, uint32_t mib, int keeps,
                               struct bcache_adopt_stats *st) {
  machine_fds(fds);
  struct side *s = side_up(mib, keeps);
  cr_assert_eq(bcache_adopt(s->bc, kd, fds, st), 0);
  return s;
}

static void side_check(const struct side *s) {
  char why[128];
  cr_assert_eq(bcache_check(&s->kd->bcache, why, sizeof why), 0, "%s", why);
}

/* The entry of s's cache holding block b (UK_NIL: none). */
static uint32_t side_entry(const struct side *s, uint64_t b) {
  for (uint32_t i = 0; i < UK_BCACHE_MAX; i++)
    if (s->kd->bcache.ent[i].state != UK_BC_FREE &&
        s->kd->bcache.ent[i].block == b)
      return i;
  return UK_NIL;
}

static void assert_block(struct bcache *bc, uint64_t b, const uint8_t *want) {
  static uint8_t got[BLK];
  cr_assert_eq(bcache_read(bc, got, BLK, b * BLK), BLK);
  cr_assert_arr_eq(got, want, BLK, "block %llu", (unsigned long long)b);
}

Test(bcache, adopted_blocks_stay_dirty_in_the_dead_segments_no_byte_copied) {
  struct bcache *bc = cache(8);
  static uint8_t w[BLK], v[BLK], blk[BLK];
  fill(w, sizeof w, 21);
  fill(v, sizeof v, 22);
  for (uint64_t b = 0; b < 70; b++) /* two segments, all clean */
    cr_assert_eq(bcache_write(bc, w, BLK, b * BLK), BLK);
  cr_assert_eq(bcache_writeback(bc), 0);
  cr_assert_eq(bcache_write(bc, v, BLK, 3 * BLK), BLK);  /* segment 0 */
  cr_assert_eq(bcache_write(bc, v, BLK, 66 * BLK), BLK); /* segment 1 */
  uint32_t dead3 = UK_NIL;
  for (uint32_t i = 0; i < UK_BCACHE_MAX && dead3 == UK_NIL; i++)
    if (kd->bcache.ent[i].block == 3 && kd->bcache.ent[i].state)
      dead3 = i;
  /* The kernel dies; a new one adopts. */
  int fds[UK_ICA_MAX];
  struct bcache_adopt_stats st = {0};
  struct side *s = adopt_dead(fds, 4, UK_BCACHE_SEGS_MAX, &st);
  cr_assert_eq(st.adopted, 2);
  cr_assert_eq(st.segs, 2);
  cr_assert_eq(st.over, 1); /* two segments in a cache of one */
  cr_assert_eq(st.written + st.torn + st.stale, 0);
  for (int k = 0; k < 2; k++)
    cr_assert_eq(fds[KABI_ICA_INDEX(kd->bcache.seg_ica[k])], -1); /* taken */
  side_check(s);
  cr_assert_eq(s->kd->bcache.hdr.ndirty, 2);
  cr_assert_eq(s->kd->bcache.hdr.ncached, 2); /* clean ones dropped */
  uint32_t i = side_entry(s, 3);
  cr_assert_neq(i, UK_NIL);
  cr_assert_eq(s->kd->bcache.ent[i].state, UK_BC_DIRTY);
  cr_assert_eq(i % UK_BCACHE_SEG, dead3 % UK_BCACHE_SEG); /* same offset */
  cr_assert_eq(s->kd->bcache.ent[i].seq, kd->bcache.ent[dead3].seq);
  assert_block(s->bc, 3, v);
  assert_block(s->bc, 66, v);
  /* The same memory, not a copy: a byte changed in the dead mapping is
   * the adopted block's. */
  uint8_t *dead_seg =
      mmap(NULL, UK_BCACHE_SEG_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED,
           seg_fd[KABI_ICA_INDEX(kd->bcache.seg_ica[0])], 0);
  dead_seg[(dead3 % UK_BCACHE_SEG) * BLK] ^= 0xff;
  cr_assert_eq(bcache_read(s->bc, blk, 1, 3 * BLK), 1);
  cr_assert_eq(blk[0], (uint8_t)(v[0] ^ 0xff));
  dead_seg[(dead3 % UK_BCACHE_SEG) * BLK] ^= 0xff;
  munmap(dead_seg, UK_BCACHE_SEG_BYTES);
  /* Not on the disk until this cache writes it back. */
  cr_assert_eq(kdisk_read(disk, 66, blk), 0);
  cr_assert_arr_eq(blk, w, BLK);
  cr_assert_eq(bcache_writeback_some(s->bc, KDISK_STEP_BLOCKS), 2);
  cr_assert_eq(kdisk_read(disk, 66, blk), 0);
  cr_assert_arr_eq(blk, v, BLK);
  cr_assert_eq(s->kd->bcache.hdr.ndirty, 0);
  side_check(s);
  close_fds(fds);
  side_down(s);
  bcache_free(bc);
}

Test(bcache, a_second_failover_adopts_the_adopted_blocks_again) {
  struct bcache *bc = cache(4);
  static uint8_t w[BLK], x[BLK];
  fill(w, sizeof w, 23);
  fill(x, sizeof x, 24);
  cr_assert_eq(bcache_write(bc, w, BLK, 9 * BLK), BLK);
  int fds[UK_ICA_MAX];
  struct bcache_adopt_stats st = {0};
  struct side *s = adopt_dead(fds, 4, UK_BCACHE_SEGS_MAX, &st);
  cr_assert_eq(st.adopted, 1);
  cr_assert_eq(bcache_write(s->bc, x, BLK, 10 * BLK), BLK); /* its own */
  /* s dies before writing anything back: a third kernel adopts from s's
   * table, whose ICAs s holds as its own. */
  int fds2[UK_ICA_MAX];
  for (int i = 0; i < UK_ICA_MAX; i++)
    fds2[i] = s->fd[i] < 0 ? -1 : dup(s->fd[i]);
  struct side *t = side_up(4, UK_BCACHE_SEGS_MAX);
  cr_assert_eq(bcache_adopt(t->bc, s->kd, fds2, &st), 0);
  cr_assert_eq(st.adopted, 2);
  cr_assert_eq(st.torn, 0);
  side_check(t);
  assert_block(t->bc, 9, w);
  assert_block(t->bc, 10, x);
  cr_assert_eq(bcache_writeback(t->bc), 0);
  static uint8_t blk[BLK];
  cr_assert_eq(kdisk_read(disk, 9, blk), 0);
  cr_assert_arr_eq(blk, w, BLK);
  close_fds(fds);
  close_fds(fds2);
  side_down(t);
  side_down(s);
  bcache_free(bc);
}

Test(bcache, adoption_drops_torn_and_stale_entries_and_keeps_the_latest_write) {
  struct bcache *bc = cache(8);
  static uint8_t w[6 * BLK];
  fill(w, sizeof w, 25);
  cr_assert_eq(bcache_write(bc, w, sizeof w, 20 * BLK), (long)sizeof w);
  /* Entries 0..5 hold blocks 20..25, dirty, in write order. */
  struct uk_bcache_ent *e = kd->bcache.ent;
  e[1].state = UK_BC_WRITING; /* a write-back in flight: whole, adopted */
  e[2].off += 1;              /* torn: not its segment's offset */
  e[3].block = 64ull << 20;   /* torn: past the disk */
  e[4].block = 20;            /* the same block as entry 0, written later */
  e[5].state = UK_BC_FREE;    /* a write not yet acknowledged */
  e[0].seq = 1;
  e[4].seq = 9;
  int fds[UK_ICA_MAX];
  struct bcache_adopt_stats st = {0};
  struct side *s = adopt_dead(fds, 4, UK_BCACHE_SEGS_MAX, &st);
  cr_assert_eq(st.adopted, 2); /* block 20 (entry 4's bytes) and block 21 */
  cr_assert_eq(st.torn, 2);
  cr_assert_eq(st.stale, 1);
  side_check(s);
  assert_block(s->bc, 20, w + 4 * BLK);
  assert_block(s->bc, 21, w + BLK);
  cr_assert_eq(side_entry(s, 22), UK_NIL);
  cr_assert_eq(side_entry(s, 25), UK_NIL);
  /* A segment the machine no longer holds: its blocks are torn. */
  close_fds(fds);
  side_down(s);
  machine_fds(fds);
  close(fds[KABI_ICA_INDEX(kd->bcache.seg_ica[0])]);
  fds[KABI_ICA_INDEX(kd->bcache.seg_ica[0])] = -1;
  s = side_up(4, UK_BCACHE_SEGS_MAX);
  cr_assert_eq(bcache_adopt(s->bc, kd, fds, &st), 0);
  cr_assert_eq(st.adopted, 0);
  cr_assert_eq(st.torn, 4);
  side_check(s);
  /* Not a kernel-data region: refused, nothing taken. */
  kd->hdr.layout++;
  cr_assert_eq(bcache_adopt(s->bc, kd, fds, &st), -EINVAL);
  kd->hdr.layout--;
  close_fds(fds);
  side_down(s);
  e[2].off -= 1;
  e[3].block = 23;
  e[5].state = UK_BC_DIRTY;
  bcache_free(bc);
}

Test(bcache, segments_the_new_kernel_cannot_keep_are_written_back_at_once) {
  struct bcache *bc = cache(12);
  static uint8_t w[BLK], blk[BLK];
  fill(w, sizeof w, 26);
  for (uint64_t b = 0; b < 3 * UK_BCACHE_SEG; b++) /* three full segments */
    cr_assert_eq(bcache_write(bc, w, BLK, b * BLK), BLK);
  int fds[UK_ICA_MAX];
  machine_fds(fds);
  struct side *s = side_up(4, 1); /* one segment of room, one keep */
  struct bcache_adopt_stats st = {0};
  cr_assert_eq(bcache_adopt(s->bc, kd, fds, &st), 0);
  cr_assert_eq(st.segs, 1);
  cr_assert_eq(st.adopted, UK_BCACHE_SEG);
  cr_assert_eq(st.written, 2 * UK_BCACHE_SEG);
  cr_assert_eq(st.over, 0);
  side_check(s);
  cr_assert_eq(s->kd->bcache.hdr.ndirty, UK_BCACHE_SEG);
  /* The ones written now are on the disk already; the adopted are not. */
  uint32_t on_disk = 0;
  for (uint64_t b = 0; b < 3 * UK_BCACHE_SEG; b++) {
    cr_assert_eq(kdisk_read(disk, b, blk), 0);
    on_disk += memcmp(blk, w, BLK) == 0;
    cr_assert_eq(side_entry(s, b) == UK_NIL, memcmp(blk, w, BLK) == 0);
  }
  cr_assert_eq(on_disk, 2 * UK_BCACHE_SEG);
  close_fds(fds);
  side_down(s); /* writes back the rest */
  for (uint64_t b = 0; b < 3 * UK_BCACHE_SEG; b++) {
    cr_assert_eq(kdisk_read(disk, b, blk), 0);
    cr_assert_arr_eq(blk, w, BLK);
  }
  bcache_free(bc);
}

Test(bcache, a_dead_kernel_without_a_disk_gives_nothing_to_adopt) {
  struct uk_kdata *none = malloc(sizeof *none);
  kern_kdata_init(none, 3, 3, 1ull << 32);
  int fds[UK_ICA_MAX];
  for (int i = 0; i < UK_ICA_MAX; i++)
    fds[i] = -1;
  struct side *s = side_up(4, 1);
  struct bcache_adopt_stats st = {0};
  cr_assert_eq(bcache_adopt(s->bc, none, fds, &st), 0);
  cr_assert_eq(st.adopted + st.torn + st.segs, 0);
  side_down(s);
  free(none);
}

Test(bcache, adoption_from_a_garbage_table_takes_nothing_it_cannot_trust) {
  struct bcache *bc = cache(8);
  static uint8_t w[BLK];
  fill(w, sizeof w, 27);
  for (uint64_t b = 0; b < 70; b++)
    cr_assert_eq(bcache_write(bc, w, BLK, b * BLK), BLK);
  struct uk_bcache saved = kd->bcache;
  scramble(13);
  int fds[UK_ICA_MAX];
  struct bcache_adopt_stats st = {0};
  struct side *s = adopt_dead(fds, 4, UK_BCACHE_SEGS_MAX, &st);
  cr_assert_eq(st.adopted + st.segs + st.written, 0);
  cr_assert_gt(st.torn, 0);
  side_check(s);
  close_fds(fds);
  side_down(s);
  kd->bcache = saved;
  bcache_free(bc);
}
