/* Clients of a machine: the CLI and the tests (see machine.h). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kern.h"
#include "machine.h"
#include "uksim_paths.h"
#include "uksim/interos.h"
#include "uksim/num.h"

uint32_t mach_poll_us(void) {
  const char *e = getenv("UKSIM_POLL_US");
  uint64_t v;
  if (e && num_parse_u64(e, 0, MACH_POLL_US_MAX, 0, &v) == 0)
    return (uint32_t)v;
  return MACH_POLL_US_DEFAULT;
}

int mach_poll_us_opt(const char *prog, const char *v) {
  uint64_t n;
  if (num_opt_u64(prog, "--poll-us", v, 0, MACH_POLL_US_MAX, 0, &n) < 0)
    return -1;
  char buf[24];
  snprintf(buf, sizeof buf, "%llu", (unsigned long long)n);
  return setenv("UKSIM_POLL_US", buf, 1) < 0 ? -1 : 0;
}

void mach_opts_default(struct mach_opts *o) {
  memset(o, 0, sizeof *o);
  snprintf(o->name, sizeof o->name, "default");
  o->blocks = 32;
  o->block_size = 128ull << 20;
  o->trace = 0;
  o->poll_us = mach_poll_us();
  o->cores = PART_CORES_DEFAULT;
  o->heartbeat_ms = MACH_HEARTBEAT_MS_DEFAULT;
  o->heartbeat_timeout_ms = MACH_HEARTBEAT_TIMEOUT_MS_DEFAULT;
}

/* The NICs' ports when none are given: below Linux's ephemeral range
 * (32768 up), 32 ports a machine, by pid, so that machines side by side
 * rarely share a range. */
#define NIC_PORT_LOW 20000
#define NIC_PORT_MACHINES 398
#define HW_LIST_RULE "not a list of at most %d blocks like 4,5,9-11"

int mach_part_config(const struct mach_opts *o, struct part_config *c,
                     char *err, size_t errlen) {
  static struct part scratch; /* large: checked by laying it out */
  cpu_set_t allowed;
  uint16_t port = o->nic_port;
  if (port == 0)
    port = (uint16_t)(NIC_PORT_LOW +
                      (getpid() % NIC_PORT_MACHINES) * 2 * PART_NIC_PORTS);
  part_config_default(c, o->blocks, o->block_size, port);
  c->cores = o->cores;
  c->nhost = 0;
  if (sched_getaffinity(0, sizeof allowed, &allowed) < 0)
    CPU_ZERO(&allowed);
  for (int i = 0; i < CPU_SETSIZE && c->nhost < PART_CORES_MAX; i++)
    if (CPU_ISSET(i, &allowed))
      c->host_cpu[c->nhost++] = (uint16_t)i;
  if (c->nhost == 0)
    c->nhost = 1; /* cpu 0, as a last resort */
  if (o->hw_given && part_config_hw(c, o->hw_blocks) < 0) {
    snprintf(err, errlen, "--hw-blocks '%s': " HW_LIST_RULE, o->hw_blocks,
             PART_HW_MAX);
    return -EINVAL;
  }
  return part_init(&scratch, c, err, errlen);
}

int mach_cores_opt(struct mach_opts *o, const char *prog, const char *v) {
  uint64_t n;
  if (num_opt_u64(prog, "--cores", v, PART_CORES_MIN, PART_CORES_MAX, 0, &n) <
      0)
    return -1;
  o->cores = (uint32_t)n;
  return 0;
}

int mach_hw_blocks_opt(struct mach_opts *o, const char *prog, const char *v) {
  struct part_config c;
  part_config_default(&c, 1, 1, 0);
  if (strlen(v) >= sizeof o->hw_blocks || part_config_hw(&c, v) < 0) {
    fprintf(stderr, "%s: --hw-blocks '%s': " HW_LIST_RULE "\n", prog, v,
            PART_HW_MAX);
    return -1;
  }
  snprintf(o->hw_blocks, sizeof o->hw_blocks, "%s", v);
  o->hw_given = true;
  return 0;
}

