/* mtload: a multi-threaded application for the failover tests (Orthros,
 * issue 14: "multi-threaded applications move whole").
 *
 *   mtload [--threads T] [--count N | --forever] [--service PREFIX]
 *          [--tolerate-reset] [--result FILE]
 *
 * T threads (default 4, at most MTLOAD_THREADS_MAX) share the process's
 * one kernel connection through libuksim's lock.  Thread i increments the
 * counter of service PREFIX<i> (default "mt": mt0, mt1, ...; ctr_srv
 * --service mt0 ...) N times (default 1000; --forever: until SIGTERM, when
 * each thread finishes the call it is in and checks), so that each thread's
 * calls are counted apart: even calls by ap_call, odd ones by ap_send with a
 * tag naming the thread and the call, then ap_await of that request, whose
 * result must carry the same tag.  Every answer must be the counter one
 * above the last one the thread saw (a thread's counter is its own), so a
 * call answered twice, lost, or answered to another thread shows.
 *
 * A failover may cut a call short after its side effect (-ECONNRESET: its
 * server died holding it; -EINTR, sim-kernel/kadopt.c): with
 * --tolerate-reset such a call is "unsure", and the next answer may be up
 * to one above the last for each unsure call since.  At the end each
 * thread reads its counter (op get): it must be the last answer it saw,
 * plus at most its unsure calls since.  Without --tolerate-reset an unsure
 * call is an error.
 *
 * Prints one line per thread and a summary:
 *   mtload: thread I svc mtI: OK calls, U unsure, counter C (from B)
 *   mtload: pid P, T threads, max M in the library at once, R incr/s: ok|FAILED
 * and writes the same to FILE (--result: written whole, then renamed into
 * place, so a reader never sees half).  M, the most threads inside a call
 * at one time, shows the threads did contend for the connection.  Exits 0
 * when every thread's calls were counted exactly once, 1 otherwise (also
 * when no call finished for MTLOAD_STALL_S seconds: stuck), 2 on bad
 * usage. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "uksim/ap.h"
#include "uksim/num.h"

/* Threads and calls per thread: enough for any test, small enough that a
 * typo does not run for hours. */
#define MTLOAD_THREADS_MAX 64
#define MTLOAD_COUNT_MAX 10000000
#define MTLOAD_LINE 160
/* No call of any thread finished for this long: the process is stuck (an
 * answer read by the wrong thread leaves its caller waiting forever), and
 * mtload says so and exits 1 rather than hang its test.  A failover takes
 * well under a second; valgrind slows a call to milliseconds. */
#define MTLOAD_STALL_S 60

enum { CTR_INCR, CTR_GET }; /* ctr_srv's ops */

struct thread {
  pthread_t tid;
  int index;
  char svcname[32];
  uint64_t base, last;           /* the counter at the start, the last answer */
  long ok, unsure, unsure_since; /* unsure calls in all, and since last */
  char error[MTLOAD_LINE];       /* empty: all right */
};

static long count = 1000;
static int tolerate, forever;
static volatile sig_atomic_t stop;    /* SIGTERM came */
static atomic_int inside, inside_max; /* threads inside a call */
static atomic_long done;              /* calls finished, all threads */

static void enter(void) {
  int n = atomic_fetch_add(&inside, 1) + 1;
  int m = atomic_load(&inside_max);
  while (n > m && !atomic_compare_exchange_weak(&inside_max, &m, n))
    ;
}

static void leave(void) {
  atomic_fetch_sub(&inside, 1);
  atomic_fetch_add(&done, 1);
}

/* Ends the process when no call finished for MTLOAD_STALL_S seconds. */
static void *watchdog(void *arg) {
  (void)arg;
  long last = -1;
  for (;;) {
    sleep(MTLOAD_STALL_S);
    long now = atomic_load(&done);
    if (now == last) {
      fprintf(stderr, "mtload: stuck: no call finished in %d s (%d inside)\n",
              MTLOAD_STALL_S, atomic_load(&inside));
      _exit(1);
    }
    last = now;
  }
  return NULL;
}

