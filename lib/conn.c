/* The process side of the kernel connection (see conn.h).
 *
 * The kernel passes the connection as an inherited descriptor named by the
 * UKSIM_FD environment variable.  A process has at most one call in flight
 * (its threads take turns under the library's lock, lock.c), so the next
 * packet from the kernel is always the answer to the last call; a
 * mismatched sequence number means the connection is broken (-EPROTO).
 *
 * Every call says which cpu it was sent from, and, when the kernel polls
 * (uksim run --poll-us, default 100 us), every answer which cpu the kernel
 * answered from (KABI_CPU_SHIFT in the header's flags).  When that was
 * another cpu than ours, we spin for the next answer, trying without
 * blocking and yielding the cpu between tries, for up to the kernel's
 * polling time (UKSIM_POLL_US, set by the kernel) before we block: on the
 * 2-vCPU VM where this was measured an idle vCPU halts, and a process woken
 * there runs ~30 us later, against a few us on a busy one.  Spinning alone
 * took an unpinned null round trip from ~49 to ~30 us, with the kernel's
 * polling to ~16 us; on one cpu neither happens (the cpus are equal), so
 * pinned runs are unchanged (README.md "uksim bench ipc").  The yield lets
 * a process woken on our cpu run at once instead of after the spin: in
 * trials without it, one of two runs spinning 100 us took 141 us a round
 * trip instead of 15 (the client and the server on one cpu, the kernel on
 * the other, each spin delaying the other's wake-up); none of the runs with
 * it did.
 */
#include "conn.h"
#include "journal_int.h"
#include "lock.h"
#include "mapcache.h"

#include <errno.h>
#include <sched.h>
#include <sys/socket.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "uksim/num.h"

/* The connection, and everything below that belongs to the call in flight,
 * is guarded by the library's lock (lock.c). */
static int kfd = -1;
static uint32_t kseq;
static bool kgone; /* the kernel end closed, or a send to it failed */

static int conn_init(void) {
  if (kfd >= 0)
    return 0;
  const char *s = getenv("UKSIM_FD");
  if (s == NULL || *s == '\0')
    return -ENOTCONN; /* not started by a uksim kernel */
  uint64_t fd;
  if (num_parse_u64(s, 0, 1 << 20, 0, &fd) < 0)
    return -EBADF;
  kfd = (int)fd;
  return 0;
}

bool uk__kernel_gone(void) {
  uk__lock();
  bool gone = kgone;
  uk__unlock();
  return gone;
}

int uk__conn_init(void) {
  uk__lock();
  int r = conn_init();
  uk__unlock();
  return r;
}

/* Spinning for an answer (see the top of this file). */
static uint64_t spin_ns = ~0ull; /* ~0: not read from UKSIM_POLL_US yet */
static int kcpu = -1; /* the kernel's cpu at its last answer, -1 unknown */

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The cpu this process sends from, for the call's header. */
static uint32_t cpu_flags(void) {
  int cpu = sched_getcpu();
  return cpu >= 0 && cpu < 0xffff ? (uint32_t)(cpu + 1) << KABI_CPU_SHIFT : 0;
}

/* The answer to the call just sent: tried without blocking (yielding the
 * cpu between tries) for up to spin_ns when the kernel last answered from
 * another cpu, then waited for. */
static long recv_answer(kabi_msg *m) {
  if (spin_ns == ~0ull) {
    /* The kernel sets it; anything but a number of microseconds (at most
     * a second, as the kernel's --poll-us) does not spin. */
    const char *s = getenv("UKSIM_POLL_US");
    uint64_t us;
    spin_ns = s && num_parse_u64(s, 0, 1000000, 0, &us) == 0 ? us * 1000 : 0;
  }
  long n = -EAGAIN;
  if (spin_ns && kcpu >= 0 && kcpu != sched_getcpu()) {
    uint64_t end = mono_ns() + spin_ns;
    while ((n = kabi_recvmsg_flags(kfd, m, MSG_DONTWAIT)) == -EAGAIN &&
           mono_ns() < end)
      sched_yield();
  }
  if (n == -EAGAIN)
    n = kabi_recvmsg(kfd, m);
  if (n > 0)
    kcpu = (int)(m->hdr.flags >> KABI_CPU_SHIFT) - 1;
  return n;
}

/* The call m, as sent: what KABI_ANS_RESTART asks for again. */
static struct kabi_hdr sent_hdr;
static unsigned char sent_payload[KABI_PAYLOAD_MAX];

/* How many times one call may be restarted: each restart is a kernel that
 * died holding it, so more than a few means something else is wrong. */
#define RESTART_MAX 8
#define STALE_MAX 4

