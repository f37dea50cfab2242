/* Orthros, the kernel side (issue 14; seed paper 001 §2.3): an ActiveOS
 * and a BackupOS on one machine, each kernel an OS instance.
 *
 * Roles and their transitions (k->os.role):
 *
 *   ACTIVE   sends Ipi HEARTBEAT every --heartbeat-ms (0: never, a machine
 *            without backup) on a real-time background timer, so lock-step
 *            runs never wait for it.  Its panic path (kern_panic) sends Ipi
 *            PANIC, then the kernel exits; a Fault HANG blocks its loop
 *            forever (no heartbeat, no answer; the process lives on).
 *   BACKUP   runs free, serves nothing, watches the active: each
 *            HEARTBEAT re-arms a --heartbeat-timeout-ms timer; until the
 *            first one it waits KOS_BOOT_GRACE_MS at least (an active
 *            that boots a scenario may take longer to send its first).  The
 * timer firing, or a PANIC notice, declares the active dead: an "os-dead" event
 * naming the cause and the latency, the detection record in the inter-OS
 * region, and a Fence of the dead OS to the machine          -> FENCING FENCING
 * waits for the machine's answer (the dead kernel is reaped): 0 -> ACTIVE:
 * heartbeats start, and a TakeOver of the dead OS asks for its state (kernel
 * data, connections, ICAs), kept in k->os.adopt_* for the adoption code; an
 * error -> BACKUP again, watching.
 *
 * The machine never reports a kernel's death: a crash (SIGKILL by the
 * machine) is found only through the missing heartbeat.
 *
 * At a TakeOver the machine re-partitions and sends Resize ahead of the
 * answer: the new active's ICA budget becomes its usable memory
 * (kd->hdr.budget_bytes) before it adopts the dead OS's ICAs.
 * The active publishes its protected processes in the inter-OS region
 * (kos_publish) at each spawn or end of one, and a new active again at
 * the end of its failover.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kern.h"
#include "machine.h"
#include "uksim/interos.h"
#include "uksim/uv_check.h"

/* Ids of this kernel's own requests to the machine: beyond any the machine
 * uses for the requests it relays to us. */
#define KOS_FENCE_ID (1ull << 62)
#define KOS_TAKEOVER_ID ((1ull << 62) + 1)
/* The backup's patience before the first heartbeat (ms), and for an
 * active inside bounded work (kos_busy). */
#define KOS_BOOT_GRACE_MS 1000
#define KOS_BUSY_MAX_MS 1000

static uint64_t now_ns(void) {
  return uv_hrtime(); /* real time, never the lock-step virtual clock */
}

static void post(struct kern *k, Uksim__Ctl *c, int fd) {
  (void)ctl_post(&k->mout, c, fd);
}

/* Heartbeats (active) ------------------------------------------------------ */

static void send_ipi(struct kern *k, Uksim__Ipi__Kind kind) {
  Uksim__Ipi ipi = UKSIM__IPI__INIT;
  Uksim__Ctl c = UKSIM__CTL__INIT;
  ipi.kind = kind;
  ipi.from_os = k->os.id;
  ipi.seq = ++k->os.hb_seq;
  c.body_case = UKSIM__CTL__BODY_IPI;
  c.ipi = &ipi;
  post(k, &c, -1);
}

static void on_heartbeat(uv_timer_t *t) {
  struct kern *k = t->loop->data;
  if (kern__retiring(k))
    return; /* the new active beats now */
  send_ipi(k, UKSIM__IPI__KIND__HEARTBEAT);
  k->os.hb_last_sent_ns = now_ns();
  if (k->os.io) {
    k->os.io->hb_os = k->os.id;
    k->os.io->hb_seq = k->os.hb_seq;
    __atomic_store_n(&k->os.io->hb_ns, now_ns(), __ATOMIC_RELEASE);
  }
}

/* Bounded kernel work that blocks the loop (a spawn waits for its
 * child's exec, which a loaded host may run 50 ms later): the stamp tells
 * the backup the silence is not a hang, for KOS_BUSY_MAX_MS at most; a
 * heartbeat follows at once if one is due. */
