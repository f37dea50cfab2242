/* The kernel process: private state of the one libuv loop that is the only
 * path between processes of an OS instance.
 *
 * What a reader outside the kernel may need lives in the kernel-data region
 * (k->kd, uksim/kdata.h).  What only makes sense inside this process lives
 * here, in arrays parallel to the tables: descriptors, libuv handles, the
 * sequence number of a deferred call.
 */
#ifndef UKSIM_KERN_H
#define UKSIM_KERN_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "control.pb-c.h"
#include "kabi_io.h"
#include "ktab.h"
#include "outbox.h"

/* A call handler's answer when the answer must wait (MINIX's EDONTREPLY). */
#define KERN_DEFER 1

struct kern_proc {
  int sock; /* kernel end of the process's connection, -1 once closed */
  uv_poll_t poll;
  uv_process_t process;
  bool polling;         /* poll handle initialized and not yet closed */
  bool running;         /* the Linux process has not been reaped */
  uint32_t wait_seq;    /* sequence of the deferred call */
  uint32_t wait_req;    /* AWAIT/CALL: the request waited for, 0 for any */
  uint64_t wait_ctl_id; /* control request waiting for this process's exit */
  bool has_waiter;
  bool waitable; /* slot kept after exit until a Wait collects the status */
  uint64_t spawn_ctl_id; /* a server spawn answered at its register() */
  bool spawn_pending;
};

struct kern {
  uv_loop_t *loop;
  struct uk_kdata *kd;
  int ica_fd[UK_ICA_MAX];
  struct kern_proc proc[UK_PROC_MAX];
  uint64_t ica_bytes;
  uint64_t req_seqno;
  /* The link to the machine: control requests in, replies and ICA holds
   * out. */
  int msock;
  uv_poll_t mpoll;
  struct outbox mout; /* ordered, never dropped: replies and ICA holds */
  uv_signal_t sigterm;
  uv_timer_t halt_timer; /* SIGKILL for processes that ignore SIGTERM */
  bool halting;
  uint64_t halt_id;
  long trace_left; /* trace lines still to print; -1 for no limit */
  uint64_t t0_ns;
};

/* kern.c */
uint64_t kern__now_ns(void);
void kern__answer(struct kern *k, uint32_t p, kabi_msg *m);
void kern__answer_status(struct kern *k, uint32_t p, uint32_t seq, int st);
void kern__proc_gone(struct kern *k, uint32_t p);
void kern__spawn_answer(struct kern *k, uint32_t p, int status,
                        const char *err);
void kern__trace(struct kern *k, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const char *kern__opname(const struct uk_kdata *kd, uint32_t svc, uint32_t op,
                         char *buf, size_t len);

/* kcall.c: call dispatch and the do_<call> handlers. */
void kern__dispatch(struct kern *k, uint32_t p, kabi_msg *m);
void kern__ica_release_all(struct kern *k, uint32_t p);
void kern__cleanup_proc(struct kern *k, uint32_t p);

/* ctlmsg.c: protobuf-c control messages over SEQPACKET. */
#define CTL_MSG_MAX 65536
int ctl_send(int sock, const Uksim__Ctl *c, int fd);
Uksim__Ctl *ctl_recv(int sock, int *fd, int *err);
int ctl_post(struct outbox *o, const Uksim__Ctl *c, int fd);
int ctl_post_reply(struct outbox *o, uint64_t id, const Uksim__Reply *r,
                   int fd);

int kern_main(int argc, char **argv);

#endif /* UKSIM_KERN_H */
