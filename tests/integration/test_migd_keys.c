/* Keys of real uksim-migd nodes (sim-kernel/migd.h "The handshake"): a
 * server beyond loopback without --key refuses to start; nodes with the
 * same key file move a task; a node with another key, or a control client
 * without one, is refused with words saying so on both sides, and the task
 * keeps running at its origin only. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "migd_nodes.h"

struct node {
  pid_t pid;
  int port;
  char key[96]; /* its key file, "" for none */
  char log[96]; /* its stderr */
};

static int port_base;
static pid_t started[8];
static int nstarted;
static char key1[96], key2[96], empty[96];

/* A shell command: its output, *rc its exit status. */
static const char *sh(int *rc, const char *cmd) {
  int st;
  const char *out = h_run(cmd, &st);
  *rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
  return out;
}

/* The control client of node n with key file `key` ("": none). */
static const char *ctl_key(struct node *n, const char *key, int *rc,
                           const char *cmd) {
  char line[1024];
  snprintf(line, sizeof line,
           "%s/sim-kernel/uksim-migd %s%s --ctl 'tcp!127.0.0.1!%d' %s 2>&1",
           mn_build(), key[0] ? "--key " : "", key, n->port, cmd);
  return sh(rc, line);
}

static const char *ctl(struct node *n, int *rc, const char *cmd) {
  return ctl_key(n, n->key, rc, cmd);
}

static void write_file(char *path, size_t len, const char *name,
                       const char *text) {
  snprintf(path, len, "/tmp/test_migd_keys.%d.%s", getpid(), name);
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs(text, f);
  fclose(f);
}

static void node_start(struct node *n, int k, const char *key) {
  char port[16], exe[512];
  n->port = port_base + k;
  snprintf(n->key, sizeof n->key, "%s", key);
  snprintf(n->log, sizeof n->log, "/tmp/test_migd_keys.%d.%d.err", getpid(), k);
  snprintf(port, sizeof port, "%d", n->port);
  snprintf(exe, sizeof exe, "%s/sim-kernel/uksim-migd", mn_build());
  n->pid = fork();
  if (n->pid == 0) {
    freopen("/dev/null", "w", stdout);
    freopen(n->log, "w", stderr);
    execl(exe, exe, "--port", port, key[0] ? "--key" : NULL, key, (char *)NULL);
    _exit(127);
  }
  if (nstarted < 8)
    started[nstarted++] = n->pid;
  for (int i = 0; i < 200; i++) {
    int rc;
    ctl(n, &rc, "ps");
    if (rc == 0)
      return;
    usleep(10000);
  }
  cr_assert_fail("node %d did not start", k);
}

static void node_stop(struct node *n) {
  kill(n->pid, SIGKILL);
  waitpid(n->pid, NULL, 0);
  unlink(n->log);
}

static int running(struct node *n) {
  int rc, count = 0;
  const char *out = ctl(n, &rc, "ps");
  for (const char *p = out; (p = strstr(p, " running ")); p++)
    count++;
  return count;
}

static int logged(struct node *n, const char *s) {
  char cmd[128];
  int rc;
  snprintf(cmd, sizeof cmd, "cat %s", n->log);
  return strstr(sh(&rc, cmd), s) != NULL;
}

static void start_task(struct node *a) {
  char cmd[1024];
  int rc;
  snprintf(cmd, sizeof cmd,
           "start %s/apps/mtask --threads 2 --limit 0 --period 10", mn_build());
  const char *out = ctl(a, &rc, cmd);
  cr_assert_eq(rc, 0, "%s", out);
}

static const char *move(struct node *a, struct node *b, int *rc) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "move 1 'tcp!127.0.0.1!%d' eager", b->port);
  return ctl(a, rc, cmd);
}

static void setup(void) {
  if (getenv("UKSIM_UNDER_VALGRIND"))
    cr_skip_test("migration is real time; it cannot run under valgrind");
  port_base = h_free_ports(22000, 8000, 8);
  cr_assert_neq(port_base, 0, "no 8 free loopback ports in a row");
  write_file(key1, sizeof key1, "key1", "one secret\n");
  write_file(key2, sizeof key2, "key2", "another secret\n");
  write_file(empty, sizeof empty, "empty", "");
}

static void teardown(void) {
  for (int i = 0; i < nstarted; i++)
    kill(started[i], SIGKILL);
  unlink(key1);
  unlink(key2);
  unlink(empty);
}

TestSuite(migd_keys, .init = setup, .fini = teardown, .timeout = 120);

Test(migd_keys, beyond_loopback_a_key_is_required) {
  char cmd[512];
  int rc;
  snprintf(cmd, sizeof cmd, "%s/sim-kernel/uksim-migd --port '0.0.0.0!%d' 2>&1",
           mn_build(), port_base);
  const char *out = sh(&rc, cmd);
  cr_assert_eq(rc, 2, "%s", out);
  cr_assert(strstr(out, "beyond loopback a --key FILE is required"), "%s", out);
  snprintf(cmd, sizeof cmd, "%s/sim-kernel/uksim-migd --port 1 --key %s 2>&1",
           mn_build(), empty);
  out = sh(&rc, cmd);
  cr_assert_eq(rc, 2, "%s", out);
  cr_assert(strstr(out, "empty"), "%s", out);
}

Test(migd_keys, a_control_client_must_prove_the_key) {
  struct node a;
  node_start(&a, 0, key1);
  int rc;
  const char *out = ctl_key(&a, "", &rc, "ps");
  cr_assert_neq(rc, 0);
  cr_assert(strstr(out, "give --key FILE"), "%s", out);
  out = ctl_key(&a, key2, &rc, "ps");
  cr_assert_neq(rc, 0);
  cr_assert(strstr(out, "wrong key"), "%s", out);
  cr_assert(logged(&a, "wrong key"));
  node_stop(&a);
}

Test(migd_keys, same_key_moves_another_key_keeps_the_task_at_origin) {
  struct node a, b, c;
  node_start(&a, 0, key1);
  node_start(&b, 1, key1);
  node_start(&c, 2, key2);
  start_task(&a);
  int rc;
  const char *out = move(&a, &c, &rc);
  cr_assert_neq(rc, 0);
  cr_assert(strstr(out, "wrong key"), "%s", out);
  cr_assert(logged(&c, "wrong key"), "C says nothing of the key");
  cr_assert_eq(running(&a), 1);
  cr_assert_eq(running(&c), 0);
  out = move(&a, &b, &rc);
  cr_assert_eq(rc, 0, "%s", out);
  cr_assert_eq(running(&a), 0);
  cr_assert_eq(running(&b), 1);
  node_stop(&a);
  node_stop(&b);
  node_stop(&c);
}
