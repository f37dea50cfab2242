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
#include <stdio.h>
#include <uv.h>

#include "control.pb-c.h"
#include "dev.h"
#include "kabi_io.h"
#include "kbits.h"
#include "kpath.h"
#include "kmon.h"
#include "ktab.h"
#include "outbox.h"

/* A call handler's answer when the answer must wait (MINIX's EDONTREPLY). */
#define KERN_DEFER 1
/* A call handler's answer when it sent a payload answer itself. */
#define KERN_ANSWERED 2

/* How to start a program: argv[0] is the file found on the path; env holds
 * extra KEY=VALUE entries.  Both NULL-terminated, on the heap. */
struct kern_prog {
  char **argv;
  char **env;
};

/* A kernel timer: a libuv timer when the kernel runs free, a virtual one
 * under the lock-step scheduler (sched.c). */
struct kern;
struct ktimer;
typedef void (*ktimer_cb)(struct kern *k, struct ktimer *t);
struct ktimer {
  uv_timer_t uv;
  ktimer_cb cb;
  void *arg;
  bool on;
  bool background; /* lock-step: does not by itself keep a run going */
  uint64_t after_ns, period_ns;
  uint64_t due_ns, seq; /* lock-step */
};
#define KERN_VTIMERS_MAX 128

/* How the kernel watches a server and what it does when it fails
 * (replace.c).  A server's process carries it until it registers; then its
 * service keeps it for every later instance. */
struct kern_policy {
  bool restart;          /* restart the service after a fault */
  uint32_t restart_max;  /* ... at most this many times; 0: no limit */
  uint32_t deadline_ms;  /* holding a request longer is a hang; 0: never */
  uint32_t heartbeat_ms; /* running outside the kernel longer is a hang */
};

/* A process as the lock-step scheduler sees it (sched.c). */
enum kern_run {
  KS_NONE,
  KS_RUNNING,
  KS_CALLED,
  KS_BLOCKED,
  KS_HUNG,
  KS_DYING,
  KS_EXITED
};

struct kern_proc {
  int sock; /* kernel end of the process's connection, -1 once closed */
  uv_poll_t poll;
  uv_process_t process;
  bool polling;         /* poll handle initialized and not yet closed */
  bool running;         /* the Linux process has not been reaped */
  uint64_t wait_ctl_id; /* control request waiting for this process's exit */
  bool has_waiter;
  bool waitable; /* slot kept after exit until a Wait collects the status */
  uint64_t spawn_ctl_id; /* a server spawn answered at its register() */
  bool spawn_pending;
  struct kern_prog prog;  /* how it was started: its service restarts so */
  struct kern_policy pol; /* a server's fault policy, its service's later */
  bool preparing;         /* answered PREPARE; has not received since */
  bool batch;             /* waits in REPLY_MANY_RECEIVE: takes a batch */
  bool hang_pending;      /* lock-step: hang it at its next call (sched.c) */
  const char *fault;      /* why the kernel killed it ("panic", "hang") */
  uint64_t last_call_ns;  /* last call or answer: silence (hangs) from it */
  enum kern_run run;      /* lock-step */
  kabi_msg pending;       /* lock-step: the call waiting to be performed */
  bool pending_bad;       /* ... which was malformed */
  int64_t exit_status;    /* reported by libuv, handled as a step */
  int exit_signal;
  int cpu; /* the cpu its last call was sent from (kabi.h), -1 unknown */
  /* Namespace calls (kns.c): the deferred one, and the kernel's mapping
   * of the process's ns control ICA. */
  bool attached; /* started by another program (Attach), not by us */
  int pidfd;     /* taken over from a dead kernel (kadopt.c): to signal it
                    (not our child; -1 otherwise) */
  bool ns_waiting;
  kabi_msg ns_call;
  uint32_t ns_map_id;
  void *ns_map;
  uint64_t ns_map_size;
};

/* The mount driver's (kmnt.c): one 9P exchange of a namespace call's log,
 * a link's session, a control ICA of the kernel's pool. */
