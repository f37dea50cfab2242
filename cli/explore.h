/* Seed exploration: one scenario run under many seeds, several at a time.
 *
 * Each seed is a separate `uksim run FILE --seed S --quiet` (a machine of
 * its own, so runs cannot disturb each other), started by libuv with its
 * output in a memfd.  Seeds are started in increasing order, at most `jobs`
 * at once.  When one fails, no further seed is started and the runs in
 * flight are let finish: every seed below the smallest failing one has then
 * run and passed, so the failure reported is the first one in seed order.
 * With keep_going every seed runs and every failure is recorded.
 */
#ifndef UKSIM_EXPLORE_H
#define UKSIM_EXPLORE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define EXPLORE_SEEDS_MAX 1000000u /* seeds in one exploration */
#define EXPLORE_JOBS_MAX 64u       /* runs at once */
#define EXPLORE_OUTPUT_MAX 65536u  /* bytes of a failed run's output kept */

struct explore_opts {
  const char *file; /* the scenario, as the user wrote it */
  uint64_t first;   /* the first seed */
  uint64_t seeds;   /* how many, 1..EXPLORE_SEEDS_MAX */
  unsigned jobs;    /* 1..EXPLORE_JOBS_MAX */
  double timeout_s; /* a run taking longer is killed and fails; 0: none */
  bool keep_going;  /* run every seed even after a failure */
  bool progress;    /* draw a progress bar on stderr */
  bool log;         /* else a line now and then on stderr (CI logs) */
};

/* One seed's outcome. */
struct explore_seed {
  uint64_t seed;
  bool ran;
  int status; /* the run's exit status; 128 + N for signal N; -1 timeout */
  double secs;
  char *output; /* a failed run's output (heap, NUL-terminated), or NULL */
};

struct explore_result {
  struct explore_seed *seed; /* n entries, in seed order */
  uint64_t n;
  uint64_t ran, failed;
  int64_t first_failed; /* index into seed[], -1 when none failed */
  double secs;          /* wall time of the whole exploration */
};

/* Runs the exploration.  0, or -1 with a message on stderr when it could
 * not start at all (no memory, the uksim binary not found). */
int explore(const struct explore_opts *o, struct explore_result *r);
void explore_result_free(struct explore_result *r);

/* Writes the result as a JUnit XML report; 0 or -1. */
int explore_junit(const struct explore_opts *o, const struct explore_result *r,
                  FILE *f);

#endif
