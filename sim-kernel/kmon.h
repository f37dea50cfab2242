/* Seed 003 in the kernel: kernel locks (klock.c), the in-kernel faults a
 * monitor must find (kfault.c), and the monitor itself (kmon.c), which
 * runs in the backup kernel and reads the active kernel's region.
 * Private to sim-kernel/; the detectors are in kmon_detect.h.
 */
#ifndef UKSIM_KMON_H
#define UKSIM_KMON_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "control.pb-c.h"
#include "kabi_io.h"
#include "kmon_detect.h"

/* The largest --monitor-interval (ms), and the ICA bytes one tick of the
 * runaway fault takes (its tick: KFAULT_RUNAWAY_TICK_MS; it stops at the
 * budget, the ICA table or the process table, whichever is first). */
#define KMON_INTERVAL_MS_MAX 60000
#define KFAULT_RUNAWAY_ICA_BYTES (16ull << 20)
#define KFAULT_RUNAWAY_TICK_MS 1
/* The runaway fault spawns one process every this many ticks, up to
 * KFAULT_RUNAWAY_PROCS_MAX in all (the host's process table survives). */
#define KFAULT_RUNAWAY_SPAWN_EVERY 4
#define KFAULT_RUNAWAY_PROCS_MAX (UK_PROC_MAX / 2)
#define KFAULT_RUNAWAY_SLEEP "10" /* seconds each of its processes lives */

enum kmon_policy { KMON_REPORT = 0, KMON_FAILOVER };

/* Each delivery of this signal to a monitoring backup kernel pauses its
 * reads or resumes them (the heartbeat watch goes on): the A/B switch of
 * `uksim bench monitor`, which compares a workload's rate with the
 * monitor on and off in alternate windows of one run. */
#define KMON_PAUSE_SIGNAL SIGUSR1

struct kern;

struct kmon {
  /* Lock waits (klock.c): the call process p parked until lock
   * parked_lock[p] - 1 is dropped (0: none parked). */
  uint8_t parked_lock[UK_PROC_MAX];
  kabi_msg parked[UK_PROC_MAX];
  /* Injected faults (kfault.c). */
  int leak;     /* deadlock: lock leak - 1 is never dropped again */
  bool stall;   /* stalled driver: the pipe skips its wake-ups */
  bool runaway; /* runaway: the timer below takes and spawns */
  uv_timer_t runaway_timer;
  uint32_t runaway_ticks, runaway_spawned;
  /* The monitor (kmon.c), in a backup kernel. */
  uint64_t interval_ms; /* 0: no monitor */
  enum kmon_policy policy;
  struct kmon_conf conf;
  const struct uk_kdata *peer; /* the active's region, read-only, or NULL */
  uint32_t peer_os;
  bool asking; /* a GetKdata is on its way */
  uv_timer_t timer;
  uv_signal_t pause_sig; /* KMON_PAUSE_SIGNAL */
  bool paused;
  /* Views: [0] older, [1] old (window_ns apart at least), [2] newest. */
  struct kmon_view view[3];
  uint32_t nold;           /* of [0] and [1], how many are set */
  bool found[KMON_FAULTS]; /* reported once each */
  uint64_t reads, torn;
};

/* klock.c: the lock call op takes, or -1.  kern__lock_park: true when a
 * lock the call needs is held; the call then waits (parked) and is run
 * when the lock is dropped. */
int kern__lock_of_call(uint16_t op);
bool kern__lock_park(struct kern *k, uint32_t p, const kabi_msg *m);
void kern__lock_take(struct kern *k, int l, uint32_t owner);
void kern__lock_drop(struct kern *k, int l);
/* p is gone: its parked call, if any, with it. */
void kern__lock_forget(struct kern *k, uint32_t p);
/* kcall.c: runs call m of p (its lock, the call, its answer). */
void kern__run_call(struct kern *k, uint32_t p, kabi_msg *m);

/* kfault.c: inject fault kind (Uksim__Fault__Kind) with its argument
 * (the lock's name for a deadlock, "" for the default). */
void kern__fault(struct kern *k, int kind, const char *arg);
/* kns.c asks: does a pipe write of p skip its readers' wake-up? */
bool kern__fault_stall(struct kern *k);

/* kfault.c: a test's stop point.  UKSIM_KSTOP=OS:POINT:N (KSTOP_ENV):
 * the kernel of OS id OS stops itself (SIGSTOP, as a kernel update stops
 * the active one: machine.c kupdate_start) the Nth time (1 to
 * KSTOP_COUNT_MAX) it reaches POINT, so that a test updates a kernel
 * stopped exactly there.  Points: "result", just before a result is sent
 * to its client (kcall.c); "ping", just before a control client's Ping is
 * answered (kern.c: the one mach_boot sends, so that a test fails the
 * active over right at a boot).  Unset or malformed: no stop. */
#define KSTOP_ENV "UKSIM_KSTOP"
#define KSTOP_COUNT_MAX 1000000
enum kstop_point { KSTOP_RESULT = 0, KSTOP_PING };
void kern__stop_point(struct kern *k, enum kstop_point at);

/* kmon.c.  The settings come from the environment, so that every kernel
 * a machine boots (and boots again at a failover) gets them:
 * UKSIM_MONITOR_INTERVAL_MS (0 or unset: no monitor; at most
 * KMON_INTERVAL_MS_MAX) and UKSIM_MONITOR_POLICY (report, the default,
 * or failover); `uksim run|demo --monitor-interval MS --monitor-policy P`
 * set them (mach_backup_opt). */
#define KMON_ENV_INTERVAL "UKSIM_MONITOR_INTERVAL_MS"
#define KMON_ENV_POLICY "UKSIM_MONITOR_POLICY"
void kmon_init(struct kern *k);
void kmon_start(struct kern *k); /* a backup: start reading the active */
/* The machine's answer to our GetKdata: true when it was ours. */
bool kmon_reply(struct kern *k, uint64_t id, const Uksim__Reply *r, int fd);
#define KMON_KDATA_ID ((1ull << 62) + 16)

#endif /* UKSIM_KMON_H */
