/* Process migration end to end (sim-kernel/migd.h): real uksim-migd nodes
 * on loopback TCP, a real multi-threaded task (apps/mtask) that counts and
 * echoes its input, moved A -> B -> C with its console at A; the origin or
 * the destination killed at each step of the protocol, by eager copy and by
 * pre-copy (demand paging's: test_migrate_demand.c); a wrong key; hostile
 * images.  Every check ends by asking each node which tasks run there: the
 * task must run on exactly one node (or, when its origin died before the
 * destination held a whole image, on none and never on two). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "migd.h"
#include "migwire.h"
#include "uksim/task.h"

struct node {
  pid_t pid;
  int port;
  char out[64];
  char key[128]; /* --key: a key file's path, "": none */
};

/* Every node started, killed by the suite's fini even after a failed
 * assertion. */
static pid_t started[16];
static int nstarted;

static int port_base;

static const char *build(void) {
  const char *r = getenv("UKSIM_BUILD_ROOT");
  cr_assert_not_null(r);
  return r;
}

static char *run(int *rc, const char *fmt, ...) {
  char cmd[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p);
  static char out[8192];
  size_t n = fread(out, 1, sizeof out - 1, p);
  out[n] = 0;
  int st = pclose(p);
  if (rc)
    *rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
  return out;
}

static char *ctl(struct node *n, int *rc, const char *cmd) {
  return run(rc,
             "%s/sim-kernel/uksim-migd %s%s "
             "--ctl 'tcp!127.0.0.1!%d' %s",
             build(), n->key[0] ? "--key " : "", n->key, n->port, cmd);
}

static void node_start(struct node *n, int k, const char *opt,
                       const char *val) {
  n->port = port_base + k;
  snprintf(n->key, sizeof n->key, "%s",
           opt && strcmp(opt, "--key") == 0 ? val : "");
  snprintf(n->out, sizeof n->out, "/tmp/test_migrate.%d.%d", getpid(), k);
  char port[16], exe[512];
  snprintf(port, sizeof port, "%d", n->port);
  snprintf(exe, sizeof exe, "%s/sim-kernel/uksim-migd", build());
  n->pid = fork();
  if (n->pid == 0) {
    freopen(n->out, "w", stdout);
    freopen("/dev/null", "r", stdin);
    execl(exe, exe, "--port", port, "--name", n->out + 18, opt ? opt : NULL,
          val, (char *)NULL);
    _exit(127);
  }
  if (nstarted < 16)
    started[nstarted++] = n->pid;
  for (int i = 0; i < 200; i++) {
    int rc;
    ctl(n, &rc, "ps 2>/dev/null");
    if (rc == 0)
      return;
    usleep(10000);
  }
  cr_assert_fail("node %d did not start", k);
}

static void node_stop(struct node *n) {
  if (n->pid > 0) {
    kill(n->pid, SIGKILL);
    waitpid(n->pid, NULL, 0);
  }
  n->pid = 0;
}

static int alive(struct node *n) {
  int st;
  if (n->pid <= 0)
    return 0;
  if (waitpid(n->pid, &st, WNOHANG) == n->pid) {
    n->pid = 0;
    return 0;
  }
  return 1;
}

/* Tasks that run on node n now (0 for a dead node). */
static int running(struct node *n) {
  if (!alive(n))
    return 0;
  int rc, count = 0;
  char *out = ctl(n, &rc, "ps");
  for (char *p = out; (p = strstr(p, " running ")); p++)
    count++;
  return count;
}

static void start_task(struct node *a, const char *limit) {
  char cmd[1024];
  int rc;
  snprintf(cmd, sizeof cmd,
           "start %s/apps/mtask --threads 2 --limit %s --period 10", build(),
           limit);
  char *out = ctl(a, &rc, cmd);
  cr_assert_eq(rc, 0, "%s", out);
  cr_assert(strstr(out, "task=1"), "%s", out);
}

