/* netmsg: the network message server (seed 004 §2.1-2.2, Mach's
 * netmsgserver): calls to services of another node, made the way a local
 * one is made.
 *
 *   netmsg serve [--key FILE] [--node NAME] [--peer NAME=ADDR]...
 *                tcp!HOST!PORT
 *   netmsg proxy [--key FILE] [--as NAME] tcp!HOST!PORT SERVICE
 *
 * `serve`, one per node, is an application process of that node: it
 * accepts other nodes' netmsg connections (the node handshake, node.h),
 * answers a Lookup from its own kernel (ap_lookup: node_lookup() works on
 * its address as on a machine's --node-port) and runs each Call as a
 * local ap_call of the service named, answering a Result.  A Lookup that
 * names another node (node_lookup_on) is asked of that node's serve, from
 * the --peer table; a process of this node that listens on an address of
 * its own (uksim-migd) Advertises it, and Lookups of its name answer that
 * address while its connection lasts.  `proxy` is a server
 * on the calling node: it registers NAME (default SERVICE@NODE) so that an
 * application there ap_call()s it as any local service; each request it takes
 * is sent as a Call to the serve of the other node, and its Result becomes the
 * answer.
 *
 * Both ICAs are copied across (a wire cannot carry a mapping): the
 * control ICA in the Call or Result frame, a data ICA as Chunks of
 * NODE_CHUNK bytes written straight into the ICA at the far end (created
 * there at its full size), so a large one is never held whole in a
 * buffer.  One call at a time per connection, in order.
 *
 * Faults.  A node that goes away mid-call: the proxy's wait is bounded
 * (NODE_IO_TIMEOUT_MS per frame), the request is answered -EHOSTDOWN and
 * the proxy dials again at its next request.  A corrupt or out-of-order
 * frame closes that connection (serve) or answers -EBADMSG (proxy).  A
 * wrong key: the proxy does not start ("wrong key" on stderr).
 */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "node.h"
#include "uksim/9p.h"
#include "uksim/ap.h"
#include "uksim/kabi.h"
#include "uksim/server.h"

static uint8_t key[NODE_KEY_LEN];
static const uint8_t *keyp;
static char node_name[NODE_NAME_MAX] = "netmsg";

/* serve ------------------------------------------------------------------- */

static atomic_int conns;

/* Runs call m locally: fills r (its ctl bytes point into *ctl) and leaves
 * the ICAs that came back in ctl and data, for the caller to send and
 * release.  Its data Chunks are read first, so the stream stays in step
 * whatever happens to the call. */
static int run_call(node_conn *c, const Uksim__Node__Call *m,
                    Uksim__Node__Result *r, uk_ica *ctl, uk_ica *data) {
  uint32_t svc;
  ap_result res;
  int e = ica_create(m->ctl_size ? m->ctl_size : 1, KABI_ICA_CONTROL, ctl);
  if (e == 0 && m->data_size > 0 &&
      (e = ica_create(m->data_size, KABI_ICA_DATA, data)) < 0)
    return e; /* the chunks cannot be taken: the connection must end */
  if (e < 0)
    return e;
  memcpy(ctl->base, m->ctl.data, m->ctl.len);
  if (m->data_size > 0 &&
      (e = node_recv_data(c, m->id, data->base, m->data_size)) < 0)
    return e;
  if ((e = ap_lookup(m->service, &svc)) < 0 ||
      (e = ap_call(svc, m->op, ctl, m->data_size ? data : NULL, &res)) < 0) {
    r->status = e; /* refused by the kernel: the ICAs are still ours */
    return 0;
  }
  r->status = res.status;
  *ctl = res.ctl;
  *data = res.data;
  return 0;
}

/* Answers r with the ICAs the call gave back, then releases them. */
static int send_result(node_conn *c, Uksim__Node__Result *r, uk_ica *ctl,
                       uk_ica *data) {
  Uksim__Node__Msg m = UKSIM__NODE__MSG__INIT;
  r->error = "";
  if (ctl->base != NULL) {
    r->ctl_size = ctl->size <= NODE_CTL_MAX ? ctl->size : NODE_CTL_MAX;
    r->ctl = (ProtobufCBinaryData){r->ctl_size, ctl->base};
  }
  r->data_size = data->base != NULL ? data->size : 0;
  m.body_case = UKSIM__NODE__MSG__BODY_RESULT;
  m.result = r;
  int e = node_send(c, &m);
  if (e == 0 && r->data_size > 0)
    e = node_send_data(c, r->id, data->base, r->data_size);
  return e;
}

