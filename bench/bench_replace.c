/* uksim bench replace: what a live replacement of the kvs server costs, for
 * each state-save method (single, chain, copy) across state sizes.
 *
 * One run per (method, size), each on a freshly booted machine:
 *   1. kvs starts with --state METHOD and room for the state;
 *   2. replload --fill stores SIZE bytes of values in it (keys of at most
 *      64 KiB), so copy really has SIZE bytes to serialize;
 *   3. LOADS replload --load processes put and get continuously, checking
 *      every answer and timing every request;
 *   4. kvs is replaced by kvs (same method) while they run, --repeat
 *      times (100 ms apart);
 *   5. the loads stop, replload --verify checks every filled byte, the
 *      machine halts, and the kernel's event trace is checked for the
 *      exactly-one-answer invariant.
 *
 * What is measured (README "Benchmarks" says the same); times are the
 * median over the run's swaps, counts and memory the most of any swap:
 *   downtime_ms   the longest latency of any load request in flight at some
 *                 moment between the flag and the commit: what a client
 *                 waits at worst because of the swap.  The JSON's
 *                 <method>_<size>_ms keys are this figure (max_downtime_ms:
 *                 the worst swap).
 *   serving_ms    flag to commit in the kernel's trace: from the flag being
 *                 set until the successor serves; split into start (flag to
 *                 the successor's register), save (the old server's hook)
 *                 and restore (the successor's state_get to its first
 *                 receive).
 *   attaches      ICAs handed to the successor by state_get and ica_attach
 *   detaches      ICAs taken from the old server at the commit (re-linked
 *                 to the successor, or freed)
 *   ica_mib       ICA bytes allocated after the swap; ica_peak_mib the most
 *                 at once from the flag to just after the commit (sizes of
 *                 live ICAs, which are memfds: sparse, shared by whoever
 *                 maps them, so counted once)
 *   old_anon_mib, new_anon_mib
 *                 private resident memory (RssAnon) of the old server just
 *                 before the flag and of the successor just after the
 *                 commit: copy's heap store lives there
 *   mem_peak_mib  old_anon + ica_peak + new_anon: what the swap needs at
 *                 its height (the old server lives until after the commit)
 *   lost          requests the kernel had not answered 10 s after the load
 *                 stopped; errors: answers a load or --verify found wrong
 */
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "machine.h"
#include "trace_check.h"
#include "stats.h"
#include "uksim/num.h"
#include "uksim/xalloc.h"

#define LOADS 4
#define VALUE_MAX (64ull << 10)
#define LOST_AFTER_MS 10000
#define NMETHODS 3
#define SIZES_MAX 16
#define REPEAT_MAX 9

static const char *const methods[NMETHODS] = {"single", "chain", "copy"};

struct br_opts {
  bool json, quick;
  const char *csv, *plot;
  uint64_t sizes[SIZES_MAX];
  int nsizes;
  int repeat; /* swaps per run */
};

/* One replacement. */
struct br_swap {
  double downtime_ms, serving_ms, start_ms, save_ms, restore_ms, replace_ms;
  double ica_mib, ica_peak_mib, old_anon_mib, new_anon_mib;
  uint64_t attaches, detaches, in_swap;
  /* CLOCK_MONOTONIC ns, the clock of the loads' samples. */
  uint64_t flag_ns, commit_ns;
};

/* One (method, size): its swaps and what they sum up to. */
struct br_run {
  const char *method;
  uint64_t size, value_size, keys, state_size;
  struct br_swap sw[REPEAT_MAX];
  int nswaps;
  double downtime_ms, serving_ms, start_ms, save_ms, restore_ms, replace_ms;
  double max_downtime_ms;
  double ica_mib, ica_peak_mib, old_anon_mib, new_anon_mib, mem_peak_mib;
  double base_p50_us;
  uint64_t attaches, detaches, requests, in_swap, lost, errors, leaked;
  bool exactly_once, ok;
  uint64_t boot_ns; /* the kernel's; trace times count from it */
};

/* A machine and the processes of one run. */
struct br_ctx {
  mach_client m;
  const struct uk_kdata *kd;
  char trace[256];
  char out[LOADS][128];
  int load_proc[LOADS];
  int64_t load_wait[LOADS];
};

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, ms % 1000 * 1000000};
  nanosleep(&ts, NULL);
}

/* "4k", "256m": the size as the JSON keys name it. */
static const char *size_label(uint64_t b, char *buf, size_t len) {
  if (b >= 1 << 20 && b % (1 << 20) == 0)
    snprintf(buf, len, "%llum", (unsigned long long)(b >> 20));
  else if (b >= 1 << 10 && b % (1 << 10) == 0)
    snprintf(buf, len, "%lluk", (unsigned long long)(b >> 10));
  else
    snprintf(buf, len, "%llu", (unsigned long long)b);
  return buf;
}

static void plan(struct br_run *r, const char *method, uint64_t size) {
  memset(r, 0, sizeof *r);
  r->method = method;
  r->size = size;
  r->value_size = size / 16 < VALUE_MAX ? size / 16 : VALUE_MAX;
  if (r->value_size == 0)
    r->value_size = size;
  r->keys = (size + r->value_size - 1) / r->value_size;
  /* Room for the index, the records' headers, the load's keys and chain's
   * master and 1 MiB segments. */
  r->state_size = size + size / 4 + (4 << 20);
}

