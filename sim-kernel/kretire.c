/* The retiring kernel (issue 15, kkeep.h has both state machines): an old
 * kernel that a kernel update did not fence because it keeps processes
 * the update could not carry.  The machine resumes it once the new kernel
 * has everything else; from its first callback on it serves only its
 * kept processes and ends when the last of them ends.
 *
 * Invariant: after kern__retiring() first returns true, the kernel never
 * reads, answers or signals a moved process: their connections are
 * closed unread (the new kernel has them), their deferred calls
 * forgotten, and their exits (they stay our Linux children) are passed to
 * the new active as OrphanExit messages, never traced as faults and
 * never restarted.  Every callback that could reach a moved process or a
 * role (a process's, the link's, the heartbeat's, nic0's) calls
 * kern__retiring() before it does anything else.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "kern.h"
#include "kkeep.h"
#include "ktab.h"
#include "uksim/interos.h"
#include "uksim/uv_check.h"

static void on_moved_poll_closed(uv_handle_t *h) {
  struct kern *k = h->loop->data;
  k->proc[(uint32_t)(uintptr_t)h->data].polling = false;
}

/* Moved process p: its connection is the new kernel's.  Closed unread;
 * no ConnDrop (the machine handed its own copy over already). */
static void drop_moved(struct kern *k, uint32_t p) {
  struct kern_proc *kp = &k->proc[p];
  kp->ns_waiting = false;
  kp->run = KS_NONE;
  kern__timer_stop(k, &k->sleep_timer[p]);
  if (kp->sock >= 0) {
    uv_close((uv_handle_t *)&kp->poll, on_moved_poll_closed);
    close(kp->sock);
    kp->sock = -1;
  }
  if (kp->pidfd >= 0)
    close(kp->pidfd);
  kp->pidfd = -1;
  /* Out of this kernel's table (it is in the new kernel's); the pid
   * stays for its exit to be passed on.  The slot is never reused: a
   * retiring kernel spawns nothing. */
  k->kd->proc[p].state = UK_PROC_FREE;
}

/* A kept process's requests that a service queues or holds: the service
 * moved, so they are answered -EXDEV here rather than never (another
 * client's belong to the new kernel now: left alone, never answered). */
static void fail_kept_requests(struct kern *k) {
  for (uint32_t i = 0; i < UK_REQ_MAX; i++) {
    struct uk_req *r = &k->kd->req[i];
    if ((r->state != UK_REQ_QUEUED && r->state != UK_REQ_IN_SERVICE) ||
        r->client >= UK_PROC_MAX ||
        !(k->kd->proc[r->client].flags & UK_PROC_F_KEPT))
      continue;
    if (r->state == UK_REQ_QUEUED) {
      struct uk_svc *sv = &k->kd->svc[r->svc];
      kern_q_remove(k->kd, &sv->q_head, &sv->q_tail, &sv->q_len, i);
    }
    kern__complete(k, i, -EXDEV);
  }
}

/* Its kept processes and its services' state, as `uksim ps` reads them. */
static uint32_t mark_kept(struct kern *k) {
  uint32_t n = 0;
  for (uint32_t p = 0; p < UK_PROC_MAX; p++) {
    if (k->kd->proc[p].state == UK_PROC_FREE)
      continue;
    if (kkeep_kept(k->os.io, k->os.id, p)) {
      k->kd->proc[p].flags |= UK_PROC_F_KEPT;
      n++;
    } else
      drop_moved(k, p);
  }
  for (uint32_t s = 0; s < UK_SVC_MAX; s++)
    if (k->kd->svc[s].state != UK_SVC_FREE) {
      k->kd->svc[s].state = UK_SVC_DOWN; /* it serves on the new kernel */
      k->kd->svc[s].proc = UK_NIL;
    }
  fail_kept_requests(k);
  return n;
}

static void retire(struct kern *k) {
  k->os.role = KOS_RETIRING;
  k->exec = NULL; /* the scenario goes on on the new kernel */
  UV_CHECK(uv_timer_stop(&k->os.hb_timer));
  UV_CHECK(uv_timer_stop(&k->os.watch_timer));
  uint32_t n = mark_kept(k);
  char text[96];
  snprintf(text, sizeof text,
           "retiring: a kernel update left %u processes here", n);
  kern__trace(k, "%s", text);
  kern__event(
      k, &(struct kern_ev){
             .ev = "kupdate", .op = "retire", .status = (int)n, .text = text});
  kern__retire_check(k); /* they may have ended while it was stopped */
}

bool kern__retiring(struct kern *k) {
  if (k->os.role == KOS_RETIRING)
    return true;
  if (k->os.role != KOS_ACTIVE || k->os.io == NULL ||
      __atomic_load_n(&k->os.io->keep_os, __ATOMIC_ACQUIRE) != k->os.id)
    return false;
  retire(k);
  return true;
}

/* The machine's KKEEP_STOP_SIGNAL (kkeep.h): an update that may keep
 * processes.  The kernel stops here, in a callback, so that no step is
 * half done when it stops: resumed as the retiring kernel, its next
 * callback enters that state before it touches a moved process.  A late
 * one (pending while stopped elsewhere, seen after the resume) or one
 * during a halt does nothing. */
static void on_update_stop(uv_signal_t *s, int sig) {
  (void)sig;
  struct kern *k = s->loop->data;
  if (k->os.role != KOS_ACTIVE || k->halting || kern__retiring(k))
    return;
  raise(SIGSTOP);
}

