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

Test(bcache, a_dead_table_with_garbage_is_skipped_not_followed) {
  struct bcache *bc = cache(4);
  static uint8_t w[BLK];
  fill(w, sizeof w, 6);
  cr_assert_eq(bcache_write(bc, w, BLK, 0), BLK);
  struct uk_bcache saved = kd->bcache;
  /* Every dirty entry made wrong in one way each. */
  srand(7);
  for (uint32_t i = 0; i < UK_BCACHE_MAX; i++) {
    struct uk_bcache_ent *e = &kd->bcache.ent[i];
    e->state = (uint8_t)(rand() % 5);
    e->block = (uint64_t)rand() << 20;
    e->ica = (uint32_t)rand();
    e->off = (uint32_t)rand();
    e->gen = (uint32_t)rand();
  }
  kd->bcache.hdr.nseg = (uint32_t)rand();
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
