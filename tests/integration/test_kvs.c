/* End to end: real machine, kernel, kvs server and application processes. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static void counters(mach_client *m, struct uk_counters *out,
                     struct uk_svc *kvs) {
  const struct uk_kdata *kd;
  cr_assert_eq(mach_kdata(m, &kd, NULL), 0, "kdata: %s", m->error);
  *out = kd->ctr;
  if (kvs)
    *kvs = kd->svc[0];
  mach_kdata_unmap(kd);
}

Test(kvs, two_aps_ten_thousand_requests_each_all_answered, .timeout = 600) {
  mach_client m;
  char count[16];
  snprintf(count, sizeof count, "%d", scaled(10000));
  h_boot(&m, "kvs");
  char *a1[] = {"--count", count, "--seed", "1", "--name", "a1"};
  char *a2[] = {"--count", count, "--seed", "2", "--name", "a2"};
  int64_t w1 = h_spawn(&m, "kvsload", a1, 6, "ap1", NULL);
  int64_t w2 = h_spawn(&m, "kvsload", a2, 6, "ap2", NULL);
  cr_expect_eq(h_wait(&m, w1), 0, "ap1 saw a wrong answer");
  cr_expect_eq(h_wait(&m, w2), 0, "ap2 saw a wrong answer");

  struct uk_counters c;
  struct uk_svc kvs;
  counters(&m, &c, &kvs);
  uint64_t want = 2 * (uint64_t)scaled(10000);
  cr_expect_eq(c.sends, want, "sent %llu", (unsigned long long)c.sends);
  cr_expect_eq(c.results, want, "answered %llu of %llu",
               (unsigned long long)c.results, (unsigned long long)want);
  cr_expect_eq(kvs.requests, want);
  cr_expect_eq(kvs.replies, want);
  cr_expect_eq(c.bad_calls, 0);
  h_halt_clean(&m);
}

Test(kvs, value_of_64_mib_round_trips_byte_for_byte, .timeout = 600) {
  mach_client m;
  h_boot(&m, "kvs");
  char *a[] = {"--big", "67108864"};
  cr_expect_eq(h_wait(&m, h_spawn(&m, "kvsload", a, 2, "big", NULL)), 0,
               "the 64 MiB value came back different");
  h_halt_clean(&m);
}

Test(kvs, killed_process_does_not_disturb_the_others, .timeout = 600) {
  mach_client m;
  char count[16], many[16];
  int victim;
  snprintf(count, sizeof count, "%d", scaled(3000));
  snprintf(many, sizeof many, "%d", 100000000);
  h_boot(&m, "kvs");
  char *v[] = {"--count", many, "--name", "victim", "--value-size", "4096"};
  int64_t wv = h_spawn(&m, "kvsload", v, 6, "victim", &victim);
  char *a1[] = {"--count", count, "--name", "a1"};
  char *a2[] = {"--count", count, "--name", "a2"};
  int64_t w1 = h_spawn(&m, "kvsload", a1, 4, "ap1", NULL);
  int64_t w2 = h_spawn(&m, "kvsload", a2, 4, "ap2", NULL);
  usleep(200 * 1000); /* let the victim get into the middle of calls */
  cr_assert_eq(mach_kill(&m, victim, SIGKILL), 0, "kill: %s", m.error);
  cr_expect_eq(h_wait(&m, wv), 128 + SIGKILL);
  cr_expect_eq(h_wait(&m, w1), 0);
  cr_expect_eq(h_wait(&m, w2), 0);

  /* The victim's ICAs were reclaimed: only the server may hold any now. */
  const struct uk_kdata *kd;
  cr_assert_eq(mach_kdata(&m, &kd, NULL), 0);
  for (int i = 0; i < UK_PROC_MAX; i++)
    if (kd->proc[i].state != UK_PROC_FREE && kd->proc[i].kind != UK_PROC_SERVER)
      cr_expect_eq(kd->proc[i].icas_held, 0, "%s still holds ICAs",
                   kd->proc[i].name);
  mach_kdata_unmap(kd);
  h_halt_clean(&m);
}

