/* Migratable tasks (include/uksim/task.h): the region, its bump heap, the
 * user-level threads and their cooperative scheduler.
 *
 * One task per process.  The scheduler runs on the kernel thread that
 * calls task_run(); its own context (sched_ctx) is process-local, never in
 * the region, because it belongs to this process's kernel thread.  Every
 * switch goes through the scheduler: a thread's task call saves its
 * registers in the region and returns to the scheduler, which is then the
 * only place that may park the task (the safe point).
 *
 * Compiled without the stack protector (lib/meson.build): thread frames
 * are entered in one process and left in another.
 */
#include "uksim/task.h"
#include "task_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <linux/futex.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static struct task_hdr *hdr;
static int region_fd = -1;
static ucontext_t sched_ctx;

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A task started by a node's migration server dies with it: the node
 * disappearing takes its tasks along, as a machine's crash would. */
static void die_with_parent(void) {
  const char *ppid = getenv("UKSIM_TASK_PARENT");
  if (!ppid)
    return;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != (pid_t)atol(ppid))
    _exit(1); /* it died before prctl */
}

void task_noaslr(char **argv) {
  die_with_parent();
  int pers = personality(0xffffffff);
  if (pers < 0 || (pers & ADDR_NO_RANDOMIZE))
    return;
  if (personality((unsigned long)pers | ADDR_NO_RANDOMIZE) < 0)
    return;
  execv("/proc/self/exe", argv);
  /* Exec failed: go on randomised; task_adopt will then likely refuse to
   * run foreign code addresses only through a crash, so say it. */
  perror("task_noaslr: execv");
}

static uint64_t round_page(uint64_t n) {
  return (n + TASK_PAGE - 1) / TASK_PAGE * TASK_PAGE;
}

