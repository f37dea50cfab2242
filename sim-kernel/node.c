/* node.c: the machine's listener for other nodes (--node-port), on the
 * machine's own loop.  Each connection runs the handshake of node.h, then
 * answers lookups from the active OS's server info table, read from its
 * kernel-data region as any outside reader reads it (the kernel is never
 * asked, so a busy or lock-stepped kernel does not slow a lookup).
 *
 * Load: a few connections per peer node; at most NODE_CONNS_MAX at once,
 * more are closed at accept.  Every connection has one frame buffer of
 * NODE_HDR + NODE_FRAME_MAX bytes, allocated when it is accepted. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "uksim/kdata.h"
#include "node.h"
#include "uksim/9p.h"
#include "uksim/xalloc.h"

struct node_peer {
  uv_tcp_t tcp;
  uv_timer_t timer; /* the handshake's deadline */
  bool used, closing;
  int handles; /* still open: freed when both closed */
  struct node_hs hs;
  uint8_t *buf; /* one frame at most */
  size_t len;
};

static struct {
  uv_loop_t *loop;
  uv_tcp_t tcp;
  bool listening;
  int port;
  struct node_cfg cfg;
  uint8_t key[NODE_KEY_LEN];
  struct node_peer peer[NODE_CONNS_MAX];
} N;

int node_port_addr(const char *arg, char *addr, size_t len) {
  const char *bang = strrchr(arg, '!');
  const char *port = bang ? bang + 1 : arg;
  char *end;
  unsigned long p = strtoul(port, &end, 10);
  if (*port == '\0' || *end != '\0' || p > 65535)
    return -EINVAL;
  int n = bang ? snprintf(addr, len, "tcp!%.*s!%lu", (int)(bang - arg), arg, p)
               : snprintf(addr, len, "tcp!127.0.0.1!%lu", p);
  return n > 0 && (size_t)n < len ? 0 : -EINVAL;
}

/* Closing a peer ------------------------------------------------------------
 */

static void on_peer_closed(uv_handle_t *h) {
  struct node_peer *p = h->data;
  if (--p->handles > 0)
    return;
  free(p->buf);
  memset(p, 0, sizeof *p);
}

static void peer_close(struct node_peer *p) {
  if (p->closing)
    return;
  p->closing = true;
  uv_close((uv_handle_t *)&p->timer, on_peer_closed);
  uv_close((uv_handle_t *)&p->tcp, on_peer_closed);
}

static void on_shut(uv_shutdown_t *req, int status) {
  struct node_peer *p = req->data;
  (void)status;
  free(req);
  peer_close(p);
}

/* Closes p once what was queued to it is written (a Refused must reach
 * the peer: uv_close alone would cancel it). */
static void peer_shutdown(struct node_peer *p) {
  uv_shutdown_t *req = xmalloc(sizeof *req);
  req->data = p;
  uv_timer_stop(&p->timer);
  uv_read_stop((uv_stream_t *)&p->tcp);
  if (uv_shutdown(req, (uv_stream_t *)&p->tcp, on_shut) < 0) {
    free(req);
    peer_close(p);
  }
}

static void on_written(uv_write_t *w, int status) {
  (void)status; /* a peer gone meanwhile shows at its next read */
  free(w->data);
  free(w);
}

/* Sends a frame (takes buf); close after it, when asked. */
static void peer_send(struct node_peer *p, uint8_t *buf, long len,
                      bool then_close) {
  if (buf != NULL && len > 0 && !p->closing) {
    uv_write_t *w = xmalloc(sizeof *w);
    uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
    w->data = buf;
    if (uv_write(w, (uv_stream_t *)&p->tcp, &b, 1, on_written) < 0) {
      free(buf);
      free(w);
    }
  } else {
    free(buf);
  }
  if (then_close && !p->closing)
    peer_shutdown(p);
}

/* Lookups ----------------------------------------------------------------- */

