/* Unit tests for kernel-data layout v2 (uksim/kdata.h built with
 * UK_KDATA_V2, the second kernel version of a kernel update, issue 15):
 * the tables really differ from layout 1 (the process table split in
 * two, other encodings, its own layout number), and the table functions
 * (sim-kernel/ktab.h, built again as ktab2) keep the scheduling and
 * accounting half in psched[] through uk_psched(). */
#ifndef UK_KDATA_V2
#error "this test is built with -DUK_KDATA_V2"
#endif
#include <criterion/criterion.h>
#include <stddef.h>

#include "kd_fixture.h"

TestSuite(kdata_v2, .init = kd_new, .fini = kd_free);

Test(kdata_v2, has_its_own_layout_number, .timeout = 10) {
  cr_assert_eq(kd->hdr.layout, 1001);
  cr_assert_eq(kd->hdr.size, sizeof(struct uk_kdata));
}

Test(kdata_v2, splits_the_process_table, .timeout = 10) {
  cr_assert_gt(offsetof(struct uk_kdata, psched),
               offsetof(struct uk_kdata, proc));
  cr_assert_eq((void *)uk_psched(kd, 3), (void *)&kd->psched[3]);
  cr_assert_neq((void *)uk_psched(kd, 3), (void *)&kd->proc[3]);
  /* The identity half keeps who the process is, not its queues. */
  cr_assert_lt(sizeof(struct uk_proc), 96);
}

Test(kdata_v2, encodes_states_otherwise, .timeout = 10) {
  cr_assert_eq(UK_PROC_RUNNING, 3);
  cr_assert_eq(UK_PROC_WAITING, 2);
  cr_assert_eq(UK_PROC_EXITED, 1);
  cr_assert_eq(UK_PROC_AP, 2);
  cr_assert_eq(UK_PROC_F_PROTECT, 0x100u);
  cr_assert_eq(UK_HOLD_PROC, 4);
  cr_assert_eq(offsetof(struct uk_ica_ent, size), 0);
}

Test(kdata_v2, proc_alloc_fills_both_halves, .timeout = 10) {
  uk_psched(kd, 0)->res_len = 99; /* garbage from an earlier tenant */
  int p = kern_proc_alloc(kd, "app", 4242);
  cr_assert_eq(p, 0);
  cr_assert_eq(kd->proc[p].state, UK_PROC_RUNNING);
  cr_assert_eq(kd->proc[p].kind, UK_PROC_AP);
  cr_assert_eq(kd->proc[p].pid, 4242);
  const uk_psched_t *ps = uk_psched_c(kd, (uint32_t)p);
  cr_assert_eq(ps->res_len, 0);
  cr_assert_eq(ps->res_head, UK_NIL);
  cr_assert_eq(ps->res_tail, UK_NIL);
}

Test(kdata_v2, ica_accounting_goes_to_psched, .timeout = 10) {
  int p = kern_proc_alloc(kd, "app", 4242);
  uint32_t id;
  uk_psched(kd, (uint32_t)p)->call_seq = 17;
  cr_assert_eq(kern_ica_alloc(kd, KABI_ICA_DATA, 4096, (uint32_t)p, &id), 0);
  cr_assert_eq(uk_psched(kd, (uint32_t)p)->icas_held, 1);
  int i = kern_ica_lookup(kd, id);
  cr_assert_geq(i, 0);
  cr_assert_eq(kd->ica[i].holder_kind, UK_HOLD_PROC);
  cr_assert_eq(kd->ica[i].made_by_seq, 17);
  kern_ica_free(kd, id);
  cr_assert_eq(uk_psched(kd, (uint32_t)p)->icas_held, 0);
}