/* Checks node n's console file: each counter of task1 counts next[i],
 * next[i] + 1, ... with no gap and no repeat.  Returns the last count of
 * t0 and leaves next[] after the last counts. */
static long counts_from(struct node *n, long next[2]) {
  FILE *f = fopen(n->out, "r");
  cr_assert_not_null(f);
  char line[256];
  while (fgets(line, sizeof line, f)) {
    int i;
    long v;
    if (sscanf(line, "task1 t%d %ld", &i, &v) != 2)
      continue;
    cr_assert(i == 0 || i == 1);
    cr_assert_eq(v, next[i], "%s: t%d %ld, expected %ld", n->out, i, v,
                 next[i]);
    next[i]++;
  }
  fclose(f);
  return next[0] - 1;
}

static long counts(struct node *n) {
  long next[2] = {1, 1};
  return counts_from(n, next);
}

static int has_line(struct node *n, const char *s) {
  char *out = run(NULL, "cat %s", n->out);
  return strstr(out, s) != NULL;
}

static void wait_for(struct node *n, const char *s) {
  for (int i = 0; i < 500 && !has_line(n, s); i++)
    usleep(10000);
  cr_assert(has_line(n, s), "%s never printed '%s'", n->out, s);
}

static void grows(struct node *n) {
  long before = counts(n);
  usleep(300000);
  cr_assert_gt(counts(n), before, "%s: the task does not run", n->out);
}

/* Migration is real time (MIG_PARK_TIMEOUT_MS, MIG_PEER_TIMEOUT_MS): under
 * valgrind three nodes and their tasks run tens of times slower and time
 * out by themselves (tests/ci-skips.txt); test_task runs the library
 * there. */
static void setup(void) {
  if (getenv("UKSIM_UNDER_VALGRIND"))
    cr_skip_test("migration is real time; it cannot run under valgrind");
  port_base = h_free_ports(22000, 8000, 8);
  cr_assert_neq(port_base, 0, "no 8 free loopback ports in a row");
}

static void teardown(void) {
  for (int i = 0; i < nstarted; i++)
    kill(started[i], SIGKILL);
}

TestSuite(migrate, .init = setup, .fini = teardown, .timeout = 120);

Test(migrate, eager_twice_with_console_at_origin) {
  struct node a, b, c;
  node_start(&a, 0, NULL, NULL);
  node_start(&b, 1, NULL, NULL);
  node_start(&c, 2, NULL, NULL);
  start_task(&a, "0");
  wait_for(&a, "task1 t0 3\n");
  ctl(&a, NULL, "input 1 'before\n'");
  int rc;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "move 1 'tcp!127.0.0.1!%d' eager", b.port);
  char *out = ctl(&a, &rc, cmd);
  cr_assert_eq(rc, 0, "%s", out);
  cr_assert_eq(running(&a), 0);
  cr_assert_eq(running(&b), 1);
  long at_b = counts(&a);
  wait_for(&a, "echo before");
  ctl(&a, NULL, "input 1 'at-b\n'");
  wait_for(&a, "task1 echo at-b");
  snprintf(cmd, sizeof cmd, "move 1 'tcp!127.0.0.1!%d' eager", c.port);
  out = ctl(&b, &rc, cmd);
  cr_assert_eq(rc, 0, "%s", out);
  cr_assert_eq(running(&b), 0);
  cr_assert_eq(running(&c), 1);
  ctl(&a, NULL, "input 1 'at-c\n'");
  wait_for(&a, "task1 echo at-c");
  grows(&a);
  cr_assert_gt(counts(&a), at_b);
  cr_assert(!has_line(&b, "task") && !has_line(&c, "task"),
            "console output leaked to B or C");
  node_stop(&a);
  node_stop(&b);
  node_stop(&c);
}

/* A -> B, then B -> C with C lost after Confirm: B restarts the task from
 * its duplicate, and its console is A's again, output and input, with no
 * count lost or doubled (it went to B's own console before). */
