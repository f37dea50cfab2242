/* The seed-003 monitor's detectors (kmon_detect.c): pure functions over
 * what a monitor copied of another kernel's kernel-data region.
 *
 * A monitor (sim-kernel/kmon.c, in the backup kernel) maps the active
 * kernel's region read-only and, every interval, copies what the
 * detectors need into a struct kmon_view (kmon_view_read): the region is
 * written while it is copied, so the copy checks magic, layout and size
 * and treats every index as untrusted; a torn view is either refused
 * (-EPROTO) or gives a finding that the next view does not confirm, which
 * is why every detector asks for a state that lasts (a threshold).
 *
 * The monitored kernel does nothing for the monitor: the words read are
 * the ones it keeps for itself (locks, process and ICA tables, pipes).
 *
 * Detectors (each returns 1 with *f filled when it finds its fault):
 * - deadlock: a lock held for at least lock_ns while calls wait for it or
 *   its owner is blocked (or gone): its owner makes no progress;
 * - runaway: process-table or ICA-budget growth beyond a rate and a
 *   size over two windows in a row (window_ns each), or over one that
 *   leaves the budget nearly spent;
 * - stalled driver: a process blocked reading a pipe end that has had
 *   data for at least stall_ns: the wake-up never came.  The finding
 *   names the servant (#|, the pipe), counts every reader so blocked,
 *   gives the longest any of them has waited in its read, and lists the
 *   first KMON_EVIDENCE_MAX as (process, pipe, end, bytes) entries.
 */
#ifndef UKSIM_KMON_DETECT_H
#define UKSIM_KMON_DETECT_H

#include <stdint.h>

#include "uksim/kdata.h"

/* Thresholds (README "Limits").  A kernel path holds a lock for one
 * loop turn (microseconds), so 50 ms is far beyond any healthy hold; a
 * reader is woken in the same turn its data arrives. */
#define KMON_LOCK_MS_DEFAULT 50   /* deadlock: lock held this long */
#define KMON_STALL_MS_DEFAULT 50  /* stalled driver: data waiting this long */
#define KMON_WINDOW_MS_DEFAULT 50 /* runaway: growth measured over this */
/* Runaway: net growth over the window of at least this many bytes of ICA
 * memory at this rate, or of this many processes at this rate. */
#define KMON_RUNAWAY_MIN_BYTES (64ull << 20)
/* ... in at least this many new ICAs: one large ICA (a server's state
 * made at its start) is an allocation, not a runaway. */
#define KMON_RUNAWAY_MIN_ICAS 4
/* ... confirmed by the window before, or by less than this share of the
 * budget left (%). */
#define KMON_RUNAWAY_FREE_PCT 10
#define KMON_RUNAWAY_BYTES_PER_S (512ull << 20)
#define KMON_RUNAWAY_MIN_PROCS 16
#define KMON_RUNAWAY_PROCS_PER_S 200
/* Entries named as evidence in one finding, and the bytes of its text
 * (room for the stalled driver's KMON_EVIDENCE_MAX readers, each with its
 * process and pipe). */
#define KMON_EVIDENCE_MAX 8
#define KMON_TEXT_MAX 512

enum kmon_fault {
  KMON_NONE = 0,
  KMON_DEADLOCK,
  KMON_RUNAWAY,
  KMON_STALLED,
  KMON_FAULTS
};

/* One process as the detectors see it. */
struct kmon_vproc {
  uint8_t state;    /* enum uk_proc_state */
  uint16_t wait_op; /* enum kabi_op, when WAITING */
  uint64_t calls;   /* its progress */
  uint64_t wait_ns; /* since when it waits in a servant */
  int32_t pipe;     /* the pipe it waits to read, -1 none */
  uint8_t end;      /* ... and which end */
  uint32_t avail;   /* bytes in that end's ring */
  uint64_t data_ns; /* since when they are there */
  char name[KABI_NAME_MAX];
};

struct kmon_view {
  uint64_t t_ns; /* when copied (monotonic, host clock) */
  uint64_t step;
  uint64_t budget_bytes, ica_bytes;
  uint32_t procs_live; /* RUNNING or WAITING */
  uint64_t spawned, icas_created, icas_released;
  struct uk_lock lock[UK_LOCK_MAX];
  struct kmon_vproc proc[UK_PROC_MAX];
};

struct kmon_conf {
  uint64_t lock_ns, stall_ns, window_ns;
};

struct kmon_find {
  enum kmon_fault fault;
  const char *table; /* "lock", "proc", "ica", "pipe" */
  uint32_t entry[KMON_EVIDENCE_MAX];
  uint32_t n;       /* entries named */
  uint32_t count;   /* entries found (stalled: readers blocked with data) */
  uint64_t age_ns;  /* how long the faulty state has lasted, by the tables */
  uint64_t wait_ns; /* stalled: the longest any of those readers waited */
  char text[KMON_TEXT_MAX]; /* the evidence, for a person */
};

/* The defaults above. */
void kmon_conf_default(struct kmon_conf *c);
/* Copies what the detectors need of kd into v at time now: 0, or
 * -EPROTO when kd is not a kernel-data region of this layout. */
int kmon_view_read(struct kmon_view *v, const struct uk_kdata *kd,
                   uint64_t now);
int kmon_deadlock(const struct kmon_view *v, const struct kmon_conf *c,
                  struct kmon_find *f);
/* old is a view of the same kernel at least window_ns before v, older
 * one before old (NULL: none yet).  Growth from old to v counts when it
 * also grew from older to old, or when the budget is nearly spent. */
int kmon_runaway(const struct kmon_view *older, const struct kmon_view *old,
                 const struct kmon_view *v, const struct kmon_conf *c,
                 struct kmon_find *f);
int kmon_stalled(const struct kmon_view *v, const struct kmon_conf *c,
                 struct kmon_find *f);
/* "deadlock", "runaway", "stalled-driver". */
const char *kmon_fault_name(enum kmon_fault f);
/* The lock's name ("ica", "svc", "ns"), or "?" out of range. */
const char *kmon_lock_name(uint32_t l);

#endif /* UKSIM_KMON_DETECT_H */
