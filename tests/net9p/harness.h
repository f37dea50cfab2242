/*
 * harness.h: a transport that keeps what the server sends, so server
 * behaviour can be tested without sockets or a loop (and fuzzed).
 */
#ifndef TESTS_NET9P_HARNESS_H
#define TESTS_NET9P_HARNESS_H

#include <stdlib.h>
#include <string.h>

#include <uksim/9p.h>

enum { CAP_MAX = 64 };

typedef struct cap {
  p9_transport t;
  uint8_t *out[CAP_MAX];
  size_t outlen[CAP_MAX];
  int nout, nclosed;
  p9_dialect d;
} cap;

static inline int cap_send(p9_transport *t, uint8_t *buf, size_t len) {
  cap *c = (cap *)t;
  if (c->nout == CAP_MAX) {
    free(c->out[0]);
    memmove(c->out, c->out + 1, sizeof(c->out[0]) * (CAP_MAX - 1));
    memmove(c->outlen, c->outlen + 1, sizeof(c->outlen[0]) * (CAP_MAX - 1));
    c->nout--;
  }
  c->out[c->nout] = buf;
  c->outlen[c->nout++] = len;
  return 0;
}

static inline void cap_close(p9_transport *t) {
  cap *c = (cap *)t;
  if (c->nclosed++ == 0 && t->closed)
    t->closed(t, 0);
}

/* The borrowing send: gathers the pieces into a buffer of its own. */
static inline int cap_sendv(p9_transport *t, const struct iovec *iov, int n) {
  size_t len = 0, at = 0;
  uint8_t *buf;
  for (int i = 0; i < n; i++)
    len += iov[i].iov_len;
  buf = malloc(len ? len : 1);
  for (int i = 0; i < n; i++) {
    memcpy(buf + at, iov[i].iov_base, iov[i].iov_len);
    at += iov[i].iov_len;
  }
  return cap_send(t, buf, len);
}

static const struct p9_transport_ops cap_ops = {
    .send = cap_send, .close = cap_close, .sendv = cap_sendv};
/* A transport without sendv: the server hands it buffers to keep. */
static const struct p9_transport_ops cap_ops_owning = {.send = cap_send,
                                                       .close = cap_close};

static inline void cap_init(cap *c) {
  memset(c, 0, sizeof(*c));
  c->t.ops = &cap_ops;
  strcpy(c->t.peer, "test");
}

static inline void cap_drop(cap *c) {
  for (int i = 0; i < c->nout; i++)
    free(c->out[i]);
  c->nout = 0;
}

/* Delivers raw bytes as one message. */
static inline void cap_raw(cap *c, const uint8_t *msg, size_t len) {
  c->t.recv(&c->t, msg, len);
}

/* Encodes and delivers tx; returns the number of answers now waiting. */
static inline int cap_put(cap *c, const p9_fcall *tx) {
  uint8_t buf[65536];
  long n = p9_encode(tx, c->d ? c->d : P9_2000, buf, sizeof(buf));
  if (n > 0)
    cap_raw(c, buf, (size_t)n);
  return c->nout;
}

/* Decodes answer i (its strings stay valid until cap_drop). */
static inline int cap_get(cap *c, int i, p9_fcall *rx) {
  if (i >= c->nout)
    return -1;
  return p9_decode(c->out[i], c->outlen[i], c->d ? c->d : P9_2000, rx);
}

#endif