Test(migrate, a_restart_from_the_duplicate_keeps_the_console_at_origin) {
  struct node a, b, c;
  node_start(&a, 0, NULL, NULL);
  node_start(&b, 1, NULL, NULL);
  node_start(&c, 2, "--die-at", "confirm");
  start_task(&a, "0");
  wait_for(&a, "task1 t0 3\n");
  int rc;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "move 1 'tcp!127.0.0.1!%d' eager", b.port);
  char *out = ctl(&a, &rc, cmd);
  cr_assert_eq(rc, 0, "%s", out);
  snprintf(cmd, sizeof cmd, "move 1 'tcp!127.0.0.1!%d' eager", c.port);
  out = ctl(&b, &rc, cmd);
  cr_assert_neq(rc, 0, "%s", out);
  cr_assert_eq(running(&b), 1, "%s", out);
  cr_assert_eq(running(&a) + running(&c), 0);
  grows(&a);
  ctl(&a, NULL, "input 1 'after-restart\n'");
  wait_for(&a, "task1 echo after-restart");
  cr_assert(!has_line(&b, "task"), "console output leaked to B");
  node_stop(&a);
  node_stop(&b);
  node_stop(&c);
}

/* The destination dies at `step` of a move by `method`: the task runs at
 * the origin (pre-copy: its writes no longer tracked, or it would stop
 * at its next write). */
static void dest_dies(const char *step, const char *method) {
  struct node a, b;
  node_start(&a, 0, NULL, NULL);
  node_start(&b, 1, "--die-at", step);
  start_task(&a, "0");
  wait_for(&a, "task1 t0 3\n");
  char cmd[128];
  int rc;
  snprintf(cmd, sizeof cmd, "move 1 'tcp!127.0.0.1!%d' %s", b.port, method);
  char *out = ctl(&a, &rc, cmd);
  cr_assert_neq(rc, 0, "%s, step %s: %s", method, step, out);
  cr_assert_eq(running(&b), 0, "%s, step %s", method, step);
  cr_assert_eq(running(&a), 1, "%s, step %s: %s", method, step, out);
  grows(&a);
  node_stop(&a);
  node_stop(&b);
}

static void dest_dies_at_each_step_of(const char *method) {
  const char *steps[] = {"create", "pages", "confirm", "resume"};
  for (size_t k = 0; k < sizeof steps / sizeof *steps; k++)
    dest_dies(steps[k], method);
}

Test(migrate, destination_dies_at_each_step) {
  dest_dies_at_each_step_of("eager");
}

Test(migrate, destination_dies_at_each_step_of_precopy) {
  dest_dies_at_each_step_of("precopy");
}

/* The origin dies at `step`: before the destination holds the whole
 * image the task dies with its node; from Confirm on it runs at the
 * destination, its console there. */
static void origin_dies(const char *step, int survives, const char *method) {
  struct node a, b;
  node_start(&a, 0, "--die-at", step);
  node_start(&b, 1, NULL, NULL);
  start_task(&a, "0");
  wait_for(&a, "task1 t0 3\n");
  char cmd[128];
  snprintf(cmd, sizeof cmd, "move 1 'tcp!127.0.0.1!%d' %s", b.port, method);
  ctl(&a, NULL, cmd);
  for (int i = 0; i < 300 && running(&b) != survives; i++)
    usleep(10000);
  cr_assert_eq(running(&a), 0, "%s, step %s", method, step);
  cr_assert_eq(running(&b), survives, "%s, step %s", method, step);
  if (survives) {
    /* A's console stops where B's begins: none lost, none doubled (B
     * numbers the task task1 too, its first task). */
    long next[2] = {1, 1};
    counts_from(&a, next);
    wait_for(&b, "task1 t");
    long before = counts_from(&b, next);
    usleep(300000);
    long at_a[2] = {1, 1};
    counts_from(&a, at_a);
    cr_assert_gt(counts_from(&b, at_a), before);
  }
  node_stop(&a);
  node_stop(&b);
}

