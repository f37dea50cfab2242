/* ipcload: the application process of `uksim bench ipc`.
 *
 * Sends --iters requests to the echo server, one at a time (each waits for
 * its answer), with a 4 KiB control ICA and optionally a data ICA of --size
 * bytes, and writes the median and 99th percentile round trip in ns to
 * --out.  The data ICA is filled once before timing and checked after: the
 * hand-off must leave its bytes untouched.
 *
 * -c NAME (interleaved blocks, for `uksim bench ipc`; protocol in
 * ipcload.h): null round trips in blocks, each when the bench asks for it,
 * so the bench can alternate them with its own baselines.
 *
 * -k N (a check, not a measurement): N control ICAs take turns, each marked
 * with its own number and a count of its trips, checked when it comes back.
 * More than the library's mapping cache holds (256) makes the kernel's
 * "kept mapping" hand-off meet evicted mappings at both ends. */
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ipcload.h"
#include "uksim/ap.h"
#include "uksim/num.h"
#include "uksim/xalloc.h"
#include "stats.h"

/* Bounds of -n and -k: what a run could want, far below what would
 * overflow their arithmetic. */
#define IPCLOAD_ITERS_MAX 100000000
#define IPCLOAD_ICAS_MAX 65536

static void fill(uk_ica *d) {
  unsigned char *p = d->base;
  for (uint64_t i = 0; i < d->size; i++)
    p[i] = (unsigned char)(i * 131 + 7);
}

static int check(const uk_ica *d) {
  const unsigned char *p = d->base;
  for (uint64_t i = 0; i < d->size; i++)
    if (p[i] != (unsigned char)(i * 131 + 7))
      return -1;
  return 0;
}

/* One round trip; ctl and data come back in res and are moved back. */
static int round_trip(uint32_t svc, uk_ica *ctl, uk_ica *data) {
  ap_result res;
  int r = ap_call(svc, 0, ctl, data->id ? data : NULL, &res);
  if (r < 0 || res.status < 0)
    return r < 0 ? r : res.status;
  *ctl = res.ctl;
  *data = res.data;
  return 0;
}

/* The -k check: n control ICAs round robin, iters calls. */
static int rotate(uint32_t svc, long n, long iters) {
  uk_ica *c = xcalloc((size_t)n, sizeof *c), none = {0};
  for (long i = 0; i < n; i++)
    if (ica_create(4096, KABI_ICA_CONTROL, &c[i]) < 0)
      return -ENOMEM;
  for (long t = 0; t < iters; t++) {
    uk_ica *x = &c[t % n];
    long *w = x->base;
    w[0] = t % n;
    w[1] = t / n;
    int r = round_trip(svc, x, &none);
    if (r < 0)
      return r;
    w = x->base;
    if (w[0] != t % n || w[1] != t / n)
      return -EIO;
  }
  for (long i = 0; i < n; i++)
    ica_release(&c[i]);
  free(c);
  return 0;
}

static int connect_abstract(const char *name) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  size_t len = strlen(name);
  if (len + 1 > sizeof a.sun_path)
    return -ENAMETOOLONG;
  memcpy(a.sun_path + 1, name, len);
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  socklen_t al = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len);
  if (connect(fd, (struct sockaddr *)&a, al) < 0) {
    int e = -errno;
    close(fd);
    return e;
  }
  return fd;
}

/* The -c mode: null round trips in blocks, as the bench asks for them. */
static int blocks(uint32_t svc, const char *name) {
  uint64_t t[IPCLOAD_BLOCK_MAX];
  struct ipcload_block b;
  uk_ica ctl, none = {0};
  int fd = connect_abstract(name), r = 0;
  if (fd < 0)
    return fd;
  if (ica_create(4096, KABI_ICA_CONTROL, &ctl) < 0) {
    close(fd);
    return -ENOMEM;
  }
  while (r == 0 && recv(fd, &b, sizeof b, 0) == (ssize_t)sizeof b &&
         b.trips > 0 && b.trips <= IPCLOAD_BLOCK_MAX) {
    for (uint32_t i = 0; r == 0 && i < b.warm + b.trips; i++) {
      uint64_t t0 = stats_now_ns();
      r = round_trip(svc, &ctl, &none);
      if (i >= b.warm)
        t[i - b.warm] = stats_now_ns() - t0;
    }
    if (r == 0 && send(fd, t, b.trips * sizeof t[0], MSG_NOSIGNAL) < 0)
      r = -errno;
  }
  close(fd);
  ica_release(&ctl);
  return r;
}

