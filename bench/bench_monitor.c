/* uksim bench monitor: the seed-003 monitor's cost and its detections
 * (issue 15; seed 003 §4 measured the monitor's cpu at 1, 10, 100 and
 * 1000 ms: 76.6 %, 48.3 %, 0.1 % and 0.0 % of the time at its highest
 * frequency).
 *
 * Cost, per interval, in rounds interleaved with the baseline (the same
 * machine whose backup does not monitor): a machine with a backup runs a
 * fixed workload (kvs and kvsload --count BM_WORK requests, to the end);
 *   monitor_<I>ms_cpu_pct  the backup kernel's cpu time over the
 *                          workload's wall time (/proc/PID/schedstat),
 *                          less the same share of the baseline's backup
 *                          (its heartbeat watch): the monitor's share of
 *                          one core;
 *   slowdown_<I>ms_pct     the workload's time over the baseline's, - 1.
 * Each figure is the median of --rounds rounds.
 *
 * Detections, per fault and interval: a fresh machine (policy report),
 * the workload running (for the stalled driver, a reader blocked on a
 * pipe and a writer), the fault injected through the machine (uksim
 * fault's path), then the backup's trace read for its "monitor" event:
 *   latency_<fault>_<I>ms_ms    from the machine's fault stamp;
 *   free_ica_mib_runaway_<I>ms  ICA budget left at the runaway's finding;
 *   blocked_stalled_driver_<I>ms readers blocked with data at the finding;
 *   detected_<fault>            found at every interval;
 *   heartbeat_<fault>           the heartbeat declared the active dead
 *                               (it should not: the loop lives on).
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "kmon.h"
#include "machine.h"
#include "stats.h"
#include "uksim/interos.h"
#include "uksim/ns.h"

#define BM_WORK "3000"  /* requests of the cost workload */
#define BM_FIND_MS 8000 /* patience for a finding, beyond the interval */
#define BM_INTERVALS 4
#define BM_FAULTS 3
#define BM_ROUNDS_MAX 9

static const unsigned intervals[BM_INTERVALS] = {1, 10, 100, 1000};
static const char *const fault_names[BM_FAULTS] = {"deadlock", "runaway",
                                                   "stalled_driver"};
static const char *const fault_ops[BM_FAULTS] = {"deadlock", "runaway",
                                                 "stalled-driver"};
static const int fault_kinds[BM_FAULTS] = {UKSIM__FAULT__KIND__DEADLOCK,
                                           UKSIM__FAULT__KIND__RUNAWAY,
                                           UKSIM__FAULT__KIND__STALL_DRIVER};

struct bm {
  mach_client m;
  char name[64];
  char dir[128], trace[192];
  uint32_t backup_os;
  int backup_pid;
};

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* cpu time process pid ran, ns; 0 if unknown. */
static uint64_t cpu_ns(int pid) {
  char path[64];
  unsigned long long ran = 0;
  snprintf(path, sizeof path, "/proc/%d/schedstat", pid);
  FILE *f = fopen(path, "re");
  if (f == NULL)
    return 0;
  if (fscanf(f, "%llu", &ran) != 1)
    ran = 0;
  fclose(f);
  return ran;
}

/* mach_boot with the machine's stdout (and its processes': kvsload's
 * summary) on /dev/null, so that --json prints only the JSON. */
static int quiet_boot(mach_client *m, const struct mach_opts *o) {
  fflush(stdout);
  int saved = dup(1), null = open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (saved < 0 || null < 0 || dup2(null, 1) < 0)
    return -1;
  int r = mach_boot(m, o);
  dup2(saved, 1);
  close(saved);
  close(null);
  return r;
}

