/* Finding the destination's migration server through the network message
 * server (issue 16; sim-kernel/migd.h, migd_names.c): three real machines
 * a, b and c, each with its network message server (netmsg serve, the
 * other two as --peer) and a uksim-migd advertised to it.  A task is moved
 * a -> b -> c by node NAME, never by address; a name no node has, and a
 * node whose migration server is gone, are clear errors that leave the task
 * running on exactly one node. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "migd.h"
#include "uksim/node.h"

#define NODES 3

struct node {
  mach_client m;
  char mname[64];     /* the machine's name */
  const char *name;   /* the node's name: a, b, c */
  int netmsg, port;   /* netmsg serve's port and uksim-migd's */
  pid_t migd;
  char out[96], err[96]; /* uksim-migd's stdout (task consoles), stderr */
};

static struct node nd[NODES];
static const char *names[NODES] = {"a", "b", "c"};
static int port_base;

static const char *build(void) {
  const char *r = getenv("UKSIM_BUILD_ROOT");
  cr_assert_not_null(r);
  return r;
}

static const char *ctl(struct node *n, int *rc, const char *fmt, ...) {
  char words[512], cmd[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(words, sizeof words, fmt, ap);
  va_end(ap);
  snprintf(cmd, sizeof cmd,
           "%s/sim-kernel/uksim-migd --ctl 'tcp!127.0.0.1!%d' %s 2>&1",
           build(), n->port, words);
  int st;
  const char *out = h_run(cmd, &st);
  *rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
  return out;
}

static bool file_has(const char *path, const char *s) {
  char cmd[256];
  int st;
  snprintf(cmd, sizeof cmd, "cat %s", path);
  return strstr(h_run(cmd, &st), s) != NULL;
}

static void wait_for(const char *path, const char *s) {
  for (int i = 0; i < 1000 && !file_has(path, s); i++)
    usleep(10000);
  cr_assert(file_has(path, s), "%s never printed '%s'", path, s);
}

/* netmsg serve on node i, knowing the other two as peers. */
static void start_netmsg(int i) {
  char self[64], peer[2][96];
  struct node *n = &nd[i];
  snprintf(self, sizeof self, "tcp!127.0.0.1!%d", n->netmsg);
  for (int k = 1; k < NODES; k++) {
    const struct node *p = &nd[(i + k) % NODES];
    snprintf(peer[k - 1], sizeof peer[k - 1], "%s=tcp!127.0.0.1!%d", p->name,
             p->netmsg);
  }
  char *args[] = {"serve",  "--node", (char *)n->name, "--peer", peer[0],
                  "--peer", peer[1],  self};
  cr_assert_eq(mach_spawn(&n->m, "netmsg", args, 8, "netmsg", 0, NULL), 0,
               "netmsg serve: %s", n->m.error);
}

/* uksim-migd of node i, advertised to its netmsg serve. */
static void start_migd(int i) {
  struct node *n = &nd[i];
  char exe[512], port[16], netmsg[64];
  snprintf(exe, sizeof exe, "%s/sim-kernel/uksim-migd", build());
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
  wait_for(n->err, "advertised as 'migd'");
}

static void start_nodes(void) {
  for (int i = 0; i < NODES; i++) {
    struct node *n = &nd[i];
    struct mach_opts o;
    mach_opts_default(&o);
    n->name = names[i];
    n->netmsg = port_base + 2 * i;
    n->port = port_base + 2 * i + 1;
    snprintf(n->mname, sizeof n->mname, "mign-%d-%s", (int)getpid(), n->name);
    snprintf(o.name, sizeof o.name, "%s", n->mname);
    snprintf(n->out, sizeof n->out, "/tmp/mign-%d-%s.out", (int)getpid(),
             n->name);
    snprintf(n->err, sizeof n->err, "/tmp/mign-%d-%s.err", (int)getpid(),
             n->name);
    cr_assert_eq(mach_boot(&n->m, &o), 0, "boot: %s", n->m.error);
  }
  for (int i = 0; i < NODES; i++)
    start_netmsg(i);
  for (int i = 0; i < NODES; i++)
    start_migd(i);
}

static void stop_migd(struct node *n) {
  if (n->migd > 0) {
    kill(n->migd, SIGKILL);
    waitpid(n->migd, NULL, 0);
  }
  n->migd = 0;
}

/* Tasks running on node n now ("ps" lines in state running). */
static int running(struct node *n) {
  int rc, count = 0;
  if (n->migd <= 0)
    return 0;
  const char *out = ctl(n, &rc, "ps");
  for (const char *p = out; (p = strstr(p, " running ")); p++)
    count++;
  return count;
}

static void setup(void) {
  if (getenv("UKSIM_UNDER_VALGRIND"))
    cr_skip_test("migration is real time; it cannot run under valgrind");
  port_base = 30000 + (getpid() * 11) % 20000;
}

static void teardown(void) {
  for (int i = 0; i < NODES; i++) {
    stop_migd(&nd[i]);
    if (nd[i].m.pid > 0) {
      uint32_t live;
      mach_halt(&nd[i].m, &live);
      mach_close(&nd[i].m);
    }
    unlink(nd[i].out);
    unlink(nd[i].err);
  }
}

TestSuite(migrate_names, .init = setup, .fini = teardown, .timeout = 240);

Test(migrate_names, a_nodes_migration_server_is_found_by_its_name) {
  char err[NODE_ERR_MAX], addr[64];
  struct node_found f;
  start_nodes();
  /* Asked of a's network message server, about b: b's answers. */
  snprintf(addr, sizeof addr, "tcp!127.0.0.1!%d", nd[0].netmsg);
  node_conn *c = node_dial(addr, NULL, "tester", err, sizeof err);
  cr_assert_not_null(c, "%s", err);
  cr_assert_eq(node_lookup_on(c, "b", MIGD_SERVICE, &f, err, sizeof err), 0,
               "%s", err);
  snprintf(addr, sizeof addr, "tcp!127.0.0.1!%d", nd[1].port);
  cr_expect_str_eq(f.addr, addr);
  cr_expect_str_eq(f.node, "b");
  /* Its own, and a node it does not know. */
  cr_assert_eq(node_lookup_on(c, "a", MIGD_SERVICE, &f, err, sizeof err), 0,
               "%s", err);
  snprintf(addr, sizeof addr, "tcp!127.0.0.1!%d", nd[0].port);
  cr_expect_str_eq(f.addr, addr);
  cr_expect_eq(node_lookup_on(c, "z", MIGD_SERVICE, &f, err, sizeof err),
               -EHOSTUNREACH);
  cr_expect(strstr(err, "knows no node 'z'"), "%s", err);
  /* A second process cannot take the name from b's migration server. */
  snprintf(addr, sizeof addr, "tcp!127.0.0.1!%d", nd[1].netmsg);
  node_conn *b = node_dial(addr, NULL, "squatter", err, sizeof err);
  cr_assert_not_null(b, "%s", err);
  cr_expect_eq(node_advertise(b, MIGD_SERVICE, "tcp!127.0.0.1!1", err,
                              sizeof err),
               -EEXIST);
  node_close(b);
  node_close(c);
}

Test(migrate_names, a_task_moves_a_b_c_by_node_name) {
  int rc;
  start_nodes();
  const char *o = ctl(&nd[0], &rc,
                      "start %s/apps/mtask --threads 2 --limit 0 --period 10",
                      build());
  cr_assert_eq(rc, 0, "%s", o);
  wait_for(nd[0].out, "task1 t0 3\n");
  o = ctl(&nd[0], &rc, "move 1 b eager");
  cr_assert_eq(rc, 0, "%s", o);
  cr_expect_eq(running(&nd[0]), 0);
  cr_expect_eq(running(&nd[1]), 1);
  o = ctl(&nd[1], &rc, "move 1 c precopy");
  cr_assert_eq(rc, 0, "%s", o);
  cr_expect_eq(running(&nd[1]), 0);
  cr_expect_eq(running(&nd[2]), 1);
  /* Its console is still a's. */
  o = ctl(&nd[0], &rc, "input 1 'at-c\n'");
  wait_for(nd[0].out, "task1 echo at-c");

  /* A name no node has: said, and the task stays where it is. */
  o = ctl(&nd[2], &rc, "move 1 z eager");
  cr_expect_neq(rc, 0, "%s", o);
  cr_expect(strstr(o, "not found through the network message server"), "%s",
            o);
  cr_expect(file_has(nd[2].err, "knows no node 'z'"), "c's notice");
  cr_expect_eq(running(&nd[2]), 1);

  /* b's migration server dies: its advertisement goes with it. */
  stop_migd(&nd[1]);
  usleep(200000); /* b's netmsg sees the connection close */
  o = ctl(&nd[2], &rc, "move 1 b eager");
  cr_expect_neq(rc, 0, "%s", o);
  cr_expect(file_has(nd[2].err, "has no service 'migd'"), "c's notice");
  cr_expect_eq(running(&nd[2]), 1, "the task runs on c, and only there");
  cr_expect_eq(running(&nd[0]), 0);
}
