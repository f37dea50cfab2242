/*
 * stream.c: the stream transport (unix or TCP sockets on libuv) and the
 * listener that serves a p9_srv on it.
 *
 * Framing is 9P's own: size[4] counts the whole message.  Bytes accumulate
 * in one buffer per connection; every complete message is handed up in
 * place (borrowed for the duration of the recv call).  A size below 7 or
 * above the negotiated msize (before Tversion, above P9_MINMSIZE: the
 * server sets t.max_msg) closes the connection: after a bad size the
 * stream has no trustworthy message boundary left.
 *
 * A connection's frame buffer costs what has arrived, not what a frame
 * announces: it starts at BUF_MIN bytes and doubles when nearly full, up
 * to the largest frame allowed, so it is never more than twice the bytes
 * received (or BUF_MIN); once empty it shrinks back to BUF_KEEP.  A
 * listener's connections share their server's budget (p9__budget): a
 * buffer that would grow past it closes its connection (-ENOBUFS).  A
 * frame whose first bytes arrived must be whole within the server's
 * frame timeout or the connection closes (-ETIMEDOUT): the clock runs
 * from the frame's first bytes, not the last, so trickling a byte now
 * and then does not keep a frame alive.  Between frames no clock runs.
 *
 * Answers (what the server sends through sendv) to a peer on this machine
 * whose last message reached us on another cpu (loopback TCP, where the
 * kernel processes a message on the sender's cpu) get two treatments,
 * because waking a cpu that has gone idle is slow: ~30 us on the 2-vCPU
 * VM where this was measured, whose idle vCPUs halt.  A synchronous
 * client pays that twice per message, once when its request wakes us and
 * once when our answer wakes it, and that was most of a 64 KiB read's
 * time:
 *   - an answer of SPLIT_MIN bytes or more goes out in two writes, the
 *     first LEAD bytes and then the rest, so that the client's wake-up
 *     overlaps the kernel's copy of the rest instead of following it;
 *   - after an answer the loop keeps polling (a uv_idle_t: the loop does
 *     not block) until the client's next bytes arrive or POLL_NS pass, so
 *     that a prompt next request finds us awake.  This costs cpu: at most
 *     POLL_NS per answer, spent only while the client is elsewhere.
 * A client on our own cpu gets neither: it would preempt us after the
 * first write and block again for the rest, and polling would take the
 * cpu it needs.  bench.c and net9p/README.md give the measurements.
 */
#include <errno.h>
#include <libgen.h>
#include <netdb.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "p9_impl.h"
#include "stream.h"
#include <uksim/uv_check.h>

/* Answers of SPLIT_MIN bytes or more to a client on another cpu go out
 * as LEAD bytes, then the rest; after answering such a client the loop
 * polls for up to POLL_NS (see above), unless p9_srv_config.poll_us set
 * another time or turned both off. */
#define SPLIT_MIN 16384
#define LEAD 4096
#define POLL_NS 100000

/* The frame buffer: first size, the free room below which it doubles,
 * and the size an empty buffer keeps. */
enum { BUF_MIN = 4096, BUF_GROW_AT = 1024, BUF_KEEP = 65536 };

typedef struct stream {
  p9_transport t;
  uv_stream_t *h;
  uint8_t *buf;
  size_t len, cap;
  bool closing, in_recv;
  bool local_peer;  /* TCP from this machine (loopback) */
  uint64_t poll_ns; /* 0: no polling, no split answers */
  int err;
  uv_idle_t poll;      /* active while polling for the peer's next bytes */
  uint64_t poll_until; /* uv_hrtime() when that polling stops */
  uv_timer_t frame;    /* active while a frame is partly here */
  uint64_t frame_ms;   /* its timeout; 0: none */
  p9__budget *budget;  /* shared with the server's other connections */
  FILE *log;
  int nhandles; /* of poll and frame, still to close before s is freed */
} stream;

typedef struct wreq {
  uv_write_t req;
  uint8_t *buf;
} wreq;

/* Gives the frame buffer cap bytes (0 frees it); false, changing
 * nothing, when growing would take the budget past its max. */
static bool buf_resize(stream *s, size_t cap) {
  p9__budget *b = s->budget;
  if (b && cap > s->cap && b->used + (cap - s->cap) > b->max)
    return false;
  if (b)
    b->used = b->used - s->cap + cap;
  if (cap == 0) {
    free(s->buf);
    s->buf = NULL;
  } else {
    s->buf = xrealloc(s->buf, cap);
  }
  s->cap = cap;
  return true;
}

static void aux_closed(uv_handle_t *h) {
  stream *s = h->data;
  if (--s->nhandles == 0)
    free(s);
}

