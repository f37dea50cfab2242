/* The migration handshake (sim-kernel/migd.h "The handshake"; migauth.c):
 * each transition, both sides' words, over a real socketpair with each
 * side in a thread of its own, or one side played by the test to send what
 * an attacker would: a truncated proof, a replayed one, a wrong one. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migd.h"
#include "migwire.h"
#include "node.h"

static const uint8_t key_a[MIG_KEY_LEN] = {1, 2, 3};
static const uint8_t key_b[MIG_KEY_LEN] = {9, 9, 9};

struct side {
  int fd;
  const uint8_t *key;
  int r;
  char err[MIG_ERR_MAX];
};

static void *serve_main(void *arg) {
  struct side *s = arg;
  s->r = mig_hs_serve(s->fd, s->key, s->err, sizeof s->err);
  return NULL;
}

static void *dial_main(void *arg) {
  struct side *s = arg;
  s->r = mig_hs_dial(s->fd, s->key, s->err, sizeof s->err);
  return NULL;
}

static void pair(int sv[2]) {
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  mig_timeout(sv[0], 2000);
  mig_timeout(sv[1], 2000);
}

/* Runs both real sides, server key ks, dialer key kd. */
static void both(const uint8_t *ks, const uint8_t *kd, struct side *s,
                 struct side *d) {
  int sv[2];
  pthread_t ts, td;
  pair(sv);
  *s = (struct side){.fd = sv[0], .key = ks};
  *d = (struct side){.fd = sv[1], .key = kd};
  pthread_create(&ts, NULL, serve_main, s);
  pthread_create(&td, NULL, dial_main, d);
  pthread_join(td, NULL);
  pthread_join(ts, NULL);
}

static void close_both(struct side *s, struct side *d) {
  close(s->fd);
  close(d->fd);
}

Test(migd_auth, same_key_proves_both_ways_then_a_request_passes) {
  struct side s, d;
  both(key_a, key_a, &s, &d);
  cr_assert_eq(s.r, 0, "%s", s.err);
  cr_assert_eq(d.r, 0, "%s", d.err);
  /* READY: the connection carries its request. */
  MigMsg m = MIG_MSG__INIT;
  MigList l = MIG_LIST__INIT;
  m.m_case = MIG_MSG__M_LIST;
  m.list = &l;
  cr_assert_eq(mig_send(d.fd, &m), 0);
  MigMsg *got = mig_recv(s.fd);
  cr_assert_not_null(got);
  cr_assert_eq(got->m_case, MIG_MSG__M_LIST);
  mig_msg__free_unpacked(got, NULL);
  close_both(&s, &d);
}

Test(migd_auth, no_key_on_either_side_agrees) {
  struct side s, d;
  both(NULL, NULL, &s, &d);
  cr_assert_eq(s.r, 0, "%s", s.err);
  cr_assert_eq(d.r, 0, "%s", d.err);
  close_both(&s, &d);
}

/* Keys ks and kd do not agree: both sides refuse, the dialer in words. */
static void refused(const uint8_t *ks, const uint8_t *kd, const char *words) {
  struct side s, d;
  both(ks, kd, &s, &d);
  cr_assert_eq(s.r, -EACCES, "%s", s.err);
  cr_assert_eq(d.r, -EACCES, "%s", d.err);
  cr_assert(strstr(s.err, "wrong key"), "%s", s.err);
  cr_assert(strstr(d.err, words), "%s", d.err);
  close_both(&s, &d);
}

Test(migd_auth, wrong_key_is_refused_on_both_sides) {
  refused(key_a, key_b, "wrong key");
}

Test(migd_auth, missing_key_is_refused_with_a_hint) {
  refused(key_a, NULL, "wrong key: the server has one, give --key FILE");
}

Test(migd_auth, a_key_the_server_lacks_is_refused_with_a_hint) {
  refused(NULL, key_a, "drop --key");
}

/* The test as one side ------------------------------------------------- */

static MigMsg *recv_case(int fd, MigMsg__MCase c) {
  MigMsg *m = mig_recv(fd);
  cr_assert_not_null(m);
  cr_assert_eq(m->m_case, c, "got case %d", m->m_case);
  return m;
}

static void send_auth(int fd, ProtobufCBinaryData nonce,
                      ProtobufCBinaryData mac) {
  MigMsg m = MIG_MSG__INIT;
  MigAuth a = MIG_AUTH__INIT;
  a.nonce = nonce;
  a.mac = mac;
  a.keyed = true;
  m.m_case = MIG_MSG__M_AUTH;
  m.auth = &a;
  cr_assert_eq(mig_send(fd, &m), 0);
}

