/* migd_calls.c: a migration server's part in its tasks' service calls
 * (the state machine is migd.h's "Service calls"; the task's side is
 * lib/task_svc.c).
 *
 * Each task it starts gets a SOCK_SEQPACKET socket (TASK_SVC_FD) and a
 * thread here that takes its requests one at a time: a request for a
 * service of this node is RUN against this node's records, one for
 * another node's is forwarded to that node's migration server, found by
 * name through the network message server (migd_names.c), as a MigCall on
 * a connection of its own.  RUN sends the call to this node's network
 * message server (netmsg serve), which makes it a local ap_call of the
 * service: the one place a call is executed.
 *
 * Load: one thread per task while it runs here, one per forwarded call
 * that arrives (a connection thread of migd.c), and a dial per call. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migd.h"
#include "migrate.pb-c.h"
#include "migwire.h"
#include "node.h"
#include "uksim/task.h"
#include "uksim/xalloc.h"

static struct {
  char node[TASK_NAME_MAX];
  const char *netmsg, *netmsg_keyfile;
  const uint8_t *mig_key;
} C;

void migd_calls_init(const char *node, const char *netmsg,
                     const char *netmsg_keyfile, const uint8_t *mig_key) {
  snprintf(C.node, sizeof C.node, "%s", node);
  C.netmsg = netmsg;
  C.netmsg_keyfile = netmsg_keyfile;
  C.mig_key = mig_key;
}

/* A call's answer, whichever way it came. */
struct answer {
  int32_t status;
  uint32_t len;
  uint8_t rep[TASK_CALL_MAX];
};

static void fail(struct answer *a, int err) {
  a->status = err;
  a->len = 0;
}

/* RUNNING: one Call to this node's network message server ---------------- */

static int send_call(node_conn *c, const char *svc, uint32_t op,
                     const uint8_t *req, uint32_t len) {
  Uksim__Node__Call k = UKSIM__NODE__CALL__INIT;
  Uksim__Node__Msg m = UKSIM__NODE__MSG__INIT;
  k.id = node_next_id(c);
  k.service = (char *)svc;
  k.op = op;
  k.ctl = (ProtobufCBinaryData){len, (uint8_t *)req};
  k.ctl_size = len;
  m.body_case = UKSIM__NODE__MSG__BODY_CALL;
  m.call = &k;
  return node_send(c, &m);
}

/* The Result of the call just sent, into a.  A data ICA in the answer is
 * more than a task call carries: refused (the connection is dropped after
 * this call anyway). */
static void take_result(node_conn *c, struct answer *a) {
  int e = 0;
  Uksim__Node__Msg *m = node_recv(c, false, &e);
  if (m == NULL) {
    fail(a, -EHOSTDOWN);
    return;
  }
  const Uksim__Node__Result *r = m->result;
  if (m->body_case != UKSIM__NODE__MSG__BODY_RESULT || r->data_size > 0)
    fail(a, -EBADMSG);
  else {
    a->status = r->status;
    a->len = r->ctl.len < TASK_CALL_MAX ? (uint32_t)r->ctl.len : TASK_CALL_MAX;
    memcpy(a->rep, r->ctl.data, a->len);
  }
  node_msg_free(m);
}

static void run_here(const char *svc, uint32_t op, const uint8_t *req,
                     uint32_t len, struct answer *a) {
  uint8_t key[NODE_KEY_LEN];
  char err[NODE_ERR_MAX];
  bool keyed = C.netmsg_keyfile && C.netmsg_keyfile[0];
  node_conn *c = NULL;
  if (!keyed || node_key_load(C.netmsg_keyfile, key) == 0)
    c = C.netmsg && C.netmsg[0]
            ? node_dial(C.netmsg, keyed ? key : NULL, C.node, err, sizeof err)
            : NULL;
  if (c == NULL) {
    fail(a, -EHOSTDOWN);
    return;
  }
  if (send_call(c, svc, op, req, len) < 0)
    fail(a, -EHOSTDOWN);
  else
    take_result(c, a);
  node_close(c);
}

/* Records: RUN's exactly-once ---------------------------------------------- */

struct record {
  bool used, done;
  char origin[64];
  uint64_t task;
  uint32_t handle;
  uint64_t seq; /* the last taken; 0: none yet */
  struct answer ans;
};

static struct record records[MIGD_RECORDS_MAX];
static pthread_mutex_t rec_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rec_done = PTHREAD_COND_INITIALIZER;

/* The record of (origin, task, handle), made when new; NULL when full.
 * Called with rec_lock held. */
static struct record *record_of(const char *origin, uint64_t task,
                                uint32_t handle) {
  struct record *slot = NULL;
  for (int i = 0; i < MIGD_RECORDS_MAX; i++) {
    struct record *r = &records[i];
    if (r->used && r->task == task && r->handle == handle &&
        strcmp(r->origin, origin) == 0)
      return r;
    if (!r->used && slot == NULL)
      slot = r;
  }
  if (slot != NULL) {
    *slot = (struct record){
        .used = true, .done = true, .task = task, .handle = handle};
    snprintf(slot->origin, sizeof slot->origin, "%s", origin);
  }
  return slot;
}

