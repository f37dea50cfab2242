/* expect task NAME on NODE | moves CMP K | output contains "TEXT" | lost
 * (issue 16: process migration in scenarios).
 *
 * The tasks run outside the machine under test, under the nodes'
 * migration servers, so the trace holds only what the executor
 * (cli/scn_exec_mig.c) asked and was told, in the words of scn_eval.h:
 * each migrate action's outcome and, once the actions are done, the nodes
 * each task runs on.  `on` and `lost` judge that last word, `moves` counts
 * the migrations done; `output` reads what the task's origin node printed
 * for it (a fact in the dump directory, not in the trace: its lines come
 * in real time).  A verdict never quotes the output itself: it goes into
 * the trace, whose hash must be the same for the same seed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval_impl.h"

void scn_task_out_name(const char *task, char *buf, size_t len) {
  scn__fmt(buf, len, "task-%s.out", task);
}

void scn__task_expect_str(const struct scn_expect *x, char *buf, size_t len) {
  switch (x->tcheck) {
  case SCN_TASK_ON:
    scn__fmt(buf, len, "task %s on %s", x->app, x->proc);
    return;
  case SCN_TASK_MOVES:
    scn__fmt(buf, len, "task %s moves %s %" PRIu64, x->app,
             scn__cmp_name(x->cmp), x->value);
    return;
  case SCN_TASK_OUTPUT:
    scn__fmt(buf, len, "task %s output contains \"%s\"", x->app, x->text);
    return;
  case SCN_TASK_LOST:
    scn__fmt(buf, len, "task %s lost", x->app);
    return;
  }
  abort(); /* the parser gives no other check */
}

/* Whether e is the executor's word on task: an action event about it. */
static bool about(const struct scn_event *e, const char *task) {
  return e->ev == SCN_EV_ACTION && strcmp(e->peer, task) == 0;
}

/* Where the last census put task ("b", "no node", "a and b"), or NULL
 * when the run ended before one. */
static const char *runs_on(const struct scn_trace *tr, const char *task) {
  char prefix[SCN_NAME_MAX + 16];
  const char *where = NULL;
  scn__fmt(prefix, sizeof prefix, "task %s: %s", task, SCN_TASK_RUNS);
  for (size_t i = 0; i < tr->n; i++)
    if (about(&tr->ev[i], task) &&
        strncmp(tr->ev[i].text, prefix, strlen(prefix)) == 0)
      where = tr->ev[i].text + strlen(prefix);
  return where;
}

/* The migrate actions on task that were done. */
static uint64_t moves(const struct scn_trace *tr, const char *task) {
  uint64_t n = 0;
  size_t dl = strlen(SCN_TASK_DONE);
  for (size_t i = 0; i < tr->n; i++) {
    const char *t = tr->ev[i].text;
    size_t tl = strlen(t);
    n += about(&tr->ev[i], task) && strncmp(t, "migrate ", 8) == 0 && tl > dl &&
         strcmp(t + tl - dl, SCN_TASK_DONE) == 0;
  }
  return n;
}

static void eval_output(const struct scn_expect *x,
                        const struct scn_facts *facts, struct scn_verdict *v) {
  char name[SCN_NAME_MAX + 16], path[4096];
  size_t n;
  if (facts == NULL || facts->dump_dir == NULL) {
    scn__verdict(v, x, false, "no output kept (the runner gave no directory)");
    return;
  }
  scn_task_out_name(x->app, name, sizeof name);
  scn__fmt(path, sizeof path, "%s/%s", facts->dump_dir, name);
  char *got = scn__slurp(path, &n);
  if (got == NULL) {
    scn__verdict(v, x, false, "its origin kept no output for it");
    return;
  }
  bool has = memmem(got, n, x->text, strlen(x->text)) != NULL;
  free(got);
  if (has)
    scn__verdict(v, x, true, "its origin printed it");
  else
    scn__verdict(v, x, false, "not in the %zu byte%s its origin printed", n,
                 scn__s(n));
}

void scn__eval_task(const struct scn_expect *x, const struct scn_trace *tr,
                    const struct scn_facts *facts, struct scn_verdict *v) {
  const char *where = runs_on(tr, x->app);
  uint64_t k;
  switch (x->tcheck) {
  case SCN_TASK_ON:
  case SCN_TASK_LOST:
    if (where == NULL) {
      scn__verdict(v, x, false, "the run ended before the tasks were seen");
      return;
    }
    scn__verdict(
        v, x,
        strcmp(where, x->tcheck == SCN_TASK_ON ? x->proc : SCN_TASK_NOWHERE) ==
            0,
        "it runs on %s", where);
    return;
  case SCN_TASK_MOVES:
    k = moves(tr, x->app);
    scn__verdict(v, x, scn__compare(k, x->cmp, x->value),
                 "%" PRIu64 " migration%s done", k, scn__s(k));
    return;
  case SCN_TASK_OUTPUT:
    eval_output(x, facts, v);
    return;
  }
  abort(); /* the parser gives no other check */
}
