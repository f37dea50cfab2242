/* Bad input to the bulk page path and the reserve of a migration server
 * (migrate.proto: MigPages.bulk, MigCreate.reserve; sim-kernel/migd.c):
 * a hostile origin talks the protocol to a real uksim-migd on loopback.
 * Each bad message is refused with its error and leaves the server up
 * with no task. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "migd.h"
#include "harness.h"
#include "migwire.h"
#include "uksim/task.h"

static pid_t node;
static int port;
static const char *root; /* the build tree, UKSIM_BUILD_ROOT */

/* The node's `ps`: its output (static). */
static const char *ps(int *rc) {
  static char out[4096];
  char cmd[768];
  snprintf(cmd, sizeof cmd,
           "%s/sim-kernel/uksim-migd --ctl 'tcp!127.0.0.1!%d' ps 2>&1", root,
           port);
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p);
  size_t n = fread(out, 1, sizeof out - 1, p);
  out[n] = 0;
  int st = pclose(p);
  *rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
  return out;
}

static void start_node(void) {
  if (getenv("UKSIM_UNDER_VALGRIND"))
    cr_skip_test("migration is real time; it cannot run under valgrind");
  root = getenv("UKSIM_BUILD_ROOT");
  cr_assert_not_null(root);
  /* A port probed free, below the ephemeral range. */
  port = h_free_ports(22000, 8000, 1);
  cr_assert_neq(port, 0, "no free port in 22000-29999");
  char exe[512], p[16];
  snprintf(exe, sizeof exe, "%s/sim-kernel/uksim-migd", root);
  snprintf(p, sizeof p, "%d", port);
  fflush(NULL);
  node = fork();
  cr_assert_geq(node, 0);
  if (node == 0) {
    freopen("/dev/null", "w", stdout);
    freopen("/dev/null", "w", stderr);
    execl(exe, exe, "--port", p, (char *)NULL);
    _exit(127);
  }
  for (int i = 0, rc = 1; i < 300 && rc != 0; i++) {
    ps(&rc);
    if (rc == 0)
      return;
    usleep(10000);
  }
  cr_assert_fail("uksim-migd did not start");
}

static void stop_node(void) {
  if (node > 0) {
    kill(node, SIGKILL);
    waitpid(node, NULL, 0);
  }
}

TestSuite(migrate_bulk, .init = start_node, .fini = stop_node, .timeout = 60);

/* A connection to the node, past the handshake. */
static int dial(void) {
  char addr[64];
  snprintf(addr, sizeof addr, "tcp!127.0.0.1!%d", port);
  int fd = mig_dial(addr, NULL, NULL, 0);
  cr_assert_geq(fd, 0);
  return fd;
}

/* Create of `size` bytes by method, with `n` reserve numbers. */
static int create(uint64_t size, MigMethod method, uint64_t *reserve,
                  size_t n) {
  char prog[512];
  snprintf(prog, sizeof prog, "%s/apps/mtask", root);
  MigCreate c = MIG_CREATE__INIT;
  c.reserve = reserve;
  c.n_reserve = n;
  c.method = method;
  c.size = size;
  c.program = prog;
  c.origin = "tcp!127.0.0.1!1";
  MigMsg m = MIG_MSG__INIT;
  m.m_case = MIG_MSG__M_CREATE;
  m.create = &c;
  int fd = dial();
  cr_assert_eq(mig_send(fd, &m), 0);
  return fd;
}

/* A bulk Pages header (and nothing behind it yet). */
static void bulk_header(int fd, uint64_t off, uint64_t bulk, int inline_too) {
  static uint8_t page[TASK_PAGE];
  MigMsg m = MIG_MSG__INIT;
  MigPages p = MIG_PAGES__INIT;
  p.offset = off;
  p.bulk = bulk;
  if (inline_too) {
    p.data.data = page;
    p.data.len = sizeof page;
  }
  m.m_case = MIG_MSG__M_PAGES;
  m.pages = &p;
  cr_assert_eq(mig_send(fd, &m), 0);
}

