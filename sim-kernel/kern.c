/* The kernel process ("inner core"): one libuv loop, one SOCK_SEQPACKET
 * connection per process, kernel data in a memfd region the machine gave it.
 *
 * Started by the machine with fd 3 = the machine link (uksim.Ctl messages)
 * and fd 4 = the kernel-data region.  It spawns servers and application
 * processes on the machine's request and is the only path between them.
 *
 * Process slot lifecycle: spawn allocates a slot (RUNNING); the process
 * exiting cleans up its kernel state (requests, ICAs, service) -- a process
 * that closes its connection but lives on keeps its state until it exits,
 * so that a fault is always reported with its cause; the slot is freed once
 * the Linux process is reaped and both libuv handles are closed, and anyone
 * waiting for its exit is told.
 *
 * Cross-cpu polling (--poll-us N, default 100, 0 off): after answering a
 * process whose call came from another cpu (each call says which,
 * uksim/kabi.h), the loop does not block for N us, so that the next call
 * finds the kernel awake; the process's library spins as long for its
 * answer (lib/conn.c).  On the 2-vCPU VM where it was measured, whose idle
 * vCPUs halt (a task woken there runs ~30 us later), this took the
 * unpinned null round trip from 44-55 us to 15-18 us and 10,000 lock-step
 * requests from 1.21-1.40 s to 0.78-0.95 s (`uksim bench scenario`); on
 * one cpu it never polls, and pinned figures did not move (README.md
 * "uksim bench ipc").  It changes when things happen, never what: scenario
 * traces are the same with it on and off.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kdisk.h"
#include "kern.h"
#include "vfs.h"
#include "machine.h"
#include "uksim/9p.h"
#include "uksim/num.h"
#include "uksim/xalloc.h"
#include "uksim/uv_check.h"

/* One packet per wake-up: a process has at most one call in flight, so a
 * second read would only return EAGAIN (a wasted system call on the hot
 * path); a process that does send more is polled again by the loop, which
 * also gives every other process its turn. */
#define READS_PER_WAKE 1
#define HALT_GRACE_MS 2000

extern char **environ;

