/* Kernel calls: dispatch and one do_<call> per kabi op (MINIX rs style).
 *
 * A handler returns a status the dispatcher answers with (0 or -errno),
 * KERN_DEFER when the answer waits for an event (a request for RECEIVE, a
 * result for AWAIT/CALL), or ANSWERED when it sent an answer with a payload
 * itself.  A refused call changes nothing: every check runs before the first
 * change.
 *
 * A request's life (uk_req.state):
 *   send      -> QUEUED      in its service's request queue, holding its ICAs
 *   delivery  -> IN_SERVICE  the ICAs are the server's
 *   reply     -> ANSWERED    in the client's result queue, holding the ICAs
 *                            the server handed back
 *   delivery  -> FREE        the ICAs are the client's again
 * A server that dies turns its IN_SERVICE requests into -ECONNRESET results
 * and its QUEUED ones into -ESRCH results; a client that dies frees its
 * QUEUED and ANSWERED requests and orphans its IN_SERVICE ones (their reply
 * is dropped and the ICAs released).  Every request gets exactly one answer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kern.h"
#include "uksim/ica.h"

/* Whether kern__trace prints: its arguments (op names are formatted) cost
 * more than the rest of a call, so the hot path skips them when it does
 * not. */
static bool tracing(const struct kern *k) {
  return k->trace_left != 0;
}

/* ICAs ------------------------------------------------------------------ */

static void ica_ref(struct kern *k, uint32_t id, struct kabi_ica_ref *ref) {
  const struct uk_ica_ent *e = &k->kd->ica[KABI_ICA_INDEX(id)];
  ref->id = id;
  ref->kind = e->kind;
  ref->flags = 0;
  ref->size = e->size;
}

void kern__machine_ica(struct kern *k, uint32_t id, uint64_t size, int fd) {
  Uksim__Ctl c = UKSIM__CTL__INIT;
  Uksim__IcaHold hold = UKSIM__ICA_HOLD__INIT;
  Uksim__IcaDrop drop = UKSIM__ICA_DROP__INIT;

  if (k->msock < 0)
    return;
  if (fd >= 0) {
    hold.ica = id;
    hold.size = size;
    c.body_case = UKSIM__CTL__BODY_ICA_HOLD;
    c.ica_hold = &hold;
  } else {
    drop.ica = id;
    c.body_case = UKSIM__CTL__BODY_ICA_DROP;
    c.ica_drop = &drop;
  }
  /* The machine's reference is what lets memory outlive this kernel; if the
   * machine is gone there is nobody left to keep it for. */
  (void)ctl_post(&k->mout, &c, fd);
}

static int new_memfd(uint64_t size) {
  int fd = memfd_create("uksim-ica", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0)
    return -errno;
  if (ftruncate(fd, (off_t)size) < 0 ||
      fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
    int e = -errno;
    close(fd);
    return e;
  }
  return fd;
}

void kern__ica_drop(struct kern *k, uint32_t id) {
  int i = kern_ica_lookup(k->kd, id);
  if (i < 0)
    return;
  k->ica_bytes -= k->kd->ica[i].size;
  kern__ns_forget_ica(k, id);
  close(k->ica_fd[i]);
  k->ica_fd[i] = -1;
  kbits_zero(&k->ica_kept[i]); /* a kept mapping is of this ICA only */
  kern_ica_free(k->kd, id);
  k->kd->ctr.icas_released++;
  kern__machine_ica(k, id, 0, -1);
}

static int do_ica_create(struct kern *k, uint32_t p, kabi_msg *m) {
  struct kabi_ica_create_args a;
  uint32_t id;

  if (kabi_payload(m, &a, sizeof a) < 0)
    return -EINVAL;
  if (a.size == 0 || a.size > UK_ICA_SIZE_MAX || a.kind < KABI_ICA_CONTROL ||
      a.kind > KABI_ICA_STATE)
    return -EINVAL;
  if (kd_psched(k, p)->icas_held >= UK_PROC_ICAS_MAX)
    return -EDQUOT; /* its quota: the table is for everyone */
  if (k->ica_bytes + a.size > k->kd->hdr.budget_bytes)
    return -ENOMEM;
  int fd = new_memfd(a.size);
  if (fd < 0)
    return fd;
  if (kern_ica_alloc(k->kd, a.kind, a.size, p, &id) < 0) {
    close(fd);
    return -ENOMEM;
  }
  k->ica_fd[KABI_ICA_INDEX(id)] = fd;
  kbits_zero(&k->ica_kept[KABI_ICA_INDEX(id)]);
  k->ica_bytes += a.size;
  k->kd->ctr.icas_created++;
  k->kd->ctr.ica_bytes = k->ica_bytes;
  if (k->ica_bytes > k->kd->ctr.ica_bytes_peak)
    k->kd->ctr.ica_bytes_peak = k->ica_bytes;
  kern__machine_ica(k, id, a.size, fd);
  return kern__answer_ica(k, p, m->hdr.seq, id);
}

/* Answers call seq of p with ICA id and its descriptor. */
int kern__answer_ica(struct kern *k, uint32_t p, uint32_t seq, uint32_t id) {
  struct kabi_ica_ans ans;
  kabi_msg m;
  ica_ref(k, id, &ans.ica);
  kabi_msg_init(&m, KABI_ANS_ICA, seq, 0, &ans, sizeof ans);
  m.hdr.nfds = 1;
  m.fds[0] = k->ica_fd[KABI_ICA_INDEX(id)];
  kern__answer(k, p, &m);
  return KERN_ANSWERED;
}

static int do_ica_attach(struct kern *k, uint32_t p, kabi_msg *m) {
  struct kabi_ica_args a;
  if (kabi_payload(m, &a, sizeof a) < 0)
    return -EINVAL;
  if (kern_ica_lookup(k->kd, a.ica) < 0 || !rep_may_attach(k, p, a.ica))
    return -EPERM;
  k->kd->ctr.ica_attaches++;
  return kern__answer_ica(k, p, m->hdr.seq, a.ica);
}

