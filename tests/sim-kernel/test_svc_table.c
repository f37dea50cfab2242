/* Unit tests for the service table and the process table
 * (sim-kernel/svc_table.c), and for the latency histogram buckets that
 * kern_svc_record() fills (uk_hist_bucket/uk_hist_lower in uksim/kdata.h).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kd_fixture.h"

TestSuite(svc_table, .init = kd_new, .fini = kd_free);
TestSuite(proc_table, .init = kd_new, .fini = kd_free);

/* service table */

Test(svc_table, add_creates_a_down_entry, .timeout = 10) {
  int s = kern_svc_add(kd, "kvs");
  cr_assert_eq(s, 0);
  const struct uk_svc *e = &kd->svc[s];
  cr_assert_eq(e->state, UK_SVC_DOWN);
  cr_assert_str_eq(e->name, "kvs");
  cr_assert_eq(e->proc, UK_NIL);
  cr_assert_eq(e->state_ica, KABI_ICA_NONE);
  cr_assert_eq(e->q_len, 0);
  cr_assert_eq(e->q_head, UK_NIL);
  cr_assert_eq(e->q_tail, UK_NIL);
  cr_assert_eq(e->gen, 1);
  cr_assert_eq(kern_svc_add(kd, "echo"), 1);
}

Test(svc_table, lookup_finds_by_name, .timeout = 10) {
  cr_assert_eq(kern_svc_lookup(kd, "kvs"), -1, "empty table");
  int a = kern_svc_add(kd, "kvs"), b = kern_svc_add(kd, "echo");
  cr_assert_eq(kern_svc_lookup(kd, "kvs"), a);
  cr_assert_eq(kern_svc_lookup(kd, "echo"), b);
  cr_assert_eq(kern_svc_lookup(kd, "kv"), -1);
  cr_assert_eq(kern_svc_lookup(kd, "kvs2"), -1);
  cr_assert_eq(kern_svc_lookup(kd, ""), -1);
  kd->svc[a].state = UK_SVC_FREE;
  cr_assert_eq(kern_svc_lookup(kd, "kvs"), -1, "a free entry is not found");
}

Test(svc_table, by_id_is_index_plus_one, .timeout = 10) {
  int a = kern_svc_add(kd, "kvs"), b = kern_svc_add(kd, "echo");
  cr_assert_eq(kern_svc_by_id(kd, (uint32_t)a + 1), a);
  cr_assert_eq(kern_svc_by_id(kd, (uint32_t)b + 1), b);
  cr_assert_eq(kern_svc_by_id(kd, 0), -1, "0 is no service");
  cr_assert_eq(kern_svc_by_id(kd, (uint32_t)b + 2), -1, "free entry");
  /* Make the memory after the table look like a live entry, so a lookup
   * that strays past the end is caught. */
  memset(kd->ica, 0xff, sizeof kd->ica);
  cr_assert_eq(kern_svc_by_id(kd, UK_SVC_MAX + 1), -1);
  cr_assert_eq(kern_svc_by_id(kd, UK_SVC_MAX + 2), -1);
  cr_assert_eq(kern_svc_by_id(kd, UINT32_MAX), -1);
  kd->svc[a].state = UK_SVC_UP;
  cr_assert_eq(kern_svc_by_id(kd, (uint32_t)a + 1), a, "up is found");
}

Test(svc_table, last_id_is_valid, .timeout = 10) {
  char name[8];
  for (int i = 0; i < UK_SVC_MAX; i++) {
    snprintf(name, sizeof name, "s%d", i);
    cr_assert_eq(kern_svc_add(kd, name), i);
  }
  cr_assert_eq(kern_svc_by_id(kd, UK_SVC_MAX), UK_SVC_MAX - 1);
}

