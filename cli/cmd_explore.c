/* uksim explore: one scenario under many seeds (explore.h).
 *
 * A seed chooses the schedule (the lock-step scheduler's choices) and
 * every range the scenario leaves open (`on request 1..900 to kvs: crash
 * kvs`, `--fault panic@request:10..500`, `at 1ms..20ms ...`): exploring
 * seeds explores interleavings and fault points.  The first failing seed
 * is printed with its output and the exact command that reproduces it.
 *
 * --shard K/N runs the K-th of N slices of the seeds (explore.h), for CI
 * matrices and batch job arrays; --merge joins their JUnit reports into
 * the report of the whole sweep (explore_report.c).
 *
 * Exit status: 0 every seed passed, 1 one failed, 2 bad input. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "explore.h"
#include "machine.h"
#include "scn.h"
#include "uksim/num.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: uksim explore FILE.scn [OPTIONS]\n"
          "       uksim explore --merge REPORT.xml... [--junit OUT]\n\n"
          "Run a scenario under many seeds, several at a time.  A seed "
          "chooses the\nschedule and every range the scenario leaves open "
          "(a fault point such as\n'on request 1..900 to kvs: crash kvs'), "
          "so seeds explore interleavings\nand fault points.  Stops at the "
          "first failing seed and prints the command\nthat reproduces "
          "it.  That failure is shrunk: under the same seed, fewer\nfaults "
          "and earlier fault points are tried, and the reproducer runs the\n"
          "scenario rewritten with the fewest faults and the earliest points "
          "that\nstill fail the same way (FILE.seed-S.shrunk.scn).\n\n"
          "  --seeds N      seeds to run (default 100, at most %u)\n"
          "  --first S      the first seed (default 1): seeds S .. S+N-1\n"
          "  --jobs J       runs at once (default: the number of CPUs, at "
          "most %u)\n"
          "  --timeout SEC  a run taking longer fails (default 300)\n"
          "  --keep-going   run every seed, and report every failure\n"
          "  --junit FILE   write a JUnit XML report (one test case per "
          "seed)\n"
          "  --quiet        no progress bar or log lines\n"
          "  --poll-us N    the kernel's cross-cpu polling (uksim run "
          "--help)\n"
          "  --no-shrink    do not shrink the first failure (below)\n"
          "  --shrink-dir D write the shrunk scenario in D (default: the "
          "scenario's\n                 directory, where its relative "
          "files are)\n"
          "  --shard K/N    run only the K-th of N disjoint slices of the "
          "seeds\n                 (1 <= K <= N <= %u; the N slices "
          "together are the\n                 seeds above); each "
          "shard's --junit report can be merged\n"
          "  --merge        join the --junit reports of the shards of one "
          "sweep (the\n                 files are the arguments) into the "
          "report of the whole\n                 sweep, to OUT or stdout, "
          "and name the first failing seed;\n                 reports of "
          "different sweeps, overlapping or missing\n                 "
          "shards are refused\n\n"
          "Exit status: 0 every seed passed, 1 one failed, 2 bad input.\n",
          EXPLORE_SEEDS_MAX, EXPLORE_JOBS_MAX, EXPLORE_SHARDS_MAX);
}

struct cli {
  struct explore_opts o;
  const char *junit;
  bool quiet;
  bool merge;
  bool no_shrink;
  const char *shrink_dir;
  char **files; /* --merge: the reports */
  unsigned nfiles;
};

/* A decimal number in [min, max] as the value of option opt; 0, or -1 with
 * a message naming the command and the range (cli.h). */
int cli_number(const char *cmd, const char *opt, const char *v, uint64_t min,
               uint64_t max, uint64_t *out) {
  char prog[48];
  snprintf(prog, sizeof prog, "uksim %s", cmd);
  return num_opt_u64(prog, opt, v, min, max, 0, out) < 0 ? -1 : 0;
}

static int number(const char *opt, const char *v, uint64_t min, uint64_t max,
                  uint64_t *out) {
  return cli_number("explore", opt, v, min, max, out);
}

/* --shard K/N: 1 <= K <= N <= EXPLORE_SHARDS_MAX. */
static int shard(const char *v, struct explore_opts *o) {
  unsigned k, n;
  char end;
  if (sscanf(v, "%u/%u%c", &k, &n, &end) != 2 || v[0] < '0' || v[0] > '9' ||
      n == 0 || n > EXPLORE_SHARDS_MAX || k == 0 || k > n) {
    fprintf(stderr,
            "uksim explore: --shard %s: not K/N with 1 <= K <= N <= %u "
            "(K is which slice, N how many)\n",
            v, EXPLORE_SHARDS_MAX);
    return -1;
  }
  o->shard_k = k;
  o->shard_n = n;
  return 0;
}

