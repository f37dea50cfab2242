/* diskfs's on-disk file system (servers/diskfs_layout.h) over a device in
 * memory: format, mount, files across the direct/indirect boundary,
 * corrupt images refused, and writes cut off at every block. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diskfs_layout.h"

#define SIZE (2ull << 20) /* 512 blocks */

/* A device in memory whose writes fail once `budget` blocks are written
 * (negative: never), as a machine that dies mid-request. */
struct memdev {
  uint8_t *b;
  uint64_t size, written; /* bytes held so far (reads past: none) */
  long budget;
  long writes;
};

static long mem_pread(void *arg, void *buf, size_t n, uint64_t off) {
  struct memdev *m = arg;
  if (off >= m->written)
    return 0;
  if (n > m->written - off)
    n = (size_t)(m->written - off);
  memcpy(buf, m->b + off, n);
  return (long)n;
}

static long mem_pwrite(void *arg, const void *buf, size_t n, uint64_t off) {
  struct memdev *m = arg;
  if (off + n > m->size)
    return -ENOSPC;
  if (m->budget == 0)
    return -EIO;
  if (m->budget > 0)
    m->budget--;
  m->writes++;
  memcpy(m->b + off, buf, n);
  if (off + n > m->written)
    m->written = off + n;
  return (long)n;
}

static struct memdev md;
static struct dfs_dev dev = {&md, mem_pread, mem_pwrite, NULL};
static struct dfs fs;
static char why[200];

static void setup(void) {
  md = (struct memdev){.b = calloc(1, SIZE), .size = SIZE, .budget = -1};
  cr_assert_eq(dfs_format(&dev, SIZE, "glenda"), 0);
  cr_assert_eq(dfs_mount(&fs, &dev, SIZE, why, sizeof why), 0, "%s", why);
}

static void teardown(void) {
  dfs_unmount(&fs);
  free(md.b);
}

static void remount(void) {
  dfs_unmount(&fs);
  int r = dfs_mount(&fs, &dev, SIZE, why, sizeof why);
  cr_assert_eq(r, 0, "mount: %d %s", r, why);
}

static void fill(uint8_t *p, size_t n, unsigned seed) {
  for (size_t k = 0; k < n; k++)
    p[k] = (uint8_t)(k * 7 + seed + k / 4096);
}

static long mkfile(uint32_t dir, const char *name) {
  long i = dfs_create(&fs, dir, name, strlen(name), 0664, "glenda", 1);
  cr_assert_geq(i, 1, "create %s: %ld", name, i);
  return i;
}

static void expect(uint32_t i, const uint8_t *want, size_t n) {
  uint8_t *got = malloc(n + 10);
  cr_assert_eq(fs.ino[i].length, n);
  cr_assert_eq(dfs_read(&fs, i, 0, got, n + 10), (long)n);
  cr_assert(memcmp(got, want, n) == 0, "bytes differ");
  free(got);
}

/* Whether file i holds exactly want[0..n). */
static bool same(long i, const uint8_t *want, size_t n) {
  uint8_t *got = malloc(n + 1);
  bool ok = dfs_read(&fs, (uint32_t)i, 0, got, n + 1) == (long)n &&
            memcmp(got, want, n) == 0;
  free(got);
  return ok;
}

TestSuite(diskfs_layout, .init = setup, .fini = teardown);

Test(diskfs_layout, an_unformatted_device_says_so) {
  struct memdev empty = {.b = calloc(1, SIZE), .size = SIZE, .budget = -1};
  struct dfs_dev d = {&empty, mem_pread, mem_pwrite, NULL};
  struct dfs f;
  cr_assert_eq(dfs_mount(&f, &d, SIZE, why, sizeof why), -ENODATA);
  empty.written = SIZE; /* zeros: a fresh disk */
  cr_assert_eq(dfs_mount(&f, &d, SIZE, why, sizeof why), -ENODATA);
  empty.b[100] = 1; /* something else's: never formatted over */
  cr_assert_eq(dfs_mount(&f, &d, SIZE, why, sizeof why), -EUCLEAN);
  cr_assert(strstr(why, "not formatting"), "%s", why);
  free(empty.b);
}

