/* A task that comes back to its origin (issue 16; sim-kernel/migcons.h,
 * "came home"): real machines a and b with their migration servers
 * (migd_nodes.h).  The task (apps/mtask --read-after MOVES) starts at a as
 * task1; it moves a -> b -> a, and every line typed at a to task1 before,
 * while and after it is away must reach it exactly once and in the order
 * typed, printed at a as task1's, with one live task1 in a's listing. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "migd_nodes.h"

#define LINES_MAX 128

static char typed[LINES_MAX][16];
static int ntyped;

static void setup(void) {
  if (getenv("UKSIM_UNDER_VALGRIND"))
    cr_skip_test("migration is real time; it cannot run under valgrind");
  ntyped = 0;
}

TestSuite(migrate_return, .init = setup, .fini = mn_stop, .timeout = 240);

/* Lines `prefix`NN typed at a to task1, as a user knows the task. */
static void type_at_a(const char *prefix, int count) {
  for (int i = 0; i < count; i++) {
    int rc;
    cr_assert_lt(ntyped, LINES_MAX);
    snprintf(typed[ntyped], sizeof typed[0], "%s%02d", prefix, ntyped);
    const char *o = mn_ctl(&mn[0], &rc, "input 1 '%s\n'", typed[ntyped]);
    cr_assert_eq(rc, 0, "input %s: %s", typed[ntyped], o);
    ntyped++;
  }
}

/* Moves task `id` of node `from` to node `to` by method, while a child
 * types `during` lines at a to task1: they land before, in or after the
 * move. */
static void move_by(int from, int id, int to, const char *method, int during) {
  int first = ntyped, rc, st;
  cr_assert_leq(first + during, LINES_MAX);
  fflush(NULL);
  pid_t kid = fork();
  cr_assert_geq(kid, 0);
  if (kid == 0) {
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
  for (int i = 0; i < during; i++)
    snprintf(typed[first + i], sizeof typed[0], "m%02d", first + i);
  ntyped = first + during;
  cr_assert_eq(mn_running(&mn[to]), 1, "the task runs at %s", mn[to].name);
}

static void move_typing(int from, int id, int to, int during) {
  move_by(from, id, to, "eager", during);
}

/* a's console shows task1's echoes, exactly the lines typed, in order. */
static void a_echoes_typed(void) {
  char last[64], line[256];
  snprintf(last, sizeof last, "task1 echo %s\n", typed[ntyped - 1]);
  mn_wait_for(mn[0].out, last);
  usleep(100000); /* a line repeated after the last would show now */
  FILE *f = fopen(mn[0].out, "r");
  cr_assert_not_null(f);
  int k = 0;
  while (fgets(line, sizeof line, f)) {
    char *echo = strstr(line, " echo ");
    if (!echo)
      continue;
    line[strcspn(line, "\n")] = 0;
    cr_assert(strncmp(line, "task1 echo ", 11) == 0,
              "an echo of another id: '%s'", line);
    cr_assert_lt(k, ntyped, "more echoes than lines typed: %s", line);
    cr_assert_str_eq(echo + 6, typed[k], "echo %d is '%s', typed '%s'", k,
                     echo + 6, typed[k]);
    k++;
  }
  fclose(f);
  cr_assert_eq(k, ntyped, "%d echoes of %d lines", k, ntyped);
}

/* a lists the task once, running, as task1. */
static void a_lists_one_task1(void) {
  int rc;
  const char *o = mn_ctl(&mn[0], &rc, "ps");
  cr_assert_eq(rc, 0, "%s", o);
  cr_assert(strstr(o, "task1 running") != NULL, "a's listing: %s", o);
  cr_assert(strstr(o, "moved") == NULL, "a's listing: %s", o);
  cr_assert_eq(mn_running(&mn[0]), 1, "a's listing: %s", o);
}

static void start_task(int read_after) {
  int rc;
  mn_start("", "");
  const char *o = mn_ctl(&mn[0], &rc,
                         "start %s/apps/mtask --threads 1 --limit 0 "
                         "--period 10 --read-after %d",
                         mn_build(), read_after);
  cr_assert_eq(rc, 0, "%s", o);
  mn_wait_for(mn[0].out, "task1 t0 3\n");
}

/* The task reads nothing until it is back: what a typed before, while it
 * ran at b and while it came back is all unread at a's return, in b's
 * pipe, held at a, or on its way. */
Test(migrate_return, input_typed_to_task1_all_along_a_b_a_comes_out_once) {
  start_task(2);
  type_at_a("b", 4);
  move_typing(0, 1, 1, 6);
  type_at_a("x", 4);
  move_typing(1, 1, 0, 6);
  type_at_a("a", 4);
  a_echoes_typed();
  a_lists_one_task1();
  cr_expect(!mn_file_has(mn[1].out, "echo"), "the echoes belong on a's");
}

/* The task reads all along: it comes back twice, a -> b -> a -> b -> a,
 * and what is typed to task1 at a keeps reaching it. */
Test(migrate_return, a_second_return_trip_keeps_input) {
  start_task(0);
  type_at_a("b", 3);
  move_typing(0, 1, 1, 5);
  type_at_a("x", 3);
  move_typing(1, 1, 0, 5);
  type_at_a("y", 3);
  /* At b the task is a new entry again: b's second. */
  move_typing(0, 1, 1, 5);
  type_at_a("z", 3);
  move_typing(1, 2, 0, 5);
  type_at_a("a", 3);
  a_echoes_typed();
  a_lists_one_task1();
}

/* Out by pre-copy, back by demand paging: the task resumes at a before
 * its pages are there, and is task1 with its input from the start. */
Test(migrate_return, a_return_by_demand_paging_keeps_input) {
  start_task(2);
  type_at_a("b", 4);
  move_by(0, 1, 1, "precopy", 5);
  type_at_a("x", 4);
  move_by(1, 1, 0, "demand", 5);
  type_at_a("a", 4);
  a_echoes_typed();
  a_lists_one_task1();
}

/* Home by way of a third node, a -> b -> c -> a: c, not b, hands it
 * back, and a's first entry is the one that held its input meanwhile. */
Test(migrate_return, a_return_from_a_third_node_keeps_input) {
  start_task(3);
  type_at_a("b", 3);
  move_typing(0, 1, 1, 4);
  type_at_a("x", 3);
  move_typing(1, 1, 2, 4);
  type_at_a("y", 3);
  move_typing(2, 1, 0, 4);
  type_at_a("a", 3);
  a_echoes_typed();
  a_lists_one_task1();
}