void kern__trace(struct kern *k, const char *fmt, ...) {
  va_list ap;
  if (k->trace_left == 0)
    return;
  if (k->trace_left > 0)
    k->trace_left--;
  double ms = (double)(kern__now_ns() - k->t0_ns) / 1e6; /* virtual too */
  fprintf(stderr, "[%6llu] %9.3fms ", (unsigned long long)k->kd->hdr.step, ms);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

void kern__event(struct kern *k, const struct kern_ev *e) {
  /* While halting, processes end in whatever order their exits arrive:
   * the halt event alone says how it ended, so a trace stays a function
   * of the run. */
  if (k->halting && strcmp(e->ev, "halt") != 0)
    return;
  if (k->events)
    k->ops->write_event(k->events, k->kd->hdr.step + 1,
                        kern__now_ns() - k->t0_ns, e);
  if (k->exec && k->ops->event)
    k->ops->event(k, e);
}

void kern__exec_after_step(struct kern *k) {
  if (k->exec && k->ops->after_step)
    k->ops->after_step(k);
}

bool kern__exec_idle(struct kern *k) {
  return k->exec && k->ops->idle && k->ops->idle(k);
}

void kern__exec_limit(struct kern *k, const char *what) {
  if (k->exec && k->ops->limit)
    k->ops->limit(k, what);
}

void kern__exec_poll(struct kern *k) {
  if (k->exec && k->ops->poll)
    k->ops->poll(k);
}

static void exec_wait(struct kern *k, uint64_t id) {
  if (k->exec && k->ops->wait)
    k->ops->wait(k, id);
  else
    kern__reply(k, id, -ENOENT, "this machine runs no scenario", NULL);
}

const char *kern__opname(const struct uk_kdata *kd, uint32_t svc, uint32_t op,
                         char *buf, size_t len) {
  const char *s = kd->svc[svc].opnames;
  for (uint32_t i = 0; i < op && s; i++) {
    s = strchr(s, ',');
    if (s)
      s++;
  }
  size_t n = s ? strcspn(s, ",") : 0;
  if (n == 0)
    snprintf(buf, len, "%s.op%u", kd->svc[svc].name, op);
  else
    snprintf(buf, len, "%s.%.*s", kd->svc[svc].name, (int)n, s);
  return buf;
}

/* Answers --------------------------------------------------------------- */

/* Traces name a program, never its path: a trace must not depend on where
 * the build tree is, or two clones would hash the same run differently. */
const char *kern__prog_name(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

/* Cross-cpu polling ------------------------------------------------------- */

/* The header flags that say the kernel's cpu, or 0 with polling off (then
 * processes do not spin for answers either: see lib/conn.c). */
static uint32_t cpu_flags(const struct kern *k) {
  int cpu = k->poll_ns ? sched_getcpu() : -1;
  return cpu >= 0 && cpu < 0xffff ? (uint32_t)(cpu + 1) << KABI_CPU_SHIFT : 0;
}

/* Each turn of the loop while polling.  The yield lets a process the
 * kernel woke on its own cpu run at once instead of after the polling (it
 * costs a system call a turn when nobody else is runnable). */
static void on_poll_idle(uv_idle_t *h) {
  struct kern *k = h->loop->data;
  if (uv_hrtime() >= k->poll_until)
    UV_CHECK(uv_idle_stop(h));
  else
    sched_yield();
}

/* After an answer to process p, keeps the loop from blocking for poll_ns
 * (an active idle handle makes libuv poll with a zero timeout), so that
 * p's next call, or the call it causes elsewhere, finds the kernel awake,
 * but only when p's last call came from another cpu than the kernel's:
 * on the same cpu, polling would take the cpu p needs. */
static void poll_after_answer(struct kern *k, uint32_t p) {
  if (k->poll_ns == 0 || k->proc[p].cpu < 0 || k->proc[p].cpu == sched_getcpu())
    return;
  k->poll_until = uv_hrtime() + k->poll_ns;
  if (!uv_is_active((uv_handle_t *)&k->poll))
    UV_CHECK(uv_idle_start(&k->poll, on_poll_idle));
}

void kern__answer(struct kern *k, uint32_t p, kabi_msg *m) {
  int sock = k->proc[p].sock;
  if (k->proc[p].run == KS_BLOCKED)
    k->proc[p].run = KS_RUNNING;            /* lock-step: it runs again */
  k->proc[p].last_call_ns = kern__now_ns(); /* silence counts from here */
  if (sock < 0)
    return;
  m->hdr.flags = (m->hdr.flags & ~KABI_CPU_MASK) | cpu_flags(k);
  int r = kabi_sendmsg(sock, m);
  /* After the send: a kernel that dies between the two leaves a call
   * that looks unanswered; its successor answers it again, and the
   * library drops the older answer (lib/conn.c). */
  kd_psched(k, p)->answered_seq = m->hdr.seq;
  if (r == -EAGAIN) {
    /* A process has at most one call in flight, so its socket never fills
     * unless it sends calls without reading answers: it breaks the ABI. */
    fprintf(stderr, "uksim kernel: %s does not read its answers; killed\n",
            k->kd->proc[p].name);
    if (k->proc[p].running)
      uv_kill_child(&k->proc[p].process, SIGKILL);
  }
  poll_after_answer(k, p);
}

void kern__answer_status(struct kern *k, uint32_t p, uint32_t seq, int st) {
  kabi_msg m;
  kabi_msg_init(&m, KABI_ANS_STATUS, seq, st, NULL, 0);
  kern__answer(k, p, &m);
}

/* Process slots ----------------------------------------------------------- */

static void machine_reply_exit(struct kern *k, uint32_t p);
static void halt_check(struct kern *k);

static bool proc_reaped(const struct kern_proc *kp) {
  return !kp->running && !kp->polling && kp->sock < 0;
}

/* Frees a slot whose process is gone, unless it is waitable and nobody has
 * collected its exit status yet (then it stays EXITED, like a zombie). */
static void try_free_slot(struct kern *k, uint32_t p) {
  struct kern_proc *kp = &k->proc[p];
  if (!proc_reaped(kp) || k->kd->proc[p].state == UK_PROC_FREE)
    return;
  if (kp->waitable && !kp->has_waiter && !k->halting)
    return;
  machine_reply_exit(k, p);
  kp->waitable = false;
  kern__prog_free(&kp->prog);
  k->kd->proc[p].state = UK_PROC_FREE;
  k->kd->ctr.exited++;
  halt_check(k);
}

static void on_poll_closed(uv_handle_t *h) {
  struct kern *k = h->loop->data;
  uint32_t p = (uint32_t)(uintptr_t)h->data;
  k->proc[p].polling = false;
  try_free_slot(k, p);
}

void kern__proc_gone(struct kern *k, uint32_t p) {
  struct kern_proc *kp = &k->proc[p];
  if (kp->sock < 0)
    return;
  kern__spawn_answer(k, p, -ECHILD, "exited before registering a service");
  kern__cleanup_proc(k, p);
  uv_close((uv_handle_t *)&kp->poll, on_poll_closed);
  kos_conn_drop(k, p); /* the machine's duplicate goes too */
  close(kp->sock);
  kp->sock = -1;
  if (kp->pidfd >= 0)
    close(kp->pidfd);
  kp->pidfd = -1;
  if (k->kd->proc[p].state != UK_PROC_FREE)
    k->kd->proc[p].state = UK_PROC_EXITED;
  if (k->kd->proc[p].flags & UK_PROC_F_PROTECT)
    kos_publish(k); /* it is no longer in the table */
  kern__retire_check(k);
}

/* The connection closed.  The process is about to exit (or has): clean up
 * once its exit status is known, so a fault is reported with its cause. */
static void disconnected(struct kern *k, uint32_t p) {
  if (k->proc[p].running)
    UV_CHECK(uv_poll_stop(&k->proc[p].poll));
  else
    kern__proc_gone(k, p);
}

/* A read of 0 bytes is the end of the stream, or an empty packet: only a
 * hang-up tells them apart on SOCK_SEQPACKET. */
static bool hung_up(int sock) {
  struct pollfd pf = {.fd = sock, .events = POLLIN | POLLRDHUP};
  return poll(&pf, 1, 0) == 1 && (pf.revents & (POLLHUP | POLLRDHUP));
}

/* An empty packet has no header to answer: the process broke the ABI and
 * cannot be told which call failed, so it ends (its cleanup follows its
 * exit) rather than staying "running" with nobody reading it. */
static void empty_packet(struct kern *k, uint32_t p) {
  k->kd->ctr.bad_calls++;
  k->kd->proc[p].errors++;
  fprintf(stderr, "uksim kernel: %s sent an empty packet; killed\n",
          k->kd->proc[p].name);
  kern__trace(k, "%s sent an empty packet: killed", k->kd->proc[p].name);
  kern__kill(k, p, SIGKILL, "empty packet");
}

/* The call about to be read, in the tables before it leaves the socket: a
 * kernel that dies after the read (a stop or a kill lands when the read
 * returns) leaves call_seq naming it, and its successor, finding the
 * socket without it, knows the call was taken (kadopt.c). */
static void note_call(struct kern *k, uint32_t p) {
  struct kabi_hdr h;
  struct uk_proc *pp = &k->kd->proc[p];
  uk_psched_t *ps = kd_psched(k, p);
  if (pp->state != UK_PROC_WAITING &&
      recv(k->proc[p].sock, &h, sizeof h, MSG_PEEK | MSG_DONTWAIT) ==
          (ssize_t)sizeof h &&
      h.magic == KABI_MAGIC) {
    ps->call_seq = h.seq;
    ps->call_op = h.op;
  }
}

static void on_proc_readable(uv_poll_t *h, int status, int events) {
  struct kern *k = h->loop->data;
  uint32_t p = (uint32_t)(uintptr_t)h->data;
  kabi_msg m;

  (void)events;
  if (kern__retiring(k) && k->proc[p].sock < 0)
    return; /* moved by a kernel update: the new kernel reads it */
  for (int i = 0; i < READS_PER_WAKE && status == 0; i++) {
    note_call(k, p);
    long n = kabi_recvmsg(k->proc[p].sock, &m);
    if (n == -EAGAIN)
      return;
    if (n == 0 && !hung_up(k->proc[p].sock)) {
      empty_packet(k, p);
      return;
    }
    if (n == 0 || n == -ECONNRESET || n == -ENOTCONN || n == -EPIPE) {
      disconnected(k, p);
      return;
    }
    if (n < 0 && n != -EBADMSG)
      return; /* nothing was read (out of memory): try at the next wake-up */
    k->proc[p].cpu = (int)(m.hdr.flags >> KABI_CPU_SHIFT) - 1;
    if (k->lockstep) { /* performed later, as a step (sched.c) */
      if (!sched_call_arrived(k, p, &m, n == -EBADMSG)) {
        kabi_msg_close_fds(&m);
        kern__answer_status(k, p, m.hdr.seq, -EINPROGRESS);
      }
      continue;
    }
    k->kd->hdr.step++;
    if (n == -EBADMSG) {
      k->kd->ctr.bad_calls++;
      k->kd->proc[p].errors++;
      kern__trace(k, "%s sent a malformed call", k->kd->proc[p].name);
      kern__answer_status(k, p, m.hdr.seq, -EBADMSG);
      continue;
    }
    kern__dispatch(k, p, &m);
    kern__exec_poll(k);
    if (k->proc[p].sock < 0)
      return;
  }
  if (status < 0)
    disconnected(k, p);
}

static void on_process_closed(uv_handle_t *h) {
  struct kern *k = h->loop->data;
  uint32_t p = (uint32_t)(uintptr_t)h->data;
  k->proc[p].running = false;
  try_free_slot(k, p);
}

/* The exit libuv reported, handled now (free-running) or as a step. */
void kern__proc_exited(struct kern *k, uint32_t p) {
  int64_t status = k->proc[p].exit_status;
  int sig = k->proc[p].exit_signal;
  k->proc[p].run = KS_NONE;
  kern__replay_forget(k, p);
  k->kd->proc[p].exit_status = (int32_t)status;
  k->kd->proc[p].term_signal = sig;
  char why[48];
  snprintf(why, sizeof why, sig ? "signal %d" : "status %d",
           sig ? sig : (int)status);
  if (!k->halting) /* at a halt, the halt event says it all */
    kern__event(k, &(struct kern_ev){.ev = "exit",
                                     .actor = k->kd->proc[p].name,
                                     .status = sig ? 0 : (int)status,
                                     .text = why});
  if (sig)
    kern__trace(k, "%s (pid %d) killed by signal %d", k->kd->proc[p].name,
                k->kd->proc[p].pid, sig);
  else
    kern__trace(k, "%s (pid %d) exits with status %d", k->kd->proc[p].name,
                k->kd->proc[p].pid, (int)status);
  kern__timer_stop(k, &k->sleep_timer[p]);
  kern__proc_gone(k, p);
  uv_close((uv_handle_t *)&k->proc[p].process, on_process_closed);
}

static void on_proc_exit(uv_process_t *h, int64_t status, int sig) {
  struct kern *k = h->loop->data;
  uint32_t p = (uint32_t)(uintptr_t)h->data;
  if (kern__retire_exit(k, p, status, sig))
    return; /* a moved process: not ours to report */
  k->proc[p].exit_status = status;
  k->proc[p].exit_signal = sig;
  if (k->lockstep && !k->halting) {
    sched_exit_arrived(k, p);
    return;
  }
  kern__proc_exited(k, p);
  if (!k->halting)
    kern__exec_poll(k);
}

/* Programs ----------------------------------------------------------------- */

static size_t strv_len(char *const *v) {
  size_t n = 0;
  while (v && v[n])
    n++;
  return n;
}

static void strv_free(char **v) {
  for (size_t i = 0; v && v[i]; i++)
    free(v[i]);
  free(v);
}

/* A NULL-terminated copy of `first` (if any) followed by v[0..n). */
static char **strv_make(const char *first, char *const *v, size_t n) {
  size_t off = first != NULL;
  char **out = xcalloc(n + off + 1, sizeof *out);
  if (first)
    out[0] = xstrdup(first);
  for (size_t i = 0; i < n; i++)
    out[i + off] = xstrdup(v[i]);
  return out;
}

void kern__prog_free(struct kern_prog *p) {
  strv_free(p->argv);
  strv_free(p->env);
  p->argv = p->env = NULL;
}

void kern__prog_make(struct kern_prog *p, const char *file, char **args,
                     size_t nargs, char **env, size_t nenv) {
  p->argv = strv_make(file, args, nargs);
  p->env = strv_make(NULL, env, nenv);
}

int kern__prog_dup(struct kern_prog *to, const struct kern_prog *from) {
  if (from->argv == NULL) {
    memset(to, 0, sizeof *to);
    return -ENOENT;
  }
  kern__prog_make(to, from->argv[0], from->argv + 1, strv_len(from->argv + 1),
                  from->env, strv_len(from->env));
  return 0;
}

int kern__prog_pack(const struct kern_prog *p, char *out, size_t len) {
  size_t at = 0;
  memset(out, 0, len);
  for (size_t i = 0; p->argv && p->argv[i]; i++) {
    size_t n = strlen(p->argv[i]) + 1;
    if (n == 1 || at + n + 1 > len) { /* "" would end the list early */
      memset(out, 0, len);
      return -E2BIG;
    }
    memcpy(out + at, p->argv[i], n);
    at += n;
  }
  return 0;
}

int kern__prog_unpack(struct kern_prog *p, const char *in, size_t len) {
  char *argv[UK_SVC_PROG_MAX / 2];
  size_t n = 0, at = 0;
  while (at < len && in[at] != '\0') {
    const char *end = memchr(in + at, '\0', len - at);
    if (end == NULL)
      return -EINVAL; /* not packed by kern__prog_pack: torn */
    argv[n++] = (char *)in + at;
    at = (size_t)(end - in) + 1;
  }
  if (n == 0 || at >= len)
    return -ENOENT;
  kern__prog_make(p, argv[0], argv + 1, n - 1, NULL, 0);
  return 0;
}

void kern__prog_drop_env(struct kern_prog *p, const char *prefix) {
  size_t j = 0, n = strlen(prefix);
  for (size_t i = 0; p->env && p->env[i]; i++) {
    if (strncmp(p->env[i], prefix, n) == 0)
      free(p->env[i]);
    else
      p->env[j++] = p->env[i];
  }
  if (p->env)
    p->env[j] = NULL;
}

/* Builds the child's environment: ours, the program's extra entries, then
 * UKSIM_FD, UKSIM_NAME and UKSIM_POLL_US (how long its library spins for
 * an answer: the kernel's polling time, lib/conn.c). */
static char **child_env(const char *name, char *const *extra,
                        uint64_t poll_ns) {
  size_t n = strv_len(environ), x = strv_len(extra);
  char **env = xcalloc(n + x + 4, sizeof *env);
  size_t j = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "UKSIM_FD=", 9) != 0 &&
        strncmp(environ[i], "UKSIM_NAME=", 11) != 0 &&
        strncmp(environ[i], "UKSIM_POLL_US=", 14) != 0)
      env[j++] = environ[i];
  for (size_t i = 0; i < x; i++)
    env[j++] = extra[i];
  env[j++] = "UKSIM_FD=3";
  static char namevar[64];
  snprintf(namevar, sizeof namevar, "UKSIM_NAME=%s", name);
  env[j++] = namevar;
  static char pollvar[40];
  snprintf(pollvar, sizeof pollvar, "UKSIM_POLL_US=%llu",
           (unsigned long long)(poll_ns / 1000));
  env[j++] = pollvar;
  return env;
}