int mach_disk_opt(struct mach_opts *o, const char *prog, const char *dir) {
  char cwd[4096];
  int n;
  if (dir[0] == '/')
    n = snprintf(o->disk, sizeof o->disk, "%s", dir);
  else if (getcwd(cwd, sizeof cwd) != NULL)
    n = snprintf(o->disk, sizeof o->disk, "%s/%s", cwd, dir);
  else
    n = -1;
  if (n < 0 || (size_t)n >= sizeof o->disk || dir[0] == '\0') {
    fprintf(stderr,
            "%s: --disk '%s': empty or too long a path (%zu bytes "
            "at most)\n",
            prog, dir, sizeof o->disk - 1);
    o->disk[0] = '\0';
    return -1;
  }
  return 0;
}

int mach_fd_limit(unsigned long need) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
    return -errno;
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
    rl.rlim_max = need; /* only root may: checked below */
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
    return -errno;
  return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need ? 0 : -EMFILE;
}

/* The monitor's settings go to every kernel through the environment
 * (sim-kernel/kmon.h), as UKSIM_POLL_US does. */
static int monitor_opt(const char *prog, int c, const char *arg) {
  uint64_t v;
  if (c == MACH_OPT_MONITOR) {
    if (num_opt_u64(prog, "--monitor-interval", arg, 0, KMON_INTERVAL_MS_MAX, 0,
                    &v) < 0)
      return -1;
    setenv(KMON_ENV_INTERVAL, arg, 1);
    return 1;
  }
  if (strcmp(arg, "report") != 0 && strcmp(arg, "failover") != 0) {
    fprintf(stderr, "%s: --monitor-policy '%s': report or failover\n", prog,
            arg);
    return -1;
  }
  setenv(KMON_ENV_POLICY, arg, 1);
  return 1;
}

int mach_backup_opt(const char *prog, int c, const char *arg,
                    struct mach_opts *o) {
  uint64_t v;
  if (c == MACH_OPT_BACKUP) {
    o->backup = true;
    return 1;
  }
  if (c == MACH_OPT_NODE_PORT || c == MACH_OPT_NODE_KEY) {
    char *to = c == MACH_OPT_NODE_PORT ? o->node_port : o->node_key;
    size_t len =
        c == MACH_OPT_NODE_PORT ? sizeof o->node_port : sizeof o->node_key;
    if (strlen(arg) >= len) {
      fprintf(stderr, "%s: %s too long\n", prog, arg);
      return -1;
    }
    snprintf(to, len, "%s", arg);
    return 1;
  }
  if (c == MACH_OPT_BACKUP_KERNEL) {
    if (realpath(arg, o->backup_kernel) == NULL ||
        access(o->backup_kernel, X_OK) < 0) {
      fprintf(stderr, "%s: --backup-kernel '%s': not an executable\n", prog,
              arg);
      o->backup_kernel[0] = '\0';
      return -1;
    }
    return 1;
  }
  if (c == MACH_OPT_NIC_PORT) {
    if (num_opt_u64(prog, "--nic-port", arg, 1, UINT16_MAX - 2 * PART_NIC_PORTS,
                    0, &v) < 0)
      return -1;
    o->nic_port = (uint16_t)v;
    return 1;
  }
  if (c == MACH_OPT_MONITOR || c == MACH_OPT_MONITOR_POLICY)
    return monitor_opt(prog, c, arg);
  if (c == MACH_OPT_SYNC) {
    if (num_opt_u64(prog, "--sync-ms", arg, 0, MACH_SYNC_MS_MAX, 0, &v) < 0)
      return -1;
    snprintf(o->sync_ms, sizeof o->sync_ms, "%" PRIu64, v);
    return 1;
  }
  if (c == MACH_OPT_CACHE_MIGRATE) {
    if (strcmp(arg, "adopt") != 0 && strcmp(arg, "writeback") != 0) {
      fprintf(stderr, "%s: --cache-migrate '%s': adopt or writeback\n", prog,
              arg);
      return -1;
    }
    snprintf(o->cache_migrate, sizeof o->cache_migrate, "%s", arg);
    return 1;
  }
  if (c != MACH_OPT_HB && c != MACH_OPT_HB_TIMEOUT)
    return 0;
  const char *name =
      c == MACH_OPT_HB ? "--heartbeat-ms" : "--heartbeat-timeout-ms";
  if (num_opt_u64(prog, name, arg, 1, MACH_HEARTBEAT_MS_MAX, 0, &v) < 0)
    return -1;
  if (c == MACH_OPT_HB)
    o->heartbeat_ms = (uint32_t)v;
  else
    o->heartbeat_timeout_ms = (uint32_t)v;
  return 1;
}

