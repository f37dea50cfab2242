/* Fault injection for servers built on libuksim (scenarios and tests).
 *
 * UKSIM_FAULT in a server's environment lists faults, comma separated, each
 * KIND@POINT or KIND@POINT:N:
 *   KIND  crash (SIGSEGV), panic (srv_panic), hang (spins forever),
 *         exit (exit status 3)
 *   POINT request (when the N-th request arrives, before it is handled;
 *         N defaults to 1), save (in the replacement hook, while saving
 *         state for a successor), restore (in srv_state_get, after the
 *         state ICA arrived: while restoring)
 * A plan belongs to the instance it was given to: the kernel starts a
 * restarted instance without it.  A malformed UKSIM_FAULT is reported on stderr
 * and the server exits 2 before registering, so a typo never passes for a clean
 * run.
 */
#ifndef UKSIM_LIB_FAULT_H
#define UKSIM_LIB_FAULT_H

enum uk_fault_point { UK_FAULT_REQUEST, UK_FAULT_SAVE, UK_FAULT_RESTORE };

/* Parses UKSIM_FAULT once; exits 2 if it is malformed. */
void uk__fault_init(void);

/* Called at a point; fires the fault planned there, if any. */
void uk__fault_at(enum uk_fault_point point);

#endif
