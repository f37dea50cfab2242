/* uksim bench scenario: how fast scenarios run.
 *
 *   lockstep_10k_s         wall time of scenarios/bench/lockstep-10k.scn
 *                          (10,000 kvs requests and a replacement, under the
 *                          lock-step scheduler), median of the runs;
 *   free_10k_s             the same workload free-running (free-10k.scn):
 *                          the baseline, so lockstep_over_free is the cost
 *                          of determinism;
 *   explore_seeds_per_min  seeds of scenarios/bench/fault-1k.scn (1,000
 *                          requests, a crash at a seeded point) explored
 *                          per minute, `jobs` at once.
 *
 * Every figure is a whole `uksim run` as a user starts it: boot, the run,
 * the halt, the checking of every expectation.  A run whose expectations
 * fail makes the benchmark fail: a fast wrong run measures nothing. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "explore.h"
#include "kpath.h"
#include "machine.h"
#include "stats.h"
#include "uksim/num.h"

#define LOCKSTEP_TARGET_S 10.0
#define SEEDS_TARGET_PER_MIN 200.0

struct fig {
  double lockstep_s, free_s, seeds_per_min;
  uint64_t seeds;
  unsigned jobs;
};

/* Runs file `runs` times, one at a time; the median wall time, or -1. */
static double median_run(const char *file, unsigned runs) {
  double t[9];
  for (unsigned i = 0; i < runs; i++) {
    struct explore_opts o = {.file = file, .first = 1, .seeds = 1, .jobs = 1};
    struct explore_result r;
    if (explore(&o, &r) < 0)
      return -1;
    int st = r.seed[0].status;
    t[i] = r.seed[0].secs;
    if (st != 0)
      fprintf(stderr, "uksim bench scenario: %s failed (exit status %d):\n%s",
              file, st, r.seed[0].output ? r.seed[0].output : "");
    explore_result_free(&r);
    if (st != 0)
      return -1;
  }
  stats_sort(t, runs);
  return t[runs / 2];
}

/* The path of scenarios/bench/NAME, in the source tree or the install
 * (kpath.h), in buf; NULL after saying so. */
static const char *bench_file(const char *name, char buf[KERN_PATH_MAX]) {
  char rel[64];
  snprintf(rel, sizeof rel, "bench/%s", name);
  if (kern__find_scenario(rel, buf, KERN_PATH_MAX) == 0)
    return buf;
  fprintf(stderr, "uksim bench scenario: %s is not installed\n", rel);
  return NULL;
}

static int measure(struct fig *f, unsigned runs) {
  char lockstep[KERN_PATH_MAX], freerun[KERN_PATH_MAX], fault[KERN_PATH_MAX];
  if (!bench_file("lockstep-10k.scn", lockstep) ||
      !bench_file("free-10k.scn", freerun) ||
      !bench_file("fault-1k.scn", fault))
    return -1;
  f->lockstep_s = median_run(lockstep, runs);
  f->free_s = median_run(freerun, runs);
  if (f->lockstep_s < 0 || f->free_s < 0)
    return -1;
  struct explore_opts o = {
      .file = fault, .first = 1, .seeds = f->seeds, .jobs = f->jobs};
  struct explore_result r;
  if (explore(&o, &r) < 0)
    return -1;
  int bad = r.failed != 0;
  if (bad)
    fprintf(stderr, "uksim bench scenario: seed %" PRIu64 " of %s failed:\n%s",
            r.seed[r.first_failed].seed, o.file,
            r.seed[r.first_failed].output ? r.seed[r.first_failed].output : "");
  f->seeds_per_min = (double)r.ran * 60 / r.secs;
  explore_result_free(&r);
  return bad ? -1 : 0;
}

static bool met(const struct fig *f) {
  return f->lockstep_s < LOCKSTEP_TARGET_S &&
         f->seeds_per_min >= SEEDS_TARGET_PER_MIN;
}