void kos_busy(struct kern *k, bool busy) {
  if (k->os.role != KOS_ACTIVE || k->os.hb_ms == 0)
    return;
  if (k->os.io)
    __atomic_store_n(&k->os.io->busy_ns, busy ? now_ns() : 0, __ATOMIC_RELEASE);
  if (!busy && now_ns() - k->os.hb_last_sent_ns >= k->os.hb_ms * 1000000ull)
    on_heartbeat(&k->os.hb_timer);
}

void kos_heartbeat(struct kern *k) {
  if (k->os.role == KOS_ACTIVE && k->os.hb_ms > 0 &&
      now_ns() - k->os.hb_last_sent_ns >= k->os.hb_ms * 1000000ull)
    on_heartbeat(&k->os.hb_timer);
}

static void heartbeat_start(struct kern *k) {
  if (k->os.hb_ms == 0)
    return;
  UV_CHECK(uv_timer_start(&k->os.hb_timer, on_heartbeat, 0, k->os.hb_ms));
}

/* Watching the active (backup) ----------------------------------------------
 */

static void on_silence(uv_timer_t *t);

static void watch_for(struct kern *k, uint64_t ms) {
  UV_CHECK(uv_timer_start(&k->os.watch_timer, on_silence, ms ? ms : 1, 0));
}

static void watch(struct kern *k) {
  uint64_t ms = k->os.timeout_ms;
  if (!k->os.hb_seen && ms < KOS_BOOT_GRACE_MS)
    ms = KOS_BOOT_GRACE_MS;
  watch_for(k, ms);
}

/* What the host says of the active's kernel process: its state letter
 * (/proc/PID/stat; 0 when gone), the cpu time it ran and the time it
 * waited for a cpu (/proc/PID/schedstat), ns. */
struct cpu_view {
  char state;
  uint64_t ran, waited;
};

static struct cpu_view active_cpu(const struct kern *k) {
  struct cpu_view v = {0, 0, 0};
  char path[64], buf[512];
  unsigned long long ran, waited;
  int32_t pid = k->os.io ? k->os.io->active_pid : 0;
  if (pid <= 0)
    return v;
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "re");
  if (f && fgets(buf, sizeof buf, f) && strrchr(buf, ')'))
    v.state = strrchr(buf, ')')[2];
  if (f)
    fclose(f);
  snprintf(path, sizeof path, "/proc/%d/schedstat", (int)pid);
  f = fopen(path, "re");
  if (f && fscanf(f, "%llu %llu", &ran, &waited) == 2) {
    v.ran = ran;
    v.waited = waited;
  }
  if (f)
    fclose(f);
  return v;
}

/* How long the active has been silent by its own fault: since its last
 * heartbeat (the one relayed, or the later stamp it wrote itself in the
 * inter-OS region, should the relay be late), counting only the time it
 * could have run.  A kernel runnable now (R) or in the middle of I/O (D)
 * may be waiting for a cpu on a loaded host, a wait schedstat counts only
 * once it ends: its silence is the cpu time it had.  A sleeping one (S: a
 * hung loop) or a dead one counts all but its finished waits. */
static uint64_t silence_ns(const struct kern *k) {
  uint64_t last = k->os.last_hb_ns, now = now_ns();
  const struct uk_interos *io = k->os.io;
  if (io && io->hb_os == io->active_os) {
    uint64_t stamp = __atomic_load_n(&io->hb_ns, __ATOMIC_ACQUIRE);
    if (stamp > last && stamp <= now)
      last = stamp;
  }
  uint64_t silent = now - last;
  struct cpu_view v = active_cpu(k);
  if (!k->os.hb_seen || v.state == 0 || v.state == 'Z' || v.state == 'X')
    return silent;
  if (v.state == 'R' || v.state == 'D')
    return v.ran > k->os.hb_cpu.ran ? v.ran - k->os.hb_cpu.ran : 0;
  uint64_t waited =
      v.waited > k->os.hb_cpu.waited ? v.waited - k->os.hb_cpu.waited : 0;
  return waited < silent ? silent - waited : 0;
}

