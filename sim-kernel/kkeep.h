/* Keeping the processes a kernel update cannot carry (issue 15, method A:
 * "the migration of that process fails cleanly, leaving it running on the
 * old kernel").  The old kernel is not fenced (killed) but RETIRING: it
 * serves only its kept processes and ends when the last of them ends.
 * This header is the record both sides read (struct uk_interos's keep
 * fields); the machine writes it (kkeep.c), the retiring kernel acts on
 * it (kretire.c), the new kernel leaves the kept processes alone
 * (kconvert.c).
 *
 * Per process of the old kernel (kimage_refuse.h has the judging):
 *
 *   EXTRACTED --moves or restarts--> HANDED   its connection to the new
 *                                             kernel (machine take_over)
 *   EXTRACTED --refused at extract--> KEPT    keep[slot] = 1, its
 *                                             connection stays; the old
 *                                             kernel sets UK_PROC_F_KEPT
 *   KEPT --it exits--> ENDED                  reaped by the old kernel
 *   HANDED (a Linux child of the old kernel) --it exits--> reaped by the
 *            old kernel, passed on to the new active as an OrphanExit
 *   (refused at build: the new kernel knows it only after the hand-over,
 *    so it ends as before: only refusals at extract are kept)
 *
 * The retiring kernel (the old OS's slot in the machine, OS_RETIRING):
 *
 *   ACTIVE --uksim kupdate: KKEEP_STOP_SIGNAL; the kernel stops itself
 *            (SIGSTOP) in that signal's callback, between two steps; then
 *            kkeep_mark finds kept slots-->
 *   STOPPED --the new kernel's Fence: not killed (nkeep > 0)--> FENCED
 *   FENCED --TakeOver: only the others' connections, ICAs and nic0
 *            handed--> HANDED (still stopped: the new kernel reads its
 *            region while it converts and adopts)
 *   HANDED --the new active's FailoverDone (or the machine's settle wait,
 *            MACH_SETTLE_WAIT_MS): SIGCONT--> RETIRING
 *   RETIRING: at its first callback after SIGCONT (a process's, the
 *            link's, a timer's) the kernel reads keep[] and, before it
 *            reads anything else, drops every connection it did not keep
 *            (closed unread, no ConnDrop: the machine has handed it), stops
 *            its heartbeat and the protected-process table (the new
 *            active owns both), marks every service down without restart
 *            (they restart on the new kernel), answers a kept process's
 *            requests still queued or held by a service -EXDEV, and stops
 *            its scenario executor (the new kernel's goes on, and counts
 *            a retiring OS as not over).  Its kept processes' calls are
 *            served, their netlink mounts too; LOOKUP, SEND, CALL and
 *            REGISTER are refused with -EXDEV (an event "kupdate exdev"
 *            names the process); it spawns nothing (the machine routes no
 *            client to it)
 *   RETIRING --its last kept process ends--> ENDED: the kernel zeroes
 *            keep_os, passes that exit on (OrphanExit with proc -1: the
 *            new active's executor looks again) and leaves its loop,
 *            without the halt path (which would signal the moved
 *            processes, still its Linux children: they become the
 *            machine's, which reaps them as a dead OS's orphans); the
 *            machine frees its slot (as for a dead OS: its core and
 *            memory went to the new active at the TakeOver)
 *   STOPPED --nkeep == 0, a user disk, method B (replay), or not
 *            stopped within KKEEP_STOP_WAIT_MS--> the Fence kills it, as
 *            before
 *   ACTIVE --already stopped (a test's stop point, kmon.h) or no stop
 *            within KKEEP_STOP_WAIT_MS: SIGSTOP where it is--> STOPPED,
 *            nothing kept (the Fence kills it)
 *
 * Why the kernel stops itself.  A kernel resumed as RETIRING finishes
 * whatever it was doing when it stopped.  SIGSTOP lands anywhere: between
 * a result's send and the table change, or just before the send, the
 * resumed kernel sent (and traced) a result to a moved client whose
 * request the new kernel, reading the tables as they were, delivered
 * again: "request 400: the client got two results" in
 * kupdate-uncarried.scn, about one run in six.  Stopped in a signal's
 * callback, no step is half done: its next instruction returns to the
 * loop, whose next callback enters the retiring state first.  A kernel
 * that is fenced may stop anywhere (it never runs again), so the other
 * updates still stop it with SIGSTOP.
 *
 * The disk.  LevelDB's lock is the old kernel's until it closes the disk,
 * and the new kernel opens it at the Fence's answer.  An update of a
 * machine with a user disk (--disk) keeps nothing: the old kernel is
 * fenced as before and an uncarried process ends with it.
 *
 * A second update while a kernel retires is refused (-EBUSY): the keep
 * record has room for one retiring OS.  A halt resumes and ends a
 * retiring kernel like any other.
 */
#ifndef UKSIM_KKEEP_H
#define UKSIM_KKEEP_H

#include <stdbool.h>
#include <signal.h>
#include <stdint.h>

#include <sys/types.h>

struct uk_interos;

/* The signal the machine sends the active kernel to stop for an update
 * that may keep processes; the kernel stops itself in its callback
 * (kretire.c), a point between two steps.  SIGTSTP: catchable, and its
 * default action, for a kernel not yet listening, is to stop. */
#define KKEEP_STOP_SIGNAL SIGTSTP

/* How long the machine waits for a kernel it sent SIGSTOP to be stopped
 * before it reads its tables (kill() returns before the stop lands). */
#define KKEEP_STOP_WAIT_MS 200

/* Waits until process pid is stopped (the host says 'T'), at most
 * KKEEP_STOP_WAIT_MS; 0 (also when it is gone), or -ETIMEDOUT: then the
 * machine keeps nothing and the update fences as before, since a kernel
 * still running could read the record before the hand-over, and its
 * tables, read meanwhile, could be torn. */
int kkeep_await_stopped(pid_t pid);

/* Whether process pid is stopped now (the host says 'T'). */
bool kkeep_stopped(pid_t pid);

/* Judges every process of OS os's stopped region (kd_fd, of either
 * layout) and writes the keep record: the slots refused at extract.
 * Returns how many are kept (0: nothing is kept, the record is clear). */
int kkeep_mark(struct uk_interos *io, uint32_t os, int kd_fd);

/* Whether OS os keeps slot p (p out of range: false). */
bool kkeep_kept(const struct uk_interos *io, uint32_t os, uint32_t p);

/* Whether some OS retires now. */
bool kkeep_retiring(const struct uk_interos *io);

/* Clears the record (the retiring kernel ended, or the update fenced). */
void kkeep_clear(struct uk_interos *io);

#endif /* UKSIM_KKEEP_H */
