/* Unit tests for the ICA table (sim-kernel/ica_table.c) and kdata init.
 *
 * The table is a pure function of struct uk_kdata, so each test gets a fresh
 * zeroed region from the suite's init and frees it in fini.  The invariants
 * under test: ids are never KABI_ICA_NONE, a stale id (freed, or freed and
 * its slot reused) is refused everywhere, every ICA has exactly one holder,
 * and proc[].icas_held always equals the ICAs each process holds.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kd_fixture.h"

TestSuite(ica_table, .init = kd_new, .fini = kd_free);
TestSuite(kdata, .init = kd_new, .fini = kd_free);

/* Counts what the table says each process holds, and checks it against the
 * held counts kept in the process table. */
static void assert_held_counts(void) {
  uint32_t held[UK_PROC_MAX] = {0};
  for (uint32_t i = 0; i < UK_ICA_MAX; i++) {
    const struct uk_ica_ent *e = &kd->ica[i];
    if (e->state == UK_ICA_LIVE && e->holder_kind == UK_HOLD_PROC &&
        e->holder < UK_PROC_MAX)
      held[e->holder]++;
  }
  for (uint32_t p = 0; p < UK_PROC_MAX; p++)
    cr_assert_eq(kd->proc[p].icas_held, held[p],
                 "proc %u: icas_held %u, table says %u", p,
                 kd->proc[p].icas_held, held[p]);
}

static uint32_t alloc_ok(uint32_t proc) {
  uint32_t id = KABI_ICA_NONE;
  cr_assert_eq(kern_ica_alloc(kd, KABI_ICA_DATA, 4096, proc, &id), 0);
  cr_assert_neq(id, KABI_ICA_NONE);
  return id;
}

Test(kdata, init_sets_header_and_empty_tables, .timeout = 10) {
  cr_assert_eq(kd->hdr.magic, UK_KDATA_MAGIC);
  cr_assert_eq(kd->hdr.layout, UK_KDATA_LAYOUT);
  cr_assert_eq(kd->hdr.size, sizeof *kd);
  cr_assert_eq(kd->hdr.kernel_pid, KD_PID);
  cr_assert_eq(kd->hdr.os_id, KD_OS_ID);
  cr_assert_eq(kd->hdr.budget_bytes, KD_BUDGET);
  for (int i = 0; i < UK_PROC_MAX; i++) {
    cr_assert_eq(kd->proc[i].state, UK_PROC_FREE);
    cr_assert_eq(kd->proc[i].svc, UK_NIL);
  }
  for (int i = 0; i < UK_SVC_MAX; i++) {
    cr_assert_eq(kd->svc[i].state, UK_SVC_FREE);
    cr_assert_eq(kd->svc[i].proc, UK_NIL);
  }
  cr_assert_eq(kern_ica_live(kd), 0);
}

Test(kdata, init_clears_a_dirty_region, .timeout = 10) {
  memset(kd, 0xa5, sizeof *kd);
  kern_kdata_init(kd, 1, 2, 3);
  cr_assert_eq(kern_ica_live(kd), 0);
  for (int i = 0; i < UK_REQ_MAX; i++)
    cr_assert_eq(kd->req[i].state, UK_REQ_FREE);
  cr_assert_eq(kd->ctr.calls, 0);
}

Test(ica_table, alloc_records_kind_size_and_holder, .timeout = 10) {
  uint32_t id;
  cr_assert_eq(kern_ica_alloc(kd, KABI_ICA_CONTROL, 12345, 5, &id), 0);
  int i = kern_ica_lookup(kd, id);
  cr_assert_geq(i, 0);
  cr_assert_eq((uint32_t)i, KABI_ICA_INDEX(id));
  cr_assert_eq(kd->ica[i].state, UK_ICA_LIVE);
  cr_assert_eq(kd->ica[i].kind, KABI_ICA_CONTROL);
  cr_assert_eq(kd->ica[i].size, 12345);
  cr_assert_eq(kd->ica[i].holder_kind, UK_HOLD_PROC);
  cr_assert_eq(kd->ica[i].holder, 5);
  cr_assert_eq(kd->proc[5].icas_held, 1);
  cr_assert(kern_ica_held_by(kd, id, UK_HOLD_PROC, 5));
}

