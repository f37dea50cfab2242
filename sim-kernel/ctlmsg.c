/* Control messages: one packed uksim.Ctl per SOCK_SEQPACKET packet, with at
 * most one descriptor.  Used on the CLI-machine and machine-kernel links. */
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

int ctl_post(struct outbox *o, const Uksim__Ctl *c, int fd) {
  size_t len;
  uint8_t *buf = pack(c, &len);
  if (buf == NULL)
    return -EMSGSIZE;
  int r = outbox_send(o, buf, len, fd);
  free(buf);
  return r;
}

Uksim__Ctl *ctl_recv(int sock, int *fd, int *err) {
  uint8_t *buf = xmalloc(CTL_MSG_MAX);
  int fds[KABI_MAX_FDS];
  unsigned nfds = 0;

  *fd = -1;
  long n = uk_recvfds(sock, buf, CTL_MSG_MAX, fds, &nfds);
  for (unsigned i = 1; i < nfds; i++)
    close(fds[i]);
  if (nfds > 0)
    *fd = fds[0];
  Uksim__Ctl *c = NULL;
  if (n > 0)
    c = uksim__ctl__unpack(NULL, (size_t)n, buf);
  free(buf);
  *err = n < 0 ? (int)n : n == 0 ? 0 : c == NULL ? -EBADMSG : 0;
  if (c == NULL && *fd >= 0) {
    close(*fd);
    *fd = -1;
  }
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
