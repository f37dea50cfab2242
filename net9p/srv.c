/*
 * srv.c: the 9P server library (after Plan 9's lib9p srv.c).
 *
 * A connection turns each message from its transport into a p9_req, checks
 * it against the protocol (version first, tag not in use, fids exist, open
 * modes allow the operation, directory offsets continue the last read),
 * then hands it to the server's op or to a documented default.  Every
 * request ends in exactly one p9_respond(), now or later; the response is
 * dropped if the connection closed or a Tversion reset the session in the
 * meantime.  Rflush for a pending request is sent after that request's own
 * response, as flush(5) requires.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "p9_impl.h"

struct p9__req_priv {
  p9_req *flushers;   /* Tflush requests waiting for this one */
  p9_req *flush_next; /* next in the flushers list this one is on */
  uint8_t *rbuf;      /* Tread/Treaddir: response, data at +11 */
  size_t rbuf_cap;
  uint8_t *scratch;  /* Treaddir: stat entries before conversion */
  uint64_t dirstart; /* Treaddir: the offset (entry index) asked for */
  uint32_t epoch;    /* connection epoch when received */
  bool responded, in_table, dir_short, newfid_new;
  bool implicit;    /* a Tclunk the library made at teardown: never answered */
  bool tbuf;        /* Tread: r->buf is the transport's (its rbuf op) */
  size_t len, room; /* of msg */
  uint8_t msg[];
};

enum { REQ_ROOM = 128 }; /* message bytes every request block holds */

typedef struct reqblock {
  p9_req r;
  struct p9__req_priv p;
} reqblock;

static void finish(p9_req *r, int err, const char *ename);
static bool is_dir(const p9_fid *f);
static void clunk_all_fids(p9_conn *c);

/* --- fids ------------------------------------------------------------- */

/* Drops one reference; the last one runs the server's destroyfid. */
static void fid_put(p9_conn *c, p9_fid *f) {
  if (!f)
    return;
  if (f->ref == 1) {
    if (f->flags & P9__FID_AUTH)
      c->auth[f->aux % P9__NAUTH].used = false;
    else if (c->srv->ops->destroyfid)
      c->srv->ops->destroyfid(c->srv, f);
  }
  p9__fid_unref(&c->fids, f);
}

/* Clunk: unreachable by number now, gone when requests let go of it. */
static void fid_close(p9_conn *c, p9_fid *f) {
  if (!(f->flags & P9__FID_LIVE))
    return;
  p9__fid_unlink(&c->fids, f);
  fid_put(c, f);
}

/* --- sending ---------------------------------------------------------- */

static bool orphan(p9_req *r) {
  return r->priv->implicit || !r->conn->t || r->priv->epoch != r->conn->epoch;
}

static void trace(p9_conn *c, const char *dir, const p9_fcall *f) {
  char line[256];
  if (!c->srv->trace)
    return;
  p9_fcall_fmt(line, sizeof(line), f);
  p9__log(c->srv->log, "%s %s %s", c->t ? c->t->peer : "-", dir, line);
}

/* Hands one message to the transport; a transport that fails is closed.
 * With sendv the transport borrows the bytes, so the buffers stay ours;
 * without, it takes buf (which out_buf then allocated). */
static void transmit(p9_conn *c, const struct iovec *iov, int n) {
  int err = c->t->ops->sendv
                ? c->t->ops->sendv(c->t, iov, n)
                : c->t->ops->send(c->t, iov[0].iov_base, iov[0].iov_len);
  if (err < 0)
    c->t->ops->close(c->t);
}

/* Room for an n-byte answer: the connection's buffer when the transport
 * borrows (answers are encoded there one at a time), else a new one. */
static uint8_t *out_buf(p9_conn *c, size_t n) {
  if (!c->t->ops->sendv)
    return xmalloc(n);
  if (c->obuf_cap < n) {
    free(c->obuf);
    c->obuf_cap = n < 256 ? 256 : n;
    c->obuf = xmalloc(c->obuf_cap);
  }
  return c->obuf;
}

/* A read buffer of at least n bytes: the connection's spare if it fits. */
static uint8_t *take_buf(p9_conn *c, size_t n, size_t *cap) {
  uint8_t *b = c->spare;
  if (b && c->spare_cap >= n) {
    *cap = c->spare_cap;
    c->spare = NULL;
    return b;
  }
  *cap = n;
  return xmalloc(n);
}

/* Keeps the larger of b and the spare for the next read. */
static void give_buf(p9_conn *c, uint8_t *b, size_t cap) {
  if (!b)
    return;
  if (c->spare && c->spare_cap >= cap) {
    free(b);
    return;
  }
  free(c->spare);
  c->spare = b;
  c->spare_cap = cap;
}

static void send_error(p9_req *r, int err, const char *ename) {
  p9_conn *c = r->conn;
  p9_fcall f = {.tag = r->ifcall.tag};
  long n;
  uint8_t *buf;
  if (!ename)
    ename = p9_strerror(err);
  if (c->dialect == P9_2000L) {
    f.type = P9_RLERROR;
    f.ecode = err ? (uint32_t)-err : (uint32_t)p9_errno(p9_str_c(ename));
  } else {
    f.type = P9_RERROR;
    f.ename = p9_str_c(ename);
  }
  trace(c, "->", &f);
  n = p9_fcall_size(&f, c->dialect);
  buf = out_buf(c, (size_t)n);
  p9_encode(&f, c->dialect, buf, (size_t)n);
  transmit(c, &(struct iovec){buf, (size_t)n}, 1);
}

static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

/* Rread/Rreaddir through sendv: the header from here, the data from
 * wherever it is (the op's own bytes or the request's buffer). */
static void send_data(p9_conn *c, const p9_fcall *f, size_t n) {
  uint8_t h[P9_RREAD_DATA_OFF];
  struct iovec iov[2] = {{h, sizeof(h)}, {(void *)f->data, f->count}};
  put32(h, (uint32_t)n);
  h[4] = f->type;
  h[5] = (uint8_t)f->tag;
  h[6] = (uint8_t)(f->tag >> 8);
  put32(h + 7, f->count);
  transmit(c, iov, f->count ? 2 : 1);
}

