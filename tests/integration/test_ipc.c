/* ICA hand-off without descriptors: a process that kept its mapping of an
 * ICA it passed on gets that ICA back by reference only (KABI_REF_MAPPED),
 * and a library whose mapping was evicted meanwhile fetches the descriptor
 * again.  ipcload -k N passes N control ICAs to echo in turn and checks
 * each one's marks when it comes back. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "machine.h"
#include "uksim_paths.h"

static struct uk_counters counters(mach_client *m) {
  const struct uk_kdata *kd;
  cr_assert_eq(mach_kdata(m, &kd, NULL), 0, "kdata: %s", m->error);
  struct uk_counters c = kd->ctr;
  mach_kdata_unmap(kd);
  return c;
}

static void rotate(mach_client *m, int icas, int calls) {
  char k[16], n[16];
  snprintf(k, sizeof k, "%d", icas);
  snprintf(n, sizeof n, "%d", calls);
  char *a[] = {"-k", k, "-n", n};
  cr_expect_eq(h_wait(m, h_spawn(m, "ipcload", a, 4, "ipcload", NULL)), 0,
               "an ICA came back wrong");
}

Test(ipc, kept_mappings_come_back_by_reference, .timeout = 300) {
  mach_client m;
  h_boot(&m, "echo");
  rotate(&m, 2, scaled(2000));
  struct uk_counters c = counters(&m);
  cr_expect_eq(c.results, (uint64_t)scaled(2000));
  cr_expect_eq(c.bad_calls, 0);
  cr_expect_eq(c.ica_attaches, 0, "every kept mapping was still there");
  h_halt_clean(&m);
}

Test(ipc, evicted_mappings_are_fetched_again, .timeout = 300) {
  mach_client m;
  h_boot(&m, "echo");
  /* More ICAs than the mapping cache holds (UK_MAPCACHE_SLOTS, 256). */
  rotate(&m, 300, 900);
  struct uk_counters c = counters(&m);
  cr_expect_eq(c.results, 900);
  cr_expect_eq(c.bad_calls, 0);
  cr_expect_gt(c.ica_attaches, 0, "evicted mappings were fetched again");
  h_halt_clean(&m);
}

/* `uksim bench ipc --quick --json` with more options, parsed. */
static json_t *bench_json(const char *args) {
  char out[64], cmd[512];
  json_error_t err;
  json_t *j;
  snprintf(out, sizeof out, "/tmp/uksim-test-ipc-%d.json", (int)getpid());
  snprintf(cmd, sizeof cmd, "%s bench ipc --quick --json%s > %s",
           UKSIM_EXE_DEFAULT, args, out);
  cr_assert_eq(system(cmd), 0, "%s", cmd);
  j = json_load_file(out, 0, &err);
  unlink(out);
  cr_assert_not_null(j, "not JSON: %s", err.text);
  return j;
}

/* `uksim bench ipc --quick --json`: every figure there, measured (the
 * targets depend on the machine and are reported, not checked here), and
 * the per-block spread of the ratios in order. */
Test(ipc, bench_json_has_every_figure_pinned_and_not, .timeout = 300) {
  static const char *const keys[] = {
      "null_rt_us",        "pingpong_rt_us",    "null_rt_ratio",
      "relay_rt_us",       "relay_rt_ratio",    "handoff_4k_us",
      "handoff_64m_us",    "copy_64m_us",       "null_rt_ratio_p10",
      "null_rt_ratio_p50", "null_rt_ratio_p90", "relay_rt_ratio_p10",
      "relay_rt_ratio_p90"};
  json_t *j = bench_json("");
  json_t *pinned = json_object_get(j, "pinned");
  cr_assert(json_is_object(pinned));
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    cr_expect_gt(json_number_value(json_object_get(j, keys[i])), 0, "%s",
                 keys[i]);
    cr_expect_gt(json_number_value(json_object_get(pinned, keys[i])), 0,
                 "pinned %s", keys[i]);
  }
  cr_expect(json_is_boolean(json_object_get(pinned, "targets_met")));
  cr_expect_eq(json_integer_value(json_object_get(j, "blocks")), 6);
  cr_expect_eq(json_integer_value(json_object_get(j, "block_trips")), 100);
  cr_expect_eq(json_integer_value(json_object_get(j, "poll_us")),
               MACH_POLL_US_DEFAULT);
  static const char *const spread[] = {"null_rt_ratio_p10", "null_rt_ratio_p50",
                                       "null_rt_ratio_p90"};
  for (json_t *o = j; o; o = o == j ? pinned : NULL) {
    for (int i = 0; i < 2; i++)
      cr_expect_leq(json_number_value(json_object_get(o, spread[i])),
                    json_number_value(json_object_get(o, spread[i + 1])),
                    "%s <= %s", spread[i], spread[i + 1]);
    /* The ratio is still the median null round trip over the median
     * ping-pong (to the JSON's three decimals). */
    double q = json_number_value(json_object_get(o, "null_rt_us")) /
               json_number_value(json_object_get(o, "pingpong_rt_us"));
    cr_expect_float_eq(json_number_value(json_object_get(o, "null_rt_ratio")),
                       q, 0.01 * q, "null_rt_ratio = null / ping-pong");
  }
  json_decref(j);
}

/* `--poll-us 0` turns the kernel's cross-cpu polling (and the library's
 * spinning) off: the run says so and still measures every figure; a value
 * that is not a number in range is bad usage. */
Test(ipc, bench_poll_us_is_a_setting, .timeout = 300) {
  char cmd[512];
  json_t *j = bench_json(" --poll-us 0");
  cr_expect_eq(json_integer_value(json_object_get(j, "poll_us")), 0);
  cr_expect_gt(json_number_value(json_object_get(j, "null_rt_us")), 0);
  json_decref(j);
  snprintf(cmd, sizeof cmd, "%s bench ipc --poll-us x 2>/dev/null",
           UKSIM_EXE_DEFAULT);
  int st = system(cmd);
  cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 2, "--poll-us x: usage");
}

/* One number parser (include/uksim/num.h): `--blocks 5x` used to run 5
 * blocks (atol); now it is bad usage, and the message names the option
 * and the range. */
Test(ipc, bench_blocks_is_strict, .timeout = 60) {
  char cmd[512], out[256] = "";
  snprintf(cmd, sizeof cmd, "%s bench ipc --blocks 5x 2>&1", UKSIM_EXE_DEFAULT);
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p);
  size_t n = fread(out, 1, sizeof out - 1, p);
  out[n] = '\0';
  int st = pclose(p);
  cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 2, "--blocks 5x: usage");
  cr_expect(strstr(out, "--blocks: '5x' is not a number in 1..") != NULL,
            "the message: %s", out);
}
