/*
 * bench.c: `uksim bench 9p [--json]`, our server against diod.
 *
 * Both servers serve the same files on loopback TCP, each in a process of
 * its own: a 1 KiB file and a large file (256 MiB by default) in one
 * temporary directory on tmpfs (/dev/shm when there is one), ours through
 * net9p's hostfs (`uksim 9p serve --dir`'s server, forked), diod as it
 * is: the same work on the same files.  Our in-memory tree (`uksim 9p
 * serve` without --dir) is measured beside them with the same files,
 * under keys named memfs_.  One client (ours, blocking, same msize
 * offered, one connection to each server) measures all, so the comparison
 * is of the servers:
 *   small_ops_per_s  walk + open + read 1 KiB + clunk, per second
 *   large_read_mb_s  one sequential read of the large file (MB = 10^6 B)
 * The msize offered defaults to 65536, the largest diod accepts, so both
 * servers move the same message sizes; --msize 1048576 shows ours with
 * larger messages.
 *
 * The servers are measured interleaved: each round runs a block of small
 * operations on one server then the other, then one read of the large
 * file from each, the order alternating from round to round, so that load
 * elsewhere on the machine (which drifts over seconds) falls on both
 * alike.  Each figure is the median over its blocks (a small block's rate
 * is its operations over its time, after a few unmeasured ones); the
 * per-round ratio ours/diod of the same round is reported as p10/p50/p90,
 * which shows how stable the comparison is.
 *
 * Both kinds are synchronous round trips (a small operation is four of
 * ~100 bytes, a large read thousands of 64 KiB), so where Linux places the
 * client and the servers decides much of each figure: on the 2-vCPU VM
 * where this was measured an idle vCPU halts, and a task woken on it runs
 * 30-37 us later (7-8 us on the waker's cpu).  Everything therefore runs
 * three times: pinned (the client and both servers on one core; the
 * servers inherit the affinity from the bench process), cross_core (the
 * client on one core, both servers on another: every message crosses) and
 * unpinned; the top-level keys are unpinned, as in `uksim bench ipc`.
 * Unpinned, Linux sends a woken task back to its previous cpu when that is
 * idle, so a single-threaded server and its client settle on different
 * cpus (sched traces: 96-99% of our 64 KiB messages woke both sides
 * remotely), while a quarter to a third of diod's messages, which pass
 * from a reader thread to a worker, ran with reader, worker and client
 * all on one cpu (every wake-up local).  That made diod faster
 * unpinned (ours/diod 0.85-0.93 for the large read) until our server
 * stopped sleeping between the answers and requests of a client on another
 * cpu (stream.c: a large answer is split so the client's wake-up overlaps
 * the copy, and the loop polls up to 100 us for the next request).
 * Polling spends cpu, so each phase also reports the servers' cpu time
 * (all threads, the process cpu clock) per small operation
 * (small_cpu_us_per_op) and per GiB of large read (large_cpu_s_per_gib),
 * medians over blocks, with diod_ twins.
 * diod's figures are null when diod is not installed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "p9_impl.h"
#include "stats.h"
#include "uksim/num.h"
#include "uksim/xalloc.h"

#define DIOD "/usr/sbin/diod"
#define SMALL_WARM 10
extern char **environ;

/* OURS is hostfs, the server compared with diod; MEMFS our in-memory
 * tree beside them. */
enum { OURS, DIOD_, MEMFS, SIDES };

/* What interleave measures per block: rates, and the server's cpu time. */
enum { SMALL, LARGE, SMALL_CPU, LARGE_CPU, KINDS };

/* One phase (pinned or unpinned): medians over blocks, per-round ratios
 * ours/diod as p10, p50, p90; the servers' cpu time (all their threads)
 * per small operation (us) and per GiB of large read (s). */
struct fig {
  double small[SIDES], large[SIDES];
  double small_cpu[SIDES], large_cpu[SIDES]; /* < 0: not known */
  double small_ratio[3], large_ratio[3];
  uint32_t msize[SIDES];
  int has_diod;
  int has_memfs;
};