/* Closes the loop handles besides the stream's own; s goes with them.  A
 * loop being torn down (a kernel's halt walks every handle and closes it)
 * may have closed them already: those are left to it, and s then stays
 * allocated, as its handles are still on the loop's closing list. */
static void close_aux(stream *s) {
  uv_handle_t *h[2] = {(uv_handle_t *)&s->poll, (uv_handle_t *)&s->frame};
  s->nhandles = 0;
  for (int i = 0; i < 2; i++)
    s->nhandles += !uv_is_closing(h[i]);
  for (int i = 0; i < 2; i++)
    if (!uv_is_closing(h[i]))
      uv_close(h[i], aux_closed);
}

/* The buffer goes back to the budget before the upcall, after which the
 * server (and its budget) may be freed. */
static void close_cb(uv_handle_t *h) {
  stream *s = h->data;
  buf_resize(s, 0);
  if (s->t.closed)
    s->t.closed(&s->t, s->err);
  free(h);
  close_aux(s);
}

static void stream_close(p9_transport *t) {
  stream *s = (stream *)t;
  if (s->closing)
    return;
  s->closing = true;
  UV_CHECK(uv_read_stop(s->h));
  uv_close((uv_handle_t *)s->h, close_cb);
}

static void write_cb(uv_write_t *req, int status) {
  wreq *w = (wreq *)req;
  stream *s = req->handle->data;
  free(w->buf);
  free(w);
  if (status < 0 && status != UV_ECANCELED) {
    s->err = status;
    stream_close(&s->t);
  }
}

/* Queues buf[off..len) behind earlier writes; takes buf. */
static int queue_write(stream *s, uint8_t *buf, size_t off, size_t len) {
  wreq *w = xmalloc(sizeof(*w));
  uv_buf_t b = uv_buf_init((char *)buf + off, (unsigned)(len - off));
  int err;
  w->buf = buf;
  if ((err = uv_write(&w->req, s->h, &b, 1, write_cb)) < 0) {
    free(buf);
    free(w);
  }
  return err;
}

/* Writes what the socket takes now, without waiting (nothing when earlier
 * writes are still queued, which keeps the order); the bytes written or a
 * negative error. */
static long try_write(stream *s, const uv_buf_t *b, int n) {
  int k = uv_try_write(s->h, b, (unsigned)n);
  return k == UV_EAGAIN || k == UV_ENOSYS ? 0 : k;
}

/* Most answers go out in one write(2) from here; only a socket that is
 * full gets a copy queued, so there is no request to allocate and no
 * POLLOUT to arm and disarm per message. */
static int stream_send(p9_transport *t, uint8_t *buf, size_t len) {
  stream *s = (stream *)t;
  uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
  long k = s->closing ? -ECONNRESET : try_write(s, &b, 1);
  if (k < 0) {
    free(buf);
    return (int)k;
  }
  if ((size_t)k == len) {
    free(buf);
    return 0;
  }
  return queue_write(s, buf, (size_t)k, len);
}

/* Whether the peer's last message was processed on another cpu than the
 * one we run on: for a loopback TCP peer, the cpu the peer sent from. */
static bool peer_elsewhere(stream *s) {
  uv_os_fd_t fd;
  int cpu = -1;
  socklen_t len = sizeof(cpu);
  if (!s->local_peer || !s->poll_ns ||
      uv_fileno((uv_handle_t *)s->h, &fd) < 0 ||
      getsockopt(fd, SOL_SOCKET, SO_INCOMING_CPU, &cpu, &len) < 0)
    return false;
  return cpu >= 0 && cpu != sched_getcpu();
}

static void poll_cb(uv_idle_t *h) {
  stream *s = h->data;
  if (uv_hrtime() >= s->poll_until)
    UV_CHECK(uv_idle_stop(h));
}

/* Keeps the loop from blocking for POLL_NS, or until the peer's next
 * bytes arrive (read_cb stops it). */
static void poll_for_peer(stream *s) {
  s->poll_until = uv_hrtime() + s->poll_ns;
  UV_CHECK(uv_idle_start(&s->poll, poll_cb));
}

/* Writes what the socket takes now of bytes [from, from + len) of the
 * message gathered in iov[0..n), as try_write does. */
static long try_write_range(stream *s, const struct iovec *iov, int n,
                            size_t from, size_t len) {
  uv_buf_t b[4];
  int nb = 0;
  for (int i = 0; i < n && len > 0; i++) {
    size_t l = iov[i].iov_len;
    if (from >= l) {
      from -= l;
      continue;
    }
    l = l - from < len ? l - from : len;
    b[nb++] = uv_buf_init((char *)iov[i].iov_base + from, (unsigned)l);
    len -= l;
    from = 0;
  }
  return try_write(s, b, nb);
}

