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

#include "migd_typing.h"

TestSuite(migrate_console, .init = mt_setup, .fini = mn_stop, .timeout = 240);

/* Moves the task from a to b by method, types `after` lines at a, and
 * checks a's console. */
static void move_to_b_and_check(const char *method, int after) {
  int rc;
  const char *o = mn_ctl(&mn[0], &rc, "move 1 b %s", method);
  cr_assert_eq(rc, 0, "%s", o);
  cr_assert_eq(mn_running(&mn[1]), 1);
  mt_type_lines(&mn[0], 1, "a", after);
  mt_echoes_are_typed(mn[0].out, 1);
}

/* Lines typed before a move and unread stay in a's pipe; the move carries
 * them; lines typed after follow them. */
static void carried_by(const char *method) {
  mn_start("", "");
  mt_start_task(1);
  mt_type_lines(&mn[0], 1, "b", 10);
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
  mt_start_task(2);
  mt_type_lines(&mn[0], 1, "b", 5);
  mt_move_typing(0, 1, 1, "eager", 10);
  mt_type_lines(&mn[0], 1, "x", 5);
  mt_move_typing(1, 1, 2, "precopy", 10);
  cr_assert_eq(mn_running(&mn[2]), 1);
  mt_type_lines(&mn[0], 1, "a", 3);
  mt_echoes_are_typed(mn[0].out, 1);
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
  mt_start_task(1);
  mt_type_lines(&mn[0], 1, "b", 5);
  /* migd_nodes.c takes 6 ports of a block of 8: the 7th is ours. */
  int port = mn[2].port + 1, rc, st;
  pid_t d = doomed_node(port, step);
  const char *o = mn_ctl(&mn[0], &rc, "move 1 'tcp!127.0.0.1!%d' eager", port);
  cr_assert_neq(rc, 0, "step %s: %s", step, o);
  waitpid(d, &st, 0);
  cr_assert_eq(mn_running(&mn[0]), 1, "step %s: the task runs at a", step);
  mt_type_lines(&mn[0], 1, "f", 3);
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
  mt_start_task(2);
  mt_type_lines(&mn[0], 1, "b", 4);
  int rc;
  const char *o = mn_ctl(&mn[0], &rc, "move 1 b eager");
  cr_assert_eq(rc, 0, "%s", o);
  mn_stop_migd(&mn[0]);
  /* The task is task1 at b too: b's first. */
  mt_type_lines(&mn[1], 1, "h", 3);
  o = mn_ctl(&mn[1], &rc, "move 1 c eager");
  cr_assert_eq(rc, 0, "%s", o);
  cr_assert_eq(mn_running(&mn[2]), 1);
  /* c cannot reach a: it prints the task's console itself, and takes
   * input typed there (the task is c's first: task1). */
  mt_type_lines(&mn[2], 1, "c", 2);
  mt_echoes_are_typed(mn[2].out, 1);
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
