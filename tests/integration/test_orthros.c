/* Orthros (issue 14): an ActiveOS and a BackupOS on one machine.  The
 * backup finds a dead active through the PANIC notice or the missing
 * heartbeat, fences it, becomes the active OS, and the machine boots the
 * next backup; processes outlive their kernel; the machine re-partitions
 * at every failover and the new active republishes the protected
 * processes. */
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

/* A fault only the missing heartbeat can reveal. */
static struct uk_interos silent_fault(mach_client *m, int kind,
                                      const char *what) {
  struct uk_interos d = fail_once(m, kind, 1);
  cr_expect_eq(d.det_cause, UK_DETECT_TIMEOUT);
  cr_expect_geq(d.det_since_hb_ns, TIMEOUT_MS * 1000000ull);
  report(what, &d);
  cr_expect(trace_has(d.det_by_os, "os-dead", "heartbeat timeout"));
  return d;
}

/* The heartbeat timers are real-time and in the background: a lock-step
 * scenario run with a backup gives the trace it gives without one. */
static void run_sha(const char *extra, char *sha, size_t len) {
  char cmd[1024], line[512];
  snprintf(cmd, sizeof cmd, "%s run %s/crash-mid-stream.scn --quiet %s 2>&1",
           UKSIM_EXE_DEFAULT, UKSIM_SCENARIO_DIR, extra);
  FILE *f = popen(cmd, "r");
  cr_assert_not_null(f);
  sha[0] = '\0';
  while (fgets(line, sizeof line, f)) {
    const char *s = strstr(line, "trace sha256 ");
    if (s)
      snprintf(sha, len, "%s", s + 13);
  }
  cr_expect_eq(pclose(f), 0, "uksim run %s failed", extra);
}

Test(orthros, panic_notice_finds_a_panic_fast, .timeout = 60) {
  mach_client m;
  boot_pair(&m);
  struct uk_interos d = fail_once(&m, UKSIM__FAULT__KIND__PANIC, 1);
  /* Found by the notice, not by the heartbeat's silence: the cause says
   * which (how soon is the benchmark's to measure, not a test's: a
   * loaded host delays either). */
  cr_expect_eq(d.det_cause, UK_DETECT_PANIC,
               "found by cause %u, not the notice", d.det_cause);
  cr_expect_gt(d.det_since_fault_ns, 0);
  report("panic", &d);
  cr_expect(trace_has(d.det_by_os, "os-dead", "panic notice"));
  halt(&m);
}

Test(orthros, heartbeat_timeout_finds_a_hang, .timeout = 60) {
  mach_client m;
  boot_pair(&m);
  Uksim__Reply *st = status(&m);
  pid_t hung = st->active_pid;
  uksim__reply__free_unpacked(st, NULL);
  silent_fault(&m, UKSIM__FAULT__KIND__HANG, "hang");
  cr_expect_eq(kill(hung, 0), -1, "the hung kernel was not fenced");
  halt(&m);
}

/* The machine kills the kernel and tells nobody: the cause the backup
 * gives is the timeout, never a notice. */
Test(orthros, crash_is_found_by_the_missing_heartbeat_only, .timeout = 60) {
  mach_client m;
  boot_pair(&m);
  silent_fault(&m, UKSIM__FAULT__KIND__CRASH, "crash");
  halt(&m);
}

