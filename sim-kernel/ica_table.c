/* The ICA table: one entry per live ICA, with exactly one holder.
 *
 * The table records sizes and holders; the memfds themselves are kept by
 * the kernel loop (kern.c) in an array parallel to this table, because a
 * descriptor means nothing to a reader outside the kernel.
 */
#include <errno.h>
#include <string.h>

#include "ktab.h"

void kern_kdata_init(struct uk_kdata *kd, int32_t kernel_pid, uint32_t os_id,
                     uint64_t budget) {
  memset(kd, 0, sizeof *kd);
  kd->hdr.magic = UK_KDATA_MAGIC;
  kd->hdr.layout = UK_KDATA_LAYOUT;
  kd->hdr.size = sizeof *kd;
  kd->hdr.kernel_pid = kernel_pid;
  kd->hdr.os_id = os_id;
  kd->hdr.budget_bytes = budget;
  for (int i = 0; i < UK_PROC_MAX; i++)
    kd->proc[i].svc = UK_NIL;
  for (int i = 0; i < UK_SVC_MAX; i++)
    kd->svc[i].proc = kd->svc[i].successor = UK_NIL;
}

int kern_ica_alloc(struct uk_kdata *kd, uint32_t kind, uint64_t size,
                   uint32_t proc, uint32_t *id) {
  for (uint32_t i = 0; i < UK_ICA_MAX; i++) {
    struct uk_ica_ent *e = &kd->ica[i];
    if (e->state != UK_ICA_FREE)
      continue;
    if (++e->gen == 0)
      e->gen = 1;
    e->state = UK_ICA_LIVE;
    e->kind = (uint8_t)kind;
    e->size = size;
    e->holder_kind = UK_HOLD_NONE;
    e->made_by_seq = proc < UK_PROC_MAX ? uk_psched(kd, proc)->call_seq : 0;
    kern_ica_move(kd, KABI_ICA_ID(i, e->gen), UK_HOLD_PROC, proc);
    *id = KABI_ICA_ID(i, e->gen);
    return 0;
  }
  return -ENOSPC;
}

int kern_ica_lookup(const struct uk_kdata *kd, uint32_t id) {
  uint32_t i = KABI_ICA_INDEX(id);
  if (id == KABI_ICA_NONE || i >= UK_ICA_MAX)
    return -1;
  const struct uk_ica_ent *e = &kd->ica[i];
  if (e->state != UK_ICA_LIVE || e->gen != KABI_ICA_GEN(id))
    return -1;
  return (int)i;
}

bool kern_ica_held_by(const struct uk_kdata *kd, uint32_t id, uint8_t hk,
                      uint32_t holder) {
  int i = kern_ica_lookup(kd, id);
  return i >= 0 && kd->ica[i].holder_kind == hk && kd->ica[i].holder == holder;
}

/* Keeps proc[].icas_held equal to the number of ICAs a process holds. */
static void count_holder(struct uk_kdata *kd, const struct uk_ica_ent *e,
                         int d) {
  if (e->holder_kind == UK_HOLD_PROC && e->holder < UK_PROC_MAX)
    uk_psched(kd, e->holder)->icas_held += (uint32_t)d;
}

void kern_ica_move(struct uk_kdata *kd, uint32_t id, uint8_t hk,
                   uint32_t holder) {
  int i = kern_ica_lookup(kd, id);
  if (i < 0)
    return;
  struct uk_ica_ent *e = &kd->ica[i];
  count_holder(kd, e, -1);
  e->holder_kind = hk;
  e->holder = holder;
  count_holder(kd, e, +1);
}

void kern_ica_free(struct uk_kdata *kd, uint32_t id) {
  int i = kern_ica_lookup(kd, id);
  if (i < 0)
    return;
  struct uk_ica_ent *e = &kd->ica[i];
  count_holder(kd, e, -1);
  e->state = UK_ICA_FREE;
  e->holder_kind = UK_HOLD_NONE;
  e->holder = UK_NIL;
  e->size = 0;
}

uint32_t kern_ica_live(const struct uk_kdata *kd) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < UK_ICA_MAX; i++)
    n += kd->ica[i].state == UK_ICA_LIVE;
  return n;
}
