/* Unit tests for expectations (scenarios/scn_eval.h) and the
 * exactly-one-answer checker they share with `uksim trace --check`.
 *
 * Each expectation kind is checked holding and failing over small traces
 * written here.  The base trace: ap1 puts (req 1, answered in 4us), ap2
 * gets and the kernel answers -ECONNRESET (req 2, 4us), ap1 gets (req 3,
 * 10us); then both apps exit with status 0 and the machine halts with no
 * ICA live.  Event lines are numbered as the trace's lines.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scn_eval.h"

TestSuite(scn_eval, .timeout = 30);

#define EV(step, t, rest) "{\"step\":" #step ",\"t\":" #t ",\"ev\":" rest "}\n"

#define SENDS                                                                  \
  EV(1, 0, "\"spawn\",\"actor\":\"kernel\",\"peer\":\"kvs\"")                  \
  EV(2, 1000,                                                                  \
     "\"send\",\"actor\":\"ap1\",\"peer\":\"kvs\",\"svc\":\"kvs\","            \
     "\"req\":1,\"op\":\"kvs.put\"")                                           \
  EV(3, 2000, "\"receive\",\"actor\":\"kvs\",\"peer\":\"ap1\",\"req\":1")      \
  EV(4, 3000, "\"reply\",\"actor\":\"kvs\",\"peer\":\"ap1\",\"req\":1")        \
  EV(5, 5000, "\"result\",\"actor\":\"ap1\",\"req\":1")                        \
  EV(6, 5000,                                                                  \
     "\"send\",\"actor\":\"ap2\",\"peer\":\"kvs\",\"svc\":\"kvs\","            \
     "\"req\":2,\"op\":\"kvs.get\"")                                           \
  EV(7, 6000, "\"receive\",\"actor\":\"kvs\",\"peer\":\"ap2\",\"req\":2")      \
  EV(8, 7000,                                                                  \
     "\"error\",\"actor\":\"kernel\",\"peer\":\"ap2\",\"req\":2,"              \
     "\"status\":-104")                                                        \
  EV(9, 9000, "\"result\",\"actor\":\"ap2\",\"req\":2,\"status\":-104")        \
  EV(10, 10000,                                                                \
     "\"send\",\"actor\":\"ap1\",\"peer\":\"kvs\",\"svc\":\"kvs\","            \
     "\"req\":3,\"op\":\"kvs.get\"")                                           \
  EV(11, 12000, "\"receive\",\"actor\":\"kvs\",\"peer\":\"ap1\",\"req\":3")    \
  EV(12, 13000, "\"reply\",\"actor\":\"kvs\",\"peer\":\"ap1\",\"req\":3")      \
  EV(13, 20000, "\"result\",\"actor\":\"ap1\",\"req\":3")

#define EXIT_OK(who, step)                                                     \
  EV(step, 30000, "\"exit\",\"actor\":\"" who "\",\"text\":\"status 0\"")
#define HALT(n) EV(20, 40000, "\"halt\",\"actor\":\"kernel\",\"status\":" #n)

static const char base[] = SENDS EXIT_OK("ap1", 14) EXIT_OK("ap2", 15) HALT(0);

static const char head[] = "server kvs\n"
                           "server other\n"
                           "app ap1 --service kvs\n"
                           "app ap2 --service kvs\n"
                           "app ap3 --service other\n";

static struct scn_verdict v[8];

/* Evaluates the expectation lines exp, after the declarations hd, over
 * trace; the number failed. */
static int eval_after(const char *hd, const char *exp, const char *trace,
                      const struct scn_facts *facts) {
  char src[2048];
  struct scn_err err = {0};
  snprintf(src, sizeof src, "%s%s", hd, exp);
  struct scn *s = scn_parse("t.scn", src, strlen(src), &err);
  cr_assert_not_null(s, "%s", err.text);
  cr_assert_leq(s->nexpects, 8);
  struct scn_trace *tr = scn_trace_parse("t.jsonl", trace, strlen(trace), &err);
  cr_assert_not_null(tr, "%s", err.text);
  int failed = scn_eval(s, tr, facts, v);
  scn_trace_free(tr);
  scn_free(s);
  return failed;
}

