/* Unit tests for kernel-ABI packet I/O (lib/kabi_io.c) over a real
 * socketpair(AF_UNIX, SOCK_SEQPACKET), with memfds as the descriptors.
 *
 * The receiver is the kernel facing untrusted processes, so besides round
 * trips the tests send malformed packets with descriptors attached and check
 * the message is refused and every received descriptor closed.
 *
 * Every test ends by closing the socket pair and comparing the count of
 * /proc/self/fd with the count before the pair was opened: a test that leaks
 * a descriptor fails.  The check runs at the end of the test body (IO_TEST),
 * not in the suite's fini, because Criterion 2.4 reports a failed assertion,
 * or even a crash, in fini as a warning and still counts the test as passed.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kabi_io.h"

static int sv[2] = {-1, -1};
static int fds_before;

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  cr_assert_not_null(d, "opendir /proc/self/fd: %s", strerror(errno));
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

static void pair_open(void) {
  fds_before = count_fds();
  cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
}

static void pair_close(void) {
  for (int i = 0; i < 2; i++)
    if (sv[i] >= 0)
      close(sv[i]);
  sv[0] = sv[1] = -1;
}

static void assert_no_fd_leak(void) {
  pair_close();
  int now = count_fds();
  cr_assert_eq(now, fds_before, "descriptors leaked: %d before, %d after",
               fds_before, now);
}

TestSuite(kabi_io, .init = pair_open, .fini = pair_close);

/* A test of the suite, its body followed by the leak check. */
#define IO_TEST(name)                                                          \
  static void name##_body(void);                                               \
  Test(kabi_io, name, .timeout = 10) {                                         \
    name##_body();                                                             \
    assert_no_fd_leak();                                                       \
  }                                                                            \
  static void name##_body(void)

/* A memfd holding text at offset 0. */
static int memfd_with(const char *text) {
  int fd = memfd_create("kabi-io-test", MFD_CLOEXEC);
  cr_assert_geq(fd, 0, "memfd_create: %s", strerror(errno));
  size_t n = strlen(text) + 1;
  cr_assert_eq(pwrite(fd, text, n, 0), (ssize_t)n);
  return fd;
}

static void assert_reads(int fd, off_t off, const char *want) {
  char buf[64] = {0};
  size_t n = strlen(want) + 1;
  cr_assert_eq(pread(fd, buf, n, off), (ssize_t)n);
  cr_assert_str_eq(buf, want);
}

/* a and b are two descriptors for one memfd: a write through either is
 * seen through the other. */
static void assert_same_memfd(int a, int b, const char *tag) {
  cr_assert_neq(a, b);
  struct stat sa, sb;
  cr_assert_eq(fstat(a, &sa), 0);
  cr_assert_eq(fstat(b, &sb), 0);
  cr_assert_eq(sa.st_ino, sb.st_ino, "%s: different files", tag);
  cr_assert_eq(pwrite(a, tag, strlen(tag) + 1, 100), (ssize_t)strlen(tag) + 1);
  assert_reads(b, 100, tag);
  cr_assert_eq(pwrite(b, "back", 5, 200), 5);
  assert_reads(a, 200, "back");
}

static bool fd_is_open(int fd) {
  return fcntl(fd, F_GETFD) != -1;
}

/* Sends one packet with any number of descriptors, bypassing the checks
 * uk_sendfds makes, as a hostile process could. */
static void send_raw(int sock, const void *buf, size_t len, const int *fds,
                     unsigned nfds) {
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int) * 8)];
  } ctl;
  struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
  cr_assert_leq(nfds, 8);
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
  cr_assert_eq(sendmsg(sock, &mh, MSG_NOSIGNAL), (ssize_t)len, "sendmsg: %s",
               strerror(errno));
}

static void close_all(const int *fds, unsigned n) {
  for (unsigned i = 0; i < n; i++)
    close(fds[i]);
}

/* Receives into a message first filled with junk, so a field the receiver
 * forgets to set shows. */