Test(ica_table, alloc_until_full_gives_enospc, .timeout = 10) {
  static uint32_t ids[UK_ICA_MAX];
  for (uint32_t n = 0; n < UK_ICA_MAX; n++) {
    ids[n] = alloc_ok(n % UK_PROC_MAX);
    cr_assert_eq(kern_ica_lookup(kd, ids[n]), (int)KABI_ICA_INDEX(ids[n]));
  }
  cr_assert_eq(kern_ica_live(kd), UK_ICA_MAX);

  uint32_t id = 0xdeadbeef;
  cr_assert_eq(kern_ica_alloc(kd, KABI_ICA_DATA, 1, 0, &id), -ENOSPC);
  cr_assert_eq(id, 0xdeadbeef, "a failed alloc must not write the id");
  cr_assert_eq(kern_ica_live(kd), UK_ICA_MAX);

  /* Every slot is used once: all indexes distinct. */
  static unsigned char seen[UK_ICA_MAX];
  for (uint32_t n = 0; n < UK_ICA_MAX; n++) {
    uint32_t i = KABI_ICA_INDEX(ids[n]);
    cr_assert_lt(i, UK_ICA_MAX);
    cr_assert_eq(seen[i], 0, "index %u handed out twice", i);
    seen[i] = 1;
  }
  assert_held_counts();
  for (uint32_t p = 0; p < UK_PROC_MAX; p++)
    cr_assert_eq(kd->proc[p].icas_held, UK_ICA_MAX / UK_PROC_MAX);

  /* Freeing one makes room for exactly one more. */
  kern_ica_free(kd, ids[100]);
  uint32_t again = alloc_ok(0);
  cr_assert_eq(KABI_ICA_INDEX(again), KABI_ICA_INDEX(ids[100]));
  cr_assert_eq(kern_ica_alloc(kd, KABI_ICA_DATA, 1, 0, &id), -ENOSPC);
  assert_held_counts();
}

Test(ica_table, id_is_never_none_across_generation_wrap, .timeout = 30) {
  /* Reusing slot 0 more than 2^16 times wraps its 16-bit generation; the
   * wrap must skip 0, or slot 0 would be named KABI_ICA_NONE. */
  uint32_t prev = KABI_ICA_NONE;
  for (uint32_t n = 0; n < 0x10000 + 10; n++) {
    uint32_t id = alloc_ok(0);
    cr_assert_eq(KABI_ICA_INDEX(id), 0);
    cr_assert_neq(KABI_ICA_GEN(id), 0, "reuse %u gave generation 0", n);
    cr_assert_neq(id, prev, "reuse %u gave the same id twice in a row", n);
    kern_ica_free(kd, id);
    prev = id;
  }
  cr_assert_eq(kd->proc[0].icas_held, 0);
}

Test(ica_table, lookup_refuses_none_out_of_range_and_wrong_gen, .timeout = 10) {
  uint32_t id = alloc_ok(0);
  uint32_t i = KABI_ICA_INDEX(id), g = KABI_ICA_GEN(id);
  cr_assert_eq(kern_ica_lookup(kd, KABI_ICA_NONE), -1);
  cr_assert_eq(kern_ica_lookup(kd, KABI_ICA_ID(UK_ICA_MAX, g)), -1);
  cr_assert_eq(kern_ica_lookup(kd, KABI_ICA_ID(0xffffu, 0xffffu)), -1);
  cr_assert_eq(kern_ica_lookup(kd, KABI_ICA_ID(i, g + 1)), -1);
  cr_assert_eq(kern_ica_lookup(kd, KABI_ICA_ID(i, 0)), -1);
  /* A free slot is refused whatever generation is named. */
  cr_assert_eq(kern_ica_lookup(kd, KABI_ICA_ID(i + 1, 1)), -1);
  cr_assert_eq(kern_ica_lookup(kd, KABI_ICA_ID(i + 1, 0)), -1);
  cr_assert_eq(kern_ica_lookup(kd, id), (int)i);
}

