/* uksim bench ipc: what a request through the kernel costs, against plain
 * Linux baselines measured in the same run.
 *
 *   null_rt_us      median round trip of a null request AP -> kernel ->
 *                   echo -> kernel -> AP (4 KiB control ICA, no data)
 *   pingpong_rt_us  median round trip of a 64-byte SEQPACKET ping-pong
 *                   between two processes
 *   relay_rt_us     (for reading the first two) median round trip of the
 *                   null request's path with nothing on it: a process
 *                   sends to a bare relay (epoll, recvmsg, sendmsg), which
 *                   forwards to an echo process and the answer back --
 *                   the floor of a kernel-in-the-middle round trip
 *   handoff_4k_us, handoff_64m_us
 *                   the null request plus a data ICA of that size handed to
 *                   the server and back, contents checked afterwards
 *   copy_64m_us     the same 64 MiB copied through a stream socket to a
 *                   process and back
 *
 * The first three run interleaved: rounds of one block of each (200 round
 * trips after 10 unmeasured), the order rotating from round to round, so
 * that load elsewhere on the machine, which drifts over seconds, falls on
 * all three alike instead of on whichever phase it met.  Each median is
 * over all blocks of its kind, and null_rt_ratio stays the first median
 * over the second: interleaved, both pools hold the same mixture of load,
 * and the key keeps the meaning it has always had.  A median of per-round
 * ratios would cancel even faster drift but rests on 200-trip medians;
 * it is reported instead as the spread (null_rt_ratio_p10/p50/p90: how
 * much one round's ratio, its null block's median over its ping-pong
 * block's median, varies over the run).
 *
 * Everything runs twice: pinned to one core (children inherit the
 * affinity) and unpinned.  Cross-core wake-ups dominate unpinned figures on
 * small machines, so both are reported; the top-level keys are unpinned. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipcload.h"
#include "bench.h"
#include "machine.h"
#include "stats.h"
#include "uksim/xalloc.h"
#include "uksim/num.h"

#define IPC_BLOCKS_MAX 10000 /* --blocks: rounds of three blocks */
#define COPY_BYTES (64ull << 20)

struct ipc_fig {
  double null_rt, pingpong_rt, relay_rt, handoff_4k, handoff_64m, copy_64m;
  double null_ratio[3], relay_ratio[3]; /* per-block: p10, p50, p90 */
};

/* blocks x trips (after `warm` unmeasured ones per block) of each of null
 * request, ping-pong and relay; `small`, `big` hand-offs of 4 KiB and
 * 64 MiB; `copy` copies of 64 MiB. */
struct ipc_plan {
  long blocks, trips, warm, small, big, copy;
};

/* A child that echoes every packet on fd. */
static void echo_child(int fd) {
  char buf[512];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0)
    if (write(fd, buf, (size_t)n) < 0)
      break;
  _exit(0);
}

/* `warm` unmeasured, then `trips` measured round trips of a 64-byte packet
 * written to fd and read back; the times, in us, go to t. */
static int ping_block(int fd, long warm, long trips, double *t) {
  char buf[64] = {0};
  for (long i = 0; i < warm + trips; i++) {
    uint64_t t0 = stats_now_ns();
    if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf ||
        read(fd, buf, sizeof buf) != (ssize_t)sizeof buf)
      return -1;
    if (i >= warm)
      t[i - warm] = (double)(stats_now_ns() - t0) / 1e3;
  }
  return 0;
}

/* The same, for null requests: ipcload makes them and sends the times. */
static int null_block(int fd, long warm, long trips, double *t) {
  uint64_t ns[IPCLOAD_BLOCK_MAX];
  struct ipcload_block b = {(uint32_t)warm, (uint32_t)trips};
  if (send(fd, &b, sizeof b, MSG_NOSIGNAL) != (ssize_t)sizeof b ||
      recv(fd, ns, sizeof ns, 0) != (ssize_t)(trips * (long)sizeof ns[0]))
    return -1;
  for (long i = 0; i < trips; i++)
    t[i] = (double)ns[i] / 1e3;
  return 0;
}

/* Forks an echo_child on sv[1]; sv[0] is left for this process.  The child
 * closes `other` too (another child's peer, which must see EOF when this
 * process closes it). */
