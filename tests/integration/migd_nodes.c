/* The three-node world of the migration tests (migd_nodes.h). */
#include "migd_nodes.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct mn_node mn[MN_NODES];
static const char *names[MN_NODES] = {"a", "b", "c"};

const char *mn_build(void) {
  const char *r = getenv("UKSIM_BUILD_ROOT");
  cr_assert_not_null(r);
  return r;
}

const char *mn_ctl(struct mn_node *n, int *rc, const char *fmt, ...) {
  char words[512], cmd[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(words, sizeof words, fmt, ap);
  va_end(ap);
  snprintf(cmd, sizeof cmd,
           "%s/sim-kernel/uksim-migd --ctl 'tcp!127.0.0.1!%d' %s 2>&1",
           mn_build(), n->port, words);
  int st;
  const char *out = h_run(cmd, &st);
  *rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
  return out;
}

bool mn_file_has(const char *path, const char *s) {
  char cmd[256];
  int st;
  snprintf(cmd, sizeof cmd, "cat %s", path);
  return strstr(h_run(cmd, &st), s) != NULL;
}

void mn_wait_for(const char *path, const char *s) {
  char cmd[256];
  int st;
  for (int i = 0; i < 1000 && !mn_file_has(path, s); i++)
    usleep(10000);
  snprintf(cmd, sizeof cmd, "tail -5 %s", path);
  cr_assert(mn_file_has(path, s), "%s never printed '%s': %s", path, s,
            h_run(cmd, &st));
}

/* netmsg serve on node i, knowing the other two as peers. */
static void start_netmsg(int i) {
  char self[64], peer[2][96];
  struct mn_node *n = &mn[i];
  snprintf(self, sizeof self, "tcp!127.0.0.1!%d", n->netmsg);
  for (int k = 1; k < MN_NODES; k++) {
    const struct mn_node *p = &mn[(i + k) % MN_NODES];
    snprintf(peer[k - 1], sizeof peer[k - 1], "%s=tcp!127.0.0.1!%d", p->name,
             p->netmsg);
  }
  char *args[] = {"serve", "--node", (char *)n->name, "--peer",
                  peer[0], "--peer", peer[1],         self};
  cr_assert_eq(mach_spawn(&n->m, "netmsg", args, 8, "netmsg", 0, NULL), 0,
               "netmsg serve: %s", n->m.error);
}

/* uksim-migd of node i, advertised to its netmsg serve. */
static void start_migd(int i) {
  struct mn_node *n = &mn[i];
  char exe[512], port[16], netmsg[64];
  snprintf(exe, sizeof exe, "%s/sim-kernel/uksim-migd", mn_build());
  snprintf(port, sizeof port, "%d", n->port);
  snprintf(netmsg, sizeof netmsg, "tcp!127.0.0.1!%d", n->netmsg);
  n->migd = fork();
  cr_assert_geq(n->migd, 0);
  if (n->migd == 0) {
    freopen(n->out, "w", stdout);
    freopen(n->err, "w", stderr);
    freopen("/dev/null", "r", stdin);
    execl(exe, exe, "--port", port, "--name", n->name, "--netmsg", netmsg,
          (char *)NULL);
    _exit(127);
  }
  mn_wait_for(n->err, "advertised as 'migd'");
}

static void boot(int i, int base, const char *server, const char *service) {
  struct mn_node *n = &mn[i];
  struct mach_opts o;
  mach_opts_default(&o);
  n->name = names[i];
  n->netmsg = base + 2 * i;
  n->port = base + 2 * i + 1;
  snprintf(n->mname, sizeof n->mname, "mn-%d-%s", (int)getpid(), n->name);
  snprintf(o.name, sizeof o.name, "%s", n->mname);
  snprintf(n->out, sizeof n->out, "/tmp/mn-%d-%s.out", (int)getpid(), n->name);
  snprintf(n->err, sizeof n->err, "/tmp/mn-%d-%s.err", (int)getpid(), n->name);
  cr_assert_eq(mach_boot(&n->m, &o), 0, "boot: %s", n->m.error);
  char *args[] = {"--service", (char *)service};
  if (server[0])
    cr_assert_eq(mach_spawn(&n->m, server, args, 2, service,
                            MACH_SPAWN_REGISTERED, NULL),
                 0, "%s: %s", server, n->m.error);
}

void mn_start(const char *server, const char *service) {
  /* Ports probed free, not picked by the pid alone: another test's or
   * program's listener there made a node fail to start.  A block of 8:
   * 6 for the nodes, the rest for a test's own (test_migrate_console). */
  int base = h_free_ports(22000, 8000, 8);
  cr_assert_neq(base, 0, "no 8 free ports in 22000-29999");
  for (int i = 0; i < MN_NODES; i++)
    boot(i, base, server, service);
  for (int i = 0; i < MN_NODES; i++)
    start_netmsg(i);
  for (int i = 0; i < MN_NODES; i++)
    start_migd(i);
}

void mn_stop_migd(struct mn_node *n) {
  if (n->migd > 0) {
    kill(n->migd, SIGKILL);
    waitpid(n->migd, NULL, 0);
  }
  n->migd = 0;
}

int mn_running(struct mn_node *n) {
  int rc, count = 0;
  if (n->migd <= 0)
    return 0;
  const char *out = mn_ctl(n, &rc, "ps");
  for (const char *p = out; (p = strstr(p, " running ")); p++)
    count++;
  return count;
}

void mn_stop(void) {
  for (int i = 0; i < MN_NODES; i++) {
    mn_stop_migd(&mn[i]);
    if (mn[i].m.pid > 0) {
      uint32_t live;
      mach_halt(&mn[i].m, &live);
      mach_close(&mn[i].m);
    }
    if (!getenv("MN_KEEP"))
      unlink(mn[i].out);
    if (!getenv("MN_KEEP"))
      unlink(mn[i].err);
  }
}
