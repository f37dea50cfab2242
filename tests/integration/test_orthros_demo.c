/* A machine's owner through a failover: the link that boots a machine
 * with a backup (mach_boot, `uksim demo --backup --keep`) must not take a
 * failover for the machine's end, since the owner leaving halts the
 * machine.  A failover answers what the dead kernel held with -ESRCH and
 * what comes before the new active with -EAGAIN: a Ping asked again
 * (mach_ping) is answered by the new active; a late answer on the link
 * is read and dropped (mach_drop_late), not taken for a hang-up.
 *
 * The race is made deterministic by stopping the active kernel (SIGSTOP:
 * it answers nothing, sends no heartbeat) before the request; the backup
 * finds it dead after the heartbeat timeout and takes over.  Failure
 * detection is real time: these tests skip under valgrind
 * (tests/ci-skips.txt). */
#include <criterion/criterion.h>
#include <errno.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "kmon.h"
#include "orthros.h"
#include "uksim_paths.h"

TestSuite(orthros_demo, .init = skip_under_valgrind);

/* Stops the active kernel; returns its OS number. */
static uint32_t stop_active(mach_client *m) {
  Uksim__Reply *st = status(m);
  uint32_t os = st->active_os;
  cr_assert_gt(st->active_pid, 0);
  cr_assert_eq(kill(st->active_pid, SIGSTOP), 0);
  uksim__reply__free_unpacked(st, NULL);
  return os;
}

static uint32_t failovers(mach_client *m) {
  Uksim__Reply *st = status(m);
  uint32_t n = st->failovers;
  uksim__reply__free_unpacked(st, NULL);
  return n;
}

Test(orthros_demo, a_ping_to_a_stopped_active_fails_without_waiting,
     .timeout = 120) {
  mach_client m;
  boot_pair(&m);
  await_pair(&m, 0);
  stop_active(&m);
  int r = mach_ping(&m, 0); /* what boot_confirm did before: one Ping */
  cr_assert(r == -ESRCH || r == -EAGAIN, "ping: %d (%s)", r, m.error);
  await_pair(&m, 1); /* the machine runs: the Ping met a failover */
  h_halt_clean(&m);
  mach_close(&m);
}

Test(orthros_demo, a_ping_waits_through_a_failover, .timeout = 120) {
  mach_client m;
  boot_pair(&m);
  await_pair(&m, 0);
  uint32_t old = stop_active(&m);
  cr_assert_eq(mach_ping(&m, MACH_FAILOVER_WAIT_MS), 0, "ping: %s", m.error);
  cr_assert_eq(failovers(&m), 1, "the Ping was answered by a new active");
  Uksim__Reply *st = status(&m);
  cr_assert_neq(st->active_os, old);
  uksim__reply__free_unpacked(st, NULL);
  h_halt_clean(&m);
  mach_close(&m);
}

Test(orthros_demo, a_late_answer_is_dropped_and_a_hang_up_is_the_end,
     .timeout = 120) {
  mach_client m;
  boot_pair(&m);
  await_pair(&m, 0);
  Uksim__Ctl c = UKSIM__CTL__INIT;
  Uksim__Ping ping = UKSIM__PING__INIT;
  c.body_case = UKSIM__CTL__BODY_PING;
  c.ping = &ping;
  cr_assert_geq(mach_send(&m, &c), 0, "%s", m.error); /* never collected */
  struct pollfd p = {.fd = m.sock, .events = POLLIN};
  cr_assert_eq(poll(&p, 1, 30000), 1, "the Ping's answer came");
  cr_assert_eq(mach_drop_late(&m), 0, "a late answer: %s", m.error);
  cr_assert_eq(mach_ping(&m, 0), 0, "the link still serves: %s", m.error);
  h_halt_clean(&m); /* the machine ends: its link closes */
  cr_assert_lt(mach_drop_late(&m), 0, "a hang-up is the end");
  mach_close(&m);
}

/* `uksim demo --backup --keep` whose 1st OS stops itself before it
 * answers the boot's Ping (UKSIM_KSTOP 1:ping:1, as a crash right after
 * the boot): the demo goes through the failover, runs and keeps the
 * machine up until SIGINT. */
