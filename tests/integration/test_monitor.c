/* The seed-003 monitor (issue 15): the backup kernel reads the active
 * kernel's kernel-data region every --monitor-interval ms and finds, from
 * the tables alone, the in-kernel faults injected into the active (a lock
 * never released, runaway allocation, a pipe that skips its wake-ups),
 * while the Orthros heartbeat, which runs beside it, misses them: the
 * active's loop and heartbeat go on.  With policy failover, a finding
 * fails the active over through the Orthros path.
 *
 * Detection is real time (the monitor's timer and its 50 ms thresholds),
 * so these tests skip under valgrind (tests/ci-skips.txt); the detectors
 * run under valgrind in tests/sim-kernel/test_kmon_detect.c.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kmon.h"
#include "orthros.h"
#include "uksim/ns.h"

/* The heartbeat's timeout here: longer than the Orthros tests' so that a
 * loaded host does not fail over by itself while a fault is looked for. */
#define MON_TIMEOUT_MS 200

TestSuite(monitor, .init = skip_under_valgrind, .timeout = 300);

/* A machine with an active and a backup whose monitor reads every
 * interval_ms ms under policy. */
static void boot(mach_client *m, const char *interval, const char *policy) {
  struct mach_opts o;
  setenv(KMON_ENV_INTERVAL, interval, 1);
  setenv(KMON_ENV_POLICY, policy, 1);
  pair_opts(&o);
  o.heartbeat_timeout_ms = MON_TIMEOUT_MS;
  cr_assert_eq(mach_boot(m, &o), 0, "boot: %s", m->error);
}

static uint32_t detections(mach_client *m) {
  const struct uk_interos *io;
  cr_assert_eq(mach_interos(m, &io), 0, "%s", m->error);
  uint32_t n = io->det_count;
  mach_interos_unmap(io);
  return n;
}

/* The heartbeat baseline, beside the monitor: it has not declared the
 * active dead a whole timeout after the monitor's finding. */
static void heartbeat_missed(mach_client *m) {
  usleep(3 * MON_TIMEOUT_MS * 1000);
  cr_expect_eq(detections(m), 0, "the heartbeat saw the fault");
}

/* The deadlock on the ICA table: its first ICA call leaves the lock
 * held, and a process that takes ten ICAs waits for it at its second. */
static void deadlock_ica(mach_client *m) {
  usleep(200 * 1000); /* the monitor maps the active's region */
  cr_assert_eq(mach_fault_arg(m, UKSIM__FAULT__KIND__DEADLOCK, 0, "ica"), 0,
               "%s", m->error);
  char *args[] = {"icas", "10", "3000"};
  cr_assert_eq(mach_spawn(m, "ap_hog", args, 3, "hog", 0, NULL), 0, "%s",
               m->error);
}

/* No fault, a workload through the locks: the monitor finds nothing
 * (so that a finding above is the fault's). */
Test(monitor, finds_nothing_in_a_healthy_kernel) {
  mach_client m;
  boot(&m, "1", "report");
  uint32_t b = await_backup(&m);
  char *args[] = {"icas", "200", "300"};
  int proc;
  cr_assert_eq(
      mach_spawn(&m, "ap_hog", args, 3, "hog", MACH_SPAWN_WAITABLE, &proc), 0,
      "%s", m.error);
  int st = -1, sig = 0;
  int64_t id = mach_wait_send(&m, proc);
  cr_assert_geq(id, 0, "%s", m.error);
  cr_assert_eq(mach_wait_reply(&m, (uint64_t)id, &st, &sig), 0, "%s", m.error);
  cr_expect_eq(st, 0, "ap_hog: %d", st);
  cr_expect_str_eq(trace_line(b, "\"monitor\"", "", 300), "",
                   "a finding without a fault");
  halt(&m);
}

Test(monitor, finds_a_lock_never_released) {
  mach_client m;
  boot(&m, "10", "report");
  uint32_t b = await_backup(&m);
  deadlock_ica(&m);
  const char *l = trace_line(b, "\"monitor\"", "deadlock", 5000);
  cr_assert_neq(l[0], '\0', "the monitor did not find the deadlock");
  cr_expect_neq(strstr(l, "lock ica held"), NULL, "%s", l);
  if (getenv("MONITOR_SHOW"))
    fprintf(stderr, "%s", l);
  cr_expect_neq(strstr(l, "hog"), NULL, "the owner is named: %s", l);
  heartbeat_missed(&m);
  halt(&m);
}

/* KMON_PAUSE_SIGNAL (bench monitor's A/B switch): a paused monitor reads
 * nothing and so finds nothing; resumed, it finds what is there. */
