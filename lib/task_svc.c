/* Service handles of a migratable task (include/uksim/task.h): the call
 * state machine of struct task_service, whose every field lives in the
 * region so that a call out when the task is suspended is sent again, with
 * its number, from wherever the task resumes.
 *
 * The task's node's migration server passes a SOCK_SEQPACKET socket as
 * TASK_SVC_FD and sets UKSIM_TASK_SVC=1 and UKSIM_TASK_NODE=NAME; one
 * struct task_call_msg per packet either way, a data ICA's bytes
 * (ica_len) right behind it in the same packet.  The packets go through a
 * buffer outside the region, not a task thread's stack: a thread's stack
 * is TASK_STACK_SIZE, smaller than one packet. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "task_impl.h"
#include "uksim/task.h"

static int enabled(void) {
  const char *v = getenv("UKSIM_TASK_SVC");
  return v != NULL && strcmp(v, "1") == 0;
}

/* One packet either way: a message and a data ICA's bytes. */
static struct {
  struct task_call_msg m;
  uint8_t ica[TASK_ICA_MAX];
} pkt;

static int send_call(const struct task_service *s, int h) {
  struct task_call_msg *m = &pkt.m;
  memset(m, 0, sizeof *m);
  *m = (struct task_call_msg){
      .handle = (uint32_t)h, .op = s->op, .seq = s->seq, .len = s->req_len};
  memcpy(m->service, s->name, sizeof m->service);
  memcpy(m->node, s->node, sizeof m->node);
  memcpy(m->data, s->req, s->req_len);
  if (s->ica >= 0 && s->data_len > 0) {
    memcpy(pkt.ica, task_ica(s->ica, NULL), s->data_len);
    m->ica_len = s->data_len;
  }
  size_t n = sizeof *m + m->ica_len;
  return send(TASK_SVC_FD, &pkt, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -EPIPE;
}

int task_service_open(const char *service) {
  struct task_hdr *h = task_hdr();
  const char *node = getenv("UKSIM_TASK_NODE");
  if (h == NULL || !enabled() || node == NULL)
    return -ENOTCONN;
  if (strlen(service) >= TASK_NAME_MAX || strlen(node) >= TASK_NAME_MAX ||
      service[0] == '\0')
    return -EINVAL;
  for (int i = 0; i < TASK_SERVICES_MAX; i++) {
    struct task_service *s = &h->svc[i];
    if (s->name[0] != '\0')
      continue;
    memset(s, 0, sizeof *s);
    s->ica = -1;
    strcpy(s->name, service); /* lengths checked above */
    strcpy(s->node, node);
    return i;
  }
  return -ENOSPC;
}

/* IDLE -> SENT: the request into the region, then out. */
static int start_call(struct task_service *s, int h, uint32_t op,
                      const void *req, size_t len, int ica, size_t data_len) {
  memcpy(s->req, req, len);
  s->req_len = (uint32_t)len;
  s->op = op;
  s->ica = ica;
  s->data_len = (uint32_t)data_len;
  s->seq++;
  s->state = TASK_CALL_SENT;
  int r = send_call(s, h);
  if (r < 0)
    s->state = TASK_CALL_IDLE; /* never left: nothing to answer */
  return r;
}

int task_call_ica(int h, uint32_t op, const void *req, size_t len, int ica,
                  size_t data_len, void *rep, size_t replen, size_t *replied,
                  size_t *data_got) {
  struct task_hdr *hd = task_hdr();
  size_t ica_len = 0;
  if (hd == NULL || h < 0 || h >= TASK_SERVICES_MAX ||
      hd->svc[h].name[0] == '\0' || (ica >= 0 && !task_ica(ica, &ica_len)))
    return -EBADF;
  if (len > TASK_CALL_MAX || (len > 0 && req == NULL))
    return -EMSGSIZE;
  if (data_len > ica_len)
    return -EINVAL;
  struct task_service *s = &hd->svc[h];
  while (s->state != TASK_CALL_IDLE) /* another thread's call on it */
    task__block(TASK_THREAD_CALL);
  int r = start_call(s, h, op, req, len, ica, data_len);
  if (r < 0)
    return r;
  while (s->state == TASK_CALL_SENT)
    task__block(TASK_THREAD_CALL);
  size_t n = s->rep_len < replen ? s->rep_len : replen;
  if (n > 0)
    memcpy(rep, s->rep, n);
  if (replied)
    *replied = s->rep_len;
  if (data_got)
    *data_got = s->ica >= 0 ? s->data_len : 0;
  s->state = TASK_CALL_IDLE;
  return s->status;
}

int task_call(int h, uint32_t op, const void *req, size_t len, void *rep,
              size_t replen, size_t *replied) {
  return task_call_ica(h, op, req, len, -1, 0, rep, replen, replied, NULL);
}

int task__svc_waiting(void) {
  struct task_hdr *h = task_hdr();
  for (int i = 0; h && i < TASK_SERVICES_MAX; i++)
    if (h->svc[i].state == TASK_CALL_SENT)
      return 1;
  return 0;
}

/* The answer's data ICA into the call's own: 0, or -EMSGSIZE when it
 * does not fit (or the call had none to take it). */
static int take_data(struct task_service *s, const uint8_t *p, uint32_t n) {
  size_t room = 0;
  void *base = s->ica >= 0 ? task_ica(s->ica, &room) : NULL;
  s->data_len = 0;
  if (n == 0)
    return 0;
  if (base == NULL || n > room)
    return -EMSGSIZE;
  memcpy(base, p, n); /* here, not by the server: pre-copy tracks it */
  s->data_len = n;
  return 0;
}

/* SENT -> DONE for the answer of the handle's own seq; others dropped. */
static int take_one(const struct task_call_msg *m, size_t got) {
  struct task_hdr *h = task_hdr();
  if (m->handle >= TASK_SERVICES_MAX || m->len > TASK_CALL_MAX ||
      m->ica_len > TASK_ICA_MAX || got != sizeof *m + m->ica_len)
    return 0;
  struct task_service *s = &h->svc[m->handle];
  if (s->state != TASK_CALL_SENT || s->seq != m->seq)
    return 0; /* late, or for a copy of the task that ended */
  memcpy(s->rep, m->data, m->len);
  s->rep_len = m->len;
  int r = take_data(s, pkt.ica, m->ica_len);
  s->status = r < 0 ? r : m->status;
  s->state = TASK_CALL_DONE;
  return 1;
}

int task__svc_take(void) {
  int n = 0;
  ssize_t got;
  if (!enabled() || !task__svc_waiting())
    return 0;
  while ((got = recv(TASK_SVC_FD, &pkt, sizeof pkt, MSG_DONTWAIT)) >=
         (ssize_t)sizeof pkt.m)
    n += take_one(&pkt.m, (size_t)got);
  return n;
}

void task__svc_resend(void) {
  struct task_hdr *h = task_hdr();
  if (!enabled())
    return;
  for (int i = 0; i < TASK_SERVICES_MAX; i++)
    if (h->svc[i].state == TASK_CALL_SENT && send_call(&h->svc[i], i) < 0)
      h->svc[i].state = TASK_CALL_IDLE; /* no server: it cannot be run */
}
