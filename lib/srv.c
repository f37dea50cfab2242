/* libuksim for OS servers (see uksim/server.h). */
#include "uksim/server.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "conn.h"
#include "fault.h"
#include "journal_int.h"
#include "lock.h"

/* How this process registered (enum kabi_reg_how), and whether a successor
 * has made its first call that may commit: the hand-off fault point of a
 * new server sits just before that call.  These and the replace hook are
 * the process's, read and written under the library's lock (lock.c). */
static int reg_how = -1;
static bool took_over;

int srv_init(void) {
  uk__fault_init();
  return uk__conn_init();
}

/* A successor's first receive, reply or keep commits the replacement. */
static void before_commit(void) {
  uk__lock();
  bool first = reg_how == KABI_REG_REPLACING && !took_over;
  took_over |= first;
  if (first)
    uk__fault_at(UK_FAULT_HANDOFF);
  uk__unlock();
}

int srv_register(const char *name, uint32_t version, const char *opnames,
                 int *how) {
  struct kabi_register_args a;
  struct kabi_register_ans ans;
  kabi_msg m;

  uk__fault_init();
  uk__fault_at(UK_FAULT_REGISTER);
  memset(&a, 0, sizeof a);
  if (strlen(name) >= sizeof a.name ||
      (opnames && strlen(opnames) >= sizeof a.opnames))
    return -ENAMETOOLONG;
  strcpy(a.name, name);
  if (opnames)
    strcpy(a.opnames, opnames);
  a.version = version;
  kabi_msg_init(&m, KABI_REGISTER, 0, 0, &a, sizeof a);
  int r = uk__call(&m);
  kabi_msg_close_fds(&m);
  if (r < 0)
    return r;
  r = kabi_payload(&m, &ans, sizeof ans);
  if (r == 0) {
    uk__lock();
    reg_how = (int)ans.how;
    /* A replacing or restarting server registers again in the next
     * process, whose own journal is empty: one entry either way. */
    uk_journal_register(uk__journal(), name, version, opnames, 0);
    uk__unlock();
  }
  if (r == 0 && how)
    *how = (int)ans.how;
  return r;
}

/* Decodes a request answer in m into req, attaching its ICAs. */
static int take_request(kabi_msg *m, srv_req *req) {
  struct kabi_request_msg rq = {0}; /* filled by uk__take_delivery */

  memset(req, 0, sizeof *req);
  int r = uk__take_delivery(m, KABI_ANS_REQUEST, &rq, sizeof rq, &rq.nica,
                            rq.ica, &req->ctl, &req->data);
  if (r < 0)
    return r;
  req->req = rq.req;
  req->op = rq.op;
  req->client_pid = rq.client_pid;
  uk__fault_at(UK_FAULT_REQUEST);
  return 0;
}

static srv_replace_hook replace_hook;
static void *replace_arg;

void srv_on_replace(srv_replace_hook hook, void *arg) {
  uk__lock();
  replace_hook = hook;
  replace_arg = arg;
  uk__unlock();
}

/* The answer to a receive was PREPARE: run the hook, then receive again. */
static int prepare(kabi_msg *m) {
  struct kabi_prepare_msg pm;
  kabi_msg_close_fds(m);
  if (kabi_payload(m, &pm, sizeof pm) < 0)
    return -EPROTO;
  uk__fault_at(UK_FAULT_SAVE);
  uk__lock();
  srv_replace_hook hook = replace_hook;
  void *arg = replace_arg;
  uk__unlock();
  if (hook) {
    int r = hook(pm.successor_version, arg);
    if (r < 0)
      fprintf(stderr, "uksim server: saving state for the successor: %s\n",
              strerror(-r));
  }
  uk__fault_at(UK_FAULT_HANDOFF);
  kabi_msg_init(m, KABI_RECEIVE, 0, 0, NULL, 0);
  return uk__call(m);
}

/* Finishes a receive whose answer is in m (status r). */
static int received(kabi_msg *m, int r, srv_req *req) {
  if (r == 0 && m->hdr.op == KABI_ANS_PREPARE)
    r = prepare(m);
  if (r < 0) {
    kabi_msg_close_fds(m);
    return r;
  }
  return take_request(m, req);
}

int srv_receive(srv_req *req) {
  kabi_msg m;
  before_commit();
  kabi_msg_init(&m, KABI_RECEIVE, 0, 0, NULL, 0);
  return received(&m, uk__call(&m), req);
}

static void reply_args(struct kabi_reply_args *a, const srv_req *req,
                       int32_t status) {
  memset(a, 0, sizeof *a);
  a->req = req->req;
  a->status = status;
  a->ctl = req->ctl.id;
  a->data = req->data.id;
}

int srv_reply(srv_req *req, int32_t status) {
  struct kabi_reply_args a;
  kabi_msg m;

  before_commit();
  reply_args(&a, req, status);
  kabi_msg_init(&m, KABI_REPLY, 0, 0, &a, sizeof a);
  m.hdr.flags = uk__keep_flags(&req->ctl, &req->data);
  int r = uk__call(&m);
  kabi_msg_close_fds(&m);
  if (r == 0) {
    uk__ica_detach(&req->ctl);
    uk__ica_detach(&req->data);
  }
  return r;
}

