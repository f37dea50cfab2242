/* adopt_tables (adopt.h): the new kernel's tables from a dead kernel's.
 *
 * The dead region is copied once into the new one (it is fenced: nothing
 * writes it any more) and everything after works on that copy: validate,
 * decide, then prune what does not move.  Every link read from the copy is
 * checked (range, state, generation, queue length) before it is followed;
 * an entry that fails is skipped and counted in plan->torn.
 */
#include "adopt.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ktab.h"
#include "uksim/kabi.h"
#include "vfs.h"

static bool region_ok(const struct uk_kdata *d) {
  return d->hdr.magic == UK_KDATA_MAGIC && d->hdr.layout == UK_KDATA_LAYOUT &&
         d->hdr.size == sizeof *d;
}

static bool empty(const struct uk_kdata *k) {
  for (uint32_t i = 0; i < UK_PROC_MAX; i++)
    if (k->proc[i].state != UK_PROC_FREE)
      return false;
  for (uint32_t i = 0; i < UK_REQ_MAX; i++)
    if (k->req[i].state != UK_REQ_FREE)
      return false;
  return kern_ica_live(k) == 0;
}

/* Process p's result queue reads whole: res_len entries, each ANSWERED
 * for p, ending at res_tail. */
static bool results_whole(const struct uk_kdata *kd, uint32_t p) {
  const uk_psched_t *pp = uk_psched_c(kd, p);
  if (pp->res_len > UK_PROC_RESULTS_MAX)
    return false;
  uint32_t i = pp->res_head;
  for (uint32_t n = 0; n < pp->res_len; n++) {
    if (i >= UK_REQ_MAX || kd->req[i].state != UK_REQ_ANSWERED ||
        kd->req[i].client != p)
      return false;
    if (n + 1 == pp->res_len)
      return i == pp->res_tail;
    i = kd->req[i].next;
  }
  return true;
}

static const char *why_not_moved(const struct uk_kdata *kd, uint32_t p) {
  const struct uk_proc *pp = &kd->proc[p];
  if (pp->kind == UK_PROC_SERVER || pp->svc != UK_NIL)
    return "a server: its service restarts";
  if (!(pp->flags & UK_PROC_F_PROTECT))
    return "not protected";
  if (pp->state != UK_PROC_RUNNING && pp->state != UK_PROC_WAITING)
    return "not running";
  if (memchr(pp->name, '\0', sizeof pp->name) == NULL || !results_whole(kd, p))
    return "its entry does not read whole";
  return NULL;
}

static void decide_procs(const struct uk_kdata *kd, struct adopt_plan *pl) {
  for (uint32_t p = 0; p < UK_PROC_MAX; p++) {
    const struct uk_proc *pp = &kd->proc[p];
    if (pp->state == UK_PROC_FREE)
      continue;
    struct adopt_proc *a = &pl->proc[p];
    /* An attached program is not ours to end: its connection ends. */
    a->pid = pp->flags & UK_PROC_F_ATTACHED ? 0 : pp->pid;
    a->why = why_not_moved(kd, p);
    a->moved = a->why == NULL;
    if (a->moved)
      pl->moved++;
    else if (pp->flags & UK_PROC_F_PROTECT && pp->kind == UK_PROC_AP)
      pl->refused++;
    else
      pl->ended++;
  }
}

/* The service whose server p was, or UK_NIL. */
static uint32_t served_by(const struct uk_kdata *kd, uint32_t p) {
  uint32_t s = kd->proc[p].svc;
  return s < UK_SVC_MAX && kd->svc[s].state != UK_SVC_FREE &&
                 kd->svc[s].proc == p
             ? s
             : UK_NIL;
}

/* Requests ------------------------------------------------------------------
 */

/* Marks the requests found in service s's queue, in order, into order[]
 * (at most UK_QUEUE_MAX); returns how many.  A queue that does not read
 * whole is cut where it stops making sense. */
static uint32_t queue_order(const struct uk_kdata *kd, uint32_t s, bool *inq,
                            uint32_t *order) {
  const struct uk_svc *sv = &kd->svc[s];
  uint32_t n = 0, i = sv->q_head;
  while (n < sv->q_len && n < UK_QUEUE_MAX && i < UK_REQ_MAX && !inq[i] &&
         kd->req[i].state == UK_REQ_QUEUED && kd->req[i].svc == s) {
    inq[i] = true;
    order[n++] = i;
    i = kd->req[i].next;
  }
  return n;
}

static bool ica_ref_ok(const struct uk_kdata *kd, uint32_t id) {
  return id == KABI_ICA_NONE || kern_ica_lookup(kd, id) >= 0;
}