/* The origin's steps, and whether the task survives its node dying
 * there: only once the destination has confirmed a whole image. */
static void origin_dies_at_each_step_of(const char *method) {
  static const struct {
    const char *step;
    int survives;
  } steps[] = {
      {"create", 0}, {"pages", 0}, {"threads", 0}, {"confirm", 1}, {"end", 1}};
  for (size_t k = 0; k < sizeof steps / sizeof *steps; k++)
    origin_dies(steps[k].step, steps[k].survives, method);
}

Test(migrate, origin_dies_at_each_step) {
  origin_dies_at_each_step_of("eager");
}

Test(migrate, origin_dies_at_each_step_of_precopy) {
  origin_dies_at_each_step_of("precopy");
}

Test(migrate, wrong_key_is_refused) {
  struct node a, b;
  node_start(&a, 0, NULL, NULL);
  char keyfile[64];
  snprintf(keyfile, sizeof keyfile, "/tmp/test_migrate.%d.key", getpid());
  FILE *f = fopen(keyfile, "w");
  cr_assert_not_null(f);
  fputs("secret\n", f);
  fclose(f);
  node_start(&b, 1, "--key", keyfile);
  start_task(&a, "0");
  wait_for(&a, "task1 t0 3\n"); /* its region exists: the key is what fails */
  char cmd[128];
  int rc;
  snprintf(cmd, sizeof cmd, "move 1 'tcp!127.0.0.1!%d' eager", b.port);
  char *out = ctl(&a, &rc, cmd);
  cr_assert_neq(rc, 0);
  cr_assert(strstr(out, "key"), "%s", out);
  cr_assert_eq(running(&a), 1);
  grows(&a);
  node_stop(&a);
  node_stop(&b);
  unlink(keyfile);
}

/* A hostile origin: talks the protocol to B directly. */
static int hostile_create(struct node *b, uint64_t size) {
  char addr[64], prog[512];
  snprintf(addr, sizeof addr, "tcp!127.0.0.1!%d", b->port);
  snprintf(prog, sizeof prog, "%s/apps/mtask", build());
  int fd = mig_dial(addr, NULL, NULL, 0);
  cr_assert_geq(fd, 0);
  MigMsg m = MIG_MSG__INIT;
  MigCreate c = MIG_CREATE__INIT;
  c.size = size;
  c.program = prog;
  c.origin = "tcp!127.0.0.1!1";
  m.m_case = MIG_MSG__M_CREATE;
  m.create = &c;
  cr_assert_eq(mig_send(fd, &m), 0);
  return fd;
}

static void hostile_page(int fd, uint64_t off, const char *fill) {
  static uint8_t page[TASK_PAGE];
  memset(page, fill[0], sizeof page);
  MigMsg m = MIG_MSG__INIT;
  MigPages p = MIG_PAGES__INIT;
  p.offset = off;
  p.data.data = page;
  p.data.len = sizeof page;
  m.m_case = MIG_MSG__M_PAGES;
  m.pages = &p;
  mig_send(fd, &m);
}

/* The destination's Confirm: its err, its words in why (when not NULL). */
static int confirm_why(int fd, char *why, size_t len) {
  MigMsg *m = mig_recv(fd);
  if (m && m->m_case == MIG_MSG__M_READY) { /* the copy pre-spawned */
    mig_msg__free_unpacked(m, NULL);
    m = mig_recv(fd);
  }
  cr_assert_not_null(m);
  cr_assert_eq(m->m_case, MIG_MSG__M_CONFIRM);
  int err = m->confirm->err;
  if (why)
    snprintf(why, len, "%s", m->confirm->msg);
  mig_msg__free_unpacked(m, NULL);
  return err;
}

static int confirm_err(int fd) {
  return confirm_why(fd, NULL, 0);
}

