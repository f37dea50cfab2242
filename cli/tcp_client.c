/* The tcp-clients of a scenario (tcp_client.h): each one a thread of the
 * runner, outside the machine, talking to a server inside it through the
 * machine's NIC (a loopback port of nic0), as a client on another host
 * would.  It stays on ONE connection for the whole run and never
 * reconnects: a failover that lost its connection shows as a break.
 *
 * One client, as a state machine:
 *
 *   CONNECTING --the journal gives the run's start, and connect() works-->
 *              TALKING
 *   CONNECTING --refused (the server has not announced yet): again every
 *              TCP_CLIENT_RETRY_MS--> CONNECTING
 *   CONNECTING --TCP_CLIENT_CONNECT_MS gone, or the run is over--> DONE
 *              (never connected: why says so)
 *   TALKING    --send line i, its echo comes back whole and equal-->
 *              PAUSED (echoed + 1; its wait counted)
 *   TALKING    --end of stream, an error, other bytes, or no echo for
 *              TCP_CLIENT_ECHO_WAIT_MS--> DONE (broke: why says which)
 *   PAUSED     --TIME after line i was sent (or at once, if its echo took
 *              longer)--> TALKING (line i + 1)
 *   PAUSED     --N lines sent, or --until reached--> DONE (closes cleanly)
 *   any        --the run is over (tcp_clients_stop)--> DONE (a line in
 *              flight is sent and not echoed)
 *
 * Times are the run's (the trace's): the monotonic clock from the
 * executor's start, which the first kernel writes to its journal before
 * it starts anything (scn_journal.h).  Only this thread writes its figures
 * until tcp_clients_stop has joined it. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "scn_journal.h"
#include "tcp_client.h"
#include "uksim/xalloc.h"

struct client {
  const struct scn_tcp_client *decl;
  const char *dir; /* the journal's */
  int stop;        /* an eventfd, readable once the run is over */
  uint64_t t0;     /* the run's start, monotonic ns */
  bool have_t0;
  bool started; /* its thread runs */
  pthread_t tid;
  struct scn_tcp_seen *seen;
};

struct tcp_clients {
  struct client *c;
  struct scn_tcp_seen *seen;
  size_t n;
  int stop;
};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Waits up to ns for fd to be readable (fd < 0: only the stop).  1 fd is
 * readable, 0 the time is up, -1 the run is over. */
static int await_fd(const struct client *c, int fd, uint64_t ns) {
  struct pollfd p[2] = {{.fd = c->stop, .events = POLLIN},
                        {.fd = fd, .events = POLLIN}};
  int ms = (int)((ns + 999999) / 1000000);
  int r = poll(p, fd >= 0 ? 2 : 1, ms);
  if (r > 0 && (p[0].revents & POLLIN))
    return -1;
  return r > 0 ? 1 : 0;
}

/* One try: a connection to 127.0.0.1:port, or -errno. */
static int dial(uint32_t port) {
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  return fd;
}

/* CONNECTING: the connection, or -1 with why set. */
static int connecting(struct client *c) {
  uint64_t end = now_ns() + TCP_CLIENT_CONNECT_MS * 1000000ull;
  int fd = -ENOENT; /* no journal yet */
  for (;;) {
    if (!c->have_t0)
      c->have_t0 = scn_journal_t0(c->dir, &c->t0) == 0;
    if (c->have_t0 && (fd = dial(c->decl->port)) >= 0)
      return fd;
    if (now_ns() >= end) {
      snprintf(c->seen->why, sizeof c->seen->why,
               "nothing answered on 127.0.0.1:%u in %d s (%s)", c->decl->port,
               TCP_CLIENT_CONNECT_MS / 1000,
               c->have_t0 ? strerror(-fd) : "the run never started");
      return -1;
    }
    if (await_fd(c, -1, TCP_CLIENT_RETRY_MS * 1000000ull) < 0) {
      snprintf(c->seen->why, sizeof c->seen->why,
               "the run was over before 127.0.0.1:%u answered", c->decl->port);
      return -1;
    }
  }
}

static void broke(struct client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void broke(struct client *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  c->seen->broke = true;
  c->seen->broke_ns = now_ns() - c->t0;
  vsnprintf(c->seen->why, sizeof c->seen->why, fmt, ap);
  va_end(ap);
}

/* Reads n bytes of the echo into got before `end`: 0, or -1 with the break
 * set (or, the run over, a line left in flight). */
static int read_echo(struct client *c, int fd, uint64_t i, char *got, size_t n,
                     uint64_t end) {
  size_t have = 0;
  while (have < n) {
    uint64_t now = now_ns();
    int w = now >= end ? 0 : await_fd(c, fd, end - now);
    if (w < 0)
      return -1; /* over: line i was sent and did not come back */
    if (w == 0) {
      broke(c, "no echo of line %" PRIu64 " for %d s", i,
            TCP_CLIENT_ECHO_WAIT_MS / 1000);
      return -1;
    }
    ssize_t r = recv(fd, got + have, n - have, 0);
    if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) {
      broke(c, "at line %" PRIu64 ": %s", i,
            r == 0 ? "the server closed it" : strerror(errno));
      return -1;
    }
    have += r > 0 ? (size_t)r : 0;
  }
  return 0;
}

