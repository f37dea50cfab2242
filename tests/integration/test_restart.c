/* Fault-time replacement (issue 3): crash, panic and hang of a server at
 * the first request, mid-stream, and while saving state for a successor.
 * The counter server's state ICA makes losses and double execution visible:
 * the final count must equal the increments that were answered. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static void start_ctr(mach_client *m, const char *fault, uint32_t deadline) {
  char env0[64];
  char *env[] = {env0};
  snprintf(env0, sizeof env0, "UKSIM_FAULT=%s", fault);
  struct mach_prog p = {.program = "ctr_srv",
                        .name = "ctr",
                        .env = env,
                        .nenv = fault ? 1 : 0,
                        .flags = MACH_SPAWN_REGISTERED,
                        .restart = true,
                        .deadline_ms = deadline};
  cr_assert_eq(mach_spawn_prog(m, &p, NULL), 0, "start: %s", m->error);
}

/* Runs n loads of count increments each that tolerate -ECONNRESET; returns
 * the increments answered (parsed from nothing: the final get checks it). */
static void run_loads(mach_client *m, int n, long count) {
  char c[24];
  snprintf(c, sizeof c, "%ld", count);
  char *a[] = {"--count", c, "--tolerate-reset"};
  int64_t w[4];
  for (int i = 0; i < n; i++)
    w[i] = h_spawn(m, "ctr_load", a, 3, "load", NULL);
  for (int i = 0; i < n; i++)
    cr_expect_eq(h_wait(m, w[i]), 0, "a load saw a wrong count");
}

/* The kernel's counters: every request answered; `resets` of them with
 * -ECONNRESET; the count equals the other answered increments. */
static void check(mach_client *m, long incrs, uint32_t restarts) {
  const struct uk_kdata *kd;
  /* The kernel may still be restarting when the last answer arrives. */
  for (int i = 0;; i++) {
    cr_assert_eq(mach_kdata(m, &kd, NULL), 0);
    if (i == 200 ||
        (kd->svc[0].phase == UK_PH_SERVING && kd->svc[0].state == UK_SVC_UP))
      break;
    mach_kdata_unmap(kd);
    usleep(10 * 1000);
  }
  const struct uk_svc *s = &kd->svc[0];
  uint64_t resets = s->errors;
  cr_expect_eq(kd->ctr.sends, kd->ctr.results, "answered %llu of %llu",
               (unsigned long long)kd->ctr.results,
               (unsigned long long)kd->ctr.sends);
  cr_expect_eq(s->restarts, restarts, "restarts: %u", s->restarts);
  cr_expect_eq(s->state, UK_SVC_UP);
  mach_kdata_unmap(kd);
  char e[24];
  snprintf(e, sizeof e, "%ld", incrs - (long)resets + 1);
  char *a[] = {"--count", "1", "--expect", e};
  cr_expect_eq(h_wait(m, h_spawn(m, "ctr_load", a, 4, "check", NULL)), 0,
               "count is not %s (%llu resets): a request was lost or ran "
               "twice",
               e, (unsigned long long)resets);
}

/* One fault at the n-th request (n scaled with the load, so it also falls
 * mid-stream under valgrind) while `loads` loads of `count` run. */
static void fault_under_load(const char *kind, int n, uint32_t deadline,
                             int loads, int count) {
  mach_client m;
  char fault[32];
  snprintf(fault, sizeof fault, "%s@request:%d", kind, n);
  h_boot(&m, NULL);
  start_ctr(&m, fault, deadline);
  run_loads(&m, loads, count);
  check(&m, (long)loads * count, 1);
  h_halt_clean(&m);
}

Test(restart, crash_at_first_request, .timeout = 60) {
  fault_under_load("crash", 1, 0, 2, scaled(500));
}

Test(restart, crash_mid_stream, .timeout = 60) {
  fault_under_load("crash", scaled(700), 0, 4, scaled(1000));
}

Test(restart, panic_mid_stream, .timeout = 60) {
  fault_under_load("panic", scaled(300), 0, 2, scaled(1000));
}

Test(restart, hang_is_detected_by_the_deadline, .timeout = 60) {
  fault_under_load("hang", scaled(50), 200, 2, scaled(300));
}

Test(restart, crash_while_saving_state_for_a_successor, .timeout = 60) {
  mach_client m;
  h_boot(&m, NULL);
  start_ctr(&m, "crash@save", 0);
  run_loads(&m, 1, 100);
  struct mach_prog p = {.program = "ctr_srv"};
  int64_t id = mach_replace_send(&m, "ctr", &p, 0);
  cr_expect_eq(mach_replace_reply(&m, (uint64_t)id, NULL), -ECONNRESET);
  cr_expect(strstr(m.error, "old server failed"), "%s", m.error);
  check(&m, 100, 1);
  h_halt_clean(&m);
}

Test(restart, panic_at_first_request, .timeout = 60) {
  fault_under_load("panic", 1, 0, 2, scaled(300));
}

Test(restart, hang_at_first_request, .timeout = 60) {
  fault_under_load("hang", 1, 200, 2, scaled(300));
}

/* Stuck in its replacement hook: it holds no request, but leaves its queue
 * unserved past the deadline once the replacement has failed. */
Test(restart, hang_while_saving_state_for_a_successor, .timeout = 60) {
  mach_client m;
  h_boot(&m, NULL);
  start_ctr(&m, "hang@save", 200);
  run_loads(&m, 1, 100);
  struct mach_prog p = {.program = "ctr_srv"};
  /* Long enough for the successor to start and register (under valgrind
   * too), so that the old server is in its hook when the deadline passes. */
  int64_t id = mach_replace_send(&m, "ctr", &p,
                                 getenv("UKSIM_UNDER_VALGRIND") ? 5000 : 300);
  int64_t w =
      h_spawn(&m, "ctr_load", (char *[]){"--count", "50"}, 2, "late", NULL);
  cr_expect_eq(mach_replace_reply(&m, (uint64_t)id, NULL), -ETIMEDOUT, "%s",
               m.error);
  cr_expect_eq(h_wait(&m, w), 0, "the queued requests were not served");
  check(&m, 150, 1);
  h_halt_clean(&m);
}
