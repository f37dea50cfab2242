/* node_msg.c: the node protocol's frames and its handshake, pure of any
 * loop or socket, so that the unit tests drive every transition and the
 * listener (node.c) and the dialer (node_client.c) share one definition.
 * The state machine is in node.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "node.h"
#include "uksim/9p.h"
#include "uksim/xalloc.h"

_Static_assert(NODE_KEY_LEN == P9_KEYLEN, "node keys are 9P keys");

/* Frames ------------------------------------------------------------------ */

long node_frame_encode(const Uksim__Node__Msg *m, uint8_t **out) {
  size_t n = uksim__node__msg__get_packed_size(m);
  if (n == 0 || n > NODE_FRAME_MAX)
    return -EMSGSIZE;
  uint8_t *buf = xmalloc(NODE_HDR + n);
  buf[0] = (uint8_t)n;
  buf[1] = (uint8_t)(n >> 8);
  buf[2] = (uint8_t)(n >> 16);
  buf[3] = (uint8_t)(n >> 24);
  uksim__node__msg__pack(m, buf + NODE_HDR);
  *out = buf;
  return (long)(NODE_HDR + n);
}

long node_frame_need(const uint8_t *buf, size_t len) {
  if (len < NODE_HDR)
    return 0;
  uint32_t n = (uint32_t)buf[0] | (uint32_t)buf[1] << 8 |
               (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 24;
  if (n == 0 || n > NODE_FRAME_MAX)
    return -EMSGSIZE;
  return len >= NODE_HDR + n ? (long)(NODE_HDR + n) : 0;
}

static bool name_ok(const char *s) {
  return s != NULL && strlen(s) < NODE_NAME_MAX;
}

/* An optional name ("" allowed) or address, bounded. */
static bool opt_ok(const char *s, size_t max) {
  return s != NULL && strlen(s) < max;
}

static bool nonce_ok(ProtobufCBinaryData b) {
  return b.len == NODE_NONCE_LEN;
}

/* What the protobuf schema cannot say: bounded names, exact nonces. */
static bool msg_ok(const Uksim__Node__Msg *m) {
  switch (m->body_case) {
  case UKSIM__NODE__MSG__BODY_HELLO:
    return name_ok(m->hello->name) && nonce_ok(m->hello->nonce);
  case UKSIM__NODE__MSG__BODY_AUTH:
    return name_ok(m->auth->name) && nonce_ok(m->auth->nonce) &&
           m->auth->mac.len == NODE_MAC_LEN;
  case UKSIM__NODE__MSG__BODY_WELCOME:
    return m->welcome->mac.len == NODE_MAC_LEN;
  case UKSIM__NODE__MSG__BODY_REFUSED:
    return m->refused->error != NULL;
  case UKSIM__NODE__MSG__BODY_LOOKUP:
    return name_ok(m->lookup->service) &&
           opt_ok(m->lookup->node, NODE_NAME_MAX);
  case UKSIM__NODE__MSG__BODY_FOUND:
    return name_ok(m->found->node) && name_ok(m->found->service) &&
           opt_ok(m->found->addr, NODE_ADDR_MAX);
  case UKSIM__NODE__MSG__BODY_ADVERTISE:
    return name_ok(m->advertise->service) &&
           opt_ok(m->advertise->addr, NODE_ADDR_MAX) &&
           m->advertise->addr[0] != '\0';
  case UKSIM__NODE__MSG__BODY_CALL:
    return name_ok(m->call->service) && m->call->ctl.len <= NODE_CTL_MAX &&
           m->call->ctl.len <= m->call->ctl_size &&
           m->call->ctl_size <= NODE_CTL_MAX &&
           m->call->data_size <= NODE_DATA_MAX;
  case UKSIM__NODE__MSG__BODY_CHUNK:
    return m->chunk->bytes.len > 0 && m->chunk->bytes.len <= NODE_CHUNK &&
           m->chunk->offset < NODE_DATA_MAX;
  case UKSIM__NODE__MSG__BODY_RESULT:
    return m->result->error != NULL && m->result->ctl.len <= NODE_CTL_MAX &&
           m->result->ctl.len <= m->result->ctl_size &&
           m->result->ctl_size <= NODE_CTL_MAX &&
           m->result->data_size <= NODE_DATA_MAX;
  default:
    return false; /* no body, or one this version does not know */
  }
}

Uksim__Node__Msg *node_frame_decode(const uint8_t *buf, size_t len, int *err) {
  long need = node_frame_need(buf, len);
  Uksim__Node__Msg *m = NULL;
  if (need > 0 && (size_t)need == len)
    m = uksim__node__msg__unpack(NULL, len - NODE_HDR, buf + NODE_HDR);
  if (m != NULL && msg_ok(m))
    return m;
  node_msg_free(m);
  *err = need < 0 ? (int)need : -EBADMSG;
  return NULL;
}

void node_msg_free(Uksim__Node__Msg *m) {
  if (m != NULL)
    uksim__node__msg__free_unpacked(m, NULL);
}

/* The handshake ------------------------------------------------------------ */

void node_mac(const uint8_t key[NODE_KEY_LEN], const char *role,
              const uint8_t *n1, const uint8_t *n2, const char *name,
              uint8_t mac[NODE_MAC_LEN]) {
  crypto_auth_hmacsha512256_state st;
  crypto_auth_hmacsha512256_init(&st, key, NODE_KEY_LEN);
  crypto_auth_hmacsha512256_update(&st, (const uint8_t *)role,
                                   strlen(role) + 1);
  crypto_auth_hmacsha512256_update(&st, n1, NODE_NONCE_LEN);
  crypto_auth_hmacsha512256_update(&st, n2, NODE_NONCE_LEN);
  crypto_auth_hmacsha512256_update(&st, (const uint8_t *)name,
                                   strlen(name) + 1);
  crypto_auth_hmacsha512256_final(&st, mac);
  sodium_memzero(&st, sizeof st);
}

static void hs_init(struct node_hs *hs, const uint8_t *key, const char *name,
                    enum node_state st) {
  memset(hs, 0, sizeof *hs);
  if (sodium_init() < 0)
    abort(); /* no randomness: nothing can be proven */
  hs->state = st;
  hs->keyed = key != NULL;
  if (key != NULL)
    memcpy(hs->key, key, NODE_KEY_LEN);
  snprintf(hs->name, sizeof hs->name, "%s", name);
  randombytes_buf(hs->nonce, NODE_NONCE_LEN);
}

static ProtobufCBinaryData bin(const uint8_t *b, size_t n) {
  return (ProtobufCBinaryData){.len = n, .data = (uint8_t *)b};
}

long node_hs_listen(struct node_hs *hs, const uint8_t *key, const char *name,
                    uint8_t **hello) {
  hs_init(hs, key, name, NODE_HELLO_SENT);
  Uksim__Node__Hello h = UKSIM__NODE__HELLO__INIT;
  Uksim__Node__Msg m = UKSIM__NODE__MSG__INIT;
  h.version = NODE_PROTO_VERSION;
  h.name = hs->name;
  h.nonce = bin(hs->nonce, NODE_NONCE_LEN);
  h.keyed = hs->keyed;
  m.body_case = UKSIM__NODE__MSG__BODY_HELLO;
  m.hello = &h;
  return node_frame_encode(&m, hello);
}

void node_hs_dial(struct node_hs *hs, const uint8_t *key, const char *name) {
  hs_init(hs, key, name, NODE_CONNECTED);
}

/* Closes hs with why, and a Refused saying so in *out. */
static long refuse(struct node_hs *hs, int err, const char *why,
                   uint8_t **out) {
  Uksim__Node__Refused f = UKSIM__NODE__REFUSED__INIT;
  Uksim__Node__Msg m = UKSIM__NODE__MSG__INIT;
  snprintf(hs->error, sizeof hs->error, "%s", why);
  hs->state = NODE_CLOSED;
  f.error = hs->error;
  m.body_case = UKSIM__NODE__MSG__BODY_REFUSED;
  m.refused = &f;
  if (node_frame_encode(&m, out) < 0)
    *out = NULL;
  return err;
}

/* Dialer, CONNECTED: a Hello; answer it with our proof and challenge. */
static long on_hello(struct node_hs *hs, const Uksim__Node__Hello *h,
                     uint8_t **out) {
  uint8_t mac[NODE_MAC_LEN];
  if (h->version != NODE_PROTO_VERSION)
    return refuse(hs, -EPROTO, "node protocol version differs", out);
  memcpy(hs->peer_nonce, h->nonce.data, NODE_NONCE_LEN);
  snprintf(hs->peer, sizeof hs->peer, "%s", h->name);
  hs->peer_keyed = h->keyed;
  node_mac(hs->key, "dialer", hs->peer_nonce, hs->nonce, hs->name, mac);
  Uksim__Node__Auth a = UKSIM__NODE__AUTH__INIT;
  Uksim__Node__Msg m = UKSIM__NODE__MSG__INIT;
  a.version = NODE_PROTO_VERSION;
  a.name = hs->name;
  a.nonce = bin(hs->nonce, NODE_NONCE_LEN);
  a.mac = bin(mac, NODE_MAC_LEN);
  m.body_case = UKSIM__NODE__MSG__BODY_AUTH;
  m.auth = &a;
  hs->state = NODE_AUTH_SENT;
  return node_frame_encode(&m, out);
}

/* Whether mac proves the key: the MAC of role over n1, n2 and name. */
static bool proof_ok(const struct node_hs *hs, const char *role,
                     const uint8_t *n1, const uint8_t *n2, const char *name,
                     const uint8_t *mac) {
  uint8_t want[NODE_MAC_LEN];
  node_mac(hs->key, role, n1, n2, name, want);
  return sodium_memcmp(want, mac, NODE_MAC_LEN) == 0;
}

/* Listener, HELLO_SENT: the dialer's proof; welcome it with ours. */
static long on_auth(struct node_hs *hs, const Uksim__Node__Auth *a,
                    uint8_t **out) {
  uint8_t want[NODE_MAC_LEN];
  char why[NODE_ERR_MAX];
  snprintf(hs->peer, sizeof hs->peer, "%s", a->name);
  if (!proof_ok(hs, "dialer", hs->nonce, a->nonce.data, a->name, a->mac.data)) {
    snprintf(why, sizeof why, "node %s: wrong key%s", hs->name,
             hs->keyed ? "" : " (it has none: drop --node-key)");
    return refuse(hs, -EACCES, why, out);
  }
  memcpy(hs->peer_nonce, a->nonce.data, NODE_NONCE_LEN);
  node_mac(hs->key, "listener", hs->peer_nonce, hs->nonce, hs->name, want);
  Uksim__Node__Welcome w = UKSIM__NODE__WELCOME__INIT;
  Uksim__Node__Msg m = UKSIM__NODE__MSG__INIT;
  w.mac = bin(want, NODE_MAC_LEN);
  m.body_case = UKSIM__NODE__MSG__BODY_WELCOME;
  m.welcome = &w;
  hs->state = NODE_READY;
  return node_frame_encode(&m, out);
}

/* Dialer, AUTH_SENT: the listener's proof. */
static long on_welcome(struct node_hs *hs, const Uksim__Node__Welcome *w,
                       uint8_t **out) {
  char why[NODE_ERR_MAX];
  if (!proof_ok(hs, "listener", hs->nonce, hs->peer_nonce, hs->peer,
                w->mac.data)) {
    snprintf(why, sizeof why, "node %s does not hold our key", hs->peer);
    return refuse(hs, -EACCES, why, out);
  }
  hs->error[0] = '\0';
  hs->state = NODE_READY;
  return 0;
}

static long hs_step(struct node_hs *hs, const Uksim__Node__Msg *in,
                    uint8_t **out) {
  if (in->body_case == UKSIM__NODE__MSG__BODY_REFUSED) {
    bool need_key = hs->peer_keyed && !hs->keyed;
    snprintf(hs->error, sizeof hs->error, "%s%s", in->refused->error,
             need_key ? " (it has a key: give it)" : "");
    hs->state = NODE_CLOSED;
    return strstr(hs->error, "wrong key") ? -EACCES : -EPROTO;
  }
  switch (hs->state) {
  case NODE_CONNECTED:
    if (in->body_case == UKSIM__NODE__MSG__BODY_HELLO)
      return on_hello(hs, in->hello, out);
    break;
  case NODE_HELLO_SENT:
    if (in->body_case == UKSIM__NODE__MSG__BODY_AUTH)
      return on_auth(hs, in->auth, out);
    break;
  case NODE_AUTH_SENT:
    if (in->body_case == UKSIM__NODE__MSG__BODY_WELCOME)
      return on_welcome(hs, in->welcome, out);
    break;
  case NODE_READY:
  case NODE_CLOSED:
    break;
  default:
    abort();
  }
  return refuse(hs, -EPROTO, "unexpected message in the handshake", out);
}

int node_hs_input(struct node_hs *hs, const Uksim__Node__Msg *in, uint8_t **out,
                  size_t *outlen) {
  *out = NULL;
  long n = hs_step(hs, in, out);
  *outlen = *out != NULL
                ? (size_t)node_frame_need(*out, NODE_HDR + NODE_FRAME_MAX)
                : 0;
  return n < 0 ? (int)n : 0;
}

int node_key_load(const char *path, uint8_t key[NODE_KEY_LEN]) {
  return p9_key_load(path, key);
}