static void release(uk_ica *i) {
  if (i->base != NULL)
    ica_release(i);
}

/* One Call: 0, or -errno when the connection must end. */
static int serve_call(node_conn *c, const Uksim__Node__Call *m) {
  Uksim__Node__Result r = UKSIM__NODE__RESULT__INIT;
  uk_ica ctl = {.base = NULL}, data = {.base = NULL};
  r.id = m->id;
  int e = run_call(c, m, &r, &ctl, &data);
  if (e == 0)
    e = send_result(c, &r, &ctl, &data);
  release(&ctl);
  release(&data);
  return e;
}

/* Names and addresses ------------------------------------------------------
 * Two tables, both fixed and filled at start or by connections: the peer
 * nodes a Lookup naming another node is forwarded to (--peer NAME=ADDR),
 * and the services processes of this node advertised with the address
 * they listen on (an Advertise; withdrawn when its connection ends). */

struct peer {
  char name[NODE_NAME_MAX], addr[NODE_ADDR_MAX];
};
static struct peer peers[NETMSG_PEERS_MAX];
static int npeers;

struct advert {
  bool used;
  const node_conn *owner; /* the connection that advertised it */
  char service[NODE_NAME_MAX], addr[NODE_ADDR_MAX];
};
static struct advert adverts[NETMSG_ADVERTS_MAX];
static pthread_mutex_t adverts_lock = PTHREAD_MUTEX_INITIALIZER;

static const struct peer *peer_lookup(const char *name) {
  for (int i = 0; i < npeers; i++)
    if (strcmp(peers[i].name, name) == 0)
      return &peers[i];
  return NULL;
}

/* Copies the address advertised for svc into addr: 0, or -ENOENT. */
static int advert_lookup(const char *svc, char addr[NODE_ADDR_MAX]) {
  int r = -ENOENT;
  pthread_mutex_lock(&adverts_lock);
  for (int i = 0; i < NETMSG_ADVERTS_MAX && r < 0; i++)
    if (adverts[i].used && strcmp(adverts[i].service, svc) == 0) {
      memcpy(addr, adverts[i].addr, NODE_ADDR_MAX);
      r = 0;
    }
  pthread_mutex_unlock(&adverts_lock);
  return r;
}

/* 0, -EEXIST (another connection advertises svc) or -ENOSPC.  The same
 * connection advertising svc again moves it to the new address. */
static int advert_add(const node_conn *c, const char *svc, const char *addr) {
  struct advert *slot = NULL;
  int r = 0;
  pthread_mutex_lock(&adverts_lock);
  for (int i = 0; i < NETMSG_ADVERTS_MAX; i++) {
    struct advert *a = &adverts[i];
    if (a->used && strcmp(a->service, svc) == 0) {
      if (a->owner != c)
        r = -EEXIST;
      slot = a;
    } else if (!a->used && slot == NULL) {
      slot = a;
    }
  }
  if (r == 0 && slot == NULL)
    r = -ENOSPC;
  if (r == 0) {
    *slot = (struct advert){.used = true, .owner = c};
    snprintf(slot->service, sizeof slot->service, "%s", svc);
    snprintf(slot->addr, sizeof slot->addr, "%s", addr);
  }
  pthread_mutex_unlock(&adverts_lock);
  return r;
}

static void adverts_drop(const node_conn *c) {
  pthread_mutex_lock(&adverts_lock);
  for (int i = 0; i < NETMSG_ADVERTS_MAX; i++)
    if (adverts[i].used && adverts[i].owner == c)
      adverts[i].used = false;
  pthread_mutex_unlock(&adverts_lock);
}

static int send_found(node_conn *c, Uksim__Node__Found *f) {
  Uksim__Node__Msg m = UKSIM__NODE__MSG__INIT;
  m.body_case = UKSIM__NODE__MSG__BODY_FOUND;
  m.found = f;
  return node_send(c, &m);
}

