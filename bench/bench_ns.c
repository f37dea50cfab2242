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
#include <fcntl.h>
#include <spawn.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "kpath.h"
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
  bool fuse;  /* measure the FUSE view too */
  size_t big; /* the sequential read's file */
};

struct fig {
  double us[NKEYS];
  /* The FUSE view against passthrough_ll (unpinned run only; 0: not run) */
  double fuse_ops, pt_ops, fuse_mb, pt_mb;
};

static char machine[64];

static int boot(mach_client *m) {
  struct mach_opts o;
  int fd, proc;
  char v[16];
  mach_opts_default(&o);
  snprintf(o.name, sizeof o.name, "bench-ns-%d", (int)getpid());
  snprintf(machine, sizeof machine, "%s", o.name);
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

/* The FUSE view (seed 002 through ordinary tools) ----------------------------
 * The same files in a tmpfs directory, seen two ways: through libfuse's
 * passthrough_ll example (FUSE -> the directory), and through `uksim
 * mount` of this process's namespace with hostfs serving that directory
 * on /tmp (FUSE -> nsfuse -> the kernel -> #M -> hostfs over its ICA queue
 * -> the directory).  Small operations: open, read 1 KiB, close of one of
 * 64 files; the sequential read: the big file in 1 MiB read()s.  Rounds
 * interleave the two. */

#define NSMALL 64

static const char *fuse_why; /* why the FUSE part did not run */

static int run_wait(char *const argv[]) {
  pid_t pid;
  int st;
  if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ) != 0 ||
      waitpid(pid, &st, 0) != pid)
    return -1;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static int fill_dir(const char *dir, size_t big) {
  char path[256], buf[1024];
  memset(buf, 'x', sizeof buf);
  for (int i = 0; i < NSMALL; i++) {
    snprintf(path, sizeof path, "%s/s%d", dir, i);
    FILE *f = fopen(path, "w");
    if (!f || fwrite(buf, 1, sizeof buf, f) != sizeof buf || fclose(f))
      return -1;
  }
  snprintf(path, sizeof path, "%s/big", dir);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  char *chunk = malloc(1 << 20);
  memset(chunk, 'b', 1 << 20);
  size_t done = 0;
  while (fd >= 0 && done < big && write(fd, chunk, 1 << 20) == 1 << 20)
    done += 1 << 20;
  free(chunk);
  return fd >= 0 && close(fd) == 0 && done == big ? 0 : -1;
}

/* Small operations per second on the files under top. */
static double small_ops(const char *top, long n) {
  char path[256], buf[1024];
  uint64_t t0 = stats_now_ns();
  for (long i = 0; i < n; i++) {
    snprintf(path, sizeof path, "%s/s%ld", top, i % NSMALL);
    int fd = open(path, O_RDONLY);
    if (fd < 0 || read(fd, buf, sizeof buf) != (ssize_t)sizeof buf) {
      if (fd >= 0)
        close(fd);
      return -1;
    }
    close(fd);
  }
  return (double)n / ((double)(stats_now_ns() - t0) / 1e9);
}

/* MB/s of reading top/big from its start, 1 MiB at a time. */
static double big_read(const char *top, size_t big) {
  char path[256];
  char *buf = malloc(1 << 20);
  snprintf(path, sizeof path, "%s/big", top);
  int fd = open(path, O_RDONLY);
  size_t got = 0;
  uint64_t t0 = stats_now_ns();
  ssize_t r;
  while (fd >= 0 && (r = read(fd, buf, 1 << 20)) > 0)
    got += (size_t)r;
  double s = (double)(stats_now_ns() - t0) / 1e9;
  if (fd >= 0)
    close(fd);
  free(buf);
  return got == big ? (double)got / 1e6 / s : -1;
}

/* Mounts hostfs's /srv entry on /tmp of this process's namespace. */
static int mount_hostfs(mach_client *m, const char *src) {
  char *args[] = {(char *)src};
  if (mach_spawn(m, "hostfs", args, 1, "hostfs", MACH_SPAWN_REGISTERED, NULL) <
      0)
    return -1;
  for (int i = 0; i < 2000; i++) {
    char name[16];
    int fd = ns_open("/srv/hostfs", NS_ORDWR);
    if (fd >= 0 && ns_pread(fd, name, sizeof name, 0) > 0) {
      int r = ns_mount(fd, "/tmp", NS_MREPL, "");
      ns_close(fd);
      return r;
    }
    if (fd >= 0)
      ns_close(fd);
    ap_sleep(1000000);
  }
  return -1;
}

