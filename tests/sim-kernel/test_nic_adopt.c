/* Unit tests for the NIC's conversations at a failover: the #I table
 * (include/uksim/kdata.h, struct uk_nic) comes with the dead kernel's vfs
 * tables (sim-kernel/adopt.c), and vfs_ip_adopted (vfs/devip.c) decides
 * each conversation's fate given which sockets the machine handed over
 * (sim-kernel/knic.c acts on it).
 *
 * The dead region has a protected process with an announced conversation
 * and a connection, and an unprotected one with a connection, all made
 * through #I itself (clone) and then put in their states as a kernel's
 * host would leave them.  Rules: a moved process's conversations keep
 * their index, generation and state; an unmoved one's are freed (gen
 * moves on); a conversation in use with its socket is kept, without one
 * hung up, a socket without a conversation closed; a torn table is
 * dropped whole, never half adopted.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "adopt.h"
#include "dev.h"
#include "ktab.h"
#include "vfs.h"

static struct uk_kdata *dead, *mine;
static struct adopt_plan *plan;

enum { PA = 0, PB = 1 };             /* protected, unprotected */
enum { LISTEN = 0, CONN_A, CONN_B }; /* conversation indexes */
#define PORT 31003

static void ns_for(uint32_t p) {
  uint32_t ns, root;
  struct uk_qid qd = {.path = 0, .type = UK_QTDIR};
  cr_assert_eq(vfs_ns_new(dead, &ns), 0);
  cr_assert_eq(vfs_chan_new(dead, '/', 0, &qd, &root), 0);
  cr_assert_eq(vfs_proc_attach(dead, p, ns, root, root), 0);
  vfs_ns_unref(dead, ns);
  vfs_chan_unref(dead, root);
}

/* A conversation of process p through #I/tcp/clone, its ctl open as one
 * of p's descriptors, put in state as a host would. */
static void conv_for(uint32_t p, uint32_t want, uint8_t state) {
  uint32_t c;
  int fd;
  cr_assert_eq(vfs_namec(dead, p, "#I/tcp/clone", 12, &c), 0);
  cr_assert_eq(vfs_dev_open(dead, c, VFS_ORDWR), 0);
  cr_assert_eq(vfs_fd_new(dead, p, c, &fd), 0);
  struct uk_conv *v = &dead->vfs.nic.conv[want];
  cr_assert_eq(v->state, UK_CONV_OPEN, "clone did not take %u", want);
  v->state = state;
  v->port = PORT;
  v->owner = p;
  if (state == UK_CONV_CONNECTED) {
    v->raddr = 0x7f000001;
    v->rport = (uint16_t)(50000 + want);
    v->from = LISTEN;
  }
}

static void setup(void) {
  dead = malloc(sizeof *dead);
  mine = malloc(sizeof *mine);
  plan = malloc(sizeof *plan);
  cr_assert(dead && mine && plan);
  vfs_host_set(NULL); /* no sockets here: the tables alone */
  kern_kdata_init(dead, 100, 1, 1ull << 30);
  cr_assert_eq(kern_proc_alloc(dead, "techo", 1001), PA);
  cr_assert_eq(kern_proc_alloc(dead, "other", 1002), PB);
  dead->proc[PA].flags |= UK_PROC_F_PROTECT;
  ns_for(PA);
  ns_for(PB);
  dead->vfs.nic.port_base = 31000;
  dead->vfs.nic.owned = 1;
  conv_for(PA, LISTEN, UK_CONV_ANNOUNCED);
  conv_for(PA, CONN_A, UK_CONV_CONNECTED);
  conv_for(PB, CONN_B, UK_CONV_CONNECTED);
  char why[160];
  cr_assert_eq(vfs_check(dead, why, sizeof why), 0, "%s", why);
  kern_kdata_init(mine, 200, 2, 1ull << 30);
}

static void teardown(void) {
  free(dead);
  free(mine);
  free(plan);
}

TestSuite(nic_adopt, .init = setup, .fini = teardown);

