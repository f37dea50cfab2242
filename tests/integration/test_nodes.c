/* Nodes (issue 16): three real machines on this host, each listening for
 * the others on a loopback port; exportfs on one, import on another (its
 * /dev with the console, its /srv, a server mounted in it); lookups of
 * services by name; a wrong key; a node killed under its peer. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "nodes_util.h"
#include "uksim/ap.h"
#include "uksim/kvs.h"
#include "uksim/node.h"
#include "uksim_paths.h"

#define NODES 3

static struct node nd[NODES];

/* PORTS_PER_TEST ports in a row in 12000-19999, probed free (ports.h):
 * below the ephemeral range (32768 and up, where any connection's own
 * port could take one of ours: CI saw a node fail to boot there) and
 * below the machines' NIC ranges (from 20000, mach_client.c). */
#define PORTS_PER_TEST 8

static int port_for(int i) {
  static int base;
  if (base == 0)
    base = h_free_ports(12000, 8000, PORTS_PER_TEST);
  cr_assert_neq(base, 0, "no %d free loopback ports in a row", PORTS_PER_TEST);
  return base + i;
}

static void boot_node(struct node *n, int i, const char *keyfile) {
  char name[64];
  snprintf(name, sizeof name, "node-%d-%d", (int)getpid(), i);
  nu_boot(n, name, port_for(i), keyfile);
}

Test(nodes, import_another_nodes_dev_srv_and_a_mounted_server, .timeout = 300) {
  char at[64], out[128], cmds[512], buf[1024];
  int st;
  for (int i = 0; i < NODES; i++)
    boot_node(&nd[i], i, NULL);
  cr_assert_eq(mach_spawn(&nd[0].m, "ramfs", NULL, 0, "ramfs",
                          MACH_SPAWN_REGISTERED, NULL),
               0, "ramfs: %s", nd[0].m.error);
  snprintf(at, sizeof at, "tcp!127.0.0.1!%d", port_for(3));
  snprintf(out, sizeof out, "/tmp/%s.exportfs", nd[0].name);
  /* A's exporter shapes its namespace first: ramfs on /n, a file in it. */
  pid_t ex = nu_exportfs(
      &nd[0], NULL, "mount -c /srv/ramfs /n; echo made on a > /n/f", at, out);

  /* B: A's /dev on /n; a write to its cons shows on A's console. */
  snprintf(cmds, sizeof cmds,
           "import %s /dev /n; ls /n; echo hello from b > /n/cons", at);
  const char *o = nu_sh(&st, nd[1].name, cmds);
  cr_expect_eq(st, 0, "%s", o);
  cr_expect(strstr(o, "cons\n"), "A's /dev lists its console: %s", o);
  nu_console(&nd[0], buf, sizeof buf);
  cr_expect(strstr(buf, "hello from b\n"), "A's console shows it: %s", buf);

  /* C: A's /srv on /mnt (the entry names A's service) and A's ramfs, as A
   * mounted it, on /tmp: read A's file, write one back. */
  snprintf(cmds, sizeof cmds,
           "import %s /srv /mnt; cat /mnt/ramfs; echo; import -c %s /n /tmp; "
           "cat /tmp/f; echo from c > /tmp/g; cat /tmp/g",
           at, at);
  o = nu_sh(&st, nd[2].name, cmds);
  cr_expect_eq(st, 0, "%s", o);
  cr_expect_str_eq(o, "ramfs\nmade on a\nfrom c\n");

  /* A path the exporter does not have: a clear error, nothing mounted. */
  snprintf(cmds, sizeof cmds, "import %s /nowhere /n", at);
  o = nu_sh(&st, nd[2].name, cmds);
  cr_expect_eq(st, 1, "%s", o);
  cr_expect(strstr(o, "No such file or directory"), "%s", o);

  kill(ex, SIGTERM);
  waitpid(ex, &st, 0);
  unlink(out);
  for (int i = 0; i < NODES; i++)
    nu_halt(&nd[i]);
}