/* The counter's value out of a result; releases its ICAs. */
static int take_value(ap_result *res, uint64_t *val) {
  if (res->status == 0 && res->ctl.base != NULL)
    memcpy(val, res->ctl.base, sizeof *val);
  else if (res->status == 0)
    res->status = -EPROTO; /* ctr_srv answers in the control ICA */
  ica_release(&res->ctl);
  ica_release(&res->data);
  return res->status;
}

/* One request: by ap_call, or (sent) by ap_send with tag, then ap_await. */
static int request(uint32_t svc, uint32_t op, bool sent, uint64_t tag,
                   uint64_t *val) {
  uk_ica ctl;
  ap_result res;
  uint32_t req;
  int r = ica_create(4096, KABI_ICA_CONTROL, &ctl);
  if (r < 0)
    return r;
  r = sent ? ap_send(svc, op, &ctl, NULL, tag, &req)
           : ap_call(svc, op, &ctl, NULL, &res);
  if (r < 0) {
    ica_release(&ctl); /* refused: we still hold it */
    return r;
  }
  if (sent && (r = ap_await(req, &res)) < 0)
    return r;
  if (sent && res.tag != tag && res.status == 0)
    res.status = -EBADMSG; /* another request's result */
  return take_value(&res, val);
}

static int fail(struct thread *t, const char *what, long i, int r, uint64_t v) {
  snprintf(t->error, sizeof t->error,
           "%s %ld: %s, counter %llu after %llu (%ld unsure since)", what, i,
           r < 0 ? strerror(-r) : "ok", (unsigned long long)v,
           (unsigned long long)t->last, t->unsure_since);
  return -1;
}

/* Checks increment i's outcome r (value v): one above the last answer, or
 * up to one more for each unsure call since. */
static int account(struct thread *t, long i, int r, uint64_t v) {
  if ((r == -ECONNRESET || r == -EINTR) && tolerate) {
    t->unsure++;
    t->unsure_since++;
    return 0;
  }
  if (r < 0 || v <= t->last || v > t->last + 1 + (uint64_t)t->unsure_since)
    return fail(t, "incr", i, r, v);
  t->ok++;
  t->last = v;
  t->unsure_since = 0;
  return 0;
}

/* The counter at the end: the last answer plus at most the unsure calls
 * made since, each of which may or may not have been done. */
static int final_check(struct thread *t, uint32_t svc) {
  uint64_t v = 0;
  int r = request(svc, CTR_GET, false, 0, &v);
  if (r < 0 || v < t->last || v > t->last + (uint64_t)t->unsure_since)
    return fail(t, "get", t->ok + t->unsure, r, v);
  t->last = v;
  return 0;
}

static void run(struct thread *t) {
  uint32_t svc;
  int r = ap_lookup(t->svcname, &svc);
  if (r < 0) {
    fail(t, "lookup", 0, r, 0);
    return;
  }
  if ((r = request(svc, CTR_GET, false, 0, &t->base)) < 0) {
    fail(t, "first get", 0, r, 0);
    return;
  }
  t->last = t->base;
  for (long i = 0; (forever || i < count) && !stop; i++) {
    uint64_t v = 0, tag = (uint64_t)t->index << 32 | (uint64_t)i;
    enter();
    r = request(svc, CTR_INCR, i % 2 == 1, tag, &v);
    leave();
    if (account(t, i, r, v) < 0)
      return;
  }
  final_check(t, svc);
}

static void on_term(int sig) {
  (void)sig;
  stop = 1;
}

static void *thread_main(void *arg) {
  run(arg);
  return NULL;
}

