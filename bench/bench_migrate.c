/* `uksim bench migrate [--json] [--sizes 1m,64m,1g]`: process migration
 * (sim-kernel/migd.h) between two uksim-migd nodes on loopback, per task
 * size and method: downtime (suspend to resume, as the origin measures
 * it), total time, page bytes sent and pre-copy rounds; beside it, in the
 * same run, the baseline: the same bytes through a plain loopback TCP
 * socket.
 *
 * The task is apps/mtask with two counters and a writer thread that
 * rewrites the upper half of its region at a fixed rate (MIGB_RATE_MAX
 * pages a millisecond at most) and has written it once before the move
 * starts.  Each case boots fresh nodes: no case inherits another's pages.
 * Demand paging's total time runs until the destination has every page
 * (its background fetch included); beside it, its remote faults and the
 * mean wait of a first touch that faulted (fault read to page in, as the
 * destination measures it).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "migd.h"
#include "migwire.h"
#include "uksim/task.h"

/* The writer's rate: pages a millisecond, at most (4 KiB pages: 128 MiB/s). */
#define MIGB_RATE_MAX 32
/* How long the task runs before the move, at most. */
#define MIGB_WARM_MS_MAX 4000
#define MIGB_PORT 7600

static char migd_exe[PATH_MAX], mtask_exe[PATH_MAX];

static uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void find_programs(void) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  self[n > 0 ? n : 0] = 0;
  char *root = dirname(dirname(self)); /* <build>/cli/uksim -> <build> */
  snprintf(migd_exe, sizeof migd_exe, "%s/sim-kernel/uksim-migd", root);
  snprintf(mtask_exe, sizeof mtask_exe, "%s/apps/mtask", root);
}

static pid_t node_start(int port) {
  char p[16];
  snprintf(p, sizeof p, "%d", port);
  fflush(stdout); /* the child must not print our buffered lines again */
  pid_t pid = fork();
  if (pid == 0) {
    freopen("/dev/null", "w", stdout);
    freopen("/dev/null", "w", stderr);
    execl(migd_exe, migd_exe, "--port", p, (char *)NULL);
    _exit(127);
  }
  return pid;
}

/* One control request to the node at `port`; its Result (caller frees). */
static MigResult *request(int port, MigMsg *m) {
  char addr[64];
  snprintf(addr, sizeof addr, "tcp!127.0.0.1!%d", port);
  int fd = -1;
  for (int i = 0; i < 300 && fd < 0; i++)
    if ((fd = mig_dial(addr, NULL, NULL, 0)) < 0)
      usleep(10000);
  if (fd < 0)
    return NULL;
  mig_timeout(fd, 0);
  MigMsg *a = mig_send(fd, m) == 0 ? mig_recv(fd) : NULL;
  close(fd);
  if (!a || a->m_case != MIG_MSG__M_RESULT) {
    if (a)
      mig_msg__free_unpacked(a, NULL);
    return NULL;
  }
  MigResult *r = a->result;
  a->result = NULL;
  mig_msg__free_unpacked(a, NULL);
  return r;
}

static int start_task(int port, uint64_t size, uint64_t rate) {
  char sz[32], rt[32];
  snprintf(sz, sizeof sz, "%llu", (unsigned long long)size);
  snprintf(rt, sizeof rt, "%llu", (unsigned long long)rate);
  char *argv[] = {mtask_exe, "--threads", "2", "--limit",      "0", "--period",
                  "10",      "--size",    sz,  "--dirty-rate", rt};
  MigMsg m = MIG_MSG__INIT;
  MigStart st = MIG_START__INIT;
  st.n_argv = sizeof argv / sizeof *argv;
  st.argv = argv;
  m.m_case = MIG_MSG__M_START;
  m.start = &st;
  MigResult *r = request(port, &m);
  int ok = r && r->err == 0;
  if (r)
    mig_result__free_unpacked(r, NULL);
  return ok ? 0 : -1;
}

struct result {
  int ok;
  double downtime_ms, total_ms, first_touch_ms;
  uint64_t bytes, rounds, remote_faults;
};

static struct result move_once(uint64_t size, MigMethod method) {
  struct result res = {0};
  pid_t a = node_start(MIGB_PORT), b = node_start(MIGB_PORT + 1);
  uint64_t half = size / 2 / TASK_PAGE;
  uint64_t rate = half / 1000 < MIGB_RATE_MAX ? half / 1000 + 1 : MIGB_RATE_MAX;
  uint64_t warm =
      half / rate < MIGB_WARM_MS_MAX ? half / rate : MIGB_WARM_MS_MAX;
  if (start_task(MIGB_PORT, size, rate) == 0) {
    usleep((useconds_t)(warm + 200) * 1000);
    char dest[64];
    snprintf(dest, sizeof dest, "tcp!127.0.0.1!%d", MIGB_PORT + 1);
    MigMsg m = MIG_MSG__INIT;
    MigMove mv = MIG_MOVE__INIT;
    mv.task = 1;
    mv.dest = dest;
    mv.method = method;
    m.m_case = MIG_MSG__M_MOVE;
    m.move = &mv;
    MigResult *r = request(MIGB_PORT, &m);
    if (r && r->err == 0) {
      res.ok = 1;
      res.downtime_ms = (double)r->downtime_us / 1000;
      res.total_ms = (double)r->total_us / 1000;
      res.bytes = r->bytes;
      res.rounds = r->rounds;
      res.remote_faults = r->remote_faults;
      res.first_touch_ms = (double)r->first_touch_us / 1000;
    } else {
      fprintf(stderr, "bench migrate: move failed: %s\n",
              r ? r->msg : "no answer");
    }
    if (r)
      mig_result__free_unpacked(r, NULL);
  }
  kill(a, SIGKILL);
  kill(b, SIGKILL);
  waitpid(a, NULL, 0);
  waitpid(b, NULL, 0);
  return res;
}

