/* The machine: the "hardware" under the OS instances, one process.
 *
 * It owns physical memory (accounted in blocks), creates the kernel-data
 * region, boots the kernel and keeps a reference to every ICA the kernel
 * creates, so memory outlives a kernel.  Clients (the uksim CLI) talk to it
 * over a control socket with uksim.Ctl messages; kernel requests (spawn,
 * wait, kill, halt) are relayed to the kernel under a machine-chosen id and
 * the reply is routed back to the client that asked.
 *
 * Started with fd 3 = the owner's connection (the CLI that booted it): when
 * the owner goes away the machine halts.  Other clients connect to
 * <rundir>/<name>/control.sock, in a directory only this user can enter.
 *
 * OS instances (Orthros, issue 14).  The machine boots the 1st OS as the
 * active one and, with --backup, a 2nd as its backup; each has its own
 * kernel process, kernel-data region, kernel link and references (ICAs and
 * the kernel ends of its processes' connections).  Client requests go to
 * the active kernel.  Every kernel maps the one inter-OS region
 * (uksim/interos.h).  A slot's life:
 *
 *   FREE --boot--> BACKUP --Fence of the active, answered--> ACTIVE
 *   FREE --boot--> ACTIVE (the 1st OS)
 *   ACTIVE --its kernel ends (panic, crash) or is fenced--> DEAD
 *   DEAD --TakeOver by the new active, answered--> FREE
 *   BACKUP --its kernel ends on standby--> FREE, and a new backup boots
 *   ACTIVE --a kernel update's Fence, processes kept (kkeep.h)--> RETIRING
 *   RETIRING --TakeOver by the new active: the others handed; SIGCONT at
 *            its FailoverDone--> RETIRING (serving its kept processes)
 *            --its kernel ends--> FREE
 *
 * The partition (M.part, partition.h) follows each transition, and an OS's
 * number is the partition's: a backup's boot is part_boot_backup (its
 * number, core and slot); the Fence answered is part_devices_migrate
 * (failover step 1); the TakeOver answered is part_repartition (step 5),
 * a Resize to the new active and the re-pinning of its threads, then the
 * next backup's boot (step 6); a backup ending on standby is
 * part_backup_lost.  part_check follows every step; a refusal is logged,
 * never fatal (part_step).
 *
 * The machine relays IPIs (Ipi) between kernels and never reports a
 * kernel's death to anyone: the backup finds a dead active through its
 * PANIC notice or the missing heartbeat, and asks for the Fence itself.
 * An active that ends with no backup up ends the machine, as before.
 * The machine is a child subreaper: a dead kernel's processes become its
 * children, and it reaps them by pid (never with -1: libuv waits for the
 * kernels itself) and tells the active kernel (OrphanExit).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kern.h"
#include "kkeep.h"
#include "machine.h"
#include "uksim/interos.h"
#include "uksim/uv_check.h"
#include "node.h"
#include "uksim/num.h"

#define MAX_PENDING (MACH_CLIENTS_MAX * MACH_CLIENT_PENDING_MAX)
#define STALL_CHECK_MS 1000

/* A client slot's life: FREE -> OPEN at accept -> CLOSING at client_close
 * (its poll handle is closing) -> FREE in the close callback.  A slot is
 * reused only once FREE: libuv must be done with the old handle before
 * uv_poll_init may touch it again. */
enum client_state { CL_FREE, CL_OPEN, CL_CLOSING };

struct client {
  enum client_state state;
  int sock;
  uv_poll_t poll;
  struct outbox out;
  unsigned pending;   /* its requests the kernel has not answered */
  bool paused;        /* not read from: its unread answers are at the bound */
  uint64_t paused_ns; /* since when */
};

struct pending {
  bool used;
  int os;       /* the OS slot whose kernel has it */
  uint64_t kid; /* the id on the kernel link */
  int client;   /* client index, -1 once it is gone */
  uint64_t cid; /* the client's id */
  bool is_halt;
};

/* An OS instance (see the state machine above). */
enum os_role {
  OS_FREE,
  OS_ACTIVE,
  OS_BACKUP,
  OS_DEAD,
  OS_RETIRING /* an updated kernel serving the processes it kept */
};

struct os_inst {
  enum os_role role;
  uint32_t id; /* 1st, 2nd ... Nth OS booted */
  int kd_fd;   /* its kernel-data region */
  uv_process_t kproc;
  bool up;           /* its kernel process has not been reaped */
  bool told_to_halt; /* SIGTERM sent */
  bool linked;       /* its link's poll handle is initialized, not closed */
  int handles;       /* its libuv handles still closing: the slot waits */
  int ksock;
  uv_poll_t kpoll;
  struct outbox kout;
  /* Physical memory: every ICA's memfd, by ICA table index. */
  int ica_fd[UK_ICA_MAX];
  uint64_t ica_size[UK_ICA_MAX];
  uint32_t held;
  /* The kernel end of each process's connection, by process slot. */
  int conn_fd[UK_PROC_MAX];
  pid_t conn_pid[UK_PROC_MAX];
  /* nic0's sockets (#I conversations) while this OS owns it, by
   * conversation index, and their ids: the NIC's hardware, handed to the
   * next active. */
  int nic_fd[UK_CONV_MAX];
  uint32_t nic_sock[UK_CONV_MAX];
  /* A Fence of this OS waiting for its kernel to be reaped. */
  bool fence_pending;
  /* RETIRING, handed over and still stopped: it resumes once the new
   * active's failover is done (it read this OS's region until then). */
  bool resume_due;
  int fence_by; /* the slot that asked */
  uint64_t fence_id;
};

/* A process of a dead kernel, now the machine's child (subreaper). */
struct orphan {
  pid_t pid;
  uint32_t os; /* the OS it belonged to */
  int proc;    /* its slot there */
};

/* One partition step, as `uksim os` shows it. */
struct part_step {
  uint64_t at_us;
  const char *step;
  uint32_t os;
  int status;
  char text[128];
};

/* One OS booted: its usable memory as a backup and as the active OS. */
struct os_hist {
  uint32_t number;
  enum part_role role;
  uint64_t backup_bytes, active_bytes;
};

struct machine {
  uv_loop_t *loop;
  struct mach_opts o;
  char dir[256], sock_path[300];
  int lsock;
  uv_poll_t lpoll;
  uv_signal_t sig[3]; /* SIGTERM, SIGHUP, SIGINT: halt cleanly */
  uv_timer_t stall_timer;
  uv_timer_t settle_timer; /* a failover's FailoverDone, waited for */
  bool backup_due;         /* the next backup boots at FailoverDone */
  struct client cl[MACH_CLIENTS_MAX];
  struct pending pend[MAX_PENDING];
  uint64_t next_kid;
  struct os_inst os[MACH_OS_MAX];
  uint32_t failovers;
  int interos_fd; /* the inter-OS region, created once */
  struct uk_interos *io;
  struct orphan orphan[MACH_ORPHAN_MAX];
  uv_signal_t sigchld;
  bool halting; /* a halt was answered or asked for: every kernel ends */
  /* Physical memory held for every OS's ICAs. */
  uint64_t held_bytes;
  uint32_t held;
  bool listen_paused; /* out of descriptors: accept again later */
  uint64_t lost_msgs; /* kernel messages that could not be read whole */
  int status;         /* exit status of the machine */
  struct part part;   /* who owns which core, block and device */
  uint64_t boot_ns;   /* the partition log's times are since then */
  struct part_step log[MACH_PART_LOG_MAX]; /* a ring, oldest at log_at */
  uint32_t nlog, log_at;
  struct os_hist hist[MACH_OS_HISTORY_MAX];
  uint32_t nhist;
};

static struct machine M;

static void halt_kernel(void);
static int boot_os(enum os_role role);
static void post_to_os(struct os_inst *os, const Uksim__Ctl *c, int fd);
static void backup_lost(uint32_t number);
static int os_up(enum os_role r);

static uint32_t blocks_used(void) {
  return (uint32_t)((M.held_bytes + M.o.block_size - 1) / M.o.block_size);
}

/* Clients -------------------------------------------------------------------
 */

static void client_reply(int c, uint64_t id, int status, const char *err,
                         Uksim__Reply *r, int fd) {
  Uksim__Reply def = UKSIM__REPLY__INIT;
  if (r == NULL)
    r = &def;
  r->status = status;
  r->error = (char *)(err ? err : "");
  if (c >= 0 && M.cl[c].state == CL_OPEN)
    (void)ctl_post_reply(&M.cl[c].out, id, r, fd);
}

static void on_client_closed(uv_handle_t *h) {
  int c = (int)(uintptr_t)h->data;
  M.cl[c].state = CL_FREE;
}

static void client_close(int c) {
  struct client *cl = &M.cl[c];
  if (cl->state != CL_OPEN)
    return;
  cl->state = CL_CLOSING;
  uv_close((uv_handle_t *)&cl->poll, on_client_closed);
  outbox_clear(&cl->out);
  close(cl->sock);
  cl->sock = -1;
  for (int i = 0; i < MAX_PENDING; i++)
    if (M.pend[i].used && M.pend[i].client == c)
      M.pend[i].client = -1; /* the reply will have nobody to go to */
  if (c == 0)
    halt_kernel(); /* the owner left */
}

/* Reads from a client only while its unread answers are under the bound:
 * one that sends and never reads slows itself, never the machine. */
static void client_throttle(int c) {
  struct client *cl = &M.cl[c];
  if (cl->state != CL_OPEN)
    return;
  if (!cl->paused && cl->out.count >= MACH_CLIENT_OUTBOX_MAX) {
    cl->paused = true;
    cl->paused_ns = uv_hrtime();
    outbox_set_read_events(&cl->out, UV_DISCONNECT);
  } else if (cl->paused && cl->out.count < MACH_CLIENT_OUTBOX_MAX / 2) {
    cl->paused = false;
    outbox_set_read_events(&cl->out, UV_READABLE | UV_DISCONNECT);
  }
}

/* Drops clients that have read none of their answers for the stall time:
 * their slots and queued descriptors are for clients that listen. */
static void on_listen(uv_poll_t *h, int status, int events);

static void on_stall_check(uv_timer_t *t) {
  (void)t;
  uint64_t now = uv_hrtime();
  if (M.listen_paused) {
    M.listen_paused = false;
    UV_CHECK(uv_poll_start(&M.lpoll, UV_READABLE, on_listen));
  }
  for (int c = 1; c < MACH_CLIENTS_MAX; c++)
    if (M.cl[c].state == CL_OPEN && M.cl[c].paused &&
        now - M.cl[c].paused_ns > MACH_CLIENT_STALL_MS * 1000000ull) {
      fprintf(stderr,
              "uksim machine %s: dropped a control client that read "
              "no answer for %d s\n",
              M.o.name, MACH_CLIENT_STALL_MS / 1000);
      client_close(c);
    }
}

