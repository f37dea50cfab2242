/* uksim bench monitor: the seed-003 monitor's cost and its detections
 * (issue 15; seed 003 §4 measured the monitor's cpu at 1, 10, 100 and
 * 1000 ms: 76.6 %, 48.3 %, 0.1 % and 0.0 % of the time at its highest
 * frequency).
 *
 * Cost, per interval, in windows of one run: a machine whose backup
 * monitors every interval ms runs an endless lock-step workload (kvs and
 * a kvsload sending as fast as it is answered); the monitor is paused
 * and resumed (KMON_PAUSE_SIGNAL) at every window, on and off in turn,
 * which of the two comes first swapped at every pair; so the baseline
 * is the same machine at the same moment with a backup that only
 * watches the heartbeat.  A pair gives
 *   the rate of answers (the kernel's counter) off over on, and
 *   the backup kernel's cpu time (/proc/PID/schedstat) on less off, over
 *   the window: the monitor's share of one core;
 * and each figure is the median over the pairs:
 *   monitor_<I>ms_cpu_pct, slowdown_<I>ms_pct (the rate ratio - 1);
 *   slowdown_<I>ms_iqr_pct  the pairs' interquartile range: the noise the
 *                           median is read against;
 *   cost_pairs_<I>ms, base_rate_per_s (the off windows' median rate).
 * Windows are BM_WINDOW_MS long, or two intervals when that is longer
 * (each on window then holds a read); a run whose windows and pairs
 * are fixed by --rounds.  The machine has two cores, one per OS (bm_boot
 * says why).
 *
 * Detections, per fault and interval: a fresh machine (policy report),
 * the workload running (for the stalled driver, a reader blocked on a
 * pipe and a writer), the fault injected through the machine (uksim
 * fault's path), then the backup's trace read for its "monitor" event:
 * Each is run --rounds times, and each figure is the median of the
 * rounds that found the fault:
 *   latency_<fault>_<I>ms_ms    from the machine's fault stamp;
 *   free_ica_mib_runaway_<I>ms  ICA budget left at the runaway's finding;
 *   blocked_stalled_driver_<I>ms readers blocked with data at the finding
 *                               (BM_READERS readers, one more given its
 *                               data every BM_READER_STEP_MS: they pile
 *                               up as the interval grows);
 *   wait_stalled_driver_<I>ms_ms the longest any of them had waited;
 *   detected_<fault>            found at every interval, in every round;
 *   heartbeat_<fault>           the heartbeat, beside the monitor,
 *                               declared the active dead in a round (it
 *                               should not: the loop lives on).
 *
 * The Orthros baseline alone, once per fault: a machine with no monitor,
 * the fault, BM_HB_WAIT_MS for the heartbeat or the panic notice:
 *   heartbeat_detects_<fault>   it declared the active dead (false for
 *                               the in-kernel faults), with the controls
 *                               hang and crash, which it is made for, so
 *                               that the comparison is fair;
 *   heartbeat_latency_<fault>_ms when it did, from the fault stamp.
 */
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
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

#define BM_ENDLESS "1000000000" /* the cost workload's count: never reached */
#define BM_WINDOW_MS 100
/* Cost pairs per --rounds: at a short interval, and at 1000 ms. */
#define BM_COST_PAIRS 10
#define BM_COST_PAIRS_LONG 2
#define BM_PAIRS_MAX (BM_ROUNDS_MAX * BM_COST_PAIRS)
#define BM_FIND_MS 8000 /* patience for a finding, beyond the interval */
#define BM_INTERVALS 4
#define BM_FAULTS 3
#define BM_HB_FAULTS 5
/* The heartbeat alone has this long to find a fault: 10 timeouts. */
#define BM_HB_WAIT_MS 3000
#define BM_ROUNDS_MAX 9
/* The stalled driver's readers, one given its data every this many ms
 * once the fault is in: those blocked at the finding grow with the
 * interval (seed 003's "blocked processes at detection"). */
#define BM_READERS 10
#define BM_READER_STEP_MS 60

static const unsigned intervals[BM_INTERVALS] = {1, 10, 100, 1000};
/* The in-kernel faults (BM_FAULTS), then the controls the heartbeat is
 * made for (BM_HB_FAULTS in all), run without a monitor only. */
static const char *const fault_names[BM_HB_FAULTS] = {
    "deadlock", "runaway", "stalled_driver", "hang", "crash"};
static const char *const fault_ops[BM_FAULTS] = {"deadlock", "runaway",
                                                 "stalled-driver"};