Test(monitor, a_paused_monitor_finds_the_fault_only_once_resumed) {
  mach_client m;
  boot(&m, "10", "report");
  uint32_t b = await_backup(&m);
  Uksim__Reply *st;
  cr_assert_eq(mach_status(&m, &st), 0, "%s", m.error);
  pid_t backup = st->backup_pid;
  uksim__reply__free_unpacked(st, NULL);
  cr_assert_gt(backup, 0);
  cr_assert_eq(kill(backup, KMON_PAUSE_SIGNAL), 0);
  deadlock_ica(&m);
  cr_expect_str_eq(trace_line(b, "\"monitor\"", "deadlock", 1000), "",
                   "a paused monitor found the deadlock");
  cr_assert_eq(kill(backup, KMON_PAUSE_SIGNAL), 0);
  const char *l = trace_line(b, "\"monitor\"", "deadlock", 5000);
  cr_expect_neq(l[0], '\0', "the resumed monitor did not find the deadlock");
  halt(&m);
}

Test(monitor, finds_runaway_allocation) {
  mach_client m;
  boot(&m, "10", "report");
  uint32_t b = await_backup(&m);
  usleep(200 * 1000);
  cr_assert_eq(mach_fault(&m, UKSIM__FAULT__KIND__RUNAWAY, 0), 0, "%s",
               m.error);
  const char *l = trace_line(b, "\"monitor\"", "runaway", 5000);
  cr_assert_neq(l[0], '\0', "the monitor did not find the runaway");
  cr_expect_neq(strstr(l, "ICA memory +"), NULL, "%s", l);
  halt(&m);
}

/* A reader blocked on an empty pipe (a child attached to the machine);
 * the parent, attached to the same namespace, writes to it once the pipe
 * servant skips its wake-ups. */
Test(monitor, finds_a_reader_never_woken) {
  mach_client m;
  char v[16], buf[8];
  int rslot, rfd, sync[2];
  boot(&m, "10", "report");
  uint32_t b = await_backup(&m);
  cr_assert_eq(mach_attach(&m, "reader", -1, 0, &rslot, &rfd), 0, "%s",
               m.error);
  cr_assert_eq(pipe(sync), 0);
  pid_t c = fork();
  if (c == 0) {
    snprintf(v, sizeof v, "%d", rfd);
    setenv("UKSIM_FD", v, 1);
    if (ns_bind("#|", "/n", NS_MREPL) < 0)
      _exit(10);
    int fd = ns_open("/n/data", NS_OREAD);
    if (fd < 0 || write(sync[1], "o", 1) != 1)
      _exit(11);
    _exit(ns_read(fd, buf, sizeof buf) > 0 ? 0 : 12); /* never woken */
  }
  cr_assert_eq(read(sync[0], buf, 1), 1, "the reader did not open");
  usleep(100 * 1000); /* it waits in its read */
  cr_assert_eq(mach_fault(&m, UKSIM__FAULT__KIND__STALL_DRIVER, 0), 0, "%s",
               m.error);
  int wslot, wfd;
  cr_assert_eq(mach_attach(&m, "writer", rslot, 0, &wslot, &wfd), 0, "%s",
               m.error);
  snprintf(v, sizeof v, "%d", wfd);
  setenv("UKSIM_FD", v, 1);
  int fd = ns_open("/n/data1", NS_OWRITE);
  cr_assert_geq(fd, 0, "open /n/data1: %d", fd);
  cr_assert_eq(ns_write(fd, "stuck", 5), 5);
  const char *l = trace_line(b, "\"monitor\"", "stalled-driver", 5000);
  cr_assert_neq(l[0], '\0', "the monitor did not find the stalled driver");
  cr_expect_neq(strstr(l, "(5 bytes)"), NULL, "%s", l);
  /* The evidence names the servant and the reader's own entry. */
  char who[64];
  snprintf(who, sizeof who, "proc %d (reader) on pipe", rslot);
  cr_expect_neq(strstr(l, "servant #| (pipe): 1 readers blocked"), NULL, "%s",
                l);
  cr_expect_neq(strstr(l, who), NULL, "not %s: %s", who, l);
  heartbeat_missed(&m);
  int st;
  cr_expect_eq(waitpid(c, &st, WNOHANG), 0, "the reader was woken");
  kill(c, SIGKILL);
  waitpid(c, &st, 0);
  halt(&m);
}

/* Policy failover: the finding fences the active and the backup takes
 * over, as after a missed heartbeat; the detection record says so. */
Test(monitor, failover_policy_takes_over) {
  mach_client m;
  boot(&m, "10", "failover");
  (void)await_backup(&m);
  deadlock_ica(&m);
  struct uk_interos d = await_detection(&m, 1);
  cr_expect_eq(d.det_count, 1, "more than one failover");
  cr_expect_eq(d.det_cause, UK_DETECT_MONITOR);
  await_pair(&m, 1); /* the new active, and a new backup beside it */
  halt(&m);
}