Test(kvs, garbage_sender_is_refused_and_others_unaffected, .timeout = 600) {
  mach_client m;
  char count[16];
  snprintf(count, sizeof count, "%d", scaled(2000));
  h_boot(&m, "kvs");
  char *a1[] = {"--count", count, "--name", "a1"};
  int64_t w1 = h_spawn(&m, "kvsload", a1, 4, "ap1", NULL);
  int64_t wg = h_spawn(&m, "ap_garbage", NULL, 0, "garbage", NULL);
  cr_expect_eq(h_wait(&m, wg), 0, "a bad call got the wrong answer");
  cr_expect_eq(h_wait(&m, w1), 0, "the well-behaved process was disturbed");
  struct uk_counters c;
  counters(&m, &c, NULL);
  cr_expect_geq(c.bad_calls, 15, "bad calls counted: %llu",
                (unsigned long long)c.bad_calls);
  h_halt_clean(&m);
}

Test(kvs, server_crash_answers_held_request_and_kernel_survives,
     .timeout = 600) {
  mach_client m;
  int kvs;
  h_boot(&m, NULL);
  cr_assert_eq(
      mach_spawn(&m, "kvs", NULL, 0, "kvs", MACH_SPAWN_REGISTERED, &kvs), 0);
  char *a[] = {"--count", "100000000", "--name", "a"};
  int64_t wa = h_spawn(&m, "kvsload", a, 4, "ap1", NULL);
  usleep(200 * 1000);
  cr_assert_eq(mach_kill(&m, kvs, SIGKILL), 0);
  /* The client gets an error answer (server gone), notices and exits 1. */
  cr_expect_eq(h_wait(&m, wa), 1);
  struct uk_counters c;
  counters(&m, &c, NULL);
  cr_expect_eq(c.sends, c.results, "every request answered: %llu of %llu",
               (unsigned long long)c.results, (unsigned long long)c.sends);
  /* The kernel still serves: a new kvs registers and answers. */
  cr_assert_eq(
      mach_spawn(&m, "kvs", NULL, 0, "kvs2", MACH_SPAWN_REGISTERED, NULL), 0,
      "%s", m.error);
  char *b[] = {"--count", "100", "--name", "b"};
  cr_expect_eq(h_wait(&m, h_spawn(&m, "kvsload", b, 4, "ap2", NULL)), 0);
  h_halt_clean(&m);
}

/* Starts kvs with args (service `name`), fault plan `fault` (or NULL) and a
 * restart policy, and waits for it to register. */
static void start_kvs(mach_client *m, const char *name, char **args,
                      size_t nargs, const char *fault) {
  char env0[64];
  char *env[] = {env0};
  snprintf(env0, sizeof env0, "UKSIM_FAULT=%s", fault ? fault : "");
  struct mach_prog p = {.program = "kvs",
                        .args = args,
                        .nargs = nargs,
                        .name = name,
                        .env = env,
                        .nenv = fault ? 1 : 0,
                        .flags = MACH_SPAWN_REGISTERED,
                        .restart = true};
  cr_assert_eq(mach_spawn_prog(m, &p, NULL), 0, "start kvs: %s", m->error);
}

static int run_kvsload(mach_client *m, char **args, size_t n) {
  return h_wait(m, h_spawn(m, "kvsload", args, n, "load", NULL));
}

Test(kvsload, check_state_passes_when_the_store_is_the_model, .timeout = 300) {
  mach_client m;
  h_boot(&m, "kvs");
  char *a[] = {"--count", "2000", "--keys",       "50",
               "--name",  "a",    "--check-state"};
  cr_expect_eq(run_kvsload(&m, a, 7), 0, "the final state differs");
  h_halt_clean(&m);
}

/* A crash mid-stream under --tolerate-reset: keys whose outcome is unknown
 * pass with any of their candidate states (the store survives: single). */
