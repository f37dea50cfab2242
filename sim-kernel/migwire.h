/* Frames of the migration protocol (migrate.proto) on a blocking stream
 * socket: a 4-byte little-endian length, at most MIG_FRAME_MAX, then one
 * packed MigMsg.  Used by uksim-migd (migd.c) and the migration bench. */
#ifndef UKSIM_MIGWIRE_H
#define UKSIM_MIGWIRE_H

#include "migrate.pb-c.h"

/* Sends one message whole.  0 or -errno.  Thread-safe per socket: writers
 * of one socket are serialised by a lock of this module. */
int mig_send(int fd, const MigMsg *m);

/* Receives one message (free with mig_msg__free_unpacked), or NULL at end
 * of stream, on a socket error or timeout (MIG_PEER_TIMEOUT_MS), on a frame
 * over MIG_FRAME_MAX or one that does not unpack; errno says which
 * (0 at a clean end, EPROTO for a bad frame). */
MigMsg *mig_recv(int fd);

/* Sends Result(err, msg): an answer, or a refusal.  0 or -errno. */
int mig_send_result(int fd, int err, const char *msg);

/* Connects to the migration server at ADDR ("tcp!HOST!PORT", migd_lookup)
 * and sends Hello with `key`.  The socket or -errno. */
int mig_dial(const char *addr, const char *key);

/* Sets the receive timeout of fd (0: none). */
void mig_timeout(int fd, int ms);

#endif /* UKSIM_MIGWIRE_H */
