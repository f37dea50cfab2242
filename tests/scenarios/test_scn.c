/* Unit tests for the scenario language (scenarios/scn.h).
 *
 * Each construct is parsed and its tree checked field by field; each class
 * of error is checked for its exact "file:line:col: message".  The shipped
 * scenarios (every .scn file in scenarios/) must all parse.  Last, seeded
 * random inputs (bytes, and mutations of a good file) must be parsed or
 * refused, never crash: the fuzz target does the same at length
 * (tests/fuzz/fuzz_scn.c).
 */
#include <criterion/criterion.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scn.h"
#include "scn_test.h"

TestSuite(scn, .timeout = 30);

#define SRV "server kvs\n"

/* Statements */

Test(scn, empty_and_comments_give_an_empty_tree) {
  struct scn *s = parse("# only a comment\n\n   \t\n# another\n");
  cr_assert_eq(s->nservers + s->napps + s->nactions + s->nexpects, 0);
  cr_assert_eq(s->machine.pos.line, 0);
  cr_assert_str_eq(s->title, "");
  cr_assert_str_eq(s->file, "t.scn");
  scn_free(s);
}

Test(scn, scenario_title_unescapes) {
  struct scn *s = parse("scenario \"Tour: a \\\"quoted\\\" \\\\ word\"\n");
  cr_assert_str_eq(s->title, "Tour: a \"quoted\" \\ word");
  scn_free(s);
}

Test(scn, machine_options) {
  struct scn *s =
      parse("machine --memory 1G --seed 42 --grace 200ms --mode free\n");
  cr_assert_eq(s->machine.memory, 1ull << 30);
  cr_assert(s->machine.seed_set);
  cr_assert_eq(s->machine.seed, 42);
  cr_assert_eq(s->machine.grace_ns, 200000000ull);
  cr_assert_eq(s->machine.mode, SCN_MODE_FREE);
  cr_assert_eq(s->machine.pos.line, 1);
  cr_assert_eq(s->machine.pos.col, 1);
  scn_free(s);
}

Test(scn, machine_defaults) {
  struct scn *s = parse("machine\n");
  cr_assert_eq(s->machine.memory, 0);
  cr_assert_not(s->machine.seed_set);
  cr_assert_eq(s->machine.mode, SCN_MODE_LOCKSTEP);
  scn_free(s);
}

Test(scn, server_defaults) {
  struct scn *s = parse("  server kvs\n");
  cr_assert_eq(s->nservers, 1);
  struct scn_server *v = &s->servers[0];
  cr_assert_str_eq(v->name, "kvs");
  cr_assert_str_eq(v->binary, "kvs");
  cr_assert_eq(v->version, 1);
  cr_assert_eq(v->state, SCN_STATE_SINGLE);
  cr_assert_eq(v->restart, SCN_RESTART_NEVER);
  cr_assert_eq(v->deadline_ns, 0);
  cr_assert_eq(v->nfaults, 0);
  cr_assert_eq(v->pos.line, 1);
  cr_assert_eq(v->pos.col, 3);
  scn_free(s);
}

Test(scn, server_options) {
  struct scn *s = parse("server store --binary kvs2 --version 2 --state chain "
                        "--restart 3 --deadline 50ms --heartbeat 20us --hold 8 "
                        "--args \"--big 1\" --fault crash@request:10 --fault "
                        "refuse@restore --fault hang@save\n");
  struct scn_server *v = &s->servers[0];
  cr_assert_str_eq(v->binary, "kvs2");
  cr_assert_eq(v->version, 2);
  cr_assert_eq(v->state, SCN_STATE_CHAIN);
  cr_assert_eq(v->restart, SCN_RESTART_LIMIT);
  cr_assert_eq(v->restarts, 3);
  cr_assert_eq(v->deadline_ns, 50000000ull);
  cr_assert_eq(v->heartbeat_ns, 20000ull);
  cr_assert_eq(v->hold, 8);
  cr_assert_str_eq(v->args, "--big 1");
  cr_assert_eq(v->nfaults, 3);
  cr_assert_eq(v->faults[0].kind, SCN_FAULT_CRASH);
  cr_assert_eq(v->faults[0].point, SCN_AT_REQUEST);
  cr_assert_eq(v->faults[0].n, 10);
  cr_assert_eq(v->faults[1].kind, SCN_FAULT_REFUSE);
  cr_assert_eq(v->faults[1].point, SCN_AT_RESTORE);
  cr_assert_eq(v->faults[2].kind, SCN_FAULT_HANG);
  cr_assert_eq(v->faults[2].point, SCN_AT_SAVE);
  scn_free(s);
}

Test(scn, server_restart_words) {
  struct scn *s = parse("server a --restart always\nserver b --restart "
                        "never --state copy\n");
  cr_assert_eq(s->servers[0].restart, SCN_RESTART_ALWAYS);
  cr_assert_eq(s->servers[1].restart, SCN_RESTART_NEVER);
  cr_assert_eq(s->servers[1].state, SCN_STATE_COPY);
  scn_free(s);
}

Test(scn, every_fault_point) {
  const char *pts[] = {"start",     "register", "restore",
                       "request:1", "save",     "handoff"};
  for (int i = 0; i < 6; i++) {
    char text[128];
    snprintf(text, sizeof text, "server kvs --fault panic@%s\n", pts[i]);
    struct scn *s = parse(text);
    cr_assert_eq(s->servers[0].faults[0].point, (enum scn_fault_point)i);
    cr_assert_eq(s->servers[0].faults[0].kind, SCN_FAULT_PANIC);
    cr_assert_str_eq(scn_fault_point_name(s->servers[0].faults[0].point),
                     i == 3 ? "request" : pts[i]);
    scn_free(s);
  }
}

Test(scn, app_defaults) {
  struct scn *s = parse(SRV "server other\napp ap1\n");
  struct scn_app *a = &s->apps[0];
  cr_assert_str_eq(a->name, "ap1");
  cr_assert_str_eq(a->binary, "kvsload");
  cr_assert_str_eq(a->service, "kvs", "the first server declared");
  cr_assert_eq(a->count, 1000);
  cr_assert_eq(a->keys, 100);
  cr_assert_eq(a->value_min, 64);
  cr_assert_eq(a->value_max, 64);
  cr_assert_not(a->seed_set);
  cr_assert_eq(a->mix[0], 50);
  cr_assert_eq(a->mix[1], 45);
  cr_assert_eq(a->mix[2], 5);
  cr_assert_eq(a->rate, 0);
  cr_assert_eq(a->pos.line, 3);
  scn_free(s);
}

Test(scn, app_options) {
  struct scn *s = parse(SRV "server store\napp w --binary kvsload "
                            "--service store --count 2000 --keys 7 "
                            "--value-size 64..4K --seed 9 --mix 0:1:0 "
                            "--rate 1000 --start 10ms --args \"--list\"\n");
  struct scn_app *a = &s->apps[0];
  cr_assert_str_eq(a->service, "store");
  cr_assert_eq(a->count, 2000);
  cr_assert_eq(a->keys, 7);
  cr_assert_eq(a->value_min, 64);
  cr_assert_eq(a->value_max, 4096);
  cr_assert(a->seed_set);
  cr_assert_eq(a->seed, 9);
  cr_assert_eq(a->mix[1], 1);
  cr_assert_eq(a->rate, 1000);
  cr_assert_eq(a->start_ns, 10000000ull);
  cr_assert_str_eq(a->args, "--list");
  scn_free(s);
}

Test(scn, sizes_and_durations) {
  struct scn *s =
      parse("machine --memory 2G\n" SRV "app a --value-size 3M --start 7s\n"
            "app b --value-size 1K..64M --start 5ns\n");
  cr_assert_eq(s->machine.memory, 2ull << 30);
  cr_assert_eq(s->apps[0].value_min, 3ull << 20);
  cr_assert_eq(s->apps[0].start_ns, 7000000000ull);
  cr_assert_eq(s->apps[1].value_min, 1024);
  cr_assert_eq(s->apps[1].value_max, 64ull << 20);
  cr_assert_eq(s->apps[1].start_ns, 5);
  scn_free(s);
}