/* Encodes and sends the op's successful answer; -errno if it can't.  An
 * Rread's data is where the op put it: in r->buf (the request's buffer,
 * data at +11), or, for a file, wherever ofcall.data points. */
static int send_reply(p9_req *r) {
  p9_conn *c = r->conn;
  p9_fcall *f = &r->ofcall;
  uint8_t *buf = r->priv->rbuf;
  long n;
  f->type = r->ifcall.type + 1;
  f->tag = r->ifcall.tag;
  if (buf &&
      (!f->data || r->ifcall.type == P9_TREADDIR || (r->fid && is_dir(r->fid))))
    f->data = buf + P9_RREAD_DATA_OFF;
  if (r->priv->tbuf && !f->data)
    f->data = r->buf; /* where the transport asked for it */
  n = p9_fcall_size(f, c->dialect);
  if (n < 0)
    return (int)n;
  if ((size_t)n > c->msize)
    return -EMSGSIZE;
  trace(c, "->", f);
  if ((buf || r->priv->tbuf) && c->t->ops->sendv) {
    send_data(c, f, (size_t)n);
    return 0;
  }
  if (!buf)
    buf = out_buf(c, (size_t)n);
  else
    r->priv->rbuf = NULL; /* the transport takes it */
  p9_encode(f, c->dialect, buf, (size_t)n);
  transmit(c, &(struct iovec){buf, (size_t)n}, 1);
  return 0;
}

/* --- completion per message type -------------------------------------- */

static void settle_walk(p9_req *r, int *err) {
  p9_fcall *i = &r->ifcall, *o = &r->ofcall;
  p9_fid *nf = r->newfid;
  if (!*err && o->nwqid == i->nwname) {
    nf->qid = i->nwname ? o->wqid[i->nwname - 1] : r->fid->qid;
    nf->aux = i->nwname ? r->newaux : r->fid->aux;
    nf->uid = r->fid->uid;
    if (!i->nwname && nf != r->fid && r->srv->ops->clonefid)
      nf->aux = r->srv->ops->clonefid(r->srv, r->fid);
    return;
  }
  if (!*err && (o->nwqid > i->nwname || (o->nwqid == 0 && i->nwname)))
    *err = -ENOENT; /* an op that walked nothing must say why */
  if (r->priv->newfid_new)
    fid_close(r->conn, nf);
}

static void settle_open(p9_req *r, uint8_t mode) {
  r->fid->qid = r->ofcall.qid;
  r->fid->omode = mode;
  r->fid->diroffset = r->fid->dirindex = 0;
  if (!r->ofcall.iounit)
    r->ofcall.iounit = r->conn->msize - P9_IOHDRSZ;
}

static void attr_from_stat(p9_attr *a, const p9_stat *st) {
  memset(a, 0, sizeof(*a));
  a->valid = P9_GETATTR_BASIC;
  a->qid = st->qid;
  a->mode = (st->mode & 0777) | ((st->mode & P9_DMDIR) ? 0040000 : 0100000);
  a->nlink = (st->mode & P9_DMDIR) ? 2 : 1;
  a->uid = (uint32_t)getuid();
  a->gid = (uint32_t)getgid();
  a->size = st->length;
  a->blksize = 4096;
  a->blocks = (st->length + 511) / 512;
  a->atime_sec = st->atime;
  a->mtime_sec = a->ctime_sec = st->mtime;
}

/* Rewrites the stat entries the read op produced as 9P2000.L dirents. */
static void settle_readdir(p9_req *r) {
  struct p9__req_priv *p = r->priv;
  uint8_t *out = p->rbuf + P9_RREAD_DATA_OFF;
  size_t used = 0, in = 0, cap = r->ifcall.count;
  uint64_t idx = p->dirstart;
  p9_stat st;
  long k;
  while (in < r->ofcall.count &&
         (k = p9_stat_decode(p->scratch + in, r->ofcall.count - in, &st)) > 0) {
    p9_dirent de = {st.qid, ++idx, (st.mode & P9_DMDIR) ? 4 : 8, st.name};
    long n = p9_dirent_encode(&de, out + used, cap - used);
    if (n < 0)
      break;
    used += (size_t)n;
    in += (size_t)k;
  }
  r->ofcall.count = (uint32_t)used;
}

/* Applies a response to the connection's fid state; may turn success
 * into an error (a walk that walked nothing, a read larger than asked). */
static void settle(p9_req *r, int *err) {
  p9_conn *c = r->conn;
  if (!r->fid)
    return; /* refused before any fid was touched */
  switch (r->ifcall.type) {
  case P9_TATTACH:
  case P9_TAUTH:
    if (*err)
      fid_close(c, r->fid);
    else
      r->fid->qid = r->ofcall.qid;
    break;
  case P9_TWALK:
    settle_walk(r, err);
    break;
  case P9_TOPEN:
  case P9_TCREATE:
  case P9_TLOPEN:
  case P9_TLCREATE:
    if (!*err)
      settle_open(r, r->ifcall.mode);
    break;
  case P9_TREAD:
  case P9_TREADDIR:
    if (!*err && r->ofcall.count > r->ifcall.count)
      *err = -EIO;
    else if (!*err && r->ofcall.count == 0 && r->priv->dir_short)
      *err = -EOVERFLOW; /* not even one entry fits in count */
    else if (!*err && r->ifcall.type == P9_TREADDIR)
      settle_readdir(r);
    else if (!*err && (r->fid->qid.type & P9_QTDIR))
      r->fid->diroffset = r->ifcall.offset + r->ofcall.count;
    break;
  case P9_TCLUNK:
    *err = 0; /* an ORCLOSE remove that failed still clunks */
    fid_close(c, r->fid);
    break;
  case P9_TREMOVE:
    fid_close(c, r->fid);
    break;
  case P9_TGETATTR:
    if (!*err)
      attr_from_stat(&r->ofcall.attr, &r->ofcall.stat);
    break;
  }
}

/* --- request lifetime ------------------------------------------------- */

static void tag_remove(p9_conn *c, p9_req *r) {
  for (unsigned i = 0; i < c->ntags; i++) {
    if (c->tags[i] == r) {
      c->tags[i] = c->tags[--c->ntags];
      break;
    }
  }
  r->priv->in_table = false;
}