static void forward(int c, Uksim__Ctl *req) {
  int i, o = os_up(OS_ACTIVE);
  if (o < 0 || !M.os[o].linked) {
    client_reply(c, req->id, M.halting ? -ESRCH : -EAGAIN,
                 M.halting ? "the kernel is not running"
                           : "no active OS: a failover is in progress",
                 NULL, -1);
    return;
  }
  if (M.cl[c].pending >= MACH_CLIENT_PENDING_MAX) {
    client_reply(c, req->id, -EBUSY,
                 "too many requests in flight from this client", NULL, -1);
    return;
  }
  for (i = 0; i < MAX_PENDING && M.pend[i].used; i++)
    ;
  if (i == MAX_PENDING) {
    client_reply(c, req->id, -EBUSY, "too many requests in flight", NULL, -1);
    return;
  }
  M.pend[i] =
      (struct pending){true, o,       ++M.next_kid,
                       c,    req->id, req->body_case == UKSIM__CTL__BODY_HALT};
  uint64_t cid = req->id;
  req->id = M.pend[i].kid;
  if (ctl_post(&M.os[o].kout, req, -1) < 0) {
    M.pend[i].used = false;
    client_reply(c, cid, -EPIPE, "the kernel link is broken", NULL, -1);
    return;
  }
  M.cl[c].pending++;
}

/* The active OS's kernel data (the last one's while a failover runs). */
static int os_slot_of_id(uint32_t id);

static void get_kdata(int c, uint64_t id, const Uksim__GetKdata *g) {
  char path[64];
  int o = g->os ? os_slot_of_id(g->os) : os_up(OS_ACTIVE);
  for (int i = 0; i < MACH_OS_MAX && o < 0 && g->os == 0; i++)
    if (M.os[i].role == OS_DEAD)
      o = i;
  if (o < 0) {
    client_reply(c, id, -ESRCH, "no OS is running", NULL, -1);
    return;
  }
  snprintf(path, sizeof path, "/proc/self/fd/%d", M.os[o].kd_fd);
  int fd = open(path, O_RDONLY | O_CLOEXEC); /* readers get read-only */
  Uksim__Reply r = UKSIM__REPLY__INIT;
  r.ica_bytes = M.held_bytes;
  r.icas_live = M.held;
  r.blocks_total = M.o.blocks;
  r.blocks_used = blocks_used();
  r.block_size = M.o.block_size;
  client_reply(c, id, fd < 0 ? -errno : 0, fd < 0 ? "open failed" : NULL, &r,
               fd);
  if (fd >= 0)
    close(fd);
}

/* The partition ------------------------------------------------------------
 * Laid out at boot from the options (part_setup), shown by `uksim os`
 * (answer_os).  The failover steps call part_* on M.part. */

static void hist_note(uint32_t number, enum part_role role);

/* Logs a partition step that returned r, after part_check (a broken
 * invariant turns a success into -EPROTO): kept for `uksim os`, and a
 * line on stderr when it failed or the machine traces.  Returns the
 * status logged; the caller goes on without the step, never crashes. */
static int part_step(const char *step, uint32_t os, int r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* One entry of the step log as given, and its line on stderr. */
static void part_log(const char *step, uint32_t os, int r, const char *text) {
  struct part_step *e = &M.log[(M.log_at + M.nlog) % MACH_PART_LOG_MAX];
  if (M.nlog == MACH_PART_LOG_MAX)
    M.log_at = (M.log_at + 1) % MACH_PART_LOG_MAX; /* the oldest goes */
  else
    M.nlog++;
  snprintf(e->text, sizeof e->text, "%s", text);
  e->at_us = (uv_hrtime() - M.boot_ns) / 1000;
  e->step = step;
  e->os = os;
  e->status = r;
  if (r < 0 || M.o.trace != 0)
    fprintf(stderr, "uksim machine %s: %.3f ms: partition %s, os %u: %s\n",
            M.o.name, (double)e->at_us / 1e3, step, os, e->text);
}

static int part_step(const char *step, uint32_t os, int r, const char *fmt,
                     ...) {
  char err[160], text[sizeof M.log[0].text];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  if (r == 0 && part_check(&M.part, err, sizeof err) < 0) {
    r = -EPROTO;
    snprintf(text, sizeof text, "part_check: %.100s", err);
  } else if (r < 0) {
    snprintf(text, sizeof text, "refused: %s", strerror(-r));
  }
  part_log(step, os, r, text);
  return r;
}

static int part_setup(void) {
  struct part_config c;
  char err[160];
  int r = mach_part_config(&M.o, &c, err, sizeof err);
  if (r == 0)
    r = part_init(&M.part, &c, err, sizeof err);
  if (r < 0) {
    fprintf(stderr, "uksim machine %s: partition: %s\n", M.o.name, err);
    return r;
  }
  r = part_boot_first(&M.part);
  part_step("boot-first", 1, r, "%llu MiB usable",
            (unsigned long long)(part_usable_bytes(&M.part, 1) >> 20));
  if (r == 0)
    hist_note(1, PART_ROLE_ACTIVE);
  return r;
}

/* The history of OS `number` (added if new; the oldest dropped when
 * full), its role now and its usable memory in that role. */
static void hist_note(uint32_t number, enum part_role role) {
  struct os_hist *h = NULL;
  for (uint32_t i = 0; i < M.nhist && h == NULL; i++)
    if (M.hist[i].number == number)
      h = &M.hist[i];
  if (h == NULL && M.nhist == MACH_OS_HISTORY_MAX) {
    memmove(M.hist, M.hist + 1, sizeof M.hist[0] * (MACH_OS_HISTORY_MAX - 1));
    M.nhist--;
  }
  if (h == NULL) {
    h = &M.hist[M.nhist++];
    *h = (struct os_hist){.number = number};
  }
  h->role = role;
  uint64_t usable = part_usable_bytes(&M.part, number);
  if (role == PART_ROLE_BACKUP)
    h->backup_bytes = usable;
  else if (role == PART_ROLE_ACTIVE)
    h->active_bytes = usable;
}

static char *cpus_text(const cpu_set_t *set, char *buf, size_t len) {
  size_t at = 0;
  buf[0] = '\0';
  for (int i = 0; i < CPU_SETSIZE && at < len; i++)
    if (CPU_ISSET(i, set))
      at += (size_t)snprintf(buf + at, len - at, at ? ",%d" : "%d", i);
  return buf;
}

/* Strings of one OS's entry, kept until the reply is sent. */
struct os_text {
  char first[256], slot[256], general[256], cpus[256];
  const char *devs[PART_DEV_COUNT];
  Uksim__PartCore core[PART_CORES_MAX];
  Uksim__PartCore *corep[PART_CORES_MAX];
};

static void fill_os(const struct part_os *os, Uksim__PartOs *e,
                    struct os_text *t) {
  const struct part *p = &M.part;
  cpu_set_t set;
  e->number = os->number;
  e->role = (char *)part_role_name(os->role);
  e->boot_core = part_core_hw_id(os->boot_core);
  e->slot = os->slot;
  e->usable_mib = part_usable_bytes(p, os->number) >> 20;
  part_blocks_text(p, os->number, PART_REGION_FIRST, t->first, 256);
  part_blocks_text(p, os->number, PART_REGION_SLOT, t->slot, 256);
  part_blocks_text(p, os->number, PART_REGION_GENERAL, t->general, 256);
  e->first_blocks = t->first;
  e->slot_blocks = t->slot;
  e->general_blocks = t->general;
  part_cpuset(p, os->number, &set);
  e->cpus = cpus_text(&set, t->cpus, sizeof t->cpus);
  for (uint32_t i = 0; i < p->c.cores; i++) {
    if (part_core_owner(p, i) != os->number)
      continue;
    Uksim__PartCore *k = &t->core[e->n_cores];
    uksim__part_core__init(k);
    k->hw_id = part_core_hw_id(i);
    k->os_number = part_core_number(p, os->number, i);
    k->logical_id = part_core_logical_id(p, i);
    k->host_cpu = part_core_host_cpu(p, i);
    k->bsp = i == 0;
    t->corep[e->n_cores++] = k;
  }
  e->cores = t->corep;
  for (int d = 0; d < PART_DEV_COUNT; d++)
    if (part_dev_owner(p, (enum part_dev)d) == os->number)
      t->devs[e->n_devices++] = part_dev_name((enum part_dev)d);
  e->devices = (char **)t->devs;
}

static void fill_devices(Uksim__PartDevice *dev, Uksim__PartDevice **devp,
                         char (*detail)[32]) {
  const struct part *p = &M.part;
  for (int d = 0; d < PART_DEV_COUNT; d++) {
    uksim__part_device__init(&dev[d]);
    dev[d].name = (char *)part_dev_name((enum part_dev)d);
    bool nic = d == PART_DEV_NIC0 || d == PART_DEV_NIC1;
    dev[d].kind = nic ? "nic" : "disk";
    dev[d].owner = part_dev_owner(p, (enum part_dev)d);
    dev[d].resets = p->dev_resets[d];
    detail[d][0] = '\0';
    if (nic) {
      unsigned base = p->c.nic_port[d == PART_DEV_NIC1];
      snprintf(detail[d], 32, "127.0.0.1:%u-%u", base,
               base + PART_NIC_PORTS - 1);
    }
    dev[d].detail = detail[d];
    devp[d] = &dev[d];
  }
}

static void fill_history(Uksim__PartHistory *h, Uksim__PartHistory **hp,
                         Uksim__Partition *pt) {
  for (uint32_t i = 0; i < M.nhist; i++) {
    uksim__part_history__init(&h[i]);
    h[i].number = M.hist[i].number;
    h[i].role = (char *)part_role_name(M.hist[i].role);
    h[i].backup_usable_mib = M.hist[i].backup_bytes >> 20;
    h[i].active_usable_mib = M.hist[i].active_bytes >> 20;
    hp[i] = &h[i];
  }
  pt->history = hp;
  pt->n_history = M.nhist;
}

static void fill_steps(Uksim__PartStep *s, Uksim__PartStep **sp,
                       Uksim__Partition *pt) {
  for (uint32_t i = 0; i < M.nlog; i++) {
    const struct part_step *e = &M.log[(M.log_at + i) % MACH_PART_LOG_MAX];
    uksim__part_step__init(&s[i]);
    s[i].at_us = e->at_us;
    s[i].step = (char *)e->step;
    s[i].os = e->os;
    s[i].status = e->status;
    s[i].text = (char *)e->text;
    sp[i] = &s[i];
  }
  pt->steps = sp;
  pt->n_steps = M.nlog;
}

static void answer_os(int c, uint64_t id) {
  static struct os_text t[PART_LIVE_MAX];
  static char hw[256], free_cores[256], free_slots[256];
  static char detail[PART_DEV_COUNT][32];
  const struct part *p = &M.part;
  Uksim__Partition pt = UKSIM__PARTITION__INIT;
  Uksim__PartOs os[PART_LIVE_MAX], *osp[PART_LIVE_MAX];
  Uksim__PartDevice dev[PART_DEV_COUNT], *devp[PART_DEV_COUNT];
  Uksim__Reply r = UKSIM__REPLY__INIT;
  pt.state = (char *)part_state_name(p->state);
  pt.cores = p->c.cores;
  pt.block_size = p->c.block_size;
  pt.blocks = p->total_blocks;
  part_hw_text(p, hw, sizeof hw);
  pt.hw_blocks = hw;
  for (int i = 0; i < PART_LIVE_MAX; i++) {
    if (p->os[i].number == 0)
      continue;
    uksim__part_os__init(&os[pt.n_os]);
    memset(&t[pt.n_os], 0, sizeof t[0]);
    fill_os(&p->os[i], &os[pt.n_os], &t[pt.n_os]);
    osp[pt.n_os] = &os[pt.n_os];
    pt.n_os++;
  }
  pt.os = osp;
  fill_devices(dev, devp, detail);
  pt.devices = devp;
  pt.n_devices = PART_DEV_COUNT;
  part_cores_text(p, PART_FREE, free_cores, sizeof free_cores);
  pt.free_cores = free_cores;
  part_blocks_text(p, PART_FREE, PART_REGION_SLOT, free_slots,
                   sizeof free_slots);
  pt.free_slot_blocks = free_slots;
  Uksim__PartHistory hist[MACH_OS_HISTORY_MAX], *histp[MACH_OS_HISTORY_MAX];
  Uksim__PartStep step[MACH_PART_LOG_MAX], *stepp[MACH_PART_LOG_MAX];
  fill_history(hist, histp, &pt);
  fill_steps(step, stepp, &pt);
  r.partition = &pt;
  client_reply(c, id, 0, NULL, &r, -1);
}

static void inject_fault(int c, Uksim__Ctl *req);
static void kupdate(int c, uint64_t id, const Uksim__KUpdate *u);
static int kupdate_start(const Uksim__KUpdate *u, const char **why);
static void mach_status_reply(int c, uint64_t id);
static void get_interos(int c, uint64_t id);

static void client_request(int c, Uksim__Ctl *req) {
  switch (req->body_case) {
  case UKSIM__CTL__BODY_GET_KDATA:
    get_kdata(c, req->id, req->get_kdata);
    break;
  case UKSIM__CTL__BODY_OS:
    answer_os(c, req->id);
    break;
  case UKSIM__CTL__BODY_SPAWN:
  case UKSIM__CTL__BODY_WAIT:
  case UKSIM__CTL__BODY_KILL:
  case UKSIM__CTL__BODY_HALT:
  case UKSIM__CTL__BODY_REPLACE:
  case UKSIM__CTL__BODY_SCENARIO_WAIT:
  case UKSIM__CTL__BODY_PING:
  case UKSIM__CTL__BODY_ATTACH:
    forward(c, req);
    break;
  case UKSIM__CTL__BODY_FAULT:
    inject_fault(c, req);
    break;
  case UKSIM__CTL__BODY_KUPDATE:
    kupdate(c, req->id, req->kupdate);
    break;
  case UKSIM__CTL__BODY_MACH_STATUS:
    mach_status_reply(c, req->id);
    break;
  case UKSIM__CTL__BODY_GET_INTER_OS:
    get_interos(c, req->id);
    break;
  default:
    client_reply(c, req->id, -EINVAL, "not a machine request", NULL, -1);
  }
}

/* One request a wake-up, so that every client gets its turn. */
static void on_client(uv_poll_t *h, int status, int events) {
  int c = (int)(uintptr_t)h->data;
  struct client *cl = &M.cl[c];
  int fd, err;
  if (status < 0) {
    client_close(c);
    return;
  }
  if (events & UV_WRITABLE) {
    outbox_flush(&cl->out);
    client_throttle(c);
  }
  if (!(events & (UV_READABLE | UV_DISCONNECT)))
    return;
  if (cl->paused) { /* not reading: only a hang-up matters */
    client_close(c);
    return;
  }
  Uksim__Ctl *req = ctl_recv(cl->sock, &fd, &err);
  if (req == NULL) {
    if (err != -EAGAIN)
      client_close(c); /* end of stream or garbage: drop the client */
    return;
  }
  if (fd >= 0)
    close(fd);
  client_request(c, req);
  uksim__ctl__free_unpacked(req, NULL);
  client_throttle(c);
}

/* Tells a client there is no room for it, in words, and closes it. */
static void refuse_client(int sock) {
  char why[96];
  Uksim__Reply r = UKSIM__REPLY__INIT;
  Uksim__Ctl c = UKSIM__CTL__INIT;
  snprintf(why, sizeof why,
           "the machine takes at most %d control clients at once; try again",
           MACH_CLIENTS_MAX - 1);
  r.status = -EUSERS;
  r.error = why;
  c.id = 0; /* not an answer to anything: a notice */
  c.body_case = UKSIM__CTL__BODY_REPLY;
  c.reply = &r;
  (void)ctl_send(sock, &c, -1);
  /* Closing over unread requests would reset the connection, and the
   * client could lose the notice: read what it sent so far first. */
  char buf[256];
  while (recv(sock, buf, sizeof buf, MSG_DONTWAIT) > 0)
    ;
  close(sock);
}

static int client_add(int sock) {
  for (int c = 0; c < MACH_CLIENTS_MAX; c++) {
    struct client *cl = &M.cl[c];
    if (cl->state != CL_FREE)
      continue;
    int r = uv_poll_init(M.loop, &cl->poll, sock);
    if (r < 0) {
      close(sock);
      return r;
    }
    fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) | O_NONBLOCK);
    cl->state = CL_OPEN;
    cl->sock = sock;
    cl->pending = 0;
    cl->paused = false;
    cl->poll.data = (void *)(uintptr_t)c;
    outbox_init(&cl->out, sock, &cl->poll, on_client,
                UV_READABLE | UV_DISCONNECT);
    UV_CHECK(uv_poll_start(&cl->poll, UV_READABLE | UV_DISCONNECT, on_client));
    return c;
  }
  refuse_client(sock);
  return -EUSERS;
}

