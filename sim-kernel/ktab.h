/* Kernel tables: pure functions over the kernel-data region (uksim/kdata.h).
 *
 * They do no I/O and hold no descriptors, so they are unit tested in
 * isolation and a reader of a dead kernel's region can reuse the lookups.
 * Ids given by a process are untrusted: every lookup checks range, state and
 * generation.  Holder changes go through kern_ica_move() so the per-process
 * held counts stay right.
 */
#ifndef UKSIM_KTAB_H
#define UKSIM_KTAB_H

#include <stdbool.h>
#include <stdint.h>

#include "uksim/kdata.h"

void kern_kdata_init(struct uk_kdata *kd, int32_t kernel_pid, uint32_t os_id,
                     uint64_t budget);

/* ICA table (ica_table.c).  An ICA slot's generation changes on each reuse
 * and never yields id 0 (KABI_ICA_NONE). */
int kern_ica_alloc(struct uk_kdata *kd, uint32_t kind, uint64_t size,
                   uint32_t proc, uint32_t *id);
int kern_ica_lookup(const struct uk_kdata *kd, uint32_t id); /* index/-1 */
bool kern_ica_held_by(const struct uk_kdata *kd, uint32_t id, uint8_t hk,
                      uint32_t holder);
void kern_ica_move(struct uk_kdata *kd, uint32_t id, uint8_t hk,
                   uint32_t holder);
void kern_ica_free(struct uk_kdata *kd, uint32_t id);
uint32_t kern_ica_live(const struct uk_kdata *kd);

/* Requests and queues (queue.c).  A request sits in at most one queue: its
 * service's request queue (QUEUED) or its client's result queue (ANSWERED).
 * Request ids are index + 1 in the low 16 bits and a generation above. */
int kern_req_alloc(struct uk_kdata *kd, uint32_t *id);
int kern_req_lookup(const struct uk_kdata *kd, uint32_t id); /* index/-1 */
uint32_t kern_req_id(const struct uk_kdata *kd, uint32_t index);
void kern_req_free(struct uk_kdata *kd, uint32_t index);
void kern_q_push(struct uk_kdata *kd, uint32_t *head, uint32_t *tail,
                 uint32_t *len, uint32_t index);
uint32_t kern_q_pop(struct uk_kdata *kd, uint32_t *head, uint32_t *tail,
                    uint32_t *len);
bool kern_q_remove(struct uk_kdata *kd, uint32_t *head, uint32_t *tail,
                   uint32_t *len, uint32_t index);

/* Service table (svc_table.c).  Service ids are index + 1. */
int kern_svc_lookup(const struct uk_kdata *kd, const char *name);
int kern_svc_by_id(const struct uk_kdata *kd, uint32_t svc); /* index/-1 */
int kern_svc_add(struct uk_kdata *kd, const char *name);
void kern_svc_record(struct uk_svc *s, uint32_t op, uint64_t ns, bool error);

/* Process table. */
int kern_proc_alloc(struct uk_kdata *kd, const char *name, int32_t pid);

#endif /* UKSIM_KTAB_H */