/* Queues a copy of bytes [from, total) of the message in iov[0..n). */
static int queue_rest(stream *s, const struct iovec *iov, int n, size_t from,
                      size_t total) {
  uint8_t *rest = xmalloc(total - from);
  size_t at = 0;
  for (int i = 0; i < n; i++) {
    size_t len = iov[i].iov_len, skip = from > len ? len : from;
    memcpy(rest + at, (const uint8_t *)iov[i].iov_base + skip, len - skip);
    at += len - skip;
    from -= skip;
  }
  return queue_write(s, rest, 0, at);
}

static int stream_sendv(p9_transport *t, const struct iovec *iov, int n) {
  stream *s = (stream *)t;
  size_t total = 0, done = 0, lead = 0;
  bool elsewhere;
  long k;
  if (s->closing)
    return -ECONNRESET;
  if (n < 1 || n > 4)
    return -EINVAL;
  for (int i = 0; i < n; i++)
    total += iov[i].iov_len;
  if ((elsewhere = peer_elsewhere(s)) && total >= SPLIT_MIN)
    lead = LEAD;
  if (lead > 0) { /* wakes the peer; the rest only if all of it went */
    if ((k = try_write_range(s, iov, n, 0, lead)) < 0)
      return (int)k;
    done = (size_t)k;
  }
  if (done == lead) {
    if ((k = try_write_range(s, iov, n, lead, total - lead)) < 0)
      return (int)k;
    done += (size_t)k;
  }
  if (elsewhere)
    poll_for_peer(s);
  return done == total ? 0 : queue_rest(s, iov, n, done, total);
}

static const struct p9_transport_ops stream_ops = {
    .send = stream_send, .close = stream_close, .sendv = stream_sendv};

/* Room for what arrives next: the buffer doubles when nearly full, up to
 * the largest frame allowed (a partial frame is always shorter, so there
 * is room).  A budget that refuses gives libuv no room, and read_cb then
 * sees UV_ENOBUFS. */
static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  stream *s = h->data;
  size_t limit = s->t.max_msg > BUF_MIN ? s->t.max_msg : BUF_MIN;
  size_t want = s->cap ? s->cap * 2 : BUF_MIN;
  (void)hint;
  if (want > limit)
    want = limit;
  if (s->cap - s->len < BUF_GROW_AT && want > s->cap && !buf_resize(s, want)) {
    p9__log(s->log, "%s: frame buffers full (%zu bytes), closing", s->t.peer,
            s->budget->used);
    *b = uv_buf_init(NULL, 0);
    return;
  }
  *b = uv_buf_init((char *)s->buf + s->len, (unsigned)(s->cap - s->len));
}