static p9_req *tag_lookup(p9_conn *c, uint16_t tag) {
  for (unsigned i = 0; i < c->ntags; i++)
    if (c->tags[i]->ifcall.tag == tag)
      return c->tags[i];
  return NULL;
}

static void conn_free(p9_conn *c) {
  c->srv->nconns--;
  if (c->prev)
    c->prev->next = c->next;
  else
    c->srv->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  p9__fidtab_close(&c->fids);
  free(c->obuf);
  free(c->spare);
  free(c->spare_req);
  free(c->tags);
  free(c);
}

/* Releases everything r holds; answers the flushes that waited for it. */
static void release(p9_req *r) {
  p9_conn *c = r->conn;
  p9_req *fl = r->priv->flushers, *next;
  if (r->priv->in_table)
    tag_remove(c, r);
  if (r->newfid && r->newfid != r->fid)
    fid_put(c, r->newfid);
  fid_put(c, r->fid);
  fid_put(c, r->afid);
  fid_put(c, r->dfid);
  give_buf(c, r->priv->rbuf, r->priv->rbuf_cap);
  free(r->priv->scratch);
  if (r->priv->room == REQ_ROOM && !c->spare_req)
    c->spare_req = r; /* the next small message reuses it */
  else
    free(r);
  for (; fl; fl = next) {
    next = fl->priv->flush_next;
    fl->oldreq = NULL;
    finish(fl, 0, NULL);
  }
  if (--c->pending == 0 && !c->t)
    conn_free(c);
}

static void finish(p9_req *r, int err, const char *ename) {
  struct p9__req_priv *p = r->priv;
  assert(!p->responded);
  p->responded = true;
  if (ename && !err)
    err = -p9_errno(p9_str_c(ename));
  settle(r, &err);
  if (!orphan(r)) {
    if (!err)
      err = send_reply(r);
    if (err)
      send_error(r, err, ename);
  }
  release(r);
}

void p9_respond(p9_req *r, int err) {
  finish(r, err < 0 ? err : -err, NULL);
}

/* A NULL ename would read as success (no errno, no text): it is an i/o
 * error instead, so an error path can never answer success. */
void p9_respond_error(p9_req *r, const char *ename) {
  finish(r, ename ? 0 : -EIO, ename);
}

int p9_dirread_put(p9_req *r, const p9_stat *st) {
  long n = p9_stat_encode(st, r->buf + r->ofcall.count,
                          r->ifcall.count - r->ofcall.count);
  if (n < 0) {
    r->priv->dir_short = true;
    return -ENOSPC;
  }
  r->ofcall.count += (uint32_t)n;
  r->fid->dirindex++;
  return 0;
}

/* --- validation helpers ----------------------------------------------- */

static int need_fid(p9_req *r, uint32_t num, p9_fid **out) {
  p9_fid *f = p9__fid_lookup(&r->conn->fids, num);
  if (!f)
    return -EBADF;
  *out = f;
  if (f->flags & P9__FID_AUTH && r->ifcall.type != P9_TREAD &&
      r->ifcall.type != P9_TWRITE && r->ifcall.type != P9_TCLUNK &&
      r->ifcall.type != P9_TATTACH)
    return -EBADF;
  return 0;
}

/*
 * Names are checked here, where the server takes them, and not in the
 * codec: the codec is also our clients', which must read whatever a
 * foreign server lists (a Linux file name is any bytes, and diod exports
 * them as they are), and a decoder could only say "malformed message".
 * The other strings (version, uname, aname, error texts) are not names.
 */

/* 0 if s may be one element of a path: not empty, no '/' or NUL, UTF-8
 * (intro(5)); else -EINVAL, or -EILSEQ ("name is not valid UTF-8"). */
static int elem_error(p9_str s) {
  if (s.len == 0 || memchr(s.s, '/', s.len) || memchr(s.s, 0, s.len))
    return -EINVAL;
  return p9__utf8_valid(s.s, s.len) ? 0 : -EILSEQ;
}

/* A name a client may create: an element that is neither "." nor "..". */
static int name_error(p9_str s) {
  int err = elem_error(s);
  if (!err && (p9_str_eq(s, ".") || p9_str_eq(s, "..")))
    err = -EINVAL;
  return err;
}

static bool is_dir(const p9_fid *f) {
  return (f->qid.type & P9_QTDIR) != 0;
}

static bool can_read(const p9_fid *f) {
  uint8_t m = f->omode & 3;
  return f->omode != P9_ONONE && (m == P9_OREAD || m == P9_ORDWR || m == 3);
}

static bool can_write(const p9_fid *f) {
  uint8_t m = f->omode & 3;
  return f->omode != P9_ONONE && (m == P9_OWRITE || m == P9_ORDWR);
}

#define OP(r, name) ((r)->srv->ops->name)
#define CALL_OR(r, name, deftext)                                              \
  do {                                                                         \
    if (OP(r, name))                                                           \
      OP(r, name)(r);                                                          \
    else if (deftext)                                                          \
      p9_respond_error(r, deftext);                                            \
    else                                                                       \
      p9_respond(r, 0);                                                        \
  } while (0)

#define Enotsup "operation not supported"

/* --- 9P2000 messages -------------------------------------------------- */

/* The dialect a client's version string asks for, and the answer's
 * version ("unknown" when we speak neither, version(5)). */
static p9_dialect pick_dialect(p9_str v, p9_str *answer) {
  if (p9_str_eq(v, "9P2000.L")) {
    *answer = p9_str_c("9P2000.L");
    return P9_2000L;
  }
  if (v.len >= 6 && memcmp(v.s, "9P2000", 6) == 0 &&
      (v.len == 6 || v.s[6] == '.')) {
    *answer = p9_str_c("9P2000");
    return P9_2000;
  }
  *answer = p9_str_c("unknown");
  return P9_UNKNOWN;
}

