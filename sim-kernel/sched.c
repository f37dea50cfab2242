/* The kernel's clock, its timers, and the lock-step scheduler (DESIGN.md
 * "Determinism").
 *
 * Free-running (the default, and for benchmarks): calls are performed as
 * they arrive, timers are libuv timers, the clock is CLOCK_MONOTONIC.
 *
 * Lock-step: the kernel performs one step at a time, and only when the
 * system is quiescent.  Each process slot is, as the scheduler sees it:
 *
 *   RUNNING  executing its own code (spawned, or just answered)
 *   CALLED   its call arrived and waits to be performed: an enabled step
 *   BLOCKED  its call was performed and deferred (receive, await, sleep,
 *            state_get): it waits for another step to answer it
 *   HUNG     silent past the wall-clock grace while RUNNING; declared hung
 *            at the current virtual time (a later call revives it)
 *   DYING    killed by the kernel; its exit has not been reported yet
 *   EXITED   its exit was reported and waits to be handled: an enabled step
 *   NONE     no process
 *
 *   RUNNING --call arrives--> CALLED --performed, answered--> RUNNING
 *                                    --performed, deferred--> BLOCKED
 *   BLOCKED --answered by a step--> RUNNING
 *   RUNNING --grace passes--> HUNG --call arrives--> CALLED
 *   any --killed--> DYING;  any --exit reported--> EXITED --handled--> NONE
 *
 * Quiescent: no slot RUNNING or DYING.  Then a timer whose time has come
 * fires (the earliest first; ties in the order they were started); else,
 * with the seeded PRNG, one enabled step (CALLED or EXITED, listed in slot
 * order) is performed; when there is none, the clock jumps to the earliest
 * timer, which fires.  Each performed step
 * advances the virtual clock by SCHED_STEP_NS, so virtual latencies count
 * steps.  A process's behaviour depends only on the answers it gets, so
 * the same seed gives the same steps, and the same trace, on every run.
 *
 * When nothing is enabled and no timer is set, the run is idle and the
 * scenario executor (kern_ops, kern.h) decides whether it is over. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kern.h"
#include "uksim/uv_check.h"

#define SCHED_STEP_NS 5000ull /* virtual time one step takes */

static const struct kern *clock_k; /* lock-step: whose virtual clock */

