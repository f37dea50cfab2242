/* Console input at a move (issue 16 "I/O"; sim-kernel/migcons.h): three
 * real machines a, b and c with their migration servers (migd_nodes.h).
 * The task (apps/mtask --read-after MOVES) reads no input until it has
 * moved MOVES times, so the lines typed at its origin before a move are
 * still in the console pipe when it moves.  Each check lists the "echo"
 * lines the task printed, in order: every line typed must be there exactly
 * once and in the order typed, whether typed before a move, during it or
 * after it, by each method, across A -> B -> C, across a move that fails,
 * and at the destination once the origin is gone. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "migd_nodes.h"

#define LINES_MAX 256

/* The lines typed so far, in order, and what each check expects. */
static char typed[LINES_MAX][16];
static int ntyped;

static void setup(void) {
  if (getenv("UKSIM_UNDER_VALGRIND"))
    cr_skip_test("migration is real time; it cannot run under valgrind");
  ntyped = 0;
}

TestSuite(migrate_console, .init = setup, .fini = mn_stop, .timeout = 240);

static void start_task(int read_after) {
  int rc;
  const char *o = mn_ctl(&mn[0], &rc,
                         "start %s/apps/mtask --threads 1 --limit 0 "
                         "--period 10 --read-after %d",
                         mn_build(), read_after);
  cr_assert_eq(rc, 0, "%s", o);
  mn_wait_for(mn[0].out, "task1 t0 3\n");
}

/* Types line `prefix`NN at node n for its task `id`. */
static void type_line(struct mn_node *n, int id, const char *prefix) {
  int rc;
  char line[16];
  snprintf(line, sizeof line, "%s%02d", prefix, ntyped);
  const char *o = mn_ctl(n, &rc, "input %d '%s\n'", id, line);
  cr_assert_eq(rc, 0, "input %s: %s", line, o);
  cr_assert_lt(ntyped, LINES_MAX);
  snprintf(typed[ntyped++], sizeof typed[0], "%s", line);
}

static void type_lines(struct mn_node *n, int id, const char *prefix,
                       int count) {
  for (int i = 0; i < count; i++)
    type_line(n, id, prefix);
}

/* Moves the task on node `from` (its id there) to node `to` by method,
 * while a child process types `during` lines at node `at` (the origin):
 * those land before, in or after the move, wherever they land. */
static void move_typing(int from, int to, const char *method, int at,
                        int during) {
  int first = ntyped;
  fflush(NULL);
  pid_t kid = fork();
  cr_assert_geq(kid, 0);
  if (kid == 0) {
    /* No assertions here: a child reports by its status. */
    for (int i = 0; i < during; i++) {
      int rc;
      mn_ctl(&mn[at], &rc, "input 1 'm%02d\n'", first + i);
      if (rc != 0)
        _exit(1);
    }
    _exit(0);
  }
  int rc, st;
  const char *o = mn_ctl(&mn[from], &rc, "move 1 %s %s", mn[to].name, method);
  cr_assert_eq(rc, 0, "move to %s: %s", mn[to].name, o);
  cr_assert_eq(waitpid(kid, &st, 0), kid);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "typing during the move");
  /* The child typed them: note them here as it did. */
  for (int i = 0; i < during; i++)
    snprintf(typed[first + i], sizeof typed[0], "m%02d", first + i);
  ntyped = first + during;
}

/* The "taskID echo LINE" lines of the file, in order, equal `typed`. */
static void echoes_are_typed(const char *path, int id) {
  char last[64], line[256], want[32];
  snprintf(last, sizeof last, "task%d echo %s\n", id, typed[ntyped - 1]);
  mn_wait_for(path, last);
  usleep(100000); /* a line repeated after the last would show now */
  FILE *f = fopen(path, "r");
  cr_assert_not_null(f);
  int k = 0;
  snprintf(want, sizeof want, "task%d echo ", id);
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, want, strlen(want)) != 0)
      continue;
    line[strcspn(line, "\n")] = 0;
    cr_assert_lt(k, ntyped, "%s: more echoes than lines typed: %s", path, line);
    cr_assert_str_eq(line + strlen(want), typed[k],
                     "%s: echo %d is '%s', typed '%s'", path, k,
                     line + strlen(want), typed[k]);
    k++;
  }
  fclose(f);
  cr_assert_eq(k, ntyped, "%s: %d echoes of %d lines", path, k, ntyped);
}

/* Moves the task from a to b by method, types `after` lines at a, and
 * checks a's console. */
static void move_to_b_and_check(const char *method, int after) {
  int rc;
  const char *o = mn_ctl(&mn[0], &rc, "move 1 b %s", method);
  cr_assert_eq(rc, 0, "%s", o);
  cr_assert_eq(mn_running(&mn[1]), 1);
  type_lines(&mn[0], 1, "a", after);
  echoes_are_typed(mn[0].out, 1);
}

/* Lines typed before a move and unread stay in a's pipe; the move carries
 * them; lines typed after follow them. */
static void carried_by(const char *method) {
  mn_start("", "");
  start_task(1);
  type_lines(&mn[0], 1, "b", 10);
  move_to_b_and_check(method, 3);
}

Test(migrate_console, unread_input_is_carried_by_eager) {
  carried_by("eager");
}

