/* An outbox: ordered, reliable sending of packets on a non-blocking
 * SOCK_SEQPACKET socket that lives in a libuv loop.
 *
 * A packet that does not fit now (EAGAIN) is queued with a duplicate of its
 * descriptor, and the owner polls for writability until the queue drains.
 * Dropping instead would lose a reply or the machine's reference to an ICA.
 * The queue is bounded by OUTBOX_MAX packets; past that the peer is treated
 * as dead (-ENOBUFS). */
#ifndef UKSIM_OUTBOX_H
#define UKSIM_OUTBOX_H

#include <stddef.h>
#include <uv.h>

#define OUTBOX_MAX 65536

struct outbox_msg;

struct outbox {
  int sock;
  uv_poll_t *poll; /* the socket's poll handle, also used for reading */
  uv_poll_cb cb;   /* its callback */
  int read_events; /* what it polls for besides UV_WRITABLE */
  struct outbox_msg *head, *tail;
  size_t count;
};

void outbox_init(struct outbox *o, int sock, uv_poll_t *poll, uv_poll_cb cb,
                 int read_events);

/* Sends (or queues) one packet with an optional descriptor (-1: none).
 * Returns 0 or -errno; the caller keeps its descriptor either way. */
int outbox_send(struct outbox *o, const void *buf, size_t len, int fd);
/* The same with up to UK_FDS_BATCH_MAX descriptors (kabi_io.h). */
int outbox_send_fds(struct outbox *o, const void *buf, size_t len,
                    const int *fds, unsigned nfds);

/* Called from the poll callback on UV_WRITABLE: sends what it can. */
void outbox_flush(struct outbox *o);

/* Changes what the socket is polled for besides UV_WRITABLE: a reader
 * stops reading a peer by dropping UV_READABLE. */
void outbox_set_read_events(struct outbox *o, int read_events);

/* Frees whatever is still queued. */
void outbox_clear(struct outbox *o);

#endif /* UKSIM_OUTBOX_H */
