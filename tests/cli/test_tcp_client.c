/* Unit tests for the runner's tcp-clients (cli/tcp_client.c): each
 * transition of a client's state machine against a real loopback server
 * run here, with a real journal head in a temporary directory for the
 * run's clock.  The server is a thread: it accepts connections and, for
 * each, echoes (or misbehaves as the test asks) until the client closes. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "scn_journal.h"
#include "tcp_client.h"

TestSuite(tcp_client, .timeout = 30);

enum how { ECHO, CLOSE_AFTER_3, GARBLE };

struct server {
  int fd; /* listening */
  uint16_t port;
  enum how how;
  int accepts;
  pthread_t tid;
};

static char dir[64];
static struct server srv;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Serves one connection as srv.how says; lines are 13 bytes ("c 0000000N\n"
 * with name c). */
static void serve(int c) {
  char buf[64];
  ssize_t n;
  int lines = 0;
  while ((n = recv(c, buf, sizeof buf, 0)) > 0) {
    if (srv.how == GARBLE)
      memset(buf, 'x', (size_t)n);
    if (srv.how == CLOSE_AFTER_3 && ++lines > 3)
      break;
    if (send(c, buf, (size_t)n, MSG_NOSIGNAL) != n)
      break;
  }
  close(c);
}

static void *server_main(void *arg) {
  (void)arg;
  int c;
  while ((c = accept(srv.fd, NULL, NULL)) >= 0) {
    srv.accepts++;
    serve(c);
  }
  return NULL;
}

/* A listening socket on an ephemeral loopback port, not served yet. */
static void listen_any(void) {
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sa;
  srv.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cr_assert_geq(srv.fd, 0);
  cr_assert_eq(bind(srv.fd, (struct sockaddr *)&sa, sizeof sa), 0);
  cr_assert_eq(getsockname(srv.fd, (struct sockaddr *)&sa, &len), 0);
  srv.port = ntohs(sa.sin_port);
  cr_assert_leq(srv.port, SCN_NIC_PORT_MAX, "an ephemeral port above nic0's");
}

static void serve_as(enum how how) {
  srv.how = how;
  cr_assert_eq(listen(srv.fd, 4), 0);
  cr_assert_eq(pthread_create(&srv.tid, NULL, server_main, NULL), 0);
}

/* The journal's head, as the first kernel writes it: the run began now. */
static void write_journal(void) {
  struct scn_journal_head h = {.magic = SCN_JOURNAL_MAGIC, .t0_ns = now_ns()};
  char path[128];
  snprintf(path, sizeof path, "%s/" SCN_JOURNAL_NAME, dir);
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  cr_assert_eq(fwrite(&h, sizeof h, 1, f), 1);
  fclose(f);
}

