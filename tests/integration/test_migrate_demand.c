/* Migration by demand paging (sim-kernel/migd.h, migpage.h), end to end:
 * real uksim-migd nodes on loopback TCP, a real multi-threaded task
 * (apps/mtask) that counts and echoes its input, resumed at the
 * destination with its header only, its other pages fetched through a
 * real userfaultfd on first touch and in the background.  Then either
 * node killed at each step, demand steps included, and a page request
 * outside the region from a crafted destination.  Each check ends by
 * asking each node what became of the task: it runs on exactly one node,
 * or, when a node died while pages were still fetched, on none, and a
 * node says "lost". */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "migd.h"
#include "migpage.h"
#include "migwire.h"
#include "uksim/task.h"

/* A node: its migd process, port, and files for its stdout (the task
 * consoles it shows) and stderr (its notices). */
struct dnode {
  pid_t pid;
  int port;
  char out[96], err[96];
};

static pid_t dpids[8];
static int ndpids, dport_base;

static const char *root(void) {
  const char *r = getenv("UKSIM_BUILD_ROOT");
  cr_assert_not_null(r);
  return r;
}

/* The output of a shell command (static), and its exit status. */
static char *sh(int *rc, const char *fmt, ...) {
  static char out[16384];
  char cmd[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p);
  out[fread(out, 1, sizeof out - 1, p)] = 0;
  int st = pclose(p);
  if (rc)
    *rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
  return out;
}

static char *dctl(struct dnode *n, int *rc, const char *words) {
  return sh(rc, "%s/sim-kernel/uksim-migd --ctl 'tcp!127.0.0.1!%d' %s", root(),
            n->port, words);
}

static void dnode_up(struct dnode *n, int k, const char *die_at) {
  char port[16], exe[512];
  n->port = dport_base + k;
  snprintf(n->out, sizeof n->out, "/tmp/test_demand.%d.%d.out", getpid(), k);
  snprintf(n->err, sizeof n->err, "/tmp/test_demand.%d.%d.err", getpid(), k);
  snprintf(port, sizeof port, "%d", n->port);
  snprintf(exe, sizeof exe, "%s/sim-kernel/uksim-migd", root());
  if ((n->pid = fork()) == 0) {
    freopen(n->out, "w", stdout);
    freopen(n->err, "w", stderr);
    execl(exe, exe, "--port", port, die_at ? "--die-at" : NULL, die_at,
          (char *)NULL);
    _exit(127);
  }
  dpids[ndpids++ % 8] = n->pid;
  int rc = 1;
  for (int i = 0; i < 200 && rc != 0; i++, usleep(10000))
    dctl(n, &rc, "ps >/dev/null 2>&1");
  cr_assert_eq(rc, 0, "node %d did not start", k);
}

static void dnode_down(struct dnode *n) {
  if (n->pid > 0) {
    kill(n->pid, SIGKILL);
    waitpid(n->pid, NULL, 0);
  }
  n->pid = 0;
}

static int dnode_alive(struct dnode *n) {
  if (n->pid > 0 && waitpid(n->pid, NULL, WNOHANG) == n->pid)
    n->pid = 0;
  return n->pid > 0;
}

/* How many tasks node n lists in `state` ("running", "lost"); 0 for a
 * dead node. */
static int in_state(struct dnode *n, const char *state) {
  if (!dnode_alive(n))
    return 0;
  char key[32];
  int count = 0;
  snprintf(key, sizeof key, " %s ", state);
  for (char *p = dctl(n, NULL, "ps"); (p = strstr(p, key)); p++)
    count++;
  return count;
}

static int file_has(const char *path, const char *s) {
  return strstr(sh(NULL, "cat %s", path), s) != NULL;
}

static void await_text(const char *path, const char *s) {
  for (int i = 0; i < 500 && !file_has(path, s); i++)
    usleep(10000);
  cr_assert(file_has(path, s), "%s never showed '%s'", path, s);
}