static int map_region(int fd, uint64_t size) {
  void *p = mmap((void *)TASK_REGION_ADDR, size, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
  if (p == MAP_FAILED)
    return -errno;
  if (p != (void *)TASK_REGION_ADDR) {
    /* An old kernel ignoring MAP_FIXED_NOREPLACE put it elsewhere. */
    munmap(p, size);
    return -EEXIST;
  }
  hdr = p;
  region_fd = fd;
  return 0;
}

#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif

/* Write tracking for pre-copy (task.h, UKSIM_TASK_UFFD): the region's
 * pages, present or not yet, fault to whoever reads this userfaultfd
 * once it write-protects them; until then nothing changes. */
static void track_writes(void) {
  hdr->uffd = -1;
  if (!getenv("UKSIM_TASK_UFFD"))
    return;
  int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  struct uffdio_api api = {.api = UFFD_API,
                           .features = UFFD_FEATURE_WP_HUGETLBFS_SHMEM |
                                       UFFD_FEATURE_WP_UNPOPULATED};
  /* Arrived by demand paging: absent pages fault to the server too. */
  uint64_t mode = UFFDIO_REGISTER_MODE_WP;
  if (getenv("UKSIM_TASK_DEMAND"))
    mode |= UFFDIO_REGISTER_MODE_MISSING;
  struct uffdio_register reg = {
      .range = {.start = TASK_REGION_ADDR, .len = hdr->size}, .mode = mode};
  if (fd < 0 || ioctl(fd, UFFDIO_API, &api) < 0 ||
      ioctl(fd, UFFDIO_REGISTER, &reg) < 0) {
    perror("task: userfaultfd write tracking");
    if (fd >= 0)
      close(fd);
    return;
  }
  hdr->uffd = fd;
}

int task_init(uint64_t size) {
  if (hdr)
    return -EEXIST;
  size = round_page(size);
  if (size < TASK_REGION_MIN || size > TASK_REGION_MAX)
    return -EINVAL;
  int fd = memfd_create("uksim-task", MFD_CLOEXEC);
  if (fd < 0)
    return -errno;
  int r = ftruncate(fd, (off_t)size) < 0 ? -errno : map_region(fd, size);
  if (r < 0) {
    close(fd);
    return r;
  }
  hdr->magic = TASK_MAGIC;
  hdr->version = TASK_VERSION;
  hdr->nthreads_max = TASK_MAX_THREADS;
  hdr->size = size;
  hdr->heap_off = round_page(sizeof *hdr) + TASK_MAX_THREADS * TASK_STACK_SIZE;
  hdr->brk = hdr->heap_off;
  hdr->current = -1;
  hdr->last = -1;
  track_writes();
  return 0;
}

/* A thread slot is sane when its state is known and, if it may run again,
 * its stack and saved stack pointer lie inside the region. */
static int thread_ok(const struct task_thread *t, uint64_t size) {
  if (t->state < TASK_THREAD_FREE || t->state > TASK_THREAD_CALL)
    return 0;
  if (t->state == TASK_THREAD_FREE || t->state == TASK_THREAD_DEAD)
    return 1;
  uint64_t sp = (uint64_t)t->ctx.uc_mcontext.gregs[REG_RSP];
  return t->stack_off >= sizeof(struct task_hdr) &&
         t->stack_off + TASK_STACK_SIZE <= size && t->suspend >= 0 &&
         (t->policy == TASK_POLICY_RR || t->policy == TASK_POLICY_FIFO) &&
         sp > TASK_REGION_ADDR && sp <= TASK_REGION_ADDR + size;
}

/* A service handle is sane when its names end inside it, its state is
 * known and its lengths fit its buffers. */
static int service_ok(const struct task_service *s) {
  return memchr(s->name, 0, sizeof s->name) != NULL &&
         memchr(s->node, 0, sizeof s->node) != NULL &&
         s->state >= TASK_CALL_IDLE && s->state <= TASK_CALL_DONE &&
         s->req_len <= TASK_CALL_MAX && s->rep_len <= TASK_CALL_MAX &&
         s->ica >= -1 && s->ica < TASK_ICAS_MAX && s->data_len <= TASK_ICA_MAX;
}

/* A held ICA is whole pages of the heap; a free slot is all zero. */
static int ica_ok(const struct task_ica *i, const struct task_hdr *h) {
  if (i->off == 0)
    return i->len == 0;
  return i->off % TASK_PAGE == 0 && i->len % TASK_PAGE == 0 && i->len > 0 &&
         i->len <= TASK_ICA_MAX && i->off >= h->heap_off &&
         i->off + i->len <= h->brk; /* brk <= size: checked before */
}

int task_check(const void *base, uint64_t len) {
  const struct task_hdr *h = base;
  if (len < TASK_REGION_MIN || len > TASK_REGION_MAX || len % TASK_PAGE)
    return -EINVAL;
  if (h->magic != TASK_MAGIC || h->version != TASK_VERSION ||
      h->nthreads_max != TASK_MAX_THREADS || h->size != len)
    return -EINVAL;
  if (h->heap_off > len || h->brk < h->heap_off || h->brk > len)
    return -EINVAL;
  for (int i = 0; i < TASK_MAX_THREADS; i++)
    if (!thread_ok(&h->th[i], len))
      return -EINVAL;
  for (int i = 0; i < TASK_SERVICES_MAX; i++)
    if (!service_ok(&h->svc[i]))
      return -EINVAL;
  for (int i = 0; i < TASK_ICAS_MAX; i++)
    if (!ica_ok(&h->ica[i], h))
      return -EINVAL;
  return 0;
}

/* After a move the origin's clock means nothing here: a sleeping thread
 * sleeps what it had left when the task was parked. */
static void rebase_sleepers(void) {
  uint64_t now = now_ms();
  for (int i = 0; i < TASK_MAX_THREADS; i++)
    if (hdr->th[i].state == TASK_THREAD_SLEEP)
      hdr->th[i].wake_ms = now + hdr->th[i].sleep_left;
}

/* A copy started before its region was there (task.h,
 * UKSIM_TASK_WAIT_FD): says it is ready, then waits for the word that the
 * region is whole.  0, or -ECANCELED when the server gave up the move. */
static int wait_for_region(void) {
  const char *s = getenv("UKSIM_TASK_WAIT_FD");
  if (!s)
    return 0;
  int fd = atoi(s);
  char c = 'r';
  ssize_t n = write(fd, &c, 1);
  while (n == 1 && (n = read(fd, &c, 1)) < 0 && errno == EINTR)
    ;
  close(fd);
  return n == 1 ? 0 : -ECANCELED;
}

/* Threads waiting for a call's answer look at their handle again: after a
 * move, or when answers came in. */
static void wake_callers(void) {
  for (int i = 0; i < TASK_MAX_THREADS; i++)
    if (hdr->th[i].state == TASK_THREAD_CALL)
      hdr->th[i].state = TASK_THREAD_READY;
}

/* Calls out at the origin run once, from here: sent again when the copy
 * first runs, after it has been resumed, not while it adopts.  Sending
 * reads a data ICA's pages, which under demand paging are fetched only
 * once the task has resumed (a fault before would wait forever). */
static int resend_due;

int task_adopt(int fd) {
  struct stat st;
  if (hdr || wait_for_region() < 0) {
    close(fd);
    return hdr ? -EEXIST : -ECANCELED;
  }
  if (fstat(fd, &st) < 0 || st.st_size <= 0) {
    close(fd);
    return -EINVAL;
  }
  void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    int err = -errno;
    close(fd);
    return err;
  }
  int r = task_check(p, (uint64_t)st.st_size);
  munmap(p, (size_t)st.st_size);
  if (r == 0)
    r = map_region(fd, (uint64_t)st.st_size);
  if (r < 0) {
    close(fd);
    return r;
  }
  hdr->current = -1;
  atomic_store(&hdr->parked, 0);
  rebase_sleepers();
  track_writes();
  resend_due = 1;
  wake_callers();
  return 0;
}

