/* uksim kupdate: a kernel update by process migration (issue 15).  The
 * machine must run a backup OS of another kernel version (uksim run
 * --backup --backup-kernel build/cli/uksim-kernel2 --keep ...): its kernel
 * takes the active's processes over through version-neutral images
 * (sim-kernel/kconvert.c), and the old kernel ends. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "kupdate_refusals.h"
#include "machine.h"

/* How long the command follows the takeover before it gives up (ms). */
#define KUPDATE_WAIT_MS 30000

static void kupdate_usage(FILE *f) {
  fprintf(f, "usage: uksim kupdate [--name MACHINE] [--method image|replay]\n\n"
             "Update the kernel: the backup OS, booted from another kernel\n"
             "version (--backup-kernel), takes every process of the active OS\n"
             "over, which keeps running (same pid, connection, ICAs, open\n"
             "files); the old kernel ends.  A process whose state the image\n"
             "cannot carry (a file of an external 9P server the old kernel\n"
             "dialed: \"netlink\") is named here and in the new kernel's\n"
             "trace (event \"kupdate\"); by method A on a machine without a\n"
             "user disk it stays on the old kernel, which retires: it serves\n"
             "only such processes and ends after them (uksim ps and uksim os\n"
             "show it meanwhile); otherwise it ends with the old kernel.\n\n"
             "  --name MACHINE   machine (default: default)\n"
             "  --method image   method A, a version-neutral image (default)\n"
             "  --method replay  method B: each process replays its own\n"
             "                   journal of namespace, descriptor and pipe\n"
             "                   calls against the new kernel at its next\n"
             "                   call (event \"kupdate\" op \"replayed\")\n\n"
             "Exit 0 updated, 1 it could not be (why is said), 2 bad usage.\n");
}

static double ms_since(const struct timespec *t0) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)(t.tv_sec - t0->tv_sec) * 1e3 +
         (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

static uint32_t layout_of(mach_client *m, uint32_t os) {
  struct uk_kdata_hdr h = {0};
  int fd;
  if (mach_kdata_fd(m, os, &fd) < 0)
    return 0;
  if (pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h)
    h.layout = 0;
  close(fd);
  return h.layout;
}

/* The active OS's region, mapped before the update: its descriptor may
 * be gone once the new kernel has fenced the old one. */
static void map_active(mach_client *m, struct kupdate_region *r) {
  int fd;
  if (mach_kdata_fd(m, 0, &fd) < 0)
    return;
  (void)kupdate_region_map(fd, r);
  close(fd);
}

static void say_refusals(const struct kupdate_region *r) {
  if (r->kd == NULL)
    return;
  printf("images of the old kernel's processes (read from its stopped "
         "tables):\n");
  int n = kupdate_refusals(r, stdout);
  if (n < 0)
    printf("  its region is of no layout this program knows\n");
  else
    printf("  %d process%s cannot be carried\n", n, n == 1 ? "" : "es");
}

/* Waits until os is the active OS; 0, -ETIMEDOUT, or the status
 * request's error when the machine cannot say (m->error says why: the
 * machine went away, e.g. its owner ended during the update). */
static int await_active(mach_client *m, uint32_t os) {
  for (int i = 0; i < KUPDATE_WAIT_MS / 10; i++) {
    Uksim__Reply *st;
    int r = mach_status(m, &st);
    if (r < 0)
      return r == -ETIMEDOUT ? -EIO : r;
    bool done = st->active_os == os;
    uksim__reply__free_unpacked(st, NULL);
    if (done)
      return 0;
    usleep(10 * 1000);
  }
  return -ETIMEDOUT;
}

static int kupdate(const char *name, int method) {
  mach_client m;
  if (mach_connect(&m, name) < 0) {
    fprintf(stderr, "uksim kupdate: %s\n", m.error);
    return 1;
  }
  uint32_t old_os = 0, new_os = 0;
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  uint32_t old_layout = layout_of(&m, 0);
  struct kupdate_region old = {0};
  map_active(&m, &old);
  int r = mach_kupdate(&m, method, &old_os, &new_os);
  if (r >= 0 && method == UKSIM__KUPDATE__METHOD__IMAGE)
    say_refusals(&old); /* the old kernel is stopped: the tables are still */
  kupdate_region_unmap(&old);
  if (r < 0)
    fprintf(stderr, "uksim kupdate: %s\n", m.error);
  else if ((r = await_active(&m, new_os)) == -ETIMEDOUT)
    fprintf(stderr, "uksim kupdate: os %u did not take over in %d ms\n", new_os,
            KUPDATE_WAIT_MS);
  else if (r < 0)
    fprintf(stderr,
            "uksim kupdate: lost sight of the update after %.0f ms, before "
            "os %u was active: %s\n",
            ms_since(&t0), new_os, m.error[0] ? m.error : strerror(-r));
  else
    printf("kernel update: os %u (layout %u) -> os %u (layout %u), active "
           "after %.1f ms; it takes the processes over now (its trace: "
           "events \"kupdate\" and \"failover\")\n",
           old_os, old_layout, new_os, layout_of(&m, new_os), ms_since(&t0));
  mach_close(&m);
  return r < 0 ? 1 : 0;
}

int cmd_kupdate(int argc, char **argv) {
  static const struct option opts[] = {{"name", required_argument, NULL, 'n'},
                                       {"method", required_argument, NULL, 'm'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *name = "default";
  int method = UKSIM__KUPDATE__METHOD__IMAGE;
  optind = 1;
  for (int c; (c = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
    if (c == 'n')
      name = optarg;
    else if (c == 'm' && strcmp(optarg, "image") == 0)
      method = UKSIM__KUPDATE__METHOD__IMAGE;
    else if (c == 'm' && strcmp(optarg, "replay") == 0)
      method = UKSIM__KUPDATE__METHOD__REPLAY;
    else if (c == 'h') {
      kupdate_usage(stdout);
      return 0;
    } else {
      kupdate_usage(stderr);
      return 2;
    }
  }
  if (optind != argc) {
    kupdate_usage(stderr);
    return 2;
  }
  return kupdate(name, method);
}
