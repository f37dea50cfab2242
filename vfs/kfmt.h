/* The kernel tables as text, one line at a time: what `uksim ps` and
 * `uksim svc` print and what #k serves (devkern.c), from one formatter so
 * the two never differ.  Each function writes the line at *cursor (0
 * first: the header) into line[0..len), cut to fit, and returns its
 * length, moving *cursor past it; after the last line it returns 0.
 * Slots that are FREE make no line.
 *
 * Header-only (static inline): it needs nothing but kdata.h, and the CLI,
 * which reads the region of a running machine, links no vfs library.
 */
#ifndef UKSIM_VFS_KFMT_H
#define UKSIM_VFS_KFMT_H

#include <stddef.h>
#include <stdio.h>

#include "uksim/kdata.h"

static inline const char *vfs_proc_state_name(uint8_t s) {
  switch (s) {
  case UK_PROC_RUNNING:
    return "run";
  case UK_PROC_WAITING:
    return "wait";
  case UK_PROC_EXITED:
    return "exited";
  default:
    return "?";
  }
}

static inline const char *vfs_proc_kind_name(uint8_t k) {
  return k == UK_PROC_SERVER ? "server" : "ap";
}

/* snprintf's count as a line length, cut to what line[0..len) holds. */
static inline size_t vfs__kline(int n, size_t len) {
  if (n < 0 || len == 0)
    return 0;
  return (size_t)n < len ? (size_t)n : len - 1;
}

/* The header line (cursor 0), moving the cursor to the first row. */
static inline size_t vfs__khead(uint32_t *cursor, char *line, size_t len,
                                const char *head) {
  *cursor = 1;
  return vfs__kline(snprintf(line, len, "%s", head), len);
}

/* Rows: the cursor is slot + 1 of the next slot to look at, 0 being
 * the header; the first slot at or after it that is not FREE, or -1. */
static inline int vfs__knext_proc(const struct uk_kdata *kd, uint32_t c) {
  for (uint32_t i = c - 1; i < UK_PROC_MAX; i++)
    if (kd->proc[i].state != UK_PROC_FREE)
      return (int)i;
  return -1;
}

static inline int vfs__knext_svc(const struct uk_kdata *kd, uint32_t c) {
  for (uint32_t i = c - 1; i < UK_SVC_MAX; i++)
    if (kd->svc[i].state != UK_SVC_FREE)
      return (int)i;
  return -1;
}

static inline int vfs__knext_ica(const struct uk_kdata *kd, uint32_t c) {
  for (uint32_t i = c - 1; i < UK_ICA_MAX; i++)
    if (kd->ica[i].state != UK_ICA_FREE)
      return (int)i;
  return -1;
}

static inline size_t vfs_ktab_procs(const struct uk_kdata *kd, uint32_t *cursor,
                                    char *line, size_t len) {
  if (*cursor == 0)
    return vfs__khead(cursor, line, len,
                      "SLOT PID      NAME         KIND   STATE  SERVES     "
                      "ICAS    OUT    CALLS   ERRS\n");
  int i = vfs__knext_proc(kd, *cursor);
  if (i < 0)
    return 0;
  *cursor = (uint32_t)i + 2;
  const struct uk_proc *p = &kd->proc[i];
  const uk_psched_t *ps = uk_psched_c(kd, (uint32_t)i);
  const char *svc = p->svc < UK_SVC_MAX ? kd->svc[p->svc].name : "-";
  return vfs__kline(
      snprintf(line, len,
               "%-4d %-8d %-12.*s %-6s %-6s %-8.*s %6u %6u %8llu %6llu\n", i,
               p->pid, KABI_NAME_MAX, p->name, vfs_proc_kind_name(p->kind),
               vfs_proc_state_name(p->state), KABI_NAME_MAX, svc, ps->icas_held,
               ps->outstanding, (unsigned long long)p->calls,
               (unsigned long long)p->errors),
      len);
}

static inline size_t vfs_ktab_svc(const struct uk_kdata *kd, uint32_t *cursor,
                                  char *line, size_t len) {
  if (*cursor == 0)
    return vfs__khead(cursor, line, len,
                      "ID   NAME       STATE VER  PID       QUEUE  HELD   "
                      "REQUESTS    REPLIES   ERRORS STATE-ICA\n");
  int i = vfs__knext_svc(kd, *cursor);
  if (i < 0)
    return 0;
  *cursor = (uint32_t)i + 2;
  const struct uk_svc *s = &kd->svc[i];
  int pid = s->proc < UK_PROC_MAX ? kd->proc[s->proc].pid : 0;
  return vfs__kline(
      snprintf(line, len,
               "%-4d %-10.*s %-5s %-4u %-8d %6u %5u %10llu %10llu %8llu %#x\n",
               i + 1, KABI_NAME_MAX, s->name,
               s->state == UK_SVC_UP ? "up" : "down", s->version, pid, s->q_len,
               s->held, (unsigned long long)s->requests,
               (unsigned long long)s->replies, (unsigned long long)s->errors,
               s->state_ica),
      len);
}

static inline const char *vfs__ica_kind(uint8_t k) {
  return k == KABI_ICA_CONTROL ? "control"
         : k == KABI_ICA_DATA  ? "data"
         : k == KABI_ICA_STATE ? "state"
                               : "?";
}

static inline const char *vfs__holder_kind(uint8_t k) {
  return k == UK_HOLD_PROC      ? "proc"
         : k == UK_HOLD_REQUEST ? "request"
         : k == UK_HOLD_SVC     ? "service"
                                : "none";
}

static inline size_t vfs_ktab_icas(const struct uk_kdata *kd, uint32_t *cursor,
                                   char *line, size_t len) {
  if (*cursor == 0)
    return vfs__khead(
        cursor, line, len,
        "SLOT   GEN    KIND     HOLDER   BY               SIZE\n");
  int i = vfs__knext_ica(kd, *cursor);
  if (i < 0)
    return 0;
  *cursor = (uint32_t)i + 2;
  const struct uk_ica_ent *e = &kd->ica[i];
  return vfs__kline(snprintf(line, len, "%-6d %-6u %-8s %-8s %-8u %12llu\n", i,
                             e->gen, vfs__ica_kind(e->kind),
                             vfs__holder_kind(e->holder_kind), e->holder,
                             (unsigned long long)e->size),
                    len);
}

static inline size_t vfs_ktab_counters(const struct uk_kdata *kd,
                                       uint32_t *cursor, char *line,
                                       size_t len) {
  const struct uk_counters *k = &kd->ctr;
  const struct {
    const char *name;
    uint64_t v;
  } row[] = {
      {"steps", kd->hdr.step},           {"calls", k->calls},
      {"bad_calls", k->bad_calls},       {"sends", k->sends},
      {"results", k->results},           {"errors", k->errors},
      {"icas_created", k->icas_created}, {"icas_released", k->icas_released},
      {"ica_bytes", k->ica_bytes},       {"ica_bytes_peak", k->ica_bytes_peak},
      {"ica_attaches", k->ica_attaches}, {"ica_detaches", k->ica_detaches},
      {"spawned", k->spawned},           {"exited", k->exited},
  };
  if (*cursor >= sizeof row / sizeof row[0])
    return 0;
  uint32_t i = (*cursor)++;
  return vfs__kline(snprintf(line, len, "%-16s %llu\n", row[i].name,
                             (unsigned long long)row[i].v),
                    len);
}

#endif /* UKSIM_VFS_KFMT_H */