/* Asks peer p's network message server where svc is, into f (its texts in
 * why and addr): the status. */
static int ask_peer(const struct peer *p, const char *svc,
                    Uksim__Node__Found *f, char *why, char *addr) {
  struct node_found nf;
  node_conn *pc = node_dial(p->addr, keyp, node_name, why, NODE_ERR_MAX);
  int r = pc ? node_lookup_on(pc, NULL, svc, &nf, why, NODE_ERR_MAX)
             : -EHOSTUNREACH;
  node_close(pc);
  if (r == 0) {
    f->index = nf.index;
    f->gen = nf.gen;
    f->version = nf.version;
    memcpy(addr, nf.addr, NODE_ADDR_MAX);
  }
  return r;
}

/* A Lookup: where the service is, on this node (an advertised address,
 * else its slot in the kernel's tables: ap_lookup) or, for another node's
 * name, what that node's network message server answers. */
static int serve_lookup(node_conn *c, const Uksim__Node__Lookup *l) {
  Uksim__Node__Found f = UKSIM__NODE__FOUND__INIT;
  char why[NODE_ERR_MAX] = "", addr[NODE_ADDR_MAX] = "";
  uint32_t svc = 0;
  bool here = l->node[0] == '\0' || strcmp(l->node, node_name) == 0;
  const struct peer *p = here ? NULL : peer_lookup(l->node);
  f.id = l->id;
  f.node = here ? node_name : l->node;
  f.service = l->service;
  if (p != NULL) {
    f.status = ask_peer(p, l->service, &f, why, addr);
  } else if (!here) {
    f.status = -EHOSTUNREACH;
    snprintf(why, sizeof why, "node %s knows no node '%s' (--peer)", node_name,
             l->node);
  } else if ((f.status = advert_lookup(l->service, addr)) < 0) {
    f.status = ap_lookup(l->service, &svc);
    f.index = svc;
  }
  if (here && f.status < 0)
    snprintf(why, sizeof why, "node %s has no service '%s'", node_name,
             l->service);
  f.error = why;
  f.addr = addr;
  return send_found(c, &f);
}

/* An Advertise from a process of this node, answered by a Found. */
static int serve_advertise(node_conn *c, const Uksim__Node__Advertise *a) {
  Uksim__Node__Found f = UKSIM__NODE__FOUND__INIT;
  char why[NODE_ERR_MAX] = "";
  f.id = a->id;
  f.node = node_name;
  f.service = a->service;
  f.addr = a->addr;
  f.status = advert_add(c, a->service, a->addr);
  if (f.status < 0)
    snprintf(why, sizeof why, "node %s: '%s' %s", node_name, a->service,
             f.status == -EEXIST ? "is advertised by another process"
                                 : "cannot be advertised: table full");
  f.error = why;
  return send_found(c, &f);
}

static void *serve_conn(void *arg) {
  char err[NODE_ERR_MAX];
  node_conn *c =
      node_accept((int)(intptr_t)arg, keyp, node_name, err, sizeof err);
  int e = c ? 0 : -EACCES;
  if (c == NULL)
    fprintf(stderr, "netmsg: a node refused: %s\n", err);
  while (e == 0) {
    Uksim__Node__Msg *m = node_recv(c, true, &e);
    if (m != NULL && m->body_case == UKSIM__NODE__MSG__BODY_LOOKUP)
      e = serve_lookup(c, m->lookup);
    else if (m != NULL && m->body_case == UKSIM__NODE__MSG__BODY_ADVERTISE)
      e = serve_advertise(c, m->advertise);
    else if (m != NULL && m->body_case != UKSIM__NODE__MSG__BODY_CALL)
      e = -EPROTO;
    else if (m != NULL)
      e = serve_call(c, m->call);
    node_msg_free(m);
  }
  if (c != NULL && e != -ECONNRESET)
    fprintf(stderr, "netmsg: node %s: %s\n", node_peer(c), node_io_error(e));
  adverts_drop(c);
  node_close(c);
  atomic_fetch_sub(&conns, 1);
  return NULL;
}