/* The detection record and its event: cause, and the latency from the
 * last heartbeat seen and from the machine's fault stamp (if the fault
 * was injected into the dead OS). */
static void record_detection(struct kern *k, uint32_t dead, int cause) {
  struct uk_interos *io = k->os.io;
  uint64_t now = now_ns(), since_hb = now - k->os.last_hb_ns, since_fault = 0;
  if (io) {
    uint64_t f = __atomic_load_n(&io->fault_ns, __ATOMIC_ACQUIRE);
    if (f && f <= now && io->fault_os == dead)
      since_fault = now - f;
    io->det_dead_os = dead;
    io->det_by_os = k->os.id;
    io->det_cause = (uint32_t)cause;
    io->det_since_hb_ns = since_hb;
    io->det_since_fault_ns = since_fault;
    io->det_ns = now;
    __atomic_add_fetch(&io->det_count, 1, __ATOMIC_RELEASE);
  }
  char me[16], peer[16], text[160];
  const char *why = cause == UK_DETECT_PANIC     ? "panic notice"
                    : cause == UK_DETECT_KUPDATE ? "kernel update"
                    : cause == UK_DETECT_MONITOR ? "monitor"
                                                 : "heartbeat timeout";
  snprintf(me, sizeof me, "os%u", k->os.id);
  snprintf(peer, sizeof peer, "os%u", dead);
  int n = snprintf(text, sizeof text, "%s: %.3f ms after the last heartbeat",
                   why, (double)since_hb / 1e6);
  if (since_fault) /* else no fault was injected through the machine */
    snprintf(text + n, sizeof text - (size_t)n, ", %.3f ms after the fault",
             (double)since_fault / 1e6);
  else
    snprintf(text + n, sizeof text - (size_t)n, ", no fault injected");
  kern__trace(k, "os %u declares os %u dead: %s", k->os.id, dead, text);
  kern__event(k, &(struct kern_ev){.ev = "os-dead",
                                   .actor = me,
                                   .peer = peer,
                                   .op = why,
                                   .status = (int)(since_hb / 1000),
                                   .text = text});
  if (k->events)
    fflush(k->events);
}

/* The active is dead: fence it (BACKUP -> FENCING). */
static void declare_dead(struct kern *k, int cause) {
  uint32_t dead =
      k->os.io ? __atomic_load_n(&k->os.io->active_os, __ATOMIC_ACQUIRE) : 0;
  if (k->os.role != KOS_BACKUP)
    return;
  uv_timer_stop(&k->os.watch_timer);
  if (dead == 0 || dead == k->os.id) {
    k->os.last_hb_ns = now_ns(); /* no active to fence: keep watching */
    watch(k);
    return;
  }
  record_detection(k, dead, cause);
  k->os.role = KOS_FENCING;
  k->os.dead_os = dead;
  Uksim__Fence f = UKSIM__FENCE__INIT;
  Uksim__Ctl c = UKSIM__CTL__INIT;
  f.os = dead;
  c.id = k->os.fence_id = KOS_FENCE_ID;
  c.body_case = UKSIM__CTL__BODY_FENCE;
  c.fence = &f;
  post(k, &c, -1);
}

void kos_declare_dead(struct kern *k, int cause) {
  declare_dead(k, cause);
}

/* The active is inside bounded work (kos_busy), not for too long. */
static bool active_busy(const struct kern *k) {
  const struct uk_interos *io = k->os.io;
  uint64_t b = io ? __atomic_load_n(&io->busy_ns, __ATOMIC_ACQUIRE) : 0;
  return b && io->hb_os == io->active_os &&
         now_ns() - b < KOS_BUSY_MAX_MS * 1000000ull;
}

static void on_silence(uv_timer_t *t) {
  struct kern *k = t->loop->data;
  uint64_t silent = silence_ns(k), timeout = k->os.timeout_ms * 1000000ull;
  if (k->os.hb_seen && active_busy(k)) {
    watch_for(k, k->os.timeout_ms);
    return;
  }
  if (k->os.hb_seen && silent < timeout) { /* late, not dead: wait more */
    watch_for(k, (timeout - silent + 999999) / 1000000);
    return;
  }
  declare_dead(k, UK_DETECT_TIMEOUT);
}