static void on_listen(uv_poll_t *h, int status, int events) {
  (void)h;
  (void)events;
  if (status < 0)
    return;
  int s = accept4(M.lsock, NULL, NULL, SOCK_CLOEXEC);
  if (s >= 0) {
    client_add(s);
  } else if (errno == EMFILE || errno == ENFILE) {
    /* The connection stays in the backlog; listening resumes at the next
     * stall check instead of spinning on a listener that stays readable. */
    UV_CHECK(uv_poll_stop(&M.lpoll));
    M.listen_paused = true;
  }
}

/* OS instances ----------------------------------------------------------------
 */

static int os_slot_of_id(uint32_t id) {
  for (int i = 0; i < MACH_OS_MAX; i++)
    if (M.os[i].role != OS_FREE && M.os[i].id == id)
      return i;
  return -1;
}

/* The slot in role r whose kernel runs, or -1. */
static int os_up(enum os_role r) {
  for (int i = 0; i < MACH_OS_MAX; i++)
    if (M.os[i].role == r && M.os[i].up)
      return i;
  return -1;
}

static bool any_kernel_up(void) {
  for (int i = 0; i < MACH_OS_MAX; i++)
    if (M.os[i].up)
      return true;
  return false;
}

/* The roles, as every kernel reads them in the inter-OS region.  A dead
 * active stays named until another takes its place: the machine tells
 * nobody of its death. */
static void publish_roles(void) {
  int a = os_up(OS_ACTIVE), b = os_up(OS_BACKUP);
  if (a >= 0) {
    M.io->active_pid = M.os[a].kproc.pid;
    __atomic_store_n(&M.io->active_os, M.os[a].id, __ATOMIC_RELEASE);
  }
  __atomic_store_n(&M.io->backup_os, b >= 0 ? M.os[b].id : 0, __ATOMIC_RELEASE);
  M.io->failovers = M.failovers;
}

static void ica_put(struct os_inst *os, uint32_t i) {
  close(os->ica_fd[i]);
  os->ica_fd[i] = -1;
  M.held_bytes -= os->ica_size[i];
  M.held--;
  os->held--;
}

static void ica_hold(struct os_inst *os, const Uksim__IcaHold *h, int fd) {
  uint32_t i = KABI_ICA_INDEX(h->ica);
  if (fd < 0 || i >= UK_ICA_MAX) {
    if (fd >= 0)
      close(fd);
    return;
  }
  if (os->ica_fd[i] >= 0) /* a missed drop: the slot was reused */
    ica_put(os, i);
  os->ica_fd[i] = fd;
  os->ica_size[i] = h->size;
  M.held_bytes += h->size;
  M.held++;
  os->held++;
}

static void ica_drop(struct os_inst *os, const Uksim__IcaDrop *d) {
  uint32_t i = KABI_ICA_INDEX(d->ica);
  if (i < UK_ICA_MAX && os->ica_fd[i] >= 0)
    ica_put(os, i);
}

static void conn_put(struct os_inst *os, uint32_t p) {
  if (os->conn_fd[p] >= 0)
    close(os->conn_fd[p]);
  os->conn_fd[p] = -1;
  os->conn_pid[p] = 0;
}

static void conn_hold(struct os_inst *os, const Uksim__ConnHold *h, int fd) {
  if (fd < 0 || h->proc < 0 || h->proc >= UK_PROC_MAX) {
    if (fd >= 0)
      close(fd);
    return;
  }
  conn_put(os, (uint32_t)h->proc);
  os->conn_fd[h->proc] = fd;
  os->conn_pid[h->proc] = h->pid;
}

static void conn_drop(struct os_inst *os, const Uksim__ConnDrop *d) {
  if (d->proc >= 0 && d->proc < UK_PROC_MAX)
    conn_put(os, (uint32_t)d->proc);
}

static void nic_put(struct os_inst *os, uint32_t i);

/* Everything an OS held, given back: its slot is free once its handles
 * have closed. */
static void os_release(struct os_inst *os) {
  for (uint32_t i = 0; i < UK_ICA_MAX; i++)
    if (os->ica_fd[i] >= 0)
      ica_put(os, i);
  for (uint32_t p = 0; p < UK_PROC_MAX; p++)
    conn_put(os, p);
  for (uint32_t i = 0; i < UK_CONV_MAX; i++)
    nic_put(os, i);
  if (os->kd_fd >= 0)
    close(os->kd_fd);
  os->kd_fd = -1;
  os->role = OS_FREE;
}

static void post_to_os(struct os_inst *os, const Uksim__Ctl *c, int fd) {
  if (os->up && os->linked)
    (void)ctl_post(&os->kout, c, fd);
}

static void os_reply(struct os_inst *os, uint64_t id, int status,
                     const char *err, Uksim__Reply *r, int fd) {
  Uksim__Reply def = UKSIM__REPLY__INIT;
  if (r == NULL)
    r = &def;
  r->status = status;
  r->error = (char *)(err ? err : "");
  if (os->up && os->linked)
    (void)ctl_post_reply(&os->kout, id, r, fd);
}

/* nic0 (#I): the NIC's sockets --------------------------------------------
 */

static void nic_put(struct os_inst *os, uint32_t i) {
  if (os->nic_fd[i] >= 0)
    close(os->nic_fd[i]);
  os->nic_fd[i] = -1;
  os->nic_sock[i] = 0;
}

static void nic_set(struct os_inst *os, uint32_t i, int fd, uint32_t sock) {
  nic_put(os, i);
  os->nic_fd[i] = fd;
  os->nic_sock[i] = sock;
}

/* The exclusion list: nic0 is the active OS's alone (partition.h). */
static bool owns_nic0(const struct os_inst *os) {
  return M.part.dev_owner[PART_DEV_NIC0] == os->id;
}

/* A listening socket on 127.0.0.1:port, or -errno. */
static int nic_socket(uint16_t port) {
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons(port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int one = 1;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
      listen(fd, MACH_NIC_BACKLOG) < 0) {
    int e = -errno;
    close(fd);
    return e;
  }
  return fd;
}

