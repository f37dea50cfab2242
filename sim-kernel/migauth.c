/* migauth.c: the migration protocol's handshake, both sides, on a blocking
 * socket.  The state machine is in migd.h ("The handshake"); the proofs
 * and the key file are the node protocol's (node_mac, node_key_load in
 * node.h), with roles of their own. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "migd.h"
#include "migwire.h"
#include "node.h"

_Static_assert(MIG_KEY_LEN == NODE_KEY_LEN, "migd keys are node keys");

#define ROLE_DIALER "migd-dialer"
#define ROLE_SERVER "migd-server"

static const uint8_t no_key[NODE_KEY_LEN]; /* without --key: all zeros */

static ProtobufCBinaryData bin(uint8_t *b, size_t n) {
  return (ProtobufCBinaryData){.len = n, .data = b};
}

static void fresh_nonce(uint8_t nonce[NODE_NONCE_LEN]) {
  if (sodium_init() < 0)
    abort(); /* no randomness: nothing can be proven */
  randombytes_buf(nonce, NODE_NONCE_LEN);
}

/* The proof of key (NULL: none) over n1 and n2 in role. */
static void prove(const uint8_t *key, const char *role, const uint8_t *n1,
                  const uint8_t *n2, uint8_t mac[NODE_MAC_LEN]) {
  node_mac(key ? key : no_key, role, n1, n2, "", mac);
}

/* mac proves key over n1 and n2 in role: exactly NODE_MAC_LEN bytes. */
static bool proof_ok(const uint8_t *key, const char *role, const uint8_t *n1,
                     const uint8_t *n2, ProtobufCBinaryData mac) {
  uint8_t want[NODE_MAC_LEN];
  prove(key, role, n1, n2, want);
  return mac.len == NODE_MAC_LEN &&
         sodium_memcmp(want, mac.data, NODE_MAC_LEN) == 0;
}

/* The next message, which must be of case `want`; else NULL with why. */
static MigMsg *expect(int fd, MigMsg__MCase want, const char *what, char *err,
                      size_t len) {
  MigMsg *m = mig_recv(fd);
  if (m != NULL && m->m_case == want)
    return m;
  if (m == NULL)
    snprintf(err, len, "no %s: %s", what,
             errno ? strerror(errno) : "connection closed");
  else if (m->m_case == MIG_MSG__M_RESULT && m->result->msg)
    snprintf(err, len, "%s", m->result->msg);
  else
    snprintf(err, len, "a message other than %s", what);
  if (m != NULL)
    mig_msg__free_unpacked(m, NULL);
  return NULL;
}

/* Sends one message of case c whose body is body: a MigMsg's bodies share
 * one pointer (protobuf-c's oneof is a union). */
static int send_body(int fd, MigMsg__MCase c, void *body) {
  MigMsg m = MIG_MSG__INIT;
  m.m_case = c;
  m.challenge = body;
  return mig_send(fd, &m);
}

/* Sends Result(r, err) (the peer learns why) and returns r. */
static int refuse(int fd, int r, const char *err) {
  mig_send_result(fd, r, err);
  return r;
}

/* Server ------------------------------------------------------------------ */

static int send_challenge(int fd, const uint8_t *key,
                          uint8_t nonce[NODE_NONCE_LEN]) {
  MigChallenge c = MIG_CHALLENGE__INIT;
  fresh_nonce(nonce);
  c.version = MIG_VERSION;
  c.nonce = bin(nonce, NODE_NONCE_LEN);
  c.keyed = key != NULL;
  return send_body(fd, MIG_MSG__M_CHALLENGE, &c);
}

/* PROVED: our proof over the dialer's challenge. */
static int send_welcome(int fd, const uint8_t *key, const uint8_t *nd,
                        const uint8_t *ns) {
  uint8_t mac[NODE_MAC_LEN];
  MigWelcome w = MIG_WELCOME__INIT;
  prove(key, ROLE_SERVER, nd, ns, mac);
  w.mac = bin(mac, NODE_MAC_LEN);
  return send_body(fd, MIG_MSG__M_WELCOME, &w);
}

/* CHALLENGED: the dialer's Auth, checked.  0, or -errno after telling the
 * dialer why. */
static int check_auth(int fd, const uint8_t *key, const MigAuth *a,
                      const uint8_t *ns, char *err, size_t len) {
  if (a->nonce.len != NODE_NONCE_LEN || a->mac.len != NODE_MAC_LEN) {
    snprintf(err, len, "truncated proof");
    return refuse(fd, -EPROTO, err);
  }
  if (!proof_ok(key, ROLE_DIALER, ns, a->nonce.data, a->mac)) {
    snprintf(err, len, "wrong key%s",
             key == NULL ? " (this server has none: drop --key)"
             : !a->keyed ? " (the dialer has none)"
                         : "");
    return refuse(fd, -EACCES, err);
  }
  return 0;
}

