/* uksim bench kupdate: a kernel update by process migration (issue 15,
 * seed 003).  A machine whose backup OS boots from the other kernel
 * version (build/cli/uksim-kernel2, kernel-data layout v2) runs N
 * protected failload processes calling ctr_srv's counter; `uksim kupdate`
 * (method A, version-neutral images) moves them to the new kernel.
 *
 * Figures per N (10 and 200) and method:
 *   total_ms       from the update asked to every load answered again by
 *                  the new kernel (the load's own observation);
 *   convert_us_per_proc   the images' conversion (the new kernel's
 *                  "kupdate" event) per process carried;
 *   processes_us_per_proc the take-over of the processes (its "failover"
 *                  processes step: tables, connections, ICAs, calls) per
 *                  process moved;
 *   lost           calls with neither an answer nor a reset / -EINTR
 *                  (must be 0), and the counter checked exactly once.
 * Method B (replay) is not built: its keys are absent.  No target here:
 * these are the first measurements (docs/kupdate-tutorial.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "failload.h"
#include "machine.h"
#include "uksim_paths.h"

/* How long any one wait of the bench lasts at most (ms). */
#define KUPDATE_BENCH_WAIT_MS 60000

struct krun {
  int procs;
  char dir[64], slots[96], trace[96];
  struct failload_slot *slot;
};

struct kres {
  double total_ms, convert_us, processes_us;
  struct failload_counts n; /* the loads' calls, answers ... lost */
  bool counter_ok;
};

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static int fail(mach_client *m, const char *what) {
  fprintf(stderr, "uksim bench kupdate: %s%s%s\n", what, m ? ": " : "",
          m ? m->error : "");
  return -1;
}

static int boot(mach_client *m, struct krun *r) {
  struct mach_opts o;
  mach_opts_default(&o);
  snprintf(o.name, sizeof o.name, "bench-kupdate-%d-%d", (int)getpid(),
           r->procs);
  snprintf(r->trace, sizeof r->trace, "%s/trace.jsonl", r->dir);
  snprintf(o.trace_file, sizeof o.trace_file, "%s", r->trace);
  char exe[sizeof o.backup_kernel] = UKSIM_EXE_DEFAULT;
  snprintf(o.backup_kernel, sizeof o.backup_kernel, "%s/uksim-kernel2",
           dirname(exe));
  o.backup = true;
  o.heartbeat_timeout_ms = 1000; /* 200 loads on 2 cores: no false alarm */
  if (mach_boot(m, &o) < 0)
    return fail(m, "boot");
  for (int t = 0; t < KUPDATE_BENCH_WAIT_MS / 10; t++) {
    Uksim__Reply *st;
    if (mach_status(m, &st) < 0)
      return fail(m, "status");
    bool up = st->backup_os != 0;
    uksim__reply__free_unpacked(st, NULL);
    if (up)
      return 0;
    usleep(10 * 1000);
  }
  return fail(NULL, "no backup OS");
}

static int start_loads(mach_client *m, struct krun *r) {
  size_t len = (size_t)r->procs * sizeof *r->slot;
  snprintf(r->slots, sizeof r->slots, "%s/slots", r->dir);
  int fd = open(r->slots, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || ftruncate(fd, (off_t)len) < 0)
    return fail(NULL, r->slots);
  r->slot = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (r->slot == MAP_FAILED)
    return fail(NULL, "mmap");
  if (mach_spawn(m, "ctr_srv", NULL, 0, "ctr", MACH_SPAWN_REGISTERED, NULL) < 0)
    return fail(m, "spawn ctr_srv");
  for (int i = 0; i < r->procs; i++) {
    char idx[16], name[32];
    snprintf(idx, sizeof idx, "%d", i);
    snprintf(name, sizeof name, "load%d", i);
    char *args[] = {r->slots, idx, "100"};
    struct mach_prog p = {.program = "failload",
                          .args = args,
                          .nargs = 3,
                          .name = name,
                          .protect = true};
    int proc;
    if (mach_spawn_prog(m, &p, &proc) < 0)
      return fail(m, "spawn failload");
  }
  return 0;
}

/* Waits until every load has more answers than in before[] (or than 0);
 * 0, or -ETIMEDOUT. */
static int await_answers(const struct krun *r, const uint64_t *before) {
  for (int t = 0; t < KUPDATE_BENCH_WAIT_MS; t++) {
    int ready = 0;
    for (int i = 0; i < r->procs; i++)
      ready += __atomic_load_n(&r->slot[i].answers, __ATOMIC_ACQUIRE) >
               (before ? before[i] : 0);
    if (ready == r->procs)
      return 0;
    usleep(1000);
  }
  return -ETIMEDOUT;
}

/* The number after `key` in the new kernel's line with both words. */
static double trace_us(const struct krun *r, uint32_t os, const char *a,
                       const char *b, const char *key) {
  char path[128], line[1024];
  snprintf(path, sizeof path, "%s.os%u", r->trace, os);
  double v = 0;
  FILE *f = fopen(path, "r");
  while (f && fgets(line, sizeof line, f))
    if (strstr(line, a) && strstr(line, b) && strstr(line, key))
      v = strtod(strstr(line, key) + strlen(key), NULL);
  if (f)
    fclose(f);
  return v;
}