/* Fills f for service `name` from the active OS's tables: 0, or -errno. */
static int lookup_svc(const char *name, Uksim__Node__Found *f) {
  int fd = N.cfg.kdata_fd ? N.cfg.kdata_fd() : -1;
  if (fd < 0)
    return -ESRCH;
  const struct uk_kdata *kd =
      mmap(NULL, sizeof *kd, PROT_READ, MAP_SHARED, fd, 0);
  if (kd == MAP_FAILED)
    return -errno;
  int r = -ENOENT;
  for (uint32_t i = 0; i < UK_SVC_MAX && r == -ENOENT; i++) {
    const struct uk_svc *s = &kd->svc[i];
    if (s->state != UK_SVC_UP || strncmp(s->name, name, sizeof s->name) != 0)
      continue;
    f->index = i;
    f->gen = s->gen;
    f->version = s->version;
    r = 0;
  }
  munmap((void *)kd, sizeof *kd);
  return r;
}

static void answer_lookup(struct node_peer *p, const Uksim__Node__Lookup *l) {
  Uksim__Node__Found f = UKSIM__NODE__FOUND__INIT;
  Uksim__Node__Msg m = UKSIM__NODE__MSG__INIT;
  char why[NODE_ERR_MAX] = "";
  f.id = l->id;
  f.node = N.cfg.name;
  f.service = l->service;
  bool elsewhere = l->node[0] && strcmp(l->node, N.cfg.name) != 0;
  f.status = elsewhere ? -EHOSTUNREACH : lookup_svc(l->service, &f);
  if (elsewhere)
    snprintf(why, sizeof why,
             "node %s forwards no lookups to node %s (its netmsg does)",
             N.cfg.name, l->node);
  else if (f.status == -ENOENT)
    snprintf(why, sizeof why, "node %s has no service '%s'", N.cfg.name,
             l->service);
  else if (f.status < 0)
    snprintf(why, sizeof why, "node %s: %s", N.cfg.name, strerror(-f.status));
  f.error = why;
  m.body_case = UKSIM__NODE__MSG__BODY_FOUND;
  m.found = &f;
  uint8_t *out;
  long n = node_frame_encode(&m, &out);
  peer_send(p, n > 0 ? out : NULL, n, n < 0);
}

/* Reading ----------------------------------------------------------------- */

static void on_message(struct node_peer *p, const Uksim__Node__Msg *m) {
  uint8_t *out = NULL;
  size_t len;
  if (p->hs.state == NODE_READY &&
      m->body_case == UKSIM__NODE__MSG__BODY_LOOKUP) {
    answer_lookup(p, m->lookup);
    return;
  }
  /* The handshake, or a message READY does not take (CLOSED then). */
  int r = node_hs_input(&p->hs, m, &out, &len);
  if (r < 0)
    fprintf(stderr, "uksim machine %s: node %s refused: %s\n", N.cfg.name,
            p->hs.peer[0] ? p->hs.peer : "?", p->hs.error);
  if (p->hs.state == NODE_READY)
    uv_timer_stop(&p->timer);
  peer_send(p, out, (long)len, r < 0);
}