/* Setup -------------------------------------------------------------------
 */

static int boot(struct br_ctx *c, int n) {
  struct mach_opts o;
  mach_opts_default(&o);
  snprintf(o.name, sizeof o.name, "bench-repl-%d-%d", (int)getpid(), n);
  snprintf(c->trace, sizeof c->trace, "/tmp/uksim-bench-replace-%d-%d.jsonl",
           (int)getpid(), n);
  snprintf(o.trace_file, sizeof o.trace_file, "%s", c->trace);
  return mach_boot(&c->m, &o);
}

static struct mach_prog kvs_prog(const struct br_run *r, char *args[4],
                                 char *ssize, size_t len) {
  snprintf(ssize, len, "%llu", (unsigned long long)r->state_size);
  args[0] = "--state";
  args[1] = (char *)r->method;
  args[2] = "--state-size";
  args[3] = ssize;
  return (struct mach_prog){
      .program = "kvs", .args = args, .nargs = 4, .name = "kvs"};
}

/* Starts kvs, then maps the kernel data: only a running kernel has sized
 * the region (mapping it earlier can fault). */
static int start_kvs(struct br_ctx *c, struct br_run *r) {
  char *args[4], ssize[32];
  struct mach_prog p = kvs_prog(r, args, ssize, sizeof ssize);
  p.flags = MACH_SPAWN_REGISTERED;
  int e = mach_spawn_prog(&c->m, &p, NULL);
  if (e == 0)
    e = mach_kdata(&c->m, &c->kd, NULL);
  if (e == 0)
    r->boot_ns = c->kd->hdr.boot_ns;
  return e;
}

/* Runs replload with args to its end; 0 if it exited 0. */
static int run_replload(struct br_ctx *c, char **args, size_t n) {
  int proc, st = -1, sig = 0;
  int e = mach_spawn(&c->m, "replload", args, n, "replload",
                     MACH_SPAWN_WAITABLE, &proc);
  int64_t w = e < 0 ? e : mach_wait_send(&c->m, proc);
  if (w < 0)
    return (int)w;
  e = mach_wait_reply(&c->m, (uint64_t)w, &st, &sig);
  return e < 0 ? e : st || sig ? -EPROTO : 0;
}

/* --fill or --verify the run's SIZE bytes. */
static int fill_or_verify(struct br_ctx *c, const struct br_run *r,
                          bool verify) {
  char bytes[32], vs[32];
  snprintf(bytes, sizeof bytes, "%llu", (unsigned long long)r->size);
  snprintf(vs, sizeof vs, "%llu", (unsigned long long)r->value_size);
  char *args[] = {verify ? "--verify" : "--fill",
                  bytes,
                  "--value-size",
                  vs,
                  "--name",
                  "fill"};
  return run_replload(c, args, 6);
}

static int start_loads(struct br_ctx *c) {
  for (int i = 0; i < LOADS; i++) {
    char name[16];
    snprintf(name, sizeof name, "load%d", i);
    snprintf(c->out[i], sizeof c->out[i], "/tmp/uksim-replload-%d-%d.out",
             (int)getpid(), i);
    char *args[] = {"--load", "--name", name, "--out", c->out[i]};
    int e = mach_spawn(&c->m, "replload", args, 5, name, MACH_SPAWN_WAITABLE,
                       &c->load_proc[i]);
    if (e < 0)
      return e;
    c->load_wait[i] = mach_wait_send(&c->m, c->load_proc[i]);
    if (c->load_wait[i] < 0)
      return (int)c->load_wait[i];
  }
  return 0;
}

/* The swap ----------------------------------------------------------------
 */

/* A process's private resident memory (RssAnon), from /proc.  Not VmRSS:
 * that counts the ICA pages it maps too, which are shared, not extra. */
static double anon_mib(int pid) {
  char path[64], line[256];
  unsigned long long kb = 0;
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE *f = fopen(path, "r");
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "RssAnon: %llu kB", &kb) == 1)
      break;
  if (f)
    fclose(f);
  return (double)kb / 1024.0;
}

/* The private memory of the process serving kvs. */
static double server_anon_mib(const struct uk_kdata *kd) {
  for (int s = 0; s < UK_SVC_MAX; s++)
    if (kd->svc[s].state == UK_SVC_UP && !strcmp(kd->svc[s].name, "kvs") &&
        kd->svc[s].proc < UK_PROC_MAX)
      return anon_mib(kd->proc[kd->svc[s].proc].pid);
  return 0;
}