Test(diskfs_layout, a_fresh_file_system_has_an_empty_root) {
  uint32_t pos = 0;
  cr_assert(fs.ino[0].used && (fs.ino[0].mode & 0x80000000u));
  cr_assert_str_eq(fs.ino[0].uid, "glenda");
  cr_assert_eq(dfs_next_child(&fs, 0, &pos), -1);
  cr_assert_eq(dfs_free_blocks(&fs), fs.nblocks - fs.data_start);
  cr_assert_eq(dfs_format(&dev, DFS_SIZE_MIN - 1, "x"), -EINVAL);
}

Test(diskfs_layout, a_tree_survives_a_remount) {
  long d = dfs_create(&fs, 0, "dir", 3, 0x80000000u | 0775, "glenda", 1);
  long f = mkfile((uint32_t)d, "f");
  uint8_t data[5000];
  fill(data, sizeof data, 1);
  cr_assert_eq(dfs_write(&fs, (uint32_t)f, 0, data, sizeof data, 2), 5000);
  remount();
  cr_assert_eq(dfs_find(&fs, 0, "dir", 3), d);
  cr_assert_eq(dfs_find(&fs, (uint32_t)d, "f", 1), f);
  expect((uint32_t)f, data, sizeof data);
  cr_assert_eq(dfs_create(&fs, 0, "dir", 3, 0664, "g", 1), -EEXIST);
  cr_assert_eq(dfs_remove(&fs, (uint32_t)d), -ENOTEMPTY);
  cr_assert_eq(dfs_remove(&fs, 0), -EPERM);
}

/* 16 direct blocks are 64 KiB: a file grows past them into the indirect
 * block and shrinks back, and every block comes back to the free count. */
Test(diskfs_layout, a_file_grows_and_shrinks_across_the_indirect_boundary) {
  uint32_t free0 = dfs_free_blocks(&fs);
  size_t n = 100 * 1024;
  uint8_t *data = malloc(n);
  long f = mkfile(0, "big");
  fill(data, n, 3);
  cr_assert_eq(dfs_write(&fs, (uint32_t)f, 0, data, n, 1), (long)n);
  cr_assert_neq(fs.ino[f].indirect, 0);
  cr_assert_eq(dfs_free_blocks(&fs), free0 - 25 - 1); /* 25 + indirect */
  remount();
  expect((uint32_t)f, data, n);
  cr_assert_eq(dfs_truncate(&fs, (uint32_t)f, 70000, 2), 0);
  remount();
  expect((uint32_t)f, data, 70000);
  cr_assert_eq(dfs_truncate(&fs, (uint32_t)f, 1000, 2), 0);
  cr_assert_eq(fs.ino[f].indirect, 0);
  expect((uint32_t)f, data, 1000);
  /* grown again, the bytes past the old length read as zeros */
  cr_assert_eq(dfs_truncate(&fs, (uint32_t)f, 9000, 2), 0);
  memset(data + 1000, 0, 8000);
  remount();
  expect((uint32_t)f, data, 9000);
  cr_assert_eq(dfs_remove(&fs, (uint32_t)f), 0);
  cr_assert_eq(dfs_free_blocks(&fs), free0);
  free(data);
}

Test(diskfs_layout, the_largest_file_fits_and_one_byte_more_does_not) {
  long f = mkfile(0, "max");
  uint8_t b = 'x', got = 0;
  cr_assert_eq(dfs_write(&fs, (uint32_t)f, DFS_FILE_MAX - 1, &b, 1, 1), 1);
  cr_assert_eq(dfs_write(&fs, (uint32_t)f, DFS_FILE_MAX, &b, 1, 1), -EFBIG);
  remount();
  cr_assert_eq(fs.ino[f].length, DFS_FILE_MAX);
  cr_assert_eq(dfs_read(&fs, (uint32_t)f, DFS_FILE_MAX - 1, &got, 1), 1);
  cr_assert_eq(got, 'x');
  cr_assert_eq(dfs_read(&fs, (uint32_t)f, 5, &got, 1), 1);
  cr_assert_eq(got, 0, "a hole reads as zero");
}

