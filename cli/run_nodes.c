/* run_nodes.c: the peer nodes of a scenario (run_nodes.h).  Each is
 * booted, given its servers, its network message server and its
 * exporter, and each is checked to be serving before the run starts, so
 * what the scenario's processes find there does not depend on timing. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "machine.h"
#include "run_nodes.h"
#include "uksim/node.h"
#include "uksim/xalloc.h"
#include "uksim_paths.h"

struct peer {
  mach_client m;
  bool booted;
  pid_t exportfs;
  char name[64];
};

struct run_nodes {
  size_t n;
  struct peer p[SCN_NODES_MAX];
};

static int spawn_servers(struct peer *p, const struct scn_node *nd) {
  char addr[64];
  snprintf(addr, sizeof addr, "tcp!127.0.0.1!%u", nd->port);
  char *serve[] = {"serve", "--node", (char *)nd->name, addr};
  if (mach_spawn(&p->m, "kvs", NULL, 0, "kvs", MACH_SPAWN_REGISTERED, NULL) <
          0 ||
      mach_spawn(&p->m, "ramfs", NULL, 0, "ramfs", MACH_SPAWN_REGISTERED,
                 NULL) < 0 ||
      mach_spawn(&p->m, "netmsg", serve, 4, "netmsg", 0, NULL) < 0)
    return -1;
  return 0;
}

/* Runs exportfs once; its pid once it serves, or -1 when it ended (ramfs
 * may not have posted /srv/ramfs yet). */
static pid_t exportfs_once(struct peer *p, const struct scn_node *nd,
                           const char *log) {
  char addr[64], cmds[128];
  int fd[2];
  snprintf(addr, sizeof addr, "tcp!127.0.0.1!%u", nd->port + 1);
  snprintf(cmds, sizeof cmds,
           "mount -c /srv/ramfs /n; echo written on %s > /n/note", nd->name);
  if (pipe2(fd, O_CLOEXEC) < 0)
    return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fd[1], 1);
    int out = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    dup2(out, 2);
    execl(UKSIM_EXE_DEFAULT, "uksim", "exportfs", "--name", p->name, "-c", cmds,
          "-", addr, (char *)NULL);
    _exit(127);
  }
  close(fd[1]);
  char buf[128];
  ssize_t n = pid < 0 ? -1 : read(fd[0], buf, sizeof buf - 1);
  close(fd[0]);
  if (n > 0 && memmem(buf, (size_t)n, "serving at", 10) != NULL)
    return pid;
  if (pid > 0)
    waitpid(pid, NULL, 0);
  return -1;
}

/* Lines of a log shown after a failure. */
#define RUN_NODE_LOG_TAIL 8

void run_node_log(const char *dir, const char *name, char *path, size_t len) {
  snprintf(path, len, "%s/node-%s.log", dir, name);
}

void run_node_log_show(const char *path) {
  char line[256], tail[RUN_NODE_LOG_TAIL][256];
  size_t n = 0;
  FILE *f = fopen(path, "r");
  while (f && fgets(line, sizeof line, f))
    snprintf(tail[n++ % RUN_NODE_LOG_TAIL], sizeof tail[0], "%s", line);
  if (f)
    fclose(f);
  size_t first = n > RUN_NODE_LOG_TAIL ? n - RUN_NODE_LOG_TAIL : 0;
  for (size_t k = first; k < n; k++)
    fprintf(stderr, "  %s", tail[k % RUN_NODE_LOG_TAIL]);
}

static int peer_start(struct peer *p, const struct scn_node *nd,
                      const char *dir) {
  struct mach_opts o;
  mach_opts_default(&o);
  snprintf(p->name, sizeof p->name, "scn-%d-%s", (int)getpid(), nd->name);
  snprintf(o.name, sizeof o.name, "%s", p->name);
  run_node_log(dir, nd->name, o.log, sizeof o.log);
  p->exportfs = -1;
  if (mach_boot(&p->m, &o) < 0)
    return -1;
  p->booted = true;
  if (spawn_servers(p, nd) < 0)
    return -1;
  for (int i = 0; i < 100 && p->exportfs < 0; i++) { /* 10 s at most */
    if (i > 0)
      usleep(100000);
    p->exportfs = exportfs_once(p, nd, o.log);
  }
  return p->exportfs < 0 ? -1 : 0;
}

static void peer_stop(struct peer *p) {
  uint32_t live;
  if (p->exportfs > 0) {
    kill(p->exportfs, SIGTERM);
    waitpid(p->exportfs, NULL, 0);
  }
  if (p->booted) {
    mach_halt(&p->m, &live);
    mach_close(&p->m);
  }
}

struct run_nodes *run_nodes_start(const struct scn *s, const char *dir,
                                  char *why, size_t len) {
  struct run_nodes *n = xcalloc(1, sizeof *n);
  for (size_t i = 0; i < s->nnodes; i++) {
    n->n = i + 1;
    if (s->nodes[i].port == 0) /* for migration only: run_migd.c's */
      continue;
    if (peer_start(&n->p[i], &s->nodes[i], dir) < 0) {
      char log[PATH_MAX];
      run_node_log(dir, s->nodes[i].name, log, sizeof log);
      fprintf(stderr, "uksim run: node %s's log ends:\n", s->nodes[i].name);
      run_node_log_show(log);
      snprintf(why, len, "node %s did not start (port %u or %u in use?)",
               s->nodes[i].name, s->nodes[i].port, s->nodes[i].port + 1u);
      run_nodes_stop(n);
      return NULL;
    }
  }
  return n;
}

void run_nodes_stop(struct run_nodes *n) {
  if (n == NULL)
    return;
  for (size_t i = 0; i < n->n; i++)
    peer_stop(&n->p[i]);
  free(n);
}
