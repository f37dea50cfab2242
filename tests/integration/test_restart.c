/* Fault-time replacement (issue 3): crash, panic and hang of a server at
 * the first request, mid-stream, and while saving state for a successor.
 * The counter server's state ICA makes losses and double execution visible:
 * the final count must equal the increments that were answered. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
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
  /* The kernel may still be restarting when the last answer arrives, or
   * not have started yet: a replacement that failed because the old server
   * died is answered before the kernel has seen that server exit. */
  for (int i = 0;; i++) {
    cr_assert_eq(mach_kdata(m, &kd, NULL), 0);
    const struct uk_svc *sv = &kd->svc[0];
    if (i == 200 || (sv->phase == UK_PH_SERVING && sv->state == UK_SVC_UP &&
                     sv->restarts >= restarts))
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

/* Spawns ctr_srv with fault plan `fault`, waiting for it to register;
 * returns the spawn's status and the process's exit status in *status. */
static int start_faulty(mach_client *m, const char *fault, int *status) {
  char env0[64];
  char *env[] = {env0};
  int proc = -1;
  snprintf(env0, sizeof env0, "UKSIM_FAULT=%s", fault);
  struct mach_prog p = {.program = "ctr_srv",
                        .name = "ctr",
                        .env = env,
                        .nenv = 1,
                        .flags = MACH_SPAWN_REGISTERED | MACH_SPAWN_WAITABLE,
                        .restart = true};
  int r = mach_spawn_prog(m, &p, &proc);
  cr_assert_geq(proc, 0, "spawn: %s", m->error);
  *status = h_wait(m, mach_wait_send(m, proc));
  return r;
}

/* Whether any service is registered now. */
static bool any_service(mach_client *m) {
  const struct uk_kdata *kd;
  bool any = false;
  cr_assert_eq(mach_kdata(m, &kd, NULL), 0, "%s", m->error);
  for (int i = 0; i < UK_SVC_MAX; i++)
    any = any || kd->svc[i].state != UK_SVC_FREE;
  mach_kdata_unmap(kd);
  return any;
}

/* A fault at start or at register: the server never registers, the spawn
 * says so, and it ends the way the fault says (a restart policy does not
 * apply: there is no service to restart). */
static void never_registers(const char *fault, int want_status) {
  mach_client m;
  int status;
  h_boot(&m, NULL);
  cr_expect_eq(start_faulty(&m, fault, &status), -ECHILD, "%s: %s", fault,
               m.error);
  cr_expect(strstr(m.error, "before registering"), "%s", m.error);
  cr_expect_eq(status, want_status, "%s: exit status %d", fault, status);
  cr_expect(!any_service(&m), "%s: a service was registered", fault);
  h_halt_clean(&m);
}

Test(restart, crash_at_register_never_registers, .timeout = 60) {
  never_registers("crash@register", 128 + SIGSEGV);
}

Test(restart, panic_at_register_never_registers, .timeout = 60) {
  never_registers("panic@register", 128 + SIGKILL);
}

Test(restart, exit_at_register_never_registers, .timeout = 60) {
  never_registers("exit@register", 3);
}

Test(restart, crash_at_start_never_registers, .timeout = 60) {
  never_registers("crash@start", 128 + SIGSEGV);
}

Test(restart, panic_at_start_never_registers, .timeout = 60) {
  never_registers("panic@start", 128 + SIGKILL);
}

Test(restart, malformed_fault_plan_exits_2_before_registering, .timeout = 60) {
  never_registers("refuse@request", 2); /* refuse is only @restore */
  never_registers("crash@start:0", 2);
  never_registers("crash@nowhere", 2);
}

/* A hang before registering calls the kernel no more: no deadline applies
 * (it holds no request), so it just never registers, and the halt ends
 * it. */
static void hangs_unregistered(const char *fault) {
  mach_client m;
  char env0[64];
  char *env[] = {env0};
  snprintf(env0, sizeof env0, "UKSIM_FAULT=%s", fault);
  h_boot(&m, NULL);
  struct mach_prog p = {.program = "ctr_srv",
                        .name = "ctr",
                        .env = env,
                        .nenv = 1,
                        .restart = true,
                        .deadline_ms = 100};
  cr_assert_eq(mach_spawn_prog(&m, &p, NULL), 0, "spawn: %s", m.error);
  usleep(400 * 1000);
  cr_expect(!any_service(&m), "%s: a service was registered", fault);
  h_halt_clean(&m);
}

Test(restart, hang_at_start_never_registers_and_halt_ends_it, .timeout = 60) {
  hangs_unregistered("hang@start");
}

Test(restart, hang_at_register_never_registers_and_halt_ends_it,
     .timeout = 60) {
  hangs_unregistered("hang@register");
}

/* The old server panics right after saving, before it hands over: the
 * replacement fails, and the restart from the saved state loses nothing. */
Test(restart, panic_at_handoff_of_the_old_server, .timeout = 60) {
  mach_client m;
  h_boot(&m, NULL);
  start_ctr(&m, "panic@handoff", 0);
  run_loads(&m, 1, 100);
  struct mach_prog p = {.program = "ctr_srv"};
  int64_t id = mach_replace_send(&m, "ctr", &p, 0);
  cr_expect_eq(mach_replace_reply(&m, (uint64_t)id, NULL), -ECONNRESET, "%s",
               m.error);
  cr_expect(strstr(m.error, "old server failed"), "%s", m.error);
  check(&m, 100, 1);
  h_halt_clean(&m);
}
