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

#define MAX_CLIENTS 16
#define MAX_PENDING 256

struct client {
  int sock; /* -1: free */
  uv_poll_t poll;
  struct outbox out;
};

struct pending {
  bool used;
  uint64_t kid; /* the id on the kernel link */
  int client;   /* client index */
  uint64_t cid; /* the client's id */
  bool is_halt;
};

struct machine {
  uv_loop_t *loop;
  struct mach_opts o;
  char dir[256], sock_path[300];
  int lsock;
  uv_poll_t lpoll;
  struct client cl[MAX_CLIENTS];
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
  int status; /* exit status of the machine */
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
  if (c >= 0 && M.cl[c].sock >= 0)
    (void)ctl_post_reply(&M.cl[c].out, id, r, fd);
}

static void halt_kernel(void);

static void client_close(int c) {
  if (M.cl[c].sock < 0)
    return;
  uv_close((uv_handle_t *)&M.cl[c].poll, NULL);
  outbox_clear(&M.cl[c].out);
  close(M.cl[c].sock);
  M.cl[c].sock = -1;
  for (int i = 0; i < MAX_PENDING; i++)
    if (M.pend[i].used && M.pend[i].client == c)
      M.pend[i].client = -1; /* the reply will have nobody to go to */
  if (c == 0)
    halt_kernel(); /* the owner left */
}

static void forward(int c, Uksim__Ctl *req) {
  int i;
  for (i = 0; i < MAX_PENDING && M.pend[i].used; i++)
    ;
  if (i == MAX_PENDING) {
    client_reply(c, req->id, -EBUSY, "too many requests in flight", NULL, -1);
    return;
  }
  if (!M.kernel_up) {
    client_reply(c, req->id, -ESRCH, "the kernel is not running", NULL, -1);
    return;
  }
  M.pend[i] = (struct pending){true, ++M.next_kid, c, req->id,
                               req->body_case == UKSIM__CTL__BODY_HALT};
  uint64_t cid = req->id;
  req->id = M.pend[i].kid;
  if (ctl_post(&M.kout, req, -1) < 0) {
    M.pend[i].used = false;
    client_reply(c, cid, -EPIPE, "the kernel link is broken", NULL, -1);
  }
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

static void on_client(uv_poll_t *h, int status, int events) {
  int c = (int)(uintptr_t)h->data;
  int fd, err;
  if (status == 0 && (events & UV_WRITABLE))
    outbox_flush(&M.cl[c].out);
  if (status == 0 && !(events & (UV_READABLE | UV_DISCONNECT)))
    return;
  Uksim__Ctl *req = status == 0 ? ctl_recv(M.cl[c].sock, &fd, &err) : NULL;
  if (req == NULL) {
    if (status < 0 || err != -EAGAIN)
      client_close(c); /* end of stream or garbage: drop the client */
    return;
  }
  if (fd >= 0)
    close(fd);
  switch (req->body_case) {
  case UKSIM__CTL__BODY_GET_KDATA:
    get_kdata(c, req->id);
    break;
  case UKSIM__CTL__BODY_SPAWN:
  case UKSIM__CTL__BODY_WAIT:
  case UKSIM__CTL__BODY_KILL:
  case UKSIM__CTL__BODY_HALT:
  case UKSIM__CTL__BODY_REPLACE:
  case UKSIM__CTL__BODY_SCENARIO_WAIT:
    forward(c, req);
    break;
  default:
    client_reply(c, req->id, -EINVAL, "not a machine request", NULL, -1);
  }
  uksim__ctl__free_unpacked(req, NULL);
}

static int client_add(int sock) {
  for (int c = 0; c < MAX_CLIENTS; c++) {
    if (M.cl[c].sock >= 0)
      continue;
    fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) | O_NONBLOCK);
    M.cl[c].sock = sock;
    uv_poll_init(M.loop, &M.cl[c].poll, sock);
    M.cl[c].poll.data = (void *)(uintptr_t)c;
    outbox_init(&M.cl[c].out, sock, &M.cl[c].poll, on_client,
                UV_READABLE | UV_DISCONNECT);
    uv_poll_start(&M.cl[c].poll, UV_READABLE | UV_DISCONNECT, on_client);
    return c;
  }
  close(sock);
  return -1;
}