Test(scn, at_replace) {
  struct scn *s = parse(SRV "at 5ms replace kvs kvs2 --state copy --fault "
                            "crash@restore --deadline 1s --args \"-v\"\n");
  struct scn_action *a = &s->actions[0];
  cr_assert_eq(a->when.kind, SCN_TRIG_AT);
  cr_assert_eq(a->when.t_ns, 5000000ull);
  cr_assert_eq(a->kind, SCN_ACT_REPLACE);
  cr_assert_str_eq(a->target, "kvs");
  cr_assert_str_eq(a->binary, "kvs2");
  cr_assert_eq(a->state, SCN_STATE_COPY);
  cr_assert_eq(a->nfaults, 1);
  cr_assert_eq(a->faults[0].point, SCN_AT_RESTORE);
  cr_assert_eq(a->deadline_ns, 1000000000ull);
  cr_assert_str_eq(a->args, "-v");
  cr_assert_eq(a->pos.line, 2);
  scn_free(s);
}

Test(scn, replace_keeps_the_servers_state_by_default) {
  struct scn *s = parse(SRV "at 1s replace kvs kvs2\n");
  cr_assert_eq(s->actions[0].state, SCN_STATE_UNSET);
  scn_free(s);
}

Test(scn, every_action) {
  struct scn *s = parse(SRV "app ap1\nat 1ms crash kvs\nat 2ms panic kvs\n"
                            "at 3ms hang ap1\nat 4ms kill kvs.2\n"
                            "at 5ms restart kvs\n");
  enum scn_action_kind want[] = {SCN_ACT_CRASH, SCN_ACT_PANIC, SCN_ACT_HANG,
                                 SCN_ACT_KILL, SCN_ACT_RESTART};
  const char *target[] = {"kvs", "kvs", "ap1", "kvs.2", "kvs"};
  cr_assert_eq(s->nactions, 5);
  for (int i = 0; i < 5; i++) {
    cr_assert_eq(s->actions[i].kind, want[i]);
    cr_assert_str_eq(s->actions[i].target, target[i]);
    cr_assert_eq(s->actions[i].when.t_ns, (uint64_t)(i + 1) * 1000000);
  }
  cr_assert_str_eq(scn_action_name(SCN_ACT_KILL), "kill");
  scn_free(s);
}

Test(scn, on_request) {
  struct scn *s = parse(SRV "on request 100 to kvs: crash kvs\n"
                            "on request 7 to kvs : hang kvs\n");
  struct scn_trigger *w = &s->actions[0].when;
  cr_assert_eq(w->kind, SCN_TRIG_REQUEST);
  cr_assert_eq(w->n, 100);
  cr_assert_str_eq(w->name, "kvs");
  cr_assert_eq(s->actions[0].kind, SCN_ACT_CRASH);
  cr_assert_eq(s->actions[1].when.n, 7);
  scn_free(s);
}

Test(scn, on_event) {
  struct scn *s = parse(SRV "on event prepare kvs: crash kvs\n"
                            "on event receive kvs.2 300: kill kvs.2\n"
                            "on event flag kernel: replace kvs kvs2\n"
                            "on event handoff *: kill kvs\n");
  struct scn_trigger *w = &s->actions[0].when;
  cr_assert_eq(w->kind, SCN_TRIG_EVENT);
  cr_assert_eq(w->ev, SCN_EV_PREPARE);
  cr_assert_str_eq(w->name, "kvs");
  cr_assert_eq(w->n, 1);
  cr_assert_eq(s->actions[1].when.ev, SCN_EV_RECEIVE);
  cr_assert_str_eq(s->actions[1].when.name, "kvs.2");
  cr_assert_eq(s->actions[1].when.n, 300);
  cr_assert_str_eq(s->actions[2].when.name, "kernel");
  cr_assert_eq(s->actions[2].kind, SCN_ACT_REPLACE);
  cr_assert_str_eq(s->actions[3].when.name, "*");
  scn_free(s);
}

/* Ranges: the kernel picks a value in them from the run's seed. */
Test(scn, ranges_of_times_counts_and_fault_points) {
  struct scn *s = parse(SRV "at 1ms..20ms crash kvs\n"
                            "at 5ms kill kvs\n"
                            "on request 10..900 to kvs: hang kvs\n"
                            "on event receive kvs 3..3: crash kvs\n"
                            "server b --fault panic@request:2..50\n");
  cr_assert_eq(s->actions[0].when.t_ns, 1000000);
  cr_assert_eq(s->actions[0].when.t_hi_ns, 20000000);
  cr_assert_eq(s->actions[1].when.t_ns, 5000000);
  cr_assert_eq(s->actions[1].when.t_hi_ns, 5000000, "no range: hi == lo");
  cr_assert_eq(s->actions[2].when.n, 10);
  cr_assert_eq(s->actions[2].when.n_hi, 900);
  cr_assert_eq(s->actions[3].when.n, 3);
  cr_assert_eq(s->actions[3].when.n_hi, 3);
  cr_assert_eq(s->servers[1].faults[0].n, 2);
  cr_assert_eq(s->servers[1].faults[0].n_hi, 50);
  scn_free(s);
}

Test(scn, error_ranges) {
  refused(SRV "at 20ms..1ms crash kvs\n",
          "t.scn:2:4: range '20ms..1ms': the first is larger than the second");
  refused(SRV "on request 0..5 to kvs: crash kvs\n",
          "t.scn:2:12: 0 is out of range (1 to 18446744073709551615)");
  refused(SRV "on request 5.. to kvs: crash kvs\n",
          "t.scn:2:15: expected a number, got ''");
  refused("server kvs --fault crash@request:9..2\n",
          "t.scn:1:34: range '9..2': the first is larger than the second");
}

Test(scn, simple_expectations) {
  struct scn *s = parse("expect all-answered\nexpect exactly-one-answer\n"
                        "expect no-leaks\n");
  cr_assert_eq(s->nexpects, 3);
  cr_assert_eq(s->expects[0].kind, SCN_EXP_ALL_ANSWERED);
  cr_assert_eq(s->expects[1].kind, SCN_EXP_EXACTLY_ONE);
  cr_assert_eq(s->expects[2].kind, SCN_EXP_NO_LEAKS);
  cr_assert_eq(s->expects[2].pos.line, 3);
  scn_free(s);
}

Test(scn, expect_errors) {
  struct scn *s = parse(SRV "app ap1\nexpect errors == 0\n"
                            "expect errors <= 3 --app ap1 --service kvs\n");
  cr_assert_eq(s->expects[0].kind, SCN_EXP_ERRORS);
  cr_assert_eq(s->expects[0].cmp, SCN_EQ);
  cr_assert_eq(s->expects[0].value, 0);
  cr_assert_str_eq(s->expects[0].app, "");
  cr_assert_eq(s->expects[1].cmp, SCN_LE);
  cr_assert_eq(s->expects[1].value, 3);
  cr_assert_str_eq(s->expects[1].app, "ap1");
  cr_assert_str_eq(s->expects[1].service, "kvs");
  scn_free(s);
}

Test(scn, expect_latency) {
  struct scn *s = parse(SRV "expect latency p99 < 5ms --op kvs.put\n"
                            "expect latency max >= 1s --service kvs\n"
                            "expect latency p50 > 10us\n");
  cr_assert_eq(s->expects[0].kind, SCN_EXP_LATENCY);
  cr_assert_eq(s->expects[0].stat, SCN_STAT_P99);
  cr_assert_eq(s->expects[0].cmp, SCN_LT);
  cr_assert_eq(s->expects[0].value, 5000000ull);
  cr_assert_str_eq(s->expects[0].op, "kvs.put");
  cr_assert_eq(s->expects[1].stat, SCN_STAT_MAX);
  cr_assert_eq(s->expects[1].cmp, SCN_GE);
  cr_assert_eq(s->expects[2].stat, SCN_STAT_P50);
  cr_assert_eq(s->expects[2].cmp, SCN_GT);
  scn_free(s);
}

