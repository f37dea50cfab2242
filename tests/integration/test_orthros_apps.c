/* Orthros (issue 14): the applications of a dead OS.  A protected
 * process moves to the new active OS (same pid, its call answered) while
 * its server restarts there; a file written through a failover is whole;
 * a multi-threaded process moves whole, through one and five failovers. */
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

/* The paper's multi-threaded process (issue 14: "multi-threaded
 * applications move whole"): mtload, protected, 4 threads on the process's
 * one kernel connection, each incrementing its own counter (ctr_srv mt0 ..
 * mt3, unprotected: they restart from their state ICAs on each new OS),
 * through several failovers.  The process is the same pid throughout (it
 * moved, it never restarted), and at the end every thread's counter is
 * its answered calls, plus at most the calls a failover cut short after
 * their effect (-ECONNRESET, -EINTR: "unsure"), each counted at most once. */
#define MT_THREADS 4

static void boot_pair_disk(mach_client *m, const char *dir) {
  boot_with(m, dir, "");
}

/* ctr_load with args as `as`, protected or not; its process slot. */
static int spawn_load(mach_client *m, char **args, size_t n, const char *as,
                      bool protect) {
  int proc;
  struct mach_prog p = {.program = "ctr_load",
                        .args = args,
                        .nargs = n,
                        .name = as,
                        .protect = protect};
  cr_assert_eq(mach_spawn_prog(m, &p, &proc), 0, "%s", m->error);
  return proc;
}

struct disk_io_args {
  char byte;
  bool write;
};

static int disk_io_child(const void *arg) {
  const struct disk_io_args *a = arg;
  char buf[8192];
  int d = ns_open("#S/sd0/data", a->write ? NS_ORDWR : NS_OREAD);
  if (d < 0)
    return 2;
  for (int i = 0; i < 8; i++) {
    memset(buf, a->write ? a->byte : 0, sizeof buf);
    long n = a->write ? ns_pwrite(d, buf, sizeof buf, (uint64_t)i * 8192)
                      : ns_pread(d, buf, sizeof buf, (uint64_t)i * 8192);
    if (n != (long)sizeof buf)
      return 3;
    for (size_t j = 0; j < sizeof buf; j++)
      if (buf[j] != a->byte)
        return 4;
  }
  return 0;
}

/* 64 KiB of `byte` at offset 0 of the disk, written and never synced
 * (write), or read back (!write), by an attached child: its status. */
static int disk_io(mach_client *m, char byte, bool write) {
  struct disk_io_args a = {.byte = byte, .write = write};
  return attached(m, "disk", disk_io_child, &a);
}

/* mtload's report in path: *pid its pid, *unsure its threads' unsure calls
 * in all; true when it says ok and each thread made calls. */
static bool mt_report(const char *path, pid_t *pid, long *unsure) {
  char line[256];
  int p = -1, threads = 0;
  bool ok = false;
  long calls, u;
  *unsure = 0;
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return false;
  while (fgets(line, sizeof line, f)) {
    printf("%s", line);
    if (sscanf(line, "mtload: thread %*d svc %*s %ld calls, %ld unsure", &calls,
               &u) == 2 &&
        calls > 0) {
      threads++;
      *unsure += u;
    }
    if (sscanf(line, "mtload: pid %d,", &p) == 1)
      ok = strstr(line, ": ok") != NULL;
  }
  fclose(f);
  *pid = p;
  return ok && threads == MT_THREADS;
}

static int spawn_mtload(mach_client *m, const char *path) {
  char t[8];
  snprintf(t, sizeof t, "%d", MT_THREADS);
  h_spawn_counters(m, "mt", MT_THREADS);
  char *a[] = {"--threads",        t,          "--forever",
               "--tolerate-reset", "--result", (char *)path};
  struct mach_prog p = {.program = "mtload",
                        .args = a,
                        .nargs = 6,
                        .name = "mtload",
                        .protect = true};
  int proc;
  cr_assert_eq(mach_spawn_prog(m, &p, &proc), 0, "%s", m->error);
  return proc;
}