int kern__update_stop_init(struct kern *k) {
  if (uv_signal_init(k->loop, &k->update_stop) < 0 ||
      uv_signal_start(&k->update_stop, on_update_stop, KKEEP_STOP_SIGNAL) < 0)
    return -1;
  uv_unref((uv_handle_t *)&k->update_stop); /* keeps no loop running */
  return 0;
}

/* The calls that reach a service: every service moved to the new
 * kernel, so a kept process's is refused (-EXDEV), never queued for a
 * server that will not come. */
static const char *service_call(uint16_t op) {
  switch (op) {
  case KABI_LOOKUP:
    return "lookup";
  case KABI_SEND:
    return "send";
  case KABI_CALL:
    return "call";
  case KABI_REGISTER:
    return "register";
  default:
    return NULL;
  }
}

bool kern__retire_refuses(struct kern *k, uint32_t p, uint16_t op) {
  const char *call = service_call(op);
  if (call == NULL || !kern__retiring(k))
    return false;
  char text[96];
  snprintf(text, sizeof text, "%s's %s refused: -EXDEV, services moved",
           k->kd->proc[p].name, call);
  kern__trace(k, "%s", text);
  kern__event(k, &(struct kern_ev){.ev = "kupdate",
                                   .op = "exdev",
                                   .actor = k->kd->proc[p].name,
                                   .status = -EXDEV,
                                   .text = text});
  return true;
}

static void on_moved_closed(uv_handle_t *h) {
  struct kern *k = h->loop->data;
  uint32_t p = (uint32_t)(uintptr_t)h->data;
  k->proc[p].running = false;
}

/* A moved process (our child still) exited: the new active hears of it
 * as of an orphan's, through the machine. */
static void pass_exit_on(struct kern *k, uint32_t p, int64_t status, int sig) {
  Uksim__OrphanExit e = UKSIM__ORPHAN_EXIT__INIT;
  Uksim__Ctl c = UKSIM__CTL__INIT;
  e.pid = k->kd->proc[p].pid;
  e.exit_status = (int32_t)status;
  e.term_signal = sig;
  e.os = k->os.id;
  e.proc = (int32_t)p;
  c.body_case = UKSIM__CTL__BODY_ORPHAN_EXIT;
  c.orphan_exit = &e;
  (void)ctl_post(&k->mout, &c, -1);
  uv_close((uv_handle_t *)&k->proc[p].process, on_moved_closed);
}

static bool kept(const struct kern *k, uint32_t p) {
  return k->kd->proc[p].flags & UK_PROC_F_KEPT;
}

static bool kept_alive(const struct kern *k, uint32_t p) {
  uint8_t st = k->kd->proc[p].state;
  return kept(k, p) && (st == UK_PROC_RUNNING || st == UK_PROC_WAITING);
}

/* Whether p is the last kept process alive. */
static bool last_kept(const struct kern *k, uint32_t p) {
  for (uint32_t q = 0; q < UK_PROC_MAX; q++)
    if (q != p && kept_alive(k, q))
      return false;
  return true;
}

/* A kept process's exit is ours to trace (the normal path), and the new
 * active hears of it too, so that its scenario executor, which waits for
 * a retiring kernel (kkeep_retiring), looks again.  Before the last one
 * is told, the keep record is cleared: the retiring kernel's last word. */
static void tell_kept_exit(struct kern *k, uint32_t p, int64_t status,
                           int sig) {
  Uksim__OrphanExit e = UKSIM__ORPHAN_EXIT__INIT;
  Uksim__Ctl c = UKSIM__CTL__INIT;
  if (last_kept(k, p) && k->os.io)
    __atomic_store_n(&k->os.io->keep_os, 0, __ATOMIC_RELEASE);
  e.pid = k->kd->proc[p].pid;
  e.exit_status = (int32_t)status;
  e.term_signal = sig;
  e.os = k->os.id;
  e.proc = -1; /* no slot of the new kernel's */
  c.body_case = UKSIM__CTL__BODY_ORPHAN_EXIT;
  c.orphan_exit = &e;
  (void)ctl_post(&k->mout, &c, -1);
}

bool kern__retire_exit(struct kern *k, uint32_t p, int64_t status, int sig) {
  if (!kern__retiring(k) || k->halting)
    return false;
  if (kept(k, p)) {
    tell_kept_exit(k, p, status, sig);
    return false;
  }
  pass_exit_on(k, p, status, sig);
  return true;
}

void kern__retire_check(struct kern *k) {
  if (k->os.role != KOS_RETIRING || k->halting || k->halted)
    return;
  if (k->events)
    fflush(k->events); /* no executor flushes for us (retire) */
  for (uint32_t p = 0; p < UK_PROC_MAX; p++)
    if (kept_alive(k, p))
      return;
  kern__retire_done(k);
}

void kern__retire_done(struct kern *k) {
  kern__trace(k, "retired: its last kept process ended");
  kern__event(k, &(struct kern_ev){.ev = "kupdate",
                                   .op = "retired",
                                   .text = "its last kept process ended"});
  if (k->events)
    fflush(k->events);
  /* Not the halt path: that would signal the moved processes, still our
   * Linux children.  Leaving the loop ends the kernel; they become the
   * machine's (its subreaper), which passes their exits on. */
  k->halted = true;
  uv_stop(k->loop);
}