static int start_process(struct kern *k, uint32_t p,
                         const struct kern_prog *prog, int child_sock) {
  uv_process_options_t o;
  uv_stdio_container_t stdio[4];
  struct kern_proc *kp = &k->proc[p];

  memset(&o, 0, sizeof o);
  for (int i = 0; i < 3; i++) {
    stdio[i].flags = UV_INHERIT_FD;
    stdio[i].data.fd = i;
  }
  stdio[3].flags = UV_INHERIT_FD;
  stdio[3].data.fd = child_sock;
  o.file = prog->argv[0];
  o.args = prog->argv;
  o.env = child_env(k->kd->proc[p].name, prog->env, k->poll_ns);
  o.stdio = stdio;
  o.stdio_count = 4;
  o.exit_cb = on_proc_exit;
  kp->process.data = (void *)(uintptr_t)p;
  kos_busy(k, true); /* a spawn can take long on a loaded host */
  int r = uv_spawn(k->loop, &kp->process, &o);
  kos_busy(k, false);
  free(o.env);
  return r;
}

/* Starts serving p's kernel connection sock (non-blocking from now on);
 * on failure sock is closed. */
static int watch_proc(struct kern *k, uint32_t p, int sock) {
  struct kern_proc *kp = &k->proc[p];
  kp->sock = sock;
  kp->attached = false;
  kp->pidfd = -1;
  kp->pol = (struct kern_policy){.restart = false};
  kp->preparing = false;
  kp->hang_pending = false;
  kp->fault = NULL;
  kp->last_call_ns = kern__now_ns();
  kp->run = KS_RUNNING;
  kp->cpu = -1;
  fcntl(kp->sock, F_SETFL, fcntl(kp->sock, F_GETFL) | O_NONBLOCK);
  int r = uv_poll_init(k->loop, &kp->poll, kp->sock);
  if (r < 0) {
    close(kp->sock);
    kp->sock = -1;
    return r;
  }
  kp->poll.data = (void *)(uintptr_t)p;
  kp->polling = true;
  UV_CHECK(
      uv_poll_start(&kp->poll, UV_READABLE | UV_DISCONNECT, on_proc_readable));
  return 0;
}

