/* In-kernel faults for the seed-003 monitor (seed 003 §4), injected by
 * the Fault control message (uksim fault, the scenario's `fault kernel`).
 * Each breaks the kernel from inside while its loop, timers and
 * heartbeat go on, so that only a reader of its tables finds it:
 *
 * - deadlock: the next path through the named lock does not drop it
 *   (klock.c: kern__lock_drop), so every later call needing it waits;
 * - runaway: a kernel timer takes KFAULT_RUNAWAY_ICA_BYTES of ICA memory
 *   every KFAULT_RUNAWAY_TICK_MS and spawns a process every
 *   KFAULT_RUNAWAY_SPAWN_EVERY ticks, until the budget, the ICA table or
 *   KFAULT_RUNAWAY_PROCS_MAX processes stop it (the host survives: the
 *   ICAs are sparse memfds, the processes sleep KFAULT_RUNAWAY_SLEEP
 *   seconds and end by themselves, so that none spawned by a kernel
 *   killed mid-spawn outlives its run for long);
 * - stalled driver: the pipe servant's writes no longer wake the readers
 *   waiting for their data (kns.c asks kern__fault_stall).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kern.h"
#include "uksim/uv_check.h"

static int lock_named(const char *name) {
  for (int l = 0; l < UK_LOCK_COUNT; l++)
    if (strcmp(name, kmon_lock_name((uint32_t)l)) == 0)
      return l;
  return name[0] ? -1 : UK_LOCK_ICA;
}

/* One process that does nothing, for the runaway's process growth. */
static void runaway_spawn(struct kern *k) {
  static char *args[] = {KFAULT_RUNAWAY_SLEEP, NULL};
  struct kern_prog prog;
  const char *err;
  kern__prog_make(&prog, "/bin/sleep", args, 1, NULL, 0);
  if (kern__spawn(k, "runaway", &prog, &err) >= 0)
    k->mon.runaway_spawned++;
}

static void on_runaway(uv_timer_t *t) {
  struct kern *k = t->loop->data;
  uint32_t id;
  void *base;
  if (k->kd->lock[UK_LOCK_ICA].held)
    return; /* the kernel's own path waits for the table too */
  kern__lock_take(k, UK_LOCK_ICA, UK_KCLIENT);
  int r = kern__ica_new(k, KABI_ICA_DATA, KFAULT_RUNAWAY_ICA_BYTES, &id, &base);
  kern__lock_drop(k, UK_LOCK_ICA);
  if (r == 0)
    munmap(base, KFAULT_RUNAWAY_ICA_BYTES); /* kept, held by the kernel */
  if (++k->mon.runaway_ticks % KFAULT_RUNAWAY_SPAWN_EVERY == 0 &&
      k->mon.runaway_spawned < KFAULT_RUNAWAY_PROCS_MAX)
    runaway_spawn(k);
  if (r < 0 && k->mon.runaway_spawned >= KFAULT_RUNAWAY_PROCS_MAX) {
    uv_timer_stop(t);
    kern__trace(k, "runaway: stopped by the machine's limits");
  }
}

void kern__fault(struct kern *k, int kind, const char *arg) {
  if (kind == UKSIM__FAULT__KIND__DEADLOCK) {
    int l = lock_named(arg ? arg : "");
    if (l < 0) {
      kern__trace(k, "fault deadlock: no lock %s", arg);
      return;
    }
    k->mon.leak = l + 1;
    kern__trace(k, "fault: lock %s will not be released",
                kmon_lock_name((uint32_t)l));
  } else if (kind == UKSIM__FAULT__KIND__RUNAWAY && !k->mon.runaway) {
    k->mon.runaway = true;
    UV_CHECK(uv_timer_init(k->loop, &k->mon.runaway_timer));
    uv_unref((uv_handle_t *)&k->mon.runaway_timer);
    UV_CHECK(uv_timer_start(&k->mon.runaway_timer, on_runaway, 0,
                            KFAULT_RUNAWAY_TICK_MS));
    kern__trace(k, "fault: runaway allocation and spawning");
  } else if (kind == UKSIM__FAULT__KIND__STALL_DRIVER) {
    k->mon.stall = true;
    kern__trace(k, "fault: the pipe servant skips its wake-ups");
  }
  kern__event(k, &(struct kern_ev){.ev = "fault",
                                   .op = kind == UKSIM__FAULT__KIND__DEADLOCK
                                             ? "deadlock"
                                         : kind == UKSIM__FAULT__KIND__RUNAWAY
                                             ? "runaway"
                                             : "stall-driver",
                                   .text = arg});
}

bool kern__fault_stall(struct kern *k) {
  return k->mon.stall;
}

/* The stop point UKSIM_KSTOP asks for (kmon.h), read once: the count left
 * before it, 0 for none. */
static struct {
  bool read;
  enum kstop_point at;
  unsigned long left;
} kstop;

static void kstop_read(struct kern *k) {
  kstop.read = true;
  const char *e = getenv(KSTOP_ENV);
  unsigned os;
  char point[16];
  unsigned long n;
  if (e == NULL || sscanf(e, "%u:%15[a-z]:%lu", &os, point, &n) != 3 ||
      os != k->os.id || n == 0 || n > KSTOP_COUNT_MAX)
    return;
  if (strcmp(point, "result") == 0)
    kstop.at = KSTOP_RESULT;
  else if (strcmp(point, "ping") == 0)
    kstop.at = KSTOP_PING;
  else
    return;
  kstop.left = n;
}

void kern__stop_point(struct kern *k, enum kstop_point at) {
  if (!kstop.read)
    kstop_read(k);
  if (kstop.left == 0 || at != kstop.at || --kstop.left > 0)
    return;
  kern__trace(k, "stop point %s reached: stopping", KSTOP_ENV);
  raise(SIGSTOP); /* the machine's update finds it stopped here */
}
