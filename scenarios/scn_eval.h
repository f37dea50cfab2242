/* Expectations checked against a finished run (scenarios/README.md
 * "Expectations"), and the exactly-one-answer checker they build on.
 *
 * The runner executes a scenario, reads the kernel's trace and hands both,
 * with the facts a trace cannot hold (the servers' final contents), to
 * scn_eval, which gives one verdict per expectation: whether it holds and
 * one line that says what was expected and what was seen -- for a failure,
 * where in the trace (step and line) the first offending event is.
 */
#ifndef UKSIM_SCN_EVAL_H
#define UKSIM_SCN_EVAL_H

#include <stdbool.h>
#include <stdint.h>

#include "scn.h"
#include "timeline.h"

#define SCN_ANSWERS_MAX (4u << 20) /* distinct requests in one trace */
#define SCN_DUMP_MAX (64u << 20)   /* bytes in a dump or a state file */
#define SCN_DUMP_LINES_MAX 1000000 /* key=value lines in one */

/* One request of a trace, as the checker saw it. */
struct scn_req {
  uint64_t id;
  char client[SCN_INST_MAX + 1]; /* the actor of its send */
  char svc[SCN_NAME_MAX + 1];
  char op[SCN_INST_MAX + 1];
  uint64_t sent_t, sent_step; /* of its send */
  int sent_line;              /* of its send, 0 in a binary trace */
  uint8_t sends, receives, results, answers; /* answers: reply or error;
                                                counts stop at 255 */
  bool answered;     /* a result or a kernel error came */
  bool kernel_error; /* the kernel answered it with an error (the server
                        failed or went away): what `errors` counts */
  uint64_t answer_t; /* of its first result, else of its first error */
  uint64_t answer_step;
  int answer_line;
  int64_t status;      /* of that answer (an absent status is 0) */
  uint32_t sent_epoch; /* failovers before its send (Orthros) */
};

/* The exactly-one-answer checker (issue 3's invariant).  For every request
 * (by its kernel-wide number): exactly one send; at most one receive by a
 * server (never executed twice); at most one reply or kernel error and at
 * most one result; and, at the end, a result -- unless its client exited
 * first.  Fed one event at a time, so a trace of any length is checked
 * without being kept.  Caller-allocated: scn_answers_init, then
 * scn_answers_add per event in trace order, then scn_answers_close. */
struct scn_answers {
  /* public, read-only */
  uint64_t events, requests, results, errors; /* errors: kernel error events */
  bool broken;        /* some event broke the invariant; the first: */
  const char *what;   /* what went wrong, for a person */
  uint64_t what_req;  /* the request */
  uint64_t what_step; /* the offending event's step */
  int what_line;      /* and line (0 in a binary trace) */
  /* private */
  struct scn_req *req; /* in the order they were sent */
  size_t n, capreq;
  uint32_t *slot; /* open addressing by id: an index into req + 1, 0 empty */
  size_t capslot; /* a power of two, at least twice n */
  char (*exited)[SCN_INST_MAX + 1]; /* actors that exited */
  size_t nexited, capexited;
  bool halted; /* the trace has its halt event */
  /* Orthros: failovers so far (os-active events), and each actor with the
   * number of failovers before its last event.  An unprotected client
   * ends with its OS, and no kernel traces its end: its requests sent
   * before a failover that it never appears after are dropped with it. */
  uint32_t epoch;
  char (*actor)[SCN_INST_MAX + 1];
  uint32_t *actor_epoch;
  size_t nactor, capactor;
};

void scn_answers_init(struct scn_answers *a);
void scn_answers_add(struct scn_answers *a, const struct scn_event *e);
void scn_answers_close(struct scn_answers *a);

/* The request with that id, or NULL (borrowed: valid until the next add). */
const struct scn_req *scn_answers_lookup(const struct scn_answers *a,
                                         uint64_t id);
/* Calls fn on every request, in the order they were sent. */
void scn_answers_each(const struct scn_answers *a,
                      void (*fn)(const struct scn_req *r, void *arg),
                      void *arg);
/* Whether process name ended with its OS: a failover came after its last
 * event (so its open requests are dropped). */
bool scn_answers_ended(const struct scn_answers *a, const char *name,
                       uint32_t since);
