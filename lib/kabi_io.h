/* Packet I/O for the kernel ABI, shared by libuksim and the kernel: one
 * kabi message per SOCK_SEQPACKET packet, descriptors by SCM_RIGHTS.
 *
 * kabi_msg is a caller-allocated buffer big enough for any message.  The
 * functions never allocate.  A received message is checked against the
 * header rules (magic, declared length equals the bytes received, no
 * truncation); hdr.nfds is set to the descriptors actually received, never
 * the sender's claim.  An empty packet without descriptors reads as end of
 * stream.  Payload shape is the dispatcher's business.
 */
#ifndef UKSIM_KABI_IO_H
#define UKSIM_KABI_IO_H

#include <stddef.h>
#include <stdint.h>

#include "uksim/kabi.h"

typedef struct kabi_msg {
  struct kabi_hdr hdr;
  unsigned char payload[KABI_MAX_MSG - sizeof(struct kabi_hdr)];
  int fds[KABI_MAX_FDS];
} kabi_msg;

#define KABI_PAYLOAD_MAX (KABI_MAX_MSG - sizeof(struct kabi_hdr))

/* Sends len bytes as one packet with nfds (<= KABI_MAX_FDS) descriptors.
 * Returns 0 or -errno (-EAGAIN on a full non-blocking socket; -EPIPE, never
 * SIGPIPE, when the peer is gone). */
int uk_sendfds(int sock, const void *buf, size_t len, const int *fds,
               unsigned nfds);

/* Receives one packet of up to cap bytes and up to KABI_MAX_FDS descriptors
 * (close-on-exec; extras are closed).  Returns bytes (0 at end of stream) or
 * -errno; -EMSGSIZE if the packet was truncated (its descriptors closed). */
long uk_recvfds(int sock, void *buf, size_t cap, int *fds, unsigned *nfds);

/* The machine-kernel link's batches (a failover hands over hundreds of
 * descriptors; one per packet meets the host's queue of 10 packets per
 * socket, net.unix.max_dgram_qlen, and crawls): the same with up to max
 * (<= UK_FDS_BATCH_MAX) descriptors. */
#define UK_FDS_BATCH_MAX 64
int uk_sendfds_batch(int sock, const void *buf, size_t len, const int *fds,
                     unsigned nfds);
long uk_recvfds_batch(int sock, void *buf, size_t cap, int *fds, unsigned *nfds,
                      unsigned max);

/* Fills the header of m for op/seq/status and copies len payload bytes. */
void kabi_msg_init(kabi_msg *m, uint16_t op, uint32_t seq, int32_t status,
                   const void *payload, size_t len);

/* Sends m with m->hdr.nfds descriptors from m->fds.  Returns 0 or -errno;
 * -EAGAIN when the socket is non-blocking and full.  MSG_NOSIGNAL: a dead
 * peer gives -EPIPE, not a signal. */
int kabi_sendmsg(int sock, const kabi_msg *m);

/* Receives one message into m.  Returns the bytes received (> 0), 0 at end
 * of stream, or -errno; -EBADMSG for a malformed packet (its descriptors, if
 * any, are closed).  Received descriptors are close-on-exec. */
long kabi_recvmsg(int sock, kabi_msg *m);
/* The same with recvmsg flags (MSG_DONTWAIT). */
long kabi_recvmsg_flags(int sock, kabi_msg *m, int flags);

/* Copies the payload out if it is exactly `len` bytes; -EBADMSG if not. */
int kabi_payload(const kabi_msg *m, void *out, size_t len);

/* Closes any descriptors m carries and zeroes nfds. */
void kabi_msg_close_fds(kabi_msg *m);

#endif /* UKSIM_KABI_IO_H */