static int mkdir_private(const char *d) {
  struct stat st;
  if (mkdir(d, 0700) < 0 && errno != EEXIST)
    return -errno;
  if (lstat(d, &st) < 0)
    return -errno;
  if (!S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 077) != 0)
    return -EACCES; /* someone else's, or open to others: refuse */
  return 0;
}

bool mach_name_ok(const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n > MACH_NAME_MAX || name[0] == '.')
    return false;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)name[i]) && !strchr("._-", name[i]))
      return false;
  return true;
}

int mach_rundir(const char *name, char *out, size_t len, bool create) {
  char base[200];
  const char *x = getenv("XDG_RUNTIME_DIR");
  if (!mach_name_ok(name))
    return -EINVAL;
  if (x && x[0])
    snprintf(base, sizeof base, "%s/uksim", x);
  else
    snprintf(base, sizeof base, "/tmp/uksim-%u", (unsigned)getuid());
  snprintf(out, len, "%s/%s", base, name);
  if (!create)
    return 0;
  int r = mkdir_private(base);
  return r < 0 ? r : mkdir_private(out);
}

static void client_init(mach_client *m) {
  memset(m, 0, sizeof *m);
  m->sock = -1;
  for (int i = 0; i < MACH_MAX_REPLIES; i++)
    m->early_fd[i] = -1;
}

/* One Ping: the active kernel's answer, or the link's error. */
static int ping_once(mach_client *m) {
  Uksim__Ctl c = UKSIM__CTL__INIT;
  Uksim__Ping ping = UKSIM__PING__INIT;
  c.body_case = UKSIM__CTL__BODY_PING;
  c.ping = &ping;
  int64_t id = mach_send(m, &c);
  return id < 0 ? (int)id : mach_reply(m, (uint64_t)id, NULL, NULL);
}

static uint64_t now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

/* A failover answers what the dead kernel held with -ESRCH ("the kernel
 * went away") and what comes before a new active with -EAGAIN: the
 * machine runs, its next active will answer.  A machine that went away
 * fails the next send instead, so the loop ends there too. */
int mach_ping(mach_client *m, uint32_t wait_ms) {
  uint64_t end = now_ms() + wait_ms;
  int r;
  while ((r = ping_once(m)) == -ESRCH || r == -EAGAIN) {
    if (now_ms() >= end)
      break;
    usleep(MACH_FAILOVER_RETRY_MS * 1000);
  }
  return r;
}

/* A booted machine answers once it listens and its kernel is started; one
 * that could not start (a machine of that name runs, no descriptors) has
 * said why on stderr and exited.  A machine with a backup may be in a
 * failover already (its active crashed as soon as it booted): its answer
 * is waited for, since closing the link now would halt it. */
static int boot_confirm(mach_client *m, const struct mach_opts *o) {
  uint32_t wait_ms = o->backup ? MACH_FAILOVER_WAIT_MS : 0;
  int r = mach_ping(m, wait_ms);
  if (r == 0)
    return 0;
  char why[160]; /* the answer, cut to fit the sentence around it */
  snprintf(why, sizeof why, "%.159s", m->error);
  int st;
  close(m->sock);
  m->sock = -1;
  bool exited = waitpid(m->pid, &st, 0) == m->pid && WIFEXITED(st);
  if ((r == -ESRCH || r == -EAGAIN) && wait_ms > 0)
    snprintf(m->error, sizeof m->error,
             "the machine started, but no kernel answered in %u ms (%.150s)",
             wait_ms, why);
  else if (exited)
    snprintf(m->error, sizeof m->error,
             "the machine did not start (exit status %d)", WEXITSTATUS(st));
  else
    snprintf(m->error, sizeof m->error, "the machine did not start");
  m->pid = 0;
  return r < 0 ? r : -ECHILD;
}

