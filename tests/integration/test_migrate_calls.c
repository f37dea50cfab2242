/* A migrated task's service handles (issue 16; migd.h "Service calls",
 * task.h struct task_service): three real machines a, b and c
 * (migd_nodes.h), each running a counter service "ctr" (ctr_srv).  A task
 * (apps/ctask) started on a counts through a's counter, one increment per
 * millisecond, while it is moved a -> b -> c: every call still reaches a's
 * counter (b's and c's stay at 0), and the count the counter answers equals
 * the task's own at every step, so no increment was lost or doubled,
 * though moves come while calls are out. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "migd_nodes.h"
#include "migwire.h"
#include "node.h"
#include "uksim/kvs.h"
#include "uksim/task.h"

#define LIMIT 400

static void setup(void) {
  if (getenv("UKSIM_UNDER_VALGRIND"))
    cr_skip_test("migration is real time; it cannot run under valgrind");
}

TestSuite(migrate_calls, .init = setup, .fini = mn_stop, .timeout = 300);

/* A call of op on service svc of node n, with ctl[0..len) and no data
 * ICA, through n's network message server as another node would: its
 * status, and up to len bytes of its answer's control ICA into ctl. */
static int32_t call_at(struct mn_node *n, const char *svc, uint32_t op,
                       void *ctl, size_t len) {
  char addr[64], err[NODE_ERR_MAX];
  snprintf(addr, sizeof addr, "tcp!127.0.0.1!%d", n->netmsg);
  node_conn *c = node_dial(addr, NULL, "checker", err, sizeof err);
  cr_assert_not_null(c, "%s", err);
  Uksim__Node__Call k = UKSIM__NODE__CALL__INIT;
  Uksim__Node__Msg m = UKSIM__NODE__MSG__INIT;
  k.id = node_next_id(c);
  k.service = (char *)svc;
  k.op = op;
  k.ctl = (ProtobufCBinaryData){len, ctl};
  k.ctl_size = len;
  m.body_case = UKSIM__NODE__MSG__BODY_CALL;
  m.call = &k;
  cr_assert_eq(node_send(c, &m), 0);
  int e = 0;
  Uksim__Node__Msg *r = node_recv(c, false, &e);
  cr_assert_not_null(r, "%s", node_io_error(e));
  cr_assert_eq(r->body_case, UKSIM__NODE__MSG__BODY_RESULT);
  int32_t st = r->result->status;
  memcpy(ctl, r->result->ctl.data,
         r->result->ctl.len < len ? r->result->ctl.len : len);
  node_msg_free(r);
  node_close(c);
  return st;
}

/* The count of node n's counter service. */
static long counter_of(struct mn_node *n) {
  uint64_t count = 0;
  cr_assert_eq(call_at(n, "ctr", 1 /* get */, &count, sizeof count), 0);
  return (long)count;
}

/* Every "ctr n=.. v=.." line of a's console: n counts 1, 2, ... and v == n. */
static long checked_lines(void) {
  char cmd[256], line[128];
  long next = 1;
  snprintf(cmd, sizeof cmd, "%s", mn[0].out);
  FILE *f = fopen(cmd, "r");
  cr_assert_not_null(f);
  while (fgets(line, sizeof line, f)) {
    long n, v;
    cr_assert(strstr(line, "MISMATCH") == NULL && strstr(line, "error") == NULL,
              "%s", line);
    if (sscanf(line, "task1 ctr n=%ld v=%ld", &n, &v) != 2)
      continue;
    cr_assert_eq(n, next, "a call lost or doubled: %s", line);
    cr_assert_eq(v, n, "the counter disagrees: %s", line);
    next++;
  }
  fclose(f);
  return next - 1;
}