/* Spawns a process running prog, which it takes over (freed on failure).
 * Returns its slot, or -errno with *err set for a person. */
int kern__spawn(struct kern *k, const char *name, struct kern_prog *prog,
                const char **err) {
  int sv[2];
  const char *base = strrchr(name, '/');
  int p = kern_proc_alloc(k->kd, base ? base + 1 : name, 0);
  if (p < 0) {
    kern__prog_free(prog);
    *err = "process table full";
    return -EAGAIN;
  }
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
    int e = -errno;
    k->kd->proc[p].state = UK_PROC_FREE;
    kern__prog_free(prog);
    *err = "socketpair failed";
    return e;
  }
  int r = kern__ns_start(k, (uint32_t)p, k->spawn_ns_from, k->spawn_rfflags);
  if (r < 0) {
    close(sv[0]);
    close(sv[1]);
    k->kd->proc[p].state = UK_PROC_FREE;
    kern__prog_free(prog);
    *err = "namespace tables full";
    return r;
  }
  r = start_process(k, (uint32_t)p, prog, sv[1]);
  close(sv[1]);
  if (r < 0) {
    vfs_proc_release(k->kd, (uint32_t)p);
    close(sv[0]);
    k->kd->proc[p].state = UK_PROC_FREE;
    kern__prog_free(prog);
    *err = uv_strerror(r);
    return r;
  }
  struct kern_proc *kp = &k->proc[p];
  kp->prog = *prog;
  kp->running = true;
  if ((r = watch_proc(k, (uint32_t)p, sv[0])) < 0) {
    /* Never watched, never served: it ends, and its exit frees the slot. */
    uv_kill_child(&kp->process, SIGKILL);
    *err = "cannot watch its connection";
    return r;
  }
  k->kd->proc[p].pid = kp->process.pid;
  kos_conn_hold(k, (uint32_t)p, sv[0]); /* it outlives this kernel */
  k->kd->ctr.spawned++;
  kern__trace(k, "spawn %s (pid %d)", k->kd->proc[p].name, kp->process.pid);
  kern__event(k, &(struct kern_ev){.ev = "spawn",
                                   .peer = k->kd->proc[p].name,
                                   .text = kern__prog_name(prog->argv[0])});
  return p;
}

/* The Spawn control request. */
static int spawn(struct kern *k, const Uksim__Spawn *sp, const char **err) {
  char file[4096];
  struct kern_prog prog;
  int r = kern__find_program(sp->program, file, sizeof file);
  if (r < 0) {
    *err = kern__program_error(r);
    return r;
  }
  kern__prog_make(&prog, file, sp->args, sp->n_args, sp->env, sp->n_env);
  k->spawn_ns_from = sp->ns_from - 1;
  k->spawn_rfflags = sp->rfflags;
  int p = kern__spawn(k, sp->name && sp->name[0] ? sp->name : sp->program,
                      &prog, err);
  k->spawn_ns_from = -1;
  k->spawn_rfflags = 0;
  if (p >= 0) {
    k->proc[p].pol.restart = sp->restart;
    k->proc[p].pol.deadline_ms = sp->deadline_ms;
    k->proc[p].waitable = sp->waitable;
    if (sp->protect) {
      k->kd->proc[p].flags |= UK_PROC_F_PROTECT;
      kos_publish(k);
    }
  }
  return p;
}