int mach_boot(mach_client *m, const struct mach_opts *o) {
  int sv[2];
  char exe[4096], blocks[32], bmib[32], trace[32], poll[16], cores[16];
  char nic[16], hb[16], hbt[16];
  client_init(m);
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n < 0)
    return -errno;
  exe[n] = '\0';
  /* Tests link this file into their own binaries: find uksim beside us or
   * in the build tree. */
  const char *base = strrchr(exe, '/');
  if (strcmp(base ? base + 1 : exe, "uksim") != 0 || getenv("UKSIM_EXE"))
    snprintf(exe, sizeof exe, "%s",
             getenv("UKSIM_EXE") ? getenv("UKSIM_EXE") : UKSIM_EXE_DEFAULT);
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return -errno;
  snprintf(blocks, sizeof blocks, "%u", o->blocks);
  snprintf(bmib, sizeof bmib, "%llu",
           (unsigned long long)(o->block_size >> 20));
  snprintf(trace, sizeof trace, "%ld", o->trace);
  snprintf(poll, sizeof poll, "%u", o->poll_us);
  snprintf(cores, sizeof cores, "%u", o->cores);
  snprintf(nic, sizeof nic, "%u", o->nic_port);
  snprintf(hb, sizeof hb, "%u", o->heartbeat_ms);
  snprintf(hbt, sizeof hbt, "%u", o->heartbeat_timeout_ms);
  char *argv[] = {exe,
                  "machine",
                  "--name",
                  (char *)o->name,
                  "--blocks",
                  blocks,
                  "--block-mib",
                  bmib,
                  "--trace",
                  trace,
                  "--trace-file",
                  (char *)o->trace_file,
                  "--scenario",
                  (char *)o->scenario,
                  "--seed",
                  (char *)o->seed,
                  "--dump-dir",
                  (char *)o->dump_dir,
                  "--poll-us",
                  poll,
                  "--disk",
                  (char *)o->disk,
                  "--disk-size",
                  (char *)o->disk_size,
                  "--sync-ms",
                  (char *)o->sync_ms,
                  "--cache-mib",
                  (char *)o->cache_mib,
                  "--cache-migrate",
                  (char *)o->cache_migrate,
                  "--cores",
                  cores,
                  "--nic-port",
                  nic,
                  "--heartbeat-ms",
                  hb,
                  "--heartbeat-timeout-ms",
                  hbt,
                  NULL, /* room for the optional ones below, and the end */
                  NULL,
                  NULL,
                  NULL,
                  NULL,
                  NULL,
                  NULL,
                  NULL,
                  NULL,
                  NULL};
  size_t at = 0; /* the options given only when set, after the others */
  while (argv[at] != NULL)
    at++;
  if (o->hw_given) {
    argv[at++] = "--hw-blocks";
    argv[at++] = (char *)o->hw_blocks;
  }
  if (o->backup)
    argv[at++] = "--backup";
  if (o->node_port[0]) {
    argv[at++] = "--node-port";
    argv[at++] = (char *)o->node_port;
  }
  if (o->node_key[0]) {
    argv[at++] = "--node-key";
    argv[at++] = (char *)o->node_key;
  }
  if (o->backup_kernel[0] != '\0') {
    argv[at++] = "--backup-kernel";
    argv[at++] = (char *)o->backup_kernel;
  }
  pid_t pid = fork();
  if (pid < 0)
    return -errno;
  if (pid == 0) {
    /* Its own process group: a Ctrl-C at the terminal reaches the command
     * that owns the machine, which halts it cleanly, and not every process
     * of the machine at once. */
    setpgid(0, 0);
    dup2(sv[1], 3); /* dup2 clears close-on-exec */
    int log =
        o->log[0] ? open(o->log, O_WRONLY | O_CREAT | O_APPEND, 0600) : -1;
    if (log >= 0)
      dup2(log, 2);
    close_range(4, ~0u, 0);
    execv(exe, argv);
    _exit(127);
  }
  close(sv[1]);
  m->sock = sv[0];
  m->pid = pid;
  return boot_confirm(m, o);
}