Test(diskfs_layout, a_full_device_refuses_a_write_and_keeps_the_file) {
  long f = mkfile(0, "f");
  uint8_t *data = malloc(DFS_FILE_MAX);
  long g = mkfile(0, "g");
  fill(data, DFS_FILE_MAX, 5);
  /* 512 blocks less metadata: the second file cannot be whole */
  cr_assert_eq(dfs_write(&fs, (uint32_t)f, 0, data, 300 * 4096, 1), 300 * 4096);
  cr_assert_eq(dfs_write(&fs, (uint32_t)g, 0, data, 300 * 4096, 1), -ENOSPC);
  cr_assert_eq(fs.ino[g].length, 0);
  remount();
  expect((uint32_t)f, data, 300 * 4096);
  cr_assert_eq(fs.repaired, 0, "the bitmap on the device was current");
  free(data);
}

Test(diskfs_layout, names_are_checked) {
  char longname[DFS_NAME_MAX + 2];
  memset(longname, 'a', sizeof longname);
  cr_assert_eq(dfs_create(&fs, 0, longname, DFS_NAME_MAX + 1, 0664, "g", 1),
               -ENAMETOOLONG);
  cr_assert_geq(dfs_create(&fs, 0, longname, DFS_NAME_MAX, 0664, "g", 1), 1);
  cr_assert_eq(dfs_create(&fs, 0, "a/b", 3, 0664, "g", 1), -EINVAL);
  cr_assert_eq(dfs_create(&fs, 0, "", 0, 0664, "g", 1), -EINVAL);
  long f = mkfile(0, "f");
  cr_assert_eq(dfs_create(&fs, (uint32_t)f, "x", 1, 0664, "g", 1), -ENOTDIR);
  struct dfs_attr a = {.length = DFS_KEEP64,
                       .name = longname,
                       .name_len = DFS_NAME_MAX,
                       .mode = DFS_KEEP32,
                       .mtime = DFS_KEEP32};
  cr_assert_eq(dfs_change(&fs, (uint32_t)f, &a), -EEXIST);
  a.name = "g";
  a.name_len = 1;
  cr_assert_eq(dfs_change(&fs, (uint32_t)f, &a), 0);
  remount();
  cr_assert_eq(dfs_find(&fs, 0, "g", 1), f);
  cr_assert_eq(dfs_find(&fs, 0, "f", 1), -1);
}

Test(diskfs_layout, the_inode_table_fills_up) {
  char name[16];
  for (uint32_t k = 1; k < DFS_NINODES; k++) {
    snprintf(name, sizeof name, "f%u", k);
    cr_assert_geq(dfs_create(&fs, 0, name, strlen(name), 0664, "g", 1), 1);
  }
  cr_assert_eq(dfs_create(&fs, 0, "one-more", 8, 0664, "g", 1), -ENOSPC);
}

/* Damages one thing of a good image and expects mount to refuse it. */
static void refused(void (*damage)(uint8_t *), const char *what) {
  long f = mkfile(0, "f");
  uint8_t data[100000];
  fill(data, sizeof data, 9);
  cr_assert_eq(dfs_write(&fs, (uint32_t)f, 0, data, sizeof data, 1),
               (long)sizeof data);
  dfs_unmount(&fs);
  damage(md.b);
  why[0] = '\0';
  int r = dfs_mount(&fs, &dev, SIZE, why, sizeof why);
  cr_assert_eq(r, -EUCLEAN, "%s: mount said %d", what, r);
  cr_assert_neq(why[0], '\0', "a reason is given");
  fs = (struct dfs){0};
}

/* inode 1 is the file "f": its fields at DFS_BSIZE + 256 */
#define INODE1 (DFS_BSIZE + DFS_INODE_SIZE)

static void put32(uint8_t *p, uint32_t v) {
  memcpy(p, &v, 4); /* the test runs little-endian */
}

