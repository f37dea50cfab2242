/* libuksim internals shared by ap.c, srv.c and ica.c: the process's one
 * connection to its kernel, and attaching ICAs that arrive with a message. */
#ifndef UKSIM_LIB_CONN_H
#define UKSIM_LIB_CONN_H

#include "kabi_io.h"
#include "uksim/ica.h"

/* Connects on first use (UKSIM_FD).  0 or -errno. */
int uk__conn_init(void);

/* Sends the call in m (op and payload set by the caller; nfds 0) and waits
 * for its answer, which replaces m.  Returns the answer's status, or -errno
 * if the connection failed.  Descriptors in the answer are left in m. */
int uk__call(kabi_msg *m);

/* Attaches the ICAs an answer carries (refs in order, fds from m for those
 * not KABI_REF_MAPPED; a kept mapping evicted meanwhile is fetched again
 * with ICA_ATTACH).  On failure nothing stays attached and every descriptor
 * is closed. */
int uk__ica_attach_all(kabi_msg *m, const struct kabi_ica_ref *refs,
                       uint32_t nref, uk_ica *out[]);

/* hdr.flags for a call passing ctl and data (either may be NULL) on:
 * KABI_KEEP_* for those whose mapping stays cached (mapcache.h). */
uint32_t uk__keep_flags(const uk_ica *ctl, const uk_ica *data);

/* Empties *ica, whose id travels on with a request; its mapping may stay
 * cached, inaccessible through *ica (mapcache.h). */
void uk__ica_detach(uk_ica *ica);

#endif /* UKSIM_LIB_CONN_H */