/* Replaces kvs by kvs of the same method, reading the counters around. */
static int swap(struct br_ctx *c, const struct br_run *r, struct br_swap *w) {
  char *args[4], ssize[32];
  struct mach_prog p = kvs_prog(r, args, ssize, sizeof ssize);
  uint64_t att = c->kd->ctr.ica_attaches, det = c->kd->ctr.ica_detaches;
  w->old_anon_mib = server_anon_mib(c->kd);
  uint64_t t0 = stats_now_ns();
  int64_t id = mach_replace_send(&c->m, "kvs", &p, 60000);
  int proc = -1;
  int e = id < 0 ? (int)id : mach_replace_reply(&c->m, (uint64_t)id, &proc);
  w->replace_ms = (double)(stats_now_ns() - t0) / 1e6;
  if (e < 0)
    return e;
  w->attaches = c->kd->ctr.ica_attaches - att;
  w->detaches = c->kd->ctr.ica_detaches - det;
  w->ica_mib = (double)c->kd->ctr.ica_bytes / (1 << 20);
  w->ica_peak_mib = (double)c->kd->ctr.ica_bytes_peak / (1 << 20);
  w->new_anon_mib = server_anon_mib(c->kd);
  return 0;
}

/* Requests still unanswered for the load processes. */
static uint64_t outstanding(const struct br_ctx *c) {
  uint64_t n = 0;
  for (int i = 0; i < LOADS; i++) {
    const struct uk_proc *pp = &c->kd->proc[c->load_proc[i]];
    if (pp->state == UK_PROC_RUNNING || pp->state == UK_PROC_WAITING)
      n += uk_psched_c(c->kd, c->load_proc[i])->outstanding;
  }
  return n;
}

/* Stops the loads.  A request the kernel lost would keep its client
 * waiting forever: after LOST_AFTER_MS what is still unanswered is lost,
 * and the clients are killed. */
static int stop_loads(struct br_ctx *c, struct br_run *r) {
  int bad = 0;
  for (int i = 0; i < LOADS; i++)
    mach_kill(&c->m, c->load_proc[i], SIGUSR1);
  for (int t = 0; t < LOST_AFTER_MS && outstanding(c); t += 10)
    sleep_ms(10);
  r->lost = outstanding(c);
  for (int i = 0; r->lost && i < LOADS; i++)
    mach_kill(&c->m, c->load_proc[i], SIGKILL);
  for (int i = 0; i < LOADS; i++) {
    int st = -1, sig = 0;
    if (mach_wait_reply(&c->m, (uint64_t)c->load_wait[i], &st, &sig) < 0 ||
        st || sig)
      bad++;
  }
  return bad ? -EPROTO : 0;
}

/* Analysis ----------------------------------------------------------------
 */

/* Times of the kvs events ev in the trace (ns since the kernel's boot), in
 * order, at most max; returns how many.  The trace is ours
 * (sim-kernel/kern.c writes it), so a plain scan does. */
static int event_times(const char *path, const char *ev, uint64_t *t, int max) {
  char line[1024], pat[64];
  unsigned long long v;
  int n = 0;
  snprintf(pat, sizeof pat, "\"ev\":\"%s\"", ev);
  FILE *f = fopen(path, "r");
  while (f && n < max && fgets(line, sizeof line, f)) {
    const char *tp = strstr(line, "\"t\":");
    if (strstr(line, pat) && strstr(line, "\"svc\":\"kvs\"") && tp &&
        sscanf(tp, "\"t\":%llu", &v) == 1)
      t[n++] = v;
  }
  if (f)
    fclose(f);
  return n;
}

/* The kernel's side of each swap: flag, prepare, handoff, commit. */
static void read_trace(const struct br_ctx *c, struct br_run *r) {
  uint64_t t[4][REPEAT_MAX];
  static const char *const ev[4] = {"flag", "prepare", "handoff", "commit"};
  int n = r->nswaps;
  for (int e = 0; e < 4; e++)
    if (event_times(c->trace, ev[e], t[e], REPEAT_MAX) < n)
      n = 0; /* a swap left no trace: no figures rather than wrong ones */
  for (int i = 0; i < n; i++) {
    struct br_swap *w = &r->sw[i];
    w->serving_ms = (double)(t[3][i] - t[0][i]) / 1e6;
    w->start_ms = (double)(t[1][i] - t[0][i]) / 1e6;
    w->save_ms = (double)(t[2][i] - t[1][i]) / 1e6;
    w->restore_ms = (double)(t[3][i] - t[2][i]) / 1e6;
    w->flag_ns = r->boot_ns + t[0][i];
    w->commit_ns = r->boot_ns + t[3][i];
  }
  struct trace_stats st;
  char err[512];
  r->exactly_once = trace_check(c->trace, &st, err, sizeof err) == 0;
  if (!r->exactly_once)
    fprintf(stderr, "uksim bench replace: %s\n", err);
}

/* The swap whose window [flag, commit] the request [t, t + lat] overlaps,
 * or -1. */
static int window(const struct br_run *r, uint64_t t, uint64_t lat) {
  for (int i = 0; i < r->nswaps; i++)
    if (r->sw[i].commit_ns && t <= r->sw[i].commit_ns &&
        t + lat >= r->sw[i].flag_ns)
      return i;
  return -1;
}

/* Reads one load's samples: the worst latency among requests in flight
 * during a swap is that swap's downtime; the others go to base. */