/* Takes every whole frame from the front of p->buf. */
static void drain(struct node_peer *p) {
  long need;
  while (!p->closing && p->hs.state != NODE_CLOSED &&
         (need = node_frame_need(p->buf, p->len)) != 0) {
    int err = 0;
    Uksim__Node__Msg *m =
        need > 0 ? node_frame_decode(p->buf, (size_t)need, &err) : NULL;
    if (m == NULL) {
      fprintf(stderr, "uksim machine %s: a corrupt node frame: %s\n",
              N.cfg.name, strerror(-(need < 0 ? (int)need : err)));
      peer_close(p);
      return;
    }
    on_message(p, m);
    node_msg_free(m);
    memmove(p->buf, p->buf + need, p->len - (size_t)need);
    p->len -= (size_t)need;
  }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  struct node_peer *p = h->data;
  (void)hint;
  *b = uv_buf_init((char *)p->buf + p->len,
                   (unsigned)(NODE_HDR + NODE_FRAME_MAX - p->len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  struct node_peer *p = s->data;
  (void)b;
  if (n < 0) {
    peer_close(p);
    return;
  }
  p->len += (size_t)n;
  drain(p);
}

static void on_handshake_late(uv_timer_t *t) {
  struct node_peer *p = t->data;
  uint8_t *out;
  struct node_hs *hs = &p->hs;
  Uksim__Node__Msg m = UKSIM__NODE__MSG__INIT;
  Uksim__Node__Refused f = UKSIM__NODE__REFUSED__INIT;
  snprintf(hs->error, sizeof hs->error, "handshake not done in %d ms",
           NODE_HANDSHAKE_MS);
  f.error = hs->error;
  m.body_case = UKSIM__NODE__MSG__BODY_REFUSED;
  m.refused = &f;
  long len = node_frame_encode(&m, &out);
  peer_send(p, len > 0 ? out : NULL, len, true);
}

/* Accepting --------------------------------------------------------------- */

static struct node_peer *peer_alloc(void) {
  for (int i = 0; i < NODE_CONNS_MAX; i++)
    if (!N.peer[i].used)
      return &N.peer[i];
  return NULL;
}

static void peer_start(struct node_peer *p) {
  uint8_t *hello;
  p->buf = xmalloc(NODE_HDR + NODE_FRAME_MAX);
  p->tcp.data = p->timer.data = p;
  uv_timer_init(N.loop, &p->timer);
  uv_timer_start(&p->timer, on_handshake_late, NODE_HANDSHAKE_MS, 0);
  long n = node_hs_listen(&p->hs, N.cfg.key, N.cfg.name, &hello);
  peer_send(p, hello, n, n < 0);
  if (!p->closing)
    uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_read);
}

static void on_refused_closed(uv_handle_t *h) {
  free(h);
}

static void on_connection(uv_stream_t *server, int status) {
  if (status < 0)
    return;
  struct node_peer *p = peer_alloc();
  if (p == NULL) { /* beyond NODE_CONNS_MAX: accept and close at once */
    uv_tcp_t *t = xmalloc(sizeof *t);
    uv_tcp_init(N.loop, t);
    uv_accept(server, (uv_stream_t *)t);
    uv_close((uv_handle_t *)t, on_refused_closed);
    return;
  }
  memset(p, 0, sizeof *p);
  p->used = true;
  p->handles = 2;
  uv_tcp_init(N.loop, &p->tcp);
  if (uv_accept(server, (uv_stream_t *)&p->tcp) < 0) {
    p->tcp.data = p->timer.data = p;
    uv_timer_init(N.loop, &p->timer);
    peer_close(p);
    return;
  }
  uv_tcp_nodelay(&p->tcp, 1);
  peer_start(p);
}

int node_listen(uv_loop_t *loop, const char *addr, const struct node_cfg *cfg) {
  p9_addr a;
  struct sockaddr_in sin;
  if (p9_addr_parse(addr, &a) < 0 || a.is_unix ||
      uv_ip4_addr(a.host, atoi(a.port), &sin) < 0)
    return -EINVAL;
  if (!p9_addr_is_loopback(&a) && cfg->key == NULL)
    return -EPERM;
  N.loop = loop;
  N.cfg = *cfg;
  if (cfg->key != NULL) {
    memcpy(N.key, cfg->key, NODE_KEY_LEN);
    N.cfg.key = N.key;
  }
  int r = uv_tcp_init(loop, &N.tcp);
  if (r < 0)
    return r;
  N.listening = true;
  if ((r = uv_tcp_bind(&N.tcp, (struct sockaddr *)&sin, 0)) < 0 ||
      (r = uv_listen((uv_stream_t *)&N.tcp, NODE_CONNS_MAX, on_connection)) <
          0) {
    node_stop();
    return r;
  }
  struct sockaddr_storage ss;
  int sl = sizeof ss;
  uv_tcp_getsockname(&N.tcp, (struct sockaddr *)&ss, &sl);
  N.port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  return 0;
}

int node_listen_port(void) {
  return N.listening ? N.port : 0;
}

void node_stop(void) {
  if (!N.listening)
    return;
  N.listening = false;
  uv_close((uv_handle_t *)&N.tcp, NULL);
  for (int i = 0; i < NODE_CONNS_MAX; i++)
    if (N.peer[i].used)
      peer_close(&N.peer[i]);
}
