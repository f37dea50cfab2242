/* The kvs server replaced under load by each state-save method (issue 3),
 * with real processes: v1 -> v1, v1 -> v2, a refused v2 -> v1 and v2 -> v2.
 * kvsload checks every answer against its model of the store, so a state
 * that changed in the swap (or in a refused one) shows as a mismatch. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static void start_kvs(mach_client *m, const char *method, const char *cache) {
  char *args[] = {"--state", (char *)method, "--state-size",
                  "64M",     "--cache",      (char *)cache};
  struct mach_prog p = {.program = "kvs",
                        .args = args,
                        .nargs = cache ? 6 : 4,
                        .name = "kvs",
                        .flags = MACH_SPAWN_REGISTERED};
  cr_assert_eq(mach_spawn_prog(m, &p, NULL), 0, "start kvs: %s", m->error);
}

static void replace_with(mach_client *m, const char *prog, const char *method,
                         const char *cache) {
  char *args[] = {"--state", (char *)method, "--state-size",
                  "64M",     "--cache",      (char *)cache};
  struct mach_prog p = {.program = prog, .args = args, .nargs = cache ? 6 : 4};
  int64_t id = mach_replace_send(m, "kvs", &p, 0);
  cr_assert_geq(id, 0);
  cr_expect_eq(mach_replace_reply(m, (uint64_t)id, NULL), 0,
               "replace with %s --state %s: %s", prog, method, m->error);
}

/* A downgrade: kvs v1 refuses the state kvs2 hands it, by its version, and
 * kvs2 serves on. */
static void downgrade_refused(mach_client *m, const char *method,
                              const char *cache) {
  char *args[] = {"--state", (char *)method, "--state-size",
                  "64M",     "--cache",      (char *)cache};
  struct mach_prog p = {.program = "kvs", .args = args, .nargs = cache ? 6 : 4};
  int64_t id = mach_replace_send(m, "kvs", &p, 0);
  cr_assert_geq(id, 0);
  cr_expect_eq(mach_replace_reply(m, (uint64_t)id, NULL), -ECANCELED,
               "replace kvs2 by kvs --state %s: %s", method, m->error);
  cr_expect(strstr(m->error, "state version 2 is newer than this server's 1"),
            "%s", m->error);
}

/* Two loads; replacements by `prog` while they run. */
static void under_load(const char *method, const char *cache) {
  mach_client m;
  char count[16];
  snprintf(count, sizeof count, "%d", scaled(3000));
  h_boot(&m, NULL);
  start_kvs(&m, method, cache);
  char *a1[] = {"--count", count, "--seed", "1", "--name", "a1"};
  char *a2[] = {"--count", count, "--seed", "2", "--name", "a2"};
  int64_t w1 = h_spawn(&m, "kvsload", a1, 6, "ap1", NULL);
  int64_t w2 = h_spawn(&m, "kvsload", a2, 6, "ap2", NULL);
  usleep(30 * 1000);
  replace_with(&m, "kvs", method, cache);
  usleep(30 * 1000);
  replace_with(&m, "kvs2", method, cache); /* v1 -> v2 */
  usleep(30 * 1000);
  downgrade_refused(&m, method, cache); /* v2 -> v1 */
  usleep(30 * 1000);
  replace_with(&m, "kvs2", method, cache); /* v2 -> v2 after the refusal */
  cr_expect_eq(h_wait(&m, w1), 0, "ap1 saw a wrong answer");
  cr_expect_eq(h_wait(&m, w2), 0, "ap2 saw a wrong answer");
  h_halt_clean(&m);
}

Test(kvs_replace, single_under_load, .timeout = 300) {
  under_load("single", NULL);
}

Test(kvs_replace, chain_under_load, .timeout = 300) {
  under_load("chain", NULL);
}

Test(kvs_replace, copy_under_load, .timeout = 300) {
  under_load("copy", NULL);
}

Test(kvs_replace, caching_server_replaced_while_holding_requests,
     .timeout = 300) {
  under_load("single", "8");
}
