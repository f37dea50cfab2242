/*
 * fuzz_kcall.c: libFuzzer target for the kernel's call decoder: the
 * packets processes send are read as the kernel reads them (kabi_recvmsg,
 * lib/kabi_io.c, then kern__dispatch, sim-kernel/kcall.c), by a kernel
 * whose tables are real and whose loop never runs.  Three fake processes
 * are connected by SOCK_SEQPACKET pairs, as spawned ones are, but no Linux
 * process stands behind them: the harness plays their exits.  The input
 * is a list of records
 *   ctl[1] len[2] packet[len & 1023]
 * ctl & 3 is the sender (0-2); ctl & 4 sends a descriptor along; ctl & 3
 * == 3 instead makes process (ctl >> 2) % 3 exit, and no len or packet
 * follows.  The packet is sent raw: header, payload, lies and all.
 *
 * Checked as the kernel promises (uksim/kabi.h, kcall.c): every answer is
 * a well-formed message with the descriptors its references say; a process
 * gets no more answers than it made calls, and every call of a process not
 * left waiting is answered (a panic's answer is its end); after every
 * process has exited and the services' ICAs are dropped, no ICA, request
 * or descriptor is left and nothing is left on the loop.  Crashes,
 * overreads and leaks are bugs.  UKSIM_FUZZ_TRACE=1 prints the kernel's
 * trace (--trace) of each input, for a replay.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kern.h"

enum { NPROC = 3 };

static struct kern k; /* large: the descriptor and handle arrays */
static struct uk_kdata kd;
static uv_loop_t loop;
static int devnull = -1;
static long trace_lines; /* k.trace_left at boot: 0, or -1 for all */

/* A fake process: its end of the connection and what it has seen. */
static struct fake {
  uint32_t slot;
  int sock; /* -1 once it has exited */
  unsigned calls, answers;
} fk[NPROC];

/* The payload an answer of each kind carries. */
static long answer_len(uint16_t op) {
  switch (op) {
  case KABI_ANS_STATUS:
    return 0;
  case KABI_ANS_ICA:
    return sizeof(struct kabi_ica_ans);
  case KABI_ANS_LOOKUP:
    return sizeof(struct kabi_lookup_ans);
  case KABI_ANS_SEND:
    return sizeof(struct kabi_send_ans);
  case KABI_ANS_RESULT:
    return sizeof(struct kabi_result_msg);
  case KABI_ANS_REQUEST:
    return sizeof(struct kabi_request_msg);
  case KABI_ANS_REGISTER:
    return sizeof(struct kabi_register_ans);
  case KABI_ANS_PREPARE:
    return sizeof(struct kabi_prepare_msg);
  case KABI_ANS_NS:
    return sizeof(struct kabi_ns_ans);
  default:
    return -1;
  }
}

/* Descriptors an answer must carry: one per reference not kept mapped. */
static unsigned fds_wanted(const kabi_msg *m) {
  const struct kabi_ica_ref *ref;
  uint32_t nica, n = 0;
  if (m->hdr.op == KABI_ANS_ICA)
    return 1;
  if (m->hdr.op == KABI_ANS_RESULT) {
    const struct kabi_result_msg *r = (const void *)m->payload;
    nica = r->nica, ref = r->ica;
  } else if (m->hdr.op == KABI_ANS_REQUEST) {
    const struct kabi_request_msg *r = (const void *)m->payload;
    nica = r->nica, ref = r->ica;
  } else {
    return 0;
  }
  if (nica > KABI_MAX_FDS)
    abort();
  for (uint32_t i = 0; i < nica; i++)
    n += !(ref[i].flags & KABI_REF_MAPPED);
  return n;
}

/* Reads every answer waiting for fake process i and checks it. */
static void read_answers(int i) {
  kabi_msg m;
  long n;
  while (fk[i].sock >= 0 &&
         (n = kabi_recvmsg_flags(fk[i].sock, &m, MSG_DONTWAIT)) != -EAGAIN) {
    if (n <= 0 || answer_len(m.hdr.op) != (long)m.hdr.len ||
        m.hdr.nfds != fds_wanted(&m))
      abort(); /* a malformed answer */
    kabi_msg_close_fds(&m);
    if (++fk[i].answers > fk[i].calls)
      abort(); /* an answer to no call */
  }
}

/* Fake process i exits: what the kernel does when its process is reaped
 * (kern__proc_exited, without the libuv process handle it never had). */
static void fake_exit(int i) {
  if (fk[i].sock < 0)
    return;
  kern__timer_stop(&k, &k.sleep_timer[fk[i].slot]);
  kern__proc_gone(&k, fk[i].slot);
  close(fk[i].sock);
  fk[i].sock = -1;
}