static void bad_pointer(uint8_t *b) {
  put32(b + INODE1 + 188, 0xfffffff0u);
}
static void shared_block(uint8_t *b) {
  memcpy(b + INODE1 + 192, b + INODE1 + 188, 4);
}
static void bad_parent(uint8_t *b) {
  put32(b + INODE1 + 20, 5000);
}
static void self_parent(uint8_t *b) {
  put32(b + INODE1 + 20, 1);
  put32(b + INODE1 + 4, 0x80000000u | 0775);
  put32(b + INODE1 + 8, 0);
  memset(b + INODE1 + 188, 0, 68); /* no blocks: only the loop is wrong */
}
static void no_nul(uint8_t *b) {
  memset(b + INODE1 + 32, 'a', 128);
}
static void huge_length(uint8_t *b) {
  put32(b + INODE1 + 12, 7);
}
static void bad_indirect_entry(uint8_t *b) {
  uint32_t ind;
  memcpy(&ind, b + INODE1 + 252, 4);
  put32(b + (size_t)ind * DFS_BSIZE + 4, 3); /* a metadata block */
}
static void bad_version(uint8_t *b) {
  put32(b + 8, 99);
}
static void bad_geometry(uint8_t *b) {
  put32(b + 16, 1u << 30);
}

Test(diskfs_layout, corrupt_images_are_refused_with_a_reason) {
  refused(bad_pointer, "pointer out of range");
}
Test(diskfs_layout, a_block_used_twice_is_refused) {
  refused(shared_block, "block used twice");
}
Test(diskfs_layout, a_parent_out_of_range_is_refused) {
  refused(bad_parent, "parent");
}
Test(diskfs_layout, a_directory_loop_is_refused) {
  refused(self_parent, "loop");
}
Test(diskfs_layout, a_name_without_its_end_is_refused) {
  refused(no_nul, "name");
}
Test(diskfs_layout, a_length_past_the_largest_file_is_refused) {
  refused(huge_length, "length");
}
Test(diskfs_layout, a_bad_indirect_pointer_is_refused) {
  refused(bad_indirect_entry, "indirect");
}
Test(diskfs_layout, another_version_is_refused) {
  refused(bad_version, "version");
}
Test(diskfs_layout, a_superblock_larger_than_the_device_is_refused) {
  refused(bad_geometry, "geometry");
}

/* Every write of a request cut off after k blocks, for every k: the
 * device then holds the file before or after the request, whole, and
 * mounts with no block used twice. */
static void cut_everywhere(uint64_t off, size_t n, uint64_t newlen) {
  size_t oldn = 80 * 1024;
  uint8_t *old = malloc(oldn), *nw = malloc(DFS_FILE_MAX), *img = malloc(SIZE);
  long f = mkfile(0, "f");
  fill(old, oldn, 11);
  cr_assert_eq(dfs_write(&fs, (uint32_t)f, 0, old, oldn, 1), (long)oldn);
  memcpy(img, md.b, SIZE);
  uint64_t written = md.written;
  memset(nw, 0, DFS_FILE_MAX);
  memcpy(nw, old, oldn);
  fill(nw + off, n, 13);
  bool done = false;
  for (long k = 0; !done; k++) {
    memcpy(md.b, img, SIZE);
    md.written = written;
    remount();
    md.budget = k;
    md.writes = 0;
    long r = n ? dfs_write(&fs, (uint32_t)f, off, nw + off, n, 2)
               : dfs_truncate(&fs, (uint32_t)f, newlen, 2);
    md.budget = -1;
    done = r >= 0;
    cr_assert(done || md.writes == k, "a failed request wrote past the cut");
    remount();
    if (fs.ino[f].length == oldn)
      expect((uint32_t)f, old, oldn); /* before */
    else
      expect((uint32_t)f, nw, (size_t)newlen); /* after */
  }
  free(old);
  free(nw);
  free(img);
}

Test(diskfs_layout, a_write_cut_off_anywhere_leaves_the_old_file_or_the_new) {
  cut_everywhere(60 * 1024 + 5, 30000, 60 * 1024 + 5 + 30000);
}

Test(diskfs_layout, a_truncate_cut_off_anywhere_leaves_the_old_file_or_new) {
  cut_everywhere(0, 0, 3000);
}

