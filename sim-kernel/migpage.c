/* Demand paging for process migration: see migpage.h, and migd.h for the
 * states.
 *
 * Destination: three threads share one page table (struct fetch): the
 * fault handler reads the task's userfaultfd and asks for a faulting page
 * and its neighbours; the fetcher asks for the other absent pages in
 * order, at most MIG_FETCH_WINDOW ahead of what arrived; the caller's
 * thread receives every answer and installs it.  A page goes ABSENT ->
 * WANTED (asked for) -> PRESENT (installed) and never back, so each page
 * is asked for by one of them once, and installed once; an answer for a
 * page already present (an origin repeating itself) is dropped.
 *
 * The task runs its threads on one kernel thread (task.h), so at most one
 * of its faults waits at a time: the handler serves faults one after the
 * other, waiting for each page, which is also how it times them.
 */
#include "migpage.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/pidfd.h>
#include <time.h>
#include <unistd.h>

#include "migwire.h"
#include "uksim/xalloc.h"

_Static_assert(MIG_ZERO_RUN_MAX >= MIG_PAGEREQ_MAX,
               "a hole's answer covers at least the request");

static uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* ---- origin ---- */

static int send_zero(int fd, uint64_t pg, uint64_t n) {
  MigMsg m = MIG_MSG__INIT;
  MigZeroPages z = MIG_ZERO_PAGES__INIT;
  z.offset = pg * TASK_PAGE;
  z.count = n;
  m.m_case = MIG_MSG__M_ZERO_PAGES;
  m.zero_pages = &z;
  return mig_send(fd, &m);
}

static int send_bytes(int fd, uint64_t pg, uint64_t n, uint8_t *buf,
                      struct migpage_stats *st) {
  MigMsg m = MIG_MSG__INIT;
  MigPages p = MIG_PAGES__INIT;
  p.offset = pg * TASK_PAGE;
  p.data.data = buf;
  p.data.len = (size_t)(n * TASK_PAGE);
  m.m_case = MIG_MSG__M_PAGES;
  m.pages = &p;
  st->bytes += p.data.len;
  return mig_send(fd, &m);
}

static int zero_page(const uint8_t *p) {
  static const uint8_t zero[TASK_PAGE];
  return memcmp(p, zero, TASK_PAGE) == 0;
}

/* Sends pages [pg, pg + n) of the duplicate's data, its zero pages as
 * ZeroPages: a task that arrived here by demand paging holds its
 * untouched pages as zero pages, not holes, and they need not travel
 * again. */
static int send_data(int fd, int region_fd, uint64_t pg, uint64_t n,
                     uint8_t *buf, struct migpage_stats *st) {
  size_t len = (size_t)(n * TASK_PAGE);
  if (pread(region_fd, buf, len, (off_t)(pg * TASK_PAGE)) != (ssize_t)len)
    return -EIO;
  for (uint64_t k = 0, run; k < n; k += run) {
    int zero = zero_page(buf + k * TASK_PAGE);
    for (run = 1; k + run < n && zero_page(buf + (k + run) * TASK_PAGE) == zero;
         run++)
      ;
    int r = zero ? send_zero(fd, pg + k, run)
                 : send_bytes(fd, pg + k, run, buf + k * TASK_PAGE, st);
    if (r < 0)
      return r;
  }
  return 0;
}

/* Where the extent that holds page pg ends (at most `end`), and whether
 * the duplicate holds data there: holes (pages never written) are sent as
 * ZeroPages, without reading them, which would allocate them. */
static uint64_t extent(int region_fd, uint64_t pg, uint64_t end, int *data) {
  off_t at = (off_t)(pg * TASK_PAGE);
  off_t d = lseek(region_fd, at, SEEK_DATA);
  *data = d == at;
  if (!*data) {
    uint64_t next = d < 0 ? end : (uint64_t)d / TASK_PAGE;
    return next < end ? next : end;
  }
  off_t h = lseek(region_fd, at, SEEK_HOLE);
  uint64_t next = h < 0 ? end : ((uint64_t)h + TASK_PAGE - 1) / TASK_PAGE;
  return next < end ? next : end;
}