static int do_ica_release(struct kern *k, uint32_t p, kabi_msg *m) {
  struct kabi_ica_args a;
  if (kabi_payload(m, &a, sizeof a) < 0)
    return -EINVAL;
  if (!kern_ica_held_by(k->kd, a.ica, UK_HOLD_PROC, p))
    return -EPERM;
  kern__ica_drop(k, a.ica);
  k->kd->ctr.ica_bytes = k->ica_bytes;
  return 0;
}

void kern__ica_release_all(struct kern *k, uint32_t p) {
  for (uint32_t i = 0; i < UK_ICA_MAX; i++) {
    const struct uk_ica_ent *e = &k->kd->ica[i];
    kbits_clear(&k->ica_kept[i], p); /* its mappings are gone with it */
    if (e->state == UK_ICA_LIVE && e->holder_kind == UK_HOLD_PROC &&
        e->holder == p)
      kern__ica_drop(k, KABI_ICA_ID(i, e->gen));
  }
  k->kd->ctr.ica_bytes = k->ica_bytes;
}

/* Checks the ICAs a process names in a send or reply. */
static int check_icas(struct kern *k, uint32_t p, uint32_t ctl, uint32_t data,
                      bool ctl_required) {
  if (ctl == KABI_ICA_NONE && ctl_required)
    return -EINVAL;
  if (ctl != KABI_ICA_NONE && !kern_ica_held_by(k->kd, ctl, UK_HOLD_PROC, p))
    return -EPERM;
  if (data != KABI_ICA_NONE && !kern_ica_held_by(k->kd, data, UK_HOLD_PROC, p))
    return -EPERM;
  if (ctl != KABI_ICA_NONE && ctl == data)
    return -EINVAL;
  return 0;
}

static void move_req_icas(struct kern *k, const struct uk_req *r, uint8_t hk,
                          uint32_t holder) {
  kern_ica_move(k->kd, r->ctl, hk, holder);
  kern_ica_move(k->kd, r->data, hk, holder);
}

/* Process p passes ICA id on (a checked call): records whether it keeps
 * its mapping, as the call's KABI_KEEP_* flag `keep` says. */
static void note_kept(struct kern *k, uint32_t p, uint32_t id, bool keep) {
  int i = kern_ica_lookup(k->kd, id);
  if (i < 0)
    return;
  if (keep)
    kbits_set(&k->ica_kept[i], p);
  else
    kbits_clear(&k->ica_kept[i], p);
}

static void note_kept_pair(struct kern *k, uint32_t p, uint32_t ctl,
                           uint32_t data, uint32_t flags) {
  note_kept(k, p, ctl, flags & KABI_KEEP_CTL);
  note_kept(k, p, data, flags & KABI_KEEP_DATA);
}

/* Fills refs/fds for the request's ICAs going to process p: a descriptor
 * for each, except an ICA p kept mapped.  Returns how many refs. */
static uint32_t pack_icas(struct kern *k, uint32_t p, const struct uk_req *r,
                          struct kabi_ica_ref *refs, kabi_msg *m) {
  uint32_t ids[2] = {r->ctl, r->data}, n = 0, nfds = 0;
  for (int i = 0; i < 2; i++) {
    int x = kern_ica_lookup(k->kd, ids[i]);
    if (x < 0)
      continue;
    ica_ref(k, ids[i], &refs[n]);
    if (kbits_has(&k->ica_kept[x], p))
      refs[n].flags = KABI_REF_MAPPED;
    else
      m->fds[nfds++] = k->ica_fd[x];
    n++;
  }
  m->hdr.nfds = nfds;
  return n;
}

/* The trace event `ev` of request ri, by process `actor` (UK_NIL: the
 * kernel). */
static void req_event(struct kern *k, const char *ev, uint32_t actor,
                      uint32_t ri, int status) {
  if (k->events == NULL)
    return;
  const struct uk_req *r = &k->kd->req[ri];
  const char *svc = r->svc != UK_NIL ? k->kd->svc[r->svc].name : NULL;
  const char *client = r->client == UK_KCLIENT ? "kernel"
                       : r->client != UK_NIL   ? kd_proc(k, r->client)->name
                                               : NULL;
  char on[40];
  struct kern_ev e = {
      .ev = ev,
      .actor = actor != UK_NIL ? kd_proc(k, actor)->name : NULL,
      .peer = actor != UK_NIL && actor == r->client ? svc : client,
      .svc = svc,
      .req = r->seqno,
      .op = svc ? kern__opname(k->kd, r->svc, r->op, on, sizeof on) : NULL,
      .status = status,
  };
  kern__event(k, &e);
}

/* A request answered by the kernel itself (the server failed or is gone). */
void kern__fail_request(struct kern *k, uint32_t ri, int status) {
  kern__trace(k, "req=%u answered %s", kern_req_id(k->kd, ri),
              status == -ECONNRESET ? "-ECONNRESET" : "-ESRCH");
  req_event(k, "error", UK_NIL, ri, status);
  kern__complete(k, ri, status);
}

/* Delivery ---------------------------------------------------------------- */

static bool waits_for_request(struct kern *k, uint32_t p) {
  uint16_t op = kd_psched(k, p)->wait_op;
  return kd_proc(k, p)->state == UK_PROC_WAITING &&
         (op == KABI_RECEIVE || op == KABI_REPLY_RECEIVE);
}

static bool waits_for_result(struct kern *k, uint32_t p) {
  uint16_t op = kd_psched(k, p)->wait_op;
  return kd_proc(k, p)->state == UK_PROC_WAITING &&
         (op == KABI_AWAIT || op == KABI_CALL);
}

/* Request ri, just taken from service s's queue, goes to its server sp:
 * the tables, then the answer (flagged KABI_ANS_MORE when another
 * request follows it in the same answer). */