Test(migrate, hostile_images_are_refused) {
  struct node b;
  node_start(&b, 1, NULL, NULL);
  int fd = hostile_create(&b, 1 << 20);
  hostile_page(fd, 1 << 20, "x"); /* one page past the end */
  cr_assert_eq(confirm_err(fd), -ERANGE);
  close(fd);

  fd = hostile_create(&b, 1 << 20);
  hostile_page(fd, 0, "x"); /* a header of garbage */
  MigMsg m = MIG_MSG__INIT;
  MigCommit c = MIG_COMMIT__INIT;
  m.m_case = MIG_MSG__M_COMMIT;
  m.commit = &c;
  mig_send(fd, &m);
  cr_assert_eq(confirm_err(fd), -EINVAL);
  close(fd);

  /* Threads saying the task holds an ICA its image does not. */
  fd = hostile_create(&b, 1 << 20);
  uint32_t held[] = {3};
  MigThreads t = MIG_THREADS__INIT;
  t.n_icas = 1;
  t.icas = held;
  m.m_case = MIG_MSG__M_THREADS;
  m.threads = &t;
  mig_send(fd, &m);
  char why[256];
  cr_assert_eq(confirm_why(fd, why, sizeof why), -EINVAL);
  cr_assert(strstr(why, "held ICAs"), "%s", why);
  close(fd);

  fd = hostile_create(&b, 1 << 20);
  hostile_page(fd, 0, "x");
  close(fd); /* truncated: the origin vanishes mid-image */
  usleep(200000);
  cr_assert(alive(&b));
  cr_assert_eq(running(&b), 0);
  node_stop(&b);
}

/* Pre-copy of a task that keeps writing half its region: copied while it
 * runs, written pages tracked by userfaultfd write-protect and sent again,
 * then the rest while suspended.  Its counts go on at the origin's console
 * without a gap or a repeat. */
Test(migrate, precopy_of_a_writing_task) {
  struct node a, b;
  node_start(&a, 0, NULL, NULL);
  node_start(&b, 1, NULL, NULL);
  char cmd[1024];
  int rc;
  snprintf(cmd, sizeof cmd,
           "start %s/apps/mtask --threads 2 --limit 0 --period 10 "
           "--size 8388608 --dirty-rate 2",
           build());
  char *out = ctl(&a, &rc, cmd);
  cr_assert_eq(rc, 0, "%s", out);
  wait_for(&a, "task1 t0 5\n");
  snprintf(cmd, sizeof cmd, "move 1 'tcp!127.0.0.1!%d' precopy", b.port);
  out = ctl(&a, &rc, cmd);
  cr_assert_eq(rc, 0, "%s", out);
  cr_assert(strstr(out, "rounds="), "%s", out);
  cr_assert_eq(running(&a), 0);
  cr_assert_eq(running(&b), 1);
  grows(&a);
  node_stop(&a);
  node_stop(&b);
}

/* Open descriptors of process pid. */
static int fds_of(pid_t pid) {
  char dir[64];
  snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
  DIR *d = opendir(dir);
  cr_assert_not_null(d);
  int n = 0;
  for (struct dirent *de; (de = readdir(d)) != NULL;)
    n += de->d_name[0] != '.';
  closedir(d);
  return n;
}

/* The pid of the one task running on node n. */
static pid_t running_pid(struct node *n) {
  char *out = ctl(n, NULL, "ps");
  char *p = strstr(out, " running pid=");
  cr_assert_not_null(p, "%s", out);
  return (pid_t)atoi(p + strlen(" running pid="));
}

/* Tasks that arrive at b and end there (killed: mtask's echo thread never
 * ends by itself) leave nothing open at b: each arrival's region and
 * console connection go when its entry is used again, so a node that
 * takes task after task does not run out of descriptors (or memory: the
 * regions are memfds). */