static int usage(void) {
  fprintf(stderr, "usage: ipcload -n ITERS [-s DATA_BYTES] -o FILE\n"
                  "       ipcload -n ITERS -k ICAS\n"
                  "       ipcload -c SOCKET_NAME\n");
  return 2;
}

/* The value of option -c (a letter) in [min, max] into *out; -1 after
 * saying what is wrong. */
static int opt_num(int c, const char *arg, uint64_t min, uint64_t max,
                   unsigned flags, long *out) {
  char opt[3] = {'-', (char)c, '\0'};
  uint64_t v;
  if (num_opt_u64("ipcload", opt, arg, min, max, flags, &v) < 0)
    return -1;
  *out = (long)v;
  return 0;
}

int main(int argc, char **argv) {
  long iters = 1000, warm = 100, rot = 0, size = 0;
  const char *out = NULL, *sock = NULL;
  int c, r = 0;
  while (r == 0 && (c = getopt(argc, argv, "n:s:o:k:c:")) != -1) {
    if (c == 'c')
      sock = optarg;
    else if (c == 'k')
      r = opt_num(c, optarg, 1, IPCLOAD_ICAS_MAX, 0, &rot);
    else if (c == 'n')
      r = opt_num(c, optarg, 1, IPCLOAD_ITERS_MAX, 0, &iters);
    else if (c == 's')
      r = opt_num(c, optarg, 0, UK_ICA_SIZE_MAX, NUM_SIZE, &size);
    else if (c == 'o')
      out = optarg;
    else
      r = -1; /* getopt has said which */
  }
  if (r < 0 || optind != argc || (out == NULL && rot < 1 && sock == NULL))
    return usage();
  uint32_t svc;
  if (sock) {
    int r = ap_lookup("echo", &svc);
    if (r == 0)
      r = blocks(svc, sock);
    if (r < 0)
      fprintf(stderr, "ipcload -c: %s\n", strerror(-r));
    return r < 0;
  }
  if (rot > 0) {
    int r = ap_lookup("echo", &svc);
    if (r == 0)
      r = rotate(svc, rot, iters);
    if (r < 0)
      fprintf(stderr, "ipcload -k: %s\n", strerror(-r));
    return r < 0;
  }
  uk_ica ctl, data = {0};
  uint64_t *t = xcalloc((size_t)iters, sizeof *t);
  if (ap_lookup("echo", &svc) < 0 ||
      ica_create(4096, KABI_ICA_CONTROL, &ctl) < 0 ||
      (size && ica_create(size, KABI_ICA_DATA, &data) < 0)) {
    fprintf(stderr, "ipcload: setup failed\n");
    return 1;
  }
  if (size)
    fill(&data);
  for (long i = 0; i < warm + iters; i++) {
    uint64_t t0 = stats_now_ns();
    int r = round_trip(svc, &ctl, &data);
    if (r < 0) {
      fprintf(stderr, "ipcload: call failed: %s\n", strerror(-r));
      return 1;
    }
    if (i >= warm)
      t[i - warm] = stats_now_ns() - t0;
  }
  if (size && check(&data) < 0) {
    fprintf(stderr, "ipcload: the data ICA changed on the way\n");
    return 1;
  }
  stats_sort_u64(t, (size_t)iters);
  FILE *f = fopen(out, "w");
  if (!f)
    return 1;
  fprintf(f, "%llu %llu\n", (unsigned long long)t[iters / 2],
          (unsigned long long)t[iters * 99 / 100]);
  fclose(f);
  free(t);
  ica_release(&ctl);
  ica_release(&data);
  return 0;
}