static void do_version(p9_req *r) {
  p9_conn *c = r->conn;
  p9_str v = r->ifcall.version;
  /* version(5): a Tversion aborts all I/O and clunks every fid. */
  c->epoch++;
  r->priv->epoch = c->epoch;
  while (c->ntags)
    tag_remove(c, c->tags[0]);
  clunk_all_fids(c);
  memset(c->auth, 0, sizeof(c->auth));
  c->dialect = P9_UNKNOWN;
  c->t->max_msg = P9__VERSION_FRAME; /* until a dialect is agreed */
  if (r->ifcall.msize < P9_MINMSIZE) {
    p9_respond_error(r, "msize too small");
    return;
  }
  c->msize = r->ifcall.msize < c->srv->msize ? r->ifcall.msize : c->srv->msize;
  r->ofcall.msize = c->msize;
  c->dialect = pick_dialect(v, &r->ofcall.version);
  if (c->dialect)
    c->t->max_msg = c->msize;
  p9_respond(r, 0);
}

/* Makes fid num (Tauth's afid, Tattach's fid) r->fid, with a reference
 * for the request besides the table's; or answers why not and returns
 * false: a number in use or NOFID is "fid already in use", a full table
 * "too many fids" (an error, never the success an empty text would be). */
static bool new_fid(p9_req *r, uint32_t num) {
  int err;
  if ((r->fid = p9__fid_alloc(&r->conn->fids, num, &err))) {
    r->fid->ref++;
    return true;
  }
  if (err == -EBADF)
    p9_respond_error(r, "fid already in use");
  else
    p9_respond(r, err);
  return false;
}

static void do_auth(p9_req *r) {
  p9_conn *c = r->conn;
  int slot;
  if (!c->srv->has_key) {
    p9_respond_error(r, "no authentication required");
    return;
  }
  for (slot = 0; slot < P9__NAUTH && c->auth[slot].used; slot++)
    ;
  if (slot == P9__NAUTH) {
    p9_respond(r, -ENFILE);
    return;
  }
  if (!new_fid(r, r->ifcall.afid))
    return;
  r->fid->flags |= P9__FID_AUTH;
  r->fid->aux = (uint64_t)slot;
  c->auth[slot].used = true;
  c->auth[slot].ok = false;
  p9__random(c->auth[slot].chal, P9_CHALLEN);
  p9_auth_mac(c->srv->key, c->auth[slot].chal, r->ifcall.uname, r->ifcall.aname,
              c->auth[slot].want);
  p9__auth_who(r->ifcall.uname, r->ifcall.aname, c->auth[slot].who);
  r->ofcall.qid = (p9_qid){P9_QTAUTH, 0, (1ull << 63) | (uint64_t)slot};
  p9_respond(r, 0);
}

/* With a key, attach needs an afid whose challenge was answered. */
static const char *check_afid(p9_req *r) {
  p9_conn *c = r->conn;
  p9__auth *a;
  uint8_t who[32];
  if (!c->srv->has_key)
    return NULL;
  if (r->ifcall.afid == P9_NOFID)
    return "authentication required";
  if (need_fid(r, r->ifcall.afid, &r->afid) < 0 ||
      !(r->afid->flags & P9__FID_AUTH))
    return "authentication required";
  a = &c->auth[r->afid->aux % P9__NAUTH];
  p9__auth_who(r->ifcall.uname, r->ifcall.aname, who);
  if (!a->ok || memcmp(who, a->who, sizeof(who)) != 0)
    return "authentication failed";
  return NULL;
}

static void do_attach(p9_req *r) {
  p9_conn *c = r->conn;
  const char *why = check_afid(r);
  if (why) {
    p9__log(c->srv->log, "refused attach from %s uname '%.*s': %s", c->t->peer,
            (int)r->ifcall.uname.len, r->ifcall.uname.s, why);
    p9_respond_error(r, why);
    return;
  }
  if (!new_fid(r, r->ifcall.fid))
    return;
  if (!OP(r, attach)) {
    p9_respond_error(r, Enotsup);
    return;
  }
  OP(r, attach)(r);
}

static void do_flush(p9_req *r) {
  p9_req *old = tag_lookup(r->conn, r->ifcall.oldtag);
  if (!old || old == r) {
    p9_respond(r, 0);
    return;
  }
  r->priv->flush_next = old->priv->flushers;
  old->priv->flushers = r;
  r->oldreq = old;
  if (OP(r, flush))
    OP(r, flush)(r);
}

static int walk_check(p9_req *r) {
  p9_fcall *i = &r->ifcall;
  int err = need_fid(r, i->fid, &r->fid);
  if (err)
    return err;
  /* walk(5) forbids walking an open fid; Linux clients (9P2000.L) do it. */
  if (r->fid->omode != P9_ONONE && r->conn->dialect != P9_2000L)
    return -EBADF;
  if (i->nwname && !is_dir(r->fid))
    return -ENOTDIR;
  for (int k = 0; k < i->nwname; k++)
    if ((err = elem_error(i->wname[k])))
      return err;
  if (i->newfid == i->fid) {
    r->newfid = r->fid;
    return 0;
  }
  if (!(r->newfid = p9__fid_alloc(&r->conn->fids, i->newfid, &err)))
    return err;
  r->newfid->ref++;
  r->priv->newfid_new = true;
  return 0;
}

static void do_walk(p9_req *r) {
  int err = walk_check(r);
  if (err == -EBADF && r->fid && r->fid->omode != P9_ONONE)
    p9_respond_error(r, "cannot walk an open fid");
  else if (err == -EBADF && r->fid)
    p9_respond_error(r, "fid already in use");
  else if (err)
    p9_respond(r, err);
  else if (r->ifcall.nwname == 0)
    p9_respond(r, 0); /* a clone: no op needed */
  else
    CALL_OR(r, walk, Enotsup);
}

static int open_check(p9_req *r, uint8_t mode) {
  int err = need_fid(r, r->ifcall.fid, &r->fid);
  if (err)
    return err;
  if (r->fid->omode != P9_ONONE)
    return -EBADF;
  if (mode & ~(3 | P9_OTRUNC | P9_ORCLOSE))
    return -EINVAL;
  if (is_dir(r->fid) && ((mode & 3) != P9_OREAD || (mode & P9_OTRUNC)))
    return -EISDIR;
  r->ofcall.qid = r->fid->qid;
  return 0;
}