static int eval_facts(const char *exp, const char *trace,
                      const struct scn_facts *facts) {
  return eval_after(head, exp, trace, facts);
}

static int eval(const char *exp, const char *trace) {
  return eval_facts(exp, trace, &(struct scn_facts){0});
}

#define HOLDS(i, sub)                                                          \
  do {                                                                         \
    cr_expect(v[i].holds, "%s", v[i].text);                                    \
    cr_expect(strstr(v[i].text, sub), "%s", v[i].text);                        \
  } while (0)
#define FAILS(i, sub)                                                          \
  do {                                                                         \
    cr_expect(!v[i].holds, "%s", v[i].text);                                   \
    cr_expect(strstr(v[i].text, sub), "%s", v[i].text);                        \
  } while (0)

Test(scn_eval, returns_the_number_failed) {
  cr_expect_eq(eval("expect errors == 1\nexpect errors == 0\n"
                    "expect errors > 5\n",
                    base),
               2);
}

Test(scn_eval, all_answered_holds_with_a_kernel_error_as_answer) {
  cr_expect_eq(eval("expect all-answered\n", base), 0);
  HOLDS(0, "all-answered: 3 requests, every one answered");
}

Test(scn_eval, all_answered_fails_at_the_unanswered_send) {
  eval("expect all-answered\n",
       SENDS EV(14, 30000,
                "\"send\",\"actor\":\"ap1\",\"peer\":\"kvs\","
                "\"svc\":\"kvs\",\"req\":4,\"op\":\"kvs.del\""));
  FAILS(0, "request 4 (kvs.del from ap1), sent at step 14, line 14, got no "
           "answer");
}

Test(scn_eval, all_answered_holds_when_the_client_exited_first) {
  eval("expect all-answered\n",
       SENDS EV(14, 30000, "\"send\",\"actor\":\"ap1\",\"req\":4")
           EXIT_OK("ap1", 15));
  HOLDS(0, "1 dropped");
}

Test(scn_eval, exactly_one_answer_holds) {
  eval("expect exactly-one-answer\n", base);
  HOLDS(0, "3 requests, every one answered exactly once (1 by a kernel "
           "error");
}

Test(scn_eval, exactly_one_answer_fails_at_a_second_reply) {
  eval("expect exactly-one-answer\n",
       SENDS EV(14, 30000, "\"reply\",\"actor\":\"kvs\",\"req\":3"));
  FAILS(0, "exactly-one-answer: request 3: the request was answered twice at "
           "step 14, line 14");
}

Test(scn_eval, exactly_one_answer_fails_when_only_the_kernel_answered) {
  /* The kernel's error must still reach the client as a result. */
  eval("expect exactly-one-answer\nexpect all-answered\n",
       SENDS EV(14, 30000, "\"send\",\"actor\":\"ap1\",\"req\":4")
           EV(15, 30000,
              "\"error\",\"actor\":\"kernel\",\"req\":4,"
              "\"status\":-3"));
  FAILS(0, "request 4 of ap1, sent at step 14, line 14, was never answered");
  HOLDS(1, "every one answered");
}

Test(scn_eval, no_leaks_holds_at_a_clean_halt) {
  eval("expect no-leaks\n", base);
  HOLDS(0, "no-leaks: no ICA live when the machine halted at step 20, line 16");
}

Test(scn_eval, no_leaks_fails_with_live_icas) {
  eval("expect no-leaks\n", SENDS HALT(2));
  FAILS(0, "2 ICAs live when the machine halted at step 20, line 14");
}

Test(scn_eval, no_leaks_fails_without_a_halt) {
  eval("expect no-leaks\n", SENDS);
  FAILS(0, "no halt event");
}

Test(scn_eval, errors_count_negative_answers) {
  eval("expect errors == 1\nexpect errors == 0\n", base);
  HOLDS(0, "errors == 1: 1 error answer among 3 requests; the first: request "
           "2 answered -104 (ECONNRESET) at step 9, line 9");
  FAILS(1, "errors == 0: 1 error answer among");
}

