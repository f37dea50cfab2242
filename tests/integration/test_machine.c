/* The machine's control requests: spawn, wait, kill, halt. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* Waits until the kernel has seen `n` exits (counters in kernel data). */
static void await_exits(mach_client *m, uint64_t n) {
  for (int i = 0; i < 1000; i++) {
    const struct uk_kdata *kd;
    cr_assert_eq(mach_kdata(m, &kd, NULL), 0, "%s", m->error);
    bool done = kd->ctr.exited >= n;
    bool zombie = false;
    for (int p = 0; p < UK_PROC_MAX; p++)
      zombie |= kd->proc[p].state == UK_PROC_EXITED;
    mach_kdata_unmap(kd);
    if (done || zombie)
      return;
    usleep(10 * 1000);
  }
  cr_assert_fail("no process exited within 10 s");
}

Test(machine, waitable_process_that_exits_first_still_reports_status,
     .timeout = 60) {
  mach_client m;
  int p;
  h_boot(&m, NULL);
  char *a[] = {"-c", "exit 7"};
  cr_assert_eq(
      mach_spawn(&m, "/bin/sh", a, 2, "quick", MACH_SPAWN_WAITABLE, &p), 0,
      "%s", m.error);
  await_exits(&m, 1);
  int64_t w = mach_wait_send(&m, p);
  cr_assert_geq(w, 0);
  int st = -1, sig = -1;
  cr_expect_eq(mach_wait_reply(&m, (uint64_t)w, &st, &sig), 0, "%s", m.error);
  cr_expect_eq(st, 7);
  cr_expect_eq(sig, 0);
  /* Collected: the slot is free and a second wait finds nothing. */
  w = mach_wait_send(&m, p);
  cr_expect_eq(mach_wait_reply(&m, (uint64_t)w, &st, &sig), -ESRCH);
  h_halt_clean(&m);
}

Test(machine, process_not_waitable_is_forgotten_at_exit, .timeout = 60) {
  mach_client m;
  int p, st, sig;
  h_boot(&m, NULL);
  char *a[] = {"-c", "exit 0"};
  cr_assert_eq(mach_spawn(&m, "/bin/sh", a, 2, "quick", 0, &p), 0);
  await_exits(&m, 1);
  int64_t w = mach_wait_send(&m, p);
  cr_expect_eq(mach_wait_reply(&m, (uint64_t)w, &st, &sig), -ESRCH);
  h_halt_clean(&m);
}

Test(machine, halt_frees_uncollected_exits, .timeout = 60) {
  mach_client m;
  h_boot(&m, NULL);
  char *a[] = {"-c", "exit 3"};
  cr_assert_eq(mach_spawn(&m, "/bin/sh", a, 2, "z", MACH_SPAWN_WAITABLE, NULL),
               0);
  await_exits(&m, 1);
  h_halt_clean(&m);
}

Test(machine, kill_and_spawn_errors_are_clear, .timeout = 60) {
  mach_client m;
  h_boot(&m, NULL);
  cr_expect_eq(mach_kill(&m, 63, SIGKILL), -ESRCH);
  cr_expect_eq(mach_kill(&m, -1, SIGKILL), -ESRCH);
  cr_expect_eq(mach_spawn(&m, "no-such-program", NULL, 0, "x", 0, NULL),
               -ENOENT);
  cr_expect(strstr(m.error, "not found") != NULL, "%s", m.error);
  h_halt_clean(&m);
}