static void do_open(p9_req *r) {
  int err = open_check(r, r->ifcall.mode);
  if (err == -EBADF && r->fid)
    p9_respond_error(r, "fid already open");
  else if (err)
    p9_respond(r, err);
  else
    CALL_OR(r, open, NULL);
}

static int create_check(p9_req *r) {
  p9_fcall *i = &r->ifcall;
  int err = need_fid(r, i->fid, &r->fid);
  if (err)
    return err;
  if (r->fid->omode != P9_ONONE)
    return -EBADF;
  if (!is_dir(r->fid))
    return -ENOTDIR;
  if ((err = name_error(i->name)))
    return err;
  if (i->mode & ~(3 | P9_OTRUNC | P9_ORCLOSE | P9_OEXCL))
    return -EINVAL;
  if ((i->perm & P9_DMDIR) && ((i->mode & 3) != P9_OREAD))
    return -EINVAL;
  return 0;
}

static void do_create(p9_req *r) {
  int err = create_check(r);
  if (err)
    p9_respond(r, err);
  else
    CALL_OR(r, create, "create prohibited");
}

static void auth_read(p9_req *r) {
  p9__auth *a = &r->conn->auth[r->fid->aux % P9__NAUTH];
  uint64_t off = r->ifcall.offset;
  uint32_t n = off < P9_CHALLEN ? P9_CHALLEN - (uint32_t)off : 0;
  if (n > r->ifcall.count)
    n = r->ifcall.count;
  memcpy(r->buf, a->chal + (off < P9_CHALLEN ? off : 0), n);
  r->ofcall.count = n;
  p9_respond(r, 0);
}

static void auth_write(p9_req *r) {
  p9_conn *c = r->conn;
  p9__auth *a = &c->auth[r->fid->aux % P9__NAUTH];
  if (r->ifcall.count != P9_MACLEN ||
      sodium_memcmp(r->ifcall.data, a->want, P9_MACLEN) != 0) {
    p9__log(c->srv->log, "refused authentication from %s: bad key", c->t->peer);
    p9_respond_error(r, "authentication failed");
    return;
  }
  a->ok = true;
  r->ofcall.count = r->ifcall.count;
  p9_respond(r, 0);
}

/* A file's Tread reads straight into the transport's memory when it
 * offers some (p9_transport_ops.rbuf): no copy between op and peer. */
static bool transport_buf(p9_req *r) {
  p9_transport *t = r->conn->t;
  if (r->ifcall.type != P9_TREAD || is_dir(r->fid) ||
      (r->fid->flags & P9__FID_AUTH) || !t->ops->rbuf || !t->ops->sendv)
    return false;
  r->buf = t->ops->rbuf(t, r->ifcall.count);
  r->priv->tbuf = r->buf != NULL;
  return r->priv->tbuf;
}

static int read_check(p9_req *r) {
  p9_fcall *i = &r->ifcall;
  int err = need_fid(r, i->fid, &r->fid);
  if (err)
    return err;
  if (!(r->fid->flags & P9__FID_AUTH) && !can_read(r->fid))
    return -EBADF;
  if (i->count > r->conn->msize - P9_IOHDRSZ)
    i->count = r->conn->msize - P9_IOHDRSZ;
  if (i->type == P9_TREAD && is_dir(r->fid)) {
    if (i->offset == 0)
      r->fid->dirindex = r->fid->diroffset = 0;
    else if (i->offset != r->fid->diroffset)
      return -ESPIPE;
  }
  if (transport_buf(r))
    return 0;
  r->priv->rbuf =
      take_buf(r->conn, P9_RREAD_DATA_OFF + i->count, &r->priv->rbuf_cap);
  r->buf = r->priv->rbuf + P9_RREAD_DATA_OFF;
  return 0;
}

static void do_read(p9_req *r) {
  int err = read_check(r);
  if (err == -EBADF && r->fid)
    p9_respond_error(r, "fid not open for reading");
  else if (err == -ESPIPE)
    p9_respond_error(r, "bad offset in directory read");
  else if (err)
    p9_respond(r, err);
  else if (r->fid->flags & P9__FID_AUTH)
    auth_read(r);
  else
    CALL_OR(r, read, Enotsup);
}

static void do_write(p9_req *r) {
  int err = need_fid(r, r->ifcall.fid, &r->fid);
  if (err)
    p9_respond(r, err);
  else if (r->fid->flags & P9__FID_AUTH)
    auth_write(r);
  else if (is_dir(r->fid))
    p9_respond(r, -EISDIR);
  else if (!can_write(r->fid))
    p9_respond_error(r, "fid not open for writing");
  else
    CALL_OR(r, write, Enotsup);
}

static void do_clunk(p9_req *r) {
  int err = need_fid(r, r->ifcall.fid, &r->fid);
  if (err)
    p9_respond(r, err);
  else if (r->fid->omode != P9_ONONE && (r->fid->omode & P9_ORCLOSE) &&
           OP(r, remove))
    OP(r, remove)(r);
  else
    p9_respond(r, 0);
}

/* The shape of Tremove, Tstat, Twstat: a fid, then the op or a default. */
static void fid_op(p9_req *r, void (*op)(p9_req *), const char *deftext) {
  int err = need_fid(r, r->ifcall.fid, &r->fid);
  if (err)
    p9_respond(r, err);
  else if (op)
    op(r);
  else
    p9_respond_error(r, deftext);
}

static void do_remove(p9_req *r) {
  fid_op(r, OP(r, remove), "remove prohibited");
}

static void do_stat(p9_req *r) {
  fid_op(r, OP(r, stat), Enotsup);
}

/* A Twstat with a name renames the file: the name must be one a client
 * could create. */
static void do_wstat(p9_req *r) {
  p9_str name = r->ifcall.stat.name;
  int err = name.len ? name_error(name) : 0;
  if (err)
    p9_respond(r, err);
  else
    fid_op(r, OP(r, wstat), "wstat prohibited");
}

/* --- 9P2000.L messages ------------------------------------------------ */

/* Linux open flags -> 9P2000 open mode (the bits a file server acts on). */
static uint8_t lflags_to_mode(uint32_t fl) {
  uint8_t m = (uint8_t)(fl & 3);
  if (m == 3)
    m = P9_ORDWR;
  if (fl & 01000) /* O_TRUNC in the 9P2000.L (x86 Linux) numbering */
    m |= P9_OTRUNC;
  return m;
}