static void hand_request(struct kern *k, uint32_t s, uint32_t sp, uint32_t ri,
                         bool more) {
  struct uk_svc *sv = &k->kd->svc[s];
  struct uk_req *r = &k->kd->req[ri];
  r->state = UK_REQ_IN_SERVICE;
  r->recv_ns = kern__now_ns();
  sv->held++;
  move_req_icas(k, r, UK_HOLD_PROC, sp);

  struct kabi_request_msg rq = {.req = kern_req_id(k->kd, ri), .op = r->op};
  kabi_msg m;
  rq.client_pid = r->client != UK_NIL && r->client != UK_KCLIENT
                      ? kd_proc(k, r->client)->pid
                      : 0; /* the kernel's mount driver is client 0 */
  kabi_msg_init(&m, KABI_ANS_REQUEST, kd_psched(k, sp)->wait_seq, 0, NULL, 0);
  rq.nica = pack_icas(k, sp, r, rq.ica, &m);
  memcpy(m.payload, &rq, sizeof rq);
  m.hdr.len = sizeof rq;
  m.hdr.flags = more ? KABI_ANS_MORE : 0;
  char on[40];
  req_event(k, "receive", sp, ri, 0);
  if (tracing(k))
    kern__trace(k, "%s receives %s req=%u #%llu", kd_proc(k, sp)->name,
                kern__opname(k->kd, s, r->op, on, sizeof on), rq.req,
                (unsigned long long)r->seqno);
  kern__answer(k, sp, &m);
}

static bool next_first(struct kern *k, uint32_t p);

/* How many queued requests of service s server sp takes at once: up to
 * KABI_BATCH_MAX when it asked for many (REPLY_MANY_RECEIVE) and serves
 * freely (the conditions of next_first), else one. */
static uint32_t batch_of(struct kern *k, uint32_t s, uint32_t sp) {
  uint32_t n = k->kd->svc[s].q_len;
  if (!k->proc[sp].batch || !next_first(k, sp))
    return 1;
  return n < KABI_BATCH_MAX ? n : KABI_BATCH_MAX;
}

/* Hands the head of service s's request queue to its server, if the server
 * is waiting in receive() (the first requests of the queue, a batch, when
 * it asked for many). */
void kern__deliver_request(struct kern *k, uint32_t s) {
  struct uk_svc *sv = &k->kd->svc[s];
  if (sv->proc == UK_NIL || sv->q_len == 0)
    return;
  if (sv->phase != UK_PH_SERVING && sv->phase != UK_PH_REQUESTED &&
      sv->phase != UK_PH_RESTARTING)
    return; /* a replacement holds deliveries back */
  uint32_t sp = sv->proc;
  if (!waits_for_request(k, sp))
    return;
  uint32_t n = batch_of(k, s, sp);
  kd_proc(k, sp)->state = UK_PROC_RUNNING;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t ri = kern_q_pop(k->kd, &sv->q_head, &sv->q_tail, &sv->q_len);
    hand_request(k, s, sp, ri, i + 1 < n);
  }
  kern__failover_settle(k); /* the failover's backlog may be delivered now */
}

/* The result a waiting client wants, or UK_NIL.  It stays in the result
 * queue: see kern__deliver_result. */
static uint32_t next_result(struct kern *k, uint32_t c) {
  uk_psched_t *pp = kd_psched(k, c);
  if (pp->wait_req == 0)
    return pp->res_len > 0 ? pp->res_head : UK_NIL;
  int ri = kern_req_lookup(k->kd, pp->wait_req);
  if (ri < 0 || k->kd->req[ri].state != UK_REQ_ANSWERED)
    return UK_NIL;
  return (uint32_t)ri;
}

/* The tables once result ri has been sent to c: its ICAs are c's, the
 * request is gone, c runs. */
static void result_taken(struct kern *k, uint32_t c, uint32_t ri) {
  uk_psched_t *pp = kd_psched(k, c);
  struct uk_req *r = &k->kd->req[ri];
  kern_q_remove(k->kd, &pp->res_head, &pp->res_tail, &pp->res_len, ri);
  move_req_icas(k, r, UK_HOLD_PROC, c);
  kd_proc(k, c)->state = UK_PROC_RUNNING;
  pp->outstanding--;
  k->kd->ctr.results++;
  req_event(k, "result", c, ri, r->status);
  kern_req_free(k->kd, ri);
}

/* The answer goes out before the tables change.  A kernel stopped (a
 * kernel update's SIGSTOP) or killed anywhere before the send leaves the
 * result queued and its client waiting for it, so its successor delivers
 * it (adopt.h: ADOPT_WAIT_RESULT); stopped after the send, the same, and
 * the library drops the second answer (lib/conn.c).  The other order (the
 * request freed, then the send) left, when the kernel stopped between the
 * two, a call with no request and no answer, which a successor restarts:
 * the server's side effect done twice (bench kupdate's counter, about one
 * run in a dozen). */
void kern__deliver_result(struct kern *k, uint32_t c) {
  /* Not connected yet: a takeover restarts services (failing what their
   * dead server held) before it connects the processes it moves; the
   * result stays queued and the takeover delivers it (kadopt.c). */
  if (!waits_for_result(k, c) || k->proc[c].sock < 0)
    return;
  uint32_t ri = next_result(k, c);
  if (ri == UK_NIL)
    return;
  struct uk_req *r = &k->kd->req[ri];
  struct kabi_result_msg rm = {.req = kern_req_id(k->kd, ri),
                               .status = r->status,
                               .tag = r->tag,
                               .op = r->op};
  kabi_msg m;
  kabi_msg_init(&m, KABI_ANS_RESULT, kd_psched(k, c)->wait_seq, 0, NULL, 0);
  rm.nica = pack_icas(k, c, r, rm.ica, &m);
  memcpy(m.payload, &rm, sizeof rm);
  m.hdr.len = sizeof rm;
  kern__stop_point(k, KSTOP_RESULT);
  kern__answer(k, c, &m);
  result_taken(k, c, ri);
}

/* Puts request ri, answered with status, into its client's result queue, or
 * drops it (releasing its ICAs) when the client is gone. */