/* Boots a machine with a backup monitoring every interval ms (0: none). */
static int bm_boot(struct bm *b, unsigned interval) {
  static int n;
  struct mach_opts o;
  char v[16];
  snprintf(v, sizeof v, "%u", interval);
  setenv(KMON_ENV_INTERVAL, v, 1);
  setenv(KMON_ENV_POLICY, "report", 1);
  mach_opts_default(&o);
  snprintf(b->dir, sizeof b->dir, "%s/uksim-bmon-XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (mkdtemp(b->dir) == NULL)
    return -1;
  snprintf(o.name, sizeof o.name, "bmon-%d-%d", (int)getpid(), n++);
  snprintf(b->name, sizeof b->name, "%s", o.name);
  snprintf(b->trace, sizeof b->trace, "%s/trace.jsonl", b->dir);
  snprintf(o.trace_file, sizeof o.trace_file, "%s", b->trace);
  o.backup = true;
  o.heartbeat_ms = 10;
  o.heartbeat_timeout_ms = 300;
  if (quiet_boot(&b->m, &o) < 0) {
    fprintf(stderr, "uksim bench monitor: boot: %s\n", b->m.error);
    return -1;
  }
  for (int i = 0; i < 500; i++) {
    Uksim__Reply *st;
    if (mach_status(&b->m, &st) < 0)
      return -1;
    b->backup_os = st->backup_os;
    b->backup_pid = st->backup_pid;
    uksim__reply__free_unpacked(st, NULL);
    if (b->backup_os)
      return 0;
    usleep(10 * 1000);
  }
  return -1;
}

static void bm_halt(struct bm *b) {
  uint32_t live;
  char cmd[192];
  (void)mach_halt(&b->m, &live);
  mach_close(&b->m);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", b->dir);
  if (system(cmd) != 0)
    fprintf(stderr, "uksim bench monitor: %s left behind\n", b->dir);
}

/* kvs and a kvsload of count requests (rate 0: as fast as it goes);
 * wait: until it ends.  Its process slot, or -1. */
static int workload(struct bm *b, const char *count, const char *rate,
                    bool wait) {
  char *kargs[] = {"--state", "single"};
  char *largs[] = {"--count", (char *)count, "--keys",
                   "50",      "--rate",      (char *)rate};
  int proc, st = -1, sig = 0;
  if (mach_spawn(&b->m, "kvs", kargs, 2, "kvs", MACH_SPAWN_REGISTERED, NULL) <
          0 ||
      mach_spawn(&b->m, "kvsload", largs, 6, "load", MACH_SPAWN_WAITABLE,
                 &proc) < 0)
    return -1;
  if (!wait)
    return proc;
  int64_t id = mach_wait_send(&b->m, proc);
  if (id < 0 || mach_wait_reply(&b->m, (uint64_t)id, &st, &sig) < 0 || st)
    return -1;
  return proc;
}

/* One cost round: the workload's wall ms and the backup's cpu ns. */
static int cost_round(unsigned interval, double *ms, double *cpu_pct) {
  struct bm b;
  if (bm_boot(&b, interval) < 0)
    return -1;
  usleep(300 * 1000); /* the monitor maps the active's region */
  uint64_t c0 = cpu_ns(b.backup_pid);
  double t0 = now_ms();
  int r = workload(&b, BM_WORK, "0", true);
  double t1 = now_ms();
  uint64_t c1 = cpu_ns(b.backup_pid);
  bm_halt(&b);
  *ms = t1 - t0;
  *cpu_pct = (double)(c1 - c0) / 1e6 / (t1 - t0) * 100;
  return r < 0 ? -1 : 0;
}

struct finding {
  bool found, heartbeat;
  double latency_ms;
  long free_mib, blocked;
};

/* Fills f from the backup's monitor event for op, within ms; false if
 * none came. */
static bool await_finding(struct bm *b, const char *op, int ms,
                          struct finding *f) {
  char path[256], line[2048], want[64];
  snprintf(path, sizeof path, "%s.os%u", b->trace, b->backup_os);
  snprintf(want, sizeof want, "\"op\":\"%s\"", op);
  for (double end = now_ms() + ms; now_ms() < end; usleep(10 * 1000)) {
    FILE *fp = fopen(path, "re");
    while (fp && fgets(line, sizeof line, fp))
      if (strstr(line, "\"ev\":\"monitor\"") && strstr(line, want)) {
        const char *s = strstr(line, "\"status\":");
        const char *q = strstr(line, "\"req\":");
        const char *mib = strstr(line, " MiB of ");
        f->found = true;
        f->latency_ms = s ? atof(s + 9) / 1000 : -1;
        f->blocked = q ? atol(q + 6) : 0;
        while (mib && mib > line && mib[-1] >= '0' && mib[-1] <= '9')
          mib--;
        f->free_mib = mib ? atol(mib) : -1;
        fclose(fp);
        return true;
      }
    if (fp)
      fclose(fp);
  }
  return false;
}

/* The stalled driver's actors: a reader blocked on an empty pipe, the
 * fault, then a writer, all in a child w of its own with its own
 * connections (libuksim's connection is one per process and life).  The
 * reader's pid, or -1. */
static int stall_actors(struct bm *b) {
  int out[2], sync[2];
  pid_t reader = -1;
  if (pipe(out) < 0)
    return -1;
  pid_t w = fork();
  if (w == 0) {
    mach_client m;
    int rslot, rfd, wslot, wfd, fd = -1;
    char v[16], buf[8];
    if (mach_connect(&m, b->name) < 0 || pipe(sync) < 0 ||
        mach_attach(&m, "reader", -1, 0, &rslot, &rfd) < 0)
      _exit(1);
    pid_t c = fork();
    if (c == 0) {
      snprintf(v, sizeof v, "%d", rfd);
      setenv("UKSIM_FD", v, 1);
      fd =
          ns_bind("#|", "/n", NS_MREPL) < 0 ? -1 : ns_open("/n/data", NS_OREAD);
      if (fd < 0 || write(sync[1], "o", 1) != 1)
        _exit(1);
      _exit(ns_read(fd, buf, sizeof buf) > 0 ? 0 : 1); /* never woken */
    }
    if (c < 0 || read(sync[0], buf, 1) != 1 ||
        write(out[1], &c, sizeof c) != sizeof c)
      _exit(1);
    usleep(100 * 1000); /* it waits in its read */
    if (mach_fault(&m, UKSIM__FAULT__KIND__STALL_DRIVER, 0) < 0 ||
        mach_attach(&m, "writer", rslot, 0, &wslot, &wfd) < 0)
      _exit(1);
    snprintf(v, sizeof v, "%d", wfd);
    setenv("UKSIM_FD", v, 1);
    fd = ns_open("/n/data1", NS_OWRITE);
    _exit(fd >= 0 && ns_write(fd, "stuck", 5) == 5 ? 0 : 1);
  }
  close(out[1]);
  if (w < 0 || read(out[0], &reader, sizeof reader) != sizeof reader)
    reader = -1;
  close(out[0]);
  int st = 1;
  if (w > 0)
    waitpid(w, &st, 0);
  if (st != 0 && reader > 0) {
    kill(reader, SIGKILL);
    waitpid(reader, NULL, 0);
    reader = -1;
  }
  return reader;
}

static uint32_t detections(struct bm *b) {
  const struct uk_interos *io;
  if (mach_interos(&b->m, &io) < 0)
    return 0;
  uint32_t n = io->det_count;
  mach_interos_unmap(io);
  return n;
}

/* One fault at one interval, in a fresh machine. */
static int detect(int fault, unsigned interval, struct finding *f) {
  struct bm b;
  pid_t reader = -1;
  memset(f, 0, sizeof *f);
  if (bm_boot(&b, interval) < 0)
    return -1;
  usleep((interval + 300) * 1000); /* the monitor has read a view */
  int r;
  if (fault_kinds[fault] == UKSIM__FAULT__KIND__STALL_DRIVER)
    r = reader = stall_actors(&b);
  else if ((r = workload(&b, "1000000", "2000", false)) >= 0) {
    usleep(200 * 1000);
    r = mach_fault_arg(&b.m, fault_kinds[fault], 0, fault == 0 ? "svc" : NULL);
  }
  if (r >= 0)
    await_finding(&b, fault_ops[fault], BM_FIND_MS + 3 * (int)interval, f);
  f->heartbeat = detections(&b) > 0;
  if (reader > 0) {
    kill(reader, SIGKILL);
    waitpid(reader, NULL, 0); /* ECHILD: w's child, reaped elsewhere */
  }
  bm_halt(&b);
  return r < 0 ? -1 : 0;
}

struct results {
  double cpu[BM_INTERVALS], slowdown[BM_INTERVALS], base_ms;
  struct finding find[BM_FAULTS][BM_INTERVALS];
};

static int measure_cost(struct results *res, int rounds) {
  double base_ms[BM_ROUNDS_MAX * BM_INTERVALS],
      base_cpu[BM_ROUNDS_MAX * BM_INTERVALS];
  double ms[BM_INTERVALS][BM_ROUNDS_MAX], cpu[BM_INTERVALS][BM_ROUNDS_MAX];
  int nb = 0;
  for (int r = 0; r < rounds; r++)
    for (int i = 0; i < BM_INTERVALS; i++) {
      if (cost_round(intervals[i], &ms[i][r], &cpu[i][r]) < 0 ||
          cost_round(0, &base_ms[nb], &base_cpu[nb]) < 0)
        return -1;
      nb++;
    }
  res->base_ms = stats_median(base_ms, (size_t)nb);
  double bcpu = stats_median(base_cpu, (size_t)nb);
  for (int i = 0; i < BM_INTERVALS; i++) {
    res->cpu[i] = stats_median(cpu[i], (size_t)rounds) - bcpu;
    res->slowdown[i] =
        (stats_median(ms[i], (size_t)rounds) / res->base_ms - 1) * 100;
  }
  return 0;
}

static bool found_everywhere(const struct results *res, int f) {
  for (int i = 0; i < BM_INTERVALS; i++)
    if (!res->find[f][i].found)
      return false;
  return true;
}

static bool heartbeat_any(const struct results *res, int f) {
  for (int i = 0; i < BM_INTERVALS; i++)
    if (res->find[f][i].heartbeat)
      return true;
  return false;
}

static void print_json(const struct results *res) {
  printf("{\"base_workload_ms\": %.1f", res->base_ms);
  for (int i = 0; i < BM_INTERVALS; i++)
    printf(", \"monitor_%ums_cpu_pct\": %.2f, \"slowdown_%ums_pct\": %.2f",
           intervals[i], res->cpu[i], intervals[i], res->slowdown[i]);
  for (int f = 0; f < BM_FAULTS; f++) {
    printf(", \"detected_%s\": %s, \"heartbeat_%s\": %s", fault_names[f],
           found_everywhere(res, f) ? "true" : "false", fault_names[f],
           heartbeat_any(res, f) ? "true" : "false");
    for (int i = 0; i < BM_INTERVALS; i++) {
      const struct finding *x = &res->find[f][i];
      if (x->found)
        printf(", \"latency_%s_%ums_ms\": %.1f", fault_names[f], intervals[i],
               x->latency_ms);
      if (x->found && f == 1)
        printf(", \"free_ica_mib_runaway_%ums\": %ld", intervals[i],
               x->free_mib);
      if (x->found && f == 2)
        printf(", \"blocked_stalled_driver_%ums\": %ld", intervals[i],
               x->blocked);
    }
  }
  printf("}\n");
}

static void print_text(const struct results *res) {
  printf("workload (kvsload --count %s) without a monitor: %.1f ms\n\n",
         BM_WORK, res->base_ms);
  printf("interval  monitor cpu %%  slowdown %%  latency ms: deadlock  "
         "runaway (free MiB)  stalled (blocked)\n");
  for (int i = 0; i < BM_INTERVALS; i++) {
    const struct finding *d = &res->find[0][i], *r = &res->find[1][i],
                         *s = &res->find[2][i];
    printf("%5u ms  %12.2f  %10.2f  %19.1f  %7.1f (%ld)  %14.1f (%ld)\n",
           intervals[i], res->cpu[i], res->slowdown[i],
           d->found ? d->latency_ms : -1, r->found ? r->latency_ms : -1,
           r->free_mib, s->found ? s->latency_ms : -1, s->blocked);
  }
  for (int f = 0; f < BM_FAULTS; f++)
    printf("%s: found at every interval: %s; by the heartbeat: %s\n",
           fault_names[f], found_everywhere(res, f) ? "yes" : "no",
           heartbeat_any(res, f) ? "yes" : "no");
  printf("(-1: not found.  Seed 003's monitor: 76.6 %% at 1 ms, 48.3 %% at "
         "10 ms, 0.1 %% at 100 ms.)\n");
}

int bench_monitor_main(int argc, char **argv) {
  static const struct option opts[] = {{"json", no_argument, 0, 'j'},
                                       {"rounds", required_argument, 0, 'r'},
                                       {0, 0, 0, 0}};
  bool json = false;
  int rounds = 3, c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (c == 'j')
      json = true;
    else if (c == 'r' && atoi(optarg) >= 1 && atoi(optarg) <= BM_ROUNDS_MAX)
      rounds = atoi(optarg);
    else {
      fprintf(stderr, "usage: uksim bench monitor [--json] [--rounds N "
                      "(1..9, default 3)]\n");
      return 2;
    }
  }
  static struct results res;
  if (measure_cost(&res, rounds) < 0) {
    fprintf(stderr, "uksim bench monitor: a cost round failed\n");
    return 1;
  }
  for (int f = 0; f < BM_FAULTS; f++)
    for (int i = 0; i < BM_INTERVALS; i++)
      if (detect(f, intervals[i], &res.find[f][i]) < 0) {
        fprintf(stderr, "uksim bench monitor: %s at %u ms could not run\n",
                fault_names[f], intervals[i]);
        return 1;
      }
  if (json)
    print_json(&res);
  else
    print_text(&res);
  return 0;
}
