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
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "kern.h"
#include "machine.h"
#include "uksim/uv_check.h"
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
  uint64_t kid; /* the id on the kernel link */
  int client;   /* client index, -1 once it is gone */
  uint64_t cid; /* the client's id */
  bool is_halt;
};

struct machine {
  uv_loop_t *loop;
  struct mach_opts o;
  char dir[256], sock_path[300];
  int lsock;
  uv_poll_t lpoll;
  uv_signal_t sig[3]; /* SIGTERM, SIGHUP, SIGINT: halt cleanly */
  uv_timer_t stall_timer;
  struct client cl[MACH_CLIENTS_MAX];
  struct pending pend[MAX_PENDING];
  uint64_t next_kid;
  int kd_fd;
  /* The kernel of OS 1 and its link. */
  uv_process_t kproc;
  int ksock;
  uv_poll_t kpoll;
  struct outbox kout;
  bool kernel_up;
  bool halted; /* the kernel answered a halt: it is on its way out */
  /* Physical memory: every ICA's memfd, by ICA table index. */
  int ica_fd[UK_ICA_MAX];
  uint64_t ica_size[UK_ICA_MAX];
  uint64_t held_bytes;
  uint32_t held;
  bool listen_paused; /* out of descriptors: accept again later */
  uint64_t lost_msgs; /* kernel messages that could not be read whole */
  int status;         /* exit status of the machine */
  struct part part;   /* who owns which core, block and device */
};

static struct machine M;

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

static void halt_kernel(void);

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
  int i;
  if (!M.kernel_up) {
    client_reply(c, req->id, -ESRCH, "the kernel is not running", NULL, -1);
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
  M.pend[i] = (struct pending){true, ++M.next_kid, c, req->id,
                               req->body_case == UKSIM__CTL__BODY_HALT};
  uint64_t cid = req->id;
  req->id = M.pend[i].kid;
  if (ctl_post(&M.kout, req, -1) < 0) {
    M.pend[i].used = false;
    client_reply(c, cid, -EPIPE, "the kernel link is broken", NULL, -1);
    return;
  }
  M.cl[c].pending++;
}

static void get_kdata(int c, uint64_t id) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", M.kd_fd);
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

static int part_setup(void) {
  struct part_config c;
  char err[160];
  int r = mach_part_config(&M.o, &c, err, sizeof err);
  if (r == 0)
    r = part_init(&M.part, &c, err, sizeof err);
  if (r == 0)
    r = part_boot_first(&M.part);
  if (r < 0)
    fprintf(stderr, "uksim machine %s: partition: %s\n", M.o.name, err);
  return r;
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
  r.partition = &pt;
  client_reply(c, id, 0, NULL, &r, -1);
}

