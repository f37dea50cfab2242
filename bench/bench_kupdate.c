/* uksim bench kupdate: a kernel update by process migration (issue 15,
 * seed 003).  A machine whose backup OS boots from the other kernel
 * version (build/cli/uksim-kernel2, kernel-data layout v2) runs N
 * protected failload processes calling ctr_srv's counter, each with two
 * files open, one at an offset (failload ns);
 * `uksim kupdate` moves them to the new kernel.
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
 * And one run with a disk: diskfs writes KUPDATE_BENCH_RECORDS records
 * that stay dirty in the old kernel's buffer cache, and the update carries
 * the cache (sim-kernel/kimage_cache.c): kupdate_cache_dirty_blocks (the
 * blocks the new kernel adopted, in the old segments' ICAs) and
 * kupdate_cache_filecache_us (its "filecache" step), beside
 * kupdate_cache_convert_us (its "convert" step: every image, the cache's
 * table among them).
 * Method B, replay (sim-kernel/kreplay.c), runs the same loads in the
 * same run, after method A's: kupdate_replay_<N>p_total_ms (the same
 * observation), kupdate_<method>_<N>p_per_proc_ms (total over N, for
 * both methods), kupdate_replay_<N>p_processes_us_per_proc (its takeover
 * step, which builds less from each image), kupdate_replay_<N>p_replay_
 * us_mean (from the takeover to a process's KABI_REPLAY_DONE, the mean
 * of its "replayed" events), and over both sizes replay_calls (the
 * journal calls the processes made again) and replay_messages (the
 * protocol's own: one KABI_ANS_REPLAY and one KABI_REPLAY_DONE a
 * process).  No target here: these are measurements
 * (docs/kupdate-tutorial.md).
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
/* --procs at most: the 200 of the full run, with room under UK_PROC_MAX
 * for the servers and the check. */
#define KUPDATE_BENCH_PROCS_MAX 200
/* Records (32 bytes each) the cache run writes before the update. */
#define KUPDATE_BENCH_RECORDS "20000"

struct krun {
  int procs;
  int method; /* Uksim__KUpdate__Method */
  bool disk;  /* the cache run: a disk, diskfs and a file, no loads */
  char dir[64], slots[96], trace[96];
  struct failload_slot *slot;
};