#define ARRIVALS 12
Test(migrate, ended_arrivals_leave_no_descriptors_behind) {
  struct node a, b;
  node_start(&a, 0, NULL, NULL);
  node_start(&b, 1, NULL, NULL);
  int base = 0, rc;
  char cmd[1024], want[64];
  for (int k = 1; k <= 1 + ARRIVALS; k++) {
    snprintf(cmd, sizeof cmd,
             "start %s/apps/mtask --threads 1 --limit 0 --period 10", build());
    char *out = ctl(&a, &rc, cmd);
    cr_assert_eq(rc, 0, "%s", out);
    snprintf(want, sizeof want, "task%d t0 2\n", k);
    wait_for(&a, want);
    snprintf(cmd, sizeof cmd, "move %d 'tcp!127.0.0.1!%d' eager", k, b.port);
    out = ctl(&a, &rc, cmd);
    cr_assert_eq(rc, 0, "%s", out);
    kill(running_pid(&b), SIGKILL);
    for (int i = 0; i < 300 && running(&b) > 0; i++)
      usleep(10000);
    cr_assert_eq(running(&b), 0);
    if (k == 1)
      base = fds_of(b.pid);
  }
  cr_assert_leq(fds_of(b.pid), base + 2, "%d arrivals left %d descriptors",
                ARRIVALS, fds_of(b.pid) - base);
  node_stop(&a);
  node_stop(&b);
}

/* A plain TCP connection to the node that says nothing; -1 if refused. */
static int silent_conn(struct node *n) {
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)n->port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    close(fd);
    fd = -1;
  }
  return fd;
}

/* Whether the node closed fd within ms (end of file). */
static int closed_within(int fd, int ms) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  char c;
  return poll(&p, 1, ms) == 1 && recv(fd, &c, 1, MSG_DONTWAIT) == 0;
}

/* MIGD_CONNS_MAX connections that never speak hold every thread the node
 * gives; one more is closed at once, and once they go the node serves
 * again. */
Test(migrate, connections_beyond_the_limit_are_closed) {
  struct node b;
  int fd[MIGD_CONNS_MAX];
  node_start(&b, 1, NULL, NULL);
  for (int i = 0; i < MIGD_CONNS_MAX; i++) {
    fd[i] = silent_conn(&b);
    cr_assert_geq(fd[i], 0, "connection %d refused", i);
  }
  usleep(200 * 1000); /* the node accepts them all */
  int extra = silent_conn(&b);
  cr_assert_geq(extra, 0);
  cr_expect(closed_within(extra, 2000), "connection %d was not closed at once",
            MIGD_CONNS_MAX + 1);
  cr_expect(!closed_within(fd[0], 0), "an earlier one was closed");
  close(extra);
  for (int i = 0; i < MIGD_CONNS_MAX; i++)
    close(fd[i]);
  int rc = 1;
  for (int i = 0; i < 200 && rc != 0; i++) {
    ctl(&b, &rc, "ps 2>/dev/null");
    usleep(10000);
  }
  cr_expect_eq(rc, 0, "the node does not serve after the connections went");
  node_stop(&b);
}

/* uksim-migd's usage names every option its getopt table takes and every
 * control command, on stdout with status 0 for --help; an unknown option
 * gives it on stderr with status 2. */
Test(migd_usage, help_names_every_option_and_command) {
  int rc;
  char *out = run(&rc, "%s/sim-kernel/uksim-migd --help", build());
  cr_assert_eq(rc, 0, "%s", out);
  const char *words[] = {"--port",  "--name",   "--key",      "--die-at",
                         "--ctl",   "--netmsg", "--node-key", "start",
                         "ps",      "input",    "move",       "eager",
                         "precopy", "demand",   "--prepage"};
  for (size_t k = 0; k < sizeof words / sizeof *words; k++)
    cr_assert(strstr(out, words[k]), "--help does not name %s:\n%s", words[k],
              out);
  out = run(&rc, "%s/sim-kernel/uksim-migd --bogus 2>&1 >/dev/null", build());
  cr_assert_eq(rc, 2);
  cr_assert(strstr(out, "usage: uksim-migd"), "%s", out);
}
