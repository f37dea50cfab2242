/* Orthros (issue 14): the NIC moves with the active OS; TCP clients
 * outside keep their connections through failovers. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>
#include "harness.h"
#include "uksim/ns.h"
#include "uksim/interos.h"
#include "uksim_paths.h"

#include "orthros.h"

TestSuite(orthros, .init = skip_under_valgrind);

/* The NIC (#I, vfs/devip.c; knic.c): an echo server reached from outside
 * through nic0 keeps its TCP clients through 5 failovers.  The client
 * below is this test process, a plain Linux socket on 127.0.0.1. */
#define ECHO_WAIT_S 10 /* longest wait for an echo, through a failover */

/* A connection to 127.0.0.1:port, or -1. */
static int dial(uint16_t port) {
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons(port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct timeval tv = {.tv_sec = ECHO_WAIT_S};
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Sends line on fd and reads it back whole: true if it came. */
static bool echoes(int fd, const char *line) {
  char got[128];
  size_t n = strlen(line), have = 0;
  if (send(fd, line, n, MSG_NOSIGNAL) != (ssize_t)n)
    return false;
  while (have < n) {
    ssize_t r = recv(fd, got + have, n - have, 0);
    if (r <= 0)
      return false;
    have += (size_t)r;
  }
  return memcmp(got, line, n) == 0;
}

/* A new client is served: connect, one line, close. */
static bool new_client_echoes(uint16_t port, const char *line) {
  int fd = dial(port);
  bool ok = fd >= 0 && echoes(fd, line);
  if (fd >= 0)
    close(fd);
  return ok;
}

static void spawn_techo(mach_client *m, const char *port, const char *as,
                        bool protect) {
  char *a[] = {(char *)port};
  struct mach_prog p = {.program = "techo",
                        .args = a,
                        .nargs = 1,
                        .name = as,
                        .protect = protect};
  cr_assert_eq(mach_spawn_prog(m, &p, NULL), 0, "%s", m->error);
}

/* The port techo announces answers (a connect before it is ours is
 * refused). */
static int await_listener(uint16_t port) {
  for (int i = 0; i < 500; i++) {
    int fd = dial(port);
    if (fd >= 0)
      return fd;
    usleep(10 * 1000);
  }
  return -1;
}

Test(orthros, a_tcp_client_stays_connected_through_5_failovers,
     .timeout = 180) {
  static const int kinds[] = {
      UKSIM__FAULT__KIND__PANIC, UKSIM__FAULT__KIND__HANG,
      UKSIM__FAULT__KIND__CRASH, UKSIM__FAULT__KIND__PANIC,
      UKSIM__FAULT__KIND__CRASH};
  mach_client m;
  char port[16], line[64];
  boot_pair(&m);
  await_pair(&m, 0);
  uint16_t p = (uint16_t)(nic_port + 3);
  snprintf(port, sizeof port, "%u", p);
  spawn_techo(&m, port, "techo1", true);
  int a = await_listener(p);
  cr_assert_geq(a, 0, "techo does not answer on 127.0.0.1:%u", p);
  spawn_techo(&m, port, "techo2", true); /* the second listener */
  cr_assert(echoes(a, "before\n"), "no echo before any failover");
  cr_expect(new_client_echoes(p, "new 0\n"), "no second client");
  /* An unprotected echo server ends with its OS: its client sees the end
   * of the stream and its port refuses, so neither the new kernel nor the
   * machine kept its sockets. */
  uint16_t up = (uint16_t)(p + 5);
  snprintf(port, sizeof port, "%u", up);
  spawn_techo(&m, port, "techo-u", false);
  int u = await_listener(up);
  cr_assert_geq(u, 0, "the unprotected techo does not answer");
  cr_assert(echoes(u, "unprotected\n"));
  for (uint32_t i = 0; i < 5; i++) {
    /* The client's outage: from the fault to its first echo once the
     * backup has found the fault (detection included). */
    await_pair(&m, i);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert_eq(mach_fault(&m, kinds[i], 0), 0, "fault: %s", m.error);
    struct uk_interos d = await_detection(&m, i + 1);
    snprintf(line, sizeof line, "after failover %u\n", i + 1);
    cr_assert(echoes(a, line), "the client lost its echo at failover %u",
              i + 1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("orthros-nic: failover %u: the client's echo %.1f ms after the "
           "fault\n",
           i + 1,
           (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
    await_pair(&m, i + 1);
    if (i == 0) {
      char c;
      cr_expect_leq(recv(u, &c, 1, 0), 0,
                    "the unprotected server's client "
                    "still has a connection");
      close(u);
      u = dial(up);
      cr_expect_lt(u, 0, "port %u still accepts connections", up);
      if (u >= 0)
        close(u);
    }
    snprintf(line, sizeof line, "new %u\n", i + 1);
    cr_expect(new_client_echoes(p, line), "no new client after failover %u",
              i + 1);
    cr_expect(trace_has(d.det_by_os, "failover", "TCP conversations kept"),
              "no NIC in the processes step of os %u", d.det_by_os);
  }
  close(a);
  halt(&m);
}

/* Only nic0's range, and only on the OS that owns it: nic1's ports (the
 * backup's NIC) and a port outside both are refused (techo exits 3). */
Test(orthros, a_port_outside_nic0_is_refused, .timeout = 60) {
  mach_client m;
  char nic1[16];
  boot_pair(&m);
  await_pair(&m, 0);
  snprintf(nic1, sizeof nic1, "%u", nic_port + UK_NIC_PORTS);
  char *a1[] = {nic1}, *a2[] = {"1"};
  cr_expect_eq(h_wait(&m, h_spawn(&m, "techo", a1, 1, "nic1", NULL)), 3);
  cr_expect_eq(h_wait(&m, h_spawn(&m, "techo", a2, 1, "low", NULL)), 3);
  halt(&m);
}
