/* Demand paging's two sides (sim-kernel/migpage.h) over a socketpair,
 * without nodes: the origin's answers from a memfd holding data, written
 * zero pages and holes; refused requests; the destination fetching a
 * whole region into this process at TASK_REGION_ADDR under a real
 * userfaultfd while a thread of the test touches it; a lost origin. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "migpage.h"
#include "migwire.h"

#define SIZE TASK_REGION_MIN
#define PAGES (SIZE / TASK_PAGE)

/* A duplicate: page k holds the byte k + 1 everywhere, except page
 * ZERO (written, all zero) and pages HOLE .. HOLE + 7 (holes), all past
 * the header pages a demand migration sends first. */
#define ZERO 99
#define HOLE 100
static int duplicate(void) {
  int fd = memfd_create("test-migpage", MFD_CLOEXEC);
  cr_assert_geq(fd, 0);
  cr_assert_eq(ftruncate(fd, SIZE), 0);
  static uint8_t page[TASK_PAGE];
  for (uint64_t k = 0; k < PAGES; k++) {
    if (k >= HOLE && k < HOLE + 8)
      continue;
    memset(page, k == ZERO ? 0 : (int)(k + 1), sizeof page);
    cr_assert_eq(pwrite(fd, page, sizeof page, (off_t)(k * TASK_PAGE)),
                 (ssize_t)sizeof page);
  }
  return fd;
}

/* One side of the connection, on a thread of its own: the origin
 * (region_fd its duplicate) or the destination (uffd its fault fd). */
struct side {
  int fd, region_fd, uffd, r;
  struct migpage_stats st;
  pthread_t t;
};

static void *origin_main(void *arg) {
  struct side *o = arg;
  o->r = migpage_serve(o->fd, o->region_fd, SIZE, &o->st, NULL);
  return NULL;
}

static void origin_start(struct side *o, int sv[2]) {
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  memset(o, 0, sizeof *o);
  o->fd = sv[0];
  o->region_fd = duplicate();
  cr_assert_eq(pthread_create(&o->t, NULL, origin_main, o), 0);
}

/* Asks for n pages at byte `offset`; the answer. */
static MigMsg *ask_at(int fd, uint64_t offset, uint32_t n) {
  MigMsg m = MIG_MSG__INIT;
  MigPageReq q = MIG_PAGE_REQ__INIT;
  q.offset = offset;
  q.count = n;
  m.m_case = MIG_MSG__M_PAGE_REQ;
  m.page_req = &q;
  cr_assert_eq(mig_send(fd, &m), 0);
  MigMsg *a = mig_recv(fd);
  cr_assert_not_null(a);
  return a;
}

static MigMsg *ask(int fd, uint64_t pg, uint32_t n) {
  return ask_at(fd, pg * TASK_PAGE, n);
}

static void expect_zero(int fd, uint64_t pg, uint32_t n, uint64_t count) {
  MigMsg *a = ask(fd, pg, n);
  cr_assert_eq(a->m_case, MIG_MSG__M_ZERO_PAGES, "page %llu: %d",
               (unsigned long long)pg, a->m_case);
  cr_assert_eq(a->zero_pages->offset, pg * TASK_PAGE);
  cr_assert_eq(a->zero_pages->count, count);
  mig_msg__free_unpacked(a, NULL);
}

static void expect_refused(int fd, uint64_t offset, uint32_t n) {
  MigMsg *a = ask_at(fd, offset, n);
  cr_assert_eq(a->m_case, MIG_MSG__M_RESULT);
  cr_assert_eq(a->result->err, -ERANGE);
  mig_msg__free_unpacked(a, NULL);
}

TestSuite(migpage, .timeout = 60);

Test(migpage, origin_answers_data_zero_pages_and_holes) {
  struct side o;
  int sv[2];
  origin_start(&o, sv);
  MigMsg *a = ask(sv[1], 10, 2);
  cr_assert_eq(a->m_case, MIG_MSG__M_PAGES);
  cr_assert_eq(a->pages->offset, 10 * TASK_PAGE);
  cr_assert_eq(a->pages->data.len, 2 * TASK_PAGE);
  cr_assert_eq(a->pages->data.data[0], 11);
  cr_assert_eq(a->pages->data.data[TASK_PAGE], 12);
  mig_msg__free_unpacked(a, NULL);
  expect_zero(sv[1], ZERO, 1, 1); /* written, but zero */
  expect_zero(sv[1], HOLE, 1, 8); /* a hole: answered to its end */
  expect_refused(sv[1], SIZE, 1);
  expect_refused(sv[1], SIZE - TASK_PAGE, 2);
  expect_refused(sv[1], 1, 1);
  expect_refused(sv[1], 0, MIG_PAGEREQ_MAX + 1);
  expect_refused(sv[1], 0, 0);
  MigMsg m = MIG_MSG__INIT;
  MigPagesDone d = MIG_PAGES_DONE__INIT;
  d.remote_faults = 7;
  m.m_case = MIG_MSG__M_PAGES_DONE;
  m.pages_done = &d;
  cr_assert_eq(mig_send(sv[1], &m), 0);
  pthread_join(o.t, NULL);
  cr_assert_eq(o.r, 0);
  cr_assert_eq(o.st.remote_faults, 7);
  cr_assert_eq(o.st.bytes, 2 * TASK_PAGE);
  close(sv[0]);
  close(sv[1]);
  close(o.region_fd);
}

