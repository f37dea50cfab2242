/* uksim bench ns: reading a file through the namespace (seed 002 §9.2:
 * "RAM file read, 16 B: 97 us, 1 KB: 107 us, 4 KB: 157 us, 8 KB: 373 us"
 * on QEMU) beside the null round trip in the same run.
 *
 * The bench boots a machine with the echo server and ramfs, attaches
 * itself as a process of it (as `uksim sh` does), mounts ramfs's
 * /srv/ramfs on /n and reads files of 16 B, 1 KiB, 4 KiB, 8 KiB and 1 MiB
 * from their start with ns_pread: the path application -> kernel (namec is
 * not on it: the file is open) -> #M -> ramfs over its ICA queue -> kernel
 * -> application, the same number of hops as a null request to echo.  Up
 * to 8 KiB the bytes come back in the control ICA; 1 MiB travels in a data
 * ICA that ramfs fills and the kernel never copies.
 *
 * Null requests and reads run interleaved, a block of each per round, so
 * load elsewhere on the machine falls on both alike; each key is the
 * median over all of its blocks.  Target: ns_read_16_us <= 2 *
 * null_rt_us.  Everything runs pinned to one cpu and unpinned (in a child
 * process each: a process attaches to one machine in its life).
 */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "machine.h"
#include "stats.h"
#include "uksim/ap.h"
#include "uksim/ns.h"
#include "uksim/num.h"

enum { NSIZES = 5, K_NULL = NSIZES, NKEYS };
static const size_t sizes[NSIZES] = {16, 1024, 4096, 8192, 1u << 20};
static const char *const names[NKEYS] = {"ns_read_16_us", "ns_read_1k_us",
                                         "ns_read_4k_us", "ns_read_8k_us",
                                         "ns_read_1m_us", "null_rt_us"};

struct plan {
  long rounds, trips;
};

struct fig {
  double us[NKEYS];
};

static int boot(mach_client *m) {
  struct mach_opts o;
  int fd, proc;
  char v[16];
  mach_opts_default(&o);
  snprintf(o.name, sizeof o.name, "bench-ns-%d", (int)getpid());
  if (mach_boot(m, &o) < 0 ||
      mach_spawn(m, "echo", NULL, 0, "echo", MACH_SPAWN_REGISTERED, NULL) < 0 ||
      mach_spawn(m, "ramfs", NULL, 0, "ramfs", MACH_SPAWN_REGISTERED, NULL) <
          0 ||
      mach_attach(m, "bench-ns", -1, 0, &proc, &fd) < 0) {
    fprintf(stderr, "uksim bench ns: %s\n", m->error);
    return -1;
  }
  snprintf(v, sizeof v, "%d", fd);
  setenv("UKSIM_FD", v, 1);
  return 0;
}

/* Mounts ramfs on /n (it posts itself just after it registers). */
static int mount_ramfs(void) {
  int fd = -ENOENT;
  char name[16];
  for (int i = 0; i < 2000; i++) {
    fd = ns_open("/srv/ramfs", NS_ORDWR);
    if (fd >= 0 && ns_pread(fd, name, sizeof name, 0) > 0)
      break;
    if (fd >= 0)
      ns_close(fd);
    fd = -ENOENT;
    ap_sleep(1000000);
  }
  if (fd < 0)
    return fd;
  int r = ns_mount(fd, "/n", NS_MREPL | NS_MCREATE, "");
  ns_close(fd);
  return r;
}

/* Creates /n/fK of sizes[K] bytes and opens it for reading. */
static int make_file(int k, char *buf) {
  char path[32];
  snprintf(path, sizeof path, "/n/f%d", k);
  int fd = ns_create(path, NS_OWRITE, 0644);
  if (fd < 0)
    return fd;
  memset(buf, 'a' + k, sizeof buf[0] * sizes[k]);
  long w = ns_write(fd, buf, sizes[k]);
  ns_close(fd);
  if (w != (long)sizes[k])
    return w < 0 ? (int)w : -EIO;
  return ns_open(path, NS_OREAD);
}

