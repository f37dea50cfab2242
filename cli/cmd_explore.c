/* uksim explore: one scenario under many seeds (explore.h).
 *
 * A seed chooses the schedule (the lock-step scheduler's choices) and
 * every range the scenario leaves open (`on request 1..900 to kvs: crash
 * kvs`, `--fault panic@request:10..500`, `at 1ms..20ms ...`): exploring
 * seeds explores interleavings and fault points.  The first failing seed
 * is printed with its output and the exact command that reproduces it.
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
          "usage: uksim explore FILE.scn [OPTIONS]\n\n"
          "Run a scenario under many seeds, several at a time.  A seed "
          "chooses the\nschedule and every range the scenario leaves open "
          "(a fault point such as\n'on request 1..900 to kvs: crash kvs'), "
          "so seeds explore interleavings\nand fault points.  Stops at the "
          "first failing seed and prints the command\nthat reproduces "
          "it.\n\n"
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
          "--help)\n\n"
          "Exit status: 0 every seed passed, 1 one failed, 2 bad input.\n",
          EXPLORE_SEEDS_MAX, EXPLORE_JOBS_MAX);
}

struct cli {
  struct explore_opts o;
  const char *junit;
  bool quiet;
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
  if (optind + 1 != argc) {
    fprintf(stderr, "uksim explore: %s\n",
            optind == argc ? "which scenario? (uksim explore FILE.scn)"
                           : "one scenario at a time");
    return 2;
  }
  c->o.file = argv[optind];
  return -1;
}

static void report(const struct cli *c, const struct explore_result *r) {
  const struct explore_opts *o = &c->o;
  printf("explore %s: %" PRIu64 " of %" PRIu64 " seeds run (%" PRIu64
         "..%" PRIu64 "), %" PRIu64 " failed, %.1f s, %.0f seeds/min, %u "
         "jobs\n",
         o->file, r->ran, o->seeds, o->first, o->first + o->seeds - 1,
         r->failed, r->secs, r->secs > 0 ? (double)r->ran * 60 / r->secs : 0,
         o->jobs);
  if (r->first_failed < 0)
    return;
  for (uint64_t i = 0; i < r->n; i++) {
    const struct explore_seed *s = &r->seed[i];
    if (!s->ran || s->status == 0)
      continue;
    if ((int64_t)i == r->first_failed && s->status == -1)
      printf("\nseed %" PRIu64 " timed out (--timeout %.0f s); its output:\n%s",
             s->seed, o->timeout_s, s->output ? s->output : "");
    else if ((int64_t)i == r->first_failed)
      printf("\nseed %" PRIu64 " failed (exit status %d); its output:\n%s",
             s->seed, s->status, s->output ? s->output : "");
    printf("%sreproduce: uksim run %s --seed %" PRIu64 "\n",
           (int64_t)i == r->first_failed ? "\n" : "", o->file, s->seed);
  }
}

int cmd_explore(int argc, char **argv) {
  struct cli c = {.junit = NULL};
  int st = parse(argc, argv, &c);
  if (st >= 0)
    return st;
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
  report(&c, &r);
  st = r.failed ? 1 : 0;
  if (c.junit) {
    FILE *f = fopen(c.junit, "w");
    int bad = f == NULL || explore_junit(&c.o, &r, f) < 0;
    if ((f != NULL && fclose(f) != 0) || bad) {
      fprintf(stderr, "uksim explore: cannot write %s: %s\n", c.junit,
              strerror(errno));
      st = 1;
    }
  }
  explore_result_free(&r);
  return st;
}