void kern__complete(struct kern *k, uint32_t ri, int32_t status) {
  struct uk_req *r = &k->kd->req[ri];
  r->status = status;
  if (status < 0)
    k->kd->ctr.errors++;
  if (r->svc != UK_NIL) {
    struct uk_svc *sv = &k->kd->svc[r->svc];
    kern_svc_record(sv, r->op, kern__now_ns() - r->sent_ns, status < 0);
    sv->errors += status < 0;
  }
  if (r->client == UK_KCLIENT) {
    req_event(k, "result", UK_NIL, ri, status);
    move_req_icas(k, r, UK_HOLD_REQUEST, ri);
    kern__mnt_done(k, ri); /* the mount driver's own request */
    return;
  }
  if (r->client == UK_NIL) {
    kern__ica_drop(k, r->ctl);
    kern__ica_drop(k, r->data);
    kern_req_free(k->kd, ri);
    return;
  }
  uk_psched_t *cp = kd_psched(k, r->client);
  move_req_icas(k, r, UK_HOLD_REQUEST, ri);
  r->state = UK_REQ_ANSWERED;
  kern_q_push(k->kd, &cp->res_head, &cp->res_tail, &cp->res_len, ri);
  kern__deliver_result(k, r->client);
}

/* Calls ------------------------------------------------------------------- */

static int do_lookup(struct kern *k, uint32_t p, kabi_msg *m) {
  struct kabi_lookup_args a;
  if (kabi_payload(m, &a, sizeof a) < 0 ||
      memchr(a.name, '\0', sizeof a.name) == NULL)
    return -EINVAL;
  int s = kern_svc_lookup(k->kd, a.name);
  if (s < 0)
    return -ESRCH;
  struct kabi_lookup_ans ans = {.svc = (uint32_t)s + 1,
                                .version = k->kd->svc[s].version};
  kabi_msg_init(m, KABI_ANS_LOOKUP, m->hdr.seq, 0, &ans, sizeof ans);
  kern__answer(k, p, m);
  return KERN_ANSWERED;
}

/* Checks and queues a request; *rid gets its id.  Returns the service
 * index, or -errno with nothing changed. */
static int enqueue(struct kern *k, uint32_t p, const struct kabi_send_args *a,
                   uint32_t flags, uint32_t *rid) {
  int s = kern_svc_by_id(k->kd, a->svc);
  if (s < 0 || k->kd->svc[s].state != UK_SVC_UP)
    return -ESRCH;
  int r = check_icas(k, p, a->ctl, a->data, true);
  if (r < 0)
    return r;
  struct uk_svc *sv = &k->kd->svc[s];
  if (sv->q_len >= UK_QUEUE_MAX)
    return -EBUSY;
  if (kd_psched(k, p)->outstanding >= UK_PROC_REQS_MAX ||
      kd_psched(k, p)->res_len >= UK_PROC_RESULTS_MAX)
    return -EDQUOT; /* its quota: collect results before sending more */
  int ri = kern_req_alloc(k->kd, rid);
  if (ri < 0)
    return -ENOSPC;
  struct uk_req *q = &k->kd->req[ri];
  q->client = p;
  q->client_seq = kd_psched(k, p)->call_seq;
  q->svc = (uint32_t)s;
  q->op = a->op;
  q->ctl = a->ctl;
  q->data = a->data;
  q->tag = a->tag;
  q->seqno = ++k->req_seqno;
  q->sent_ns = kern__now_ns();
  note_kept_pair(k, p, a->ctl, a->data, flags);
  move_req_icas(k, q, UK_HOLD_REQUEST, (uint32_t)ri);
  kern_q_push(k->kd, &sv->q_head, &sv->q_tail, &sv->q_len, (uint32_t)ri);
  kd_psched(k, p)->outstanding++;
  sv->requests++;
  k->kd->ctr.sends++;
  char on[40];
  req_event(k, "send", p, (uint32_t)ri, 0);
  if (tracing(k))
    kern__trace(k, "%s sends %s req=%u #%llu ctl=%#x data=%#x",
                kd_proc(k, p)->name,
                kern__opname(k->kd, (uint32_t)s, a->op, on, sizeof on), *rid,
                (unsigned long long)q->seqno, a->ctl, a->data);
  return s;
}

/* Queues a request of the kernel's own (the mount driver #M, kmnt.c) to
 * service index s: ctl is held by the kernel (UK_HOLD_KERNEL), data (or
 * none) by a process whose call is waiting on it.  Its result comes back to
 * kern__mnt_done, never to a result queue. */
int kern__enqueue_kernel(struct kern *k, uint32_t s, uint32_t op, uint32_t ctl,
                         uint32_t data, uint64_t tag) {
  struct uk_svc *sv = &k->kd->svc[s];
  uint32_t rid;
  if (s >= UK_SVC_MAX || sv->state != UK_SVC_UP)
    return -EIO;
  if (sv->q_len >= UK_QUEUE_MAX)
    return -EAGAIN;
  int ri = kern_req_alloc(k->kd, &rid);
  if (ri < 0)
    return -EAGAIN;
  struct uk_req *q = &k->kd->req[ri];
  q->client = UK_KCLIENT;
  q->svc = s;
  q->op = op;
  q->ctl = ctl;
  q->data = data;
  q->tag = tag;
  q->seqno = ++k->req_seqno;
  q->sent_ns = kern__now_ns();
  move_req_icas(k, q, UK_HOLD_REQUEST, (uint32_t)ri);
  kern_q_push(k->kd, &sv->q_head, &sv->q_tail, &sv->q_len, (uint32_t)ri);
  sv->requests++;
  k->kd->ctr.sends++;
  req_event(k, "send", UK_NIL, (uint32_t)ri, 0);
  kern__deliver_request(k, s);
  return 0;
}