static bool keep_req(const struct uk_kdata *kd, const struct adopt_plan *pl,
                     const bool *inq, uint32_t i) {
  const struct uk_req *r = &kd->req[i];
  if (r->client >= UK_PROC_MAX || !pl->proc[r->client].moved)
    return false;
  if (r->state == UK_REQ_ANSWERED)
    return true; /* in a result queue that read whole */
  if (r->svc >= UK_SVC_MAX || kd->svc[r->svc].state == UK_SVC_FREE ||
      !ica_ref_ok(kd, r->ctl) || !ica_ref_ok(kd, r->data))
    return false;
  return r->state == UK_REQ_IN_SERVICE || (r->state == UK_REQ_QUEUED && inq[i]);
}

/* The queues again, with only the requests kept, in their old order. */
static void requeue(struct uk_kdata *kd, const bool *keep, bool *inq,
                    uint32_t *order) {
  for (uint32_t s = 0; s < UK_SVC_MAX; s++) {
    struct uk_svc *sv = &kd->svc[s];
    if (sv->state == UK_SVC_FREE)
      continue;
    uint32_t n = queue_order(kd, s, inq, order);
    sv->q_head = sv->q_tail = UK_NIL;
    sv->q_len = 0;
    for (uint32_t j = 0; j < n; j++)
      if (keep[order[j]])
        kern_q_push(kd, &sv->q_head, &sv->q_tail, &sv->q_len, order[j]);
  }
}

static void prune_reqs(struct uk_kdata *kd, struct adopt_plan *pl) {
  static bool inq[UK_REQ_MAX], keep[UK_REQ_MAX];
  static uint32_t order[UK_QUEUE_MAX];
  memset(inq, 0, sizeof inq);
  for (uint32_t s = 0; s < UK_SVC_MAX; s++)
    if (kd->svc[s].state != UK_SVC_FREE)
      queue_order(kd, s, inq, order);
  for (uint32_t i = 0; i < UK_REQ_MAX; i++) {
    keep[i] = kd->req[i].state != UK_REQ_FREE && keep_req(kd, pl, inq, i);
    if (kd->req[i].state == UK_REQ_FREE)
      continue;
    if (keep[i])
      pl->reqs_moved++;
    else
      pl->reqs_dropped++;
  }
  memset(inq, 0, sizeof inq);
  requeue(kd, keep, inq, order);
  for (uint32_t i = 0; i < UK_REQ_MAX; i++)
    if (kd->req[i].state != UK_REQ_FREE && !keep[i])
      kern_req_free(kd, i);
}

/* Services and processes ------------------------------------------------------
 */

/* A service keeps its entry (names, ids, state ICA, queue) without its
 * server, which died with the OS. */
static void orphan_services(struct uk_kdata *kd, struct adopt_plan *pl) {
  for (uint32_t s = 0; s < UK_SVC_MAX; s++) {
    struct uk_svc *sv = &kd->svc[s];
    if (sv->state == UK_SVC_FREE) { /* nothing of a free entry is read */
      uint32_t gen = sv->gen;
      memset(sv, 0, sizeof *sv);
      sv->gen = gen;
      sv->proc = sv->successor = UK_NIL;
      sv->q_head = sv->q_tail = UK_NIL;
      continue;
    }
    sv->name[sizeof sv->name - 1] = '\0';
    pl->restart_svc[s] = sv->state == UK_SVC_UP;
    sv->proc = UK_NIL;
    sv->successor = UK_NIL;
    sv->phase = UK_PH_SERVING;
    sv->flags &= ~UK_SVC_F_REPLACE;
    sv->held = 0;
    if (kern_ica_lookup(kd, sv->state_ica) < 0)
      sv->state_ica = KABI_ICA_NONE;
    if (kern_ica_lookup(kd, sv->handoff_ica) < 0)
      sv->handoff_ica = KABI_ICA_NONE;
  }
}

/* What the kernel keeps per process (kcall.c): ICAs held, and requests
 * sent and not yet collected -- queued, in service, or answered and
 * waiting in its result queue (outstanding drops only when a result is
 * delivered: counting the answered ones out made the delivery of a result
 * the dead kernel had queued wrap the count, and every later send was
 * refused with -EDQUOT). */
