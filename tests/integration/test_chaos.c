/* A seeded chaos soak (issue 11, "A machine that does not fall over").
 *
 * One real machine runs kvs (restart policy) under load from kvsload
 * processes, which check every answer, while threads, each with its own
 * control client (a mach_client is not thread-safe), do at seeded random
 * moments what careless or hostile users do:
 *
 *   query     connect by name, read the kernel's tables ps-style, leave
 *   replace   replace kvs by kvs or kvs2, several at once (busy is fine,
 *             and so is kvs refusing the newer state of a kvs2)
 *   crash     SIGKILL the serving kvs and see it restarted
 *   flood     send requests and never read the answers, then vanish (once
 *             a run: stay, and see the machine drop the client)
 *   ghost     connect and vanish; an empty packet; garbage; a request the
 *             machine does not serve; a huge packet; ask and vanish
 *   hostile   application processes (hostile_ap) that take ICAs or send
 *             requests until refused, never read their answers, send an
 *             empty packet, or leave with everything held; ap_garbage;
 *             while one holds its take, a bystander (hostile_ap probe)
 *             must still get an ICA and an answer from kvs
 *
 * At the end the machine must still answer: a fresh client reads its
 * tables and halts it with no ICA live; the machine's and the kernel's
 * descriptors (beyond one per live ICA) are what they were at a quiet
 * moment after boot; the kernel's event trace passes the exactly-one-answer
 * checker; every kvsload exited 0 (they tolerate -ECONNRESET: a crash
 * answers the request kvs held so, see test_fault_sweep.c), and every
 * request a load sent has its result in the trace.
 *
 * Only documented refusals are accepted; anything else is a failure.  A
 * failure does not stop the run (the other parts go on); each is printed
 * at once with the seed, the time and the recent actions, and the test
 * fails at the end.  The counts printed at the end are of what happened.
 *
 * UKSIM_SEED=N repeats the schedule of each thread (the interleaving of
 * the threads and of the machine still varies); UKSIM_CHAOS_SECONDS=N sets
 * the length (default 60, 15 under valgrind, with fewer clients).  For
 * hours, run the binary itself: UKSIM_CHAOS_SECONDS=7200
 * build/tests/integration/test_chaos (the test's timeout follows).
 * UKSIM_CHAOS_SKIP=query,replace,crash,flood,ghost,hostile (any of them)
 * leaves roles out, to find which one a machine does not survive. */
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "trace_check.h"

#define LOADS_MAX 8
#define BOGUS_PROC (UK_PROC_MAX + 7) /* no such process slot */
#define FLOOD_MAX 5000               /* requests a flood sends at most */
#define HUGE_PACKET 70000            /* beyond the control message limit */
#define ANSWER_S 30                  /* the longest wait for any answer */

/* The run ------------------------------------------------------------------ */

struct cfg {
  uint64_t seed;
  unsigned seconds;
  bool valgrind;
  int loads, queriers, replacers;
  unsigned rate, count; /* per kvsload: requests a second, per round */
  unsigned hold_ms;     /* how long a hostile process holds its take */
  unsigned slow;        /* waits are multiplied by it (valgrind: 20) */
};

static struct cfg C;
static char mname[64], trace_path[300];
static pid_t machine_pid;
static uint64_t t0_ns, end_ns;
static atomic_bool stop;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double elapsed_s(void) {
  return (double)(now_ns() - t0_ns) / 1e9;
}

static bool over(void) {
  return atomic_load(&stop) || now_ns() >= end_ns;
}

static void cfg_load(void) {
  const char *s = getenv("UKSIM_SEED"), *d = getenv("UKSIM_CHAOS_SECONDS");
  C.valgrind = getenv("UKSIM_UNDER_VALGRIND") != NULL;
  C.seed =
      s ? strtoull(s, NULL, 10) : (uint64_t)time(NULL) ^ (uint64_t)getpid();
  C.seconds = d ? (unsigned)atoi(d) : C.valgrind ? 15 : 60;
  C.loads = C.valgrind ? 2 : 4;
  C.queriers = C.valgrind ? 2 : 6;
  C.replacers = C.valgrind ? 2 : 3;
  C.rate = C.valgrind ? 40 : 400;
  C.count = C.valgrind ? 120 : 2000;
  C.hold_ms = C.valgrind ? 20000 : 3000;
  C.slow = C.valgrind ? 20 : 1;
}

/* The test's timeout follows UKSIM_CHAOS_SECONDS (Criterion's per-test
 * timeout is fixed at compile time; this hook runs in the runner before
 * the test is forked). */
ReportHook(PRE_ALL)(struct criterion_test_set *set) {
  cfg_load();
  double t = C.seconds + (C.valgrind ? 900 : 120);
  FOREACH_SET(struct criterion_suite_set * s, set->suites) {
    FOREACH_SET(struct criterion_test * tst, s->tests) {
      ((struct criterion_test_extra_data *)tst->data)->timeout = t;
    }
  }
}

/* UKSIM_CHAOS_SKIP=query,ghost,... leaves those roles out: to find which
 * part of the chaos a machine does not survive. */
static int copies(const char *role, int n) {
  const char *skip = getenv("UKSIM_CHAOS_SKIP");
  size_t len = strlen(role);
  for (const char *p = skip; p && (p = strstr(p, role)) != NULL; p += len)
    if ((p == skip || p[-1] == ',') && (p[len] == '\0' || p[len] == ','))
      return 0;
  return n;
}