Test(scn, expect_state) {
  struct scn *s = parse(SRV "expect state kvs equals model\n"
                            "expect state kvs equals \"final.txt\"\n");
  cr_assert_eq(s->expects[0].kind, SCN_EXP_STATE);
  cr_assert(s->expects[0].model);
  cr_assert_str_eq(s->expects[0].service, "kvs");
  cr_assert_not(s->expects[1].model);
  cr_assert_str_eq(s->expects[1].path, "final.txt");
  scn_free(s);
}

Test(scn, expect_trace) {
  struct scn *s = parse(SRV "expect trace contains commit kernel\n"
                            "expect trace omits fail * \"version\"\n"
                            "expect trace contains fault \"crash\"\n"
                            "expect trace omits exit\n");
  struct scn_pattern *p = &s->expects[0].pattern;
  cr_assert_eq(s->expects[0].kind, SCN_EXP_TRACE_CONTAINS);
  cr_assert_eq(p->ev, SCN_EV_COMMIT);
  cr_assert_str_eq(p->actor, "kernel");
  cr_assert_str_eq(p->text, "");
  cr_assert_eq(s->expects[1].kind, SCN_EXP_TRACE_OMITS);
  cr_assert_str_eq(s->expects[1].pattern.actor, "*");
  cr_assert_str_eq(s->expects[1].pattern.text, "version");
  cr_assert_str_eq(s->expects[2].pattern.actor, "");
  cr_assert_str_eq(s->expects[2].pattern.text, "crash");
  cr_assert_eq(s->expects[3].pattern.ev, SCN_EV_EXIT);
  scn_free(s);
}

Test(scn, event_names_round_trip) {
  for (int i = 0; i < SCN_EV_COUNT; i++) {
    enum scn_ev ev;
    cr_assert_eq(scn_ev_parse(scn_ev_name((enum scn_ev)i), &ev), 0);
    cr_assert_eq(ev, (enum scn_ev)i);
  }
  enum scn_ev ev;
  cr_assert_lt(scn_ev_parse("nonsense", &ev), 0);
}

Test(scn, crlf_tabs_and_trailing_comments) {
  struct scn *s = parse("server\tkvs   --state copy # the store\r\n"
                        "expect no-leaks#tight\r\n");
  cr_assert_eq(s->servers[0].state, SCN_STATE_COPY);
  cr_assert_eq(s->nexpects, 1);
  scn_free(s);
}

Test(scn, last_line_without_newline) {
  struct scn *s = parse("server kvs\nexpect no-leaks");
  cr_assert_eq(s->nexpects, 1);
  scn_free(s);
}

Test(scn, tree_outlives_the_buffer) {
  char *buf = strdup("scenario \"kept\"\nserver kvs\napp ap1\n");
  struct scn_err err;
  struct scn *s = scn_parse("t.scn", buf, strlen(buf), &err);
  memset(buf, 'x', strlen(buf));
  free(buf);
  cr_assert_str_eq(s->title, "kept");
  cr_assert_str_eq(s->apps[0].service, "kvs");
  scn_free(s);
}

/* Errors, one test per class */

Test(scn, error_unknown_statement) {
  refused("\n  frobnicate kvs\n", "t.scn:2:3: unknown statement "
                                  "'frobnicate' (scenario, machine, server, "
                                  "app, tcp-client, at, on or expect)");
  refused("\"x\"\n", "t.scn:1:1: expected a statement (scenario, machine, "
                     "server, app, tcp-client, at, on or expect)");
}

Test(scn, error_missing_word) {
  refused("server\n", "t.scn:1:7: missing a server name at end of line");
  refused(SRV "at 5ms\n", "t.scn:2:7: missing an action at end of line");
  refused(SRV "at 5ms replace kvs\n",
          "t.scn:2:19: missing the new server's binary at end of line");
  refused(SRV "on request 5 to kvs crash kvs\n",
          "t.scn:2:21: expected ':' before the action");
  refused(SRV "on request 5 to kvs\n",
          "t.scn:2:20: missing ':' before the action at end of line");
}

Test(scn, error_bad_names) {
  refused("server 9x\n", "t.scn:1:8: bad name '9x' (letters, digits, '_' and "
                         "'-', not starting with a digit or '-')");
  refused("server kvs.2\n", "t.scn:1:8: bad name 'kvs.2' (letters, digits, "
                            "'_' and '-', not starting with a digit or '-')");
  refused("server abcdefghijabcdefghijabcdefghij12\n",
          "t.scn:1:8: name 'abcdefghijabcdefghijabcdefghij12' is longer than "
          "31 bytes");
  refused("server kernel\n", "t.scn:1:8: 'kernel' names the kernel, not a "
                             "process");
  refused(SRV "at 1s kill kvs.x\n", "t.scn:2:12: bad instance 'kvs.x' (a "
                                    "name, or a name and a generation such "
                                    "as kvs.2)");
}

Test(scn, error_duplicate_names) {
  refused(SRV "app kvs\n", "t.scn:2:5: 'kvs' is already declared at line 1");
  refused("scenario \"a\"\nscenario \"b\"\n",
          "t.scn:2:1: second scenario statement (the first is at line 1)");
  refused("machine\n\nmachine --seed 1\n",
          "t.scn:3:1: second machine statement (the first is at line 1)");
}

Test(scn, error_undeclared_names) {
  refused("app ap1\n", "t.scn:1:5: app 'ap1' needs a server: declare one "
                       "before it, or give --service");
  refused(SRV "at 5ms replace kvz kvs2\n",
          "t.scn:2:16: no server 'kvz' declared before this line");
  refused(SRV "app ap1\nat 5ms replace ap1 kvs2\n",
          "t.scn:3:16: 'ap1' is an app, not a server (line 2)");
  refused(SRV "on request 1 to nope: crash kvs\n",
          "t.scn:2:17: no server 'nope' declared before this line");
  refused(SRV "on event send ap9: crash kvs\n",
          "t.scn:2:15: no server or app 'ap9' declared before this line");
  refused(SRV "at 1s hang ghost.3\n",
          "t.scn:2:12: no server or app 'ghost' declared before this line");
  refused(SRV "expect errors == 0 --app kvs\n",
          "t.scn:2:26: 'kvs' is a server, not an app (line 1)");
  refused(SRV "app a --service b\n",
          "t.scn:2:17: no server 'b' declared before this line");
  refused("at 1s crash kvs\n" SRV,
          "t.scn:1:13: no server or app 'kvs' declared before this line");
}

Test(scn, error_options) {
  refused("server kvs --foo 1\n",
          "t.scn:1:12: unknown option '--foo' for server (--binary, "
          "--version, --state, --restart, --deadline, --heartbeat, --hold, "
          "--args, --fault)");
  refused("server kvs --state single --state copy\n",
          "t.scn:1:27: option --state given twice");
  refused("server kvs --state\n",
          "t.scn:1:19: missing a value for --state at end of line");
  refused("server kvs extra\n",
          "t.scn:1:12: unexpected 'extra' (options of server start with --)");
  refused(SRV "at 1s crash kvs --now\n", "t.scn:2:17: unexpected '--now'");
  refused(SRV "expect no-leaks \"x\"\n", "t.scn:2:17: unexpected string");
}