static void do_lopen(p9_req *r) {
  int err;
  r->ifcall.mode = lflags_to_mode(r->ifcall.flags);
  err = open_check(r, r->ifcall.mode);
  if (err)
    p9_respond(r, err);
  else
    CALL_OR(r, open, NULL);
}

static void do_lcreate(p9_req *r) {
  int err;
  r->ifcall.mode = lflags_to_mode(r->ifcall.flags);
  r->ifcall.perm = r->ifcall.lmode & 0777;
  err = create_check(r);
  if (err)
    p9_respond(r, err);
  else
    CALL_OR(r, create, "create prohibited");
}

static void do_setattr(p9_req *r) {
  p9_attr *a = &r->ifcall.attr;
  p9_stat *st = &r->ifcall.stat;
  int err = need_fid(r, r->ifcall.fid, &r->fid);
  if (err) {
    p9_respond(r, err);
    return;
  }
  p9_stat_null(st);
  if (a->valid & P9_SETATTR_MODE)
    st->mode = (a->mode & 0777) | (is_dir(r->fid) ? P9_DMDIR : 0);
  if (a->valid & P9_SETATTR_SIZE)
    st->length = a->size;
  if (a->valid & P9_SETATTR_MTIME_SET)
    st->mtime = (uint32_t)a->mtime_sec;
  else if (a->valid & P9_SETATTR_MTIME)
    st->mtime = (uint32_t)time(NULL);
  CALL_OR(r, wstat, "wstat prohibited");
}

static void do_readdir(p9_req *r) {
  int err = read_check(r);
  if (!err && !is_dir(r->fid))
    err = -ENOTDIR;
  if (err) {
    p9_respond(r, err);
    return;
  }
  r->priv->scratch = xmalloc(r->ifcall.count ? r->ifcall.count : 1);
  r->buf = r->priv->scratch;
  r->fid->dirindex = r->priv->dirstart = r->ifcall.offset;
  CALL_OR(r, read, Enotsup);
}

/* .L operations without a 9P2000 twin: which fids they name, whether
 * their names must be valid, the op, and the default when it is NULL. */
enum { N_FID = 1, N_DFID = 2, N_NAME = 4, N_NEWNAME = 8, N_DIR = 16 };
struct simple {
  uint8_t need;
  uint16_t op;         /* offsetof(struct p9_srv_ops, ...) + 1; 0: none */
  const char *deftext; /* NULL: succeed with the defaults */
};
#define SOP(m) (uint16_t)(offsetof(struct p9_srv_ops, m) + 1)
static const struct simple simple[P9_TVERSION] = {
    [P9_TSTATFS] = {N_FID, SOP(statfs), NULL},
    [P9_TGETATTR] = {N_FID, SOP(stat), "operation not supported"},
    [P9_TSYMLINK] = {N_FID | N_NAME | N_DIR, SOP(symlink), Enotsup},
    [P9_TMKNOD] = {N_DFID | N_NAME, SOP(mknod), "create prohibited"},
    [P9_TRENAME] = {N_FID | N_DFID | N_NAME, SOP(rename), Enotsup},
    [P9_TREADLINK] = {N_FID, SOP(readlink), Enotsup},
    [P9_TXATTRWALK] = {N_FID, 0, Enotsup},
    [P9_TXATTRCREATE] = {N_FID, 0, Enotsup},
    [P9_TFSYNC] = {N_FID, SOP(fsync), NULL},
    [P9_TLOCK] = {N_FID, SOP(lock), NULL},
    [P9_TGETLOCK] = {N_FID, SOP(getlock), NULL},
    [P9_TLINK] = {N_FID | N_DFID | N_NAME, SOP(link), Enotsup},
    [P9_TMKDIR] = {N_DFID | N_NAME, SOP(mkdir), "create prohibited"},
    [P9_TRENAMEAT] = {N_FID | N_DFID | N_NAME | N_NEWNAME, SOP(renameat),
                      Enotsup},
    [P9_TUNLINKAT] = {N_FID | N_NAME | N_DIR, SOP(unlinkat),
                      "remove prohibited"},
};

static int simple_check(p9_req *r, const struct simple *s) {
  int err;
  if ((s->need & N_FID) && (err = need_fid(r, r->ifcall.fid, &r->fid)))
    return err;
  if ((s->need & N_DFID) && (err = need_fid(r, r->ifcall.dfid, &r->dfid)))
    return err;
  if ((s->need & N_DIR) && !is_dir(r->fid))
    return -ENOTDIR;
  if ((s->need & N_DFID) && !is_dir(r->dfid) && r->ifcall.type != P9_TLINK)
    return -ENOTDIR;
  if ((s->need & N_NAME) && (err = name_error(r->ifcall.name)))
    return err;
  if ((s->need & N_NEWNAME) && (err = name_error(r->ifcall.newname)))
    return err;
  return 0;
}

static void simple_defaults(p9_req *r) {
  p9_fcall *o = &r->ofcall, *i = &r->ifcall;
  o->statfs = (p9_statfs){.type = 0x01021997, .bsize = 4096, .namelen = 255};
  o->ltype = 2; /* F_UNLCK: Tgetlock finds no conflicting lock */
  o->lstart = i->lstart;
  o->llength = i->llength;
  o->proc_id = i->proc_id;
  o->client_id = i->client_id;
}

static void do_simple(p9_req *r) {
  const struct simple *s = &simple[r->ifcall.type];
  void (*op)(p9_req *) = NULL;
  int err = simple_check(r, s);
  if (err) {
    p9_respond(r, err);
    return;
  }
  simple_defaults(r);
  if (s->op)
    memcpy(&op, (const char *)r->srv->ops + s->op - 1, sizeof(op));
  if (op)
    op(r);
  else if (s->deftext)
    p9_respond_error(r, s->deftext);
  else
    p9_respond(r, 0);
}

/* --- dispatch --------------------------------------------------------- */

typedef void (*handler)(p9_req *r);