/* The machine makes and keeps the listening socket; the kernel gets a
 * duplicate with the answer. */
static void nic_listen(struct os_inst *os, uint64_t id,
                       const Uksim__NicListen *l) {
  uint32_t base = M.part.c.nic_port[0];
  if (!owns_nic0(os) || l->port < base || l->port >= base + PART_NIC_PORTS) {
    os_reply(os, id, -EADDRNOTAVAIL, "not a port of this OS's NIC", NULL, -1);
    return;
  }
  int fd = l->conv < UK_CONV_MAX ? nic_socket((uint16_t)l->port) : -EINVAL;
  if (fd < 0) {
    os_reply(os, id, fd, "no listening socket", NULL, -1);
    return;
  }
  nic_set(os, l->conv, fd, l->sock);
  os_reply(os, id, 0, NULL, NULL, fd);
}

static void nic_hold(struct os_inst *os, const Uksim__NicHold *h, int fd) {
  if (fd < 0 || h->conv >= UK_CONV_MAX || !owns_nic0(os)) {
    if (fd >= 0)
      close(fd);
    return;
  }
  nic_set(os, h->conv, fd, h->sock);
}

/* Only the socket named: a late drop of a reused conversation's old one
 * leaves the new one alone. */
static void nic_drop(struct os_inst *os, const Uksim__NicDrop *d) {
  if (d->conv < UK_CONV_MAX && os->nic_sock[d->conv] == d->sock)
    nic_put(os, d->conv);
}

/* Orphans: a dead kernel's processes, the machine's children now. */

static void orphans_add(struct os_inst *os) {
  for (int p = 0; p < UK_PROC_MAX; p++) {
    if (os->conn_pid[p] <= 0)
      continue;
    for (int i = 0; i < MACH_ORPHAN_MAX; i++)
      if (M.orphan[i].pid == 0) {
        M.orphan[i] = (struct orphan){os->conn_pid[p], os->id, p};
        break;
      }
  }
}

/* Reaps the orphans that exited, each by its pid (a kernel's status is
 * libuv's to collect), and tells the active kernel. */
static void orphans_reap(void) {
  for (int i = 0; i < MACH_ORPHAN_MAX; i++) {
    struct orphan *o = &M.orphan[i];
    int st;
    if (o->pid == 0)
      continue;
    pid_t r = waitpid(o->pid, &st, WNOHANG);
    if (r == 0 || (r < 0 && errno == EINTR))
      continue; /* still running (or not re-parented yet) */
    if (r == o->pid) {
      Uksim__OrphanExit e = UKSIM__ORPHAN_EXIT__INIT;
      Uksim__Ctl c = UKSIM__CTL__INIT;
      e.pid = o->pid;
      e.exit_status = WIFEXITED(st) ? WEXITSTATUS(st) : 0;
      e.term_signal = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
      e.os = o->os;
      e.proc = o->proc;
      c.body_case = UKSIM__CTL__BODY_ORPHAN_EXIT;
      c.orphan_exit = &e;
      int a = os_up(OS_ACTIVE);
      if (a >= 0)
        post_to_os(&M.os[a], &c, -1);
    }
    o->pid = 0; /* reaped, or not our child at all (ECHILD) */
  }
}

static void orphans_kill(void) {
  for (int i = 0; i < MACH_ORPHAN_MAX; i++)
    if (M.orphan[i].pid > 0)
      kill(M.orphan[i].pid, SIGKILL);
  for (int i = 0; i < MACH_ORPHAN_MAX; i++)
    if (M.orphan[i].pid > 0)
      waitpid(M.orphan[i].pid, NULL, 0);
}

static void on_sigchld(uv_signal_t *h, int sig) {
  (void)h;
  (void)sig;
  orphans_reap();
}

/* Requests from kernels ------------------------------------------------------
 */

/* Relays an IPI: to OS to_os, or from the active to the backup. */
static void relay_ipi(struct os_inst *from, Uksim__Ctl *c) {
  Uksim__Ipi *ipi = c->ipi;
  int to = ipi->to_os ? os_slot_of_id(ipi->to_os)
                      : os_up(from->role == OS_ACTIVE ? OS_BACKUP : OS_ACTIVE);
  ipi->from_os = from->id; /* a kernel cannot speak for another */
  if (to >= 0 && &M.os[to] != from)
    post_to_os(&M.os[to], c, -1);
}

/* The partition through a failover ----------------------------------------
 * Step 1, device migration, when the machine answers the new active's
 * Fence: the dead kernel is reaped then (the INIT to its cores), so its
 * devices can be reset, and it is before the new active's first failover
 * step opens the user disk.  Steps 5 and 6 at its TakeOver: the
 * re-partition, the new active's budget (Resize) and cpus (every thread
 * of its kernel and processes re-pinned) before the dead OS's state is
 * handed over (so the Resize is ahead of it on the link), the next
 * backup after (the machine holds none of the dead OS's state then). */

/* Pins every thread of process pid to set; counts those pinned. */
static void pin_tasks(pid_t pid, const cpu_set_t *set, uint32_t *threads) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
  DIR *d = pid > 0 ? opendir(path) : NULL;
  if (d == NULL)
    return; /* gone already */
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    pid_t tid = (pid_t)strtol(e->d_name, NULL, 10);
    if (tid > 0 && sched_setaffinity(tid, sizeof *set, set) == 0)
      (*threads)++;
  }
  closedir(d);
}

/* The new active's kernel and its processes on its cpus: those in its
 * process table, and those of the dead OS it is adopting now (not in its
 * table until its failover's process step has run).  Children spawned
 * later inherit the kernel's set. */
static int repin(const struct os_inst *os, const struct os_inst *dead,
                 char *text, size_t len) {
  cpu_set_t set;
  uint32_t procs = 0, threads = 0;
  char cpus[256];
  int r = part_cpuset(&M.part, os->id, &set);
  if (r < 0)
    return r;
  pin_tasks(os->kproc.pid, &set, &threads);
  const struct uk_kdata *kd =
      mmap(NULL, sizeof *kd, PROT_READ, MAP_SHARED, os->kd_fd, 0);
  if (kd != MAP_FAILED && kd->hdr.layout != UK_KDATA_LAYOUT) {
    munmap((void *)kd, sizeof *kd); /* another kernel version's tables */
    kd = MAP_FAILED;
  }
  for (uint32_t p = 0; kd != MAP_FAILED && p < UK_PROC_MAX; p++) {
    uint8_t st = kd->proc[p].state;
    if ((st == UK_PROC_RUNNING || st == UK_PROC_WAITING) &&
        kd->proc[p].pid > 0) {
      pin_tasks(kd->proc[p].pid, &set, &threads);
      procs++;
    }
  }
  if (kd != MAP_FAILED)
    munmap((void *)kd, sizeof *kd);
  for (uint32_t p = 0; p < UK_PROC_MAX; p++)
    if (dead->conn_pid[p] > 0) {
      pin_tasks(dead->conn_pid[p], &set, &threads);
      procs++;
    }
  snprintf(text, len, "host cpus %s: the kernel and %u processes, %u threads",
           cpus_text(&set, cpus, sizeof cpus), procs, threads);
  return 0;
}

static void send_resize(struct os_inst *os, uint64_t budget) {
  Uksim__Resize rz = UKSIM__RESIZE__INIT;
  Uksim__Ctl c = UKSIM__CTL__INIT;
  rz.budget_bytes = budget;
  c.body_case = UKSIM__CTL__BODY_RESIZE;
  c.resize = &rz;
  post_to_os(os, &c, -1);
}

/* Step 1: the user disk and nic0 go to the OS that fenced the dead one. */
static void migrate_devices(const struct os_inst *dead,
                            const struct os_inst *to) {
  part_step("devices", to->id, part_devices_migrate(&M.part, dead->id, to->id),
            "user disk and nic0 reset and given by os %u", dead->id);
  hist_note(dead->id, PART_ROLE_DEAD);
}

/* Steps 5 and 6 (the next backup's boot is the caller's). */
static int repartition(struct os_inst *me, const struct os_inst *dead) {
  int r = part_repartition(&M.part, dead->id, me->id);
  uint64_t usable = part_usable_bytes(&M.part, me->id);
  part_step("repartition", me->id, r, "from os %u: %llu MiB usable", dead->id,
            (unsigned long long)(usable >> 20));
  if (r < 0)
    return r; /* the new active keeps the budget and cpus it had */
  hist_note(me->id, PART_ROLE_ACTIVE);
  send_resize(me, usable);
  part_step("resize", me->id, 0, "ICA budget %llu MiB",
            (unsigned long long)(usable >> 20));
  return 0;
}

/* The new active's threads and processes (the dead OS's among them) onto
 * its host cpus: after the hand-over, so that the new kernel adopts while
 * the machine walks /proc (milliseconds for 200 processes). */
static void repin_active(const struct os_inst *me, const struct os_inst *dead) {
  char text[128];
  int r = repin(me, dead, text, sizeof text);
  part_step("repin", me->id, r, "%s", r < 0 ? "" : text);
}

/* The fence is over (the kernel of `dead` is reaped): the OS that asked is
 * the active one and gets the devices; the rest of the partition waits for
 * its TakeOver. */
static void fence_done(struct os_inst *dead) {
  struct os_inst *by = &M.os[dead->fence_by];
  dead->fence_pending = false;
  if (by->role != OS_BACKUP || !by->up)
    return; /* the asker died meanwhile */
  by->role = OS_ACTIVE;
  M.failovers++;
  migrate_devices(dead, by);
  publish_roles();
  Uksim__Reply r = UKSIM__REPLY__INIT;
  r.dead_os = dead->id;
  os_reply(by, dead->fence_id, 0, NULL, &r, -1);
}

static void boot_next_backup(void) {
  if (!M.halting && boot_os(OS_BACKUP) < 0)
    fprintf(stderr, "uksim machine %s: no new backup OS could boot\n",
            M.o.name);
  publish_roles();
}

/* Step 6 waits for step 4: the next backup boots once the new active
 * says its failover is done (FailoverDone: its restarted services serve),
 * so that its boot does not take the cores from the failover; or after
 * MACH_SETTLE_WAIT_MS at the latest, so that a failover that never
 * settles does not leave the machine without a backup. */
static void boot_backup_due(uint32_t os, int status) {
  if (!M.backup_due)
    return;
  M.backup_due = false;
  uv_timer_stop(&M.settle_timer);
  char text[96];
  if (status == 0)
    snprintf(text, sizeof text,
             "its restarted services serve: the next backup boots");
  else
    snprintf(text, sizeof text,
             "no word after %d ms: the next backup boots anyway",
             MACH_SETTLE_WAIT_MS);
  part_log("failover-done", os, status, text);
  boot_next_backup();
}

static void retire_resume_due(void);

static void on_settle_wait(uv_timer_t *t) {
  (void)t;
  retire_resume_due();
  int a = os_up(OS_ACTIVE);
  boot_backup_due(a >= 0 ? M.os[a].id : 0, -ETIMEDOUT);
}

static void backup_after_failover(void) {
  M.backup_due = true;
  uv_timer_start(&M.settle_timer, on_settle_wait, MACH_SETTLE_WAIT_MS, 0);
}

