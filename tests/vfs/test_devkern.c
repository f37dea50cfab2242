/* Unit tests for the kernel-table servant #k (vfs/devkern.c) and the
 * formatter it shares with `uksim ps` and `uksim svc` (vfs/kfmt.h).
 *
 * Invariants under test: #k lists procs svc icas counters; procs and svc
 * are the header and one row per slot in use, in the columns `uksim ps`
 * and `uksim svc` have always printed (the expected rows are built here
 * with the CLI's original formats); icas names each live ICA's kind,
 * holder and size; counters a "name value" line each; every file reads
 * the same whole or in pieces at offsets; a line cut to a short buffer
 * stays terminated.
 */
#include "vfs_fixture.h"
#include "vfs_servant.h"

#include "kfmt.h"

static uint32_t p0;

static void init(void) {
  kd_new();
  p0 = proc_new("sh", 100);
  host_install(p0);
}

TestSuite(vfs_devkern, .init = init, .fini = servant_fini);

static void read_path(const char *path, char *buf, size_t len) {
  uint32_t c = open_in(p0, path, VFS_OREAD);
  read_all(c, buf, len);
  vfs_chan_unref(kd, c);
}

Test(vfs_devkern, lists_its_files, .timeout = 10) {
  static const char *const want[] = {"procs", "svc", "icas", "counters"};
  struct vfs_dir e[5];
  cr_assert_eq(list_in(p0, "#k", e, 5), 4);
  for (int i = 0; i < 4; i++) {
    cr_assert_str_eq(e[i].name, want[i]);
    cr_assert_eq(e[i].mode, 0444u);
  }
  uint32_t c = open_in(p0, "#k/procs", VFS_ORDWR);
  snap_take();
  cr_assert_eq(write_str(c, "x"), -EPERM);
  snap_same();
  vfs_chan_unref(kd, c);
}

Test(vfs_devkern, procs_is_what_uksim_ps_prints, .timeout = 10) {
  int k = kern_proc_alloc(kd, "kvs", 321);
  int s = kern_svc_add(kd, "kvs");
  kd->proc[k].kind = UK_PROC_SERVER;
  kd->proc[k].svc = (uint32_t)s;
  kd->proc[k].calls = 12;
  char want[1024], got[1024];
  int n = snprintf(want, sizeof want,
                   "%-4s %-8s %-12s %-6s %-6s %-8s %6s %6s %8s %6s\n", "SLOT",
                   "PID", "NAME", "KIND", "STATE", "SERVES", "ICAS", "OUT",
                   "CALLS", "ERRS");
  n += snprintf(want + n, sizeof want - (size_t)n,
                "%-4d %-8d %-12.*s %-6s %-6s %-8.*s %6u %6u %8llu %6llu\n", 0,
                100, KABI_NAME_MAX, "sh", "ap", "run", KABI_NAME_MAX, "-", 0u,
                0u, 0ull, 0ull);
  snprintf(want + n, sizeof want - (size_t)n,
           "%-4d %-8d %-12.*s %-6s %-6s %-8.*s %6u %6u %8llu %6llu\n", k, 321,
           KABI_NAME_MAX, "kvs", "server", "run", KABI_NAME_MAX, "kvs", 0u, 0u,
           12ull, 0ull);
  read_path("#k/procs", got, sizeof got);
  cr_assert_str_eq(got, want);
}

Test(vfs_devkern, svc_is_what_uksim_svc_prints, .timeout = 10) {
  int s = kern_svc_add(kd, "ramfs");
  kd->svc[s].state = UK_SVC_UP;
  kd->svc[s].proc = p0;
  kd->svc[s].version = 2;
  kd->svc[s].requests = 5;
  kd->svc[s].state_ica = 0x10003;
  char want[512], got[512];
  int n = snprintf(want, sizeof want,
                   "%-4s %-10s %-5s %-4s %-8s %6s %5s %10s %10s %8s %s\n", "ID",
                   "NAME", "STATE", "VER", "PID", "QUEUE", "HELD", "REQUESTS",
                   "REPLIES", "ERRORS", "STATE-ICA");
  snprintf(want + n, sizeof want - (size_t)n,
           "%-4d %-10.*s %-5s %-4u %-8d %6u %5u %10llu %10llu %8llu %#x\n",
           s + 1, KABI_NAME_MAX, "ramfs", "up", 2u, 100, 0u, 0u, 5ull, 0ull,
           0ull, 0x10003u);
  read_path("#k/svc", got, sizeof got);
  cr_assert_str_eq(got, want);
}

Test(vfs_devkern, icas_and_counters, .timeout = 10) {
  uint32_t id;
  cr_assert_geq(kern_ica_alloc(kd, KABI_ICA_DATA, 8192, p0, &id), 0);
  kd->ctr.calls = 42;
  kd->hdr.step = 9;
  char got[2048];
  read_path("#k/icas", got, sizeof got);
  cr_assert(strncmp(got, "SLOT ", 5) == 0, "%s", got);
  char *row = strchr(got, '\n') + 1;
  cr_assert(strstr(row, " data ") && strstr(row, " proc ") &&
                strstr(row, " 8192\n"),
            "%s", row);
  cr_assert_eq(strchr(row, '\n')[1], '\0', "one ICA, one row");
  read_path("#k/counters", got, sizeof got);
  cr_assert(strncmp(got, "steps            9\ncalls            42\n", 37) == 0,
            "%s", got);
  cr_assert(strstr(got, "\nexited           0\n") != NULL, "%s", got);
}

Test(vfs_devkern, reads_the_same_in_pieces, .timeout = 10) {
  for (int i = 0; i < 20; i++)
    kern_proc_alloc(kd, "filler", 1000 + i);
  char whole[8192], piece[8192];
  read_path("#k/procs", whole, sizeof whole);
  uint32_t c = open_in(p0, "#k/procs", VFS_OREAD);
  size_t got = 0;
  for (long n; (n = vfs_dev_read(kd, c, piece + got, 37, got)) > 0;)
    got += (size_t)n;
  piece[got] = '\0';
  vfs_chan_unref(kd, c);
  cr_assert_str_eq(piece, whole);
  cr_assert_gt(strlen(whole), 20 * 80);
}

Test(vfs_devkern, a_short_buffer_cuts_a_line, .timeout = 10) {
  char line[10];
  /* volatile: a constant length would have gcc warn of the very cut
   * under test (-Wformat-truncation). */
  volatile size_t len = sizeof line;
  uint32_t cursor = 0;
  cr_assert_eq(vfs_ktab_procs(kd, &cursor, line, len), 9);
  cr_assert_str_eq(line, "SLOT PID ");
  cr_assert_eq(vfs_ktab_procs(kd, &cursor, line, len), 9);
  cr_assert_eq(vfs_ktab_procs(kd, &cursor, line, len), 0, "one row");
  cursor = 0;
  kd->proc[p0].state = UK_PROC_FREE;
  cr_assert_gt(vfs_ktab_procs(kd, &cursor, line, len), 0);
  cr_assert_eq(vfs_ktab_procs(kd, &cursor, line, len), 0,
               "a free slot makes no row");
  kd->proc[p0].state = UK_PROC_RUNNING;
}