/* The last count of counter 0 in node n's console, after checking that
 * both counters of task1 go 1, 2, 3 ... without a gap or a repeat. */
static long counted(struct dnode *n) {
  long next[2] = {1, 1};
  FILE *f = fopen(n->out, "r");
  cr_assert_not_null(f);
  char line[256];
  int i;
  long v;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "task1 t%d %ld", &i, &v) == 2) {
      cr_assert(i == 0 || i == 1, "%s", line);
      cr_assert_eq(v, next[i], "%s: t%d %ld after %ld", n->out, i, v,
                   next[i] - 1);
      next[i]++;
    }
  fclose(f);
  return next[0] - 1;
}

/* An 8 MiB task whose writer keeps rewriting its upper half. */
static void start_writer_task(struct dnode *a) {
  int rc;
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "start %s/apps/mtask --threads 2 --limit 0 --period 10 "
           "--size 8388608 --dirty-rate 2",
           root());
  char *out = dctl(a, &rc, cmd);
  cr_assert_eq(rc, 0, "%s", out);
  await_text(a->out, "task1 t0 5\n");
}

static char *move(struct dnode *from, struct dnode *to, int *rc,
                  const char *opts) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "move 1 'tcp!127.0.0.1!%d' demand %s 2>&1",
           to->port, opts);
  return dctl(from, rc, cmd);
}

/* Whether the six ports from base are free now: other test runs on this
 * host (other worktrees, parallel suites) pick ports too. */
/* Migration is real time (MIG_PARK_TIMEOUT_MS, MIG_PEER_TIMEOUT_MS): it
 * cannot run under valgrind (tests/ci-skips.txt). */
static void setup(void) {
  if (getenv("UKSIM_UNDER_VALGRIND"))
    cr_skip_test("migration is real time; it cannot run under valgrind");
  /* Below the ephemeral range, where a connection's own port could take
   * one of them at any time. */
  dport_base = h_free_ports(22000, 8000, 6);
  cr_assert_neq(dport_base, 0, "no 6 free loopback ports in 22000-29999");
}

static void teardown(void) {
  for (int i = 0; i < ndpids && i < 8; i++)
    kill(dpids[i], SIGKILL);
}

TestSuite(demand, .init = setup, .fini = teardown, .timeout = 240);

/* A -> B -> C by demand paging: the counters go on at A's console without
 * a gap, input typed at A reaches the task wherever it runs, and B had
 * remote faults (the task's stacks and heap were not there on resume). */
Test(demand, multithreaded_task_continues_and_its_io_reaches_the_origin) {
  struct dnode a, b, c;
  int rc;
  dnode_up(&a, 0, NULL);
  dnode_up(&b, 1, NULL);
  dnode_up(&c, 2, NULL);
  start_writer_task(&a);
  /* Input still in the origin's pipe when the task stops stays there
   * (a known gap of every method): the echo first, then the move. */
  dctl(&a, NULL, "input 1 'before\n'");
  await_text(a.out, "task1 echo before");
  char *out = move(&a, &b, &rc, "--prepage 4");
  cr_assert_eq(rc, 0, "%s", out);
  cr_assert(strstr(out, "remote_faults="), "no remote fault: %s", out);
  cr_assert_eq(in_state(&a, "running"), 0);
  cr_assert_eq(in_state(&b, "running"), 1);
  long at_b = counted(&a);
  dctl(&a, NULL, "input 1 'at-b\n'");
  await_text(a.out, "task1 echo at-b");
  out = move(&b, &c, &rc, "");
  cr_assert_eq(rc, 0, "%s", out);
  cr_assert_eq(in_state(&b, "running"), 0);
  cr_assert_eq(in_state(&c, "running"), 1);
  dctl(&a, NULL, "input 1 'at-c\n'");
  await_text(a.out, "task1 echo at-c");
  usleep(300000);
  cr_assert_gt(counted(&a), at_b + 10, "the task stopped counting");
  cr_assert(!file_has(b.out, "task1") && !file_has(c.out, "task1"),
            "console output leaked to B or C");
  cr_assert(file_has(b.err, "every page in"), "B never had every page");
  dnode_down(&a);
  dnode_down(&b);
  dnode_down(&c);
}