static long recv_into(kabi_msg *m) {
  memset(m, 0xee, sizeof *m);
  return kabi_recvmsg(sv[1], m);
}

/* round trips */

IO_TEST(round_trip_without_fds) {
  struct kabi_send_args a = {.svc = 3, .op = 9, .ctl = 0x10002, .tag = 77};
  kabi_msg m, r;
  kabi_msg_init(&m, KABI_SEND, 41, -5, &a, sizeof a);
  cr_assert_eq(m.hdr.magic, KABI_MAGIC);
  cr_assert_eq(m.hdr.nfds, 0);
  cr_assert_eq(m.hdr.flags, 0);
  cr_assert_eq(kabi_sendmsg(sv[0], &m), 0);

  cr_assert_eq(recv_into(&r), (long)(sizeof r.hdr + sizeof a));
  cr_assert_eq(r.hdr.magic, KABI_MAGIC);
  cr_assert_eq(r.hdr.op, KABI_SEND);
  cr_assert_eq(r.hdr.seq, 41);
  cr_assert_eq(r.hdr.status, -5);
  cr_assert_eq(r.hdr.len, sizeof a);
  cr_assert_eq(r.hdr.nfds, 0);
  struct kabi_send_args b;
  cr_assert_eq(kabi_payload(&r, &b, sizeof b), 0);
  cr_assert_eq(memcmp(&a, &b, sizeof a), 0);
}

IO_TEST(round_trip_of_header_only_message) {
  kabi_msg m, r;
  kabi_msg_init(&m, KABI_ANS_STATUS, 1, 0, NULL, 0);
  cr_assert_eq(kabi_sendmsg(sv[0], &m), 0);
  cr_assert_eq(recv_into(&r), (long)sizeof r.hdr);
  cr_assert_eq(r.hdr.op, KABI_ANS_STATUS);
  cr_assert_eq(r.hdr.len, 0);
  char none = 0;
  cr_assert_eq(kabi_payload(&r, &none, 0), 0);
}

IO_TEST(round_trip_of_largest_payload) {
  static unsigned char big[KABI_PAYLOAD_MAX], back[KABI_PAYLOAD_MAX];
  for (size_t i = 0; i < sizeof big; i++)
    big[i] = (unsigned char)(i * 7 + 1);
  kabi_msg m, r;
  kabi_msg_init(&m, KABI_REGISTER, 2, 0, big, sizeof big);
  cr_assert_eq(kabi_sendmsg(sv[0], &m), 0);
  cr_assert_eq(recv_into(&r), KABI_MAX_MSG);
  cr_assert_eq(kabi_payload(&r, back, sizeof back), 0);
  cr_assert_eq(memcmp(big, back, sizeof big), 0);
}

IO_TEST(round_trip_with_one_fd) {
  int a = memfd_with("first");
  struct kabi_ica_ans ans = {.ica = {.id = 0x10001, .kind = 1, .size = 4096}};
  kabi_msg m, r;
  kabi_msg_init(&m, KABI_ANS_ICA, 3, 0, &ans, sizeof ans);
  m.fds[0] = a;
  m.hdr.nfds = 1;
  cr_assert_eq(kabi_sendmsg(sv[0], &m), 0);

  cr_assert_eq(recv_into(&r), (long)(sizeof r.hdr + sizeof ans));
  cr_assert_eq(r.hdr.nfds, 1);
  assert_reads(r.fds[0], 0, "first");
  assert_same_memfd(a, r.fds[0], "one");
  cr_assert(fcntl(r.fds[0], F_GETFD) & FD_CLOEXEC, "received fd not cloexec");

  int got = r.fds[0];
  kabi_msg_close_fds(&r);
  cr_assert_eq(r.hdr.nfds, 0);
  cr_assert_not(fd_is_open(got));
  close(a);
}