static int null_block(uint32_t svc, uk_ica *ctl, long trips, double *t) {
  for (long i = 0; i < trips + 10; i++) {
    ap_result res;
    uint64_t t0 = stats_now_ns();
    int r = ap_call(svc, 0, ctl, NULL, &res);
    if (r < 0 || res.status < 0)
      return r < 0 ? r : res.status;
    *ctl = res.ctl;
    if (i >= 10)
      t[i - 10] = (double)(stats_now_ns() - t0) / 1e3;
  }
  return 0;
}

static int read_block(int fd, size_t n, char *buf, long trips, double *t) {
  for (long i = 0; i < trips + 2; i++) {
    uint64_t t0 = stats_now_ns();
    long r = ns_pread(fd, buf, n, 0);
    if (r != (long)n)
      return r < 0 ? (int)r : -EIO;
    if (i >= 2)
      t[i - 2] = (double)(stats_now_ns() - t0) / 1e3;
  }
  return 0;
}

/* Trips per block: fewer for the megabyte. */
static long trips_for(int k, const struct plan *pl) {
  return k == NSIZES - 1 ? pl->trips / 10 + 1 : pl->trips;
}

static int rounds(const struct plan *pl, const int *fds, char *buf,
                  struct fig *f) {
  uint32_t svc;
  uk_ica ctl;
  double *t[NKEYS];
  size_t n[NKEYS] = {0};
  int r = ap_lookup("echo", &svc);
  if (r == 0)
    r = ica_create(64, KABI_ICA_CONTROL, &ctl);
  for (int k = 0; k < NKEYS; k++)
    t[k] = calloc((size_t)(pl->rounds * pl->trips), sizeof(double));
  for (long i = 0; r == 0 && i < pl->rounds; i++)
    for (int j = 0; r == 0 && j < NKEYS; j++) {
      int k = (int)((i + j) % NKEYS); /* the order rotates */
      long trips = k == K_NULL ? pl->trips : trips_for(k, pl);
      r = k == K_NULL ? null_block(svc, &ctl, trips, t[k] + n[k])
                      : read_block(fds[k], sizes[k], buf, trips, t[k] + n[k]);
      n[k] += (size_t)trips;
    }
  for (int k = 0; k < NKEYS; k++) {
    f->us[k] = r == 0 ? stats_median(t[k], n[k]) : 0;
    free(t[k]);
  }
  return r;
}

/* One placement, in this (child) process: boot, measure, halt. */
static int measure(const struct plan *pl, struct fig *f) {
  mach_client m;
  int fds[NSIZES], r;
  char *buf = malloc(sizes[NSIZES - 1]);
  if (boot(&m) < 0)
    return -1;
  if ((r = mount_ramfs()) < 0)
    fprintf(stderr, "uksim bench ns: mount /srv/ramfs: %s\n", strerror(-r));
  for (int k = 0; r == 0 && k < NSIZES; k++)
    if ((fds[k] = r = make_file(k, buf)) >= 0)
      r = 0;
  if (r == 0 && (r = rounds(pl, fds, buf, f)) < 0)
    fprintf(stderr, "uksim bench ns: %s\n", strerror(-r));
  uint32_t live;
  mach_halt(&m, &live);
  mach_close(&m);
  free(buf);
  return r < 0 ? -1 : 0;
}

/* Runs measure() in a child, pinned to one cpu or not. */
static int in_child(const struct plan *pl, bool pin, struct fig *f) {
  int p[2];
  if (pipe(p) < 0)
    return -1;
  pid_t c = fork();
  if (c == 0) {
    close(p[0]);
    if (pin) {
      cpu_set_t all, one;
      sched_getaffinity(0, sizeof all, &all);
      CPU_ZERO(&one);
      for (int i = 0; i < CPU_SETSIZE; i++)
        if (CPU_ISSET(i, &all)) {
          CPU_SET(i, &one);
          break;
        }
      sched_setaffinity(0, sizeof one, &one);
    }
    int r = measure(pl, f);
    if (r == 0 && write(p[1], f, sizeof *f) != (ssize_t)sizeof *f)
      r = -1;
    _exit(r == 0 ? 0 : 1);
  }
  close(p[1]);
  ssize_t got = c > 0 ? read(p[0], f, sizeof *f) : -1;
  close(p[0]);
  int st = 1;
  if (c > 0)
    waitpid(c, &st, 0);
  return got == (ssize_t)sizeof *f && WIFEXITED(st) && WEXITSTATUS(st) == 0
             ? 0
             : -1;
}