static void on_listen(uv_poll_t *h, int status, int events) {
  (void)h;
  (void)events;
  if (status < 0)
    return;
  int s = accept4(M.lsock, NULL, NULL, SOCK_CLOEXEC);
  if (s >= 0)
    client_add(s);
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

static void kernel_reply(Uksim__Ctl *c) {
  for (int i = 0; i < MAX_PENDING; i++) {
    struct pending *p = &M.pend[i];
    if (!p->used || p->kid != c->id)
      continue;
    p->used = false;
    if (p->is_halt)
      M.halted = true;
    if (c->reply->icas_live != 0 || M.held != 0)
      c->reply->ica_bytes = M.held_bytes; /* what the machine still holds */
    client_reply(p->client, p->cid, c->reply->status, c->reply->error, c->reply,
                 -1);
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
    kernel_reply(c);
    break;
  default:
    break;
  }
  if (fd >= 0)
    close(fd);
  uksim__ctl__free_unpacked(c, NULL);
}

/* Handles everything the kernel has sent; false once the link is closed. */
static bool drain_kernel(void) {
  int fd, err;
  Uksim__Ctl *c;
  for (;;) {
    c = ctl_recv(M.ksock, &fd, &err);
    if (c != NULL)
      kernel_msg(c, fd);
    else if (err != -EBADMSG) /* a garbled message is skipped */
      return err == -EAGAIN;
  }
}

static void on_kernel(uv_poll_t *h, int status, int events) {
  if (status == 0 && (events & UV_WRITABLE))
    outbox_flush(&M.kout);
  if (status == 0 && !(events & (UV_READABLE | UV_DISCONNECT)))
    return;
  if (status < 0 || !drain_kernel())
    uv_poll_stop(h); /* the kernel is gone; its exit callback follows */
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
      client_reply(M.pend[i].client, M.pend[i].cid, -ESRCH,
                   "the kernel went away", NULL, -1);
    }
  uv_close((uv_handle_t *)p, NULL);
  uv_stop(M.loop);
}

static void halt_kernel(void) {
  if (M.kernel_up && !M.halted)
    uv_process_kill(&M.kproc, SIGTERM);
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
           (unsigned long long)M.o.block_size * M.o.blocks);
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
  int r = uv_spawn(M.loop, &M.kproc, &o);
  close(sv[1]);
  if (r < 0) {
    close(sv[0]);
    return r;
  }
  M.ksock = sv[0];
  M.kernel_up = true;
  fcntl(M.ksock, F_SETFL, fcntl(M.ksock, F_GETFL) | O_NONBLOCK);
  uv_poll_init(M.loop, &M.kpoll, M.ksock);
  outbox_init(&M.kout, M.ksock, &M.kpoll, on_kernel,
              UV_READABLE | UV_DISCONNECT);
  uv_poll_start(&M.kpoll, UV_READABLE | UV_DISCONNECT, on_kernel);
  return 0;
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
  uv_poll_init(M.loop, &M.lpoll, M.lsock);
  uv_poll_start(&M.lpoll, UV_READABLE, on_listen);
  return 0;
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
      {NULL, 0, NULL, 0}};
  int c;
  mach_opts_default(&M.o);
  optind = 1;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (c == 'n')
      snprintf(M.o.name, sizeof M.o.name, "%s", optarg);
    else if (c == 'b')
      M.o.blocks = (uint32_t)strtoul(optarg, NULL, 10);
    else if (c == 'm')
      M.o.block_size = strtoull(optarg, NULL, 10) << 20;
    else if (c == 't')
      M.o.trace = strtol(optarg, NULL, 10);
    else if (c == 'f')
      snprintf(M.o.trace_file, sizeof M.o.trace_file, "%s", optarg);
    else if (c == 's')
      snprintf(M.o.scenario, sizeof M.o.scenario, "%s", optarg);
    else if (c == 'S')
      snprintf(M.o.seed, sizeof M.o.seed, "%s", optarg);
    else if (c == 'd')
      snprintf(M.o.dump_dir, sizeof M.o.dump_dir, "%s", optarg);
    else if (c == 'p')
      M.o.poll_us = (uint32_t)strtoul(optarg, NULL, 10);
    else
      return -EINVAL;
  }
  if (M.o.blocks == 0 || M.o.block_size == 0)
    return -EINVAL;
  return 0;
}

static void on_walk_close(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

int mach_main(int argc, char **argv) {
  int r = -EMFILE;
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
  for (int i = 0; i < MAX_CLIENTS; i++)
    M.cl[i].sock = -1;
  for (int i = 0; i < UK_ICA_MAX; i++)
    M.ica_fd[i] = -1;
  M.kd_fd = memfd_create("uksim-kdata", MFD_CLOEXEC);
  if (M.kd_fd < 0 || (r = listen_control()) < 0 ||
      client_add(fcntl(3, F_DUPFD_CLOEXEC, 0)) != 0 ||
      (r = boot_kernel()) < 0) {
    fprintf(stderr, "uksim machine %s: cannot start: %s\n", M.o.name,
            r == -EADDRINUSE ? "a machine of this name is running"
                             : strerror(-r));
    return 1;
  }
  close(3);
  uv_run(M.loop, UV_RUN_DEFAULT);
  /* Replies still queued (the halt's, above all) go out before we leave. */
  for (int c = 0; c < MAX_CLIENTS; c++)
    if (M.cl[c].sock >= 0) {
      fcntl(M.cl[c].sock, F_SETFL, fcntl(M.cl[c].sock, F_GETFL) & ~O_NONBLOCK);
      outbox_flush(&M.cl[c].out);
    }
  outbox_clear(&M.kout);
  for (int c = 0; c < MAX_CLIENTS; c++)
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