/* Answers a request for pages [pg, pg + n) of a region of `pages`.  A
 * hole is answered to its end, past the request, up to MIG_ZERO_RUN_MAX
 * pages: the duplicate does not change, the destination installs what it
 * has not got, and a task's untouched half takes few requests. */
static int answer(int fd, int region_fd, uint64_t pg, uint64_t n,
                  uint64_t pages, uint8_t *buf, struct migpage_stats *st) {
  for (uint64_t end = pg + n; pg < end;) {
    int data;
    uint64_t stop = extent(region_fd, pg, pages, &data);
    if (data && stop > end)
      stop = end;
    if (!data && stop - pg > MIG_ZERO_RUN_MAX)
      stop = pg + MIG_ZERO_RUN_MAX; /* past end: a request is shorter */
    if (stop <= pg)
      stop = pg + 1; /* a page the lseeks disagree on: read it */
    int r = data ? send_data(fd, region_fd, pg, stop - pg, buf, st)
                 : send_zero(fd, pg, stop - pg);
    if (r < 0)
      return r;
    pg = stop;
  }
  return 0;
}

/* A request names whole pages inside the region, at most one message's
 * worth. */
static int request_ok(const MigPageReq *q, uint64_t size) {
  uint64_t pages = size / TASK_PAGE;
  return q->offset % TASK_PAGE == 0 && q->count >= 1 &&
         q->count <= MIG_PAGEREQ_MAX && q->offset / TASK_PAGE < pages &&
         q->count <= pages - q->offset / TASK_PAGE;
}

static void take_done(const MigPagesDone *d, struct migpage_stats *st) {
  st->remote_faults = d->remote_faults;
  st->fault_us_sum = d->fault_us_sum;
  st->fault_us_max = d->fault_us_max;
  st->first_fault_us = d->first_fault_us;
  st->pages = d->pages;
}

/* One message from the destination: 1 at PagesDone, 0 to go on, or
 * -errno. */
static int serve_one(int fd, int region_fd, uint64_t size, MigMsg *m,
                     uint8_t *buf, struct migpage_stats *st) {
  switch (m->m_case) {
  case MIG_MSG__M_PAGE_REQ:
    if (!request_ok(m->page_req, size)) {
      fprintf(stderr,
              "migd: page request outside the region refused "
              "(offset %llu, %u pages, region %llu bytes)\n",
              (unsigned long long)m->page_req->offset, m->page_req->count,
              (unsigned long long)size);
      return mig_send_result(fd, -ERANGE, "page request outside the region");
    }
    return answer(fd, region_fd, m->page_req->offset / TASK_PAGE,
                  m->page_req->count, size / TASK_PAGE, buf, st);
  case MIG_MSG__M_PAGES_DONE:
    take_done(m->pages_done, st);
    return 1;
  default:
    return -EPROTO;
  }
}

int migpage_serve(int fd, int region_fd, uint64_t size,
                  struct migpage_stats *st, void (*first_served)(void)) {
  uint8_t *buf = xmalloc(MIG_CHUNK);
  int r = 0;
  for (uint64_t served = 0; r == 0; served++) {
    MigMsg *m = mig_recv(fd);
    if (!m) {
      r = -EPIPE;
      break;
    }
    r = serve_one(fd, region_fd, size, m, buf, st);
    mig_msg__free_unpacked(m, NULL);
    if (r < 0)
      r = r == -EPROTO ? -EPROTO : -EPIPE;
    if (served == 0 && first_served)
      first_served();
  }
  free(buf);
  return r > 0 ? 0 : r;
}

/* ---- destination ---- */

enum page_state {
  PAGE_ABSENT = 0, /* not asked for yet */
  PAGE_WANTED = 1, /* asked for, its answer not installed yet */
  PAGE_PRESENT = 2,
};

struct fetch {
  int fd, uffd;
  uint64_t pages;
  uint32_t prepage;
  uint8_t *state; /* enum page_state, one a page */
  uint64_t present, wanted;
  int end; /* 0 while fetching, 1 complete, -errno lost */
  pthread_mutex_t lock;
  pthread_cond_t cond; /* a page arrived, or the end */
  uint64_t t_resume;
  struct migpage_stats st;
};