static const int fault_kinds[BM_HB_FAULTS] = {
    UKSIM__FAULT__KIND__DEADLOCK, UKSIM__FAULT__KIND__RUNAWAY,
    UKSIM__FAULT__KIND__STALL_DRIVER, UKSIM__FAULT__KIND__HANG,
    UKSIM__FAULT__KIND__CRASH};

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
  /* Two cores, one per OS, as in the report (an OS instance per core
   * set): the workload and the active kernel share host cpu 0, the
   * backup and its monitor have cpu 1.  With the default 4 the active's
   * processes would float over both cpus and land on the same or on
   * different ones at each boot (a wake-up costs 10-15 us or ~65 us),
   * a difference between rounds larger than the monitor's cost. */
  o.cores = 2;
  o.poll_us = 0; /* on one cpu, a process spinning for its answer only
                  * keeps the kernel that would give it from running */
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

static uint64_t answered(const struct uk_kdata *kd) {
  return __atomic_load_n(&kd->ctr.results, __ATOMIC_RELAXED);
}

static unsigned window_ms(unsigned interval) {
  return 2 * interval > BM_WINDOW_MS ? 2 * interval : BM_WINDOW_MS;
}

/* One window with the monitor on or off: the answers per second and the
 * backup's cpu share in it. */
static void window(struct bm *b, const struct uk_kdata *kd, unsigned ms,
                   double *rate, double *cpu_pct) {
  uint64_t n0 = answered(kd), c0 = cpu_ns(b->backup_pid);
  double t0 = now_ms();
  usleep(ms * 1000);
  uint64_t n1 = answered(kd), c1 = cpu_ns(b->backup_pid);
  double t1 = now_ms();
  *rate = (double)(n1 - n0) * 1000 / (t1 - t0);
  *cpu_pct = (double)(c1 - c0) / 1e6 / (t1 - t0) * 100;
}

/* The cost pairs of one interval (see the top): slow[p] the rate off
 * over on, cpu[p] the cpu share on less off, base[p] the rate off. */
static int cost_pairs(unsigned interval, int pairs, double *slow, double *cpu,
                      double *base) {
  struct bm b;
  const struct uk_kdata *kd = NULL;
  if (bm_boot(&b, interval) < 0)
    return -1;
  int r = workload(&b, BM_ENDLESS, "0", false) < 0 ? -1 : 0;
  if (r == 0 && mach_kdata(&b.m, &kd, NULL) < 0)
    r = -1;
  usleep(300 * 1000); /* the monitor maps the active's region */
  bool on = true;     /* as it boots */
  for (int p = 0; r == 0 && p < pairs; p++) {
    double rate[2], share[2]; /* [1]: monitor on */
    for (int h = 0; h < 2 && r == 0; h++) {
      bool want = (h == 0) == (p % 2 == 0);
      if (want != on && kill(b.backup_pid, KMON_PAUSE_SIGNAL) < 0)
        r = -1;
      on = want;
      window(&b, kd, window_ms(interval), &rate[want], &share[want]);
    }
    slow[p] = rate[1] > 0 ? rate[0] / rate[1] : 0;
    cpu[p] = share[1] - share[0];
    base[p] = rate[0];
    if (rate[0] <= 0 || rate[1] <= 0)
      r = -1; /* the workload stopped */
  }
  if (kd)
    mach_kdata_unmap(kd);
  bm_halt(&b);
  return r;
}

struct finding {
  bool found, heartbeat;
  double latency_ms, wait_ms;
  long free_mib, blocked;
};

/* The number in line just before s ("412 MiB of": 412), or -1. */
static long number_before(const char *line, const char *s) {
  if (s == NULL)
    return -1;
  while (s > line && s[-1] >= '0' && s[-1] <= '9')
    s--;
  return atol(s);
}

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
        const char *w = strstr(line, "the longest waiting ");
        f->found = true;
        f->latency_ms = s ? atof(s + 9) / 1000 : -1;
        f->blocked = q ? atol(q + 6) : 0;
        f->free_mib = number_before(line, strstr(line, " MiB of "));
        f->wait_ms = w ? atof(w + 20) : -1;
        fclose(fp);
        return true;
      }
    if (fp)
      fclose(fp);
  }
  return false;
}

/* Reader i of the stalled driver's workload, in a child attached as
 * slot rslot (fd rfd): binds a pipe of its own on /n, opens its data end,
 * says so on sync, then reads until the end, re-reading after each chunk;
 * once the fault is in, the read after its data came never returns. */
