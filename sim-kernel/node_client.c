/* node_client.c: the dialer's side of the node protocol (uksim/node.h),
 * blocking, for the CLI, tests and the migrate helper.  Each wait for an
 * answer is bounded by NODE_IO_TIMEOUT_MS (SO_RCVTIMEO), so a node that
 * disappears or stops answering is an error, never a hang. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "node.h"
#include "uksim/9p.h"
#include "uksim/xalloc.h"

struct node_conn {
  int fd;
  uint64_t next_id;
  struct node_hs hs;
  uint8_t buf[NODE_HDR + NODE_FRAME_MAX];
};

static int seterr(char *err, size_t len, int r, const char *fmt,
                  const char *arg) {
  if (err != NULL && len > 0)
    snprintf(err, len, fmt, arg);
  return r;
}

static void set_timeouts(int fd) {
  struct timeval tv = {.tv_sec = NODE_IO_TIMEOUT_MS / 1000,
                       .tv_usec = NODE_IO_TIMEOUT_MS % 1000 * 1000};
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int connect_addr(const char *addr) {
  p9_addr a;
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  struct addrinfo *res;
  if (p9_addr_parse(addr, &a) < 0 || a.is_unix)
    return -EINVAL;
  if (getaddrinfo(a.host, a.port, &hints, &res) != 0)
    return -EHOSTUNREACH;
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int r = fd < 0 ? -errno : 0;
  if (r == 0 && connect(fd, res->ai_addr, res->ai_addrlen) < 0)
    r = -errno;
  freeaddrinfo(res);
  if (r < 0) {
    if (fd >= 0)
      close(fd);
    return r;
  }
  set_timeouts(fd);
  return fd;
}

static int send_all(int fd, const uint8_t *b, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return w < 0 && errno != EAGAIN ? -errno : -ETIMEDOUT;
    b += w;
    n -= (size_t)w;
  }
  return 0;
}

/* idle: a timeout before the first byte is not one (waits on). */
static int recv_all(int fd, uint8_t *b, size_t n, bool idle) {
  while (n > 0) {
    ssize_t r = recv(fd, b, n, 0);
    if (r < 0 && (errno == EINTR || (idle && errno == EAGAIN)))
      continue;
    idle = false;
    if (r == 0)
      return -ECONNRESET; /* the node went away */
    if (r < 0)
      return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
    b += r;
    n -= (size_t)r;
  }
  return 0;
}

Uksim__Node__Msg *node_recv(node_conn *c, bool idle, int *err) {
  int r = recv_all(c->fd, c->buf, NODE_HDR, idle);
  long need = r < 0 ? r : node_frame_need(c->buf, NODE_HDR);
  if (need == 0) { /* the header is whole: read the body it announces */
    size_t n = (size_t)c->buf[0] | (size_t)c->buf[1] << 8 |
               (size_t)c->buf[2] << 16 | (size_t)c->buf[3] << 24;
    r = recv_all(c->fd, c->buf + NODE_HDR, n, false);
    need = r < 0 ? r : (long)(NODE_HDR + n);
  }
  if (need < 0) {
    *err = (int)need;
    return NULL;
  }
  return node_frame_decode(c->buf, (size_t)need, err);
}

static int send_frame(node_conn *c, uint8_t *out, size_t len) {
  int r = out != NULL ? send_all(c->fd, out, len) : 0;
  free(out);
  return r;
}

const char *node_io_error(int r) {
  if (r == -ECONNRESET)
    return "the node closed the connection";
  if (r == -ETIMEDOUT)
    return "the node did not answer in time";
  if (r == -EBADMSG || r == -EMSGSIZE)
    return "a corrupt message from the node";
  return strerror(-r);
}

/* Runs the dialer's handshake to READY: 0, or -errno with why in err. */
static int handshake(node_conn *c, char *err, size_t errlen) {
  while (c->hs.state != NODE_READY) {
    int r = 0;
    uint8_t *out;
    size_t len;
    Uksim__Node__Msg *m = node_recv(c, false, &r);
    if (m == NULL)
      return seterr(err, errlen, r, "%s", node_io_error(r));
    r = node_hs_input(&c->hs, m, &out, &len);
    node_msg_free(m);
    int w = send_frame(c, out, len);
    if (r < 0)
      return seterr(err, errlen, r, "%s", c->hs.error);
    if (w < 0)
      return seterr(err, errlen, w, "%s", node_io_error(w));
  }
  return 0;
}

node_conn *node_dial(const char *addr, const uint8_t *key, const char *name,
                     char *err, size_t errlen) {
  int fd = connect_addr(addr);
  if (fd < 0) {
    seterr(err, errlen, fd, "%s",
           fd == -EINVAL ? "not a tcp!HOST!PORT address" : strerror(-fd));
    return NULL;
  }
  node_conn *c = xmalloc(sizeof *c);
  c->fd = fd;
  c->next_id = 1;
  node_hs_dial(&c->hs, key, name);
  if (handshake(c, err, errlen) < 0) {
    node_close(c);
    return NULL;
  }
  return c;
}

node_conn *node_accept(int fd, const uint8_t *key, const char *name, char *err,
                       size_t errlen) {
  uint8_t *hello;
  node_conn *c = xmalloc(sizeof *c);
  c->fd = fd;
  c->next_id = 1;
  set_timeouts(fd);
  long n = node_hs_listen(&c->hs, key, name, &hello);
  int r = n < 0 ? (int)n : send_frame(c, hello, (size_t)n);
  if (r < 0)
    seterr(err, errlen, r, "%s", node_io_error(r));
  else
    r = handshake(c, err, errlen);
  if (r < 0) {
    node_close(c);
    return NULL;
  }
  return c;
}