Test(scn_eval, errors_narrowed_by_app_and_service) {
  eval("expect errors == 0 --app ap1\n"
       "expect errors >= 1 --app ap2 --service kvs\n"
       "expect errors == 0 --service other\n",
       base);
  HOLDS(0, "--app ap1: 0 error answers among 2 requests");
  HOLDS(1, "1 error answer among 1 request;");
  HOLDS(2, "among 0 requests");
}

Test(scn_eval, errors_count_an_app_s_later_instances) {
  eval("expect errors == 1 --app ap1\n",
       EV(1, 0, "\"send\",\"actor\":\"ap1.2\",\"svc\":\"kvs\",\"req\":9")
           EV(2, 10,
              "\"error\",\"actor\":\"kernel\",\"peer\":\"ap1.2\","
              "\"req\":9,\"status\":-104")
               EV(2, 10,
                  "\"result\",\"actor\":\"ap1.2\",\"req\":9,"
                  "\"status\":-104"));
  HOLDS(0, "request 9 answered -104 (ECONNRESET)");
}

Test(scn_eval, latency_statistics) {
  eval("expect latency max <= 10us\n"
       "expect latency p50 == 4us\n"
       "expect latency p99 == 10us\n"
       "expect latency max < 10us\n"
       "expect latency max == 4us --op kvs.put\n"
       "expect latency max == 4us --app ap2 --service kvs\n",
       base);
  HOLDS(0, "max is 10.000us over 3 answered requests");
  HOLDS(1, "p50 is 4.000us");
  HOLDS(2, "p99 is 10.000us");
  FAILS(3, "latency max < 10us: max is 10.000us over 3 answered requests; the "
           "first over the bound: request 3 took 10.000us, sent at step 10, "
           "line 10");
  HOLDS(4, "over 1 answered request");
  HOLDS(5, "max is 4.000us over 1");
}

Test(scn_eval, latency_fails_with_nothing_to_measure) {
  eval("expect latency max < 1s --app ap3\n", base);
  FAILS(0, "no answered request in its scope");
}

Test(scn_eval, trace_contains_and_omits) {
  eval("expect trace contains halt kernel\n"
       "expect trace contains exit ap2 \"status 0\"\n"
       "expect trace contains fault *\n"
       "expect trace omits fault\n"
       "expect trace omits error *\n",
       base);
  HOLDS(0, "found at step 20, line 16:");
  HOLDS(1, "found at step 15, line 15:");
  FAILS(2, "trace contains fault *: no such event among 16");
  HOLDS(3, "no such event");
  FAILS(4, "trace omits error *: found at step 8, line 8: [    8]    0.007ms "
           " kernel -> ap2");
}

/* A failed replacement's fail event: the kernel's words around the new
 * server's own reason. */
#define REFUSAL(reason)                                                        \
  EV(14, 25000,                                                                \
     "\"fail\",\"actor\":\"kernel\",\"peer\":\"kvs\",\"svc\":\"kvs\","         \
     "\"text\":\"the new server refused: " reason " (state version 2)\"")
#define OWN_REASON "state version 2 is newer than this server's 1"

/* A refusal is told by its own reason (kvs-downgrade-refused.scn): the
 * reason holds against a trace with it and fails against a refusal for
 * another reason, where a word of the kernel's ("version") holds for
 * both. */
Test(scn_eval, trace_contains_tells_a_refusal_by_its_reason) {
  static const char own[] = SENDS REFUSAL(OWN_REASON) HALT(0);
  static const char other[] =
      SENDS REFUSAL("injected fault: refused the state it was handed") HALT(0);
  const char *exp = "expect trace contains fail kernel \"the new server "
                    "refused: " OWN_REASON "\"\n"
                    "expect trace contains fail kernel \"version\"\n";
  cr_expect_eq(eval(exp, own), 0);
  HOLDS(0, "found at step 14, line 14:");
  HOLDS(1, "found at step 14, line 14:");
  cr_expect_eq(eval(exp, other), 1);
  FAILS(0, "refused: " OWN_REASON "\": no such event among 15");
  HOLDS(1, "found at step 14, line 14:");
}

