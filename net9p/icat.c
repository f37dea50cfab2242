/*
 * icat.c: the ICA transport (uksim/p9ica.h, uksim/9p.h "The ICA
 * transport"): one client's 9P session carried by requests whose control
 * ICA holds the message and whose data ICA, when there is one, holds the
 * bulk bytes of a Twrite or of the Rread that answers a Tread.
 *
 * A call hands one message to the server library through t.recv, as the
 * stream transport hands it a frame, and the library answers through
 * sendv: the answer goes in place into the same ICAs.  An Rread's bytes
 * reach the data ICA with at most one copy: an op that reads into r->buf
 * (hostfs) reads straight into the data ICA, which icat_rbuf offers the
 * library, and one that points at bytes it holds (memfs) has them copied
 * once, from there.  A Twrite's bulk
 * bytes are gathered behind its header into the transport's own buffer,
 * since the library takes a message as one piece.
 *
 * Invariant: while a call runs, `cur` describes its ICAs and the first
 * answer sent ends it; an answer sent outside a call, or a second one, is
 * counted and dropped.  Nothing here trusts the control ICA: every size
 * and count is checked against the ICAs before it is used.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "p9_impl.h"

enum {
  HDR = 7,       /* size[4] type[1] tag[2] */
  IO_HDR = 23,   /* Tread and Twrite up to and with count[4] */
  COUNT_AT = 19, /* offset of count[4] in Tread and Twrite */
  MSIZE_AT = 7,  /* offset of msize[4] in Tversion and Rversion */
};

struct call {
  uint8_t *ctl, *data;
  size_t ctl_size, data_size;
  uint8_t type;
  uint32_t asked_msize; /* Tversion: what the client offered */
  bool answered;
  int status;
};

struct p9_icat {
  p9_transport t; /* first: the upcalls' p9_transport * is ours */
  uv_loop_t *loop;
  bool active, closed;
  struct call cur;
  uint8_t *in; /* a message the transport rewrote or gathered */
  size_t in_cap;
  uint64_t dropped;
};

static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

static size_t iov_len(const struct iovec *iov, int n) {
  size_t len = 0;
  for (int i = 0; i < n; i++)
    len += iov[i].iov_len;
  return len;
}

/* Copies iov[first..n) to dst (which has room); a piece already there
 * (an op that read into the data ICA through icat_rbuf) is not copied. */
static void gather(uint8_t *dst, const struct iovec *iov, int first, int n) {
  for (int i = first; i < n; i++) {
    if (iov[i].iov_base != dst)
      memcpy(dst, iov[i].iov_base, iov[i].iov_len);
    dst += iov[i].iov_len;
  }
}

/* An Rread answering a Tread that brought a data ICA: the header in ctl
 * ends after count[4], the bytes go to the data ICA (the read's count
 * was bounded by its size, so they fit). */
static int answer_bulk(struct call *c, const struct iovec *iov, int n) {
  size_t len = iov_len(iov, n);
  if (iov[0].iov_len < P9_RREAD_DATA_OFF ||
      len - P9_RREAD_DATA_OFF > c->data_size)
    return -EMSGSIZE;
  memcpy(c->ctl, iov[0].iov_base, P9_RREAD_DATA_OFF);
  put32(c->ctl, P9_RREAD_DATA_OFF);
  if (iov[0].iov_len > P9_RREAD_DATA_OFF) {
    size_t k = iov[0].iov_len - P9_RREAD_DATA_OFF;
    memcpy(c->data, (const uint8_t *)iov[0].iov_base + P9_RREAD_DATA_OFF, k);
    gather(c->data + k, iov, 1, n);
  } else {
    gather(c->data, iov, 1, n);
  }
  return 0;
}

/* Any other answer: whole in the control ICA.  An Rversion says the
 * smaller of the client's msize and the library's (transport note in
 * uksim/9p.h). */
static int answer_inline(struct call *c, const struct iovec *iov, int n) {
  size_t len = iov_len(iov, n);
  if (len > c->ctl_size)
    return -EMSGSIZE;
  gather(c->ctl, iov, 0, n);
  if (c->ctl[4] == P9_RVERSION && len >= MSIZE_AT + 4 &&
      get32(c->ctl + MSIZE_AT) > c->asked_msize)
    put32(c->ctl + MSIZE_AT, c->asked_msize);
  return 0;
}

static int icat_sendv(p9_transport *tp, const struct iovec *iov, int n) {
  p9_icat *t = (p9_icat *)tp;
  struct call *c = &t->cur;
  if (!t->active || c->answered || n < 1 || iov[0].iov_len < HDR) {
    t->dropped++;
    return 0;
  }
  c->answered = true;
  if (c->type == P9_TREAD && c->data &&
      ((const uint8_t *)iov[0].iov_base)[4] == P9_RREAD)
    c->status = answer_bulk(c, iov, n);
  else
    c->status = answer_inline(c, iov, n);
  return 0;
}

static int icat_send(p9_transport *tp, uint8_t *buf, size_t len) {
  int r = icat_sendv(tp, &(struct iovec){buf, len}, 1);
  free(buf);
  return r;
}

/* The library closes a transport whose send failed; ours never fails, so
 * a close comes from p9_icat_free (or a library limit), once. */
static void icat_close(p9_transport *tp) {
  p9_icat *t = (p9_icat *)tp;
  if (t->closed)
    return;
  t->closed = true;
  if (t->t.closed)
    t->t.closed(&t->t, 0);
}

/* A Tread that brought a data ICA: the op reads straight into it (the
 * count was bounded by its size in take_tread). */
static uint8_t *icat_rbuf(p9_transport *tp, size_t count) {
  p9_icat *t = (p9_icat *)tp;
  struct call *c = &t->cur;
  if (!t->active || c->answered || c->type != P9_TREAD || !c->data ||
      count > c->data_size)
    return NULL;
  return c->data;
}

