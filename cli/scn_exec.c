/* The scenario executor: the kernel runs a scenario (scenarios/README.md)
 * under the lock-step scheduler (sched.c), so that its actions happen at
 * exact steps and the run is the same for the same seed.
 *
 * The run, in order:
 *   1. the servers are spawned, in file order, at virtual time 0;
 *   2. once every one has registered (or is gone), the applications whose
 *      start time has come are spawned; the others at their --start time;
 *   3. `at` actions run when the virtual clock reaches their time, `on`
 *      actions right after the step whose trace event fired them;
 *   4. when every application has exited, every `at` action has run and
 *      no replacement is in progress, the final state is dumped: for each
 *      service with an expectation `state S equals "FILE"`, one more
 *      application, `kvsload --service S --dump DIR/S.dump`, named
 *      S.dump, if S is up (else an `action` event says why there is no
 *      dump).  From then on no action fires: the dump only looks;
 *   5. the run is over when the dumpers have exited too.  Then the kernel
 *      stops stepping and answers ScenarioWait; the runner (cmd_run.c)
 *      halts the machine and checks the expectations on the trace.
 * The dumpers' requests are in the trace like any application's, in
 * lock-step, so they do not make a run less deterministic; the directory
 * they write to is the runner's (--dump-dir) and is never traced.
 * A run that cannot go on (a deadlock, the step or virtual-time limit)
 * is over too, with an error naming the step and the time.
 *
 * A declared server or app that cannot start (its program is missing, the
 * process table is full; a server that exits with a status before it
 * registers, as when its program refuses its arguments) ends the run at
 * once with an error naming it and why: the run could not run what the
 * scenario declares.  The parser has already refused a scenario that
 * needs more than the kernel's tables hold (scenarios/scn_count.c).
 *
 * Every process gets its instance name: a server's first instance is the
 * server's name, the kernel names later ones NAME.2, NAME.3 ...
 *
 * Namespaces (scenarios/README.md "Namespaces"): the group of each
 * declared process that the scenario names (an app's --ns source, a
 * bind, mount or unmount, an `expect file`) is held from that process's
 * spawn to the end of the run (scn_ns.h), so it outlives the process.  A
 * namespace action runs as a helper process, `nscmd` (apps/nscmd.c)
 * sharing the group, named PROC@LINE: its calls are ordinary namespace
 * calls in lock-step (a mount's 9P to the server included), and its exit
 * is traced as an `action` event saying done or failed and why.  Each
 * `expect file` starts such a reader when the dumpers start (step 4),
 * which writes what it read to DIR/read-LINE.out for the evaluator.  The
 * run is not over while a helper runs; when the rest is over, the held
 * groups are let go (their mounts' clunks sent) before the run ends.
 *
 * Across a failover (Orthros, issue 14; scenarios/README.md "Orthros").
 * The executor runs in the active kernel, which a scenario's `fault
 * kernel` kills.  Every kernel of the machine boots with the scenario
 * (machine.c): in a backup the executor is DORMANT (parsed, ranges picked
 * in silence, nothing started); when its kernel takes over (ops->resume,
 * after kern__failover) it RESUMES and goes on as the active's did:
 *
 *   ACTIVE --fault kernel (journal first), or the kernel dies--> gone
 *   DORMANT (backup) --resume--> ACTIVE (reads the journal, then runs)
 *
 * What it goes on from, never from the dead kernel's executor:
 *   - the journal, DIR/exec.journal in the runner's directory: the run's
 *     start on the monotonic clock (free-running time goes on from it),
 *     which actions have fired and which apps were spawned.  It is the
 *     experimenter's notebook, not the OS's: a fault of the OS under test
 *     must not take the experiment's record with it, so it lives outside
 *     the machine (pwrite, no buffer: a SIGKILL loses nothing).  An action
 *     is journaled before it runs, so a fault kernel action that kills
 *     this kernel is not run again by the next;
 *   - the adopted process table: a declared app that was spawned is
 *     found by its name (it moved, protected) or is done (it ended with
 *     its OS, or exited before);
 * and each kernel writes its own trace file (trace, trace.os2 ...), which
 * the runner joins, with every event flushed as it is written so that a
 * killed kernel's last events are in its file.  A run with a backup is
 * free-running (a heartbeat is real time): its expectations must be exact
 * (answers, files, counts), never timing.
 *
 * Process migration (scn_exec_mig.h): a scenario's tasks run outside the
 * machine, under the nodes' migration servers the runner started.  They
 * are started before the servers; migrate and input actions and, when the
 * rest is over, a census of where they run are control commands to those
 * servers, one at a time, during which a lock-step kernel takes no step. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kern.h"
#include "scn.h"
#include "scn_eval.h"
#include "scn_exec.h"
#include "kkeep.h"
#include "scn_exec_mig.h"
#include "scn_journal.h"
#include "scn_ns.h"
#include "uksim/interos.h"
#include "uksim/kvs.h"
#include "uksim/xalloc.h"

#define EXEC_STEPS_MAX 50000000ull             /* then the run is stopped */
#define EXEC_TIME_MAX_NS (600ull * 1000000000) /* virtual */
#define EXEC_GRACE_MS 2000                     /* default wall-clock grace */
#define EXEC_ARGS_MAX 48
#define EXEC_APP_ARGS 18   /* the most start_app passes before --args */
#define EXEC_SERVER_ARGS 6 /* ... and server_args */
/* A fault of the active kernel waits until the machine's backup has been
 * up this long (and the runner's boot has been confirmed): a backup just
 * booted may not watch yet, and an active that dies with no backup ends
 * the machine.  Checked every EXEC_BACKUP_POLL_MS. */
#define EXEC_BACKUP_SETTLE_MS 200
#define EXEC_BACKUP_POLL_MS 10

/* What the parser lets through, the kernel can hold (scn.h). */
_Static_assert(SCN_SERVERS_MAX <= UK_SVC_MAX, "servers fit the services");
_Static_assert(SCN_PROCS_MAX < UK_PROC_MAX, "processes fit the table");
_Static_assert(SCN_SERVER_NAME_MAX <= KABI_NAME_MAX - 12,
               "instance names (replace.c) keep a server's whole name");
_Static_assert(SCN_NAME_MAX < KABI_NAME_MAX, "names fit the kernel's");
_Static_assert(SCN_VALUE_MAX == KVS_VALUE_MAX, "kvsload's largest value");
_Static_assert(EXEC_APP_ARGS + SCN_ARGS_WORDS_MAX <= EXEC_ARGS_MAX &&
                   EXEC_SERVER_ARGS + 2 * SCN_ARGS_WORDS_MAX <= EXEC_ARGS_MAX,
               "--args always fit an argv_buf");
_Static_assert(EXEC_TIME_MAX_NS <= SCN_TIME_MAX_NS, "the run's limit");
_Static_assert(SCN_PATH_MAX == UK_PATH_MAX, "a scenario's paths fit namec");

/* A running helper: a namespace action's nscmd or an `expect file`
 * reader (one per statement: the line tells them apart). */
struct helper {
  char name[KABI_NAME_MAX];     /* PROC@LINE */
  const struct scn_action *act; /* the action, or NULL for a reader */
  const struct scn_expect *exp; /* the expectation read for */
  bool running;                 /* spawned, not yet exited */
  bool report;                  /* exited: its outcome is still to be traced */
  int status;                   /* its exit status */
  bool signalled;               /* it was killed */
};