static int listen_on(const char *addr) {
  p9_addr a;
  struct sockaddr_in sin = {.sin_family = AF_INET};
  if (p9_addr_parse(addr, &a) < 0 || a.is_unix ||
      inet_pton(AF_INET, a.host, &sin.sin_addr) != 1)
    return -EINVAL;
  if (!p9_addr_is_loopback(&a) && keyp == NULL)
    return -EPERM;
  sin.sin_port = htons((uint16_t)atoi(a.port));
  int one = 1, s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (s < 0 || bind(s, (struct sockaddr *)&sin, sizeof sin) < 0 ||
      listen(s, NODE_CONNS_MAX) < 0)
    return -errno;
  return s;
}

static int serve(const char *addr) {
  int s = listen_on(addr);
  if (s < 0) {
    fprintf(stderr, "netmsg: %s: %s\n", addr,
            s == -EPERM ? "beyond loopback a --key is required" : strerror(-s));
    return 1;
  }
  fprintf(stderr, "netmsg: node %s serves calls at %s\n", node_name, addr);
  for (;;) {
    int fd = accept4(s, NULL, NULL, SOCK_CLOEXEC);
    pthread_t t;
    if (fd < 0)
      continue;
    if (atomic_fetch_add(&conns, 1) >= NODE_CONNS_MAX ||
        pthread_create(&t, NULL, serve_conn, (void *)(intptr_t)fd) != 0) {
      atomic_fetch_sub(&conns, 1);
      close(fd);
      continue;
    }
    pthread_detach(t);
  }
}

/* proxy ------------------------------------------------------------------- */

struct proxy {
  const char *addr, *service;
  node_conn *c; /* NULL: dial at the next request */
};

static int send_call(struct proxy *p, const srv_req *q, uint64_t id) {
  Uksim__Node__Call k = UKSIM__NODE__CALL__INIT;
  Uksim__Node__Msg m = UKSIM__NODE__MSG__INIT;
  if (q->ctl.size > NODE_CTL_MAX)
    return -EMSGSIZE;
  k.id = id;
  k.service = (char *)p->service;
  k.op = q->op;
  k.ctl_size = q->ctl.size;
  k.ctl = (ProtobufCBinaryData){q->ctl.size, q->ctl.base};
  k.data_size = q->data.base ? q->data.size : 0;
  m.body_case = UKSIM__NODE__MSG__BODY_CALL;
  m.call = &k;
  int e = node_send(p->c, &m);
  if (e == 0 && k.data_size > 0)
    e = node_send_data(p->c, id, q->data.base, k.data_size);
  return e;
}

/* Puts the Result's data into q->data: in place when it fits, else in a
 * new ICA of its size that replaces the one the request brought. */
static int take_data(struct proxy *p, srv_req *q, uint64_t id, uint64_t size) {
  if (q->data.base == NULL || q->data.size < size) {
    uk_ica n;
    int e = ica_create(size, KABI_ICA_DATA, &n);
    if (e < 0)
      return e;
    release(&q->data);
    q->data = n;
  }
  return node_recv_data(p->c, id, q->data.base, size);
}

/* The answer to q from the other node: its status, or -errno. */
static int await_result(struct proxy *p, srv_req *q, uint64_t id) {
  int e = 0;
  Uksim__Node__Msg *m = node_recv(p->c, false, &e);
  if (m == NULL)
    return e;
  const Uksim__Node__Result *r = m->result;
  if (m->body_case != UKSIM__NODE__MSG__BODY_RESULT || r->id != id)
    e = -EBADMSG;
  else if (r->ctl.len > q->ctl.size)
    e = -EMSGSIZE;
  else
    memcpy(q->ctl.base, r->ctl.data, r->ctl.len);
  if (e == 0 && r->data_size > 0)
    e = take_data(p, q, id, r->data_size);
  int status = e == 0 ? r->status : e;
  node_msg_free(m);
  return status;
}