uint64_t kern__now_ns(void) {
  if (clock_k)
    return clock_k->vnow;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* splitmix64: small, well mixed, and the same on every machine. */
uint64_t kern__rand(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Timers ------------------------------------------------------------------ */

static void on_uv_timer(uv_timer_t *t) {
  struct ktimer *kt = t->data;
  struct kern *k = t->loop->data;
  /* A retiring kernel (kretire.c) enters that state before any timer's
   * work: this one may be a moved process's, stopped by the entry. */
  if (kern__retiring(k) && !kt->on)
    return;
  if (kt->period_ns == 0)
    kt->on = false;
  kt->cb(k, kt);
}

void kern__timer_init(struct kern *k, struct ktimer *t, ktimer_cb cb,
                      void *arg) {
  memset(t, 0, sizeof *t);
  t->cb = cb;
  t->arg = arg;
  UV_CHECK(uv_timer_init(k->loop, &t->uv));
  t->uv.data = t;
}

static void vt_remove(struct kern *k, struct ktimer *t) {
  for (size_t i = 0; i < k->nvt; i++)
    if (k->vt[i] == t) {
      k->vt[i] = k->vt[--k->nvt];
      return;
    }
}

void kern__timer_start(struct kern *k, struct ktimer *t, uint64_t ns,
                       uint64_t period_ns) {
  kern__timer_stop(k, t);
  t->on = true;
  t->period_ns = period_ns;
  t->after_ns = ns;
  if (!k->lockstep) {
    UV_CHECK(uv_timer_start(&t->uv, on_uv_timer, (ns + 999999) / 1000000,
                            (period_ns + 999999) / 1000000));
    return;
  }
  if (k->nvt == KERN_VTIMERS_MAX) { /* cannot happen: one per owner */
    fprintf(stderr, "uksim kernel: too many virtual timers\n");
    abort();
  }
  t->due_ns = k->vnow + ns;
  t->seq = ++k->vt_seq;
  k->vt[k->nvt++] = t;
}

void kern__timer_stop(struct kern *k, struct ktimer *t) {
  if (!t->on)
    return;
  t->on = false;
  if (k->lockstep)
    vt_remove(k, t);
  else
    UV_CHECK(uv_timer_stop(&t->uv));
}

/* The earliest virtual timer (or foreground timer), or NULL. */
static struct ktimer *vt_next(struct kern *k, bool foreground) {
  struct ktimer *best = NULL;
  for (size_t i = 0; i < k->nvt; i++) {
    struct ktimer *t = k->vt[i];
    if (foreground && t->background)
      continue;
    if (!best || t->due_ns < best->due_ns ||
        (t->due_ns == best->due_ns && t->seq < best->seq))
      best = t;
  }
  return best;
}

static void vt_fire(struct kern *k, struct ktimer *t) {
  if (t->due_ns > k->vnow)
    k->vnow = t->due_ns;
  if (t->period_ns) {
    t->due_ns += t->period_ns;
    t->seq = ++k->vt_seq;
  } else {
    vt_remove(k, t);
    t->on = false;
  }
  t->cb(k, t);
}

/* The scheduler ----------------------------------------------------------- */

static bool quiescent(const struct kern *k) {
  if (k->mnet_pending > 0)
    return false; /* an external 9P server's answer is on its way */
  for (int p = 0; p < UK_PROC_MAX; p++)
    if (k->proc[p].run == KS_RUNNING || k->proc[p].run == KS_DYING)
      return false;
  return true;
}

static void perform_call(struct kern *k, uint32_t p) {
  struct kern_proc *kp = &k->proc[p];
  kabi_msg m = kp->pending;
  kp->run = KS_BLOCKED; /* kern__answer makes it RUNNING */
  if (kp->pending_bad) {
    k->kd->ctr.bad_calls++;
    k->kd->proc[p].errors++;
    kern__answer_status(k, p, m.hdr.seq, -EBADMSG);
    return;
  }
  kern__dispatch(k, p, &m);
}

/* Performs one step: a timer whose time has come, else a call or an exit
 * chosen by the seeded PRNG, else the next timer.  False: nothing can
 * happen. */
static bool one_step(struct kern *k) {
  uint32_t en[UK_PROC_MAX];
  uint32_t n = 0;
  struct ktimer *due = vt_next(k, false);
  if (due && due->due_ns <= k->vnow) { /* its time has come: it goes first */
    k->kd->hdr.step++;
    vt_fire(k, due);
    return true;
  }
  for (uint32_t p = 0; p < UK_PROC_MAX; p++)
    if (k->proc[p].run == KS_CALLED || k->proc[p].run == KS_EXITED)
      en[n++] = p;
  if (n > 0) {
    uint32_t p = en[kern__rand(&k->rng) % n];
    k->kd->hdr.step++;
    k->vnow += SCHED_STEP_NS;
    if (k->proc[p].run == KS_CALLED)
      perform_call(k, p);
    else
      kern__proc_exited(k, p);
    return true;
  }
  /* Nothing enabled: the clock jumps to the next timer.  A background
   * timer due before the next foreground one fires first (time order); only
   * background timers left: the executor may act, or the run is over. */
  struct ktimer *t = vt_next(k, true);
  if (t == NULL) {
    if (kern__exec_idle(k))
      return true;
    if ((t = vt_next(k, false)) == NULL)
      return false;
  } else {
    t = vt_next(k, false);
  }
  k->kd->hdr.step++;
  vt_fire(k, t);
  return true;
}

static void grace_expired(uv_timer_t *t) {
  struct kern *k = t->loop->data;
  for (int p = 0; p < UK_PROC_MAX; p++) {
    struct kern_proc *kp = &k->proc[p];
    if (kp->run != KS_RUNNING && kp->run != KS_DYING)
      continue;
    kern__trace(k, "%s silent for %llu ms: declared hung", k->kd->proc[p].name,
                (unsigned long long)k->grace_ms);
    kp->run = KS_HUNG;
  }
  sched_run(k);
}

/* Restarted on every sign of progress (a call, an exit, a step), not on
 * every turn of the loop, which other I/O may keep turning; runs only
 * while someone runs. */
static void grace_rearm(struct kern *k) {
  if (quiescent(k))
    UV_CHECK(uv_timer_stop(&k->grace_timer));
  else if (k->progress || !uv_is_active((uv_handle_t *)&k->grace_timer))
    UV_CHECK(uv_timer_start(&k->grace_timer, grace_expired, k->grace_ms, 0));
  k->progress = false;
}

void sched_run(struct kern *k) {
  if (!k->lockstep || k->sched_busy || k->frozen)
    return;
  k->sched_busy = true; /* a step may call back into here */
  while (!k->halting && !k->frozen && quiescent(k)) {
    if (!one_step(k)) {
      kern__exec_limit(k,
                       "a deadlock: every process waits and no timer is set");
      break;
    }
    kern__exec_after_step(k);
    k->progress = true;
    if (k->steps_max && k->kd->hdr.step >= k->steps_max) {
      kern__exec_limit(k, "the step limit");
      break;
    }
    if (k->time_max_ns && k->vnow >= k->time_max_ns) {
      kern__exec_limit(k, "the virtual time limit");
      break;
    }
  }
  k->sched_busy = false;
  grace_rearm(k);
}

static void on_check(uv_check_t *c) {
  sched_run(c->loop->data);
}

void sched_init(struct kern *k, uint64_t seed, uint64_t grace_ms) {
  k->lockstep = true;
  k->rng = seed;
  k->grace_ms = grace_ms;
  k->vnow = 0;
  clock_k = k;
  UV_CHECK(uv_timer_init(k->loop, &k->grace_timer));
  UV_CHECK(uv_check_init(k->loop, &k->check));
  UV_CHECK(uv_check_start(&k->check, on_check));
}

/* A process is hung (SIGSTOP) at a point that does not depend on the host's
 * timing: one blocked in a call (or whose call waits to be performed) is
 * stopped at once; one that runs is stopped when its next call arrives,
 * and that call is dropped unperformed, as if it had stopped just before
 * making it.  Free-running, it is stopped wherever it is. */
void sched_hang(struct kern *k, uint32_t p) {
  struct kern_proc *kp = &k->proc[p];
  if (k->lockstep && kp->run == KS_RUNNING) {
    kp->hang_pending = true;
    return;
  }
  uv_kill_child(&kp->process, SIGSTOP);
}

bool sched_call_arrived(struct kern *k, uint32_t p, kabi_msg *m, bool bad) {
  struct kern_proc *kp = &k->proc[p];
  if (kp->run == KS_CALLED || kp->run == KS_BLOCKED)
    return false; /* a second call in flight: the ABI is broken */
  if (kp->run == KS_HUNG)
    fprintf(stderr,
            "uksim kernel: %s called after being declared hung; the run "
            "is not deterministic: raise the grace (machine --grace)\n",
            k->kd->proc[p].name);
  if (kp->run == KS_DYING) {
    kabi_msg_close_fds(m); /* killed: its last words are not a step */
    return true;
  }
  if (kp->hang_pending) {
    kabi_msg_close_fds(m);
    kp->hang_pending = false;
    uv_kill_child(&kp->process, SIGSTOP);
    kp->run = KS_HUNG;
    k->progress = true;
    kern__trace(k, "%s hung before its call", k->kd->proc[p].name);
    return true;
  }
  kp->pending = *m;
  kp->pending_bad = bad;
  kp->run = KS_CALLED;
  k->progress = true;
  return true;
}

void sched_exit_arrived(struct kern *k, uint32_t p) {
  k->proc[p].run = KS_EXITED;
  k->progress = true;
}

void sched_killed(struct kern *k, uint32_t p) {
  struct kern_proc *kp = &k->proc[p];
  if (kp->run == KS_CALLED)
    kabi_msg_close_fds(&kp->pending);
  if (kp->run != KS_EXITED && kp->run != KS_NONE)
    kp->run = KS_DYING;
}
