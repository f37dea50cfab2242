/* ktask: a migratable task (include/uksim/task.h) that holds ICAs and
 * keeps values in the key-value store of the node it started on (kvs,
 * include/uksim/kvs.h) through them, wherever it runs: the program the
 * held-ICA tests move between nodes.
 *
 *   ktask [--service NAME] [--limit N] [--period MS] [--size BYTES]
 *   ktask --adopt FD        (continue the task in region memfd FD)
 *
 * It holds two ICAs of --size bytes (default 16384, TASK_ICA_MAX at
 * most): `value`, the data ICA of its calls, and `keep`, filled once at
 * the start and never written again.  Its one thread makes N rounds (0:
 * without end), one every MS: round i fills `value` with i's pattern,
 * puts it as key k<i>, clears `value`, gets k<i> back into it and checks
 * every byte; then it checks `keep`.  It prints "kv n=<i> ok" for a round
 * that held, "kv MISMATCH n=<i>" when a value came back wrong, "kv KEEP
 * n=<i>" when `keep` changed, "kv error n=<i> status S" when a call
 * failed (each ends it with status 1), and "done n=N" at the end.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uksim/kvs.h"
#include "uksim/num.h"
#include "uksim/task.h"

struct ktask {
  int handle, value, keep;
  size_t size;
  long limit, n;
  uint64_t period;
  int failed;
};

static uint8_t pattern(long round, size_t j) {
  return (uint8_t)(round * 131 + (long)j * 7 + 1);
}

static void fill(uint8_t *p, size_t n, long round) {
  for (size_t j = 0; j < n; j++)
    p[j] = pattern(round, j);
}

static int holds(const uint8_t *p, size_t n, long round) {
  for (size_t j = 0; j < n; j++)
    if (p[j] != pattern(round, j))
      return 0;
  return 1;
}

/* One kvs call on key k<round>, `value` as its data ICA (len bytes out):
 * the service's status, the value's length in *vallen. */
static int kv_call(struct ktask *t, enum kvs_op op, long round, size_t len,
                   uint64_t *vallen) {
  struct kvs_ctl c = {0};
  size_t got = 0, data = 0;
  c.keylen = (uint32_t)snprintf(c.key, sizeof c.key, "k%ld", round);
  c.vallen = len;
  int st = task_call_ica(t->handle, op, &c, sizeof c, t->value, len, &c,
                         sizeof c, &got, &data);
  *vallen = got >= sizeof c ? c.vallen : 0;
  return st;
}

/* Round n: put, clear, get, check. */
static int round_trip(struct ktask *t) {
  uint8_t *v = task_ica(t->value, NULL);
  uint64_t vallen = 0;
  fill(v, t->size, t->n);
  int st = kv_call(t, KVS_PUT, t->n, t->size, &vallen);
  if (st == 0) {
    memset(v, 0, t->size);
    st = kv_call(t, KVS_GET, t->n, 0, &vallen);
  }
  if (st < 0) {
    task_printf("kv error n=%ld status %d\n", t->n, st);
    return -1;
  }
  if (vallen != t->size || !holds(v, t->size, t->n)) {
    task_printf("kv MISMATCH n=%ld (%llu bytes)\n", t->n,
                (unsigned long long)vallen);
    return -1;
  }
  if (!holds(task_ica(t->keep, NULL), t->size, 0)) {
    task_printf("kv KEEP n=%ld\n", t->n);
    return -1;
  }
  return 0;
}

static void worker(void *arg) {
  struct ktask *t = arg;
  while (t->limit == 0 || t->n < t->limit) {
    t->n++;
    if (round_trip(t) < 0) {
      t->failed = 1;
      return;
    }
    task_printf("kv n=%ld ok\n", t->n);
    if (t->period)
      task_sleep(t->period);
  }
  task_printf("done n=%ld\n", t->n);
}

struct opts {
  const char *service;
  uint64_t limit, period, size, adopt;
  int adopting;
};

static int parse(int argc, char **argv, struct opts *o) {
  static const struct option lo[] = {
      {"service", 1, 0, 's'}, {"limit", 1, 0, 'n'}, {"period", 1, 0, 'p'},
      {"size", 1, 0, 'z'},    {"adopt", 1, 0, 'a'}, {0, 0, 0, 0}};
  int c, r = 0;
  while (r == 0 && (c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    if (c == 's')
      o->service = optarg;
    else if (c == 'n')
      r = num_opt_u64("ktask", "--limit", optarg, 0, 1ull << 40, 0, &o->limit);
    else if (c == 'p')
      r = num_opt_u64("ktask", "--period", optarg, 0, 60000, 0, &o->period);
    else if (c == 'z')
      r = num_opt_u64("ktask", "--size", optarg, 1, TASK_ICA_MAX, 0, &o->size);
    else if (c == 'a' && (o->adopting = 1))
      r = num_opt_u64("ktask", "--adopt", optarg, 0, 1 << 20, 0, &o->adopt);
    else
      r = -1;
  }
  return r < 0 || optind != argc ? -1 : 0;
}

static int create(const struct opts *o) {
  int r = task_init(TASK_REGION_MIN);
  struct ktask *t = r == 0 ? task_alloc(sizeof *t) : NULL;
  if (t == NULL)
    r = r < 0 ? r : -1;
  if (t != NULL && (t->handle = r = task_service_open(o->service)) >= 0 &&
      (t->value = r = task_ica_new(o->size)) >= 0 &&
      (t->keep = r = task_ica_new(o->size)) >= 0) {
    t->size = o->size;
    t->limit = (long)o->limit;
    t->period = o->period;
    fill(task_ica(t->keep, NULL), t->size, 0);
    task_set_root(t);
    r = task_thread_new(worker, t, 10, TASK_POLICY_RR);
  }
  if (r < 0)
    fprintf(stderr, "ktask: %s: %s\n", o->service, strerror(-r));
  return r < 0 ? -1 : 0;
}

int main(int argc, char **argv) {
  struct opts o = {
      .service = KVS_NAME, .limit = 100, .period = 1, .size = 16384};
  task_noaslr(argv);
  setvbuf(stdout, NULL, _IONBF, 0);
  if (parse(argc, argv, &o) < 0) {
    fprintf(stderr, "usage: ktask [--service NAME] [--limit N] [--period MS] "
                    "[--size BYTES] | --adopt FD\n");
    return 2;
  }
  int r = o.adopting ? task_adopt((int)o.adopt) : create(&o);
  if (r < 0) {
    if (o.adopting)
      fprintf(stderr, "ktask: task_adopt: %s\n", strerror(-r));
    return 1;
  }
  r = task_run();
  struct ktask *t = task_root();
  return (r == TASK_RUN_DONE && !t->failed) || r == TASK_RUN_ENDED ? 0 : 1;
}