/* An ICA the kernel itself holds (UK_HOLD_KERNEL), mapped into *base. */
int kern__ica_new(struct kern *k, uint32_t kind, uint64_t size, uint32_t *id,
                  void **base) {
  if (k->ica_bytes + size > k->kd->hdr.budget_bytes)
    return -ENOMEM;
  int fd = new_memfd(size);
  if (fd < 0)
    return fd;
  void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED || kern__ica_keep(k, kind, size, fd, id) < 0) {
    if (m != MAP_FAILED)
      munmap(m, size);
    close(fd);
    return -ENOMEM;
  }
  *base = m;
  return 0;
}

int kern__ica_keep(struct kern *k, uint32_t kind, uint64_t size, int fd,
                   uint32_t *id) {
  if (kern_ica_alloc(k->kd, kind, size, UK_NIL, id) < 0)
    return -ENOMEM;
  kern_ica_move(k->kd, *id, UK_HOLD_KERNEL, 0);
  k->ica_fd[KABI_ICA_INDEX(*id)] = fd;
  kbits_zero(&k->ica_kept[KABI_ICA_INDEX(*id)]);
  k->ica_bytes += size;
  k->kd->ctr.icas_created++;
  k->kd->ctr.ica_bytes = k->ica_bytes;
  kern__machine_ica(k, *id, size, fd);
  return 0;
}

/* Parses a send or call and queues its request. */
static int enqueue_msg(struct kern *k, uint32_t p, const kabi_msg *m,
                       uint32_t *rid) {
  struct kabi_send_args a;
  if (kabi_payload(m, &a, sizeof a) < 0)
    return -EINVAL;
  return enqueue(k, p, &a, m->hdr.flags, rid);
}

static int do_send(struct kern *k, uint32_t p, kabi_msg *m) {
  uint32_t rid;
  int s = enqueue_msg(k, p, m, &rid);
  if (s < 0)
    return s;
  struct kabi_send_ans ans = {.req = rid};
  kabi_msg_init(m, KABI_ANS_SEND, m->hdr.seq, 0, &ans, sizeof ans);
  kern__answer(k, p, m);
  kern__deliver_request(k, (uint32_t)s);
  return KERN_ANSWERED;
}

static int wait_result(struct kern *k, uint32_t p, uint16_t op, uint32_t seq,
                       uint32_t rid) {
  kd_proc(k, p)->state = UK_PROC_WAITING;
  kd_psched(k, p)->wait_op = op;
  kd_psched(k, p)->wait_seq = seq;
  kd_psched(k, p)->wait_req = rid;
  kern__deliver_result(k, p);
  return KERN_DEFER;
}

static int do_call(struct kern *k, uint32_t p, kabi_msg *m) {
  uint32_t rid;
  int s = enqueue_msg(k, p, m, &rid);
  if (s < 0)
    return s;
  wait_result(k, p, KABI_CALL, m->hdr.seq, rid);
  kern__deliver_request(k, (uint32_t)s);
  return KERN_DEFER;
}

static int do_await(struct kern *k, uint32_t p, kabi_msg *m) {
  struct kabi_await_args a;
  if (kabi_payload(m, &a, sizeof a) < 0)
    return -EINVAL;
  if (a.req != 0) {
    int ri = kern_req_lookup(k->kd, a.req);
    if (ri < 0 || k->kd->req[ri].client != p)
      return -ENOENT;
  } else if (kd_psched(k, p)->outstanding == 0) {
    return -ENOENT; /* nothing will ever come: don't hang the caller */
  }
  return wait_result(k, p, KABI_AWAIT, m->hdr.seq, a.req);
}

static int do_register(struct kern *k, uint32_t p, kabi_msg *m) {
  struct kabi_register_args a;
  if (kabi_payload(m, &a, sizeof a) < 0 ||
      memchr(a.name, '\0', sizeof a.name) == NULL ||
      memchr(a.opnames, '\0', sizeof a.opnames) == NULL || a.name[0] == 0)
    return -EINVAL;
  if (kd_proc(k, p)->svc != UK_NIL)
    return -EALREADY; /* one service per server process */
  uint32_t how = KABI_REG_FRESH;
  int s = kern_svc_lookup(k->kd, a.name);
  int r = s >= 0 ? rep_register(k, p, (uint32_t)s, a.version, &how) : 1;
  if (r < 0)
    return r;
  if (r == 1 && s >= 0 && k->kd->svc[s].state == UK_SVC_UP)
    return -EEXIST;
  if (r == 1 && s >= 0)
    how = KABI_REG_RESTARTING; /* a server started by hand for a down one */
  if (s < 0 && (s = kern_svc_add(k->kd, a.name)) < 0)
    return -ENOSPC;
  struct uk_svc *sv = &k->kd->svc[s];
  if (r == 1) {
    sv->state = UK_SVC_UP;
    sv->proc = p;
    sv->version = a.version;
    kd_proc(k, p)->kind = UK_PROC_SERVER;
    kd_proc(k, p)->svc = (uint32_t)s;
    memcpy(sv->opnames, a.opnames, sizeof a.opnames);
  }
  if (sv->proc == p)
    rep_adopt(k, p, (uint32_t)s);
  static const char *hows[] = {"fresh", "replacing", "restarting"};
  kern__trace(k, "%s registers %s v%u (%s)", kd_proc(k, p)->name, a.name,
              a.version, hows[how]);
  char text[32];
  snprintf(text, sizeof text, "v%u %s", a.version, hows[how]);
  kern__event(k, &(struct kern_ev){.ev = "register",
                                   .actor = kd_proc(k, p)->name,
                                   .svc = a.name,
                                   .text = text});
  struct kabi_register_ans ans = {.how = how, .svc = (uint32_t)s + 1};
  kabi_msg_init(m, KABI_ANS_REGISTER, m->hdr.seq, 0, &ans, sizeof ans);
  kern__answer(k, p, m);
  kern__spawn_answer(k, p, 0, NULL);
  return KERN_ANSWERED;
}

/* Server p waits for a request (op RECEIVE or REPLY_RECEIVE, its
 * wait_op for every reader of the tables), for up to KABI_BATCH_MAX of
 * them when batch (REPLY_MANY_RECEIVE). */
