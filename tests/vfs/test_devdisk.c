/* Unit tests for the disk servant #S (vfs/devdisk.c) over a fake host whose
 * disk is an array here: the servant's part is the tree, passing reads and
 * writes through at their offsets, the ctl file's commands and its line of
 * counters from the cache's table (struct uk_bcache).  The cache and the
 * LevelDB disk themselves are tests/sim-kernel/test_bcache.c.
 */
#include "vfs_fixture.h"
#include "vfs_servant.h"

#define DISK_BYTES (1u << 20)

static uint32_t p0;
static uint8_t disk[DISK_BYTES];
static int syncs, sync_result;

static long fake_read(void *arg, void *buf, uint32_t n, uint64_t off) {
  (void)arg;
  if (off >= DISK_BYTES)
    return 0;
  n = off + n > DISK_BYTES ? (uint32_t)(DISK_BYTES - off) : n;
  memcpy(buf, disk + off, n);
  return n;
}

static long fake_write(void *arg, const void *buf, uint32_t n, uint64_t off) {
  (void)arg;
  if (off >= DISK_BYTES)
    return -ENOSPC;
  n = off + n > DISK_BYTES ? (uint32_t)(DISK_BYTES - off) : n;
  memcpy(disk + off, buf, n);
  return n;
}

static int fake_sync(void *arg) {
  (void)arg;
  syncs++;
  return sync_result;
}

/* The kernel's side of having a disk: the table's header and the ops. */
static void attach_disk(void) {
  kd->bcache.hdr.block_size = UK_DISK_BLOCK;
  kd->bcache.hdr.disk_bytes = DISK_BYTES;
  fh.h.disk_read = fake_read;
  fh.h.disk_write = fake_write;
  fh.h.disk_sync = fake_sync;
}

static void init(void) {
  kd_new();
  p0 = proc_new("sh", 100);
  host_install(p0);
  memset(disk, 0, sizeof disk);
  syncs = sync_result = 0;
}

TestSuite(vfs_devdisk, .init = init, .fini = servant_fini);

Test(vfs_devdisk, without_a_disk_the_root_is_empty, .timeout = 10) {
  struct vfs_dir e[2];
  cr_assert_eq(list_in(p0, "#S", e, 2), 0);
  uint32_t c;
  cr_assert_eq(vfs_namec(kd, p0, "#S/sd0", 6, &c), -ENOENT);
}

Test(vfs_devdisk, lists_sd0_and_its_files, .timeout = 10) {
  struct vfs_dir e[4];
  attach_disk();
  cr_assert_eq(list_in(p0, "#S", e, 4), 1);
  cr_assert_str_eq(e[0].name, "sd0");
  cr_assert(e[0].mode & VFS_DMDIR);
  cr_assert_eq(list_in(p0, "#S/sd0", e, 4), 3);
  cr_assert_str_eq(e[0].name, "data");
  cr_assert_eq(e[0].length, DISK_BYTES);
  cr_assert_str_eq(e[1].name, "ctl");
  cr_assert_str_eq(e[2].name, "cache");
  uint32_t c = walk_to(p0, "#S/sd0/../sd0/ctl");
  struct vfs_dir d;
  cr_assert_eq(vfs_dev_stat(kd, c, &d), 0);
  cr_assert_str_eq(d.name, "ctl");
  vfs_chan_unref(kd, c);
}

Test(vfs_devdisk, data_passes_reads_and_writes_at_their_offset, .timeout = 10) {
  attach_disk();
  uint32_t c = open_in(p0, "#S/sd0/data", VFS_ORDWR);
  cr_assert_eq(vfs_dev_write(kd, c, "hello", 5, 70000), 5);
  cr_assert_eq(memcmp(disk + 70000, "hello", 5), 0);
  char b[8] = {0};
  cr_assert_eq(vfs_dev_read(kd, c, b, 7, 69999), 7);
  cr_assert_eq(memcmp(b, "\0hello\0", 7), 0);
  cr_assert_eq(vfs_dev_write(kd, c, "x", 1, DISK_BYTES), -ENOSPC);
  cr_assert_eq(vfs_dev_read(kd, c, b, 1, DISK_BYTES), 0);
  vfs_chan_unref(kd, c);
}

Test(vfs_devdisk, ctl_takes_sync_and_nothing_else, .timeout = 10) {
  attach_disk();
  uint32_t c = open_in(p0, "#S/sd0/ctl", VFS_ORDWR);
  cr_assert_eq(write_str(c, "sync"), 4);
  cr_assert_eq(write_str(c, "sync\n"), 5);
  cr_assert_eq(syncs, 2);
  cr_assert_eq(write_str(c, "sync\n\n"), -EINVAL);
  cr_assert_eq(write_str(c, "syn"), -EINVAL);
  cr_assert_eq(write_str(c, "SYNC"), -EINVAL);
  cr_assert_eq(vfs_dev_write(kd, c, "", 0, 0), -EINVAL);
  sync_result = -EIO;
  cr_assert_eq(write_str(c, "sync"), -EIO);
  cr_assert_eq(syncs, 3);
  vfs_chan_unref(kd, c);
}

Test(vfs_devdisk, ctl_reads_the_cache_counters, .timeout = 10) {
  attach_disk();
  kd->bcache.hdr.ncached = 12;
  kd->bcache.hdr.ndirty = 5;
  kd->bcache.hdr.writebacks = 3;
  uint32_t c = open_in(p0, "#S/sd0/ctl", VFS_OREAD);
  char line[512];
  read_all(c, line, sizeof line);
  cr_assert_eq(strncmp(line, "cached 12 dirty 5 writebacks 3 ", 31), 0, "%s",
               line);
  cr_assert_not_null(strstr(line, " size 1048576\n"), "%s", line);
  vfs_chan_unref(kd, c);
}

Test(vfs_devdisk, a_disk_the_host_does_not_serve_is_enodev, .timeout = 10) {
  kd->bcache.hdr.block_size = UK_DISK_BLOCK; /* a table but no ops */
  kd->bcache.hdr.disk_bytes = DISK_BYTES;
  uint32_t c = open_in(p0, "#S/sd0/data", VFS_ORDWR);
  char b[4];
  cr_assert_eq(vfs_dev_read(kd, c, b, 4, 0), -ENODEV);
  cr_assert_eq(vfs_dev_write(kd, c, b, 4, 0), -ENODEV);
  vfs_chan_unref(kd, c);
}

Test(vfs_devdisk, cache_lists_the_entries_holding_blocks, .timeout = 10) {
  attach_disk();
  kd->bcache.ent[2] = (struct uk_bcache_ent){.block = 77,
                                             .seq = 9,
                                             .gen = 3,
                                             .state = UK_BC_DIRTY,
                                             .ica = 0x1005,
                                             .off = 2 * UK_DISK_BLOCK};
  kd->bcache.ent[5] = (struct uk_bcache_ent){.block = 4,
                                             .gen = 1,
                                             .state = UK_BC_CLEAN,
                                             .ica = 0x1005,
                                             .off = 5 * UK_DISK_BLOCK};
  kd->bcache.ent[9].state = 200; /* torn: not a state, not listed */
  uint32_t c = open_in(p0, "#S/sd0/cache", VFS_OREAD);
  char text[1024];
  read_all(c, text, sizeof text);
  vfs_chan_unref(kd, c);
  cr_assert_str_eq(text,
                   "ENTRY  BLOCK      STATE   ICA      OFF      GEN    SEQ\n"
                   "2      77         dirty   1005     131072   3      9\n"
                   "5      4          clean   1005     327680   1      0\n");
}