#define KMNT_EX_MAX 48
#define KMNT_POOL_MAX 64
struct kmnt_ex {
  uint8_t type; /* the T-message */
  bool done, owns;
  int err;
  uint32_t dev, fid, newfid;
  char name[KABI_DIR_NAME_MAX + 1];
  uint64_t off;
  uint32_t slot;  /* the pool ICA holding the message, then the answer */
  uint32_t data;  /* the data ICA that travelled, or 0 */
  uint32_t count; /* Rread/Rwrite count, Rversion msize */
  struct uk_qid qid;
  /* An idempotent message (Twalk, Tread, Tstat) as sent, to send again
   * once if its server fails holding it and restarts: 0 bytes otherwise. */
  uint16_t flen;
  bool resent;
  uint8_t frame[KABI_DIR_NAME_MAX + 64];
};
struct kmnt_call {
  uint32_t n, cursor, gen;
  struct kmnt_ex ex[KMNT_EX_MAX];
};
enum { KMNT_NEW = 0, KMNT_VERSIONING, KMNT_READY, KMNT_DIALING };
/* Links: a service (dev < UK_SVC_MAX, 9P over its ICA queue) or an
 * external server dialed over TCP or a unix socket (dev = UK_SVC_MAX + i,
 * net9p's asynchronous client on the kernel's loop). */
#define KMNT_NET_MAX UK_NETLINK_MAX
#define KMNT_LINK_MAX (UK_SVC_MAX + KMNT_NET_MAX)
struct p9_aclient;
struct kmnt_link {
  uint8_t state;
  uint8_t dialect; /* p9_dialect: 9P2000, or 9P2000.L for a net link */
  uint32_t next_fid;
  /* net links */
  struct p9_aclient *net; /* its address: kd->vfs.net[dev - UK_SVC_MAX] */
  struct kbits waiters;   /* processes whose call waits for the dial */
  int err;                /* why the last dial failed */
  bool tried_plain;       /* 9P2000.L refused: 9P2000 asked next */
};
struct kmnt_pool {
  uint32_t id;
  void *base;
  bool busy;
};

/* Per service, what only the kernel needs (replace.c). */
struct kern_svc {
  struct kern_prog prog; /* how to start another instance */
  struct kern_policy pol;
  unsigned failed_starts; /* restarts in a row that never served */
  /* The replacement in progress, if any. */
  bool ctl_pending;
  uint64_t ctl_id; /* the controller's request, answered at the end */
  struct kern_prog next;
  char next_name[KABI_NAME_MAX];
  uint32_t next_version;
  uint32_t succ_state; /* the successor's state_register, at the commit */
  bool handoff_given;  /* the successor restored from a hand-off ICA */
  uint32_t instances;  /* instances started so far (names NAME.2 ...) */
  struct ktimer timer; /* replacement deadline */
  uint64_t replace_ms;
};

/* Orthros (kos.c): this kernel's OS number, role and the inter-OS
 * protocol's state; the state machine is in kos.c. */
/* KOS_RETIRING: an old kernel a kernel update left serving the
 * processes it could not carry (kretire.c, kkeep.h). */
enum kos_role { KOS_ACTIVE, KOS_BACKUP, KOS_FENCING, KOS_RETIRING };
struct uk_interos;
struct kern_os {
  uint32_t id; /* 1st, 2nd ... Nth OS the machine booted */
  enum kos_role role;
  struct uk_interos *io;      /* the inter-OS region (fd 5), or NULL */
  uint64_t hb_ms, timeout_ms; /* 0 hb_ms: no heartbeat (no backup) */
  uv_timer_t hb_timer;        /* active: real time, background */
  uv_timer_t watch_timer;     /* backup: the active's silence */
  uint64_t hb_seq, hb_last_sent_ns;
  uint64_t last_hb_ns; /* backup: the last heartbeat seen (boot before) */
  bool hb_seen;        /* backup: a heartbeat came since the boot */
  struct {
    uint64_t ran, waited; /* backup: the active's cpu times then (kos.c) */
  } hb_cpu;
  uint32_t dead_os; /* the OS being fenced or taken over */
  uint64_t fence_id, takeover_id;
  /* What a TakeOver handed this kernel, kept for the adoption code:
   * the dead OS's kernel data (read-only), its processes' connections by
   * process slot, its ICAs by ICA table index; -1 for none. */
  int adopt_kd_fd;
  int adopt_conn_fd[UK_PROC_MAX];
  int32_t adopt_conn_pid[UK_PROC_MAX];
  int adopt_ica_fd[UK_ICA_MAX];
  uint64_t adopt_ica_size[UK_ICA_MAX];
  int adopt_nic_fd[UK_CONV_MAX]; /* nic0's sockets by conversation index */
  uint32_t adopt_nic_sock[UK_CONV_MAX]; /* and their ids */
  uint32_t adopt_nics, adopt_want_nics;
  uint32_t adopt_conns, adopt_icas;           /* received so far */
  uint32_t adopt_want_conns, adopt_want_icas; /* announced by the reply */
  bool settling; /* failed over; a restarted service has not served yet */
  /* Once every restarted service serves: the newest request number then;
   * requests up to it are the backlog the failover left (0: not yet). */
  uint64_t backlog_seq;
};

