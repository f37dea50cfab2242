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

/* A call's request as the task sent it: its control bytes and the bytes
 * of its data ICA (data_len 0: none). */
struct request {
  const char *service;
  uint32_t op;
  const uint8_t *req;
  uint32_t len;
  const uint8_t *data;
  uint32_t data_len;
};

/* A call's answer, whichever way it came: the service's control bytes and
 * its data ICA's (data_len 0: none). */
struct answer {
  int32_t status;
  uint32_t len;
  uint8_t rep[TASK_CALL_MAX];
  uint32_t data_len;
  uint8_t data[TASK_ICA_MAX];
};

static void fail(struct answer *a, int err) {
  a->status = err;
  a->len = 0;
  a->data_len = 0;
}

/* RUNNING: one Call to this node's network message server ---------------- */

/* The Call, then its data ICA's bytes as Chunks (node.h). */
static int send_call(node_conn *c, const struct request *q) {
  Uksim__Node__Call k = UKSIM__NODE__CALL__INIT;
  Uksim__Node__Msg m = UKSIM__NODE__MSG__INIT;
  k.id = node_next_id(c);
  k.service = (char *)q->service;
  k.op = q->op;
  k.ctl = (ProtobufCBinaryData){q->len, (uint8_t *)q->req};
  k.ctl_size = q->len;
  k.data_size = q->data_len;
  m.body_case = UKSIM__NODE__MSG__BODY_CALL;
  m.call = &k;
  int r = node_send(c, &m);
  if (r == 0 && q->data_len > 0)
    r = node_send_data(c, k.id, q->data, q->data_len);
  return r;
}

/* The Result of the call just sent, into a, with its data ICA's Chunks.
 * A data ICA larger than a task's ICA is refused, -EMSGSIZE, its Chunks
 * not read (the connection is dropped after this call anyway). */
static void take_result(node_conn *c, struct answer *a) {
  int e = 0;
  Uksim__Node__Msg *m = node_recv(c, false, &e);
  if (m == NULL) {
    fail(a, -EHOSTDOWN);
    return;
  }
  const Uksim__Node__Result *r = m->result;
  if (m->body_case != UKSIM__NODE__MSG__BODY_RESULT)
    fail(a, -EBADMSG);
  else if (r->data_size > TASK_ICA_MAX)
    fail(a, -EMSGSIZE);
  else {
    a->status = r->status;
    a->len = r->ctl.len < TASK_CALL_MAX ? (uint32_t)r->ctl.len : TASK_CALL_MAX;
    memcpy(a->rep, r->ctl.data, a->len);
    a->data_len = (uint32_t)r->data_size;
    if (a->data_len > 0 && node_recv_data(c, r->id, a->data, a->data_len) < 0)
      fail(a, -EHOSTDOWN);
  }
  node_msg_free(m);
}

static void run_here(const struct request *q, struct answer *a) {
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
  if (send_call(c, q) < 0)
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
                     uint64_t seq, const struct request *q, struct answer *a) {
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
    run_here(q, a);
    pthread_mutex_lock(&rec_lock);
    r->ans = *a;
    r->done = true;
    pthread_cond_broadcast(&rec_done);
  }
  pthread_mutex_unlock(&rec_lock);
}

/* FORWARD: to the migration server of node `node` ------------------------ */

static int send_mig_call(int fd, const char *origin, uint64_t task,
                         const struct task_call_msg *m,
                         const struct request *q) {
  MigMsg msg = MIG_MSG__INIT;
  MigCall c = MIG_CALL__INIT;
  c.origin = (char *)origin;
  c.task = task;
  c.handle = m->handle;
  c.seq = m->seq;
  c.service = (char *)m->service;
  c.op = m->op;
  c.req = (ProtobufCBinaryData){m->len, (uint8_t *)m->data};
  c.data = (ProtobufCBinaryData){q->data_len, (uint8_t *)q->data};
  msg.m_case = MIG_MSG__M_CALL;
  msg.call = &c;
  return mig_send(fd, &msg);
}