static void print_json(const struct fig *f) {
  for (int k = 0; k < NKEYS; k++)
    printf("%s\"%s\": %.2f", k ? ", " : "", names[k], f->us[k]);
  printf(", \"ns_read_16_ratio\": %.2f, \"ns_read_1m_mb_s\": %.1f",
         f->us[0] / f->us[K_NULL], (double)sizes[NSIZES - 1] / f->us[4]);
}

static void print_text(const char *title, const struct fig *f) {
  printf("%s\n", title);
  for (int k = 0; k < NKEYS; k++)
    printf("  %-16s %10.2f us\n", names[k], f->us[k]);
  printf("  ns_read_16 / null_rt %.2f (target <= 2)\n",
         f->us[0] / f->us[K_NULL]);
}

static void usage(FILE *o) {
  fputs("usage: uksim bench ns [--json] [--rounds N] [--trips N] [--quick]\n\n"
        "Reads of 16 B, 1 KiB, 4 KiB, 8 KiB and 1 MiB through the namespace\n"
        "from ramfs (mounted from /srv/ramfs, file open), beside the null\n"
        "round trip to echo, interleaved in rounds (default 20 rounds of\n"
        "200 trips; 1 MiB: a tenth), pinned to one cpu and unpinned.\n"
        "Keys: ns_read_16_us ns_read_1k_us ns_read_4k_us ns_read_8k_us\n"
        "ns_read_1m_us null_rt_us (medians); target ns_read_16_us <= 2 x\n"
        "null_rt_us.\n",
        o);
}

int bench_ns_main(int argc, char **argv) {
  static const struct option lo[] = {{"json", no_argument, 0, 'j'},
                                     {"rounds", required_argument, 0, 'r'},
                                     {"trips", required_argument, 0, 't'},
                                     {"quick", no_argument, 0, 'q'},
                                     {"help", no_argument, 0, 'h'},
                                     {0, 0, 0, 0}};
  struct plan pl = {.rounds = 20, .trips = 200};
  bool json = false;
  int64_t v;
  optind = 1;
  for (int c; (c = getopt_long(argc, argv, "", lo, NULL)) != -1;) {
    if (c == 'j')
      json = true;
    else if (c == 'q')
      pl = (struct plan){.rounds = 4, .trips = 50};
    else if ((c == 'r' || c == 't') &&
             num_opt_i64("uksim bench ns", c == 'r' ? "--rounds" : "--trips",
                         optarg, 1, 100000, &v) == 0)
      *(c == 'r' ? &pl.rounds : &pl.trips) = (long)v;
    else {
      usage(c == 'h' ? stdout : stderr);
      return c == 'h' ? 0 : 2;
    }
  }
  if (optind != argc) {
    usage(stderr);
    return 2;
  }
  struct fig pinned, unpinned;
  if (in_child(&pl, true, &pinned) < 0 || in_child(&pl, false, &unpinned) < 0)
    return 1;
  bool met = unpinned.us[0] <= 2 * unpinned.us[K_NULL] &&
             pinned.us[0] <= 2 * pinned.us[K_NULL];
  if (json) {
    printf("{");
    print_json(&unpinned);
    printf(", \"pinned\": {");
    print_json(&pinned);
    printf("}, \"rounds\": %ld, \"trips\": %ld, \"targets_met\": %s}\n",
           pl.rounds, pl.trips, met ? "true" : "false");
  } else {
    print_text("unpinned:", &unpinned);
    print_text("pinned to one cpu:", &pinned);
  }
  return 0;
}