static void read_load(const char *path, struct br_run *r, uint64_t **base,
                      size_t *nbase, size_t *cap) {
  unsigned long long req = 0, err = 0, t, lat;
  FILE *f = fopen(path, "r");
  if (f == NULL || fscanf(f, "requests %llu errors %llu", &req, &err) != 2)
    r->errors++; /* the load did not report: count it against the run */
  r->requests += req;
  r->errors += err;
  while (f && fscanf(f, "%llu %llu", &t, &lat) == 2) {
    int i = window(r, t, lat);
    if (i >= 0) {
      r->sw[i].in_swap++;
      r->sw[i].downtime_ms = fmax(r->sw[i].downtime_ms, (double)lat / 1e6);
      continue;
    }
    if (*nbase == *cap)
      *base =
          xreallocarray(*base, *cap = *cap ? *cap * 2 : 4096, sizeof **base);
    (*base)[(*nbase)++] = lat;
  }
  if (f)
    fclose(f);
  unlink(path);
}

static void read_loads(const struct br_ctx *c, struct br_run *r) {
  uint64_t *base = NULL;
  size_t n = 0, cap = 0;
  for (int i = 0; i < LOADS; i++)
    read_load(c->out[i], r, &base, &n, &cap);
  if (n > 0) {
    stats_sort_u64(base, n);
    r->base_p50_us = (double)base[n / 2] / 1e3;
  }
  free(base);
}

/* The median of one field over the swaps. */
static double median_of(const struct br_run *r, size_t off) {
  double v[REPEAT_MAX];
  for (int i = 0; i < r->nswaps; i++)
    memcpy(&v[i], (const char *)&r->sw[i] + off, sizeof v[i]);
  stats_sort(v, (size_t)r->nswaps);
  return r->nswaps ? v[r->nswaps / 2] : 0;
}

#define MEDIAN(r, f) median_of(r, offsetof(struct br_swap, f))

/* The run's figures: times are the median over its swaps (machine noise
 * hits single swaps), memory the most any swap needed. */
static void summarize(struct br_run *r) {
  r->downtime_ms = MEDIAN(r, downtime_ms);
  r->serving_ms = MEDIAN(r, serving_ms);
  r->start_ms = MEDIAN(r, start_ms);
  r->save_ms = MEDIAN(r, save_ms);
  r->restore_ms = MEDIAN(r, restore_ms);
  r->replace_ms = MEDIAN(r, replace_ms);
  for (int i = 0; i < r->nswaps; i++) {
    const struct br_swap *w = &r->sw[i];
    r->max_downtime_ms = fmax(r->max_downtime_ms, w->downtime_ms);
    r->attaches = w->attaches > r->attaches ? w->attaches : r->attaches;
    r->detaches = w->detaches > r->detaches ? w->detaches : r->detaches;
    r->in_swap += w->in_swap;
    r->ica_mib = w->ica_mib;
    r->ica_peak_mib = fmax(r->ica_peak_mib, w->ica_peak_mib);
    r->mem_peak_mib = fmax(r->mem_peak_mib,
                           w->old_anon_mib + w->ica_peak_mib + w->new_anon_mib);
    r->old_anon_mib = fmax(r->old_anon_mib, w->old_anon_mib);
    r->new_anon_mib = fmax(r->new_anon_mib, w->new_anon_mib);
  }
}

/* One run ------------------------------------------------------------------
 */

/* Swaps `repeat` times while the loads run; the loads settle in between. */
static int swaps(struct br_ctx *c, struct br_run *r, int repeat, bool quick) {
  for (int i = 0; i < repeat; i++) {
    sleep_ms(quick ? 50 : 100); /* the loads are in full swing */
    int e = swap(c, r, &r->sw[i]);
    if (e < 0)
      return e;
    r->nswaps++;
  }
  sleep_ms(quick ? 20 : 50); /* serving again, seen by the loads */
  return 0;
}

static const char *load_and_swap(struct br_ctx *c, struct br_run *r, int repeat,
                                 bool quick) {
  if (start_kvs(c, r) < 0)
    return "cannot start kvs";
  if (fill_or_verify(c, r, false) < 0)
    return "filling the state failed";
  if (start_loads(c) < 0)
    return "cannot start the loads";
  int e = swaps(c, r, repeat, quick);
  if (stop_loads(c, r) < 0 && e == 0)
    return "a load process failed (an error or a wrong answer)";
  if (e < 0)
    return "the replacement failed";
  if (fill_or_verify(c, r, true) < 0)
    return "the state differs after the swaps";
  return NULL;
}

static int measure(struct br_run *r, int n, int repeat, bool quick) {
  struct br_ctx c;
  memset(&c, 0, sizeof c);
  const char *why = "cannot boot a machine";
  uint32_t live = 0;
  if (boot(&c, n) == 0)
    why = load_and_swap(&c, r, repeat, quick);
  if (why)
    fprintf(stderr, "uksim bench replace: %s %s: %s%s%s\n", r->method,
            size_label(r->size, (char[32]){0}, 32), why,
            c.m.error[0] ? ": " : "", c.m.error);
  if (c.kd)
    mach_kdata_unmap(c.kd);
  if (mach_halt(&c.m, &live) == 0)
    r->leaked = live;
  mach_close(&c.m);
  read_trace(&c, r);
  read_loads(&c, r);
  summarize(r);
  unlink(c.trace);
  r->ok = why == NULL && r->lost == 0 && r->errors == 0 && r->exactly_once &&
          r->leaked == 0;
  return r->ok ? 0 : -1;
}

