/* Finding the destination's migration server through the network message
 * server (issue 16; sim-kernel/migd.h, migd_names.c): three real machines
 * a, b and c (migd_nodes.h).  A task is moved a -> b -> c by node NAME,
 * never by address; a name no node has, and a node whose migration server
 * is gone, are clear errors that leave the task running on exactly one
 * node. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "migd.h"
#include "migd_nodes.h"
#include "uksim/node.h"

static void setup(void) {
  if (getenv("UKSIM_UNDER_VALGRIND"))
    cr_skip_test("migration is real time; it cannot run under valgrind");
}

TestSuite(migrate_names, .init = setup, .fini = mn_stop, .timeout = 240);

Test(migrate_names, a_nodes_migration_server_is_found_by_its_name) {
  char err[NODE_ERR_MAX], addr[64];
  struct node_found f;
  mn_start("", "");
  /* Asked of a's network message server, about b: b's answers. */
  snprintf(addr, sizeof addr, "tcp!127.0.0.1!%d", mn[0].netmsg);
  node_conn *c = node_dial(addr, NULL, "tester", err, sizeof err);
  cr_assert_not_null(c, "%s", err);
  cr_assert_eq(node_lookup_on(c, "b", MIGD_SERVICE, &f, err, sizeof err), 0,
               "%s", err);
  snprintf(addr, sizeof addr, "tcp!127.0.0.1!%d", mn[1].port);
  cr_expect_str_eq(f.addr, addr);
  cr_expect_str_eq(f.node, "b");
  /* Its own, and a node it does not know. */
  cr_assert_eq(node_lookup_on(c, "a", MIGD_SERVICE, &f, err, sizeof err), 0,
               "%s", err);
  snprintf(addr, sizeof addr, "tcp!127.0.0.1!%d", mn[0].port);
  cr_expect_str_eq(f.addr, addr);
  cr_expect_eq(node_lookup_on(c, "z", MIGD_SERVICE, &f, err, sizeof err),
               -EHOSTUNREACH);
  cr_expect(strstr(err, "knows no node 'z'"), "%s", err);
  /* A second process cannot take the name from b's migration server. */
  snprintf(addr, sizeof addr, "tcp!127.0.0.1!%d", mn[1].netmsg);
  node_conn *b = node_dial(addr, NULL, "squatter", err, sizeof err);
  cr_assert_not_null(b, "%s", err);
  cr_expect_eq(
      node_advertise(b, MIGD_SERVICE, "tcp!127.0.0.1!1", err, sizeof err),
      -EEXIST);
  node_close(b);
  node_close(c);
}

Test(migrate_names, a_task_moves_a_b_c_by_node_name) {
  int rc;
  mn_start("", "");
  const char *o = mn_ctl(
      &mn[0], &rc, "start %s/apps/mtask --threads 2 --limit 0 --period 10",
      mn_build());
  cr_assert_eq(rc, 0, "%s", o);
  mn_wait_for(mn[0].out, "task1 t0 3\n");
  o = mn_ctl(&mn[0], &rc, "move 1 b eager");
  cr_assert_eq(rc, 0, "%s", o);
  cr_expect_eq(mn_running(&mn[0]), 0);
  cr_expect_eq(mn_running(&mn[1]), 1);
  o = mn_ctl(&mn[1], &rc, "move 1 c precopy");
  cr_assert_eq(rc, 0, "%s", o);
  cr_expect_eq(mn_running(&mn[1]), 0);
  cr_expect_eq(mn_running(&mn[2]), 1);
  /* Its console is still a's. */
  mn_ctl(&mn[0], &rc, "input 1 'at-c\n'");
  mn_wait_for(mn[0].out, "task1 echo at-c");

  /* A name no node has: said, and the task stays where it is. */
  o = mn_ctl(&mn[2], &rc, "move 1 z eager");
  cr_expect_neq(rc, 0, "%s", o);
  cr_expect(strstr(o, "not found through the network message server"), "%s", o);
  cr_expect(mn_file_has(mn[2].err, "knows no node 'z'"), "c's notice");
  cr_expect_eq(mn_running(&mn[2]), 1);

  /* b's migration server dies: its advertisement goes with it. */
  mn_stop_migd(&mn[1]);
  usleep(200000); /* b's netmsg sees the connection close */
  o = mn_ctl(&mn[2], &rc, "move 1 b eager");
  cr_expect_neq(rc, 0, "%s", o);
  cr_expect(mn_file_has(mn[2].err, "has no service 'migd'"), "c's notice");
  cr_expect_eq(mn_running(&mn[2]), 1, "the task runs on c, and only there");
  cr_expect_eq(mn_running(&mn[0]), 0);
}
