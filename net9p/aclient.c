/*
 * aclient.c: the asynchronous 9P client on a libuv loop.
 *
 * Requests are multiplexed by tag over the stream transport; any number
 * may be outstanding.  Each callback runs exactly once: with the answer,
 * with the error it carries, or with -ECONNRESET / -ECANCELED when the
 * connection goes away first.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "p9_impl.h"
#include "stream.h"
#include <uksim/uv_check.h>

typedef struct pend {
  uint16_t tag;
  uint8_t type;
  p9_aclient_cb cb;
  void *arg;
} pend;

struct p9_aclient {
  uv_loop_t *loop;
  p9_transport *t;
  p9_dialect d;
  uint32_t msize;
  uint16_t tag;
  pend *pend;
  size_t npend, cappend;
  uint32_t nextfid;
  uint32_t *freefids;
  size_t nfree, capfree;
  bool closing;
  bool in_closed; /* on_closed is failing the pending requests */
  void (*done)(void *arg);
  void *done_arg;
  p9_aclient_cb connect_cb;
  void *connect_arg;
};

typedef struct dialreq {
  uv_connect_t req;
  p9_aclient *c;
  uv_stream_t *h;
  char version[16];
} dialreq;

static void free_handle(uv_handle_t *h) {
  free(h);
}

static void aclient_free(p9_aclient *c) {
  free(c->pend);
  free(c->freefids);
  free(c);
}

/* Takes the pending entry for a tag out of the table. */
static int take(p9_aclient *c, uint16_t tag, pend *out) {
  for (size_t i = 0; i < c->npend; i++) {
    if (c->pend[i].tag == tag) {
      *out = c->pend[i];
      c->pend[i] = c->pend[--c->npend];
      return 0;
    }
  }
  return -ENOENT;
}

static bool tag_busy(p9_aclient *c, uint16_t tag) {
  for (size_t i = 0; i < c->npend; i++)
    if (c->pend[i].tag == tag)
      return true;
  return false;
}

static int reply_err(const p9_fcall *rx, uint8_t ttype) {
  if (rx->type == P9_RERROR)
    return -p9_errno(rx->ename);
  if (rx->type == P9_RLERROR)
    return p9__lerror_errno(rx->ecode);
  return rx->type == ttype + 1 ? 0 : -EPROTO;
}

static void on_recv(p9_transport *t, const uint8_t *msg, size_t len) {
  p9_aclient *c = t->upper;
  p9_fcall rx;
  pend p;
  if (p9_decode(msg, len, c->d ? c->d : P9_2000, &rx) < 0 ||
      take(c, rx.tag, &p) < 0) {
    t->ops->close(t); /* an answer we cannot place: the stream is bad */
    return;
  }
  p.cb(c, reply_err(&rx, p.type), &rx, p.arg);
}

static void fail_all(p9_aclient *c, int err) {
  while (c->npend) {
    pend p = c->pend[--c->npend];
    p.cb(c, err, NULL, p.arg);
  }
}

static void on_closed(p9_transport *t, int err) {
  p9_aclient *c = t->upper;
  (void)err;
  c->t = NULL;
  c->in_closed = true;
  fail_all(c, c->closing ? -ECANCELED : -ECONNRESET);
  c->in_closed = false;
  if (c->closing) {
    if (c->done)
      c->done(c->done_arg);
    aclient_free(c);
  }
}

int p9_aclient_rpc(p9_aclient *c, p9_fcall *tx, p9_aclient_cb cb, void *arg) {
  long n;
  uint8_t *buf;
  pend p = {.type = tx->type, .cb = cb, .arg = arg};
  if (!c->t || c->closing)
    return -ECONNRESET;
  if (c->npend >= 0xfffe)
    return -EAGAIN;
  if (tx->type != P9_TVERSION) {
    do { /* a tag not in use and not NOTAG */
      if (++c->tag == P9_NOTAG)
        c->tag = 0;
    } while (tag_busy(c, c->tag));
    tx->tag = c->tag;
  }
  if ((n = p9_fcall_size(tx, c->d ? c->d : P9_2000)) < 0)
    return (int)n;
  if ((size_t)n > c->msize)
    return -EMSGSIZE;
  buf = xmalloc((size_t)n);
  p9_encode(tx, c->d ? c->d : P9_2000, buf, (size_t)n);
  p.tag = tx->tag;
  if (c->npend == c->cappend) {
    c->cappend = c->cappend ? 2 * c->cappend : 16;
    c->pend = xrealloc(c->pend, c->cappend * sizeof(pend));
  }
  c->pend[c->npend++] = p;
  return c->t->ops->send(c->t, buf, (size_t)n);
}