/* The baseline: `bytes` through a loopback TCP socket, in 1 MiB writes,
 * read and dropped by a thread. */
static void *sink(void *arg) {
  int fd = (int)(long)arg;
  static char buf[1 << 20];
  while (read(fd, buf, sizeof buf) > 0)
    ;
  return NULL;
}

static double tcp_ms(uint64_t bytes) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sa;
  bind(l, (struct sockaddr *)&sa, sizeof sa);
  listen(l, 1);
  getsockname(l, (struct sockaddr *)&sa, &len);
  int c = socket(AF_INET, SOCK_STREAM, 0);
  connect(c, (struct sockaddr *)&sa, sizeof sa);
  int s = accept(l, NULL, NULL);
  pthread_t t;
  pthread_create(&t, NULL, sink, (void *)(long)s);
  static char buf[1 << 20];
  memset(buf, 1, sizeof buf);
  uint64_t t0 = now_us();
  for (uint64_t left = bytes; left > 0;) {
    size_t n = left < sizeof buf ? (size_t)left : sizeof buf;
    ssize_t w = write(c, buf, n);
    if (w <= 0)
      break;
    left -= (uint64_t)w;
  }
  shutdown(c, SHUT_WR);
  pthread_join(t, NULL);
  double ms = (double)(now_us() - t0) / 1000;
  close(c);
  close(s);
  close(l);
  return ms;
}

struct size_case {
  const char *name;
  uint64_t bytes;
};

static const struct size_case sizes[] = {
    {"1m", 1ull << 20}, {"64m", 64ull << 20}, {"1g", 1ull << 30}};

static int wanted(const char *list, const char *name) {
  if (!list)
    return 1;
  char buf[64];
  snprintf(buf, sizeof buf, ",%s,", list);
  char key[16];
  snprintf(key, sizeof key, ",%s,", name);
  return strstr(buf, key) != NULL;
}

static void emit(int json, int *first, const char *key, double v) {
  if (json)
    printf("%s\n  \"%s\": %.3f", *first ? "{" : ",", key, v);
  else
    printf("%-32s %12.3f\n", key, v);
  *first = 0;
}

/* One method's keys for one size: METHOD_SIZE_downtime_ms, _total_ms,
 * _bytes, and precopy's rounds or demand's remote faults and first-touch
 * wait. */
static void emit_method(int json, int *first, MigMethod m, const char *size,
                        const struct result *r) {
  static const char *names[] = {"eager", "precopy", "demand"};
  char key[64];
  snprintf(key, sizeof key, "%s_%s_downtime_ms", names[m], size);
  emit(json, first, key, r->downtime_ms);
  snprintf(key, sizeof key, "%s_%s_total_ms", names[m], size);
  emit(json, first, key, r->total_ms);
  snprintf(key, sizeof key, "%s_%s_bytes", names[m], size);
  emit(json, first, key, (double)r->bytes);
  if (m == MIG_METHOD__MIG_PRECOPY) {
    snprintf(key, sizeof key, "precopy_%s_rounds", size);
    emit(json, first, key, (double)r->rounds);
  } else if (m == MIG_METHOD__MIG_DEMAND) {
    snprintf(key, sizeof key, "demand_%s_remote_faults", size);
    emit(json, first, key, (double)r->remote_faults);
    snprintf(key, sizeof key, "demand_%s_first_touch_ms", size);
    emit(json, first, key, r->first_touch_ms);
  }
}

int bench_migrate_main(int argc, char **argv) {
  int json = 0;
  const char *list = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json"))
      json = 1;
    else if (!strcmp(argv[i], "--sizes") && i + 1 < argc)
      list = argv[++i];
    else {
      fprintf(stderr, "usage: uksim bench migrate [--json] [--sizes "
                      "1m,64m,1g]\n");
      return 2;
    }
  }
  find_programs();
  signal(SIGPIPE, SIG_IGN);
  int first = 1, failed = 0;
  char key[64];
  for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
    if (!wanted(list, sizes[s].name))
      continue;
    uint64_t eager_bytes = 0;
    for (int m = 0; m < 3; m++) {
      struct result r = move_once(sizes[s].bytes, (MigMethod)m);
      failed |= !r.ok;
      emit_method(json, &first, (MigMethod)m, sizes[s].name, &r);
      if (m == MIG_METHOD__MIG_EAGER)
        eager_bytes = r.bytes;
    }
    snprintf(key, sizeof key, "tcp_%s_ms", sizes[s].name);
    emit(json, &first, key, tcp_ms(eager_bytes));
  }
  if (json)
    printf("\n}\n");
  return failed ? 1 : 0;
}
