/* The node protocol (sim-kernel/node.h): frames, every handshake
 * transition, bad input (random, truncated, oversize, out-of-order), and
 * the blocking dialer against peers that misbehave on a real socket. */
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "node.h"

static const uint8_t key1[NODE_KEY_LEN] = {1, 2, 3};
static const uint8_t key2[NODE_KEY_LEN] = {9, 9, 9};

static Uksim__Node__Msg *decode(const uint8_t *buf, size_t len) {
  int err = 0;
  Uksim__Node__Msg *m = node_frame_decode(buf, len, &err);
  cr_assert_not_null(m, "decode: %s", strerror(-err));
  return m;
}

/* Runs the handshake between a listener keyed kl and a dialer keyed kd;
 * returns the dialer's result, the listener's in *lr. */
static int handshake(const uint8_t *kl, const uint8_t *kd, struct node_hs *l,
                     struct node_hs *d, int *lr) {
  uint8_t *f, *g;
  size_t n, m;
  long len = node_hs_listen(l, kl, "lis", &f);
  cr_assert_gt(len, 0);
  node_hs_dial(d, kd, "dia");
  Uksim__Node__Msg *hello = decode(f, (size_t)len);
  int r = node_hs_input(d, hello, &g, &n);
  node_msg_free(hello);
  free(f);
  cr_assert_eq(r, 0);
  cr_assert_eq(d->state, NODE_AUTH_SENT);
  Uksim__Node__Msg *auth = decode(g, n);
  *lr = node_hs_input(l, auth, &f, &m);
  node_msg_free(auth);
  free(g);
  Uksim__Node__Msg *answer = decode(f, m);
  r = node_hs_input(d, answer, &g, &n);
  node_msg_free(answer);
  free(f);
  free(g);
  return r;
}

Test(node_msg, the_same_key_reaches_ready_on_both_sides) {
  struct node_hs l, d;
  int lr;
  cr_expect_eq(handshake(key1, key1, &l, &d, &lr), 0, "%s", d.error);
  cr_expect_eq(lr, 0);
  cr_expect_eq(l.state, NODE_READY);
  cr_expect_eq(d.state, NODE_READY);
  cr_expect_str_eq(l.peer, "dia");
  cr_expect_str_eq(d.peer, "lis");
  cr_expect_eq(handshake(NULL, NULL, &l, &d, &lr), 0, "no key on either side");
}

Test(node_msg, a_wrong_key_is_refused_by_the_listener) {
  struct node_hs l, d;
  int lr;
  cr_expect_eq(handshake(key1, key2, &l, &d, &lr), -EACCES);
  cr_expect_eq(lr, -EACCES);
  cr_expect_eq(l.state, NODE_CLOSED);
  cr_expect_eq(d.state, NODE_CLOSED);
  cr_expect(strstr(d.error, "node lis: wrong key"), "%s", d.error);
  cr_expect_eq(handshake(key1, NULL, &l, &d, &lr), -EACCES);
  cr_expect(strstr(d.error, "(it has a key: give it)"), "%s", d.error);
}

Test(node_msg, a_listener_without_the_key_is_refused_by_the_dialer) {
  struct node_hs l, d;
  uint8_t *f, *g;
  size_t n, m;
  long len = node_hs_listen(&l, NULL, "lis", &f);
  node_hs_dial(&d, key1, "dia");
  Uksim__Node__Msg *hello = decode(f, (size_t)len);
  cr_assert_eq(node_hs_input(&d, hello, &g, &n), 0);
  node_msg_free(hello);
  free(f);
  /* A listener that welcomes anyone (a forged Welcome): the dialer checks
   * its MAC and refuses. */
  Uksim__Node__Welcome w = UKSIM__NODE__WELCOME__INIT;
  Uksim__Node__Msg wm = UKSIM__NODE__MSG__INIT;
  uint8_t mac[NODE_MAC_LEN] = {0};
  w.mac = (ProtobufCBinaryData){NODE_MAC_LEN, mac};
  wm.body_case = UKSIM__NODE__MSG__BODY_WELCOME;
  wm.welcome = &w;
  free(g);
  cr_expect_eq(node_hs_input(&d, &wm, &g, &m), -EACCES);
  cr_expect(strstr(d.error, "does not hold our key"), "%s", d.error);
  cr_expect_not_null(g, "a Refused to send before closing");
  free(g);
}

