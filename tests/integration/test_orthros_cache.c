/* Orthros (issue 14): the file cache at a failover (seed 001 §2.5).  The
 * dead kernel's dirty blocks are adopted by the new one (the default) or
 * written back before any process runs (--cache-migrate writeback). */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>
#include "harness.h"
#include "uksim/ns.h"
#include "uksim/interos.h"
#include "uksim_paths.h"

#include "orthros.h"

TestSuite(orthros, .init = skip_under_valgrind);

/* The file-cache step (kfailover.c, bcache_adopt in kdisk.h): a diskfs
 * file written and never synced is dirty in the active's cache alone; the
 * new active adopts those blocks (no write-back before processes run),
 * serves the file from them at once, adopts them again if it dies too
 * before writing them back, and writes them back on a sync.
 * --cache-migrate writeback writes them back before processes run. */

/* The "filecache" count of OS os's trace: the blocks "adopt: N dirty
 * blocks" or "writeback: N dirty blocks" says (how), -1 if none within 2 s. */
static long filecache_blocks(uint32_t os, const char *how) {
  char path[300], line[2048], key[32];
  snprintf(path, sizeof path, "%s.os%u", trace, os);
  snprintf(key, sizeof key, "%s: ", how);
  for (int i = 0; i < 200; i++) {
    FILE *f = fopen(path, "r");
    long n = -1;
    while (f && n < 0 && fgets(line, sizeof line, f)) {
      const char *at =
          strstr(line, "\"ev\":\"failover\"") ? strstr(line, key) : NULL;
      if (at && sscanf(at + strlen(key), "%ld dirty blocks", &n) != 1)
        n = -1;
    }
    if (f)
      fclose(f);
    if (n >= 0)
      return n;
    usleep(10 * 1000);
  }
  return -1;
}

/* The active kernel's buffer-cache header, from its kernel data. */
static struct uk_bcache_hdr cache_hdr(mach_client *m) {
  const struct uk_kdata *kd;
  cr_assert_eq(mach_kdata(m, &kd, NULL), 0, "%s", m->error);
  struct uk_bcache_hdr h = kd->bcache.hdr;
  mach_kdata_unmap(kd);
  return h;
}

static int disk_sync_child(const void *arg) {
  (void)arg;
  int c = ns_open("#S/sd0/ctl", NS_OWRITE);
  return c >= 0 && ns_pwrite(c, "sync", 4, 0) == 4 ? 0 : 1;
}

/* "sync" to #S/sd0/ctl from an attached child (the cache's write-back, a
 * step a turn of the kernel's loop): its status. */
static int disk_sync(mach_client *m) {
  return attached(m, "sync", disk_sync_child, NULL);
}

/* A machine booted with a disk in a new directory dir (a mkdtemp
 * template), --cache-migrate migrate, and a diskfs file of `records`
 * records dirty in the active's cache (dirty_file). */
static void boot_dirty(mach_client *m, char *dir, const char *migrate,
                       long records) {
  cr_assert_not_null(mkdtemp(dir));
  boot_with(m, dir, migrate);
  await_pair(m, 0);
  dirty_file(m, records);
}

Test(orthros, a_dirty_file_is_adopted_served_at_once_and_written_back,
     .timeout = 120) {
  mach_client m;
  char dir[] = "/tmp/uksim-orthros-adopt-XXXXXX";
  boot_dirty(&m, dir, "", 2000);
  cr_assert_gt(cache_hdr(&m).ndirty, 0, "nothing dirty before the fault");
  struct uk_interos d = fail_once(&m, UKSIM__FAULT__KIND__PANIC, 1);
  long adopted = filecache_blocks(d.det_by_os, "adopt");
  cr_assert_gt(adopted, 0, "no dirty block adopted");
  cr_expect_eq(cache_hdr(&m).blocks_written, 0,
               "the new kernel wrote back before anything asked it to");
  cr_expect_eq(file_check(&m, "dfs", "log", 2000), 0,
               "the file is not whole right after the failover");
  /* The cache's own write-back, then a failover with nothing to adopt:
   * the file is then read from the LevelDB disk. */
  cr_assert_eq(disk_sync(&m), 0, "the sync failed");
  struct uk_bcache_hdr h = cache_hdr(&m);
  cr_expect_eq(h.ndirty, 0);
  cr_expect_geq(h.blocks_written, (uint64_t)adopted);
  d = fail_once(&m, UKSIM__FAULT__KIND__PANIC, 2);
  cr_expect_eq(filecache_blocks(d.det_by_os, "adopt"), 0);
  cr_expect_eq(file_check(&m, "dfs", "log", 2000), 0,
               "the file is not on the disk after the write-back");
  halt(&m);
  rm_dir(dir);
}

Test(orthros, adopted_blocks_survive_a_second_failover_before_write_back,
     .timeout = 120) {
  mach_client m;
  char dir[] = "/tmp/uksim-orthros-twice-XXXXXX";
  boot_dirty(&m, dir, "", 1500);
  struct uk_interos d = fail_once(&m, UKSIM__FAULT__KIND__PANIC, 1);
  long first = filecache_blocks(d.det_by_os, "adopt");
  cr_assert_gt(first, 0, "no dirty block adopted");
  /* The second active dies before any write-back: the third adopts the
   * same blocks from the second's table (crash: no notice, no help). */
  d = fail_once(&m, UKSIM__FAULT__KIND__CRASH, 2);
  cr_expect_geq(filecache_blocks(d.det_by_os, "adopt"), first);
  cr_expect_eq(file_check(&m, "dfs", "log", 1500), 0,
               "the file is not whole after two failovers");
  halt(&m);
  rm_dir(dir);
}

Test(orthros, writeback_migration_writes_the_dead_cache_before_processes,
     .timeout = 120) {
  mach_client m;
  char dir[] = "/tmp/uksim-orthros-wb-XXXXXX";
  boot_dirty(&m, dir, "writeback", 1000);
  struct uk_interos d = fail_once(&m, UKSIM__FAULT__KIND__PANIC, 1);
  cr_expect_gt(filecache_blocks(d.det_by_os, "writeback"), 0,
               "no dirty block written back");
  cr_expect_eq(filecache_blocks(d.det_by_os, "adopt"), -1);
  cr_expect_eq(file_check(&m, "dfs", "log", 1000), 0,
               "the file is not whole after the failover");
  halt(&m);
  rm_dir(dir);
}