static pid_t fork_echo(const int sv[2], int other) {
  pid_t pid = fork();
  if (pid == 0) {
    close(sv[0]);
    if (other >= 0)
      close(other);
    echo_child(sv[1]);
  }
  close(sv[1]);
  return pid;
}

/* Child of start_relay: forwards packets between a (the caller) and e (the
 * echo process), waiting in epoll as the kernel's loop does. */
static void relay_child(int a, int e) {
  char buf[512];
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = a};
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, a, &ev) < 0)
    _exit(1);
  ev.data.fd = e;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, e, &ev) < 0)
    _exit(1);
  for (;;) {
    if (epoll_wait(ep, &ev, 1, -1) < 0)
      continue;
    ssize_t n = recv(ev.data.fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN))
      break;
    if (n > 0 && send(ev.data.fd == a ? e : a, buf, (size_t)n,
                      MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
      break;
  }
  _exit(0);
}

/* The measured parties of the interleaved blocks.  fd[] is this process's
 * end of each path: to ipcload (which makes the null requests), to a plain
 * echo child (ping-pong), to a bare relay in front of another echo child
 * (the null request's path with nothing on it). */
enum { K_NULL, K_PING, K_RELAY, KINDS };

struct peers {
  int fd[KINDS];
  pid_t child[3]; /* ping-pong echo, relay, relay's echo */
  int proc;       /* ipcload, under the kernel */
};

/* Baselines: a SEQPACKET ping-pong with a child, and the null request's
 * path through a bare relay (this process -> relay -> echo and back). */
static int start_baselines(struct peers *p) {
  int a[2], e[2], sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0)
    return -1;
  p->child[0] = fork_echo(sv, -1);
  p->fd[K_PING] = sv[0];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, e) < 0)
    return -1;
  p->child[2] = fork_echo(e, sv[0]);
  if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, a) < 0) {
    close(e[0]);
    return -1;
  }
  p->child[1] = fork();
  if (p->child[1] == 0) {
    close(a[0]);
    close(sv[0]);
    relay_child(a[1], e[0]);
  }
  close(a[1]);
  close(e[0]);
  p->fd[K_RELAY] = a[0];
  return 0;
}

/* Spawns `ipcload -c NAME` and takes its connection on an abstract socket
 * (nothing to clean up in the file system). */
static int start_ipcload(mach_client *m, struct peers *p) {
  static int seq;
  char name[64];
  snprintf(name, sizeof name, "uksim-bench-ipc-%d-%d", (int)getpid(), seq++);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  memcpy(a.sun_path + 1, name, strlen(name));
  socklen_t al =
      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
  int l = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (l < 0 || bind(l, (struct sockaddr *)&a, al) < 0 || listen(l, 1) < 0)
    goto error;
  char *args[] = {"-c", name};
  if (mach_spawn(m, "ipcload", args, 2, "ipcload", MACH_SPAWN_WAITABLE,
                 &p->proc) < 0)
    goto error;
  struct pollfd pf = {.fd = l, .events = POLLIN};
  if (poll(&pf, 1, 120000) != 1) /* generous: valgrind starts slowly */
    goto error;
  p->fd[K_NULL] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
  close(l);
  return p->fd[K_NULL] < 0 ? -1 : 0;
error:
  if (l >= 0)
    close(l);
  return -1;
}

/* Ends every party; -1 if ipcload did not end cleanly. */
static int stop_peers(mach_client *m, struct peers *p) {
  int r = 0, st, sig;
  for (int k = 0; k < KINDS; k++)
    if (p->fd[k] >= 0)
      close(p->fd[k]); /* ipcload and the echo children end at EOF */
  if (p->proc >= 0) {
    int64_t w = mach_wait_send(m, p->proc);
    if (w < 0 || mach_wait_reply(m, (uint64_t)w, &st, &sig) < 0 || st || sig)
      r = -1;
  }
  for (int i = 0; i < 3; i++)
    if (p->child[i] > 0)
      waitpid(p->child[i], NULL, 0);
  return r;
}

/* From the times t[kind][block * trips + i]: per-round ratios to the
 * ping-pong block of the same round (their p10/p50/p90: the spread), then
 * the medians over all blocks of each kind (the figures; see the top of
 * this file for why not the median of the ratios). */
