/* Taking processes over from a dead kernel's tables (Orthros, seed 001
 * §2.6: the BackupOS reads the structures that manage the protected
 * processes from the ActiveOS's memory and rebuilds them in its own; the
 * kernel-side execution state is not inherited, since it may carry the
 * fault).
 *
 * adopt_tables() is a pure function over two kernel-data regions: the dead
 * kernel's (read only; it does nothing for us and may have died in the
 * middle of an update) and the new kernel's own, which must hold no
 * process, ICA or request yet (a standby backup creates none).  Nothing is
 * handed over by the dead kernel while it was healthy: every fact comes
 * from its region.
 *
 * What moves, at the same index and generation (so that every id the
 * process holds — ICA ids, request ids, descriptors, service ids — means
 * the same thing to the new kernel):
 *   - each protected application process (UK_PROC_F_PROTECT, RUNNING or
 *     WAITING) whose result queue reads whole; the others end (a server's
 *     process ends too: its service restarts, step 4 of the failover);
 *   - the requests whose client moves (queued, in service, answered), in
 *     their queues' order; every other request is dropped;
 *   - every service entry, without its server (proc UK_NIL, no successor,
 *     phase SERVING), its state ICA kept for the restart;
 *   - the ICAs held by a moving process, by a request that moves, or as a
 *     service's state ICA; the kernel's own (the mount driver's pool, the
 *     buffer cache) and everything else are dropped;
 *   - the namespace tables when vfs_check finds them whole, less what only
 *     the processes that end referred to; when they are torn, nothing of
 *     them (plan->ns_torn: the moved processes get fresh namespaces and
 *     their open files are lost, which the plan says).
 *
 * The call each moved process had in the kernel (uk_proc.call_seq and
 * answered_seq differ, or it is WAITING) is decided from the tables:
 *
 *   WAITING on CALL/AWAIT of a request that moved   -> ADOPT_WAIT_RESULT
 *   WAITING on SLEEP or a namespace call            -> ADOPT_RESTART
 *       (a deferred namespace call changed no table: see kmnt.c, kns.c)
 *   cut short in SEND/CALL, its request exists      -> ADOPT_ANSWER_SEND /
 *       (found by uk_req.client_seq == call_seq)       ADOPT_WAIT_RESULT
 *   cut short in SEND/CALL, no request              -> ADOPT_RESTART
 *   cut short in ICA_CREATE, its ICA exists         -> ADOPT_ANSWER_ICA
 *       (uk_ica_ent.made_by_seq == call_seq)
 *   cut short in ICA_CREATE before its ICA,         -> ADOPT_RESTART
 *       LOOKUP, AWAIT, SLEEP, ICA_ATTACH, or
 *       ICA_RELEASE (again: a release done already
 *       answers that the id is gone, its generation
 *       having moved on, never another ICA)
 *   cut short in anything else (a namespace call    -> ADOPT_INTR: answered
 *       that had started, a server's call)             -EINTR, since what
 *                                                       of it was done
 *                                                       cannot be known
 *   no call in the kernel                           -> ADOPT_IDLE
 *
 * ADOPT_RESTART is answered KABI_ANS_RESTART; the library sends the same
 * call again (lib/conn.c), so the program never sees it.
 */
#ifndef UKSIM_ADOPT_H
#define UKSIM_ADOPT_H

#include <stdbool.h>
#include <stdint.h>

#include "uksim/kdata.h"

enum adopt_call {
  ADOPT_IDLE = 0,
  ADOPT_WAIT_RESULT, /* stays WAITING on wait_req (0: any) */
  ADOPT_ANSWER_SEND, /* answer the SEND with request id req */
  ADOPT_ANSWER_ICA,  /* answer the ICA_CREATE with the ICA it made (req) */
  ADOPT_RESTART,     /* answer KABI_ANS_RESTART */
  ADOPT_INTR,        /* answer -EINTR */
};

struct adopt_proc {
  bool moved;
  enum adopt_call call;
  uint32_t seq;    /* the call's sequence number */
  uint32_t req;    /* ADOPT_ANSWER_SEND, ADOPT_WAIT_RESULT: the request id */
  int32_t pid;     /* the Linux process (moved or ending) */
  const char *why; /* not moved: why (static text) */
};

struct adopt_plan {
  struct adopt_proc proc[UK_PROC_MAX];
  bool restart_svc[UK_SVC_MAX]; /* its server died with the OS */
  uint32_t moved, ended, refused;
  uint32_t icas_moved, icas_dropped;
  uint32_t reqs_moved, reqs_dropped;
  uint32_t torn; /* entries skipped because they did not read whole */
  bool ns_torn;
  char ns_why[128];
  /* ICAs the dead kernel had and the new one does not keep: the machine
   * may let go of them (their ids, icas_dropped of them). */
  uint32_t dropped_ica[UK_ICA_MAX];
};

/* Rebuilds mine from dead as above.  Returns 0, or -EPROTO when dead is not
 * a kernel-data region of this layout, -EBUSY when mine already has
 * processes, ICAs or requests.  mine's header is kept. */
int adopt_tables(const struct uk_kdata *dead, struct uk_kdata *mine,
                 struct adopt_plan *plan);

#endif /* UKSIM_ADOPT_H */