Test(svc_table, empty_or_too_long_name_is_refused, .timeout = 10) {
  char name[KABI_NAME_MAX + 8];
  cr_assert_eq(kern_svc_add(kd, ""), -EINVAL);

  /* KABI_NAME_MAX - 1 characters fit with their NUL; one more does not. */
  memset(name, 'x', sizeof name);
  name[KABI_NAME_MAX] = '\0';
  cr_assert_eq(kern_svc_add(kd, name), -EINVAL);
  name[KABI_NAME_MAX + 4] = '\0';
  cr_assert_eq(kern_svc_add(kd, name), -EINVAL);
  for (int i = 0; i < UK_SVC_MAX; i++)
    cr_assert_eq(kd->svc[i].state, UK_SVC_FREE, "nothing was added");

  name[KABI_NAME_MAX - 1] = '\0';
  int s = kern_svc_add(kd, name);
  cr_assert_eq(s, 0);
  cr_assert_str_eq(kd->svc[s].name, name);
  cr_assert_eq(kern_svc_lookup(kd, name), s);
  /* A longer name sharing the stored prefix is a different name. */
  name[KABI_NAME_MAX - 1] = 'x';
  name[KABI_NAME_MAX] = '\0';
  cr_assert_eq(kern_svc_lookup(kd, name), -1);
}

Test(svc_table, full_table_gives_enospc, .timeout = 10) {
  char name[16];
  for (int i = 0; i < UK_SVC_MAX; i++) {
    snprintf(name, sizeof name, "svc%d", i);
    cr_assert_eq(kern_svc_add(kd, name), i);
  }
  cr_assert_eq(kern_svc_add(kd, "onemore"), -ENOSPC);
  cr_assert_eq(kern_svc_lookup(kd, "onemore"), -1);
  for (int i = 0; i < UK_SVC_MAX; i++) {
    snprintf(name, sizeof name, "svc%d", i);
    cr_assert_eq(kern_svc_lookup(kd, name), i);
  }
  kd->svc[5].state = UK_SVC_FREE;
  cr_assert_eq(kern_svc_add(kd, "onemore"), 5);
}

Test(svc_table, reuse_bumps_generation_and_clears_the_entry, .timeout = 10) {
  int s = kern_svc_add(kd, "kvs");
  struct uk_svc *e = &kd->svc[s];
  e->requests = 9;
  e->flags = UK_SVC_F_REPLACE;
  e->op[2].count = 4;
  e->proc = 3;
  e->state = UK_SVC_FREE;
  cr_assert_eq(kern_svc_add(kd, "echo"), s);
  cr_assert_eq(e->gen, 2);
  cr_assert_str_eq(e->name, "echo");
  cr_assert_eq(e->requests, 0);
  cr_assert_eq(e->flags, 0);
  cr_assert_eq(e->op[2].count, 0);
  cr_assert_eq(e->proc, UK_NIL);
}

Test(svc_table, record_counts_in_the_ops_histogram, .timeout = 10) {
  struct uk_svc *e = &kd->svc[kern_svc_add(kd, "kvs")];
  kern_svc_record(e, 2, 1000, false);
  kern_svc_record(e, 2, 1000, true);
  kern_svc_record(e, 2, 5000000, false);
  kern_svc_record(e, 0, 3, false);
  const struct uk_svc_ophist *h = &e->op[2];
  cr_assert_eq(h->count, 3);
  cr_assert_eq(h->errors, 1);
  cr_assert_eq(h->bucket[uk_hist_bucket(1000)], 2);
  cr_assert_eq(h->bucket[uk_hist_bucket(5000000)], 1);
  cr_assert_eq(e->op[0].count, 1);
  cr_assert_eq(e->op[0].bucket[3], 1);

  uint64_t total = 0;
  for (int op = 0; op < UK_OPS_MAX; op++)
    for (int b = 0; b < UK_HIST_BUCKETS; b++)
      total += e->op[op].bucket[b];
  cr_assert_eq(total, 4, "each record lands in exactly one bucket");
  cr_assert_eq(e->op[1].count, 0);
  cr_assert_eq(e->op[UK_OPS_MAX - 1].count, 0);
}