static const struct p9_transport_ops icat_ops = {.send = icat_send,
                                                 .close = icat_close,
                                                 .sendv = icat_sendv,
                                                 .rbuf = icat_rbuf};

p9_icat *p9_icat_new(p9_srv *srv, uv_loop_t *loop, int *err) {
  p9_icat *t = xcalloc(1, sizeof(*t));
  int r;
  t->t.ops = &icat_ops;
  snprintf(t->t.peer, sizeof(t->t.peer), "ica");
  t->loop = loop;
  if ((r = p9_srv_serve(srv, &t->t)) < 0) {
    free(t);
    *err = r;
    return NULL;
  }
  return t;
}

void p9_icat_free(p9_icat *t) {
  if (!t)
    return;
  icat_close(&t->t);
  free(t->in);
  free(t);
}

p9_transport *p9_icat_transport(p9_icat *t) {
  return &t->t;
}

uint64_t p9_icat_dropped(const p9_icat *t) {
  return t->dropped;
}

/* The transport's own buffer with room for n bytes. */
static uint8_t *in_buf(p9_icat *t, size_t n) {
  if (t->in_cap < n) {
    free(t->in);
    t->in_cap = n;
    t->in = xmalloc(n);
  }
  return t->in;
}

/* The largest bulk count one message may carry in this session. */
static uint32_t bulk_max(const p9_icat *t) {
  return t->t.max_msg > P9_IOHDRSZ ? t->t.max_msg - P9_IOHDRSZ : 0;
}

/* A Twrite whose frame ends after count[4]: the bytes are in the data ICA.
 * A count beyond what one message of the session carries is cut to it,
 * and the Rwrite says so (a short write, as write(5) allows). */
static int take_twrite(p9_icat *t, const uint8_t **msg, size_t *len) {
  struct call *c = &t->cur;
  uint32_t count = get32(c->ctl + COUNT_AT);
  uint8_t *b;
  if (!c->data || count > c->data_size)
    return -EPROTO;
  if (count > bulk_max(t))
    count = bulk_max(t);
  b = in_buf(t, IO_HDR + (size_t)count);
  memcpy(b, c->ctl, IO_HDR);
  put32(b, IO_HDR + count);
  put32(b + COUNT_AT, count);
  memcpy(b + IO_HDR, c->data, count);
  *msg = b;
  *len = IO_HDR + (size_t)count;
  return 0;
}

/* A Tread: its count bounded by where the answer goes (the data ICA, or
 * the control ICA after the Rread header).  The library bounds it by the
 * session's msize too. */
static void take_tread(p9_icat *t, const uint8_t **msg, size_t *len) {
  struct call *c = &t->cur;
  size_t room = c->data ? c->data_size : c->ctl_size - P9_RREAD_DATA_OFF;
  uint8_t *b = in_buf(t, IO_HDR);
  memcpy(b, c->ctl, IO_HDR);
  if (get32(b + COUNT_AT) > room)
    put32(b + COUNT_AT, (uint32_t)(room > UINT32_MAX ? UINT32_MAX : room));
  *msg = b;
  *len = IO_HDR;
}

/* A Tversion asks for the library's msize (bulk counts are bounded by it,
 * frames by the ICAs); the Rversion tells the client no more than it
 * offered. */
static void take_tversion(p9_icat *t, const uint8_t **msg, size_t *len) {
  struct call *c = &t->cur;
  uint8_t *b = in_buf(t, *len);
  memcpy(b, c->ctl, *len);
  c->asked_msize = get32(b + MSIZE_AT);
  if (c->asked_msize >= P9_MINMSIZE)
    put32(b + MSIZE_AT, P9_MAXMSIZE);
  *msg = b;
}

/* Checks the frame in ctl and picks the message the library gets. */
static int take(p9_icat *t, const uint8_t **msg, size_t *len) {
  struct call *c = &t->cur;
  uint32_t size;
  if (c->ctl_size < HDR || (size = get32(c->ctl)) < HDR || size > c->ctl_size)
    return -EPROTO;
  c->type = c->ctl[4];
  *msg = c->ctl;
  *len = size;
  if (c->type == P9_TWRITE && size == IO_HDR && get32(c->ctl + COUNT_AT))
    return take_twrite(t, msg, len);
  if ((c->type == P9_TREAD || c->type == P9_TREADDIR) && size == IO_HDR) {
    if (c->type == P9_TREADDIR)
      c->data = NULL; /* dirents always travel in the frame */
    if (!c->data && c->ctl_size <= P9_RREAD_DATA_OFF)
      return -EMSGSIZE;
    take_tread(t, msg, len);
  } else if (c->type == P9_TVERSION && size >= MSIZE_AT + 4) {
    take_tversion(t, msg, len);
  }
  return 0;
}

int p9_icat_call(p9_icat *t, uint8_t *ctl, size_t ctl_size, uint8_t *data,
                 size_t data_size) {
  const uint8_t *msg;
  size_t len;
  int r;
  if (!ctl || t->closed)
    return -EPROTO;
  t->cur = (struct call){.ctl = ctl,
                         .ctl_size = ctl_size,
                         .data = data,
                         .data_size = data ? data_size : 0,
                         .asked_msize = P9_MAXMSIZE};
  if ((r = take(t, &msg, &len)) < 0)
    return r;
  if (len > t->t.max_msg)
    return -EMSGSIZE; /* what the stream transport closes for */
  t->active = true;
  t->t.recv(&t->t, msg, len);
  while (!t->cur.answered && t->loop && uv_run(t->loop, UV_RUN_ONCE))
    ;
  t->active = false;
  return t->cur.answered ? t->cur.status : -EIO;
}