/* Bytes flipped at random in the metadata and the first data blocks of a
 * good image, 400 times: mount either refuses the image or takes it, and
 * an image it took stays one it takes after every file is read, written,
 * cut and removed.  Nothing crashes either way. */
Test(diskfs_layout, damaged_images_are_refused_or_sound) {
  uint8_t *img = malloc(SIZE), data[70000];
  unsigned seed = 1, took = 0;
  long d = dfs_create(&fs, 0, "d", 1, 0x80000000u | 0775, "glenda", 1);
  fill(data, sizeof data, 17);
  for (int k = 0; k < 6; k++) {
    char name[8];
    snprintf(name, sizeof name, "f%d", k);
    long f = mkfile(k % 2 ? (uint32_t)d : 0, name);
    size_t n = k == 5 ? sizeof data : (size_t)(k + 1) * 3000;
    cr_assert_eq(dfs_write(&fs, (uint32_t)f, 0, data, n, 1), (long)n);
  }
  dfs_unmount(&fs);
  memcpy(img, md.b, SIZE);
  uint64_t span = (uint64_t)(fs.data_start + 40) * DFS_BSIZE;
  for (int run = 0; run < 400; run++) {
    memcpy(md.b, img, SIZE);
    for (int flips = 1 + rand_r(&seed) % 4; flips > 0; flips--)
      md.b[rand_r(&seed) % span] ^= (uint8_t)(1u << rand_r(&seed) % 8);
    int r = dfs_mount(&fs, &dev, SIZE, why, sizeof why);
    /* -EIO: a pointer to a block past what the device holds */
    cr_assert(r == 0 || r == -EUCLEAN || r == -ENODATA || r == -EIO,
              "mount said %d", r);
    if (r < 0)
      continue;
    took++;
    for (uint32_t i = 1; i < fs.ninodes; i++) {
      if (!fs.ino[i].used || (fs.ino[i].mode & 0x80000000u))
        continue;
      uint8_t buf[4096];
      cr_assert_geq(dfs_read(&fs, i, 0, buf, sizeof buf), 0);
      dfs_write(&fs, i, 65530, data, 100, 2);
      dfs_truncate(&fs, i, 1000, 2);
      dfs_remove(&fs, i);
    }
    dfs_unmount(&fs);
    r = dfs_mount(&fs, &dev, SIZE, why, sizeof why);
    cr_assert_eq(r, 0,
                 "run %d: what mount took and diskfs changed is "
                 "refused: %s",
                 run, why);
    dfs_unmount(&fs);
  }
  cr_assert_gt(took, 0, "no damaged image was taken: the test tests little");
  fs = (struct dfs){0};
  free(img);
}

/* A write-back cache in front of the memory device, as #S's: writes wait
 * in it, in order, until a barrier puts them on the device; a crash puts
 * any of them there, in any order, and loses the rest. */
struct cache {
  struct {
    uint64_t off;
    uint8_t b[DFS_BSIZE];
  } w[4096];
  size_t n;
};
static struct cache cache;
/* Writes and barriers until the machine dies (negative: never). */
static long cache_budget = -1;

static bool cache_dead(void) {
  if (cache_budget == 0)
    return true;
  if (cache_budget > 0)
    cache_budget--;
  return false;
}

static long cache_pwrite(void *arg, const void *buf, size_t n, uint64_t off) {
  (void)arg;
  if (cache_dead())
    return -EIO;
  cr_assert_eq(n, DFS_BSIZE, "diskfs writes whole blocks");
  cr_assert_eq(off % DFS_BSIZE, 0, "at block offsets");
  cr_assert_lt(cache.n, 4096);
  cache.w[cache.n].off = off;
  memcpy(cache.w[cache.n++].b, buf, n);
  return (long)n;
}

/* Reads see the cache over the device, the latest write of a block. */
static long cache_pread(void *arg, void *buf, size_t n, uint64_t off) {
  long r = mem_pread(arg, buf, n, off);
  bool hit = false;
  for (size_t k = 0; n >= DFS_BSIZE && k < cache.n; k++)
    if (cache.w[k].off == off) {
      memcpy(buf, cache.w[k].b, DFS_BSIZE);
      hit = true;
    }
  return hit ? (long)DFS_BSIZE : r;
}

