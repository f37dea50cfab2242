/* A task that comes back to its origin (issue 16; sim-kernel/migcons.h,
 * HOME): real machines a, b and c with their migration servers
 * (migd_nodes.h).  The task (apps/mtask --read-after MOVES) starts at a as
 * task1 and travels back to a; every line typed at a to task1 before,
 * while and after it is away must reach it exactly once and in the order
 * typed (migd_typing.h), printed at a as task1's, with one live task1 in
 * a's listing. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "migd_typing.h"

TestSuite(migrate_return, .init = mt_setup, .fini = mn_stop, .timeout = 240);

/* One move of a trip: task `id` of node `from` to node `to`. */
struct leg {
  int from, id, to;
  const char *method;
};

/* a lists the task once, running, as task1. */
static void a_lists_one_task1(void) {
  int rc;
  const char *o = mn_ctl(&mn[0], &rc, "ps");
  cr_assert_eq(rc, 0, "%s", o);
  cr_assert(strstr(o, "task1 running") != NULL, "a's listing: %s", o);
  cr_assert(strstr(o, "moved") == NULL, "a's listing: %s", o);
  cr_assert_eq(mn_running(&mn[0]), 1, "a's listing: %s", o);
}

/* The task (reading after read_after moves) makes the trip's n moves;
 * lines are typed at a to task1 before the first, during each and after
 * each; then a's console and listing are checked. */
static void trip(int read_after, const struct leg *legs, int n) {
  mn_start("", "");
  mt_start_task(read_after);
  mt_type_lines(&mn[0], 1, "b", 3);
  for (int i = 0; i < n; i++) {
    const struct leg *l = &legs[i];
    mt_move_typing(l->from, l->id, l->to, l->method, 5);
    mt_type_lines(&mn[0], 1, i + 1 < n ? "x" : "a", 3);
  }
  mt_echoes_are_typed(mn[0].out, 1);
  a_lists_one_task1();
  cr_expect(!mn_file_has(mn[1].out, "echo") && !mn_file_has(mn[2].out, "echo"),
            "the echoes belong on a's console");
}

/* The task reads nothing until it is back: what a typed before, while it
 * ran at b and while it came back is all unread at its return, in b's
 * pipe, held at a, or on its way. */
Test(migrate_return, input_typed_to_task1_all_along_a_b_a_comes_out_once) {
  static const struct leg legs[] = {{0, 1, 1, "eager"}, {1, 1, 0, "eager"}};
  trip(2, legs, 2);
}

/* The task reads all along and comes back twice.  At b it is a new entry
 * each time: b's first, then its second. */
Test(migrate_return, a_second_return_trip_keeps_input) {
  static const struct leg legs[] = {{0, 1, 1, "eager"},
                                    {1, 1, 0, "eager"},
                                    {0, 1, 1, "eager"},
                                    {1, 2, 0, "eager"}};
  trip(0, legs, 4);
}

/* Out by pre-copy, back by demand paging: the task resumes at a before
 * its pages are there, and is task1 with its input from the start. */
Test(migrate_return, a_return_by_demand_paging_keeps_input) {
  static const struct leg legs[] = {{0, 1, 1, "precopy"}, {1, 1, 0, "demand"}};
  trip(2, legs, 2);
}

/* Home by way of a third node: c, not b, hands it back, and a's first
 * entry is the one that held its input meanwhile. */
Test(migrate_return, a_return_from_a_third_node_keeps_input) {
  static const struct leg legs[] = {
      {0, 1, 1, "eager"}, {1, 1, 2, "eager"}, {2, 1, 0, "eager"}};
  trip(3, legs, 3);
}

/* Its service calls too (migd.h "Service calls"): a task counting on a's
 * counter goes a -> b -> a -> b and ends at b; the copy back at a calls
 * under its first id, so a's records of its calls still apply and no
 * increment is lost or doubled (ctask says MISMATCH, and stops, when the
 * counter's answer is not its own count). */
Test(migrate_return, service_calls_stay_once_across_a_return) {
  int rc;
  mn_start("ctr_srv", "ctr");
  const char *o = mn_ctl(
      &mn[0], &rc, "start %s/apps/ctask --limit 300 --period 1", mn_build());
  cr_assert_eq(rc, 0, "%s", o);
  static const struct leg legs[] = {
      {0, 1, 1, "eager"}, {1, 1, 0, "eager"}, {0, 1, 1, "precopy"}};
  char want[32];
  for (int i = 0; i < 3; i++) {
    snprintf(want, sizeof want, "task1 ctr n=%d ", 40 * (i + 1));
    mn_wait_for(mn[0].out, want);
    const struct leg *l = &legs[i];
    o = mn_ctl(&mn[l->from], &rc, "move %d %s %s", l->id, mn[l->to].name,
               l->method);
    cr_assert_eq(rc, 0, "leg %d: %s", i, o);
  }
  mn_wait_for(mn[0].out, "task1 done n=300 v=300");
  cr_expect(!mn_file_has(mn[0].out, "MISMATCH") &&
                !mn_file_has(mn[0].out, "error"),
            "a call lost or doubled");
}