static void on_ipi(struct kern *k, const Uksim__Ipi *ipi) {
  if (k->os.role != KOS_BACKUP)
    return;
  if (ipi->kind == UKSIM__IPI__KIND__HEARTBEAT) {
    k->os.hb_seen = true;
    k->os.last_hb_ns = now_ns();
    struct cpu_view v = active_cpu(k);
    k->os.hb_cpu.ran = v.ran;
    k->os.hb_cpu.waited = v.waited;
    watch(k);
  } else if (ipi->kind == UKSIM__IPI__KIND__PANIC) {
    declare_dead(k, UK_DETECT_PANIC);
  } else if (ipi->kind == UKSIM__IPI__KIND__KUPDATE) {
    if (ipi->method == UKSIM__KUPDATE__METHOD__REPLAY)
      kern__replay_begin(k);            /* method B (kreplay.c) */
    declare_dead(k, UK_DETECT_KUPDATE); /* stopped by the machine */
  }
}

/* Taking over (FENCING -> ACTIVE) -------------------------------------------
 */

static void take_over(struct kern *k) {
  Uksim__TakeOver t = UKSIM__TAKE_OVER__INIT;
  Uksim__Ctl c = UKSIM__CTL__INIT;
  t.dead_os = k->os.dead_os;
  c.id = k->os.takeover_id = KOS_TAKEOVER_ID;
  c.body_case = UKSIM__CTL__BODY_TAKE_OVER;
  c.take_over = &t;
  post(k, &c, -1);
}

static void fenced(struct kern *k, const Uksim__Reply *r) {
  char text[96];
  if (r->status < 0) {
    kern__trace(k, "fence of os %u refused: %s", k->os.dead_os, r->error);
    k->os.role = KOS_BACKUP;
    k->os.last_hb_ns = now_ns();
    watch(k);
    return;
  }
  k->os.role = KOS_ACTIVE;
  snprintf(text, sizeof text, "os %u takes over from os %u", k->os.id,
           k->os.dead_os);
  kern__trace(k, "%s", text);
  kern__event(k, &(struct kern_ev){.ev = "os-active", .text = text});
  heartbeat_start(k);
  take_over(k);
}

/* Every descriptor handed over has come: the adoption code's turn.  Until
 * it exists, the kernel keeps them (the processes' connections stay open,
 * their calls wait) and says what it holds. */
static void takeover_check(struct kern *k) {
  struct kern_os *o = &k->os;
  if (o->adopt_kd_fd < 0 || o->adopt_conns < o->adopt_want_conns ||
      o->adopt_icas < o->adopt_want_icas || o->adopt_nics < o->adopt_want_nics)
    return;
  char text[96];
  snprintf(text, sizeof text,
           "os %u's state: kernel data, %u connections, %u ICAs", o->dead_os,
           o->adopt_conns, o->adopt_icas);
  kern__trace(k, "took over %s", text);
  kern__event(k, &(struct kern_ev){.ev = "takeover",
                                   .status = (int)o->adopt_conns,
                                   .text = text});
  kern__failover(k);
  if (k->exec && k->ops->resume)
    k->ops->resume(k); /* the scenario goes on here (cli/scn_exec.c) */
  if (k->events)
    fflush(k->events);
}

static void takeover_reply(struct kern *k, const Uksim__Reply *r, int fd) {
  if (r->status < 0 || fd < 0) {
    kern__trace(k, "takeover of os %u refused: %s", k->os.dead_os, r->error);
    if (fd >= 0)
      close(fd);
    return;
  }
  if (k->os.adopt_kd_fd >= 0)
    close(k->os.adopt_kd_fd);
  k->os.adopt_kd_fd = fd;
  k->os.adopt_want_conns = r->conns;
  k->os.adopt_want_icas = r->icas;
  k->os.adopt_want_nics = r->nics;
  takeover_check(k);
}