int kern__watch_adopted(struct kern *k, uint32_t p, int sock, int32_t pid) {
  struct kern_proc *kp = &k->proc[p];
  int r = watch_proc(k, p, sock);
  if (r < 0)
    return r;
  kp->attached = true; /* not our child: its hang-up is its end */
  kp->running = false;
  kp->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  return 0;
}

void kern__kill(struct kern *k, uint32_t p, int sig, const char *fault) {
  if (k->proc[p].pidfd >= 0 && sig != SIGSTOP && sig != SIGCONT &&
      syscall(SYS_pidfd_send_signal, k->proc[p].pidfd, sig, NULL, 0) == 0)
    return; /* taken over: its hang-up follows its death */
  if (k->proc[p].attached && sig != SIGSTOP && sig != SIGCONT &&
      k->proc[p].sock >= 0) {
    kern__proc_gone(k, p); /* not our child: it loses its connection */
    return;
  }
  if (!k->proc[p].running)
    return;
  if (fault && !k->proc[p].fault)
    k->proc[p].fault = fault;
  if (k->lockstep && sig != SIGSTOP && sig != SIGCONT)
    sched_killed(k, p);
  uv_kill_child(&k->proc[p].process, sig);
}

/* The machine link -------------------------------------------------------- */

void kern__reply(struct kern *k, uint64_t id, int status, const char *err,
                 Uksim__Reply *r) {
  Uksim__Reply def = UKSIM__REPLY__INIT;
  if (id == 0)
    return; /* asked by the kernel itself (a scenario action) */
  if (r == NULL)
    r = &def;
  r->status = status;
  r->error = (char *)(err ? err : "");
  (void)ctl_post_reply(&k->mout, id, r, -1);
}

static void machine_reply_exit(struct kern *k, uint32_t p) {
  struct kern_proc *kp = &k->proc[p];
  if (!kp->has_waiter)
    return;
  Uksim__Reply r = UKSIM__REPLY__INIT;
  r.proc = (int32_t)p;
  r.pid = k->kd->proc[p].pid;
  r.exit_status = k->kd->proc[p].exit_status;
  r.term_signal = k->kd->proc[p].term_signal;
  kp->has_waiter = false;
  kern__reply(k, kp->wait_ctl_id, 0, NULL, &r);
}

void kern__spawn_answer(struct kern *k, uint32_t p, int status,
                        const char *err) {
  struct kern_proc *kp = &k->proc[p];
  if (!kp->spawn_pending)
    return;
  kp->spawn_pending = false;
  Uksim__Reply r = UKSIM__REPLY__INIT;
  r.proc = (int32_t)p;
  r.pid = k->kd->proc[p].pid;
  kern__reply(k, kp->spawn_ctl_id, status, err, &r);
}

static bool live_slot(struct kern *k, int32_t p) {
  return p >= 0 && p < UK_PROC_MAX && k->kd->proc[p].state != UK_PROC_FREE;
}

static void do_ctl_wait(struct kern *k, uint64_t id, const Uksim__Wait *w) {
  if (!live_slot(k, w->proc)) {
    kern__reply(k, id, -ESRCH, "no such process", NULL);
    return;
  }
  struct kern_proc *kp = &k->proc[w->proc];
  if (kp->has_waiter) {
    kern__reply(k, id, -EBUSY, "someone already waits for this process", NULL);
    return;
  }
  kp->has_waiter = true;
  kp->wait_ctl_id = id;
  try_free_slot(k, (uint32_t)w->proc); /* already exited: answer now */
}

static void do_ctl_kill(struct kern *k, uint64_t id, const Uksim__Kill *kl) {
  if (!live_slot(k, kl->proc) || !k->proc[kl->proc].running) {
    kern__reply(k, id, -ESRCH, "no such process", NULL);
    return;
  }
  int sig = kl->signal ? kl->signal : SIGKILL;
  int r = uv_process_kill(&k->proc[kl->proc].process, sig);
  kern__reply(k, id, r, r ? uv_strerror(r) : NULL, NULL);
}

static void on_halt_timer(uv_timer_t *t) {
  struct kern *k = t->loop->data;
  for (int p = 0; p < UK_PROC_MAX; p++)
    if (k->proc[p].running)
      uv_kill_child(&k->proc[p].process, SIGKILL);
}

static void do_ctl_halt(struct kern *k, uint64_t id) {
  if (k->halting || k->halted) /* a second SIGTERM while leaving */
    return;
  k->halting = true;
  k->halt_id = id;
  kern__trace(k, "halt");
  for (uint32_t p = 0; p < UK_PROC_MAX; p++)
    if (k->proc[p].run == KS_EXITED) /* lock-step: not handled yet */
      kern__proc_exited(k, p);
  rep_halt(k);
  for (uint32_t p = 0; p < UK_PROC_MAX; p++)
    if (k->proc[p].attached && k->proc[p].sock >= 0)
      kern__proc_gone(k, p); /* uksim sh, uksim mount: their link closes */
  for (int p = 0; p < UK_PROC_MAX; p++)
    if (k->proc[p].running) {
      uv_kill_child(&k->proc[p].process, SIGTERM);
      uv_kill_child(&k->proc[p].process, SIGCONT); /* a stopped one too */
    }
  UV_CHECK(uv_timer_init(k->loop, &k->halt_timer));
  UV_CHECK(uv_timer_start(&k->halt_timer, on_halt_timer, HALT_GRACE_MS, 0));
  for (uint32_t p = 0; p < UK_PROC_MAX; p++)
    try_free_slot(k, p); /* exited, status never collected */
  halt_check(k);
}

static void on_machine(uv_poll_t *h, int status, int events);

/* Once every process is gone: drop what services still hold, report the
 * ICAs left (there should be none) and leave the loop. */
