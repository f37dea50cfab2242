/* Fault injection for servers built on libuksim (scenarios and tests).
 *
 * UKSIM_FAULT in a server's environment lists faults, comma separated (at
 * most 8), each KIND@POINT or KIND@POINT:N (the N-th arrival at POINT, from
 * 1; default 1):
 *   KIND  crash   dies by SIGSEGV (no core file)
 *         panic   srv_panic("injected fault")
 *         hang    spins forever without calling the kernel
 *         exit    exits with status 3
 *         refuse  refuses the state it was handed: srv_panic with a reason
 *                 containing "refuse", as a server refusing a state version
 *                 does; only @restore
 *   POINT start    as soon as the process uses libuksim (srv_init, or first
 *                  thing in srv_register), before it registers
 *         register in srv_register, before the call: it never registers
 *         restore  in srv_state_get, after the state ICA arrived
 *         request  when the N-th request arrives, before it is handled
 *         save     in the replacement path, before the on_replace hook
 *                  saves state for a successor
 *         handoff  the old server: right after its on_replace hook
 *                  returned, before it calls receive again (the call that
 *                  hands over); the new server (registered REPLACING): at
 *                  its first srv_receive (or srv_reply, srv_keep), before
 *                  the call that would commit
 * A plan belongs to the instance it was given to: the kernel starts a
 * restarted instance without it.  A malformed UKSIM_FAULT is reported on
 * stderr and the server exits 2 before registering, so a typo never passes
 * for a clean run.
 */
#ifndef UKSIM_LIB_FAULT_H
#define UKSIM_LIB_FAULT_H

enum uk_fault_point {
  UK_FAULT_REQUEST,
  UK_FAULT_SAVE,
  UK_FAULT_RESTORE,
  UK_FAULT_START,
  UK_FAULT_REGISTER,
  UK_FAULT_HANDOFF,
  UK_FAULT_POINTS /* how many there are */
};

/* Parses UKSIM_FAULT once (exits 2 if it is malformed), then reaches the
 * start point: the first call is the process's start. */
void uk__fault_init(void);

/* Called at a point; fires the fault planned there, if any. */
void uk__fault_at(enum uk_fault_point point);

#endif