int node_send(node_conn *c, const Uksim__Node__Msg *m) {
  uint8_t *out;
  long n = node_frame_encode(m, &out);
  return n < 0 ? (int)n : send_frame(c, out, (size_t)n);
}

int node_send_data(node_conn *c, uint64_t id, const uint8_t *base,
                   uint64_t size) {
  Uksim__Node__Chunk k = UKSIM__NODE__CHUNK__INIT;
  Uksim__Node__Msg m = UKSIM__NODE__MSG__INIT;
  m.body_case = UKSIM__NODE__MSG__BODY_CHUNK;
  m.chunk = &k;
  k.id = id;
  int r = 0;
  for (uint64_t at = 0; at < size && r == 0; at += NODE_CHUNK) {
    k.offset = at;
    k.bytes.data = (uint8_t *)base + at;
    k.bytes.len = size - at < NODE_CHUNK ? size - at : NODE_CHUNK;
    r = node_send(c, &m);
  }
  return r;
}

int node_recv_data(node_conn *c, uint64_t id, uint8_t *dst, uint64_t size) {
  int r = 0;
  for (uint64_t at = 0; at < size && r == 0;) {
    Uksim__Node__Msg *m = node_recv(c, false, &r);
    if (m == NULL)
      break;
    const Uksim__Node__Chunk *k = m->chunk;
    if (m->body_case != UKSIM__NODE__MSG__BODY_CHUNK || k->id != id ||
        k->offset != at || k->bytes.len > size - at)
      r = -EBADMSG; /* out of order, another call's, or beyond the ICA */
    else
      memcpy(dst + at, k->bytes.data, k->bytes.len);
    at += r == 0 ? k->bytes.len : 0;
    node_msg_free(m);
  }
  return r;
}

uint64_t node_next_id(node_conn *c) {
  return c->next_id++;
}

const char *node_peer(const node_conn *c) {
  return c->hs.peer;
}

static int send_lookup(node_conn *c, const char *node, const char *svc,
                       uint64_t id) {
  Uksim__Node__Lookup l = UKSIM__NODE__LOOKUP__INIT;
  Uksim__Node__Msg m = UKSIM__NODE__MSG__INIT;
  l.id = id;
  l.service = (char *)svc;
  l.node = (char *)(node ? node : "");
  m.body_case = UKSIM__NODE__MSG__BODY_LOOKUP;
  m.lookup = &l;
  return node_send(c, &m);
}

static int send_advertise(node_conn *c, const char *svc, const char *addr,
                          uint64_t id) {
  Uksim__Node__Advertise a = UKSIM__NODE__ADVERTISE__INIT;
  Uksim__Node__Msg m = UKSIM__NODE__MSG__INIT;
  a.id = id;
  a.service = (char *)svc;
  a.addr = (char *)addr;
  m.body_case = UKSIM__NODE__MSG__BODY_ADVERTISE;
  m.advertise = &a;
  return node_send(c, &m);
}

/* Waits for the Found of question id: 0 and *f, or -errno with why. */
static int await_found(node_conn *c, uint64_t id, struct node_found *f,
                       char *err, size_t errlen) {
  int r = 0;
  Uksim__Node__Msg *m = node_recv(c, false, &r);
  if (m == NULL)
    return seterr(err, errlen, r, "%s", node_io_error(r));
  if (m->body_case != UKSIM__NODE__MSG__BODY_FOUND || m->found->id != id) {
    r = m->body_case == UKSIM__NODE__MSG__BODY_REFUSED ? -EPROTO : -EBADMSG;
    seterr(err, errlen, r, "%s",
           r == -EPROTO ? m->refused->error : "an answer to another question");
  } else if ((r = m->found->status) < 0) {
    seterr(err, errlen, r, "%s", m->found->error);
  } else {
    snprintf(f->node, sizeof f->node, "%s", m->found->node);
    f->index = m->found->index;
    f->gen = m->found->gen;
    f->version = m->found->version;
    snprintf(f->addr, sizeof f->addr, "%s", m->found->addr);
  }
  node_msg_free(m);
  return r > 0 ? -EPROTO : r;
}

int node_lookup_on(node_conn *c, const char *node, const char *svc,
                   struct node_found *f, char *err, size_t errlen) {
  if (strlen(svc) >= NODE_NAME_MAX || (node && strlen(node) >= NODE_NAME_MAX))
    return seterr(err, errlen, -ENAMETOOLONG, "name too long%s", "");
  uint64_t id = c->next_id++;
  int r = send_lookup(c, node, svc, id);
  if (r < 0)
    return seterr(err, errlen, r, "%s", node_io_error(r));
  return await_found(c, id, f, err, errlen);
}

int node_lookup(node_conn *c, const char *svc, struct node_found *f, char *err,
                size_t errlen) {
  return node_lookup_on(c, NULL, svc, f, err, errlen);
}

int node_advertise(node_conn *c, const char *svc, const char *addr, char *err,
                   size_t errlen) {
  struct node_found f;
  if (strlen(svc) >= NODE_NAME_MAX || strlen(addr) >= NODE_ADDR_MAX ||
      addr[0] == '\0')
    return seterr(err, errlen, -EINVAL, "bad service name or address%s", "");
  uint64_t id = c->next_id++;
  int r = send_advertise(c, svc, addr, id);
  if (r < 0)
    return seterr(err, errlen, r, "%s", node_io_error(r));
  return await_found(c, id, &f, err, errlen);
}

void node_close(node_conn *c) {
  if (c == NULL)
    return;
  close(c->fd);
  free(c);
}