/* A real server on sv[0] in *t; the test holds sv[1] (*fd) and has read
 * the server's challenge (returned). */
static MigMsg *real_server(struct side *s, pthread_t *t, int *fd) {
  int sv[2];
  pair(sv);
  *s = (struct side){.fd = sv[0], .key = key_a};
  *fd = sv[1];
  pthread_create(t, NULL, serve_main, s);
  return recv_case(*fd, MIG_MSG__M_CHALLENGE);
}

static void expect_refusal(int fd, int err) {
  MigMsg *r = recv_case(fd, MIG_MSG__M_RESULT);
  cr_assert_eq(r->result->err, err);
  mig_msg__free_unpacked(r, NULL);
}

/* The real server on the test's fd ends with r and words; all closed. */
static void server_ends(struct side *s, pthread_t t, int fd, MigMsg *c, int r,
                        const char *words) {
  pthread_join(t, NULL);
  cr_assert_eq(s->r, r, "%s", s->err);
  cr_assert(strstr(s->err, words), "%s", s->err);
  mig_msg__free_unpacked(c, NULL);
  close(fd);
  close(s->fd);
}

static int fake_server(struct side *d, pthread_t *t, uint32_t version,
                       uint8_t ns[NODE_NONCE_LEN]);

Test(migd_auth, truncated_proof_is_refused) {
  struct side s;
  pthread_t t;
  int fd;
  MigMsg *c = real_server(&s, &t, &fd);
  uint8_t nd[NODE_NONCE_LEN] = {0}, mac[NODE_MAC_LEN];
  node_mac(key_a, "migd-dialer", c->challenge->nonce.data, nd, "", mac);
  /* the right proof, cut short */
  send_auth(fd, (ProtobufCBinaryData){NODE_NONCE_LEN, nd},
            (ProtobufCBinaryData){NODE_MAC_LEN / 2, mac});
  expect_refusal(fd, -EPROTO);
  server_ends(&s, t, fd, c, -EPROTO, "truncated proof");
}

Test(migd_auth, a_recorded_proof_replayed_is_refused) {
  /* Record: a real dialer answers a challenge the test sends. */
  struct side d;
  pthread_t t;
  uint8_t ns[NODE_NONCE_LEN] = {7};
  int rfd = fake_server(&d, &t, MIG_VERSION, ns);
  MigMsg *rec = recv_case(rfd, MIG_MSG__M_AUTH);
  close(rfd); /* the dialer gives up: no welcome */
  pthread_join(t, NULL);
  cr_assert_neq(d.r, 0);
  close(d.fd);
  /* Replay it to a real server: its challenge is new. */
  struct side s;
  int fd;
  MigMsg *c = real_server(&s, &t, &fd);
  send_auth(fd, rec->auth->nonce, rec->auth->mac);
  expect_refusal(fd, -EACCES);
  mig_msg__free_unpacked(rec, NULL);
  server_ends(&s, t, fd, c, -EACCES, "wrong key");
}

Test(migd_auth, another_message_instead_of_a_proof_is_refused) {
  struct side s;
  pthread_t t;
  int fd;
  MigMsg *c = real_server(&s, &t, &fd);
  MigMsg m = MIG_MSG__INIT;
  MigList l = MIG_LIST__INIT;
  m.m_case = MIG_MSG__M_LIST;
  m.list = &l;
  cr_assert_eq(mig_send(fd, &m), 0);
  server_ends(&s, t, fd, c, -EPROTO, "other than proof");
}

Test(migd_auth, a_dialer_gone_mid_handshake_is_an_error) {
  struct side s;
  pthread_t t;
  int fd;
  MigMsg *c = real_server(&s, &t, &fd);
  shutdown(fd, SHUT_WR); /* gone: the server reads the end */
  server_ends(&s, t, fd, c, -EPROTO, "no proof");
}

/* The test as the server: a challenge, then the dialer's Auth. */
static int fake_server(struct side *d, pthread_t *t, uint32_t version,
                       uint8_t ns[NODE_NONCE_LEN]) {
  int sv[2];
  pair(sv);
  *d = (struct side){.fd = sv[1], .key = key_a};
  pthread_create(t, NULL, dial_main, d);
  MigMsg m = MIG_MSG__INIT;
  MigChallenge ch = MIG_CHALLENGE__INIT;
  ch.version = version;
  ch.nonce = (ProtobufCBinaryData){NODE_NONCE_LEN, ns};
  ch.keyed = true;
  m.m_case = MIG_MSG__M_CHALLENGE;
  m.challenge = &ch;
  cr_assert_eq(mig_send(sv[0], &m), 0);
  return sv[0];
}

