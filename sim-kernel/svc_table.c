/* The server info table (seed 000 Fig. 7) and the process table.
 *
 * One service entry per service type.  The entry outlives the process that
 * serves it: replacement hands the same entry to the new server, so requests
 * sent meanwhile queue in the same place.
 */
#include <errno.h>
#include <string.h>

#include "ktab.h"

int kern_svc_lookup(const struct uk_kdata *kd, const char *name) {
  for (int i = 0; i < UK_SVC_MAX; i++)
    if (kd->svc[i].state != UK_SVC_FREE &&
        strncmp(kd->svc[i].name, name, KABI_NAME_MAX) == 0)
      return i;
  return -1;
}

int kern_svc_by_id(const struct uk_kdata *kd, uint32_t svc) {
  if (svc == 0 || svc > UK_SVC_MAX || kd->svc[svc - 1].state == UK_SVC_FREE)
    return -1;
  return (int)svc - 1;
}

int kern_svc_add(struct uk_kdata *kd, const char *name) {
  if (name[0] == '\0' || memchr(name, '\0', KABI_NAME_MAX) == NULL)
    return -EINVAL;
  for (int i = 0; i < UK_SVC_MAX; i++) {
    struct uk_svc *s = &kd->svc[i];
    if (s->state != UK_SVC_FREE)
      continue;
    uint32_t gen = s->gen + 1;
    memset(s, 0, sizeof *s);
    s->gen = gen;
    s->state = UK_SVC_DOWN;
    strcpy(s->name, name);
    s->proc = UK_NIL;
    s->successor = UK_NIL;
    s->q_head = s->q_tail = UK_NIL;
    return i;
  }
  return -ENOSPC;
}

void kern_svc_record(struct uk_svc *s, uint32_t op, uint64_t ns, bool error) {
  struct uk_svc_ophist *h = &s->op[op < UK_OPS_MAX ? op : UK_OPS_MAX - 1];
  h->count++;
  h->errors += error;
  h->bucket[uk_hist_bucket(ns)]++;
}

int kern_proc_alloc(struct uk_kdata *kd, const char *name, int32_t pid) {
  for (int i = 0; i < UK_PROC_MAX; i++) {
    struct uk_proc *p = &kd->proc[i];
    if (p->state != UK_PROC_FREE)
      continue;
    uint32_t gen = p->gen + 1;
    uk_psched_t *ps = uk_psched(kd, (uint32_t)i);
    memset(p, 0, sizeof *p);
    memset(ps, 0, sizeof *ps); /* p itself in layout 1 */
    p->gen = gen;
    p->state = UK_PROC_RUNNING;
    p->kind = UK_PROC_AP;
    p->pid = pid;
    p->svc = UK_NIL;
    ps->res_head = ps->res_tail = UK_NIL;
    strncpy(p->name, name, KABI_NAME_MAX - 1);
    return i;
  }
  return -ENOSPC;
}
