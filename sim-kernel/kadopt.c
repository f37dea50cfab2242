/* The kernel's side of a takeover (Orthros failover, steps 3 and 4; see
 * adopt.h for what moves and why): after adopt_tables() has rebuilt this
 * kernel's tables from the dead kernel's region, this gives each moved
 * process what only a live kernel has — its connection (the machine's
 * duplicate of the dead kernel's end), a handle to signal it, the
 * descriptors of its ICAs — answers the call it had in the kernel as the
 * plan says, ends the processes that do not move, and restarts every
 * service whose server died with the OS, by the AnT fault path (requests
 * the dead server held and had not kept fail with -ECONNRESET, the queued
 * ones wait for the new instance: none lost, none served twice).
 *
 * The order matters: ICAs first (answers may carry them); then the
 * processes that stay behind end, so that nothing of the dead OS runs
 * beside a successor; then services restart, before the processes move,
 * so that a successor's exec and start (milliseconds) overlap with this
 * kernel's work on hundreds of processes (it cannot register before this
 * returns: the loop is ours); then the processes' calls.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "adopt.h"
#include "kern.h"

/* Descriptors the takeover handed us that nobody keeps. */
static void close_fd(int *fd) {
  if (*fd >= 0)
    close(*fd);
  *fd = -1;
}

static void take_icas(struct kern *k, int *ica_fd) {
  k->ica_bytes = 0;
  for (uint32_t i = 0; i < UK_ICA_MAX; i++) {
    const struct uk_ica_ent *e = &k->kd->ica[i];
    if (e->state != UK_ICA_LIVE || ica_fd[i] < 0) {
      close_fd(&ica_fd[i]);
      if (e->state == UK_ICA_LIVE) { /* its memory is gone: so is the ICA */
        kern__trace(k, "takeover: ica %u had no memory from the machine", i);
        kern_ica_free(k->kd, KABI_ICA_ID(i, e->gen));
      }
      continue;
    }
    k->ica_fd[i] = ica_fd[i];
    kbits_zero(&k->ica_kept[i]);
    ica_fd[i] = -1;
    k->ica_bytes += e->size;
    kern__machine_ica(k, KABI_ICA_ID(i, e->gen), e->size, k->ica_fd[i]);
  }
  k->kd->ctr.ica_bytes = k->ica_bytes;
}

static void restart_services(struct kern *k, const struct adopt_plan *pl) {
  for (uint32_t s = 0; s < UK_SVC_MAX; s++) {
    if (!pl->restart_svc[s])
      continue;
    struct uk_svc *sv = &k->kd->svc[s];
    struct kern_svc *ks = &k->svc[s];
    kern__prog_free(&ks->prog);
    if (kern__prog_unpack(&ks->prog, sv->prog, sizeof sv->prog) < 0) {
      kern__trace(k, "takeover: %s has no program to restart", sv->name);
      kern__server_down(k, s);
      continue;
    }
    ks->pol = (struct kern_policy){.restart = sv->restart != 0,
                                   .restart_max = sv->restart_max,
                                   .deadline_ms = sv->deadline_ms,
                                   .heartbeat_ms = sv->heartbeat_ms};
    rep_takeover(k, s);
  }
}

/* Ends a process of the dead OS that does not move: the machine, its
 * parent now, reaps it. */
static void end_proc(struct kern *k, const struct adopt_proc *a) {
  if (a->pid > 0 && kill(a->pid, SIGKILL) == 0)
    kern__trace(k, "takeover: pid %d ends (%s)", a->pid, a->why);
}

static void answer_call(struct kern *k, uint32_t p,
                        const struct adopt_proc *a) {
  kabi_msg m;
  switch (a->call) {
  case ADOPT_IDLE:
    return;
  case ADOPT_WAIT_RESULT:
    kern__deliver_result(k, p); /* it may be there already */
    return;
  case ADOPT_ANSWER_SEND: {
    struct kabi_send_ans ans = {.req = a->req};
    kabi_msg_init(&m, KABI_ANS_SEND, a->seq, 0, &ans, sizeof ans);
    kern__answer(k, p, &m);
    return;
  }
  case ADOPT_ANSWER_ICA:
    kern__answer_ica(k, p, a->seq, a->req);
    return;
  case ADOPT_RESTART:
    kabi_msg_init(&m, KABI_ANS_RESTART, a->seq, 0, NULL, 0);
    kern__answer(k, p, &m);
    return;
  case ADOPT_INTR:
    kern__answer_status(k, p, a->seq, -EINTR);
    return;
  }
}

static const char *call_name(enum adopt_call c) {
  static const char *n[] = {"idle",          "waits for its result",
                            "send answered", "ICA create answered",
                            "restarted",     "interrupted"};
  return n[c];
}

/* What became of p's call in flight, in the trace: where a lost or
 * doubled request is looked for. */
static void call_event(struct kern *k, uint32_t p, const struct adopt_proc *a) {
  char text[32];
  snprintf(text, sizeof text, "call #%u", a->seq);
  kern__event(k, &(struct kern_ev){.ev = "takeover",
                                   .actor = k->kd->proc[p].name,
                                   .op = call_name(a->call),
                                   .req = a->req,
                                   .text = text});
}

static int take_proc(struct kern *k, uint32_t p, const struct adopt_proc *a,
                     int *conn_fd, bool ns_torn) {
  if (conn_fd[p] < 0)
    return -ENOTCONN; /* the machine had no connection for it */
  int r = kern__watch_adopted(k, p, conn_fd[p], a->pid);
  conn_fd[p] = -1;
  if (r < 0)
    return r;
  /* A torn namespace table, or an image without a namespace (a kernel
   * update by replay: the process makes it again), starts afresh. */
  bool no_ns = !k->kd->vfs.vproc[p].attached;
  if ((ns_torn || no_ns) && (r = kern__ns_start(k, p, -1, 0)) < 0)
    return r;
  kern__trace(k, "takeover: %s (pid %d) moved, its call %s",
              k->kd->proc[p].name, a->pid, call_name(a->call));
  if (a->call != ADOPT_IDLE)
    call_event(k, p, a);
  return 0;
}

int kern__adopt(struct kern *k, const struct uk_kdata *dead, int *conn_fd,
                int *ica_fd, struct adopt_plan *pl) {
  int r = adopt_tables(dead, k->kd, pl);
  if (r < 0)
    return r;
  take_icas(k, ica_fd);
  for (uint32_t p = 0; p < UK_PROC_MAX; p++)
    if (!pl->proc[p].moved && pl->proc[p].pid > 0)
      end_proc(k, &pl->proc[p]);
  restart_services(k, pl);
  for (uint32_t p = 0; p < UK_PROC_MAX; p++) {
    const struct adopt_proc *a = &pl->proc[p];
    if (a->moved && take_proc(k, p, a, conn_fd, pl->ns_torn) < 0) {
      kern__trace(k, "takeover: %s could not move", k->kd->proc[p].name);
      end_proc(k, a);
      kern__cleanup_proc(k, p);
      k->kd->proc[p].state = UK_PROC_FREE;
    }
    close_fd(&conn_fd[p]);
  }
  for (uint32_t p = 0; p < UK_PROC_MAX; p++)
    if (pl->proc[p].moved && k->proc[p].sock >= 0)
      answer_call(k, p, &pl->proc[p]);
  return 0;
}
