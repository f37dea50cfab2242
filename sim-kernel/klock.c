/* Kernel locks (seed 003 §4): words in kernel data (struct uk_lock,
 * kdata.h) that say which critical path of the kernel is entered, for
 * whom and since when, so that a monitor reading the region from outside
 * finds a lock that is never released.
 *
 * The kernel is one libuv loop: two paths never run at once, so a lock is
 * not for mutual exclusion between threads.  It is held while a call is
 * inside the path that changes its table (kern__run_call takes the lock
 * of the call's op around the call).  A call that finds its lock held
 * (a path that left it held: the injected deadlock, kfault.c) waits: it
 * is parked, its process WAITING, and run when the lock is dropped.  The
 * lock is not recursive, so an owner that comes back for it waits too.
 *
 * Per lock: FREE -> (take) HELD -> (drop) FREE, acquires counting takes;
 * a drop runs the parked calls in process order.
 */
#include <errno.h>
#include <string.h>

#include "kern.h"

/* The monotonic host clock the monitor reads too (never lock-step's
 * virtual one: another process compares it with its own). */
static uint64_t host_ns(void) {
  return uv_hrtime();
}

int kern__lock_of_call(uint16_t op) {
  switch (op) {
  case KABI_ICA_CREATE:
  case KABI_ICA_RELEASE:
    return UK_LOCK_ICA;
  case KABI_REGISTER:
  case KABI_LOOKUP:
  case KABI_SEND:
  case KABI_CALL:
  case KABI_AWAIT:
  case KABI_RECEIVE:
  case KABI_REPLY:
  case KABI_REPLY_RECEIVE:
  case KABI_REPLY_MANY_RECEIVE:
    return UK_LOCK_SVC;
  case KABI_NS:
    return UK_LOCK_NS;
  default:
    return -1;
  }
}

void kern__lock_take(struct kern *k, int l, uint32_t owner) {
  struct uk_lock *lk = &k->kd->lock[l];
  lk->owner = owner;
  lk->since_ns = host_ns();
  lk->acquires++;
  __atomic_store_n(&lk->held, 1, __ATOMIC_RELEASE);
}

bool kern__lock_park(struct kern *k, uint32_t p, const kabi_msg *m) {
  int l = kern__lock_of_call(m->hdr.op);
  if (l < 0 || !k->kd->lock[l].held)
    return false;
  struct uk_proc *pp = kd_proc(k, p);
  k->mon.parked[p] = *m;
  k->mon.parked_lock[p] = (uint8_t)(l + 1);
  k->kd->lock[l].waiters++;
  pp->state = UK_PROC_WAITING;
  kd_psched(k, p)->wait_op = UK_WAIT_LOCK; /* not started: no result due */
  kd_psched(k, p)->wait_seq = m->hdr.seq;
  kd_psched(k, p)->wait_ns = host_ns();
  kern__trace(k, "%s waits for lock %s", pp->name, kmon_lock_name((uint32_t)l));
  return true;
}

/* Runs the calls parked on lock l, in process order, while it is free. */
static void unpark(struct kern *k, int l) {
  for (uint32_t p = 0; p < UK_PROC_MAX && !k->kd->lock[l].held; p++) {
    if (k->mon.parked_lock[p] != (uint8_t)(l + 1))
      continue;
    k->mon.parked_lock[p] = 0;
    k->kd->lock[l].waiters--;
    kd_proc(k, p)->state = UK_PROC_RUNNING;
    kern__run_call(k, p, &k->mon.parked[p]);
  }
}

void kern__lock_drop(struct kern *k, int l) {
  if (k->mon.leak == l + 1) {
    k->mon.leak = 0; /* the injected deadlock: this path forgets it */
    kern__trace(k, "lock %s left held (injected deadlock)",
                kmon_lock_name((uint32_t)l));
    return;
  }
  __atomic_store_n(&k->kd->lock[l].held, 0, __ATOMIC_RELEASE);
  unpark(k, l);
}

void kern__lock_forget(struct kern *k, uint32_t p) {
  uint8_t l = k->mon.parked_lock[p];
  if (l == 0)
    return;
  k->mon.parked_lock[p] = 0;
  if (k->kd->lock[l - 1].waiters > 0)
    k->kd->lock[l - 1].waiters--;
}