int mach_connect(mach_client *m, const char *name) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  char dir[256];
  client_init(m);
  int r = mach_rundir(name, dir, sizeof dir, false);
  if (r < 0) {
    snprintf(m->error, sizeof m->error,
             "bad machine name '%s': " MACH_NAME_RULE, name);
    return r;
  }
  if (snprintf(a.sun_path, sizeof a.sun_path, "%s/control.sock", dir) >=
      (int)sizeof a.sun_path)
    return -ENAMETOOLONG;
  m->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (m->sock < 0)
    return -errno;
  if (connect(m->sock, (struct sockaddr *)&a, sizeof a) < 0) {
    r = -errno;
    if (r == -ECONNREFUSED) /* the file is there, nobody listens */
      snprintf(m->error, sizeof m->error,
               "no machine '%s' is running (%s was left by one that ended "
               "without cleaning up; the next machine of that name replaces "
               "it)",
               name, a.sun_path);
    else
      snprintf(m->error, sizeof m->error, "no machine '%s' is running (%s)",
               name, a.sun_path);
    close(m->sock);
    m->sock = -1;
    return r;
  }
  return 0;
}

/* A machine that refuses a client sends a notice (id 0) and closes: its
 * words go to m->error. */
static int notice(mach_client *m, Uksim__Ctl *c) {
  int st = c->body_case == UKSIM__CTL__BODY_REPLY ? c->reply->status : -EPROTO;
  snprintf(m->error, sizeof m->error, "%s",
           c->body_case == UKSIM__CTL__BODY_REPLY && c->reply->error[0]
               ? c->reply->error
               : "the machine refused the connection");
  uksim__ctl__free_unpacked(c, NULL);
  return st < 0 ? st : -ECONNREFUSED;
}

/* After a failed send: a notice the machine left before closing, if any. */
static int send_failed(mach_client *m, int r) {
  int fd, err;
  snprintf(m->error, sizeof m->error, "the machine went away");
  Uksim__Ctl *c = ctl_recv(m->sock, &fd, &err);
  if (fd >= 0)
    close(fd);
  if (c != NULL && c->id == 0)
    return notice(m, c);
  if (c != NULL)
    uksim__ctl__free_unpacked(c, NULL);
  return r;
}

int64_t mach_send(mach_client *m, Uksim__Ctl *req) {
  req->id = ++m->next_id;
  int r = ctl_send(m->sock, req, -1);
  return r < 0 ? send_failed(m, r) : (int64_t)req->id;
}

static int take(mach_client *m, Uksim__Ctl *c, int fd, Uksim__Ctl **out,
                int *ofd) {
  int st = c->body_case == UKSIM__CTL__BODY_REPLY ? c->reply->status : -EPROTO;
  if (st < 0)
    snprintf(m->error, sizeof m->error, "%s",
             c->body_case == UKSIM__CTL__BODY_REPLY && c->reply->error[0]
                 ? c->reply->error
                 : strerror(-st));
  if (out)
    *out = c;
  else
    uksim__ctl__free_unpacked(c, NULL);
  if (ofd)
    *ofd = fd;
  else if (fd >= 0)
    close(fd);
  return st;
}

int mach_reply(mach_client *m, uint64_t id, Uksim__Ctl **out, int *ofd) {
  for (int i = 0; i < MACH_MAX_REPLIES; i++)
    if (m->early[i] && m->early[i]->id == id) {
      Uksim__Ctl *c = m->early[i];
      m->early[i] = NULL;
      return take(m, c, m->early_fd[i], out, ofd);
    }
  for (;;) {
    int fd, err;
    Uksim__Ctl *c = ctl_recv(m->sock, &fd, &err);
    if (c == NULL && err == -ECONNRESET) /* a notice may be queued still */
      return send_failed(m, err);
    if (c == NULL) {
      snprintf(m->error, sizeof m->error, "the machine went away");
      return err < 0 ? err : -ECONNRESET;
    }
    if (c->id == id)
      return take(m, c, fd, out, ofd);
    if (c->id == 0) {
      if (fd >= 0)
        close(fd);
      return notice(m, c);
    }
    int i;
    for (i = 0; i < MACH_MAX_REPLIES && m->early[i]; i++)
      ;
    if (i == MACH_MAX_REPLIES) { /* nobody asked for this many: drop it */
      uksim__ctl__free_unpacked(c, NULL);
      if (fd >= 0)
        close(fd);
      continue;
    }
    m->early[i] = c;
    m->early_fd[i] = fd;
  }
}

