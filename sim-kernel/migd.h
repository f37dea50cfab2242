/* A node's migration server (seed 004 §2.3, Fig. 1 and 2): it starts
 * migratable tasks (include/uksim/task.h) on its node, moves them to other
 * nodes' migration servers and takes tasks in from them, and hosts the
 * console of every task that started here wherever the task now runs.
 *
 * The handshake, on every connection (a migration's, a control client's,
 * a console's, a forwarded call's) before anything else: each side proves
 * it holds the key over a fresh challenge of the other's, so that the key
 * never crosses the wire and neither a recorded proof nor a reflected one
 * is accepted.  The key is the node key (sim-kernel/node.h: the BLAKE2b
 * hash of a key file, --key FILE; none: all zeros, so a keyed and an
 * unkeyed side never agree) and a proof is node_mac() with a role of its
 * own ("migd-dialer", "migd-server": a node handshake's proof is no
 * migration handshake's).  Bytes are exactly NODE_NONCE_LEN and
 * NODE_MAC_LEN; a shorter or longer one is a truncated proof.
 *
 *   server (migd_serve)                          dialer (mig_dial)
 *   CHALLENGED -- Challenge(version, nS, keyed) -> CONNECTED
 *                                                  version differs: CLOSED
 *              <- Auth(nD, macD) --------------   AUTH_SENT
 *                 macD = mac("migd-dialer", nS, nD)
 *   macD wrong (a wrong or missing key, a replayed proof: nS is new on
 *   every connection) or truncated:
 *              -- Result(-EACCES, why) -------->  CLOSED, "wrong key"
 *   CLOSED                                        (with a hint when one
 *                                                  side has no key)
 *   macD right:
 *   PROVED     -- Welcome(macS) --------------->  macS = mac("migd-server",
 *                                                   nD, nS)?
 *              <- Result(-EACCES, why) --------   no: CLOSED ("the server
 *   CLOSED, the dialer's why logged                does not hold our key")
 *              <- Result(0) -------------------   yes: READY, and it sends
 *   READY: the connection's one request             its request at once
 *
 * Anything else in place of the expected message (or nothing within
 * MIG_PEER_TIMEOUT_MS) closes the connection with -EPROTO; either side
 * says why on stderr (the server) or in the dialer's error.  A server
 * listening beyond loopback without a key refuses to start.
 *
 * One migration, origin side (the migration client, migd_move) and
 * destination side (the migration server, migd_serve).  Messages are
 * sim-kernel/migrate.proto.  Each arrow is one transition; every state
 * before COMMITTED, on any error or lost peer, goes to ABORTED, where the
 * origin resumes its own copy, so the task runs at the origin:
 *
 *   origin                                destination
 *   IDLE         the destination named by node name is looked up through
 *                the network message server (MIGD_SERVICE, below); a
 *                failed lookup ends the move here, the task untouched
 *             -- connect, the handshake (below) ------------------------
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
 *                  (bulk: raw bytes behind the frame, sendfile to
 *                   splice, migrate.proto)
 *                  (pre-copy: rounds while running, then suspended;
 *                   demand: the header page only)
 *             -- CONSOLE(input) -------->  what the task had not read of
 *                (not the origin: the      its console input, into the
 *                 origin holds its input    copy's pipe first (migcons.h)
 *                 first, Hold/Held)
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
 *   task from its duplicate (the destination's copy never resumed); a
 *   node the task had only moved to (A -> B -> C, C lost) attaches the
 *   restarted process's console to the task's origin again, as at an
 *   arrival;
 * - the destination, having lost the origin before RESUME, resumes its
 *   copy only when the origin node no longer answers a connect (the node
 *   is gone, with its copy); if it answers, it ends its copy and the
 *   origin restarts its own.
 * So a task runs on exactly one node afterwards.  Before the destination
 * holds a complete image (COMMIT), a dead origin node takes the task with
 * it: nothing else holds its state.
 *
 * Service calls (migd_calls.c; the task's side is task.h's struct
 * task_service).  A task calls services of the node it opened them on,
 * wherever it runs now.  Each call has a number, seq, per handle, kept in
 * the task's region, and the node whose service it is keeps a record per
 * (origin, task, handle): the last seq it took and, once run, its answer.
 *
 *   task --request(handle, seq) on TASK_SVC_FD--> migd of its node
 *     the service's node is this one: RUN here
 *     another: FORWARD, a MigCall to that node's migd (found by node name
 *       through the network message server) -> RUN there -> MigCallReply
 *   RUN, against the record:
 *     seq >  record's          RUNNING: record := seq; a Call to the node's
 *                              network message server (netmsg serve runs it
 *                              as a local ap_call) -> DONE: answer recorded
 *     seq == record's, DONE    REPLAY: the recorded answer, not run again
 *     seq == record's, RUNNING WAIT until DONE, then REPLAY
 *     seq <  record's          STALE: -ESTALE (the task drops it)
 *   the answer goes back the way the request came.
 *
 * A call in flight when the task is suspended: its answer reaches the
 * origin's copy, which has ended (lost on the way), or it does not come
 * before the suspension; either way the region holds the handle SENT with
 * its seq, and the copy adopted at the destination sends it again from
 * there (task_adopt): REPLAY or WAIT.  So each call runs once and is
 * answered once to the copy that runs on.  A service node that cannot be
 * reached answers -EHOSTDOWN (an answer; the task decides).
 *
 * A call may carry a data ICA (task.h task_call_ica): the bytes of one of
 * the task's held ICAs travel behind the request, to the service as the
 * Call's data ICA (node.h Chunks), and the data ICA it answers with comes
 * back in the answer, recorded with it for REPLAY, so that a call out at
 * a move is answered with the same data.  The task writes the answer into
 * its ICA itself: a write by this server into the region would escape
 * pre-copy's write tracking.  Held ICAs are pages of the region and move
 * with it; Threads lists them and the destination refuses an image whose
 * table differs.
 *
 * Console: a task that arrived from elsewhere has its output sent, as
 * Console messages on a connection of its own, to its origin node, which
 * prints it as if the task were local, and gets its input back the same
 * way; when the origin is gone the destination prints it itself.  The
 * input's hand-over at each move (what the task had not read is carried,
 * what is typed meanwhile held and sent on once the destination says
 * Active) is sim-kernel/migcons.h's.  A task that comes back to its
 * origin (A -> B -> A) is one entry there again, under its first id: the
 * entry it arrived as takes that id, and the input the first one held
 * (migcons.h, HOME).
 */
