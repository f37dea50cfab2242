/* Server replacement and restart (seed 000 §5; issue 3) with real
 * processes: the counter server ctr_srv keeps its count in a state ICA, so
 * "nothing lost, nothing executed twice" is checked exactly: the final count
 * equals the increments that were answered. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static void start_ctr(mach_client *m, char **env, size_t nenv, bool restart,
                      uint32_t deadline_ms, const char *svc) {
  char *args[] = {"--service", (char *)svc};
  struct mach_prog p = {.program = "ctr_srv",
                        .args = args,
                        .nargs = 2,
                        .name = svc,
                        .env = env,
                        .nenv = nenv,
                        .flags = MACH_SPAWN_REGISTERED,
                        .restart = restart,
                        .deadline_ms = deadline_ms};
  cr_assert_eq(mach_spawn_prog(m, &p, NULL), 0, "start ctr_srv: %s", m->error);
}

/* Replaces svc with ctr_srv run with args/env; returns the status. */
static int replace(mach_client *m, const char *svc, char **args, size_t n,
                   char **env, size_t nenv, uint32_t deadline_ms) {
  struct mach_prog p = {
      .program = "ctr_srv", .args = args, .nargs = n, .env = env, .nenv = nenv};
  int64_t id = mach_replace_send(m, svc, &p, deadline_ms);
  cr_assert_geq(id, 0);
  return mach_replace_reply(m, (uint64_t)id, NULL);
}

static int64_t load(mach_client *m, const char *name, long count, long expect,
                    bool tolerate) {
  char c[24], e[24];
  char *a[5];
  size_t n = 0;
  snprintf(c, sizeof c, "%ld", count);
  snprintf(e, sizeof e, "%ld", expect);
  a[n++] = "--count";
  a[n++] = c;
  if (expect >= 0) {
    a[n++] = "--expect";
    a[n++] = e;
  }
  if (tolerate)
    a[n++] = "--tolerate-reset";
  return h_spawn(m, "ctr_load", a, n, name, NULL);
}

static struct uk_svc svc_entry(mach_client *m, const char *name) {
  const struct uk_kdata *kd;
  struct uk_svc out;
  memset(&out, 0, sizeof out);
  cr_assert_eq(mach_kdata(m, &kd, NULL), 0, "%s", m->error);
  for (int i = 0; i < UK_SVC_MAX; i++)
    if (kd->svc[i].state != UK_SVC_FREE && !strcmp(kd->svc[i].name, name))
      out = kd->svc[i];
  cr_expect_eq(kd->ctr.sends, kd->ctr.results, "answered %llu of %llu",
               (unsigned long long)kd->ctr.results,
               (unsigned long long)kd->ctr.sends);
  mach_kdata_unmap(kd);
  return out;
}

/* Checks the count, then that the old server keeps serving. */
static void expect_count(mach_client *m, long n) {
  cr_expect_eq(h_wait(m, load(m, "check", 1, n + 1, false)), 0,
               "the count after the replacement is not %ld + 1", n);
}

Test(replace, under_load_from_four_aps_loses_nothing, .timeout = 300) {
  mach_client m;
  long per = scaled(2000);
  h_boot(&m, NULL);
  start_ctr(&m, NULL, 0, false, 0, "ctr");
  int64_t w[4];
  for (int i = 0; i < 4; i++) {
    char name[8];
    snprintf(name, sizeof name, "ap%d", i);
    w[i] = load(&m, name, per, -1, false);
  }
  for (int i = 0; i < 5; i++) {
    usleep(20 * 1000);
    cr_expect_eq(replace(&m, "ctr", NULL, 0, NULL, 0, 0), 0,
                 "replacement %d: %s", i, m.error);
  }
  for (int i = 0; i < 4; i++)
    cr_expect_eq(h_wait(&m, w[i]), 0, "ap%d saw an error or a wrong count", i);
  struct uk_svc s = svc_entry(&m, "ctr");
  cr_expect_eq(s.replacements, 5);
  cr_expect_eq(s.failed_replacements, 0);
  expect_count(&m, 4 * per);
  h_halt_clean(&m);
}