static void takeover_item(struct kern *k, const Uksim__TakeOverItem *it,
                          int fd) {
  struct kern_os *o = &k->os;
  if (fd < 0)
    return;
  if (it->kind == UKSIM__TAKE_OVER_ITEM__KIND__CONN &&
      it->index < UK_PROC_MAX && o->adopt_conn_fd[it->index] < 0) {
    o->adopt_conn_fd[it->index] = fd;
    o->adopt_conn_pid[it->index] = it->pid;
    o->adopt_conns++;
  } else if (it->kind == UKSIM__TAKE_OVER_ITEM__KIND__ICA &&
             it->index < UK_ICA_MAX && o->adopt_ica_fd[it->index] < 0) {
    o->adopt_ica_fd[it->index] = fd;
    o->adopt_ica_size[it->index] = it->size;
    o->adopt_icas++;
  } else if (it->kind == UKSIM__TAKE_OVER_ITEM__KIND__NIC &&
             it->index < UK_CONV_MAX && o->adopt_nic_fd[it->index] < 0) {
    o->adopt_nic_fd[it->index] = fd;
    o->adopt_nic_sock[it->index] = it->sock;
    o->adopt_nics++;
  } else {
    close(fd); /* a duplicate or out of range: not ours to keep */
    return;
  }
  takeover_check(k);
}

void kos_failover_done(struct kern *k) {
  Uksim__FailoverDone d = UKSIM__FAILOVER_DONE__INIT;
  Uksim__Ctl c = UKSIM__CTL__INIT;
  d.dead_os = k->os.dead_os;
  c.body_case = UKSIM__CTL__BODY_FAILOVER_DONE;
  c.failover_done = &d;
  post(k, &c, -1);
}

void kos_takeover_batch(struct kern *k, const Uksim__TakeOverBatch *b, int *fds,
                        unsigned nfds) {
  if (b->n_items != nfds)
    kern__trace(k,
                "takeover: a batch of %zu items came with %u descriptors: "
                "dropped",
                b->n_items, nfds);
  for (unsigned i = 0; i < nfds; i++)
    if (b->n_items == nfds)
      takeover_item(k, b->items[i], fds[i]);
    else
      close(fds[i]);
}

/* Faults --------------------------------------------------------------------
 */

_Noreturn void kern_panic(struct kern *k, const char *why) {
  kern__trace(k, "panic: %s", why);
  kern__event(k, &(struct kern_ev){.ev = "panic", .text = why});
  if (k->events)
    fflush(k->events);
  send_ipi(k, UKSIM__IPI__KIND__PANIC);
  /* The notice must leave before we do. */
  fcntl(k->msock, F_SETFL, fcntl(k->msock, F_GETFL) & ~O_NONBLOCK);
  outbox_flush(&k->mout);
  _exit(KERN_PANIC_STATUS);
}

/* The loop stops for good: no heartbeat, no answer.  SIGTERM is the
 * default again, so that the machine's end (PDEATHSIG) still ends us. */
_Noreturn void kern_hang(struct kern *k) {
  kern__trace(k, "hang: the kernel loop stops");
  if (k->events)
    fflush(k->events);
  signal(SIGTERM, SIG_DFL);
  signal(SIGHUP, SIG_DFL);
  signal(SIGINT, SIG_DFL);
  for (;;)
    pause();
}

static void on_fault(struct kern *k, const Uksim__Fault *f) {
  if (f->kind == UKSIM__FAULT__KIND__PANIC)
    kern_panic(k, "injected (uksim fault)");
  if (f->kind == UKSIM__FAULT__KIND__HANG)
    kern_hang(k);
  if (f->kind >= UKSIM__FAULT__KIND__DEADLOCK &&
      f->kind <= UKSIM__FAULT__KIND__STALL_DRIVER)
    kern__fault(k, f->kind, f->arg);
}

/* The machine re-partitioned (failover step 5): this kernel's ICA budget
 * is its usable memory now.  ICAs already beyond it stay; new ones wait
 * for room, as with any full budget. */
static void resize(struct kern *k, const Uksim__Resize *rz) {
  char text[96];
  uint64_t was = k->kd->hdr.budget_bytes;
  k->kd->hdr.budget_bytes = rz->budget_bytes;
  snprintf(text, sizeof text, "ICA budget %llu -> %llu MiB",
           (unsigned long long)(was >> 20),
           (unsigned long long)(rz->budget_bytes >> 20));
  kern__trace(k, "resize: %s", text);
  kern__event(k, &(struct kern_ev){.ev = "resize", .text = text});
}