static void recount(struct uk_kdata *kd) {
  for (uint32_t p = 0; p < UK_PROC_MAX; p++)
    uk_psched(kd, p)->icas_held = uk_psched(kd, p)->outstanding = 0;
  for (uint32_t i = 0; i < UK_ICA_MAX; i++) {
    const struct uk_ica_ent *e = &kd->ica[i];
    if (e->state == UK_ICA_LIVE && e->holder_kind == UK_HOLD_PROC &&
        e->holder < UK_PROC_MAX)
      uk_psched(kd, e->holder)->icas_held++;
  }
  for (uint32_t i = 0; i < UK_REQ_MAX; i++) {
    const struct uk_req *r = &kd->req[i];
    if (r->state == UK_REQ_QUEUED || r->state == UK_REQ_IN_SERVICE ||
        r->state == UK_REQ_ANSWERED)
      uk_psched(kd, r->client)->outstanding++;
    if (r->state == UK_REQ_IN_SERVICE)
      kd->svc[r->svc].held++;
  }
}

static void end_procs(struct uk_kdata *kd, const struct adopt_plan *pl) {
  for (uint32_t p = 0; p < UK_PROC_MAX; p++) {
    struct uk_proc *pp = &kd->proc[p];
    if (pl->proc[p].moved)
      continue;
    uint32_t gen = pp->gen;
    memset(pp, 0, sizeof *pp);
    pp->gen = gen;
    pp->svc = UK_NIL;
    uk_psched_t *ps = uk_psched(kd, p);
    memset(ps, 0, sizeof *ps); /* pp itself in layout 1 (gen kept) */
    pp->gen = gen;
    ps->res_head = ps->res_tail = UK_NIL;
  }
}

/* ICAs ------------------------------------------------------------------------
 */

/* Where ICA entry e goes: kept as is (1), parked with the service whose
 * server held it, as the AnT fault path parks it (2), or dropped (0). */
static int ica_fate(const struct uk_kdata *kd, const struct adopt_plan *pl,
                    const struct uk_ica_ent *e, uint32_t *svc) {
  switch (e->holder_kind) {
  case UK_HOLD_PROC:
    if (e->holder >= UK_PROC_MAX)
      return 0;
    if (pl->proc[e->holder].moved)
      return 1;
    *svc = served_by(kd, e->holder);
    return *svc == UK_NIL ? 0 : 2;
  case UK_HOLD_REQUEST:
    return e->holder < UK_REQ_MAX && kd->req[e->holder].state != UK_REQ_FREE &&
           kd->req[e->holder].client < UK_PROC_MAX &&
           pl->proc[kd->req[e->holder].client].moved;
  case UK_HOLD_SVC:
    return e->holder < UK_SVC_MAX && kd->svc[e->holder].state != UK_SVC_FREE;
  default:
    return 0; /* the kernel's own: its pool and cache went with it */
  }
}

static void prune_icas(struct uk_kdata *kd, struct adopt_plan *pl) {
  for (uint32_t i = 0; i < UK_ICA_MAX; i++) {
    struct uk_ica_ent *e = &kd->ica[i];
    if (e->state != UK_ICA_LIVE)
      continue;
    uint32_t svc = UK_NIL;
    int fate = ica_fate(kd, pl, e, &svc);
    if (fate == 2) {
      e->holder_kind = UK_HOLD_SVC;
      e->holder = svc;
    }
    if (fate) {
      pl->icas_moved++;
      continue;
    }
    pl->dropped_ica[pl->icas_dropped++] = KABI_ICA_ID(i, e->gen);
    e->state = UK_ICA_FREE;
    e->holder_kind = UK_HOLD_NONE;
    e->holder = UK_NIL;
    e->size = 0;
  }
}

/* Namespaces ------------------------------------------------------------------
 */

static void prune_ns(struct uk_kdata *kd, struct adopt_plan *pl) {
  if (vfs_check(kd, pl->ns_why, sizeof pl->ns_why) < 0) {
    pl->ns_torn = true; /* nothing of it can be trusted */
    memset(&kd->vfs, 0, sizeof kd->vfs);
    return;
  }
  for (uint32_t p = 0; p < UK_PROC_MAX; p++)
    if (!pl->proc[p].moved && kd->vfs.vproc[p].attached)
      vfs_proc_release(kd, p);
  for (uint32_t i = 0; i < UK_NETLINK_MAX; i++)
    kd->vfs.net[i].up = 0; /* the connection was the dead kernel's */
}

/* Calls -----------------------------------------------------------------------
 */

/* The request SEND or CALL number seq of p made, if it was made. */
static uint32_t req_of_call(const struct uk_kdata *kd, uint32_t p,
                            uint32_t seq) {
  for (uint32_t i = 0; i < UK_REQ_MAX; i++) {
    const struct uk_req *r = &kd->req[i];
    if (r->state != UK_REQ_FREE && r->client == p && r->client_seq == seq)
      return kern_req_id(kd, i);
  }
  return 0;
}