static void cache_put(size_t k) {
  mem_pwrite(&md, cache.w[k].b, DFS_BSIZE, cache.w[k].off);
}

static int cache_barrier(void *arg) {
  (void)arg;
  if (cache_dead())
    return -EIO;
  for (size_t k = 0; k < cache.n; k++)
    cache_put(k);
  cache.n = 0;
  return 0;
}

/* The machine dies: each write still in the cache reaches the device or
 * not, in a random order. */
static void cache_crash(unsigned *seed) {
  for (size_t k = cache.n; k > 1; k--) {
    size_t j = (size_t)rand_r(seed) % k;
    uint64_t off = cache.w[k - 1].off;
    uint8_t tmp[DFS_BSIZE];
    memcpy(tmp, cache.w[k - 1].b, DFS_BSIZE);
    memcpy(cache.w[k - 1].b, cache.w[j].b, DFS_BSIZE);
    cache.w[k - 1].off = cache.w[j].off;
    memcpy(cache.w[j].b, tmp, DFS_BSIZE);
    cache.w[j].off = off;
  }
  for (size_t k = 0; k < cache.n; k++)
    if (rand_r(seed) % 2)
      cache_put(k);
  cache.n = 0;
}

/* Two writes through the cache, the second reusing blocks the first
 * freed, the machine dying after any number of writes and barriers, and a
 * crash that keeps a random part of the cache: with the barriers the
 * file is as it was, as after the first write or after both. */
Test(diskfs_layout, a_reordering_cache_with_barriers_keeps_files_whole) {
  static struct dfs_dev cdev = {&md, cache_pread, cache_pwrite, cache_barrier};
  size_t oldn = 80 * 1024, an = 30000, bn = 9000;
  uint64_t aoff = 60 * 1024 + 5;
  uint8_t *st[3], *img = malloc(SIZE);
  size_t len[3] = {oldn, aoff + an, aoff + an};
  for (int k = 0; k < 3; k++)
    st[k] = calloc(1, DFS_FILE_MAX);
  long f = mkfile(0, "f");
  fill(st[0], oldn, 11);
  cr_assert_eq(dfs_write(&fs, (uint32_t)f, 0, st[0], oldn, 1), (long)oldn);
  memcpy(st[1], st[0], oldn);
  fill(st[1] + aoff, an, 13);
  memcpy(st[2], st[1], len[1]);
  fill(st[2] + 100, bn, 29);
  memcpy(img, md.b, SIZE);
  uint64_t written = md.written;
  bool lived = false;
  int seen[3] = {0};
  for (long budget = 0; !lived; budget++)
    for (unsigned seed = 1; seed <= 5; seed++) {
      unsigned rs = (unsigned)budget * 100 + seed;
      memcpy(md.b, img, SIZE);
      md.written = written;
      dfs_unmount(&fs);
      cr_assert_eq(dfs_mount(&fs, &cdev, SIZE, why, sizeof why), 0, "%s", why);
      cache_budget = budget;
      long ra = dfs_write(&fs, (uint32_t)f, aoff, st[1] + aoff, an, 2);
      long rb =
          ra < 0 ? ra : dfs_write(&fs, (uint32_t)f, 100, st[2] + 100, bn, 3);
      lived = lived || (rb >= 0 && cache_budget != 0);
      cache_budget = -1;
      cache_crash(&rs);
      dfs_unmount(&fs);
      int r = dfs_mount(&fs, &dev, SIZE, why, sizeof why);
      cr_assert_eq(r, 0, "budget %ld: mount after the crash: %s", budget, why);
      int k = 0;
      while (k < 3 && !(fs.ino[f].length == len[k] && same(f, st[k], len[k])))
        k++;
      cr_assert_lt(k, 3, "budget %ld seed %u: the file is none of its states",
                   budget, seed);
      seen[k]++;
    }
  cr_assert(seen[0] && seen[1] && seen[2], "states seen: %d %d %d", seen[0],
            seen[1], seen[2]);
  for (int k = 0; k < 3; k++)
    free(st[k]);
  free(img);
}