#ifndef UKSIM_MIGD_H
#define UKSIM_MIGD_H

#include <stddef.h>
#include <stdint.h>

/* Tasks one migration server hosts or hosted (its table). */
#define MIGD_TASKS_MAX 64
/* Connections a migration server serves at once, a thread each (a
 * migration's, a control client's, a task's console): one more is closed
 * at once, so that a peer opening connections cannot exhaust threads. */
#define MIGD_CONNS_MAX (2 * MIGD_TASKS_MAX)
/* Largest frame on the wire: a page chunk and its header. */
#define MIG_FRAME_MAX (2u << 20)
/* Page bytes per Pages message that carries them in `data`, and the
 * buffer a destination reads bulk pages through. */
#define MIG_CHUNK (1u << 20)
/* Page bytes per bulk Pages message (migrate.proto): raw bytes behind the
 * frame, sent from the region's memfd by sendfile.  A run of written
 * pages goes as one message up to this. */
#define MIG_BULK_MAX (64u << 20)
/* Runs shorter than this go in `data` instead: for a few pages (a
 * pre-copy's last round, while the task is stopped) one frame costs fewer
 * system calls on each side than a header, sendfile and two splices. */
#define MIG_BULK_MIN (64u << 10)
/* Data extents a Create asks the destination to allocate ahead (pairs;
 * the origin's extents beyond are allocated as their pages come). */
#define MIG_RESERVE_MAX 256
/* How long a peer may stay silent within a migration before it counts as
 * gone, and how long a task may take to reach its safe point. */
#define MIG_PEER_TIMEOUT_MS 10000
#define MIG_PARK_TIMEOUT_MS 5000
/* Pre-copy: rounds at most, and the dirty pages below which it stops
 * the task for the last round. */
#define MIG_PRECOPY_ROUNDS_MAX 30
#define MIG_PRECOPY_STOP_PAGES 256
/* Protocol version in Challenge (3: the handshake proves a key file; 4:
 * bulk Pages, raw bytes behind the frame). */
#define MIG_VERSION 4

/* The node address of a migration server, "tcp!HOST!PORT", to a socket
 * address. */
struct sockaddr_in;
int migd_lookup(const char *addr, struct sockaddr_in *sa);

/* Service calls (migd_calls.c): records of calls run here, one per
 * (origin, task, handle); a call that finds the table full is answered
 * -ENOSPC.  Each keeps its answer, a data ICA's bytes too (TASK_ICA_MAX):
 * 32 MiB of memory at most, touched only as records are used. */
#define MIGD_RECORDS_MAX (MIGD_TASKS_MAX * 8)
struct MigCall;
/* Who this node is and how it reaches its network message server and the
 * other migration servers (migd's options; mig_key: --key FILE's key,
 * MIG_KEY_LEN bytes that must outlive the calls, or NULL), before any
 * call. */
void migd_calls_init(const char *node, const char *netmsg,
                     const char *netmsg_keyfile, const uint8_t *mig_key);
/* A socketpair for a task about to start: *child is its TASK_SVC_FD, the
 * returned end the server's (-errno on failure). */
int migd_calls_pair(int *child);
/* Serves the calls of a started task on fd (the server's end), in a
 * thread of its own until the task closes it; origin and task name the
 * task for the records (its origin node's address and id there). */
void migd_calls_start(int fd, const char *origin, uint64_t task);
/* A MigCall from another node's migration server, on connection fd:
 * RUN, and a MigCallReply. */
void migd_calls_serve(int fd, const struct MigCall *c);

/* Finding a migration server by node name (migd_names.c).  Each
 * uksim-migd started with --netmsg ADDR advertises MIGD_SERVICE at its
 * address to that network message server (servers/netmsg.c) and keeps the
 * connection for its life; a move to a node NAME (not "tcp!...") asks the
 * origin's network message server for MIGD_SERVICE on node NAME, which
 * asks NAME's own. */
#define MIGD_SERVICE "migd"
/* How long a migration server waits for its network message server to
 * listen, at start and at each lookup. */
#define MIGD_NETMSG_WAIT_MS 5000
/* Advertises this migration server (address addr) to the network message
 * server at netmsg as node `me`, keyfile the node key file (NULL or "":
 * none).  0, or -errno with why in err. */
int migd_advertise(const char *netmsg, const char *keyfile, const char *me,
                   const char *addr, char *err, size_t len);
/* The address of node dest's migration server into addr: dest itself when
 * it is "tcp!HOST!PORT", else looked up through netmsg.  0, or -errno
 * (-EHOSTUNREACH: no such node, or none reachable; -ENOENT: the node has
 * no migration server) with why in err. */
int migd_resolve(const char *netmsg, const char *keyfile, const char *me,
                 const char *dest, char *addr, size_t len, char *err,
                 size_t errlen);

#endif /* UKSIM_MIGD_H */