static int ask(struct fetch *f, uint64_t pg, uint64_t n) {
  MigMsg m = MIG_MSG__INIT;
  MigPageReq q = MIG_PAGE_REQ__INIT;
  q.offset = pg * TASK_PAGE;
  q.count = (uint32_t)n;
  m.m_case = MIG_MSG__M_PAGE_REQ;
  m.page_req = &q;
  return mig_send(f->fd, &m);
}

/* Marks the absent run from pg, at most max pages, wanted; its length.
 * Called with the lock held. */
static uint64_t want_run(struct fetch *f, uint64_t pg, uint64_t max) {
  uint64_t n = 0;
  while (n < max && pg + n < f->pages && f->state[pg + n] == PAGE_ABSENT)
    f->state[pg + n++] = PAGE_WANTED;
  f->wanted += n;
  return n;
}

static void wake_range(struct fetch *f, uint64_t pg, uint64_t n) {
  struct uffdio_range r = {.start = TASK_REGION_ADDR + pg * TASK_PAGE,
                           .len = n * TASK_PAGE};
  ioctl(f->uffd, UFFDIO_WAKE, &r);
}

static void note_fault(struct fetch *f, uint64_t t0) {
  uint64_t t = now_us(), us = t - t0;
  if (f->st.remote_faults++ == 0)
    f->st.first_fault_us = t - f->t_resume;
  f->st.fault_us_sum += us;
  if (us > f->st.fault_us_max)
    f->st.fault_us_max = us;
}

/* One fault at page pg: ask for it (and its neighbours) unless asked for
 * already, then wait until it is in, which wakes the task. */
static void serve_fault(struct fetch *f, uint64_t pg) {
  uint64_t t0 = now_us();
  pthread_mutex_lock(&f->lock);
  if (f->state[pg] == PAGE_PRESENT) {
    pthread_mutex_unlock(&f->lock);
    /* Installed while the fault was queued, as a rule; a header page the
     * origin left a hole would fault for ever: a zero page settles it
     * (the kernel refuses it over a page that is in). */
    struct uffdio_zeropage z = {
        .range = {.start = TASK_REGION_ADDR + pg * TASK_PAGE,
                  .len = TASK_PAGE}};
    if (ioctl(f->uffd, UFFDIO_ZEROPAGE, &z) < 0)
      wake_range(f, pg, 1);
    return;
  }
  uint64_t n = want_run(f, pg, 1 + (uint64_t)f->prepage);
  if (n > 0) {
    pthread_mutex_unlock(&f->lock);
    if (ask(f, pg, n) < 0)
      return; /* the receiver sees the connection end */
    pthread_mutex_lock(&f->lock);
  }
  while (f->state[pg] != PAGE_PRESENT && f->end == 0)
    pthread_cond_wait(&f->cond, &f->lock);
  if (f->state[pg] == PAGE_PRESENT)
    note_fault(f, t0);
  pthread_mutex_unlock(&f->lock);
}

static int ended(struct fetch *f) {
  pthread_mutex_lock(&f->lock);
  int e = f->end;
  pthread_mutex_unlock(&f->lock);
  return e;
}

static void *fault_main(void *arg) {
  struct fetch *f = arg;
  struct pollfd pfd = {.fd = f->uffd, .events = POLLIN};
  while (ended(f) == 0) {
    if (poll(&pfd, 1, MIG_FAULT_POLL_MS) <= 0)
      continue;
    struct uffd_msg msg;
    if (read(f->uffd, &msg, sizeof msg) != sizeof msg ||
        msg.event != UFFD_EVENT_PAGEFAULT)
      continue;
    uint64_t a = msg.arg.pagefault.address;
    if (a >= TASK_REGION_ADDR && a - TASK_REGION_ADDR < f->pages * TASK_PAGE)
      serve_fault(f, (a - TASK_REGION_ADDR) / TASK_PAGE);
  }
  return NULL;
}

/* The background fetcher: every absent page, in order, in runs of one
 * request, at most MIG_FETCH_WINDOW pages ahead of the answers. */