Test(demand, prepage_beyond_its_limit_is_a_usage_error) {
  struct dnode a;
  int rc;
  dnode_up(&a, 0, NULL);
  char words[64];
  snprintf(words, sizeof words, "move 1 'tcp!127.0.0.1!1' demand --prepage %u",
           MIG_PREPAGE_MAX + 1);
  dctl(&a, &rc, words);
  cr_assert_eq(rc, 2);
  dnode_down(&a);
}

/* The origin dies at `step`.  Before Confirm the task dies with it (no
 * other node holds its state); from Confirm on the destination holds
 * its header only, or part of its pages, so it cannot run it either: the
 * task is lost, and the destination says so. */
static void origin_dies(const char *step, int lost) {
  struct dnode a, b;
  dnode_up(&a, 0, step);
  dnode_up(&b, 1, NULL);
  start_writer_task(&a);
  move(&a, &b, NULL, "");
  for (int i = 0; i < 300 && dnode_alive(&a); i++)
    usleep(10000);
  for (int i = 0; i < 300 && lost && !in_state(&b, "lost"); i++)
    usleep(10000);
  cr_assert(!dnode_alive(&a), "step %s: the origin did not die", step);
  cr_assert_eq(in_state(&b, "running"), 0, "step %s: runs at B", step);
  cr_assert_eq(in_state(&b, "lost"), lost, "step %s", step);
  if (lost)
    cr_assert(file_has(b.err, "task1 lost"), "step %s: B did not say", step);
  dnode_down(&b);
}

Test(demand, origin_dies_at_each_step) {
  origin_dies("create", 0);
  origin_dies("pages", 0);
  origin_dies("threads", 0);
  origin_dies("confirm", 1);
  origin_dies("end", 1);
  origin_dies("serve", 1);
}

/* The destination dies at `step`.  Until it resumed the task, the origin
 * runs it from its duplicate; once it ran it, the task is lost and the
 * origin's answer says so. */
static void destination_dies(const char *step, int lost) {
  struct dnode a, b;
  int rc;
  dnode_up(&a, 0, NULL);
  dnode_up(&b, 1, step);
  start_writer_task(&a);
  char out[512]; /* move's words: sh() reuses its buffer */
  snprintf(out, sizeof out, "%s", move(&a, &b, &rc, ""));
  cr_assert_neq(rc, 0, "step %s: %s", step, out);
  for (int i = 0; i < 300 && dnode_alive(&b); i++)
    usleep(10000); /* its sockets close before it can be reaped */
  cr_assert(!dnode_alive(&b), "step %s: B did not die: %s", step, out);
  cr_assert_eq(in_state(&a, "running"), !lost, "step %s: %s", step, out);
  cr_assert_eq(in_state(&a, "lost"), lost, "step %s: %s", step, out);
  if (lost) {
    cr_assert(strstr(out, "task lost"), "step %s: %s", step, out);
  } else {
    long before = counted(&a);
    usleep(300000);
    cr_assert_gt(counted(&a), before, "step %s: A does not run it", step);
  }
  dnode_down(&a);
}

Test(demand, destination_dies_at_each_step) {
  destination_dies("create", 0);
  destination_dies("pages", 0);
  destination_dies("confirm", 0);
  destination_dies("resume", 0);
  destination_dies("fetch", 1);
}

/* ---- a crafted destination ---- */

static int listen_on(int port) {
  int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  cr_assert_eq(bind(l, (struct sockaddr *)&sa, sizeof sa), 0);
  cr_assert_eq(listen(l, 1), 0);
  return l;
}

static MigMsg *expect(int fd, MigMsg__MCase want) {
  MigMsg *m = mig_recv(fd);
  cr_assert_not_null(m, "nothing where message %d was due", want);
  cr_assert_eq(m->m_case, want, "message %d, not %d", m->m_case, want);
  return m;
}

