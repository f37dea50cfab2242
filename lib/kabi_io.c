/* Packet I/O for the kernel ABI (see kabi_io.h). */
#include "kabi_io.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void kabi_msg_init(kabi_msg *m, uint16_t op, uint32_t seq, int32_t status,
                   const void *payload, size_t len) {
  memset(&m->hdr, 0, sizeof m->hdr);
  m->hdr.magic = KABI_MAGIC;
  m->hdr.op = op;
  m->hdr.seq = seq;
  m->hdr.status = status;
  m->hdr.len = (uint32_t)len;
  if (len > 0)
    memcpy(m->payload, payload, len);
}

static int sendfds(int sock, const void *buf, size_t len, const int *fds,
                   unsigned nfds) {
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int) * UK_FDS_BATCH_MAX)];
  } ctl;
  struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

  if (nfds > 0) {
    memset(&ctl, 0, sizeof ctl);
    mh.msg_control = ctl.buf;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  }
  for (;;) {
    ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);
    if (n >= 0)
      return 0;
    if (errno != EINTR)
      return -errno;
  }
}

int uk_sendfds(int sock, const void *buf, size_t len, const int *fds,
               unsigned nfds) {
  return nfds > KABI_MAX_FDS ? -EINVAL : sendfds(sock, buf, len, fds, nfds);
}

int uk_sendfds_batch(int sock, const void *buf, size_t len, const int *fds,
                     unsigned nfds) {
  return nfds > UK_FDS_BATCH_MAX ? -EINVAL : sendfds(sock, buf, len, fds, nfds);
}

/* Takes up to max descriptors out of the control data (the rest closed);
 * returns how many. */
static unsigned take_fds(struct msghdr *mh, int *fds, unsigned max) {
  unsigned n = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
      continue;
    size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    int *in = (int *)CMSG_DATA(c);
    for (size_t i = 0; i < k; i++) {
      if (n < max)
        fds[n++] = in[i];
      else
        close(in[i]); /* more than the ABI allows: drop the extras */
    }
  }
  return n;
}

static long recvfds(int sock, void *buf, size_t cap, int *fds, unsigned *nfds,
                    unsigned max, int flags) {
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int) * (UK_FDS_BATCH_MAX + 2))];
  } ctl;
  struct iovec iov = {.iov_base = buf, .iov_len = cap};
  /* Room for max and two more: a packet with more than that is cut
   * (MSG_CTRUNC) and refused whole, as a hostile sender's should be. */
  struct msghdr mh = {.msg_iov = &iov,
                      .msg_iovlen = 1,
                      .msg_control = ctl.buf,
                      .msg_controllen = CMSG_SPACE(sizeof(int) * (max + 2))};
  ssize_t n;

  do
    n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | flags);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return -errno;
  *nfds = take_fds(&mh, fds, max);
  if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
    for (unsigned i = 0; i < *nfds; i++)
      close(fds[i]);
    *nfds = 0;
    return -EMSGSIZE;
  }
  return (long)n;
}

long uk_recvfds(int sock, void *buf, size_t cap, int *fds, unsigned *nfds) {
  return recvfds(sock, buf, cap, fds, nfds, KABI_MAX_FDS, 0);
}

long uk_recvfds_batch(int sock, void *buf, size_t cap, int *fds, unsigned *nfds,
                      unsigned max) {
  if (max > UK_FDS_BATCH_MAX)
    max = UK_FDS_BATCH_MAX;
  return recvfds(sock, buf, cap, fds, nfds, max, 0);
}

int kabi_sendmsg(int sock, const kabi_msg *m) {
  if (m->hdr.len > KABI_PAYLOAD_MAX)
    return -EINVAL;
  return uk_sendfds(sock, m, sizeof m->hdr + m->hdr.len, m->fds, m->hdr.nfds);
}

long kabi_recvmsg(int sock, kabi_msg *m) {
  return kabi_recvmsg_flags(sock, m, 0);
}

long kabi_recvmsg_flags(int sock, kabi_msg *m, int flags) {
  unsigned nfds;
  memset(&m->hdr, 0, sizeof m->hdr); /* a short packet leaves zeros, not junk */
  long n = recvfds(sock, m, KABI_MAX_MSG, m->fds, &nfds, KABI_MAX_FDS, flags);
  if (n < 0 && n != -EMSGSIZE)
    return n;
  if (n == 0 && nfds == 0)
    return 0;
  /* A short packet leaves the header's nfds to be set below: the count is
   * always the kernel's, never the sender's claim. */
  bool bad = n < (long)sizeof m->hdr || m->hdr.magic != KABI_MAGIC ||
             m->hdr.len != (size_t)n - sizeof m->hdr;
  m->hdr.nfds = nfds;
  if (bad) {
    kabi_msg_close_fds(m);
    return -EBADMSG;
  }
  return n;
}

int kabi_payload(const kabi_msg *m, void *out, size_t len) {
  if (m->hdr.len != len)
    return -EBADMSG;
  if (len > 0)
    memcpy(out, m->payload, len);
  return 0;
}

void kabi_msg_close_fds(kabi_msg *m) {
  for (uint32_t i = 0; i < m->hdr.nfds && i < KABI_MAX_FDS; i++)
    close(m->fds[i]);
  m->hdr.nfds = 0;
}
