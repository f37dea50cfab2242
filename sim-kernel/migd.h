/* A node's migration server (seed 004 §2.3, Fig. 1 and 2): it starts
 * migratable tasks (include/uksim/task.h) on its node, moves them to other
 * nodes' migration servers and takes tasks in from them, and hosts the
 * console of every task that started here wherever the task now runs.
 *
 * One migration, origin side (the migration client, migd_move) and
 * destination side (the migration server, migd_serve).  Messages are
 * sim-kernel/migrate.proto.  Each arrow is one transition; every state
 * before COMMITTED, on any error or lost peer, goes to ABORTED, where the
 * origin resumes its own copy, so the task runs at the origin:
 *
 *   origin                                destination
 *   IDLE      -- connect, HELLO(key) -->  (key checked: wrong -> Result err)
 *             -- CREATE(size, program) -> CREATED: empty memfd (step 4)
 *                                         PRESPAWNED: the program started
 *                                         on it, waiting before it reads
 *                                         the region (UKSIM_TASK_WAIT_FD,
 *                                         task.h) until the image is whole
 *   READY_SEEN <-- READY -----------------  (or Confirm(err): -> ABORTED)
 *                the task ran all along: the destination's process start
 *                is outside the downtime
 *   SUSPENDED    task_suspend + task_park: the task is at a safe point;
 *                its region memfd, held here, is the duplicate (step 3)
 *                (pre-copy: after its rounds, below)
 *   COPYING   -- PAGES* --------------->  each checked against the size
 *                  (pre-copy: rounds while running, then suspended;
 *                   demand: the header page only)
 *   SETTING   -- THREADS --------------->  suspend counts, priorities,
 *                                          policies set in the header
 *             -- COMMIT ---------------->  image checked (task_check),
 *                                          the waiting program told to go:
 *                                          it adopts the region, parks
 *   CONFIRMED <-- CONFIRM(err) ---------  READY (err != 0: -> ABORTED)
 *   COMMITTED    origin copy ended (task_end); the duplicate is kept
 *             -- RESUME ---------------->  RUNNING: task_resume
 *   DONE      <-- RESUMED --------------
 *                (demand: FETCHING below, then DONE)
 *
 * Demand paging (method demand, sim-kernel/migpage.h).  COPYING sends the
 * header pages only (the thread table and saved registers: task_check
 * and task_adopt read nothing else); the program at the destination maps
 * the rest under userfaultfd in MISSING mode (UKSIM_TASK_DEMAND, task.h)
 * and the destination's server takes that userfaultfd before CONFIRM.
 * After RESUMED both sides stay on the migration connection:
 *
 *   origin                                destination
 *   SERVING   <-- PAGE_REQ(offset, n) ----  FETCHING: a first touch of a
 *                                           page faults to the server; it
 *                                           asks for the page and up to
 *                                           `prepage` absent neighbours
 *                                           after it; beside the faults a
 *                                           fetcher asks for every other
 *                                           absent page, in order
 *             -- PAGES / ZERO_PAGES ---->  each installed (UFFDIO_COPY,
 *                read from the suspended      UFFDIO_ZEROPAGE), which wakes
 *                duplicate; a hole goes       the faulting task
 *                as ZERO_PAGES
 *             <-- PAGE_REQ outside the region: Result(-ERANGE), refused;
 *                 the origin goes on serving
 *   DONE      <-- PAGES_DONE(stats) -----  every page present: the origin
 *                drops its duplicate         has no part in the task now
 *
 * Lost peers in demand paging (the residual dependency, seed 004 §2.3
 * step 5): before every page is present the task's state is split
 * between the nodes, the pages it wrote at the destination and the ones
 * it has not touched at the origin, so no node can run it alone:
 * - the destination, having lost the origin (or been refused a page)
 *   after RESUME, kills its copy and reports the task lost;
 * - the destination, having lost the origin between CONFIRM and RESUME,
 *   does not resume (it holds the header only): the task is lost;
 * - the origin, having lost the destination after RESUMED, drops its
 *   duplicate and reports the task lost: restarting it there would repeat
 *   what the destination already did and printed.
 * The origin losing the destination before RESUMED restarts the task
 * from its duplicate, as in the other methods.  So a task runs on exactly
 * one node afterwards, or, when a node dies while pages are still
 * fetched, on none, with "lost" in both nodes' words.
 *
 * Lost peers after CONFIRM, where both sides have a complete copy:
 * - the origin, having lost the destination before RESUMED, restarts the
 *   task from its duplicate (the destination's copy never resumed);
 * - the destination, having lost the origin before RESUME, resumes its
 *   copy only when the origin node no longer answers a connect (the node
 *   is gone, with its copy); if it answers, it ends its copy and the
 *   origin restarts its own.
 * So a task runs on exactly one node afterwards.  Before the destination
 * holds a complete image (COMMIT), a dead origin node takes the task with
 * it: nothing else holds its state.
 *
 * Console: a task that arrived from elsewhere has its output sent, as
 * Console messages on a connection of its own, to its origin node, which
 * prints it as if the task were local, and gets its input back the same
 * way; when the origin is gone the destination prints it itself.
 */
#ifndef UKSIM_MIGD_H
#define UKSIM_MIGD_H

#include <stdint.h>

/* Tasks one migration server hosts or hosted (its table). */
#define MIGD_TASKS_MAX 64
/* Connections a migration server serves at once, a thread each (a
 * migration's, a control client's, a task's console): one more is closed
 * at once, so that a peer opening connections cannot exhaust threads. */
#define MIGD_CONNS_MAX (2 * MIGD_TASKS_MAX)
/* Largest frame on the wire: a page chunk and its header. */
#define MIG_FRAME_MAX (2u << 20)
/* Page bytes per Pages message. */
#define MIG_CHUNK (1u << 20)
/* How long a peer may stay silent within a migration before it counts as
 * gone, and how long a task may take to reach its safe point. */
#define MIG_PEER_TIMEOUT_MS 10000
#define MIG_PARK_TIMEOUT_MS 5000
/* Pre-copy: rounds at most, and the dirty pages below which it stops
 * the task for the last round. */
#define MIG_PRECOPY_ROUNDS_MAX 30
#define MIG_PRECOPY_STOP_PAGES 256
/* Protocol version in Hello. */
#define MIG_VERSION 2

/* The node address of a migration server, "tcp!HOST!PORT", to a socket
 * address.  The one lookup: the network message server replaces it. */
struct sockaddr_in;
int migd_lookup(const char *addr, struct sockaddr_in *sa);

#endif /* UKSIM_MIGD_H */