int mach_drop_late(mach_client *m) {
  int fd, err;
  Uksim__Ctl *c = ctl_recv(m->sock, &fd, &err);
  if (c == NULL && (err == -EAGAIN || err == -EINTR || err == -EBADMSG))
    return 0; /* nothing after all, or garbage skipped */
  if (c == NULL) {
    snprintf(m->error, sizeof m->error, "the machine went away");
    return err < 0 ? err : -ECONNRESET;
  }
  if (fd >= 0)
    close(fd);
  if (c->id == 0) /* a notice: the machine refuses us and closes */
    return notice(m, c);
  uksim__ctl__free_unpacked(c, NULL);
  return 0;
}

int mach_spawn_prog(mach_client *m, const struct mach_prog *p, int *proc) {
  Uksim__Ctl c = UKSIM__CTL__INIT;
  Uksim__Spawn s = UKSIM__SPAWN__INIT;
  Uksim__Ctl *rep = NULL;
  s.program = (char *)p->program;
  s.args = (char **)p->args;
  s.n_args = p->nargs;
  s.name = (char *)(p->name ? p->name : "");
  s.env = (char **)p->env;
  s.n_env = p->nenv;
  s.until_registered = (p->flags & MACH_SPAWN_REGISTERED) != 0;
  s.waitable = (p->flags & MACH_SPAWN_WAITABLE) != 0;
  s.restart = p->restart;
  s.protect = p->protect;
  s.deadline_ms = p->deadline_ms;
  c.body_case = UKSIM__CTL__BODY_SPAWN;
  c.spawn = &s;
  int64_t id = mach_send(m, &c);
  if (id < 0)
    return (int)id;
  int r = mach_reply(m, (uint64_t)id, &rep, NULL);
  if (proc)
    *proc = rep ? rep->reply->proc : -1;
  if (rep)
    uksim__ctl__free_unpacked(rep, NULL);
  return r;
}

int mach_spawn(mach_client *m, const char *program, char *const *args,
               size_t nargs, const char *name, unsigned flags, int *proc) {
  struct mach_prog p = {.program = program,
                        .args = args,
                        .nargs = nargs,
                        .name = name,
                        .flags = flags};
  return mach_spawn_prog(m, &p, proc);
}

int64_t mach_replace_send(mach_client *m, const char *svc,
                          const struct mach_prog *p, uint32_t deadline_ms) {
  Uksim__Ctl c = UKSIM__CTL__INIT;
  Uksim__Replace r = UKSIM__REPLACE__INIT;
  r.svc = (char *)svc;
  r.program = (char *)p->program;
  r.args = (char **)p->args;
  r.n_args = p->nargs;
  r.name = (char *)(p->name ? p->name : "");
  r.env = (char **)p->env;
  r.n_env = p->nenv;
  r.deadline_ms = deadline_ms;
  c.body_case = UKSIM__CTL__BODY_REPLACE;
  c.replace = &r;
  return mach_send(m, &c);
}

int mach_replace_reply(mach_client *m, uint64_t id, int *proc) {
  Uksim__Ctl *rep = NULL;
  int r = mach_reply(m, id, &rep, NULL);
  if (proc)
    *proc = rep ? rep->reply->proc : -1;
  if (rep)
    uksim__ctl__free_unpacked(rep, NULL);
  return r;
}

int64_t mach_wait_send(mach_client *m, int proc) {
  Uksim__Ctl c = UKSIM__CTL__INIT;
  Uksim__Wait w = UKSIM__WAIT__INIT;
  w.proc = proc;
  c.body_case = UKSIM__CTL__BODY_WAIT;
  c.wait = &w;
  return mach_send(m, &c);
}

int mach_wait_reply(mach_client *m, uint64_t id, int *exit_status,
                    int *term_signal) {
  Uksim__Ctl *rep = NULL;
  int r = mach_reply(m, id, &rep, NULL);
  if (r == 0) {
    *exit_status = rep->reply->exit_status;
    *term_signal = rep->reply->term_signal;
  }
  if (rep)
    uksim__ctl__free_unpacked(rep, NULL);
  return r;
}

int mach_kill(mach_client *m, int proc, int sig) {
  Uksim__Ctl c = UKSIM__CTL__INIT;
  Uksim__Kill k = UKSIM__KILL__INIT;
  k.proc = proc;
  k.signal = sig;
  c.body_case = UKSIM__CTL__BODY_KILL;
  c.kill = &k;
  int64_t id = mach_send(m, &c);
  return id < 0 ? (int)id : mach_reply(m, (uint64_t)id, NULL, NULL);
}