Test(kvsload, check_state_accepts_any_candidate_after_a_reset, .timeout = 300) {
  mach_client m;
  char fault[32];
  h_boot(&m, NULL);
  snprintf(fault, sizeof fault, "crash@request:%d", scaled(300));
  start_kvs(&m, "kvs", NULL, 0, fault);
  char *a[] = {"--count", "2000", "--keys",        "50",
               "--name",  "a",    "--check-state", "--tolerate-reset"};
  cr_expect_eq(run_kvsload(&m, a, 8), 0, "the final state differs");
  h_halt_clean(&m);
}

/* Keys the model never put, stored by someone else under our names: the
 * run agrees (puts only), the final state does not. */
Test(kvsload, check_state_exits_3_when_foreign_keys_are_stored,
     .timeout = 300) {
  mach_client m;
  h_boot(&m, "kvs");
  char *b[] = {"--count", "200", "--keys", "100",
               "--name",  "x",   "--mix",  "1:0:0"};
  cr_expect_eq(run_kvsload(&m, b, 8), 0);
  char *a[] = {"--count", "20",    "--keys", "100", "--name",       "x",
               "--mix",   "1:0:0", "--seed", "9",   "--check-state"};
  cr_expect_eq(run_kvsload(&m, a, 11), 3, "the foreign keys went unnoticed");
  /* Without --check-state the same run is clean. */
  cr_expect_eq(run_kvsload(&m, a, 10), 0);
  h_halt_clean(&m);
}

/* A copy server restarted after a crash starts empty: the puts before the
 * crash are lost, which only the final state shows. */
Test(kvsload, check_state_exits_3_when_the_server_lost_puts, .timeout = 300) {
  mach_client m;
  h_boot(&m, NULL);
  char *s[] = {"--state", "copy"};
  start_kvs(&m, "kvs", s, 2, "crash@request:50");
  char *a[] = {
      "--count", "100",   "--keys", "1000",          "--name",
      "a",       "--mix", "1:0:0",  "--check-state", "--tolerate-reset"};
  cr_expect_eq(run_kvsload(&m, a, 10), 3, "the lost puts went unnoticed");
  h_halt_clean(&m);
}

Test(kvsload, value_size_range_round_trips, .timeout = 300) {
  mach_client m;
  h_boot(&m, "kvs");
  char *a[] = {"--count",       "1000",   "--keys", "40",
               "--value-size",  "0..16K", "--name", "a",
               "--check-state", "--list"};
  cr_expect_eq(run_kvsload(&m, a, 10), 0);
  char *bad[][2] = {{"--value-size", "9..2"},
                    {"--value-size", "1..65M"},
                    {"--value-size", "1.."},
                    {"--value-size", "-1"},
                    {"--rate", "x"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    cr_expect_eq(run_kvsload(&m, bad[i], 2), 2, "%s %s accepted", bad[i][0],
                 bad[i][1]);
  h_halt_clean(&m);
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The free-running kernel's clock is wall time: 20 requests at 50 a
 * second take at least 0.4 s. */
Test(kvsload, rate_paces_requests_by_the_kernel_clock, .timeout = 300) {
  mach_client m;
  h_boot(&m, "kvs");
  char *a[] = {"--count", "20", "--rate", "50", "--name", "a"};
  double t0 = now_s();
  cr_expect_eq(run_kvsload(&m, a, 6), 0);
  double took = now_s() - t0;
  cr_expect_geq(took, 0.4, "20 requests at 50/s took %.3f s", took);
  cr_expect_lt(took, 20.0, "20 requests at 50/s took %.3f s", took);
  h_halt_clean(&m);
}

Test(kvsload, service_option_names_the_store_on_both_sides, .timeout = 300) {
  mach_client m;
  h_boot(&m, NULL);
  /* Caching: the flush the server sends itself goes to its own name. */
  char *s[] = {"--service", "store", "--cache", "8"};
  start_kvs(&m, "store", s, 4, NULL);
  char *a[] = {"--count", "500", "--service", "store", "--check-state"};
  cr_expect_eq(run_kvsload(&m, a, 5), 0);
  char *b[] = {"--count", "10"}; /* looks for "kvs": there is none */
  cr_expect_eq(run_kvsload(&m, b, 2), 1);
  h_halt_clean(&m);
}