static int do_receive(struct kern *k, uint32_t p, uint16_t op, uint32_t seq,
                      bool batch) {
  uint32_t s = kd_proc(k, p)->svc;
  if (s == UK_NIL)
    return -EPERM; /* not a registered server */
  k->proc[p].batch = batch;
  kd_proc(k, p)->state = UK_PROC_WAITING;
  kd_psched(k, p)->wait_op = op;
  kd_psched(k, p)->wait_seq = seq;
  if (!rep_at_receive(k, p, s))
    kern__deliver_request(k, s);
  return KERN_DEFER;
}

/* The index of request id, delivered to server p and not yet replied, or
 * -errno.  A successor's first reply or keep commits its replacement. */
static int held_request(struct kern *k, uint32_t p, uint32_t id) {
  int ri = kern_req_lookup(k->kd, id);
  if (ri < 0)
    return -ENOENT;
  struct uk_req *r = &k->kd->req[ri];
  if (r->state == UK_REQ_IN_SERVICE && kd_proc(k, p)->svc == r->svc)
    rep_before_reply(k, p, r->svc);
  if (r->state != UK_REQ_IN_SERVICE || k->kd->svc[r->svc].proc != p)
    return -EPERM;
  return ri;
}

/* The checks of reply a by server p: the request's index, or -errno with
 * nothing changed (but a successor's commit, see held_request). */
static int reply_check(struct kern *k, uint32_t p,
                       const struct kabi_reply_args *a) {
  int ri = held_request(k, p, a->req);
  if (ri < 0)
    return ri;
  int e = check_icas(k, p, a->ctl, a->data, false);
  return e < 0 ? e : ri;
}

/* The bookkeeping of checked reply a to request ri, whose result
 * kern__complete then queues with a->status; flags: its KABI_KEEP_*. */
static void reply_take(struct kern *k, uint32_t p, uint32_t ri,
                       const struct kabi_reply_args *a, uint32_t flags) {
  struct uk_req *r = &k->kd->req[ri];
  r->kept = 0;
  k->kd->svc[r->svc].held--;
  k->kd->svc[r->svc].replies++;
  r->ctl = a->ctl;
  r->data = a->data;
  note_kept_pair(k, p, a->ctl, a->data, flags);
  req_event(k, "reply", p, ri, a->status);
  kern__trace(k, "%s replies req=%u status=%d", kd_proc(k, p)->name, a->req,
              a->status);
}

/* The checks and bookkeeping of a reply: request index (or -errno, with
 * nothing changed) whose result kern__complete then queues with
 * *status. */
static int take_reply(struct kern *k, uint32_t p, kabi_msg *m,
                      int32_t *status) {
  struct kabi_reply_args a;
  if (kabi_payload(m, &a, sizeof a) < 0)
    return -EINVAL;
  int ri = reply_check(k, p, &a);
  if (ri < 0)
    return ri;
  reply_take(k, p, (uint32_t)ri, &a, m->hdr.flags);
  *status = a.status;
  return ri;
}

static int do_reply(struct kern *k, uint32_t p, kabi_msg *m) {
  int32_t status;
  int ri = take_reply(k, p, m, &status);
  if (ri < 0)
    return ri;
  kern__complete(k, (uint32_t)ri, status);
  kern__failover_settle(k); /* the failover's backlog may be served now */
  return 0;
}

/* Whether server p, serving its service with no replacement under way,
 * may be handed its next request before the result of the one it
 * replied to goes out (free-running only: a lock-step run keeps its
 * trace). */
static bool next_first(struct kern *k, uint32_t p) {
  uint32_t s = kd_proc(k, p)->svc;
  return !k->lockstep && s != UK_NIL && !k->proc[p].preparing &&
         k->kd->svc[s].proc == p && k->kd->svc[s].phase == UK_PH_SERVING;
}

/* Reply, then receive.  Free-running, the next request goes out before
 * the result: sending the result wakes its client, which the host's
 * scheduler tends to run at once on the kernel's cpu (a task that slept
 * preempts one that ran), and the server would wait for its next request
 * until the client blocks again; in a failover's backlog that wait was
 * half of each request's time (README "uksim bench failover").  The
 * result is queued in the same call either way: nothing else runs
 * between. */
static int do_reply_receive(struct kern *k, uint32_t p, kabi_msg *m) {
  int32_t status;
  int ri = take_reply(k, p, m, &status);
  if (ri < 0)
    return ri;
  bool first = next_first(k, p);
  if (!first)
    kern__complete(k, (uint32_t)ri, status);
  int r = do_receive(k, p, KABI_REPLY_RECEIVE, m->hdr.seq, false);
  if (first)
    kern__complete(k, (uint32_t)ri, status);
  kern__failover_settle(k);
  return r;
}

/* Whether ICA id (not KABI_ICA_NONE) is named by a reply before i. */
static bool named_before(const struct kabi_reply_many_args *a, uint32_t i,
                         uint32_t id) {
  for (uint32_t j = 0; j < i && id != KABI_ICA_NONE; j++)
    if (a->r[j].ctl == id || a->r[j].data == id)
      return true;
  return false;
}

/* The checks of a batch of replies, all before any is taken: each held
 * by p and named once, each ICA held by p and handed back once.  ri[i]
 * gets reply i's request index; 0 or -errno. */
static int check_replies(struct kern *k, uint32_t p,
                         const struct kabi_reply_many_args *a, int *ri) {
  if (a->n > KABI_BATCH_MAX)
    return -EINVAL;
  for (uint32_t i = 0; i < a->n; i++) {
    if ((ri[i] = reply_check(k, p, &a->r[i])) < 0)
      return ri[i];
    for (uint32_t j = 0; j < i; j++)
      if (ri[j] == ri[i])
        return -EINVAL; /* one request, two replies */
    if (named_before(a, i, a->r[i].ctl) || named_before(a, i, a->r[i].data))
      return -EINVAL; /* one ICA handed back twice */
  }
  return 0;
}

/* Replies to a batch, then receives one: the results are queued together,
 * after the checks of all (kabi.h, reply_many_args), and, free-running,
 * after the next batch went out (see do_reply_receive). */