static void send_welcome(int fd, const uint8_t *mac, size_t len) {
  MigMsg m = MIG_MSG__INIT;
  MigWelcome w = MIG_WELCOME__INIT;
  w.mac = (ProtobufCBinaryData){len, (uint8_t *)mac};
  m.m_case = MIG_MSG__M_WELCOME;
  m.welcome = &w;
  cr_assert_eq(mig_send(fd, &m), 0);
}

/* A server that answers with proof mac[0..len): the dialer's verdict. */
static void server_proof(const uint8_t *mac, size_t len, int want) {
  struct side d;
  pthread_t t;
  uint8_t ns[NODE_NONCE_LEN] = {5};
  int fd = fake_server(&d, &t, MIG_VERSION, ns);
  MigMsg *a = recv_case(fd, MIG_MSG__M_AUTH);
  uint8_t right[NODE_MAC_LEN];
  if (mac == NULL) { /* the right proof over the dialer's challenge */
    node_mac(key_a, "migd-server", a->auth->nonce.data, ns, "", right);
    mac = right;
  }
  send_welcome(fd, mac, len);
  expect_refusal(fd, want); /* the verdict: Result(0) or a refusal */
  pthread_join(t, NULL);
  cr_assert_eq(d.r, want, "%s", d.err);
  if (want != 0)
    cr_assert(strstr(d.err, "does not hold our key"), "%s", d.err);
  mig_msg__free_unpacked(a, NULL);
  close(fd);
  close(d.fd);
}

Test(migd_auth, the_servers_proof_is_checked) {
  uint8_t junk[NODE_MAC_LEN] = {1};
  server_proof(NULL, NODE_MAC_LEN, 0);
  server_proof(junk, NODE_MAC_LEN, -EACCES);
  server_proof(NULL, NODE_MAC_LEN - 1, -EACCES); /* truncated */
}

Test(migd_auth, the_servers_proof_of_another_connection_is_refused) {
  /* A proof made over another challenge of the dialer's (a replay). */
  uint8_t other[NODE_NONCE_LEN] = {3}, ns[NODE_NONCE_LEN] = {5};
  uint8_t mac[NODE_MAC_LEN];
  node_mac(key_a, "migd-server", other, ns, "", mac);
  server_proof(mac, NODE_MAC_LEN, -EACCES);
}

Test(migd_auth, a_reflected_proof_is_refused) {
  /* The dialer's own proof sent back as the server's: roles differ. */
  struct side d;
  pthread_t t;
  uint8_t ns[NODE_NONCE_LEN] = {5};
  int fd = fake_server(&d, &t, MIG_VERSION, ns);
  MigMsg *a = recv_case(fd, MIG_MSG__M_AUTH);
  send_welcome(fd, a->auth->mac.data, a->auth->mac.len);
  expect_refusal(fd, -EACCES);
  pthread_join(t, NULL);
  cr_assert_eq(d.r, -EACCES);
  mig_msg__free_unpacked(a, NULL);
  close(fd);
  close(d.fd);
}

Test(migd_auth, another_protocol_version_is_refused) {
  struct side d;
  pthread_t t;
  uint8_t ns[NODE_NONCE_LEN] = {5};
  int fd = fake_server(&d, &t, MIG_VERSION - 1, ns);
  expect_refusal(fd, -EPROTONOSUPPORT);
  pthread_join(t, NULL);
  cr_assert_eq(d.r, -EPROTONOSUPPORT);
  cr_assert(strstr(d.err, "version"), "%s", d.err);
  close(fd);
  close(d.fd);
}

Test(migd_auth, key_files_load_as_node_keys) {
  char path[64], why[MIG_ERR_MAX];
  uint8_t k1[MIG_KEY_LEN], k2[NODE_KEY_LEN];
  snprintf(path, sizeof path, "/tmp/test_migd_auth.%d.key", getpid());
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs("a secret\n", f);
  fclose(f);
  cr_assert_eq(mig_key_file(path, k1, why, sizeof why), 0, "%s", why);
  cr_assert_eq(node_key_load(path, k2), 0);
  cr_assert_arr_eq(k1, k2, MIG_KEY_LEN);
  f = fopen(path, "w");
  fclose(f);
  cr_assert_eq(mig_key_file(path, k1, why, sizeof why), -EINVAL);
  cr_assert(strstr(why, "empty"), "%s", why);
  unlink(path);
  cr_assert_eq(mig_key_file(path, k1, why, sizeof why), -ENOENT);
  cr_assert(strstr(why, path), "%s", why);
}
