/* Unit tests for the statements of process migration in the scenario
 * language (scenarios/scn_mig.c, issue 16): task, the migrate action,
 * node --crash-at and `expect task`.  Each is parsed and its tree
 * checked; each error is checked for its exact "file:line:col: message".
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "scn.h"
#include "scn_test.h"

TestSuite(scn_migrate, .timeout = 30);

#define TASK "task mt --node local --binary mtask\n"

Test(scn_migrate, task_is_parsed_with_its_node_binary_and_args) {
  struct scn *s = parse("node b\n"
                        "task mt --node b --binary mtask --args \"--limit 5\"\n"
                        "task ct --node local --binary ctask\n"
                        "task kt --node b --binary ktask\n");
  cr_assert_eq(s->ntasks, 3);
  cr_assert_str_eq(s->tasks[0].name, "mt");
  cr_assert_str_eq(s->tasks[0].node, "b");
  cr_assert_eq(s->tasks[0].binary, SCN_TASK_MTASK);
  cr_assert_str_eq(s->tasks[0].args, "--limit 5");
  cr_assert_eq(s->tasks[0].pos.line, 2);
  cr_assert_str_eq(s->tasks[1].node, SCN_LOCAL_NODE);
  cr_assert_eq(s->tasks[1].binary, SCN_TASK_CTASK);
  cr_assert_str_eq(scn_task_binary_name(s->tasks[1].binary), "ctask");
  cr_assert_eq(s->tasks[2].binary, SCN_TASK_KTASK);
  cr_assert_str_eq(scn_task_binary_name(s->tasks[2].binary), "ktask");
  scn_free(s);
}

Test(scn_migrate, a_node_without_port_is_for_migration_only) {
  struct scn *s = parse("node b\nnode c --crash-at pages\n");
  cr_assert_eq(s->nnodes, 2);
  cr_assert_eq(s->nodes[0].port, 0);
  cr_assert_str_eq(s->nodes[0].crash_at, "");
  cr_assert_str_eq(s->nodes[1].crash_at, "pages");
  scn_free(s);
}

Test(scn_migrate, migrate_is_an_action_at_a_time_and_on_an_event) {
  struct scn *s =
      parse("node b\n" TASK "at 5ms migrate mt --to b --method precopy\n"
            "on event action kernel 2: migrate mt --to local "
            "--method demand\n");
  cr_assert_eq(s->nactions, 2);
  const struct scn_action *a = &s->actions[0];
  cr_assert_eq(a->kind, SCN_ACT_MIGRATE);
  cr_assert_eq(a->when.kind, SCN_TRIG_AT);
  cr_assert_eq(a->when.t_ns, 5000000ull);
  cr_assert_str_eq(a->target, "mt");
  cr_assert_str_eq(a->node, "b");
  cr_assert_eq(a->method, SCN_METHOD_PRECOPY);
  cr_assert_str_eq(scn_action_name(a->kind), "migrate");
  a = &s->actions[1];
  cr_assert_eq(a->when.kind, SCN_TRIG_EVENT);
  cr_assert_eq(a->when.n, 2);
  cr_assert_str_eq(a->node, SCN_LOCAL_NODE);
  cr_assert_str_eq(scn_method_name(a->method), "demand");
  scn_free(s);
}

Test(scn_migrate, every_task_expectation) {
  struct scn *s = parse("node b\n" TASK "expect task mt on b\n"
                        "expect task mt moves >= 2\n"
                        "expect task mt output contains \"t0 5\"\n"
                        "expect task mt lost\n");
  cr_assert_eq(s->nexpects, 4);
  for (int i = 0; i < 4; i++) {
    cr_assert_eq(s->expects[i].kind, SCN_EXP_TASK);
    cr_assert_str_eq(s->expects[i].app, "mt");
  }
  cr_assert_eq(s->expects[0].tcheck, SCN_TASK_ON);
  cr_assert_str_eq(s->expects[0].proc, "b");
  cr_assert_eq(s->expects[1].tcheck, SCN_TASK_MOVES);
  cr_assert_eq(s->expects[1].cmp, SCN_GE);
  cr_assert_eq(s->expects[1].value, 2);
  cr_assert_eq(s->expects[2].tcheck, SCN_TASK_OUTPUT);
  cr_assert_str_eq(s->expects[2].text, "t0 5");
  cr_assert_eq(s->expects[3].tcheck, SCN_TASK_LOST);
  scn_free(s);
}

Test(scn_migrate, task_errors) {
  refused("task mt --node local\n",
          "t.scn:1:6: a task needs --binary ctask, mtask or ktask");
  refused("task mt --binary mtask\n",
          "t.scn:1:6: a task needs --node NODE (where it starts)");
  refused("task mt --node b --binary mtask\n",
          "t.scn:1:16: no node 'b' declared before this line (nor 'local', "
          "the machine's own)");
  refused("task mt --node local --binary ptask\n",
          "t.scn:1:31: unknown task binary 'ptask' (ctask, mtask, ktask)");
  refused("task mt --node local --binary mtask --bogus 1\n",
          "t.scn:1:37: unknown option '--bogus' for task (--node, --binary, "
          "--args)");
  refused("task kernel --node local --binary mtask\n",
          "t.scn:1:6: 'kernel' names the kernel, not a process");
  refused("task\n", "t.scn:1:5: missing a task name at end of line");
  refused("task mt --node local --binary mtask --args \"a b c d e f g h i j "
          "k l m n o p q r s t u v\"\n",
          "t.scn:1:44: more than 20 words in --args");
}

Test(scn_migrate, task_names_are_unique_among_all_declarations) {
  refused("node b\ntask b --node local --binary mtask\n",
          "t.scn:2:6: 'b' is already declared at line 1");
  refused(TASK "task mt --node local --binary ctask\n",
          "t.scn:2:6: 'mt' is already declared at line 1");
  refused(TASK "app mt\n", "t.scn:2:5: 'mt' is already declared at line 1");
  refused(TASK "node mt\n", "t.scn:2:6: 'mt' is already declared at line 1");
}

Test(scn_migrate, at_most_scn_tasks_max_tasks) {
  char text[1024] = "";
  for (int i = 0; i <= SCN_TASKS_MAX; i++)
    snprintf(text + strlen(text), sizeof text - strlen(text),
             "task t%d --node local --binary mtask\n", i);
  char want[64];
  snprintf(want, sizeof want, "t.scn:%d:6: more than %d tasks",
           SCN_TASKS_MAX + 1, SCN_TASKS_MAX);
  refused(text, want);
}

Test(scn_migrate, node_errors) {
  refused("node local\n", "t.scn:1:6: 'local' names the machine's own node");
  refused("node b --crash-at nowhere\n",
          "t.scn:1:19: unknown migration step 'nowhere' (connect, create, "
          "pages, threads, confirm, end, resume, serve, fetch)");
}

Test(scn_migrate, migrate_errors) {
  refused("at 1ms migrate mt --to local --method eager\n",
          "t.scn:1:16: no task 'mt' declared before this line");
  refused(TASK "at 1ms migrate mt --method eager\n",
          "t.scn:2:16: migrate needs --to NODE");
  refused(TASK "at 1ms migrate mt --to local\n",
          "t.scn:2:16: migrate needs --method eager, precopy or demand");
  refused(TASK "at 1ms migrate mt --to x --method eager\n",
          "t.scn:2:24: no node 'x' declared before this line (nor 'local', "
          "the machine's own)");
  refused(TASK "at 1ms migrate mt --to local --method lazy\n",
          "t.scn:2:39: unknown method 'lazy' (eager, precopy, demand)");
  refused(TASK "at 1ms migrate\n",
          "t.scn:2:15: missing the task to migrate at end of line");
}

Test(scn_migrate, expect_task_errors) {
  refused("expect task mt on local\n",
          "t.scn:1:13: no task 'mt' declared before this line");
  refused(TASK "expect task mt\n",
          "t.scn:2:15: missing on, moves, output or lost at end of line");
  refused(TASK "expect task mt where\n",
          "t.scn:2:16: unknown task check 'where' (on, moves, output, lost)");
  refused(TASK "expect task mt on\n",
          "t.scn:2:18: missing a node at end of line");
  refused(TASK "expect task mt on x\n",
          "t.scn:2:19: no node 'x' declared before this line (nor 'local', "
          "the machine's own)");
  refused(TASK "expect task mt on local extra\n",
          "t.scn:2:25: unexpected 'extra'");
  refused(TASK "expect task mt moves 1\n",
          "t.scn:2:22: unknown comparison '1' (<, <=, ==, >=, >)");
  refused(TASK "expect task mt moves == x\n",
          "t.scn:2:25: expected a number, got 'x'");
  refused(TASK "expect task mt output has \"x\"\n",
          "t.scn:2:23: expected 'contains', got 'has'");
  refused(TASK "expect task mt output contains x\n",
          "t.scn:2:32: expected a quoted text");
  refused(TASK "expect task mt output contains \"\"\n",
          "t.scn:2:32: an empty text is in every output");
  refused(TASK "expect task mt lost now\n", "t.scn:2:21: unexpected 'now'");
}

Test(scn_migrate, input_is_an_action_with_one_line) {
  struct scn *s = parse(TASK "at 5ms input mt \"hello there\"\n");
  cr_assert_eq(s->nactions, 1);
  cr_assert_eq(s->actions[0].kind, SCN_ACT_INPUT);
  cr_assert_str_eq(s->actions[0].target, "mt");
  cr_assert_str_eq(s->actions[0].args, "hello there");
  cr_assert_str_eq(scn_action_name(SCN_ACT_INPUT), "input");
  scn_free(s);
}

Test(scn_migrate, input_errors) {
  char text[512], want[128];
  refused("at 1ms input mt \"x\"\n",
          "t.scn:1:14: no task 'mt' declared before this line");
  refused(TASK "at 1ms input mt x\n", "t.scn:2:17: expected a quoted line");
  refused(TASK "at 1ms input mt\n",
          "t.scn:2:16: missing a quoted line at end of line");
  refused(TASK "at 1ms input mt \"\"\n",
          "t.scn:2:17: a line of input is one line, not empty");
  refused(TASK "at 1ms input mt \"a\\nb\"\n",
          "t.scn:2:17: a line of input is one line, not empty");
  refused(TASK "at 1ms input mt \"x\" y\n", "t.scn:2:21: unexpected 'y'");
  snprintf(text, sizeof text, TASK "at 1ms input mt \"%0*d\"\n",
           SCN_INPUT_MAX + 1, 0);
  snprintf(want, sizeof want, "t.scn:2:17: a line of input is at most %d bytes",
           SCN_INPUT_MAX);
  refused(text, want);
}