struct plan {
  size_t large;   /* bytes of the large file */
  double block_s; /* seconds of one small block */
  long rounds;
  uint32_t msize;
  int poll_us; /* our server's p9_srv_config.poll_us (0: its default) */
};

/* A server under test and our client's connection to it. */
struct side {
  pid_t pid;
  char addr[64];
  const char *aname;
  p9_client *c;
  p9_cfid *root;
};

/* --- the measurements ------------------------------------------------- */

/* Seconds of cpu used so far by all threads of process pid, or -1 when
 * the kernel does not say.  The process cpu clock includes the slice a
 * thread is running now (schedstat would lag until it is descheduled,
 * which a polling server may not be for a whole short read). */
static double cpu_s(pid_t pid) {
  clockid_t cid;
  struct timespec ts;
  if (clock_getcpuclockid(pid, &cid) != 0 || clock_gettime(cid, &ts) != 0)
    return -1;
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int small_op(p9_cfid *root) {
  char buf[1024];
  int err;
  p9_cfid *f = p9_walk(root, "small.bin", &err);
  if (!f)
    return err;
  if ((err = p9_open(f, P9_OREAD)) < 0 ||
      p9_pread(f, buf, sizeof(buf), 0) != (long)sizeof(buf)) {
    p9_clunk(f);
    return err < 0 ? err : -EIO;
  }
  return p9_clunk(f);
}

/* One block: SMALL_WARM unmeasured operations, then as many as fit in
 * secs; the rate goes to *rate, server pid's cpu time per operation (us)
 * to *cpu (-1 if unknown). */
static int small_block(p9_cfid *root, double secs, pid_t pid, double *rate,
                       double *cpu) {
  long n = 0;
  double t0, t, c0;
  int err;
  for (int i = 0; i < SMALL_WARM; i++)
    if ((err = small_op(root)) < 0)
      return err;
  c0 = cpu_s(pid);
  t0 = stats_now_s();
  do {
    if ((err = small_op(root)) < 0)
      return err;
    n++;
  } while ((t = stats_now_s() - t0) < secs);
  *rate = (double)n / t;
  *cpu = c0 < 0 ? -1 : (cpu_s(pid) - c0) * 1e6 / (double)n;
  return 0;
}

/* The client's buffer for large reads: one for the whole run, touched
 * before the first read, so no read pays the client's page faults. */
#define CHUNK (8u << 20)
static char *chunk_buf(void) {
  static char *buf;
  if (!buf) {
    buf = xmalloc(CHUNK);
    memset(buf, 0, CHUNK);
  }
  return buf;
}

/* One read of the large file: MB/s to *mbs, server pid's cpu time per
 * GiB (s) to *cpu (-1 if unknown). */
static int large_read(p9_cfid *root, size_t size, pid_t pid, double *mbs,
                      double *cpu) {
  size_t chunk = CHUNK, done = 0;
  char *buf = chunk_buf();
  int err;
  p9_cfid *f = p9_walk(root, "large.bin", &err);
  double c0 = cpu_s(pid), t0 = stats_now_s();
  if (!f || (err = p9_open(f, P9_OREAD)) < 0)
    goto out;
  while (done < size) {
    long k = p9_pread(f, buf, chunk, done);
    if (k <= 0) {
      err = k < 0 ? (int)k : -EIO;
      goto out;
    }
    done += (size_t)k;
  }
  *mbs = (double)size / 1e6 / (stats_now_s() - t0);
  *cpu = c0 < 0 ? -1 : (cpu_s(pid) - c0) * (double)(1u << 30) / (double)size;
  err = 0;
out:
  if (f)
    p9_clunk(f);
  return err;
}

static int side_connect(struct side *s, uint32_t msize, uint32_t *got) {
  int err;
  if (!(s->c = p9_client_dial(s->addr, msize, "9P2000.L", &err)))
    return err;
  *got = p9_client_msize(s->c);
  if (!(s->root = p9_attach(s->c, NULL, s->aname, NULL, &err)))
    return err;
  return 0;
}

static void side_disconnect(struct side *s) {
  if (s->root)
    p9_clunk(s->root);
  if (s->c)
    p9_client_close(s->c);
  s->root = NULL;
  s->c = NULL;
}

/* Rounds of: a small block of each side, then a large read of each, the
 * side going first alternating.  t[kind][side][round] gets the figures
 * (the _CPU kinds with the rates). */
static int interleave(struct side *sd, const int *act, int nact,
                      const struct plan *pl, double *t[KINDS][SIDES]) {
  int err = 0;
  for (long b = 0; !err && b < pl->rounds; b++)
    for (int kind = SMALL; !err && kind <= LARGE; kind++)
      for (int i = 0; !err && i < nact; i++) {
        int k = act[(b + i) % nact];
        err = kind == SMALL ? small_block(sd[k].root, pl->block_s, sd[k].pid,
                                          &t[SMALL][k][b], &t[SMALL_CPU][k][b])
                            : large_read(sd[k].root, pl->large, sd[k].pid,
                                         &t[LARGE][k][b], &t[LARGE_CPU][k][b]);
      }
  return err;
}

/* Medians over blocks; per-round ratios ours/diod. */
static void summarize(struct fig *f, const struct plan *pl,
                      double *t[KINDS][SIDES]) {
  long n = pl->rounds;
  double *ratio = xcalloc((size_t)n, sizeof *ratio);
  for (int kind = SMALL; kind <= LARGE; kind++) {
    double *out = kind == SMALL ? f->small_ratio : f->large_ratio;
    if (f->has_diod) {
      for (long b = 0; b < n; b++)
        ratio[b] = t[kind][OURS][b] / t[kind][DIOD_][b];
      out[0] = stats_pct(ratio, n, 0.1);
      out[1] = stats_pct(ratio, n, 0.5);
      out[2] = stats_pct(ratio, n, 0.9);
    }
    for (int s = 0; s < SIDES; s++) {
      if ((s == DIOD_ && !f->has_diod) || (s == MEMFS && !f->has_memfs))
        continue;
      (kind == SMALL ? f->small : f->large)[s] = stats_pct(t[kind][s], n, 0.5);
      (kind == SMALL ? f->small_cpu : f->large_cpu)[s] =
          stats_pct(t[kind + SMALL_CPU][s], n, 0.5);
    }
  }
  free(ratio);
}

/* --- the files -------------------------------------------------------- */

static void fill(uint8_t *p, size_t n) {
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i + 8 <= n; i += 8) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    memcpy(p + i, &x, 8);
  }
}

