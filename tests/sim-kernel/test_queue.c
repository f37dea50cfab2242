/* Unit tests for requests and queues (sim-kernel/queue.c).
 *
 * Queues are singly linked through req[].next by index, with head, tail and
 * length kept by the owner.  Besides the hand-written cases, a randomized
 * test drives several queues with thousands of push/pop/remove operations
 * and compares them after each one with a plain array model (the SQLite
 * bitvec approach).  Its seeds are fixed so CI is repeatable; set
 * UKSIM_TEST_SEED to try another.  A failure message names the seed and step.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kd_fixture.h"

TestSuite(queue, .init = kd_new, .fini = kd_free);
TestSuite(req, .init = kd_new, .fini = kd_free);

struct q {
  uint32_t head, tail, len;
};

#define Q_EMPTY                                                                \
  { UK_NIL, UK_NIL, 0 }

static void push(struct q *q, uint32_t i) {
  kern_q_push(kd, &q->head, &q->tail, &q->len, i);
}

static uint32_t pop(struct q *q) {
  return kern_q_pop(kd, &q->head, &q->tail, &q->len);
}

static bool qremove(struct q *q, uint32_t i) {
  return kern_q_remove(kd, &q->head, &q->tail, &q->len, i);
}

static uint32_t req_new(void) {
  uint32_t id;
  int i = kern_req_alloc(kd, &id);
  cr_assert_geq(i, 0);
  return (uint32_t)i;
}

/* Checks q holds exactly want[0..n) in order, with head, tail, len and the
 * links all agreeing.  Returns false (after reporting) on any difference, so
 * the randomized test can add its seed. */
static bool q_matches(const struct q *q, const uint32_t *want, uint32_t n,
                      const char *ctx) {
  if (q->len != n) {
    cr_log_error("%s: len %u, want %u", ctx, q->len, n);
    return false;
  }
  if (n == 0) {
    if (q->head != UK_NIL || q->tail != UK_NIL) {
      cr_log_error("%s: empty queue with head %u tail %u", ctx, q->head,
                   q->tail);
      return false;
    }
    return true;
  }
  if (q->head != want[0] || q->tail != want[n - 1]) {
    cr_log_error("%s: head %u tail %u, want %u and %u", ctx, q->head, q->tail,
                 want[0], want[n - 1]);
    return false;
  }
  uint32_t i = q->head;
  for (uint32_t k = 0; k < n; k++) {
    if (i != want[k]) {
      cr_log_error("%s: element %u is %u, want %u", ctx, k, i, want[k]);
      return false;
    }
    i = kd->req[i].next;
  }
  if (i != UK_NIL) {
    cr_log_error("%s: tail links on to %u", ctx, i);
    return false;
  }
  return true;
}