IO_TEST(round_trip_with_two_fds_keeps_their_order) {
  int a = memfd_with("control"), b = memfd_with("data");
  struct kabi_request_msg req = {.req = 0x20003, .op = 1, .nica = 2};
  kabi_msg m, r;
  kabi_msg_init(&m, KABI_ANS_REQUEST, 4, 0, &req, sizeof req);
  m.fds[0] = a;
  m.fds[1] = b;
  m.hdr.nfds = 2;
  cr_assert_eq(kabi_sendmsg(sv[0], &m), 0);

  cr_assert_eq(recv_into(&r), (long)(sizeof r.hdr + sizeof req));
  cr_assert_eq(r.hdr.nfds, 2);
  assert_reads(r.fds[0], 0, "control");
  assert_reads(r.fds[1], 0, "data");
  assert_same_memfd(a, r.fds[0], "ctl");
  assert_same_memfd(b, r.fds[1], "dat");
  kabi_msg_close_fds(&r);
  close(a);
  close(b);
}

IO_TEST(messages_stay_separate_packets) {
  kabi_msg m, r;
  for (uint32_t seq = 0; seq < 5; seq++) {
    kabi_msg_init(&m, KABI_LOOKUP, seq, 0, "abcdefgh", seq);
    cr_assert_eq(kabi_sendmsg(sv[0], &m), 0);
  }
  for (uint32_t seq = 0; seq < 5; seq++) {
    cr_assert_eq(recv_into(&r), (long)(sizeof r.hdr + seq));
    cr_assert_eq(r.hdr.seq, seq);
    cr_assert_eq(memcmp(r.payload, "abcdefgh", seq), 0);
  }
}

/* malformed packets */

IO_TEST(packet_shorter_than_header_is_refused) {
  int a = memfd_with("x");
  kabi_msg m;
  kabi_msg_init(&m, KABI_SEND, 1, 0, NULL, 0);
  cr_assert_eq(uk_sendfds(sv[0], &m, sizeof m.hdr - 1, &a, 1), 0);
  kabi_msg r;
  cr_assert_eq(recv_into(&r), -EBADMSG);
  cr_assert_eq(r.hdr.nfds, 0);
  close(a); /* fini checks the received copy was closed */
}

IO_TEST(empty_packet_with_fds_is_refused) {
  int a = memfd_with("x"), b = memfd_with("y");
  int fds[2] = {a, b};
  cr_assert_eq(uk_sendfds(sv[0], "", 0, fds, 2), 0);
  kabi_msg r;
  cr_assert_eq(recv_into(&r), -EBADMSG);
  close_all(fds, 2);
}

static void send_with_len(uint32_t claimed, size_t actual, unsigned nfds) {
  int fds[2] = {memfd_with("a"), memfd_with("b")};
  kabi_msg m, r;
  kabi_msg_init(&m, KABI_SEND, 1, 0, "0123456789abcdef", actual);
  m.hdr.len = claimed;
  cr_assert_eq(uk_sendfds(sv[0], &m, sizeof m.hdr + actual, fds, nfds), 0);
  cr_assert_eq(recv_into(&r), -EBADMSG, "len %u with %zu bytes", claimed,
               actual);
  cr_assert_eq(r.hdr.nfds, 0);
  /* The descriptors received were closed: none of the numbers the kernel
   * could have handed out past ours is open. */
  for (unsigned i = 0; i < nfds && i < KABI_MAX_FDS; i++)
    cr_assert_not(fd_is_open(r.fds[i]), "received fd %d still open", r.fds[i]);
  close_all(fds, 2);
}

IO_TEST(length_longer_than_packet_is_refused) {
  send_with_len(16, 8, 2);
}

IO_TEST(length_shorter_than_packet_is_refused) {
  send_with_len(4, 8, 1);
}

IO_TEST(huge_length_is_refused) {
  send_with_len(UINT32_MAX, 16, 2);
}