static int write_file(const char *dir, const char *name, const uint8_t *p,
                      size_t n) {
  char path[512];
  FILE *f;
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  if (!(f = fopen(path, "w")))
    return -errno;
  if (fwrite(p, 1, n, f) != n) {
    fclose(f);
    return -EIO;
  }
  return fclose(f) == 0 ? 0 : -EIO;
}

/* --- our server in a child process ------------------------------------ */

/* Serves dir through hostfs (which OURS), or the same files from memory
 * (MEMFS). */
static void ours_child(int wfd, int which, const char *dir, const uint8_t *data,
                       size_t nlarge, const struct plan *pl) {
  p9_srv_config cfg = {.msize = pl->msize, .poll_us = pl->poll_us};
  uv_loop_t loop;
  p9_memfs *mfs = NULL;
  void *fs;
  p9_srv *srv = NULL;
  p9_listener *l = NULL;
  int err;
  const char *addr;
  uv_loop_init(&loop);
  if (which == MEMFS) {
    fs = mfs = p9_memfs_new();
    p9_memfs_put(mfs, "small.bin", data, 1024);
    p9_memfs_put(mfs, "large.bin", data, nlarge);
  } else {
    fs = p9_hostfs_new(dir, &err);
  }
  if (fs && (srv = p9_srv_new(mfs ? p9_memfs_ops() : p9_hostfs_ops(), fs, &cfg,
                              &err)))
    l = p9_listen(srv, &loop, "tcp!127.0.0.1!0", &err);
  addr = l ? p9_listener_addr(l) : "";
  if (write(wfd, addr, strlen(addr) + 1) < 0 || !l)
    _exit(1);
  close(wfd);
  uv_run(&loop, UV_RUN_DEFAULT); /* until SIGTERM */
  _exit(0);
}