static handler handler_for(p9_dialect d, uint8_t type) {
  switch (type) {
  case P9_TVERSION:
    return do_version;
  case P9_TAUTH:
    return do_auth;
  case P9_TATTACH:
    return do_attach;
  case P9_TFLUSH:
    return do_flush;
  case P9_TWALK:
    return do_walk;
  case P9_TREAD:
    return do_read;
  case P9_TWRITE:
    return do_write;
  case P9_TCLUNK:
    return do_clunk;
  case P9_TREMOVE:
    return do_remove;
  }
  if (d == P9_2000) {
    switch (type) {
    case P9_TOPEN:
      return do_open;
    case P9_TCREATE:
      return do_create;
    case P9_TSTAT:
      return do_stat;
    case P9_TWSTAT:
      return do_wstat;
    }
    return NULL;
  }
  switch (type) {
  case P9_TLOPEN:
    return do_lopen;
  case P9_TLCREATE:
    return do_lcreate;
  case P9_TSETATTR:
    return do_setattr;
  case P9_TREADDIR:
    return do_readdir;
  }
  return type < P9_TVERSION && simple[type].need ? do_simple : NULL;
}

/* A zeroed request block with room for a message of len bytes: most
 * messages are small and answered at once, so one block per connection,
 * kept by release, serves them without a malloc each. */
static p9_req *req_new(p9_conn *c, const uint8_t *msg, size_t len) {
  size_t room = len > REQ_ROOM ? len : REQ_ROOM;
  reqblock *b = room == REQ_ROOM ? c->spare_req : NULL;
  if (b) {
    c->spare_req = NULL;
    memset(b, 0, sizeof(*b));
  } else {
    b = xcalloc(1, sizeof(*b) + room);
  }
  b->p.room = room;
  b->r.priv = &b->p;
  b->r.conn = c;
  b->r.srv = c->srv;
  b->p.len = len;
  b->p.epoch = c->epoch;
  if (len)
    memcpy(b->p.msg, msg, len);
  c->pending++;
  return &b->r;
}

/* Decodes and admits one request; returns the handler or NULL when the
 * request was already answered with an error. */
static handler admit(p9_req *r) {
  p9_conn *c = r->conn;
  p9_dialect d = c->dialect ? c->dialect : P9_2000;
  int err = p9_decode(r->priv->msg, r->priv->len, d, &r->ifcall);
  handler h;
  if (err == -EBADMSG && r->ifcall.type == P9_TWALK && r->priv->len >= 17 &&
      (r->priv->msg[15] | r->priv->msg[16] << 8) > P9_MAXWELEM)
    err = -E2BIG;
  if (err) {
    p9_respond_error(r, err == -ENOSYS  ? "unknown message type"
                        : err == -E2BIG ? "too many names in walk"
                                        : "malformed message");
    return NULL;
  }
  trace(c, "<-", &r->ifcall);
  if (r->ifcall.type == P9_TVERSION)
    return do_version;
  if (!c->dialect) {
    p9_respond_error(r, "version not negotiated");
    return NULL;
  }
  if ((r->ifcall.type & 1) || !(h = handler_for(c->dialect, r->ifcall.type))) {
    p9_respond_error(r, "unexpected message");
    return NULL;
  }
  if (tag_lookup(c, r->ifcall.tag)) {
    p9_respond_error(r, "duplicate tag");
    return NULL;
  }
  if (c->ntags >= c->srv->max_tags) {
    p9_respond(r, -EAGAIN);
    return NULL;
  }
  c->tags[c->ntags++] = r;
  r->priv->in_table = true;
  return h;
}

static void conn_recv(p9_transport *t, const uint8_t *msg, size_t len) {
  p9_conn *c = t->upper;
  p9_req *r;
  handler h;
  if (len < 7) { /* no tag to answer: the stream is broken */
    p9__log(c->srv->log, "%s: runt message, closing", t->peer);
    t->ops->close(t);
    return;
  }
  r = req_new(c, msg, len);
  if ((h = admit(r)))
    h(r);
}

/* Clunks fid num as if the client had sent Tclunk: through do_clunk, so
 * a fid opened with ORCLOSE removes its file.  The answer goes nowhere. */
static void implicit_clunk(p9_conn *c, uint32_t num) {
  p9_req *r = req_new(c, NULL, 0);
  r->priv->implicit = true;
  r->ifcall.type = P9_TCLUNK;
  r->ifcall.tag = P9_NOTAG;
  r->ifcall.fid = num;
  trace(c, "<-", &r->ifcall);
  do_clunk(r);
}

/* Clunks every live fid: the connection closed, or a Tversion reset the
 * session (version(5) frees all fids).  open(5) removes an ORCLOSE file
 * "when the fid is clunked", and a fid dies with its connection, so the
 * remove op runs here too.  The extra pending count keeps c alive while
 * the loop runs, even if every clunk is answered at once. */
static void clunk_all_fids(p9_conn *c) {
  c->pending++;
  for (uint32_t i = 0; i < c->fids.nslot; i++) {
    p9_fid *f = p9__fid_slot(&c->fids, i);
    if (f->flags & P9__FID_LIVE)
      implicit_clunk(c, f->num);
  }
  c->pending--;
}

/* Counts a transport closed for one of the limits (its err says which;
 * the transport has logged it). */
static void count_close(p9_srv *srv, int err) {
  switch (err) {
  case -EMSGSIZE:
    srv->stats.oversize++;
    break;
  case -ETIMEDOUT:
    srv->stats.timed_out++;
    break;
  case -ENOBUFS:
    srv->stats.no_buffer++;
    break;
  }
}

static void conn_closed(p9_transport *t, int err) {
  p9_conn *c = t->upper;
  count_close(c->srv, err);
  c->t = NULL;
  while (c->ntags)
    tag_remove(c, c->tags[0]);
  clunk_all_fids(c);
  if (c->pending == 0)
    conn_free(c);
}

/* Counts a connection refused for max_conns; logs the 1st, 2nd, 4th,
 * 8th... so that a flood of them does not flood the log too. */
static void refuse(p9_srv *srv, p9_transport *t) {
  uint64_t n = ++srv->stats.refused;
  if ((n & (n - 1)) == 0)
    p9__log(srv->log,
            "refused connection from %s: %u connections already "
            "(max_conns); %llu refused so far",
            t->peer, srv->nconns, (unsigned long long)n);
}

