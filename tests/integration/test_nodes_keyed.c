/* Keyed import (issue 16): three real machines on loopback.  A runs an
 * exporter that demands a key (`uksim exportfs --key`) and a network
 * message server that does (`netmsg serve --key`).  B, booted with the
 * same secret as its --node-key, imports A's /dev through its kernel (which
 * proves the key with 9P's Tauth) and writes to A's console, and calls A's
 * kvs through a keyed proxy.  C, booted with another secret, then with
 * none, is refused with a clear error and mounts nothing. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "uksim_paths.h"

struct node {
  mach_client m;
  char name[64];
};

static struct node nd[3];
static char key_a[64], key_c[64], ex_out[128];

static int port_for(int i) {
  return 41000 + (int)(getpid() % 4000) * 4 + i;
}

static void write_file(const char *path, const char *s) {
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs(s, f);
  fclose(f);
}

static void boot_node(struct node *n, const char *tag, const char *keyfile) {
  struct mach_opts o;
  mach_opts_default(&o);
  snprintf(n->name, sizeof n->name, "keyed-%d-%s", (int)getpid(), tag);
  snprintf(o.name, sizeof o.name, "%s", n->name);
  if (keyfile)
    snprintf(o.node_key, sizeof o.node_key, "%s", keyfile);
  cr_assert_eq(mach_boot(&n->m, &o), 0, "boot %s: %s", n->name, n->m.error);
}

static void halt_node(struct node *n) {
  uint32_t live = 99;
  cr_assert_eq(mach_halt(&n->m, &live), 0, "halt: %s", n->m.error);
  cr_expect_eq(live, 0, "%u ICAs leaked at shutdown", live);
  mach_close(&n->m);
}

/* A keyed `uksim exportfs` of a fresh namespace of node n at `at`. */
static pid_t start_exportfs(struct node *n, const char *at) {
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    int fd = open(ex_out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 1);
    dup2(fd, 2);
    execl(UKSIM_EXE_DEFAULT, "uksim", "exportfs", "--name", n->name, "--key",
          key_a, "-", at, (char *)NULL);
    _exit(127);
  }
  char buf[512] = "";
  for (int i = 0; i < 3000; i++) { /* 30 s: under valgrind too */
    FILE *f = fopen(ex_out, "r");
    size_t len = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
      fclose(f);
    buf[len] = '\0';
    if (strstr(buf, "serving at"))
      return pid;
    usleep(10000);
  }
  cr_assert_fail("exportfs did not start: %s", buf);
  return -1;
}

static const char *sh(int *st, const struct node *n, const char *cmds) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s sh --name %s -c '%s' 2>&1", UKSIM_EXE_DEFAULT,
           n->name, cmds);
  const char *out = h_run(cmd, st);
  *st = WIFEXITED(*st) ? WEXITSTATUS(*st) : 128;
  return out;
}

static void console_of(struct node *n, char *buf, size_t len) {
  const struct uk_kdata *kd;
  cr_assert_eq(mach_kdata(&n->m, &kd, NULL), 0, "%s", n->m.error);
  const struct uk_cons *c = &kd->vfs.cons;
  size_t k = 0;
  for (uint32_t i = 0; i < c->out_len && k + 1 < len; i++)
    buf[k++] = c->out[(c->out_head + i) % UK_CONS_OUT];
  buf[k] = '\0';
  mach_kdata_unmap(kd);
}

/* A proxy on n for A's kvs at addr, registered as kvsa: the spawn's status
 * (its dial and handshake come before it registers). */
static int start_proxy(struct node *n, const char *addr, const char *keyfile) {
  char *a[] = {"proxy",         "--as",       "kvsa", "--key",
               (char *)keyfile, (char *)addr, "kvs"};
  int r = -1;
  for (int i = 0; i < 50 && r != 0; i++) { /* until A's serve listens */
    if (i > 0)
      usleep(100000);
    r = mach_spawn(&n->m, "netmsg", a, 7, "kvsa", MACH_SPAWN_REGISTERED, NULL);
    if (r != 0 && strstr(n->m.error, "wrong key"))
      break;
  }
  return r;
}

static void setup(void) {
  snprintf(key_a, sizeof key_a, "/tmp/keyed-a-%d", (int)getpid());
  snprintf(key_c, sizeof key_c, "/tmp/keyed-c-%d", (int)getpid());
  snprintf(ex_out, sizeof ex_out, "/tmp/keyed-ex-%d", (int)getpid());
  write_file(key_a, "the secret of a and b\n");
  write_file(key_c, "not their secret\n");
}

static void teardown(void) {
  unlink(key_a);
  unlink(key_c);
  unlink(ex_out);
}