/* The NIC's sockets (knic.c), by #I conversation index. */
struct knic {
  uint16_t port_base; /* nic0's first port, 0: no NIC */
  int fd[UK_CONV_MAX];
  uint32_t sock[UK_CONV_MAX];   /* the machine's id for fd[i] */
  uv_poll_t *poll[UK_CONV_MAX]; /* made at the first wait, NULL before */
  int want[UK_CONV_MAX];        /* UV_READABLE | UV_WRITABLE polled for */
  /* An announce waiting for the machine's listening socket (asking[i]):
   * the sock id asked for, and failed[i] the machine's refusal once it
   * came (0 before). */
  bool asking[UK_CONV_MAX];
  uint32_t asked[UK_CONV_MAX];
  int failed[UK_CONV_MAX];
};

struct kern_disk_opts {
  const char *path; /* NULL: no disk */
  uint64_t size;    /* bytes, KDISK_SIZE_DEFAULT */
  uint64_t sync_ms; /* write-back period, 0: only on "sync" */
  uint32_t cache_mib;
  /* --cache-migrate: how a failover takes the dead kernel's dirty blocks
   * (kfailover.c): adopted into this kernel's cache (false, the default)
   * or written back before any process runs (true). */
  bool cache_writeback;
};

struct kern {
  uv_loop_t *loop;
  struct kern_os os;
  struct uk_kdata *kd;
  int ica_fd[UK_ICA_MAX];
  /* Per ICA, the process slots that kept their mapping of it when they
   * passed it on (bit p): it comes back to them without a descriptor. */
  struct kbits ica_kept[UK_ICA_MAX];
  struct kern_proc proc[UK_PROC_MAX];
  struct kern_svc svc[UK_SVC_MAX];
  struct ktimer hang_timer; /* request deadlines */
  struct ktimer sleep_timer[UK_PROC_MAX];
  uint64_t ica_bytes;
  uint64_t req_seqno;
  /* The link to the machine: control requests in, replies and ICA holds
   * out. */
  int msock;
  uv_poll_t mpoll;
  struct outbox mout;      /* ordered, never dropped: replies and ICA holds */
  uv_signal_t sig[3];      /* SIGTERM, SIGHUP, SIGINT: halt */
  uv_signal_t update_stop; /* KKEEP_STOP_SIGNAL: stop for an update */
  uv_timer_t halt_timer;   /* SIGKILL for processes that ignore SIGTERM */
  bool halting;
  bool halted; /* the halt is over: the loop is ending */
  uint64_t halt_id;
  long trace_left; /* trace lines still to print; -1 for no limit */
  FILE *events;    /* the event trace (JSON Lines), or NULL */
  uint64_t t0_ns;
  /* Cross-cpu polling (kern.c): after an answer to a process on another
   * cpu, the loop does not block for poll_ns, or until poll_until. */
  uint64_t poll_ns; /* 0: never poll */
  uint64_t poll_until;
  uv_idle_t poll;
  /* The lock-step scheduler (sched.c). */
  bool lockstep;
  uint64_t vnow; /* virtual clock, ns */
  uint64_t rng;
  uint64_t grace_ms;
  uv_timer_t grace_timer;
  uv_check_t check;
  struct ktimer *vt[KERN_VTIMERS_MAX];
  size_t nvt;
  uint64_t vt_seq;
  bool sched_busy;
  bool progress;                   /* since the grace timer was last armed */
  bool frozen;                     /* the scenario is over: no more steps */
  uint64_t steps_max, time_max_ns; /* 0: no limit */
  const struct kern_ops *ops;      /* never NULL (kern_main) */
  /* The mount driver (kmnt.c). */
  struct kmnt_link mlink[KMNT_LINK_MAX];
  struct kmnt_pool mpool[KMNT_POOL_MAX];
  uint32_t mpool_n;
  struct kmnt_call *mcall[UK_PROC_MAX];
  uint32_t mdata;        /* the running call's data ICA, or 0 */
  struct vfs_host vhost; /* what servants ask of the kernel (kns_host.c) */
  uint64_t cons_seq;     /* console output mirrored so far */
  bool mblocked;         /* the running call sent a 9P request and waits */
  /* Dials and 9P requests sent to external servers (net links) and not
   * yet answered: the lock-step scheduler is not quiescent while any is
   * out, so a process waiting on another node is not a deadlock. */
  uint32_t mnet_pending;
  /* The node key (the machine's --node-key): a net link's server that asks
   * for authentication is answered under it (kmnt.c, keyed import). */
  bool mkeyed;
  uint8_t mkey[32];
  /* The namespace the next kern__spawn gives (kern__ns_start's from and
   * rfflags); -1: a fresh one. */
  int spawn_ns_from;
  uint32_t spawn_rfflags;
  void *exec; /* the executor's run, or NULL */
  /* The disk and its buffer cache (kdisk_kern.c); NULL without a disk. */
  struct kdisk *disk;
  struct kern_disk_opts disk_opts; /* a backup opens the disk at a failover */
  struct bcache *bc;
  struct ktimer disk_sync; /* --sync-ms: the periodic write-back */
  struct ktimer disk_wb;   /* the write-back a waiting write asked for */
  struct knic nic;         /* #I's sockets (knic.c) */
  struct kmon mon;         /* seed 003: locks, faults, monitor (kmon.h) */
  /* A kernel update by replay (method B, kreplay.c) under way: NULL
   * otherwise. */
  struct kreplay *replay;
};

