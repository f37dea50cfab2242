/* Migratable tasks (lib/task.c): the region at its fixed address, the
 * scheduler's priorities, policies and suspend counts, parking at a safe
 * point from another kernel thread, the image checks of task_adopt, and a
 * real move of apps/mtask into a new process of the same program.
 * Criterion runs each test in its own process: one task per process. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "uksim/task.h"

#define LOG_MAX 64

struct log {
  int n;
  int who[LOG_MAX];
};

static struct log *new_log(void) {
  cr_assert_eq(task_init(TASK_REGION_MIN), 0);
  struct log *l = task_alloc(sizeof *l);
  cr_assert_not_null(l);
  task_set_root(l);
  return l;
}

static void note(void) {
  struct log *l = task_root();
  if (l->n < LOG_MAX)
    l->who[l->n++] = task_self();
}

static void note_once(void *arg) {
  (void)arg;
  note();
}

static void note_thrice(void *arg) {
  (void)arg;
  for (int k = 0; k < 3; k++) {
    note();
    task_yield();
  }
}

Test(task, region_at_fixed_address, .timeout = 10) {
  cr_assert_eq(task_init(TASK_REGION_MIN), 0);
  cr_assert_eq((uintptr_t)task_hdr(), TASK_REGION_ADDR);
  cr_assert_geq(task_fd(), 0);
  cr_assert_eq(task_init(TASK_REGION_MIN), -EEXIST);
  void *a = task_alloc(100), *b = task_alloc(1);
  cr_assert_eq((uintptr_t)a % 16, 0);
  cr_assert_geq((char *)b, (char *)a + 100);
  cr_assert_null(task_alloc(TASK_REGION_MIN));
}

Test(task, refuses_bad_sizes, .timeout = 10) {
  cr_assert_eq(task_init(1), -EINVAL);
  cr_assert_eq(task_init(TASK_REGION_MAX + TASK_PAGE), -EINVAL);
  cr_assert_eq(task_thread_new(note_once, NULL, 1, TASK_POLICY_RR), -EINVAL);
}

Test(task, higher_priority_runs_first, .timeout = 10) {
  struct log *l = new_log();
  int a = task_thread_new(note_once, NULL, 1, TASK_POLICY_RR);
  int b = task_thread_new(note_once, NULL, 5, TASK_POLICY_RR);
  int c = task_thread_new(note_once, NULL, 3, TASK_POLICY_RR);
  cr_assert_eq(task_run(), TASK_RUN_DONE);
  cr_assert_eq(l->n, 3);
  cr_assert_eq(l->who[0], b);
  cr_assert_eq(l->who[1], c);
  cr_assert_eq(l->who[2], a);
}

Test(task, round_robin_rotates_equal_priorities, .timeout = 10) {
  struct log *l = new_log();
  int a = task_thread_new(note_thrice, NULL, 2, TASK_POLICY_RR);
  int b = task_thread_new(note_thrice, NULL, 2, TASK_POLICY_RR);
  cr_assert_eq(task_run(), TASK_RUN_DONE);
  cr_assert_eq(l->n, 6);
  for (int k = 0; k < 6; k++)
    cr_assert_eq(l->who[k], k % 2 ? b : a, "entry %d", k);
}

Test(task, fifo_keeps_its_place_on_yield, .timeout = 10) {
  struct log *l = new_log();
  int a = task_thread_new(note_thrice, NULL, 2, TASK_POLICY_FIFO);
  int b = task_thread_new(note_thrice, NULL, 2, TASK_POLICY_FIFO);
  cr_assert_eq(task_run(), TASK_RUN_DONE);
  cr_assert_eq(l->n, 6);
  for (int k = 0; k < 6; k++)
    cr_assert_eq(l->who[k], k < 3 ? a : b, "entry %d", k);
}

static int sleeper_slot;

static void suspender(void *arg) {
  (void)arg;
  cr_assert_eq(task_thread_suspend(sleeper_slot), 0);
  task_yield(); /* the suspended thread must not run here */
  note();
  cr_assert_eq(task_thread_resume(sleeper_slot), 0);
  cr_assert_eq(task_thread_resume(sleeper_slot), -EINVAL);
}

Test(task, suspended_thread_does_not_run, .timeout = 10) {
  struct log *l = new_log();
  int a = task_thread_new(suspender, NULL, 9, TASK_POLICY_RR);
  sleeper_slot = task_thread_new(note_once, NULL, 1, TASK_POLICY_RR);
  cr_assert_eq(task_run(), TASK_RUN_DONE);
  cr_assert_eq(l->n, 2);
  cr_assert_eq(l->who[0], a);
  cr_assert_eq(l->who[1], sleeper_slot);
}

struct spin {
  long n;
  int stop;
};

