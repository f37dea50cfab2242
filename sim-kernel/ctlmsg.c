/* Control messages: one packed uksim.Ctl per SOCK_SEQPACKET packet, with at
 * most one descriptor, or up to UK_FDS_BATCH_MAX for a batch (a failover's
 * TakeOverBatch).  Used on the CLI-machine and machine-kernel links. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "kern.h"
#include "uksim/xalloc.h"

/* Packs c; NULL if it is too big for one packet. */
static uint8_t *pack(const Uksim__Ctl *c, size_t *len) {
  *len = uksim__ctl__get_packed_size(c);
  if (*len > CTL_MSG_MAX)
    return NULL;
  uint8_t *buf = xmalloc(*len);
  uksim__ctl__pack(c, buf);
  return buf;
}

int ctl_send(int sock, const Uksim__Ctl *c, int fd) {
  size_t len;
  uint8_t *buf = pack(c, &len);
  if (buf == NULL)
    return -EMSGSIZE;
  int r = uk_sendfds(sock, buf, len, &fd, fd >= 0 ? 1 : 0);
  free(buf);
  return r;
}

int ctl_post_fds(struct outbox *o, const Uksim__Ctl *c, const int *fds,
                 unsigned nfds) {
  size_t len;
  uint8_t *buf = pack(c, &len);
  if (buf == NULL)
    return -EMSGSIZE;
  int r = outbox_send_fds(o, buf, len, fds, nfds);
  free(buf);
  return r;
}

int ctl_post(struct outbox *o, const Uksim__Ctl *c, int fd) {
  return ctl_post_fds(o, c, &fd, fd >= 0 ? 1 : 0);
}

static void close_fds(int *fds, unsigned from, unsigned n) {
  for (unsigned i = from; i < n; i++)
    close(fds[i]);
}

Uksim__Ctl *ctl_recv_fds(int sock, int *fds, unsigned *nfds, unsigned max,
                         int *err) {
  uint8_t *buf = xmalloc(CTL_MSG_MAX);
  *nfds = 0;
  long n = uk_recvfds_batch(sock, buf, CTL_MSG_MAX, fds, nfds, max);
  Uksim__Ctl *c = NULL;
  if (n > 0)
    c = uksim__ctl__unpack(NULL, (size_t)n, buf);
  free(buf);
  *err = n < 0 ? (int)n : n == 0 ? 0 : c == NULL ? -EBADMSG : 0;
  if (c == NULL) {
    close_fds(fds, 0, *nfds);
    *nfds = 0;
  }
  return c;
}

Uksim__Ctl *ctl_recv(int sock, int *fd, int *err) {
  int fds[KABI_MAX_FDS];
  unsigned nfds;
  Uksim__Ctl *c = ctl_recv_fds(sock, fds, &nfds, KABI_MAX_FDS, err);
  close_fds(fds, 1, nfds);
  *fd = nfds > 0 ? fds[0] : -1;
  return c;
}

int ctl_post_reply(struct outbox *o, uint64_t id, const Uksim__Reply *r,
                   int fd) {
  Uksim__Ctl c = UKSIM__CTL__INIT;
  c.id = id;
  c.body_case = UKSIM__CTL__BODY_REPLY;
  c.reply = (Uksim__Reply *)r;
  return ctl_post(o, &c, fd);
}
