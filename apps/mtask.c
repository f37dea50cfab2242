/* mtask: a migratable multi-threaded task (include/uksim/task.h) that
 * keeps computing and doing console I/O, the program the migration tests
 * and the benchmark move between nodes.
 *
 *   mtask [--threads K] [--limit N] [--period MS] [--size BYTES]
 *         [--dirty-rate PAGES] [--selfmove AT] [--read-after MOVES]
 *   mtask --adopt FD        (continue the task in region memfd FD)
 *
 * K counter threads (priorities 10, 11, ...; policy RR) each count to N,
 * printing "t<i> <n>" every MS; an echo thread prints "echo <line>" for
 * each input line and ends at end of input; with --dirty-rate a writer
 * thread rewrites PAGES pages of the upper half of the region every
 * millisecond, cycling (the benchmark's "half written while running").
 * With --read-after the echo thread reads nothing until the task has
 * moved MOVES times, so that input typed before stays unread in the
 * console pipe at each move (the tests of migcons.h).
 * When all have finished it prints "done t0=.. t1=.. moves=M" and exits 0;
 * with N = 0 the counters never finish.
 *
 * --selfmove AT moves the task within this host once counter 0 reaches
 * AT, the way a migration client does: suspend, wait for the safe point,
 * duplicate the region into a new memfd, start a process of this program
 * on the duplicate, end the origin copy.  It exists to test task_adopt
 * without the network (tests/lib/test_task.c).
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "uksim/num.h"
#include "uksim/task.h"

/* Counter threads: the task has TASK_MAX_THREADS slots, two are the echo
 * and the writer threads. */
#define MTASK_COUNTERS_MAX (TASK_MAX_THREADS - 2)
#define MTASK_LINE_MAX 256

struct mtask {
  int threads;
  int live; /* threads still running, the last prints "done" */
  long limit;
  uint64_t period;
  uint64_t dirty_rate, dirty_pos;
  long n[MTASK_COUNTERS_MAX];
  char line[MTASK_LINE_MAX];
  size_t line_len;
  uint64_t read_after; /* moves before the echo thread reads */
};

static void finish(struct mtask *m) {
  if (--m->live > 0)
    return;
  char out[64 + 24 * MTASK_COUNTERS_MAX];
  int len = snprintf(out, sizeof out, "done");
  for (int i = 0; i < m->threads; i++)
    len +=
        snprintf(out + len, sizeof out - (size_t)len, " t%d=%ld", i, m->n[i]);
  snprintf(out + len, sizeof out - (size_t)len, " moves=%llu\n",
           (unsigned long long)task_hdr()->migrations);
  task_write(out, strlen(out));
}

static void counter(void *arg) {
  struct mtask *m = task_root();
  int i = (int)(long)arg;
  while (m->limit == 0 || m->n[i] < m->limit) {
    m->n[i]++;
    task_printf("t%d %ld\n", i, m->n[i]);
    task_sleep(m->period);
  }
  finish(m);
}

static void echo_line(struct mtask *m) {
  task_printf("echo %.*s\n", (int)m->line_len, m->line);
  m->line_len = 0;
}

static void echo(void *arg) {
  struct mtask *m = arg;
  char c;
  while (task_hdr()->migrations < m->read_after)
    task_sleep(5);
  while (task_read(&c, 1) == 1) {
    if (c == '\n')
      echo_line(m);
    else if (m->line_len < MTASK_LINE_MAX)
      m->line[m->line_len++] = c;
  }
  finish(m);
}

/* Rewrites the upper half of the heap, dirty_rate pages a millisecond,
 * for as long as the counters run. */
static void writer(void *arg) {
  struct mtask *m = arg;
  struct task_hdr *h = task_hdr();
  uint64_t lo = h->size / 2, pages = (h->size - lo) / TASK_PAGE;
  while (m->live > 1) {
    for (uint64_t k = 0; k < m->dirty_rate; k++) {
      char *p = (char *)h + lo + (m->dirty_pos++ % pages) * TASK_PAGE;
      p[0]++;
    }
    task_sleep(1);
  }
  finish(m);
}

/* The in-host move of --selfmove: see the file comment. */
struct selfmove {
  long at;
  char **argv;
};

static int duplicate_region(void) {
  struct task_hdr *h = task_hdr();
  int fd = memfd_create("uksim-task-copy", 0);
  if (fd < 0)
    return -1;
  if (ftruncate(fd, (off_t)h->size) < 0 ||
      pwrite(fd, h, h->size, 0) != (ssize_t)h->size) {
    close(fd);
    return -1;
  }
  return fd;
}

/* The copy starts with the origin's suspend count: it parks at once and
 * runs when the mover resumes it, as a destination's server does. */
static void resume_copy(int fd, uint64_t size) {
  struct task_hdr *c =
      mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (c == MAP_FAILED)
    return;
  if (task_park(c, 5000) == 0)
    task_resume(c);
  munmap(c, size);
}

