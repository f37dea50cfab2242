/* The exactly-one-answer checker (see scn_eval.h).
 *
 * Requests are kept in send order in one array, found by id through an
 * open-addressing table of indexes; memory grows with the requests, not
 * with the events, and stops at SCN_ANSWERS_MAX requests (a trace with
 * more is reported broken rather than read without bound).  The checker
 * never stops at the first fault: it notes the first and keeps counting,
 * so the same pass also serves all-answered, errors and latency.
 */
#include <stdlib.h>
#include <string.h>

#include "scn_eval.h"
#include "scn_impl.h"

void scn_answers_init(struct scn_answers *a) {
  *a = (struct scn_answers){0};
}

void scn_answers_close(struct scn_answers *a) {
  free(a->req);
  free(a->slot);
  free(a->exited);
  free(a->actor);
  free(a->actor_epoch);
  *a = (struct scn_answers){0};
}

static size_t hash(uint64_t id, size_t cap) {
  return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 17) & (cap - 1);
}

/* The slot of id: where it is, or the empty one where it would go. */
static size_t find_slot(const struct scn_answers *a, uint64_t id) {
  size_t i = hash(id, a->capslot);
  while (a->slot[i] != 0 && a->req[a->slot[i] - 1].id != id)
    i = (i + 1) & (a->capslot - 1);
  return i;
}

const struct scn_req *scn_answers_lookup(const struct scn_answers *a,
                                         uint64_t id) {
  if (a->capslot == 0)
    return NULL;
  size_t i = find_slot(a, id);
  return a->slot[i] ? &a->req[a->slot[i] - 1] : NULL;
}

static void grow_slots(struct scn_answers *a) {
  free(a->slot);
  a->capslot = a->capslot ? 2 * a->capslot : 1024;
  a->slot = xcalloc(a->capslot, sizeof *a->slot);
  for (size_t k = 0; k < a->n; k++)
    a->slot[find_slot(a, a->req[k].id)] = (uint32_t)(k + 1);
}

/* A new request for a send (its id not yet seen). */
static struct scn_req *add_req(struct scn_answers *a, uint64_t id) {
  if (2 * (a->n + 1) > a->capslot)
    grow_slots(a);
  if (a->n == a->capreq) {
    a->capreq = a->capreq ? 2 * a->capreq : 256;
    a->req = xreallocarray(a->req, a->capreq, sizeof *a->req);
  }
  a->slot[find_slot(a, id)] = (uint32_t)(a->n + 1);
  struct scn_req *r = &a->req[a->n++];
  *r = (struct scn_req){.id = id};
  return r;
}

/* Notes the first break of the invariant. */
static void broke(struct scn_answers *a, const struct scn_event *e,
                  const char *what) {
  if (a->broken)
    return;
  a->broken = true;
  a->what = what;
  a->what_req = e->req;
  a->what_step = e->step;
  a->what_line = e->line;
}

static void bump(uint8_t *n) {
  if (*n < 255)
    (*n)++;
}

bool scn_answers_exited(const struct scn_answers *a, const char *name) {
  for (size_t i = 0; i < a->nexited; i++)
    if (strcmp(a->exited[i], name) == 0)
      return true;
  return false;
}

static void note_exit(struct scn_answers *a, const char *who) {
  if (scn_answers_exited(a, who))
    return;
  if (a->nexited == a->capexited) {
    a->capexited = a->capexited ? 2 * a->capexited : 64;
    a->exited = xreallocarray(a->exited, a->capexited, sizeof *a->exited);
  }
  snprintf(a->exited[a->nexited++], sizeof a->exited[0], "%s", who);
}

/* The index of actor name in a->actor, or -1. */
static long actor_index(const struct scn_answers *a, const char *name) {
  for (size_t i = 0; i < a->nactor; i++)
    if (strcmp(a->actor[i], name) == 0)
      return (long)i;
  return -1;
}

/* name did something now: it was alive after a->epoch failovers. */
static void note_actor(struct scn_answers *a, const char *name) {
  long i = actor_index(a, name);
  if (i < 0) {
    if (a->nactor == a->capactor) {
      a->capactor = a->capactor ? 2 * a->capactor : 64;
      a->actor = xreallocarray(a->actor, a->capactor, sizeof *a->actor);
      a->actor_epoch =
          xreallocarray(a->actor_epoch, a->capactor, sizeof *a->actor_epoch);
    }
    i = (long)a->nactor++;
    snprintf(a->actor[i], sizeof a->actor[0], "%s", name);
  }
  a->actor_epoch[i] = a->epoch;
}

