/* run_migd.c: a scenario's migration servers (run_migd.h).  Each is
 * started, then asked `ps` until it answers, so the executor finds every
 * one serving; after the run, the tasks are given time to end and their
 * consoles are read back, so an `expect task NAME output` judges all a
 * task printed. */
#include "run_migd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kpath.h"
#include "machine.h"
#include "migd.h"
#include "run_nodes.h"
#include "scn_eval.h"
#include "scn_exec_mig.h"
#include "uksim/xalloc.h"

#define RUN_MIGD_KEY_BYTES 32

struct server {
  char name[SCN_NAME_MAX + 1];
  int port;
  pid_t pid;
  /* The node's services (RUN_MIGD_SERVICES), when a task calls some: */
  mach_client m;
  bool booted;
  int netmsg; /* its network message server's port, 0: none */
};

struct run_migd {
  char dir[PATH_MAX];
  char exe[PATH_MAX], key[PATH_MAX + 16];
  struct server sv[MIG_NODES_MAX];
  size_t n;
};

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* uksim-migd beside this uksim: the build tree's sim-kernel/, or the
 * same bin directory once installed.  0, or -1. */
static int find_exe(char *out, size_t len) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0)
    return -1;
  self[n] = '\0';
  char *dir = dirname(self);
  snprintf(out, len, "%s/../sim-kernel/uksim-migd", dir);
  if (access(out, X_OK) == 0)
    return 0;
  snprintf(out, len, "%s/uksim-migd", dir);
  return access(out, X_OK) == 0 ? 0 : -1;
}

/* A fresh random key file, readable by its owner only. */
static int make_key(const char *path) {
  uint8_t key[RUN_MIGD_KEY_BYTES];
  if (getrandom(key, sizeof key, 0) != (ssize_t)sizeof key)
    return -1;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return -1;
  bool ok = write(fd, key, sizeof key) == (ssize_t)sizeof key;
  return close(fd) == 0 && ok ? 0 : -1;
}

/* A port in the range that is free now, from a random start: the first
 * one a socket can bind (and lets go at once). */
static int free_port(void) {
  uint32_t r = 0;
  int span = RUN_MIGD_PORT_HI - RUN_MIGD_PORT_LO + 1, found = -1;
  if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
    r = (uint32_t)now_ms();
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  for (int i = 0; fd >= 0 && found < 0 && i < span; i++) {
    int port = RUN_MIGD_PORT_LO + (int)((r + (uint32_t)i) % (uint32_t)span);
    sin.sin_port = htons((uint16_t)port);
    if (bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0)
      found = port;
  }
  if (fd >= 0)
    close(fd);
  return found;
}

/* Runs `uksim-migd --key KEY --ctl tcp!127.0.0.1!PORT ps`: its output in
 * out, its exit status (or -1). */
static int ctl_ps(const struct run_migd *r, int port, char *out, size_t len) {
  char addr[64];
  int fd[2];
  snprintf(addr, sizeof addr, "tcp!127.0.0.1!%d", port);
  if (pipe2(fd, O_CLOEXEC) < 0)
    return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fd[1], 1);
    dup2(fd[1], 2);
    execl(r->exe, r->exe, "--key", r->key, "--ctl", addr, "ps", (char *)NULL);
    _exit(127);
  }
  close(fd[1]);
  size_t n = 0;
  ssize_t got;
  while (pid > 0 && n + 1 < len &&
         (got = read(fd[0], out + n, len - n - 1)) > 0)
    n += (size_t)got;
  out[n] = '\0';
  close(fd[0]);
  int st;
  if (pid < 0 || waitpid(pid, &st, 0) < 0)
    return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static pid_t spawn_server(const struct run_migd *r, const struct server *s,
                          const char *crash_at) {
  char port[16], out[PATH_MAX + 64], err[PATH_MAX + 64], name[64];
  snprintf(port, sizeof port, "%d", s->port);
  snprintf(name, sizeof name, MIG_OUT_FMT, s->name);
  snprintf(out, sizeof out, "%s/%s", r->dir, name);
  snprintf(err, sizeof err, "%s/%.*s.err", r->dir, (int)strlen(name) - 4, name);
  pid_t pid = fork();
  if (pid == 0) {
    int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = open(err, O_WRONLY | O_CREAT | O_APPEND, 0600);
    int in = open("/dev/null", O_RDONLY);
    if (o < 0 || e < 0 || in < 0)
      _exit(127);
    dup2(in, 0);
    dup2(o, 1);
    dup2(e, 2);
    char netmsg[64];
    snprintf(netmsg, sizeof netmsg, "tcp!127.0.0.1!%d", s->netmsg);
    char *argv[12] = {(char *)r->exe,  "--port", port,          "--name",
                      (char *)s->name, "--key",  (char *)r->key},
         **a = argv + 7;
    if (crash_at[0]) {
      *a++ = "--die-at";
      *a++ = (char *)crash_at;
    }
    if (s->netmsg) {
      *a++ = "--netmsg";
      *a++ = netmsg;
    }
    execv(r->exe, argv);
    _exit(127);
  }
  return pid;
}