int p9_srv_serve(p9_srv *srv, p9_transport *t) {
  p9_conn *c;
  if (srv->nconns >= srv->max_conns) {
    refuse(srv, t);
    return -EMFILE;
  }
  c = xcalloc(1, sizeof(*c));
  c->srv = srv;
  c->t = t;
  c->msize = srv->msize;
  c->tags = xcalloc(srv->max_tags, sizeof(p9_req *));
  p9__fidtab_init(&c->fids, srv->max_fids);
  t->upper = c;
  t->recv = conn_recv;
  t->closed = conn_closed;
  t->max_msg = P9__VERSION_FRAME;
  srv->nconns++;
  c->next = srv->conns;
  if (c->next)
    c->next->prev = c;
  srv->conns = c;
  return 0;
}

p9_srv *p9_srv_new(const struct p9_srv_ops *ops, void *aux,
                   const p9_srv_config *cfg, int *err) {
  p9_srv *s;
  p9_srv_config none = {0};
  if (!cfg)
    cfg = &none;
  if (cfg->msize && (cfg->msize < P9_MINMSIZE || cfg->msize > P9_MAXMSIZE)) {
    *err = -EINVAL;
    return NULL;
  }
  if (sodium_init() < 0) {
    *err = -EIO;
    return NULL;
  }
  s = xcalloc(1, sizeof(*s));
  s->ops = ops;
  s->aux = aux;
  s->msize = cfg->msize ? cfg->msize : P9_DEFMSIZE;
  s->max_fids = cfg->max_fids ? cfg->max_fids : 4096;
  s->max_tags = cfg->max_tags ? cfg->max_tags : 256;
  s->log = cfg->log;
  s->trace = cfg->trace;
  s->poll_us = cfg->poll_us < 0 ? 0 : cfg->poll_us ? cfg->poll_us : 100;
  s->max_conns = cfg->max_conns ? cfg->max_conns : 64;
  s->frame_timeout_ms = cfg->frame_timeout_ms < 0 ? 0
                        : cfg->frame_timeout_ms   ? cfg->frame_timeout_ms
                                                  : 10000;
  s->frames.max = cfg->max_buffered ? cfg->max_buffered : 64u << 20;
  if (cfg->key) {
    s->has_key = true;
    memcpy(s->key, cfg->key, P9_KEYLEN);
  }
  return s;
}

void p9_srv_free(p9_srv *srv) {
  if (srv)
    sodium_memzero(srv->key, sizeof(srv->key));
  free(srv);
}

void *p9_srv_aux(p9_srv *srv) {
  return srv->aux;
}

void p9_srv_close_conns(p9_srv *srv) {
  for (p9_conn *c = srv->conns; c; c = c->next)
    if (c->t)
      c->t->ops->close(c->t);
}

unsigned p9_srv_nconns(p9_srv *srv) {
  return srv->nconns;
}

void p9_srv_read_stats(p9_srv *srv, p9_srv_stats *st) {
  *st = srv->stats;
  st->conns = srv->nconns;
  st->buffered = srv->frames.used;
}

/* --- sessions as server state ----------------------------------------- */

static void fid_out(const p9_fid *f, p9_session_fid *o) {
  *o = (p9_session_fid){.num = f->num,
                        .qid = f->qid,
                        .omode = f->omode,
                        .aux = f->aux,
                        .dirindex = f->dirindex,
                        .diroffset = f->diroffset,
                        .uid = f->uid};
}

int p9_srv_session_get(p9_transport *t, p9_session *s) {
  p9_conn *c = t->upper;
  uint32_t n = 0;
  memset(s, 0, sizeof(*s));
  s->dialect = c->dialect;
  s->msize = c->msize;
  s->fid = xmalloc((c->fids.nlive ? c->fids.nlive : 1) * sizeof(*s->fid));
  for (uint32_t i = 0; i < c->fids.nslot; i++) {
    p9_fid *f = p9__fid_slot(&c->fids, i);
    if ((f->flags & P9__FID_LIVE) && !(f->flags & P9__FID_AUTH))
      fid_out(f, &s->fid[n++]);
  }
  s->nfid = n;
  return 0;
}

/* Drops every fid a failed p9_srv_session_set made, without destroyfid:
 * the server's own state never learnt of them. */
static void session_undo(p9_conn *c) {
  for (uint32_t i = 0; i < c->fids.nslot; i++) {
    p9_fid *f = p9__fid_slot(&c->fids, i);
    if (f->flags & P9__FID_LIVE)
      p9__fid_unref(&c->fids, f);
  }
  c->dialect = P9_UNKNOWN;
  c->msize = c->srv->msize;
}

int p9_srv_session_set(p9_transport *t, const p9_session *s) {
  p9_conn *c = t->upper;
  int err = 0;
  if (c->dialect || c->fids.nlive || c->pending)
    return -EBUSY;
  if ((s->dialect != P9_2000 && s->dialect != P9_2000L) ||
      s->msize < P9_MINMSIZE || s->msize > c->srv->msize)
    return s->dialect == P9_UNKNOWN && s->nfid == 0 ? 0 : -EINVAL;
  for (uint32_t i = 0; i < s->nfid && !err; i++) {
    const p9_session_fid *o = &s->fid[i];
    p9_fid *f = p9__fid_alloc(&c->fids, o->num, &err);
    if (!f)
      break;
    f->qid = o->qid;
    f->omode = o->omode;
    f->aux = o->aux;
    f->uid = o->uid;
    f->dirindex = o->dirindex;
    f->diroffset = o->diroffset;
  }
  if (err) {
    session_undo(c);
    return err;
  }
  c->dialect = s->dialect;
  c->msize = s->msize;
  t->max_msg = s->msize;
  return 0;
}

int p9_srv_session_fid(p9_transport *t, uint32_t num, p9_session_fid *out) {
  p9_conn *c = t->upper;
  p9_fid *f = p9__fid_lookup(&c->fids, num);
  if (!f || (f->flags & P9__FID_AUTH)) {
    if (f)
      f->ref--;
    return -EBADF;
  }
  fid_out(f, out);
  f->ref--;
  return 0;
}