Test(migrate_calls, a_task_counts_on_its_origins_service_from_a_b_and_c) {
  int rc;
  char want[64];
  mn_start("ctr_srv", "ctr");
  const char *o =
      mn_ctl(&mn[0], &rc, "start %s/apps/ctask --limit %d --period 1",
             mn_build(), LIMIT);
  cr_assert_eq(rc, 0, "%s", o);
  mn_wait_for(mn[0].out, "task1 ctr n=20 ");
  o = mn_ctl(&mn[0], &rc, "move 1 b eager");
  cr_assert_eq(rc, 0, "%s", o);
  long at_b = checked_lines();
  snprintf(want, sizeof want, "task1 ctr n=%ld ", at_b + 40);
  mn_wait_for(mn[0].out, want);
  o = mn_ctl(&mn[1], &rc, "move 1 c precopy");
  cr_assert_eq(rc, 0, "%s", o);
  cr_expect_eq(mn_running(&mn[2]), 1);
  snprintf(want, sizeof want, "task1 done n=%d v=%d", LIMIT, LIMIT);
  mn_wait_for(mn[0].out, want);
  cr_expect_eq(checked_lines(), LIMIT);
  cr_expect_eq(counter_of(&mn[0]), LIMIT, "a's counter: each call once");
  cr_expect_eq(counter_of(&mn[1]), 0, "b's counter was never called");
  cr_expect_eq(counter_of(&mn[2]), 0, "c's counter was never called");
  char cmd[256];
  snprintf(cmd, sizeof cmd, "grep -c 'answered again' %s", mn[0].err);
  o = h_run(cmd, &rc);
  cr_log_info("calls out at a move, answered again from a's record: %s", o);
}

/* RUN's transitions one by one (migd.h "Service calls"): MigCalls sent to
 * a's migration server as another node's would, for a task of origin
 * ORIGIN, id 7. */
#define ORIGIN "tcp!127.0.0.1!1"

static int32_t mig_call(uint32_t handle, uint64_t seq, uint64_t *count) {
  char addr[64];
  uint64_t zero = 0;
  snprintf(addr, sizeof addr, "tcp!127.0.0.1!%d", mn[0].port);
  char why[MIG_ERR_MAX];
  int fd = mig_dial(addr, NULL, why, sizeof why);
  cr_assert_geq(fd, 0, "%s", why);
  MigMsg m = MIG_MSG__INIT;
  MigCall c = MIG_CALL__INIT;
  c.origin = ORIGIN;
  c.task = 7;
  c.handle = handle;
  c.seq = seq;
  c.service = "ctr";
  c.op = 0; /* increment */
  c.req = (ProtobufCBinaryData){sizeof zero, (uint8_t *)&zero};
  m.m_case = MIG_MSG__M_CALL;
  m.call = &c;
  cr_assert_eq(mig_send(fd, &m), 0);
  MigMsg *r = mig_recv(fd);
  close(fd);
  cr_assert(r != NULL && r->m_case == MIG_MSG__M_CALL_REPLY);
  int32_t st = r->call_reply->status;
  *count = 0;
  if (r->call_reply->rep.len >= sizeof *count)
    memcpy(count, r->call_reply->rep.data, sizeof *count);
  mig_msg__free_unpacked(r, NULL);
  return st;
}

struct racer {
  uint64_t seq, count;
  int32_t status;
};

static void *race(void *arg) {
  struct racer *r = arg;
  r->status = mig_call(0, r->seq, &r->count);
  return NULL;
}

Test(migrate_calls, each_call_runs_once_whichever_copy_sends_it) {
  uint64_t v;
  mn_start("ctr_srv", "ctr");
  cr_expect_eq(mig_call(0, 1, &v), 0, "RUNNING -> DONE");
  cr_expect_eq(v, 1);
  cr_expect_eq(mig_call(0, 1, &v), 0, "REPLAY");
  cr_expect_eq(v, 1, "seq 1 again is answered, not run again");
  cr_expect_eq(mig_call(0, 2, &v), 0);
  cr_expect_eq(v, 2);
  cr_expect_eq(mig_call(0, 1, &v), -ESTALE, "STALE: an older seq");
  /* Another handle of the same task has a record of its own. */
  cr_expect_eq(mig_call(1, 1, &v), 0);
  cr_expect_eq(v, 3);
  /* Two copies send seq 3 at once: one runs it, the other WAITs or
   * REPLAYs; both get its answer. */
  struct racer r[2] = {{.seq = 3}, {.seq = 3}};
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    cr_assert_eq(pthread_create(&t[i], NULL, race, &r[i]), 0);
  for (int i = 0; i < 2; i++)
    pthread_join(t[i], NULL);
  for (int i = 0; i < 2; i++) {
    cr_expect_eq(r[i].status, 0);
    cr_expect_eq(r[i].count, 4, "copy %d: %llu", i,
                 (unsigned long long)r[i].count);
  }
  cr_expect_eq(counter_of(&mn[0]), 4, "four calls ran, each once");
}