static void fence(int by, uint64_t id, const Uksim__Fence *f) {
  int t = os_slot_of_id(f->os);
  struct os_inst *os = t >= 0 ? &M.os[t] : NULL;
  if (os == NULL || t == by || M.os[by].role != OS_BACKUP ||
      (os->role != OS_ACTIVE && os->role != OS_DEAD) || os->fence_pending) {
    os_reply(&M.os[by], id, -EINVAL, "no such OS to fence", NULL, -1);
    return;
  }
  bool retires = os->up && os->role == OS_ACTIVE && M.io->keep_os == os->id;
  os->role = retires ? OS_RETIRING : OS_DEAD;
  os->fence_pending = true;
  os->fence_by = by;
  os->fence_id = id;
  publish_roles();
  if (os->up && !retires)
    uv_kill_child(&os->kproc, SIGKILL); /* the reaping completes it */
  else
    fence_done(os); /* stopped, it keeps processes: not killed (kkeep.h) */
}

/* A takeover's descriptors, UK_FDS_BATCH_MAX to a TakeOverBatch: one
 * message each would meet the host's 10-packet queue per socket and go
 * out in ~40 round trips of the two processes. */
struct handover {
  struct os_inst *os;
  uint64_t id;
  Uksim__TakeOverItem item[UK_FDS_BATCH_MAX], *ptr[UK_FDS_BATCH_MAX];
  int fd[UK_FDS_BATCH_MAX];
  unsigned n;
};

static Uksim__TakeOverItem handover_item(Uksim__TakeOverItem__Kind kind,
                                         uint32_t index) {
  Uksim__TakeOverItem it = UKSIM__TAKE_OVER_ITEM__INIT;
  it.kind = kind;
  it.index = index;
  return it;
}

static void handover_flush(struct handover *h) {
  if (h->n == 0)
    return;
  Uksim__TakeOverBatch b = UKSIM__TAKE_OVER_BATCH__INIT;
  Uksim__Ctl c = UKSIM__CTL__INIT;
  for (unsigned i = 0; i < h->n; i++)
    h->ptr[i] = &h->item[i];
  b.n_items = h->n;
  b.items = h->ptr;
  c.id = h->id;
  c.body_case = UKSIM__CTL__BODY_TAKE_OVER_BATCH;
  c.take_over_batch = &b;
  if (h->os->up && h->os->linked)
    (void)ctl_post_fds(&h->os->kout, &c, h->fd, h->n);
  h->n = 0;
}

static void handover_add(struct handover *h, const Uksim__TakeOverItem *it,
                         int fd) {
  h->item[h->n] = *it;
  h->fd[h->n++] = fd;
  if (h->n == UK_FDS_BATCH_MAX)
    handover_flush(h);
}

/* A retiring OS after its TakeOver (kkeep.h): what was handed is let go
 * (the moved processes' pids stay, for the machine to adopt them as
 * orphans when the retiring kernel ends: they are its Linux children);
 * its kept processes' connections and its region stay.  It stays stopped
 * while the new kernel converts its tables (retire_resume_due). */
static void retire_handed(struct os_inst *os) {
  for (uint32_t i = 0; i < UK_ICA_MAX; i++)
    if (os->ica_fd[i] >= 0)
      ica_put(os, i);
  for (uint32_t p = 0; p < UK_PROC_MAX; p++)
    if (os->conn_fd[p] >= 0 && !kkeep_kept(M.io, os->id, p)) {
      close(os->conn_fd[p]);
      os->conn_fd[p] = -1;
    }
  for (uint32_t i = 0; i < UK_CONV_MAX; i++)
    nic_put(os, i);
  os->resume_due = true;
}

/* The new active's failover is done (FailoverDone, or the settle wait
 * ran out): it reads the old region no more, so a retiring kernel may
 * change its tables now. */
static void retire_resume_due(void) {
  for (int i = 0; i < MACH_OS_MAX; i++) {
    struct os_inst *os = &M.os[i];
    if (os->role != OS_RETIRING || !os->resume_due || !os->up)
      continue;
    os->resume_due = false;
    part_step("retire", os->id, 0, "keeps %u processes: resumed, retiring",
              M.io->nkeep);
    uv_kill_child(&os->kproc, SIGCONT);
  }
}

/* Hands dead OS dead_os's state to the active kernel: a reply with its
 * kernel data (read-only) and the counts, then one item per descriptor.
 * The machine lets go of them then: the new kernel holds them. */
static void take_over(int by, uint64_t id, const Uksim__TakeOver *t) {
  struct os_inst *me = &M.os[by];
  int d = os_slot_of_id(t->dead_os);
  struct os_inst *os = d >= 0 ? &M.os[d] : NULL;
  bool retiring = os != NULL && os->role == OS_RETIRING && os->up;
  if (os == NULL || me->role != OS_ACTIVE ||
      ((os->role != OS_DEAD || os->up) && !retiring)) {
    os_reply(me, id, -EINVAL, "no dead OS of that number", NULL, -1);
    return;
  }
  /* Steps 5's budget before the state: the Resize reaches the new kernel
   * ahead of the dead OS's ICAs, so that adopting them (a dead cache of
   * a GiB) never meets the backup slot's small budget. */
  bool moved = repartition(me, os) == 0;
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", os->kd_fd);
  int kfd = open(path, O_RDONLY | O_CLOEXEC);
  Uksim__Reply r = UKSIM__REPLY__INIT;
  for (int p = 0; p < UK_PROC_MAX; p++)
    r.conns += os->conn_fd[p] >= 0 && !kkeep_kept(M.io, os->id, (uint32_t)p);
  r.icas = os->held;
  for (uint32_t i = 0; i < UK_CONV_MAX; i++)
    r.nics += os->nic_fd[i] >= 0;
  r.dead_os = os->id;
  os_reply(me, id, kfd < 0 ? -errno : 0, kfd < 0 ? "open failed" : NULL, &r,
           kfd);
  if (kfd < 0)
    return;
  close(kfd);
  struct handover h = {.os = me, .id = id};
  Uksim__TakeOverItem it;
  for (uint32_t p = 0; p < UK_PROC_MAX; p++)
    if (os->conn_fd[p] >= 0 && !kkeep_kept(M.io, os->id, p)) {
      it = handover_item(UKSIM__TAKE_OVER_ITEM__KIND__CONN, p);
      it.pid = os->conn_pid[p];
      handover_add(&h, &it, os->conn_fd[p]);
    }
  for (uint32_t i = 0; i < UK_ICA_MAX; i++)
    if (os->ica_fd[i] >= 0) {
      it = handover_item(UKSIM__TAKE_OVER_ITEM__KIND__ICA, i);
      it.size = os->ica_size[i];
      handover_add(&h, &it, os->ica_fd[i]);
    }
  for (uint32_t i = 0; i < UK_CONV_MAX; i++)
    if (os->nic_fd[i] >= 0) {
      it = handover_item(UKSIM__TAKE_OVER_ITEM__KIND__NIC, i);
      it.sock = os->nic_sock[i];
      handover_add(&h, &it, os->nic_fd[i]);
      /* The machine keeps holding it, now for the new active. */
      nic_set(me, i, os->nic_fd[i], os->nic_sock[i]);
      os->nic_fd[i] = -1;
    }
  handover_flush(&h);
  if (moved)
    repin_active(me, os);
  if (retiring)
    retire_handed(os);
  else
    os_release(os);
  backup_after_failover();
}

/* The kernel link ------------------------------------------------------------
 */

static void kernel_reply(Uksim__Ctl *c, int fd) {
  for (int i = 0; i < MAX_PENDING; i++) {
    struct pending *p = &M.pend[i];
    if (!p->used || p->kid != c->id)
      continue;
    p->used = false;
    if (p->client >= 0)
      M.cl[p->client].pending--;
    if (p->is_halt)
      M.halting = true;
    if (c->reply->icas_live != 0 || M.held != 0)
      c->reply->ica_bytes = M.held_bytes; /* what the machine still holds */
    client_reply(p->client, p->cid, c->reply->status, c->reply->error, c->reply,
                 fd);
    return;
  }
}

/* A kernel asks for the active OS's kernel data (read-only): the
 * backup's monitor (seed 003, sim-kernel/kmon.c) reads it every
 * interval.  The answer names that OS in active_os. */
static void kernel_get_kdata(int by, uint64_t id) {
  char path[64];
  int a = os_up(OS_ACTIVE);
  if (a < 0 || a == by) {
    os_reply(&M.os[by], id, -ESRCH, "no other active OS", NULL, -1);
    return;
  }
  snprintf(path, sizeof path, "/proc/self/fd/%d", M.os[a].kd_fd);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  Uksim__Reply r = UKSIM__REPLY__INIT;
  r.active_os = M.os[a].id;
  os_reply(&M.os[by], id, fd < 0 ? -errno : 0, fd < 0 ? "open failed" : NULL,
           &r, fd);
  if (fd >= 0)
    close(fd);
}

/* A retiring kernel passes its moved children's exits on (kretire.c). */
static void relay_orphan_exit(const struct os_inst *from, Uksim__Ctl *c) {
  int a = os_up(OS_ACTIVE);
  c->orphan_exit->os = from->id;
  if (from->role == OS_RETIRING && a >= 0)
    post_to_os(&M.os[a], c, -1);
}

static void kernel_msg(int o, Uksim__Ctl *c, int fd) {
  struct os_inst *os = &M.os[o];
  switch (c->body_case) {
  case UKSIM__CTL__BODY_ORPHAN_EXIT:
    relay_orphan_exit(os, c);
    break;
  case UKSIM__CTL__BODY_ICA_HOLD:
    ica_hold(os, c->ica_hold, fd);
    fd = -1;
    break;
  case UKSIM__CTL__BODY_ICA_DROP:
    ica_drop(os, c->ica_drop);
    break;
  case UKSIM__CTL__BODY_CONN_HOLD:
    conn_hold(os, c->conn_hold, fd);
    fd = -1;
    break;
  case UKSIM__CTL__BODY_CONN_DROP:
    conn_drop(os, c->conn_drop);
    break;
  case UKSIM__CTL__BODY_NIC_HOLD:
    nic_hold(os, c->nic_hold, fd);
    fd = -1;
    break;
  case UKSIM__CTL__BODY_NIC_DROP:
    nic_drop(os, c->nic_drop);
    break;
  case UKSIM__CTL__BODY_NIC_LISTEN:
    nic_listen(os, c->id, c->nic_listen);
    break;
  case UKSIM__CTL__BODY_IPI:
    if (os->role != OS_RETIRING) /* it is nobody's peer any more */
      relay_ipi(os, c);
    break;
  case UKSIM__CTL__BODY_FENCE:
    fence(o, c->id, c->fence);
    break;
  case UKSIM__CTL__BODY_KUPDATE: { /* a scenario's kupdate, from the active */
    const char *why = NULL;
    if (os->role != OS_ACTIVE || kupdate_start(c->kupdate, &why) < 0)
      fprintf(stderr, "uksim machine %s: kupdate refused: %s\n", M.o.name,
              why ? why : "not the active OS");
    break;
  }
  case UKSIM__CTL__BODY_TAKE_OVER:
    take_over(o, c->id, c->take_over);
    break;
  case UKSIM__CTL__BODY_FAILOVER_DONE:
    if (os->role == OS_ACTIVE) {
      retire_resume_due();
      boot_backup_due(os->id, 0);
    }
    break;
  case UKSIM__CTL__BODY_GET_KDATA:
    kernel_get_kdata(o, c->id);
    break;
  case UKSIM__CTL__BODY_REPLY:
    kernel_reply(c, fd); /* an Attach's connection; closed below */
    break;
  default:
    break;
  }
  if (fd >= 0)
    close(fd);
  uksim__ctl__free_unpacked(c, NULL);
}