/* splitmix64; every thread has its own stream, derived from the seed. */
static uint64_t next(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint64_t stream(unsigned role, unsigned i) {
  uint64_t x = C.seed ^ ((uint64_t)role << 32 | i);
  return next(&x);
}

static unsigned between(uint64_t *x, unsigned lo, unsigned hi) {
  return lo + (unsigned)(next(x) % (hi - lo + 1));
}

/* Sleeps ms (times the slow-down) in slices; false once the run is over. */
static bool nap(unsigned ms) {
  uint64_t until = now_ns() + (uint64_t)ms * C.slow * 1000000ull;
  while (!over() && now_ns() < until)
    usleep(20 * 1000);
  return !over();
}

/* What happened: counts, recent actions, failures ----------------------------
 */

enum ctr {
  C_CONNECTS,
  C_ROOM,
  C_QUERIES,
  C_REP_TRIED,
  C_REP_OK,
  C_REP_BUSY,
  C_REP_RESET,
  C_REP_TIMEOUT,
  C_REP_DOWNGRADE,
  C_CRASHES,
  C_CRASH_MISSED,
  C_CRASH_SKIPPED,
  C_FLOODS,
  C_FLOOD_MSGS,
  C_STALL_DROPPED,
  C_GHOSTS,
  C_HOSTILES,
  C_CONTAINED,
  C_PROBES,
  C_PROBES_LATE,
  C_ROUNDS,
  C_LOADS,
  C_LOADS_OK,
  C_N
};
static atomic_ulong ctr[C_N];

static void count(enum ctr c, unsigned long n) {
  atomic_fetch_add(&ctr[c], n);
}

#define RECENT 24
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char recent[RECENT][160];
static unsigned nrecent;
static char failures[16384];
static unsigned nfail;

/* Records an action, so that a failure can say what was going on. */
static void note(const char *role, const char *fmt, ...) {
  va_list ap;
  pthread_mutex_lock(&lock);
  char *r = recent[nrecent++ % RECENT];
  int n = snprintf(r, sizeof recent[0], "%7.3fs %-8s ", elapsed_s(), role);
  va_start(ap, fmt);
  vsnprintf(r + n, sizeof recent[0] - (size_t)n, fmt, ap);
  va_end(ap);
  pthread_mutex_unlock(&lock);
}

static void print_recent(void) {
  fprintf(stderr, "chaos: the last actions before it:\n");
  unsigned first = nrecent > RECENT ? nrecent - RECENT : 0;
  for (unsigned i = first; i < nrecent; i++)
    fprintf(stderr, "  %s\n", recent[i % RECENT]);
}

/* Whether the machine process has ended (a zombie until watch() reaps
 * it, or gone). */
static bool machine_dead(void) {
  char path[64], buf[256];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)machine_pid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return true;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *paren = strrchr(buf, ')');
  return paren == NULL || paren[1] == '\0' || paren[2] == 'Z';
}

static atomic_ulong consequences; /* failures that followed its death */

/* A failure: printed at once with the seed (and, for the first few, the
 * recent actions), kept for the verdict at the end.  The run goes on,
 * unless the machine has died: then what fails next is a consequence, and
 * watch() reports the death itself. */
__attribute__((format(printf, 2, 3))) static void fail(const char *role,
                                                       const char *fmt, ...) {
  char msg[512];
  va_list ap;
  if (strcmp(role, "machine") != 0 && machine_pid > 0 && machine_dead()) {
    atomic_store(&stop, true);
    atomic_fetch_add(&consequences, 1);
    return;
  }
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  pthread_mutex_lock(&lock);
  fprintf(stderr, "chaos FAILURE (seed %llu, at %.3f s, %s): %s\n",
          (unsigned long long)C.seed, elapsed_s(), role, msg);
  if (nfail < 5 || strcmp(role, "machine") == 0)
    print_recent();
  size_t used = strlen(failures);
  if (nfail++ < 20)
    snprintf(failures + used, sizeof failures - used, "  %.3fs %s: %s\n",
             elapsed_s(), role, msg);
  pthread_mutex_unlock(&lock);
}

/* Control clients ------------------------------------------------------------
 */

/* The machine refuses a client beyond MACH_CLIENTS_MAX with a notice (id 0,
 * -EUSERS) and closes it: a documented answer, not a failure. */
static bool refused_for_room(const mach_client *m, int r) {
  if (r == -EUSERS)
    return true;
  for (int i = 0; i < MACH_MAX_REPLIES; i++)
    if (m->early[i] && m->early[i]->id == 0 &&
        m->early[i]->body_case == UKSIM__CTL__BODY_REPLY &&
        m->early[i]->reply->status == -EUSERS)
      return true;
  return false;
}

/* m->error, except for a timeout (mach_reply says "the machine went away"
 * when its read timed out). */
static const char *err_text(const mach_client *m, int r) {
  static __thread char buf[64];
  if (r != -EAGAIN)
    return m->error;
  snprintf(buf, sizeof buf, "no answer within %u s", ANSWER_S * C.slow);
  return buf;
}

/* Connects a control client.  A machine that stops answering must fail
 * the test, not hang it: every reply is awaited ANSWER_S at most (mach_reply
 * then returns -EAGAIN), longer than any answer of a working machine (the
 * longest is a kvsload round's exit). */