/* Reports -----------------------------------------------------------------
 */

static const struct br_run *find(const struct br_run *runs, int n,
                                 const char *method, uint64_t size) {
  for (int i = 0; i < n; i++)
    if (!strcmp(runs[i].method, method) && runs[i].size == size)
      return &runs[i];
  return NULL;
}

struct br_targets {
  bool known; /* every figure the targets need was measured */
  bool flat, copy_slow, fast_small;
  double flat_ratio, copy_ratio; /* single 256m / 4k, copy / single 256m */
};

static struct br_targets targets(const struct br_run *runs, int n) {
  const struct br_run *s4 = find(runs, n, "single", 4 << 10);
  const struct br_run *s256 = find(runs, n, "single", 256 << 20);
  const struct br_run *c256 = find(runs, n, "copy", 256 << 20);
  struct br_targets t = {.known = s4 && s256 && c256};
  if (!t.known)
    return t;
  t.flat = s256->downtime_ms <= 3 * s4->downtime_ms;
  t.copy_slow = c256->downtime_ms >= 100 * s256->downtime_ms;
  t.flat_ratio = s4->downtime_ms > 0 ? s256->downtime_ms / s4->downtime_ms : 0;
  t.copy_ratio =
      s256->downtime_ms > 0 ? c256->downtime_ms / s256->downtime_ms : 0;
  t.fast_small = s4->downtime_ms < 5;
  return t;
}

/* One field of every swap, as a JSON array. */
static void json_each(FILE *o, const char *key, const struct br_run *r,
                      size_t off) {
  fprintf(o, ", \"%s\": [", key);
  for (int i = 0; i < r->nswaps; i++) {
    double v;
    memcpy(&v, (const char *)&r->sw[i] + off, sizeof v);
    fprintf(o, "%s%.3f", i ? ", " : "", v);
  }
  fputs("]", o);
}

/* Every run's figures, in order, for the JSON runs and the CSV rows. */
enum br_kind { F_STR, F_U64, F_INT, F_MS, F_MIB, F_US, F_BOOL };
static const struct br_field {
  const char *name;
  enum br_kind kind;
  size_t off;
} br_fields[] = {
#define F(name, kind, member)                                                  \
  { name, kind, offsetof(struct br_run, member) }
    F("method", F_STR, method),
    F("size", F_U64, size),
    F("value_size", F_U64, value_size),
    F("keys", F_U64, keys),
    F("swaps", F_INT, nswaps),
    F("downtime_ms", F_MS, downtime_ms),
    F("max_downtime_ms", F_MS, max_downtime_ms),
    F("serving_ms", F_MS, serving_ms),
    F("start_ms", F_MS, start_ms),
    F("save_ms", F_MS, save_ms),
    F("restore_ms", F_MS, restore_ms),
    F("replace_call_ms", F_MS, replace_ms),
    F("attaches", F_U64, attaches),
    F("detaches", F_U64, detaches),
    F("ica_mib", F_MIB, ica_mib),
    F("ica_peak_mib", F_MIB, ica_peak_mib),
    F("old_anon_mib", F_MIB, old_anon_mib),
    F("new_anon_mib", F_MIB, new_anon_mib),
    F("mem_peak_mib", F_MIB, mem_peak_mib),
    F("base_p50_us", F_US, base_p50_us),
    F("requests", F_U64, requests),
    F("in_swap", F_U64, in_swap),
    F("lost", F_U64, lost),
    F("errors", F_U64, errors),
    F("leaked_icas", F_U64, leaked),
    F("exactly_once", F_BOOL, exactly_once),
    F("ok", F_BOOL, ok),
#undef F
};

/* One field's value; JSON quotes strings and spells booleans. */
static void put_field(FILE *o, const struct br_field *f, const struct br_run *r,
                      bool json) {
  const char *p = (const char *)r + f->off;
  static const char *prec[] = {
      [F_MS] = "%.3f", [F_MIB] = "%.2f", [F_US] = "%.1f"};
  switch (f->kind) {
  case F_STR:
    fprintf(o, json ? "\"%s\"" : "%s", *(const char *const *)p);
    break;
  case F_U64:
    fprintf(o, "%llu", (unsigned long long)*(const uint64_t *)p);
    break;
  case F_INT:
    fprintf(o, "%d", *(const int *)p);
    break;
  case F_BOOL:
    if (json)
      fputs(*(const bool *)p ? "true" : "false", o);
    else
      fprintf(o, "%d", *(const bool *)p);
    break;
  default:
    fprintf(o, prec[f->kind], *(const double *)p);
  }
}

