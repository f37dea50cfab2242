/* `uksim bench replace --quick --json --csv F` end to end (issue 3): every
 * run completes, the figures the issue names are there and positive, no
 * request was lost or answered wrongly while kvs was being replaced, and
 * the CSV says what the JSON says.
 *
 * Under valgrind (UKSIM_UNDER_VALGRIND) only the 4 KiB runs: the popen'd
 * uksim runs natively (the wrapper skips /bin/sh), but the machine is
 * shared with slowed-down tests and 256 MiB runs would only add time. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "uksim_paths.h"

static char *run(const char *cmd, int *status) {
  size_t cap = 1 << 16, n = 0;
  char *out = malloc(cap);
  FILE *f = popen(cmd, "r");
  cr_assert_not_null(f);
  for (size_t got; (got = fread(out + n, 1, cap - n - 1, f)) > 0;) {
    n += got;
    if (n + 1 == cap)
      out = realloc(out, cap *= 2);
  }
  out[n] = '\0';
  *status = pclose(f);
  return out;
}

static void expect_positive(json_t *j, const char *key) {
  json_t *v = json_object_get(j, key);
  cr_expect(json_is_number(v), "%s missing", key);
  cr_expect_gt(json_number_value(v), 0, "%s = %g", key, json_number_value(v));
}

static void expect_runs_clean(json_t *j) {
  size_t i;
  json_t *r;
  cr_assert(json_is_array(json_object_get(j, "runs")));
  json_array_foreach(json_object_get(j, "runs"), i, r) {
    const char *m = json_string_value(json_object_get(r, "method"));
    cr_expect(json_is_true(json_object_get(r, "ok")), "run %s not ok", m);
    cr_expect(json_is_true(json_object_get(r, "exactly_once")), "%s", m);
    cr_expect_eq(json_integer_value(json_object_get(r, "lost")), 0, "%s", m);
    cr_expect_eq(json_integer_value(json_object_get(r, "errors")), 0, "%s", m);
    cr_expect_gt(json_integer_value(json_object_get(r, "in_swap")), 0,
                 "%s: no request was in flight during the swap", m);
    cr_expect_geq(json_integer_value(json_object_get(r, "attaches")), 1, "%s",
                  m);
    cr_expect_eq(json_integer_value(json_object_get(r, "swaps")), 3,
                 "%s: --quick takes the median of 3 swaps", m);
  }
}

/* The CSV has one row per JSON run with the same fields and values. */
static void expect_csv_matches(const char *path, json_t *j) {
  char line[4096], head[4096], *names[64], *vals[64], *save;
  size_t nn = 0, k = 0;
  FILE *f = fopen(path, "r");
  cr_assert_not_null(f, "no CSV at %s", path);
  cr_assert_not_null(fgets(head, sizeof head, f));
  head[strcspn(head, "\n")] = 0;
  for (char *t = strtok_r(head, ",", &save); t && nn < 64;
       t = strtok_r(NULL, ",", &save))
    names[nn++] = t;
  cr_assert_gt(nn, 20, "CSV header: %zu fields", nn);
  for (; fgets(line, sizeof line, f); k++) {
    json_t *r = json_array_get(json_object_get(j, "runs"), k);
    size_t nv = 0;
    cr_assert_not_null(r, "CSV row %zu has no JSON run", k);
    line[strcspn(line, "\n")] = 0;
    for (char *t = strtok_r(line, ",", &save); t && nv < 64;
         t = strtok_r(NULL, ",", &save))
      vals[nv++] = t;
    cr_assert_eq(nv, nn, "row %zu: %zu values, %zu names", k, nv, nn);
    for (size_t i = 0; i < nn; i++) {
      json_t *v = json_object_get(r, names[i]);
      cr_assert_not_null(v, "JSON run lacks %s", names[i]);
      if (json_is_string(v))
        cr_expect_str_eq(vals[i], json_string_value(v), "%s", names[i]);
      else if (json_is_boolean(v))
        cr_expect_eq(atoi(vals[i]), json_is_true(v), "%s", names[i]);
      else
        cr_expect_eq(strtod(vals[i], NULL), json_number_value(v), "%s",
                     names[i]);
    }
  }
  cr_expect_eq(k, json_array_size(json_object_get(j, "runs")));
  fclose(f);
}

Test(bench_replace, quick_json_has_the_figures_and_loses_nothing,
     .timeout = 300) {
  bool vg = getenv("UKSIM_UNDER_VALGRIND") != NULL;
  char cmd[512], csv[] = "/tmp/uksim-bench-replace-XXXXXX";
  int st;
  close(mkstemp(csv));
  snprintf(cmd, sizeof cmd, "%s bench replace --quick --json --csv %s%s",
           UKSIM_EXE_DEFAULT, csv, vg ? " --sizes 4K" : "");
  char *out = run(cmd, &st);
  cr_expect_eq(st, 0, "exit status %d", st);
  json_error_t err;
  json_t *j = json_loads(out, 0, &err);
  cr_assert_not_null(j, "not JSON (%s): %s", err.text, out);
  static const char *const keys[] = {"single_4k_ms",  "chain_4k_ms",
                                     "copy_4k_ms",    "single_256m_ms",
                                     "chain_256m_ms", "copy_256m_ms"};
  for (size_t i = 0; i < (vg ? 3u : 6u); i++)
    expect_positive(j, keys[i]);
  if (!vg) {
    expect_positive(j, "single_256m_over_4k");
    expect_positive(j, "copy_256m_over_single_256m");
  }
  cr_expect_eq(json_integer_value(json_object_get(j, "swaps_per_run")), 3);
  cr_expect_eq(json_integer_value(json_object_get(j, "lost")), 0);
  cr_expect_eq(json_integer_value(json_object_get(j, "errors")), 0);
  cr_expect(json_is_boolean(json_object_get(j, "targets_met")));
  expect_runs_clean(j);
  expect_csv_matches(csv, j);
  unlink(csv);
  json_decref(j);
  free(out);
}
