/* Unit tests for `expect task` (scenarios/eval_task.c, issue 16): each
 * check holding and failing over small traces of the executor's words
 * (scn_eval.h), and `output` over a file in a dump directory, as the
 * runner keeps it.  The base trace: mt started on local, moved to b
 * (done), a move to c that failed, the census finding it on b. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scn_eval.h"

TestSuite(scn_eval_task, .timeout = 30);

#define ACT(step, text)                                                        \
  "{\"step\":" #step ",\"t\":0,\"ev\":\"action\",\"actor\":\"kernel\","        \
  "\"peer\":\"mt\",\"text\":\"" text "\"}\n"

static const char base[] = ACT(1, "task mt: started on local")
    ACT(2, "migrate mt --to b --method eager")
        ACT(2, "migrate mt --to b --method eager: done")
            ACT(3, "migrate mt --to c --method demand")
                ACT(3, "migrate mt --to c --method demand: failed: "
                       "destination lost (create)")
                    ACT(3, "task mt: runs on b");

static const char head[] = "node b\nnode c\n"
                           "task mt --node local --binary mtask\n"
                           "task other --node local --binary ctask\n";

static struct scn_verdict v[4];

static int eval_in(const char *exp, const char *trace, const char *dir) {
  char src[1024];
  struct scn_err err = {0};
  snprintf(src, sizeof src, "%s%s", head, exp);
  struct scn *s = scn_parse("t.scn", src, strlen(src), &err);
  cr_assert_not_null(s, "%s", err.text);
  struct scn_trace *tr = scn_trace_parse("t.jsonl", trace, strlen(trace), &err);
  cr_assert_not_null(tr, "%s", err.text);
  int failed = scn_eval(s, tr, &(struct scn_facts){.dump_dir = dir}, v);
  scn_trace_free(tr);
  scn_free(s);
  return failed;
}

static int eval(const char *exp, const char *trace) {
  return eval_in(exp, trace, NULL);
}

#define SAYS(i, holds_, sub)                                                   \
  do {                                                                         \
    cr_expect_eq(v[i].holds, holds_, "%s", v[i].text);                         \
    cr_expect(strstr(v[i].text, sub), "%s", v[i].text);                        \
  } while (0)

Test(scn_eval_task, on_is_the_last_census) {
  cr_expect_eq(eval("expect task mt on b\nexpect task mt on local\n", base), 1);
  SAYS(0, true, "task mt on b: it runs on b");
  SAYS(1, false, "task mt on local: it runs on b");
}

Test(scn_eval_task, on_fails_on_two_nodes_and_lost_holds_on_none) {
  static const char two[] = ACT(1, "task mt: runs on local and b");
  static const char none[] = ACT(1, "task mt: runs on no node");
  cr_expect_eq(eval("expect task mt on b\n", two), 1);
  SAYS(0, false, "it runs on local and b");
  cr_expect_eq(eval("expect task mt lost\nexpect task mt on b\n", none), 1);
  SAYS(0, true, "task mt lost: it runs on no node");
  SAYS(1, false, "it runs on no node");
}

Test(scn_eval_task, no_census_fails_every_place_check) {
  cr_expect_eq(eval("expect task mt lost\nexpect task other on local\n", base),
               2);
  SAYS(0, false, "it runs on b");
  SAYS(1, false, "the run ended before the tasks were seen");
}

Test(scn_eval_task, moves_counts_the_migrations_done) {
  cr_expect_eq(eval("expect task mt moves == 1\nexpect task mt moves >= 2\n"
                    "expect task other moves == 0\n",
                    base),
               1);
  SAYS(0, true, "task mt moves == 1: 1 migration done");
  SAYS(1, false, "task mt moves >= 2: 1 migration done");
  SAYS(2, true, "0 migrations done");
}

Test(scn_eval_task, output_reads_the_origins_lines) {
  char dir[] = "/tmp/test_eval_task.XXXXXX", path[64];
  cr_assert_not_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/task-mt.out", dir);
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs("t0 1\nt1 1\necho hello\n", f);
  fclose(f);
  cr_expect_eq(eval_in("expect task mt output contains \"echo hello\"\n"
                       "expect task mt output contains \"t0 2\"\n"
                       "expect task other output contains \"x\"\n",
                       base, dir),
               2);
  SAYS(0, true, "its origin printed it");
  SAYS(1, false, "not in the 21 bytes its origin printed");
  SAYS(2, false, "its origin kept no output for it");
  unlink(path);
  rmdir(dir);
  cr_expect_eq(eval("expect task mt output contains \"x\"\n", base), 1);
  SAYS(0, false, "no output kept (the runner gave no directory)");
}