IO_TEST(wrong_magic_is_refused) {
  int a = memfd_with("x");
  kabi_msg m, r;
  kabi_msg_init(&m, KABI_SEND, 1, 0, NULL, 0);
  m.hdr.magic = KABI_MAGIC ^ 0x0100;
  m.fds[0] = a;
  m.hdr.nfds = 1;
  cr_assert_eq(kabi_sendmsg(sv[0], &m), 0);
  cr_assert_eq(recv_into(&r), -EBADMSG);
  cr_assert_eq(r.hdr.nfds, 0);
  cr_assert_not(fd_is_open(r.fds[0]));
  close(a);
}

IO_TEST(oversize_packet_is_refused_without_leak) {
  static unsigned char buf[KABI_MAX_MSG + 64];
  int fds[2] = {memfd_with("a"), memfd_with("b")};
  kabi_msg m, r;
  kabi_msg_init(&m, KABI_SEND, 1, 0, NULL, 0);
  m.hdr.len = sizeof buf - sizeof m.hdr;
  memcpy(buf, &m.hdr, sizeof m.hdr);
  send_raw(sv[0], buf, sizeof buf, fds, 2);
  long n = recv_into(&r);
  cr_assert_lt(n, 0, "an oversize packet was accepted (%ld)", n);
  cr_assert_eq(r.hdr.nfds, 0);

  /* The rest of the packet is gone: the next message reads cleanly. */
  kabi_msg_init(&m, KABI_LOOKUP, 2, 0, "ok", 3);
  cr_assert_eq(kabi_sendmsg(sv[0], &m), 0);
  cr_assert_eq(recv_into(&r), (long)(sizeof r.hdr + 3));
  cr_assert_eq(r.hdr.seq, 2);
  close_all(fds, 2);
}

IO_TEST(extra_fds_are_closed) {
  /* Three descriptors fit the receiver's control buffer: the message is
   * accepted with the first two, and the third is closed. */
  int fds[3] = {memfd_with("a"), memfd_with("b"), memfd_with("c")};
  kabi_msg m, r;
  kabi_msg_init(&m, KABI_SEND, 1, 0, NULL, 0);
  m.hdr.nfds = 3;
  send_raw(sv[0], &m, sizeof m.hdr, fds, 3);
  cr_assert_eq(recv_into(&r), (long)sizeof r.hdr);
  cr_assert_eq(r.hdr.nfds, KABI_MAX_FDS);
  assert_reads(r.fds[0], 0, "a");
  assert_reads(r.fds[1], 0, "b");
  kabi_msg_close_fds(&r);
  close_all(fds, 3);
}

IO_TEST(many_fds_are_all_closed) {
  /* More than the control buffer holds: the kernel truncates, and the
   * message is refused with every descriptor closed. */
  int fds[8];
  for (int i = 0; i < 8; i++)
    fds[i] = memfd_with("m");
  kabi_msg m, r;
  kabi_msg_init(&m, KABI_SEND, 1, 0, NULL, 0);
  send_raw(sv[0], &m, sizeof m.hdr, fds, 8);
  cr_assert_eq(recv_into(&r), -EBADMSG);
  cr_assert_eq(r.hdr.nfds, 0);
  close_all(fds, 8);
}

IO_TEST(fd_count_is_the_kernels_not_the_senders) {
  /* A header claiming descriptors it did not attach must not make the
   * receiver close descriptors it never got. */
  int mine = memfd_with("keep");
  kabi_msg m, r;
  kabi_msg_init(&m, KABI_SEND, 1, 0, NULL, 0);
  m.hdr.nfds = 2;
  send_raw(sv[0], &m, sizeof m.hdr, NULL, 0);
  cr_assert_eq(recv_into(&r), (long)sizeof r.hdr);
  cr_assert_eq(r.hdr.nfds, 0);
  kabi_msg_close_fds(&r);
  cr_assert(fd_is_open(mine));
  close(mine);
}