static void json_run(FILE *o, const struct br_run *r) {
  for (size_t i = 0; i < sizeof br_fields / sizeof br_fields[0]; i++) {
    fprintf(o, "%s\"%s\": ", i ? ", " : "{", br_fields[i].name);
    put_field(o, &br_fields[i], r, true);
  }
  json_each(o, "downtime_each_ms", r, offsetof(struct br_swap, downtime_ms));
  json_each(o, "serving_each_ms", r, offsetof(struct br_swap, serving_ms));
  json_each(o, "restore_each_ms", r, offsetof(struct br_swap, restore_ms));
  fputs("}", o);
}

static const char *tf(bool b) {
  return b ? "true" : "false";
}

static void print_json(FILE *o, const struct br_run *runs, int n, int repeat) {
  char lab[32];
  uint64_t lost = 0, errors = 0;
  fputs("{", o);
  for (int i = 0; i < n; i++) {
    fprintf(o, "\"%s_%s_ms\": %.3f, ", runs[i].method,
            size_label(runs[i].size, lab, sizeof lab), runs[i].downtime_ms);
    lost += runs[i].lost;
    errors += runs[i].errors;
  }
  for (int i = 0; i < n; i++)
    fprintf(o, "\"%s_%s_serving_ms\": %.3f, ", runs[i].method,
            size_label(runs[i].size, lab, sizeof lab), runs[i].serving_ms);
  struct br_targets t = targets(runs, n);
  fprintf(o,
          "\"ms_keys\": \"client-seen downtime: the longest latency of a "
          "request in flight during the swap, median over the run's "
          "swaps\", \"swaps_per_run\": %d, \"single_256m_over_4k\": "
          "%.2f, \"copy_256m_over_single_256m\": %.1f, \"lost\": %llu, "
          "\"errors\": %llu, \"targets_met\": %s, \"targets\": {\"known\": "
          "%s, \"single_256m_le_3x_single_4k\": %s, "
          "\"copy_256m_ge_100x_single_256m\": %s, \"single_4k_lt_5ms\": "
          "%s}, \"loads\": %d, \"runs\": [",
          repeat, t.flat_ratio, t.copy_ratio, (unsigned long long)lost,
          (unsigned long long)errors,
          tf(t.known && t.flat && t.copy_slow && t.fast_small), tf(t.known),
          tf(t.flat), tf(t.copy_slow), tf(t.fast_small), LOADS);
  for (int i = 0; i < n; i++) {
    fputs(i ? ", " : "", o);
    json_run(o, &runs[i]);
  }
  fputs("]}\n", o);
}

static void print_table(FILE *o, const struct br_run *runs, int n, int repeat) {
  char lab[32];
  fprintf(o, "%-6s %5s %10s %10s %8s %8s %8s %5s %5s %9s %9s %8s %s\n",
          "method", "size", "downtime", "serving", "start", "save", "restore",
          "att", "det", "ica MiB", "peak MiB", "mem MiB", "requests");
  for (int i = 0; i < n; i++) {
    const struct br_run *r = &runs[i];
    fprintf(o,
            "%-6s %5s %8.2fms %8.2fms %8.2f %8.2f %8.2f %5llu %5llu %9.1f "
            "%9.1f %8.1f %llu%s\n",
            r->method, size_label(r->size, lab, sizeof lab), r->downtime_ms,
            r->serving_ms, r->start_ms, r->save_ms, r->restore_ms,
            (unsigned long long)r->attaches, (unsigned long long)r->detaches,
            r->ica_mib, r->ica_peak_mib, r->mem_peak_mib,
            (unsigned long long)r->requests,
            r->ok ? "" : "  FAILED (see above)");
  }
  fprintf(o, "(times: the median of %d swap%s per run)\n", repeat,
          repeat == 1 ? "" : "s");
  struct br_targets t = targets(runs, n);
  if (!t.known) {
    fputs("targets: not all figures measured (4k and 256m of single and "
          "copy are needed)\n",
          o);
    return;
  }
  fprintf(o,
          "targets: single_256m <= 3 x single_4k: %s (x %.2f); copy_256m >= "
          "100 x single_256m: %s (x %.0f); single_4k < 5 ms: %s\n"
          "targets_met: %s\n",
          tf(t.flat), t.flat_ratio, tf(t.copy_slow), t.copy_ratio,
          tf(t.fast_small), tf(t.flat && t.copy_slow && t.fast_small));
}

static int write_csv(const char *path, const struct br_run *runs, int n) {
  const size_t nf = sizeof br_fields / sizeof br_fields[0];
  FILE *f = fopen(path, "w");
  if (f == NULL)
    return -errno;
  for (size_t i = 0; i < nf; i++)
    fprintf(f, "%s%s", br_fields[i].name, i + 1 < nf ? "," : "\n");
  for (int k = 0; k < n; k++)
    for (size_t i = 0; i < nf; i++) {
      put_field(f, &br_fields[i], &runs[k], false);
      fputc(i + 1 < nf ? ',' : '\n', f);
    }
  return fclose(f) == 0 ? 0 : -EIO;
}

/* The plot: log-log, state size against milliseconds, one colour per
 * method; solid the client-seen downtime, dashed flag to serving. */
#define SVG_W 640
#define SVG_H 420
#define SVG_L 70
#define SVG_R 150
#define SVG_T 30
#define SVG_B 50

struct svg_axes {
  double x0, x1, y0, y1; /* log2 bytes, log10 ms */
};