Test(node_msg, a_replayed_answer_does_not_open_a_new_session) {
  struct node_hs l1, l2, d;
  uint8_t *f1, *f2, *g, *out;
  size_t n, m;
  long len = node_hs_listen(&l1, key1, "lis", &f1);
  node_hs_dial(&d, key1, "dia");
  Uksim__Node__Msg *hello = decode(f1, (size_t)len);
  node_hs_input(&d, hello, &g, &n);
  node_msg_free(hello);
  /* The recorded Auth, given to a second session (a fresh challenge). */
  node_hs_listen(&l2, key1, "lis", &f2);
  Uksim__Node__Msg *auth = decode(g, n);
  cr_expect_eq(node_hs_input(&l2, auth, &out, &m), -EACCES);
  free(out);
  node_msg_free(auth);
  free(f1);
  free(f2);
  free(g);
}

Test(node_msg, messages_out_of_order_close_the_handshake) {
  struct node_hs l, d;
  uint8_t *f, *out;
  size_t m;
  Uksim__Node__Lookup lk = UKSIM__NODE__LOOKUP__INIT;
  Uksim__Node__Msg lm = UKSIM__NODE__MSG__INIT;
  lk.service = "kvs";
  lm.body_case = UKSIM__NODE__MSG__BODY_LOOKUP;
  lm.lookup = &lk;
  node_hs_listen(&l, key1, "lis", &f);
  free(f);
  cr_expect_eq(node_hs_input(&l, &lm, &out, &m), -EPROTO,
               "a lookup before authenticating");
  cr_expect_eq(l.state, NODE_CLOSED);
  free(out);
  node_hs_dial(&d, key1, "dia");
  cr_expect_eq(node_hs_input(&d, &lm, &out, &m), -EPROTO);
  free(out);
}