int mach_attach(mach_client *m, const char *name, int ns_proc, uint32_t rfflags,
                int *proc, int *fd) {
  Uksim__Ctl c = UKSIM__CTL__INIT;
  Uksim__Attach a = UKSIM__ATTACH__INIT;
  Uksim__Ctl *rep = NULL;
  a.name = (char *)name;
  a.pid = (int32_t)getpid();
  a.ns_from = ns_proc < 0 ? 0 : ns_proc + 1;
  a.rfflags = rfflags;
  c.body_case = UKSIM__CTL__BODY_ATTACH;
  c.attach = &a;
  *fd = -1;
  int64_t id = mach_send(m, &c);
  if (id < 0)
    return (int)id;
  int r = mach_reply(m, (uint64_t)id, &rep, fd);
  if (r == 0 && *fd < 0)
    r = -EPROTO;
  if (proc)
    *proc = rep && r == 0 ? rep->reply->proc : -1;
  if (rep)
    uksim__ctl__free_unpacked(rep, NULL);
  return r;
}

/* GetKdata of OS os (0: the active's): the reply and its descriptor. */
static int get_kdata(mach_client *m, uint32_t os, Uksim__Ctl **rep, int *fd) {
  Uksim__Ctl c = UKSIM__CTL__INIT;
  Uksim__GetKdata g = UKSIM__GET_KDATA__INIT;
  g.os = os;
  c.body_case = UKSIM__CTL__BODY_GET_KDATA;
  c.get_kdata = &g;
  *fd = -1;
  int64_t id = mach_send(m, &c);
  if (id < 0)
    return (int)id;
  int r = mach_reply(m, (uint64_t)id, rep, fd);
  return r == 0 && *fd < 0 ? -EPROTO : r;
}

int mach_kdata_fd(mach_client *m, uint32_t os, int *fd) {
  Uksim__Ctl *rep = NULL;
  int r = get_kdata(m, os, &rep, fd);
  if (rep)
    uksim__ctl__free_unpacked(rep, NULL);
  return r;
}

int mach_kdata(mach_client *m, const struct uk_kdata **kd,
               Uksim__Reply **info) {
  Uksim__Ctl *rep = NULL;
  int fd;
  int r = get_kdata(m, 0, &rep, &fd);
  if (r == 0) {
    void *p = mmap(NULL, sizeof **kd, PROT_READ, MAP_SHARED, fd, 0);
    r = p == MAP_FAILED ? -errno : 0;
    *kd = p == MAP_FAILED ? NULL : p;
    if (r == 0 && ((*kd)->hdr.magic != UK_KDATA_MAGIC ||
                   (*kd)->hdr.layout != UK_KDATA_LAYOUT)) {
      snprintf(m->error, sizeof m->error, "kernel data layout %u, not %u",
               (*kd)->hdr.layout, UK_KDATA_LAYOUT);
      munmap(p, sizeof **kd);
      r = -EPROTO;
    }
  }
  if (fd >= 0)
    close(fd);
  if (info && r == 0) {
    *info = rep->reply;
    rep->reply = NULL; /* hand over; the caller frees with reply__free */
    rep->body_case = UKSIM__CTL__BODY__NOT_SET;
  }
  if (rep)
    uksim__ctl__free_unpacked(rep, NULL);
  return r;
}

void mach_kdata_unmap(const struct uk_kdata *kd) {
  munmap((void *)kd, sizeof *kd);
}

int mach_halt(mach_client *m, uint32_t *icas_live) {
  Uksim__Ctl c = UKSIM__CTL__INIT;
  Uksim__Halt h = UKSIM__HALT__INIT;
  Uksim__Ctl *rep = NULL;
  c.body_case = UKSIM__CTL__BODY_HALT;
  c.halt = &h;
  int64_t id = mach_send(m, &c);
  int r = id < 0 ? (int)id : mach_reply(m, (uint64_t)id, &rep, NULL);
  if (rep && icas_live)
    *icas_live = rep->reply->icas_live;
  if (rep)
    uksim__ctl__free_unpacked(rep, NULL);
  return r;
}