static void spinner(void *arg) {
  struct spin *s = arg;
  while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
    __atomic_add_fetch(&s->n, 1, __ATOMIC_RELEASE);
    task_yield();
  }
}

/* The migration client's view: from another kernel thread, suspend,
 * wait for the safe point, see nothing move, resume. */
static void *parker(void *arg) {
  struct spin *s = arg;
  struct task_hdr *h = task_hdr();
  while (__atomic_load_n(&s->n, __ATOMIC_ACQUIRE) < 100)
    usleep(100);
  task_suspend(h);
  cr_assert_eq(task_park(h, 2000), 0);
  long frozen = __atomic_load_n(&s->n, __ATOMIC_ACQUIRE);
  usleep(50000);
  cr_assert_eq(__atomic_load_n(&s->n, __ATOMIC_ACQUIRE), frozen);
  cr_assert_eq(h->current, -1, "parked only between thread runs");
  task_resume(h);
  while (__atomic_load_n(&s->n, __ATOMIC_ACQUIRE) < frozen + 100)
    usleep(100);
  __atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
  return NULL;
}

Test(task, park_stops_at_a_safe_point, .timeout = 20) {
  cr_assert_eq(task_init(TASK_REGION_MIN), 0);
  struct spin *s = task_alloc(sizeof *s);
  task_thread_new(spinner, s, 1, TASK_POLICY_RR);
  task_thread_new(spinner, s, 1, TASK_POLICY_RR);
  pthread_t t;
  pthread_create(&t, NULL, parker, s);
  cr_assert_eq(task_run(), TASK_RUN_DONE);
  pthread_join(t, NULL);
}

static void *ender(void *arg) {
  (void)arg;
  usleep(20000);
  task_suspend(task_hdr());
  cr_assert_eq(task_park(task_hdr(), 2000), 0);
  task_end(task_hdr());
  return NULL;
}

Test(task, end_stops_the_origin_copy, .timeout = 20) {
  cr_assert_eq(task_init(TASK_REGION_MIN), 0);
  struct spin *s = task_alloc(sizeof *s);
  task_thread_new(spinner, s, 1, TASK_POLICY_RR);
  pthread_t t;
  pthread_create(&t, NULL, ender, s);
  cr_assert_eq(task_run(), TASK_RUN_ENDED);
  pthread_join(t, NULL);
}

/* A good image, copied out of this process's own region, to corrupt. */
static char *image_copy(uint64_t *len) {
  cr_assert_eq(task_init(TASK_REGION_MIN), 0);
  task_thread_new(note_once, NULL, 1, TASK_POLICY_RR);
  *len = task_hdr()->size;
  char *img = malloc(*len);
  memcpy(img, task_hdr(), *len);
  cr_assert_eq(task_check(img, *len), 0);
  return img;
}

Test(task, check_refuses_corrupt_images, .timeout = 10) {
  uint64_t len;
  char *img = image_copy(&len);
  struct task_hdr *h = (struct task_hdr *)img;
  cr_assert_eq(task_check(img, len - TASK_PAGE), -EINVAL, "truncated");
  h->magic ^= 1;
  cr_assert_eq(task_check(img, len), -EINVAL, "magic");
  h->magic ^= 1;
  h->version++;
  cr_assert_eq(task_check(img, len), -EINVAL, "version");
  h->version--;
  h->brk = len + 1;
  cr_assert_eq(task_check(img, len), -EINVAL, "heap break");
  h->brk = h->heap_off;
  h->th[0].ctx.uc_mcontext.gregs[REG_RSP] = 0x1000;
  cr_assert_eq(task_check(img, len), -EINVAL, "stack pointer");
  h->th[0].ctx.uc_mcontext.gregs[REG_RSP] =
      (greg_t)(TASK_REGION_ADDR + h->th[0].stack_off + 64);
  h->th[0].state = 99;
  cr_assert_eq(task_check(img, len), -EINVAL, "thread state");
  free(img);
}

/* Held ICAs: whole pages of the heap, at their own addresses, apart; the
 * table full, a length out of bounds and a call on an ICA not held are
 * refused. */
