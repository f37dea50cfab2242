/* Unit tests for uksim explore's reports (cli/explore.c, explore_report.c):
 * the slices of a sweep, a JUnit report written and read back, shards
 * joined into the report of the whole sweep, and bad reports refused --
 * cut at every byte or with bytes changed, never a crash (this runs under
 * valgrind too).
 */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "explore.h"
#include "uksim/xalloc.h"

TestSuite(explore_report, .timeout = 60);

#define SEEDS 10

/* A sweep of SEEDS seeds from 5 where seeds 7 and 12 failed (12 timed
 * out), as slice k of n: the opts and result a run would have. */
static void sweep(unsigned k, unsigned n, struct explore_opts *o,
                  struct explore_result *r) {
  uint64_t lo, hi;
  explore_shard_slice(SEEDS, k, n, &lo, &hi);
  *o = (struct explore_opts){.file = "dir/a \"b\" & <c>.scn",
                             .first = 5 + lo,
                             .seeds = hi - lo,
                             .sweep_first = 5,
                             .sweep_seeds = SEEDS,
                             .shard_k = k,
                             .shard_n = n};
  memset(r, 0, sizeof *r);
  r->first_failed = -1;
  r->n = hi - lo;
  r->seed = xcalloc(r->n + 1, sizeof *r->seed);
  for (uint64_t i = 0; i < r->n; i++) {
    struct explore_seed *s = &r->seed[i];
    s->seed = o->first + i;
    s->ran = true;
    r->ran++;
    if (s->seed != 7 && s->seed != 12)
      continue;
    s->status = s->seed == 7 ? 1 : -1;
    s->output = xstrdup("  FAIL errors == 0: <1> & \"2\"\nreproduce: x\n");
    r->failed++;
    if (r->first_failed < 0)
      r->first_failed = (int64_t)i;
  }
}

/* The report of slice k of n, in a file of its own (path, heap). */
static char *report_file(unsigned k, unsigned n) {
  struct explore_opts o;
  struct explore_result r;
  char *path = xstrdup("/tmp/test-explore-report-XXXXXX");
  int fd = mkstemp(path);
  cr_assert_geq(fd, 0);
  FILE *f = fdopen(fd, "w");
  sweep(k, n, &o, &r);
  cr_assert_eq(explore_junit(&o, &r, f), 0);
  fclose(f);
  explore_result_free(&r);
  return path;
}

static char *junit_text(const struct explore_opts *o,
                        const struct explore_result *r) {
  char *buf = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&buf, &n);
  cr_assert_eq(explore_junit(o, r, f), 0);
  fclose(f);
  return buf;
}

static char *file_text(const char *path) {
  FILE *f = fopen(path, "r");
  char *buf = xcalloc(1, 1 << 16);
  size_t n = fread(buf, 1, (1 << 16) - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static void write_text(const char *path, const char *text, size_t n) {
  FILE *f = fopen(path, "w");
  fwrite(text, 1, n, f);
  fclose(f);
}

Test(explore_report, slices_are_disjoint_and_cover_the_sweep) {
  for (uint64_t seeds = 0; seeds <= 40; seeds++)
    for (unsigned n = 1; n <= 50; n++) {
      uint64_t next = 0, lo, hi;
      for (unsigned k = 1; k <= n; k++) {
        explore_shard_slice(seeds, k, n, &lo, &hi);
        cr_assert_eq(lo, next, "%" PRIu64 " seeds, %u/%u", seeds, k, n);
        cr_assert_leq(lo, hi);
        next = hi;
      }
      cr_assert_eq(next, seeds, "%" PRIu64 " seeds in %u", seeds, n);
    }
}

Test(explore_report, shards_join_into_the_unsharded_report) {
  char *files[3];
  for (unsigned k = 0; k < 3; k++)
    files[k] = report_file(3 - k, 3); /* in any order */
  struct explore_opts o, whole;
  struct explore_result r, all;
  cr_assert_eq(explore_merge(files, 3, &o, &r), 0);
  cr_assert_eq(r.ran, SEEDS);
  cr_assert_eq(r.failed, 2);
  cr_assert_eq(r.first_failed, 2, "seed 7 is index 2");
  cr_assert_str_eq(r.seed[2].output,
                   "  FAIL errors == 0: <1> & \"2\"\nreproduce: x\n");
  sweep(1, 1, &whole, &all);
  char *want = junit_text(&whole, &all), *got = junit_text(&o, &r);
  cr_assert_str_eq(got, want);
  free(want);
  free(got);
  explore_result_free(&r);
  explore_result_free(&all);
  for (unsigned k = 0; k < 3; k++) {
    unlink(files[k]);
    free(files[k]);
  }
}

Test(explore_report, the_same_slice_twice_and_a_missing_one_are_refused) {
  char *files[3] = {report_file(1, 3), report_file(2, 3), report_file(2, 3)};
  struct explore_opts o;
  struct explore_result r;
  cr_assert_eq(explore_merge(files, 3, &o, &r), -1, "2/3 twice");
  cr_assert_eq(explore_merge(files, 2, &o, &r), -1, "3/3 missing");
  unlink(files[2]);
  free(files[2]);
  files[2] = report_file(3, 4);
  cr_assert_eq(explore_merge(files, 3, &o, &r), -1, "another sweep");
  for (unsigned k = 0; k < 3; k++) {
    unlink(files[k]);
    free(files[k]);
  }
}

/* A report cut at every byte is refused (but for its last newline), and
 * one with a byte changed at every third place is read or refused --
 * valgrind sees no bad access or leak either way.  The messages are
 * captured, not shown. */
Test(explore_report, cut_or_changed_reports_never_crash,
     .init = cr_redirect_stderr) {
  char *path = report_file(1, 1), *text = file_text(path);
  size_t n = strlen(text);
  static const char bytes[] = "<>/\"'=&;#x0 \n?";
  struct explore_opts o;
  struct explore_result r;
  for (size_t cut = 0; cut + 1 < n; cut++) {
    write_text(path, text, cut);
    cr_assert_eq(explore_merge(&path, 1, &o, &r), -1, "cut at %zu", cut);
  }
  for (size_t at = 0; at < n; at += 3)
    for (size_t b = 0; b < sizeof bytes - 1; b++) {
      char save = text[at];
      text[at] = bytes[b];
      write_text(path, text, n);
      if (explore_merge(&path, 1, &o, &r) == 0)
        explore_result_free(&r);
      text[at] = save;
    }
  unlink(path);
  free(path);
  free(text);
}
