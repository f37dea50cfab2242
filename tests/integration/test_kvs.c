/* End to end: real machine, kernel, kvs server and application processes. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
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