Test(svc_table, record_clamps_large_ops_to_the_last, .timeout = 10) {
  struct uk_svc *e = &kd->svc[kern_svc_add(kd, "kvs")];
  kern_svc_record(e, UK_OPS_MAX - 1, 10, false);
  kern_svc_record(e, UK_OPS_MAX, 10, false);
  kern_svc_record(e, UK_OPS_MAX + 100, 10, true);
  kern_svc_record(e, UINT32_MAX, UINT64_MAX, false);
  const struct uk_svc_ophist *h = &e->op[UK_OPS_MAX - 1];
  cr_assert_eq(h->count, 4);
  cr_assert_eq(h->errors, 1);
  cr_assert_eq(h->bucket[uk_hist_bucket(10)], 3);
  cr_assert_eq(h->bucket[UK_HIST_BUCKETS - 1], 1);
  for (int op = 0; op < UK_OPS_MAX - 1; op++)
    cr_assert_eq(e->op[op].count, 0);
}

/* process table */

Test(proc_table, alloc_fills_a_running_entry, .timeout = 10) {
  int p = kern_proc_alloc(kd, "app1", 4242);
  cr_assert_eq(p, 0);
  const struct uk_proc *e = &kd->proc[p];
  cr_assert_eq(e->state, UK_PROC_RUNNING);
  cr_assert_eq(e->kind, UK_PROC_AP);
  cr_assert_eq(e->pid, 4242);
  cr_assert_eq(e->svc, UK_NIL);
  cr_assert_eq(e->res_len, 0);
  cr_assert_eq(e->res_head, UK_NIL);
  cr_assert_eq(e->res_tail, UK_NIL);
  cr_assert_eq(e->icas_held, 0);
  cr_assert_eq(e->gen, 1);
  cr_assert_str_eq(e->name, "app1");
  cr_assert_eq(kern_proc_alloc(kd, "app2", 4243), 1);
}

Test(proc_table, long_name_is_truncated_and_terminated, .timeout = 10) {
  char name[KABI_NAME_MAX * 2];
  memset(name, 'n', sizeof name - 1);
  name[sizeof name - 1] = '\0';
  int p = kern_proc_alloc(kd, name, 1);
  cr_assert_geq(p, 0);
  cr_assert_eq(strlen(kd->proc[p].name), KABI_NAME_MAX - 1);
  cr_assert_eq(strncmp(kd->proc[p].name, name, KABI_NAME_MAX - 1), 0);
}

Test(proc_table, reuse_bumps_generation_and_clears_the_entry, .timeout = 10) {
  int p = kern_proc_alloc(kd, "old", 10);
  struct uk_proc *e = &kd->proc[p];
  e->kind = UK_PROC_SERVER;
  e->svc = 3;
  e->calls = 99;
  e->outstanding = 2;
  e->exit_status = 1;
  e->res_len = 4;
  e->state = UK_PROC_FREE;
  cr_assert_eq(kern_proc_alloc(kd, "new", 11), p);
  cr_assert_eq(e->gen, 2);
  cr_assert_eq(e->kind, UK_PROC_AP);
  cr_assert_eq(e->svc, UK_NIL);
  cr_assert_eq(e->calls, 0);
  cr_assert_eq(e->outstanding, 0);
  cr_assert_eq(e->exit_status, 0);
  cr_assert_eq(e->res_len, 0);
  cr_assert_eq(e->pid, 11);
  cr_assert_str_eq(e->name, "new");
}

Test(proc_table, exited_slot_is_not_reused, .timeout = 10) {
  int p = kern_proc_alloc(kd, "a", 1);
  kd->proc[p].state = UK_PROC_EXITED;
  cr_assert_neq(kern_proc_alloc(kd, "b", 2), p);
}

Test(proc_table, full_table_gives_enospc, .timeout = 10) {
  for (int i = 0; i < UK_PROC_MAX; i++)
    cr_assert_eq(kern_proc_alloc(kd, "p", i + 100), i);
  cr_assert_eq(kern_proc_alloc(kd, "p", 1), -ENOSPC);
  for (int i = 0; i < UK_PROC_MAX; i++)
    cr_assert_eq(kd->proc[i].pid, i + 100, "a failed alloc changes nothing");
  kd->proc[17].state = UK_PROC_FREE;
  cr_assert_eq(kern_proc_alloc(kd, "p", 1), 17);
  cr_assert_eq(kd->proc[17].gen, 2);
}