Test(scn_eval, state_equals_model_holds_when_every_app_exits_0) {
  eval("expect state kvs equals model\n", base);
  HOLDS(0, "state kvs equals model: 2 apps exited with status 0: the "
           "server holds what their models stored");
}

Test(scn_eval, state_equals_model_names_the_app_whose_check_failed) {
  eval("expect state kvs equals model\n",
       SENDS EXIT_OK("ap1", 14)
           EV(15, 30000, "\"exit\",\"actor\":\"ap2\",\"status\":3"));
  FAILS(0, "ap2 exited with status 3 at step 15, line 15: the server's state "
           "differs from its model");
}

Test(scn_eval, state_equals_model_fails_for_a_killed_or_running_app) {
  eval("expect state kvs equals model\n",
       SENDS EV(14, 30000, "\"exit\",\"actor\":\"ap1\",\"text\":\"signal 9\""));
  FAILS(0, "ap1 was killed (signal 9) at step 14");
  eval("expect state kvs equals model\n", SENDS EXIT_OK("ap1", 14));
  FAILS(0, "ap2 never exited");
  eval("expect state other equals model\n", base);
  FAILS(0, "ap3 never exited");
}

/* State files ------------------------------------------------------------ */

static char dir[64];

static void write_file(const char *name, const char *text) {
  char path[128];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs(text, f);
  fclose(f);
}