/* One request forwarded: the status to answer it with. */
static int forward(struct proxy *p, srv_req *q) {
  char err[NODE_ERR_MAX];
  if (p->c == NULL &&
      (p->c = node_dial(p->addr, keyp, node_name, err, sizeof err)) == NULL) {
    fprintf(stderr, "netmsg: %s: %s\n", p->addr, err);
    return -EHOSTDOWN;
  }
  uint64_t id = node_next_id(p->c);
  int e = send_call(p, q, id);
  if (e == 0 || e == -EMSGSIZE)
    e = e == 0 ? await_result(p, q, id) : e;
  if (e == -ECONNRESET || e == -ETIMEDOUT || e == -EPIPE || e == -EBADMSG) {
    fprintf(stderr, "netmsg: %s: %s\n", p->addr, node_io_error(e));
    node_close(p->c); /* out of step or gone: dial afresh next time */
    p->c = NULL;
    return e == -EBADMSG ? e : -EHOSTDOWN;
  }
  return e;
}

static int proxy(const char *addr, const char *service, const char *as) {
  char err[NODE_ERR_MAX], name[KABI_NAME_MAX];
  struct proxy p = {.addr = addr, .service = service};
  int how;
  srv_req q;
  /* Dial first: a wrong key or an absent node is said before registering. */
  if ((p.c = node_dial(addr, keyp, node_name, err, sizeof err)) == NULL) {
    fprintf(stderr, "netmsg: %s: %s\n", addr, err);
    return 1;
  }
  snprintf(name, sizeof name, "%s@%s", service, node_peer(p.c));
  if (as != NULL)
    snprintf(name, sizeof name, "%s", as);
  if (srv_register(name, 1, NULL, &how) < 0)
    return 1;
  int e = srv_receive(&q);
  while (e == 0)
    e = srv_reply_receive(&q, forward(&p, &q));
  node_close(p.c);
  return 0;
}

/* --peer NAME=tcp!HOST!PORT: 1, or -1 after saying why. */
static int peer_option(const char *v) {
  const char *eq = strchr(v, '=');
  if (eq == NULL || eq == v || eq - v >= NODE_NAME_MAX ||
      strlen(eq + 1) >= NODE_ADDR_MAX || npeers == NETMSG_PEERS_MAX) {
    fprintf(stderr, "netmsg: --peer %s: not NAME=ADDR, or more than %d\n", v,
            NETMSG_PEERS_MAX);
    return -1;
  }
  struct peer *p = &peers[npeers++];
  snprintf(p->name, sizeof p->name, "%.*s", (int)(eq - v), v);
  snprintf(p->addr, sizeof p->addr, "%s", eq + 1);
  return 1;
}

/* One option and its value: 1 taken, 0 not an option, -1 bad. */
static int option(const char *opt, const char *v, const char **as) {
  if (!strcmp(opt, "--key")) {
    if (p9_key_load(v, key) < 0) {
      fprintf(stderr, "netmsg: --key %s: cannot read\n", v);
      return -1;
    }
    keyp = key;
  } else if (!strcmp(opt, "--as") || !strcmp(opt, "--service")) {
    *as = v; /* --service: the name a scenario's server statement gives */
  } else if (!strcmp(opt, "--node")) {
    snprintf(node_name, sizeof node_name, "%s", v);
  } else if (!strcmp(opt, "--peer")) {
    return peer_option(v);
  } else if (strcmp(opt, "--state") && strcmp(opt, "--cache")) {
    return 0; /* kvs's options, which a scenario gives every server */
  }
  return 1;
}

int main(int argc, char **argv) {
  const char *as = NULL, *word[3];
  int n = 0;
  for (int i = 1; i < argc; i++) {
    int r = argv[i][0] == '-' && i + 1 < argc
                ? option(argv[i], argv[i + 1], &as)
                : 0;
    if (r < 0)
      return 1;
    if (r > 0)
      i++;
    else if (n < 3)
      word[n++] = argv[i];
    else
      n = 4;
  }
  if (n == 2 && !strcmp(word[0], "serve"))
    return serve(word[1]);
  if (n == 3 && !strcmp(word[0], "proxy"))
    return proxy(word[1], word[2], as);
  fprintf(stderr, "usage: netmsg serve [--key FILE] [--node NAME] "
                  "[--peer NAME=ADDR]... tcp!HOST!PORT\n"
                  "       netmsg proxy [--key FILE] [--as NAME] "
                  "tcp!HOST!PORT SERVICE\n");
  return 2;
}