static bool client_open(mach_client *m, const char *role) {
  struct timeval tv = {.tv_sec = ANSWER_S * C.slow};
  int r = mach_connect(m, mname);
  if (r < 0) {
    if (!atomic_load(&stop))
      fail(role, "connect to %s: %s (%s)", mname, strerror(-r), m->error);
    return false;
  }
  setsockopt(m->sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(m->sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  count(C_CONNECTS, 1);
  return true;
}

/* What a reader outside the kernel may rely on even in a torn view. */
static int check_tables(const struct uk_kdata *kd, char *why, size_t len) {
  uint64_t results = *(volatile const uint64_t *)&kd->ctr.results;
  uint64_t sends = *(volatile const uint64_t *)&kd->ctr.sends;
  if (kd->hdr.kernel_pid <= 0)
    return snprintf(why, len, "kernel pid %d", kd->hdr.kernel_pid), -EPROTO;
  if (results > sends)
    return snprintf(why, len, "%llu results for %llu sends",
                    (unsigned long long)results, (unsigned long long)sends),
           -EPROTO;
  for (int p = 0; p < UK_PROC_MAX; p++)
    if (kd->proc[p].state > UK_PROC_EXITED)
      return snprintf(why, len, "process %d in state %u", p, kd->proc[p].state),
             -EPROTO;
  return 0;
}

/* One ps-style reading of the kernel's tables.  0, or the error (why says
 * what was wrong with the tables). */
static int query(mach_client *m, char *why, size_t len) {
  const struct uk_kdata *kd;
  why[0] = '\0';
  int r = mach_kdata(m, &kd, NULL);
  if (r < 0)
    return r;
  r = check_tables(kd, why, len);
  mach_kdata_unmap(kd);
  return r;
}

/* kvs as the server info table shows it. */
struct svc_view {
  bool found;
  uint32_t state, phase, proc, restarts;
  int32_t pid;
};

static int view(mach_client *m, struct svc_view *v) {
  const struct uk_kdata *kd;
  memset(v, 0, sizeof *v);
  int r = mach_kdata(m, &kd, NULL);
  if (r < 0)
    return r;
  for (int s = 0; s < UK_SVC_MAX && !v->found; s++) {
    const struct uk_svc *sv = &kd->svc[s];
    if (sv->state == UK_SVC_FREE || strcmp(sv->name, "kvs") != 0)
      continue;
    *v = (struct svc_view){true,     sv->state,    sv->phase,
                           sv->proc, sv->restarts, 0};
    if (sv->proc < UK_PROC_MAX)
      v->pid = kd->proc[sv->proc].pid;
  }
  mach_kdata_unmap(kd);
  return 0;
}

/* Waits until kvs is served by another process than `old` (UK_NIL: any).
 * 0, or -1 after a failure was recorded. */
static int await_serving(mach_client *m, const char *role, uint32_t old) {
  uint64_t until = now_ns() + 10ull * C.slow * 1000000000ull;
  struct svc_view v;
  while (now_ns() < until) {
    int r = view(m, &v);
    if (r < 0) {
      fail(role, "reading kvs's state: %s (%s)", strerror(-r), err_text(m, r));
      return -1;
    }
    if (!v.found || v.state != UK_SVC_UP) {
      fail(role, "kvs is down (it has a restart policy)");
      return -1;
    }
    if (v.phase == UK_PH_SERVING && v.proc != old && v.proc != UK_NIL)
      return 0;
    usleep(5000);
  }
  fail(role, "kvs not serving again within %u s (phase %u, process %u)",
       10 * C.slow, v.phase, v.proc);
  return -1;
}

/* Spawns a waitable process.  The wait id, or -errno. */
static int64_t spawn_waitable(mach_client *m, const char *prog, char **args,
                              size_t n, const char *name, int *proc) {
  int p = -1;
  int r = mach_spawn(m, prog, args, n, name, MACH_SPAWN_WAITABLE, &p);
  if (r < 0)
    return r;
  if (proc)
    *proc = p;
  return mach_wait_send(m, p);
}

/* Its exit status, 128 + signal, or -errno. */
static int wait_status(mach_client *m, int64_t wid) {
  int st = -1, sig = 0;
  int r = mach_wait_reply(m, (uint64_t)wid, &st, &sig);
  return r < 0 ? r : sig ? 128 + sig : st;
}

/* Query clients ---------------------------------------------------------------
 */

static void query_session(uint64_t *x) {
  mach_client m;
  char text[160];
  if (!client_open(&m, "query"))
    return;
  for (unsigned i = between(x, 1, 4); i > 0; i--) {
    int r = query(&m, text, sizeof text);
    if (r == 0) {
      count(C_QUERIES, 1);
    } else if (refused_for_room(&m, r)) {
      count(C_ROOM, 1);
      break;
    } else {
      fail("query", "kernel data: %s (%s%s)", strerror(-r), err_text(&m, r),
           text);
      break;
    }
  }
  mach_close(&m);
}

/* Replacements ----------------------------------------------------------------
 */

/* Documented ways for a replacement to fail under chaos: another one runs
 * or kvs is restarting (-EBUSY), the old server was crashed meanwhile
 * (-ECONNRESET), the successor did not take over within the deadline
 * (-ETIMEDOUT), or kvs v1 refused the state of a kvs2 it was to replace
 * (-ECANCELED, a downgrade). */
static void replace_outcome(int r, const char *err, const char *prog) {
  if (r == 0)
    count(C_REP_OK, 1);
  else if (r == -ECANCELED && strcmp(prog, "kvs") == 0 &&
           strstr(err, "state version 2 is newer than this server's 1"))
    count(C_REP_DOWNGRADE, 1);
  else if (r == -EBUSY &&
           (strstr(err, "already running") || strstr(err, "restarting")))
    count(C_REP_BUSY, 1);
  else if (r == -ECONNRESET && strstr(err, "old server failed"))
    count(C_REP_RESET, 1);
  else if (r == -ETIMEDOUT)
    count(C_REP_TIMEOUT, 1);
  else if (r == -EUSERS)
    count(C_ROOM, 1);
  else
    fail("replace", "replace kvs by %s: %d %s", prog, r, err);
}

static void replace_once(uint64_t *x) {
  mach_client m;
  if (!client_open(&m, "replace"))
    return;
  /* kvs2 twice as often as kvs: once a kvs2 serves, kvs refuses its state
   * (a downgrade), and most replacements should still go through. */
  const char *prog = next(x) % 3 == 0 ? "kvs" : "kvs2";
  struct mach_prog p = {.program = prog};
  note("replace", "kvs by %s", prog);
  count(C_REP_TRIED, 1);
  int64_t id = mach_replace_send(&m, "kvs", &p, 0);
  int r = id < 0 ? (int)id : mach_replace_reply(&m, (uint64_t)id, NULL);
  if (r < 0 && refused_for_room(&m, r))
    r = -EUSERS;
  note("replace", "kvs by %s: %d %s", prog, r, r ? m.error : "");
  replace_outcome(r, m.error, prog);
  mach_close(&m);
}

/* Crashes ---------------------------------------------------------------------
 */

/* Kills the serving kvs if it is serving (a kill in the middle of a
 * restart counts towards the restart limit, which is not the point), then
 * waits for its restart.  The kill names a process slot, not a pid: in the
 * moment between reading the table and the kill, the slot could change
 * hands (the control API has no generation for it). */
static void crashed(mach_client *m, uint32_t proc) {
  count(C_CRASHES, 1);
  if (await_serving(m, "crash", proc) == 0)
    note("crash", "kvs serves again");
}

static void crash_once(uint64_t *x) {
  (void)x;
  mach_client m;
  struct svc_view v;
  if (!client_open(&m, "crash"))
    return;
  int r = view(&m, &v);
  if (r < 0 || !v.found || v.state != UK_SVC_UP) {
    fail("crash", "kvs: %s", r < 0 ? m.error : "not up");
  } else if (v.phase != UK_PH_SERVING) {
    count(C_CRASH_SKIPPED, 1);
  } else {
    note("crash", "SIGKILL kvs (process %u, pid %d)", v.proc, v.pid);
    r = mach_kill(&m, (int)v.proc, SIGKILL);
    if (r == -ESRCH) /* it went a moment ago (a replacement's commit) */
      count(C_CRASH_MISSED, 1);
    else if (r < 0)
      fail("crash", "kill kvs: %s", m.error);
    else
      crashed(&m, v.proc);
  }
  mach_close(&m);
}

/* Floods ----------------------------------------------------------------------
 */

/* Sends kernel-data requests (each answered with a descriptor) and waits
 * for a process that does not exist, as fast as the socket takes them, and
 * reads nothing.  Returns the requests sent. */
static unsigned flood_send(mach_client *m) {
  unsigned n = 0, full = 0;
  fcntl(m->sock, F_SETFL, fcntl(m->sock, F_GETFL) | O_NONBLOCK);
  while (n < FLOOD_MAX && full < 20) {
    Uksim__Ctl c = UKSIM__CTL__INIT;
    Uksim__GetKdata g = UKSIM__GET_KDATA__INIT;
    Uksim__Wait w = UKSIM__WAIT__INIT;
    w.proc = BOGUS_PROC;
    if (n % 2) {
      c.body_case = UKSIM__CTL__BODY_WAIT;
      c.wait = &w;
    } else {
      c.body_case = UKSIM__CTL__BODY_GET_KDATA;
      c.get_kdata = &g;
    }
    int64_t r = mach_send(m, &c);
    if (r == -EAGAIN) {
      full++;
      usleep(1000);
    } else if (r < 0) {
      break; /* the machine closed us: allowed, it owes us nothing */
    } else {
      n++;
    }
  }
  return n;
}

/* A client that reads none of its answers for MACH_CLIENT_STALL_MS is
 * dropped (machine.h): after that long and a little more, all that is left
 * to read is its last answers, then the end of the stream. */
static void check_dropped(mach_client *m) {
#ifdef MACH_CLIENT_STALL_MS
  usleep((MACH_CLIENT_STALL_MS + 3000) * 1000u * C.slow);
  struct timeval tv = {.tv_sec = 3 * C.slow};
  fcntl(m->sock, F_SETFL, fcntl(m->sock, F_GETFL) & ~O_NONBLOCK);
  setsockopt(m->sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int r = mach_reply(m, UINT64_MAX, NULL, NULL); /* reads to the end */
  if (r == -EAGAIN || r == -EWOULDBLOCK)
    fail("flood", "a client that read no answer for %d s was not dropped",
         MACH_CLIENT_STALL_MS / 1000 + 3);
  else
    count(C_STALL_DROPPED, 1);
#else
  (void)m;
#endif
}

static void flood_once(uint64_t *x) {
  static atomic_bool stalled;
  mach_client m;
  /* Once a run, when there is time for it: the stall takes 13 s. */
  bool stall = now_ns() + 20ull * C.slow * 1000000000ull < end_ns &&
               !atomic_exchange(&stalled, true);
  if (!client_open(&m, "flood"))
    return;
#ifndef MACH_CLIENT_STALL_MS
  stall = false; /* no documented stall limit to check */
#endif
  note("flood", "starts%s", stall ? " (and stays, reading nothing)" : "");
  unsigned n = flood_send(&m);
  count(C_FLOODS, 1);
  count(C_FLOOD_MSGS, n);
  note("flood", "sent %u requests, reads none", n);
  if (stall)
    check_dropped(&m);
  else
    usleep(between(x, 0, 500) * 1000u);
  mach_close(&m); /* vanishes with its answers unread */
}

/* Ghost clients ---------------------------------------------------------------
 */

/* After a packet it cannot read, the machine drops the client: the next
 * read is the end of the stream (answers in between are not expected). */
static bool dropped(int sock) {
  struct timeval tv = {.tv_sec = 5 * C.slow};
  char buf[256];
  setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ssize_t n = recv(sock, buf, sizeof buf, 0);
  return n == 0 || (n < 0 && errno == ECONNRESET);
}

static void ghost_raw(mach_client *m, uint64_t *x, int kind) {
  static char huge[HUGE_PACKET];
  char junk[300];
  size_t len = between(x, 1, sizeof junk);
  for (size_t i = 0; i < len; i++)
    junk[i] = (char)next(x);
  junk[0] = 0; /* field number 0: never a valid protobuf message */
  const void *p = kind == 1 ? "" : kind == 2 ? junk : huge;
  size_t n = kind == 1 ? 0 : kind == 2 ? len : sizeof huge;
  const char *what = kind == 1   ? "an empty packet"
                     : kind == 2 ? "garbage"
                                 : "a huge packet";
  note("ghost", "sends %s (%zu bytes)", what, n);
  if (send(m->sock, p, n, MSG_NOSIGNAL) < 0)
    fail("ghost", "sending %s: %s", what, strerror(errno));
  else if (!dropped(m->sock))
    fail("ghost", "the machine did not drop a client after %s", what);
}

/* A request the machine does not serve (a Reply) is answered -EINVAL, and
 * the client is served on. */
static void ghost_wrong_request(mach_client *m) {
  Uksim__Ctl c = UKSIM__CTL__INIT;
  Uksim__Reply rep = UKSIM__REPLY__INIT;
  char why[160];
  c.body_case = UKSIM__CTL__BODY_REPLY;
  c.reply = &rep;
  note("ghost", "sends a reply as a request");
  int64_t id = mach_send(m, &c);
  int r = id < 0 ? (int)id : mach_reply(m, (uint64_t)id, NULL, NULL);
  if (refused_for_room(m, r))
    count(C_ROOM, 1);
  else if (r != -EINVAL)
    fail("ghost", "a reply sent as a request: %d (%s), not -EINVAL", r,
         m->error);
  else if ((r = query(m, why, sizeof why)) != 0)
    fail("ghost", "no service after a wrong request: %s (%s%s)", strerror(-r),
         m->error, why);
}

static void ghost_once(uint64_t *x) {
  mach_client m;
  if (!client_open(&m, "ghost"))
    return;
  int kind = (int)(next(x) % 6);
  count(C_GHOSTS, 1);
  if (kind == 0) {
    note("ghost", "connects and vanishes");
  } else if (kind <= 3) {
    ghost_raw(&m, x, kind);
  } else if (kind == 4) {
    ghost_wrong_request(&m);
  } else {
    Uksim__Ctl c = UKSIM__CTL__INIT;
    Uksim__GetKdata g = UKSIM__GET_KDATA__INIT;
    c.body_case = UKSIM__CTL__BODY_GET_KDATA;
    c.get_kdata = &g;
    note("ghost", "asks and vanishes");
    (void)mach_send(&m, &c);
  }
  mach_close(&m);
}

/* Hostile application processes -----------------------------------------------
 */

struct hostile {
  const char *mode; /* hostile_ap's argv[1], or NULL for ap_garbage */
  bool holds;       /* holds its take for hold_ms: a bystander probes */
};

static const struct hostile hostiles[] = {
    {"icas", true},  {"sends", true},  {"noread", false},
    {"zero", false}, {"leave", false}, {NULL, false},
};

/* Whether the exit status is what hostile_ap.c documents for a contained
 * process; why says what it means if not. */
static bool contained(const struct hostile *h, int st, const char **why) {
  const char *m = h->mode ? h->mode : "garbage";
  *why = "";
  if (strcmp(m, "icas") == 0 || strcmp(m, "sends") == 0) {
    *why = st == 3   ? "refused, but not with the per-process quota's error: "
                       "the kernel's shared tables ran out (no quota)"
           : st == 4 ? "never refused"
                     : "";
    return st == 0;
  }
  if (strcmp(m, "noread") == 0) {
    *why = st == 4 ? "neither killed nor cut off" : "";
    return st == 128 + SIGKILL || st == 5;
  }
  if (strcmp(m, "zero") == 0) /* an empty packet reads as end of stream */
    return st == 0 || st == 10 || st == 11 || st == 128 + SIGKILL;
  return st == 0; /* leave, ap_garbage */
}

/* Waits until process p holds its take (it sleeps in the kernel) or has
 * ended.  True if it holds. */
static bool await_holding(mach_client *m, int p) {
  uint64_t until = now_ns() + 30ull * C.slow * 1000000000ull;
  while (now_ns() < until) {
    const struct uk_kdata *kd;
    if (mach_kdata(m, &kd, NULL) < 0)
      return false;
    const struct uk_proc pr = kd->proc[p];
    mach_kdata_unmap(kd);
    if (pr.state == UK_PROC_WAITING && pr.wait_op == KABI_SLEEP)
      return true;
    if (pr.state != UK_PROC_RUNNING && pr.state != UK_PROC_WAITING)
      return false;
    usleep(10 * 1000);
  }
  return false;
}

static bool still_holding(mach_client *m, int p) {
  const struct uk_kdata *kd;
  if (mach_kdata(m, &kd, NULL) < 0)
    return false;
  bool h =
      kd->proc[p].state == UK_PROC_WAITING && kd->proc[p].wait_op == KABI_SLEEP;
  mach_kdata_unmap(kd);
  return h;
}

/* While hostile process p holds what it took, another process must still
 * get an ICA and an answer from kvs. */
static void probe_beside(mach_client *m, int p, const char *mode) {
  if (!await_holding(m, p))
    return; /* it ended early: its exit status says why */
  char *a[] = {"probe"};
  int64_t w = spawn_waitable(m, "hostile_ap", a, 1, "probe", NULL);
  int st = w < 0 ? (int)w : wait_status(m, w);
  if (!still_holding(m, p)) {
    count(C_PROBES_LATE, 1); /* too late to prove anything */
    return;
  }
  count(C_PROBES, 1);
  if (st != 0)
    fail("hostile",
         "a bystander failed (%d) while hostile_ap %s held its "
         "take: one process exhausted the kernel for the others",
         st, mode);
}

static void hostile_verdict(mach_client *m, const struct hostile *h,
                            const char *prog, int st) {
  const char *mode = h->mode ? h->mode : "", *why;
  note("hostile", "%s %s exited %d", prog, mode, st);
  if (st < 0)
    fail("hostile", "%s %s: no exit status: %s", prog, mode, err_text(m, st));
  else if (contained(h, st, &why))
    count(C_CONTAINED, 1);
  else
    fail("hostile", "%s %s: exit status %d %s", prog, mode, st, why);
}

static void hostile_run(mach_client *m, uint64_t *x) {
  const struct hostile *h =
      &hostiles[next(x) % (sizeof hostiles / sizeof hostiles[0])];
  char hold[16];
  snprintf(hold, sizeof hold, "%u", C.hold_ms);
  char *a[] = {(char *)h->mode, hold};
  const char *prog = h->mode ? "hostile_ap" : "ap_garbage";
  int p;
  note("hostile", "starts %s %s", prog, h->mode ? h->mode : "");
  int64_t w = spawn_waitable(m, prog, a, h->mode ? 2 : 0, "hostile", &p);
  if (w < 0) {
    fail("hostile", "spawn %s: %s", prog, m->error);
    return;
  }
  count(C_HOSTILES, 1);
  if (h->holds)
    probe_beside(m, p, h->mode);
  hostile_verdict(m, h, prog, wait_status(m, w));
}

static void hostile_once(uint64_t *x) {
  mach_client m;
  if (!client_open(&m, "hostile"))
    return;
  hostile_run(&m, x);
  mach_close(&m);
}

/* Load ------------------------------------------------------------------------
 */

/* Starts load i of round r: a seeded mix on its own keys, checked against
 * its model, ending with a check of every key. */
static int64_t load_start(mach_client *m, unsigned r, int i) {
  char count_s[16], rate_s[16], seed_s[24], name_s[32];
  snprintf(count_s, sizeof count_s, "%u", C.count);
  snprintf(rate_s, sizeof rate_s, "%u", C.rate);
  snprintf(seed_s, sizeof seed_s, "%llu",
           (unsigned long long)stream(7, r * LOADS_MAX + (unsigned)i));
  snprintf(name_s, sizeof name_s, "l%ux%d", r, i);
  char *a[] = {"--count",          count_s,        "--rate",       rate_s,
               "--keys",           "64",           "--value-size", "1..1024",
               "--seed",           seed_s,         "--name",       name_s,
               "--tolerate-reset", "--check-state"};
  int64_t w =
      spawn_waitable(m, "kvsload", a, sizeof a / sizeof a[0], "load", NULL);
  if (w < 0)
    fail("load", "spawn kvsload %s: %s", name_s, m->error);
  return w;
}

/* One round of loads, all waited for.  False if one could not start. */
static bool load_round(mach_client *m, unsigned r) {
  int64_t w[LOADS_MAX];
  bool started = true;
  for (int i = 0; i < C.loads; i++)
    started &= (w[i] = load_start(m, r, i)) >= 0;
  for (int i = 0; i < C.loads; i++) {
    if (w[i] < 0)
      continue;
    count(C_LOADS, 1);
    int st = wait_status(m, w[i]);
    if (st == 0)
      count(C_LOADS_OK, 1);
    else if (st < 0)
      fail("load", "kvsload l%ux%d: no exit status: %s", r, i, err_text(m, st));
    else
      fail("load", "kvsload l%ux%d exited %d (its messages are above)", r, i,
           st);
  }
  count(C_ROUNDS, 1);
  return started;
}

/* Rounds of loads until the end (the last one ends after it). */
static void load_rounds(uint64_t *x) {
  (void)x;
  mach_client m;
  if (!client_open(&m, "load"))
    return;
  for (unsigned r = 0; !over(); r++)
    if (!load_round(&m, r))
      nap(500); /* not a tight loop of failures */
  mach_close(&m);
}

/* Descriptors -----------------------------------------------------------------
 */

static int count_fds(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
  DIR *d = opendir(path);
  int n = 0;
  if (d == NULL)
    return -1;
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

/* Descriptors of the machine and the kernel beyond one per live ICA (each
 * keeps one per ICA: physical memory). */
struct fds {
  int machine, kernel;
};

static int fds_now(mach_client *m, struct fds *f) {
  const struct uk_kdata *kd;
  Uksim__Reply *info;
  int r = mach_kdata(m, &kd, &info);
  if (r < 0)
    return r;
  int live = 0;
  for (int i = 0; i < UK_ICA_MAX; i++)
    live += kd->ica[i].state == UK_ICA_LIVE;
  f->machine = count_fds(machine_pid) - (int)info->icas_live;
  f->kernel = count_fds(kd->hdr.kernel_pid) - live;
  mach_kdata_unmap(kd);
  uksim__reply__free_unpacked(info, NULL);
  return 0;
}

/* Compares with the quiet moment after boot, for a while: closing what
 * departed clients and processes left is asynchronous. */
static void check_fds(mach_client *m, const struct fds *early) {
  struct fds f = {0, 0};
  for (int i = 0; i < 50 * (int)C.slow; i++) {
    if (fds_now(m, &f) < 0)
      break;
    if (f.machine == early->machine && f.kernel == early->kernel) {
      fprintf(stderr,
              "chaos: descriptors beyond one per ICA: machine %d, "
              "kernel %d, as after boot\n",
              f.machine, f.kernel);
      return;
    }
    usleep(100 * 1000);
  }
  fail("end",
       "descriptors beyond one per ICA: machine %d, kernel %d; "
       "after boot: %d and %d",
       f.machine, f.kernel, early->machine, early->kernel);
}

/* The machine and its end
 * ------------------------------------------------------
 */

static void boot(mach_client *m) {
  struct mach_opts o;
  mach_opts_default(&o);
  snprintf(o.name, sizeof o.name, "chaos-%d", (int)getpid());
  snprintf(mname, sizeof mname, "%s", o.name);
  snprintf(o.trace_file, sizeof o.trace_file, "%s/%s.jsonl",
           getenv("UKSIM_BUILD_ROOT") ? getenv("UKSIM_BUILD_ROOT") : "/tmp",
           o.name);
  snprintf(trace_path, sizeof trace_path, "%s", o.trace_file);
  cr_assert_eq(mach_boot(m, &o), 0, "seed %llu: boot: %s",
               (unsigned long long)C.seed, m->error);
  machine_pid = m->pid;
  struct timeval tv = {.tv_sec = ANSWER_S * C.slow};
  setsockopt(m->sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct mach_prog kvs = {.program = "kvs",
                          .name = "kvs",
                          .flags = MACH_SPAWN_REGISTERED,
                          .restart = true};
  cr_assert_eq(mach_spawn_prog(m, &kvs, NULL), 0, "seed %llu: start kvs: %s",
               (unsigned long long)C.seed, m->error);
}

/* Watches the machine while the threads work: if it dies, that is the
 * failure to report (its status says how), and the run stops. */
static void watch(mach_client *owner) {
  while (!over()) {
    int st;
    usleep(100 * 1000);
    if (waitpid(machine_pid, &st, WNOHANG) != machine_pid)
      continue;
    owner->pid = 0; /* reaped here: mach_close must not wait for it */
    atomic_store(&stop, true);
    fail("machine", "the machine died: %s %d",
         WIFSIGNALED(st) ? "signal" : "exit status",
         WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
  }
  atomic_store(&stop, true);
}

/* What each thread does: an action at seeded random gaps (ms) until the
 * end, each thread on its own stream of the seed. */
struct role {
  const char *name;
  void (*act)(uint64_t *x);
  unsigned gap_lo, gap_hi; /* 0, 0: act once (it loops itself) */
};

static const struct role roles[] = {
    {"load", load_rounds, 0, 0},          {"query", query_session, 0, 150},
    {"replace", replace_once, 200, 2500}, {"crash", crash_once, 700, 3000},
    {"flood", flood_once, 1500, 5000},    {"ghost", ghost_once, 50, 800},
    {"hostile", hostile_once, 300, 3000},
};

struct team {
  pthread_t t[32];
  const struct role *role[32];
  unsigned copy[32];
  int n;
};

static struct team tm;

static void *actor(void *arg) {
  int i = (int)(uintptr_t)arg;
  const struct role *r = tm.role[i];
  uint64_t x = stream((unsigned)(r - roles), tm.copy[i]);
  if (r->gap_hi == 0)
    r->act(&x);
  while (r->gap_hi > 0 && nap(between(&x, r->gap_lo, r->gap_hi)))
    r->act(&x);
  return NULL;
}

/* Starts the copies of every role (UKSIM_CHAOS_SKIP leaves some out). */
static void start_all(void) {
  int n[] = {1, C.queriers, C.replacers, 1, 1, 1, 1};
  for (size_t r = 0; r < sizeof roles / sizeof roles[0]; r++)
    for (int i = 0; i < copies(roles[r].name, n[r]); i++) {
      cr_assert_lt(tm.n, 32);
      tm.role[tm.n] = &roles[r];
      tm.copy[tm.n] = (unsigned)i;
      cr_assert_eq(
          pthread_create(&tm.t[tm.n], NULL, actor, (void *)(uintptr_t)tm.n), 0);
      tm.n++;
    }
}

/* Joins every thread; one that is still stuck in a call past its own
 * answer timeout is a failure (it dies with the test).  True if all
 * ended. */
static bool finish(void) {
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += (ANSWER_S + 30) * C.slow;
  bool all = true;
  for (int i = 0; i < tm.n; i++)
    if (pthread_timedjoin_np(tm.t[i], NULL, &dl) != 0) {
      fail("end", "the %s thread is stuck: the machine stopped answering",
           tm.role[i]->name);
      all = false;
    }
  return all;
}

/* A fresh client must be able to connect, read the tables and halt the
 * machine, with no ICA left.  True when the machine then exited 0. */
static bool halt_by_fresh_client(mach_client *owner) {
  mach_client f;
  uint32_t live = 99;
  char why[160];
  if (!client_open(&f, "end"))
    return false;
  int r = query(&f, why, sizeof why);
  if (r != 0)
    fail("end", "a fresh client reads no kernel data: %s (%s%s)", strerror(-r),
         f.error, why);
  if ((r = mach_halt(&f, &live)) != 0)
    fail("end", "halt: %s", f.error);
  else if (live != 0)
    fail("end", "%u ICAs live at the halt", live);
  mach_close(&f);
  int st = 0;
  for (int i = 0; i < 200 * (int)C.slow; i++) {
    if (waitpid(machine_pid, &st, WNOHANG) == machine_pid) {
      owner->pid = 0;
      if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return true;
      fail("end", "the machine ended with status %#x after the halt", st);
      return false;
    }
    usleep(50 * 1000);
  }
  fail("end", "the machine did not exit after the halt");
  return false;
}

/* Requests the loads sent and results they got, from the trace. */
static void load_answers(unsigned long *sends, unsigned long *results) {
  FILE *f = fopen(trace_path, "r");
  char *line = NULL;
  size_t cap = 0;
  *sends = *results = 0;
  if (f == NULL)
    return;
  while (getline(&line, &cap, f) > 0) {
    if (strstr(line, "\"actor\":\"load\"") == NULL)
      continue;
    *sends += strstr(line, "\"ev\":\"send\"") != NULL;
    *results += strstr(line, "\"ev\":\"result\"") != NULL;
  }
  free(line);
  fclose(f);
}

static void check_trace(unsigned long *answered) {
  struct trace_stats st;
  char err[512];
  unsigned long sends;
  if (trace_check(trace_path, &st, err, sizeof err) != 0) {
    fail("end", "exactly-one-answer: %s (trace kept: %s)", err, trace_path);
    return;
  }
  load_answers(&sends, answered);
  if (sends != *answered)
    fail("end", "the loads sent %lu requests and got %lu results", sends,
         *answered);
  fprintf(stderr,
          "chaos: trace: %llu requests, %llu results, %llu errors, %llu "
          "dropped with their client\n",
          (unsigned long long)st.requests, (unsigned long long)st.results,
          (unsigned long long)st.errors, (unsigned long long)st.dropped);
}

#define N(c) atomic_load(&ctr[c])

static void print_counts(unsigned long answered) {
  fprintf(stderr,
          "chaos: seed %llu, %u s: %lu control clients connected (%lu "
          "refused for room); %lu kernel-data queries; replacements %lu "
          "attempted, %lu succeeded (%lu busy, %lu failed by a crash, %lu "
          "timed out, %lu downgrades refused); %lu crashes of kvs (%lu kills "
          "missed, %lu skipped while kvs was not serving); %lu floods (%lu "
          "requests never read, %lu stalled clients dropped); %lu ghost "
          "clients; %lu hostile processes (%lu contained as documented; %lu "
          "bystander probes while one held its take, %lu too late); %lu load "
          "rounds, %lu kvsload processes (%lu exited 0); %lu load requests "
          "answered\n",
          (unsigned long long)C.seed, C.seconds, N(C_CONNECTS), N(C_ROOM),
          N(C_QUERIES), N(C_REP_TRIED), N(C_REP_OK), N(C_REP_BUSY),
          N(C_REP_RESET), N(C_REP_TIMEOUT), N(C_REP_DOWNGRADE), N(C_CRASHES),
          N(C_CRASH_MISSED), N(C_CRASH_SKIPPED), N(C_FLOODS), N(C_FLOOD_MSGS),
          N(C_STALL_DROPPED), N(C_GHOSTS), N(C_HOSTILES), N(C_CONTAINED),
          N(C_PROBES), N(C_PROBES_LATE), N(C_ROUNDS), N(C_LOADS), N(C_LOADS_OK),
          answered);
}

Test(chaos, the_machine_does_not_fall_over, .timeout = 900) {
  mach_client owner;
  struct fds early;
  unsigned long answered = 0;

  cfg_load();
  signal(SIGPIPE, SIG_IGN);
  fprintf(stderr,
          "chaos: seed %llu, %u s (UKSIM_SEED=%llu repeats the "
          "schedule), %d loads, %d query clients, %d replacers\n",
          (unsigned long long)C.seed, C.seconds, (unsigned long long)C.seed,
          C.loads, C.queriers, C.replacers);
  boot(&owner);
  cr_assert_eq(await_serving(&owner, "boot", UK_NIL), 0);
  cr_assert_eq(fds_now(&owner, &early), 0, "seed %llu: %s",
               (unsigned long long)C.seed, owner.error);

  t0_ns = now_ns();
  end_ns = t0_ns + (uint64_t)C.seconds * 1000000000ull;
  start_all();
  watch(&owner);
  if (!finish())
    owner.pid = 0; /* no end checks on a machine that does not answer */

  if (owner.pid > 0 && await_serving(&owner, "end", UK_NIL) == 0)
    check_fds(&owner, &early);
  bool halted = owner.pid > 0 && halt_by_fresh_client(&owner);
  mach_close(&owner);
  if (halted) /* a trace cut short by a dying machine proves nothing */
    check_trace(&answered);
  print_counts(answered);
  if (atomic_load(&consequences))
    fprintf(stderr, "chaos: %lu more failures followed the machine's death\n",
            atomic_load(&consequences));
  cr_assert_eq(nfail, 0,
               "seed %llu: %u failures (UKSIM_SEED=%llu to "
               "repeat):\n%s",
               (unsigned long long)C.seed, nfail, (unsigned long long)C.seed,
               failures);
  unlink(trace_path);
}