Test(migpage, origin_loses_a_destination_that_goes) {
  struct side o;
  int sv[2];
  origin_start(&o, sv);
  mig_msg__free_unpacked(ask(sv[1], 0, 1), NULL);
  close(sv[1]);
  pthread_join(o.t, NULL);
  cr_assert_eq(o.r, -EPIPE);
  close(sv[0]);
  close(o.region_fd);
}

/* ---- the destination, in this process ---- */

struct dest {
  uint8_t *region;
  int memfd, uffd;
};

/* The region at TASK_REGION_ADDR with its header pages in, the rest
 * absent and registered for MISSING faults, as task_adopt leaves a task
 * that arrived by demand paging. */
static void dest_map(struct dest *d) {
  _Static_assert(MIG_HEADER_BYTES / TASK_PAGE < ZERO, "holes past the header");
  if (getenv("UKSIM_UNDER_VALGRIND"))
    cr_skip_test("valgrind does not know userfaultfd");
  d->memfd = memfd_create("test-migpage-dest", MFD_CLOEXEC);
  cr_assert_eq(ftruncate(d->memfd, SIZE), 0);
  static uint8_t header[MIG_HEADER_BYTES];
  memset(header, 1, sizeof header); /* page 0 of the duplicate is 1s */
  cr_assert_eq(pwrite(d->memfd, header, sizeof header, 0),
               (ssize_t)sizeof header);
  d->region = mmap((void *)TASK_REGION_ADDR, SIZE, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_FIXED_NOREPLACE, d->memfd, 0);
  cr_assert_eq((uintptr_t)d->region, TASK_REGION_ADDR);
  d->uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  cr_assert_geq(d->uffd, 0, "userfaultfd: %s", strerror(errno));
  struct uffdio_api api = {.api = UFFD_API};
  struct uffdio_register reg = {
      .range = {.start = TASK_REGION_ADDR, .len = SIZE},
      .mode = UFFDIO_REGISTER_MODE_MISSING};
  cr_assert_eq(ioctl(d->uffd, UFFDIO_API, &api), 0);
  cr_assert_eq(ioctl(d->uffd, UFFDIO_REGISTER, &reg), 0);
}

static void dest_unmap(struct dest *d) {
  munmap(d->region, SIZE);
  close(d->uffd);
  close(d->memfd);
}

static void *fetch_main(void *arg) {
  struct side *f = arg;
  f->r = migpage_fetch(f->fd, f->uffd, SIZE, MIG_HEADER_BYTES, 2, &f->st, NULL);
  return NULL;
}

/* The byte page k of the duplicate holds everywhere. */
static uint8_t expected(uint64_t k) {
  return k >= ZERO && k < HOLE + 8 ? 0 : (uint8_t)(k + 1);
}

Test(migpage, destination_fetches_every_page_while_the_task_touches) {
  struct dest d;
  struct side o;
  struct side f = {0};
  int sv[2];
  dest_map(&d);
  origin_start(&o, sv);
  f.fd = sv[1];
  f.uffd = d.uffd;
  cr_assert_eq(pthread_create(&f.t, NULL, fetch_main, &f), 0);
  /* First touches, far from where the background fetch begins. */
  cr_assert_eq(d.region[(PAGES - 1) * TASK_PAGE], (uint8_t)PAGES);
  cr_assert_eq(d.region[(HOLE + 3) * TASK_PAGE + 7], 0); /* a hole */
  pthread_join(o.t, NULL);
  close(sv[0]); /* as the origin's server does: the fetch drains to here */
  pthread_join(f.t, NULL);
  cr_assert_eq(f.r, 0);
  cr_assert_eq(o.r, 0);
  cr_assert_eq(f.st.pages, PAGES - MIG_HEADER_BYTES / TASK_PAGE);
  cr_assert_eq(o.st.pages, f.st.pages, "the origin heard PagesDone");
  for (uint64_t k = MIG_HEADER_BYTES / TASK_PAGE; k < PAGES; k++)
    for (uint64_t b = 0; b < TASK_PAGE; b += 1024)
      cr_assert_eq(d.region[k * TASK_PAGE + b], expected(k), "page %llu",
                   (unsigned long long)k);
  close(sv[1]);
  close(o.region_fd);
  dest_unmap(&d);
}

/* The origin goes after one answer: the fetch ends in an error, which
 * is what makes the server call the task lost. */
Test(migpage, destination_loses_an_origin_that_goes) {
  struct dest d;
  struct side f = {0};
  int sv[2];
  dest_map(&d);
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  f.fd = sv[1];
  f.uffd = d.uffd;
  cr_assert_eq(pthread_create(&f.t, NULL, fetch_main, &f), 0);
  MigMsg *q = mig_recv(sv[0]); /* the fetcher's first request */
  cr_assert_not_null(q);
  cr_assert_eq(q->m_case, MIG_MSG__M_PAGE_REQ);
  mig_msg__free_unpacked(q, NULL);
  close(sv[0]);
  pthread_join(f.t, NULL);
  cr_assert_lt(f.r, 0);
  close(sv[1]);
  dest_unmap(&d);
}