static uint64_t calls_of(mach_client *m, int proc) {
  return proc_entry(m, proc).calls;
}

/* True once process proc has made `more` calls on the active kernel (from
 * now), within 10 s. */
static bool calling(mach_client *m, int proc, uint64_t more) {
  uint64_t from = calls_of(m, proc);
  for (int i = 0; i < 1000; i++) {
    uint64_t n = calls_of(m, proc);
    if (n < from)
      from = 0; /* a new kernel counts from 0 */
    if (n >= from + more)
      return true;
    usleep(10 * 1000);
  }
  return false;
}

/* mtload through the faults in kinds (n of them), then told to stop. */
static void mt_through(const int *kinds, uint32_t n) {
  mach_client m;
  char path[] = "/tmp/uksim-orthros-mt-XXXXXX";
  int fd = mkstemp(path);
  cr_assert_geq(fd, 0);
  close(fd);
  unlink(path); /* mtload writes it whole at its end */
  boot_pair(&m);
  await_pair(&m, 0);
  int proc = spawn_mtload(&m, path);
  pid_t pid = pid_of(&m, proc);
  for (uint32_t i = 1; i <= n; i++) {
    /* In the middle of its calls: some made on this OS. */
    cr_assert(calling(&m, proc, 2000), "mtload is not calling before fault %u",
              i);
    struct uk_interos d = fail_once(&m, kinds[i - 1], i);
    cr_expect(trace_has(d.det_by_os, "failover", "1 moved"),
              "mtload did not move at failover %u", i);
    cr_assert(alive(pid), "mtload died at failover %u", i);
    cr_assert_eq(pid_of(&m, proc), pid, "mtload is not in its slot on OS %u",
                 i + 1);
  }
  cr_assert(calling(&m, proc, 2000), "mtload is not calling on the last OS");
  cr_assert_eq(kill(pid, SIGTERM), 0);
  for (int i = 0; i < 1000 && alive(pid); i++)
    usleep(10 * 1000);
  cr_assert(!alive(pid), "mtload did not finish");
  pid_t said;
  long unsure;
  cr_expect(mt_report(path, &said, &unsure),
            "a thread's calls were not counted exactly once");
  cr_expect_eq(said, pid, "the report is not the moved process's");
  /* A failover cuts at most the request each counter server held. */
  cr_expect_leq(unsure, (long)n * MT_THREADS, "%ld unsure calls", unsure);
  unlink(path);
  halt(&m);
}

/* Failover, steps 1-4 (kfailover.c): a protected application moves to the
 * new kernel and finishes its work there; its server restarts on the new
 * kernel from its state ICA; an unprotected application ends; a block
 * written and never synced on the dead kernel is on the disk afterwards. */
Test(orthros, a_protected_app_moves_and_its_server_restarts, .timeout = 120) {
  mach_client m;
  char dir[] = "/tmp/uksim-orthros-disk-XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  boot_pair_disk(&m, dir);
  await_pair(&m, 0);
  cr_assert_eq(
      mach_spawn(&m, "ctr_srv", NULL, 0, "ctr", MACH_SPAWN_REGISTERED, NULL), 0,
      "%s", m.error);
  char *a[] = {"--count", "4000", "--tolerate-reset", "--expect-range",
               "3999:4000"};
  int load = spawn_load(&m, a, 5, "moves", true);
  char *vs[] = {"--service", "vic"};
  cr_assert_eq(
      mach_spawn(&m, "ctr_srv", vs, 2, "vic", MACH_SPAWN_REGISTERED, NULL), 0,
      "%s", m.error);
  char *f[] = {"--forever", "--service", "vic"};
  int victim = spawn_load(&m, f, 3, "ends", false);
  pid_t pload = pid_of(&m, load), pvictim = pid_of(&m, victim);
  cr_assert_eq(disk_io(&m, 'o', true), 0, "the write through #S failed");
  usleep(50 * 1000); /* calls in a loop */
  struct uk_interos d = fail_once(&m, UKSIM__FAULT__KIND__CRASH, 1);
  uint32_t os = d.det_by_os;
  cr_expect(trace_has(os, "failover", "devices"), "no devices step");
  cr_expect(trace_has(os, "failover", "adopt: "), "no file-cache step");
  cr_expect(trace_has(os, "failover", "1 moved"), "the app did not move");
  cr_expect(trace_has(os, "restart", "ctr"), "the server did not restart");
  for (int i = 0; i < 500 && alive(pvictim); i++)
    usleep(10 * 1000);
  cr_expect(!alive(pvictim), "the unprotected app outlived its OS");
  for (int i = 0; i < 3000 && alive(pload); i++)
    usleep(10 * 1000);
  cr_assert(!alive(pload), "the moved app did not finish its 4000 calls");
  /* Exactly once: the moved app's 4000 increments are all there, but for
   * at most the one its server held when the OS died (-ECONNRESET). */
  char *c[] = {"--count", "1", "--expect-range", "4000:4001"};
  int64_t wid = h_spawn(&m, "ctr_load", c, 4, "check", NULL);
  cr_expect_eq(h_wait(&m, wid), 0, "the counter lost or doubled increments");
  cr_expect_eq(disk_io(&m, 'o', false), 0,
               "the unsynced block is not on the disk after the failover");
  halt(&m);
  rm_dir(dir);
}