static void make_dir(void) {
  snprintf(dir, sizeof dir, "/tmp/uksim-eval-XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  cr_expect_eq(system(cmd), 0);
}

static int eval_state(const char *dump, const char *want) {
  struct scn_facts facts = {.dump_dir = dir, .scn_dir = dir};
  if (dump != NULL)
    write_file("kvs.dump", dump);
  write_file("want.txt", want);
  return eval_facts("expect state kvs equals \"want.txt\"\n", base, &facts);
}

Test(scn_eval, state_equals_file_in_any_order, .init = make_dir,
     .fini = remove_dir) {
  cr_expect_eq(eval_state("a=1\nb=2\nc=x=y\n", "c=x=y\r\n\nb=2\na=1"), 0);
  HOLDS(0, "the server holds the 3 key=value lines of want.txt");
}

Test(scn_eval, state_equals_file_names_the_first_difference, .init = make_dir,
     .fini = remove_dir) {
  eval_state("a=1\nb=2\n", "a=1\nb=3\n");
  FAILS(0, "key b: the server has \"2\", want.txt has \"3\"");
  eval_state("a=1\n", "a=1\nb=3\n");
  FAILS(0, "key b (= \"3\") of want.txt is not in the server");
  eval_state("a=1\nb=2\n", "b=2\n");
  FAILS(0, "the server has key a (= \"1\"), want.txt has not");
}

Test(scn_eval, state_equals_file_refuses_bad_files, .init = make_dir,
     .fini = remove_dir) {
  eval_state(NULL, "a=1\n");
  FAILS(0, "no dump of kvs's final state: kvs was down when the "
           "applications were done, or its dumper kvs.dump failed");
  eval_state("a=1\n", "a=1\nno equals sign\n");
  FAILS(0, "want.txt:2: not a key=value line");
  /* Files are named as the scenario writes them, never by their paths. */
  eval_state("a=1\nb\n", "a=1\n");
  FAILS(0, "state kvs equals \"want.txt\": kvs.dump:2: not a key=value "
           "line");
  write_file("kvs.dump", "a=1\n");
  eval_facts("expect state kvs equals \"gone.txt\"\n", base,
             &(struct scn_facts){.dump_dir = dir, .scn_dir = dir});
  FAILS(0, "state kvs equals \"gone.txt\": cannot open gone.txt: No such "
           "file");
  eval_facts("expect state kvs equals \"want.txt\"\n", base,
             &(struct scn_facts){0});
  FAILS(0, "no dump of kvs's final state");
}

/* Files read in a namespace --------------------------------------------- */

/* The head's five lines come first: the expectations are at lines 6.. */
static int eval_read(const char *exp) {
  return eval_facts(exp, base,
                    &(struct scn_facts){.dump_dir = dir, .scn_dir = dir});
}

Test(scn_eval, file_equals_contains_and_fails_from_the_reader, .init = make_dir,
     .fini = remove_dir) {
  write_file("read-6.out", "hello\n");
  write_file("read-7.out", "hello\n");
  write_file("read-8.out.err", "cat: /n/x: No such file or directory\n");
  write_file("read-9.out", "");
  cr_expect_eq(eval_read("expect file ap1 /n/x equals \"hello\\n\"\n"
                         "expect file ap1 /n/y contains \"ell\"\n"
                         "expect file ap2 /n/x fails\n"
                         "expect file kvs \"#c/null\" equals \"\"\n"),
               0);
  HOLDS(0, "file ap1 /n/x equals \"hello\\n\": ap1 read 6 bytes: "
           "\"hello\\n\"");
  HOLDS(1, "ap1 read 6 bytes");
  HOLDS(2, "ap2 could not read it: cat: /n/x: No such file or directory");
  HOLDS(3, "kvs read 0 bytes: \"\"");
}

Test(scn_eval, file_fails_on_other_bytes_or_a_missing_reader, .init = make_dir,
     .fini = remove_dir) {
  write_file("read-6.out", "hello\n");
  write_file("read-7.out", "hello\n");
  write_file("read-8.out", "there\n");
  write_file("read-9.out.err", "cat: /n/x: No such file or directory\n");
  cr_expect_eq(eval_read("expect file ap1 /n/x equals \"hello\"\n"
                         "expect file ap1 /n/y contains \"bye\"\n"
                         "expect file ap2 /n/x fails\n"
                         "expect file ap2 /n/x equals \"x\"\n"
                         "expect file ap3 /n/x fails\n"),
               5);
  FAILS(0, "ap1 read 6 bytes: \"hello\\n\"");
  FAILS(1, "ap1 read 6 bytes");
  FAILS(2, "ap2 read it: 6 bytes, \"there\\n\"");
  FAILS(3, "ap2 could not read it: cat: /n/x: No such file");
  FAILS(4, "no reader ran in ap3's namespace");
  eval_facts("expect file ap1 /n/x fails\n", base, &(struct scn_facts){0});
  FAILS(0, "no reader ran (the runner gave no directory)");
}

/* The checker alone ------------------------------------------------------- */

Test(scn_eval, answers_find_requests_and_count) {
  struct scn_err err = {0};
  struct scn_trace *tr = scn_trace_parse("t", base, strlen(base), &err);
  struct scn_answers a;
  uint64_t dropped;
  cr_assert_not_null(tr, "%s", err.text);
  scn_answers_init(&a);
  for (size_t i = 0; i < tr->n; i++)
    scn_answers_add(&a, &tr->ev[i]);
  cr_expect_eq(a.requests, 3);
  cr_expect_eq(a.results, 3);
  cr_expect_eq(a.errors, 1);
  cr_expect(!a.broken);
  const struct scn_req *r = scn_answers_lookup(&a, 2);
  cr_assert_not_null(r);
  cr_expect_str_eq(r->client, "ap2");
  cr_expect_str_eq(r->op, "kvs.get");
  cr_expect_eq(r->status, -104);
  cr_expect_eq(r->answer_t - r->sent_t, 4000);
  cr_expect_null(scn_answers_lookup(&a, 7));
  cr_expect_null(scn_answers_missing(&a, true, &dropped));
  cr_expect(scn_answers_exited(&a, "ap1"));
  scn_answers_close(&a);
  scn_trace_free(tr);
}

Test(scn_eval, answers_hold_many_requests) {
  /* Enough to grow the table several times; ids far apart. */
  struct scn_answers a;
  struct scn_event e = {.ev = SCN_EV_SEND, .has_req = true, .step = 1};
  uint64_t dropped;
  strcpy(e.actor, "ap1");
  scn_answers_init(&a);
  for (uint64_t i = 0; i < 20000; i++) {
    e.req = i * 0x10001 + 7;
    scn_answers_add(&a, &e);
  }
  e.ev = SCN_EV_RESULT;
  for (uint64_t i = 0; i < 20000; i += 2) {
    e.req = i * 0x10001 + 7;
    scn_answers_add(&a, &e);
  }
  cr_expect(!a.broken, "%s", a.what);
  cr_expect_eq(a.requests, 20000);
  const struct scn_req *r = scn_answers_missing(&a, true, &dropped);
  cr_assert_not_null(r);
  cr_expect_eq(r->id, 0x10001 + 7);
  scn_answers_close(&a);
}

Test(scn_eval, a_server_s_negative_status_is_not_an_error) {
  eval("expect errors == 0\n",
       EV(1, 0, "\"send\",\"actor\":\"ap1\",\"svc\":\"kvs\",\"req\":9")
           EV(2, 10,
              "\"result\",\"actor\":\"ap1\",\"req\":9,"
              "\"status\":-2"));
  HOLDS(0, "0 error answers among 1 request");
}

/* Orthros (issue 14): failovers, ended, usable-mib, and the answers of a
 * client that ended with its OS.  The trace: ap1 (protected) sends req 1
 * and ap2 (not protected) req 2 on OS 1; OS 2 takes over (os-active);
 * req 1 is answered there (ap1 moved), req 2 never (ap2 ended with OS 1),
 * ap1 exits. */

static const char os_head[] = "machine --backup 1\n"
                              "server kvs\n"
                              "app ap1 --service kvs --protect\n"
                              "app ap2 --service kvs\n";

#define FAILOVER                                                               \
  EV(1, 0, "\"spawn\",\"actor\":\"kernel\",\"peer\":\"ap1\"")                  \
  EV(1, 0, "\"spawn\",\"actor\":\"kernel\",\"peer\":\"ap2\"")                  \
  EV(2, 1000,                                                                  \
     "\"send\",\"actor\":\"ap1\",\"peer\":\"kvs\",\"svc\":\"kvs\","            \
     "\"req\":1,\"op\":\"kvs.put\"")                                           \
  EV(3, 2000,                                                                  \
     "\"send\",\"actor\":\"ap2\",\"peer\":\"kvs\",\"svc\":\"kvs\","            \
     "\"req\":2,\"op\":\"kvs.put\"")                                           \
  EV(4, 3000, "\"panic\",\"actor\":\"kernel\",\"text\":\"x\"")                 \
  EV(5, 9000, "\"os-dead\",\"actor\":\"os2\",\"peer\":\"os1\"")                \
  EV(6, 9000, "\"os-active\",\"actor\":\"kernel\",\"text\":\"os 2\"")          \
  EV(7, 9500, "\"failover\",\"actor\":\"kernel\",\"op\":\"processes\"")        \
  EV(8, 9600, "\"receive\",\"actor\":\"kvs.2\",\"peer\":\"ap1\",\"req\":1")    \
  EV(9, 9700, "\"reply\",\"actor\":\"kvs.2\",\"peer\":\"ap1\",\"req\":1")      \
  EV(10, 9800, "\"result\",\"actor\":\"ap1\",\"req\":1")

static const char os_trace[] = FAILOVER EXIT_OK("ap1", 11) HALT(0);

static int eval_os(const char *exp, const char *trace,
                   const struct scn_facts *facts) {
  return eval_after(os_head, exp, trace, facts);
}

Test(scn_eval, failovers_count_os_active_events) {
  cr_assert_eq(eval_os("expect failovers == 1\nexpect failovers < 1\n",
                       os_trace, &(struct scn_facts){0}),
               1);
  cr_expect(v[0].holds);
  cr_expect_str_eq(v[0].text,
                   "failovers == 1: 1 failover, the first at step 6, line 7");
  cr_expect(!v[1].holds);
  static const char none[] = SENDS HALT(0);
  cr_assert_eq(eval_os("expect failovers == 0\n", none, &(struct scn_facts){0}),
               0);
  cr_expect_str_eq(v[0].text, "failovers == 0: 0 failovers");
}

Test(scn_eval, ended_is_a_spawn_a_failover_and_no_exit) {
  cr_assert_eq(eval_os("expect ended ap2\nexpect ended ap1\n", os_trace,
                       &(struct scn_facts){0}),
               1);
  cr_expect(v[0].holds, "%s", v[0].text);
  cr_expect_str_eq(v[0].text, "ended ap2: ap2 ended with its OS, at the "
                              "failover at step 6, line 7");
  cr_expect(!v[1].holds);
  cr_expect_str_eq(v[1].text, "ended ap1: ap1 exited by itself (status 0) at "
                              "step 11, line 12");
  static const char none[] = EV(1, 0,
                                "\"spawn\",\"actor\":\"kernel\","
                                "\"peer\":\"ap2\"") HALT(0);
  eval_os("expect ended ap2\n", none, &(struct scn_facts){0});
  cr_expect_str_eq(v[0].text, "ended ap2: no failover after ap2 started");
  eval_os("expect ended ap2\n", HALT(0), &(struct scn_facts){0});
  cr_expect_str_eq(v[0].text, "ended ap2: ap2 never started");
}

Test(scn_eval, a_client_that_ended_with_its_os_drops_its_requests) {
  cr_assert_eq(eval_os("expect exactly-one-answer\nexpect all-answered\n",
                       os_trace, &(struct scn_facts){0}),
               0, "%s / %s", v[0].text, v[1].text);
  /* ap2 seen after the failover: it moved, and its request is missing. */
  static const char moved[] =
      FAILOVER EV(11, 9900,
                  "\"send\",\"actor\":\"ap2\",\"peer\":\"kvs\",\"svc\":\"kvs\","
                  "\"req\":3,\"op\":\"kvs.get\"") HALT(0);
  cr_assert_eq(eval_os("expect all-answered\n", moved, &(struct scn_facts){0}),
               1);
  cr_expect(strstr(v[0].text, "request 2 (kvs.put from ap2)") != NULL, "%s",
            v[0].text);
}

Test(scn_eval, usable_mib_compares_the_machine_s_table) {
  struct scn_facts f = {
      .usable_os = {1, 2, 3}, .usable_mib = {4096, 3712, 3712}, .nusable = 3};
  cr_assert_eq(eval_os("expect usable-mib 1 4096 3 3712\n"
                       "expect usable-mib 2 4096\n"
                       "expect usable-mib 4 3712\n",
                       os_trace, &f),
               2);
  cr_expect(v[0].holds);
  cr_expect_str_eq(v[0].text, "usable-mib 1 4096 3 3712: the machine says 1 "
                              "4096 2 3712 3 3712");
  cr_expect(!v[1].holds);
  cr_expect(!v[2].holds, "an OS never active has no row");
  f.usable_error = "the machine went away";
  eval_os("expect usable-mib 1 4096\n", os_trace, &f);
  cr_expect(!v[0].holds);
  cr_expect_str_eq(v[0].text, "usable-mib 1 4096: the machine could not say: "
                              "the machine went away");
}

/* tcp-client NAME connected: the runner's client, its figures as facts.
 * The trace: the kernel is faulted at 2.5 us (its last fault), OS 2 takes
 * over, and the scenario kills ap1, c1's server, at 20 us. */

static const char tcp_head[] = "machine --backup 1 --nic-port 17000\n"
                               "server kvs\n"
                               "app ap1 --service kvs --protect\n"
                               "tcp-client c1 17003 --server ap1\n"
                               "tcp-client c2 17004\n";

#define ACTION(step, t, peer, text)                                            \
  EV(step, t,                                                                  \
     "\"action\",\"actor\":\"kernel\",\"peer\":\"" peer "\",\"text\":\"" text  \
     "\"")

static const char tcp_trace[] =
    EV(1, 0, "\"spawn\",\"actor\":\"kernel\",\"peer\":\"ap1\"")
        ACTION(2, 2500, "kernel", "fault kernel panic") EV(
            3, 9000, "\"os-active\",\"actor\":\"kernel\",\"text\":\"os 2\"")
            ACTION(4, 200000000, "ap1", "kill ap1")
                EV(20, 300000000, "\"halt\",\"actor\":\"kernel\",\"status\":0");

/* c1 (or c2 when which is 2) saw c; the verdict of `expect tcp-client`. */
static bool tcp_holds(int which, struct scn_tcp_seen c, const char *trace) {
  struct scn_tcp_seen seen[2] = {{.name = "c1"}, {.name = "c2"}};
  snprintf(c.name, sizeof c.name, "c%d", which);
  seen[which - 1] = c;
  struct scn_facts f = {.tcp = seen, .ntcp = 2};
  char exp[64];
  snprintf(exp, sizeof exp, "expect tcp-client c%d connected\n", which);
  return eval_after(tcp_head, exp, trace, &f) == 0;
}

static const struct scn_tcp_seen talked = {.connected = true,
                                           .sent = 10,
                                           .echoed = 10,
                                           .max_wait_ns = 1500000,
                                           .last_sent_ns = 5000,
                                           .has_last = true};

Test(scn_eval, tcp_client_connected_through_the_last_fault) {
  cr_expect(tcp_holds(1, talked, tcp_trace));
  cr_expect_str_eq(v[0].text, "tcp-client c1 connected: one connection: 10 "
                              "lines sent, 10 echoed, the longest wait 1.5 "
                              "ms; its last echoed line sent 0.000 s after "
                              "the last kernel fault");
  /* Without a kernel fault, nothing is asked after one. */
  cr_expect(tcp_holds(2, talked, base));
  HOLDS(0, "no kernel fault");
}

Test(scn_eval, tcp_client_ended_by_the_scenario_is_not_a_break) {
  struct scn_tcp_seen c = talked;
  c.broke = true;
  c.broke_ns = 250000000;
  c.sent = 11; /* the line in flight at the kill */
  snprintf(c.why, sizeof c.why, "at line 11: the server closed it");
  cr_expect(tcp_holds(1, c, tcp_trace));
  HOLDS(0, "one connection, until 'kill ap1' at 0.200 s (at line 11: the "
           "server closed it): 11 lines sent, 10 echoed");
  /* c2 names no server: the same end is a break. */
  cr_expect(!tcp_holds(2, c, tcp_trace));
  FAILS(0, "the connection broke at 0.250 s: at line 11");
  /* Broken before the kill: a break, whoever serves it; but not when the
   * break is within the clocks' slack before it (eval_tcp.c). */
  c.broke_ns = 50000000;
  cr_expect(!tcp_holds(1, c, tcp_trace));
  FAILS(0, "the connection broke at");
  c.broke_ns = 150000000;
  cr_expect(tcp_holds(1, c, tcp_trace));
  /* Two lines lost at the kill: one was not in flight. */
  c.broke_ns = 250000000;
  c.sent = 12;
  cr_expect(!tcp_holds(1, c, tcp_trace));
  FAILS(0, "12 lines sent, 10 echoed");
}

Test(scn_eval, tcp_client_fails_without_every_echo_or_a_late_line) {
  struct scn_tcp_seen c = talked;
  c.echoed = 9;
  cr_expect(!tcp_holds(1, c, tcp_trace));
  FAILS(0, "10 lines sent, 9 echoed");
  c = talked;
  c.last_sent_ns = 2000; /* before the last fault: no line after it */
  cr_expect(!tcp_holds(1, c, tcp_trace));
  FAILS(0, "no line sent after the last kernel fault (at 0.000 s) came back");
  c.has_last = false;
  c.last_sent_ns = 0;
  c.echoed = c.sent = 0;
  cr_expect(!tcp_holds(1, c, tcp_trace));
  FAILS(0, "0 lines sent, 0 echoed");
}

Test(scn_eval, tcp_client_that_never_connected_or_never_ran) {
  struct scn_tcp_seen c = {.connected = false};
  snprintf(c.why, sizeof c.why, "nothing answered on 127.0.0.1:17003 in 60 s");
  cr_expect(!tcp_holds(1, c, tcp_trace));
  cr_expect_str_eq(v[0].text, "tcp-client c1 connected: it never connected: "
                              "nothing answered on 127.0.0.1:17003 in 60 s");
  cr_assert_eq(eval_after(tcp_head, "expect tcp-client c1 connected\n",
                          tcp_trace, &(struct scn_facts){0}),
               1);
  FAILS(0, "the client did not run");
}
