/* The library's one lock (see lock.h).
 *
 * A process has one connection to its kernel, and the kernel takes one
 * call at a time from it (uk_proc.call_seq in uksim/kdata.h): the machine
 * holds that connection to hand it to the next kernel at a failover, so a
 * connection per thread is not an option.  Threads therefore take turns:
 * a call holds this lock from its send to its answer, the RESTART resends
 * and the stale answers dropped on the way included (conn.c), so that the
 * next packet on the connection is always the answer of the thread that
 * reads it.
 *
 * The same lock guards the library's other process-wide state, each for
 * as long as it is in use:
 *   conn.c      the connection's descriptor, sequence number, the copy of
 *               the call in flight (for a RESTART), the spin settings
 *   mapcache.c  the mapping slots and their eviction clock
 *   ns.c        the ns control and bulk ICAs, for a whole ns call (paths
 *               and data are written to them before the call and read from
 *               them after it)
 *   fault.c     the parsed UKSIM_FAULT plan and its arrival counters
 *   srv.c       how the server registered, the replace hook
 * It is recursive because these nest: an ns call creates its control ICA
 * with a call of its own, attaching an answer's ICA may ask the kernel for
 * a descriptor again, a planned fault panics through a call.
 *
 * The price: a call that waits in the kernel (ap_await, ap_call of a slow
 * server, ap_sleep, a pipe read, srv_receive) holds the lock for its whole
 * wait, and every other thread's call waits behind it.  Letting other
 * threads call meanwhile would need the kernel to take several calls of a
 * process at once (a call per thread, and a takeover deciding each): not
 * built.  Threads of a process should make calls that answer promptly, or
 * accept being serialised behind the slow one (README.md, limits).
 *
 * Not async-signal-safe: a signal handler must not call the library.  A
 * fork() while another thread holds the lock leaves the child's lock held
 * (uksim processes are made by the kernel's spawn, not by fork). */
#include "lock.h"

#include <pthread.h>
#include <stdlib.h>

static pthread_mutex_t lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

void uk__lock(void) {
  if (pthread_mutex_lock(&lock) != 0)
    abort(); /* only a corrupted lock fails: nothing is safe after that */
}

void uk__unlock(void) {
  if (pthread_mutex_unlock(&lock) != 0)
    abort();
}