/* Whether process name exited (so its open requests are dropped). */
bool scn_answers_exited(const struct scn_answers *a, const char *name);
/* The first request sent (in trace order) that got no answer although its
 * client did not exit, or NULL.  An answer is a result if need_result (the
 * client must see it: exactly-one-answer), else a result or a kernel error
 * (all-answered).  *dropped counts the unanswered requests whose client
 * exited, and those whose server replied but whose client the halt ended
 * before it collected the result: a halt traces nothing after it (the halt
 * event alone says how the run ended), so a server's request to itself
 * replied in the halt's step has no result event, and it was not lost.  A
 * request with no reply at the halt is still missing. */
const struct scn_req *scn_answers_missing(const struct scn_answers *a,
                                          bool need_result, uint64_t *dropped);

/* What a tcp-client saw (the runner's client outside the machine,
 * cli/tcp_client.c): its figures, for `expect tcp-client NAME connected`. */
struct scn_tcp_seen {
  char name[SCN_NAME_MAX + 1];
  bool connected;        /* it connected once */
  bool broke;            /* that connection broke: why says how, */
  uint64_t broke_ns;     /* and when, on the run's clock (below) */
  char why[128];         /* also why it never connected */
  uint64_t sent, echoed; /* lines sent, lines that came back whole */
  uint64_t max_wait_ns;  /* the longest wait for an echo */
  /* When the last line that came back was sent, on the run's clock (the
   * trace's times: from the executor's start); has_last: one came back. */
  uint64_t last_sent_ns;
  bool has_last;
};

/* What scn_eval needs that is not in the trace. */
struct scn_facts {
  const char *dump_dir; /* holds <service>.dump: a kvs server's final
                           contents, sorted key=value lines; NULL: none */
  const char *scn_dir;  /* "state S equals FILE" is relative to it; NULL:
                           the current directory */
  /* The machine's Table 5 (Orthros), asked before the halt: OS number
   * usable_os[i] had usable_mib[i] MiB as the active, i < nusable; a row
   * of an OS that was never active is left out.  usable_error: why the
   * machine could not be asked, or NULL. */
  uint32_t usable_os[SCN_USABLE_MAX];
  uint64_t usable_mib[SCN_USABLE_MAX];
  unsigned nusable;
  const char *usable_error;
  /* The tcp-clients' figures, one per tcp-client statement, ntcp of them
   * (none if the run never started them). */
  const struct scn_tcp_seen *tcp;
  size_t ntcp;
};

struct scn_verdict {
  bool holds;
  char text[SCN_ERR_MAX]; /* one line for a person */
};

/* Evaluates every expectation of s over the trace tr: out[i] is the
 * verdict of s->expects[i] (the caller gives s->nexpects of them).
 * Returns the number that fail.  Bad facts (a missing or malformed dump)
 * make that expectation fail with a message; nothing here aborts. */
int scn_eval(const struct scn *s, const struct scn_trace *tr,
             const struct scn_facts *facts, struct scn_verdict *out);

/* The verdict of one expectation; ans holds every event of tr. */
void scn_eval_one(const struct scn *s, const struct scn_expect *x,
                  const struct scn_trace *tr, const struct scn_answers *ans,
                  const struct scn_facts *facts, struct scn_verdict *out);

/* The name of the file the reader of an `expect file` at line `line`
 * writes in the dump directory ("read-LINE.out"; its error goes to
 * "read-LINE.out.err"): shared by the executor and the evaluator. */
void scn_read_out_name(int line, char *buf, size_t len);

/* Process migration (cli/scn_exec_mig.c writes, eval_task.c reads).
 * The executor's `action` events about task NAME (peer NAME) say, with
 * nothing in them that varies from run to run (no time, pid, port, task
 * number or page count):
 *   "migrate NAME --to NODE --method M: done" (or ": failed: WHY") for
 *   each migrate action, after the "migrate NAME --to NODE --method M"
 *   that says it started;
 *   SCN_TASK_RUNS "NODE" once the scenario's actions are done: the nodes
 *   it runs on then, "no node" or "a and b" for none or several.
 * Its console output, as its origin node printed it, is in the dump
 * directory under scn_task_out_name's name, written by the runner once
 * the task ended (or the wait for it did). */
#define SCN_TASK_RUNS "runs on "
#define SCN_TASK_NOWHERE "no node"
#define SCN_TASK_DONE ": done"
void scn_task_out_name(const char *task, char *buf, size_t len);

/* The expectation as a scenario writes it ("latency p99 < 5ms --op
 * kvs.put"), into buf. */
void scn_expect_str(const struct scn_expect *x, char *buf, size_t len);

#endif
