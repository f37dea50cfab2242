/*
 * bench.c: `uksim bench 9p [--json]`, our server against diod.
 *
 * Both servers serve the same files on loopback TCP: a 1 KiB file and a
 * large file (256 MiB by default), ours from the in-memory tree, diod from
 * a temporary directory.  One client (ours, blocking, same msize offered)
 * measures both, so the comparison is of the servers:
 *   small_ops_per_s  walk + open + read 1 KiB + clunk, repeated for a while
 *   large_read_mb_s  one sequential read of the large file (MB = 10^6 B)
 * The msize offered defaults to 65536, the largest diod accepts, so both
 * servers move the same message sizes; --msize 1048576 shows ours with
 * larger messages.
 * diod's figures are null when diod is not installed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "p9_impl.h"

#define DIOD "/usr/sbin/diod"
extern char **environ;

struct result {
  double small_ops, large_mb;
  uint32_t msize;
  int ok;
};

struct ours {
  uv_loop_t loop;
  uv_async_t stop;
  pthread_t th;
  p9_memfs *fs;
  p9_srv *srv;
  p9_listener *l;
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* --- the measurements ------------------------------------------------- */

static int small_ops(p9_cfid *root, double secs, double *rate) {
  char buf[1024];
  long n = 0;
  double t0 = now_s(), t;
  do {
    int err;
    p9_cfid *f = p9_walk(root, "small.bin", &err);
    if (!f)
      return err;
    if ((err = p9_open(f, P9_OREAD)) < 0 ||
        p9_pread(f, buf, sizeof(buf), 0) != (long)sizeof(buf)) {
      p9_clunk(f);
      return err < 0 ? err : -EIO;
    }
    if ((err = p9_clunk(f)) < 0)
      return err;
    n++;
  } while ((t = now_s() - t0) < secs);
  *rate = (double)n / t;
  return 0;
}

static int large_read(p9_cfid *root, size_t size, double *mbs) {
  size_t chunk = 8u << 20, done = 0;
  char *buf = p9__xmalloc(chunk);
  int err;
  p9_cfid *f = p9_walk(root, "large.bin", &err);
  double t0 = now_s();
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
  *mbs = (double)size / 1e6 / (now_s() - t0);
  err = 0;
out:
  if (f)
    p9_clunk(f);
  free(buf);
  return err;
}

