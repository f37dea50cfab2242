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

#include "harness.h"
#include "kmon.h"
#include "uksim/interos.h"
#include "uksim/ns.h"

#define HB_MS 10
#define TIMEOUT_MS 200

static char trace[256];

static void skip_under_valgrind(void) {
  if (getenv("UKSIM_UNDER_VALGRIND"))
    cr_skip_test("real-time fault detection cannot run under valgrind");
}

TestSuite(monitor, .init = skip_under_valgrind, .timeout = 300);

/* A machine with an active and a backup whose monitor reads every
 * interval_ms ms under policy. */
static void boot(mach_client *m, const char *interval, const char *policy) {
  static int n;
  struct mach_opts o;
  setenv(KMON_ENV_INTERVAL, interval, 1);
  setenv(KMON_ENV_POLICY, policy, 1);
  mach_opts_default(&o);
  snprintf(o.name, sizeof o.name, "mon-%d-%d", (int)getpid(), n++);
  snprintf(trace, sizeof trace, "%s/%s.jsonl",
           getenv("UKSIM_BUILD_ROOT") ? getenv("UKSIM_BUILD_ROOT") : "/tmp",
           o.name);
  snprintf(o.trace_file, sizeof o.trace_file, "%s", trace);
  o.nic_port = (uint16_t)(34000 + (getpid() % 400) * 2 * UK_NIC_PORTS);
  o.backup = true;
  o.heartbeat_ms = HB_MS;
  o.heartbeat_timeout_ms = TIMEOUT_MS;
  cr_assert_eq(mach_boot(m, &o), 0, "boot: %s", m->error);
}

/* The backup's OS number, once both run. */
static uint32_t backup_os(mach_client *m) {
  for (int i = 0; i < 500; i++) {
    Uksim__Reply *st;
    cr_assert_eq(mach_status(m, &st), 0, "%s", m->error);
    uint32_t b = st->backup_os;
    uksim__reply__free_unpacked(st, NULL);
    if (b)
      return b;
    usleep(10 * 1000);
  }
  cr_assert_fail("no backup OS");
  return 0;
}

/* The line of OS os's trace with both strings, within ms ms; "" if none. */
static const char *trace_line(uint32_t os, const char *a, const char *b,
                              int ms) {
  static char line[2048];
  char path[300];
  snprintf(path, sizeof path, "%s.os%u", trace, os);
  for (int i = 0; i <= ms / 10; i++) {
    FILE *f = fopen(path, "r");
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f))
      found = strstr(line, a) && strstr(line, b);
    if (f)
      fclose(f);
    if (found)
      return line;
    usleep(10 * 1000);
  }
  return "";
}

static uint32_t detections(mach_client *m) {
  const struct uk_interos *io;
  cr_assert_eq(mach_interos(m, &io), 0, "%s", m->error);
  uint32_t n = io->det_count;
  mach_interos_unmap(io);
  return n;
}

static void halt(mach_client *m) {
  uint32_t live = 99;
  cr_assert_eq(mach_halt(m, &live), 0, "halt: %s", m->error);
  mach_close(m);
}

/* The heartbeat baseline, beside the monitor: it has not declared the
 * active dead a whole timeout after the monitor's finding. */
static void heartbeat_missed(mach_client *m) {
  usleep(3 * TIMEOUT_MS * 1000);
  cr_expect_eq(detections(m), 0, "the heartbeat saw the fault");
}

/* No fault, a workload through the locks: the monitor finds nothing
 * (so that a finding above is the fault's). */
Test(monitor, finds_nothing_in_a_healthy_kernel) {
  mach_client m;
  boot(&m, "1", "report");
  uint32_t b = backup_os(&m);
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
  uint32_t b = backup_os(&m);
  usleep(200 * 1000); /* the monitor maps the active's region */
  cr_assert_eq(mach_fault_arg(&m, UKSIM__FAULT__KIND__DEADLOCK, 0, "ica"), 0,
               "%s", m.error);
  /* Its first ICA leaves the lock held, its second waits for it. */
  char *args[] = {"icas", "10", "3000"};
  cr_assert_eq(mach_spawn(&m, "ap_hog", args, 3, "hog", 0, NULL), 0, "%s",
               m.error);
  const char *l = trace_line(b, "\"monitor\"", "deadlock", 5000);
  cr_assert_neq(l[0], '\0', "the monitor did not find the deadlock");
  cr_expect_neq(strstr(l, "lock ica held"), NULL, "%s", l);
  if (getenv("MONITOR_SHOW"))
    fprintf(stderr, "%s", l);
  cr_expect_neq(strstr(l, "hog"), NULL, "the owner is named: %s", l);
  heartbeat_missed(&m);
  halt(&m);
}

Test(monitor, finds_runaway_allocation) {
  mach_client m;
  boot(&m, "10", "report");
  uint32_t b = backup_os(&m);
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
  uint32_t b = backup_os(&m);
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
  (void)backup_os(&m);
  usleep(200 * 1000);
  cr_assert_eq(mach_fault_arg(&m, UKSIM__FAULT__KIND__DEADLOCK, 0, "ica"), 0,
               "%s", m.error);
  char *args[] = {"icas", "10", "3000"};
  cr_assert_eq(mach_spawn(&m, "ap_hog", args, 3, "hog", 0, NULL), 0, "%s",
               m.error);
  const struct uk_interos *io;
  cr_assert_eq(mach_interos(&m, &io), 0, "%s", m.error);
  for (int i = 0; i < 500 && io->det_count == 0; i++)
    usleep(10 * 1000);
  cr_expect_eq(io->det_count, 1, "no failover");
  cr_expect_eq(io->det_cause, UK_DETECT_MONITOR);
  mach_interos_unmap(io);
  bool paired = false; /* the new active, and a new backup beside it */
  for (int i = 0; i < 1000 && !paired; i++) {
    Uksim__Reply *st;
    cr_assert_eq(mach_status(&m, &st), 0, "%s", m.error);
    paired = st->failovers == 1 && st->active_os && st->backup_os;
    uksim__reply__free_unpacked(st, NULL);
    usleep(10 * 1000);
  }
  cr_assert(paired, "no active and backup after the failover");
  halt(&m);
}