static void summarize(struct ipc_fig *f, const struct ipc_plan *pl,
                      double *t[KINDS]) {
  long nb = pl->blocks, n = pl->trips;
  double *nr = xcalloc((size_t)nb, sizeof *nr);
  double *rr = xcalloc((size_t)nb, sizeof *rr);
  for (long b = 0; b < nb; b++) {
    double pp = stats_pct(t[K_PING] + b * n, n, 0.5);
    nr[b] = stats_pct(t[K_NULL] + b * n, n, 0.5) / pp;
    rr[b] = stats_pct(t[K_RELAY] + b * n, n, 0.5) / pp;
  }
  f->null_ratio[0] = stats_pct(nr, nb, 0.1);
  f->null_ratio[1] = stats_pct(nr, nb, 0.5);
  f->null_ratio[2] = stats_pct(nr, nb, 0.9);
  f->relay_ratio[0] = stats_pct(rr, nb, 0.1);
  f->relay_ratio[1] = stats_pct(rr, nb, 0.5);
  f->relay_ratio[2] = stats_pct(rr, nb, 0.9);
  f->null_rt = stats_median(t[K_NULL], nb * n);
  f->pingpong_rt = stats_median(t[K_PING], nb * n);
  f->relay_rt = stats_median(t[K_RELAY], nb * n);
  free(nr);
  free(rr);
}

/* Null requests, ping-pong and relay in rounds of one block each, the
 * order rotating from round to round, so that all three see the same load
 * on the machine (and none always runs first after another's caches). */
static int interleave(mach_client *m, const struct ipc_plan *pl,
                      struct ipc_fig *f) {
  struct peers p = {.fd = {-1, -1, -1}, .proc = -1};
  double *t[KINDS];
  int r = start_baselines(&p) == 0 && start_ipcload(m, &p) == 0 ? 0 : -1;
  for (int k = 0; k < KINDS; k++)
    t[k] = xcalloc((size_t)(pl->blocks * pl->trips), sizeof *t[k]);
  for (long b = 0; r == 0 && b < pl->blocks; b++)
    for (int i = 0; r == 0 && i < KINDS; i++) {
      int k = (int)((b + i) % KINDS);
      double *bt = t[k] + b * pl->trips;
      r = k == K_NULL ? null_block(p.fd[k], pl->warm, pl->trips, bt)
                      : ping_block(p.fd[k], pl->warm, pl->trips, bt);
    }
  if (stop_peers(m, &p) < 0)
    r = -1;
  if (r == 0)
    summarize(f, pl, t);
  for (int k = 0; k < KINDS; k++)
    free(t[k]);
  return r;
}

static int xfer(int fd, char *buf, size_t len, bool out) {
  for (size_t done = 0; done < len;) {
    ssize_t n = out ? write(fd, buf + done, len - done)
                    : read(fd, buf + done, len - done);
    if (n <= 0)
      return -1;
    done += (size_t)n;
  }
  return 0;
}

/* Baseline 2: 64 MiB through a stream socket to a child and back; the
 * median in us, or -1 if a transfer failed (a median over the samples
 * left at zero would be a figure nobody measured). */
static double copy_us(long iters) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
    return -1;
  char *buf = xmalloc(COPY_BYTES);
  memset(buf, 0x5a, COPY_BYTES);
  pid_t pid = fork();
  if (pid == 0) {
    close(sv[0]);
    while (xfer(sv[1], buf, COPY_BYTES, false) == 0 &&
           xfer(sv[1], buf, COPY_BYTES, true) == 0)
      ;
    _exit(0);
  }
  close(sv[1]);
  double *t = xcalloc((size_t)iters, sizeof *t);
  long done = 0;
  for (; done < iters; done++) {
    uint64_t t0 = stats_now_ns();
    errno = 0;
    if (xfer(sv[0], buf, COPY_BYTES, true) < 0 ||
        xfer(sv[0], buf, COPY_BYTES, false) < 0) {
      fprintf(stderr,
              "uksim bench ipc: the copy baseline's transfer %ld of "
              "%ld failed: %s\n",
              done + 1, iters, errno ? strerror(errno) : "the child is gone");
      break;
    }
    t[done] = (double)(stats_now_ns() - t0) / 1e3;
  }
  close(sv[0]);
  waitpid(pid, NULL, 0);
  double m = done == iters ? stats_median(t, (size_t)iters) : -1;
  free(t);
  free(buf);
  return m;
}

