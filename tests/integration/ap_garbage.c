/* An application process that breaks every rule of the kernel ABI on
 * purpose and checks that each call is refused with the documented error
 * while it keeps running.  Exit 0 when every answer was as expected.
 *
 * It talks to the kernel directly (not through libuksim) so it can send
 * what the library never would. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kabi_io.h"
#include "uksim/ica.h"

static int ksock;
static uint32_t seq = 100;
static int failures;

/* Sends raw bytes (+ an optional fd) and returns the answer's status. */
static int raw(const void *buf, size_t len, int fd) {
  kabi_msg a;
  if (uk_sendfds(ksock, buf, len, &fd, fd >= 0 ? 1 : 0) < 0)
    return -1000;
  if (kabi_recvmsg(ksock, &a) <= 0)
    return -1001;
  kabi_msg_close_fds(&a);
  return a.hdr.status;
}

static int call(uint16_t op, const void *args, size_t len) {
  kabi_msg m;
  kabi_msg_init(&m, op, ++seq, 0, args, len);
  return raw(&m, sizeof m.hdr + len, -1);
}

static void expect(const char *what, int got, int want) {
  if (got != want) {
    fprintf(stderr, "ap_garbage: %s: got %d, want %d\n", what, got, want);
    failures++;
  }
}

int main(void) {
  const char *s = getenv("UKSIM_FD");
  if (s == NULL)
    return 2;
  ksock = atoi(s);

  char junk[3] = {1, 2, 3};
  expect("short packet", raw(junk, sizeof junk, -1), -EBADMSG);

  kabi_msg m;
  kabi_msg_init(&m, KABI_LOOKUP, ++seq, 0, NULL, 0);
  m.hdr.magic = 0xdead;
  expect("bad magic", raw(&m, sizeof m.hdr, -1), -EBADMSG);

  kabi_msg_init(&m, KABI_LOOKUP, ++seq, 0, NULL, 0);
  m.hdr.len = 40; /* claims more than it sends */
  expect("length mismatch", raw(&m, sizeof m.hdr, -1), -EBADMSG);

  expect("unknown op", call(999, NULL, 0), -ENOSYS);
  expect("wrong payload size", call(KABI_SEND, junk, sizeof junk), -EINVAL);

  struct kabi_ica_args ia = {.ica = KABI_ICA_ID(0, 1)};
  expect("release an ICA not held", call(KABI_ICA_RELEASE, &ia, sizeof ia),
         -EPERM);
  ia.ica = 0x7fff0fff;
  expect("release a bad ICA id", call(KABI_ICA_RELEASE, &ia, sizeof ia),
         -EPERM);

  struct kabi_lookup_args la;
  memset(&la, 'x', sizeof la); /* no terminating NUL */
  expect("unterminated name", call(KABI_LOOKUP, &la, sizeof la), -EINVAL);
  memset(&la, 0, sizeof la);
  strcpy(la.name, "no-such-service");
  expect("lookup of nothing", call(KABI_LOOKUP, &la, sizeof la), -ESRCH);

  strcpy(la.name, "kvs");
  kabi_msg_init(&m, KABI_LOOKUP, ++seq, 0, &la, sizeof la);
  if (raw(&m, sizeof m.hdr + sizeof la, -1) != 0)
    expect("lookup kvs", -1, 0);
  struct kabi_send_args sa = {.svc = 1, .op = 0, .ctl = KABI_ICA_ID(0, 1)};
  expect("send with an ICA not held", call(KABI_SEND, &sa, sizeof sa), -EPERM);
  sa.ctl = KABI_ICA_NONE;
  expect("send without control ICA", call(KABI_SEND, &sa, sizeof sa), -EINVAL);
  sa.svc = 999;
  expect("send to a bad service", call(KABI_SEND, &sa, sizeof sa), -ESRCH);

  struct kabi_reply_args ra = {.req = 12345};
  expect("reply to no request", call(KABI_REPLY, &ra, sizeof ra), -ENOENT);
  expect("receive without registering", call(KABI_RECEIVE, NULL, 0), -EPERM);
  struct kabi_await_args wa = {0};
  expect("await with nothing outstanding", call(KABI_AWAIT, &wa, sizeof wa),
         -ENOENT);
  struct kabi_ica_create_args ca = {.size = 0, .kind = KABI_ICA_DATA};
  expect("zero-size ICA", call(KABI_ICA_CREATE, &ca, sizeof ca), -EINVAL);
  ca.size = UK_ICA_SIZE_MAX + 1;
  expect("oversize ICA", call(KABI_ICA_CREATE, &ca, sizeof ca), -EINVAL);

  int fd = memfd_create("junk", MFD_CLOEXEC);
  kabi_msg_init(&m, KABI_LOOKUP, ++seq, 0, &la, sizeof la);
  expect("a call carrying a descriptor", raw(&m, sizeof m.hdr + sizeof la, fd),
         -EINVAL);
  close(fd);

  /* After all that, the kernel still serves this process normally. */
  uk_ica ica;
  expect("a good ICA after the bad calls",
         ica_create(4096, KABI_ICA_DATA, &ica), 0);
  expect("release it", ica_release(&ica), 0);
  if (failures == 0)
    printf("ap_garbage: every bad call refused as documented\n");
  return failures ? 1 : 0;
}