struct fuse_dirs {
  char src[64], view[64], pt[64];
};

static void fuse_down(struct fuse_dirs *d) {
  char *u1[] = {"/usr/bin/fusermount3", "-u", "-z", d->view, NULL};
  char *u2[] = {"/usr/bin/fusermount3", "-u", "-z", d->pt, NULL};
  run_wait(u1);
  run_wait(u2);
  rmdir(d->view);
  rmdir(d->pt);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", d->src);
  if (system(cmd) != 0)
    fprintf(stderr, "uksim bench ns: could not remove %s\n", d->src);
}

static int fuse_up(mach_client *m, const char *machine, struct fuse_dirs *d,
                   size_t big) {
  char pt[512], src_opt[128];
  char uksim[4096];
  ssize_t n = readlink("/proc/self/exe", uksim, sizeof uksim - 1);
  snprintf(d->src, sizeof d->src, "/dev/shm/uksim-bench-ns-XXXXXX");
  snprintf(d->view, sizeof d->view, "/tmp/uksim-view-XXXXXX");
  snprintf(d->pt, sizeof d->pt, "/tmp/uksim-pt-XXXXXX");
  if (n <= 0 || !mkdtemp(d->src) || !mkdtemp(d->view) || !mkdtemp(d->pt))
    return (fuse_why = "no temporary directories"), -1;
  uksim[n] = '\0';
  if (fill_dir(d->src, big) < 0)
    return (fuse_why = "could not write the files"), -1;
  if (kern__find_program("passthrough_ll", pt, sizeof pt) < 0)
    return (fuse_why = "passthrough_ll was not built (libfuse3-dev)"), -1;
  if (mount_hostfs(m, d->src) < 0)
    return (fuse_why = "hostfs did not mount"), -1;
  snprintf(src_opt, sizeof src_opt, "source=%s", d->src);
  char *ptv[] = {pt, "-o", src_opt, d->pt, NULL};
  char *mv[] = {uksim,      "mount", "--name", (char *)machine,
                "bench-ns", d->view, NULL};
  if (run_wait(mv) < 0)
    return (fuse_why = "uksim mount failed"), -1;
  if (run_wait(ptv) < 0)
    return (fuse_why = "passthrough_ll did not mount"), -1;
  return 0;
}

static int fuse_measure(mach_client *m, const char *machine,
                        const struct plan *pl, struct fig *f) {
  struct fuse_dirs d;
  char view[96];
  int r = fuse_up(m, machine, &d, pl->big);
  snprintf(view, sizeof view, "%s/tmp", d.view);
  long rounds = pl->rounds < 6 ? pl->rounds : 6, n = pl->trips * 5;
  double *v[4];
  for (int k = 0; k < 4; k++)
    v[k] = calloc((size_t)rounds, sizeof(double));
  for (long i = 0; r == 0 && i < rounds; i++) {
    bool ours_first = i % 2 == 0; /* the order alternates */
    for (int j = 0; j < 2 && r == 0; j++) {
      bool ours = (j == 0) == ours_first;
      const char *top = ours ? view : d.pt;
      v[ours ? 0 : 1][i] = small_ops(top, n);
      v[ours ? 2 : 3][i] = big_read(top, pl->big);
      if (v[ours ? 0 : 1][i] < 0 || v[ours ? 2 : 3][i] < 0)
        r = -1, fuse_why = ours ? "a read through the view failed"
                                : "a read through passthrough_ll failed";
    }
  }
  if (r == 0) {
    f->fuse_ops = stats_median(v[0], (size_t)rounds);
    f->pt_ops = stats_median(v[1], (size_t)rounds);
    f->fuse_mb = stats_median(v[2], (size_t)rounds);
    f->pt_mb = stats_median(v[3], (size_t)rounds);
  }
  for (int k = 0; k < 4; k++)
    free(v[k]);
  fuse_down(&d);
  return r;
}

/* One placement, in this (child) process: boot, measure, halt. */
static int measure(const struct plan *pl, bool with_fuse, struct fig *f) {
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
  if (r == 0 && with_fuse && fuse_measure(&m, machine, pl, f) < 0) {
    fprintf(stderr, "uksim bench ns: the FUSE view: %s\n", fuse_why);
    r = -1;
  }
  uint32_t live;
  mach_halt(&m, &live);
  mach_close(&m);
  free(buf);
  return r < 0 ? -1 : 0;
}