static void setup(void) {
  snprintf(dir, sizeof dir, "/tmp/uksim-tcpc-XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
  memset(&srv, 0, sizeof srv);
  listen_any();
}

static void teardown(void) {
  shutdown(srv.fd, SHUT_RDWR); /* ends accept() */
  if (srv.tid)
    pthread_join(srv.tid, NULL);
  close(srv.fd);
  scn_journal_clear(dir);
  rmdir(dir);
}

/* A scenario whose one tcp-client c reaches srv.port with opts. */
static struct scn *scenario(const char *opts) {
  char text[256];
  struct scn_err err;
  snprintf(text, sizeof text,
           "machine --mode free --nic-port %u\ntcp-client c %u %s\n", srv.port,
           srv.port, opts);
  struct scn *s = scn_parse("t.scn", text, strlen(text), &err);
  cr_assert_not_null(s, "%s", err.text);
  return s;
}

/* Runs the client until it may have sent `lines`, then stops it (the run
 * is over). */
static struct scn_tcp_seen run(const char *opts, uint64_t lines) {
  struct scn *s = scenario(opts);
  struct scn_facts f = {0};
  struct tcp_clients *t = tcp_clients_start(s, dir);
  cr_assert_not_null(t);
  for (int i = 0; lines > 0 && i < 500 && srv.accepts == 0; i++)
    usleep(10 * 1000); /* connected */
  /* A line every 1 to 10 ms, each echoed in well under 1 ms (some ms
   * under valgrind). */
  usleep((useconds_t)(lines * 10 * 1000 + 500 * 1000));
  tcp_clients_stop(t, &f);
  cr_assert_eq(f.ntcp, 1);
  struct scn_tcp_seen c = f.tcp[0];
  tcp_clients_free(t);
  scn_free(s);
  return c;
}

Test(tcp_client, echoes_every_line_on_one_connection, .init = setup,
     .fini = teardown) {
  write_journal();
  serve_as(ECHO);
  struct scn_tcp_seen c = run("--every 1ms --lines 20", 20);
  cr_expect_str_eq(c.name, "c");
  cr_expect(c.connected);
  cr_expect(!c.broke, "%s", c.why);
  cr_expect_eq(c.sent, 20);
  cr_expect_eq(c.echoed, 20);
  cr_expect_eq(srv.accepts, 1, "one connection, never another");
  cr_expect(c.has_last);
  cr_expect_lt(c.last_sent_ns, 5000000000ull, "on the run's clock");
  cr_expect_gt(c.max_wait_ns, 0);
}

Test(tcp_client, the_end_of_the_stream_is_a_break, .init = setup,
     .fini = teardown) {
  write_journal();
  serve_as(CLOSE_AFTER_3);
  struct scn_tcp_seen c = run("--every 1ms --lines 10", 10);
  cr_expect(c.connected);
  cr_expect(c.broke);
  cr_expect(strstr(c.why, "at line 4: ") != NULL, "%s", c.why);
  cr_expect_eq(c.sent, 4);
  cr_expect_eq(c.echoed, 3);
  cr_expect_gt(c.broke_ns, c.last_sent_ns, "it broke after line 3 was sent");
  cr_expect_eq(srv.accepts, 1, "it never reconnects");
}

Test(tcp_client, other_bytes_are_a_break, .init = setup, .fini = teardown) {
  write_journal();
  serve_as(GARBLE);
  struct scn_tcp_seen c = run("--every 1ms --lines 10", 10);
  cr_expect(c.broke);
  cr_expect_str_eq(c.why, "line 1 came back as other bytes");
  cr_expect_eq(c.sent, 1);
  cr_expect_eq(c.echoed, 0);
  cr_expect(!c.has_last);
}

Test(tcp_client, until_stops_it_on_the_run_s_clock, .init = setup,
     .fini = teardown) {
  write_journal();
  serve_as(ECHO);
  /* A line every 20 ms for the first second of the run: at most 51 (fewer
   * when the thread starts late, as under valgrind), none after, though
   * the run goes on for 1.5 s (75 lines' time). */
  struct scn_tcp_seen c = run("--every 20ms --until 1s", 100);
  cr_expect(!c.broke, "%s", c.why);
  cr_expect_geq(c.sent, 1);
  cr_expect_leq(c.sent, 51);
  cr_expect_eq(c.echoed, c.sent);
  cr_expect_lt(c.last_sent_ns, 1000000000ull);
}

Test(tcp_client, nothing_listening_or_no_run_never_connects, .init = setup,
     .fini = teardown) {
  write_journal(); /* the port is bound but nobody listens: refused */
  struct scn_tcp_seen c = run("", 0);
  cr_expect(!c.connected);
  cr_expect_eq(c.sent, 0);
  cr_expect(strstr(c.why, "the run was over before 127.0.0.1:") != NULL, "%s",
            c.why);
  /* No journal: the run never started; the client does not even dial. */
  scn_journal_clear(dir);
  serve_as(ECHO);
  c = run("", 0);
  cr_expect(!c.connected);
  cr_expect_eq(srv.accepts, 0);
}

Test(tcp_client, none_declared_none_started) {
  struct scn_err err;
  struct scn *s = scn_parse("t.scn", "machine\n", 8, &err);
  cr_assert_not_null(s);
  cr_expect_null(tcp_clients_start(s, "/nonexistent"));
  tcp_clients_stop(NULL, NULL);
  tcp_clients_free(NULL);
  scn_free(s);
}