/* The protected processes in the inter-OS region (§3.1): the whole table
 * rewritten from this kernel's process table, so a new active's
 * publication replaces the dead one's and an entry is never there twice.
 * Readers (another kernel, uksim) accept a torn view, as with kernel
 * data; prot_seq changes last. */
void kos_publish(struct kern *k) {
  if (k->os.role == KOS_RETIRING)
    return; /* the table is the new active's */
  struct uk_interos *io = k->os.io;
  uint32_t n = 0;
  if (io == NULL || k->os.role != KOS_ACTIVE)
    return;
  for (uint32_t p = 0; p < UK_PROC_MAX && n < UK_INTEROS_PROT_MAX; p++) {
    const struct uk_proc *pp = &k->kd->proc[p];
    if (!(pp->flags & UK_PROC_F_PROTECT) ||
        (pp->state != UK_PROC_RUNNING && pp->state != UK_PROC_WAITING))
      continue;
    struct uk_interos_prot *e = &io->prot[n++];
    e->os = k->os.id;
    e->proc = p;
    e->pid = pp->pid;
    e->flags = pp->flags;
    snprintf(e->name, sizeof e->name, "%s", pp->name);
  }
  memset(&io->prot[n], 0, sizeof io->prot[0] * (UK_INTEROS_PROT_MAX - n));
  io->prot_os = k->os.id;
  __atomic_store_n(&io->nprot, n, __ATOMIC_RELEASE);
  __atomic_add_fetch(&io->prot_seq, 1, __ATOMIC_RELEASE);
  kern__trace(k, "published %u protected processes", n);
}

/* A process of a dead OS exited (the machine reaped it).  One this kernel
 * adopted (its slot, with its pid) is traced as its exit, as a child's
 * is: it ran here last. */
static void orphan_exit(struct kern *k, const Uksim__OrphanExit *e) {
  kern__trace(k, "os %u's process %d (pid %d) exited: status %d, signal %d",
              e->os, e->proc, e->pid, e->exit_status, e->term_signal);
  if (e->proc < 0 && !k->lockstep && !k->halting)
    kern__exec_poll(k); /* a kept process on a retiring OS (kretire.c) */
  if (e->proc < 0 || e->proc >= UK_PROC_MAX || e->pid <= 0 ||
      k->kd->proc[e->proc].pid != e->pid || k->halting)
    return;
  char why[48];
  snprintf(why, sizeof why, e->term_signal ? "signal %d" : "status %d",
           e->term_signal ? e->term_signal : e->exit_status);
  kern__event(k,
              &(struct kern_ev){.ev = "exit",
                                .actor = k->kd->proc[e->proc].name,
                                .status = e->term_signal ? 0 : e->exit_status,
                                .text = why});
  if (k->events)
    fflush(k->events); /* rare, and read from outside (uksim trace, tests) */
  if (!k->lockstep)
    kern__exec_poll(k); /* the scenario may be over */
}

/* The machine link -------------------------------------------------------- */

bool kos_msg(struct kern *k, Uksim__Ctl *c, int fd) {
  switch (c->body_case) {
  case UKSIM__CTL__BODY_IPI:
    on_ipi(k, c->ipi);
    break;
  case UKSIM__CTL__BODY_FAULT:
    on_fault(k, c->fault);
    break;
  case UKSIM__CTL__BODY_REPLY:
    if (c->id == KOS_FENCE_ID && k->os.role == KOS_FENCING)
      fenced(k, c->reply);
    else if (kmon_reply(k, c->id, c->reply, fd))
      fd = -1;
    else if (c->id == KOS_TAKEOVER_ID) {
      takeover_reply(k, c->reply, fd);
      fd = -1;
    } else if (knic_reply(k, c->id, c->reply, fd))
      fd = -1;
    break;
  case UKSIM__CTL__BODY_TAKE_OVER_ITEM:
    takeover_item(k, c->take_over_item, fd);
    fd = -1;
    break;
  case UKSIM__CTL__BODY_ORPHAN_EXIT:
    orphan_exit(k, c->orphan_exit);
    break;
  case UKSIM__CTL__BODY_RESIZE:
    resize(k, c->resize);
    break;
  default:
    return false;
  }
  if (fd >= 0)
    close(fd);
  return true;
}