static void version_cb(p9_aclient *c, int err, const p9_fcall *rx, void *arg) {
  (void)arg;
  if (!err && p9_str_eq(rx->version, "9P2000.L"))
    c->d = P9_2000L;
  else if (!err && p9_str_eq(rx->version, "9P2000"))
    c->d = P9_2000;
  else if (!err)
    err = -EPROTONOSUPPORT;
  if (!err && (rx->msize > c->msize || rx->msize < 2 * P9_IOHDRSZ))
    err = -EPROTO;
  if (err) {
    c->connect_cb(NULL, err, NULL, c->connect_arg);
    c->connect_cb = NULL;
    p9_aclient_close(c, NULL, NULL);
    return;
  }
  c->msize = rx->msize;
  c->t->max_msg = c->msize;
  c->connect_cb(c, 0, rx, c->connect_arg);
}

static void on_connect(uv_connect_t *req, int status) {
  dialreq *d = (dialreq *)req;
  p9_aclient *c = d->c;
  p9_fcall tx = {.type = P9_TVERSION, .tag = P9_NOTAG, .msize = c->msize};
  int err = status;
  if (!err && (c->t = p9_stream_new(d->h, &err))) {
    c->t->upper = c;
    c->t->recv = on_recv;
    c->t->closed = on_closed;
    c->t->max_msg = c->msize;
    tx.version = p9_str_c(d->version);
    if ((err = p9_aclient_rpc(c, &tx, version_cb, NULL)) == 0) {
      free(d);
      return;
    }
  }
  if (!c->t)
    uv_close((uv_handle_t *)d->h, free_handle);
  c->connect_cb(NULL, err, NULL, c->connect_arg);
  free(d);
  if (c->t) {
    c->closing = true;
    c->t->ops->close(c->t);
  } else {
    aclient_free(c);
  }
}

static int dial(uv_loop_t *loop, const p9_addr *a, dialreq *d) {
  struct sockaddr_storage ss;
  int err;
  if (a->is_unix) {
    d->h = xmalloc(sizeof(uv_pipe_t));
    UV_CHECK(uv_pipe_init(loop, (uv_pipe_t *)d->h, 0));
    uv_pipe_connect(&d->req, (uv_pipe_t *)d->h, a->path, on_connect);
    return 0;
  }
  if ((err = p9__resolve(a, &ss)) < 0)
    return err;
  d->h = xmalloc(sizeof(uv_tcp_t));
  UV_CHECK(uv_tcp_init(loop, (uv_tcp_t *)d->h));
  if ((err = uv_tcp_connect(&d->req, (uv_tcp_t *)d->h, (struct sockaddr *)&ss,
                            on_connect)) < 0)
    uv_close((uv_handle_t *)d->h, free_handle);
  return err;
}

int p9_aclient_connect(uv_loop_t *loop, const char *addr, uint32_t msize,
                       const char *version, p9_aclient_cb cb, void *arg) {
  p9_addr a;
  p9_aclient *c;
  dialreq *d;
  int err = p9_addr_parse(addr, &a);
  if (err < 0)
    return err;
  c = xcalloc(1, sizeof(*c));
  c->loop = loop;
  c->msize = msize ? msize : P9_DEFMSIZE;
  c->nextfid = 1;
  c->connect_cb = cb;
  c->connect_arg = arg;
  d = xcalloc(1, sizeof(*d));
  d->c = c;
  snprintf(d->version, sizeof(d->version), "%s",
           version ? version : "9P2000.L");
  if ((err = dial(loop, &a, d)) < 0) {
    free(d);
    aclient_free(c);
  }
  return err;
}

uint32_t p9_aclient_fid(p9_aclient *c) {
  return c->nfree ? c->freefids[--c->nfree] : c->nextfid++;
}

void p9_aclient_fid_put(p9_aclient *c, uint32_t fid) {
  if (c->nfree == c->capfree) {
    c->capfree = c->capfree ? 2 * c->capfree : 16;
    c->freefids = xrealloc(c->freefids, c->capfree * sizeof(uint32_t));
  }
  c->freefids[c->nfree++] = fid;
}

p9_dialect p9_aclient_dialect(p9_aclient *c) {
  return c->d;
}

uint32_t p9_aclient_msize(p9_aclient *c) {
  return c->msize;
}

void p9_aclient_close(p9_aclient *c, void (*done)(void *arg), void *arg) {
  c->closing = true;
  c->done = done;
  c->done_arg = arg;
  if (c->t) {
    c->t->ops->close(c->t);
    return;
  }
  /* From a callback that on_closed runs (the connection died before an
   * answer; version_cb's refusal is one): on_closed frees c once it has
   * run the other callbacks, which freeing it now would leave on freed
   * memory. */
  if (c->in_closed)
    return;
  fail_all(c, -ECANCELED);
  if (done)
    done(arg);
  aclient_free(c);
}