static int do_reply_many_receive(struct kern *k, uint32_t p, kabi_msg *m) {
  struct kabi_reply_many_args a;
  int ri[KABI_BATCH_MAX];
  if (kabi_payload(m, &a, sizeof a) < 0)
    return -EINVAL;
  int e = check_replies(k, p, &a, ri);
  if (e < 0)
    return e;
  for (uint32_t i = 0; i < a.n; i++)
    reply_take(k, p, (uint32_t)ri[i], &a.r[i], (a.keep >> (2 * i)) & 3u);
  bool first = next_first(k, p);
  for (uint32_t i = 0; !first && i < a.n; i++)
    kern__complete(k, (uint32_t)ri[i], a.r[i].status);
  int r = do_receive(k, p, KABI_REPLY_RECEIVE, m->hdr.seq, true);
  for (uint32_t i = 0; first && i < a.n; i++)
    kern__complete(k, (uint32_t)ri[i], a.r[i].status);
  kern__failover_settle(k);
  return r;
}

static int do_panic(struct kern *k, uint32_t p, kabi_msg *m) {
  struct kabi_panic_args a;
  if (kabi_payload(m, &a, sizeof a) < 0)
    return -EINVAL;
  a.reason[sizeof a.reason - 1] = '\0';
  kern__trace(k, "%s panics: %s", kd_proc(k, p)->name, a.reason);
  rep_panic(k, p, a.reason);
  return KERN_DEFER; /* it will not run again */
}

static int do_state_register(struct kern *k, uint32_t p, kabi_msg *m) {
  struct kabi_ica_args a;
  uint32_t s = kd_proc(k, p)->svc;
  if (kabi_payload(m, &a, sizeof a) < 0)
    return -EINVAL;
  if (s == UK_NIL)
    return -EPERM;
  if (!kern_ica_held_by(k->kd, a.ica, UK_HOLD_PROC, p))
    return -EPERM;
  return rep_state_register(k, p, s, a.ica);
}

static int do_state_get(struct kern *k, uint32_t p, kabi_msg *m) {
  uint32_t s = kd_proc(k, p)->svc;
  if (s == UK_NIL)
    return -EPERM;
  return rep_state_get(k, p, s, m->hdr.seq);
}

static int do_keep(struct kern *k, uint32_t p, kabi_msg *m) {
  struct kabi_keep_args a;
  if (kabi_payload(m, &a, sizeof a) < 0)
    return -EINVAL;
  int ri = held_request(k, p, a.req);
  if (ri < 0)
    return ri;
  k->kd->req[ri].kept = 1;
  return 0;
}

static void on_sleep_over(struct kern *k, struct ktimer *t) {
  uint32_t p = (uint32_t)(uintptr_t)t->arg;
  if (kd_proc(k, p)->state != UK_PROC_WAITING ||
      kd_psched(k, p)->wait_op != KABI_SLEEP)
    return;
  kd_proc(k, p)->state = UK_PROC_RUNNING;
  kern__answer_status(k, p, kd_psched(k, p)->wait_seq, 0);
}

static int do_sleep(struct kern *k, uint32_t p, kabi_msg *m) {
  struct kabi_sleep_args a;
  if (kabi_payload(m, &a, sizeof a) < 0 || a.ns > KABI_SLEEP_MAX_NS)
    return -EINVAL;
  kd_proc(k, p)->state = UK_PROC_WAITING;
  kd_psched(k, p)->wait_op = KABI_SLEEP;
  kd_psched(k, p)->wait_seq = m->hdr.seq;
  kern__timer_start(k, &k->sleep_timer[p], a.ns, 0);
  return KERN_DEFER;
}

/* Sleep timers, one per process slot, set up once at boot. */
void kern__sleep_init(struct kern *k) {
  for (uint32_t p = 0; p < UK_PROC_MAX; p++)
    kern__timer_init(k, &k->sleep_timer[p], on_sleep_over,
                     (void *)(uintptr_t)p);
}

/* For the trace (--trace) of refused calls. */
static const char *call_name(uint32_t op) {
  static const char *const names[KABI_OP_MAX] = {
      [KABI_ICA_CREATE] = "ica_create",
      [KABI_ICA_RELEASE] = "ica_release",
      [KABI_LOOKUP] = "lookup",
      [KABI_SEND] = "send",
      [KABI_AWAIT] = "await",
      [KABI_CALL] = "call",
      [KABI_REGISTER] = "register",
      [KABI_RECEIVE] = "receive",
      [KABI_REPLY] = "reply",
      [KABI_REPLY_RECEIVE] = "reply_receive",
      [KABI_PANIC] = "panic",
      [KABI_STATE_REGISTER] = "state_register",
      [KABI_STATE_GET] = "state_get",
      [KABI_ICA_ATTACH] = "ica_attach",
      [KABI_KEEP] = "keep",
      [KABI_SLEEP] = "sleep",
      [KABI_NS] = "ns",
      [KABI_REPLAY_DONE] = "replay_done",
      [KABI_REPLY_MANY_RECEIVE] = "reply_many_receive"};
  return op < KABI_OP_MAX && names[op] ? names[op] : "unknown call";
}

static int call(struct kern *k, uint32_t p, kabi_msg *m) {
  switch (m->hdr.op) {
  case KABI_ICA_CREATE:
    return do_ica_create(k, p, m);
  case KABI_ICA_RELEASE:
    return do_ica_release(k, p, m);
  case KABI_LOOKUP:
    return do_lookup(k, p, m);
  case KABI_SEND:
    return do_send(k, p, m);
  case KABI_AWAIT:
    return do_await(k, p, m);
  case KABI_CALL:
    return do_call(k, p, m);
  case KABI_REGISTER:
    return do_register(k, p, m);
  case KABI_RECEIVE:
    return do_receive(k, p, KABI_RECEIVE, m->hdr.seq, false);
  case KABI_REPLY:
    return do_reply(k, p, m);
  case KABI_REPLY_RECEIVE:
    return do_reply_receive(k, p, m);
  case KABI_REPLY_MANY_RECEIVE:
    return do_reply_many_receive(k, p, m);
  case KABI_PANIC:
    return do_panic(k, p, m);
  case KABI_STATE_REGISTER:
    return do_state_register(k, p, m);
  case KABI_STATE_GET:
    return do_state_get(k, p, m);
  case KABI_ICA_ATTACH:
    return do_ica_attach(k, p, m);
  case KABI_KEEP:
    return do_keep(k, p, m);
  case KABI_SLEEP:
    return do_sleep(k, p, m);
  case KABI_NS:
    return kern__do_ns(k, p, m);
  default:
    return -ENOSYS;
  }
}