static void say(int fd, MigMsg *m, MigMsg__MCase c, void *body) {
  m->m_case = c;
  m->result = body; /* the oneof: any member's pointer is the same slot */
  cr_assert_eq(mig_send(fd, m), 0);
}

/* The raw page bytes behind a bulk Pages frame (migrate.proto), read and
 * dropped. */
static void skip_bulk(int fd, uint64_t n) {
  char buf[4096];
  while (n > 0) {
    ssize_t r = read(fd, buf, n < sizeof buf ? n : sizeof buf);
    cr_assert_gt(r, 0, "the bulk pages end short");
    n -= (uint64_t)r;
  }
}

/* The crafted destination takes the task as a real one would, up to
 * Resumed: the handshake, Create (demand), the header pages, Threads, Commit.
 */
static uint64_t take_task(int fd) {
  MigMsg out = MIG_MSG__INIT;
  MigConfirm conf = MIG_CONFIRM__INIT;
  MigResumed resumed = MIG_RESUMED__INIT;
  char why[MIG_ERR_MAX];
  cr_assert_eq(mig_hs_serve(fd, NULL, why, sizeof why), 0, "%s", why);
  MigMsg *m = expect(fd, MIG_MSG__M_CREATE);
  cr_assert_eq(m->create->method, MIG_METHOD__MIG_DEMAND);
  uint64_t size = m->create->size;
  mig_msg__free_unpacked(m, NULL);
  MigReady ready = MIG_READY__INIT;
  say(fd, &out, MIG_MSG__M_READY, &ready);
  while ((m = mig_recv(fd)) && m->m_case == MIG_MSG__M_PAGES) {
    cr_assert_lt(m->pages->offset, MIG_HEADER_BYTES,
                 "more than the "
                 "header sent");
    skip_bulk(fd, m->pages->bulk);
    mig_msg__free_unpacked(m, NULL);
  }
  cr_assert(m && m->m_case == MIG_MSG__M_THREADS);
  mig_msg__free_unpacked(m, NULL);
  mig_msg__free_unpacked(expect(fd, MIG_MSG__M_COMMIT), NULL);
  conf.task = 1;
  say(fd, &out, MIG_MSG__M_CONFIRM, &conf);
  mig_msg__free_unpacked(expect(fd, MIG_MSG__M_RESUME), NULL);
  say(fd, &out, MIG_MSG__M_RESUMED, &resumed);
  return size;
}

/* Asks for `count` pages at `offset`; the answer's kind. */
static MigMsg *ask(int fd, uint64_t offset, uint32_t count) {
  MigMsg out = MIG_MSG__INIT;
  MigPageReq q = MIG_PAGE_REQ__INIT;
  q.offset = offset;
  q.count = count;
  say(fd, &out, MIG_MSG__M_PAGE_REQ, &q);
  MigMsg *m = mig_recv(fd);
  cr_assert_not_null(m, "no answer to a page request");
  return m;
}

static void refused(int fd, uint64_t offset, uint32_t count) {
  MigMsg *m = ask(fd, offset, count);
  cr_assert_eq(m->m_case, MIG_MSG__M_RESULT, "offset %llu count %u served",
               (unsigned long long)offset, count);
  cr_assert_eq(m->result->err, -ERANGE);
  mig_msg__free_unpacked(m, NULL);
}

/* Requests outside the region (past its end, across its end, not on a
 * page, too many pages) are refused with -ERANGE and a notice; the origin
 * goes on serving good ones from its duplicate, and ends when told. */