struct scn_exec {
  struct scn *s;
  uint64_t seed;
  bool servers_ready;
  int32_t *app_proc; /* slot, -1 before its spawn, -2 when it could not */
  bool *app_done;
  uint64_t *trig_count; /* per action: matching events so far */
  bool *fired;          /* per action */
  size_t *queue;        /* `on` actions fired, to run after the step */
  size_t nqueue;
  struct ktimer at_timer, start_timer;
  bool done;
  int status;
  char why[256];
  bool wait_pending;
  uint64_t wait_id;
  bool *registered;   /* per server: its first instance registered */
  char failure[256];  /* a declared process could not start: why */
  char dump_dir[256]; /* where dumpers write SERVICE.dump; "" for none */
  bool dumping;       /* the dumpers are started: actions fire no more */
  bool *dump_done;    /* per expectation: its dumper exited, or none runs */
  struct scn_ns_hold *hold; /* per declared process: servers, then apps */
  bool *need_hold;          /* ... whose group the scenario names */
  struct helper *helper;    /* one per namespace action and expect file */
  size_t nhelper;
  bool released; /* the held groups are let go: the run may end */
  bool dormant;  /* in a backup kernel, until it takes over */
  const struct scn_action *deferred; /* a fault kernel waiting for the backup */
  struct ktimer fault_timer;
  uint32_t backup_os;    /* the backup seen booted, 0 none */
  uint64_t backup_since; /* since when (the host's clock) */
  int journal;           /* DIR/exec.journal, or -1 */
  uint64_t t0_ns;      /* the run's start (the monotonic clock, free-running) */
  struct scn_mig *mig; /* the tasks' migrations, NULL: the scenario has none */
};

/* Time since the run began: virtual under lock-step, wall-clock free
 * (after a failover, from the first kernel's start: the journal's). */
static uint64_t run_ns(const struct kern *k) {
  const struct scn_exec *x = k->exec;
  return kern__now_ns() - x->t0_ns;
}

/* The journal (Orthros) -------------------------------------------------- */

/* The journal's bytes: the head, then the flags. */
static size_t journal_fill(const struct scn_exec *x, uint8_t *buf) {
  struct scn_journal_head h = {SCN_JOURNAL_MAGIC, x->t0_ns,
                               (uint32_t)x->s->nactions, (uint32_t)x->s->napps};
  size_t n = sizeof h;
  memcpy(buf, &h, sizeof h);
  for (size_t i = 0; i < x->s->nactions; i++)
    buf[n++] = x->fired[i];
  for (size_t i = 0; i < x->s->napps; i++)
    buf[n++] = x->app_proc[i] != -1;
  return n;
}

static size_t journal_size(const struct scn *s) {
  return sizeof(struct scn_journal_head) + s->nactions + s->napps;
}

/* Writes the journal whole (it is small): before an action runs and after
 * an app is spawned. */
static void journal_write(struct kern *k) {
  struct scn_exec *x = k->exec;
  if (x->journal < 0)
    return;
  uint8_t *buf = xcalloc(1, journal_size(x->s));
  size_t n = journal_fill(x, buf);
  if (pwrite(x->journal, buf, n, 0) != (ssize_t)n)
    kern__trace(k, "scenario: the journal cannot be written: %m");
  free(buf);
}

/* Opens DIR/exec.journal (made by the first kernel, read by the next).
 * Without a directory there is no journal: a failover then cannot go on. */
static void journal_open(struct scn_exec *x, bool create) {
  char path[512];
  x->journal = -1;
  if (x->dump_dir[0] == '\0')
    return;
  snprintf(path, sizeof path, "%s/" SCN_JOURNAL_NAME, x->dump_dir);
  x->journal =
      open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_TRUNC : 0), 0600);
}

/* Reads the journal into x: 0, or -1 if it is missing or not this
 * scenario's. */
static int journal_read(struct scn_exec *x, bool *spawned) {
  size_t len = journal_size(x->s);
  uint8_t *buf = xcalloc(1, len);
  struct scn_journal_head h;
  int r = -1;
  if (x->journal >= 0 && pread(x->journal, buf, len, 0) == (ssize_t)len) {
    memcpy(&h, buf, sizeof h);
    if (h.magic == SCN_JOURNAL_MAGIC && h.nactions == x->s->nactions &&
        h.napps == x->s->napps) {
      x->t0_ns = h.t0_ns;
      for (size_t i = 0; i < x->s->nactions; i++)
        x->fired[i] = buf[sizeof h + i] != 0;
      for (size_t i = 0; i < x->s->napps; i++)
        spawned[i] = buf[sizeof h + x->s->nactions + i] != 0;
      r = 0;
    }
  }
  free(buf);
  return r;
}

/* Kernel faults (Orthros) ---------------------------------------------------
 */

/* Whether process pid is a backup kernel of this machine: a child of the
 * machine (our parent) started with --role backup. */
static bool is_backup_kernel(pid_t pid) {
  char path[64], args[4096];
  snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  ssize_t n = fd < 0 ? -1 : read(fd, args, sizeof args - 1);
  if (fd >= 0)
    close(fd);
  if (n <= 0)
    return false;
  args[n] = '\0'; /* the words are NUL-separated; the last is ended here */
  for (ssize_t i = 0; i + 7 < n; i += (ssize_t)strlen(args + i) + 1)
    if (!strcmp(args + i, "--role") && !strcmp(args + i + 7, "backup"))
      return true;
  return false;
}

/* The pid of the machine's backup kernel (a sibling of this one), or -1.
 * The experimenter pulls its plug: no OS is told. */
static pid_t backup_kernel(void) {
  DIR *d = opendir("/proc");
  struct dirent *e;
  pid_t found = -1, machine = getppid();
  while (d != NULL && found < 0 && (e = readdir(d)) != NULL) {
    char path[300], stat[512];
    pid_t pid = (pid_t)atoi(e->d_name), ppid = 0;
    if (pid <= 0 || pid == getpid())
      continue;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    const char *rp = f && fgets(stat, sizeof stat, f) ? strrchr(stat, ')') : 0;
    if (f)
      fclose(f);
    if (rp && sscanf(rp + 1, " %*c %d", &ppid) == 1 && ppid == machine &&
        is_backup_kernel(pid))
      found = pid;
  }
  if (d)
    closedir(d);
  return found;
}

/* Whether the machine's backup has been up EXEC_BACKUP_SETTLE_MS, as this
 * kernel sees the inter-OS region's roles: from when it was first seen
 * here (at every trace event, and when a fault asks). */
static bool backup_ready(struct kern *k) {
  struct scn_exec *x = k->exec;
  const struct uk_interos *io = k->os.io;
  uint32_t b = io ? __atomic_load_n(&io->backup_os, __ATOMIC_ACQUIRE) : 0;
  uint64_t now = uv_hrtime();
  if (b != x->backup_os) {
    x->backup_os = b;
    x->backup_since = now;
  }
  return b != 0 && now - x->backup_since >= EXEC_BACKUP_SETTLE_MS * 1000000ull;
}

/* The fault stamp of the inter-OS region, as `uksim fault kernel` leaves
 * it through the machine: the backup measures its detection from it
 * (os-dead's "ms after the fault"). */
static void stamp_fault(struct kern *k, enum scn_fault_kind kind) {
  struct uk_interos *io = k->os.io;
  if (io == NULL)
    return;
  io->fault_os = k->os.id;
  io->fault_kind = kind == SCN_FAULT_PANIC      ? UK_FAULT_PANIC
                   : kind == SCN_FAULT_HANG     ? UK_FAULT_HANG
                   : kind == SCN_FAULT_DEADLOCK ? UK_FAULT_DEADLOCK
                   : kind == SCN_FAULT_RUNAWAY  ? UK_FAULT_RUNAWAY
                   : kind == SCN_FAULT_STALL    ? UK_FAULT_STALL_DRIVER
                                                : UK_FAULT_CRASH;
  __atomic_store_n(&io->fault_ns, uv_hrtime(), __ATOMIC_RELEASE);
}

static void do_os_fault(struct kern *k, const struct scn_action *a);

static void on_fault_timer(struct kern *k, struct ktimer *t) {
  struct scn_exec *x = k->exec;
  const struct scn_action *a = x->deferred;
  (void)t;
  x->deferred = NULL;
  if (a != NULL)
    do_os_fault(k, a);
}

/* fault kernel panic|hang|crash, fault backup crash.  The action is in the
 * journal and its event flushed: the next active must not run it again.
 * A fault of the active waits for a settled backup (backup_ready). */