static void check_mine(void) {
  char why[160];
  cr_assert_eq(vfs_check(mine, why, sizeof why), 0, "%s", why);
}

Test(nic_adopt, a_moved_process_keeps_its_conversations, .timeout = 10) {
  cr_assert_eq(adopt_tables(dead, mine, plan), 0);
  cr_assert(!plan->ns_torn, "%s", plan->ns_why);
  for (uint32_t n = LISTEN; n <= CONN_A; n++)
    cr_expect_eq(memcmp(&mine->vfs.nic.conv[n], &dead->vfs.nic.conv[n],
                        sizeof mine->vfs.nic.conv[n]),
                 0, "conversation %u changed", n);
  check_mine();
}

Test(nic_adopt, an_unmoved_process_loses_its_conversation, .timeout = 10) {
  cr_assert_eq(adopt_tables(dead, mine, plan), 0);
  const struct uk_conv *v = &mine->vfs.nic.conv[CONN_B];
  cr_expect_eq(v->state, UK_CONV_FREE);
  cr_expect_eq(v->gen, dead->vfs.nic.conv[CONN_B].gen + 1);
  check_mine();
}

Test(nic_adopt, each_socket_handed_over_meets_its_conversation, .timeout = 10) {
  cr_assert_eq(adopt_tables(dead, mine, plan), 0);
  bool has[UK_CONV_MAX] = {[LISTEN] = true, [CONN_B] = true};
  uint8_t fate[UK_CONV_MAX];
  vfs_ip_adopted(mine, has, fate);
  cr_expect_eq(fate[LISTEN], VFS_IP_KEEP);
  cr_expect_eq(fate[CONN_A], VFS_IP_LOST, "a connection with no socket");
  cr_expect_eq(fate[CONN_B], VFS_IP_CLOSE, "a socket of an ended process");
  cr_expect_eq(fate[3], VFS_IP_NONE);
  cr_expect_eq(mine->vfs.nic.conv[CONN_A].state, UK_CONV_HUNGUP);
  cr_expect_eq(mine->vfs.nic.conv[LISTEN].state, UK_CONV_ANNOUNCED);
  check_mine();
}

/* A hung-up conversation reads as the end of its stream and refuses
 * writes: what its process sees when its socket was lost. */
Test(nic_adopt, a_lost_connection_reads_eof, .timeout = 10) {
  cr_assert_eq(adopt_tables(dead, mine, plan), 0);
  bool has[UK_CONV_MAX] = {[LISTEN] = true};
  uint8_t fate[UK_CONV_MAX];
  vfs_ip_adopted(mine, has, fate);
  uint32_t c;
  char buf[8];
  cr_assert_eq(vfs_namec(mine, PA, "#I/tcp/1/data", 13, &c), 0);
  cr_assert_eq(vfs_dev_open(mine, c, VFS_ORDWR), 0);
  cr_expect_eq(vfs_dev_read(mine, c, buf, sizeof buf, 0), 0);
  cr_expect_eq(vfs_dev_write(mine, c, "x", 1, 0), -EPIPE);
  vfs_chan_unref(mine, c);
  check_mine();
}

Test(nic_adopt, a_torn_table_is_dropped_whole, .timeout = 10) {
  dead->vfs.nic.conv[CONN_A].state = 42;
  cr_assert_eq(adopt_tables(dead, mine, plan), 0);
  cr_expect(plan->ns_torn, "a torn conversation was adopted");
  for (uint32_t n = 0; n < UK_CONV_MAX; n++)
    cr_expect_eq(mine->vfs.nic.conv[n].state, UK_CONV_FREE);
  check_mine();
}

Test(nic_adopt, a_conversation_no_chan_names_is_torn, .timeout = 10) {
  dead->vfs.nic.conv[5].state = UK_CONV_CONNECTED;
  dead->vfs.nic.conv[5].port = PORT;
  cr_assert_eq(adopt_tables(dead, mine, plan), 0);
  cr_expect(plan->ns_torn);
  cr_expect(strstr(plan->ns_why, "conversation 5"), "%s", plan->ns_why);
}