static double svg_x(const struct svg_axes *a, uint64_t size) {
  double span = a->x1 > a->x0 ? a->x1 - a->x0 : 1;
  /* 20 px inside the frame, so the end markers stay clear of it. */
  return SVG_L + 20 +
         (log2((double)size) - a->x0) / span * (SVG_W - SVG_L - SVG_R - 40);
}

static double svg_y(const struct svg_axes *a, double ms) {
  double v = log10(ms > 1e-3 ? ms : 1e-3);
  return SVG_H - SVG_B -
         (v - a->y0) / (a->y1 - a->y0) * (SVG_H - SVG_T - SVG_B);
}

static struct svg_axes svg_scale(const struct br_run *runs, int n) {
  struct svg_axes a = {1e9, -1e9, 1e9, -1e9};
  for (int i = 0; i < n; i++) {
    double x = log2((double)runs[i].size);
    double lo = runs[i].serving_ms < runs[i].downtime_ms ? runs[i].serving_ms
                                                         : runs[i].downtime_ms;
    double hi = runs[i].serving_ms > runs[i].downtime_ms ? runs[i].serving_ms
                                                         : runs[i].downtime_ms;
    a.x0 = fmin(a.x0, x), a.x1 = fmax(a.x1, x);
    a.y0 = fmin(a.y0, log10(lo > 1e-3 ? lo : 1e-3));
    a.y1 = fmax(a.y1, log10(hi > 1e-3 ? hi : 1e-3));
  }
  a.y0 = floor(a.y0), a.y1 = ceil(a.y1);
  if (a.y1 <= a.y0)
    a.y1 = a.y0 + 1;
  return a;
}

static void svg_frame(FILE *f, const struct svg_axes *a,
                      const struct br_run *runs, int n) {
  char lab[32];
  fprintf(f,
          "<rect x='%d' y='%d' width='%d' height='%d' fill='none' "
          "stroke='#444'/>\n",
          SVG_L, SVG_T, SVG_W - SVG_L - SVG_R, SVG_H - SVG_T - SVG_B);
  for (double d = a->y0; d <= a->y1; d++) {
    double y = svg_y(a, pow(10, d));
    fprintf(f,
            "<line x1='%d' y1='%.1f' x2='%d' y2='%.1f' stroke='#ddd'/>"
            "<text x='%d' y='%.1f' text-anchor='end'>%g ms</text>\n",
            SVG_L, y, SVG_W - SVG_R, y, SVG_L - 6, y + 4, pow(10, d));
  }
  for (int i = 0; i < n; i++) /* one tick per size (repeats overlap) */
    fprintf(f, "<text x='%.1f' y='%d' text-anchor='middle'>%s</text>\n",
            svg_x(a, runs[i].size), SVG_H - SVG_B + 18,
            size_label(runs[i].size, lab, sizeof lab));
  fprintf(f,
          "<text x='%d' y='%d' text-anchor='middle'>state size "
          "(bytes of values in kvs)</text>\n"
          "<text x='%d' y='20' text-anchor='middle'>uksim bench replace: "
          "kvs replaced under load</text>\n",
          (SVG_W - SVG_R + SVG_L) / 2, SVG_H - 12, (SVG_W - SVG_R + SVG_L) / 2);
}

static void svg_line(FILE *f, const struct svg_axes *a,
                     const struct br_run *runs, int n, const char *method,
                     const char *colour, bool serving) {
  fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='2'%s points='",
          colour, serving ? " stroke-dasharray='6 4'" : "");
  for (int i = 0; i < n; i++)
    if (!strcmp(runs[i].method, method))
      fprintf(f, "%.1f,%.1f ", svg_x(a, runs[i].size),
              svg_y(a, serving ? runs[i].serving_ms : runs[i].downtime_ms));
  fputs("'/>\n", f);
  for (int i = 0; i < n && !serving; i++)
    if (!strcmp(runs[i].method, method))
      fprintf(f, "<circle cx='%.1f' cy='%.1f' r='3' fill='%s'/>\n",
              svg_x(a, runs[i].size), svg_y(a, runs[i].downtime_ms), colour);
}

static int write_svg(const char *path, const struct br_run *runs, int n) {
  static const char *colour[NMETHODS] = {"#1f77b4", "#2ca02c", "#d62728"};
  FILE *f = fopen(path, "w");
  if (f == NULL)
    return -errno;
  struct svg_axes a = svg_scale(runs, n);
  fprintf(f,
          "<svg xmlns='http://www.w3.org/2000/svg' width='%d' "
          "height='%d' font-family='sans-serif' font-size='12'>\n"
          "<rect width='100%%' height='100%%' fill='white'/>\n",
          SVG_W, SVG_H);
  svg_frame(f, &a, runs, n);
  for (int m = 0; m < NMETHODS; m++) {
    int ly = SVG_T + 20 + m * 20, lx = SVG_W - SVG_R + 12;
    svg_line(f, &a, runs, n, methods[m], colour[m], false);
    svg_line(f, &a, runs, n, methods[m], colour[m], true);
    fprintf(f,
            "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='%s' "
            "stroke-width='2'/><text x='%d' y='%d'>%s</text>\n",
            lx, ly, lx + 24, ly, colour[m], lx + 30, ly + 4, methods[m]);
  }
  fprintf(f,
          "<text x='%d' y='%d'>solid: downtime</text>\n"
          "<text x='%d' y='%d'>dashed: flag to</text>\n"
          "<text x='%d' y='%d'>serving</text>\n</svg>\n",
          SVG_W - SVG_R + 12, SVG_T + 90, SVG_W - SVG_R + 12, SVG_T + 108,
          SVG_W - SVG_R + 12, SVG_T + 124);
  return fclose(f) == 0 ? 0 : -EIO;
}