/* The answer to call seq.  An answer to an earlier call comes when a
 * kernel that took this process over answered again a call its dead
 * predecessor had answered (it looked unanswered in the tables): dropped,
 * a few at most.  Returns the packet's length, 0 for the end of the
 * connection, or -errno (-EPROTO for an answer out of order). */
static long recv_for(kabi_msg *m, uint32_t seq) {
  for (int stale = 0; stale <= STALE_MAX; stale++) {
    long n = recv_answer(m);
    if (n <= 0 || m->hdr.seq == seq)
      return n;
    kabi_msg_close_fds(m);
    if ((int32_t)(m->hdr.seq - seq) > 0)
      return -EPROTO;
  }
  return -EPROTO;
}

/* A kernel update's new kernel (method B) asks for a replay before the
 * call just sent (KABI_ANS_REPLAY): the journal's calls are calls of
 * their own, each overwriting the copy of the call in flight, which is
 * therefore kept here and put back for the resend.  Their sequence
 * numbers follow this call's; the resend keeps its own, which the kernel
 * has not run. */
static int replay_before(size_t len) {
  struct kabi_hdr h = sent_hdr;
  unsigned char *p = malloc(len ? len : 1);
  if (p == NULL)
    return -ENOMEM;
  memcpy(p, sent_payload, len);
  int r = uk__journal_replay_for_kernel();
  sent_hdr = h;
  memcpy(sent_payload, p, len);
  free(p);
  return r;
}

/* uk__call with the lock held. */
static int call(kabi_msg *m) {
  int r = conn_init();
  if (r < 0)
    return r;
  uint32_t seq = ++kseq;
  m->hdr.magic = KABI_MAGIC;
  m->hdr.seq = seq;
  m->hdr.flags = (m->hdr.flags & ~KABI_CPU_MASK) | cpu_flags();
  size_t len = m->hdr.len <= KABI_PAYLOAD_MAX ? m->hdr.len : 0;
  sent_hdr = m->hdr;
  memcpy(sent_payload, m->payload, len);
  for (int restarts = 0;; restarts++) {
    r = kabi_sendmsg(kfd, m);
    if (r == -EPIPE || r == -ECONNRESET)
      kgone = true;
    if (r < 0)
      return r;
    long n = recv_for(m, seq);
    if (n == 0) {
      kgone = true;
      return -ECONNRESET; /* the kernel went away */
    }
    if (n < 0)
      return (int)n;
    if (m->hdr.op != KABI_ANS_RESTART && m->hdr.op != KABI_ANS_REPLAY)
      return m->hdr.status;
    if (restarts == RESTART_MAX)
      return -EPROTO;
    if (m->hdr.op == KABI_ANS_REPLAY && (r = replay_before(len)) < 0)
      return r;
    m->hdr = sent_hdr; /* a new kernel asks for the call again */
    memcpy(m->payload, sent_payload, len);
  }
}

/* The whole call holds the lock: another thread's call would read our
 * answer, or send while the kernel still holds ours. */
int uk__call(kabi_msg *m) {
  uk__lock();
  int r = call(m);
  uk__unlock();
  return r;
}

/* The packets following answer m[0] (KABI_ANS_MORE), read with the lock
 * held: the kernel sends them back to back. */
static int read_more(kabi_msg *m, uint32_t max, uint32_t *n) {
  while (m[*n - 1].hdr.flags & KABI_ANS_MORE) {
    if (*n == max)
      return -EPROTO;
    long r = kabi_recvmsg(kfd, &m[*n]);
    if (r <= 0)
      return r == 0 ? -ECONNRESET : (int)r;
    (*n)++;
    if (m[*n - 1].hdr.seq != m[0].hdr.seq || m[*n - 1].hdr.op != m[0].hdr.op)
      return -EPROTO;
  }
  return 0;
}

int uk__call_more(kabi_msg *m, uint32_t max, uint32_t *n) {
  uk__lock();
  int r = call(&m[0]);
  *n = 1; /* the answer, or the call itself (no descriptors) */
  if (r == 0) {
    int e = read_more(m, max, n);
    r = e < 0 ? e : r;
  }
  uk__unlock();
  return r;
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

int uk__take_delivery(kabi_msg *m, uint32_t op, void *msg, size_t size,
                      const uint32_t *nica, const struct kabi_ica_ref *refs,
                      uk_ica *ctl, uk_ica *data) {
  if (m->hdr.op != op || kabi_payload(m, msg, size) < 0 ||
      *nica > KABI_MAX_FDS) {
    kabi_msg_close_fds(m);
    return -EPROTO;
  }
  uk_ica *out[KABI_MAX_FDS] = {ctl, data};
  return uk__ica_attach_all(m, refs, *nica, out);
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