Test(scn, error_enums) {
  refused("server kvs --state double\n",
          "t.scn:1:20: unknown state method 'double' (single, chain, copy)");
  refused("machine --mode fast\n",
          "t.scn:1:16: unknown mode 'fast' (lockstep, free)");
  refused("server kvs --restart sometimes\n",
          "t.scn:1:22: expected never, always or a number of restarts, got "
          "'sometimes'");
  refused(SRV "at 1s explode kvs\n", "t.scn:2:7: unknown action 'explode' "
                                     "(replace, crash, panic, hang, kill, "
                                     "restart, bind, mount, unmount, "
                                     "fault, stop, kupdate, migrate, input)");
  refused(SRV "on time 5: crash kvs\n",
          "t.scn:2:4: unknown trigger 'time' (request, event)");
  refused(SRV "on event boom kvs: crash kvs\n",
          "t.scn:2:10: unknown event 'boom' (see Trace format in "
          "scenarios/README.md)");
  refused("expect everything\n",
          "t.scn:1:8: unknown expectation 'everything' (all-answered, "
          "exactly-one-answer, no-leaks, errors, latency, state, trace, "
          "file, failovers, ended, usable-mib, tcp-client, task)");
  refused("expect errors =< 1\n", "t.scn:1:15: unknown comparison '=<' (<, "
                                  "<=, ==, >=, >)");
  refused("expect latency p90 < 1s\n",
          "t.scn:1:16: unknown statistic 'p90' (p50, p99, max)");
  refused("expect trace has exit\n",
          "t.scn:1:14: unknown trace check 'has' (contains, omits)");
  refused(SRV "expect state kvs equals nothing\n",
          "t.scn:2:25: expected model or a file name in quotes");
  refused(SRV "expect latency max < 1s --op put\n",
          "t.scn:2:30: expected an op such as kvs.put");
}

Test(scn, error_faults) {
  refused("server kvs --fault crash\n", "t.scn:1:20: expected a fault such "
                                        "as crash@request:10 (KIND@POINT)");
  refused("server kvs --fault melt@save\n", "t.scn:1:20: unknown fault kind "
                                            "'melt' (crash, panic, hang, "
                                            "refuse)");
  refused("server kvs --fault crash@lunch\n",
          "t.scn:1:26: unknown fault point 'lunch' (start, register, restore, "
          "request, save, handoff)");
  refused("server kvs --fault crash@request\n",
          "t.scn:1:26: request needs a number: request:N");
  refused("server kvs --fault crash@request:0\n",
          "t.scn:1:34: 0 is out of range (1 to 18446744073709551615)");
  refused("server kvs --fault crash@save:3\n",
          "t.scn:1:30: only request takes a number (request:N)");
  refused("server kvs --fault refuse@save\n",
          "t.scn:1:20: refuse happens only at restore (refuse@restore)");
  refused("server kvs --fault hang@save --fault hang@save --fault hang@save "
          "--fault hang@save --fault hang@save --fault hang@save --fault "
          "hang@save --fault hang@save --fault hang@save\n",
          "t.scn:1:164: more than 8 faults in one plan");
}

Test(scn, error_numbers) {
  refused("server kvs --version 0\n",
          "t.scn:1:22: 0 is out of range (1 to 4294967295)");
  refused("server kvs --version 4294967296\n",
          "t.scn:1:22: 4294967296 is out of range (1 to 4294967295)");
  refused("machine --seed 18446744073709551616\n",
          "t.scn:1:16: number too large: '18446744073709551616'");
  refused("machine --seed 99999999999999999999999999999999999999999999999999\n",
          "t.scn:1:16: number too large: "
          "'9999999999999999999999999999999999999999...'");
  refused("machine --seed 12abc\n",
          "t.scn:1:16: expected a number, got '12abc'");
  refused("machine --seed -1\n", "t.scn:1:16: expected a number, got '-1'");
  refused(SRV "app a --mix 1:2\n", "t.scn:2:13: expected a mix such as "
                                   "50:45:5 (put:get:delete weights)");
  refused(SRV "app a --mix 0:0:0\n",
          "t.scn:2:13: a mix needs a weight above 0");
  refused(SRV "app a --mix 1:x:0\n", "t.scn:2:15: expected a number, got 'x'");
}

Test(scn, error_durations) {
  refused("machine --grace 5\n",
          "t.scn:1:17: duration '5' needs a unit (ns, us, ms or s)");
  refused("machine --grace 5min\n",
          "t.scn:1:17: unknown unit in duration '5min' (ns, us, ms or s)");
  refused("machine --grace ms\n",
          "t.scn:1:17: expected a duration such as 5ms, got 'ms'");
  refused("machine --grace 0s\n", "t.scn:1:17: grace must be longer than 0");
  refused("machine --grace 18446744073709551615s\n",
          "t.scn:1:17: number too large: '18446744073709551615s'");
  refused(SRV "at 5 crash kvs\n",
          "t.scn:2:4: duration '5' needs a unit (ns, us, ms or s)");
}

Test(scn, error_sizes) {
  refused("machine --memory 100M\n",
          "t.scn:1:18: memory must be a whole number of 128M blocks");
  refused("machine --memory 1T\n",
          "t.scn:1:18: unknown unit in size '1T' (K, M or G)");
  refused("machine --memory 99999999999G\n",
          "t.scn:1:18: number too large: '99999999999G'");
  refused(SRV "app a --value-size 4K..64\n",
          "t.scn:2:20: range '4K..64': the first is larger than the "
          "second");
  refused(SRV "app a --value-size 4K..\n",
          "t.scn:2:24: expected a size such as 64K, got ''");
}

Test(scn, error_strings) {
  refused("scenario \"open\n", "t.scn:1:10: unterminated string");
  refused("scenario \"bad \\q\"\n",
          "t.scn:1:15: unknown escape '\\q' (use \\\" \\\\ \\n or \\t)");
  refused("scenario title\n", "t.scn:1:10: expected a title in quotes");
  char text[400];
  memset(text, 0, sizeof text);
  strcpy(text, "scenario \"");
  memset(text + 10, 'a', 256);
  strcat(text, "\"\n");
  refused(text, "t.scn:1:10: string longer than 255 bytes");
  memset(text, 0, sizeof text);
  strcpy(text, "server ");
  memset(text + 7, 'a', 256);
  refused(text, "t.scn:1:8: word longer than 255 bytes");
}

Test(scn, error_bytes) {
  const char nul[] = "server kvs\nserver a\0b\n";
  struct scn_err err;
  cr_assert_null(scn_parse("t.scn", nul, sizeof nul - 1, &err));
  cr_assert_str_eq(err.text, "t.scn:2:9: NUL byte");
  const char incomment[] = "server kvs # a\0b\n";
  cr_assert_null(scn_parse("t.scn", incomment, sizeof incomment - 1, &err));
  cr_assert_str_eq(err.text, "t.scn:1:15: NUL byte");
  refused("server kvs\x01\n", "t.scn:1:11: control byte 0x01");
  refused("server k\xc3\xa9\n", "t.scn:1:9: byte 0xc3 outside a string "
                                "(only strings may hold non-ASCII text)");
  refused("scenario \"a\x1b\"\n", "t.scn:1:12: control byte 0x1b");
  struct scn *s = parse("scenario \"caf\xc3\xa9\" # \xff comment\n");
  cr_assert_str_eq(s->title, "caf\xc3\xa9");
  scn_free(s);
}

Test(scn, error_limits) {
  char *big = malloc(SCN_FILE_MAX + 2);
  struct scn_err err;
  memset(big, '\n', SCN_FILE_MAX + 1);
  cr_assert_null(scn_parse("t.scn", big, SCN_FILE_MAX + 1, &err));
  cr_assert_str_eq(err.text, "t.scn:1:1: file larger than 1048576 bytes");
  memset(big, ' ', 2000);
  memcpy(big + 2000, "\n", 2);
  cr_assert_null(scn_parse("t.scn", big, 2001, &err));
  cr_assert_str_eq(err.text, "t.scn:1:1025: line longer than 1024 bytes");
  big[0] = '\0';
  for (int i = 0; i < 65; i++)
    strcat(big, "x ");
  refused(big, "t.scn:1:129: more than 64 words in one statement");
  big[0] = '\0';
  for (int i = 0; i <= SCN_STMT_MAX; i++)
    strcat(big, "expect no-leaks\n");
  refused(big, "t.scn:1001:1: more than 1000 statements");
  free(big);
}