/* Handles everything kernel o has sent; false once the link is closed.
 * A message that cannot be read whole (garbled, or its descriptor lost
 * when this process had none left) is skipped and counted: nothing stops
 * reading the link but its end. */
static bool drain_kernel(int o) {
  int fd, err;
  bool reset = false;
  Uksim__Ctl *c;
  for (;;) {
    c = ctl_recv(M.os[o].ksock, &fd, &err);
    if (c != NULL) {
      kernel_msg(o, c, fd);
      continue;
    }
    if (err == -EAGAIN)
      return true;
    /* A kernel that exits with our messages unread (an OrphanExit sent
     * while it halted) resets the link: Linux says so once, before the
     * last packets it sent (its halt reply), which are still to read. */
    if (err == -ECONNRESET && !reset) {
      reset = true;
      continue;
    }
    if (err == 0 || err == -ECONNRESET || err == -ENOTCONN || err == -EBADF)
      return false;
    if (err != -EBADMSG && err != -EMSGSIZE)
      return true; /* nothing was taken: try again at the next wake-up */
    if (M.lost_msgs++ == 0)
      fprintf(stderr,
              "uksim machine %s: a kernel message could not be read "
              "(%s); skipped\n",
              M.o.name, strerror(-err));
  }
}

static void on_kernel(uv_poll_t *h, int status, int events) {
  int o = (int)(uintptr_t)h->data;
  if (status == 0 && (events & UV_WRITABLE))
    outbox_flush(&M.os[o].kout);
  if (status == 0 && !(events & (UV_READABLE | UV_DISCONNECT)))
    return;
  if (status < 0 || !drain_kernel(o))
    UV_CHECK(
        uv_poll_stop(h)); /* the link is closed; the kernel's exit follows */
}

static void on_os_handle_closed(uv_handle_t *h) {
  M.os[(uintptr_t)h->data].handles--;
}

static void unlink_os(struct os_inst *os) {
  if (!os->linked)
    return;
  os->linked = false;
  os->handles++;
  uv_close((uv_handle_t *)&os->kpoll, on_os_handle_closed);
  outbox_clear(&os->kout);
  close(os->ksock);
  os->ksock = -1;
}

/* Answers what a gone kernel had not answered. */
static void fail_pending(int o) {
  for (int i = 0; i < MAX_PENDING; i++)
    if (M.pend[i].used && M.pend[i].os == o) {
      M.pend[i].used = false;
      if (M.pend[i].client >= 0)
        M.cl[M.pend[i].client].pending--;
      client_reply(M.pend[i].client, M.pend[i].cid, -ESRCH,
                   "the kernel went away", NULL, -1);
    }
}

/* Every kernel ends (SIGTERM: they halt); the machine stops when the last
 * one is reaped. */
static void halt_all(void) {
  M.halting = true;
  for (int i = 0; i < MACH_OS_MAX; i++)
    if (M.os[i].up && !M.os[i].told_to_halt) {
      M.os[i].told_to_halt = true; /* once: a kernel halts once */
      uv_kill_child(&M.os[i].kproc, SIGTERM);
      uv_kill_child(&M.os[i].kproc, SIGCONT); /* stopped by an update */
    }
  if (!any_kernel_up()) {
    orphans_kill();
    uv_stop(M.loop);
  }
}

/* A retiring kernel ended (its last kept process did, or a halt): its
 * slot is free, as a dead OS's after its TakeOver. */
static void retired(struct os_inst *os) {
  part_step("retired", os->id, 0, "its kept processes ended: slot freed");
  if (M.io->keep_os == os->id || M.io->keep_os == 0)
    kkeep_clear(M.io); /* not a later update's record */
  os_release(os);
}

static void on_kernel_exit(uv_process_t *p, int64_t status, int sig) {
  int o = (int)(uintptr_t)p->data;
  struct os_inst *os = &M.os[o];
  enum os_role was = os->role;
  os->up = false;
  if (os->linked)
    drain_kernel(o); /* its last replies (a halt's) may still be queued */
  unlink_os(os);
  fail_pending(o);
  os->handles++;
  uv_close((uv_handle_t *)p, on_os_handle_closed);
  if (was == OS_ACTIVE || was == OS_DEAD || was == OS_RETIRING)
    orphans_add(os);
  orphans_reap();
  bool failover = was == OS_ACTIVE && os_up(OS_BACKUP) >= 0;
  if (!M.halting && was == OS_ACTIVE && !failover && (sig || status)) {
    fprintf(stderr, "uksim machine: kernel exited (status %d, signal %d)\n",
            (int)status, sig);
    M.status = 1;
  }
  if (was == OS_RETIRING)
    retired(os);
  else if (M.halting)
    ; /* every kernel is ending */
  else if (was == OS_ACTIVE && failover)
    os->role = OS_DEAD; /* nobody is told: the backup finds out */
  else if (was == OS_BACKUP && os_up(OS_ACTIVE) >= 0) {
    os_release(os); /* a backup holds no process: nothing to take over */
    backup_lost(os->id);
    boot_next_backup();
  } else if (was == OS_DEAD && os->fence_pending)
    fence_done(os);
  else if (was != OS_DEAD)
    M.halting = true; /* no OS is left to serve */
  publish_roles();
  if (M.halting)
    halt_all();
}

static void halt_kernel(void) {
  halt_all();
}

/* Spawns the kernel of OS `os` as *proc on its cores: the machine takes
 * the OS's cpu set for the fork (the kernel inherits it, and its processes
 * from it), then its own back.  A set the host refuses is said and
 * ignored. */
static int spawn_on_cores(uv_process_t *proc, uv_process_options_t *o,
                          uint32_t os) {
  cpu_set_t mine, set;
  bool pinned = sched_getaffinity(0, sizeof mine, &mine) == 0 &&
                part_cpuset(&M.part, os, &set) == 0;
  if (pinned && sched_setaffinity(0, sizeof set, &set) < 0) {
    fprintf(stderr, "uksim machine %s: os %u's cpus: %s\n", M.o.name, os,
            strerror(errno));
    pinned = false;
  }
  int r = uv_spawn(M.loop, proc, o);
  if (pinned)
    sched_setaffinity(0, sizeof mine, &mine);
  return r;
}

/* The kernel's arguments (kern_main): its OS number and role, and the
 * machine's settings; the trace file of the 2nd and later OSes is the
 * machine's with ".osN" appended. */
struct kargs {
  char id[16], budget[32], trace[32], poll[16], hb[16], hbt[16], nic[16];
  char trace_file[sizeof M.o.trace_file + 16];
  char *argv[48];
};

static void kernel_args(struct kargs *a, char *exe, const struct os_inst *os) {
  snprintf(a->id, sizeof a->id, "%u", os->id);
  uint64_t usable = part_usable_bytes(&M.part, os->id);
  snprintf(a->budget, sizeof a->budget, "%llu",
           (unsigned long long)(usable ? usable : M.o.block_size * M.o.blocks));
  snprintf(a->trace, sizeof a->trace, "%ld", M.o.trace);
  snprintf(a->poll, sizeof a->poll, "%u", M.o.poll_us);
  snprintf(a->hb, sizeof a->hb, "%u", M.o.backup ? M.o.heartbeat_ms : 0);
  snprintf(a->hbt, sizeof a->hbt, "%u", M.o.heartbeat_timeout_ms);
  snprintf(a->nic, sizeof a->nic, "%u", M.part.c.nic_port[0]);
  if (os->id == 1 || M.o.trace_file[0] == '\0')
    snprintf(a->trace_file, sizeof a->trace_file, "%s", M.o.trace_file);
  else
    snprintf(a->trace_file, sizeof a->trace_file, "%s.os%u", M.o.trace_file,
             os->id);
  /* Every OS boots with the scenario: a backup's executor is dormant
   * until its kernel takes over, then goes on (cli/scn_exec.c). */
  char *v[] = {exe, "kernel", "--os-id", a->id, "--role",
               os->role == OS_ACTIVE ? "active" : "backup", "--heartbeat-ms",
               a->hb, "--heartbeat-timeout-ms", a->hbt, "--budget", a->budget,
               "--trace", a->trace, "--trace-file", a->trace_file, "--scenario",
               M.o.scenario, "--seed", M.o.seed, "--dump-dir", M.o.dump_dir,
               "--poll-us", a->poll,
               /* a backup opens the disk only when it takes over */
               "--disk", M.o.disk, "--disk-size", M.o.disk_size, "--sync-ms",
               M.o.sync_ms, "--cache-mib", M.o.cache_mib, "--cache-migrate",
               M.o.cache_migrate, "--nic-port", a->nic, NULL};
  memcpy(a->argv, v, sizeof v);
  _Static_assert(sizeof v / sizeof v[0] + 2 <=
                     sizeof a->argv / sizeof a->argv[0],
                 "room for --node-key");
  if (M.o.node_key[0]) { /* a keyed node's kernel proves it to exporters */
    size_t n = sizeof v / sizeof v[0] - 1;
    a->argv[n] = "--node-key";
    a->argv[n + 1] = M.o.node_key;
    a->argv[n + 2] = NULL;
  }
}

/* The kernel binary OS os boots: a backup's may be another kernel version
 * (--backup-kernel, a kernel update); else this program's own. */
static int kernel_exe(const struct os_inst *os, char *exe, size_t len) {
  if (os->role == OS_BACKUP && M.o.backup_kernel[0] != '\0') {
    snprintf(exe, len, "%s", M.o.backup_kernel);
    return 0;
  }
  ssize_t n = readlink("/proc/self/exe", exe, len - 1);
  if (n < 0)
    return -errno;
  exe[n] = '\0';
  return 0;
}

static int spawn_kernel(int o, int ksock) {
  struct os_inst *os = &M.os[o];
  struct kargs a;
  char exe[4096];
  int r = kernel_exe(os, exe, sizeof exe);
  if (r < 0)
    return r;
  kernel_args(&a, exe, os);
  uv_stdio_container_t stdio[6];
  int fds[6] = {0, 1, 2, ksock, os->kd_fd, M.interos_fd};
  for (int i = 0; i < 6; i++) {
    stdio[i].flags = UV_INHERIT_FD;
    stdio[i].data.fd = fds[i];
  }
  uv_process_options_t po = {.file = exe,
                             .args = a.argv,
                             .stdio = stdio,
                             .stdio_count = 6,
                             .exit_cb = on_kernel_exit};
  os->kproc.data = (void *)(uintptr_t)o;
  return spawn_on_cores(&os->kproc, &po, os->id);
}

/* A backup's place in the partition: its number, core and slot. */
static int backup_take(uint32_t *number) {
  int r = part_boot_backup(&M.part, number);
  const struct part_os *b = r == 0 ? part_os_lookup(&M.part, *number) : NULL;
  part_step(
      "boot-backup", b ? *number : 0, r, "core %u, slot %d, %llu MiB usable",
      b ? part_core_hw_id(b->boot_core) : 0, b ? b->slot : -1,
      (unsigned long long)(b ? part_usable_bytes(&M.part, *number) >> 20 : 0));
  if (r == 0)
    hist_note(*number, PART_ROLE_BACKUP);
  return r;
}