/* The ICA the ICA_CREATE number seq of p made, if it made one. */
static uint32_t ica_of_call(const struct uk_kdata *kd, uint32_t p,
                            uint32_t seq) {
  for (uint32_t i = 0; i < UK_ICA_MAX; i++) {
    const struct uk_ica_ent *e = &kd->ica[i];
    if (e->state == UK_ICA_LIVE && e->holder_kind == UK_HOLD_PROC &&
        e->holder == p && e->made_by_seq == seq)
      return KABI_ICA_ID(i, e->gen);
  }
  return 0;
}

static void decide_waiting(struct uk_kdata *kd, uint32_t p,
                           struct adopt_proc *a) {
  uk_psched_t *ps = uk_psched(kd, p);
  a->seq = ps->wait_seq;
  if ((ps->wait_op == KABI_CALL || ps->wait_op == KABI_AWAIT) &&
      (ps->wait_req == 0 || kern_req_lookup(kd, ps->wait_req) >= 0)) {
    a->call = ADOPT_WAIT_RESULT;
    a->req = ps->wait_req;
    return;
  }
  /* A call parked on a kernel lock (klock.c) never started: restarted. */
  a->call = ps->wait_op == KABI_SLEEP || ps->wait_op == KABI_NS ||
                    ps->wait_op == UK_WAIT_LOCK
                ? ADOPT_RESTART
                : ADOPT_INTR;
  kd->proc[p].state = UK_PROC_RUNNING;
}

static void decide_cut(struct uk_kdata *kd, uint32_t p, struct adopt_proc *a) {
  struct uk_proc *pp = &kd->proc[p];
  uk_psched_t *ps = uk_psched(kd, p);
  uint32_t op = ps->call_op;
  a->seq = ps->call_seq;
  if (op == KABI_SEND || op == KABI_CALL) {
    a->req = req_of_call(kd, p, ps->call_seq);
    a->call = a->req == 0       ? ADOPT_RESTART
              : op == KABI_SEND ? ADOPT_ANSWER_SEND
                                : ADOPT_WAIT_RESULT;
    if (a->call == ADOPT_WAIT_RESULT) {
      pp->state = UK_PROC_WAITING;
      ps->wait_op = KABI_CALL;
      ps->wait_seq = ps->call_seq;
      ps->wait_req = a->req;
    }
    return;
  }
  if (op == KABI_ICA_CREATE && (a->req = ica_of_call(kd, p, a->seq)) != 0) {
    a->call = ADOPT_ANSWER_ICA;
    return;
  }
  a->call = op == KABI_LOOKUP || op == KABI_AWAIT || op == KABI_SLEEP ||
                    op == KABI_ICA_CREATE || op == KABI_ICA_ATTACH ||
                    op == KABI_ICA_RELEASE
                ? ADOPT_RESTART
                : ADOPT_INTR;
}

static void decide_calls(struct uk_kdata *kd, struct adopt_plan *pl) {
  for (uint32_t p = 0; p < UK_PROC_MAX; p++) {
    struct adopt_proc *a = &pl->proc[p];
    if (!a->moved)
      continue;
    if (kd->proc[p].state == UK_PROC_WAITING)
      decide_waiting(kd, p, a);
    else if (uk_psched(kd, p)->call_seq != uk_psched(kd, p)->answered_seq)
      decide_cut(kd, p, a);
    else
      a->call = ADOPT_IDLE;
  }
}

int adopt_tables(const struct uk_kdata *dead, struct uk_kdata *mine,
                 struct adopt_plan *pl) {
  memset(pl, 0, sizeof *pl);
  if (!region_ok(dead))
    return -EPROTO;
  if (!empty(mine))
    return -EBUSY;
  struct uk_kdata_hdr hdr = mine->hdr;
  struct uk_counters ctr = mine->ctr;
  struct uk_lock lock[UK_LOCK_MAX];
  memcpy(lock, mine->lock, sizeof lock);
  memcpy(mine, dead, sizeof *mine);
  mine->hdr = hdr;
  mine->ctr = ctr;
  /* The dead kernel's locks are its execution state (a kill inside a
   * call's path leaves one held): never inherited, or every call needing
   * it would wait for a release that cannot come. */
  memcpy(mine->lock, lock, sizeof lock);
  /* The buffer cache is the dead kernel's own: its dirty blocks are
   * written back from the dead region (kdisk_writeback_from), and this
   * kernel starts a cache of its own. */
  memset(&mine->bcache, 0, sizeof mine->bcache);
  decide_procs(mine, pl);
  prune_reqs(mine, pl); /* needs the dead servers' links for the queues */
  prune_icas(mine, pl);
  orphan_services(mine, pl);
  prune_ns(mine, pl);
  decide_calls(mine, pl);
  end_procs(mine, pl);
  recount(mine);
  return 0;
}