int srv_reply_receive(srv_req *req, int32_t status) {
  struct kabi_reply_args a;
  kabi_msg m;

  before_commit();
  reply_args(&a, req, status);
  kabi_msg_init(&m, KABI_REPLY_RECEIVE, 0, 0, &a, sizeof a);
  m.hdr.flags = uk__keep_flags(&req->ctl, &req->data);
  int r = uk__call(&m);
  if (r < 0 && r != -ESHUTDOWN) { /* only the receive answers ESHUTDOWN */
    kabi_msg_close_fds(&m);       /* the reply was refused: we still hold all */
    return r;
  }
  uk__ica_detach(&req->ctl);
  uk__ica_detach(&req->data);
  return received(&m, r, req);
}

/* The call of srv_reply_receive_many: replies i < n and their keep
 * flags (bits 2i, 2i+1). */
static int many_args(struct kabi_reply_many_args *a, const srv_req *req,
                     const int32_t *status, uint32_t n) {
  memset(a, 0, sizeof *a);
  if (n > KABI_BATCH_MAX)
    return -EINVAL;
  a->n = n;
  for (uint32_t i = 0; i < n; i++) {
    reply_args(&a->r[i], &req[i], status[i]);
    a->keep |= uk__keep_flags(&req[i].ctl, &req[i].data) << (2 * i);
  }
  return 0;
}

/* The requests of a batch's answer m[0..n-1] into req[], *got of them;
 * on a failure the descriptors of those not taken are closed. */
static int take_batch(kabi_msg *m, uint32_t n, srv_req *req, uint32_t *got) {
  int r = 0;
  for (uint32_t i = 0; i < n; i++) {
    if (r == 0 && (r = take_request(&m[i], &req[i])) == 0)
      (*got)++;
    else
      kabi_msg_close_fds(&m[i]);
  }
  return r;
}

int srv_reply_receive_many(srv_req *req, const int32_t *status, uint32_t n,
                           uint32_t *got) {
  struct kabi_reply_many_args a;
  kabi_msg m[KABI_BATCH_MAX];
  uint32_t nm = 0;

  *got = 0;
  int r = many_args(&a, req, status, n);
  if (r < 0)
    return r;
  before_commit();
  kabi_msg_init(&m[0], KABI_REPLY_MANY_RECEIVE, 0, 0, &a, sizeof a);
  r = uk__call_more(m, KABI_BATCH_MAX, &nm);
  if (r < 0 && r != -ESHUTDOWN) { /* only the receive answers ESHUTDOWN */
    for (uint32_t i = 0; i < nm; i++)
      kabi_msg_close_fds(&m[i]);
    return r; /* the replies were refused: we still hold all */
  }
  for (uint32_t i = 0; i < n; i++) {
    uk__ica_detach(&req[i].ctl);
    uk__ica_detach(&req[i].data);
  }
  if (r == 0 && m[0].hdr.op == KABI_ANS_PREPARE) {
    r = received(&m[0], r, &req[0]); /* then one request, by RECEIVE */
    *got = r == 0;
    return r;
  }
  if (r < 0)
    return r;
  return take_batch(m, nm, req, got);
}

int srv_panic(const char *reason) {
  struct kabi_panic_args a;
  kabi_msg m;

  memset(&a, 0, sizeof a);
  strncpy(a.reason, reason, sizeof a.reason - 1);
  kabi_msg_init(&m, KABI_PANIC, 0, 0, &a, sizeof a);
  int r = uk__call(&m);
  kabi_msg_close_fds(&m);
  return r;
}

/* An answer carrying one ICA (state_get, ica_attach): attach it. */
static int ica_answer(kabi_msg *m, int r, uk_ica *ica) {
  struct kabi_ica_ans ans;
  memset(ica, 0, sizeof *ica);
  if (r < 0) {
    kabi_msg_close_fds(m);
    return r;
  }
  if (m->hdr.op != KABI_ANS_ICA || kabi_payload(m, &ans, sizeof ans) < 0) {
    kabi_msg_close_fds(m);
    return -EPROTO;
  }
  uk_ica *out[1] = {ica};
  return uk__ica_attach_all(m, &ans.ica, 1, out);
}

/* A call whose arguments are one ICA or request id and whose answer is a
 * status. */
static int id_call(uint16_t op, uint32_t id) {
  struct kabi_ica_args a = {.ica = id};
  kabi_msg m;
  kabi_msg_init(&m, op, 0, 0, &a, sizeof a);
  int r = uk__call(&m);
  kabi_msg_close_fds(&m);
  return r;
}

int srv_state_register(const uk_ica *ica) {
  return id_call(KABI_STATE_REGISTER, ica->id);
}

int srv_state_get(uk_ica *ica) {
  kabi_msg m;
  kabi_msg_init(&m, KABI_STATE_GET, 0, 0, NULL, 0);
  int r = ica_answer(&m, uk__call(&m), ica);
  if (r == 0)
    uk__fault_at(UK_FAULT_RESTORE);
  return r;
}

int srv_ica_attach(uint32_t id, uk_ica *ica) {
  struct kabi_ica_args a = {.ica = id};
  kabi_msg m;
  kabi_msg_init(&m, KABI_ICA_ATTACH, 0, 0, &a, sizeof a);
  return ica_answer(&m, uk__call(&m), ica);
}

_Static_assert(sizeof(struct kabi_keep_args) == sizeof(struct kabi_ica_args),
               "id_call() sends both");

int srv_keep(const srv_req *req) {
  before_commit();
  return id_call(KABI_KEEP, req->req);
}

int srv_run(const char *name, uint32_t version, const char *opnames,
            srv_handler handler, void *arg) {
  srv_req req;
  int r = srv_register(name, version, opnames, NULL);
  if (r < 0)
    return r;
  r = srv_receive(&req);
  while (r == 0)
    r = srv_reply_receive(&req, handler(&req, arg));
  return r == -ESHUTDOWN ? 0 : r;
}