Test(migrate_console, unread_input_is_carried_by_precopy) {
  carried_by("precopy");
}

Test(migrate_console, unread_input_is_carried_by_demand) {
  carried_by("demand");
}

/* A -> B -> C: the task reads nothing until its second move, so what is
 * typed at a before, during and between the moves is in b's pipe, or on
 * its way there, when it moves on; all of it comes out at c once. */
Test(migrate_console, input_typed_all_along_a_b_c_comes_out_once_in_order) {
  mn_start("", "");
  start_task(2);
  type_lines(&mn[0], 1, "b", 5);
  move_typing(0, 1, "eager", 0, 10);
  type_lines(&mn[0], 1, "x", 5);
  move_typing(1, 2, "precopy", 0, 10);
  cr_assert_eq(mn_running(&mn[2]), 1);
  type_lines(&mn[0], 1, "a", 3);
  echoes_are_typed(mn[0].out, 1);
  cr_expect(!mn_file_has(mn[1].out, "echo") && !mn_file_has(mn[2].out, "echo"),
            "the echoes belong on a's console");
}

/* uksim-migd on port `port` that dies at `step` (a node that disappears). */
static pid_t doomed_node(int port, const char *step) {
  char exe[512], p[16];
  snprintf(exe, sizeof exe, "%s/sim-kernel/uksim-migd", mn_build());
  snprintf(p, sizeof p, "%d", port);
  fflush(NULL);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    freopen("/dev/null", "w", stdout);
    freopen("/dev/null", "w", stderr);
    execl(exe, exe, "--port", p, "--die-at", step, (char *)NULL);
    _exit(127);
  }
  for (int i = 0; i < 200; i++) {
    int rc;
    char cmd[640];
    snprintf(cmd, sizeof cmd, "%s --ctl 'tcp!127.0.0.1!%d' ps >/dev/null 2>&1",
             exe, port);
    h_run(cmd, &rc);
    if (WIFEXITED(rc) && WEXITSTATUS(rc) == 0)
      return pid;
    usleep(10000);
  }
  kill(pid, SIGKILL);
  cr_assert_fail("the doomed node did not start");
  return -1;
}

/* A move that fails at `step` (before confirm: aborted; at resume: the
 * origin restarts the task from its duplicate) leaves the unread input in
 * the origin's task, carried whole by the next move. */
static void failed_move_keeps_input(const char *step) {
  mn_start("", "");
  start_task(1);
  type_lines(&mn[0], 1, "b", 5);
  /* migd_nodes.c takes 6 ports of a block of 8: the 7th is ours. */
  int port = mn[2].port + 1, rc, st;
  pid_t d = doomed_node(port, step);
  const char *o = mn_ctl(&mn[0], &rc, "move 1 'tcp!127.0.0.1!%d' eager", port);
  cr_assert_neq(rc, 0, "step %s: %s", step, o);
  waitpid(d, &st, 0);
  cr_assert_eq(mn_running(&mn[0]), 1, "step %s: the task runs at a", step);
  type_lines(&mn[0], 1, "f", 3);
  move_to_b_and_check("eager", 2);
}

Test(migrate_console, an_aborted_move_keeps_unread_input) {
  failed_move_keeps_input("pages");
}

Test(migrate_console, a_restart_from_the_duplicate_keeps_unread_input) {
  failed_move_keeps_input("resume");
}

/* The origin gone, the console of the node the task runs on takes over:
 * its output is printed there, input typed there reaches it, and what it
 * had not read moves on with it. */
Test(migrate_console, the_destinations_console_takes_over_when_a_is_gone) {
  mn_start("", "");
  start_task(2);
  type_lines(&mn[0], 1, "b", 4);
  int rc;
  const char *o = mn_ctl(&mn[0], &rc, "move 1 b eager");
  cr_assert_eq(rc, 0, "%s", o);
  mn_stop_migd(&mn[0]);
  /* The task is task1 at b too: b's first. */
  type_lines(&mn[1], 1, "h", 3);
  o = mn_ctl(&mn[1], &rc, "move 1 c eager");
  cr_assert_eq(rc, 0, "%s", o);
  cr_assert_eq(mn_running(&mn[2]), 1);
  /* c cannot reach a: it prints the task's console itself, and takes
   * input typed there (the task is c's first: task1). */
  type_lines(&mn[2], 1, "c", 2);
  echoes_are_typed(mn[2].out, 1);
}

/* A move asked for right after start finds the task's region (its
 * process may still be re-executing itself without ASLR), and the input
 * typed in between goes with it. */
Test(migrate_console, a_move_right_after_start_finds_the_region) {
  int rc;
  mn_start("", "");
  for (int id = 1; id <= 3; id++) {
    const char *o = mn_ctl(&mn[0], &rc,
                           "start %s/apps/mtask --threads 1 --limit 0 "
                           "--period 10 --read-after 1",
                           mn_build());
    cr_assert_eq(rc, 0, "%s", o);
    o = mn_ctl(&mn[0], &rc, "move %d b eager", id);
    cr_assert_eq(rc, 0, "task %d: %s", id, o);
  }
  cr_assert_eq(mn_running(&mn[1]), 3);
}