Test(nodes, lookup_finds_services_by_name_on_each_node, .timeout = 300) {
  char err[NODE_ERR_MAX];
  struct node_found f;
  for (int i = 0; i < NODES; i++)
    boot_node(&nd[i], i, NULL);
  cr_assert_eq(
      mach_spawn(&nd[1].m, "kvs", NULL, 0, "kvs", MACH_SPAWN_REGISTERED, NULL),
      0, "kvs: %s", nd[1].m.error);
  /* A asks B and C where kvs is: B has it, C has not. */
  node_conn *b = node_dial(nd[1].addr, NULL, nd[0].name, err, sizeof err);
  cr_assert_not_null(b, "dial B: %s", err);
  cr_expect_str_eq(node_peer(b), nd[1].name);
  cr_assert_eq(node_lookup(b, "kvs", &f, err, sizeof err), 0, "%s", err);
  cr_expect_str_eq(f.node, nd[1].name);
  cr_expect_lt(f.index, 32u);
  cr_expect_geq(f.gen, 1u);
  node_conn *c = node_dial(nd[2].addr, NULL, nd[0].name, err, sizeof err);
  cr_assert_not_null(c, "dial C: %s", err);
  cr_expect_eq(node_lookup(c, "kvs", &f, err, sizeof err), -ENOENT);
  cr_expect(strstr(err, "has no service 'kvs'"), "%s", err);
  /* Several lookups on one connection, then the CLI's. */
  cr_expect_eq(node_lookup(b, "kvs", &f, err, sizeof err), 0, "%s", err);
  node_close(b);
  node_close(c);
  char cmd[256];
  int st;
  snprintf(cmd, sizeof cmd, "%s node %s lookup kvs 2>&1", UKSIM_EXE_DEFAULT,
           nd[1].addr);
  const char *o = h_run(cmd, &st);
  cr_expect_eq(st, 0, "%s", o);
  cr_expect(strstr(o, "kvs on node "), "%s", o);
  for (int i = 0; i < NODES; i++)
    nu_halt(&nd[i]);
}

Test(nodes, a_wrong_key_is_refused_clearly, .timeout = 300) {
  char k1[64], k2[64], err[NODE_ERR_MAX];
  uint8_t key1[NODE_KEY_LEN], key2[NODE_KEY_LEN];
  snprintf(k1, sizeof k1, "/tmp/node-key1-%d", (int)getpid());
  snprintf(k2, sizeof k2, "/tmp/node-key2-%d", (int)getpid());
  nu_write_file(k1, "the shared secret\n");
  nu_write_file(k2, "another secret\n");
  cr_assert_eq(node_key_load(k1, key1), 0);
  cr_assert_eq(node_key_load(k2, key2), 0);
  boot_node(&nd[0], 0, k1);
  boot_node(&nd[1], 1, NULL);
  node_conn *c = node_dial(nd[0].addr, key2, "intruder", err, sizeof err);
  cr_expect_null(c);
  cr_expect(strstr(err, "wrong key"), "%s", err);
  c = node_dial(nd[0].addr, NULL, "keyless", err, sizeof err);
  cr_expect_null(c);
  cr_expect(strstr(err, "wrong key (it has a key: give it)"), "%s", err);
  /* A keyed dialer and an unkeyed node: the dialer refuses the node. */
  c = node_dial(nd[1].addr, key1, "keyed", err, sizeof err);
  cr_expect_null(c);
  cr_expect(strstr(err, "wrong key"), "%s", err);
  /* The right key still gets in: nothing was broken by the refusals. */
  c = node_dial(nd[0].addr, key1, "friend", err, sizeof err);
  cr_assert_not_null(c, "%s", err);
  cr_expect_str_eq(node_peer(c), nd[0].name);
  node_close(c);
  /* Beyond loopback without a key the machine does not start. */
  struct mach_opts o;
  mach_client m;
  mach_opts_default(&o);
  snprintf(o.name, sizeof o.name, "node-%d-open", (int)getpid());
  snprintf(o.node_port, sizeof o.node_port, "0.0.0.0!%d", port_for(3));
  cr_expect_neq(mach_boot(&m, &o), 0, "an open port without a key booted");
  unlink(k1);
  unlink(k2);
  nu_halt(&nd[0]);
  nu_halt(&nd[1]);
}