Test(replace, missing_binary_fails_and_old_server_serves, .timeout = 60) {
  mach_client m;
  h_boot(&m, NULL);
  start_ctr(&m, NULL, 0, false, 0, "ctr");
  cr_expect_eq(h_wait(&m, load(&m, "a", 10, -1, false)), 0);
  struct mach_prog p = {.program = "no-such-server"};
  int64_t id = mach_replace_send(&m, "ctr", &p, 0);
  cr_expect_eq(mach_replace_reply(&m, (uint64_t)id, NULL), -ENOENT);
  cr_expect(strstr(m.error, "not found"), "%s", m.error);
  expect_count(&m, 10);
  h_halt_clean(&m);
}

Test(replace, successor_crashing_while_restoring_fails_cleanly, .timeout = 60) {
  mach_client m;
  h_boot(&m, NULL);
  start_ctr(&m, NULL, 0, false, 0, "ctr");
  int64_t w = load(&m, "a", scaled(3000), -1, false);
  usleep(20 * 1000);
  char *env[] = {"UKSIM_FAULT=crash@restore"};
  cr_expect_eq(replace(&m, "ctr", NULL, 0, env, 1, 0), -ECHILD, "%s", m.error);
  cr_expect(strstr(m.error, "signal 11"), "%s", m.error);
  cr_expect_eq(h_wait(&m, w), 0, "the load saw an error");
  expect_count(&m, scaled(3000));
  h_halt_clean(&m);
}

Test(replace, successor_refusing_the_state_version_fails_cleanly,
     .timeout = 60) {
  mach_client m;
  h_boot(&m, NULL);
  char *v2[] = {"--version", "2"};
  struct mach_prog p = {.program = "ctr_srv",
                        .args = v2,
                        .nargs = 2,
                        .flags = MACH_SPAWN_REGISTERED};
  cr_assert_eq(mach_spawn_prog(&m, &p, NULL), 0);
  cr_expect_eq(h_wait(&m, load(&m, "a", 10, -1, false)), 0);
  /* v2 -> v1: the old version refuses the newer state. */
  cr_expect_eq(replace(&m, "ctr", NULL, 0, NULL, 0, 0), -ECANCELED);
  cr_expect(strstr(m.error, "refused: state version 2 not supported"), "%s",
            m.error);
  expect_count(&m, 10);
  /* v2 -> v3 converts and serves on. */
  char *v3[] = {"--version", "3"};
  cr_expect_eq(replace(&m, "ctr", v3, 2, NULL, 0, 0), 0, "%s", m.error);
  expect_count(&m, 11);
  cr_expect_eq(svc_entry(&m, "ctr").version, 3);
  h_halt_clean(&m);
}

Test(replace, successor_not_registering_in_time_fails, .timeout = 60) {
  mach_client m;
  h_boot(&m, NULL);
  start_ctr(&m, NULL, 0, false, 0, "ctr");
  char *sh[] = {"-c", "exec sleep 30"};
  struct mach_prog p = {.program = "/bin/sh", .args = sh, .nargs = 2};
  int64_t id = mach_replace_send(&m, "ctr", &p, 300);
  cr_expect_eq(mach_replace_reply(&m, (uint64_t)id, NULL), -ETIMEDOUT);
  cr_expect(strstr(m.error, "within 300 ms"), "%s", m.error);
  expect_count(&m, 0);
  h_halt_clean(&m);
}