static void usage(FILE *o) {
  fprintf(o,
          "usage: uksim bench replace [--json] [--csv FILE] [--plot FILE.svg] "
          "[--quick]\n                          [--sizes LIST] [--repeat N]\n\n"
          "Replace the kvs server under load from %d processes, for each "
          "state-save method\n(single, chain, copy) and state size (4K 64K "
          "1M 16M 256M; --quick: 4K 256M),\none machine per run, N swaps "
          "per run (5; --quick: 3).  Reports the\nclient-seen downtime (the "
          "longest latency of a request in flight during a\nswap; the "
          "JSON's <method>_<size>_ms keys), flag-to-serving time, ICA\n"
          "attaches and detaches, and memory.  Every time is the median over "
          "the run's\nswaps (each swap's figure is in the JSON too): one "
          "swap is at the mercy of\nthe host's scheduler, the median is "
          "what the method costs.\n"
          "  --csv FILE     every run's figures as CSV\n"
          "  --plot FILE    an SVG: state size against time, log-log\n"
          "  --sizes LIST   comma-separated sizes, e.g. 4K,1M\n"
          "  --repeat N     swaps per run, 1..9\n"
          "Exit status 0 when every run completed with no lost or wrong "
          "answer; the\ntargets are reported, not enforced.\n",
          LOADS);
}

/* "4K", "256M", "1G" or bytes, at most 1 GiB. */
static int parse_size(const char *s, uint64_t *out) {
  return num_opt_u64("uksim bench replace", "--sizes", s, 1, 1ull << 30,
                     NUM_SIZE, out);
}

static int parse_sizes(const char *list, struct br_opts *o) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s", list);
  o->nsizes = 0;
  for (char *save, *t = strtok_r(buf, ",", &save); t;
       t = strtok_r(NULL, ",", &save))
    if (o->nsizes == SIZES_MAX || parse_size(t, &o->sizes[o->nsizes++]) < 0)
      return -EINVAL;
  return o->nsizes ? 0 : -EINVAL;
}

/* 0, 1 for --help, or -EINVAL. */
static int parse_opts(int argc, char **argv, struct br_opts *o) {
  static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                       {"quick", no_argument, NULL, 'q'},
                                       {"csv", required_argument, NULL, 'c'},
                                       {"plot", required_argument, NULL, 'p'},
                                       {"sizes", required_argument, NULL, 's'},
                                       {"repeat", required_argument, NULL, 'r'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *sizes = NULL;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (c == 'j')
      o->json = true;
    else if (c == 'q')
      o->quick = true;
    else if (c == 'c')
      o->csv = optarg;
    else if (c == 'p')
      o->plot = optarg;
    else if (c == 's')
      sizes = optarg;
    else if (c == 'r') {
      uint64_t v;
      if (num_opt_u64("uksim bench replace", "--repeat", optarg, 1, REPEAT_MAX,
                      0, &v) < 0)
        return -EINVAL;
      o->repeat = (int)v;
    } else
      return c == 'h' ? 1 : -EINVAL;
  }
  if (optind != argc)
    return -EINVAL;
  if (sizes == NULL)
    sizes = o->quick ? "4K,256M" : "4K,64K,1M,16M,256M";
  if (o->repeat == 0)
    o->repeat = o->quick ? 3 : 5; /* a median needs three */
  return parse_sizes(sizes, o);
}

int bench_replace_main(int argc, char **argv) {
  struct br_opts o = {0};
  int r = parse_opts(argc, argv, &o);
  if (r != 0) {
    usage(r > 0 ? stdout : stderr);
    return r > 0 ? 0 : 2;
  }
  struct br_run runs[NMETHODS * SIZES_MAX];
  int n = 0, failed = 0;
  for (int m = 0; m < NMETHODS; m++)
    for (int s = 0; s < o.nsizes; s++, n++) {
      plan(&runs[n], methods[m], o.sizes[s]);
      failed += measure(&runs[n], n, o.repeat, o.quick) < 0;
    }
  if (o.json)
    print_json(stdout, runs, n, o.repeat);
  else
    print_table(stdout, runs, n, o.repeat);
  if (o.csv && write_csv(o.csv, runs, n) < 0)
    fprintf(stderr, "uksim bench replace: cannot write %s\n", o.csv), failed++;
  if (o.plot && write_svg(o.plot, runs, n) < 0)
    fprintf(stderr, "uksim bench replace: cannot write %s\n", o.plot), failed++;
  return failed ? 1 : 0;
}