/* Starts node r->sv[r->n]'s server on a free port, until one answers. */
static int start_server(struct run_migd *r, const char *crash_at) {
  struct server *s = &r->sv[r->n];
  char out[256];
  for (int t = 0; t < RUN_MIGD_TRIES; t++) {
    if ((s->port = free_port()) < 0 ||
        (s->pid = spawn_server(r, s, crash_at)) < 0)
      return -1;
    for (uint64_t end = now_ms() + RUN_MIGD_START_MS; now_ms() < end;) {
      if (waitpid(s->pid, NULL, WNOHANG) == s->pid)
        break; /* its port was taken meanwhile: another one */
      if (ctl_ps(r, s->port, out, sizeof out) == 0) {
        r->n++;
        return 0;
      }
      usleep(20000);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
  }
  return -1;
}

static int write_conf(const struct run_migd *r) {
  char path[PATH_MAX + 32], prog[KERN_PATH_MAX];
  snprintf(path, sizeof path, "%s/%s", r->dir, MIG_CONF);
  FILE *f = fopen(path, "w");
  if (f == NULL)
    return -1;
  fprintf(f, "exe %s\nkey %s\n", r->exe, r->key);
  if (kern__find_program("mtask", prog, sizeof prog) == 0)
    fprintf(f, "mtask %s\n", prog);
  if (kern__find_program("ctask", prog, sizeof prog) == 0)
    fprintf(f, "ctask %s\n", prog);
  if (kern__find_program("ktask", prog, sizeof prog) == 0)
    fprintf(f, "ktask %s\n", prog);
  for (size_t i = 0; i < r->n; i++)
    fprintf(f, "node %s tcp!127.0.0.1!%d\n", r->sv[i].name, r->sv[i].port);
  return fclose(f) == 0 ? 0 : -1;
}

/* The node services ------------------------------------------------------ */

/* Whether a task of s calls services: a ctask counts through its node's
 * counter, a ktask keeps values in its kvs (run_migd.h). */
static bool calls_services(const struct scn *s) {
  for (size_t i = 0; i < s->ntasks; i++)
    if (s->tasks[i].binary == SCN_TASK_CTASK ||
        s->tasks[i].binary == SCN_TASK_KTASK)
      return true;
  return false;
}

/* Node i's machine, with its counter service; its output into its log
 * in the run's directory (run_nodes.h). */
static int boot_node(const struct run_migd *r, struct server *v, char *why,
                     size_t len) {
  struct mach_opts o;
  mach_opts_default(&o);
  snprintf(o.name, sizeof o.name, "scn-%d-mig-%s", (int)getpid(), v->name);
  run_node_log(r->dir, v->name, o.log, sizeof o.log);
  const char *failed = NULL;
  if (mach_boot(&v->m, &o) < 0)
    failed = "machine did not boot";
  else if ((v->booted = true) &&
           mach_spawn(&v->m, "ctr_srv", NULL, 0, RUN_MIGD_SERVICE,
                      MACH_SPAWN_REGISTERED, NULL) < 0)
    failed = "counter service did not start";
  else if (mach_spawn(&v->m, "kvs", NULL, 0, "kvs", MACH_SPAWN_REGISTERED,
                      NULL) < 0)
    failed = "kvs did not start";
  if (failed == NULL)
    return 0;
  snprintf(why, len, "node %s's %s: %s", v->name, failed, v->m.error);
  fprintf(stderr, "uksim run: node %s's log ends:\n", v->name);
  run_node_log_show(o.log);
  return -1;
}

/* A free port for each node's network message server, none twice. */
static int netmsg_ports(struct run_migd *r, size_t n) {
  for (size_t i = 0; i < n; i++) {
    int port = -1;
    for (int t = 0; t < RUN_MIGD_TRIES && port < 0; t++) {
      port = free_port();
      for (size_t k = 0; k < i && port > 0; k++)
        if (r->sv[k].netmsg == port)
          port = -1;
    }
    if (port < 0)
      return -1;
    r->sv[i].netmsg = port;
  }
  return 0;
}

/* netmsg serve on node i, knowing the other nodes as peers. */
static int start_netmsg(struct run_migd *r, size_t i, size_t n) {
  char self[64], peer[MIG_NODES_MAX][SCN_NAME_MAX + 64];
  char *args[3 + 2 * MIG_NODES_MAX + 1] = {"serve", "--node", r->sv[i].name};
  size_t na = 3;
  for (size_t k = 0; k < n; k++) {
    if (k == i)
      continue;
    snprintf(peer[k], sizeof peer[k], "%s=tcp!127.0.0.1!%d", r->sv[k].name,
             r->sv[k].netmsg);
    args[na++] = "--peer";
    args[na++] = peer[k];
  }
  snprintf(self, sizeof self, "tcp!127.0.0.1!%d", r->sv[i].netmsg);
  args[na++] = self;
  return mach_spawn(&r->sv[i].m, "netmsg", args, (int)na, "netmsg", 0, NULL);
}

/* Each node's machine with its counter, then the network message
 * servers, which each migration server is given (--netmsg): it
 * advertises itself there before it answers its first `ps`. */
static int start_services(struct run_migd *r, size_t n, char *why, size_t len) {
  for (size_t i = 0; i < n; i++)
    if (boot_node(r, &r->sv[i], why, len) < 0)
      return -1;
  if (netmsg_ports(r, n) < 0) {
    snprintf(why, len, "no free ports for the network message servers");
    return -1;
  }
  for (size_t i = 0; i < n; i++)
    if (start_netmsg(r, i, n) < 0) {
      snprintf(why, len, "node %s's network message server did not start: %s",
               r->sv[i].name, r->sv[i].m.error);
      return -1;
    }
  return 0;
}

/* The servers ------------------------------------------------------------ */

static int start_all(struct run_migd *r, const struct scn *s, char *why,
                     size_t len) {
  if (find_exe(r->exe, sizeof r->exe) < 0) {
    snprintf(why, len, "uksim-migd not found beside uksim");
    return -1;
  }
  snprintf(r->key, sizeof r->key, "%s/migd.key", r->dir);
  if (make_key(r->key) < 0) {
    snprintf(why, len, "cannot write the migration key: %s", strerror(errno));
    return -1;
  }
  const char *crash[MIG_NODES_MAX] = {""};
  size_t n = 1;
  snprintf(r->sv[0].name, sizeof r->sv[0].name, "%s", SCN_LOCAL_NODE);
  for (size_t i = 0; i < s->nnodes && n < MIG_NODES_MAX; i++, n++) {
    snprintf(r->sv[n].name, sizeof r->sv[n].name, "%s", s->nodes[i].name);
    crash[n] = s->nodes[i].crash_at;
  }
  if (calls_services(s) && start_services(r, n, why, len) < 0)
    return -1;
  while (r->n < n)
    if (start_server(r, crash[r->n]) < 0) {
      snprintf(why, len, "node %s's migration server did not start%s",
               r->sv[r->n].name,
               r->sv[r->n].netmsg ? " (or its network message server)" : "");
      return -1;
    }
  if (write_conf(r) < 0) {
    snprintf(why, len, "cannot write %s: %s", MIG_CONF, strerror(errno));
    return -1;
  }
  return 0;
}

struct run_migd *run_migd_start(const struct scn *s, const char *dir, char *why,
                                size_t len) {
  struct run_migd *r = xcalloc(1, sizeof *r);
  snprintf(r->dir, sizeof r->dir, "%s", dir);
  if (s->ntasks > 0 && start_all(r, s, why, len) < 0) {
    run_migd_stop(r);
    return NULL;
  }
  return r;
}

/* After the run ------------------------------------------------------------ */

static const struct server *server_of(const struct run_migd *r,
                                      const char *name) {
  for (size_t i = 0; i < r->n; i++)
    if (strcmp(r->sv[i].name, name) == 0)
      return &r->sv[i];
  return NULL;
}

/* Whether task id still lives at node s (a node that does not answer
 * runs nothing). */
static bool task_live(const struct run_migd *r, const struct server *s,
                      uint64_t id) {
  char out[MIGD_TASKS_MAX * 160], want[48];
  if (s == NULL || id == 0 || ctl_ps(r, s->port, out, sizeof out) != 0)
    return false;
  snprintf(want, sizeof want, "task%" PRIu64 " ", id);
  for (const char *p = out; (p = strstr(p, want)) != NULL; p++)
    if ((p == out || p[-1] == '\n') &&
        (strncmp(p + strlen(want), "running", 7) == 0 ||
         strncmp(p + strlen(want), "parked", 6) == 0 ||
         strncmp(p + strlen(want), "starting", 8) == 0))
      return true;
  return false;
}

static off_t file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? st.st_size : -1;
}

