/* Console input in the migration tests: see migd_typing.h. */
#include "migd_typing.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

char mt_typed[MT_LINES_MAX][16];
int mt_ntyped;

void mt_setup(void) {
  if (getenv("UKSIM_UNDER_VALGRIND"))
    cr_skip_test("migration is real time; it cannot run under valgrind");
  mt_ntyped = 0;
}

void mt_start_task(int read_after) {
  int rc;
  const char *o = mn_ctl(&mn[0], &rc,
                         "start %s/apps/mtask --threads 1 --limit 0 "
                         "--period 10 --read-after %d",
                         mn_build(), read_after);
  cr_assert_eq(rc, 0, "%s", o);
  mn_wait_for(mn[0].out, "task1 t0 3\n");
}

static void type_line(struct mn_node *n, int id, const char *prefix) {
  int rc;
  cr_assert_lt(mt_ntyped, MT_LINES_MAX);
  char *line = mt_typed[mt_ntyped];
  snprintf(line, sizeof mt_typed[0], "%s%02d", prefix, mt_ntyped);
  const char *o = mn_ctl(n, &rc, "input %d '%s\n'", id, line);
  cr_assert_eq(rc, 0, "input %s: %s", line, o);
  mt_ntyped++;
}

void mt_type_lines(struct mn_node *n, int id, const char *prefix, int count) {
  for (int i = 0; i < count; i++)
    type_line(n, id, prefix);
}

void mt_move_typing(int from, int id, int to, const char *method, int during) {
  int first = mt_ntyped, rc, st;
  cr_assert_leq(first + during, MT_LINES_MAX);
  fflush(NULL);
  pid_t kid = fork();
  cr_assert_geq(kid, 0);
  if (kid == 0) {
    /* No assertions here: a child reports by its status. */
    for (int i = 0; i < during; i++) {
      mn_ctl(&mn[0], &rc, "input 1 'm%02d\n'", first + i);
      if (rc != 0)
        _exit(1);
    }
    _exit(0);
  }
  const char *o =
      mn_ctl(&mn[from], &rc, "move %d %s %s", id, mn[to].name, method);
  cr_assert_eq(rc, 0, "move to %s: %s", mn[to].name, o);
  cr_assert_eq(waitpid(kid, &st, 0), kid);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "typing during the move");
  /* The child typed them: note them here as it did. */
  for (int i = 0; i < during; i++)
    snprintf(mt_typed[first + i], sizeof mt_typed[0], "m%02d", first + i);
  mt_ntyped = first + during;
  cr_assert_eq(mn_running(&mn[to]), 1, "the task runs at %s", mn[to].name);
}

void mt_echoes_are_typed(const char *path, int id) {
  char last[64], line[256], want[32];
  cr_assert_gt(mt_ntyped, 0);
  snprintf(last, sizeof last, "task%d echo %s\n", id, mt_typed[mt_ntyped - 1]);
  mn_wait_for(path, last);
  usleep(100000); /* a line repeated after the last would show now */
  FILE *f = fopen(path, "r");
  cr_assert_not_null(f);
  int k = 0;
  snprintf(want, sizeof want, "task%d echo ", id);
  while (fgets(line, sizeof line, f)) {
    if (!strstr(line, " echo "))
      continue;
    line[strcspn(line, "\n")] = 0;
    cr_assert(strncmp(line, want, strlen(want)) == 0,
              "%s: an echo of another id: '%s'", path, line);
    cr_assert_lt(k, mt_ntyped, "%s: more echoes than lines typed: %s", path,
                 line);
    cr_assert_str_eq(line + strlen(want), mt_typed[k],
                     "%s: echo %d is '%s', typed '%s'", path, k,
                     line + strlen(want), mt_typed[k]);
    k++;
  }
  fclose(f);
  cr_assert_eq(k, mt_ntyped, "%s: %d echoes of %d lines", path, k, mt_ntyped);
}
