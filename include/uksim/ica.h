/* ICAs as a process sees them: a memfd-backed area mapped into this process
 * while it holds it.  Used by application processes (ap.h) and servers
 * (server.h) alike.
 *
 * A uk_ica is a small value the caller owns.  `base` is non-NULL exactly
 * while this process holds the ICA and has it attached (mapped).  Sending an
 * ICA detaches it (base becomes NULL); receiving one attaches it.  The bytes
 * are never copied on the way.
 *
 * ica_create, ica_release and ica_unmap are thread-safe (see ap.h); a
 * uk_ica itself is not shared state: one thread uses it at a time.
 */
#ifndef UKSIM_ICA_H
#define UKSIM_ICA_H

#include <stddef.h>
#include <stdint.h>

#include "kabi.h"

/* The largest ICA a process may create (documented in README "Limits"). */
#define UK_ICA_SIZE_MAX (1ull << 30)

typedef struct uk_ica {
  uint32_t id;   /* kernel-wide ICA id; KABI_ICA_NONE when empty */
  uint32_t kind; /* enum kabi_ica_kind */
  uint64_t size; /* bytes */
  void *base;    /* mapping while attached, else NULL */
} uk_ica;

/* ica_create: creates an ICA of `size` bytes (1 .. UK_ICA_SIZE_MAX), held
 * by and attached to this process, zero-filled; kind is KABI_ICA_CONTROL
 * (a request's "what to do"), KABI_ICA_DATA (its bytes) or KABI_ICA_STATE
 * (a server's state, server.h).  On failure *out is empty.
 * Errors: -EINVAL (size 0 or over UK_ICA_SIZE_MAX, or an unknown kind),
 * -ENOMEM (over the kernel's memory budget, or the ICA table is full),
 * -ENOTCONN (not started by a uksim kernel).
 * Example:
 *   uk_ica ctl;
 *   if (ica_create(4096, KABI_ICA_CONTROL, &ctl) == 0)
 *     snprintf(ctl.base, ctl.size, "%s", "world"); */
int ica_create(uint64_t size, uint32_t kind, uk_ica *out);

/* ica_release: gives the ICA back to the kernel, which frees it; the
 * mapping goes away and *ica becomes empty.  Releasing an empty uk_ica is
 * a no-op returning 0, so a result's ICAs can be released unconditionally.
 * Errors: -EPERM (this process does not hold it: it was sent, or is
 * someone else's); *ica is then left as it was.
 * Example:
 *   ica_release(&res.ctl);
 *   ica_release(&res.data);  // fine when no data ICA came back */
int ica_release(uk_ica *ica);

/* ica_unmap: unmaps and empties *ica without a kernel call: for an ICA
 * this process no longer holds but still maps (a state ICA the kernel
 * freed when srv_state_register() replaced it).  ICAs passed on with a
 * request or a reply need nothing: the library empties them.  No errors.
 * Example:
 *   srv_state_register(&bigger);  // the kernel frees the old state ICA
 *   ica_unmap(&old_state); */
void ica_unmap(uk_ica *ica);

#endif /* UKSIM_ICA_H */
