/* libuksim for application processes (see uksim/ap.h). */
#include "uksim/ap.h"

#include <errno.h>
#include <string.h>

#include "conn.h"

int ap_init(void) {
  return uk__conn_init();
}

int ap_lookup(const char *name, uint32_t *svc) {
  struct kabi_lookup_args a;
  struct kabi_lookup_ans ans;
  kabi_msg m;

  if (strlen(name) >= sizeof a.name)
    return -ENAMETOOLONG;
  memset(&a, 0, sizeof a);
  strcpy(a.name, name);
  kabi_msg_init(&m, KABI_LOOKUP, 0, 0, &a, sizeof a);
  int r = uk__call(&m);
  kabi_msg_close_fds(&m);
  if (r < 0)
    return r;
  r = kabi_payload(&m, &ans, sizeof ans);
  if (r == 0)
    *svc = ans.svc;
  return r;
}

static void send_args(struct kabi_send_args *a, uint32_t svc, uint32_t op,
                      const uk_ica *ctl, const uk_ica *data, uint64_t tag) {
  memset(a, 0, sizeof *a);
  a->svc = svc;
  a->op = op;
  a->ctl = ctl ? ctl->id : KABI_ICA_NONE;
  a->data = data ? data->id : KABI_ICA_NONE;
  a->tag = tag;
}

/* The request left: unmap what travels with it. */
static void detach_sent(uk_ica *ctl, uk_ica *data) {
  if (ctl)
    uk__ica_detach(ctl);
  if (data)
    uk__ica_detach(data);
}

int ap_send(uint32_t svc, uint32_t op, uk_ica *ctl, uk_ica *data, uint64_t tag,
            uint32_t *req) {
  struct kabi_send_args a;
  struct kabi_send_ans ans;
  kabi_msg m;

  send_args(&a, svc, op, ctl, data, tag);
  kabi_msg_init(&m, KABI_SEND, 0, 0, &a, sizeof a);
  m.hdr.flags = uk__keep_flags(ctl, data);
  int r = uk__call(&m);
  kabi_msg_close_fds(&m);
  if (r < 0)
    return r;
  r = kabi_payload(&m, &ans, sizeof ans);
  if (r < 0)
    return r;
  detach_sent(ctl, data);
  if (req)
    *req = ans.req;
  return 0;
}

/* Decodes a result answer in m into res, attaching its ICAs. */
static int take_result(kabi_msg *m, ap_result *res) {
  struct kabi_result_msg rm = {0}; /* filled by uk__take_delivery */

  memset(res, 0, sizeof *res);
  int r = uk__take_delivery(m, KABI_ANS_RESULT, &rm, sizeof rm, &rm.nica,
                            rm.ica, &res->ctl, &res->data);
  if (r < 0)
    return r;
  /* A result with only a data ICA puts it in the data slot. */
  if (rm.nica == 1 && rm.ica[0].kind == KABI_ICA_DATA) {
    res->data = res->ctl;
    memset(&res->ctl, 0, sizeof res->ctl);
  }
  res->req = rm.req;
  res->status = rm.status;
  res->tag = rm.tag;
  res->op = rm.op;
  return 0;
}

int ap_await(uint32_t req, ap_result *res) {
  struct kabi_await_args a = {.req = req};
  kabi_msg m;
  kabi_msg_init(&m, KABI_AWAIT, 0, 0, &a, sizeof a);
  int r = uk__call(&m);
  if (r < 0) {
    kabi_msg_close_fds(&m);
    return r;
  }
  return take_result(&m, res);
}

int ap_call(uint32_t svc, uint32_t op, uk_ica *ctl, uk_ica *data,
            ap_result *res) {
  struct kabi_send_args a;
  kabi_msg m;

  send_args(&a, svc, op, ctl, data, 0);
  kabi_msg_init(&m, KABI_CALL, 0, 0, &a, sizeof a);
  m.hdr.flags = uk__keep_flags(ctl, data);
  int r = uk__call(&m);
  if (r < 0) {
    kabi_msg_close_fds(&m); /* refused: the caller still holds its ICAs */
    return r;
  }
  detach_sent(ctl, data);
  return take_result(&m, res);
}

int ap_sleep(uint64_t ns) {
  struct kabi_sleep_args a = {.ns = ns};
  kabi_msg m;
  if (ns > KABI_SLEEP_MAX_NS)
    return -EINVAL;
  kabi_msg_init(&m, KABI_SLEEP, 0, 0, &a, sizeof a);
  int r = uk__call(&m);
  kabi_msg_close_fds(&m);
  return r;
}