/* PROVED: the dialer's verdict on our proof. */
static int take_verdict(int fd, char *err, size_t len) {
  MigMsg *m = mig_recv(fd);
  int r = m && m->m_case == MIG_MSG__M_RESULT ? m->result->err : -EPROTO;
  if (m && m->m_case == MIG_MSG__M_RESULT && r != 0)
    snprintf(err, len, "the dialer refused: %s",
             m->result->msg ? m->result->msg : "");
  else if (r != 0)
    snprintf(err, len, "no verdict from the dialer");
  if (m)
    mig_msg__free_unpacked(m, NULL);
  return r > 0 ? -EPROTO : r;
}

int mig_hs_serve(int fd, const uint8_t *key, char *err, size_t len) {
  uint8_t ns[NODE_NONCE_LEN], nd[NODE_NONCE_LEN];
  err[0] = '\0';
  if (send_challenge(fd, key, ns) < 0) {
    snprintf(err, len, "cannot send the challenge");
    return -EPIPE;
  }
  MigMsg *m = expect(fd, MIG_MSG__M_AUTH, "proof", err, len);
  if (m == NULL)
    return -EPROTO;
  int r = check_auth(fd, key, m->auth, ns, err, len);
  if (r == 0)
    memcpy(nd, m->auth->nonce.data, NODE_NONCE_LEN);
  mig_msg__free_unpacked(m, NULL);
  if (r < 0)
    return r;
  if (send_welcome(fd, key, nd, ns) < 0) {
    snprintf(err, len, "cannot send the welcome");
    return -EPIPE;
  }
  return take_verdict(fd, err, len);
}

/* Dialer ------------------------------------------------------------------ */

/* CONNECTED: the server's challenge, answered with ours and our proof. */
static int answer_challenge(int fd, const uint8_t *key, const MigChallenge *c,
                            uint8_t nd[NODE_NONCE_LEN], char *err, size_t len) {
  uint8_t mac[NODE_MAC_LEN];
  if (c->version != MIG_VERSION) {
    snprintf(err, len, "migration protocol version %u, not %u", c->version,
             MIG_VERSION);
    return refuse(fd, -EPROTONOSUPPORT, err);
  }
  if (c->nonce.len != NODE_NONCE_LEN) {
    snprintf(err, len, "truncated challenge");
    return refuse(fd, -EPROTO, err);
  }
  fresh_nonce(nd);
  prove(key, ROLE_DIALER, c->nonce.data, nd, mac);
  MigAuth a = MIG_AUTH__INIT;
  a.nonce = bin(nd, NODE_NONCE_LEN);
  a.mac = bin(mac, NODE_MAC_LEN);
  a.keyed = key != NULL;
  return send_body(fd, MIG_MSG__M_AUTH, &a);
}

/* AUTH_SENT: the server's answer, a Welcome with its proof or a refusal. */
static int check_welcome(int fd, const uint8_t *key, const uint8_t *nd,
                         const uint8_t *ns, bool keyed, char *err, size_t len) {
  MigMsg *m = mig_recv(fd);
  int r = 0;
  if (m == NULL) {
    snprintf(err, len, "no welcome: %s",
             errno ? strerror(errno) : "connection closed");
    r = -EPROTO;
  } else if (m->m_case == MIG_MSG__M_RESULT && keyed && key == NULL) {
    snprintf(err, len, "wrong key: the server has one, give --key FILE");
    r = -EACCES;
  } else if (m->m_case == MIG_MSG__M_RESULT) {
    snprintf(err, len, "%s", m->result->msg ? m->result->msg : "refused");
    r = m->result->err < 0 ? m->result->err : -EPROTO;
  } else if (m->m_case != MIG_MSG__M_WELCOME) {
    snprintf(err, len, "a message other than a welcome");
    r = refuse(fd, -EPROTO, err);
  } else if (!proof_ok(key, ROLE_SERVER, nd, ns, m->welcome->mac)) {
    snprintf(err, len, "the server does not hold our key%s",
             m->welcome->mac.len != NODE_MAC_LEN ? " (truncated proof)" : "");
    r = refuse(fd, -EACCES, err);
  }
  if (m)
    mig_msg__free_unpacked(m, NULL);
  return r;
}

int mig_hs_dial(int fd, const uint8_t *key, char *err, size_t len) {
  uint8_t ns[NODE_NONCE_LEN], nd[NODE_NONCE_LEN];
  err[0] = '\0';
  MigMsg *m = expect(fd, MIG_MSG__M_CHALLENGE, "challenge", err, len);
  if (m == NULL)
    return -EPROTO;
  bool keyed = m->challenge->keyed;
  int r = answer_challenge(fd, key, m->challenge, nd, err, len);
  if (r == 0)
    memcpy(ns, m->challenge->nonce.data, NODE_NONCE_LEN);
  mig_msg__free_unpacked(m, NULL);
  if (r == 0)
    r = check_welcome(fd, key, nd, ns, keyed, err, len);
  return r < 0 ? r : mig_send_result(fd, 0, "ok");
}

int mig_key_file(const char *path, uint8_t key[MIG_KEY_LEN], char *err,
                 size_t len) {
  int r = node_key_load(path, key);
  if (r < 0)
    snprintf(err, len, "--key %s: %s", path,
             r == -EINVAL ? "empty: not a secret" : strerror(-r));
  return r;
}