static void do_os_fault(struct kern *k, const struct scn_action *a) {
  struct scn_exec *x = k->exec;
  if (strcmp(a->target, "kernel") == 0 && !backup_ready(k)) {
    x->deferred = a;
    kern__timer_start(k, &x->fault_timer, EXEC_BACKUP_POLL_MS * 1000000ull, 0);
    return;
  }
  char text[96];
  bool backup = !strcmp(a->target, "backup");
  pid_t pid = backup ? backup_kernel() : getpid();
  if (a->kind == SCN_ACT_KUPDATE)
    snprintf(text, sizeof text, "kupdate%s", a->kreplay ? " replay" : "");
  else
    snprintf(text, sizeof text, "fault %s %s%s", a->target,
             scn_fault_kind_name(a->kfault),
             pid < 0 ? ": no backup runs (nothing done)" : "");
  kern__event(
      k, &(struct kern_ev){.ev = "action", .peer = a->target, .text = text});
  if (k->events)
    fflush(k->events);
  if (pid < 0)
    return;
  if (a->kind == SCN_ACT_KUPDATE) {
    kern_kupdate_by(k, a->kreplay); /* the machine stops this kernel */
    return;
  }
  if (!backup)
    stamp_fault(k, a->kfault);
  if (backup)
    kill(pid, SIGKILL);
  else if (a->kfault == SCN_FAULT_PANIC)
    kern_panic(k, "panic (scenario action)");
  else if (a->kfault == SCN_FAULT_HANG)
    kern_hang(k);
  else if (a->kfault == SCN_FAULT_DEADLOCK)
    kern__fault(k, UKSIM__FAULT__KIND__DEADLOCK, a->klock);
  else if (a->kfault == SCN_FAULT_RUNAWAY)
    kern__fault(k, UKSIM__FAULT__KIND__RUNAWAY, "");
  else if (a->kfault == SCN_FAULT_STALL)
    kern__fault(k, UKSIM__FAULT__KIND__STALL_DRIVER, "");
  else
    raise(SIGKILL);
}

/* Spawning ------------------------------------------------------------- */

struct argv_buf {
  char *v[EXEC_ARGS_MAX];
  char store[EXEC_ARGS_MAX][SCN_TEXT_MAX + 1];
  size_t n;
};