static void stall_reader(int rfd, int sync) {
  char v[16], buf[8];
  snprintf(v, sizeof v, "%d", rfd);
  setenv("UKSIM_FD", v, 1);
  int fd =
      ns_bind("#|", "/n", NS_MREPL) < 0 ? -1 : ns_open("/n/data", NS_OREAD);
  if (fd < 0 || write(sync, "o", 1) != 1)
    _exit(1);
  while (ns_read(fd, buf, sizeof buf) > 0)
    ;
  _exit(0);
}

/* A writer in reader rslot's namespace: one record to its pipe. */
static int stall_write(mach_client *m, int rslot) {
  int wslot, wfd, st = 1;
  char v[16];
  if (mach_attach(m, "writer", rslot, 0, &wslot, &wfd) < 0)
    return -1;
  pid_t c = fork();
  if (c == 0) {
    snprintf(v, sizeof v, "%d", wfd);
    setenv("UKSIM_FD", v, 1);
    int fd = ns_open("/n/data1", NS_OWRITE);
    _exit(fd >= 0 && ns_write(fd, "stuck", 5) == 5 ? 0 : 1);
  }
  close(wfd);
  return c > 0 && waitpid(c, &st, 0) == c && st == 0 ? 0 : -1;
}

/* In child w: BM_READERS readers blocked on their empty pipes (their pids
 * to out), the fault, then a writer to each pipe in turn, BM_READER_STEP_MS
 * apart, so that the readers blocked with data pile up while the monitor
 * looks.  w's exit status: 0 when all went in. */
static void stall_workload(const char *machine, int out) {
  mach_client m;
  int rslot[BM_READERS], rfd, sync[2];
  char o;
  if (mach_connect(&m, machine) < 0 || pipe(sync) < 0)
    _exit(1);
  for (int i = 0; i < BM_READERS; i++) {
    if (mach_attach(&m, "reader", -1, 0, &rslot[i], &rfd) < 0)
      _exit(1);
    pid_t c = fork();
    if (c == 0)
      stall_reader(rfd, sync[1]);
    close(rfd);
    if (c < 0 || read(sync[0], &o, 1) != 1 ||
        write(out, &c, sizeof c) != sizeof c)
      _exit(1);
  }
  close(out);
  usleep(100 * 1000); /* they wait in their reads */
  if (mach_fault(&m, UKSIM__FAULT__KIND__STALL_DRIVER, 0) < 0)
    _exit(1);
  for (int i = 0; i < BM_READERS; i++) {
    if (stall_write(&m, rslot[i]) < 0)
      _exit(1);
    usleep(BM_READER_STEP_MS * 1000);
  }
  _exit(0);
}

/* Starts the stalled driver's workload (stall_workload) in a child of
 * its own: libuksim's connection is one per process and life.  Fills
 * readers[BM_READERS]; returns the child's pid, or -1. */
static pid_t stall_actors(struct bm *b, pid_t *readers) {
  int out[2];
  if (pipe(out) < 0)
    return -1;
  pid_t w = fork();
  if (w == 0) {
    close(out[0]);
    stall_workload(b->name, out[1]);
  }
  close(out[1]);
  int n = 0;
  while (w > 0 && n < BM_READERS &&
         read(out[0], &readers[n], sizeof *readers) == sizeof *readers)
    n++;
  close(out[0]);
  if (n == BM_READERS)
    return w;
  for (int i = 0; i < n; i++)
    kill(readers[i], SIGKILL);
  if (w > 0)
    waitpid(w, NULL, 0);
  return -1;
}

/* Ends the stalled driver's workload: w, once it has given every reader
 * its data, then the readers (w's children, left to init to reap). */