struct task_hdr *task_hdr(void) {
  return hdr;
}

int task_fd(void) {
  return region_fd;
}

void *task_alloc(size_t n) {
  uint64_t start = (hdr->brk + 15) & ~15ull;
  if (n > hdr->size || start + n > hdr->size)
    return NULL;
  hdr->brk = start + n;
  return (char *)hdr + start;
}

int task_ica_new(size_t len) {
  if (hdr == NULL || len == 0 || len > TASK_ICA_MAX)
    return -EINVAL;
  int i = 0;
  while (i < TASK_ICAS_MAX && hdr->ica[i].off != 0)
    i++;
  uint64_t start = round_page(hdr->brk), n = round_page(len);
  if (i == TASK_ICAS_MAX || start + n > hdr->size)
    return -ENOSPC;
  hdr->brk = start + n;
  hdr->ica[i] = (struct task_ica){.off = start, .len = n};
  return i;
}

void *task_ica(int i, size_t *len) {
  if (hdr == NULL || i < 0 || i >= TASK_ICAS_MAX || hdr->ica[i].off == 0)
    return NULL;
  if (len)
    *len = hdr->ica[i].len;
  return (char *)hdr + hdr->ica[i].off;
}

void task_set_root(void *p) {
  hdr->root = p;
}

void *task_root(void) {
  return hdr->root;
}

/* The first frame of every thread: runs its function, then marks it dead
 * and goes back to the scheduler for good.  makecontext passes ints only,
 * so the slot index is the argument. */
static void thread_start(int i) {
  struct task_thread *t = &hdr->th[i];
  t->fn(t->arg);
  t->state = TASK_THREAD_DEAD;
  hdr->current = -1;
  setcontext(&sched_ctx);
}

/* A fresh context that starts in thread_start(i) on the thread's stack.
 * Its own function: getcontext returns twice, and the caller's loop
 * variables must not live across it. */
static __attribute__((noinline)) void init_context(struct task_thread *t,
                                                   int i) {
  getcontext(&t->ctx);
  t->ctx.uc_stack.ss_sp = (char *)hdr + t->stack_off;
  t->ctx.uc_stack.ss_size = TASK_STACK_SIZE;
  t->ctx.uc_link = NULL;
  makecontext(&t->ctx, (void (*)(void))thread_start, 1, i);
}

int task_thread_new(void (*fn)(void *), void *arg, int priority, int policy) {
  if (!hdr || !fn || (policy != TASK_POLICY_RR && policy != TASK_POLICY_FIFO))
    return -EINVAL;
  for (int i = 0; i < TASK_MAX_THREADS; i++) {
    struct task_thread *t = &hdr->th[i];
    if (t->state != TASK_THREAD_FREE)
      continue;
    memset(t, 0, sizeof *t);
    t->fn = fn;
    t->arg = arg;
    t->priority = priority;
    t->policy = policy;
    t->stack_off = round_page(sizeof *hdr) + (uint64_t)i * TASK_STACK_SIZE;
    init_context(t, i);
    t->state = TASK_THREAD_READY;
    return i;
  }
  return -EAGAIN;
}

/* Sleepers whose time has come and input waiters with input become
 * ready.  `input` is 1 when fd 0 is readable or at end of input. */