IO_TEST(recvfds_truncated_packet_closes_its_fds) {
  /* uk_recvfds on its own, below kabi_recvmsg's checks. */
  int fds[2] = {memfd_with("a"), memfd_with("b")};
  char big[64] = "0123456789", small[16];
  int got[KABI_MAX_FDS] = {-1, -1};
  unsigned n = 99;
  cr_assert_eq(uk_sendfds(sv[0], big, sizeof big, fds, 2), 0);
  cr_assert_eq(uk_recvfds(sv[1], small, sizeof small, got, &n), -EMSGSIZE);
  cr_assert_eq(n, 0);
  close_all(fds, 2);
}

IO_TEST(recvfds_returns_bytes_and_fds) {
  int a = memfd_with("a");
  char buf[16];
  int got[KABI_MAX_FDS] = {-1, -1};
  unsigned n = 99;
  cr_assert_eq(uk_sendfds(sv[0], "hello", 6, &a, 1), 0);
  cr_assert_eq(uk_recvfds(sv[1], buf, sizeof buf, got, &n), 6);
  cr_assert_eq(n, 1);
  cr_assert_str_eq(buf, "hello");
  assert_same_memfd(a, got[0], "raw");
  close(got[0]);
  close(a);
}

/* end of stream, send errors */

IO_TEST(end_of_stream_is_zero) {
  kabi_msg m, r;
  kabi_msg_init(&m, KABI_SEND, 1, 0, NULL, 0);
  cr_assert_eq(kabi_sendmsg(sv[0], &m), 0);
  close(sv[0]);
  sv[0] = -1;
  cr_assert_eq(recv_into(&r), (long)sizeof r.hdr, "queued data first");
  cr_assert_eq(recv_into(&r), 0);
  cr_assert_eq(recv_into(&r), 0);
}

IO_TEST(end_of_stream_after_shutdown_is_zero) {
  kabi_msg r;
  cr_assert_eq(shutdown(sv[0], SHUT_WR), 0);
  cr_assert_eq(recv_into(&r), 0);
}

