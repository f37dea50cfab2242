/* Seed exploration: one scenario run under many seeds, several at a time.
 *
 * Each seed is a separate `uksim run FILE --seed S --quiet` (a machine of
 * its own, so runs cannot disturb each other), started by libuv with its
 * output in a memfd.  Seeds are started in increasing order, at most `jobs`
 * at once.  When one fails, no further seed is started and the runs in
 * flight are let finish: every seed below the smallest failing one has then
 * run and passed, so the failure reported is the first one in seed order.
 * With keep_going every seed runs and every failure is recorded.
 *
 * Sharding: a sweep of seeds S .. S+N-1 splits into `shards` contiguous
 * slices; slice K (1-based) holds the indices [N(K-1)/shards, NK/shards),
 * so the slices are disjoint, in seed order, and their union is the sweep
 * whatever N and shards (a slice may be empty when shards > N).  Each
 * shard's JUnit report names its sweep and slice (<properties>), so that
 * explore_merge() can join the reports of one sweep and refuse reports of
 * different sweeps, overlapping slices or missing ones.  Within a slice the
 * first-failure rule above holds, so the smallest failing seed of the
 * joined reports is the one an unsharded run would have stopped at.
 */
#ifndef UKSIM_EXPLORE_H
#define UKSIM_EXPLORE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define EXPLORE_SEEDS_MAX 1000000u  /* seeds in one exploration */
#define EXPLORE_JOBS_MAX 64u        /* runs at once */
#define EXPLORE_OUTPUT_MAX 65536u   /* bytes of a failed run's output kept */
#define EXPLORE_SHRINK_RUNS_MAX 64u /* runs one shrink may take */
#define EXPLORE_SHRINK_POINTS_MAX                                              \
  64u                               /* ranges, and faults, one shrink sees     \
                                     */
#define EXPLORE_SHARDS_MAX 100000u  /* slices of one sweep (--shard K/N) */
#define EXPLORE_REPORTS_MAX 100000u /* reports one --merge joins */
/* Bytes of one JUnit report --merge reads: a million seeds, each failed
 * with a whole EXPLORE_OUTPUT_MAX of output, escaped, would not fit; a
 * report that large is refused, not truncated. */
#define EXPLORE_REPORT_BYTES_MAX (1024u * 1024u * 1024u)

struct explore_opts {
  const char *file; /* the scenario, as the user wrote it */
  uint64_t first;   /* the first seed this run runs */
  uint64_t seeds;   /* how many, 0..EXPLORE_SEEDS_MAX (0: an empty shard) */
  /* The whole sweep and this run's slice of it (1/1 when not sharded). */
  uint64_t sweep_first, sweep_seeds;
  unsigned shard_k, shard_n;
  unsigned jobs;     /* 1..EXPLORE_JOBS_MAX */
  double timeout_s;  /* a run taking longer is killed and fails; 0: none */
  bool keep_going;   /* run every seed even after a failure */
  bool progress;     /* draw a progress bar on stderr */
  bool log;          /* else a line now and then on stderr (CI logs) */
  const char *jsonl; /* one seed: keep its trace here (shrinking), or NULL */
};

/* One seed's outcome. */
struct explore_seed {
  uint64_t seed;
  bool ran;
  int status; /* the run's exit status; 128 + N for signal N; -1 timeout */
  double secs;
  char *output; /* a failed run's output (heap, NUL-terminated), or NULL */
  char *repro;  /* a failed run's reproducer, after "uksim " (heap), or NULL:
                   then "run FILE --seed S" */
};

struct explore_result {
  struct explore_seed *seed; /* n entries, in seed order */
  uint64_t n;
  uint64_t ran, failed;
  int64_t first_failed; /* index into seed[], -1 when none failed */
  double secs;          /* wall time of the whole exploration */
  char *name;           /* explore_merge(): the sweep's scenario (heap) */
};

/* Runs the exploration.  0, or -1 with a message on stderr when it could
 * not start at all (no memory, the uksim binary not found). */
int explore(const struct explore_opts *o, struct explore_result *r);
void explore_result_free(struct explore_result *r);

/* Writes the result as a JUnit XML report; 0 or -1. */
int explore_junit(const struct explore_opts *o, const struct explore_result *r,
                  FILE *f);

/* Why a run with this exit status failed, in words. */
const char *explore_why(int status);

/* Slice k (1-based) of n of a sweep of `seeds` seeds: indices [*lo, *hi). */
void explore_shard_slice(uint64_t seeds, unsigned k, unsigned n, uint64_t *lo,
                         uint64_t *hi);

/* The command that reproduces seed s, after "uksim " (heap). */
char *explore_repro(const struct explore_opts *o, const struct explore_seed *s);

/* Shrinks seed s's failure (explore_shrink.c): the fewest faults and the
 * earliest fault points under which the seed fails the same way, written
 * as a scenario in dir (NULL: the scenario's own directory).  0 with
 * s->repro running it and s->output telling what was shrunk, or -1 with s
 * unchanged (a timed-out seed or one that never ran, nothing to shrink,
 * the rewrite does not fail alike, a file that cannot be written). */
int explore_shrink(const struct explore_opts *o, struct explore_seed *s,
                   const char *dir);

/* Joins the JUnit reports of the shards of one sweep (explore_report.c):
 * fills *o (o->file points into *r's memory, freed with it) and *r as if one
 * unsharded run had written them.  0, or -1 with a message naming the file
 * (and line) on stderr: unreadable or malformed XML, not a uksim explore
 * report, reports of different sweeps, overlapping or missing slices. */
int explore_merge(char *const *files, unsigned n, struct explore_opts *o,
                  struct explore_result *r);

#endif