bool scn_answers_ended(const struct scn_answers *a, const char *name,
                       uint32_t since) {
  long i = actor_index(a, name);
  return a->epoch > since && i >= 0 && a->actor_epoch[i] == since;
}

static void on_send(struct scn_answers *a, const struct scn_event *e) {
  struct scn_req *r = (struct scn_req *)scn_answers_lookup(a, e->req);
  if (r != NULL) {
    bump(&r->sends);
    broke(a, e, "the request was sent twice");
    return;
  }
  if (a->n == SCN_ANSWERS_MAX) {
    broke(a, e, "more requests than the checker keeps (SCN_ANSWERS_MAX)");
    return;
  }
  r = add_req(a, e->req);
  r->sends = 1;
  a->requests++;
  snprintf(r->client, sizeof r->client, "%s", e->actor);
  snprintf(r->svc, sizeof r->svc, "%s", e->svc);
  snprintf(r->op, sizeof r->op, "%s", e->op);
  r->sent_t = e->t;
  r->sent_epoch = a->epoch;
  r->sent_step = e->step;
  r->sent_line = e->line;
}

/* The first result wins the answer; a kernel error counts until then. */
static void answer(struct scn_req *r, const struct scn_event *e, bool result) {
  if (r->answered && !(result && r->results == 1))
    return;
  r->answered = true;
  r->answer_t = e->t;
  r->answer_step = e->step;
  r->answer_line = e->line;
  r->status = e->has_status ? e->status : 0;
}

static void on_answer(struct scn_answers *a, const struct scn_event *e,
                      struct scn_req *r) {
  switch (e->ev) {
  case SCN_EV_RECEIVE:
    bump(&r->receives);
    if (r->receives > 1)
      broke(a, e, "the request was delivered to a server twice");
    break;
  case SCN_EV_ERROR: /* the kernel answers in the server's place */
    a->errors++;
    r->kernel_error = true;
    answer(r, e, false);
    /* fall through */
  case SCN_EV_REPLY:
    bump(&r->answers);
    if (r->answers > 1)
      broke(a, e, "the request was answered twice");
    break;
  case SCN_EV_RESULT:
    bump(&r->results);
    a->results++;
    answer(r, e, true);
    if (r->results > 1)
      broke(a, e, "the client got two results");
    break;
  default:
    abort(); /* scn_answers_add passes request events only */
  }
}

void scn_answers_add(struct scn_answers *a, const struct scn_event *e) {
  struct scn_req *r;
  a->events++;
  if (e->ev == SCN_EV_EXIT)
    note_exit(a, e->actor);
  if (e->ev == SCN_EV_HALT)
    a->halted = true;
  if (e->ev == SCN_EV_OS_ACTIVE)
    a->epoch++;
  else if (e->actor[0] != '\0' && strcmp(e->actor, "kernel") != 0)
    note_actor(a, e->actor);
  if (e->ev != SCN_EV_SEND && e->ev != SCN_EV_RECEIVE &&
      e->ev != SCN_EV_REPLY && e->ev != SCN_EV_RESULT && e->ev != SCN_EV_ERROR)
    return;
  if (!e->has_req) {
    broke(a, e, "a request event without a request number");
    return;
  }
  if (e->ev == SCN_EV_SEND) {
    on_send(a, e);
    return;
  }
  r = (struct scn_req *)scn_answers_lookup(a, e->req);
  if (r == NULL)
    broke(a, e, "an event for a request never sent");
  else
    on_answer(a, e, r);
}

void scn_answers_each(const struct scn_answers *a,
                      void (*fn)(const struct scn_req *r, void *arg),
                      void *arg) {
  for (size_t i = 0; i < a->n; i++)
    fn(&a->req[i], arg);
}

const struct scn_req *scn_answers_missing(const struct scn_answers *a,
                                          bool need_result, uint64_t *dropped) {
  const struct scn_req *first = NULL;
  *dropped = 0;
  for (size_t i = 0; i < a->n; i++) {
    const struct scn_req *r = &a->req[i];
    if (need_result ? r->results > 0 : r->answered)
      continue;
    /* Dropped with its client: a client that exited or ended with its OS
     * (Orthros), a request its server
     * answered when the halt came (the halt traces nothing after it), or
     * one of the kernel's own (the mount driver's) that the halt ended. */
    if (scn_answers_exited(a, r->client) ||
        scn_answers_ended(a, r->client, r->sent_epoch) ||
        (a->halted && r->answers > 0) ||
        (a->halted && strcmp(r->client, "kernel") == 0))
      (*dropped)++;
    else if (first == NULL)
      first = r;
  }
  return first;
}
