/* ctask: a migratable task (include/uksim/task.h) that counts through a
 * counter service of the node it started on (servers/ctr_srv.c,
 * op 0 increments and answers the count), wherever it runs: the program
 * the service-call tests move between nodes.
 *
 *   ctask [--service NAME] [--limit N] [--period MS]
 *   ctask --adopt FD        (continue the task in region memfd FD)
 *
 * Its one thread makes N increments (0: without end), one every MS,
 * printing "ctr n=<its own count> v=<the service's>"; the two are equal
 * as long as every call ran exactly once (the service counts for this
 * task alone).  It prints "ctr MISMATCH ..." and ends with status 1 when
 * they differ, "ctr error ..." when a call fails, and "done n=N v=V" at the
 * end.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uksim/num.h"
#include "uksim/task.h"

enum { CTR_INCR = 0 };

struct ctask {
  int handle;
  long limit, n;
  uint64_t period;
  int failed;
};

/* One increment: the count the service answers, or -1 after saying why. */
static long increment(struct ctask *t) {
  uint64_t v = 0, zero = 0;
  size_t got = 0;
  int st =
      task_call(t->handle, CTR_INCR, &zero, sizeof zero, &v, sizeof v, &got);
  if (st < 0 || got < sizeof v) {
    task_printf("ctr error n=%ld status %d\n", t->n, st);
    return -1;
  }
  return (long)v;
}

static void counter(void *arg) {
  struct ctask *t = arg;
  long v = 0;
  while (!t->failed && (t->limit == 0 || t->n < t->limit)) {
    if ((v = increment(t)) < 0) {
      t->failed = 1;
      break;
    }
    t->n++;
    if (v != t->n) {
      task_printf("ctr MISMATCH n=%ld v=%ld\n", t->n, v);
      t->failed = 1;
      break;
    }
    task_printf("ctr n=%ld v=%ld\n", t->n, v);
    if (t->period)
      task_sleep(t->period);
  }
  if (!t->failed)
    task_printf("done n=%ld v=%ld\n", t->n, v);
}

struct opts {
  const char *service;
  uint64_t limit, period, adopt;
  int adopting;
};

static int parse(int argc, char **argv, struct opts *o) {
  static const struct option lo[] = {{"service", 1, 0, 's'},
                                     {"limit", 1, 0, 'n'},
                                     {"period", 1, 0, 'p'},
                                     {"adopt", 1, 0, 'a'},
                                     {0, 0, 0, 0}};
  int c, r = 0;
  while (r == 0 && (c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    if (c == 's')
      o->service = optarg;
    else if (c == 'n')
      r = num_opt_u64("ctask", "--limit", optarg, 0, 1ull << 40, 0, &o->limit);
    else if (c == 'p')
      r = num_opt_u64("ctask", "--period", optarg, 0, 60000, 0, &o->period);
    else if (c == 'a' && (o->adopting = 1))
      r = num_opt_u64("ctask", "--adopt", optarg, 0, 1 << 20, 0, &o->adopt);
    else
      r = -1;
  }
  return r < 0 || optind != argc ? -1 : 0;
}

static int create(const struct opts *o) {
  int r = task_init(TASK_REGION_MIN);
  struct ctask *t = r == 0 ? task_alloc(sizeof *t) : NULL;
  if (t != NULL && (t->handle = r = task_service_open(o->service)) >= 0) {
    t->limit = (long)o->limit;
    t->period = o->period;
    task_set_root(t);
    r = task_thread_new(counter, t, 10, TASK_POLICY_RR);
  }
  if (r < 0)
    fprintf(stderr, "ctask: %s: %s\n", o->service, strerror(-r));
  return r < 0 ? -1 : 0;
}

int main(int argc, char **argv) {
  struct opts o = {.service = "ctr", .limit = 100, .period = 1};
  task_noaslr(argv);
  setvbuf(stdout, NULL, _IONBF, 0);
  if (parse(argc, argv, &o) < 0) {
    fprintf(stderr, "usage: ctask [--service NAME] [--limit N] [--period MS] "
                    "| --adopt FD\n");
    return 2;
  }
  int r = o.adopting ? task_adopt((int)o.adopt) : create(&o);
  if (r < 0) {
    if (o.adopting)
      fprintf(stderr, "ctask: task_adopt: %s\n", strerror(-r));
    return 1;
  }
  r = task_run();
  struct ctask *t = task_root();
  return (r == TASK_RUN_DONE && !t->failed) || r == TASK_RUN_ENDED ? 0 : 1;
}