static void halt_check(struct kern *k) {
  if (!k->halting)
    return;
  for (int p = 0; p < UK_PROC_MAX; p++)
    if (k->kd->proc[p].state != UK_PROC_FREE)
      return;
  for (uint32_t i = 0; i < UK_ICA_MAX; i++) {
    const struct uk_ica_ent *e = &k->kd->ica[i];
    if (e->state == UK_ICA_LIVE && e->holder_kind == UK_HOLD_SVC)
      kern__ica_drop(k, KABI_ICA_ID(i, e->gen)); /* state, parked, hand-off */
  }
  kern__mnt_halt(k);  /* the mount driver's control ICAs */
  kern__disk_halt(k); /* written back; the cache's ICAs */
  for (int s = 0; s < UK_SVC_MAX; s++) {
    k->kd->svc[s].state_ica = KABI_ICA_NONE;
    k->kd->svc[s].handoff_ica = KABI_ICA_NONE;
    kern__prog_free(&k->svc[s].prog);
  }
  Uksim__Reply r = UKSIM__REPLY__INIT;
  r.icas_live = kern_ica_live(k->kd);
  r.ica_bytes = k->ica_bytes;
  kern__trace(k, "halted: %u ICAs live", r.icas_live);
  char live[48];
  snprintf(live, sizeof live, "%u ICAs live", r.icas_live);
  kern__event(k, &(struct kern_ev){
                     .ev = "halt", .status = (int)r.icas_live, .text = live});
  if (k->events)
    fflush(k->events); /* complete before the halt is answered */
  kern__reply(k, k->halt_id, 0, NULL, &r);
  k->halting = false;
  k->halted = true;
  uv_stop(k->loop);
}

/* The Attach control request: a process slot and a connection for a
 * program the kernel did not start (uksim sh, uksim mount).  It is never
 * `running` (no child to reap): closing its connection ends it. */
static void do_ctl_attach(struct kern *k, uint64_t id, const Uksim__Attach *a) {
  Uksim__Reply r = UKSIM__REPLY__INIT;
  const char *name = a->name && a->name[0] ? a->name : "attached";
  int sv[2];
  if (strlen(name) >= KABI_NAME_MAX) {
    kern__reply(k, id, -ENAMETOOLONG, "process name too long", NULL);
    return;
  }
  int p = kern_proc_alloc(k->kd, name, 0);
  if (p < 0) {
    kern__reply(k, id, -EAGAIN, "process table full", NULL);
    return;
  }
  int e = kern__ns_start(k, (uint32_t)p, a->ns_from - 1, a->rfflags);
  if (e < 0) {
    k->kd->proc[p].state = UK_PROC_FREE;
    kern__reply(k, id, e, "namespace tables full", NULL);
    return;
  }
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
    e = -errno;
    vfs_proc_release(k->kd, (uint32_t)p);
    k->kd->proc[p].state = UK_PROC_FREE;
    kern__reply(k, id, e, "socketpair failed", NULL);
    return;
  }
  if ((e = watch_proc(k, (uint32_t)p, sv[0])) < 0) {
    close(sv[1]);
    vfs_proc_release(k->kd, (uint32_t)p);
    k->kd->proc[p].state = UK_PROC_FREE;
    kern__reply(k, id, e, "cannot watch the connection", NULL);
    return;
  }
  k->proc[p].attached = true;
  k->kd->proc[p].flags |= UK_PROC_F_ATTACHED;
  k->kd->proc[p].pid = a->pid;
  kos_conn_hold(k, (uint32_t)p, sv[0]);
  k->kd->ctr.spawned++;
  kern__trace(k, "attach %s (pid %d)", name, a->pid);
  kern__event(
      k, &(struct kern_ev){.ev = "spawn", .peer = name, .text = "attached"});
  r.proc = p;
  r.pid = a->pid;
  Uksim__Ctl c = UKSIM__CTL__INIT;
  c.id = id;
  r.status = 0;
  r.error = "";
  c.body_case = UKSIM__CTL__BODY_REPLY;
  c.reply = &r;
  (void)ctl_post(&k->mout, &c, sv[1]);
  close(sv[1]);
}

static void do_ctl(struct kern *k, Uksim__Ctl *c) {
  const char *err = NULL;
  switch (c->body_case) {
  case UKSIM__CTL__BODY_SPAWN: {
    int p = spawn(k, c->spawn, &err);
    if (p >= 0 && c->spawn->until_registered) {
      k->proc[p].spawn_pending = true;
      k->proc[p].spawn_ctl_id = c->id;
      break;
    }
    Uksim__Reply r = UKSIM__REPLY__INIT;
    r.proc = p;
    r.pid = p >= 0 ? k->kd->proc[p].pid : 0;
    kern__reply(k, c->id, p < 0 ? p : 0, err, &r);
    break;
  }
  case UKSIM__CTL__BODY_WAIT:
    do_ctl_wait(k, c->id, c->wait);
    break;
  case UKSIM__CTL__BODY_KILL:
    do_ctl_kill(k, c->id, c->kill);
    break;
  case UKSIM__CTL__BODY_HALT:
    do_ctl_halt(k, c->id);
    break;
  case UKSIM__CTL__BODY_REPLACE:
    rep_ctl_replace(k, c->id, c->replace);
    break;
  case UKSIM__CTL__BODY_SCENARIO_WAIT:
    exec_wait(k, c->id);
    break;
  case UKSIM__CTL__BODY_PING:
    kern__stop_point(k, KSTOP_PING);
    kern__reply(k, c->id, 0, NULL, NULL);
    break;
  case UKSIM__CTL__BODY_ATTACH:
    do_ctl_attach(k, c->id, c->attach);
    break;
  default:
    kern__reply(k, c->id, -ENOSYS, "not a kernel request", NULL);
  }
}