static void print(const struct fig *f, bool json, unsigned runs) {
  if (json) {
    printf("{\"lockstep_10k_s\": %.3f, \"free_10k_s\": %.3f, "
           "\"lockstep_over_free\": %.2f, \"explore_seeds_per_min\": %.1f, "
           "\"explore_seeds\": %" PRIu64 ", \"explore_jobs\": %u, "
           "\"runs\": %u, \"cpus\": %ld, \"poll_us\": %u, "
           "\"targets_met\": %s}\n",
           f->lockstep_s, f->free_s, f->lockstep_s / f->free_s,
           f->seeds_per_min, f->seeds, f->jobs, runs,
           sysconf(_SC_NPROCESSORS_ONLN), mach_poll_us(),
           met(f) ? "true" : "false");
    return;
  }
  printf("  10,000 requests, lock-step  %8.3f s   (target < %.0f; median of "
         "%u)\n"
         "  10,000 requests, free       %8.3f s   lock-step costs %.2f x\n"
         "  explore, 1,000-request fault scenario  %6.1f seeds/min   (target "
         ">= %.0f; %" PRIu64 " seeds, %u jobs)\n",
         f->lockstep_s, LOCKSTEP_TARGET_S, runs, f->free_s,
         f->lockstep_s / f->free_s, f->seeds_per_min, SEEDS_TARGET_PER_MIN,
         f->seeds, f->jobs);
}

static void usage(FILE *o) {
  fprintf(o, "usage: uksim bench scenario [--json] [--quick] [--seeds N] "
             "[--jobs J]\n                            [--poll-us N]\n\n"
             "How fast scenarios run, each a whole 'uksim run' (boot, run, "
             "halt, checks):\n"
             "  lockstep_10k_s         10,000 requests in lock-step "
             "(scenarios/bench/lockstep-10k.scn),\n"
             "                         median of 3 runs (--quick: 1)\n"
             "  free_10k_s             the same free-running, the baseline\n"
             "  explore_seeds_per_min  seeds of scenarios/bench/fault-1k.scn "
             "explored per\n"
             "                         minute (--seeds, default 100, --quick "
             "20; --jobs,\n"
             "                         default the number of CPUs)\n"
             "--poll-us N: the kernel's cross-cpu polling in every run "
             "(uksim run --help),\nreported as poll_us.\n"
             "Exit status 0 when every run passed; the targets (< 10 s, >= 200 "
             "seeds/min)\nare reported, not enforced.\n");
}

int bench_scenario_main(int argc, char **argv) {
  static const struct option opts[] = {
      {"json", no_argument, NULL, 'j'},
      {"quick", no_argument, NULL, 'q'},
      {"seeds", required_argument, NULL, 's'},
      {"jobs", required_argument, NULL, 'J'},
      {"poll-us", required_argument, NULL, 'P'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  struct fig f = {.seeds = 100, .jobs = cpus > 0 ? (unsigned)cpus : 1};
  unsigned runs = 3;
  bool json = false, seeds_given = false;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (c == 'j') {
      json = true;
    } else if (c == 'q') {
      runs = 1;
      if (!seeds_given)
        f.seeds = 20;
    } else if (c == 's') {
      if (num_opt_u64("uksim bench scenario", "--seeds", optarg, 1,
                      EXPLORE_SEEDS_MAX, 0, &f.seeds) < 0)
        return 2;
      seeds_given = true;
    } else if (c == 'P') {
      if (mach_poll_us_opt("uksim bench scenario", optarg) < 0)
        return 2;
    } else if (c == 'J') {
      uint64_t v;
      if (num_opt_u64("uksim bench scenario", "--jobs", optarg, 1,
                      EXPLORE_JOBS_MAX, 0, &v) < 0)
        return 2;
      f.jobs = (unsigned)v;
    } else {
      usage(c == 'h' ? stdout : stderr);
      return c == 'h' ? 0 : 2;
    }
  }
  if (f.jobs > EXPLORE_JOBS_MAX)
    f.jobs = EXPLORE_JOBS_MAX;
  if (measure(&f, runs) < 0)
    return 1;
  print(&f, json, runs);
  return 0;
}