static void wake_threads(uint64_t now, int input) {
  for (int i = 0; i < TASK_MAX_THREADS; i++) {
    struct task_thread *t = &hdr->th[i];
    if (t->state == TASK_THREAD_SLEEP && now >= t->wake_ms)
      t->state = TASK_THREAD_READY;
    if (t->state == TASK_THREAD_INPUT && input)
      t->state = TASK_THREAD_READY;
  }
}

/* Is thread a a better choice than thread b (b may be -1)? */
static int better(int a, int b) {
  if (b < 0)
    return 1;
  struct task_thread *ta = &hdr->th[a], *tb = &hdr->th[b];
  if (ta->priority != tb->priority)
    return ta->priority > tb->priority;
  if (ta->policy == TASK_POLICY_FIFO && a == hdr->last)
    return 1;
  if (tb->policy == TASK_POLICY_FIFO && b == hdr->last)
    return 0;
  return ta->last_run < tb->last_run;
}

static int pick(void) {
  int best = -1;
  for (int i = 0; i < TASK_MAX_THREADS; i++) {
    struct task_thread *t = &hdr->th[i];
    if (t->state == TASK_THREAD_READY && t->suspend == 0 && better(i, best))
      best = i;
  }
  return best;
}

/* What the scheduler does when no thread can run: waits for the nearest
 * sleeper or for console input, at most 10 ms so that a suspension is
 * seen promptly.  Returns 1 when every thread is dead or free. */
static int idle(void) {
  uint64_t now = now_ms(), wait = 10;
  int live = 0, want_input = 0;
  for (int i = 0; i < TASK_MAX_THREADS; i++) {
    struct task_thread *t = &hdr->th[i];
    if (t->state == TASK_THREAD_FREE || t->state == TASK_THREAD_DEAD)
      continue;
    live = 1;
    if (t->state == TASK_THREAD_SLEEP && t->wake_ms > now &&
        t->wake_ms - now < wait)
      wait = t->wake_ms - now;
    if (t->state == TASK_THREAD_SLEEP && t->wake_ms <= now)
      wait = 0;
    want_input |= t->state == TASK_THREAD_INPUT;
  }
  if (!live)
    return 1;
  int calls = task__svc_waiting();
  struct pollfd pfd[2] = {{.fd = want_input ? 0 : -1, .events = POLLIN},
                          {.fd = calls ? TASK_SVC_FD : -1, .events = POLLIN}};
  int input = 0;
  if (want_input || calls)
    input = poll(pfd, 2, (int)wait) > 0 && pfd[0].revents != 0;
  else if (wait > 0)
    nanosleep(&(struct timespec){0, (long)wait * 1000000}, NULL);
  wake_threads(now_ms(), input);
  return 0;
}

static void futex_wait_ms(_Atomic int32_t *w, int32_t v, int ms);
static void futex_wake(_Atomic int32_t *w);

/* The safe point: the scheduler holds no thread.  Sleepers keep what they
 * had left, because the task may wake on another node's clock. */
static void park(void) {
  uint64_t now = now_ms();
  for (int i = 0; i < TASK_MAX_THREADS; i++) {
    struct task_thread *t = &hdr->th[i];
    if (t->state == TASK_THREAD_SLEEP)
      t->sleep_left = t->wake_ms > now ? t->wake_ms - now : 0;
  }
  atomic_store(&hdr->parked, 1);
  futex_wake(&hdr->parked);
  while (atomic_load(&hdr->suspend) > 0 && !atomic_load(&hdr->ended))
    futex_wait_ms(&hdr->suspend, atomic_load(&hdr->suspend), 100);
  atomic_store(&hdr->parked, 0);
  rebase_sleepers();
}

static void run_one(int i) {
  struct task_thread *t = &hdr->th[i];
  hdr->current = i;
  hdr->last = i;
  t->last_run = ++hdr->tick;
  swapcontext(&sched_ctx, &t->ctx);
  hdr->current = -1;
}

/* The migration client's kick (task.h): its only effect is to end the
 * scheduler's idle wait early, since poll and nanosleep return EINTR even
 * under SA_RESTART, while the task's other calls restart. */
static void on_kick(int sig) {
  (void)sig;
}

static void catch_kick(void) {
  struct sigaction sa = {.sa_handler = on_kick, .sa_flags = SA_RESTART};
  sigemptyset(&sa.sa_mask);
  sigaction(TASK_KICK_SIGNAL, &sa, NULL);
}

