/*
 * criterion_main.c: the main of every Criterion test binary.  It is
 * Criterion's own main, except for a run in which a test was skipped
 * (cr_skip_test, or .disabled in its source) and none failed: that run
 * exits 77, which meson reports as SKIP, where Criterion exits 0 and meson
 * would print OK for a test that did not run.  A failure still exits 1.
 *
 * With CI=true in the environment a skip fails the run (exit 1) unless
 * tests/ci-skips.txt under UKSIM_SOURCE_ROOT names it, with why, on a line
 * "SETUP SUITE/TEST: why"; SETUP is "valgrind" under meson's valgrind setup
 * (UKSIM_UNDER_VALGRIND=1) and "default" otherwise.  tests/skip.sh does the
 * same for the shell tests.  Every skip is printed with its reason, since
 * Criterion's own report leaves skipped tests out.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <criterion/options.h>

/* What the POST_ALL hook found, for main's exit status. */
static enum {
  RUN_NO_SKIP,
  RUN_SKIPPED,       /* every skip may be (CI unset, or all listed) */
  RUN_SKIP_UNLISTED, /* CI=true and a skip is not in the list */
} run_skips;

/* Whether a test that did not run counts as skipped.  With --filter,
 * Criterion disables every test the pattern leaves out, and those are not
 * skips; a test disabled in its source cannot be told from them then. */
static bool skipped(const struct criterion_test_stats *t) {
  if (t->test_status != CR_STATUS_SKIPPED)
    return false;
  return !t->test->data->disabled || criterion_options.pattern == NULL;
}

/* Whether tests/ci-skips.txt has a line "SETUP NAME: why" with a reason.
 * A missing list names nothing. */
static bool listed(const char *setup, const char *name) {
  const char *root = getenv("UKSIM_SOURCE_ROOT");
  char path[4096], line[1024], key[512], s[64], n[512];
  bool found = false;
  FILE *f;
  snprintf(path, sizeof path, "%s/tests/ci-skips.txt", root ? root : ".");
  snprintf(key, sizeof key, "%s:", name);
  if ((f = fopen(path, "r")) == NULL) {
    fprintf(stderr, "%s: %s\n", path, strerror(errno));
    return false;
  }
  while (!found && fgets(line, sizeof line, f) != NULL) {
    int why = 0;
    found = sscanf(line, "%63s %511s %n", s, n, &why) == 2 && why > 0 &&
            line[why] != '\0' && strcmp(s, setup) == 0 && strcmp(n, key) == 0;
  }
  fclose(f);
  return found;
}

/* Prints one skipped test and, under CI=true, whether the list allows it.
 * Returns false for a skip that fails the run. */
static bool report_skip(const struct criterion_test_stats *t) {
  const char *setup = getenv("UKSIM_UNDER_VALGRIND") ? "valgrind" : "default";
  const char *ci = getenv("CI");
  char name[512];
  snprintf(name, sizeof name, "%s/%s", t->test->category, t->test->name);
  fprintf(stderr, "%s: skipped %s: %s\n", program_invocation_short_name, name,
          t->message && *t->message ? t->message : "disabled");
  if (ci == NULL || strcmp(ci, "true") != 0 || listed(setup, name))
    return true;
  fprintf(stderr,
          "%s: %s is not in tests/ci-skips.txt (as \"%s %s: why\"), "
          "and under CI=true a skip not listed fails\n",
          program_invocation_short_name, name, setup, name);
  return false;
}

/* Runs in the runner process after every test has finished. */
ReportHook(POST_ALL)(struct criterion_global_stats *stats) {
  for (struct criterion_suite_stats *s = stats->suites; s; s = s->next)
    for (struct criterion_test_stats *t = s->tests; t; t = t->next) {
      if (!skipped(t))
        continue;
      if (run_skips == RUN_NO_SKIP)
        run_skips = RUN_SKIPPED;
      if (!report_skip(t))
        run_skips = RUN_SKIP_UNLISTED;
    }
}

int main(int argc, char *argv[]) {
  struct criterion_test_set *tests = criterion_initialize();
  int status = 0;
  if (criterion_handle_args(argc, argv, true)) {
    if (!criterion_run_all_tests(tests))
      status = 1;
    else if (run_skips == RUN_SKIP_UNLISTED)
      status = 1;
    else if (run_skips == RUN_SKIPPED)
      status = 77;
  }
  criterion_finalize(tests);
  return status;
}