void kos_conn_hold(struct kern *k, uint32_t p, int sock) {
  Uksim__ConnHold h = UKSIM__CONN_HOLD__INIT;
  Uksim__Ctl c = UKSIM__CTL__INIT;
  h.proc = (int32_t)p;
  h.pid = k->proc[p].attached ? 0 : k->kd->proc[p].pid;
  c.body_case = UKSIM__CTL__BODY_CONN_HOLD;
  c.conn_hold = &h;
  post(k, &c, sock);
}

void kos_conn_drop(struct kern *k, uint32_t p) {
  Uksim__ConnDrop d = UKSIM__CONN_DROP__INIT;
  Uksim__Ctl c = UKSIM__CTL__INIT;
  d.proc = (int32_t)p;
  c.body_case = UKSIM__CTL__BODY_CONN_DROP;
  c.conn_drop = &d;
  post(k, &c, -1);
}

/* Boot ----------------------------------------------------------------------
 */

static struct uk_interos *map_interos(int fd) {
  struct stat st;
  if (fstat(fd, &st) < 0 || (size_t)st.st_size < sizeof(struct uk_interos))
    return NULL;
  void *p = mmap(NULL, sizeof(struct uk_interos), PROT_READ | PROT_WRITE,
                 MAP_SHARED, fd, 0);
  return p == MAP_FAILED ? NULL : p;
}

int kos_init(struct kern *k, const char *role, uint64_t hb_ms,
             uint64_t timeout_ms, int interos_fd) {
  struct kern_os *o = &k->os;
  if (strcmp(role, "active") != 0 && strcmp(role, "backup") != 0)
    return -EINVAL;
  o->role = role[0] == 'a' ? KOS_ACTIVE : KOS_BACKUP;
  o->hb_ms = hb_ms;
  o->timeout_ms = timeout_ms ? timeout_ms : MACH_HEARTBEAT_TIMEOUT_MS_DEFAULT;
  o->adopt_kd_fd = -1;
  for (int p = 0; p < UK_PROC_MAX; p++)
    o->adopt_conn_fd[p] = -1;
  for (int i = 0; i < UK_ICA_MAX; i++)
    o->adopt_ica_fd[i] = -1;
  for (int i = 0; i < UK_CONV_MAX; i++)
    o->adopt_nic_fd[i] = -1;
  o->io = interos_fd >= 0 ? map_interos(interos_fd) : NULL;
  if (o->io && o->io->magic != UK_INTEROS_MAGIC)
    o->io = NULL; /* not the machine's region */
  UV_CHECK(uv_timer_init(k->loop, &o->hb_timer));
  UV_CHECK(uv_timer_init(k->loop, &o->watch_timer));
  uv_unref((uv_handle_t *)&o->hb_timer); /* background: keeps nothing up */
  uv_unref((uv_handle_t *)&o->watch_timer);
  o->last_hb_ns = now_ns();
  kmon_init(k);
  if (o->role == KOS_ACTIVE)
    heartbeat_start(k);
  else {
    watch(k);
    kmon_start(k);
  }
  return 0;
}

/* A kernel update asked from inside (a scenario's kupdate): the machine
 * stops this kernel and tells the backup (machine.c kupdate). */
void kern_kupdate(struct kern *k) {
  kern_kupdate_by(k, false);
}

void kern_kupdate_by(struct kern *k, bool replay) {
  Uksim__KUpdate u = UKSIM__KUPDATE__INIT;
  u.method =
      replay ? UKSIM__KUPDATE__METHOD__REPLAY : UKSIM__KUPDATE__METHOD__IMAGE;
  Uksim__Ctl c = UKSIM__CTL__INIT;
  c.body_case = UKSIM__CTL__BODY_KUPDATE;
  c.kupdate = &u;
  post(k, &c, -1);
}
