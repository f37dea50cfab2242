/* Frames of the migration protocol (migrate.proto) on a blocking stream
 * socket: a 4-byte little-endian length, at most MIG_FRAME_MAX, then one
 * packed MigMsg.  Used by uksim-migd (migd.c) and the migration bench. */
#ifndef UKSIM_MIGWIRE_H
#define UKSIM_MIGWIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "migrate.pb-c.h"

/* Longest handshake or dial error said. */
#define MIG_ERR_MAX 256
/* Key bytes (the node key's, NODE_KEY_LEN). */
#define MIG_KEY_LEN 32

/* Sends one message whole.  0 or -errno.  Thread-safe per socket: writers
 * of one socket are serialised by a lock of this module. */
int mig_send(int fd, const MigMsg *m);

/* Receives one message (free with mig_msg__free_unpacked), or NULL at end
 * of stream, on a socket error or timeout (MIG_PEER_TIMEOUT_MS), on a frame
 * over MIG_FRAME_MAX or one that does not unpack; errno says which
 * (0 at a clean end, EPROTO for a bad frame). */
MigMsg *mig_recv(int fd);

/* Sends m (a Pages message whose `bulk` is len) and then the len raw
 * bytes of src_fd at off, with sendfile: no copy in this process.  The
 * socket's writers are serialised as for mig_send.  0 or -errno. */
int mig_send_bulk(int fd, const MigMsg *m, int src_fd, off_t off, size_t len);

/* A pipe for mig_recv_bulk, made once per connection.  0 or -errno. */
int mig_bulk_pipe(int p[2]);

/* Reads the len raw bytes that follow a bulk Pages frame into dst_fd at
 * off: spliced from the socket through pipe (mig_bulk_pipe, empty) into
 * the file, so that pages a peer sent with sendfile are copied once, not
 * through this process (a socket that does not splice goes through a
 * buffer).  0, or -errno (-EPIPE: the stream ended, -EIO: dst_fd did not
 * take them). */
int mig_recv_bulk(int fd, int dst_fd, off_t off, size_t len, const int pipe[2]);

/* Sends Result(err, msg): an answer, or a refusal.  0 or -errno. */
int mig_send_result(int fd, int err, const char *msg);

/* Connects to the migration server at ADDR ("tcp!HOST!PORT", migd_lookup)
 * and runs the dialer's side of the handshake (migd.h) with key (NODE_KEY_LEN
 * bytes; NULL: none).  The socket, ready for one request, or -errno
 * (-EACCES: a wrong key on either side) with why in err (NULL: not told). */
int mig_dial(const char *addr, const uint8_t *key, char *err, size_t len);

/* The handshake's two sides on a connected blocking socket (migauth.c):
 * 0 when both sides proved the key, else -errno (-EACCES: a wrong or
 * missing key, or a replayed proof; -EPROTO: a truncated proof or an
 * unexpected message) with why in err, the peer told why when it is still
 * there. */
int mig_hs_serve(int fd, const uint8_t *key, char *err, size_t len);
int mig_hs_dial(int fd, const uint8_t *key, char *err, size_t len);

/* Loads --key FILE as node keys are (node_key_load: the BLAKE2b hash of
 * the file; an empty one is refused).  0, or -errno with why in err. */
int mig_key_file(const char *path, uint8_t key[MIG_KEY_LEN], char *err,
                 size_t len);

/* Sets the receive timeout of fd (0: none). */
void mig_timeout(int fd, int ms);

#endif /* UKSIM_MIGWIRE_H */