#define ASSERT_Q(q, ...)                                                       \
  do {                                                                         \
    const uint32_t want_[] = {__VA_ARGS__};                                    \
    cr_assert(q_matches(q, want_, sizeof want_ / sizeof want_[0], #q));        \
  } while (0)
#define ASSERT_Q_EMPTY(q) cr_assert(q_matches(q, NULL, 0, #q))

Test(queue, push_pop_is_fifo, .timeout = 10) {
  struct q q = Q_EMPTY;
  uint32_t a = req_new(), b = req_new(), c = req_new();
  push(&q, a);
  ASSERT_Q(&q, a);
  push(&q, b);
  push(&q, c);
  ASSERT_Q(&q, a, b, c);
  cr_assert_eq(pop(&q), a);
  ASSERT_Q(&q, b, c);
  cr_assert_eq(kd->req[a].next, UK_NIL, "a popped entry keeps no link");
  push(&q, a);
  ASSERT_Q(&q, b, c, a);
  cr_assert_eq(pop(&q), b);
  cr_assert_eq(pop(&q), c);
  cr_assert_eq(pop(&q), a);
  ASSERT_Q_EMPTY(&q);
}

Test(queue, pop_of_empty_queue_is_nil, .timeout = 10) {
  struct q q = Q_EMPTY;
  cr_assert_eq(pop(&q), UK_NIL);
  ASSERT_Q_EMPTY(&q);
  push(&q, req_new());
  pop(&q);
  cr_assert_eq(pop(&q), UK_NIL);
  ASSERT_Q_EMPTY(&q);
}

Test(queue, push_to_empty_ignores_stale_head_and_next, .timeout = 10) {
  /* A zeroed proc entry has head = tail = 0, not UK_NIL; len decides. */
  struct q q = {0, 0, 0};
  uint32_t a = req_new();
  kd->req[a].next = 77;
  push(&q, a);
  ASSERT_Q(&q, a);
}

/* Three new requests r[0..2], queued in that order on a new queue. */
static struct q queue_of_three(uint32_t r[3]) {
  struct q q = Q_EMPTY;
  for (int k = 0; k < 3; k++) {
    r[k] = req_new();
    push(&q, r[k]);
  }
  return q;
}

Test(queue, remove_head, .timeout = 10) {
  uint32_t r[3];
  struct q q = queue_of_three(r);
  cr_assert(qremove(&q, r[0]));
  ASSERT_Q(&q, r[1], r[2]);
  cr_assert_eq(kd->req[r[0]].next, UK_NIL);
}

Test(queue, remove_middle, .timeout = 10) {
  uint32_t r[3];
  struct q q = queue_of_three(r);
  cr_assert(qremove(&q, r[1]));
  ASSERT_Q(&q, r[0], r[2]);
  cr_assert_eq(kd->req[r[1]].next, UK_NIL);
}

Test(queue, remove_tail_then_push, .timeout = 10) {
  uint32_t r[3];
  struct q q = queue_of_three(r);
  cr_assert(qremove(&q, r[2]));
  ASSERT_Q(&q, r[0], r[1]);
  /* The new tail must be linked to, not the removed one. */
  push(&q, r[2]);
  ASSERT_Q(&q, r[0], r[1], r[2]);
}

Test(queue, remove_only_element_empties_queue, .timeout = 10) {
  struct q q = Q_EMPTY;
  uint32_t a = req_new();
  push(&q, a);
  cr_assert(qremove(&q, a));
  ASSERT_Q_EMPTY(&q);
  push(&q, a);
  ASSERT_Q(&q, a);
}

Test(queue, remove_absent_changes_nothing, .timeout = 10) {
  struct q q = Q_EMPTY, other = Q_EMPTY;
  uint32_t a = req_new(), b = req_new(), c = req_new(), d = req_new();
  cr_assert_not(qremove(&q, a), "remove from an empty queue");
  ASSERT_Q_EMPTY(&q);
  push(&q, a), push(&q, b), push(&other, c);
  cr_assert_not(qremove(&q, c), "c is in another queue");
  cr_assert_not(qremove(&q, d), "d is in no queue");
  cr_assert_not(qremove(&q, UK_NIL));
  ASSERT_Q(&q, a, b);
  ASSERT_Q(&other, c);
}

Test(queue, queues_are_independent, .timeout = 10) {
  struct q q1 = Q_EMPTY, q2 = Q_EMPTY;
  uint32_t r[6];
  for (int k = 0; k < 6; k++)
    r[k] = req_new();
  for (int k = 0; k < 6; k++)
    push(k % 2 ? &q2 : &q1, r[k]);
  ASSERT_Q(&q1, r[0], r[2], r[4]);
  ASSERT_Q(&q2, r[1], r[3], r[5]);
  cr_assert(qremove(&q1, r[2]));
  cr_assert_eq(pop(&q2), r[1]);
  ASSERT_Q(&q1, r[0], r[4]);
  ASSERT_Q(&q2, r[3], r[5]);
}

Test(queue, works_on_the_kdata_heads, .timeout = 10) {
  /* The real owners: a service's request queue, a process's result queue. */
  struct uk_svc *s = &kd->svc[3];
  struct uk_proc *p = &kd->proc[5];
  s->q_head = s->q_tail = p->res_head = p->res_tail = UK_NIL;
  uint32_t a = req_new(), b = req_new();
  kern_q_push(kd, &s->q_head, &s->q_tail, &s->q_len, a);
  kern_q_push(kd, &s->q_head, &s->q_tail, &s->q_len, b);
  uint32_t i = kern_q_pop(kd, &s->q_head, &s->q_tail, &s->q_len);
  cr_assert_eq(i, a);
  kern_q_push(kd, &p->res_head, &p->res_tail, &p->res_len, i);
  cr_assert_eq(s->q_len, 1);
  cr_assert_eq(s->q_head, b);
  cr_assert_eq(p->res_len, 1);
  cr_assert_eq(p->res_head, a);
  cr_assert_eq(p->res_tail, a);
  cr_assert(kern_q_remove(kd, &p->res_head, &p->res_tail, &p->res_len, a));
  cr_assert_eq(p->res_len, 0);
  cr_assert_eq(p->res_head, UK_NIL);
}

Test(req, alloc_initialises_the_entry, .timeout = 10) {
  memset(&kd->req[0], 0x5a, sizeof kd->req[0]);
  kd->req[0].state = UK_REQ_FREE;
  uint32_t id;
  int i = kern_req_alloc(kd, &id);
  cr_assert_eq(i, 0);
  const struct uk_req *r = &kd->req[0];
  cr_assert_eq(r->state, UK_REQ_QUEUED);
  cr_assert_eq(r->next, UK_NIL);
  cr_assert_eq(r->client, UK_NIL);
  cr_assert_eq(r->svc, UK_NIL);
  cr_assert_eq(r->ctl, 0);
  cr_assert_eq(r->data, 0);
  cr_assert_eq(r->tag, 0);
  cr_assert_eq(id, kern_req_id(kd, 0));
}

Test(req, id_is_index_plus_one_with_generation, .timeout = 10) {
  for (uint32_t n = 0; n < 10; n++) {
    uint32_t id;
    int i = kern_req_alloc(kd, &id);
    cr_assert_eq(i, (int)n);
    cr_assert_eq(id & 0xffffu, n + 1);
    cr_assert_eq(id >> 16, kd->req[n].gen);
    cr_assert_eq(kern_req_lookup(kd, id), i);
  }
}

Test(req, lookup_refuses_zero_and_out_of_range, .timeout = 10) {
  uint32_t id;
  int i = kern_req_alloc(kd, &id);
  uint32_t gen = id >> 16;
  cr_assert_eq(kern_req_lookup(kd, 0), -1);
  cr_assert_eq(kern_req_lookup(kd, gen << 16), -1, "index part 0");
  cr_assert_eq(kern_req_lookup(kd, (gen << 16) | (UK_REQ_MAX + 1)), -1);
  cr_assert_eq(kern_req_lookup(kd, (gen << 16) | 0xffffu), -1);
  cr_assert_eq(kern_req_lookup(kd, 0xffffffffu), -1);
  cr_assert_eq(kern_req_lookup(kd, id + 1), -1, "next index is free");
  cr_assert_eq(kern_req_lookup(kd, id ^ (1u << 16)), -1, "wrong generation");
  cr_assert_eq(kern_req_lookup(kd, id), i);
}

Test(req, last_slot_is_addressable, .timeout = 10) {
  uint32_t id = 0;
  for (int n = 0; n < UK_REQ_MAX; n++)
    cr_assert_eq(kern_req_alloc(kd, &id), n);
  cr_assert_eq(id & 0xffffu, UK_REQ_MAX);
  cr_assert_eq(kern_req_lookup(kd, id), UK_REQ_MAX - 1);
}

Test(req, alloc_until_full_gives_enospc, .timeout = 10) {
  uint32_t id;
  for (int n = 0; n < UK_REQ_MAX; n++)
    cr_assert_geq(kern_req_alloc(kd, &id), 0);
  id = 0xdeadbeef;
  cr_assert_eq(kern_req_alloc(kd, &id), -ENOSPC);
  cr_assert_eq(id, 0xdeadbeef, "a failed alloc must not write the id");
  kern_req_free(kd, 1234);
  cr_assert_eq(kern_req_alloc(kd, &id), 1234);
  cr_assert_eq(kern_req_alloc(kd, &id), -ENOSPC);
}

Test(req, stale_id_is_refused_after_free, .timeout = 10) {
  uint32_t id;
  int i = kern_req_alloc(kd, &id);
  kern_req_free(kd, (uint32_t)i);
  cr_assert_eq(kern_req_lookup(kd, id), -1);
  cr_assert_eq(kd->req[i].state, UK_REQ_FREE);
}

Test(req, stale_id_is_refused_after_reuse, .timeout = 10) {
  uint32_t old, cur;
  int i = kern_req_alloc(kd, &old);
  kern_req_free(kd, (uint32_t)i);
  cr_assert_eq(kern_req_alloc(kd, &cur), i, "slot not reused");
  cr_assert_neq(cur, old);
  cr_assert_eq(kern_req_lookup(kd, old), -1);
  cr_assert_eq(kern_req_lookup(kd, cur), i);
}

Test(req, ids_stay_valid_across_generation_wrap, .timeout = 30) {
  /* The generation is 16 bits and may wrap to 0: the index part (index + 1)
   * keeps the id non-zero, and consecutive ids of a slot still differ. */
  uint32_t prev = 0;
  for (uint32_t n = 0; n < 0x10000 + 10; n++) {
    uint32_t id;
    int i = kern_req_alloc(kd, &id);
    if (i != 0 || id == 0 || id == prev || kern_req_lookup(kd, id) != 0)
      cr_assert_fail("reuse %u: index %d id %#x prev %#x", n, i, id, prev);
    kern_req_free(kd, 0);
    prev = id;
  }
}

/* The randomized model test. */

#define NQ 5
#define STEPS 24000

static uint64_t rng_state;

static uint64_t rnd(void) { /* splitmix64 */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint32_t below(uint32_t n) {
  return (uint32_t)(rnd() % n);
}

struct model {
  struct q q[NQ];
  uint32_t *item[NQ]; /* each up to UK_REQ_MAX entries */
  uint32_t n[NQ];
  uint32_t where[UK_REQ_MAX]; /* queue holding request i, or UK_NIL */
  uint32_t id[UK_REQ_MAX];    /* its id while allocated */
  uint32_t stale[64];         /* ids of freed requests */
  uint32_t nstale;
  uint32_t live;
};

static void model_remove_at(struct model *m, uint32_t qi, uint32_t k) {
  uint32_t i = m->item[qi][k];
  memmove(&m->item[qi][k], &m->item[qi][k + 1],
          (m->n[qi] - k - 1) * sizeof(uint32_t));
  m->n[qi]--;
  m->where[i] = UK_NIL;
}

static void model_free(struct model *m, uint32_t i) {
  kern_req_free(kd, i);
  m->stale[m->nstale++ % 64] = m->id[i];
  m->live--;
}

/* One random operation; false (after logging) if it disagrees. */
static bool step(struct model *m, uint32_t push_pct) {
  uint32_t qi = below(NQ), op = below(100);
  struct q *q = &m->q[qi];
  if (op < push_pct) {
    uint32_t id;
    int i = kern_req_alloc(kd, &id);
    if (i < 0) {
      if (i != -ENOSPC || m->live != UK_REQ_MAX) {
        cr_log_error("alloc gave %d with %u live", i, m->live);
        return false;
      }
      return true;
    }
    if (m->where[i] != UK_NIL || kern_req_lookup(kd, id) != i) {
      cr_log_error("alloc gave busy or unfindable index %d", i);
      return false;
    }
    m->id[i] = id;
    m->live++;
    push(q, (uint32_t)i);
    m->item[qi][m->n[qi]++] = (uint32_t)i;
    m->where[i] = qi;
  } else if (op < push_pct + (100 - push_pct) / 2) {
    uint32_t got = pop(q), want = m->n[qi] ? m->item[qi][0] : UK_NIL;
    if (got != want) {
      cr_log_error("pop of queue %u gave %u, want %u", qi, got, want);
      return false;
    }
    if (got != UK_NIL) {
      model_remove_at(m, qi, 0);
      model_free(m, got);
    }
  } else {
    /* Remove: usually something in this queue, sometimes anything. */
    uint32_t i =
        m->n[qi] && below(4) ? m->item[qi][below(m->n[qi])] : below(UK_REQ_MAX);
    bool want = m->where[i] == qi, got = qremove(q, i);
    if (got != want) {
      cr_log_error("remove %u from queue %u gave %d, want %d", i, qi, got,
                   want);
      return false;
    }
    if (got) {
      uint32_t k = 0;
      while (m->item[qi][k] != i)
        k++;
      model_remove_at(m, qi, k);
      model_free(m, i);
    }
  }
  if (m->nstale) {
    uint32_t s = m->stale[below(m->nstale < 64 ? m->nstale : 64)];
    int i = kern_req_lookup(kd, s);
    if (i >= 0 && m->id[i] == s && m->where[i] != UK_NIL)
      return true; /* 16-bit generation came round: not stale any more */
    if (i >= 0) {
      cr_log_error("stale id %#x found at %d", s, i);
      return false;
    }
  }
  return q_matches(q, m->item[qi], m->n[qi], "touched queue");
}

static bool model_check_all(struct model *m) {
  for (uint32_t qi = 0; qi < NQ; qi++)
    if (!q_matches(&m->q[qi], m->item[qi], m->n[qi], "queue"))
      return false;
  for (uint32_t i = 0; i < UK_REQ_MAX; i++) {
    bool busy = kd->req[i].state != UK_REQ_FREE;
    if (busy != (m->where[i] != UK_NIL)) {
      cr_log_error("request %u state %u, model says %s", i, kd->req[i].state,
                   m->where[i] != UK_NIL ? "queued" : "free");
      return false;
    }
    if (busy && kern_req_lookup(kd, m->id[i]) != (int)i) {
      cr_log_error("request %u: its id %#x no longer found", i, m->id[i]);
      return false;
    }
  }
  return true;
}

static void run_model(uint64_t seed) {
  static struct model m;
  static uint32_t items[NQ][UK_REQ_MAX];
  memset(&m, 0, sizeof m);
  kern_kdata_init(kd, 1, 0, 0);
  rng_state = seed;
  for (uint32_t qi = 0; qi < NQ; qi++) {
    m.q[qi] = (struct q)Q_EMPTY;
    m.item[qi] = items[qi];
  }
  for (uint32_t i = 0; i < UK_REQ_MAX; i++)
    m.where[i] = UK_NIL;
  for (uint32_t s = 0; s < STEPS; s++) {
    /* Phases: grow towards a full request table, then drain. */
    uint32_t push_pct = (s / 6000) % 2 ? 20 : 90;
    bool ok = step(&m, push_pct);
    if (ok && (s % 512 == 0 || s == STEPS - 1))
      ok = model_check_all(&m);
    if (!ok)
      cr_assert_fail("model mismatch: UKSIM_TEST_SEED=%llu, step %u",
                     (unsigned long long)seed, s);
  }
}

Test(queue, random_ops_match_array_model, .timeout = 60) {
  const char *env = getenv("UKSIM_TEST_SEED");
  if (env && *env) {
    run_model(strtoull(env, NULL, 0));
    return;
  }
  for (uint64_t seed = 1; seed <= 4; seed++)
    run_model(seed);
}