/* The counter holds every answered increment and at most the reset ones
 * and those cut short with -EINTR (their side effect may have been done:
 * sim-kernel/adopt.h, ADOPT_INTR). */
static bool counter_ok(mach_client *m, const struct kres *res) {
  char range[64];
  int proc, st = -1, sig = 0;
  snprintf(range, sizeof range, "%" PRIu64 ":%" PRIu64, res->n.answers,
           res->n.answers + res->n.resets + res->n.intrs);
  char *a[] = {"--count", "0", "--expect-range", range, "--quiet"};
  if (mach_spawn(m, "ctr_load", a, 5, "check", MACH_SPAWN_WAITABLE, &proc) < 0)
    return false;
  int64_t w = mach_wait_send(m, proc);
  return w >= 0 && mach_wait_reply(m, (uint64_t)w, &st, &sig) == 0 && st == 0 &&
         sig == 0;
}

static int update(mach_client *m, struct krun *r, struct kres *res) {
  uint32_t old_os, new_os;
  uint64_t *before = calloc((size_t)r->procs, sizeof *before);
  uint64_t t0 = now_ns();
  int e = mach_kupdate(m, UKSIM__KUPDATE__METHOD__IMAGE, &old_os, &new_os);
  for (int i = 0; e == 0 && i < r->procs; i++) /* the old kernel is stopped */
    before[i] = __atomic_load_n(&r->slot[i].answers, __ATOMIC_ACQUIRE);
  if (e == 0 && await_answers(r, before) == 0)
    res->total_ms = (double)(now_ns() - t0) / 1e6;
  free(before);
  if (e < 0 || res->total_ms == 0)
    return fail(e < 0 ? m : NULL, "kupdate");
  /* The new kernel writes its trace as it goes: wait for both lines. */
  for (int t = 0; t < KUPDATE_BENCH_WAIT_MS / 10 &&
                  (res->convert_us == 0 || res->processes_us == 0);
       t++) {
    res->convert_us = trace_us(r, new_os, "kupdate", "convert", ", in ");
    res->processes_us =
        trace_us(r, new_os, "failover", "processes", "\"processes ");
    usleep(10 * 1000);
  }
  return 0;
}

static int run_case(int procs, struct kres *res) {
  struct krun r = {.procs = procs};
  snprintf(r.dir, sizeof r.dir, "/tmp/uksim-bench-kupdate-XXXXXX");
  if (mkdtemp(r.dir) == NULL)
    return fail(NULL, "mkdtemp");
  mach_client m;
  int e = boot(&m, &r);
  if (e == 0 && (e = start_loads(&m, &r)) == 0 &&
      (e = await_answers(&r, NULL)) == 0 && (e = update(&m, &r, res)) == 0) {
    if ((e = failload_stop(r.slot, procs, KUPDATE_BENCH_WAIT_MS, &res->n)) < 0)
      fail(NULL, "a load cannot be stopped");
    res->counter_ok = e == 0 && counter_ok(&m, res);
  }
  uint32_t live;
  mach_halt(&m, &live);
  mach_close(&m);
  if (r.slot && r.slot != MAP_FAILED)
    munmap(r.slot, (size_t)procs * sizeof *r.slot);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", r.dir);
  if (system(cmd) != 0)
    fprintf(stderr, "uksim bench kupdate: %s left behind\n", r.dir);
  return e;
}

static void print(int procs, const struct kres *x, bool json, bool first) {
  double conv = x->convert_us / procs, proc = x->processes_us / procs;
  if (!json) {
    printf("image  %4d procs  total %8.1f ms  convert %7.1f us/proc  "
           "takeover %7.1f us/proc  lost %" PRIu64 "  counter %s\n",
           procs, x->total_ms, conv, proc, x->n.lost,
           x->counter_ok ? "exact" : "WRONG");
    return;
  }
  printf("%s\"kupdate_image_%dp_total_ms\":%.3f,"
         "\"kupdate_image_%dp_convert_us_per_proc\":%.3f,"
         "\"kupdate_image_%dp_processes_us_per_proc\":%.3f,"
         "\"kupdate_image_%dp_lost\":%" PRIu64 ","
         "\"kupdate_image_%dp_counter_exact\":%s",
         first ? "" : ",", procs, x->total_ms, procs, conv, procs, proc, procs,
         x->n.lost, procs, x->counter_ok ? "true" : "false");
}

int bench_kupdate_main(int argc, char **argv) {
  bool json = argc >= 2 && strcmp(argv[1], "--json") == 0;
  if (argc > 2 || (argc == 2 && !json)) {
    fprintf(stderr, "usage: uksim bench kupdate [--json]\n");
    return 2;
  }
  static const int procs[] = {10, 200};
  struct kres res[2] = {0};
  uint64_t lost = 0;
  bool ok = true;
  for (int c = 0; c < 2; c++) {
    if (run_case(procs[c], &res[c]) < 0)
      return 1;
    lost += res[c].n.lost;
    ok &= res[c].counter_ok;
  }
  if (json)
    printf("{");
  for (int c = 0; c < 2; c++)
    print(procs[c], &res[c], json, c == 0);
  if (json)
    printf(",\"lost\":%" PRIu64 ",\"replay_built\":false}\n", lost);
  else
    printf("lost %" PRIu64 " (must be 0); method B (replay) not built\n", lost);
  return lost == 0 && ok ? 0 : 1;
}