/* The origin's migration server is gone while the task, on b, calls a's
 * counter: the call is answered -EHOSTDOWN (an answer, not a hang), and
 * the task (apps/ctask stops at a failed call) ends with status 1.  (Its
 * line saying so may be lost: the first console write to a dead origin
 * succeeds on TCP, so b's console takes over one write late.) */
Test(migrate_calls, a_gone_origin_answers_each_call_with_an_error) {
  int rc;
  mn_start("ctr_srv", "ctr");
  const char *o = mn_ctl(
      &mn[0], &rc, "start %s/apps/ctask --limit 0 --period 5", mn_build());
  cr_assert_eq(rc, 0, "%s", o);
  mn_wait_for(mn[0].out, "task1 ctr n=5 ");
  o = mn_ctl(&mn[0], &rc, "move 1 b eager");
  cr_assert_eq(rc, 0, "%s", o);
  mn_stop_migd(&mn[0]);
  mn_wait_for(mn[1].err, "task1 exited, status 1");
  /* Whether the origin went before b looked it up, before b connected or
   * while the call was on its way, b says so. */
  cr_expect(mn_file_has(mn[1].err, "migd b: a call to a: "), "b's notice");
  cr_expect_eq(mn_running(&mn[1]), 0);
}

/* Held ICAs (task.h task_ica_new, task_call_ica): a task (apps/ktask)
 * holding two ICAs stores a value through one of them in a's kvs and
 * gets it back, round after round, while it is moved a -> b -> c (eager,
 * then pre-copy, then demand paging from c back to a): every value comes
 * back whole wherever the task runs, the ICA it never writes arrives
 * intact at each node, and only a's kvs holds the keys. */
#define KV_LIMIT 240

/* The status of a get of `key` from node n's kvs. */
static int32_t kvs_get_status(struct mn_node *n, const char *key) {
  struct kvs_ctl c = {0};
  c.keylen = (uint32_t)snprintf(c.key, sizeof c.key, "%s", key);
  return call_at(n, KVS_NAME, KVS_GET, &c, sizeof c);
}

/* Every "kv" line of a's console: rounds 1, 2, ... each ok, nothing
 * else; the last round. */
static long kv_lines(void) {
  char line[128];
  long next = 1;
  FILE *f = fopen(mn[0].out, "r");
  cr_assert_not_null(f);
  while (fgets(line, sizeof line, f)) {
    long n;
    cr_assert(strstr(line, "MISMATCH") == NULL &&
                  strstr(line, "KEEP") == NULL && strstr(line, "error") == NULL,
              "%s", line);
    if (sscanf(line, "task1 kv n=%ld ok", &n) != 1)
      continue;
    cr_assert_eq(n, next, "a round lost or doubled: %s", line);
    next++;
  }
  fclose(f);
  return next - 1;
}

static void kv_wait_past(long rounds) {
  char want[64];
  snprintf(want, sizeof want, "task1 kv n=%ld ok", kv_lines() + rounds);
  mn_wait_for(mn[0].out, want);
}

Test(migrate_calls, held_icas_move_with_the_task_and_carry_its_calls_data) {
  int rc;
  mn_start("kvs", "kvs");
  const char *o =
      mn_ctl(&mn[0], &rc, "start %s/apps/ktask --limit %d --period 2 --size %u",
             mn_build(), KV_LIMIT, TASK_ICA_MAX);
  cr_assert_eq(rc, 0, "%s", o);
  kv_wait_past(10);
  o = mn_ctl(&mn[0], &rc, "move 1 b eager");
  cr_assert_eq(rc, 0, "%s", o);
  kv_wait_past(20);
  o = mn_ctl(&mn[1], &rc, "move 1 c precopy");
  cr_assert_eq(rc, 0, "%s", o);
  kv_wait_past(20);
  o = mn_ctl(&mn[2], &rc, "move 1 a demand");
  cr_assert_eq(rc, 0, "%s", o);
  char want[64];
  snprintf(want, sizeof want, "task1 done n=%d", KV_LIMIT);
  mn_wait_for(mn[0].out, want);
  cr_expect_eq(kv_lines(), KV_LIMIT);
  cr_expect_eq(kvs_get_status(&mn[0], "k1"), 0, "a's kvs holds the values");
  cr_expect_eq(kvs_get_status(&mn[1], "k1"), -ENOENT, "b's kvs was not used");
  cr_expect_eq(kvs_get_status(&mn[2], "k1"), -ENOENT, "c's kvs was not used");
}