static void forward(const char *origin, uint64_t task,
                    const struct task_call_msg *m, const struct request *q,
                    struct answer *a) {
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
  MigMsg *r = send_mig_call(fd, origin, task, m, q) == 0 ? mig_recv(fd) : NULL;
  close(fd);
  if (r == NULL)
    fprintf(stderr,
            "migd %s: a call to %s: no answer (its node is gone or silent)\n",
            C.node, m->node);
  if (r == NULL || r->m_case != MIG_MSG__M_CALL_REPLY ||
      r->call_reply->rep.len > TASK_CALL_MAX ||
      r->call_reply->data.len > TASK_ICA_MAX)
    fail(a, r == NULL ? -EHOSTDOWN : -EBADMSG);
  else {
    a->status = r->call_reply->status;
    a->len = (uint32_t)r->call_reply->rep.len;
    memcpy(a->rep, r->call_reply->rep.data, a->len);
    a->data_len = (uint32_t)r->call_reply->data.len;
    memcpy(a->data, r->call_reply->data.data, a->data_len);
  }
  if (r)
    mig_msg__free_unpacked(r, NULL);
}

void migd_calls_serve(int fd, const MigCall *c) {
  struct answer *a = xmalloc(sizeof *a); /* a data ICA: no stack for it */
  MigMsg m = MIG_MSG__INIT;
  MigCallReply r = MIG_CALL_REPLY__INIT;
  struct request q = {c->service,   c->op,
                      c->req.data,  (uint32_t)c->req.len,
                      c->data.data, (uint32_t)c->data.len};
  if (c->req.len > TASK_CALL_MAX || c->data.len > TASK_ICA_MAX ||
      strlen(c->service) >= TASK_NAME_MAX || c->handle >= TASK_SERVICES_MAX)
    fail(a, -EINVAL);
  else
    run_once(c->origin, c->task, c->handle, c->seq, &q, a);
  r.status = a->status;
  r.rep = (ProtobufCBinaryData){a->len, a->rep};
  r.data = (ProtobufCBinaryData){a->data_len, a->data};
  r.seq = c->seq;
  m.m_case = MIG_MSG__M_CALL_REPLY;
  m.call_reply = &r;
  mig_send(fd, &m);
  free(a);
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
         m->ica_len <= TASK_ICA_MAX &&
         memchr(m->service, 0, sizeof m->service) != NULL &&
         memchr(m->node, 0, sizeof m->node) != NULL && m->service[0] != '\0';
}

/* One packet from or to the task (lib/task_svc.c): a message and its
 * data ICA's bytes. */
struct packet {
  struct task_call_msg m;
  uint8_t ica[TASK_ICA_MAX];
};

/* The answer into p, as the packet back to the task: its length. */
static size_t put_answer(struct packet *p, const struct answer *a) {
  p->m.status = a->status;
  p->m.len = a->len;
  memcpy(p->m.data, a->rep, a->len);
  p->m.ica_len = a->data_len;
  memcpy(p->ica, a->data, a->data_len);
  return sizeof p->m + a->data_len;
}

static void *caller_main(void *arg) {
  struct caller *c = arg;
  struct packet *p = xmalloc(sizeof *p);
  struct answer *a = xmalloc(sizeof *a);
  ssize_t got;
  while ((got = recv(c->fd, p, sizeof *p, 0)) >= (ssize_t)sizeof p->m) {
    struct task_call_msg *m = &p->m;
    struct request q = {m->service, m->op, m->data, m->len, p->ica, m->ica_len};
    if (!request_ok(m) || (size_t)got != sizeof *m + m->ica_len)
      fail(a, -EINVAL);
    else if (strcmp(m->node, C.node) == 0)
      run_once(c->origin, c->task, m->handle, m->seq, &q, a);
    else
      forward(c->origin, c->task, m, &q, a);
    size_t n = put_answer(p, a);
    /* The task may have moved on meanwhile: its next copy asks again. */
    send(c->fd, p, n, MSG_NOSIGNAL);
  }
  close(c->fd);
  free(a);
  free(p);
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