Test(task, icas_are_whole_pages_of_the_region, .timeout = 10) {
  cr_assert_eq(task_ica_new(1), -EINVAL, "no task yet");
  cr_assert_eq(task_init(TASK_REGION_MIN), 0);
  task_alloc(100); /* the break off a page boundary */
  cr_assert_eq(task_ica_new(0), -EINVAL);
  cr_assert_eq(task_ica_new(TASK_ICA_MAX + 1), -EINVAL);
  size_t len = 0, len2 = 0;
  int a = task_ica_new(100), b = task_ica_new(TASK_PAGE + 1);
  cr_assert_eq(a, 0);
  cr_assert_eq(b, 1);
  char *pa = task_ica(a, &len), *pb = task_ica(b, &len2);
  cr_assert_eq(len, TASK_PAGE);
  cr_assert_eq(len2, 2 * TASK_PAGE);
  cr_assert_eq((uintptr_t)pa % TASK_PAGE, 0);
  cr_assert_geq(pb, pa + len);
  cr_assert_lt((uintptr_t)pb + len2, TASK_REGION_ADDR + task_hdr()->size);
  cr_assert_eq(pa[0] + pb[len2 - 1], 0, "zero on a fresh region");
  cr_assert_geq((char *)task_alloc(1), pb + len2, "the heap goes on after");
  for (int i = 2; i < TASK_ICAS_MAX; i++)
    cr_assert_eq(task_ica_new(1), i);
  cr_assert_eq(task_ica_new(1), -ENOSPC, "table full");
  cr_assert_null(task_ica(TASK_ICAS_MAX, NULL));
  cr_assert_null(task_ica(-1, NULL));
  cr_assert_eq(task_check(task_hdr(), task_hdr()->size), 0);
}

Test(task, a_call_on_an_ica_not_held_is_refused, .timeout = 10) {
  cr_assert_eq(task_init(TASK_REGION_MIN), 0);
  int i = task_ica_new(TASK_PAGE);
  cr_assert_geq(i, 0);
  /* No migration server: no handle opens (-ENOTCONN), so handle 0 is
   * not open: -EBADF before anything is sent, for any ICA. */
  cr_assert_eq(task_call_ica(0, 0, NULL, 0, i + 1, 0, NULL, 0, NULL, NULL),
               -EBADF);
  cr_assert_eq(task_service_open("kvs"), -ENOTCONN);
}

Test(task, check_refuses_bad_ica_tables, .timeout = 10) {
  uint64_t len;
  char *img = image_copy(&len);
  struct task_hdr *h = (struct task_hdr *)img;
  h->brk = h->heap_off + 2 * TASK_PAGE;
  h->ica[0] = (struct task_ica){.off = h->heap_off, .len = TASK_PAGE};
  cr_assert_eq(task_check(img, len), 0, "a held ICA");
  h->ica[0].off += 8;
  cr_assert_eq(task_check(img, len), -EINVAL, "off a page boundary");
  h->ica[0].off = h->heap_off;
  h->ica[0].len = 4 * TASK_PAGE;
  cr_assert_eq(task_check(img, len), -EINVAL, "beyond the heap's break");
  h->ica[0].len = 0;
  cr_assert_eq(task_check(img, len), -EINVAL, "empty but held");
  h->ica[0] = (struct task_ica){.off = TASK_PAGE, .len = TASK_PAGE};
  cr_assert_eq(task_check(img, len), -EINVAL, "in the header or stacks");
  h->ica[0] = (struct task_ica){0};
  h->ica[1].len = TASK_PAGE;
  cr_assert_eq(task_check(img, len), -EINVAL, "a free slot with a length");
  h->ica[1].len = 0;
  h->svc[0].ica = TASK_ICAS_MAX;
  cr_assert_eq(task_check(img, len), -EINVAL, "a call's ICA out of range");
  free(img);
}

Test(task, adopt_refuses_garbage, .timeout = 10) {
  int fd = memfd_create("garbage", 0);
  cr_assert_eq(ftruncate(fd, TASK_REGION_MIN), 0);
  cr_assert_eq(pwrite(fd, "not a task", 10, 0), 10);
  cr_assert_eq(task_adopt(fd), -EINVAL);
  cr_assert_null(task_hdr());
}

/* Runs apps/mtask with --selfmove: the task moves into a new process of
 * the program halfway through and must print every count exactly once. */
Test(task, moves_into_a_new_process, .timeout = 60) {
  const char *root = getenv("UKSIM_BUILD_ROOT");
  cr_assert_not_null(root);
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "%s/apps/mtask --threads 3 --limit 40 --period 2 --selfmove 15 "
           "</dev/null",
           root);
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p);
  long next[3] = {1, 1, 1};
  char line[256], done[256] = "";
  while (fgets(line, sizeof line, p)) {
    int i;
    long n;
    if (sscanf(line, "t%d %ld", &i, &n) == 2) {
      cr_assert(i >= 0 && i < 3, "thread %d", i);
      cr_assert_eq(n, next[i], "t%d printed %ld, expected %ld", i, n, next[i]);
      next[i]++;
    } else if (strncmp(line, "done", 4) == 0) {
      snprintf(done, sizeof done, "%s", line);
    }
  }
  cr_assert_eq(pclose(p), 0);
  cr_assert_str_eq(done, "done t0=40 t1=40 t2=40 moves=1\n");
}