void mach_close(mach_client *m) {
  for (int i = 0; i < MACH_MAX_REPLIES; i++) {
    if (m->early[i])
      uksim__ctl__free_unpacked(m->early[i], NULL);
    if (m->early_fd[i] >= 0)
      close(m->early_fd[i]);
  }
  if (m->sock >= 0)
    close(m->sock);
  if (m->pid > 0) {
    int st;
    waitpid(m->pid, &st, 0); /* closing the owner link halts it */
  }
  client_init(m);
}

/* Orthros ---------------------------------------------------------------- */

int mach_fault(mach_client *m, int kind, uint32_t os) {
  return mach_fault_arg(m, kind, os, NULL);
}

int mach_fault_arg(mach_client *m, int kind, uint32_t os, const char *arg) {
  Uksim__Ctl c = UKSIM__CTL__INIT;
  Uksim__Fault f = UKSIM__FAULT__INIT;
  f.kind = (Uksim__Fault__Kind)kind;
  f.os = os;
  if (arg)
    f.arg = (char *)arg;
  c.body_case = UKSIM__CTL__BODY_FAULT;
  c.fault = &f;
  int64_t id = mach_send(m, &c);
  return id < 0 ? (int)id : mach_reply(m, (uint64_t)id, NULL, NULL);
}

int mach_kupdate(mach_client *m, int method, uint32_t *old_os,
                 uint32_t *new_os) {
  Uksim__Ctl c = UKSIM__CTL__INIT, *rep = NULL;
  Uksim__KUpdate u = UKSIM__KUPDATE__INIT;
  u.method = (Uksim__KUpdate__Method)method;
  c.body_case = UKSIM__CTL__BODY_KUPDATE;
  c.kupdate = &u;
  int64_t id = mach_send(m, &c);
  int r = id < 0 ? (int)id : mach_reply(m, (uint64_t)id, &rep, NULL);
  if (r == 0 && rep->body_case == UKSIM__CTL__BODY_REPLY) {
    *old_os = rep->reply->active_os;
    *new_os = rep->reply->backup_os;
  }
  if (rep)
    uksim__ctl__free_unpacked(rep, NULL);
  return r;
}

int mach_status(mach_client *m, Uksim__Reply **st) {
  Uksim__Ctl c = UKSIM__CTL__INIT, *rep = NULL;
  Uksim__MachStatus s = UKSIM__MACH_STATUS__INIT;
  c.body_case = UKSIM__CTL__BODY_MACH_STATUS;
  c.mach_status = &s;
  int64_t id = mach_send(m, &c);
  int r = id < 0 ? (int)id : mach_reply(m, (uint64_t)id, &rep, NULL);
  if (r == 0) {
    *st = rep->reply;
    rep->reply = NULL; /* hand over */
    rep->body_case = UKSIM__CTL__BODY__NOT_SET;
  }
  if (rep)
    uksim__ctl__free_unpacked(rep, NULL);
  return r;
}

int mach_interos(mach_client *m, const struct uk_interos **io) {
  Uksim__Ctl c = UKSIM__CTL__INIT;
  Uksim__GetInterOs g = UKSIM__GET_INTER_OS__INIT;
  int fd = -1;
  c.body_case = UKSIM__CTL__BODY_GET_INTER_OS;
  c.get_inter_os = &g;
  int64_t id = mach_send(m, &c);
  int r = id < 0 ? (int)id : mach_reply(m, (uint64_t)id, NULL, &fd);
  if (r == 0 && fd < 0)
    r = -EPROTO;
  if (r == 0) {
    void *p = mmap(NULL, sizeof **io, PROT_READ, MAP_SHARED, fd, 0);
    r = p == MAP_FAILED ? -errno : 0;
    *io = p == MAP_FAILED ? NULL : p;
    if (r == 0 && ((*io)->magic != UK_INTEROS_MAGIC ||
                   (*io)->layout != UK_INTEROS_LAYOUT)) {
      snprintf(m->error, sizeof m->error, "inter-OS layout %u, not %u",
               (*io)->layout, UK_INTEROS_LAYOUT);
      munmap(p, sizeof **io);
      r = -EPROTO;
    }
  }
  if (fd >= 0)
    close(fd);
  return r;
}

void mach_interos_unmap(const struct uk_interos *io) {
  munmap((void *)io, sizeof *io);
}