TestSuite(nodes_keyed, .init = setup, .fini = teardown);

Test(nodes_keyed, import_proves_the_node_key_to_a_keyed_exporter,
     .timeout = 600) {
  char at[64], serve_at[64], cmds[512], buf[2048];
  int st;
  boot_node(&nd[0], "a", key_a);
  boot_node(&nd[1], "b", key_a);
  boot_node(&nd[2], "c", key_c);
  snprintf(at, sizeof at, "tcp!127.0.0.1!%d", port_for(0));
  pid_t ex = start_exportfs(&nd[0], at);

  /* B holds A's secret: A's /dev on /n, a line on A's console. */
  snprintf(cmds, sizeof cmds,
           "import %s /dev /n; ls /n; echo keyed hello from b > /n/cons", at);
  const char *o = sh(&st, &nd[1], cmds);
  cr_expect_eq(st, 0, "%s", o);
  cr_expect(strstr(o, "cons\n"), "A's /dev lists its console: %s", o);
  console_of(&nd[0], buf, sizeof buf);
  cr_expect(strstr(buf, "keyed hello from b\n"), "A's console: %s", buf);

  /* C holds another secret: refused, said so, nothing mounted. */
  snprintf(cmds, sizeof cmds, "import %s /dev /n", at);
  o = sh(&st, &nd[2], cmds);
  cr_expect_eq(st, 1, "%s", o);
  cr_expect(strstr(o, "wants a key this node does not prove"), "%s", o);
  o = sh(&st, &nd[2], "ls /n");
  cr_expect(strstr(o, "cons") == NULL, "nothing mounted: %s", o);

  /* C with no key at all: the exporter's "authentication required". */
  halt_node(&nd[2]);
  boot_node(&nd[2], "c2", NULL);
  o = sh(&st, &nd[2], cmds);
  cr_expect_eq(st, 1, "%s", o);
  cr_expect(strstr(o, "wants a key this node does not prove"), "%s", o);

  kill(ex, SIGTERM);
  waitpid(ex, &st, 0);

  /* netmsg: A's keyed serve; B's proxy with the key calls A's kvs, C's
   * with another key does not start and says why. */
  cr_assert_eq(
      mach_spawn(&nd[0].m, "kvs", NULL, 0, "kvs", MACH_SPAWN_REGISTERED, NULL),
      0, "kvs: %s", nd[0].m.error);
  snprintf(serve_at, sizeof serve_at, "tcp!127.0.0.1!%d", port_for(1));
  char *serve[] = {"serve", "--node", nd[0].name, "--key", key_a, serve_at};
  cr_assert_eq(mach_spawn(&nd[0].m, "netmsg", serve, 6, "netmsg", 0, NULL), 0,
               "netmsg serve: %s", nd[0].m.error);
  cr_expect_eq(start_proxy(&nd[1], serve_at, key_a), 0, "%s", nd[1].m.error);
  char *load[] = {"--service", "kvsa", "--count",      "50",
                  "--keys",    "5",    "--check-state"};
  int64_t w = h_spawn(&nd[1].m, "kvsload", load, 7, "kvsload", NULL);
  cr_expect_eq(h_wait(&nd[1].m, w), 0, "kvsload through the keyed proxy");
  cr_expect_neq(start_proxy(&nd[2], serve_at, key_c), 0,
                "a proxy with the wrong key started");
  for (int i = 0; i < 3; i++)
    halt_node(&nd[i]);
}

Test(nodes_keyed, a_keyed_node_imports_from_an_exporter_without_a_key,
     .timeout = 300) {
  char at[64], cmds[256];
  int st;
  boot_node(&nd[0], "open", NULL);
  boot_node(&nd[1], "k", key_a);
  snprintf(at, sizeof at, "tcp!127.0.0.1!%d", port_for(2));
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    int fd = open(ex_out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 1);
    dup2(fd, 2);
    execl(UKSIM_EXE_DEFAULT, "uksim", "exportfs", "--name", nd[0].name, "-", at,
          (char *)NULL);
    _exit(127);
  }
  /* Its Tauth answers "no authentication required": the attach goes on. */
  snprintf(cmds, sizeof cmds, "import %s /dev /n; ls /n", at);
  const char *o = "";
  for (int i = 0; i < 100; i++) { /* until the exporter listens */
    o = sh(&st, &nd[1], cmds);
    if (st == 0 || !strstr(o, "refused"))
      break;
    usleep(100000);
  }
  cr_expect_eq(st, 0, "%s", o);
  cr_expect(strstr(o, "cons\n"), "%s", o);
  kill(pid, SIGTERM);
  waitpid(pid, &st, 0);
  halt_node(&nd[0]);
  halt_node(&nd[1]);
}