static void *selfmove_main(void *arg) {
  struct selfmove *sm = arg;
  struct task_hdr *h = task_hdr();
  struct mtask *m = task_root();
  while (__atomic_load_n(&m->n[0], __ATOMIC_RELAXED) < sm->at)
    usleep(1000);
  task_suspend(h);
  if (task_park(h, 5000) < 0) {
    task_resume(h); /* the origin goes on */
    return NULL;
  }
  h->migrations++;
  int fd = duplicate_region();
  if (fd < 0) {
    h->migrations--;
    task_resume(h);
    return NULL;
  }
  char fdarg[16];
  snprintf(fdarg, sizeof fdarg, "%d", fd);
  pid_t pid = fork();
  if (pid == 0) {
    execl("/proc/self/exe", sm->argv[0], "--adopt", fdarg, (char *)NULL);
    _exit(127);
  }
  if (pid < 0) {
    close(fd);
    h->migrations--;
    task_resume(h);
    return NULL;
  }
  task_end(h);
  resume_copy(fd, h->size);
  int st;
  waitpid(pid, &st, 0);
  _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 1);
}

static int start_selfmove(long at, char **argv) {
  static struct selfmove sm;
  pthread_t t;
  sm.at = at;
  sm.argv = argv;
  return pthread_create(&t, NULL, selfmove_main, &sm) == 0 ? 0 : -1;
}

struct opts {
  uint64_t threads, limit, period, size, dirty_rate, adopt, selfmove;
  uint64_t read_after;
  int adopting;
};

static int parse(int argc, char **argv, struct opts *o) {
  static const struct option lo[] = {
      {"threads", 1, 0, 't'},  {"limit", 1, 0, 'n'},      {"period", 1, 0, 'p'},
      {"size", 1, 0, 's'},     {"dirty-rate", 1, 0, 'd'}, {"adopt", 1, 0, 'a'},
      {"selfmove", 1, 0, 'm'}, {"read-after", 1, 0, 'r'}, {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    int r = -1;
    switch (c) {
    case 't':
      r = num_opt_u64("mtask", "--threads", optarg, 1, MTASK_COUNTERS_MAX, 0,
                      &o->threads);
      break;
    case 'n':
      r = num_opt_u64("mtask", "--limit", optarg, 0, 1ull << 40, 0, &o->limit);
      break;
    case 'p':
      r = num_opt_u64("mtask", "--period", optarg, 0, 60000, 0, &o->period);
      break;
    case 's':
      r = num_opt_u64("mtask", "--size", optarg, TASK_REGION_MIN,
                      TASK_REGION_MAX, 0, &o->size);
      break;
    case 'd':
      r = num_opt_u64("mtask", "--dirty-rate", optarg, 0, 1 << 20, 0,
                      &o->dirty_rate);
      break;
    case 'a':
      o->adopting = 1;
      r = num_opt_u64("mtask", "--adopt", optarg, 0, 1 << 20, 0, &o->adopt);
      break;
    case 'm':
      r = num_opt_u64("mtask", "--selfmove", optarg, 1, 1ull << 40, 0,
                      &o->selfmove);
      break;
    case 'r':
      r = num_opt_u64("mtask", "--read-after", optarg, 0, 1000, 0,
                      &o->read_after);
      break;
    }
    if (r < 0)
      return -1;
  }
  return optind == argc ? 0 : -1;
}

static int create(const struct opts *o) {
  int r = task_init(o->size);
  if (r < 0) {
    fprintf(stderr, "mtask: task_init: %s\n", strerror(-r));
    return -1;
  }
  struct mtask *m = task_alloc(sizeof *m);
  task_set_root(m);
  m->threads = (int)o->threads;
  m->limit = (long)o->limit;
  m->period = o->period;
  m->dirty_rate = o->dirty_rate;
  m->read_after = o->read_after;
  for (int i = 0; i < m->threads; i++, m->live++)
    task_thread_new(counter, (void *)(long)i, 10 + i, TASK_POLICY_RR);
  task_thread_new(echo, m, 5, TASK_POLICY_FIFO);
  m->live++;
  if (m->dirty_rate > 0 && ++m->live)
    task_thread_new(writer, m, 1, TASK_POLICY_RR);
  return 0;
}

int main(int argc, char **argv) {
  struct opts o = {
      .threads = 2, .limit = 50, .period = 20, .size = TASK_REGION_MIN};
  task_noaslr(argv);
  setvbuf(stdout, NULL, _IONBF, 0);
  if (parse(argc, argv, &o) < 0) {
    fprintf(stderr, "usage: mtask [--threads K] [--limit N] [--period MS] "
                    "[--size BYTES] [--dirty-rate PAGES] [--selfmove AT] "
                    "[--read-after MOVES] | --adopt FD\n");
    return 2;
  }
  if (o.adopting) {
    int r = task_adopt((int)o.adopt);
    if (r < 0) {
      fprintf(stderr, "mtask: task_adopt: %s\n", strerror(-r));
      return 1;
    }
  } else if (create(&o) < 0) {
    return 1;
  }
  if (o.selfmove && start_selfmove((long)o.selfmove, argv) < 0)
    return 1;
  int r = task_run();
  if (r == TASK_RUN_ENDED && o.selfmove)
    for (;;)
      pause(); /* selfmove_main exits with the new copy's status */
  return r == TASK_RUN_DONE || r == TASK_RUN_ENDED ? 0 : 1;
}