struct kres {
  double total_ms, convert_us, processes_us;
  double replay_us_sum, replay_calls, replayed;       /* method B's events */
  double cache_blocks, filecache_us, convert_step_us; /* the cache run */
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

/* mach_boot, with the machine's stdout (and so its programs': diskfs and
 * fwrite say what they did) on /dev/null when quiet: this command's
 * stdout is the JSON. */
static int boot_quiet(mach_client *m, struct mach_opts *o, bool quiet) {
  int keep = -1, nul = quiet ? open("/dev/null", O_WRONLY) : -1;
  if (nul >= 0) {
    fflush(stdout);
    keep = dup(STDOUT_FILENO);
    dup2(nul, STDOUT_FILENO);
    close(nul);
  }
  int r = mach_boot(m, o);
  if (keep >= 0) {
    dup2(keep, STDOUT_FILENO);
    close(keep);
  }
  return r;
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
  if (r->disk && mach_disk_opt(&o, "bench", r->dir) < 0)
    return fail(NULL, "disk option");
  if (r->disk)
    snprintf(o.sync_ms, sizeof o.sync_ms, "0"); /* written back on sync */
  if (boot_quiet(m, &o, r->disk) < 0)
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
    /* Each with some namespace state, for both methods to carry. */
    char *args[] = {r->slots, idx, "100", "ctr", "ns"};
    struct mach_prog p = {.program = "failload",
                          .args = args,
                          .nargs = 5,
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

/* The program's exit status, run to its end (-1: it could not run). */
static int run_prog(mach_client *m, const char *prog, char **args, size_t n) {
  int proc, st = -1, sig = 0;
  if (mach_spawn(m, prog, args, n, prog, MACH_SPAWN_WAITABLE, &proc) < 0)
    return -1;
  int64_t w = mach_wait_send(m, proc);
  return w >= 0 && mach_wait_reply(m, (uint64_t)w, &st, &sig) == 0 && sig == 0
             ? st
             : -1;
}

/* diskfs "dfs" never syncing, and a file written whole by fwrite. */
static int dirty_file(mach_client *m) {
  char *fs[] = {"--name", "dfs", "#S/sd0/data", "16M"};
  if (mach_spawn(m, "diskfs", fs, 4, "dfs", MACH_SPAWN_REGISTERED, NULL) < 0)
    return fail(m, "spawn diskfs");
  char *a[] = {"dfs", "log", KUPDATE_BENCH_RECORDS};
  return run_prog(m, "fwrite", a, 3) == 0 ? 0 : fail(m, "fwrite");
}

/* The cache run's update: its figures from the new kernel's trace. */
static int update_cache(mach_client *m, struct krun *r, struct kres *res) {
  uint32_t old_os, new_os;
  if (mach_kupdate(m, UKSIM__KUPDATE__METHOD__IMAGE, &old_os, &new_os) < 0)
    return fail(m, "kupdate");
  for (int t = 0; t < KUPDATE_BENCH_WAIT_MS / 10 && res->filecache_us == 0;
       t++) {
    usleep(10 * 1000);
    res->filecache_us =
        trace_us(r, new_os, "failover", "adopt: ", "\"filecache ");
  }
  res->cache_blocks = trace_us(r, new_os, "failover", "filecache", "adopt: ");
  res->convert_step_us =
      trace_us(r, new_os, "failover", "another kernel", "\"convert ");
  return res->filecache_us > 0 ? 0 : fail(NULL, "no filecache step");
}

/* Method B's "replayed" events in the new kernel's trace: how many, the
 * journal calls they made and their time after the takeover. */
static void replay_events(const struct krun *r, uint32_t os, struct kres *res) {
  char path[128], line[1024];
  snprintf(path, sizeof path, "%s.os%u", r->trace, os);
  for (int t = 0; t < KUPDATE_BENCH_WAIT_MS / 10 && res->replayed < r->procs;
       t++) {
    res->replayed = res->replay_calls = res->replay_us_sum = 0;
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f)) {
      const char *in = strstr(line, "journal entries in ");
      const char *after = strstr(line, "bytes put back, ");
      if (!strstr(line, "\"replayed\"") || !in || !after)
        continue;
      res->replayed++;
      res->replay_calls += strtod(in + strlen("journal entries in "), NULL);
      res->replay_us_sum += strtod(after + strlen("bytes put back, "), NULL);
    }
    if (f)
      fclose(f);
    if (res->replayed < r->procs)
      usleep(10 * 1000);
  }
}

static int update(mach_client *m, struct krun *r, struct kres *res) {
  uint32_t old_os, new_os;
  uint64_t *before = calloc((size_t)r->procs, sizeof *before);
  uint64_t t0 = now_ns();
  int e = mach_kupdate(m, r->method, &old_os, &new_os);
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
  if (r->method == UKSIM__KUPDATE__METHOD__REPLAY)
    replay_events(r, new_os, res);
  return 0;
}

static int run_case(int procs, int method, struct kres *res) {
  struct krun r = {.procs = procs, .method = method, .disk = procs == 0};
  snprintf(r.dir, sizeof r.dir, "/tmp/uksim-bench-kupdate-XXXXXX");
  if (mkdtemp(r.dir) == NULL)
    return fail(NULL, "mkdtemp");
  mach_client m;
  int e = boot(&m, &r);
  if (e == 0 && r.disk) {
    if ((e = dirty_file(&m)) == 0)
      e = update_cache(&m, &r, res);
    res->counter_ok = true; /* no loads in this run */
  } else if (e == 0 && (e = start_loads(&m, &r)) == 0 &&
             (e = await_answers(&r, NULL)) == 0 &&
             (e = update(&m, &r, res)) == 0) {
    if ((e = failload_stop(r.slot, procs, KUPDATE_BENCH_WAIT_MS, &res->n)) < 0)
      fail(NULL, "a load cannot be stopped");
    res->counter_ok = e == 0 && counter_ok(&m, res);
  }
  uint32_t live;
  mach_halt(&m, &live);
  mach_close(&m);
  if (r.slot && r.slot != MAP_FAILED)
    munmap(r.slot, (size_t)procs * sizeof *r.slot);
  if (e == 0 && !res->counter_ok) { /* the traces say which call it was */
    fprintf(stderr, "uksim bench kupdate: counter wrong: traces kept in %s\n",
            r.dir);
    return e;
  }
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", r.dir);
  if (system(cmd) != 0)
    fprintf(stderr, "uksim bench kupdate: %s left behind\n", r.dir);
  return e;
}

static void print(int procs, const char *how, const struct kres *x, bool json,
                  bool first) {
  double conv = x->convert_us / procs, proc = x->processes_us / procs;
  double each = x->total_ms / procs;
  double rmean = x->replayed > 0 ? x->replay_us_sum / x->replayed : 0;
  bool replay = strcmp(how, "replay") == 0;
  if (!json) {
    printf("%-6s %4d procs  total %8.1f ms (%6.2f ms/proc)  convert %7.1f "
           "us/proc  takeover %7.1f us/proc",
           how, procs, x->total_ms, each, conv, proc);
    if (replay)
      printf("  replayed %.0f, %.0f calls, %.0f us after the takeover",
             x->replayed, x->replay_calls, rmean);
    printf("  lost %" PRIu64 "  counter %s\n", x->n.lost,
           x->counter_ok ? "exact" : "WRONG");
    return;
  }
  printf("%s\"kupdate_%s_%dp_total_ms\":%.3f,"
         "\"kupdate_%s_%dp_per_proc_ms\":%.3f,"
         "\"kupdate_%s_%dp_convert_us_per_proc\":%.3f,"
         "\"kupdate_%s_%dp_processes_us_per_proc\":%.3f,"
         "\"kupdate_%s_%dp_lost\":%" PRIu64 ","
         "\"kupdate_%s_%dp_counter_exact\":%s",
         first ? "" : ",", how, procs, x->total_ms, how, procs, each, how,
         procs, conv, how, procs, proc, how, procs, x->n.lost, how, procs,
         x->counter_ok ? "true" : "false");
  if (replay)
    printf(",\"kupdate_replay_%dp_replay_us_mean\":%.3f,"
           "\"kupdate_replay_%dp_replayed\":%.0f",
           procs, rmean, procs, x->replayed);
}

/* --procs N: only the run with N loads (a loop looking for a rare
 * failure), its line and its verdict. */
static int one_case(int procs, bool json) {
  struct kres res = {0};
  if (procs < 1 || procs > KUPDATE_BENCH_PROCS_MAX) {
    fprintf(stderr, "uksim bench kupdate: --procs 1..%d\n",
            KUPDATE_BENCH_PROCS_MAX);
    return 2;
  }
  if (run_case(procs, UKSIM__KUPDATE__METHOD__IMAGE, &res) < 0)
    return 1;
  if (json)
    printf("{");
  print(procs, "image", &res, json, true);
  if (json)
    printf("}\n");
  return res.n.lost == 0 && res.counter_ok ? 0 : 1;
}

int bench_kupdate_main(int argc, char **argv) {
  bool json = argc >= 2 && strcmp(argv[1], "--json") == 0;
  int a = json ? 2 : 1;
  if (argc == a + 2 && strcmp(argv[a], "--procs") == 0)
    return one_case(atoi(argv[a + 1]), json);
  if (argc > 2 || (argc == 2 && !json)) {
    fprintf(stderr, "usage: uksim bench kupdate [--json] [--procs N]\n");
    return 2;
  }
  /* Cases c: 10 and 200 processes by image, then by replay. */
  static const int procs[] = {10, 200, 10, 200};
  static const char *const how[] = {"image", "image", "replay", "replay"};
  struct kres res[4] = {0};
  uint64_t lost = 0;
  double calls = 0, replayed = 0;
  bool ok = true;
  for (int c = 0; c < 4; c++) {
    int method =
        c < 2 ? UKSIM__KUPDATE__METHOD__IMAGE : UKSIM__KUPDATE__METHOD__REPLAY;
    if (run_case(procs[c], method, &res[c]) < 0)
      return 1;
    lost += res[c].n.lost;
    ok &= res[c].counter_ok;
    calls += res[c].replay_calls;
    replayed += res[c].replayed;
  }
  if (json)
    printf("{");
  for (int c = 0; c < 4; c++)
    print(procs[c], how[c], &res[c], json, c == 0);
  struct kres cache = {0};
  if (run_case(0, UKSIM__KUPDATE__METHOD__IMAGE, &cache) < 0)
    return 1;
  if (json)
    printf(",\"kupdate_cache_dirty_blocks\":%.0f,"
           "\"kupdate_cache_filecache_us\":%.0f,"
           "\"kupdate_cache_convert_us\":%.0f",
           cache.cache_blocks, cache.filecache_us, cache.convert_step_us);
  else
    printf("cache  %.0f dirty blocks adopted in %.0f us (convert step "
           "%.0f us)\n",
           cache.cache_blocks, cache.filecache_us, cache.convert_step_us);
  /* Each process replayed: one KABI_ANS_REPLAY, one KABI_REPLAY_DONE. */
  if (json)
    printf(",\"replay_calls\":%.0f,\"replay_messages\":%.0f,"
           "\"lost\":%" PRIu64 ",\"replay_built\":true}\n",
           calls, 2 * replayed, lost);
  else
    printf("replay: %.0f journal calls, %.0f protocol messages; lost %" PRIu64
           " (must be 0)\n",
           calls, 2 * replayed, lost);
  return lost == 0 && ok ? 0 : 1;
}