/* Answers call m of p with r, unless it was deferred or answered. */
static void call_done(struct kern *k, uint32_t p, const kabi_msg *m, int r) {
  struct uk_proc *pp = kd_proc(k, p);
  if (r == KERN_DEFER || r == KERN_ANSWERED)
    return;
  if (r < 0) {
    pp->errors++;
    k->kd->ctr.bad_calls++;
    kern__trace(k, "%s's %s refused: %s", pp->name, call_name(m->hdr.op),
                strerror(-r));
  }
  kern__answer_status(k, p, m->hdr.seq, r);
}

/* The call inside its lock's path (klock.c). */
void kern__run_call(struct kern *k, uint32_t p, kabi_msg *m) {
  int l = kern__lock_of_call(m->hdr.op);
  if (l >= 0)
    kern__lock_take(k, l, p);
  int r = call(k, p, m);
  if (l >= 0)
    kern__lock_drop(k, l);
  call_done(k, p, m, r);
}

void kern__dispatch(struct kern *k, uint32_t p, kabi_msg *m) {
  struct uk_proc *pp = kd_proc(k, p);

  pp->calls++;
  k->kd->ctr.calls++;
  k->proc[p].last_call_ns = kern__now_ns();
#ifdef UK_KDATA_V2
  kd_psched(k, p)->last_call_ns = k->proc[p].last_call_ns; /* added in v2 */
#endif
  if (m->hdr.nfds > 0) {
    kabi_msg_close_fds(m); /* processes name ICAs by id, never by fd */
    call_done(k, p, m, -EINVAL);
  } else if (kern__replay_call(k, p, m)) {
    /* the replay protocol's (kernel update method B, kreplay.c) */
  } else if (pp->state == UK_PROC_WAITING) {
    /* one call at a time: the deferred one stays */
    call_done(k, p, m, -EINPROGRESS);
  } else if (kern__retire_refuses(k, p, m->hdr.op)) {
    call_done(k, p, m, -EXDEV); /* services moved to the new kernel */
  } else {
    kd_psched(k, p)->call_seq = m->hdr.seq; /* a takeover finds the call */
    kd_psched(k, p)->call_op = m->hdr.op;
    if (!kern__lock_park(k, p, m))
      kern__run_call(k, p, m);
  }
}

/* Process exit --------------------------------------------------------------
 */

/* Service s has no server any more: what it held fails, what is queued is
 * refused, ICAs parked for a successor are freed (the state ICA stays for a
 * server started by hand). */
void kern__server_down(struct kern *k, uint32_t s) {
  struct uk_svc *sv = &k->kd->svc[s];
  sv->state = UK_SVC_DOWN;
  sv->proc = UK_NIL;
  sv->held = 0;
  kern__trace(k, "service %s down", sv->name);
  for (uint32_t i = 0; i < UK_ICA_MAX; i++) {
    const struct uk_ica_ent *e = &k->kd->ica[i];
    uint32_t id = KABI_ICA_ID(i, e->gen);
    if (e->state == UK_ICA_LIVE && e->holder_kind == UK_HOLD_SVC &&
        e->holder == s && id != sv->state_ica)
      kern__ica_drop(k, id);
  }
  for (uint32_t i = 0; i < UK_REQ_MAX; i++) {
    struct uk_req *r = &k->kd->req[i];
    if (r->state == UK_REQ_IN_SERVICE && r->svc == s) {
      /* The ICAs it held go back to the client with the error. */
      kern__fail_request(k, i, -ECONNRESET);
    }
  }
  uint32_t ri;
  while ((ri = kern_q_pop(k->kd, &sv->q_head, &sv->q_tail, &sv->q_len)) !=
         UK_NIL)
    kern__fail_request(k, ri, -ESRCH);
}

/* Client p is gone: nobody will collect its results. */
static void client_gone(struct kern *k, uint32_t p) {
  for (uint32_t i = 0; i < UK_REQ_MAX; i++) {
    struct uk_req *r = &k->kd->req[i];
    if (r->state == UK_REQ_FREE || r->client != p)
      continue;
    if (r->state == UK_REQ_IN_SERVICE) {
      r->client = UK_NIL; /* the server's reply will be dropped */
      continue;
    }
    if (r->state == UK_REQ_QUEUED) {
      struct uk_svc *sv = &k->kd->svc[r->svc];
      kern_q_remove(k->kd, &sv->q_head, &sv->q_tail, &sv->q_len, i);
    }
    kern__ica_drop(k, r->ctl);
    kern__ica_drop(k, r->data);
    kern_req_free(k->kd, i);
  }
  uk_psched_t *pp = kd_psched(k, p);
  pp->res_head = pp->res_tail = UK_NIL;
  pp->res_len = 0;
  pp->outstanding = 0;
}

void kern__cleanup_proc(struct kern *k, uint32_t p) {
  struct uk_proc *pp = kd_proc(k, p);
  rep_proc_gone(k, p); /* a successor that never took over */
  uint32_t s = pp->svc;
  if (s != UK_NIL && k->kd->svc[s].proc == p && !rep_server_failed(k, p, s))
    kern__server_down(k, s);
  pp->svc = UK_NIL;
  client_gone(k, p);
  kern__lock_forget(k, p);
  kern__ns_exit(k, p);
  kern__ica_release_all(k, p);
}