static void arg_add(struct argv_buf *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void arg_add(struct argv_buf *a, const char *fmt, ...) {
  if (a->n == EXEC_ARGS_MAX)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(a->store[a->n], sizeof a->store[a->n], fmt, ap);
  va_end(ap);
  a->v[a->n] = a->store[a->n];
  a->n++;
}

/* --args "..." split at spaces. */
static void args_split(struct argv_buf *a, const char *text) {
  char tmp[SCN_TEXT_MAX + 1];
  snprintf(tmp, sizeof tmp, "%s", text);
  for (char *save, *w = strtok_r(tmp, " ", &save); w;
       w = strtok_r(NULL, " ", &save))
    arg_add(a, "%s", w);
}

/* UKSIM_FAULT=... for a fault plan (lib/fault.h), or "" for none. */
static void fault_env(char *out, size_t len, const struct scn_fault *f,
                      unsigned n) {
  size_t o = 0;
  out[0] = '\0';
  for (unsigned i = 0; i < n && o < len; i++) {
    o += (size_t)snprintf(
        out + o, len - o, "%s%s%s@%s", i ? "," : "",
        i ? "" : "UKSIM_FAULT=", scn_fault_kind_name(f[i].kind),
        scn_fault_point_name(f[i].point));
    if (f[i].point == SCN_AT_REQUEST && o < len)
      o += (size_t)snprintf(out + o, len - o, ":%" PRIu64, f[i].n);
  }
}

/* The arguments a server running binary gets from its declaration: a 9P
 * file server its service's name, the kvs family its state method,
 * service and cache (scn_family_of). */
static void server_args(struct argv_buf *a, const struct scn_server *sv,
                        const char *binary, enum scn_state state) {
  if (scn_family_of(binary) == SCN_FAM_9P) {
    arg_add(a, "--name");
    arg_add(a, "%s", sv->name);
    args_split(a, sv->args);
    return;
  }
  arg_add(a, "--state");
  arg_add(a, "%s", scn_state_name(state ? state : sv->state));
  if (strcmp(sv->name, "kvs") != 0) {
    arg_add(a, "--service");
    arg_add(a, "%s", sv->name);
  }
  if (sv->hold > 1) {
    arg_add(a, "--cache");
    arg_add(a, "%u", sv->hold);
  }
  args_split(a, sv->args);
}

/* Spawns binary as process `name`; the slot, or -1 with *why set (and
 * traced). */
static int spawn(struct kern *k, const char *binary, const char *name,
                 struct argv_buf *a, const char *env, char *why, size_t len) {
  char file[4096];
  struct kern_prog prog;
  const char *err = "";
  char *envv[1] = {(char *)env};
  int p = -1;
  if (kern__find_program(binary, file, sizeof file) < 0)
    snprintf(why, len, "program %s not found", binary);
  else {
    kern__prog_make(&prog, file, a->v, a->n, envv, env[0] ? 1 : 0);
    if ((p = kern__spawn(k, name, &prog, &err)) < 0)
      snprintf(why, len, "%s", err);
  }
  if (p < 0)
    kern__trace(k, "scenario: cannot start %s: %s", name, why);
  return p;
}

/* A declared server or app could not start: the run fails at the next
 * point where the executor may end it (check_failure), with the first
 * such reason. */
static void start_failed(struct kern *k, const char *what, const char *name,
                         const char *why) {
  struct scn_exec *x = k->exec;
  if (x->failure[0] == '\0')
    snprintf(x->failure, sizeof x->failure, "%s %s could not start: %s", what,
             name, why);
}

/* Namespaces --------------------------------------------------------------- */

/* The index of declared process name in x->hold (servers, then apps), or
 * -1. */
static int decl_index(const struct scn *s, const char *name) {
  for (size_t i = 0; i < s->nservers; i++)
    if (!strcmp(s->servers[i].name, name))
      return (int)i;
  for (size_t i = 0; i < s->napps; i++)
    if (!strcmp(s->apps[i].name, name))
      return (int)(s->nservers + i);
  return -1;
}

/* The group held for declared process name: never NULL, maybe not held. */
static struct scn_ns_hold *hold_of(struct scn_exec *x, const char *name) {
  static struct scn_ns_hold none;
  int i = decl_index(x->s, name);
  return i < 0 ? &none : &x->hold[i];
}

/* Declared process i was spawned as p: holds its group if the scenario
 * names it. */
static void hold_ns(struct kern *k, size_t i, uint32_t p) {
  struct scn_exec *x = k->exec;
  if (x->need_hold[i] && scn_ns_hold(k, p, &x->hold[i]) < 0)
    kern__trace(k, "scenario: process %u has no namespace to hold", p);
}

/* Marks the declared processes whose groups the scenario names. */
static void find_holds(struct scn_exec *x) {
  const struct scn *s = x->s;
  int i;
  for (size_t a = 0; a < s->napps; a++)
    if (s->apps[a].ns.kind != SCN_NS_FRESH &&
        (i = decl_index(s, s->apps[a].ns.from)) >= 0)
      x->need_hold[i] = true;
  for (size_t a = 0; a < s->nactions; a++)
    if (scn_action_is_ns(s->actions[a].kind) &&
        (i = decl_index(s, s->actions[a].target)) >= 0)
      x->need_hold[i] = true;
  for (size_t e = 0; e < s->nexpects; e++)
    if (s->expects[e].kind == SCN_EXP_FILE &&
        (i = decl_index(s, s->expects[e].proc)) >= 0)
      x->need_hold[i] = true;
}

/* Lets every held group go (the run's last act).  True if any was held. */
static bool release_holds(struct kern *k) {
  struct scn_exec *x = k->exec;
  bool any = false;
  for (size_t i = 0; i < x->s->nservers + x->s->napps; i++) {
    any |= x->hold[i].held;
    scn_ns_drop(k, &x->hold[i]);
  }
  return any;
}

static void start_servers(struct kern *k) {
  struct scn *s = ((struct scn_exec *)k->exec)->s;
  for (size_t i = 0; i < s->nservers; i++) {
    const struct scn_server *sv = &s->servers[i];
    struct argv_buf a = {.n = 0};
    char env[SCN_TEXT_MAX + 32];
    char why[128];
    server_args(&a, sv, sv->binary, SCN_STATE_UNSET);
    fault_env(env, sizeof env, sv->faults, sv->nfaults);
    int p = spawn(k, sv->binary, sv->name, &a, env, why, sizeof why);
    if (p < 0) {
      start_failed(k, "server", sv->name, why);
      continue;
    }
    hold_ns(k, i, (uint32_t)p);
    k->proc[p].pol = (struct kern_policy){
        .restart = sv->restart != SCN_RESTART_NEVER,
        .restart_max = sv->restart == SCN_RESTART_LIMIT ? sv->restarts : 0,
        .deadline_ms = (uint32_t)((sv->deadline_ns + 999999) / 1000000),
        .heartbeat_ms = (uint32_t)((sv->heartbeat_ns + 999999) / 1000000)};
  }
}

/* Every server has registered, or is gone. */
static bool servers_ready(struct kern *k) {
  struct scn *s = ((struct scn_exec *)k->exec)->s;
  for (size_t i = 0; i < s->nservers; i++)
    for (uint32_t p = 0; p < UK_PROC_MAX; p++)
      if (kd_proc(k, p)->state != UK_PROC_FREE &&
          kd_proc(k, p)->state != UK_PROC_EXITED &&
          !strcmp(kd_proc(k, p)->name, s->servers[i].name) &&
          kd_proc(k, p)->svc == UK_NIL)
        return false;
  return true;
}

static bool checks_state(const struct scn *s, const char *service) {
  for (size_t i = 0; i < s->nexpects; i++)
    if (s->expects[i].kind == SCN_EXP_STATE && s->expects[i].model &&
        !strcmp(s->expects[i].service, service))
      return true;
  return false;
}

/* The workload options, which only kvsload takes. */
static void kvsload_args(struct scn_exec *x, size_t i, struct argv_buf *a) {
  const struct scn_app *ap = &x->s->apps[i];
  arg_add(a, "--name");
  arg_add(a, "%s", ap->name);
  arg_add(a, "--service");
  arg_add(a, "%s", ap->service);
  arg_add(a, "--count");
  arg_add(a, "%" PRIu64, ap->count);
  arg_add(a, "--keys");
  arg_add(a, "%" PRIu64, ap->keys);
  arg_add(a, "--value-size");
  if (ap->value_min == ap->value_max)
    arg_add(a, "%" PRIu64, ap->value_min);
  else
    arg_add(a, "%" PRIu64 "..%" PRIu64, ap->value_min, ap->value_max);
  arg_add(a, "--seed");
  arg_add(a, "%" PRIu64, ap->seed_set ? ap->seed : x->seed * 1000003u + i);
  arg_add(a, "--mix");
  arg_add(a, "%u:%u:%u", ap->mix[0], ap->mix[1], ap->mix[2]);
  if (ap->rate) {
    arg_add(a, "--rate");
    arg_add(a, "%" PRIu64, ap->rate);
  }
  arg_add(a, "--tolerate-reset"); /* errors are counted from the trace */
  if (checks_state(x->s, ap->service))
    arg_add(a, "--check-state");
}

/* App ap, just spawned as p, goes into the namespace its --ns asks for.
 * 0, or -1 with why (p is then ended). */
static int enter_app_ns(struct kern *k, const struct scn_app *ap, uint32_t p,
                        char *why, size_t len) {
  if (ap->ns.kind == SCN_NS_FRESH)
    return 0;
  int r = scn_ns_enter(k, p, hold_of(k->exec, ap->ns.from), ap->ns.kind);
  if (r == 0)
    return 0;
  snprintf(why, len, "no namespace of %s to take (%s)", ap->ns.from,
           r == -ESRCH ? "it did not start" : strerror(-r));
  kern__kill(k, p, SIGKILL, NULL);
  return -1;
}

static void start_app(struct kern *k, size_t i) {
  struct scn_exec *x = k->exec;
  const struct scn_app *ap = &x->s->apps[i];
  struct argv_buf a = {.n = 0};
  if (!strcmp(ap->binary, "kvsload"))
    kvsload_args(x, i, &a);
  args_split(&a, ap->args);
  char why[128];
  int p = spawn(k, ap->binary, ap->name, &a, "", why, sizeof why);
  if (p >= 0 && enter_app_ns(k, ap, (uint32_t)p, why, sizeof why) < 0)
    p = -1;
  if (p < 0)
    start_failed(k, "app", ap->name, why);
  else
    hold_ns(k, x->s->nservers + i, (uint32_t)p);
  if (p >= 0 && ap->protect) { /* chosen in advance to move (Orthros) */
    kd_proc(k, (uint32_t)p)->flags |= UK_PROC_F_PROTECT;
    kos_publish(k);
  }
  x->app_proc[i] = p < 0 ? -2 : p;
  x->app_done[i] = p < 0;
  journal_write(k);
}

/* Spawns the applications whose time has come; arms the timer for the
 * next one.  True if it spawned any. */
static bool start_apps(struct kern *k) {
  struct scn_exec *x = k->exec;
  uint64_t next = UINT64_MAX, now = run_ns(k);
  bool any = false;
  if (!x->servers_ready && !(x->servers_ready = servers_ready(k)))
    return false;
  for (size_t i = 0; i < x->s->napps; i++) {
    if (x->app_proc[i] != -1)
      continue;
    if (x->s->apps[i].start_ns <= now) {
      start_app(k, i);
      any = true;
    } else if (x->s->apps[i].start_ns < next) {
      next = x->s->apps[i].start_ns;
    }
  }
  if (next != UINT64_MAX && !x->start_timer.on)
    kern__timer_start(k, &x->start_timer, next - now, 0);
  return any;
}

static bool check_failure(struct kern *k);

static void on_start_timer(struct kern *k, struct ktimer *t) {
  (void)t;
  start_apps(k);
  check_failure(k);
}

/* Dumps ------------------------------------------------------------------ */

/* The dumper of service svc is process "SVC.dump" (the service's name cut
 * so that it fits): no scenario name holds a '.', so no app is named so. */
static void dumper_name(const char *svc, char *out, size_t len) {
  snprintf(out, len, "%.*s.dump", KABI_NAME_MAX - 1 - 5, svc);
}

/* Whether expectation i needs a dump: `state S equals "FILE"`, the first
 * such for S (one dump serves them all). */
static bool needs_dump(const struct scn *s, size_t i) {
  const struct scn_expect *x = &s->expects[i];
  if (x->kind != SCN_EXP_STATE || x->model)
    return false;
  for (size_t j = 0; j < i; j++)
    if (s->expects[j].kind == SCN_EXP_STATE && !s->expects[j].model &&
        !strcmp(s->expects[j].service, x->service))
      return false;
  return true;
}

/* Whether svc is up, served and not being replaced or restarted. */
static bool service_up(struct kern *k, const char *svc) {
  int s = kern_svc_lookup(k->kd, svc);
  return s >= 0 && k->kd->svc[s].state == UK_SVC_UP &&
         k->kd->svc[s].phase == UK_PH_SERVING && k->kd->svc[s].proc != UK_NIL;
}

static void dump_event(struct kern *k, const char *svc, const char *why) {
  char text[SCN_TEXT_MAX + 64];
  snprintf(text, sizeof text, "dump %s%s", svc, why);
  kern__event(k, &(struct kern_ev){.ev = "action", .peer = svc, .text = text});
}

/* Starts the dumper of svc; false if there is none to wait for (the
 * reason traced). */
static bool start_dumper(struct kern *k, const char *svc) {
  struct scn_exec *x = k->exec;
  struct argv_buf a = {.n = 0};
  char name[KABI_NAME_MAX];
  if (x->dump_dir[0] == '\0') {
    dump_event(k, svc, ": the runner gave no dump directory (no dump)");
    return false;
  }
  if (!service_up(k, svc)) {
    dump_event(k, svc, ": the service is down (no dump)");
    return false;
  }
  if (strlen(x->dump_dir) + strlen(svc) + 7 > SCN_TEXT_MAX) {
    kern__trace(k, "scenario: dump directory %s too long", x->dump_dir);
    dump_event(k, svc, ": the dump directory's name is too long (no dump)");
    return false;
  }
  dump_event(k, svc, "");
  dumper_name(svc, name, sizeof name);
  arg_add(&a, "--service");
  arg_add(&a, "%s", svc);
  arg_add(&a, "--dump");
  arg_add(&a, "%s/%s.dump", x->dump_dir, svc);
  char why[128];
  return spawn(k, "kvsload", name, &a, "", why, sizeof why) >= 0;
}

static bool start_reader(struct kern *k, const struct scn_expect *e);

/* The end of the applications: starts the dumpers and the readers of
 * `expect file`.  True if any runs. */
static bool start_dumps(struct kern *k) {
  struct scn_exec *x = k->exec;
  bool any = false;
  x->dumping = true;
  for (size_t i = 0; i < x->s->nexpects; i++) {
    x->dump_done[i] =
        !needs_dump(x->s, i) || !start_dumper(k, x->s->expects[i].service);
    any |= !x->dump_done[i];
  }
  for (size_t i = 0; i < x->s->nexpects; i++)
    if (x->s->expects[i].kind == SCN_EXP_FILE)
      any |= start_reader(k, &x->s->expects[i]);
  return any;
}

/* A process exited: if it is a dumper, its dump is done. */
static void dumper_exited(struct scn_exec *x, const char *actor) {
  char name[KABI_NAME_MAX];
  for (size_t i = 0; i < x->s->nexpects; i++) {
    if (x->dump_done[i])
      continue;
    dumper_name(x->s->expects[i].service, name, sizeof name);
    if (!strcmp(actor, name))
      x->dump_done[i] = true;
  }
}

/* Helpers ---------------------------------------------------------------- */

/* A namespace action as the trace says it: "bind ap1 #c /mnt --flags b". */
static void ns_action_text(const struct scn_action *a, char *buf, size_t len) {
  int n = snprintf(buf, len, "%s %s%s%s %s", scn_action_name(a->kind),
                   a->target, a->src[0] ? " " : "", a->src, a->dst);
  if (n > 0 && (size_t)n < len && a->flags[0])
    n += snprintf(buf + n, len - (size_t)n, " --flags %s", a->flags);
  if (n > 0 && (size_t)n < len && a->aname[0])
    snprintf(buf + n, len - (size_t)n, " --aname %s", a->aname);
}

/* nsh's words for a namespace action: "bind -bc NEW OLD" ... */
static void ns_words(const struct scn_action *a, struct argv_buf *w) {
  arg_add(w, "%s", scn_action_name(a->kind));
  if (a->flags[0])
    arg_add(w, "-%s", a->flags);
  if (a->src[0])
    arg_add(w, "%s", a->src);
  arg_add(w, "%s", a->dst);
  if (a->aname[0])
    arg_add(w, "%s", a->aname);
}

/* Where helper of line `line` writes: DIR/NAME (name from the line), or
 * "" when the runner gave no directory or its name is too long. */
static void helper_out(struct scn_exec *x, const char *name, char *out,
                       size_t len) {
  out[0] = '\0';
  if (x->dump_dir[0] != '\0' &&
      strlen(x->dump_dir) + 1 + strlen(name) <= SCN_TEXT_MAX &&
      snprintf(out, len, "%s/%s", x->dump_dir, name) >= (int)len)
    out[0] = '\0'; /* checked above: never */
}

/* Starts nscmd in PROC's held group, sharing it, as helper PROC@LINE
 * running words (for act or exp).  False with why if it could not.  The
 * helper slot is the next of x->helper, which has one per statement that
 * can start one (each starts at most one). */
static bool start_helper(struct kern *k, const char *proc, int line,
                         const char *out, const struct argv_buf *words,
                         const struct scn_action *act,
                         const struct scn_expect *exp, char *why, size_t len) {
  struct scn_exec *x = k->exec;
  const struct scn_ns_hold *h = hold_of(x, proc);
  struct helper *hp = &x->helper[x->nhelper];
  struct argv_buf a = {.n = 0};
  if (!h->held) {
    snprintf(why, len, "%s has no namespace yet", proc);
    return false;
  }
  if (out[0] != '\0') {
    arg_add(&a, "--out");
    arg_add(&a, "%s", out);
  }
  arg_add(&a, "--exact");
  for (size_t i = 0; i < words->n; i++)
    arg_add(&a, "%s", words->v[i]);
  snprintf(hp->name, sizeof hp->name, "%.*s@%d", KABI_NAME_MAX - 12, proc,
           line);
  int p = spawn(k, "nscmd", hp->name, &a, "", why, len);
  if (p < 0)
    return false;
  int r = scn_ns_enter(k, (uint32_t)p, h, SCN_NS_SHARE);
  if (r < 0) {
    snprintf(why, len, "cannot share %s's namespace: %s", proc, strerror(-r));
    kern__kill(k, (uint32_t)p, SIGKILL, NULL);
    return false;
  }
  hp->act = act;
  hp->exp = exp;
  hp->running = true;
  x->nhelper++;
  return true;
}

static void ns_event(struct kern *k, const char *peer, const char *text,
                     int status) {
  kern__event(
      k, &(struct kern_ev){
             .ev = "action", .peer = peer, .text = text, .status = status});
}

/* A bind, mount or unmount: its helper, or an event saying why none. */
static void run_ns_action(struct kern *k, const struct scn_action *a) {
  struct scn_exec *x = k->exec;
  struct argv_buf w = {.n = 0};
  char text[3 * SCN_PATH_MAX], name[32], out[SCN_TEXT_MAX + 1], why[160];
  ns_action_text(a, text, sizeof text);
  ns_words(a, &w);
  snprintf(name, sizeof name, "ns-%d.out", a->pos.line);
  helper_out(x, name, out, sizeof out);
  ns_event(k, a->target, text, 0);
  if (!start_helper(k, a->target, a->pos.line, out, &w, a, NULL, why,
                    sizeof why)) {
    char t[sizeof text + sizeof why + 16];
    snprintf(t, sizeof t, "%s: %s (nothing done)", text, why);
    ns_event(k, a->target, t, 0);
  }
}

/* The reader of an `expect file`, started with the dumpers.  True if it
 * runs. */
static bool start_reader(struct kern *k, const struct scn_expect *e) {
  struct scn_exec *x = k->exec;
  struct argv_buf w = {.n = 0};
  char text[SCN_PATH_MAX + 64], name[32], out[SCN_TEXT_MAX + 1], why[160];
  snprintf(text, sizeof text, "read %s %s", e->proc, e->path);
  scn_read_out_name(e->pos.line, name, sizeof name);
  helper_out(x, name, out, sizeof out);
  arg_add(&w, "cat");
  arg_add(&w, "%s", e->path);
  if (out[0] == '\0')
    snprintf(why, sizeof why, "the runner gave no directory to read into");
  else if (start_helper(k, e->proc, e->pos.line, out, &w, NULL, e, why,
                        sizeof why)) {
    ns_event(k, e->proc, text, 0);
    return true;
  }
  char t[sizeof text + sizeof why + 16];
  snprintf(t, sizeof t, "%s: %s (no reader)", text, why);
  ns_event(k, e->proc, t, 0);
  return false;
}

/* The first line of the helper's error file, into why. */
static void helper_error(struct scn_exec *x, const struct helper *hp, char *why,
                         size_t len) {
  char name[40], path[SCN_TEXT_MAX + 8];
  int line = hp->act ? hp->act->pos.line : hp->exp->pos.line;
  why[0] = '\0';
  if (hp->act)
    snprintf(name, sizeof name, "ns-%d.out", line);
  else
    scn_read_out_name(line, name, sizeof name);
  helper_out(x, name, path, sizeof path - 4);
  if (path[0] == '\0')
    return;
  strcat(path, ".err");
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return;
  if (fgets(why, (int)len, f) == NULL)
    why[0] = '\0';
  why[strcspn(why, "\n")] = '\0';
  fclose(f);
}

/* A helper's exit was traced: its outcome goes into the trace after the
 * step (exec_after_step), as an action event, and the run may go on. */
static void helper_exited(struct scn_exec *x, const struct kern_ev *e) {
  for (size_t i = 0; i < x->nhelper; i++) {
    struct helper *hp = &x->helper[i];
    if (!hp->running || strcmp(hp->name, e->actor) != 0)
      continue;
    hp->running = false;
    hp->report = true;
    hp->status = e->status;
    hp->signalled = e->text && !strncmp(e->text, "signal", 6);
  }
}

static void report_helpers(struct kern *k) {
  struct scn_exec *x = k->exec;
  for (size_t i = 0; i < x->nhelper; i++) {
    struct helper *hp = &x->helper[i];
    char what[3 * SCN_PATH_MAX], why[160], text[sizeof what + sizeof why];
    if (!hp->report)
      continue;
    hp->report = false;
    if (hp->act)
      ns_action_text(hp->act, what, sizeof what);
    else
      snprintf(what, sizeof what, "read %s %s", hp->exp->proc, hp->exp->path);
    helper_error(x, hp, why, sizeof why);
    if (hp->status == 0 && !hp->signalled)
      snprintf(text, sizeof text, "%s: done", what);
    else if (hp->signalled)
      snprintf(text, sizeof text, "%s: failed: its helper was killed", what);
    else
      snprintf(text, sizeof text, "%s: failed: %s", what,
               why[0] ? why : "(no message)");
    ns_event(k, hp->act ? hp->act->target : hp->exp->proc, text, hp->status);
  }
}

/* Whether a helper runs or its outcome is still to be traced. */
static bool helpers_busy(const struct scn_exec *x) {
  for (size_t i = 0; i < x->nhelper; i++)
    if (x->helper[i].running || x->helper[i].report)
      return true;
  return false;
}

/* Actions ---------------------------------------------------------------- */

/* The live process named name, or -1. */
static int find_proc(struct kern *k, const char *name) {
  for (uint32_t p = 0; p < UK_PROC_MAX; p++)
    if (kd_proc(k, p)->state != UK_PROC_FREE &&
        kd_proc(k, p)->state != UK_PROC_EXITED && k->proc[p].run != KS_DYING &&
        !strcmp(kd_proc(k, p)->name, name))
      return (int)p;
  return -1;
}

/* The process serving service name now, or -1. */
static int server_of(struct kern *k, const char *name) {
  int s = kern_svc_lookup(k->kd, name);
  if (s < 0 || k->kd->svc[s].proc == UK_NIL)
    return find_proc(k, name);
  return (int)k->kd->svc[s].proc;
}

static const struct scn_server *declared(const struct scn *s,
                                         const char *name) {
  for (size_t i = 0; i < s->nservers; i++)
    if (!strcmp(s->servers[i].name, name))
      return &s->servers[i];
  return NULL;
}

static void do_replace(struct kern *k, const struct scn_action *a) {
  const struct scn_server *sv =
      declared(((struct scn_exec *)k->exec)->s, a->target);
  struct argv_buf args = {.n = 0};
  if (sv == NULL) /* the parser allows only declared servers: a guard */
    return;
  char env[SCN_TEXT_MAX + 32];
  Uksim__Replace rq = UKSIM__REPLACE__INIT;
  server_args(&args, sv, a->binary, a->state);
  args_split(&args, a->args);
  fault_env(env, sizeof env, a->faults, a->nfaults);
  char *envv[1] = {env};
  rq.svc = (char *)a->target;
  rq.program = (char *)a->binary;
  rq.args = args.v;
  rq.n_args = args.n;
  rq.env = envv;
  rq.n_env = env[0] ? 1 : 0;
  rq.deadline_ms = (uint32_t)(a->deadline_ns / 1000000);
  rep_ctl_replace(k, 0, &rq); /* its outcome is in the trace */
}

static void action_event(struct kern *k, const struct scn_action *a,
                         const char *note) {
  char text[SCN_TEXT_MAX + 64];
  snprintf(text, sizeof text, "%s %s%s%s%s", scn_action_name(a->kind),
           a->target, a->binary[0] ? " " : "", a->binary, note);
  kern__event(
      k, &(struct kern_ev){.ev = "action", .peer = a->target, .text = text});
}

static void run_action(struct kern *k, const struct scn_action *a) {
  struct scn_exec *x = k->exec;
  journal_write(k); /* the action has fired: no later kernel runs it */
  if (a->kind == SCN_ACT_FAULT || a->kind == SCN_ACT_KUPDATE) {
    do_os_fault(k, a);
    return;
  }
  if (scn_action_is_ns(a->kind)) {
    run_ns_action(k, a);
    return;
  }
  if (a->kind == SCN_ACT_MIGRATE || a->kind == SCN_ACT_INPUT) {
    if (x->mig == NULL) /* a kernel that took over: the tasks are not its */
      action_event(k, a, ": no task is known here (nothing done)");
    else
      scn_mig_act(x->mig, a); /* traces itself */
    return;
  }
  int p = a->kind == SCN_ACT_REPLACE ? -1
          : a->kind == SCN_ACT_PANIC || a->kind == SCN_ACT_RESTART
              ? server_of(k, a->target)
              : find_proc(k, a->target);
  if (a->kind != SCN_ACT_REPLACE && p < 0) {
    action_event(k, a, ": no such process (nothing done)");
    return;
  }
  action_event(k, a, "");
  switch (a->kind) {
  case SCN_ACT_REPLACE:
    do_replace(k, a);
    break;
  case SCN_ACT_CRASH:
    kern__kill(k, (uint32_t)p, SIGSEGV, NULL);
    break;
  case SCN_ACT_PANIC:
    rep_panic(k, (uint32_t)p, "panic (scenario action)");
    break;
  case SCN_ACT_HANG:
    sched_hang(k, (uint32_t)p);
    break;
  case SCN_ACT_KILL:
    kern__kill(k, (uint32_t)p, SIGKILL, "killed (scenario action)");
    break;
  case SCN_ACT_STOP: /* asked, not a fault: what it says at its exit is */
    kern__kill(k, (uint32_t)p, SIGTERM, NULL);
    break;
  case SCN_ACT_RESTART: {
    uint32_t s = kd_proc(k, (uint32_t)p)->svc;
    k->proc[p].pol.restart = true;
    if (s != UK_NIL)
      k->svc[s].pol.restart = true;
    kern__kill(k, (uint32_t)p, SIGKILL, "restart (scenario action)");
    break;
  }
  case SCN_ACT_BIND:
  case SCN_ACT_MOUNT:
  case SCN_ACT_UNMOUNT:
  case SCN_ACT_FAULT:
  case SCN_ACT_KUPDATE:
  case SCN_ACT_MIGRATE:
  case SCN_ACT_INPUT:
    abort(); /* run_ns_action's, do_os_fault's, scn_mig_act's */
  }
}

static void arm_at_timer(struct kern *k) {
  struct scn_exec *x = k->exec;
  uint64_t next = UINT64_MAX;
  for (size_t i = 0; i < x->s->nactions; i++) {
    const struct scn_action *a = &x->s->actions[i];
    if (a->when.kind == SCN_TRIG_AT && !x->fired[i] && a->when.t_ns < next)
      next = a->when.t_ns;
  }
  uint64_t now = run_ns(k);
  if (next != UINT64_MAX)
    kern__timer_start(k, &x->at_timer, next > now ? next - now : 0, 0);
}

static void exec_poll(struct kern *k);

static void on_at_timer(struct kern *k, struct ktimer *t) {
  struct scn_exec *x = k->exec;
  (void)t;
  for (size_t i = 0; i < x->s->nactions; i++) {
    const struct scn_action *a = &x->s->actions[i];
    if (a->when.kind == SCN_TRIG_AT && !x->fired[i] &&
        a->when.t_ns <= run_ns(k)) {
      x->fired[i] = true;
      run_action(k, a);
    }
  }
  arm_at_timer(k);
  /* Free-running, the end is checked after calls and exits; an action at
   * a time when no process is left (a kill of an app that has ended) is
   * followed by neither. */
  if (!k->lockstep)
    exec_poll(k);
}

static bool matches(const struct scn_trigger *w, const struct kern_ev *e) {
  const char *actor = e->actor ? e->actor : "kernel";
  if (w->kind == SCN_TRIG_REQUEST)
    return !strcmp(e->ev, "send") && e->svc && !strcmp(e->svc, w->name);
  return w->kind == SCN_TRIG_EVENT && !strcmp(e->ev, scn_ev_name(w->ev)) &&
         (!strcmp(w->name, "*") || !strcmp(w->name, actor));
}

/* Whether sv's fault plan makes it fail before it registers (a panic
 * there ends it with a status, the kernel refusing the call). */
static bool fails_early(const struct scn_server *sv) {
  for (unsigned i = 0; i < sv->nfaults; i++)
    if (sv->faults[i].point == SCN_AT_START ||
        sv->faults[i].point == SCN_AT_REGISTER)
      return true;
  return false;
}

/* A declared server's first instance registers, or exits before it
 * did: with a status (not a signal, which a fault or an action sends)
 * and no plan to fail there, it could not start. */
static void server_event(struct kern *k, const struct kern_ev *e) {
  struct scn_exec *x = k->exec;
  bool reg = !strcmp(e->ev, "register");
  if ((!reg && strcmp(e->ev, "exit")) || e->actor == NULL)
    return;
  for (size_t i = 0; i < x->s->nservers; i++) {
    if (strcmp(e->actor, x->s->servers[i].name) != 0 || x->registered[i])
      continue;
    x->registered[i] = reg;
    if (!reg && e->text && !strncmp(e->text, "status", 6) &&
        !fails_early(&x->s->servers[i])) {
      char why[96];
      snprintf(why, sizeof why, "it exited with %s before it registered",
               e->text);
      start_failed(k, "server", e->actor, why);
    }
  }
}

/* Whether action a, a fault of the active kernel, must wait: another one
 * waits for the backup (do_os_fault), and this kernel dies of it.  Its
 * trigger is held one short of firing, so it is not journaled as fired
 * and the next active counts it afresh (trigger counts are each kernel's
 * own); firing it now would lose one of the two. */
static bool held_fault(const struct scn_exec *x, const struct scn_action *a) {
  return (a->kind == SCN_ACT_FAULT || a->kind == SCN_ACT_KUPDATE) &&
         x->deferred != NULL && strcmp(a->target, "kernel") == 0;
}

static void exec_event(struct kern *k, const struct kern_ev *e) {
  struct scn_exec *x = k->exec;
  if (k->os.hb_ms > 0 && k->events)
    fflush(k->events); /* a killed kernel's last events stay in its file */
  if (x->dormant)
    return;
  backup_ready(k); /* follows the backup's boots, so a fault need not wait */
  server_event(k, e);
  for (size_t i = 0; i < x->s->nactions && !x->dumping; i++) {
    const struct scn_action *a = &x->s->actions[i];
    if (x->fired[i] || !matches(&a->when, e))
      continue;
    uint64_t n = a->when.n ? a->when.n : 1;
    if (x->trig_count[i] + 1 == n && held_fault(x, a))
      continue;
    if (++x->trig_count[i] == n) {
      x->fired[i] = true;
      x->queue[x->nqueue++] = i;
    }
  }
  if (!strcmp(e->ev, "exit"))
    for (size_t i = 0; i < x->s->napps; i++)
      if (x->app_proc[i] >= 0 && !strcmp(e->actor, x->s->apps[i].name))
        x->app_done[i] = true;
  if (!strcmp(e->ev, "exit") && x->dumping)
    dumper_exited(x, e->actor);
  if (!strcmp(e->ev, "exit") && e->actor != NULL)
    helper_exited(x, e);
}

/* The end ----------------------------------------------------------------- */

static void finish(struct kern *k, int status, const char *why) {
  struct scn_exec *x = k->exec;
  if (x->done)
    return;
  x->done = true;
  x->status = status;
  snprintf(x->why, sizeof x->why, "%s", why);
  k->frozen = true; /* no more steps: the runner halts the machine */
  kern__trace(k, "scenario over: %s", why);
  if (x->wait_pending)
    kern__reply(k, x->wait_id, status, why, NULL);
  x->wait_pending = false;
}

/* Ends the run if a declared server or app could not start.  True if
 * it did. */
static bool check_failure(struct kern *k) {
  struct scn_exec *x = k->exec;
  if (x->failure[0] == '\0')
    return false;
  finish(k, -ESRCH, x->failure);
  return true;
}

static bool replacing_any(struct kern *k) {
  for (uint32_t s = 0; s < UK_SVC_MAX; s++)
    if (k->kd->svc[s].state == UK_SVC_UP &&
        k->kd->svc[s].phase != UK_PH_SERVING)
      return true;
  return false;
}

static bool over(struct kern *k) {
  struct scn_exec *x = k->exec;
  for (size_t i = 0; i < x->s->napps; i++)
    if (!x->app_done[i])
      return false;
  for (size_t i = 0; i < x->s->nactions; i++)
    if (x->s->actions[i].when.kind == SCN_TRIG_AT && !x->fired[i])
      return false;
  for (size_t i = 0; i < x->s->nexpects && x->dumping; i++)
    if (!x->dump_done[i])
      return false;
  /* A kernel update's retiring OS still runs an app it kept (kkeep.h):
   * its exit, passed on by the machine, polls here again. */
  return x->nqueue == 0 && !replacing_any(k) && !helpers_busy(x) &&
         x->deferred == NULL && !scn_mig_busy(x->mig) &&
         !kkeep_retiring(k->os.io);
}

static void exec_after_step(struct kern *k) {
  struct scn_exec *x = k->exec;
  if (x == NULL || x->done || x->dormant)
    return;
  report_helpers(k);
  for (size_t i = 0; i < x->nqueue; i++)
    run_action(k, &x->s->actions[x->queue[i]]);
  x->nqueue = 0;
  start_apps(k);
  check_failure(k);
}

static bool exec_idle(struct kern *k) {
  struct scn_exec *x = k->exec;
  if (x == NULL || x->done || x->dormant)
    return false;
  if (start_apps(k) || check_failure(k))
    return true;
  if (over(k)) {
    /* Where the tasks run, once the actions are done, before the dumps. */
    if (scn_mig_census(x->mig))
      return true;
    if (!x->dumping && start_dumps(k))
      return true;
    /* Under lock-step the clunks the groups owe are served before the
     * end; free-running, nothing would call here again to end the run. */
    if (!x->released) {
      x->released = true;
      if (release_holds(k) && k->lockstep)
        return true;
    }
    finish(k, 0, "the scenario ran to its end");
    return true;
  }
  return false;
}

static void exec_limit(struct kern *k, const char *what) {
  char why[200];
  snprintf(why, sizeof why, "stopped by %s at step %llu, virtual time %.3f ms",
           what, (unsigned long long)k->kd->hdr.step, (double)run_ns(k) / 1e6);
  if (k->exec)
    finish(k, -ETIME, why);
}

/* Free-running: after every call and exit, instead of at steps. */
static void exec_poll(struct kern *k) {
  exec_after_step(k);
  exec_idle(k);
}

static void exec_wait(struct kern *k, uint64_t id) {
  struct scn_exec *x = k->exec;
  if (x == NULL) {
    kern__reply(k, id, -ENOENT, "this machine runs no scenario", NULL);
    return;
  }
  if (x->done) {
    kern__reply(k, id, x->status, x->why, NULL);
    return;
  }
  x->wait_pending = true;
  x->wait_id = id;
}

/* Ranges ------------------------------------------------------------------ */

/* A value in [lo, hi] drawn from the run's seed and salt (which range it
 * is), by splitmix64 from a state of its own: not from the scheduler's
 * generator, so that a pick depends on the seed alone, never on the
 * schedule. */
static uint64_t pick(uint64_t seed, uint64_t salt, uint64_t lo, uint64_t hi) {
  uint64_t state = seed + salt * 0x9e3779b97f4a7c15ull;
  uint64_t z = kern__rand(&state);
  uint64_t span = hi - lo + 1; /* 0: the whole of uint64_t */
  return span ? lo + z % span : z;
}

static void pick_event(struct kern *k, int line, const char *what, uint64_t v,
                       uint64_t lo, uint64_t hi) {
  char text[160];
  if (((struct scn_exec *)k->exec)->dormant)
    return; /* the same picks, said once by the first kernel */
  snprintf(text, sizeof text,
           "line %d: picks %" PRIu64 " from %" PRIu64 "..%" PRIu64 " for %s",
           line, v, lo, hi, what);
  kern__event(k, &(struct kern_ev){.ev = "action", .text = text});
}

static void pick_faults(struct kern *k, struct scn_fault *f, unsigned n,
                        int line, uint64_t *salt) {
  for (unsigned i = 0; i < n; i++, (*salt)++)
    if (f[i].n_hi > f[i].n) {
      uint64_t lo = f[i].n;
      f[i].n = pick(((struct scn_exec *)k->exec)->seed, *salt, lo, f[i].n_hi);
      pick_event(k, line, "the fault's request number", f[i].n, lo, f[i].n_hi);
      f[i].n_hi = f[i].n;
    }
}

/* Turns every range of the scenario into one value, in file order, each
 * pick traced, before anything starts. */
static void pick_ranges(struct kern *k) {
  struct scn *s = ((struct scn_exec *)k->exec)->s;
  uint64_t salt = 0;
  for (size_t i = 0; i < s->nservers; i++)
    pick_faults(k, s->servers[i].faults, s->servers[i].nfaults,
                s->servers[i].pos.line, &salt);
  for (size_t i = 0; i < s->nactions; i++, salt++) {
    struct scn_action *a = &s->actions[i];
    struct scn_trigger *w = &a->when;
    uint64_t lo = w->kind == SCN_TRIG_AT ? w->t_ns : w->n;
    uint64_t hi = w->kind == SCN_TRIG_AT ? w->t_hi_ns : w->n_hi;
    if (hi > lo) {
      uint64_t v = pick(((struct scn_exec *)k->exec)->seed, salt, lo, hi);
      if (w->kind == SCN_TRIG_AT)
        w->t_ns = w->t_hi_ns = v;
      else
        w->n = w->n_hi = v;
      pick_event(k, a->pos.line,
                 w->kind == SCN_TRIG_AT ? "the time (ns)"
                                        : "the trigger's count",
                 v, lo, hi);
    }
    pick_faults(k, a->faults, a->nfaults, a->pos.line, &salt);
  }
}

/* A migration's command is done: the run goes on. */
static void exec_mig_resume(struct kern *k) {
  if (k->lockstep)
    sched_run(k);
  else
    exec_poll(k);
}

/* The tasks (scn_exec_mig.h), started before the servers; false with
 * the run failed when the runner started no migration server. */
static bool start_tasks(struct kern *k) {
  struct scn_exec *x = k->exec;
  char why[200];
  if (x->s->ntasks == 0)
    return true;
  x->mig = scn_mig_new(k, x->s, x->dump_dir, exec_mig_resume, why, sizeof why);
  if (x->mig == NULL) {
    finish(k, -ESRCH, why);
    return false;
  }
  scn_mig_start_tasks(x->mig);
  return true;
}

static int exec_start(struct kern *k, const char *file, uint64_t seed,
                      bool seed_given, const char *dump_dir) {
  struct scn_err err;
  struct scn *s = scn_load(file, &err);
  if (s == NULL) {
    fprintf(stderr, "%s\n", err.text);
    return -EINVAL;
  }
  struct scn_exec *x = xcalloc(1, sizeof *x);
  size_t na = s->napps ? s->napps : 1, nc = s->nactions ? s->nactions : 1;
  size_t ne = s->nexpects ? s->nexpects : 1;
  x->app_proc = xcalloc(na, sizeof *x->app_proc);
  x->app_done = xcalloc(na, sizeof *x->app_done);
  x->trig_count = xcalloc(nc, sizeof *x->trig_count);
  x->fired = xcalloc(nc, sizeof *x->fired);
  x->queue = xcalloc(nc, sizeof *x->queue);
  x->dump_done = xcalloc(ne, sizeof *x->dump_done);
  x->registered = xcalloc(s->nservers ? s->nservers : 1, sizeof *x->registered);
  size_t nd = s->nservers + s->napps ? s->nservers + s->napps : 1;
  x->hold = xcalloc(nd, sizeof *x->hold);
  x->need_hold = xcalloc(nd, sizeof *x->need_hold);
  x->helper = xcalloc(nc + ne, sizeof *x->helper);
  snprintf(x->dump_dir, sizeof x->dump_dir, "%s", dump_dir ? dump_dir : "");
  x->s = s;
  x->seed = seed_given ? seed : s->machine.seed_set ? s->machine.seed : 1;
  for (size_t i = 0; i < s->napps; i++)
    x->app_proc[i] = -1;
  find_holds(x);
  k->exec = x;
  uint64_t grace =
      s->machine.grace_ns ? s->machine.grace_ns / 1000000 : EXEC_GRACE_MS;
  x->dormant = k->os.role == KOS_BACKUP;
  if (s->machine.mode == SCN_MODE_LOCKSTEP && !x->dormant)
    sched_init(k, x->seed, grace ? grace : 1);
  k->t0_ns = kern__now_ns();
  k->steps_max = EXEC_STEPS_MAX;
  k->time_max_ns = EXEC_TIME_MAX_NS;
  kern__timer_init(k, &x->at_timer, on_at_timer, NULL);
  kern__timer_init(k, &x->start_timer, on_start_timer, NULL);
  kern__timer_init(k, &x->fault_timer, on_fault_timer, NULL);
  kern__trace(k, "scenario %s, seed %llu%s", file, (unsigned long long)x->seed,
              k->os.role == KOS_BACKUP ? " (dormant: this OS is the backup)"
                                       : "");
  x->t0_ns = k->t0_ns;
  journal_open(x, !x->dormant);
  pick_ranges(k);
  if (x->dormant)
    return 0;
  journal_write(k);
  if (!start_tasks(k))
    return 0;
  start_servers(k);
  start_apps(k); /* a scenario without servers starts its apps at time 0 */
  arm_at_timer(k);
  check_failure(k);
  return 0;
}

/* The declared apps after a failover: one that was spawned is running
 * here (it moved; its namespace group is held again if the scenario names
 * it) or is done (it ended with its OS, or exited before); one that was
 * not is spawned at its time, as before. */
static void resume_apps(struct kern *k, const bool *spawned) {
  struct scn_exec *x = k->exec;
  for (size_t i = 0; i < x->s->napps; i++) {
    int p = spawned[i] ? find_proc(k, x->s->apps[i].name) : -1;
    x->app_proc[i] = spawned[i] ? (p >= 0 ? p : -2) : -1;
    x->app_done[i] = spawned[i] && p < 0;
    if (p >= 0) /* its group moved with it: held here from now on */
      hold_ns(k, x->s->nservers + i, (uint32_t)p);
  }
}

/* This kernel took over (DORMANT -> ACTIVE): the run goes on from the
 * journal and the adopted table (the header comment). */
static void exec_resume(struct kern *k) {
  struct scn_exec *x = k->exec;
  if (x == NULL || !x->dormant)
    return;
  bool *spawned = xcalloc(x->s->napps + 1, sizeof *spawned);
  x->dormant = false;
  if (x->journal < 0) /* this kernel booted before the journal was made */
    journal_open(x, false);
  int r = journal_read(x, spawned);
  kern__trace(k, "scenario: resumed after a failover%s",
              r < 0 ? ": no journal to go on from" : "");
  if (r < 0 || x->s->machine.mode == SCN_MODE_LOCKSTEP) {
    free(spawned);
    finish(k, -EPROTO,
           r < 0 ? "the scenario cannot go on after a failover: no journal"
                 : "a lock-step scenario cannot go on after a failover "
                   "(machine --backup 1 runs free)");
    return;
  }
  /* The trace's times go on from the run's start, never back: a backup
   * that booted before the run started keeps its own boot. */
  if (x->t0_ns < k->t0_ns)
    k->t0_ns = x->t0_ns;
  for (size_t i = 0; i < x->s->nservers; i++)
    x->registered[i] = true; /* restarted by the failover, not started */
  x->servers_ready = true;
  resume_apps(k, spawned);
  free(spawned);
  start_apps(k);
  arm_at_timer(k);
}

void scn_exec_ops(struct kern_ops *ops) {
  ops->resume = exec_resume;
  ops->start = exec_start;
  ops->event = exec_event;
  ops->after_step = exec_after_step;
  ops->idle = exec_idle;
  ops->limit = exec_limit;
  ops->poll = exec_poll;
  ops->wait = exec_wait;
}