static int measure(const char *addr, const char *aname, size_t large,
                   double secs, uint32_t msize, struct result *r) {
  int err;
  p9_client *c = p9_client_dial(addr, msize, "9P2000.L", &err);
  p9_cfid *root;
  if (!c)
    return err;
  r->msize = p9_client_msize(c);
  if (!(root = p9_attach(c, NULL, aname, NULL, &err))) {
    p9_client_close(c);
    return err;
  }
  if (!(err = small_ops(root, secs, &r->small_ops)))
    err = large_read(root, large, &r->large_mb);
  r->ok = !err;
  p9_clunk(root);
  p9_client_close(c);
  return err;
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

/* --- our server on a thread ------------------------------------------- */

static void ours_stop_cb(uv_async_t *a) {
  struct ours *o = a->data;
  p9_listener_close(o->l);
  p9_srv_close_conns(o->srv);
  uv_close((uv_handle_t *)a, NULL);
}

static void *ours_run(void *arg) {
  struct ours *o = arg;
  uv_run(&o->loop, UV_RUN_DEFAULT);
  return NULL;
}

static int ours_start(struct ours *o, const uint8_t *small,
                      const uint8_t *large, size_t nlarge, uint32_t msize) {
  p9_srv_config cfg = {.msize = msize};
  int err;
  uv_loop_init(&o->loop);
  o->fs = p9_memfs_new();
  p9_memfs_put(o->fs, "small.bin", small, 1024);
  p9_memfs_put(o->fs, "large.bin", large, nlarge);
  if (!(o->srv = p9_srv_new(p9_memfs_ops(), o->fs, &cfg, &err)) ||
      !(o->l = p9_listen(o->srv, &o->loop, "tcp!127.0.0.1!0", &err)))
    return err;
  uv_async_init(&o->loop, &o->stop, ours_stop_cb);
  o->stop.data = o;
  return pthread_create(&o->th, NULL, ours_run, o) ? -EAGAIN : 0;
}

static void ours_stop(struct ours *o) {
  uv_async_send(&o->stop);
  pthread_join(o->th, NULL);
  uv_loop_close(&o->loop);
  p9_srv_free(o->srv);
  p9_memfs_free(o->fs);
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

/* --- output ----------------------------------------------------------- */

static void print_json(const struct result *o, const struct result *d,
                       size_t large, uint32_t msize) {
  printf("{\"small_ops_per_s\": %.0f, \"large_read_mb_s\": %.1f, ",
         o->small_ops, o->large_mb);
  if (d->ok)
    printf("\"diod_small_ops_per_s\": %.0f, \"diod_large_read_mb_s\": %.1f, "
           "\"diod_msize\": %u, ",
           d->small_ops, d->large_mb, d->msize);
  else
    printf("\"diod_small_ops_per_s\": null, \"diod_large_read_mb_s\": null, "
           "\"diod_msize\": null, ");
  printf("\"msize_offered\": %u, \"msize\": %u, \"small_file_bytes\": 1024, "
         "\"large_file_mib\": %zu}\n",
         msize, o->msize, large >> 20);
}

static void print_text(const struct result *o, const struct result *d,
                       size_t large) {
  printf("9P over loopback TCP, one client, msize %u\n", o->msize);
  printf("%-28s %14s %14s\n", "", "uksim", "diod");
  printf("%-28s %14.0f ", "walk+open+read+clunk /s", o->small_ops);
  d->ok ? printf("%14.0f\n", d->small_ops) : printf("%14s\n", "-");
  printf("read %zu MiB, MB/s %9s %14.1f ", large >> 20, "", o->large_mb);
  d->ok ? printf("%14.1f\n", d->large_mb) : printf("%14s\n", "-");
  if (!d->ok)
    printf("(diod not available: Debian package diod)\n");
}

static const char bench_usage[] =
    "usage: uksim bench 9p [--json] [--large-mib N] [--seconds S] "
    "[--msize N]\n"
    "Compares our 9P server with diod on loopback TCP (one run).\n";

static int parse(int argc, char **argv, int *json, size_t *large, double *secs,
                 uint32_t *msize) {
  static const struct option lo[] = {{"json", no_argument, 0, 'j'},
                                     {"large-mib", required_argument, 0, 'l'},
                                     {"seconds", required_argument, 0, 's'},
                                     {"msize", required_argument, 0, 'm'},
                                     {"help", no_argument, 0, 'h'},
                                     {0, 0, 0, 0}};
  int c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "jl:s:m:h", lo, NULL)) != -1) {
    if (c == 'j')
      *json = 1;
    else if (c == 'l')
      *large = (size_t)strtoul(optarg, NULL, 10) << 20;
    else if (c == 's')
      *secs = strtod(optarg, NULL);
    else if (c == 'm')
      *msize = (uint32_t)strtoul(optarg, NULL, 10);
    else
      return c == 'h' ? 1 : -1;
  }
  if (optind != argc || *large < (1u << 20) || *secs <= 0 ||
      *msize < P9_MINMSIZE || *msize > P9_MAXMSIZE)
    return -1;
  return 0;
}

int p9_bench_main(int argc, char **argv) {
  int json = 0, st;
  size_t large = 256u << 20;
  double secs = 1.0;
  uint32_t msize = 65536; /* diod's largest: both run the same msize */
  char dir[] = "/tmp/uksim-bench9p.XXXXXX", addr[64], cmd[600];
  struct result o = {0}, d = {0};
  struct ours srv = {0};
  uint8_t *data;
  pid_t pid;
  int err;
  if ((st = parse(argc, argv, &json, &large, &secs, &msize)) != 0)
    return st > 0 ? (fputs(bench_usage, stdout), 0)
                  : (fputs(bench_usage, stderr), 2);
  signal(SIGPIPE, SIG_IGN);
  data = p9__xmalloc(large);
  fill(data, large);
  if (!mkdtemp(dir) || write_file(dir, "small.bin", data, 1024) < 0 ||
      write_file(dir, "large.bin", data, large) < 0) {
    fprintf(stderr, "uksim bench 9p: cannot write files in %s\n", dir);
    free(data);
    return 1;
  }
  if ((err = ours_start(&srv, data, data, large, msize)) < 0) {
    fprintf(stderr, "uksim bench 9p: server: %s\n", p9_strerror(err));
    free(data);
    return 1;
  }
  free(data);
  err = measure(p9_listener_addr(srv.l), "", large, secs, msize, &o);
  ours_stop(&srv);
  if (!err && (pid = diod_start(dir, addr, sizeof(addr))) > 0) {
    if (measure(addr, dir, large, secs, msize, &d) < 0)
      fprintf(stderr, "uksim bench 9p: measuring diod failed\n");
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
  }
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "uksim bench 9p: could not remove %s\n", dir);
  if (err) {
    fprintf(stderr, "uksim bench 9p: measuring our server: %s\n",
            p9_strerror(err));
    return 1;
  }
  json ? print_json(&o, &d, large, msize) : print_text(&o, &d, large);
  return 0;
}