static void thread_line(const struct thread *t, char *line, size_t len) {
  if (t->error[0])
    snprintf(line, len, "mtload: thread %d svc %s: %s\n", t->index, t->svcname,
             t->error);
  else
    snprintf(line, len,
             "mtload: thread %d svc %s: %ld calls, %ld unsure, counter %llu "
             "(from %llu)\n",
             t->index, t->svcname, t->ok, t->unsure,
             (unsigned long long)t->last, (unsigned long long)t->base);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Increments answered per second, all threads, over secs. */
static double rate(const struct thread *ts, int n, double secs) {
  long calls = 0;
  for (int i = 0; i < n; i++)
    calls += ts[i].ok;
  return secs > 0 ? (double)calls / secs : 0;
}

/* Prints the report (the run took secs) and writes it to path (if any)
 * whole. */
static void report(const struct thread *ts, int n, bool ok, double secs,
                   const char *path) {
  char tmp[4096 + 8], line[MTLOAD_LINE];
  FILE *f = NULL;
  if (path && (size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) < sizeof tmp)
    f = fopen(tmp, "w");
  for (int i = 0; i < n; i++) {
    thread_line(&ts[i], line, sizeof line);
    fputs(line, stdout);
    if (f)
      fputs(line, f);
  }
  snprintf(line, sizeof line,
           "mtload: pid %d, %d threads, max %d in the library at once, "
           "%.0f incr/s: %s\n",
           (int)getpid(), n, atomic_load(&inside_max), rate(ts, n, secs),
           ok ? "ok" : "FAILED");
  fputs(line, stdout);
  fflush(stdout);
  if (f) {
    fputs(line, f);
    if (fclose(f) != 0 || rename(tmp, path) != 0)
      perror("mtload: result file");
  } else if (path) {
    perror("mtload: result file");
  }
}

static int usage(void) {
  fprintf(stderr, "usage: mtload [--threads T] [--count N | --forever] "
                  "[--service PREFIX] [--tolerate-reset] [--result FILE]\n");
  return 2;
}

static int parse_num(const char *s, uint64_t max, long *out) {
  uint64_t v;
  if (num_parse_u64(s, 1, max, 0, &v) < 0)
    return -1;
  *out = (long)v;
  return 0;
}

int main(int argc, char **argv) {
  long nthreads = 4;
  const char *prefix = "mt", *result = NULL;
  for (int i = 1; i < argc; i++) {
    bool more = i + 1 < argc;
    if (!strcmp(argv[i], "--threads") && more) {
      if (parse_num(argv[++i], MTLOAD_THREADS_MAX, &nthreads) < 0)
        return usage();
    } else if (!strcmp(argv[i], "--count") && more) {
      if (parse_num(argv[++i], MTLOAD_COUNT_MAX, &count) < 0)
        return usage();
    } else if (!strcmp(argv[i], "--service") && more &&
               strlen(argv[i + 1]) < 16) {
      prefix = argv[++i];
    } else if (!strcmp(argv[i], "--result") && more) {
      result = argv[++i];
    } else if (!strcmp(argv[i], "--forever")) {
      forever = 1;
    } else if (!strcmp(argv[i], "--tolerate-reset")) {
      tolerate = 1;
    } else {
      return usage();
    }
  }
  struct sigaction sa = {.sa_handler = on_term, .sa_flags = SA_RESTART};
  sigaction(SIGTERM, &sa, NULL);
  static struct thread ts[MTLOAD_THREADS_MAX];
  int started = 0;
  double t0 = now_s();
  pthread_t dog;
  if (pthread_create(&dog, NULL, watchdog, NULL) == 0)
    pthread_detach(dog);
  for (int i = 0; i < nthreads; i++) {
    ts[i].index = i;
    snprintf(ts[i].svcname, sizeof ts[i].svcname, "%s%d", prefix, i);
    if (pthread_create(&ts[i].tid, NULL, thread_main, &ts[i]) != 0) {
      snprintf(ts[i].error, sizeof ts[i].error, "pthread_create failed");
      break;
    }
    started++;
  }
  bool ok = started == nthreads;
  for (int i = 0; i < started; i++) {
    pthread_join(ts[i].tid, NULL);
    ok &= ts[i].error[0] == '\0';
  }
  report(ts, started < nthreads ? started + 1 : started, ok, now_s() - t0,
         result);
  return ok ? 0 : 1;
}