Test(scn, exactly_the_limits_pass) {
  char *big = malloc(SCN_FILE_MAX + 1);
  big[0] = '\0';
  for (int i = 0; i < SCN_STMT_MAX; i++)
    strcat(big, "expect no-leaks\n");
  struct scn *s = parse(big);
  cr_assert_eq(s->nexpects, SCN_STMT_MAX);
  scn_free(s);
  memset(big, ' ', SCN_LINE_MAX);
  strcpy(big + SCN_LINE_MAX - 15, "expect no-leaks");
  s = parse(big);
  cr_assert_eq(s->nexpects, 1);
  scn_free(s);
  free(big);
}

/* What one run can hold (scn_count.c): the kernel's services, and the
 * processes a trace can name. */

/* n lines made by fmt with the line's index (from 1), appended to buf. */
static void lines(char *buf, const char *fmt, int from, int to) {
  for (int i = from; i <= to; i++)
    sprintf(buf + strlen(buf), fmt, i);
}

Test(scn, error_more_servers_than_the_kernel_has) {
  char buf[4096] = "";
  lines(buf, "server s%d --binary kvs\n", 1, SCN_SERVERS_MAX);
  scn_free(parse(buf));
  lines(buf, "server s%d --binary kvs\n", SCN_SERVERS_MAX + 1,
        SCN_SERVERS_MAX + 8);
  refused(buf, "t.scn:33:1: more than 32 servers (the kernel has 32 "
               "services)");
}

Test(scn, error_more_processes_than_a_run_holds) {
  char buf[8192] = SRV;
  lines(buf, "app a%d\n", 1, SCN_PROCS_MAX - 1);
  struct scn *s = parse(buf);
  cr_assert_eq(s->napps, SCN_PROCS_MAX - 1);
  scn_free(s);
  lines(buf, "app a%d\n", SCN_PROCS_MAX, 70);
  refused(buf, "t.scn:64:1: 64 processes in one run, more than 63 (apps: 63; "
               "servers: 1, instances with replacements and restarts: 1; "
               "dumpers: 0)");
}

Test(scn, replacements_restarts_and_dumpers_count_as_processes) {
  char buf[8192] = "server kvs --restart 2 --fault crash@request:5\n"
                   "server b --fault crash@request:9\n";
  lines(buf, "app a%d\n", 1, SCN_PROCS_MAX - 6);
  /* kvs: 1, the replacement 1, the restart action 1, and 2 of the 3
   * planned failures (--restart 2); b never restarts: 1. */
  strcat(buf, "at 1ms replace kvs kvs2 --fault crash@restore\n"
              "at 2ms restart kvs\n"
              "at 3ms crash kvs.2\n"
              "at 4ms crash b\n");
  scn_free(parse(buf));
  refused(
      strcat(buf, "expect state b equals \"b.txt\"\n"),
      "t.scn:64:1: 64 processes in one run, more than 63 (apps: 57; servers: "
      "2, instances with replacements and restarts: 6; dumpers: 1)");
  char always[8192] = "server kvs --restart always\n";
  lines(always, "app a%d\n", 1, SCN_PROCS_MAX - 2);
  strcat(always, "at 1ms crash kvs\n");
  scn_free(parse(always));
  refused(strcat(always, "on request 9 to kvs: panic kvs\n"),
          "t.scn:64:1: 64 processes in one run, more than 63 (apps: 61; "
          "servers: 1, instances with replacements and restarts: 3; "
          "dumpers: 0)");
}

Test(scn, error_server_name_longer_than_its_instances_allow) {
  scn_free(parse("server abcdefghijabcdefghij\n"));
  refused("server abcdefghijabcdefghijk\n",
          "t.scn:1:8: a server's name is at most 20 bytes (its later "
          "instances are NAME.2, NAME.3 ...)");
  scn_free(parse(SRV "app abcdefghijabcdefghijabcdefghij1\n"));
}

Test(scn, error_beyond_what_the_programs_take) {
  refused("server kvs --hold 65\n", "t.scn:1:19: 65 is out of range (1 to 64)");
  refused(SRV "app a --keys 16777217\n",
          "t.scn:2:14: 16777217 is out of range (1 to 16777216)");
  refused(SRV "app a --value-size 1..65M\n",
          "t.scn:2:20: a value is at most 64M bytes");
  char words[512] = "server kvs --args \"";
  lines(words, "w%d ", 1, SCN_ARGS_WORDS_MAX);
  scn_free(parse(strcat(words, "\"\n")));
  char more[512] = SRV "app a --args \"";
  lines(more, " w%d", 1, SCN_ARGS_WORDS_MAX + 1);
  refused(strcat(more, "\"\n"), "t.scn:2:14: more than 20 words in --args");
}

Test(scn, error_times_beyond_a_day) {
  struct scn *s = parse(SRV "at 86400s crash kvs\n"
                            "expect latency max < 86400000000000ns\n");
  cr_assert_eq(s->actions[0].when.t_ns, SCN_TIME_MAX_NS);
  scn_free(s);
  refused(SRV "at 18446744073709551615ns crash kvs\n",
          "t.scn:2:4: time '18446744073709551615ns' is beyond the limit, "
          "86400s (a day)");
  refused(SRV "at 0ns..18446744073709551615ns crash kvs\n",
          "t.scn:2:9: time '18446744073709551615ns' is beyond the limit, "
          "86400s (a day)");
  refused(SRV "app a --start 86401s\n",
          "t.scn:2:15: time '86401s' is beyond the limit, 86400s (a day)");
  refused(SRV "expect latency p99 < 86400000001us\n",
          "t.scn:2:22: time '86400000001us' is beyond the limit, 86400s (a "
          "day)");
}

/* Namespaces */

#define RAM "server ramfs\napp a --binary nscmd --args \"pwd\"\n"

Test(scn, app_ns_fresh_by_default_and_each_kind) {
  struct scn *s = parse(RAM "app b --binary nsread --ns copy:a\n"
                            "app c --binary nscmd --ns share:ramfs\n"
                            "app d --binary nscmd --ns clean:a\n"
                            "app e --binary nscmd --ns fresh\n");
  cr_assert_eq(s->apps[0].ns.kind, SCN_NS_FRESH);
  cr_assert_str_eq(s->apps[0].service, "", "only kvsload has a service");
  cr_assert_eq(s->apps[1].ns.kind, SCN_NS_COPY);
  cr_assert_str_eq(s->apps[1].ns.from, "a");
  cr_assert_eq(s->apps[2].ns.kind, SCN_NS_SHARE);
  cr_assert_str_eq(s->apps[2].ns.from, "ramfs");
  cr_assert_eq(s->apps[3].ns.kind, SCN_NS_CLEAN);
  cr_assert_eq(s->apps[4].ns.kind, SCN_NS_FRESH);
  cr_assert_str_eq(s->apps[4].ns.from, "");
  scn_free(s);
}

Test(scn, error_app_ns) {
  refused(RAM "app b --binary nscmd --ns borrow:a\n",
          "t.scn:3:27: unknown namespace 'borrow' (fresh, share, copy, "
          "clean)");
  refused(RAM "app b --binary nscmd --ns share\n",
          "t.scn:3:27: share needs a process: share:PROC");
  refused(RAM "app b --binary nscmd --ns fresh:a\n",
          "t.scn:3:27: fresh takes no process");
  refused(RAM "app b --binary nscmd --ns copy:zz\n",
          "t.scn:3:32: no server or app 'zz' declared before this line");
  refused(RAM "app b --binary nscmd --ns \"copy:a\"\n",
          "t.scn:3:27: expected fresh, share:P, copy:P or clean:P");
  refused("server ramfs\napp a --binary nscmd --start 2ms\n"
          "app b --binary nscmd --ns share:a --start 1ms\n",
          "t.scn:3:5: app 'b' starts before 'a', whose namespace it takes "
          "(--start)");
}