static void *fetcher_main(void *arg) {
  struct fetch *f = arg;
  uint64_t pg = 0;
  for (;;) {
    pthread_mutex_lock(&f->lock);
    while (f->wanted >= MIG_FETCH_WINDOW && f->end == 0)
      pthread_cond_wait(&f->cond, &f->lock);
    while (pg < f->pages && f->state[pg] != PAGE_ABSENT)
      pg++;
    uint64_t n = f->end == 0 ? want_run(f, pg, MIG_PAGEREQ_MAX) : 0;
    pthread_mutex_unlock(&f->lock);
    if (n == 0 || ask(f, pg, n) < 0)
      return NULL;
    pg += n;
  }
}

/* Installs n pages at pg: `src` their bytes, or zero pages when NULL.
 * A run the kernel refuses part of (a page present already) goes again a
 * page at a time. */
static int install_run(struct fetch *f, uint64_t pg, uint64_t n,
                       const uint8_t *src) {
  uint64_t dst = TASK_REGION_ADDR + pg * TASK_PAGE;
  int r;
  if (src) {
    struct uffdio_copy c = {
        .dst = dst, .src = (uint64_t)(uintptr_t)src, .len = n * TASK_PAGE};
    r = ioctl(f->uffd, UFFDIO_COPY, &c);
  } else {
    struct uffdio_zeropage z = {.range = {.start = dst, .len = n * TASK_PAGE}};
    r = ioctl(f->uffd, UFFDIO_ZEROPAGE, &z);
  }
  if (r == 0 || errno != EEXIST || n == 1)
    return r == 0 || errno == EEXIST ? 0 : -errno;
  for (uint64_t k = 0; k < n; k++) {
    int e = install_run(f, pg + k, 1, src ? src + k * TASK_PAGE : NULL);
    if (e < 0)
      return e;
  }
  return 0;
}

/* Installs the pages of one answer that are not present, in runs. */
static int install(struct fetch *f, uint64_t pg, uint64_t n,
                   const uint8_t *src) {
  for (uint64_t k = 0; k < n;) {
    pthread_mutex_lock(&f->lock);
    int have = f->state[pg + k] == PAGE_PRESENT;
    uint64_t run = 1;
    /* At most a request's worth an ioctl: a fault in a long zero run
     * wakes when its part is in, not the whole run. */
    while (k + run < n && run < MIG_PAGEREQ_MAX &&
           (f->state[pg + k + run] == PAGE_PRESENT) == have)
      run++;
    pthread_mutex_unlock(&f->lock);
    int r = have
                ? 0
                : install_run(f, pg + k, run, src ? src + k * TASK_PAGE : NULL);
    if (r < 0)
      return r;
    pthread_mutex_lock(&f->lock);
    for (uint64_t j = k; j < k + run && !have; j++) {
      f->wanted -= f->state[pg + j] == PAGE_WANTED;
      f->state[pg + j] = PAGE_PRESENT;
      f->present++;
      f->st.pages++;
    }
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);
    k += run;
  }
  return 0;
}

/* One answer from the origin: 0, or -errno for a refusal, an answer
 * outside the region, or one that cannot be installed. */
static int receive_one(struct fetch *f, MigMsg *m) {
  uint64_t off, n;
  const uint8_t *src = NULL;
  if (m->m_case == MIG_MSG__M_PAGES) {
    off = m->pages->offset;
    n = m->pages->data.len / TASK_PAGE;
    src = m->pages->data.data;
    if (m->pages->data.len % TASK_PAGE)
      return -EPROTO;
  } else if (m->m_case == MIG_MSG__M_ZERO_PAGES) {
    off = m->zero_pages->offset;
    n = m->zero_pages->count;
  } else {
    if (m->m_case == MIG_MSG__M_RESULT)
      fprintf(stderr, "migd: the origin refused a page request: %s\n",
              m->result->msg);
    return m->m_case == MIG_MSG__M_RESULT ? -ERANGE : -EPROTO;
  }
  if (off % TASK_PAGE || off / TASK_PAGE > f->pages ||
      n > f->pages - off / TASK_PAGE)
    return -ERANGE;
  return install(f, off / TASK_PAGE, n, src);
}

