/* Keyed import (issue 16): three real machines on loopback.  A runs an
 * exporter that demands a key (`uksim exportfs --key`) and a network
 * message server that does (`netmsg serve --key`).  B, booted with the
 * same secret as its --node-key, imports A's /dev through its kernel (which
 * proves the key with 9P's Tauth) and writes to A's console, and calls A's
 * kvs through a keyed proxy.  C, booted with another secret, then with
 * none, is refused with a clear error and mounts nothing. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "nodes_util.h"
#include "uksim_paths.h"

static struct node nd[3];
static char key_a[64], key_c[64], ex_out[128];

/* Port i of a block of 4 probed free once, as test_nodes.c's. */
static int port_for(int i) {
  static int base;
  if (base == 0)
    base = h_free_ports(12000, 8000, 4);
  cr_assert_neq(base, 0, "no 4 free ports in 12000-19999");
  return base + i;
}

static void boot_node(struct node *n, const char *tag, const char *keyfile) {
  char name[64];
  snprintf(name, sizeof name, "keyed-%d-%s", (int)getpid(), tag);
  nu_boot(n, name, 0, keyfile);
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
  nu_write_file(key_a, "the secret of a and b\n");
  nu_write_file(key_c, "not their secret\n");
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
  pid_t ex = nu_exportfs(&nd[0], key_a, NULL, at, ex_out);

  /* B holds A's secret: A's /dev on /n, a line on A's console. */
  snprintf(cmds, sizeof cmds,
           "import %s /dev /n; ls /n; echo keyed hello from b > /n/cons", at);
  const char *o = nu_sh(&st, nd[1].name, cmds);
  cr_expect_eq(st, 0, "%s", o);
  cr_expect(strstr(o, "cons\n"), "A's /dev lists its console: %s", o);
  nu_console(&nd[0], buf, sizeof buf);
  cr_expect(strstr(buf, "keyed hello from b\n"), "A's console: %s", buf);

  /* C holds another secret: refused, said so, nothing mounted. */
  snprintf(cmds, sizeof cmds, "import %s /dev /n", at);
  o = nu_sh(&st, nd[2].name, cmds);
  cr_expect_eq(st, 1, "%s", o);
  cr_expect(strstr(o, "wants a key this node does not prove"), "%s", o);
  o = nu_sh(&st, nd[2].name, "ls /n");
  cr_expect(strstr(o, "cons") == NULL, "nothing mounted: %s", o);

  /* C with no key at all: the exporter's "authentication required". */
  nu_halt(&nd[2]);
  boot_node(&nd[2], "c2", NULL);
  o = nu_sh(&st, nd[2].name, cmds);
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
    nu_halt(&nd[i]);
}

Test(nodes_keyed, a_keyed_node_imports_from_an_exporter_without_a_key,
     .timeout = 300) {
  char at[64], cmds[256];
  int st;
  boot_node(&nd[0], "open", NULL);
  boot_node(&nd[1], "k", key_a);
  snprintf(at, sizeof at, "tcp!127.0.0.1!%d", port_for(2));
  pid_t pid = nu_exportfs(&nd[0], NULL, NULL, at, ex_out);
  /* Its Tauth answers "no authentication required": the attach goes on. */
  snprintf(cmds, sizeof cmds, "import %s /dev /n; ls /n", at);
  const char *o = nu_sh(&st, nd[1].name, cmds);
  cr_expect_eq(st, 0, "%s", o);
  cr_expect(strstr(o, "cons\n"), "%s", o);
  kill(pid, SIGTERM);
  waitpid(pid, &st, 0);
  nu_halt(&nd[0]);
  nu_halt(&nd[1]);
}