/* A backup gone on standby (or that never booted): its place is freed,
 * the active's partition does not change. */
static void backup_lost(uint32_t number) {
  part_step("backup-lost", number, part_backup_lost(&M.part, number),
            "its core, slot and devices freed; the active's unchanged");
  hist_note(number, PART_ROLE_DEAD);
}

/* A slot for a new OS: free, its handles closed. */
static int os_alloc(void) {
  for (int i = 0; i < MACH_OS_MAX; i++)
    if (M.os[i].role == OS_FREE && M.os[i].handles == 0 && !M.os[i].up)
      return i;
  return -ENOSPC;
}

/* Boots an OS in role `role`: the 1st OS (the partition's boot-first is
 * done), or a backup in the place part_boot_backup gives it, with its
 * number; its kernel-data region, sized before anyone can map it (a
 * reader early in the boot sees zeros, never a fault past the end of an
 * empty file), its link and its kernel. */
static int boot_os(enum os_role role) {
  int sv[2], o = os_alloc(), r;
  uint32_t number = 1;
  if (o < 0)
    return o;
  if (role == OS_BACKUP && (r = backup_take(&number)) < 0)
    return r;
  struct os_inst *os = &M.os[o];
  os->kd_fd = memfd_create("uksim-kdata", MFD_CLOEXEC);
  if (os->kd_fd < 0 || ftruncate(os->kd_fd, sizeof(struct uk_kdata)) < 0 ||
      socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
    int e = -errno;
    if (os->kd_fd >= 0)
      close(os->kd_fd);
    os->kd_fd = -1;
    if (role == OS_BACKUP)
      backup_lost(number);
    return e;
  }
  os->role = role;
  os->id = number;
  os->fence_pending = false;
  os->resume_due = false;
  os->told_to_halt = false;
  r = spawn_kernel(o, sv[1]);
  close(sv[1]);
  if (r < 0) {
    close(sv[0]);
    os_release(os);
    if (role == OS_BACKUP)
      backup_lost(number);
    return r;
  }
  os->up = true;
  os->ksock = sv[0];
  fcntl(os->ksock, F_SETFL, fcntl(os->ksock, F_GETFL) | O_NONBLOCK);
  r = uv_poll_init(M.loop, &os->kpoll, os->ksock);
  if (r < 0) {
    close(os->ksock);
    uv_kill_child(&os->kproc, SIGKILL); /* its exit callback follows */
    return r;
  }
  os->linked = true;
  os->kpoll.data = (void *)(uintptr_t)o;
  outbox_init(&os->kout, os->ksock, &os->kpoll, on_kernel,
              UV_READABLE | UV_DISCONNECT);
  publish_roles();
  return uv_poll_start(&os->kpoll, UV_READABLE | UV_DISCONNECT, on_kernel);
}

/* The inter-OS region: created once, mapped by every kernel. */
static int make_interos(void) {
  M.interos_fd = memfd_create("uksim-interos", MFD_CLOEXEC);
  if (M.interos_fd < 0 ||
      ftruncate(M.interos_fd, sizeof(struct uk_interos)) < 0)
    return -errno;
  void *p = mmap(NULL, sizeof(struct uk_interos), PROT_READ | PROT_WRITE,
                 MAP_SHARED, M.interos_fd, 0);
  if (p == MAP_FAILED)
    return -errno;
  M.io = p;
  M.io->layout = UK_INTEROS_LAYOUT;
  M.io->size = sizeof *M.io;
  __atomic_store_n(&M.io->magic, UK_INTEROS_MAGIC, __ATOMIC_RELEASE);
  return 0;
}

/* The machine's own part of a fault: the stamp the backup measures its
 * detection from, then the fault itself (crash) or its request to the
 * kernel (panic, hang).  The machine tells no other kernel. */
/* A kernel update (issue 15): the active kernel stops (SIGSTOP: no
 * further step, its tables as they are) and the backup, of another kernel
 * version, is told to take over (Ipi KUPDATE); it fences the stopped
 * kernel and converts its tables through images (kconvert.c). */
/* Stops the active kernel os for an update.  One that may keep processes
 * stops itself between two steps (KKEEP_STOP_SIGNAL, kkeep.h): true.
 * Otherwise, or when it was stopped already (a test's stop point) or did
 * not stop within KKEEP_STOP_WAIT_MS, SIGSTOP stops it wherever it is:
 * false, and it is fenced, never resumed. */
static bool stop_for_update(struct os_inst *os, bool may_keep) {
  pid_t pid = os->kproc.pid;
  if (may_keep && !kkeep_stopped(pid)) {
    uv_kill_child(&os->kproc, KKEEP_STOP_SIGNAL);
    if (kkeep_await_stopped(pid) == 0)
      return true;
  }
  uv_kill_child(&os->kproc, SIGSTOP);
  return false;
}

static int kupdate_start(const Uksim__KUpdate *u, const char **why) {
  int a = os_up(OS_ACTIVE), b = os_up(OS_BACKUP);
  if (kkeep_retiring(M.io)) {
    *why = "an updated kernel still serves processes it kept (uksim os)";
    return -EBUSY;
  }
  if (u->method != UKSIM__KUPDATE__METHOD__IMAGE &&
      u->method != UKSIM__KUPDATE__METHOD__REPLAY) {
    *why = "no such method";
    return -EINVAL;
  }
  if (a < 0 || b < 0 || M.o.backup_kernel[0] == '\0') {
    *why = "no backup OS of another kernel version (--backup-kernel)";
    return -ESRCH;
  }
  /* Keep nothing with a user disk (its lock), from a kernel that did not
   * stop itself between two steps in time (resumed, it would finish a
   * step for a moved process; and it could act on the record early), or
   * by replay (method B judges by its journal, not by the image):
   * kkeep.h. */
  bool may_keep =
      u->method == UKSIM__KUPDATE__METHOD__IMAGE && M.o.disk[0] == '\0';
  if (stop_for_update(&M.os[a], may_keep))
    kkeep_mark(M.io, M.os[a].id, M.os[a].kd_fd);
  else
    kkeep_clear(M.io);
  Uksim__Ipi ipi = UKSIM__IPI__INIT;
  Uksim__Ctl n = UKSIM__CTL__INIT;
  ipi.kind = UKSIM__IPI__KIND__KUPDATE;
  ipi.method = (uint32_t)u->method;
  ipi.from_os = M.os[a].id;
  ipi.to_os = M.os[b].id;
  n.body_case = UKSIM__CTL__BODY_IPI;
  n.ipi = &ipi;
  post_to_os(&M.os[b], &n, -1);
  return 0;
}

static void kupdate(int c, uint64_t id, const Uksim__KUpdate *u) {
  Uksim__Reply r = UKSIM__REPLY__INIT;
  int a = os_up(OS_ACTIVE), b = os_up(OS_BACKUP);
  r.active_os = a >= 0 ? M.os[a].id : 0;
  r.backup_os = b >= 0 ? M.os[b].id : 0;
  const char *why = NULL;
  int e = kupdate_start(u, &why);
  client_reply(c, id, e, why, e < 0 ? NULL : &r, -1);
}

static void inject_fault(int c, Uksim__Ctl *req) {
  Uksim__Fault *f = req->fault;
  int o = f->os ? os_slot_of_id(f->os) : os_up(OS_ACTIVE);
  if (o < 0 || !M.os[o].up) {
    client_reply(c, req->id, -ESRCH, "no such running OS", NULL, -1);
    return;
  }
  if (f->kind < UKSIM__FAULT__KIND__PANIC ||
      f->kind > UKSIM__FAULT__KIND__STALL_DRIVER) {
    client_reply(c, req->id, -EINVAL, "no such fault", NULL, -1);
    return;
  }
  M.io->fault_os = M.os[o].id;
  M.io->fault_kind = (uint32_t)f->kind;
  __atomic_store_n(&M.io->fault_ns, uv_hrtime(), __ATOMIC_RELEASE);
  if (f->kind == UKSIM__FAULT__KIND__CRASH)
    uv_kill_child(&M.os[o].kproc, SIGKILL);
  else
    post_to_os(&M.os[o], req, -1);
  Uksim__Reply r = UKSIM__REPLY__INIT;
  r.active_os = M.os[o].id;
  client_reply(c, req->id, 0, NULL, &r, -1);
}

static void mach_status_reply(int c, uint64_t id) {
  Uksim__Reply r = UKSIM__REPLY__INIT;
  int a = os_up(OS_ACTIVE), b = os_up(OS_BACKUP);
  r.active_os = a >= 0 ? M.os[a].id : 0;
  r.active_pid = a >= 0 ? M.os[a].kproc.pid : 0;
  r.backup_os = b >= 0 ? M.os[b].id : 0;
  r.backup_pid = b >= 0 ? M.os[b].kproc.pid : 0;
  r.failovers = M.failovers;
  for (int i = 0; i < MACH_OS_MAX; i++)
    if (M.os[i].role == OS_DEAD) {
      r.dead_os++;
      for (int p = 0; p < UK_PROC_MAX; p++)
        r.conns += M.os[i].conn_fd[p] >= 0;
      r.icas += M.os[i].held;
    }
  client_reply(c, id, 0, NULL, &r, -1);
}

static void get_interos(int c, uint64_t id) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", M.interos_fd);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  client_reply(c, id, fd < 0 ? -errno : 0, fd < 0 ? "open failed" : NULL, NULL,
               fd);
  if (fd >= 0)
    close(fd);
}

/* Setup -----------------------------------------------------------------------
 */

static int listen_control(void) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  int r = mach_rundir(M.o.name, M.dir, sizeof M.dir, true);
  if (r < 0)
    return r;
  snprintf(M.sock_path, sizeof M.sock_path, "%s/control.sock", M.dir);
  if (strlen(M.sock_path) >= sizeof a.sun_path)
    return -ENAMETOOLONG;
  strcpy(a.sun_path, M.sock_path);
  M.lsock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (M.lsock < 0)
    return -errno;
  /* A live machine answers a connect; a stale socket file does not. */
  int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (connect(probe, (struct sockaddr *)&a, sizeof a) == 0) {
    close(probe);
    return -EADDRINUSE;
  }
  close(probe);
  unlink(M.sock_path);
  if (bind(M.lsock, (struct sockaddr *)&a, sizeof a) < 0 ||
      listen(M.lsock, 16) < 0)
    return -errno;
  r = uv_poll_init(M.loop, &M.lpoll, M.lsock);
  return r < 0 ? r : uv_poll_start(&M.lpoll, UV_READABLE, on_listen);
}

#define ME "uksim machine"

/* The disk's options, passed on to the kernel as they came. */
static void disk_opt(int c, const char *arg) {
  char *to = c == 'D'   ? M.o.disk
             : c == 'z' ? M.o.disk_size
             : c == 'y' ? M.o.sync_ms
             : c == 'M' ? M.o.cache_migrate
                        : M.o.cache_mib;
  size_t len = c == 'D' ? sizeof M.o.disk : sizeof M.o.disk_size;
  snprintf(to, len, "%s", arg);
}

