/* The process side of the kernel connection (see conn.h).
 *
 * The kernel passes the connection as an inherited descriptor named by the
 * UKSIM_FD environment variable.  A process has at most one call in flight,
 * so the next packet from the kernel is always the answer to the last call;
 * a mismatched sequence number means the connection is broken (-EPROTO).
 */
#include "conn.h"
#include "mapcache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int kfd = -1;
static uint32_t kseq;

int uk__conn_init(void) {
  if (kfd >= 0)
    return 0;
  const char *s = getenv("UKSIM_FD");
  if (s == NULL || *s == '\0')
    return -ENOTCONN; /* not started by a uksim kernel */
  char *end;
  long fd = strtol(s, &end, 10);
  if (*end != '\0' || fd < 0 || fd > 1 << 20)
    return -EBADF;
  kfd = (int)fd;
  return 0;
}

int uk__call(kabi_msg *m) {
  int r = uk__conn_init();
  if (r < 0)
    return r;
  uint32_t seq = ++kseq;
  m->hdr.magic = KABI_MAGIC;
  m->hdr.seq = seq;
  r = kabi_sendmsg(kfd, m);
  if (r < 0)
    return r;
  long n = kabi_recvmsg(kfd, m);
  if (n == 0)
    return -ECONNRESET; /* the kernel went away */
  if (n < 0)
    return (int)n;
  if (m->hdr.seq != seq) {
    kabi_msg_close_fds(m);
    return -EPROTO;
  }
  return m->hdr.status;
}

/* An ICA that came back without a descriptor (KABI_REF_MAPPED): the mapping
 * kept for it, or, if that was evicted meanwhile, a new one from the
 * descriptor asked for again.  NULL with errno set on failure. */
static void *remap(const struct kabi_ica_ref *ref) {
  struct kabi_ica_args a = {.ica = ref->id};
  struct kabi_ica_ans ans;
  kabi_msg m;
  void *p = uk__map_reuse(ref->id, ref->size);
  if (p != NULL)
    return p;
  kabi_msg_init(&m, KABI_ICA_ATTACH, 0, 0, &a, sizeof a);
  int r = uk__call(&m);
  if (r == 0 && (m.hdr.nfds != 1 || kabi_payload(&m, &ans, sizeof ans) < 0 ||
                 ans.ica.id != ref->id || ans.ica.size != ref->size))
    r = -EPROTO;
  if (r < 0) {
    kabi_msg_close_fds(&m);
    errno = -r;
    return NULL;
  }
  return uk__map_attach(m.fds[0], ref->size, ref->id);
}

static int attach(const struct kabi_ica_ref *ref, int fd, uk_ica *out) {
  void *p = fd >= 0 ? uk__map_attach(fd, ref->size, ref->id) : remap(ref);
  if (p == NULL)
    return -errno;
  out->id = ref->id;
  out->kind = ref->kind;
  out->size = ref->size;
  out->base = p;
  return 0;
}

int uk__ica_attach_all(kabi_msg *m, const struct kabi_ica_ref *refs,
                       uint32_t nref, uk_ica *out[]) {
  uint32_t i, nfd = 0, want = 0;
  int r = 0;

  for (i = 0; i < nref && i < KABI_MAX_FDS; i++)
    want += !(refs[i].flags & KABI_REF_MAPPED);
  if (nref > KABI_MAX_FDS || want != m->hdr.nfds) {
    kabi_msg_close_fds(m);
    return -EPROTO;
  }
  for (i = 0; i < nref && r == 0; i++)
    r = attach(&refs[i], refs[i].flags & KABI_REF_MAPPED ? -1 : m->fds[nfd++],
               out[i]);
  if (r < 0) {
    for (uint32_t j = nfd; j < m->hdr.nfds; j++)
      close(m->fds[j]);
    for (uint32_t j = 0; j + 1 < i; j++)
      uk__ica_detach(out[j]);
  }
  m->hdr.nfds = 0;
  return r;
}

uint32_t uk__keep_flags(const uk_ica *ctl, const uk_ica *data) {
  uint32_t f = 0;
  if (ctl && uk__map_kept(ctl->base))
    f |= KABI_KEEP_CTL;
  if (data && uk__map_kept(data->base))
    f |= KABI_KEEP_DATA;
  return f;
}

void uk__ica_detach(uk_ica *ica) {
  if (ica->base != NULL)
    uk__map_detach(ica->base, ica->size);
  memset(ica, 0, sizeof *ica);
}

void ica_unmap(uk_ica *ica) {
  if (ica->base != NULL)
    uk__map_drop(ica->base, ica->size);
  memset(ica, 0, sizeof *ica);
}