/* p's row of the process table and s's of the server info table, in
 * kernel data (include/uksim/kdata.h). */
static inline struct uk_proc *kd_proc(struct kern *k, uint32_t p) {
  return &k->kd->proc[p];
}
/* p's scheduling and accounting half (result queue, the call in the
 * kernel, quotas): the same row in layout 1, its own table in layout v2
 * (uk_psched, uksim/kdata.h). */
static inline uk_psched_t *kd_psched(struct kern *k, uint32_t p) {
  return uk_psched(k->kd, p);
}
static inline struct uk_svc *kd_svc(struct kern *k, uint32_t s) {
  return &k->kd->svc[s];
}

/* sched.c: the clock (virtual under lock-step), timers, the scheduler. */
uint64_t kern__now_ns(void);
/* The next number of the splitmix64 sequence whose state is *s. */
uint64_t kern__rand(uint64_t *s);
void kern__timer_init(struct kern *k, struct ktimer *t, ktimer_cb cb,
                      void *arg);
void kern__timer_start(struct kern *k, struct ktimer *t, uint64_t ns,
                       uint64_t period_ns);
void kern__timer_stop(struct kern *k, struct ktimer *t);
void sched_init(struct kern *k, uint64_t seed, uint64_t grace_ms);
void sched_run(struct kern *k);
/* false: a second call while one is in flight (answer -EINPROGRESS). */
bool sched_call_arrived(struct kern *k, uint32_t p, kabi_msg *m, bool bad);
/* Makes p hang: it is stopped and calls the kernel no more. */
void sched_hang(struct kern *k, uint32_t p);
void sched_exit_arrived(struct kern *k, uint32_t p);
void sched_killed(struct kern *k, uint32_t p);

/* What drives a kernel from outside its calls and what records it: the
 * kernel's one interface to a scenario executor and an event writer.
 * kern_main's caller installs it (cli/cmd_kernel.c installs the scenario
 * executor, cli/scn_exec.c, and the JSON Lines writer), so the kernel
 * library links neither the scenario language nor a trace format.  Any
 * member may be NULL.  start sets k->exec; the other exec members are
 * called only while it is set. */