static pid_t start_demo_with(char *const argv[], const char *kstop, int *out) {
  int pfd[2];
  cr_assert_eq(pipe(pfd), 0);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    dup2(pfd[1], 1);
    close(pfd[0]);
    close(pfd[1]);
    if (kstop)
      setenv(KSTOP_ENV, kstop, 1);
    execv(UKSIM_EXE_DEFAULT, argv);
    _exit(127);
  }
  close(pfd[1]);
  *out = pfd[0];
  return pid;
}

static pid_t start_demo(const char *name, int *out) {
  char *argv[] = {"uksim",
                  "demo",
                  "--backup",
                  "--keep",
                  "--name",
                  (char *)name,
                  "--heartbeat-timeout-ms",
                  "1000",
                  "--requests",
                  "200",
                  "--trace",
                  "0",
                  NULL};
  return start_demo_with(argv, "1:ping:1", out);
}

/* Reads the demo's stdout until its "stays up" line; false at its end. */
static bool await_stays_up(int fd) {
  static char buf[16384];
  size_t n = 0;
  ssize_t r;
  while (n < sizeof buf - 1 &&
         (r = read(fd, buf + n, sizeof buf - 1 - n)) > 0) {
    n += (size_t)r;
    buf[n] = '\0';
    if (strstr(buf, "stays up"))
      return true;
  }
  return false;
}

/* A while later the demo still runs and the machine serves; SIGINT then
 * ends the demo by itself. */
static void demo_still_up_then_ends(pid_t demo, mach_client *m, int out) {
  usleep(500 * 1000);
  int st;
  cr_assert_eq(waitpid(demo, &st, WNOHANG), 0, "the demo still runs");
  cr_assert_eq(mach_ping(m, 0), 0, "the machine serves: %s", m->error);
  mach_close(m);
  kill(demo, SIGINT);
  cr_assert_eq(waitpid(demo, &st, 0), demo);
  cr_assert(WIFEXITED(st), "the demo ended by itself after SIGINT");
  close(out);
}

Test(orthros_demo, a_kept_demo_stays_up_through_a_failover, .timeout = 180) {
  char name[64];
  int out;
  snprintf(name, sizeof name, "demokeep-%d", (int)getpid());
  pid_t demo = start_demo(name, &out);
  cr_assert(await_stays_up(out), "the demo said the machine stays up");
  mach_client m;
  cr_assert_eq(mach_connect(&m, name), 0, "%s", m.error);
  await_pair(&m, 1); /* the stopped 1st OS was taken over */
  demo_still_up_then_ends(demo, &m, out);
}

/* `uksim kupdate` from another terminal while the demo's own load runs
 * (the kernel-update tutorial and lab 10 do so): the load's processes are
 * not protected and end with the old kernel, and the new kernel's tables
 * are in a layout this uksim does not read; the demo says so and keeps
 * the machine up, rather than take either for the machine's end. */
Test(orthros_demo, a_kept_demo_stays_up_through_a_kernel_update_under_load,
     .timeout = 180) {
  char name[64], kernel2[512], exe[] = UKSIM_EXE_DEFAULT;
  int out;
  snprintf(name, sizeof name, "demokupd-%d", (int)getpid());
  snprintf(kernel2, sizeof kernel2, "%s/uksim-kernel2", dirname(exe));
  char *argv[] = {"uksim",
                  "demo",
                  "--backup",
                  "--backup-kernel",
                  kernel2,
                  "--keep",
                  "--name",
                  name,
                  "--heartbeat-timeout-ms",
                  "1000",
                  "--requests",
                  "1000000",
                  "--trace",
                  "0",
                  NULL};
  pid_t demo = start_demo_with(argv, NULL, &out);
  mach_client m;
  for (int i = 0; i < 100 && mach_connect(&m, name) != 0; i++)
    usleep(100 * 1000);
  cr_assert_eq(mach_connect(&m, name), 0, "%s", m.error);
  await_pair(&m, 0);
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s kupdate --name %s >/dev/null",
           UKSIM_EXE_DEFAULT, name);
  cr_assert_eq(system(cmd), 0, "%s", cmd);
  cr_assert(await_stays_up(out), "the demo said the machine stays up");
  demo_still_up_then_ends(demo, &m, out);
}