static void on_machine(uv_poll_t *h, int status, int events) {
  struct kern *k = h->loop->data;
  int fds[UK_FDS_BATCH_MAX], err = 0;
  unsigned nfds = 0;
  (void)kern__retiring(k); /* before any message: kretire.c */
  if (status == 0 && (events & UV_WRITABLE))
    outbox_flush(&k->mout);
  if (status == 0 && !(events & (UV_READABLE | UV_DISCONNECT)))
    return;
  Uksim__Ctl *c =
      status == 0 ? ctl_recv_fds(k->msock, fds, &nfds, UK_FDS_BATCH_MAX, &err)
                  : NULL;
  if (c == NULL && (status < 0 || err != -EAGAIN)) {
    if (status < 0 || err == 0) { /* the machine is gone: so are we */
      UV_CHECK(uv_poll_stop(h));
      do_ctl_halt(k, 0);
    }
    return;
  }
  if (c == NULL)
    return;
  if (c->body_case == UKSIM__CTL__BODY_TAKE_OVER_BATCH) {
    kos_takeover_batch(k, c->take_over_batch, fds, nfds);
    uksim__ctl__free_unpacked(c, NULL);
    return;
  }
  for (unsigned i = 1; i < nfds; i++)
    close(fds[i]); /* one descriptor a message, but a batch */
  int fd = nfds > 0 ? fds[0] : -1;
  if (kos_msg(k, c, fd)) { /* Orthros's: IPIs, faults, takeover */
    uksim__ctl__free_unpacked(c, NULL);
    return;
  }
  if (fd >= 0)
    close(fd);
  do_ctl(k, c);
  uksim__ctl__free_unpacked(c, NULL);
}

static void on_sigterm(uv_signal_t *s, int sig) {
  (void)sig;
  do_ctl_halt(s->loop->data, 0);
}

/* Main -----------------------------------------------------------------------
 */

static struct uk_kdata *map_kdata(int fd) {
  if (ftruncate(fd, sizeof(struct uk_kdata)) < 0)
    return NULL;
  void *p = mmap(NULL, sizeof(struct uk_kdata), PROT_READ | PROT_WRITE,
                 MAP_SHARED, fd, 0);
  return p == MAP_FAILED ? NULL : p;
}