Test(scn, nine_p_servers_take_no_kvs_options) {
  struct scn *s = parse("server ramfs2 --binary ramfs --restart always\n");
  cr_assert_eq(scn_family_of(s->servers[0].binary), SCN_FAM_9P);
  cr_assert_eq(scn_family_of("kvs2"), SCN_FAM_KVS);
  cr_assert_eq(scn_family_of("no-such-server"), SCN_FAM_KVS);
  scn_free(s);
  refused("server ramfs --hold 4\n", "t.scn:1:8: ramfs is a 9P file server: "
                                     "--hold and --state are kvs's options");
  refused("server r --binary ramfs --state copy\n",
          "t.scn:1:8: ramfs is a 9P file server: --hold and --state are "
          "kvs's options");
}

Test(scn, bind_mount_unmount) {
  struct scn *s = parse(RAM "at 1ms bind a \"#c\" /mnt --flags bc\n"
                            "at 2ms mount a /srv/ramfs /n --flags a "
                            "--aname /sub\n"
                            "on event exit a: unmount a /n\n"
                            "at 3ms unmount a \"#c\" /mnt\n");
  struct scn_action *b = &s->actions[0], *m = &s->actions[1];
  cr_assert_eq(b->kind, SCN_ACT_BIND);
  cr_assert_str_eq(b->target, "a");
  cr_assert_str_eq(b->src, "#c");
  cr_assert_str_eq(b->dst, "/mnt");
  cr_assert_str_eq(b->flags, "bc");
  cr_assert_eq(m->kind, SCN_ACT_MOUNT);
  cr_assert_str_eq(m->src, "/srv/ramfs");
  cr_assert_str_eq(m->dst, "/n");
  cr_assert_str_eq(m->flags, "a");
  cr_assert_str_eq(m->aname, "/sub");
  cr_assert_eq(s->actions[2].kind, SCN_ACT_UNMOUNT);
  cr_assert_eq(s->actions[2].when.kind, SCN_TRIG_EVENT);
  cr_assert_str_eq(s->actions[2].src, "");
  cr_assert_str_eq(s->actions[2].dst, "/n");
  cr_assert_str_eq(s->actions[3].src, "#c");
  cr_assert_str_eq(s->actions[3].dst, "/mnt");
  cr_assert_str_eq(scn_action_name(SCN_ACT_UNMOUNT), "unmount");
  scn_free(s);
}

Test(scn, error_namespace_actions) {
  refused(RAM "at 1ms bind zz \"#c\" /mnt\n",
          "t.scn:3:13: no server or app 'zz' declared before this line");
  refused(RAM "at 1ms bind a.2 \"#c\" /mnt\n",
          "t.scn:3:13: bad name 'a.2' (letters, digits, '_' and '-', not "
          "starting with a digit or '-')");
  refused(RAM "at 1ms bind a c /mnt\n",
          "t.scn:3:15: the path to bind (NEW) must start with '/' or '#', "
          "got 'c'");
  refused(RAM "at 1ms bind a \"#c\" mnt\n",
          "t.scn:3:20: the path bound on (OLD) must start with '/', got "
          "'mnt'");
  refused(RAM "at 1ms bind a \"#c\"\n",
          "t.scn:3:19: missing the path bound on (OLD) at end of line");
  refused(RAM "at 1ms bind a \"/x\\ty\" /mnt\n",
          "t.scn:3:15: the path to bind (NEW) may hold printable ASCII only");
  refused(RAM "at 1ms bind a \"#c\" /mnt --flags ab\n",
          "t.scn:3:33: flags a (after) and b (before) exclude each other");
  refused(RAM "at 1ms bind a \"#c\" /mnt --flags cc\n",
          "t.scn:3:33: flag c given twice");
  refused(RAM "at 1ms bind a \"#c\" /mnt --flags x\n",
          "t.scn:3:33: expected flags such as bc (a, b, c)");
  refused(RAM "at 1ms bind a \"#c\" /mnt --aname x\n",
          "t.scn:3:25: unknown option '--aname' for bind (--flags)");
  refused(RAM "at 1ms mount a /n/ramfs /n\n",
          "t.scn:3:16: a server is mounted from /srv/NAME");
  refused(RAM "at 1ms mount a /srv/nope /n\n",
          "t.scn:3:21: no server 'nope' declared before this line");
  refused("server kvs\n" RAM "at 1ms mount a /srv/kvs /n\n",
          "t.scn:4:21: server 'kvs' runs kvs, which posts nothing in /srv "
          "(ramfs and hostfs do)");
  refused(RAM "at 1ms mount a /srv/ramfs \"#c\"\n",
          "t.scn:3:27: the path mounted on (OLD) must start with '/', got "
          "'#c'");
  refused(RAM "at 1ms unmount a \"#c\"\n",
          "t.scn:3:22: expected the path unmounted from (OLD) after a "
          "servant");
  refused(RAM "at 1ms unmount a /n /mnt /x\n", "t.scn:3:26: unexpected '/x'");
}

Test(scn, expect_file) {
  struct scn *s = parse(RAM "expect file a /n/x equals \"hi\\n\"\n"
                            "expect file ramfs \"#c/null\" contains \"\"\n"
                            "expect file a /nope fails\n");
  struct scn_expect *e = &s->expects[0];
  cr_assert_eq(e->kind, SCN_EXP_FILE);
  cr_assert_str_eq(e->proc, "a");
  cr_assert_str_eq(e->path, "/n/x");
  cr_assert_eq(e->fcheck, SCN_FILE_EQUALS);
  cr_assert_str_eq(e->text, "hi\n");
  cr_assert_eq(s->expects[1].fcheck, SCN_FILE_CONTAINS);
  cr_assert_str_eq(s->expects[1].path, "#c/null");
  cr_assert_eq(s->expects[2].fcheck, SCN_FILE_FAILS);
  cr_assert_str_eq(s->expects[2].text, "");
  scn_free(s);
}

Test(scn, error_expect_file) {
  refused(RAM "expect file b /n/x equals \"x\"\n",
          "t.scn:3:13: no server or app 'b' declared before this line");
  refused(RAM "expect file a n/x equals \"x\"\n",
          "t.scn:3:15: the path to read must start with '/' or '#', got "
          "'n/x'");
  refused(RAM "expect file a /n/x is \"x\"\n",
          "t.scn:3:20: unknown file check 'is' (equals, contains, fails)");
  refused(RAM "expect file a /n/x equals x\n",
          "t.scn:3:27: expected a text in quotes");
  refused(RAM "expect file a /n/x equals\n",
          "t.scn:3:26: missing a text in quotes at end of line");
  refused(RAM "expect file a /n/x fails \"x\"\n",
          "t.scn:3:26: unexpected string");
}

Test(scn, namespace_helpers_count_as_processes) {
  char buf[16384];
  size_t n = 0;
  n += (size_t)snprintf(buf + n, sizeof buf - n, RAM);
  /* ramfs and a, then 61 helpers: 63 processes, the limit. */
  for (int i = 0; i < 31; i++)
    n += (size_t)snprintf(buf + n, sizeof buf - n,
                          "at %dms bind a \"#c\" /mnt\n", i + 1);
  for (int i = 0; i < 30; i++)
    n += (size_t)snprintf(buf + n, sizeof buf - n,
                          "expect file a /mnt/null equals \"\"\n");
  struct scn *s = parse(buf);
  scn_free(s);
  snprintf(buf + n, sizeof buf - n, "expect file a /mnt/null fails\n");
  refused(buf, "t.scn:64:1: 64 processes in one run, more than 63 (apps: 1; "
               "servers: 1, instances with replacements and restarts: 1; "
               "dumpers: 0; namespace helpers: 62)");
}

