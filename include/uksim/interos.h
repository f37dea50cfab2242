/* The inter-OS region (Orthros, issue 14): one memfd the machine creates
 * once, at its boot, and maps into every kernel it boots (fd 5 of the
 * kernel), never created twice: it outlives every OS instance.
 *
 * Who writes what (each field has one writer, so no lock is needed;
 * readers accept a torn view, as with kernel data):
 *   machine      magic, layout, size; active_os, active_pid, backup_os,
 *                failovers (at every role change); the fault stamp (at an
 * injection) active       the heartbeat and busy stamps; the protected-process
 *                table
 *   backup       the detection record, when it declares the active dead
 *   machine      the keep record of a kernel update (below), while the
 *                old kernel is stopped (the retiring kernel zeroes its
 *                keep_os at its end, the one other write)
 * Times are CLOCK_MONOTONIC nanoseconds (uv_hrtime), the same clock in
 * every process of the machine, so a difference of two is a latency.
 *
 * Limits (README "Limits"): UK_INTEROS_PROT_MAX protected processes.
 */
#ifndef UKSIM_INTEROS_H
#define UKSIM_INTEROS_H

#include <stdint.h>

#include "uksim/kdata.h"

#define UK_INTEROS_MAGIC 0x736f6f7274726fULL /* "ortroos" */
#define UK_INTEROS_LAYOUT 4                  /* bump on any change below */

/* Processes the active OS may publish as protected (migrated at a
 * failover before any other). */
#define UK_INTEROS_PROT_MAX UK_PROC_MAX
#define UK_INTEROS_NAME_MAX 32

/* The kinds of the fault stamp (control.proto Fault.Kind's numbers). */
enum {
  UK_FAULT_NONE,
  UK_FAULT_PANIC,
  UK_FAULT_HANG,
  UK_FAULT_CRASH,
  UK_FAULT_DEADLOCK, /* the in-kernel faults of seed 003 (kfault.c) */
  UK_FAULT_RUNAWAY,
  UK_FAULT_STALL_DRIVER
};
/* How the backup found the active dead: by its panic notice, its missing
 * heartbeat, or its monitor reading its tables (seed 003, kmon.c); or
 * not a fault: the machine stopped the active for a kernel update
 * (UK_DETECT_KUPDATE, uksim kupdate, issue 15). */
enum {
  UK_DETECT_NONE,
  UK_DETECT_PANIC,
  UK_DETECT_TIMEOUT,
  UK_DETECT_KUPDATE,
  UK_DETECT_MONITOR
};

struct uk_interos_prot {
  uint32_t os;   /* the OS the process belongs to */
  uint32_t proc; /* its slot in that OS's process table */
  int32_t pid;
  uint32_t flags;
  char name[UK_INTEROS_NAME_MAX];
};

struct uk_interos {
  uint64_t magic;
  uint32_t layout, size; /* size: sizeof(struct uk_interos) */
  /* Roles, by OS number (1st, 2nd ... Nth booted); 0 for none. */
  uint32_t active_os, backup_os;
  uint32_t failovers;
  int32_t active_pid; /* its kernel process */
  /* The last kernel fault injected through the machine. */
  uint64_t fault_ns;
  uint32_t fault_os, fault_kind; /* UK_FAULT_* */
  /* The active's last heartbeat. */
  uint64_t hb_ns, hb_seq;
  uint32_t hb_os, pad1;
  uint64_t busy_ns; /* inside bounded work that blocks its loop since */
  /* The last detection: OS dead_os found dead by OS by_os. */
  uint32_t det_dead_os, det_by_os;
  uint32_t det_cause, det_count; /* UK_DETECT_*; detections so far */
  uint64_t det_ns;               /* when */
  uint64_t det_since_hb_ns;      /* since the last heartbeat it saw */
  uint64_t det_since_fault_ns;   /* since the fault stamp, 0 if none */
  /* Protected processes of the active OS (kos_publish): rewritten in
   * place by the active at each spawn or end of one and by a new active
   * after its failover, never appended to: prot_os is the OS that
   * published last, prot_seq counts publications. */
  uint32_t nprot, prot_os;
  uint64_t prot_seq;
  struct uk_interos_prot prot[UK_INTEROS_PROT_MAX];
  /* A kernel update that keeps the processes it cannot carry (issue 15,
   * sim-kernel/kkeep.h): OS keep_os is not fenced but retires; keep[p]
   * is 1 for each of its process slots that stays on it (nkeep of them).
   * The machine writes it while that kernel is stopped (SIGSTOP), before
   * the new kernel's Fence, so the retiring kernel finds it at its first
   * callback after it resumes.  The retiring kernel sets keep_os to 0 as
   * its last kept process ends (before it tells the new active), the
   * machine clears the rest when it has reaped that kernel. */
  uint32_t keep_os, nkeep;
  uint8_t keep[UK_PROC_MAX];
};

#endif /* UKSIM_INTEROS_H */