/* Waits until the task (id at node s) has ended or its origin's console
 * (path) has not grown for RUN_MIGD_QUIET_MS: the last lines it printed
 * may still be on their way to its origin. */
static void wait_end(const struct run_migd *r, const struct server *s,
                     uint64_t id, const char *path, uint64_t deadline) {
  off_t last = file_size(path);
  uint64_t since = now_ms();
  bool live = true;
  while (now_ms() < deadline && now_ms() - since < RUN_MIGD_QUIET_MS) {
    usleep(50000);
    off_t n = file_size(path);
    if (n != last) {
      last = n;
      since = now_ms();
    }
    if (live && !(live = task_live(r, s, id)))
      since = now_ms(); /* ended: its last lines may be on their way */
  }
}

/* Copies the lines "task<ID> TEXT" of the origin's console as TEXT, once
 * the task (id at node s now) has ended or stopped printing. */
static void keep_output(const struct run_migd *r, const char *task,
                        const char *origin, uint64_t oid,
                        const struct server *s, uint64_t id,
                        uint64_t deadline) {
  char path[PATH_MAX + 64], name[SCN_NAME_MAX + 16], line[1024], prefix[40];
  snprintf(name, sizeof name, MIG_OUT_FMT, origin);
  snprintf(path, sizeof path, "%s/%s", r->dir, name);
  wait_end(r, s, id, path, deadline);
  FILE *in = fopen(path, "r");
  scn_task_out_name(task, name, sizeof name);
  snprintf(path, sizeof path, "%s/%s", r->dir, name);
  FILE *out = in ? fopen(path, "w") : NULL;
  snprintf(prefix, sizeof prefix, "task%" PRIu64 " ", oid);
  while (out && fgets(line, sizeof line, in))
    if (strncmp(line, prefix, strlen(prefix)) == 0)
      fputs(line + strlen(prefix), out);
  if (out)
    fclose(out);
  if (in)
    fclose(in);
}