Test(scn, load_reports_unreadable_files) {
  struct scn_err err;
  cr_assert_null(scn_load("/nonexistent/x.scn", &err));
  cr_assert_str_eq(err.text, "/nonexistent/x.scn: cannot open: No such file or "
                             "directory");
}

/* The shipped scenarios */

/* The path of a file in the source tree's scenarios/; free it. */
static char *scenario_path(const char *name) {
  const char *root = getenv("UKSIM_SOURCE_ROOT");
  char *path;
  cr_assert_not_null(root, "UKSIM_SOURCE_ROOT is not set (run under meson)");
  cr_assert_gt(asprintf(&path, "%s/scenarios/%s", root, name), 0);
  return path;
}

Test(scn, every_shipped_scenario_parses) {
  char *pat = scenario_path("*.scn");
  glob_t g;
  cr_assert_eq(glob(pat, 0, NULL, &g), 0, "no scenarios at %s", pat);
  cr_assert_geq(g.gl_pathc, 15, "only %zu scenarios", g.gl_pathc);
  for (size_t i = 0; i < g.gl_pathc; i++) {
    struct scn_err err;
    struct scn *s = scn_load(g.gl_pathv[i], &err);
    cr_assert_not_null(s, "%s", err.text);
    cr_assert_neq(s->title[0], '\0', "%s has no title", g.gl_pathv[i]);
    /* Namespace scenarios may run apps alone (servants, no server),
     * migration scenarios tasks alone (outside the machine). */
    cr_assert_gt(s->nservers + s->napps + s->ntasks, 0, "%s", g.gl_pathv[i]);
    cr_assert_gt(s->nexpects, 0, "%s", g.gl_pathv[i]);
    scn_free(s);
  }
  globfree(&g);
  free(pat);
}

Test(scn, tour_is_a_replacement_under_load) {
  char *path = scenario_path("tour.scn");
  struct scn_err err;
  struct scn *s = scn_load(path, &err);
  cr_assert_not_null(s, "%s", err.text);
  cr_assert_eq(s->nactions, 1);
  cr_assert_eq(s->actions[0].kind, SCN_ACT_REPLACE);
  cr_assert_str_eq(s->actions[0].target, "kvs");
  cr_assert_str_eq(s->actions[0].binary, "kvs2");
  cr_assert_geq(s->napps, 2);
  scn_free(s);
  free(path);
}

/* Robustness: seeded random inputs are parsed or refused cleanly */