Test(replace, second_request_while_one_runs_is_refused, .timeout = 60) {
  mach_client m;
  h_boot(&m, NULL);
  start_ctr(&m, NULL, 0, false, 0, "ctr");
  char *env[] = {"UKSIM_FAULT=hang@restore"};
  struct mach_prog slow = {.program = "ctr_srv", .env = env, .nenv = 1};
  int64_t first = mach_replace_send(&m, "ctr", &slow, 500);
  usleep(100 * 1000);
  cr_expect_eq(replace(&m, "ctr", NULL, 0, NULL, 0, 0), -EBUSY);
  cr_expect(strstr(m.error, "already running"), "%s", m.error);
  cr_expect_eq(mach_replace_reply(&m, (uint64_t)first, NULL), -ETIMEDOUT);
  expect_count(&m, 0);
  h_halt_clean(&m);
}

Test(replace, two_services_replaced_at_once, .timeout = 60) {
  mach_client m;
  h_boot(&m, NULL);
  start_ctr(&m, NULL, 0, false, 0, "c1");
  start_ctr(&m, NULL, 0, false, 0, "c2");
  char *a1[] = {"--service", "c1"}, *a2[] = {"--service", "c2"};
  struct mach_prog p1 = {.program = "ctr_srv", .args = a1, .nargs = 2};
  struct mach_prog p2 = {.program = "ctr_srv", .args = a2, .nargs = 2};
  int64_t i1 = mach_replace_send(&m, "c1", &p1, 0);
  int64_t i2 = mach_replace_send(&m, "c2", &p2, 0);
  cr_expect_eq(mach_replace_reply(&m, (uint64_t)i2, NULL), 0, "%s", m.error);
  cr_expect_eq(mach_replace_reply(&m, (uint64_t)i1, NULL), 0, "%s", m.error);
  cr_expect_eq(svc_entry(&m, "c1").replacements, 1);
  cr_expect_eq(svc_entry(&m, "c2").replacements, 1);
  h_halt_clean(&m);
}

/* Replaces ctr under load with a successor whose fault plan is `fault`:
 * the replacement fails with `want` (its reason containing `why`), the load
 * sees no error, and the old server serves on with nothing lost. */
static void successor_fails(const char *fault, int want, const char *why,
                            uint32_t deadline_ms) {
  mach_client m;
  char env0[64];
  char *env[] = {env0};
  snprintf(env0, sizeof env0, "UKSIM_FAULT=%s", fault);
  h_boot(&m, NULL);
  start_ctr(&m, NULL, 0, false, 0, "ctr");
  int64_t w = load(&m, "a", scaled(3000), -1, false);
  usleep(20 * 1000);
  cr_expect_eq(replace(&m, "ctr", NULL, 0, env, 1, deadline_ms), want, "%s: %s",
               fault, m.error);
  cr_expect(strstr(m.error, why), "%s: %s", fault, m.error);
  cr_expect_eq(h_wait(&m, w), 0, "the load saw an error");
  struct uk_svc s = svc_entry(&m, "ctr");
  cr_expect_eq(s.replacements, 0);
  cr_expect_eq(s.failed_replacements, 1);
  expect_count(&m, scaled(3000));
  h_halt_clean(&m);
}

Test(replace, successor_refusing_the_state_by_plan_fails_cleanly,
     .timeout = 60) {
  successor_fails("refuse@restore", -ECANCELED,
                  "refused: injected fault: refused the state", 0);
}

Test(replace, successor_panicking_at_handoff_fails_cleanly, .timeout = 60) {
  successor_fails("panic@handoff", -ECANCELED, "injected fault", 0);
}

Test(replace, successor_crashing_at_handoff_fails_cleanly, .timeout = 60) {
  successor_fails("crash@handoff", -ECHILD, "signal 11", 0);
}

Test(replace, successor_hanging_at_handoff_times_out, .timeout = 60) {
  successor_fails("hang@handoff", -ETIMEDOUT, "within",
                  getenv("UKSIM_UNDER_VALGRIND") ? 5000 : 500);
}

Test(replace, successor_crashing_at_register_fails_cleanly, .timeout = 60) {
  successor_fails("crash@register", -ECHILD, "signal 11", 0);
}