static uint32_t le32(const uint8_t *p) {
  return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Hands up every complete message; returns the bytes consumed. */
static size_t deliver(stream *s) {
  size_t off = 0;
  while (!s->closing && s->len - off >= 4) {
    uint32_t n = le32(s->buf + off);
    if (n < 7 || n > s->t.max_msg) {
      p9__log(s->log, "%s: message size %u outside 7..%u, closing", s->t.peer,
              n, s->t.max_msg);
      s->err = -EMSGSIZE;
      stream_close(&s->t);
      break;
    }
    if (s->len - off < n)
      break; /* the buffer grows as the rest arrives (alloc_cb) */
    s->t.recv(&s->t, s->buf + off, n);
    off += n;
  }
  return off;
}

static void frame_expired(uv_timer_t *h) {
  stream *s = h->data;
  p9__log(s->log,
          "%s: frame incomplete after %llu ms (%zu bytes here), closing",
          s->t.peer, (unsigned long long)s->frame_ms, s->len);
  s->err = -ETIMEDOUT;
  stream_close(&s->t);
}

/* After a read: a frame that began (the buffer was empty, or a frame was
 * delivered and bytes of the next are here) starts the clock, none left
 * stops it; a frame still arriving keeps the clock it started. */
static int frame_clock(stream *s, bool began) {
  if (!s->frame_ms || s->closing)
    return 0;
  if (s->len == 0)
    return uv_timer_stop(&s->frame);
  if (began)
    return uv_timer_start(&s->frame, frame_expired, s->frame_ms, 0);
  return 0;
}

/* Drops the delivered bytes from the front; an empty buffer that grew
 * for a large frame goes back to BUF_KEEP. */
static void consume(stream *s, size_t used) {
  memmove(s->buf, s->buf + used, s->len - used);
  s->len -= used;
  if (s->len == 0 && s->cap > BUF_KEEP)
    buf_resize(s, BUF_KEEP); /* shrinking: the budget never refuses */
}

static void read_cb(uv_stream_t *h, ssize_t n, const uv_buf_t *b) {
  stream *s = h->data;
  bool was_empty = s->len == 0;
  size_t used;
  int err;
  (void)b;
  if (n < 0) {
    s->err = n == UV_EOF ? 0 : (int)n;
    stream_close(&s->t);
    return;
  }
  UV_CHECK(uv_idle_stop(&s->poll)); /* the peer spoke (or left): stop polling */
  s->len += (size_t)n;
  used = deliver(s);
  if (s->closing)
    return;
  if (used)
    consume(s, used);
  if ((err = frame_clock(s, was_empty || used)) < 0) {
    s->err = err;
    stream_close(&s->t);
  }
}

static void peer_name(stream *s) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  char ip[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  snprintf(s->t.peer, sizeof(s->t.peer), "unix");
  if (s->h->type != UV_TCP ||
      uv_tcp_getpeername((uv_tcp_t *)s->h, (struct sockaddr *)&ss, &len) < 0)
    return;
  if (ss.ss_family == AF_INET) {
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    UV_CHECK(uv_ip4_name(in, ip, sizeof(ip)));
    port = ntohs(in->sin_port);
    s->local_peer = ntohl(in->sin_addr.s_addr) >> 24 == 127;
  } else if (ss.ss_family == AF_INET6) {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    const uint8_t *a = in6->sin6_addr.s6_addr;
    UV_CHECK(uv_ip6_name(in6, ip, sizeof(ip)));
    port = ntohs(in6->sin6_port);
    s->local_peer = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
                    (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && a[12] == 127);
  }
  snprintf(s->t.peer, sizeof(s->t.peer), "tcp!%s!%d", ip, port);
}

/* Initialises the stream's own loop handles; on failure closes those it
 * did (s is freed once they are closed) and returns the error. */
static int init_aux(stream *s, uv_loop_t *loop) {
  int e = uv_idle_init(loop, &s->poll);
  if (e < 0) {
    free(s);
    return e;
  }
  s->poll.data = s->frame.data = s;
  if ((e = uv_timer_init(loop, &s->frame)) < 0) {
    s->nhandles = 1;
    uv_close((uv_handle_t *)&s->poll, aux_closed);
  }
  return e;
}

p9_transport *p9_stream_new(uv_stream_t *h, int *err) {
  stream *s = xcalloc(1, sizeof(*s));
  int e;
  s->t.ops = &stream_ops;
  s->t.max_msg = P9_DEFMSIZE;
  s->h = h;
  s->poll_ns = POLL_NS;
  peer_name(s);
  if ((e = init_aux(s, h->loop)) < 0) {
    *err = e;
    return NULL;
  }
  h->data = s;
  if ((h->type == UV_TCP && (e = uv_tcp_nodelay((uv_tcp_t *)h, 1)) < 0) ||
      (e = uv_read_start(h, alloc_cb, read_cb)) < 0) {
    *err = e;
    close_aux(s);
    return NULL;
  }
  return &s->t;
}

void p9__stream_set_poll(p9_transport *t, int poll_us) {
  ((stream *)t)->poll_ns = poll_us > 0 ? (uint64_t)poll_us * 1000 : 0;
}

void p9__stream_serve_limits(p9_transport *t, p9_srv *srv) {
  stream *s = (stream *)t;
  p9__stream_set_poll(t, srv->poll_us);
  s->frame_ms = (uint64_t)srv->frame_timeout_ms;
  s->budget = &srv->frames;
  s->log = srv->log;
}

/* --- resolving and dialing -------------------------------------------- */

int p9__resolve(const p9_addr *a, struct sockaddr_storage *ss) {
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
  const char *host = strcmp(a->host, "*") == 0 ? "0.0.0.0" : a->host;
  int e = getaddrinfo(host, a->port, &hints, &res);
  if (e)
    return e == EAI_NONAME ? -ENOENT : -EHOSTUNREACH;
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  return 0;
}

/* --- listener --------------------------------------------------------- */

/* The handle comes first: its close callback frees the listener. */
struct p9_listener {
  union {
    uv_handle_t h;
    uv_stream_t s;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } u;
  p9_srv *srv;
  bool is_unix;
  char path[108];
  char name[300];
};

static void free_handle(uv_handle_t *h) {
  free(h);
}

static void on_connection(uv_stream_t *server, int status) {
  p9_listener *l = server->data;
  uv_stream_t *c;
  p9_transport *t;
  int err;
  if (status < 0)
    return;
  c = xmalloc(l->is_unix ? sizeof(uv_pipe_t) : sizeof(uv_tcp_t));
  err = l->is_unix ? uv_pipe_init(server->loop, (uv_pipe_t *)c, 0)
                   : uv_tcp_init(server->loop, (uv_tcp_t *)c);
  if (err < 0) {
    free(c);
    return;
  }
  if (uv_accept(server, c) < 0 || !(t = p9_stream_new(c, &err))) {
    uv_close((uv_handle_t *)c, free_handle);
    return;
  }
  p9__stream_serve_limits(t, l->srv);
  if (p9_srv_serve(l->srv, t) < 0)
    t->ops->close(t); /* beyond max_conns: before Tversion there is no
                         way to say why, so the peer sees it closed */
}

/* Unix sockets live in a directory only the owner can enter. */
static int private_dir(p9_srv *srv, const char *path) {
  char tmp[108];
  struct stat st;
  const char *dir;
  snprintf(tmp, sizeof(tmp), "%s", path);
  dir = dirname(tmp);
  if (stat(dir, &st) < 0 &&
      (errno != ENOENT || mkdir(dir, 0700) < 0 || stat(dir, &st) < 0))
    return -errno;
  if (!S_ISDIR(st.st_mode) || (st.st_mode & 077)) {
    p9__log(srv->log, "refusing unix!%s: directory %s must be mode 0700", path,
            dir);
    return -EPERM;
  }
  return 0;
}

static int listen_unix(p9_listener *l, uv_loop_t *loop, const p9_addr *a) {
  struct stat st;
  int err = private_dir(l->srv, a->path);
  if (err)
    return err;
  if (lstat(a->path, &st) == 0 && S_ISSOCK(st.st_mode))
    unlink(a->path); /* a stale socket from an earlier run */
  UV_CHECK(uv_pipe_init(loop, &l->u.pipe, 0));
  l->is_unix = true;
  if ((err = uv_pipe_bind(&l->u.pipe, a->path)) < 0)
    return err;
  snprintf(l->path, sizeof(l->path), "%s", a->path);
  chmod(a->path, 0600);
  snprintf(l->name, sizeof(l->name), "unix!%s", a->path);
  return 0;
}

static int listen_tcp(p9_listener *l, uv_loop_t *loop, const p9_addr *a) {
  struct sockaddr_storage ss;
  int len = sizeof(ss), err = p9__resolve(a, &ss);
  char ip[INET6_ADDRSTRLEN];
  if (err)
    return err;
  UV_CHECK(uv_tcp_init(loop, &l->u.tcp));
  if ((err = uv_tcp_bind(&l->u.tcp, (struct sockaddr *)&ss, 0)) < 0)
    return err;
  if ((err = uv_tcp_getsockname(&l->u.tcp, (struct sockaddr *)&ss, &len)) < 0)
    return err;
  if (ss.ss_family == AF_INET6) {
    UV_CHECK(uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip)));
    snprintf(l->name, sizeof(l->name), "tcp!%s!%d", ip,
             ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
  } else {
    UV_CHECK(uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip)));
    snprintf(l->name, sizeof(l->name), "tcp!%s!%d", ip,
             ntohs(((struct sockaddr_in *)&ss)->sin_port));
  }
  return 0;
}