/* RUN: the call seq of (origin, task, handle), at most once. */
static void run_once(const char *origin, uint64_t task, uint32_t handle,
                     uint64_t seq, const char *svc, uint32_t op,
                     const uint8_t *req, uint32_t len, struct answer *a) {
  pthread_mutex_lock(&rec_lock);
  struct record *r = record_of(origin, task, handle);
  while (r != NULL && r->seq == seq && !r->done) /* WAIT */
    pthread_cond_wait(&rec_done, &rec_lock);
  if (r == NULL) {
    fail(a, -ENOSPC);
  } else if (seq < r->seq) { /* STALE */
    fail(a, -ESTALE);
  } else if (seq == r->seq) { /* REPLAY */
    *a = r->ans;
    fprintf(stderr, "migd %s: call %llu of task %s/%llu answered again\n",
            C.node, (unsigned long long)seq, origin, (unsigned long long)task);
  } else { /* RUNNING, then DONE */
    r->seq = seq;
    r->done = false;
    pthread_mutex_unlock(&rec_lock);
    run_here(svc, op, req, len, a);
    pthread_mutex_lock(&rec_lock);
    r->ans = *a;
    r->done = true;
    pthread_cond_broadcast(&rec_done);
  }
  pthread_mutex_unlock(&rec_lock);
}

/* FORWARD: to the migration server of node `node` ------------------------ */

static int send_mig_call(int fd, const char *origin, uint64_t task,
                         const struct task_call_msg *m) {
  MigMsg msg = MIG_MSG__INIT;
  MigCall c = MIG_CALL__INIT;
  c.origin = (char *)origin;
  c.task = task;
  c.handle = m->handle;
  c.seq = m->seq;
  c.service = (char *)m->service;
  c.op = m->op;
  c.req = (ProtobufCBinaryData){m->len, (uint8_t *)m->data};
  msg.m_case = MIG_MSG__M_CALL;
  msg.call = &c;
  return mig_send(fd, &msg);
}

static void forward(const char *origin, uint64_t task,
                    const struct task_call_msg *m, struct answer *a) {
  char addr[NODE_ADDR_MAX], err[256];
  if (migd_resolve(C.netmsg, C.netmsg_keyfile, C.node, m->node, addr,
                   sizeof addr, err, sizeof err) < 0) {
    fprintf(stderr, "migd %s: a call to %s: %s\n", C.node, m->node, err);
    fail(a, -EHOSTDOWN);
    return;
  }
  int fd = mig_dial(addr, C.mig_key, err, sizeof err);
  if (fd < 0) {
    fprintf(stderr, "migd %s: a call to %s: %s\n", C.node, m->node, err);
    fail(a, -EHOSTDOWN);
    return;
  }
  MigMsg *r = send_mig_call(fd, origin, task, m) == 0 ? mig_recv(fd) : NULL;
  close(fd);
  if (r == NULL)
    fprintf(stderr,
            "migd %s: a call to %s: no answer (its node is gone or silent)\n",
            C.node, m->node);
  if (r == NULL || r->m_case != MIG_MSG__M_CALL_REPLY ||
      r->call_reply->rep.len > TASK_CALL_MAX)
    fail(a, r == NULL ? -EHOSTDOWN : -EBADMSG);
  else {
    a->status = r->call_reply->status;
    a->len = (uint32_t)r->call_reply->rep.len;
    memcpy(a->rep, r->call_reply->rep.data, a->len);
  }
  if (r)
    mig_msg__free_unpacked(r, NULL);
}

void migd_calls_serve(int fd, const MigCall *c) {
  struct answer a;
  MigMsg m = MIG_MSG__INIT;
  MigCallReply r = MIG_CALL_REPLY__INIT;
  if (c->req.len > TASK_CALL_MAX || strlen(c->service) >= TASK_NAME_MAX ||
      c->handle >= TASK_SERVICES_MAX)
    fail(&a, -EINVAL);
  else
    run_once(c->origin, c->task, c->handle, c->seq, c->service, c->op,
             c->req.data, (uint32_t)c->req.len, &a);
  r.status = a.status;
  r.rep = (ProtobufCBinaryData){a.len, a.rep};
  r.seq = c->seq;
  m.m_case = MIG_MSG__M_CALL_REPLY;
  m.call_reply = &r;
  mig_send(fd, &m);
}

/* A task's requests ---------------------------------------------------------
 */

struct caller {
  int fd;
  char origin[64];
  uint64_t task;
};

/* Whether a request from the task is well formed (it is the task's own
 * region's bytes: trusted no more than a peer's). */
static bool request_ok(const struct task_call_msg *m) {
  return m->handle < TASK_SERVICES_MAX && m->len <= TASK_CALL_MAX &&
         memchr(m->service, 0, sizeof m->service) != NULL &&
         memchr(m->node, 0, sizeof m->node) != NULL && m->service[0] != '\0';
}

static void *caller_main(void *arg) {
  struct caller *c = arg;
  struct task_call_msg m;
  struct answer a;
  while (recv(c->fd, &m, sizeof m, 0) == (ssize_t)sizeof m) {
    if (!request_ok(&m))
      fail(&a, -EINVAL);
    else if (strcmp(m.node, C.node) == 0)
      run_once(c->origin, c->task, m.handle, m.seq, m.service, m.op, m.data,
               m.len, &a);
    else
      forward(c->origin, c->task, &m, &a);
    m.status = a.status;
    m.len = a.len;
    memcpy(m.data, a.rep, a.len);
    /* The task may have moved on meanwhile: its next copy asks again. */
    send(c->fd, &m, sizeof m, MSG_NOSIGNAL);
  }
  close(c->fd);
  free(c);
  return NULL;
}

int migd_calls_pair(int *child) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return -errno;
  *child = sv[1];
  return sv[0];
}

void migd_calls_start(int fd, const char *origin, uint64_t task) {
  struct caller *c = xcalloc(1, sizeof *c);
  pthread_t t;
  c->fd = fd;
  c->task = task;
  snprintf(c->origin, sizeof c->origin, "%s", origin);
  if (pthread_create(&t, NULL, caller_main, c) != 0) {
    close(fd);
    free(c);
    return;
  }
  pthread_detach(t);
}