Test(demand, page_request_outside_the_region_is_refused) {
  struct dnode a;
  int rc;
  dnode_up(&a, 0, NULL);
  start_writer_task(&a);
  int l = listen_on(dport_base + 5);
  char cmd[512];
  snprintf(cmd, sizeof cmd,
           "%s/sim-kernel/uksim-migd --ctl 'tcp!127.0.0.1!%d' move 1 "
           "'tcp!127.0.0.1!%d' demand 2>&1",
           root(), a.port, dport_base + 5);
  FILE *mover = popen(cmd, "r");
  int fd = accept(l, NULL, NULL);
  cr_assert_geq(fd, 0);
  mig_timeout(fd, MIG_PEER_TIMEOUT_MS);
  uint64_t size = take_task(fd);
  refused(fd, size, 1);
  refused(fd, size - TASK_PAGE, 2);
  refused(fd, 1, 1);
  refused(fd, 0, MIG_PAGEREQ_MAX + 1);
  refused(fd, UINT64_MAX - TASK_PAGE + 1, 1);
  MigMsg *m = ask(fd, 0, 1);
  cr_assert_eq(m->m_case, MIG_MSG__M_PAGES);
  cr_assert_eq(m->pages->data.len, TASK_PAGE);
  cr_assert_eq(((struct task_hdr *)m->pages->data.data)->magic, TASK_MAGIC);
  mig_msg__free_unpacked(m, NULL);
  MigMsg out = MIG_MSG__INIT;
  MigPagesDone done = MIG_PAGES_DONE__INIT;
  say(fd, &out, MIG_MSG__M_PAGES_DONE, &done);
  char answer[512];
  answer[fread(answer, 1, sizeof answer - 1, mover)] = 0;
  rc = pclose(mover);
  cr_assert_eq(WEXITSTATUS(rc), 0, "%s", answer);
  cr_assert(file_has(a.err, "page request outside the region refused"));
  cr_assert_eq(in_state(&a, "running"), 0);
  close(fd);
  close(l);
  dnode_down(&a);
}

/* The pid node n lists for task1, or 0. */
static pid_t task_pid(struct dnode *n) {
  char *p = strstr(dctl(n, NULL, "ps"), "pid=");
  return p ? (pid_t)atol(p + 4) : 0;
}

/* A task that ends at the destination while its pages are still fetched
 * (here: killed) ends the origin's part too: the fetch stops, the origin
 * is told as if every page were in, and neither node calls it lost. */
Test(demand, a_task_that_ends_mid_fetch_frees_the_origin) {
  struct dnode a, b;
  int rc;
  dnode_up(&a, 0, NULL);
  dnode_up(&b, 1, NULL);
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "start %s/apps/mtask --threads 2 --limit 0 --period 10 "
           "--size 1073741824 --dirty-rate 32",
           root());
  char *out = dctl(&a, &rc, cmd);
  cr_assert_eq(rc, 0, "%s", out);
  await_text(a.out, "task1 t0 20\n"); /* some 100 MiB written by now */
  snprintf(cmd, sizeof cmd,
           "%s/sim-kernel/uksim-migd --ctl 'tcp!127.0.0.1!%d' move 1 "
           "'tcp!127.0.0.1!%d' demand 2>&1",
           root(), a.port, b.port);
  FILE *mover = popen(cmd, "r");
  pid_t pid = 0;
  for (int i = 0;
       i < 500 && !(pid = in_state(&b, "running") ? task_pid(&b) : 0); i++)
    usleep(2000);
  cr_assert_gt(pid, 0, "the task never ran at B");
  kill(pid, SIGKILL);
  char answer[512];
  answer[fread(answer, 1, sizeof answer - 1, mover)] = 0;
  rc = pclose(mover);
  cr_assert_eq(WEXITSTATUS(rc), 0, "%s", answer);
  await_text(b.err, "task1: ");
  if (!file_has(b.err, "ended before every page was in"))
    cr_log_warn("the fetch was done before the kill: %s", answer);
  cr_assert(!file_has(b.err, "lost") && !file_has(a.err, "lost"),
            "a task that ended was called lost");
  cr_assert_eq(in_state(&a, "lost") + in_state(&b, "lost"), 0);
  dnode_down(&a);
  dnode_down(&b);
}
