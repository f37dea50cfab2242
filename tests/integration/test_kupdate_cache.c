/* Kernel update (issue 15): the old kernel's file cache moves to the new
 * kernel version, as Orthros's cache adoption moves a dead kernel's
 * (sim-kernel/kimage_cache.c, kfailover.c).  A diskfs file written just
 * before the update is dirty in the layout-1 kernel's cache alone; after
 * `kupdate` the layout-v2 kernel has adopted those blocks (dirty entries
 * of its own cache, in the old segments' ICAs), serves the file from them,
 * and writes them to the LevelDB disk on a sync: a crash of the new
 * kernel after the sync then finds nothing to adopt, and the file is read
 * whole from the disk.  The machine fixture is orthros.c's. */
#include <criterion/criterion.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "orthros.h"
#include "uksim/ns.h"
#include "uksim_paths.h"

TestSuite(kupdate_cache, .init = skip_under_valgrind);

#define RECORDS 2000

/* The v2 kernel program beside this build's uksim. */
static void next_version(void) {
  char exe[sizeof backup_kernel] = UKSIM_EXE_DEFAULT;
  snprintf(backup_kernel, sizeof backup_kernel, "%s/uksim-kernel2",
           dirname(exe));
}

/* What the active kernel's #S/sd0/ctl says, whatever its layout. */
struct cache_line {
  long dirty, written;
};

/* In an attached child: `sync` first if asked, then the ctl line; the
 * exit status is 0 when dirty and written are within the asked bounds. */
struct cache_ask {
  bool sync;
  long dirty_min, dirty_max, written_min;
};

static int cache_child(const void *arg) {
  const struct cache_ask *q = arg;
  char line[512] = {0};
  int c = ns_open("#S/sd0/ctl", NS_ORDWR);
  if (c < 0 || (q->sync && ns_pwrite(c, "sync", 4, 0) != 4))
    return 2;
  if (ns_pread(c, line, sizeof line - 1, 0) <= 0)
    return 3;
  struct cache_line l;
  if (sscanf(line, "cached %*d dirty %ld writebacks %*d written %ld", &l.dirty,
             &l.written) != 2)
    return 4;
  return l.dirty >= q->dirty_min && l.dirty <= q->dirty_max &&
                 l.written >= q->written_min
             ? 0
             : 5;
}

/* Whether `uksim ps` on the machine prints a line with both strings. */
static bool ps_says(const char *a, const char *b) {
  char cmd[600], line[512];
  snprintf(cmd, sizeof cmd, "%s ps --name %s 2>&1", UKSIM_EXE_DEFAULT, name);
  FILE *f = popen(cmd, "r");
  bool found = false;
  while (f && fgets(line, sizeof line, f))
    found = found || (strstr(line, a) && strstr(line, b));
  if (f)
    pclose(f);
  return found;
}

/* The adopted count of the new kernel's "filecache" step, -1 if none. */
static long adopted_blocks(uint32_t os) {
  char path[300], line[2048];
  long n = -1;
  snprintf(path, sizeof path, "%s.os%u", trace, os);
  FILE *f = fopen(path, "r");
  while (f && n < 0 && fgets(line, sizeof line, f)) {
    const char *at =
        strstr(line, "\"ev\":\"failover\"") ? strstr(line, "filecache") : NULL;
    at = at ? strstr(at, "adopt: ") : NULL;
    if (at && sscanf(at, "adopt: %ld dirty blocks", &n) != 1)
      n = -1;
  }
  if (f)
    fclose(f);
  return n;
}

Test(kupdate_cache, a_dirty_file_survives_an_update_and_reaches_the_disk,
     .timeout = 180) {
  mach_client m;
  char dir[] = "/tmp/uksim-kupdate-cache-XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  next_version();
  boot_with(&m, dir, "");
  await_pair(&m, 0);
  dirty_file(&m, RECORDS);
  struct cache_ask before = {.dirty_min = 1, .dirty_max = 1 << 30};
  cr_assert_eq(attached(&m, "before", cache_child, &before), 0,
               "nothing dirty in the old kernel's cache");
  uint32_t old_os = 0, new_os = 0;
  cr_assert_eq(
      mach_kupdate(&m, UKSIM__KUPDATE__METHOD__IMAGE, &old_os, &new_os), 0,
      "kupdate: %s", m.error);
  cr_assert_eq(await_pair(&m, 1), new_os);
  cr_expect(trace_has(new_os, "failover", "another kernel version"),
            "no convert step in os %u's trace", new_os);
  long adopted = -1;
  for (int i = 0; i < 200 && (adopted = adopted_blocks(new_os)) < 0; i++)
    usleep(10 * 1000);
  cr_assert_gt(adopted, 0, "no dirty block adopted (%ld)", adopted);
  /* ps reads the new version's tables through images and says so. */
  char os[16];
  snprintf(os, sizeof os, "os %u runs", new_os);
  cr_expect(ps_says(os, "layout 1001"), "ps does not name the new layout");
  cr_expect(ps_says("dfs.2", "server"), "ps does not list the restarted dfs");
  /* Served from the adopted blocks, and still dirty: not written yet. */
  int fc = file_check(&m, "dfs", "log", RECORDS);
  cr_expect_eq(fc, 0, "the file is not whole right after the update (%d)", fc);
  struct cache_ask after = {.dirty_min = adopted, .dirty_max = 1 << 30};
  cr_expect_eq(attached(&m, "after", cache_child, &after), 0,
               "the adopted blocks are not dirty in the new cache");
  struct cache_ask synced = {.sync = true, .written_min = adopted};
  cr_expect_eq(attached(&m, "sync", cache_child, &synced), 0,
               "the sync did not write the adopted blocks back");
  /* The new kernel dies with nothing dirty: its successor adopts nothing
   * and reads the file from the LevelDB disk. */
  struct uk_interos d = fail_once(&m, UKSIM__FAULT__KIND__CRASH, 2);
  cr_expect_eq(adopted_blocks(d.det_by_os), 0);
  cr_expect_eq(file_check(&m, "dfs", "log", RECORDS), 0,
               "the file is not on the disk after the sync");
  printf("kupdate: %ld dirty blocks adopted by the new kernel version\n",
         adopted);
  halt(&m);
  rm_dir(dir);
}