/* Forks our server; its address goes to s->addr.  0 or -errno. */
static int ours_start(struct side *s, int which, const char *dir,
                      const uint8_t *data, const struct plan *pl) {
  int p[2];
  ssize_t n;
  if (pipe(p) < 0)
    return -errno;
  fflush(NULL);
  if ((s->pid = fork()) < 0)
    return -errno;
  if (s->pid == 0) {
    close(p[0]);
    ours_child(p[1], which, dir, data, pl->large, pl);
  }
  close(p[1]);
  n = read(p[0], s->addr, sizeof(s->addr) - 1);
  close(p[0]);
  s->addr[n > 0 ? n : 0] = 0;
  s->aname = "";
  return n > 1 ? 0 : -EIO;
}

static void server_stop(struct side *s) {
  if (s->pid > 0) {
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
  }
  s->pid = 0;
}

/* --- diod ------------------------------------------------------------- */

static int free_port(void) {
  struct sockaddr_in sin = {.sin_family = AF_INET};
  socklen_t len = sizeof(sin);
  int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
      getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
    port = ntohs(sin.sin_port);
  if (fd >= 0)
    close(fd);
  return port;
}

/* Starts diod on dir; waits until it answers.  Returns its pid or -1. */
static pid_t diod_start(const char *dir, char *addr, size_t cap) {
  char listen[64], uid[16];
  char *argv[16] = {DIOD, "-f",        "-n", "-l",       listen,
                    "-e", (char *)dir, "-L", "/dev/null"};
  int argc = 9, port = free_port(), err;
  pid_t pid;
  if (access(DIOD, X_OK) != 0 || port < 0)
    return -1;
  snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
  snprintf(addr, cap, "tcp!127.0.0.1!%d", port);
  if (geteuid() != 0) {
    snprintf(uid, sizeof(uid), "%u", (unsigned)geteuid());
    argv[argc++] = "-u";
    argv[argc++] = uid;
  }
  if (posix_spawn(&pid, DIOD, NULL, NULL, argv, environ) != 0)
    return -1;
  for (int i = 0; i < 200; i++) {
    p9_client *c = p9_client_dial(addr, 8192, "9P2000.L", &err);
    if (c) {
      p9_client_close(c);
      return pid;
    }
    usleep(25000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  return -1;
}

/* --- one phase -------------------------------------------------------- */

/* Starts both servers (they inherit this process's affinity), connects,
 * runs the rounds, stops them.  0, or -errno when our server failed. */
static int phase(const uint8_t *data, const char *dir, const struct plan *pl,
                 const cpu_set_t *srv, const cpu_set_t *cli, struct fig *f) {
  struct side sd[SIDES] = {{0}};
  double *t[KINDS][SIDES];
  int err, act[SIDES] = {OURS}, nact = 1;
  memset(f, 0, sizeof(*f));
  for (int k = 0; k < KINDS; k++)
    for (int s = 0; s < SIDES; s++)
      t[k][s] = xcalloc((size_t)pl->rounds, sizeof(double));
  sched_setaffinity(0, sizeof(*srv), srv); /* both servers inherit it */
  err = ours_start(&sd[OURS], OURS, dir, data, pl);
  if (!err)
    err = ours_start(&sd[MEMFS], MEMFS, dir, data, pl);
  if (!err)
    sd[DIOD_].pid = diod_start(dir, sd[DIOD_].addr, sizeof(sd[0].addr));
  sched_setaffinity(0, sizeof(*cli), cli);
  if (!err)
    err = side_connect(&sd[OURS], pl->msize, &f->msize[OURS]);
  if (!err && sd[DIOD_].pid > 0) {
    sd[DIOD_].aname = dir;
    if (side_connect(&sd[DIOD_], pl->msize, &f->msize[DIOD_]) == 0)
      act[nact++] = DIOD_, f->has_diod = 1;
    else
      fprintf(stderr, "uksim bench 9p: connecting to diod failed\n");
  }
  if (!err &&
      (err = side_connect(&sd[MEMFS], pl->msize, &f->msize[MEMFS])) == 0)
    act[nact++] = MEMFS, f->has_memfs = 1;
  if (!err)
    err = interleave(sd, act, nact, pl, t);
  if (!err)
    summarize(f, pl, t);
  for (int s = 0; s < SIDES; s++) {
    side_disconnect(&sd[s]);
    server_stop(&sd[s]);
    for (int k = 0; k < KINDS; k++)
      free(t[k][s]);
  }
  return err;
}

/* --- output ----------------------------------------------------------- */

static void print_ratio(const char *key, const double *r, int ok) {
  static const char *p[3] = {"p10", "p50", "p90"};
  for (int i = 0; i < 3; i++)
    ok ? printf(", \"%s_ratio_%s\": %.3f", key, p[i], r[i])
       : printf(", \"%s_ratio_%s\": null", key, p[i]);
}

/* ", "key": v with fmt, or null when v < 0 or !ok. */
static void print_num(const char *key, const char *fmt, double v, int ok) {
  printf(", \"%s\": ", key);
  if (ok && v >= 0)
    printf(fmt, v);
  else
    printf("null");
}

static void print_fig_json(const struct fig *f) {
  printf("\"small_ops_per_s\": %.0f, \"large_read_mb_s\": %.1f, ",
         f->small[OURS], f->large[OURS]);
  if (f->has_diod)
    printf("\"diod_small_ops_per_s\": %.0f, \"diod_large_read_mb_s\": %.1f, "
           "\"diod_msize\": %u",
           f->small[DIOD_], f->large[DIOD_], f->msize[DIOD_]);
  else
    printf("\"diod_small_ops_per_s\": null, \"diod_large_read_mb_s\": null, "
           "\"diod_msize\": null");
  print_ratio("small", f->small_ratio, f->has_diod);
  print_ratio("large", f->large_ratio, f->has_diod);
  print_num("small_cpu_us_per_op", "%.1f", f->small_cpu[OURS], 1);
  print_num("large_cpu_s_per_gib", "%.2f", f->large_cpu[OURS], 1);
  print_num("diod_small_cpu_us_per_op", "%.1f", f->small_cpu[DIOD_],
            f->has_diod);
  print_num("diod_large_cpu_s_per_gib", "%.2f", f->large_cpu[DIOD_],
            f->has_diod);
  print_num("memfs_small_ops_per_s", "%.0f", f->small[MEMFS], f->has_memfs);
  print_num("memfs_large_read_mb_s", "%.1f", f->large[MEMFS], f->has_memfs);
  print_num("memfs_small_cpu_us_per_op", "%.1f", f->small_cpu[MEMFS],
            f->has_memfs);
  print_num("memfs_large_cpu_s_per_gib", "%.2f", f->large_cpu[MEMFS],
            f->has_memfs);
}

static void print_json(const struct fig *free_run, const struct fig *pinned,
                       const struct fig *cross, const struct plan *pl, int cpus,
                       double load) {
  printf("{\"server\": \"hostfs\", ");
  print_fig_json(free_run);
  printf(", \"msize_offered\": %u, \"msize\": %u, \"small_file_bytes\": 1024, "
         "\"large_file_mib\": %zu, \"rounds\": %ld, \"small_block_s\": %.3f, "
         "\"poll_us\": %d, \"cpus\": %d, \"loadavg_1m\": %.2f, "
         "\"pinned\": {",
         pl->msize, free_run->msize[OURS], pl->large >> 20, pl->rounds,
         pl->block_s,
         pl->poll_us < 0 ? 0
         : pl->poll_us   ? pl->poll_us
                         : 100,
         cpus, load);
  print_fig_json(pinned);
  if (cross->has_diod >= 0) {
    printf("}, \"cross_core\": {");
    print_fig_json(cross);
    printf("}}\n");
  } else {
    printf("}, \"cross_core\": null}\n");
  }
}

/* One row of server cpu figures ("-" where unknown). */
static void print_cpu_row(const char *label, const double *v,
                          const struct fig *f) {
  printf("%-28s", label);
  for (int s = 0; s < SIDES; s++)
    (s == OURS || (s == DIOD_ && f->has_diod) ||
     (s == MEMFS && f->has_memfs)) &&
            v[s] >= 0
        ? printf(" %12.2f", v[s])
        : printf(" %12s", "-");
  printf("\n");
}

static void print_text(const struct fig *f, const struct plan *pl,
                       const char *title) {
  printf("%s: 9P over loopback TCP, one client, msize %u, %ld rounds\n", title,
         f->msize[OURS], pl->rounds);
  printf("%-28s %12s %12s %12s %20s\n", "", "hostfs", "diod", "memfs",
         "hostfs/diod p10..p90");
  printf("%-28s %12.0f ", "walk+open+read+clunk /s", f->small[OURS]);
  f->has_diod ? printf("%12.0f ", f->small[DIOD_]) : printf("%12s ", "-");
  printf("%12.0f ", f->small[MEMFS]);
  f->has_diod ? printf("%6.2f %.2f..%.2f\n", f->small_ratio[1],
                       f->small_ratio[0], f->small_ratio[2])
              : printf("\n");
  printf("read %4zu MiB, MB/s %8s %12.1f ", pl->large >> 20, "",
         f->large[OURS]);
  f->has_diod ? printf("%12.1f ", f->large[DIOD_]) : printf("%12s ", "-");
  printf("%12.1f ", f->large[MEMFS]);
  f->has_diod ? printf("%6.2f %.2f..%.2f\n", f->large_ratio[1],
                       f->large_ratio[0], f->large_ratio[2])
              : printf("\n");
  print_cpu_row("server cpu us per small op", f->small_cpu, f);
  print_cpu_row("server cpu s per GiB read", f->large_cpu, f);
  if (!f->has_diod)
    printf("(diod not available: Debian package diod)\n");
}

static const char bench_usage[] =
    "usage: uksim bench 9p [--json] [--large-mib N] [--seconds S] "
    "[--msize N] [--rounds N]\n"
    "                      [--poll-us N]\n"
    "Compares our 9P server (hostfs) with diod serving the same tmpfs\n"
    "directory on loopback TCP, our in-memory tree (memfs_*) beside them,\n"
    "interleaved: N "
    "rounds\n(default 10) of a block of small operations on each server "
    "(S/N seconds\neach, S default 1) and one read of the large file from "
    "each, the order\nalternating.  Figures are medians over blocks; "
    "*_ratio_p10/p50/p90 are\npercentiles of the per-round ratio ours/diod.  "
    "Runs pinned to one cpu\n(client and both servers), cross_core (client "
    "on one cpu, both servers\non another) and unpinned; the top-level keys "
    "are unpinned.  *_cpu_* are the\nservers' cpu time per small operation "
    "(us) and per GiB read (s).\n--poll-us N is our server's polling "
    "for a client on another cpu (as\n`uksim 9p serve --poll-us`; default "
    "100, 0 off).\nLimits: --large-mib >= 1, --seconds > 0, --rounds "
    "1..10000, --msize 4096..8388608,\n--poll-us 0..1000000.\n";

static int parse(int argc, char **argv, int *json, struct plan *pl,
                 double *secs) {
  static const struct option lo[] = {{"json", no_argument, 0, 'j'},
                                     {"large-mib", required_argument, 0, 'l'},
                                     {"seconds", required_argument, 0, 's'},
                                     {"msize", required_argument, 0, 'm'},
                                     {"rounds", required_argument, 0, 'r'},
                                     {"poll-us", required_argument, 0, 'p'},
                                     {"help", no_argument, 0, 'h'},
                                     {0, 0, 0, 0}};
  int c;
  optind = 1;
  opterr = 0;
  long us = 100;
  int li = -1;
  while ((c = getopt_long(argc, argv, "jl:s:m:r:p:h", lo, &li)) != -1) {
    double v = 0;
    if (c == 'h')
      return 1;
    if (c == 'j') {
      *json = 1;
      continue;
    }
    if (c == '?') {
      fprintf(stderr, "uksim bench 9p: unknown option %s\n", argv[optind - 1]);
      return -1;
    }
    char opt[32];
    snprintf(opt, sizeof opt, "--%s", li >= 0 ? lo[li].name : "?");
    if (num_opt_double("uksim bench 9p", opt, optarg, 0, 1e12, &v) < 0)
      return -1;
    li = -1;
    if (c == 'l')
      pl->large = (size_t)v << 20;
    else if (c == 's')
      *secs = v;
    else if (c == 'm')
      pl->msize = (uint32_t)v;
    else if (c == 'r')
      pl->rounds = (long)v;
    else if (c == 'p')
      us = (long)v;
  }
  if (optind != argc || pl->large < (1u << 20) || *secs <= 0 ||
      pl->rounds < 1 || pl->rounds > 10000 || pl->msize < P9_MINMSIZE ||
      pl->msize > P9_MAXMSIZE || us < 0 || us > 1000000) {
    fprintf(stderr, "uksim bench 9p: a value out of range (limits below)\n");
    return -1;
  }
  pl->poll_us = us ? (int)us : -1;
  pl->block_s = *secs / (double)pl->rounds;
  return 0;
}

int p9_bench_main(int argc, char **argv) {
  int json = 0, st, err;
  double secs = 1.0, load[1] = {0};
  /* msize 65536 is diod's largest: both run the same msize */
  struct plan pl = {.large = 256u << 20, .rounds = 10, .msize = 65536};
  char dir[64], cmd[600];
  struct fig pinned, cross, free_run;
  cpu_set_t all, cpu[2];
  uint8_t *data;
  if ((st = parse(argc, argv, &json, &pl, &secs)) != 0)
    return st > 0 ? (fputs(bench_usage, stdout), 0)
                  : (fputs(bench_usage, stderr), 2);
  signal(SIGPIPE, SIG_IGN);
  data = xmalloc(pl.large);
  fill(data, pl.large);
  /* tmpfs, so that the host file system costs what memory does */
  snprintf(dir, sizeof(dir), "%s/uksim-bench9p.XXXXXX",
           access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
  if (!mkdtemp(dir) || write_file(dir, "small.bin", data, 1024) < 0 ||
      write_file(dir, "large.bin", data, pl.large) < 0) {
    fprintf(stderr, "uksim bench 9p: cannot write files in %s\n", dir);
    free(data);
    return 1;
  }
  sched_getaffinity(0, sizeof(all), &all);
  CPU_ZERO(&cpu[0]);
  CPU_ZERO(&cpu[1]);
  for (int i = 0, n = 0; i < CPU_SETSIZE && n < 2; i++)
    if (CPU_ISSET(i, &all))
      CPU_SET(i, &cpu[n++]);
  cross.has_diod = -1; /* not measured: one cpu */
  err = phase(data, dir, &pl, &cpu[0], &cpu[0], &pinned);
  if (!err && CPU_COUNT(&all) > 1)
    err = phase(data, dir, &pl, &cpu[1], &cpu[0], &cross);
  if (!err)
    err = phase(data, dir, &pl, &all, &all, &free_run);
  free(data);
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "uksim bench 9p: could not remove %s\n", dir);
  if (err) {
    fprintf(stderr, "uksim bench 9p: measuring failed: %s\n", p9_strerror(err));
    return 1;
  }
  getloadavg(load, 1);
  if (json) {
    print_json(&free_run, &pinned, &cross, &pl, CPU_COUNT(&all), load[0]);
  } else {
    print_text(&free_run, &pl, "unpinned");
    print_text(&pinned, &pl, "pinned to one cpu");
    if (cross.has_diod >= 0)
      print_text(&cross, &pl, "client on one cpu, servers on another");
  }
  return 0;
}