static void client_request(int c, Uksim__Ctl *req) {
  switch (req->body_case) {
  case UKSIM__CTL__BODY_GET_KDATA:
    get_kdata(c, req->id);
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

/* The kernel link ------------------------------------------------------------
 */

static void ica_hold(const Uksim__IcaHold *h, int fd) {
  uint32_t i = KABI_ICA_INDEX(h->ica);
  if (fd < 0 || i >= UK_ICA_MAX) {
    if (fd >= 0)
      close(fd);
    return;
  }
  if (M.ica_fd[i] >= 0) { /* a missed drop: the slot was reused */
    close(M.ica_fd[i]);
    M.held_bytes -= M.ica_size[i];
    M.held--;
  }
  M.ica_fd[i] = fd;
  M.ica_size[i] = h->size;
  M.held_bytes += h->size;
  M.held++;
}

static void ica_drop(const Uksim__IcaDrop *d) {
  uint32_t i = KABI_ICA_INDEX(d->ica);
  if (i >= UK_ICA_MAX || M.ica_fd[i] < 0)
    return;
  close(M.ica_fd[i]);
  M.ica_fd[i] = -1;
  M.held_bytes -= M.ica_size[i];
  M.held--;
}

static void kernel_reply(Uksim__Ctl *c, int fd) {
  for (int i = 0; i < MAX_PENDING; i++) {
    struct pending *p = &M.pend[i];
    if (!p->used || p->kid != c->id)
      continue;
    p->used = false;
    if (p->client >= 0)
      M.cl[p->client].pending--;
    if (p->is_halt)
      M.halted = true;
    if (c->reply->icas_live != 0 || M.held != 0)
      c->reply->ica_bytes = M.held_bytes; /* what the machine still holds */
    client_reply(p->client, p->cid, c->reply->status, c->reply->error, c->reply,
                 fd);
    return;
  }
}

static void kernel_msg(Uksim__Ctl *c, int fd) {
  switch (c->body_case) {
  case UKSIM__CTL__BODY_ICA_HOLD:
    ica_hold(c->ica_hold, fd);
    fd = -1;
    break;
  case UKSIM__CTL__BODY_ICA_DROP:
    ica_drop(c->ica_drop);
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

/* Handles everything the kernel has sent; false once the link is closed.
 * A message that cannot be read whole (garbled, or its descriptor lost
 * when this process had none left) is skipped and counted: nothing stops
 * reading the link but its end. */
static bool drain_kernel(void) {
  int fd, err;
  Uksim__Ctl *c;
  for (;;) {
    c = ctl_recv(M.ksock, &fd, &err);
    if (c != NULL) {
      kernel_msg(c, fd);
      continue;
    }
    if (err == -EAGAIN)
      return true;
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
  if (status == 0 && (events & UV_WRITABLE))
    outbox_flush(&M.kout);
  if (status == 0 && !(events & (UV_READABLE | UV_DISCONNECT)))
    return;
  if (status < 0 || !drain_kernel())
    UV_CHECK(
        uv_poll_stop(h)); /* the link is closed; the kernel's exit follows */
}

static void on_kernel_exit(uv_process_t *p, int64_t status, int sig) {
  M.kernel_up = false;
  drain_kernel(); /* its last replies (a halt's) may still be queued */
  if (sig || status) {
    fprintf(stderr, "uksim machine: kernel exited (status %d, signal %d)\n",
            (int)status, sig);
    M.status = 1;
  }
  for (int i = 0; i < MAX_PENDING; i++)
    if (M.pend[i].used) {
      M.pend[i].used = false;
      if (M.pend[i].client >= 0)
        M.cl[M.pend[i].client].pending--;
      client_reply(M.pend[i].client, M.pend[i].cid, -ESRCH,
                   "the kernel went away", NULL, -1);
    }
  uv_close((uv_handle_t *)p, NULL);
  uv_stop(M.loop);
}

static void halt_kernel(void) {
  if (M.kernel_up && !M.halted)
    uv_kill_child(&M.kproc, SIGTERM);
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

static int boot_kernel(void) {
  int sv[2];
  char budget[32], trace[32], poll[16], exe[4096];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return -errno;
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n < 0)
    return -errno;
  exe[n] = '\0';
  snprintf(budget, sizeof budget, "%llu",
           (unsigned long long)part_usable_bytes(&M.part, 1));
  snprintf(trace, sizeof trace, "%ld", M.o.trace);
  snprintf(poll, sizeof poll, "%u", M.o.poll_us);
  char *args[] = {exe,
                  "kernel",
                  "--os-id",
                  "1",
                  "--budget",
                  budget,
                  "--trace",
                  trace,
                  "--trace-file",
                  M.o.trace_file,
                  "--scenario",
                  M.o.scenario,
                  "--seed",
                  M.o.seed,
                  "--dump-dir",
                  M.o.dump_dir,
                  "--poll-us",
                  poll,
                  "--disk",
                  M.o.disk,
                  "--disk-size",
                  M.o.disk_size,
                  "--sync-ms",
                  M.o.sync_ms,
                  "--cache-mib",
                  M.o.cache_mib,
                  NULL};
  uv_stdio_container_t stdio[5];
  for (int i = 0; i < 3; i++) {
    stdio[i].flags = UV_INHERIT_FD;
    stdio[i].data.fd = i;
  }
  stdio[3].flags = UV_INHERIT_FD;
  stdio[3].data.fd = sv[1];
  stdio[4].flags = UV_INHERIT_FD;
  stdio[4].data.fd = M.kd_fd;
  uv_process_options_t o = {.file = exe,
                            .args = args,
                            .stdio = stdio,
                            .stdio_count = 5,
                            .exit_cb = on_kernel_exit};
  int r = spawn_on_cores(&M.kproc, &o, 1);
  close(sv[1]);
  if (r < 0) {
    close(sv[0]);
    return r;
  }
  M.ksock = sv[0];
  M.kernel_up = true;
  fcntl(M.ksock, F_SETFL, fcntl(M.ksock, F_GETFL) | O_NONBLOCK);
  r = uv_poll_init(M.loop, &M.kpoll, M.ksock);
  if (r < 0) {
    uv_kill_child(&M.kproc, SIGKILL); /* its exit callback follows */
    return r;
  }
  outbox_init(&M.kout, M.ksock, &M.kpoll, on_kernel,
              UV_READABLE | UV_DISCONNECT);
  return uv_poll_start(&M.kpoll, UV_READABLE | UV_DISCONNECT, on_kernel);
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
    else if (strchr("DzyC", c) != NULL)
      disk_opt(c, optarg); /* the kernel checks them */
    else if (strchr("nbmtfsSdpcHN", c) == NULL)
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
  int r = uv_timer_init(M.loop, &M.stall_timer);
  if (r == 0)
    r = uv_timer_start(&M.stall_timer, on_stall_check, STALL_CHECK_MS,
                       STALL_CHECK_MS);
  return r;
}

/* Answers still queued (the halt's, above all) go out before we leave,
 * each client given a bounded time: one that does not read is not waited
 * for. */
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

/* The kernel-data region, sized here before anyone can map it: a reader
 * early in the boot sees zeros (no magic yet), never a fault past the end
 * of an empty file. */
static int make_kdata(void) {
  M.kd_fd = memfd_create("uksim-kdata", MFD_CLOEXEC);
  if (M.kd_fd < 0 || ftruncate(M.kd_fd, sizeof(struct uk_kdata)) < 0)
    return -errno;
  return 0;
}

static const char *start_error(int r) {
  switch (r) {
  case -EADDRINUSE:
    return "a machine of this name is running";
  case -EMFILE:
    return "too few descriptors (raise 'ulimit -n'; README \"Limits\")";
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
  for (int i = 0; i < UK_ICA_MAX; i++)
    M.ica_fd[i] = -1;
  if ((r = make_kdata()) < 0 ||
      (r = mach_fd_limit(UK_ICA_MAX + MACH_FD_RESERVE)) < 0 ||
      (r = watch_signals()) < 0 || (r = listen_control()) < 0 ||
      (r = client_add(fcntl(3, F_DUPFD_CLOEXEC, 0))) != 0 ||
      (r = part_setup()) < 0 || (r = boot_kernel()) < 0) {
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
  flush_clients();
  outbox_clear(&M.kout);
  for (int c = 0; c < MACH_CLIENTS_MAX; c++)
    client_close(c);
  unlink(M.sock_path);
  rmdir(M.dir);
  for (int i = 0; i < UK_ICA_MAX; i++)
    if (M.ica_fd[i] >= 0)
      close(M.ica_fd[i]);
  uv_walk(M.loop, on_walk_close, NULL);
  uv_run(M.loop, UV_RUN_DEFAULT);
  uv_loop_close(M.loop);
  close(M.kd_fd);
  close(M.lsock);
  return M.status;
}