static int parse(int argc, char **argv) {
  static const struct option opts[] = {
      {"name", required_argument, NULL, 'n'},
      {"blocks", required_argument, NULL, 'b'},
      {"block-mib", required_argument, NULL, 'm'},
      {"trace", required_argument, NULL, 't'},
      {"trace-file", required_argument, NULL, 'f'},
      {"scenario", required_argument, NULL, 's'},
      {"seed", required_argument, NULL, 'S'},
      {"dump-dir", required_argument, NULL, 'd'},
      {"poll-us", required_argument, NULL, 'p'},
      {"cores", required_argument, NULL, 'c'},
      {"hw-blocks", required_argument, NULL, 'H'},
      {"nic-port", required_argument, NULL, 'N'},
      {"disk", required_argument, NULL, 'D'},
      {"disk-size", required_argument, NULL, 'z'},
      {"sync-ms", required_argument, NULL, 'y'},
      {"cache-mib", required_argument, NULL, 'C'},
      {"cache-migrate", required_argument, NULL, 'M'},
      {"backup", no_argument, NULL, 'B'},
      {"heartbeat-ms", required_argument, NULL, 'E'},
      {"heartbeat-timeout-ms", required_argument, NULL, 'T'},
      {"node-port", required_argument, NULL, 'P'},
      {"node-key", required_argument, NULL, 'K'},
      {"backup-kernel", required_argument, NULL, 'V'},
      {NULL, 0, NULL, 0}};
  int c, r = 0;
  uint64_t v;
  int64_t trace;
  mach_opts_default(&M.o);
  optind = 1;
  while (r == 0 && (c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (c == 'n')
      snprintf(M.o.name, sizeof M.o.name, "%s", optarg);
    else if (c == 'b' && (r = num_opt_u64(ME, "--blocks", optarg, 1, UINT32_MAX,
                                          0, &v)) == 0)
      M.o.blocks = (uint32_t)v;
    else if (c == 'm' && (r = num_opt_u64(ME, "--block-mib", optarg, 1,
                                          1u << 20, 0, &v)) == 0)
      M.o.block_size = v << 20;
    else if (c == 't' && (r = num_opt_i64(ME, "--trace", optarg, -1, INT32_MAX,
                                          &trace)) == 0)
      M.o.trace = (long)trace;
    else if (c == 'f')
      snprintf(M.o.trace_file, sizeof M.o.trace_file, "%s", optarg);
    else if (c == 's')
      snprintf(M.o.scenario, sizeof M.o.scenario, "%s", optarg);
    else if (c == 'S')
      snprintf(M.o.seed, sizeof M.o.seed, "%s", optarg);
    else if (c == 'd')
      snprintf(M.o.dump_dir, sizeof M.o.dump_dir, "%s", optarg);
    else if (c == 'p' && (r = num_opt_u64(ME, "--poll-us", optarg, 0,
                                          MACH_POLL_US_MAX, 0, &v)) == 0)
      M.o.poll_us = (uint32_t)v;
    else if (c == 'c')
      r = mach_cores_opt(&M.o, ME, optarg);
    else if (c == 'H')
      r = mach_hw_blocks_opt(&M.o, ME, optarg);
    else if (c == 'N' &&
             (r = num_opt_u64(ME, "--nic-port", optarg, 0,
                              UINT16_MAX - 2 * PART_NIC_PORTS, 0, &v)) == 0)
      M.o.nic_port = (uint16_t)v;
    else if (strchr("DzyCM", c) != NULL)
      disk_opt(c, optarg); /* the kernel checks them */
    else if (c == 'B')
      M.o.backup = true;
    else if (c == 'V')
      snprintf(M.o.backup_kernel, sizeof M.o.backup_kernel, "%s", optarg);
    else if (c == 'E' && (r = num_opt_u64(ME, "--heartbeat-ms", optarg, 1,
                                          MACH_HEARTBEAT_MS_MAX, 0, &v)) == 0)
      M.o.heartbeat_ms = (uint32_t)v;
    else if (c == 'T' &&
             (r = num_opt_u64(ME, "--heartbeat-timeout-ms", optarg, 1,
                              MACH_HEARTBEAT_MS_MAX, 0, &v)) == 0)
      M.o.heartbeat_timeout_ms = (uint32_t)v;
    else if (c == 'P')
      snprintf(M.o.node_port, sizeof M.o.node_port, "%s", optarg);
    else if (c == 'K')
      snprintf(M.o.node_key, sizeof M.o.node_key, "%s", optarg);
    else if (strchr("nbmtfsSdpcHNDzyCMBETPK", c) == NULL)
      r = -EINVAL;
  }
  return r < 0 ? -EINVAL : 0;
}

static void on_walk_close(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

/* SIGTERM, SIGHUP or SIGINT: halt the kernel cleanly (its processes end,
 * the run directory is removed) instead of dying with it. */
static void on_signal(uv_signal_t *h, int sig) {
  (void)h;
  fprintf(stderr, "uksim machine %s: %s: halting\n", M.o.name, strsignal(sig));
  halt_kernel();
}

static int watch_signals(void) {
  static const int sigs[] = {SIGTERM, SIGHUP, SIGINT};
  for (int i = 0; i < 3; i++) {
    int r = uv_signal_init(M.loop, &M.sig[i]);
    if (r < 0 || (r = uv_signal_start(&M.sig[i], on_signal, sigs[i])) < 0)
      return r;
  }
  int r = uv_signal_init(M.loop, &M.sigchld);
  if (r < 0 || (r = uv_signal_start(&M.sigchld, on_sigchld, SIGCHLD)) < 0)
    return r;
  r = uv_timer_init(M.loop, &M.stall_timer);
  if (r == 0)
    r = uv_timer_init(M.loop, &M.settle_timer);
  if (r == 0)
    r = uv_timer_start(&M.stall_timer, on_stall_check, STALL_CHECK_MS,
                       STALL_CHECK_MS);
  return r;
}

/* Answers still queued (the halt's, above all) go out before we leave,
 * each client given a bounded time: one that does not read is not waited
 * for. */
/* Nodes (node.h) ---------------------------------------------------------- */

static int active_kdata_fd(void) {
  int o = os_up(OS_ACTIVE);
  return o < 0 ? -1 : M.os[o].kd_fd;
}

/* Listens for other nodes when --node-port was given: 0, or -ECANCELED
 * after saying why. */
static int node_start(void) {
  char addr[96];
  uint8_t key[NODE_KEY_LEN];
  struct node_cfg cfg = {.key = NULL, .kdata_fd = active_kdata_fd};
  if (M.o.node_port[0] == '\0')
    return 0;
  snprintf(cfg.name, sizeof cfg.name, "%s", M.o.name);
  int r = node_port_addr(M.o.node_port, addr, sizeof addr);
  if (r == 0 && M.o.node_key[0] && (r = node_key_load(M.o.node_key, key)) < 0)
    fprintf(stderr, "uksim machine %s: --node-key %s: %s\n", M.o.name,
            M.o.node_key, strerror(-r));
  else if (r < 0)
    fprintf(stderr, "uksim machine %s: --node-port %s: not [HOST!]PORT\n",
            M.o.name, M.o.node_port);
  if (r == 0)
    cfg.key = M.o.node_key[0] ? key : NULL;
  if (r == 0 && (r = node_listen(M.loop, addr, &cfg)) < 0)
    fprintf(stderr, "uksim machine %s: --node-port %s: %s\n", M.o.name, addr,
            r == -EPERM ? "beyond loopback a --node-key is required"
                        : strerror(-r));
  return r < 0 ? -ECANCELED : 0;
}

static void flush_clients(void) {
  for (int c = 0; c < MACH_CLIENTS_MAX; c++) {
    struct client *cl = &M.cl[c];
    if (cl->state != CL_OPEN || cl->out.count == 0)
      continue;
    struct timeval tv = {.tv_sec = c == 0 ? 2 : 0,
                         .tv_usec = c == 0 ? 0 : 200000};
    setsockopt(cl->sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    fcntl(cl->sock, F_SETFL, fcntl(cl->sock, F_GETFL) & ~O_NONBLOCK);
    outbox_flush(&cl->out);
  }
}

static const char *start_error(int r) {
  switch (r) {
  case -EADDRINUSE:
    return "a machine of this name is running";
  case -EMFILE:
    return "too few descriptors (raise 'ulimit -n'; README \"Limits\")";
  case -ECANCELED:
    return "no node listener (see above)";
  default:
    return strerror(-r);
  }
}

int mach_main(int argc, char **argv) {
  int r;
  if (parse(argc, argv) < 0) {
    fprintf(stderr, "uksim machine: bad arguments (it is started by "
                    "'uksim run')\n");
    return 2;
  }
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() == 1)
    return 1;             /* the owner died before we could ask to follow it */
  close_range(4, ~0u, 0); /* whatever the booting process leaked to us */
  signal(SIGPIPE, SIG_IGN);
  M.loop = uv_default_loop();
  for (int i = 0; i < MACH_CLIENTS_MAX; i++)
    M.cl[i].sock = -1;
  for (int o = 0; o < MACH_OS_MAX; o++) {
    M.os[o].kd_fd = M.os[o].ksock = -1;
    for (int i = 0; i < UK_ICA_MAX; i++)
      M.os[o].ica_fd[i] = -1;
    for (int p = 0; p < UK_PROC_MAX; p++)
      M.os[o].conn_fd[p] = -1;
    for (int i = 0; i < UK_CONV_MAX; i++)
      M.os[o].nic_fd[i] = -1;
  }
  M.boot_ns = uv_hrtime();
  /* A dead kernel's processes become ours, not init's (they outlive it). */
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  if ((r = make_interos()) < 0 ||
      /* Two OSes' references at once: the active's and a dead one's
       * until it is taken over (a hard limit of 20000 must do). */
      (r = mach_fd_limit(2 * (UK_ICA_MAX + UK_PROC_MAX + UK_CONV_MAX) +
                         MACH_FD_RESERVE)) < 0 ||
      (r = watch_signals()) < 0 || (r = listen_control()) < 0 ||
      (r = node_start()) < 0 ||
      (r = client_add(fcntl(3, F_DUPFD_CLOEXEC, 0))) != 0 ||
      (r = part_setup()) < 0 || (r = boot_os(OS_ACTIVE)) < 0 ||
      (M.o.backup && (r = boot_os(OS_BACKUP)) < 0)) {
    fprintf(stderr, "uksim machine %s: cannot start: %s\n", M.o.name,
            start_error(r));
    if (r != -EADDRINUSE && M.sock_path[0]) {
      unlink(M.sock_path);
      rmdir(M.dir);
    }
    return 1;
  }
  close(3);
  uv_run(M.loop, UV_RUN_DEFAULT);
  node_stop();
  flush_clients();
  for (int o = 0; o < MACH_OS_MAX; o++)
    unlink_os(&M.os[o]);
  for (int c = 0; c < MACH_CLIENTS_MAX; c++)
    client_close(c);
  unlink(M.sock_path);
  rmdir(M.dir);
  for (int o = 0; o < MACH_OS_MAX; o++)
    os_release(&M.os[o]);
  uv_walk(M.loop, on_walk_close, NULL);
  uv_run(M.loop, UV_RUN_DEFAULT);
  uv_loop_close(M.loop);
  munmap(M.io, sizeof *M.io);
  close(M.interos_fd);
  close(M.lsock);
  return M.status;
}