struct kern_ev;
struct kern_ops {
  /* --trace-file: e, the step-th event, t_ns after boot, as one line. */
  void (*write_event)(FILE *f, uint64_t step, uint64_t t_ns,
                      const struct kern_ev *e);
  /* --scenario FILE: start running it; < 0 fails the boot. */
  int (*start)(struct kern *k, const char *file, uint64_t seed, bool seed_given,
               const char *dump_dir);
  void (*event)(struct kern *k, const struct kern_ev *e); /* each event */
  void (*after_step)(struct kern *k); /* lock-step: after each step */
  bool (*idle)(struct kern *k);       /* nothing enabled: true if it did more */
  void (*limit)(struct kern *k, const char *what); /* a run limit hit */
  void (*poll)(struct kern *k); /* free-running: after each call, exit */
  void (*wait)(struct kern *k, uint64_t id); /* answer ScenarioWait id */
  /* A backup took over (kos.c, after kern__failover): this kernel is the
   * active one and the scenario goes on here. */
  void (*resume)(struct kern *k);
};
/* The executor's hooks, each a no-op while no scenario runs. */
void kern__exec_after_step(struct kern *k);
bool kern__exec_idle(struct kern *k);
void kern__exec_limit(struct kern *k, const char *what);
void kern__exec_poll(struct kern *k);

/* kern.c */
void kern__proc_exited(struct kern *k, uint32_t p);
void kern__answer(struct kern *k, uint32_t p, kabi_msg *m);
void kern__answer_status(struct kern *k, uint32_t p, uint32_t seq, int st);
void kern__proc_gone(struct kern *k, uint32_t p);
void kern__spawn_answer(struct kern *k, uint32_t p, int status,
                        const char *err);
int kern__spawn(struct kern *k, const char *name, struct kern_prog *prog,
                const char **err);
/* The file name of a program's path, as traces give it. */
const char *kern__prog_name(const char *path);
void kern__prog_free(struct kern_prog *p);
/* kadopt.c: this kernel takes the dead kernel's protected processes and
 * services over (adopt.h).  conn_fd and ica_fd (by process slot and ICA
 * index, -1 for none) are the machine's descriptors; what is kept is taken
 * (set to -1), the rest closed.  0, or adopt_tables' error. */
struct adopt_plan;
int kern__adopt(struct kern *k, const struct uk_kdata *dead, int *conn_fd,
                int *ica_fd, struct adopt_plan *plan);
/* kos.c: asks the machine for a kernel update (issue 15): it stops this
 * kernel and the backup, of another version, takes over (uksim kupdate). */
void kern_kupdate(struct kern *k);
/* The same by method B (replay) when replay (kreplay.c). */
void kern_kupdate_by(struct kern *k, bool replay);
/* kconvert.c: a region of this kernel's layout built from the images of
 * the processes of dead, a region of the other kernel-data layout (len
 * bytes), or NULL when dead is of no layout this kernel knows.  Processes
 * whose image cannot be built end, named in the trace.  Freed by the
 * caller. */
struct uk_kdata *kern__kimage_convert(struct kern *k, const void *dead,
                                      size_t len);
/* kreplay.c: kernel update method B (its state machine there).  begin: a
 * replay update starts (the KUPDATE notice said REPLAY); strip: image
 * b[n] of a process loses what its replay makes again (replaced by a new
 * buffer; -EXDEV with why in cannot_carry when it cannot be replayed);
 * arm: after the takeover, every process that moved is DUE; forget: p is
 * gone; call: true when the call was the replay protocol's and is
 * answered; calls: journal calls replayed so far. */
void kern__replay_begin(struct kern *k);
int kern__replay_strip(struct kern *k, uint8_t **b, size_t *n);
void kern__replay_arm(struct kern *k);
void kern__replay_forget(struct kern *k, uint32_t p);
bool kern__replay_call(struct kern *k, uint32_t p, kabi_msg *m);
uint64_t kern__replay_calls(const struct kern *k);
/* kern.c: serves process p, taken over, on connection sock (the machine's
 * duplicate of the dead kernel's end); pid is its Linux process. */
int kern__watch_adopted(struct kern *k, uint32_t p, int sock, int32_t pid);
/* kcall.c: an ICA to the machine (fd >= 0: hold it; else drop it), and a
 * waiting client's result, if it is there. */
void kern__machine_ica(struct kern *k, uint32_t id, uint64_t size, int fd);
void kern__deliver_result(struct kern *k, uint32_t c);
/* replace.c: service s's server died with its OS: the AnT fault path
 * without the process (held requests not kept fail, the rest wait). */