IO_TEST(empty_nonblocking_socket_is_eagain) {
  kabi_msg r;
  cr_assert_eq(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
  cr_assert_eq(recv_into(&r), -EAGAIN);
}

IO_TEST(send_to_closed_peer_is_epipe) {
  /* MSG_NOSIGNAL: an error, not SIGPIPE, even where SIGPIPE kills (which
   * would fail this test as a crash). */
  kabi_msg m;
  signal(SIGPIPE, SIG_DFL);
  close(sv[1]);
  sv[1] = -1;
  kabi_msg_init(&m, KABI_SEND, 1, 0, NULL, 0);
  cr_assert_eq(kabi_sendmsg(sv[0], &m), -EPIPE);
}

IO_TEST(send_refuses_oversize_payload) {
  kabi_msg m, r;
  kabi_msg_init(&m, KABI_SEND, 1, 0, NULL, 0);
  m.hdr.len = KABI_PAYLOAD_MAX + 1;
  cr_assert_eq(kabi_sendmsg(sv[0], &m), -EINVAL);
  cr_assert_eq(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
  cr_assert_eq(recv_into(&r), -EAGAIN, "nothing was sent");
}

IO_TEST(send_refuses_too_many_fds) {
  int fds[3] = {memfd_with("a"), memfd_with("b"), memfd_with("c")};
  kabi_msg m;
  kabi_msg_init(&m, KABI_SEND, 1, 0, NULL, 0);
  cr_assert_eq(uk_sendfds(sv[0], &m, sizeof m.hdr, fds, 3), -EINVAL);
  m.hdr.nfds = KABI_MAX_FDS + 1;
  cr_assert_eq(kabi_sendmsg(sv[0], &m), -EINVAL);
  close_all(fds, 3);
}

/* helpers */

IO_TEST(payload_copies_only_an_exact_length) {
  struct kabi_ica_args a = {.ica = 0x30004}, out = {.ica = 99};
  kabi_msg m;
  kabi_msg_init(&m, KABI_ICA_RELEASE, 1, 0, &a, sizeof a);
  cr_assert_eq(kabi_payload(&m, &out, sizeof out - 1), -EBADMSG);
  cr_assert_eq(kabi_payload(&m, &out, sizeof out + 1), -EBADMSG);
  cr_assert_eq(out.ica, 99, "a refused payload is not copied");
  cr_assert_eq(kabi_payload(&m, &out, sizeof out), 0);
  cr_assert_eq(out.ica, 0x30004);
}

IO_TEST(close_fds_closes_and_clears) {
  kabi_msg m;
  kabi_msg_init(&m, KABI_SEND, 1, 0, NULL, 0);
  m.fds[0] = memfd_with("a");
  m.fds[1] = memfd_with("b");
  m.hdr.nfds = 2;
  int a = m.fds[0], b = m.fds[1];
  kabi_msg_close_fds(&m);
  cr_assert_eq(m.hdr.nfds, 0);
  cr_assert_not(fd_is_open(a));
  cr_assert_not(fd_is_open(b));
  kabi_msg_close_fds(&m); /* nothing left to close */
}

/* A failover's batches (uk_sendfds_batch): UK_FDS_BATCH_MAX descriptors in
 * one packet arrive in order, each the same file as the one sent. */
IO_TEST(batch_carries_the_most_in_order) {
  int out[UK_FDS_BATCH_MAX], in[UK_FDS_BATCH_MAX];
  unsigned n = 0;
  char text[32];
  for (unsigned i = 0; i < UK_FDS_BATCH_MAX; i++) {
    snprintf(text, sizeof text, "fd %u", i);
    out[i] = memfd_with(text);
  }
  cr_assert_eq(uk_sendfds_batch(sv[0], "b", 1, out, UK_FDS_BATCH_MAX), 0);
  char buf[8];
  cr_assert_eq(
      uk_recvfds_batch(sv[1], buf, sizeof buf, in, &n, UK_FDS_BATCH_MAX), 1);
  cr_assert_eq(n, UK_FDS_BATCH_MAX);
  for (unsigned i = 0; i < n; i++) {
    snprintf(text, sizeof text, "fd %u", i);
    assert_reads(in[i], 0, text);
  }
  close_all(out, UK_FDS_BATCH_MAX);
  close_all(in, n);
}

/* One more than a batch holds is refused whole; the ABI's own send still
 * takes no more than KABI_MAX_FDS. */
IO_TEST(batch_refuses_more_than_its_limit) {
  int out[UK_FDS_BATCH_MAX + 1];
  for (unsigned i = 0; i <= UK_FDS_BATCH_MAX; i++)
    out[i] = memfd_with("x");
  cr_assert_eq(uk_sendfds_batch(sv[0], "b", 1, out, UK_FDS_BATCH_MAX + 1),
               -EINVAL);
  cr_assert_eq(uk_sendfds(sv[0], "b", 1, out, KABI_MAX_FDS + 1), -EINVAL);
  close_all(out, UK_FDS_BATCH_MAX + 1);
}

/* A receiver that takes fewer than came keeps the first ones and closes
 * the rest, up to two more than it takes; past that the packet is cut and
 * refused whole (nothing leaks either way: the test's leak check). */
IO_TEST(batch_receiver_closes_what_it_does_not_take) {
  int out[8], in[8];
  unsigned n = 0;
  for (unsigned i = 0; i < 8; i++)
    out[i] = memfd_with(i == 0 ? "first" : "other");
  char buf[8];
  cr_assert_eq(uk_sendfds_batch(sv[0], "b", 1, out, 5), 0);
  cr_assert_eq(uk_recvfds_batch(sv[1], buf, sizeof buf, in, &n, 3), 1);
  cr_assert_eq(n, 3);
  assert_reads(in[0], 0, "first");
  close_all(in, n);
  cr_assert_eq(uk_sendfds_batch(sv[0], "b", 1, out, 8), 0);
  cr_assert_eq(uk_recvfds_batch(sv[1], buf, sizeof buf, in, &n, 3), -EMSGSIZE);
  cr_assert_eq(n, 0);
  close_all(out, 8);
}
