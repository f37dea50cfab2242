/* techo: a TCP echo server through /net (#I, vfs/devip.c), the failover
 * tests' TCP-serving application.
 *
 *   techo PORT
 *
 * Finds the conversation that announces PORT in /net/tcp, or announces it
 * itself (clone, "announce PORT"), then serves forever: open N/listen (it
 * waits for a connection and gives the new conversation's ctl), open its
 * data, echo what comes until the client closes, close both, listen
 * again.  One connection at a time per process; run techo twice on the
 * same port for two at once (the second listens on the first one's
 * conversation, as Plan 9's listeners share an announcement).
 *
 * Exits 3 when the port cannot be announced (outside the NIC's range, or
 * the NIC is not this OS's), 1 on another error, 2 on bad usage. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uksim/ap.h"
#include "uksim/ns.h"

#define TECHO_BUF 4096
#define TECHO_TRIES 100 /* lookups racing another techo's announce */
#define TECHO_PAUSE_NS (10 * 1000 * 1000)

/* Whether /net/tcp/NAME/status says it announces port. */
static int announces(const char *name, long port) {
  char path[64], s[128], state[32];
  unsigned p;
  snprintf(path, sizeof path, "/net/tcp/%s/status", name);
  int fd = ns_open(path, NS_OREAD);
  if (fd < 0)
    return 0;
  long n = ns_read(fd, s, sizeof s - 1);
  ns_close(fd);
  if (n <= 0)
    return 0;
  s[n] = '\0';
  return sscanf(s, "%*s %31s port %u", state, &p) == 2 &&
         strcmp(state, "Announced") == 0 && p == (unsigned)port;
}

/* The conversation announcing port, or -ENOENT. */
static int find(long port) {
  ns_dir d[8];
  long n;
  int found = -ENOENT, fd = ns_open("/net/tcp", NS_OREAD);
  if (fd < 0)
    return fd;
  while (found < 0 && (n = ns_dirread(fd, d, 8)) > 0)
    for (long i = 0; i < n && found < 0; i++)
      if (d[i].name[0] >= '0' && d[i].name[0] <= '9' &&
          announces(d[i].name, port))
        found = atoi(d[i].name);
  ns_close(fd);
  return found;
}

/* Announces port: the conversation, its ctl left open (kept by us). */
static int announce(long port) {
  char buf[32];
  int ctl = ns_open("/net/tcp/clone", NS_ORDWR);
  if (ctl < 0)
    return ctl;
  long n = ns_read(ctl, buf, sizeof buf - 1);
  if (n <= 0) {
    ns_close(ctl);
    return n < 0 ? (int)n : -EIO;
  }
  buf[n] = '\0';
  char msg[32];
  int len = snprintf(msg, sizeof msg, "announce %ld", port);
  long w = ns_write(ctl, msg, (size_t)len);
  if (w < 0) {
    ns_close(ctl);
    return (int)w;
  }
  return atoi(buf);
}

static int conversation(long port) {
  for (int t = 0; t < TECHO_TRIES; t++) {
    int c = find(port);
    if (c >= 0)
      return c;
    c = announce(port);
    if (c != -EADDRINUSE)
      return c;
    ap_sleep(TECHO_PAUSE_NS); /* another techo announced it just now */
  }
  return -EADDRINUSE;
}

static int write_all(int fd, const char *b, long n) {
  while (n > 0) {
    long w = ns_write(fd, b, (size_t)n);
    if (w <= 0)
      return w < 0 ? (int)w : -EIO;
    b += w;
    n -= w;
  }
  return 0;
}

/* Serves one connection: its ctl is open as ctl. */
static void serve(int ctl) {
  char buf[TECHO_BUF], path[64];
  long n = ns_read(ctl, buf, 31);
  if (n <= 0)
    return;
  buf[n] = '\0';
  snprintf(path, sizeof path, "/net/tcp/%d/data", atoi(buf));
  int data = ns_open(path, NS_ORDWR);
  if (data < 0)
    return;
  while ((n = ns_read(data, buf, sizeof buf)) > 0)
    if (write_all(data, buf, n) < 0)
      break;
  ns_close(data);
}

int main(int argc, char **argv) {
  char path[64];
  long port = argc == 2 ? atol(argv[1]) : 0;
  if (port <= 0 || port > 65535) {
    fprintf(stderr, "usage: techo PORT\n");
    return 2;
  }
  int c = conversation(port);
  if (c < 0) {
    fprintf(stderr, "techo: port %ld: %s\n", port, strerror(-c));
    return c == -EADDRNOTAVAIL ? 3 : 1;
  }
  printf("techo: tcp/%d serves port %ld\n", c, port);
  fflush(stdout);
  snprintf(path, sizeof path, "/net/tcp/%d/listen", c);
  for (;;) {
    int ctl = ns_open(path, NS_ORDWR);
    if (ctl < 0) {
      fprintf(stderr, "techo: %s: %s\n", path, strerror(-ctl));
      return 1;
    }
    serve(ctl);
    ns_close(ctl);
  }
}