/* The paper's file-writing process (§5.1): a protected application writes
 * a file on diskfs, which stores it on the disk through #S, while the
 * active OS panics; the application moves, diskfs restarts on the new OS
 * over the same disk (its open files in its state ICA), and the file ends
 * with every record once. */
Test(orthros, a_file_written_through_a_failover_is_whole, .timeout = 120) {
  mach_client m;
  char dir[] = "/tmp/uksim-orthros-fs-XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  boot_pair_disk(&m, dir);
  await_pair(&m, 0);
  char *fs[] = {"--name", "dfs", "--sync", "#S/sd0/ctl", "#S/sd0/data", "16M"};
  struct mach_prog dp = {.program = "diskfs",
                         .args = fs,
                         .nargs = 6,
                         .name = "dfs",
                         .flags = MACH_SPAWN_REGISTERED};
  cr_assert_eq(mach_spawn_prog(&m, &dp, NULL), 0, "diskfs: %s", m.error);
  char *a[] = {"dfs", "log", "1000"};
  struct mach_prog wp = {.program = "fwrite",
                         .args = a,
                         .nargs = 3,
                         .name = "writer",
                         .protect = true};
  int w;
  cr_assert_eq(mach_spawn_prog(&m, &wp, &w), 0, "fwrite: %s", m.error);
  pid_t pw = pid_of(&m, w);
  /* In the middle of its writes, once diskfs keeps its open files in a
   * state ICA (its successor takes them over from there). */
  cr_assert(writing(&m, w, "dfs"), "fwrite did not get going");
  cr_assert(alive(pw), "fwrite ended before the fault");
  struct uk_interos d = fail_once(&m, UKSIM__FAULT__KIND__PANIC, 1);
  cr_expect(trace_has(d.det_by_os, "failover", "1 moved"),
            "fwrite did not move");
  for (int i = 0; i < 6000 && alive(pw); i++)
    usleep(10 * 1000);
  cr_assert(!alive(pw), "fwrite did not finish on the new OS");
  cr_expect_eq(file_check(&m, "dfs", "log", 1000), 0,
               "the file is not every record once");
  halt(&m);
  rm_dir(dir);
}

Test(orthros, a_multithreaded_app_moves_whole, .timeout = 180) {
  static const int kinds[] = {UKSIM__FAULT__KIND__PANIC,
                              UKSIM__FAULT__KIND__HANG,
                              UKSIM__FAULT__KIND__CRASH};
  mt_through(kinds, 3);
}

Test(orthros, a_multithreaded_app_moves_through_five_failovers,
     .timeout = 300) {
  static const int kinds[] = {
      UKSIM__FAULT__KIND__CRASH, UKSIM__FAULT__KIND__PANIC,
      UKSIM__FAULT__KIND__HANG, UKSIM__FAULT__KIND__PANIC,
      UKSIM__FAULT__KIND__CRASH};
  mt_through(kinds, 5);
}