static void on_walk_close(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

#define KERN_ME "uksim kernel"

/* An option's number (include/uksim/num.h); 0, or -1 after saying why. */
static int opt_u64(const char *opt, const char *s, uint64_t max,
                   uint64_t *out) {
  return num_opt_u64(KERN_ME, opt, s, 0, max, 0, out);
}

/* --cache-migrate adopt|writeback (kern_disk_opts). */
static int migrate_opt(struct kern_disk_opts *o, const char *arg) {
  if (strcmp(arg, "adopt") != 0 && strcmp(arg, "writeback") != 0) {
    fprintf(stderr, "%s: --cache-migrate '%s': adopt or writeback\n", KERN_ME,
            arg);
    return -1;
  }
  o->cache_writeback = strcmp(arg, "writeback") == 0;
  return 0;
}

/* --disk PATH, --disk-size BYTES, --sync-ms MS, --cache-mib MIB,
 * --cache-migrate HOW. */
static int disk_opt(struct kern_disk_opts *o, int c, const char *arg) {
  uint64_t v;
  int r = 0;
  if (arg[0] == '\0' && c != 'D')
    return 0; /* "" from the machine: the default */
  if (c == 'M')
    r = migrate_opt(o, arg);
  else if (c == 'D')
    o->path = arg[0] ? arg : NULL;
  else if (c == 'z')
    r = num_opt_u64(KERN_ME, "--disk-size", arg, UK_DISK_BLOCK, KDISK_SIZE_MAX,
                    0, &o->size);
  else if (c == 'y')
    r = opt_u64("--sync-ms", arg, 86400000, &o->sync_ms);
  else if ((r = num_opt_u64(KERN_ME, "--cache-mib", arg, 4, KDISK_CACHE_MIB_MAX,
                            0, &v)) == 0)
    o->cache_mib = (uint32_t)v;
  return r;
}

/* --node-key FILE: the key the mount driver proves to a keyed exporter
 * (kmnt.c); the machine passes its own --node-key.  0, or -1 after saying
 * why. */
static int node_key_opt(struct kern *k, const char *path) {
  int r = p9_key_load(path, k->mkey);
  if (r < 0) {
    fprintf(stderr, "uksim kernel: --node-key %s: %s\n", path, strerror(-r));
    return -1;
  }
  k->mkeyed = true;
  return 0;
}

int kern_main(int argc, char **argv, const struct kern_ops *ops) {
  static const struct option opts[] = {
      {"os-id", required_argument, NULL, 'o'},
      {"budget", required_argument, NULL, 'b'},
      {"trace", required_argument, NULL, 't'},
      {"trace-file", required_argument, NULL, 'f'},
      {"scenario", required_argument, NULL, 's'},
      {"seed", required_argument, NULL, 'S'},
      {"dump-dir", required_argument, NULL, 'd'},
      {"poll-us", required_argument, NULL, 'p'},
      {"disk", required_argument, NULL, 'D'},
      {"disk-size", required_argument, NULL, 'z'},
      {"sync-ms", required_argument, NULL, 'y'},
      {"cache-mib", required_argument, NULL, 'c'},
      {"cache-migrate", required_argument, NULL, 'M'},
      {"role", required_argument, NULL, 'r'},
      {"heartbeat-ms", required_argument, NULL, 'H'},
      {"heartbeat-timeout-ms", required_argument, NULL, 'T'},
      {"nic-port", required_argument, NULL, 'N'},
      {"node-key", required_argument, NULL, 'K'},
      {NULL, 0, NULL, 0}};
  static const struct kern_ops none;
  const char *role = "active";
  uint64_t hb_ms = 0, hb_timeout_ms = MACH_HEARTBEAT_TIMEOUT_MS_DEFAULT;
  static struct kern k; /* large: the fd array */
  const char *scenario = NULL, *seed = NULL, *dump_dir = NULL;
  uint32_t os_id = 1;
  uint64_t nic_port = 0;
  uint64_t budget = 1ull << 32;
  const char *trace_file = NULL;
  uint64_t v, seed_v = 0;
  int64_t trace = 0;
  int c, r = 0;
  struct kern_disk_opts disk = {.size = KDISK_SIZE_DEFAULT,
                                .sync_ms = KDISK_SYNC_MS_DEFAULT,
                                .cache_mib = KDISK_CACHE_MIB_DEFAULT};

  k.ops = ops ? ops : &none;
  k.spawn_ns_from = -1;
  optind = 1;
  while (r == 0 && (c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (c == 'o' && (r = opt_u64("--os-id", optarg, UINT32_MAX, &v)) == 0)
      os_id = (uint32_t)v;
    else if (c == 'b')
      r = opt_u64("--budget", optarg, UINT64_MAX, &budget);
    else if (c == 't')
      r = num_opt_i64(KERN_ME, "--trace", optarg, -1, INT64_MAX, &trace);
    else if (c == 'f')
      trace_file = optarg[0] ? optarg : NULL;
    else if (c == 's')
      scenario = optarg[0] ? optarg : NULL;
    else if (c == 'S' && optarg[0] &&
             (r = opt_u64("--seed", optarg, UINT64_MAX, &seed_v)) == 0)
      seed = optarg;
    else if (c == 'd')
      dump_dir = optarg[0] ? optarg : NULL;
    else if (c == 'p' &&
             (r = opt_u64("--poll-us", optarg, MACH_POLL_US_MAX, &v)) == 0)
      k.poll_ns = v * 1000;
    else if (strchr("DzycM", c) != NULL)
      r = disk_opt(&disk, c, optarg);
    else if (c == 'r')
      role = optarg;
    else if (c == 'H')
      r = opt_u64("--heartbeat-ms", optarg, MACH_HEARTBEAT_MS_MAX, &hb_ms);
    else if (c == 'T')
      r = opt_u64("--heartbeat-timeout-ms", optarg, MACH_HEARTBEAT_MS_MAX,
                  &hb_timeout_ms);
    else if (c == 'N')
      r = opt_u64("--nic-port", optarg, UINT16_MAX - UK_NIC_PORTS, &nic_port);
    else if (c == 'K')
      r = node_key_opt(&k, optarg);
    else if (strchr("obtfsSdprHTDzycMNK", c) == NULL)
      r = -EINVAL;
  }
  if (r < 0)
    return 2;
  k.trace_left = trace;
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  close_range(6, ~0u, 0); /* the machine link, kernel data, inter-OS */
  if (mach_fd_limit(UK_ICA_MAX + MACH_FD_RESERVE) < 0) {
    fprintf(stderr,
            "uksim kernel: too few descriptors for %d ICAs (raise "
            "'ulimit -n'; README \"Limits\")\n",
            UK_ICA_MAX);
    return 1;
  }
  k.msock = 3;
  k.kd = map_kdata(4);
  if (k.kd == NULL) {
    fprintf(stderr, "uksim kernel: no kernel-data region on fd 4 "
                    "(the kernel is started by the machine)\n");
    return 1;
  }
  close(4);
  if ((trace_file && k.ops->write_event == NULL) ||
      (scenario && k.ops->start == NULL)) {
    fprintf(stderr, "uksim kernel: this kernel has no %s\n",
            scenario ? "scenario executor" : "event writer");
    return 1;
  }
  if (trace_file && (k.events = fopen(trace_file, "we")) == NULL) {
    fprintf(stderr, "uksim kernel: cannot write the trace %s: %m\n",
            trace_file);
    return 1;
  }
  kern_kdata_init(k.kd, getpid(), os_id, budget);
  k.t0_ns = kern__now_ns();
  k.kd->hdr.boot_ns = k.t0_ns;
  for (int i = 0; i < UK_ICA_MAX; i++)
    k.ica_fd[i] = -1;
  for (int i = 0; i < UK_PROC_MAX; i++) {
    k.proc[i].sock = -1;
    k.proc[i].pidfd = -1; /* 0 would be stdin: closed at the exit */
  }
  k.loop = uv_default_loop();
  k.loop->data = &k;
  fcntl(k.msock, F_SETFL, fcntl(k.msock, F_GETFL) | O_NONBLOCK);
  fcntl(k.msock, F_SETFD, FD_CLOEXEC);
  if (uv_poll_init(k.loop, &k.mpoll, k.msock) < 0)
    return 1;
  outbox_init(&k.mout, k.msock, &k.mpoll, on_machine,
              UV_READABLE | UV_DISCONNECT);
  UV_CHECK(uv_poll_start(&k.mpoll, UV_READABLE | UV_DISCONNECT, on_machine));
  static const int sigs[] = {SIGTERM, SIGHUP, SIGINT};
  for (int i = 0; i < 3; i++)
    if (uv_signal_init(k.loop, &k.sig[i]) < 0 ||
        uv_signal_start(&k.sig[i], on_sigterm, sigs[i]) < 0)
      return 1;
  if (kern__update_stop_init(&k) < 0)
    return 1;
  signal(SIGPIPE, SIG_IGN);
  k.os.id = os_id;
  /* Request numbers (the trace's req) are unique across the OSes of a
   * machine: the Nth starts at (N-1) << 40, so that a request adopted
   * from a dead OS keeps its number and no new one takes it. */
  k.req_seqno = (uint64_t)(os_id - 1) << 40;
  if (kos_init(&k, role, hb_ms, hb_timeout_ms, 5) < 0) {
    fprintf(stderr, "uksim kernel: --role active or backup, not %s\n", role);
    return 2;
  }
  close(5);
  kern__trace(&k, "kernel up: os %u (%s), budget %llu MiB", os_id, role,
              (unsigned long long)(budget >> 20));
  UV_CHECK(uv_idle_init(k.loop, &k.poll));
  kern__sleep_init(&k);
  rep_init(&k);
  kern__host_init(&k);
  knic_init(&k, (uint16_t)nic_port);
  if (kern__mnt_init(&k) < 0) {
    fprintf(stderr, "uksim kernel: the mount driver #M could not register\n");
    return 1;
  }
  k.disk_opts = disk;
  if (k.os.role == KOS_ACTIVE && kern__disk_start(&k, &disk) < 0)
    return 1; /* a backup's disk is the active's until a failover */
  if (scenario &&
      k.ops->start(&k, scenario, seed_v, seed != NULL, dump_dir) < 0)
    return 1;
  uv_run(k.loop, UV_RUN_DEFAULT);
  signal(SIGTERM, SIG_IGN); /* halted: a late signal must not kill us */
  signal(SIGHUP, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  /* The halt reply may still be queued: deliver it before leaving. */
  fcntl(k.msock, F_SETFL, fcntl(k.msock, F_GETFL) & ~O_NONBLOCK);
  outbox_flush(&k.mout);
  outbox_clear(&k.mout);
  uv_walk(k.loop, on_walk_close, NULL);
  uv_run(k.loop, UV_RUN_DEFAULT);
  uv_loop_close(k.loop);
  munmap(k.kd, sizeof *k.kd);
  if (k.events)
    fclose(k.events);
  close(k.msock);
  return 0;
}