Test(ica_table, stale_id_is_refused_after_free, .timeout = 10) {
  uint32_t id = alloc_ok(3);
  kern_ica_free(kd, id);
  cr_assert_eq(kern_ica_lookup(kd, id), -1);
  cr_assert_not(kern_ica_held_by(kd, id, UK_HOLD_PROC, 3));
  cr_assert_eq(kd->proc[3].icas_held, 0);
  cr_assert_eq(kern_ica_live(kd), 0);

  /* Freeing or moving it again changes nothing. */
  kern_ica_free(kd, id);
  kern_ica_move(kd, id, UK_HOLD_PROC, 3);
  cr_assert_eq(kd->proc[3].icas_held, 0);
  cr_assert_eq(kern_ica_live(kd), 0);
}

Test(ica_table, stale_id_is_refused_after_reuse, .timeout = 10) {
  uint32_t old = alloc_ok(3);
  kern_ica_free(kd, old);
  uint32_t cur = alloc_ok(4);
  cr_assert_eq(KABI_ICA_INDEX(cur), KABI_ICA_INDEX(old), "slot not reused");
  cr_assert_neq(cur, old);

  cr_assert_eq(kern_ica_lookup(kd, old), -1);
  cr_assert_eq(kern_ica_lookup(kd, cur), (int)KABI_ICA_INDEX(cur));
  cr_assert_not(kern_ica_held_by(kd, old, UK_HOLD_PROC, 4));

  /* The stale id can neither move nor free the new ICA. */
  kern_ica_move(kd, old, UK_HOLD_PROC, 3);
  kern_ica_free(kd, old);
  cr_assert(kern_ica_held_by(kd, cur, UK_HOLD_PROC, 4));
  cr_assert_eq(kern_ica_live(kd), 1);
  cr_assert_eq(kd->proc[3].icas_held, 0);
  cr_assert_eq(kd->proc[4].icas_held, 1);
}

Test(ica_table, held_by_checks_holder_kind_and_holder, .timeout = 10) {
  uint32_t id = alloc_ok(3);
  cr_assert(kern_ica_held_by(kd, id, UK_HOLD_PROC, 3));
  cr_assert_not(kern_ica_held_by(kd, id, UK_HOLD_PROC, 4));
  cr_assert_not(kern_ica_held_by(kd, id, UK_HOLD_REQUEST, 3));
  cr_assert_not(kern_ica_held_by(kd, id, UK_HOLD_SVC, 3));
  cr_assert_not(kern_ica_held_by(kd, id, UK_HOLD_NONE, 3));
  cr_assert_not(kern_ica_held_by(kd, KABI_ICA_NONE, UK_HOLD_PROC, 3));

  kern_ica_move(kd, id, UK_HOLD_REQUEST, 3);
  cr_assert(kern_ica_held_by(kd, id, UK_HOLD_REQUEST, 3));
  cr_assert_not(kern_ica_held_by(kd, id, UK_HOLD_PROC, 3));

  kern_ica_move(kd, id, UK_HOLD_SVC, 9);
  cr_assert(kern_ica_held_by(kd, id, UK_HOLD_SVC, 9));
  cr_assert_not(kern_ica_held_by(kd, id, UK_HOLD_REQUEST, 3));
}