/* TALKING: sends line i and checks its echo.  0, or -1 (DONE). */
static int talk(struct client *c, int fd, uint64_t i) {
  char line[TCP_CLIENT_LINE_MAX], got[TCP_CLIENT_LINE_MAX];
  int n = snprintf(line, sizeof line, "%s %08" PRIu64 "\n", c->decl->name, i);
  uint64_t sent = now_ns();
  if (send(fd, line, (size_t)n, MSG_NOSIGNAL) != n) {
    broke(c, "line %" PRIu64 " could not be sent: %s", i, strerror(errno));
    return -1;
  }
  c->seen->sent++;
  uint64_t end = sent + TCP_CLIENT_ECHO_WAIT_MS * 1000000ull;
  if (read_echo(c, fd, i, got, (size_t)n, end) < 0)
    return -1;
  if (memcmp(got, line, (size_t)n) != 0) {
    broke(c, "line %" PRIu64 " came back as other bytes", i);
    return -1;
  }
  uint64_t wait = now_ns() - sent;
  c->seen->echoed++;
  if (wait > c->seen->max_wait_ns)
    c->seen->max_wait_ns = wait;
  c->seen->last_sent_ns = sent - c->t0;
  c->seen->has_last = true;
  return 0;
}

/* PAUSED: whether line i (the next) is to be sent; waits until `next`. */
static bool go_on(struct client *c, uint64_t i, uint64_t next) {
  const struct scn_tcp_client *d = c->decl;
  uint64_t now = now_ns();
  if (next > now && await_fd(c, -1, next - now) < 0)
    return false;
  if (d->lines && i > d->lines)
    return false;
  return d->until_ns == 0 || now_ns() - c->t0 < d->until_ns;
}

static void *client_main(void *arg) {
  struct client *c = arg;
  int fd = connecting(c);
  if (fd < 0)
    return NULL;
  c->seen->connected = true;
  uint64_t next = now_ns();
  for (uint64_t i = 1; go_on(c, i, next); i++) {
    /* TIME from this line's send: after a long wait (a failover) the
     * lines do not come in a burst to catch up. */
    next = now_ns() + c->decl->every_ns;
    if (talk(c, fd, i) < 0)
      break;
  }
  close(fd);
  return NULL;
}

struct tcp_clients *tcp_clients_start(const struct scn *s, const char *dir) {
  if (s->ntcps == 0)
    return NULL;
  struct tcp_clients *t = xcalloc(1, sizeof *t);
  t->n = s->ntcps;
  t->c = xcalloc(t->n, sizeof *t->c);
  t->seen = xcalloc(t->n, sizeof *t->seen);
  t->stop = eventfd(0, EFD_CLOEXEC);
  for (size_t i = 0; i < t->n; i++) {
    struct client *c = &t->c[i];
    *c = (struct client){
        .decl = &s->tcps[i], .dir = dir, .stop = t->stop, .seen = &t->seen[i]};
    snprintf(c->seen->name, sizeof c->seen->name, "%s", s->tcps[i].name);
    if (t->stop < 0)
      snprintf(c->seen->why, sizeof c->seen->why, "no eventfd: %s",
               strerror(errno));
    else if (pthread_create(&c->tid, NULL, client_main, c) != 0)
      snprintf(c->seen->why, sizeof c->seen->why, "no thread for it");
    else
      c->started = true;
  }
  return t;
}

void tcp_clients_stop(struct tcp_clients *t, struct scn_facts *facts) {
  if (t == NULL)
    return;
  uint64_t one = 1;
  if (t->stop >= 0 && write(t->stop, &one, sizeof one) != sizeof one)
    perror("uksim run: tcp-client stop");
  for (size_t i = 0; i < t->n; i++)
    if (t->c[i].started)
      pthread_join(t->c[i].tid, NULL);
  facts->tcp = t->seen;
  facts->ntcp = t->n;
}

void tcp_clients_free(struct tcp_clients *t) {
  if (t == NULL)
    return;
  if (t->stop >= 0)
    close(t->stop);
  free(t->c);
  free(t->seen);
  free(t);
}