/* Latency histogram: bucket b covers [uk_hist_lower(b), uk_hist_lower(b+1)),
 * log2 with 4 linear sub-buckets, the last bucket open-ended. */

Test(hist, small_values_are_exact, .timeout = 10) {
  for (uint64_t ns = 0; ns < 8; ns++) {
    cr_assert_eq(uk_hist_bucket(ns), ns);
    cr_assert_eq(uk_hist_lower((unsigned)ns), ns);
  }
}

Test(hist, lower_is_strictly_increasing, .timeout = 10) {
  for (unsigned b = 0; b < UK_HIST_BUCKETS; b++)
    cr_assert_lt(uk_hist_lower(b), uk_hist_lower(b + 1), "bucket %u", b);
}

Test(hist, bucket_of_each_bound_is_that_bucket, .timeout = 10) {
  for (unsigned b = 0; b < UK_HIST_BUCKETS; b++) {
    uint64_t lo = uk_hist_lower(b), hi = uk_hist_lower(b + 1);
    cr_assert_eq(uk_hist_bucket(lo), b, "lower bound of bucket %u", b);
    cr_assert_eq(uk_hist_bucket(hi - 1), b, "upper bound of bucket %u", b);
    cr_assert_eq(uk_hist_bucket(lo + (hi - lo) / 2), b, "middle of %u", b);
  }
}

Test(hist, values_past_the_last_bucket_clamp, .timeout = 10) {
  unsigned last = UK_HIST_BUCKETS - 1;
  cr_assert_eq(uk_hist_bucket(uk_hist_lower(UK_HIST_BUCKETS)), last);
  cr_assert_eq(uk_hist_bucket(uk_hist_lower(UK_HIST_BUCKETS) * 5), last);
  cr_assert_eq(uk_hist_bucket(UINT64_MAX), last);
  cr_assert_eq(uk_hist_bucket(1ull << 63), last);
  /* The range covers at least 2^40 ns (about 18 minutes). */
  cr_assert_geq(uk_hist_lower(UK_HIST_BUCKETS), 1ull << 40);
}

static uint64_t rng = 88172645463325252ull;

static uint64_t xorshift(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

Test(hist, bucket_is_monotonic, .timeout = 10) {
  unsigned prev = 0;
  for (uint64_t ns = 0; ns < (1u << 16); ns++) {
    unsigned b = uk_hist_bucket(ns);
    if (b < prev || b > prev + 1)
      cr_assert_fail("bucket(%llu) = %u after %u", (unsigned long long)ns, b,
                     prev);
    prev = b;
  }
  /* Random pairs over the whole range, values of every magnitude. */
  for (int n = 0; n < 100000; n++) {
    uint64_t a = xorshift() >> (xorshift() % 64);
    uint64_t c = xorshift() >> (xorshift() % 64);
    if (a > c) {
      uint64_t t = a;
      a = c;
      c = t;
    }
    if (uk_hist_bucket(a) > uk_hist_bucket(c))
      cr_assert_fail("bucket(%llu) = %u > bucket(%llu) = %u",
                     (unsigned long long)a, uk_hist_bucket(a),
                     (unsigned long long)c, uk_hist_bucket(c));
  }
}

Test(hist, relative_error_is_under_a_quarter, .timeout = 10) {
  /* Reporting a value as its bucket's lower bound loses less than a quarter
   * of that bound (and nothing below 8 ns). */
  uint64_t top = uk_hist_lower(UK_HIST_BUCKETS);
  for (int n = 0; n < 100000; n++) {
    uint64_t ns = (xorshift() >> (xorshift() % 64)) % top;
    unsigned b = uk_hist_bucket(ns);
    uint64_t lo = uk_hist_lower(b);
    if (lo > ns || ns >= uk_hist_lower(b + 1) ||
        (ns > lo && 4 * (ns - lo) >= lo))
      cr_assert_fail("%llu in bucket %u [%llu, %llu)", (unsigned long long)ns,
                     b, (unsigned long long)lo,
                     (unsigned long long)uk_hist_lower(b + 1));
  }
}
