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
 * Each method's figures are those of its move of median downtime among
 * --rounds moves (default 3), the baseline's the median of MIGB_TCP_RUNS.
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
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "migd.h"
#include "migwire.h"
#include "stats.h"
#include "uksim/task.h"

/* The writer's rate: pages a millisecond, at most (4 KiB pages: 128 MiB/s). */
#define MIGB_RATE_MAX 32
/* How long the task runs before the move, at most. */
#define MIGB_WARM_MS_MAX 4000
#define MIGB_PORT 7600
/* --rounds at most; the TCP baseline's runs per size. */
#define MIGB_ROUNDS_MAX 9
#define MIGB_TCP_RUNS 5

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

/* The baseline: `bytes` through a loopback TCP socket in 1 MiB writes,
 * read by a thread.  TCP_HOT (tcp_<size>_ms, the targets' baseline): from
 * one 1 MiB buffer sent again and again into another, every byte in the
 * cache: the loopback's ceiling.  TCP_REGION (tcp_region_<size>_ms), as a
 * move does, from a region of that many bytes written before (the task's
 * pages) into one allocated before (the destination's memfd, reserved at
 * Create), both in 4 KiB pages; TCP_REGION_HUGE (tcp_region_huge_<size>
 * _ms) the same in transparent huge pages (MADV_HUGEPAGE).  On this 2-cpu
 * VM the first is about ten times slower than hot at 64 MiB and the
 * second about as fast as hot: the cost is the TLB misses of the
 * kernel's copies through user mappings, each a page walk that nested
 * paging makes long.  A move copies from and into memfds in the kernel
 * (sendfile, splice), through no user mapping, so it is held to hot. */
enum tcp_mode { TCP_HOT, TCP_REGION, TCP_REGION_HUGE };

struct sink {
  int fd;
  char *dst;
  size_t len; /* dst's size: the bytes go round it */
};

static void *sink(void *arg) {
  struct sink *k = arg;
  size_t at = 0;
  for (;;) {
    size_t want = k->len - at < (1 << 20) ? k->len - at : (1 << 20);
    ssize_t n = read(k->fd, k->dst + at, want);
    if (n <= 0)
      break;
    at = (at + (size_t)n) % k->len;
  }
  return NULL;
}

/* len bytes of anonymous memory, in huge pages if `huge`; NULL if none. */
static char *buffer(size_t len, int huge) {
  char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
  if (p == MAP_FAILED)
    return NULL;
  madvise(p, len, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  return p;
}

static double tcp_ms(uint64_t bytes, enum tcp_mode mode) {
  size_t len = mode == TCP_HOT || bytes < (1 << 20) ? 1 << 20 : (size_t)bytes;
  char *src = buffer(len, mode == TCP_REGION_HUGE);
  char *dst = buffer(len, mode == TCP_REGION_HUGE);
  if (!src || !dst) {
    if (src)
      munmap(src, len);
    if (dst)
      munmap(dst, len);
    return -1;
  }
  memset(src, 1, len);
  memset(dst, 0, len);
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t salen = sizeof sa;
  bind(l, (struct sockaddr *)&sa, sizeof sa);
  listen(l, 1);
  getsockname(l, (struct sockaddr *)&sa, &salen);
  int c = socket(AF_INET, SOCK_STREAM, 0);
  connect(c, (struct sockaddr *)&sa, sizeof sa);
  struct sink k = {.fd = accept(l, NULL, NULL), .dst = dst, .len = len};
  pthread_t t;
  pthread_create(&t, NULL, sink, &k);
  uint64_t t0 = now_us();
  size_t at = 0;
  for (uint64_t left = bytes; left > 0;) {
    size_t n = left < (1 << 20) ? (size_t)left : 1 << 20;
    if (n > len - at)
      n = len - at;
    ssize_t w = write(c, src + at, n);
    if (w <= 0)
      break;
    left -= (uint64_t)w;
    at = (at + (size_t)w) % len;
  }
  shutdown(c, SHUT_WR);
  pthread_join(t, NULL);
  double ms = (double)(now_us() - t0) / 1000;
  close(c);
  close(k.fd);
  close(l);
  munmap(src, len);
  munmap(dst, len);
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

/* The move of median downtime among `rounds` moves (each on fresh
 * nodes): one move's figures, all from the same move; not ok if any
 * move failed. */
static struct result move_median(uint64_t size, MigMethod m, int rounds) {
  struct result r[MIGB_ROUNDS_MAX];
  int ok = 1;
  for (int i = 0; i < rounds; i++) {
    r[i] = move_once(size, m);
    ok &= r[i].ok;
  }
  for (int i = 1; i < rounds; i++) /* by downtime (insertion sort) */
    for (int j = i; j > 0 && r[j].downtime_ms < r[j - 1].downtime_ms; j--) {
      struct result t = r[j];
      r[j] = r[j - 1];
      r[j - 1] = t;
    }
  struct result med = r[rounds / 2];
  med.ok = ok;
  return med;
}

/* The baseline's median over MIGB_TCP_RUNS runs: one loopback transfer
 * of tens of ms varies by half from run to run on a busy 2-cpu host. */
static double tcp_median_ms(uint64_t bytes, enum tcp_mode mode) {
  double v[MIGB_TCP_RUNS];
  for (int i = 0; i < MIGB_TCP_RUNS; i++)
    v[i] = tcp_ms(bytes, mode);
  return stats_median(v, MIGB_TCP_RUNS);
}

int bench_migrate_main(int argc, char **argv) {
  int json = 0, rounds = 3;
  const char *list = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json"))
      json = 1;
    else if (!strcmp(argv[i], "--sizes") && i + 1 < argc)
      list = argv[++i];
    else if (!strcmp(argv[i], "--rounds") && i + 1 < argc &&
             (rounds = atoi(argv[i + 1])) >= 1 && rounds <= MIGB_ROUNDS_MAX)
      i++;
    else {
      fprintf(stderr,
              "usage: uksim bench migrate [--json] [--sizes "
              "1m,64m,1g] [--rounds N (1..%d, default 3)]\n",
              MIGB_ROUNDS_MAX);
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
      struct result r = move_median(sizes[s].bytes, (MigMethod)m, rounds);
      failed |= !r.ok;
      emit_method(json, &first, (MigMethod)m, sizes[s].name, &r);
      if (m == MIG_METHOD__MIG_EAGER)
        eager_bytes = r.bytes;
    }
    snprintf(key, sizeof key, "tcp_%s_ms", sizes[s].name);
    emit(json, &first, key, tcp_median_ms(eager_bytes, TCP_HOT));
    snprintf(key, sizeof key, "tcp_region_%s_ms", sizes[s].name);
    emit(json, &first, key, tcp_median_ms(eager_bytes, TCP_REGION));
    snprintf(key, sizeof key, "tcp_region_huge_%s_ms", sizes[s].name);
    emit(json, &first, key, tcp_median_ms(eager_bytes, TCP_REGION_HUGE));
  }
  if (json)
    printf("\n}\n");
  return failed ? 1 : 0;
}