Test(orthros, five_failovers_in_a_row, .timeout = 120) {
  static const int kinds[] = {
      UKSIM__FAULT__KIND__PANIC, UKSIM__FAULT__KIND__HANG,
      UKSIM__FAULT__KIND__CRASH, UKSIM__FAULT__KIND__PANIC,
      UKSIM__FAULT__KIND__CRASH, UKSIM__FAULT__KIND__HANG};
  mach_client m;
  boot_pair(&m);
  for (uint32_t i = 0; i < 6; i++) {
    struct uk_interos d = fail_once(&m, kinds[i], i + 1);
    cr_expect_eq(d.det_cause,
                 kinds[i] == UKSIM__FAULT__KIND__PANIC ? UK_DETECT_PANIC
                                                       : UK_DETECT_TIMEOUT,
                 "failover %u", i + 1);
  }
  Uksim__Reply *st = status(&m);
  cr_expect_eq(st->failovers, 6);
  cr_expect_eq(st->active_os, 7, "the 7th OS is active");
  cr_expect_eq(st->backup_os, 8);
  uksim__reply__free_unpacked(st, NULL);
  /* The 7th OS serves. */
  char *a[] = {"-c", "exit 5"};
  int64_t w = h_spawn(&m, "/bin/sh", a, 2, "after", NULL);
  cr_expect_eq(h_wait(&m, w), 5);
  halt(&m);
}

/* A process whose kernel crashes is not killed with it: its connection is
 * held by the machine and handed to the new kernel. */
Test(orthros, processes_outlive_their_kernel, .timeout = 60) {
  mach_client m;
  int srv, load;
  boot_pair(&m);
  await_pair(&m, 0);
  cr_assert_eq(
      mach_spawn(&m, "ctr_srv", NULL, 0, "ctr", MACH_SPAWN_REGISTERED, &srv), 0,
      "%s", m.error);
  /* A request its server held when the OS died fails with -ECONNRESET
   * (the AnT fault path: it may or may not have been done). */
  char *a[] = {"--forever", "--tolerate-reset"};
  struct mach_prog lp = {.program = "ctr_load",
                         .args = a,
                         .nargs = 2,
                         .name = "load",
                         .protect = true};
  cr_assert_eq(mach_spawn_prog(&m, &lp, &load), 0, "%s", m.error);
  const struct uk_kdata *kd;
  cr_assert_eq(mach_kdata(&m, &kd, NULL), 0, "%s", m.error);
  pid_t psrv = kd->proc[srv].pid, pload = kd->proc[load].pid;
  mach_kdata_unmap(kd);
  usleep(100 * 1000); /* calls in a loop */
  struct uk_interos d = fail_once(&m, UKSIM__FAULT__KIND__CRASH, 1);
  usleep(200 * 1000);
  cr_expect(alive(pload), "the application died with its kernel");
  /* The server's process ends with its OS; its service restarts. */
  for (int i = 0; i < 200 && alive(psrv); i++)
    usleep(10 * 1000);
  cr_expect(!alive(psrv), "the dead OS's server outlived the takeover");
  /* The new kernel received the dead one's state: both connections. */
  cr_expect(trace_has(d.det_by_os, "takeover", "2 connections"),
            "the new kernel did not receive both connections");
  halt(&m);
  usleep(100 * 1000);
  cr_expect(!alive(pload) && !alive(psrv), "orphans outlived the machine");
}

Test(orthros, a_backup_does_not_change_a_lockstep_run, .timeout = 120) {
  char a[128], b[128];
  run_sha("", a, sizeof a);
  run_sha("--backup", b, sizeof b);
  cr_expect(a[0] != '\0', "no trace hash");
  cr_expect_str_eq(a, b);
}

Test(orthros, uksim_fault_injects_and_refuses_bad_usage, .timeout = 60) {
  mach_client m;
  char cmd[512];
  boot_pair(&m);
  await_pair(&m, 0);
  snprintf(cmd, sizeof cmd, "%s fault --name %s kernel bogus 2>/dev/null",
           UKSIM_EXE_DEFAULT, name);
  cr_expect_eq(WEXITSTATUS(system(cmd)), 2);
  snprintf(cmd, sizeof cmd, "%s fault --name %s kernel panic",
           UKSIM_EXE_DEFAULT, name);
  cr_expect_eq(WEXITSTATUS(system(cmd)), 0);
  struct uk_interos d = await_detection(&m, 1);
  cr_expect_eq(d.det_cause, UK_DETECT_PANIC);
  await_pair(&m, 1);
  halt(&m);
}