p9_listener *p9_listen(p9_srv *srv, uv_loop_t *loop, const char *addr,
                       int *err) {
  p9_addr a;
  p9_listener *l;
  int e = p9_addr_parse(addr, &a);
  if (e < 0) {
    *err = e;
    return NULL;
  }
  if (!p9_addr_is_loopback(&a) && !srv->has_key) {
    p9__log(srv->log,
            "refusing to listen on %s: a non-loopback address "
            "needs a shared key (--key FILE)",
            addr);
    *err = -EPERM;
    return NULL;
  }
  l = xcalloc(1, sizeof(*l));
  l->srv = srv;
  e = a.is_unix ? listen_unix(l, loop, &a) : listen_tcp(l, loop, &a);
  l->u.h.data = l;
  if (!e)
    e = uv_listen(&l->u.s, 128, on_connection);
  if (e < 0) {
    *err = e;
    if (uv_is_active(&l->u.h) || l->u.h.loop)
      uv_close(&l->u.h, free_handle);
    else
      free(l);
    return NULL;
  }
  return l;
}

const char *p9_listener_addr(p9_listener *l) {
  return l->name;
}

void p9_listener_close(p9_listener *l) {
  if (l->path[0])
    unlink(l->path);
  uv_close(&l->u.h, free_handle);
}