int task_run(void) {
  if (!hdr)
    return -EINVAL;
  catch_kick();
  for (;;) {
    if (atomic_load(&hdr->ended))
      return TASK_RUN_ENDED;
    if (atomic_load(&hdr->suspend) > 0) {
      park();
      continue;
    }
    if (resend_due) {
      resend_due = 0;
      task__svc_resend();
    }
    wake_threads(now_ms(), 0);
    if (task__svc_take() > 0)
      wake_callers();
    int i = pick();
    if (i >= 0)
      run_one(i);
    else if (idle())
      return TASK_RUN_DONE;
  }
}

/* Every task call ends here: the thread's registers go into the region
 * and the scheduler runs. */
static void to_scheduler(void) {
  int i = hdr->current;
  hdr->calls++;
  swapcontext(&hdr->th[i].ctx, &sched_ctx);
}

void task__block(int32_t state) {
  hdr->th[hdr->current].state = state;
  to_scheduler();
}

void task_yield(void) {
  to_scheduler();
}

void task_sleep(uint64_t ms) {
  struct task_thread *t = &hdr->th[hdr->current];
  t->wake_ms = now_ms() + ms;
  t->state = TASK_THREAD_SLEEP;
  to_scheduler();
}

int task_write(const void *buf, size_t n) {
  const char *p = buf;
  while (n > 0) {
    ssize_t w = write(1, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return -errno;
    p += w;
    n -= (size_t)w;
  }
  to_scheduler();
  return 0;
}

int task_printf(const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0)
    return -EINVAL;
  return task_write(line,
                    (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

long task_read(void *buf, size_t n) {
  for (;;) {
    struct pollfd pfd = {.fd = 0, .events = POLLIN};
    if (poll(&pfd, 1, 0) > 0) {
      ssize_t r = read(0, buf, n);
      if (r >= 0 || errno != EINTR) {
        long res = r < 0 ? -errno : (long)r;
        to_scheduler();
        return res;
      }
    }
    /* Nothing consumed: the call restarts wherever the task wakes. */
    hdr->th[hdr->current].state = TASK_THREAD_INPUT;
    to_scheduler();
  }
}

int task_self(void) {
  return hdr ? hdr->current : -1;
}

static struct task_thread *live_thread(int i) {
  if (!hdr || i < 0 || i >= TASK_MAX_THREADS)
    return NULL;
  struct task_thread *t = &hdr->th[i];
  if (t->state == TASK_THREAD_FREE || t->state == TASK_THREAD_DEAD)
    return NULL;
  return t;
}

int task_thread_suspend(int i) {
  struct task_thread *t = live_thread(i);
  if (!t)
    return -EINVAL;
  t->suspend++;
  if (i == hdr->current)
    to_scheduler();
  return 0;
}

int task_thread_resume(int i) {
  struct task_thread *t = live_thread(i);
  if (!t || t->suspend == 0)
    return -EINVAL;
  t->suspend--;
  return 0;
}

int task_thread_set_priority(int i, int priority, int policy) {
  struct task_thread *t = live_thread(i);
  if (!t || (policy != TASK_POLICY_RR && policy != TASK_POLICY_FIFO))
    return -EINVAL;
  t->priority = priority;
  t->policy = policy;
  return 0;
}

/* Futexes on the region's words work across processes: the region is a
 * shared mapping, so a migration client in another process can wait. */
static void futex_wait_ms(_Atomic int32_t *w, int32_t v, int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
  syscall(SYS_futex, (int32_t *)w, FUTEX_WAIT, v, &ts, NULL, 0);
}

static void futex_wake(_Atomic int32_t *w) {
  syscall(SYS_futex, (int32_t *)w, FUTEX_WAKE, 1 << 30, NULL, NULL, 0);
}

void task_suspend(struct task_hdr *h) {
  atomic_fetch_add(&h->suspend, 1);
}

int task_park(struct task_hdr *h, int timeout_ms) {
  uint64_t end = now_ms() + (uint64_t)timeout_ms;
  while (!atomic_load(&h->parked)) {
    uint64_t now = now_ms();
    if (now >= end)
      return -ETIMEDOUT;
    futex_wait_ms(&h->parked, 0, (int)(end - now < 10 ? end - now : 10));
  }
  return 0;
}

void task_resume(struct task_hdr *h) {
  if (atomic_load(&h->suspend) > 0)
    atomic_fetch_sub(&h->suspend, 1);
  futex_wake(&h->suspend);
}

void task_end(struct task_hdr *h) {
  atomic_store(&h->ended, 1);
  futex_wake(&h->suspend);
}