static uint64_t next(uint64_t *x) {
  *x += 0x9e3779b97f4a7c15ull;
  uint64_t z = *x;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static void parse_or_refuse(const char *buf, size_t n) {
  struct scn_err err = {0};
  struct scn *s = scn_parse("r.scn", buf, n, &err);
  if (s == NULL)
    cr_assert(strncmp(err.text, "r.scn:", 6) == 0, "bad message: %s", err.text);
  scn_free(s);
}

Test(scn, random_bytes_never_crash) {
  uint64_t x = 1;
  char buf[512];
  for (int i = 0; i < 3000; i++) {
    size_t n = next(&x) % sizeof buf;
    for (size_t j = 0; j < n; j++)
      buf[j] = (char)next(&x);
    parse_or_refuse(buf, n);
  }
}

Test(scn, mutated_scenarios_never_crash) {
  static const char good[] =
      "scenario \"m\"\nmachine --memory 1G --seed 3 --grace 1s\n"
      "server kvs --state chain --fault crash@request:4\n"
      "app ap1 --count 10 --value-size 1..4K --mix 1:2:3\n"
      "at 5ms replace kvs kvs2 --state single\n"
      "on event receive kvs 3: hang kvs\n"
      "expect latency p99 < 5ms --op kvs.put\n"
      "expect trace contains fault kvs \"crash\"\n";
  const char alphabet[] = " \n\t\"#:.@-09azAZ\\\0\xff";
  uint64_t x = 2;
  char buf[sizeof good];
  for (int i = 0; i < 5000; i++) {
    memcpy(buf, good, sizeof good);
    for (int k = 0; k < 1 + (int)(next(&x) % 4); k++)
      buf[next(&x) % (sizeof good - 1)] =
          alphabet[next(&x) % (sizeof alphabet - 1)];
    parse_or_refuse(buf, sizeof good - 1);
  }
}

/* Orthros (issue 14): the machine's backup, protected apps, OS faults and
 * their expectations. */

#define OS "machine --backup 1 --heartbeat 10ms --heartbeat-timeout 200ms\n"

Test(scn, orthros_machine_apps_faults_and_expectations) {
  struct scn *s = parse(OS "server kvs\n"
                           "app a --protect --count 5\n"
                           "app b\n"
                           "at 1s fault kernel panic\n"
                           "on request 3 to kvs: fault kernel hang\n"
                           "at 2s fault backup crash\n"
                           "expect failovers >= 2\n"
                           "expect ended b\n"
                           "expect usable-mib 1 4096 2 3712\n");
  cr_assert_eq(s->machine.backup, 1);
  cr_assert_eq(s->machine.heartbeat_ns, 10000000ull);
  cr_assert_eq(s->machine.hb_timeout_ns, 200000000ull);
  cr_assert_eq(s->machine.mode, SCN_MODE_FREE, "a backup runs free");
  cr_assert(s->apps[0].protect);
  cr_assert_eq(s->apps[0].count, 5);
  cr_assert(!s->apps[1].protect);
  cr_assert_eq(s->actions[0].kind, SCN_ACT_FAULT);
  cr_assert_str_eq(s->actions[0].target, "kernel");
  cr_assert_eq(s->actions[0].kfault, SCN_FAULT_PANIC);
  cr_assert_eq(s->actions[1].kfault, SCN_FAULT_HANG);
  cr_assert_eq(s->actions[1].when.kind, SCN_TRIG_REQUEST);
  cr_assert_str_eq(s->actions[2].target, "backup");
  cr_assert_eq(s->actions[2].kfault, SCN_FAULT_CRASH);
  cr_assert_str_eq(scn_action_name(SCN_ACT_FAULT), "fault");
  cr_assert_eq(s->expects[0].kind, SCN_EXP_FAILOVERS);
  cr_assert_eq(s->expects[0].cmp, SCN_GE);
  cr_assert_eq(s->expects[0].value, 2);
  cr_assert_eq(s->expects[1].kind, SCN_EXP_ENDED);
  cr_assert_str_eq(s->expects[1].app, "b");
  cr_assert_eq(s->expects[2].kind, SCN_EXP_USABLE);
  cr_assert_eq(s->expects[2].nusable, 2);
  cr_assert_eq(s->expects[2].usable_os[1], 2);
  cr_assert_eq(s->expects[2].usable_mib[1], 3712);
  scn_free(s);
  s = parse("machine --backup 1 --disk 16M\n");
  cr_assert_eq(s->machine.disk, 16ull << 20);
  cr_assert_eq(s->machine.heartbeat_ns, 0, "the machine's default");
  scn_free(s);
}

Test(scn, error_orthros) {
  refused("machine --backup 2\n", "t.scn:1:18: 2 is out of range (0 to 1)");
  refused("machine --heartbeat 10ms\n",
          "t.scn:1:25: --heartbeat and --heartbeat-timeout need --backup 1");
  refused("machine --backup 1 --mode lockstep\n",
          "t.scn:1:35: a machine with a backup runs free (--mode free): a "
          "failover is real time");
  refused("machine --backup 1 --heartbeat 1500us\n",
          "t.scn:1:32: a heartbeat is whole milliseconds, at most 60000ms");
  refused("machine --backup 1 --heartbeat-timeout 61s\n",
          "t.scn:1:40: a heartbeat timeout is whole milliseconds, at most "
          "60000ms");
  refused("machine --backup 1 --disk 100\n",
          "t.scn:1:27: a disk is whole 4K blocks, at most 1G (--disk 16M)");
  refused("machine --backup 1 --disk 2G\n",
          "t.scn:1:27: a disk is whole 4K blocks, at most 1G (--disk 16M)");
  refused(SRV "app a --protect\n",
          "t.scn:2:7: --protect needs a machine with a backup (machine "
          "--backup 1, on an earlier line)");
  refused(OS SRV "app a --protect --protect\n",
          "t.scn:3:17: option --protect given twice");
  refused(OS SRV "app a --protect yes\n",
          "t.scn:3:17: unexpected 'yes' (options of app start with --)");
  refused(SRV "at 1s fault kernel panic\n",
          "t.scn:2:13: fault kernel needs a machine with a backup (machine "
          "--backup 1, on an earlier line)");
  refused(OS "at 1s fault kernel explode\n",
          "t.scn:2:20: unknown kernel fault 'explode' (crash, panic, hang, "
          "deadlock, runaway, stall-driver)");
  refused(OS "at 1s fault backup panic\n",
          "t.scn:2:20: a backup on standby can only crash (it serves no call "
          "to panic or hang in)");
  refused(OS "at 1s fault nothing crash\n",
          "t.scn:2:13: unknown OS to fault 'nothing' (kernel, backup)");
  refused(OS "at 1s fault kernel\n",
          "t.scn:2:19: missing panic, hang, crash, deadlock, runaway or "
          "stall-driver at end of line");
  refused(OS "at 1s fault kernel hang now\n", "t.scn:2:25: unexpected 'now'");
  refused("expect failovers == 1\n",
          "t.scn:1:8: expect failovers needs a machine with a backup (machine "
          "--backup 1, on an earlier line)");
  refused(OS "expect failovers 1\n",
          "t.scn:2:18: unknown comparison '1' (<, <=, ==, >=, >)");
  refused(OS "expect ended x\n", "t.scn:2:14: no app 'x' declared before this "
                                 "line");
  refused(OS "expect usable-mib\n",
          "t.scn:2:18: expected an OS number and its MiB");
  refused(OS "expect usable-mib 1\n",
          "t.scn:2:20: missing its usable MiB at end of line");
  refused(OS "expect usable-mib 0 4096\n",
          "t.scn:2:19: 0 is out of range (1 to 4294967295)");
}

/* The three-apps scenario's statements: nic0's ports, the runner's TCP
 * client and its expectation, and stop. */

#define NIC "machine --backup 1 --nic-port 17000\napp echo --binary techo\n"

Test(scn, tcp_client_nic_port_and_stop) {
  struct scn *s = parse(NIC "app mt --binary mtload --protect\n"
                            "tcp-client c1 17003 --every 20ms --lines 50 "
                            "--until 9s --server echo\n"
                            "tcp-client c2 17015\n"
                            "on event exit echo: stop mt\n"
                            "expect tcp-client c1 connected\n");
  cr_assert_eq(s->machine.nic_port, 17000);
  cr_assert_eq(s->ntcps, 2);
  const struct scn_tcp_client *c = &s->tcps[0];
  cr_assert_str_eq(c->name, "c1");
  cr_assert_eq(c->port, 17003);
  cr_assert_eq(c->every_ns, 20000000ull);
  cr_assert_eq(c->lines, 50);
  cr_assert_eq(c->until_ns, 9000000000ull);
  cr_assert_str_eq(c->server, "echo");
  cr_assert_eq(c->pos.line, 4);
  c = &s->tcps[1];
  cr_assert_eq(c->port, 17015, "nic0's last port");
  cr_assert_eq(c->every_ns, SCN_TCP_EVERY_DEFAULT_NS);
  cr_assert_eq(c->lines, 0, "no limit");
  cr_assert_eq(c->until_ns, 0, "no limit");
  cr_assert_str_eq(c->server, "");
  cr_assert_eq(s->actions[0].kind, SCN_ACT_STOP);
  cr_assert_str_eq(s->actions[0].target, "mt");
  cr_assert_str_eq(scn_action_name(SCN_ACT_STOP), "stop");
  cr_assert_eq(s->expects[0].kind, SCN_EXP_TCP);
  cr_assert_str_eq(s->expects[0].app, "c1");
  scn_free(s);
  /* A free-running machine without a backup may have a client too. */
  s = parse("machine --mode free --nic-port 1024\ntcp-client c 1039\n");
  cr_assert_eq(s->tcps[0].port, 1039);
  scn_free(s);
  s = parse("machine --nic-port 65503\n");
  cr_assert_eq(s->machine.nic_port, SCN_NIC_PORT_MAX);
  scn_free(s);
}

Test(scn, error_tcp_client) {
  refused("machine --nic-port 80\n",
          "t.scn:1:20: 80 is out of range (1024 to 65503)");
  refused("machine --nic-port 65504\n",
          "t.scn:1:20: 65504 is out of range (1024 to 65503)");
  refused("machine --nic-port x\n", "t.scn:1:20: expected a number, got 'x'");
  refused("machine --backup 1\ntcp-client c 17003\n",
          "t.scn:2:14: a tcp-client needs machine --nic-port on an earlier "
          "line (where nic0's ports are)");
  refused("tcp-client c 17003\n",
          "t.scn:1:14: a tcp-client needs machine --nic-port on an earlier "
          "line (where nic0's ports are)");
  refused("machine --nic-port 17000\ntcp-client c 17003\n",
          "t.scn:2:14: a tcp-client needs a free-running machine (--mode "
          "free or --backup 1): its lines come in real time");
  refused(NIC "tcp-client c 17016\n",
          "t.scn:3:14: port 17016 is not nic0's (17000 to 17015)");
  refused(NIC "tcp-client c 16999\n",
          "t.scn:3:14: port 16999 is not nic0's (17000 to 17015)");
  refused(NIC "tcp-client c 70000\n",
          "t.scn:3:14: 70000 is out of range (1 to 65535)");
  refused(NIC "tcp-client c\n",
          "t.scn:3:13: missing a port of nic0 at end of line");
  refused(NIC "tcp-client echo 17003\n",
          "t.scn:3:12: 'echo' is already declared at line 2");
  refused(NIC "tcp-client c 17003\napp c\n",
          "t.scn:4:5: 'c' is already declared at line 3");
  refused(NIC "tcp-client c 17003\ntcp-client c 17004\n",
          "t.scn:4:12: 'c' is already declared at line 3");
  refused(NIC "tcp-client c 17003 --every 500us\n",
          "t.scn:3:28: --every is 1ms to 60s");
  refused(NIC "tcp-client c 17003 --every 61s\n",
          "t.scn:3:28: --every is 1ms to 60s");
  refused(NIC "tcp-client c 17003 --lines 0\n",
          "t.scn:3:28: 0 is out of range (1 to 10000000)");
  refused(NIC "tcp-client c 17003 --server nobody\n",
          "t.scn:3:29: no app 'nobody' declared before this line");
  refused(NIC "tcp-client c 17003 --port 1\n",
          "t.scn:3:20: unknown option '--port' for tcp-client (--every, "
          "--lines, --until, --server)");
  refused(NIC "tcp-client a 17001\ntcp-client b 17002\ntcp-client c 17003\n"
              "tcp-client d 17004\ntcp-client e 17005\n",
          "t.scn:7:12: more than 4 tcp-clients");
  refused(NIC "expect tcp-client c connected\n",
          "t.scn:3:19: no tcp-client 'c' declared before this line");
  refused(NIC "tcp-client c 17003\nexpect tcp-client c broken\n",
          "t.scn:4:21: expected 'connected', got 'broken'");
  refused(NIC "tcp-client c 17003\nexpect tcp-client c connected now\n",
          "t.scn:4:31: unexpected 'now'");
  refused(NIC "server kvs\nat 1s stop kvs\n",
          "t.scn:4:12: 'kvs' is a server, not an app (line 3)");
  refused(NIC "at 1s stop nobody\n",
          "t.scn:3:12: no app 'nobody' declared before this line");
}