/* The seeds of this run: the slice of the sweep its shard is. */
static void slice(struct explore_opts *o) {
  uint64_t lo, hi;
  o->sweep_first = o->first;
  o->sweep_seeds = o->seeds;
  explore_shard_slice(o->seeds, o->shard_k, o->shard_n, &lo, &hi);
  o->first = o->sweep_first + lo;
  o->seeds = hi - lo;
}

static int positional(int argc, char **argv, struct cli *c) {
  if (c->merge) {
    if (optind == argc || (unsigned)(argc - optind) > EXPLORE_REPORTS_MAX) {
      fprintf(stderr, "uksim explore --merge: %s\n",
              optind == argc ? "which reports? (uksim explore --merge "
                               "A.xml B.xml ...)"
                             : "too many reports");
      return 2;
    }
    c->files = argv + optind;
    c->nfiles = (unsigned)(argc - optind);
    return -1;
  }
  if (optind + 1 != argc) {
    fprintf(stderr, "uksim explore: %s\n",
            optind == argc ? "which scenario? (uksim explore FILE.scn)"
                           : "one scenario at a time");
    return 2;
  }
  c->o.file = argv[optind];
  slice(&c->o);
  return -1;
}

static int parse(int argc, char **argv, struct cli *c) {
  static const struct option opts[] = {
      {"seeds", required_argument, NULL, 'n'},
      {"first", required_argument, NULL, 'f'},
      {"jobs", required_argument, NULL, 'j'},
      {"timeout", required_argument, NULL, 't'},
      {"keep-going", no_argument, NULL, 'k'},
      {"junit", required_argument, NULL, 'J'},
      {"quiet", no_argument, NULL, 'q'},
      {"poll-us", required_argument, NULL, 'P'},
      {"shard", required_argument, NULL, 'S'},
      {"merge", no_argument, NULL, 'M'},
      {"no-shrink", no_argument, NULL, 'N'},
      {"shrink-dir", required_argument, NULL, 'D'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  uint64_t v;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  int ch;
  c->o.seeds = 100;
  c->o.first = 1;
  c->o.jobs = cpus < 1                  ? 1
              : cpus > EXPLORE_JOBS_MAX ? EXPLORE_JOBS_MAX
                                        : (unsigned)cpus;
  c->o.timeout_s = 300;
  c->o.shard_k = c->o.shard_n = 1;
  optind = 1;
  while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (ch) {
    case 'n':
      if (number("--seeds", optarg, 1, EXPLORE_SEEDS_MAX, &c->o.seeds) < 0)
        return 2;
      break;
    case 'f':
      if (number("--first", optarg, 0, UINT64_MAX, &c->o.first) < 0)
        return 2;
      break;
    case 'j':
      if (number("--jobs", optarg, 1, EXPLORE_JOBS_MAX, &v) < 0)
        return 2;
      c->o.jobs = (unsigned)v;
      break;
    case 't':
      if (number("--timeout", optarg, 1, 86400, &v) < 0)
        return 2;
      c->o.timeout_s = (double)v;
      break;
    case 'k':
      c->o.keep_going = true;
      break;
    case 'J':
      c->junit = optarg;
      break;
    case 'q':
      c->quiet = true;
      break;
    case 'P':
      if (mach_poll_us_opt("uksim explore", optarg) < 0)
        return 2;
      break;
    case 'S':
      if (shard(optarg, &c->o) < 0)
        return 2;
      break;
    case 'M':
      c->merge = true;
      break;
    case 'N':
      c->no_shrink = true;
      break;
    case 'D':
      c->shrink_dir = optarg;
      break;
    case 'h':
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return 2;
    }
  }
  if (c->o.seeds - 1 > UINT64_MAX - c->o.first) {
    fprintf(stderr,
            "uksim explore: --first %" PRIu64 " --seeds %" PRIu64
            ": the last seed would be beyond %" PRIu64 "\n",
            c->o.first, c->o.seeds, UINT64_MAX);
    return 2;
  }
  if (c->merge && c->o.shard_n > 1) {
    fprintf(stderr, "uksim explore: --merge joins shards; it runs none\n");
    return 2;
  }
  return positional(argc, argv, c);
}

/* The first failure's output, then every failure's reproducer, the first
 * failure's first. */
static void failures(FILE *f, const struct explore_opts *o,
                     const struct explore_result *r) {
  if (r->first_failed < 0)
    return;
  const struct explore_seed *first = &r->seed[r->first_failed];
  if (first->status == -1 && o->timeout_s > 0)
    fprintf(f,
            "\nseed %" PRIu64 " timed out (--timeout %.0f s); its output:\n%s",
            first->seed, o->timeout_s, first->output ? first->output : "");
  else if (first->status == -1) /* --merge: the shards had the --timeout */
    fprintf(f, "\nseed %" PRIu64 " timed out; its output:\n%s", first->seed,
            first->output ? first->output : "");
  else
    fprintf(f, "\nseed %" PRIu64 " failed (exit status %d); its output:\n%s",
            first->seed, first->status, first->output ? first->output : "");
  for (uint64_t i = (uint64_t)r->first_failed; i < r->n; i++) {
    const struct explore_seed *s = &r->seed[i];
    if (!s->ran || s->status == 0)
      continue;
    char *repro = explore_repro(o, s);
    fprintf(f, "%sreproduce: uksim %s\n", s == first ? "\n" : "", repro);
    free(repro);
  }
}

static void report(const struct cli *c, const struct explore_result *r) {
  const struct explore_opts *o = &c->o;
  char shard[48] = "";
  if (o->shard_n > 1)
    snprintf(shard, sizeof shard, " shard %u/%u of %" PRIu64 " seeds,",
             o->shard_k, o->shard_n, o->sweep_seeds);
  printf("explore %s:%s %" PRIu64 " of %" PRIu64 " seeds run", o->file, shard,
         r->ran, o->seeds);
  if (o->seeds > 0)
    printf(" (%" PRIu64 "..%" PRIu64 ")", o->first, o->first + o->seeds - 1);
  printf(", %" PRIu64 " failed, %.1f s, %.0f seeds/min, %u jobs\n", r->failed,
         r->secs, r->secs > 0 ? (double)r->ran * 60 / r->secs : 0, o->jobs);
  failures(stdout, o, r);
}

/* Writes the JUnit report to path, or to stdout when path is NULL; 0 or
 * -1 with a message. */
static int write_junit(const char *path, const struct explore_opts *o,
                       const struct explore_result *r) {
  FILE *f = path ? fopen(path, "w") : stdout;
  int bad = f == NULL || explore_junit(o, r, f) < 0;
  if (f != NULL && (path ? fclose(f) : fflush(f)) != 0)
    bad = 1;
  if (bad)
    fprintf(stderr, "uksim explore: cannot write %s: %s\n",
            path ? path : "the report", strerror(errno));
  return bad ? -1 : 0;
}

/* --merge: the joined report to --junit or stdout, the summary to stdout
 * or (when the report is there) stderr. */
static int merge(struct cli *c) {
  struct explore_opts o;
  struct explore_result r;
  if (explore_merge(c->files, c->nfiles, &o, &r) < 0)
    return 2;
  FILE *f = c->junit ? stdout : stderr;
  int st = r.failed ? 1 : 0;
  if (write_junit(c->junit, &o, &r) < 0)
    st = 1;
  fprintf(f,
          "explore --merge: %u reports of %s: %" PRIu64 " of %" PRIu64
          " seeds run, %" PRIu64 " failed\n",
          c->nfiles, o.file, r.ran, o.seeds, r.failed);
  failures(f, &o, &r);
  explore_result_free(&r);
  return st;
}

int cmd_explore(int argc, char **argv) {
  struct cli c = {.junit = NULL};
  int st = parse(argc, argv, &c);
  if (st >= 0)
    return st;
  if (c.merge)
    return merge(&c);
  struct scn_err err;
  struct scn *s = scn_load(c.o.file, &err); /* bad input: before any run */
  if (s == NULL) {
    fprintf(stderr, "%s\n", err.text);
    return 2;
  }
  scn_free(s);
  c.o.progress = !c.quiet && isatty(STDERR_FILENO);
  c.o.log = !c.quiet;
  struct explore_result r;
  if (explore(&c.o, &r) < 0)
    return 1;
  if (r.first_failed >= 0 && !c.no_shrink) {
    if (c.o.log)
      fprintf(stderr, "explore: shrinking seed %" PRIu64 "\n",
              r.seed[r.first_failed].seed);
    explore_shrink(&c.o, &r.seed[r.first_failed], c.shrink_dir);
  }
  report(&c, &r);
  st = r.failed ? 1 : 0;
  if (c.junit && write_junit(c.junit, &c.o, &r) < 0)
    st = 1;
  explore_result_free(&r);
  return st;
}