void rep_takeover(struct kern *k, uint32_t s);
/* p's argv into out[0..len) as uk_svc.prog keeps it (kdata.h): 0, or
 * -E2BIG (out all zeros) when it does not fit; and back, from a region
 * that may be torn: 0, -ENOENT for none kept, -EINVAL for a torn one. */
int kern__prog_pack(const struct kern_prog *p, char *out, size_t len);
int kern__prog_unpack(struct kern_prog *p, const char *in, size_t len);
int kern__prog_dup(struct kern_prog *to, const struct kern_prog *from);
void kern__prog_drop_env(struct kern_prog *p, const char *prefix);
void kern__prog_make(struct kern_prog *p, const char *file, char **args,
                     size_t nargs, char **env, size_t nenv);
void kern__reply(struct kern *k, uint64_t id, int status, const char *err,
                 Uksim__Reply *r);
void kern__kill(struct kern *k, uint32_t p, int sig, const char *fault);
/* One event of the structured trace (scenarios/README.md "Trace format"):
 * ev, actor, and optionally peer, svc, req (the kernel-wide request number,
 * 0 for none), op, status and text. */
struct kern_ev {
  const char *ev, *actor, *peer, *svc, *op, *text;
  uint64_t req;
  int status;
};
void kern__event(struct kern *k, const struct kern_ev *e);
void kern__trace(struct kern *k, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const char *kern__opname(const struct uk_kdata *kd, uint32_t svc, uint32_t op,
                         char *buf, size_t len);

/* kcall.c: call dispatch and the do_<call> handlers. */
void kern__dispatch(struct kern *k, uint32_t p, kabi_msg *m);
void kern__ica_release_all(struct kern *k, uint32_t p);
void kern__cleanup_proc(struct kern *k, uint32_t p);
void kern__sleep_init(struct kern *k);

/* kcall.c, shared with replace.c. */
void kern__deliver_request(struct kern *k, uint32_t s);
void kern__complete(struct kern *k, uint32_t ri, int32_t status);
void kern__ica_drop(struct kern *k, uint32_t id);
int kern__answer_ica(struct kern *k, uint32_t p, uint32_t seq, uint32_t id);
void kern__server_down(struct kern *k, uint32_t s);
void kern__fail_request(struct kern *k, uint32_t ri, int status);

/* kns.c: the namespace calls (KABI_NS).  kern__ns_start gives a new
 * process p a namespace: a fresh one when from < 0, else shared with,
 * copied from or clean beside process `from`'s (rfork flags, vfs.h). */
int kern__do_ns(struct kern *k, uint32_t p, kabi_msg *m);
int kern__ns_start(struct kern *k, uint32_t p, int from, uint32_t rfflags);
void kern__ns_exit(struct kern *k, uint32_t p);
void kern__ns_forget_ica(struct kern *k, uint32_t id);
/* Resumes p's deferred namespace call (its 9P answer came). */
void kern__ns_resume(struct kern *k, uint32_t p);
/* Retries every namespace call waiting on a servant (-EAGAIN). */
void kern__ns_retry(struct kern *k);
/* kdisk_kern.c: the disk (--disk ...) and its buffer cache. */
int kern__disk_start(struct kern *k, const struct kern_disk_opts *o);
/* Its two halves, for a failover that writes the dead kernel's dirty
 * blocks back in between (kfailover.c): the device (LevelDB's lock), then
 * this kernel's own cache. */
int kern__disk_open(struct kern *k, const struct kern_disk_opts *o);
void kern__disk_cache(struct kern *k, const struct kern_disk_opts *o);
struct bcache_adopt_stats;
/* A failover's cache adoption (kdisk.h, bcache_adopt) into this kernel's
 * cache, started by kern__disk_cache; the adopted blocks are written back
 * by its timer (--sync-ms) or a sync, a step a turn of the loop. */
int kern__disk_adopt(struct kern *k, const struct uk_kdata *dead, int *ica_fd,
                     struct bcache_adopt_stats *st);
/* kfailover.c: the failover steps on the new active kernel, once the
 * machine has handed over the dead OS's state (k->os.adopt_*). */
void kern__failover(struct kern *k);
/* The failover's end: once no restarted service is still starting (after
 * kern__failover, and whenever one leaves UK_PH_RESTARTING), the
 * "servers" step event; once every request queued by then has been
 * delivered (checked at each delivery while settling), the "backlog"
 * step event and FailoverDone to the machine (kos_failover_done). */
void kern__failover_settle(struct kern *k);

/* The retiring kernel (kretire.c).  kern__retiring: whether this kernel
 * retires, entering the state at the first call after the machine wrote
 * the keep record (every callback that may reach a moved process calls
 * it first).  kern__retire_refuses: a kept process's call refused with
 * -EXDEV (its services moved).  kern__retire_exit: a moved process's exit
 * passed on to the new active (true: handled).  kern__retire_check: ends
 * the kernel once no kept process lives; kern__retire_done ends it. */
bool kern__retiring(struct kern *k);
/* Listens for the machine's KKEEP_STOP_SIGNAL (kkeep.h): 0, or -1. */
int kern__update_stop_init(struct kern *k);
bool kern__retire_refuses(struct kern *k, uint32_t p, uint16_t op);
bool kern__retire_exit(struct kern *k, uint32_t p, int64_t status, int sig);
void kern__retire_check(struct kern *k);
void kern__retire_done(struct kern *k);
void kern__disk_halt(struct kern *k); /* writes back, frees the cache */
/* kns_host.c: what servants ask of the kernel (vfs/dev.h). */
int kern__pipe_new(struct kern *k, uint32_t *c0, uint32_t *c1);
void kern__host_init(struct kern *k);
/* knic.c: #I's host ops over nic0 from port_base (0: no NIC); at a
 * failover, the sockets handed over become ours (knic_take, the devices
 * step: how many) and, once the processes moved, the conversations that
 * moved keep theirs (knic_settle: kept, and lost for those with none). */
void knic_init(struct kern *k, uint16_t port_base);
/* A reply of the machine to one of knic's requests (a NicListen): true
 * if it was one (fd is then taken), false if not ours. */
bool knic_reply(struct kern *k, uint64_t id, const Uksim__Reply *r, int fd);
int knic_take(struct kern *k);
void knic_settle(struct kern *k, uint32_t *kept, uint32_t *lost);
void kern__host_up(struct kern *k, uint32_t p);
void kern__cons_flush(struct kern *k);
/* The service a server-link chan (/srv/NAME) names. */
int kern__srv_lookup(struct kern *k, uint32_t chan, uint32_t *svc);

/* kmnt.c: the mount driver #M (the state machine is there). */
struct p9_stat;
int kern__mnt_init(struct kern *k);
void kern__vfs_up(struct kern *k, uint32_t p); /* the call running now */
long kern__mnt_mount(struct kern *k, uint32_t p, int fd, const char *old,
                     uint32_t oldlen, const char *aname, uint32_t flags);
int kern__mnt_fix(struct kern *k, uint32_t c);
int kern__mnt_stat(struct kern *k, const struct uk_chan *c, struct kabi_dir *d);
int kern__mnt_wstat(struct kern *k, const struct uk_chan *c,
                    const struct kabi_dir *d);
int kern__mnt_list(struct kern *k, const struct uk_chan *c,
                   int (*fn)(void *arg, const struct p9_stat *st), void *arg);
void kern__mnt_dir(const struct p9_stat *st, struct kabi_dir *d);
void kern__mnt_done(struct kern *k, uint32_t ri);
void kern__mnt_forget(struct kern *k, uint32_t p);
void kern__mnt_call_over(struct kern *k, uint32_t p);
void kern__mnt_clunks(struct kern *k);
void kern__mnt_halt(struct kern *k);
int kern__enqueue_kernel(struct kern *k, uint32_t s, uint32_t op, uint32_t ctl,
                         uint32_t data, uint64_t tag);
int kern__ica_new(struct kern *k, uint32_t kind, uint64_t size, uint32_t *id,
                  void **base);
/* Makes descriptor fd (a memfd of size bytes: a dead kernel's cache segment
 * at a failover) an ICA the kernel holds, the descriptor its own from then
 * on.  0, or -ENOMEM with the table full (fd still the caller's).  The
 * budget is not checked: a dead OS's memory is the new active's from the
 * re-partition on, as its processes' ICAs are (kadopt.c take_icas), and a
 * backup's budget is its slot's until then (128 MiB: the 1 GiB case's
 * adoption stopped at 31 segments). */
int kern__ica_keep(struct kern *k, uint32_t kind, uint64_t size, int fd,
                   uint32_t *id);

/* replace.c: server replacement and restart (state machine there). */
void rep_ctl_replace(struct kern *k, uint64_t id, const Uksim__Replace *r);
bool rep_at_receive(struct kern *k, uint32_t p, uint32_t s);
int rep_register(struct kern *k, uint32_t p, uint32_t s, uint32_t version,
                 uint32_t *how);
int rep_state_get(struct kern *k, uint32_t p, uint32_t s, uint32_t seq);
int rep_state_register(struct kern *k, uint32_t p, uint32_t s, uint32_t ica);
bool rep_may_attach(struct kern *k, uint32_t p, uint32_t id);
void rep_before_reply(struct kern *k, uint32_t p, uint32_t s);
bool rep_server_failed(struct kern *k, uint32_t p, uint32_t s);
void rep_proc_gone(struct kern *k, uint32_t p);
void rep_panic(struct kern *k, uint32_t p, const char *reason);
void rep_adopt(struct kern *k, uint32_t p, uint32_t s);
void rep_hang_watch(struct kern *k);
void rep_halt(struct kern *k);
void rep_init(struct kern *k);

/* kos.c: Orthros, the kernel side (state machine there). */
int kos_init(struct kern *k, const char *role, uint64_t hb_ms,
             uint64_t timeout_ms, int interos_fd);
/* A message from the machine that is Orthros's (Ipi, Fault, the answers
 * to Fence and TakeOver, TakeOverItem, OrphanExit): handled, and true (fd
 * taken); false for any other. */
bool kos_msg(struct kern *k, Uksim__Ctl *c, int fd);
/* The panic path: a PANIC notice to the backup, then this kernel stops
 * (exit KERN_PANIC_STATUS); never returns. */
_Noreturn void kern_panic(struct kern *k, const char *why);
/* The hang path: the kernel loop stops for good (no heartbeat, no
 * answer), as `uksim fault kernel hang` and a scenario's fault action. */
_Noreturn void kern_hang(struct kern *k);
/* The machine's duplicate of process p's connection (ConnHold), and its
 * end (ConnDrop). */
void kos_conn_hold(struct kern *k, uint32_t p, int sock);
/* Active: around bounded work that blocks the loop (a spawn): the backup
 * does not count it as silence (kos.c). */
void kos_busy(struct kern *k, bool busy);
void kos_conn_drop(struct kern *k, uint32_t p);
/* Active: a heartbeat now if one is due, from inside long work that holds
 * the loop (a failover's steps, its write-back between batches). */
void kos_heartbeat(struct kern *k);
/* The backup's monitor found the active faulty, policy failover: fence
 * it and take over as after a missed heartbeat (cause UK_DETECT_*). */
void kos_declare_dead(struct kern *k, int cause);
/* The active kernel's protected processes (UK_PROC_F_PROTECT, alive) into
 * the inter-OS region's prot[] table, replacing what was there; nothing
 * on a backup or without the region. */
void kos_publish(struct kern *k);
/* The new active's failover is done (kern__failover_settle): the machine
 * boots the next backup now (FailoverDone). */
void kos_failover_done(struct kern *k);
/* A TakeOverBatch from the machine: item i with descriptor i (each kept or
 * closed); a batch whose count does not match is dropped whole. */
void kos_takeover_batch(struct kern *k, const Uksim__TakeOverBatch *b, int *fds,
                        unsigned nfds);

/* ctlmsg.c: protobuf-c control messages over SEQPACKET. */
#define CTL_MSG_MAX 65536
int ctl_send(int sock, const Uksim__Ctl *c, int fd);
Uksim__Ctl *ctl_recv(int sock, int *fd, int *err);
int ctl_post(struct outbox *o, const Uksim__Ctl *c, int fd);
/* Batches: up to max (<= UK_FDS_BATCH_MAX) descriptors with one message. */
int ctl_post_fds(struct outbox *o, const Uksim__Ctl *c, const int *fds,
                 unsigned nfds);
Uksim__Ctl *ctl_recv_fds(int sock, int *fds, unsigned *nfds, unsigned max,
                         int *err);
int ctl_post_reply(struct outbox *o, uint64_t id, const Uksim__Reply *r,
                   int fd);

/* The `uksim kernel` role, started by the machine; ops may be NULL. */
int kern_main(int argc, char **argv, const struct kern_ops *ops);

#endif /* UKSIM_KERN_H */
