/* libuksim internals shared by ap.c, srv.c and ica.c: the process's one
 * connection to its kernel, and attaching ICAs that arrive with a message. */
#ifndef UKSIM_LIB_CONN_H
#define UKSIM_LIB_CONN_H

#include <stdbool.h>

#include "kabi_io.h"
#include "uksim/ica.h"

/* Connects on first use (UKSIM_FD).  0 or -errno. */
int uk__conn_init(void);
/* True once the kernel's end of the connection closed or refused a send. */
bool uk__kernel_gone(void);

/* Sends the call in m (op and payload set by the caller; nfds 0) and waits
 * for its answer, which replaces m.  Returns the answer's status, or -errno
 * if the connection failed.  Descriptors in the answer are left in m. */
int uk__call(kabi_msg *m);

/* uk__call for a call answered by several packets (REPLY_MANY_RECEIVE):
 * m[0] is the call; its answer and every packet following it (flagged
 * KABI_ANS_MORE, same sequence number), up to max, go to m[0..*n-1], all
 * read under the library's lock so no other call of this process reads
 * one.  Returns the first answer's status, or -errno (-EPROTO: a packet
 * out of order or more than max); the packets read are left in m, their
 * descriptors the caller's (*n is at least 1: m[0] holds none when the
 * call failed). */
int uk__call_more(kabi_msg *m, uint32_t max, uint32_t *n);

/* Attaches the ICAs an answer carries (refs in order, fds from m for those
 * not KABI_REF_MAPPED; a kept mapping evicted meanwhile is fetched again
 * with ICA_ATTACH).  On failure nothing stays attached and every descriptor
 * is closed. */
int uk__ica_attach_all(kabi_msg *m, const struct kabi_ica_ref *refs,
                       uint32_t nref, uk_ica *out[]);

/* Takes an answer that delivers a message with ICAs (a result to an
 * application process, a request to a server): checks that m is of kind
 * op, copies its payload into msg (size bytes), then attaches the *nica
 * ICAs listed at refs to ctl and data, in that order.  nica and refs point
 * into msg and are read after the copy.  Returns 0, -EPROTO for an answer
 * of another kind or shape, or what uk__ica_attach_all() returns; on
 * failure every descriptor m carries is closed.  ap.c's take_result and
 * srv.c's take_request are this and their own fields. */
int uk__take_delivery(kabi_msg *m, uint32_t op, void *msg, size_t size,
                      const uint32_t *nica, const struct kabi_ica_ref *refs,
                      uk_ica *ctl, uk_ica *data);

/* hdr.flags for a call passing ctl and data (either may be NULL) on:
 * KABI_KEEP_* for those whose mapping stays cached (mapcache.h). */
uint32_t uk__keep_flags(const uk_ica *ctl, const uk_ica *data);

/* Empties *ica, whose id travels on with a request; its mapping may stay
 * cached, inaccessible through *ica (mapcache.h). */
void uk__ica_detach(uk_ica *ica);

#endif /* UKSIM_LIB_CONN_H */
