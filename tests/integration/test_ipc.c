/* ICA hand-off without descriptors: a process that kept its mapping of an
 * ICA it passed on gets that ICA back by reference only (KABI_REF_MAPPED),
 * and a library whose mapping was evicted meanwhile fetches the descriptor
 * again.  ipcload -k N passes N control ICAs to echo in turn and checks
 * each one's marks when it comes back. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "harness.h"

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
  rotate(&m, 40, 400); /* more ICAs than the mapping cache holds (32) */
  struct uk_counters c = counters(&m);
  cr_expect_eq(c.results, 400);
  cr_expect_eq(c.bad_calls, 0);
  cr_expect_gt(c.ica_attaches, 0, "evicted mappings were fetched again");
  h_halt_clean(&m);
}