/* Runs measure() in a child, pinned to one cpu or not. */
static int in_child(const struct plan *pl, bool pin, struct fig *f) {
  memset(f, 0, sizeof *f);
  int p[2];
  if (pipe(p) < 0)
    return -1;
  pid_t c = fork();
  if (c == 0) {
    close(p[0]);
    cpu_set_t all;
    if (pin)
      stats_pin_first(&all);
    int r = measure(pl, !pin && pl->fuse, f);
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
  if (f->pt_ops > 0)
    printf(", \"fuse_small_ops_per_s\": %.0f, \"passthrough_small_ops_per_s\": "
           "%.0f, \"fuse_small_ratio\": %.2f, \"fuse_read_mb_s\": %.0f, "
           "\"passthrough_read_mb_s\": %.0f, \"fuse_read_ratio\": %.2f",
           f->fuse_ops, f->pt_ops, f->fuse_ops / f->pt_ops, f->fuse_mb,
           f->pt_mb, f->fuse_mb / f->pt_mb);
  printf(", \"ns_read_16_ratio\": %.2f, \"ns_read_1m_mb_s\": %.1f",
         f->us[0] / f->us[K_NULL], (double)sizes[NSIZES - 1] / f->us[4]);
}

static void print_text(const char *title, const struct fig *f) {
  printf("%s\n", title);
  for (int k = 0; k < NKEYS; k++)
    printf("  %-16s %10.2f us\n", names[k], f->us[k]);
  printf("  ns_read_16 / null_rt %.2f (target <= 2)\n",
         f->us[0] / f->us[K_NULL]);
  if (f->pt_ops > 0)
    printf("  FUSE view / passthrough_ll: small ops %.0f / %.0f per s (%.2f, "
           "target >= 0.3), read %.0f / %.0f MB/s (%.2f, target >= 0.5)\n",
           f->fuse_ops, f->pt_ops, f->fuse_ops / f->pt_ops, f->fuse_mb,
           f->pt_mb, f->fuse_mb / f->pt_mb);
}

static void usage(FILE *o) {
  fputs("usage: uksim bench ns [--json] [--rounds N] [--trips N] [--quick] "
        "[--no-fuse]\n\n"
        "Reads of 16 B, 1 KiB, 4 KiB, 8 KiB and 1 MiB through the namespace\n"
        "from ramfs (mounted from /srv/ramfs, file open), beside the null\n"
        "round trip to echo, interleaved in rounds (default 20 rounds of\n"
        "200 trips; 1 MiB: a tenth), pinned to one cpu and unpinned.\n"
        "Keys: ns_read_16_us ns_read_1k_us ns_read_4k_us ns_read_8k_us\n"
        "ns_read_1m_us null_rt_us (medians); target ns_read_16_us <= 2 x\n"
        "null_rt_us.\n\n"
        "Then, unpinned, the FUSE view (uksim mount of this namespace, hostfs\n"
        "serving a tmpfs directory on /tmp) against libfuse's passthrough_ll\n"
        "over the same directory: open+read 1 KiB+close of 64 files, and a\n"
        "256 MiB file read whole (--quick: 32 MiB), interleaved.  Keys\n"
        "fuse_small_ops_per_s passthrough_small_ops_per_s fuse_read_mb_s\n"
        "passthrough_read_mb_s; targets >= 0.3 and >= 0.5 of passthrough.\n"
        "--no-fuse leaves it out.\n",
        o);
}

int bench_ns_main(int argc, char **argv) {
  static const struct option lo[] = {{"json", no_argument, 0, 'j'},
                                     {"rounds", required_argument, 0, 'r'},
                                     {"trips", required_argument, 0, 't'},
                                     {"quick", no_argument, 0, 'q'},
                                     {"no-fuse", no_argument, 0, 'F'},
                                     {"help", no_argument, 0, 'h'},
                                     {0, 0, 0, 0}};
  struct plan pl = {
      .rounds = 20, .trips = 200, .fuse = true, .big = 256u << 20};
  bool json = false;
  int64_t v;
  optind = 1;
  for (int c; (c = getopt_long(argc, argv, "", lo, NULL)) != -1;) {
    if (c == 'j')
      json = true;
    else if (c == 'q')
      pl.rounds = 4, pl.trips = 50, pl.big = 32u << 20;
    else if (c == 'F')
      pl.fuse = false;
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
             pinned.us[0] <= 2 * pinned.us[K_NULL] &&
             (!pl.fuse || (unpinned.fuse_ops >= 0.3 * unpinned.pt_ops &&
                           unpinned.fuse_mb >= 0.5 * unpinned.pt_mb));
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