static int stall_end(pid_t w, const pid_t *readers) {
  int st = 1;
  pid_t r = waitpid(w, &st, 0);
  for (int i = 0; i < BM_READERS; i++)
    kill(readers[i], SIGKILL);
  return r == w && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static uint32_t detections(struct bm *b) {
  const struct uk_interos *io;
  if (mach_interos(&b->m, &io) < 0)
    return 0;
  uint32_t n = io->det_count;
  mach_interos_unmap(io);
  return n;
}

/* A running fault's workload: for the stalled driver, its actors (w,
 * readers); for the others, kvs and its load. */
struct inject {
  pid_t w, readers[BM_READERS];
};

/* Starts fault (an index of fault_kinds) with its workload in b: 0, or -1
 * when it could not. */
static int inject(struct bm *b, int fault, struct inject *in) {
  in->w = -1;
  if (fault_kinds[fault] == UKSIM__FAULT__KIND__STALL_DRIVER)
    return (in->w = stall_actors(b, in->readers)) > 0 ? 0 : -1;
  if (workload(b, "1000000", "2000", false) < 0)
    return -1;
  usleep(200 * 1000);
  return mach_fault_arg(
      &b->m, fault_kinds[fault], 0,
      fault_kinds[fault] == UKSIM__FAULT__KIND__DEADLOCK ? "svc" : NULL);
}

static int inject_end(struct inject *in) {
  return in->w > 0 ? stall_end(in->w, in->readers) : 0;
}

/* One fault at one interval, in a fresh machine. */
static int detect(int fault, unsigned interval, struct finding *f) {
  struct bm b;
  struct inject in;
  memset(f, 0, sizeof *f);
  if (bm_boot(&b, interval) < 0)
    return -1;
  usleep((interval + 300) * 1000); /* the monitor has read a view */
  int r = inject(&b, fault, &in);
  if (r >= 0)
    await_finding(&b, fault_ops[fault], BM_FIND_MS + 3 * (int)interval, f);
  f->heartbeat = detections(&b) > 0;
  if (inject_end(&in) < 0)
    r = -1;
  bm_halt(&b);
  return r < 0 ? -1 : 0;
}

/* The Orthros baseline alone: fault (an index of fault_kinds, the
 * in-kernel ones and the controls) in a machine with no monitor, then
 * BM_HB_WAIT_MS for the heartbeat or the panic notice to find it.
 * *latency_ms: the detection's, from the machine's fault stamp. */
static int heartbeat_alone(int fault, bool *found, double *latency_ms) {
  struct bm b;
  struct inject in;
  *found = false;
  *latency_ms = -1;
  if (bm_boot(&b, 0) < 0)
    return -1;
  usleep(300 * 1000); /* the backup sees heartbeats */
  int r = inject(&b, fault, &in);
  const struct uk_interos *io;
  if (r >= 0 && mach_interos(&b.m, &io) == 0) {
    for (double end = now_ms() + BM_HB_WAIT_MS;
         io->det_count == 0 && now_ms() < end;)
      usleep(10 * 1000);
    *found = io->det_count > 0;
    if (*found)
      *latency_ms = (double)io->det_since_fault_ns / 1e6;
    mach_interos_unmap(io);
  }
  if (inject_end(&in) < 0)
    r = -1;
  bm_halt(&b);
  return r < 0 ? -1 : 0;
}

struct results {
  double cpu[BM_INTERVALS], slowdown[BM_INTERVALS], slowdown_iqr[BM_INTERVALS];
  int pairs[BM_INTERVALS];
  double base_rate; /* answers per second, monitor off */
  /* Per fault and interval: the median of the rounds; found when found
   * in every round, the heartbeat when it struck in any. */
  struct finding find[BM_FAULTS][BM_INTERVALS];
  bool hb_found[BM_HB_FAULTS];
  double hb_latency_ms[BM_HB_FAULTS];
};

/* The median over rounds of what the finding[0..n) found. */
static void median_finding(struct finding *x, const struct finding *r, int n) {
  double lat[BM_ROUNDS_MAX], wait[BM_ROUNDS_MAX], mib[BM_ROUNDS_MAX],
      blocked[BM_ROUNDS_MAX];
  size_t k = 0;
  memset(x, 0, sizeof *x);
  x->found = true;
  for (int i = 0; i < n; i++) {
    x->heartbeat |= r[i].heartbeat;
    if (!r[i].found) {
      x->found = false;
      continue;
    }
    lat[k] = r[i].latency_ms;
    wait[k] = r[i].wait_ms;
    mib[k] = (double)r[i].free_mib;
    blocked[k++] = (double)r[i].blocked;
  }
  if (k == 0)
    return;
  x->latency_ms = stats_median(lat, k);
  x->wait_ms = stats_median(wait, k);
  x->free_mib = (long)stats_median(mib, k);
  x->blocked = (long)stats_median(blocked, k);
}

/* Each fault at each interval, rounds times, interleaved. */
static int measure_detection(struct results *res, int rounds) {
  static struct finding r[BM_FAULTS][BM_INTERVALS][BM_ROUNDS_MAX];
  for (int k = 0; k < rounds; k++)
    for (int f = 0; f < BM_FAULTS; f++)
      for (int i = 0; i < BM_INTERVALS; i++)
        if (detect(f, intervals[i], &r[f][i][k]) < 0) {
          fprintf(stderr, "uksim bench monitor: %s at %u ms could not run\n",
                  fault_names[f], intervals[i]);
          return -1;
        }
  for (int f = 0; f < BM_FAULTS; f++)
    for (int i = 0; i < BM_INTERVALS; i++)
      median_finding(&res->find[f][i], r[f][i], rounds);
  for (int f = 0; f < BM_HB_FAULTS; f++)
    if (heartbeat_alone(f, &res->hb_found[f], &res->hb_latency_ms[f]) < 0) {
      fprintf(stderr,
              "uksim bench monitor: %s without a monitor could not "
              "run\n",
              fault_names[f]);
      return -1;
    }
  return 0;
}

static int measure_cost(struct results *res, int rounds) {
  static double slow[BM_PAIRS_MAX], cpu[BM_PAIRS_MAX],
      base[BM_INTERVALS * BM_PAIRS_MAX];
  int nb = 0;
  for (int i = 0; i < BM_INTERVALS; i++) {
    int pairs =
        rounds * (intervals[i] >= 1000 ? BM_COST_PAIRS_LONG : BM_COST_PAIRS);
    if (cost_pairs(intervals[i], pairs, slow, cpu, base + nb) < 0) {
      fprintf(stderr, "uksim bench monitor: the workload at %u ms stopped\n",
              intervals[i]);
      return -1;
    }
    nb += pairs;
    res->pairs[i] = pairs;
    res->cpu[i] = stats_median(cpu, (size_t)pairs);
    res->slowdown[i] = (stats_median(slow, (size_t)pairs) - 1) * 100;
    res->slowdown_iqr[i] = (stats_pct(slow, (size_t)pairs, 0.75) -
                            stats_pct(slow, (size_t)pairs, 0.25)) *
                           100;
  }
  res->base_rate = stats_median(base, (size_t)nb);
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
  printf("{\"base_rate_per_s\": %.0f", res->base_rate);
  for (int i = 0; i < BM_INTERVALS; i++)
    printf(", \"monitor_%ums_cpu_pct\": %.2f, \"slowdown_%ums_pct\": %.2f, "
           "\"slowdown_%ums_iqr_pct\": %.2f, \"cost_pairs_%ums\": %d",
           intervals[i], res->cpu[i], intervals[i], res->slowdown[i],
           intervals[i], res->slowdown_iqr[i], intervals[i], res->pairs[i]);
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
        printf(", \"blocked_stalled_driver_%ums\": %ld, "
               "\"wait_stalled_driver_%ums_ms\": %.1f",
               intervals[i], x->blocked, intervals[i], x->wait_ms);
    }
  }
  for (int f = 0; f < BM_HB_FAULTS; f++) {
    printf(", \"heartbeat_detects_%s\": %s", fault_names[f],
           res->hb_found[f] ? "true" : "false");
    if (res->hb_found[f])
      printf(", \"heartbeat_latency_%s_ms\": %.1f", fault_names[f],
             res->hb_latency_ms[f]);
  }
  printf("}\n");
}