Test(nodes, a_node_killed_under_its_peer_is_an_error_not_a_hang,
     .timeout = 300) {
  char err[NODE_ERR_MAX];
  struct node_found f;
  for (int i = 0; i < NODES; i++)
    boot_node(&nd[i], i, NULL);
  node_conn *c = node_dial(nd[2].addr, NULL, nd[0].name, err, sizeof err);
  cr_assert_not_null(c, "%s", err);
  cr_expect_eq(node_lookup(c, "kvs", &f, err, sizeof err), -ENOENT);
  /* C's machine dies (its kernel and processes follow it). */
  cr_assert_gt(nd[2].m.pid, 0);
  kill(nd[2].m.pid, SIGKILL);
  waitpid(nd[2].m.pid, NULL, 0);
  int r = node_lookup(c, "kvs", &f, err, sizeof err);
  cr_expect(r == -ECONNRESET || r == -EPIPE, "%d %s", r, err);
  node_close(c);
  cr_expect_null(node_dial(nd[2].addr, NULL, "late", err, sizeof err));
  cr_expect(strstr(err, "refused"), "%s", err);
  /* The others serve on. */
  c = node_dial(nd[1].addr, NULL, nd[0].name, err, sizeof err);
  cr_assert_not_null(c, "%s", err);
  node_close(c);
  mach_close(&nd[2].m);
  nu_halt(&nd[0]);
  nu_halt(&nd[1]);
}

/* Remote calls (servers/netmsg.c) ----------------------------------------- */

/* Starts `netmsg serve` on n at port_for(4 + i); returns its address. */
static void start_netmsg(struct node *n, int i, const char *keyfile, char *addr,
                         size_t len) {
  char port[64];
  snprintf(addr, len, "tcp!127.0.0.1!%d", port_for(4 + i));
  snprintf(port, sizeof port, "%s", addr);
  char *a[] = {"serve", "--node", n->name, "--key", (char *)keyfile, port};
  char *plain[] = {"serve", "--node", n->name, port};
  cr_assert_eq(mach_spawn(&n->m, "netmsg", keyfile ? a : plain, keyfile ? 6 : 4,
                          "netmsg", 0, NULL),
               0, "netmsg serve: %s", n->m.error);
}

/* Starts a proxy on n for service svc at addr, registered as `as`; it may
 * take a moment for the serve to listen, so a refusal is retried. */
static int start_proxy(struct node *n, const char *addr, const char *svc,
                       const char *as, const char *keyfile) {
  char *a[] = {"proxy",         "--as",       (char *)as, "--key",
               (char *)keyfile, (char *)addr, (char *)svc};
  char *plain[] = {"proxy", "--as", (char *)as, (char *)addr, (char *)svc};
  int r = -1;
  for (int i = 0; i < 50 && r != 0; i++) {
    if (i > 0)
      usleep(100000);
    r = mach_spawn(&n->m, "netmsg", keyfile ? a : plain, keyfile ? 7 : 5, as,
                   MACH_SPAWN_REGISTERED, NULL);
  }
  return r;
}

/* Boots n nodes, kvs on the first. */
static void boot_with_kvs(int n) {
  for (int i = 0; i < n; i++)
    boot_node(&nd[i], i, NULL);
  cr_assert_eq(
      mach_spawn(&nd[0].m, "kvs", NULL, 0, "kvs", MACH_SPAWN_REGISTERED, NULL),
      0, "kvs: %s", nd[0].m.error);
}

Test(nodes, a_remote_service_is_called_as_a_local_one, .timeout = 600) {
  char addr[64];
  boot_with_kvs(NODES);
  start_netmsg(&nd[0], 0, NULL, addr, sizeof addr);
  /* The network message server answers lookups as the node port does. */
  char err[NODE_ERR_MAX];
  struct node_found f;
  node_conn *nc = NULL;
  for (int i = 0; i < 100 && nc == NULL; i++) /* until it listens */
    if ((nc = node_dial(addr, NULL, "t", err, sizeof err)) == NULL)
      usleep(50000);
  cr_assert_not_null(nc, "%s", err);
  cr_expect_eq(node_lookup(nc, "kvs", &f, err, sizeof err), 0, "%s", err);
  cr_expect_str_eq(f.node, nd[0].name);
  cr_expect_lt(node_lookup(nc, "nope", &f, err, sizeof err), 0);
  cr_expect(strstr(err, "has no service 'nope'"), "%s", err);
  node_close(nc);
  /* B and C call A's kvs as "kvsa", with values of up to 200 KB (many
   * chunks each way), and check every answer against their own model. */
  int64_t w[2];
  for (int i = 1; i < NODES; i++) {
    cr_assert_eq(start_proxy(&nd[i], addr, "kvs", "kvsa", NULL), 0, "proxy: %s",
                 nd[i].m.error);
    char *load[] = {"--service",     "kvsa",   "--count",         "200",
                    "--keys",        "20",     "--value-size",    "1..200000",
                    "--check-state", "--name", i == 1 ? "b" : "c"};
    w[i - 1] = h_spawn(&nd[i].m, "kvsload", load, 11, "kvsload", NULL);
  }
  for (int i = 0; i < 2; i++)
    cr_expect_eq(h_wait(&nd[i + 1].m, w[i]), 0, "kvsload on node %d", i + 1);
  for (int i = 0; i < NODES; i++)
    nu_halt(&nd[i]);
}

