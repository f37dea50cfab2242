/*
 * p9_impl.h: net9p internals shared between its files (not installed).
 */
#ifndef NET9P_P9_IMPL_H
#define NET9P_P9_IMPL_H

#include <stdbool.h>
#include <stdio.h>

#include <uksim/9p.h>
#include <uksim/num.h>
#include <uksim/xalloc.h>

/* Whether s[0..len) is UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF). */
bool p9__utf8_valid(const char *s, size_t len);
void p9__log(FILE *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * The fid table: up to `cap` slots and a hash of chains, all linked by
 * index (P9__NIL ends a chain), so no slot holds a pointer.  Slots come in
 * chunks of P9__FIDCHUNK, allocated when the free list runs dry, so a
 * connection costs memory for the fids it uses, not for the ones it may
 * (a table of 4096 slots allocated at once cost 256 KiB per silent
 * connection).  A chunk never moves: a request may hold a p9_fid pointer.
 * A slot is referenced by the table while the fid is live and by each
 * request using it; it returns to the free list at zero references.
 */
#define P9__NIL 0xffffffffu
enum { P9__FID_LIVE = 1, P9__FID_AUTH = 2 };
enum { P9__FIDCHUNK = 64 };

typedef struct p9__fidtab {
  uint32_t cap, nbucket, nlive;
  uint32_t nslot;   /* slots allocated so far (whole chunks) */
  uint32_t free;    /* head of the free list */
  uint32_t *bucket; /* nbucket chain heads */
  p9_fid **chunk;   /* cap / P9__FIDCHUNK chunks, NULL until needed */
} p9__fidtab;

int p9__fidtab_init(p9__fidtab *t, uint32_t cap);
void p9__fidtab_close(p9__fidtab *t);
/* A new live fid with ref 1 (the table's), or NULL with -EBADF (in use)
 * or -ENFILE (table full). */
p9_fid *p9__fid_alloc(p9__fidtab *t, uint32_t num, int *err);
/* A live fid with one more reference, or NULL. */
p9_fid *p9__fid_lookup(p9__fidtab *t, uint32_t num);
/* Drops a reference; returns 1 when the slot was freed (the caller runs
 * destroyfid first when this is the last reference: see fid_release). */
int p9__fid_unref(p9__fidtab *t, p9_fid *f);
/* Makes a fid unreachable by number (clunk); the table's reference is
 * dropped by the caller with p9__fid_unref. */
void p9__fid_unlink(p9__fidtab *t, p9_fid *f);
/* Slot i (below t->nslot), live or not. */
p9_fid *p9__fid_slot(p9__fidtab *t, uint32_t i);

/* The negative errno an Rlerror's ecode stands for (error.c): a code no
 * errno has (0, or past Linux's 4095) is -EIO, so that an answer can
 * never read as a success or a count. */
int p9__lerror_errno(uint32_t ecode);

/* Auth state of one afid: a challenge and the MAC that answers it. */
enum { P9__NAUTH = 8 };
typedef struct p9__auth {
  bool used, ok;
  uint8_t chal[P9_CHALLEN];
  uint8_t want[P9_MACLEN];
  uint8_t who[32]; /* hash of uname/aname the attach must repeat */
} p9__auth;

void p9__auth_who(p9_str uname, p9_str aname, uint8_t who[32]);
void p9__random(void *buf, size_t n);

/* Bytes held by a server's frame buffers, shared by its connections'
 * stream transports: growing past max closes the connection that grows. */
typedef struct p9__budget {
  size_t used, max;
} p9__budget;

/* Before a dialect is agreed a frame can only be a Tversion, which never
 * needs more than the smallest msize. */
#define P9__VERSION_FRAME P9_MINMSIZE

struct p9_srv {
  const struct p9_srv_ops *ops;
  void *aux;
  uint32_t msize, max_fids, max_tags;
  bool has_key;
  uint8_t key[P9_KEYLEN];
  FILE *log;
  int trace;
  int poll_us; /* p9_srv_config.poll_us resolved: 0 is off */
  uint32_t max_conns;
  int frame_timeout_ms; /* resolved: 0 is never */
  p9__budget frames;    /* the stream transport's frame buffers */
  p9_srv_stats stats;   /* counters; conns and buffered filled when read */
  unsigned nconns;
  p9_conn *conns; /* live connections, for p9_srv_close_conns */
};

struct p9_conn {
  p9_srv *srv;
  p9_transport *t; /* NULL once the transport closed */
  p9_dialect dialect;
  uint32_t msize;
  p9__fidtab fids;
  p9_req **tags; /* outstanding requests, srv->max_tags slots */
  unsigned ntags;
  unsigned pending; /* requests not yet responded */
  uint32_t epoch;   /* bumped by Tversion: older requests are orphans */
  p9__auth auth[P9__NAUTH];
  uint8_t *obuf; /* answers are encoded here when the transport has sendv */
  size_t obuf_cap;
  uint8_t *spare; /* a read buffer kept for the next Tread */
  size_t spare_cap;
  void *spare_req; /* a request block kept for the next small message */
  p9_conn *next, *prev;
};

#endif