static void print_text(const struct results *res) {
  printf("lock-step workload (kvsload) with the monitor off: %.0f answers/s "
         "(the median of its windows)\n\n",
         res->base_rate);
  printf("interval  monitor cpu %%  slowdown %% (iqr, pairs)  latency ms: "
         "deadlock  runaway (free MiB)  stalled (blocked, longest wait ms)\n");
  for (int i = 0; i < BM_INTERVALS; i++) {
    const struct finding *d = &res->find[0][i], *r = &res->find[1][i],
                         *s = &res->find[2][i];
    printf("%5u ms  %12.2f  %10.2f (%.2f, %d)  %19.1f  %7.1f (%ld)  %14.1f "
           "(%ld, %.1f)\n",
           intervals[i], res->cpu[i], res->slowdown[i], res->slowdown_iqr[i],
           res->pairs[i], d->found ? d->latency_ms : -1,
           r->found ? r->latency_ms : -1, r->free_mib,
           s->found ? s->latency_ms : -1, s->blocked, s->wait_ms);
  }
  for (int f = 0; f < BM_FAULTS; f++)
    printf("%s: found at every interval: %s; by the heartbeat beside it: "
           "%s\n",
           fault_names[f], found_everywhere(res, f) ? "yes" : "no",
           heartbeat_any(res, f) ? "yes" : "no");
  printf("\nthe heartbeat alone (no monitor), given %d ms after the fault:\n",
         BM_HB_WAIT_MS);
  for (int f = 0; f < BM_HB_FAULTS; f++)
    if (res->hb_found[f])
      printf("  %-15s found, %.1f ms after the fault\n", fault_names[f],
             res->hb_latency_ms[f]);
    else
      printf("  %-15s missed\n", fault_names[f]);
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
  if (measure_detection(&res, rounds) < 0)
    return 1;
  if (json)
    print_json(&res);
  else
    print_text(&res);
  return 0;
}