/* The server's Confirm(err) (after its Ready, if it got that far). */
static int refusal(int fd) {
  MigMsg *m = mig_recv(fd);
  if (m && m->m_case == MIG_MSG__M_READY) {
    mig_msg__free_unpacked(m, NULL);
    m = mig_recv(fd);
  }
  cr_assert_not_null(m, "no answer");
  cr_assert_eq(m->m_case, MIG_MSG__M_CONFIRM);
  int err = m->confirm->err;
  mig_msg__free_unpacked(m, NULL);
  close(fd);
  return err;
}

/* The server is up and, once it has seen its peer go (up to 5 s on a
 * busy host), holds no task: a half-made one is dropped, never kept. */
static void no_task_and_up(void) {
  int rc;
  const char *out = "";
  for (int i = 0; i < 50; i++) {
    usleep(100000);
    out = ps(&rc);
    cr_assert_eq(rc, 0, "the server is gone: %s", out);
    if (!strstr(out, " running ") && !strstr(out, " parked "))
      return;
  }
  cr_assert_fail("a task is left after 5 s: %s", out);
}

Test(migrate_bulk, bulk_pages_outside_the_region_are_refused) {
  int fd = create(1 << 20, MIG_METHOD__MIG_EAGER, NULL, 0);
  bulk_header(fd, 1 << 20, TASK_PAGE, 0);
  cr_expect_eq(refusal(fd), -ERANGE);
  fd = create(1 << 20, MIG_METHOD__MIG_EAGER, NULL, 0);
  bulk_header(fd, 0, (1 << 20) + TASK_PAGE, 0);
  cr_expect_eq(refusal(fd), -ERANGE);
  no_task_and_up();
}

Test(migrate_bulk, bulk_pages_over_the_limit_or_mixed_are_refused) {
  uint64_t big = 2ull * MIG_BULK_MAX;
  int fd = create(big, MIG_METHOD__MIG_EAGER, NULL, 0);
  bulk_header(fd, 0, MIG_BULK_MAX + TASK_PAGE, 0);
  cr_expect_eq(refusal(fd), -EPROTO);
  fd = create(1 << 20, MIG_METHOD__MIG_EAGER, NULL, 0);
  bulk_header(fd, 0, TASK_PAGE, 1); /* bytes inline and behind */
  cr_expect_eq(refusal(fd), -EPROTO);
  fd = create(1 << 20, MIG_METHOD__MIG_EAGER, NULL, 0);
  bulk_header(fd, 0, 100, 0); /* not whole pages */
  cr_expect_eq(refusal(fd), -EPROTO);
  no_task_and_up();
}

Test(migrate_bulk, a_truncated_bulk_leaves_no_task) {
  int fd = create(1 << 20, MIG_METHOD__MIG_EAGER, NULL, 0);
  bulk_header(fd, 0, 2 * TASK_PAGE, 0);
  char some[100] = {0};
  cr_assert_eq(write(fd, some, sizeof some), (ssize_t)sizeof some);
  close(fd); /* the origin vanishes inside the raw bytes */
  no_task_and_up();
}

Test(migrate_bulk, a_bad_reserve_is_refused) {
  uint64_t outside[] = {0, 2 << 20};
  int fd = create(1 << 20, MIG_METHOD__MIG_EAGER, outside, 2);
  cr_expect_eq(refusal(fd), -ERANGE);
  uint64_t odd[] = {0, TASK_PAGE, TASK_PAGE};
  fd = create(1 << 20, MIG_METHOD__MIG_EAGER, odd, 3);
  cr_expect_eq(refusal(fd), -EPROTO);
  uint64_t fine[] = {0, TASK_PAGE};
  fd = create(1 << 20, MIG_METHOD__MIG_DEMAND, fine, 2); /* must stay empty */
  cr_expect_eq(refusal(fd), -EPROTO);
  no_task_and_up();
}