Test(ica_table, move_keeps_held_counts_through_a_request, .timeout = 10) {
  uint32_t a = alloc_ok(1), b = alloc_ok(1);
  cr_assert_eq(kd->proc[1].icas_held, 2);

  /* Sent: process 1 -> request 7. */
  kern_ica_move(kd, a, UK_HOLD_REQUEST, 7);
  cr_assert_eq(kd->proc[1].icas_held, 1);
  cr_assert_eq(kd->proc[7].icas_held, 0, "a request index is not a proc");
  assert_held_counts();

  /* Delivered: request 7 -> process 2. */
  kern_ica_move(kd, a, UK_HOLD_PROC, 2);
  cr_assert_eq(kd->proc[1].icas_held, 1);
  cr_assert_eq(kd->proc[2].icas_held, 1);
  assert_held_counts();

  /* Direct hand-over and a move to the same holder. */
  kern_ica_move(kd, b, UK_HOLD_PROC, 2);
  kern_ica_move(kd, b, UK_HOLD_PROC, 2);
  cr_assert_eq(kd->proc[1].icas_held, 0);
  cr_assert_eq(kd->proc[2].icas_held, 2);

  /* Registered as a service's state, then back to process 1. */
  kern_ica_move(kd, b, UK_HOLD_SVC, 1);
  cr_assert_eq(kd->proc[1].icas_held, 0);
  cr_assert_eq(kd->proc[2].icas_held, 1);
  kern_ica_move(kd, b, UK_HOLD_PROC, 1);
  cr_assert_eq(kd->proc[1].icas_held, 1);
  assert_held_counts();
}

Test(ica_table, free_decrements_the_holders_count, .timeout = 10) {
  uint32_t a = alloc_ok(2), b = alloc_ok(2), c = alloc_ok(2);
  kern_ica_move(kd, c, UK_HOLD_REQUEST, 2);
  cr_assert_eq(kd->proc[2].icas_held, 2);
  kern_ica_free(kd, a);
  cr_assert_eq(kd->proc[2].icas_held, 1);
  kern_ica_free(kd, c); /* held by a request: no process count changes */
  cr_assert_eq(kd->proc[2].icas_held, 1);
  kern_ica_free(kd, b);
  cr_assert_eq(kd->proc[2].icas_held, 0);
  cr_assert_eq(kern_ica_live(kd), 0);
  assert_held_counts();
}

Test(ica_table, holder_outside_the_process_table_is_not_counted,
     .timeout = 10) {
  /* Such a holder must not be counted past the end of proc[], where the
   * service table starts. */
  static struct uk_svc svc0;
  memcpy(&svc0, &kd->svc[0], sizeof svc0);
  uint32_t id = alloc_ok(UK_NIL);
  cr_assert(kern_ica_held_by(kd, id, UK_HOLD_PROC, UK_NIL));
  kern_ica_move(kd, id, UK_HOLD_PROC, UK_PROC_MAX);
  cr_assert(kern_ica_held_by(kd, id, UK_HOLD_PROC, UK_PROC_MAX));
  cr_assert_eq(memcmp(&svc0, &kd->svc[0], sizeof svc0), 0);
  kern_ica_move(kd, id, UK_HOLD_PROC, UK_PROC_MAX + 1);
  cr_assert_eq(memcmp(&svc0, &kd->svc[0], sizeof svc0), 0);
  kern_ica_free(kd, id);
  assert_held_counts();
  for (uint32_t p = 0; p < UK_PROC_MAX; p++)
    cr_assert_eq(kd->proc[p].icas_held, 0);
}

Test(ica_table, live_counts_allocated_minus_freed, .timeout = 10) {
  uint32_t ids[100];
  for (int n = 0; n < 100; n++) {
    ids[n] = alloc_ok((uint32_t)n % 5);
    cr_assert_eq(kern_ica_live(kd), (uint32_t)n + 1);
  }
  for (int n = 0; n < 100; n += 2)
    kern_ica_free(kd, ids[n]);
  cr_assert_eq(kern_ica_live(kd), 50);
  for (int n = 0; n < 100; n += 2)
    kern_ica_free(kd, ids[n]); /* stale: no effect */
  cr_assert_eq(kern_ica_live(kd), 50);
  for (int n = 1; n < 100; n += 2)
    kern_ica_free(kd, ids[n]);
  cr_assert_eq(kern_ica_live(kd), 0);
  assert_held_counts();
}