static int send_done(struct fetch *f) {
  MigMsg m = MIG_MSG__INIT;
  MigPagesDone d = MIG_PAGES_DONE__INIT;
  d.remote_faults = f->st.remote_faults;
  d.fault_us_sum = f->st.fault_us_sum;
  d.fault_us_max = f->st.fault_us_max;
  d.first_fault_us = f->st.first_fault_us;
  d.pages = f->st.pages;
  m.m_case = MIG_MSG__M_PAGES_DONE;
  m.pages_done = &d;
  return mig_send(f->fd, &m);
}

/* The receiver, on the caller's thread: answers until every page is in. */
static int receive_all(struct fetch *f, void (*first_fetched)(void)) {
  int r = 0;
  for (uint64_t k = 0; r == 0 && f->present < f->pages; k++) {
    MigMsg *m = mig_recv(f->fd);
    if (!m)
      return -EPIPE;
    r = receive_one(f, m);
    mig_msg__free_unpacked(m, NULL);
    if (k == 0 && first_fetched)
      first_fetched();
  }
  return r;
}

static void fetch_init(struct fetch *f, int fd, int uffd, uint64_t size,
                       uint64_t have, uint32_t prepage) {
  memset(f, 0, sizeof *f);
  f->fd = fd;
  f->uffd = uffd;
  f->pages = size / TASK_PAGE;
  f->prepage = prepage < MIG_PREPAGE_MAX ? prepage : MIG_PREPAGE_MAX;
  f->state = xcalloc(f->pages, 1);
  for (uint64_t pg = 0; pg < have / TASK_PAGE && pg < f->pages; pg++)
    f->state[pg] = PAGE_PRESENT;
  f->present = have / TASK_PAGE < f->pages ? have / TASK_PAGE : f->pages;
  pthread_mutex_init(&f->lock, NULL);
  pthread_cond_init(&f->cond, NULL);
  f->t_resume = now_us();
}

/* After PagesDone: answers still on their way (to requests for pages a
 * hole's answer brought first) are read and dropped until the origin
 * closes, so that it never sees the connection reset before it read
 * PagesDone. */
static void drain(int fd) {
  MigMsg *m;
  while ((m = mig_recv(fd)) != NULL)
    mig_msg__free_unpacked(m, NULL);
}

int migpage_fetch(int fd, int uffd, uint64_t size, uint64_t have,
                  uint32_t prepage, struct migpage_stats *st,
                  void (*first_fetched)(void)) {
  struct fetch f;
  pthread_t faults, fetcher;
  fetch_init(&f, fd, uffd, size, have, prepage);
  if (pthread_create(&faults, NULL, fault_main, &f) != 0 ||
      pthread_create(&fetcher, NULL, fetcher_main, &f) != 0)
    abort(); /* out of threads: as out of memory */
  int r = receive_all(&f, first_fetched);
  pthread_mutex_lock(&f.lock);
  f.end = r < 0 ? r : 1;
  pthread_cond_broadcast(&f.cond);
  pthread_mutex_unlock(&f.lock);
  pthread_join(faults, NULL);
  pthread_join(fetcher, NULL);
  /* The task's process gone (its address space, ESRCH): it ended here,
   * and needs no page more; the origin is told as if all were in. */
  int task_ended = r == -ESRCH;
  if (r == 0 || task_ended)
    r = send_done(&f) < 0 ? -EPIPE : task_ended;
  if (r >= 0)
    drain(fd);
  *st = f.st;
  free(f.state);
  pthread_mutex_destroy(&f.lock);
  pthread_cond_destroy(&f.cond);
  return r;
}

int migpage_take_uffd(pid_t pid, int task_fd) {
  if (task_fd < 0)
    return -ENOTSUP;
  int pfd = (int)pidfd_open(pid, 0);
  if (pfd < 0)
    return -errno;
  int fd = pidfd_getfd(pfd, task_fd, 0);
  int err = fd < 0 ? -errno : 0;
  close(pfd);
  return fd < 0 ? err : fd;
}