/* Starts fake process i, as kern__spawn does but for the Linux process. */
static void fake_start(int i) {
  char name[8];
  int sv[2], p;
  snprintf(name, sizeof name, "p%d", i);
  if ((p = kern_proc_alloc(&kd, name, 1000 + i)) < 0 ||
      socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    abort();
  struct kern_proc *kp = &k.proc[p];
  fk[i] = (struct fake){.slot = (uint32_t)p, .sock = sv[1]};
  kp->sock = sv[0];
  kp->run = KS_RUNNING;
  kp->cpu = -1;
  kp->last_call_ns = kern__now_ns();
  fcntl(kp->sock, F_SETFL, O_NONBLOCK);
  if (uv_poll_init(&loop, &kp->poll, kp->sock) < 0)
    abort();
  kp->poll.data = (void *)(uintptr_t)p;
  kp->polling = true;
}

/* One packet from fake process i, read as kern.c's on_proc_readable does
 * (free-running: the lock-step scheduler only defers the same dispatch). */
static void deliver(int i, const uint8_t *pkt, size_t len, bool with_fd) {
  uint32_t p = fk[i].slot;
  kabi_msg m;
  long n;
  if (uk_sendfds(fk[i].sock, pkt, len, &devnull, with_fd) < 0)
    abort();
  n = kabi_recvmsg(k.proc[p].sock, &m);
  if (n == 0) { /* an empty packet: the kernel kills its sender */
    fake_exit(i);
    return;
  }
  if (n < 0 && n != -EBADMSG)
    abort();
  fk[i].calls++;
  k.proc[p].cpu = (int)(m.hdr.flags >> KABI_CPU_SHIFT) - 1;
  kd.hdr.step++;
  if (n == -EBADMSG) {
    kd.ctr.bad_calls++;
    kd.proc[p].errors++;
    kern__trace(&k, "%s sent a malformed call", kd.proc[p].name);
    kern__answer_status(&k, p, m.hdr.seq, -EBADMSG);
  } else {
    kern__dispatch(&k, p, &m);
  }
  for (int j = 0; j < NPROC; j++)
    read_answers(j);
  if (fk[i].answers < fk[i].calls && kd.proc[p].state != UK_PROC_WAITING) {
    if (n < 0 || m.hdr.op != KABI_PANIC)
      abort();    /* a call neither answered nor waiting */
    fake_exit(i); /* the kernel killed it */
  }
}

static void boot(void) {
  memset(&k, 0, sizeof k);
  kern_kdata_init(&kd, getpid(), 1, 1ull << 30);
  k.kd = &kd;
  k.msock = -1; /* no machine: ICA holds go nowhere */
  k.trace_left = trace_lines;
  k.t0_ns = kern__now_ns();
  for (int i = 0; i < UK_ICA_MAX; i++)
    k.ica_fd[i] = -1;
  for (int i = 0; i < UK_PROC_MAX; i++) {
    k.proc[i].sock = -1;
    k.proc[i].pidfd = -1;
  }
  if (uv_loop_init(&loop) < 0)
    abort();
  loop.data = &k;
  k.loop = &loop;
  kern__sleep_init(&k);
  rep_init(&k);
  for (int i = 0; i < NPROC; i++)
    fake_start(i);
}

static void close_handle(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

/* Every process exits; what services hold goes as at a halt; then nothing
 * may be left. */
static void shut_down(void) {
  for (int i = 0; i < NPROC; i++)
    fake_exit(i);
  for (uint32_t i = 0; i < UK_ICA_MAX; i++) {
    const struct uk_ica_ent *e = &kd.ica[i];
    if (e->state == UK_ICA_LIVE && e->holder_kind == UK_HOLD_SVC)
      kern__ica_drop(&k, KABI_ICA_ID(i, e->gen));
  }
  if (kern_ica_live(&kd) != 0 || k.ica_bytes != 0)
    abort(); /* an ICA outlived every holder */
  for (uint32_t i = 0; i < UK_ICA_MAX; i++)
    if (k.ica_fd[i] != -1)
      abort();
  for (uint32_t i = 0; i < UK_REQ_MAX; i++)
    if (kd.req[i].state != UK_REQ_FREE)
      abort(); /* a request outlived its client and server */
  uv_walk(&loop, close_handle, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0)
    abort();
  for (int i = 0; i < UK_PROC_MAX; i++)
    kern__prog_free(&k.proc[i].prog);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  boot();
  while (size >= 1) {
    uint8_t ctl = *data++;
    size--;
    if ((ctl & 3) == 3) {
      fake_exit((ctl >> 2) % NPROC);
      continue;
    }
    if (size < 2)
      break;
    size_t len = (data[0] | data[1] << 8) & 1023;
    data += 2;
    size -= 2;
    if (len > size)
      len = size;
    if (fk[ctl & 3].sock >= 0)
      deliver(ctl & 3, data, len, ctl & 4);
    data += len;
    size -= len;
  }
  shut_down();
  return 0;
}

/* Room for every ICA the kernel may create, as the machine makes it. */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  struct rlimit rl;
  (void)argc;
  (void)argv;
  signal(SIGPIPE, SIG_IGN);
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if ((devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
    abort();
  if (getenv("UKSIM_FUZZ_TRACE"))
    trace_lines = -1;
  return 0;
}