Test(node_msg, frames_round_trip_and_bad_ones_are_refused) {
  Uksim__Node__Lookup lk = UKSIM__NODE__LOOKUP__INIT;
  Uksim__Node__Msg lm = UKSIM__NODE__MSG__INIT;
  uint8_t *f;
  int err;
  lk.id = 7;
  lk.service = "kvs";
  lm.body_case = UKSIM__NODE__MSG__BODY_LOOKUP;
  lm.lookup = &lk;
  long len = node_frame_encode(&lm, &f);
  cr_assert_gt(len, NODE_HDR);
  for (long i = 0; i < len; i++) /* every truncation: not yet whole */
    cr_expect_eq(node_frame_need(f, (size_t)i), 0, "%ld", i);
  cr_expect_eq(node_frame_need(f, (size_t)len), len);
  Uksim__Node__Msg *m = decode(f, (size_t)len);
  cr_expect_eq(m->lookup->id, 7);
  cr_expect_str_eq(m->lookup->service, "kvs");
  node_msg_free(m);
  cr_expect_null(node_frame_decode(f, (size_t)len - 1, &err), "truncated");
  cr_expect_eq(err, -EBADMSG);
  uint8_t big[4] = {0xff, 0xff, 0xff, 0x7f}, zero[4] = {0};
  cr_expect_eq(node_frame_need(big, 4), -EMSGSIZE);
  cr_expect_eq(node_frame_need(zero, 4), -EMSGSIZE);
  /* A service name beyond NODE_NAME_MAX is refused on decode. */
  char longname[NODE_NAME_MAX + 8];
  memset(longname, 'x', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  lk.service = longname;
  free(f);
  len = node_frame_encode(&lm, &f);
  cr_expect_null(node_frame_decode(f, (size_t)len, &err));
  free(f);
}

Test(node_msg, random_frames_never_crash_the_decoder) {
  uint8_t buf[NODE_HDR + 256];
  int err, ok = 0;
  srand(16);
  for (int i = 0; i < 20000; i++) {
    size_t n = (size_t)(rand() % 256);
    for (size_t k = 0; k < n; k++)
      buf[NODE_HDR + k] = (uint8_t)rand();
    buf[0] = (uint8_t)n, buf[1] = buf[2] = buf[3] = 0;
    Uksim__Node__Msg *m = node_frame_decode(buf, NODE_HDR + n, &err);
    ok += m != NULL;
    node_msg_free(m);
  }
  cr_expect_lt(ok, 20000, "random bytes are mostly refused");
}

/* Peers that misbehave on a real socket ------------------------------------ */

struct fake {
  int lsock, port;
  int mode; /* 0 silent after accept, 1 half a frame then close */
};

static void *fake_peer(void *arg) {
  struct fake *f = arg;
  int s = accept(f->lsock, NULL, NULL);
  if (s < 0)
    return NULL;
  if (f->mode == 1) {
    uint8_t half[6] = {40, 0, 0, 0, 0x0a, 0x05};
    if (write(s, half, sizeof half) < 0) {
      /* the dialer gone: nothing to test */
    }
    close(s);
  } else {
    sleep(NODE_IO_TIMEOUT_MS / 1000 + 2);
    close(s);
  }
  return NULL;
}

static void fake_start(struct fake *f, int mode, pthread_t *t) {
  struct sockaddr_in sin = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof sin;
  f->mode = mode;
  f->lsock = socket(AF_INET, SOCK_STREAM, 0);
  cr_assert_eq(bind(f->lsock, (struct sockaddr *)&sin, sizeof sin), 0);
  cr_assert_eq(listen(f->lsock, 1), 0);
  getsockname(f->lsock, (struct sockaddr *)&sin, &sl);
  f->port = ntohs(sin.sin_port);
  pthread_create(t, NULL, fake_peer, f);
}

Test(node_msg, a_truncated_frame_then_close_is_a_clear_error, .timeout = 30) {
  struct fake f;
  pthread_t t;
  char addr[64], err[NODE_ERR_MAX];
  fake_start(&f, 1, &t);
  snprintf(addr, sizeof addr, "tcp!127.0.0.1!%d", f.port);
  cr_expect_null(node_dial(addr, NULL, "me", err, sizeof err));
  cr_expect_str_eq(err, "the node closed the connection");
  pthread_join(t, NULL);
  close(f.lsock);
}

Test(node_msg, a_silent_peer_times_out_instead_of_hanging, .timeout = 60) {
  struct fake f;
  pthread_t t;
  char addr[64], err[NODE_ERR_MAX];
  fake_start(&f, 0, &t);
  snprintf(addr, sizeof addr, "tcp!127.0.0.1!%d", f.port);
  cr_expect_null(node_dial(addr, NULL, "me", err, sizeof err));
  cr_expect_str_eq(err, "the node did not answer in time");
  pthread_join(t, NULL);
  close(f.lsock);
}

Test(node_msg, port_options_become_dial_addresses) {
  char a[64];
  cr_expect_eq(node_port_addr("7001", a, sizeof a), 0);
  cr_expect_str_eq(a, "tcp!127.0.0.1!7001");
  cr_expect_eq(node_port_addr("10.0.0.2!7001", a, sizeof a), 0);
  cr_expect_str_eq(a, "tcp!10.0.0.2!7001");
  cr_expect_eq(node_port_addr("x", a, sizeof a), -EINVAL);
  cr_expect_eq(node_port_addr("70000", a, sizeof a), -EINVAL);
  cr_expect_eq(node_port_addr("", a, sizeof a), -EINVAL);
}