/* Runs ipcload under the kernel; returns its median round trip in us. */
static double through_kernel(mach_client *m, long iters, uint64_t size) {
  char n[32], s[32], out[64];
  int proc, st, sig;
  snprintf(n, sizeof n, "%ld", iters);
  snprintf(s, sizeof s, "%llu", (unsigned long long)size);
  snprintf(out, sizeof out, "/tmp/uksim-ipc-%d.out", (int)getpid());
  char *args[] = {"-n", n, "-s", s, "-o", out};
  if (mach_spawn(m, "ipcload", args, 6, "ipcload", MACH_SPAWN_WAITABLE, &proc) <
      0)
    return -1;
  int64_t w = mach_wait_send(m, proc);
  if (w < 0 || mach_wait_reply(m, (uint64_t)w, &st, &sig) < 0 || st || sig)
    return -1;
  unsigned long long med = 0, p99 = 0;
  FILE *f = fopen(out, "r");
  int got = f ? fscanf(f, "%llu %llu", &med, &p99) : 0;
  if (f)
    fclose(f);
  unlink(out);
  return got == 2 ? (double)med / 1e3 : -1;
}

static int measure(struct ipc_fig *f, const struct ipc_plan *pl) {
  mach_client m;
  struct mach_opts o;
  mach_opts_default(&o);
  snprintf(o.name, sizeof o.name, "bench-%d", (int)getpid());
  if (mach_boot(&m, &o) < 0 || mach_spawn(&m, "echo", NULL, 0, "echo",
                                          MACH_SPAWN_REGISTERED, NULL) < 0) {
    fprintf(stderr, "uksim bench ipc: cannot start echo: %s\n", m.error);
    return -1;
  }
  int r = interleave(&m, pl, f);
  f->handoff_4k = through_kernel(&m, pl->small, 4096);
  f->handoff_64m = through_kernel(&m, pl->big, 64ull << 20);
  mach_halt(&m, NULL);
  mach_close(&m);
  f->copy_64m = copy_us(pl->copy);
  if (r < 0 || f->handoff_4k < 0 || f->handoff_64m < 0 || f->copy_64m < 0) {
    fprintf(stderr, "uksim bench ipc: a measurement failed\n");
    return -1;
  }
  return 0;
}

static void print_fig(FILE *o, const struct ipc_fig *f, bool json) {
  double ratio = f->null_rt / f->pingpong_rt;
  const double *nr = f->null_ratio, *rr = f->relay_ratio;
  if (json) {
    fprintf(o,
            "\"null_rt_us\": %.2f, \"pingpong_rt_us\": %.2f, "
            "\"null_rt_ratio\": %.3f, \"null_rt_ratio_p10\": %.3f, "
            "\"null_rt_ratio_p50\": %.3f, \"null_rt_ratio_p90\": %.3f, "
            "\"relay_rt_us\": %.2f, \"relay_rt_ratio\": %.3f, "
            "\"relay_rt_ratio_p10\": %.3f, \"relay_rt_ratio_p90\": %.3f, "
            "\"handoff_4k_us\": %.2f, "
            "\"handoff_64m_us\": %.2f, \"copy_64m_us\": %.1f, "
            "\"handoff_64m_over_4k\": %.3f, \"copy_over_handoff_64m\": %.1f",
            f->null_rt, f->pingpong_rt, ratio, nr[0], nr[1], nr[2], f->relay_rt,
            f->relay_rt / f->pingpong_rt, rr[0], rr[2], f->handoff_4k,
            f->handoff_64m, f->copy_64m, f->handoff_64m / f->handoff_4k,
            f->copy_64m / f->handoff_64m);
    return;
  }
  fprintf(o,
          "  null request round trip   %10.2f us\n"
          "  SEQPACKET ping-pong       %10.2f us   ratio %.2f (target <= 3)\n"
          "                                         per block %.2f..%.2f "
          "(p10..p90)\n"
          "  same path, bare relay     %10.2f us   ratio %.2f (the floor)\n"
          "                                         per block %.2f..%.2f\n"
          "  hand-off 4 KiB            %10.2f us\n"
          "  hand-off 64 MiB           %10.2f us   %.2f x 4 KiB (target <= "
          "2)\n"
          "  copy 64 MiB (socket)      %10.1f us   %.0f x hand-off (target >= "
          "50)\n",
          f->null_rt, f->pingpong_rt, ratio, nr[0], nr[2], f->relay_rt,
          f->relay_rt / f->pingpong_rt, rr[0], rr[2], f->handoff_4k,
          f->handoff_64m, f->handoff_64m / f->handoff_4k, f->copy_64m,
          f->copy_64m / f->handoff_64m);
}