/* This test process as an application of node n (UKSIM_FD). */
static void attach_to(struct node *n) {
  int proc, fd;
  char v[16];
  cr_assert_eq(mach_attach(&n->m, "tester", -1, 0, &proc, &fd), 0, "attach: %s",
               n->m.error);
  snprintf(v, sizeof v, "%d", fd);
  setenv("UKSIM_FD", v, 1);
}

/* A kvs put of value v under key k through service svc: the status. */
static int put(uint32_t svc, const char *k, const char *v) {
  uk_ica ctl, data;
  ap_result res;
  cr_assert_eq(ica_create(sizeof(struct kvs_ctl), KABI_ICA_CONTROL, &ctl), 0);
  cr_assert_eq(ica_create(strlen(v), KABI_ICA_DATA, &data), 0);
  struct kvs_ctl *c = ctl.base;
  c->keylen = (uint32_t)strlen(k);
  c->vallen = strlen(v);
  memcpy(c->key, k, strlen(k));
  memcpy(data.base, v, strlen(v));
  cr_assert_eq(ap_call(svc, KVS_PUT, &ctl, &data, &res), 0);
  if (res.ctl.base)
    ica_release(&res.ctl);
  if (res.data.base)
    ica_release(&res.data);
  return res.status;
}

Test(nodes, a_node_killed_mid_call_is_a_clear_error_not_a_hang,
     .timeout = 600) {
  char addr[64];
  uint32_t svc;
  boot_with_kvs(2);
  start_netmsg(&nd[0], 0, NULL, addr, sizeof addr);
  cr_assert_eq(start_proxy(&nd[1], addr, "kvs", "kvsa", NULL), 0, "proxy: %s",
               nd[1].m.error);
  /* A load that is mid-call when A dies: it must end, not hang. */
  char *load[] = {"--service", "kvsa",         "--count",
                  "2000",      "--value-size", "100000"};
  int64_t w = h_spawn(&nd[1].m, "kvsload", load, 6, "kvsload", NULL);
  attach_to(&nd[1]);
  cr_assert_eq(ap_lookup("kvsa", &svc), 0);
  cr_expect_eq(put(svc, "k", "before"), 0, "a call through the proxy");
  usleep(300000);
  kill(nd[0].m.pid, SIGKILL);
  waitpid(nd[0].m.pid, NULL, 0);
  cr_expect_eq(put(svc, "k", "after"), -EHOSTDOWN, "A is gone");
  cr_expect_neq(h_wait(&nd[1].m, w), 0, "the load saw the error and ended");
  mach_close(&nd[0].m);
  nu_halt(&nd[1]);
}

Test(nodes, a_proxy_with_the_wrong_key_does_not_start, .timeout = 300) {
  char k1[64], k2[64], addr[64];
  snprintf(k1, sizeof k1, "/tmp/node-nkey1-%d", (int)getpid());
  snprintf(k2, sizeof k2, "/tmp/node-nkey2-%d", (int)getpid());
  nu_write_file(k1, "one\n");
  nu_write_file(k2, "two\n");
  boot_with_kvs(2);
  start_netmsg(&nd[0], 0, k1, addr, sizeof addr);
  cr_expect_neq(start_proxy(&nd[1], addr, "kvs", "kvsa", k2), 0);
  cr_expect_eq(start_proxy(&nd[1], addr, "kvs", "kvsa", k1), 0, "%s",
               nd[1].m.error);
  unlink(k1);
  unlink(k2);
  for (int i = 0; i < 2; i++)
    nu_halt(&nd[i]);
}