void run_migd_collect(struct run_migd *r) {
  char path[PATH_MAX + 32], name[SCN_NAME_MAX + 1], origin[SCN_NAME_MAX + 1];
  char node[SCN_NAME_MAX + 1];
  uint64_t oid, id, deadline = now_ms() + RUN_MIGD_END_MS;
  if (r == NULL || r->n == 0)
    return;
  snprintf(path, sizeof path, "%s/%s", r->dir, MIG_TASKS);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return; /* the run ended before its census */
  while (fscanf(f, "%31s %31s %" SCNu64 " %31s %" SCNu64, name, origin, &oid,
                node, &id) == 5) {
    if (oid != 0)
      keep_output(r, name, origin, oid, server_of(r, node), id, deadline);
  }
  fclose(f);
}

void run_migd_stop(struct run_migd *r) {
  if (r == NULL)
    return;
  for (size_t i = 0; i < r->n; i++) {
    kill(r->sv[i].pid, SIGKILL); /* its tasks die with it (task.h) */
    waitpid(r->sv[i].pid, NULL, 0);
  }
  for (size_t i = 0; i < MIG_NODES_MAX; i++)
    if (r->sv[i].booted) {
      uint32_t live;
      mach_halt(&r->sv[i].m, &live);
      mach_close(&r->sv[i].m);
    }
  free(r);
}
