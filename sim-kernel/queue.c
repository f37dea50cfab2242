/* Requests and the queues that hold them.
 *
 * A request entry lives from send() until its result is delivered (or its
 * client is gone).  Queues are singly linked through req[].next by index;
 * the heads live in the service entry (request queue) and the process entry
 * (result queue), all inside the kernel-data region.  Removal from the middle
 * (a specific await, a dying client) walks the list: queues are bounded by
 * UK_QUEUE_MAX and such removals are rare.
 */
#include <errno.h>
#include <string.h>

#include "ktab.h"

#define REQ_GEN_MASK 0xffffu

int kern_req_alloc(struct uk_kdata *kd, uint32_t *id) {
  for (uint32_t i = 0; i < UK_REQ_MAX; i++) {
    struct uk_req *r = &kd->req[i];
    if (r->state != UK_REQ_FREE)
      continue;
    uint32_t gen = (r->gen + 1) & REQ_GEN_MASK;
    memset(r, 0, sizeof *r);
    r->gen = gen;
    r->next = UK_NIL;
    r->client = UK_NIL;
    r->svc = UK_NIL;
    r->state = UK_REQ_QUEUED;
    *id = kern_req_id(kd, i);
    return (int)i;
  }
  return -ENOSPC;
}

uint32_t kern_req_id(const struct uk_kdata *kd, uint32_t index) {
  return (kd->req[index].gen << 16) | (index + 1);
}

int kern_req_lookup(const struct uk_kdata *kd, uint32_t id) {
  uint32_t i = (id & 0xffffu) - 1;
  if ((id & 0xffffu) == 0 || i >= UK_REQ_MAX)
    return -1;
  const struct uk_req *r = &kd->req[i];
  if (r->state == UK_REQ_FREE || r->gen != id >> 16)
    return -1;
  return (int)i;
}

void kern_req_free(struct uk_kdata *kd, uint32_t index) {
  struct uk_req *r = &kd->req[index];
  r->state = UK_REQ_FREE;
  r->next = UK_NIL;
}

void kern_q_push(struct uk_kdata *kd, uint32_t *head, uint32_t *tail,
                 uint32_t *len, uint32_t index) {
  kd->req[index].next = UK_NIL;
  if (*len == 0)
    *head = index;
  else
    kd->req[*tail].next = index;
  *tail = index;
  (*len)++;
}

uint32_t kern_q_pop(struct uk_kdata *kd, uint32_t *head, uint32_t *tail,
                    uint32_t *len) {
  if (*len == 0)
    return UK_NIL;
  uint32_t i = *head;
  *head = kd->req[i].next;
  if (--*len == 0)
    *head = *tail = UK_NIL;
  kd->req[i].next = UK_NIL;
  return i;
}

bool kern_q_remove(struct uk_kdata *kd, uint32_t *head, uint32_t *tail,
                   uint32_t *len, uint32_t index) {
  uint32_t prev = UK_NIL;
  uint32_t i = *len ? *head : UK_NIL;
  for (uint32_t n = 0; i != UK_NIL && n < *len; n++) {
    if (i == index) {
      uint32_t next = kd->req[i].next;
      if (prev == UK_NIL)
        *head = next;
      else
        kd->req[prev].next = next;
      if (*tail == i)
        *tail = prev;
      if (--*len == 0)
        *head = *tail = UK_NIL;
      kd->req[i].next = UK_NIL;
      return true;
    }
    prev = i;
    i = kd->req[i].next;
  }
  return false;
}