static bool targets_met(const struct ipc_fig *f) {
  return f->null_rt / f->pingpong_rt <= 3 &&
         f->handoff_64m <= 2 * f->handoff_4k &&
         f->copy_64m >= 50 * f->handoff_64m;
}

static void usage(FILE *o) {
  fprintf(
      o,
      "usage: uksim bench ipc [--json] [--quick] [--blocks N] [--poll-us N]"
      "\n\n"
      "Measure IPC through the kernel against plain Linux baselines in one "
      "run\n(a SEQPACKET ping-pong; the same path through a bare relay), "
      "pinned to one\ncore and unpinned.\n\n"
      "Null requests, ping-pong and relay run interleaved: N rounds (default "
      "50)\nof one block of 200 round trips each (after 10 unmeasured), the "
      "order\nrotating, so that all three see the same load.  Each *_rt_us "
      "is the\nmedian over all its blocks and null_rt_ratio = null_rt_us / "
      "pingpong_rt_us\n(interleaved, both pools hold the same mixture of "
      "load; a median of\nper-round ratios would rest on 200-trip medians).  "
      "null_rt_ratio_p10/p50/p90\nare percentiles over the rounds of each "
      "round's own ratio (block median\nover ping-pong block median): how "
      "stable the ratio is.\n\n"
      "--quick: 6 rounds of 100, fewer hand-offs and copies (for tests).\n"
      "--poll-us N: the kernel's cross-cpu polling (uksim run --help; "
      "default 100,\n0 off), reported as poll_us.\n"
      "Exit status 0 when the run completed; the targets are reported, not "
      "enforced.\n");
}

int bench_ipc_main(int argc, char **argv) {
  static const struct option opts[] = {
      {"json", no_argument, NULL, 'j'},
      {"quick", no_argument, NULL, 'q'},
      {"blocks", required_argument, NULL, 'b'},
      {"poll-us", required_argument, NULL, 'P'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  struct ipc_plan pl = {.blocks = 50,
                        .trips = 200,
                        .warm = 10,
                        .small = 5000,
                        .big = 300,
                        .copy = 10};
  long blocks = 0;
  uint64_t v;
  bool json = false;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (c == 'j')
      json = true;
    else if (c == 'q')
      pl = (struct ipc_plan){.blocks = 6,
                             .trips = 100,
                             .warm = 10,
                             .small = 500,
                             .big = 30,
                             .copy = 3};
    else if (c == 'b') {
      if (num_opt_u64("uksim bench ipc", "--blocks", optarg, 1, IPC_BLOCKS_MAX,
                      0, &v) < 0)
        return 2;
      blocks = (long)v;
    } else if (c == 'P' && mach_poll_us_opt("uksim bench ipc", optarg) == 0)
      ;
    else {
      usage(c == 'h' ? stdout : stderr);
      return c == 'h' ? 0 : 2;
    }
  }
  if (blocks)
    pl.blocks = blocks;
  cpu_set_t all;
  struct ipc_fig pinned, free_run;
  stats_pin_first(&all);
  int r = measure(&pinned, &pl);
  stats_unpin(&all);
  if (r == 0)
    r = measure(&free_run, &pl);
  if (r < 0)
    return 1;
  if (json) {
    printf("{");
    print_fig(stdout, &free_run, true);
    printf(", \"targets_met\": %s, \"cpus\": %d, \"blocks\": %ld, "
           "\"block_trips\": %ld, \"poll_us\": %u, \"pinned\": {",
           targets_met(&free_run) ? "true" : "false", CPU_COUNT(&all),
           pl.blocks, pl.trips, mach_poll_us());
    print_fig(stdout, &pinned, true);
    printf(", \"targets_met\": %s}}\n",
           targets_met(&pinned) ? "true" : "false");
  } else {
    printf("unpinned (%d cpus):\n", CPU_COUNT(&all));
    print_fig(stdout, &free_run, false);
    printf("pinned to one cpu:\n");
    print_fig(stdout, &pinned, false);
  }
  return 0;
}
