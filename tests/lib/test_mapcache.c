/* Unit tests for the mapping cache of small ICAs (lib/mapcache.c), with
 * real memfds standing for ICAs arriving from the kernel.
 *
 * Whether an address is still mapped is read from /proc/self/maps (a
 * system call probing an unmapped range would be right, but valgrind
 * reports it as an error). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mapcache.h"

#define SMALL 4096u

static int new_memfd(uint64_t size) {
  int fd = memfd_create("ica", MFD_CLOEXEC);
  cr_assert(fd >= 0 && ftruncate(fd, (off_t)size) == 0);
  return fd;
}

/* The same memfd arriving again, as a fresh descriptor would. */
static void *arrive(int memfd, uint64_t size) {
  int fd = dup(memfd);
  cr_assert(fd >= 0);
  void *p = uk__map_attach(fd, size, 0);
  cr_assert_not_null(p);
  return p;
}

static int mapped(void *p, uint64_t size) {
  FILE *f = fopen("/proc/self/maps", "r");
  unsigned long lo, hi, a = (unsigned long)p;
  char line[512];
  int found = 0;
  (void)size;
  cr_assert_not_null(f);
  while (!found && fgets(line, sizeof line, f))
    found = sscanf(line, "%lx-%lx", &lo, &hi) == 2 && a >= lo && a < hi;
  fclose(f);
  return found;
}

static int fd_open(int fd) {
  return fcntl(fd, F_GETFD) >= 0;
}

Test(mapcache, returning_ica_reuses_its_mapping_and_sees_new_bytes) {
  int m = new_memfd(SMALL);
  char *p = arrive(m, SMALL);
  p[0] = 'a';
  uk__map_detach(p, SMALL);
  cr_assert(pwrite(m, "b", 1, 0) == 1); /* the next holder writes */
  char *q = arrive(m, SMALL);
  cr_expect_eq(q, p);
  cr_expect_eq(q[0], 'b');
}

Test(mapcache, the_descriptor_is_closed_on_hit_and_miss) {
  int m = new_memfd(SMALL);
  int fd = dup(m);
  void *p = uk__map_attach(fd, SMALL, 0);
  cr_expect(!fd_open(fd));
  uk__map_detach(p, SMALL);
  fd = dup(m);
  uk__map_attach(fd, SMALL, 0);
  cr_expect(!fd_open(fd));
}

Test(mapcache, another_memfd_gets_its_own_mapping) {
  int a = new_memfd(SMALL), b = new_memfd(SMALL);
  char *p = arrive(a, SMALL);
  uk__map_detach(p, SMALL);
  char *q = arrive(b, SMALL);
  cr_expect_neq(q, p);
  cr_expect(mapped(p, SMALL), "the idle mapping of a stays cached");
}

Test(mapcache, a_resized_memfd_is_not_mistaken_for_the_cached_one) {
  int m = new_memfd(2 * SMALL);
  char *p = arrive(m, SMALL);
  uk__map_detach(p, SMALL);
  char *q = arrive(m, 2 * SMALL);
  cr_expect_neq(q, p);
}

Test(mapcache, large_icas_are_unmapped_when_passed_on) {
  uint64_t big = UK_MAPCACHE_BYTES + SMALL;
  int m = new_memfd(big);
  char *p = arrive(m, big);
  uk__map_detach(p, big);
  cr_expect(!mapped(p, big));
}

Test(mapcache, drop_unmaps_at_once) {
  int m = new_memfd(SMALL);
  char *p = arrive(m, SMALL);
  uk__map_drop(p, SMALL);
  cr_expect(!mapped(p, SMALL));
  cr_expect_neq(arrive(m, SMALL), NULL);
}

Test(mapcache, the_least_recently_idled_mapping_is_evicted) {
  char *p[UK_MAPCACHE_SLOTS + 1];
  for (int i = 0; i <= UK_MAPCACHE_SLOTS; i++) {
    int m = new_memfd(SMALL);
    p[i] = arrive(m, SMALL);
    uk__map_detach(p[i], SMALL);
    close(m);
  }
  cr_expect(!mapped(p[0], SMALL), "the oldest idle mapping went");
  for (int i = 1; i <= UK_MAPCACHE_SLOTS; i++)
    cr_expect(mapped(p[i], SMALL), "mapping %d stays", i);
}

Test(mapcache, with_every_slot_attached_a_new_mapping_is_not_kept) {
  for (int i = 0; i < UK_MAPCACHE_SLOTS; i++)
    arrive(new_memfd(SMALL), SMALL);
  char *extra = arrive(new_memfd(SMALL), SMALL);
  extra[0] = 1;
  uk__map_detach(extra, SMALL);
  cr_expect(!mapped(extra, SMALL));
}

Test(mapcache, guard_mode_faults_on_a_stale_pointer, .signal = SIGSEGV) {
  setenv("UKSIM_ICA_GUARD", "1", 1);
  int m = new_memfd(SMALL);
  volatile char *p = arrive(m, SMALL);
  p[0] = 1;
  uk__map_detach((void *)p, SMALL);
  p[0] = 2; /* not ours any more */
}

Test(mapcache, guard_mode_gives_access_back_on_return) {
  setenv("UKSIM_ICA_GUARD", "1", 1);
  int m = new_memfd(SMALL);
  char *p = arrive(m, SMALL);
  uk__map_detach(p, SMALL);
  char *q = arrive(m, SMALL);
  cr_expect_eq(q, p);
  q[0] = 3;
  cr_expect_eq(p[0], 3);
}

/* An ICA that comes back without a descriptor (KABI_REF_MAPPED) is found by
 * its id. */
static void *arrive_as(int memfd, uint64_t size, uint32_t id) {
  int fd = dup(memfd);
  cr_assert(fd >= 0);
  void *p = uk__map_attach(fd, size, id);
  cr_assert_not_null(p);
  return p;
}

Test(mapcache, a_kept_mapping_is_found_again_by_id) {
  int m = new_memfd(SMALL);
  char *p = arrive_as(m, SMALL, 0x10007);
  cr_expect(uk__map_kept(p), "small: the call may say it keeps it");
  uk__map_detach(p, SMALL);
  cr_assert(pwrite(m, "k", 1, 0) == 1);
  char *q = uk__map_reuse(0x10007, SMALL);
  cr_expect_eq(q, p);
  cr_expect_eq(q[0], 'k');
  cr_expect_null(uk__map_reuse(0x10007, SMALL), "attached: not idle any more");
}

Test(mapcache, reuse_wants_the_same_id_and_size) {
  int m = new_memfd(SMALL);
  char *p = arrive_as(m, SMALL, 0x10007);
  uk__map_detach(p, SMALL);
  cr_expect_null(uk__map_reuse(0x20007, SMALL), "another generation");
  cr_expect_null(uk__map_reuse(0x10008, SMALL), "another table slot");
  cr_expect_null(uk__map_reuse(0x10007, 2 * SMALL));
  cr_expect_null(uk__map_reuse(0, SMALL), "no id names no mapping");
  cr_expect_eq(uk__map_reuse(0x10007, SMALL), p);
}

Test(mapcache, an_evicted_mapping_is_not_found) {
  int m = new_memfd(SMALL);
  char *p = arrive_as(m, SMALL, 0x10001);
  uk__map_detach(p, SMALL);
  for (int i = 0; i < UK_MAPCACHE_SLOTS; i++) {
    int o = new_memfd(SMALL);
    uk__map_detach(arrive_as(o, SMALL, 0x20000u + (uint32_t)i), SMALL);
    close(o);
  }
  cr_expect_null(uk__map_reuse(0x10001, SMALL));
}

/* Whether any mapping of memfd's inode is left (its /proc/self/maps line). */
static int inode_mapped(int memfd) {
  struct stat st;
  unsigned long ino;
  char line[512];
  int found = 0;
  cr_assert(fstat(memfd, &st) == 0);
  FILE *f = fopen("/proc/self/maps", "r");
  cr_assert_not_null(f);
  while (!found && fgets(line, sizeof line, f))
    found = sscanf(line, "%*s %*s %*s %*s %lu", &ino) == 1 && ino == st.st_ino;
  fclose(f);
  return found;
}

Test(mapcache, a_new_memfd_under_an_old_id_replaces_the_stale_mapping) {
  int old = new_memfd(SMALL), cur = new_memfd(SMALL);
  char *p = arrive_as(old, SMALL, 0x10003);
  p[0] = 'o';
  uk__map_detach(p, SMALL);
  cr_assert(inode_mapped(old), "idle, still mapped");
  /* The id comes round again (generation wrapped) for another memfd. */
  char *q = arrive_as(cur, SMALL, 0x10003);
  cr_expect(!inode_mapped(old), "the stale mapping is gone");
  uk__map_detach(q, SMALL);
  cr_assert(pwrite(cur, "c", 1, 0) == 1);
  char *r = uk__map_reuse(0x10003, SMALL);
  cr_expect_eq(r, q);
  cr_expect_eq(r[0], 'c');
}

Test(mapcache, large_or_uncached_mappings_are_not_kept) {
  uint64_t big = UK_MAPCACHE_BYTES + SMALL;
  char *p = arrive_as(new_memfd(big), big, 0x10002);
  cr_expect(!uk__map_kept(p));
  cr_expect(!uk__map_kept(NULL));
  for (int i = 0; i < UK_MAPCACHE_SLOTS; i++)
    arrive_as(new_memfd(SMALL), SMALL, 0x20000u + (uint32_t)i);
  char *extra = arrive_as(new_memfd(SMALL), SMALL, 0x30000);
  cr_expect(!uk__map_kept(extra), "every slot attached: not cached");
}

Test(mapcache, guard_mode_reuse_by_id_gives_access_back) {
  setenv("UKSIM_ICA_GUARD", "1", 1);
  int m = new_memfd(SMALL);
  char *p = arrive_as(m, SMALL, 0x10009);
  uk__map_detach(p, SMALL);
  char *q = uk__map_reuse(0x10009, SMALL);
  cr_expect_eq(q, p);
  q[0] = 4;
  cr_expect_eq(p[0], 4);
}

/* Threads share the slots (lib/lock.c): 4 threads, each passing its own
 * memfds round and round -- half again as many as the slots (48 for 32
 * when this was written, 384 for 256 now), so that slots are evicted
 * and reused under the others' feet -- and checking that what it maps is
 * the memfd it gave: a slot taken by two threads at once would hand one
 * of them another memfd's mapping, or unmap one in use.  (Without the lock
 * about every other run failed or crashed on the 2-core test VM.) */
#define MT_THREADS 4
#define MT_FDS (UK_MAPCACHE_SLOTS * 3 / 2 / MT_THREADS)
#define MT_ROUNDS 4000 /* a tenth under valgrind, 20-50x slower */

static void *pass_round(void *arg) {
  long me = (long)arg, bad = 0;
  int fds[MT_FDS];
  for (int i = 0; i < MT_FDS; i++)
    fds[i] = new_memfd(SMALL);
  long rounds = getenv("UKSIM_UNDER_VALGRIND") ? MT_ROUNDS / 10 : MT_ROUNDS;
  for (long r = 0; r < rounds; r++) {
    int i = (int)(r % MT_FDS);
    long want = me * 1000000 + r, got = -1;
    cr_assert(pwrite(fds[i], &want, sizeof want, 0) == sizeof want);
    char *p = arrive(fds[i], SMALL);
    memcpy(&got, p, sizeof got);
    bad += got != want;
    uk__map_detach(p, SMALL);
  }
  for (int i = 0; i < MT_FDS; i++)
    close(fds[i]);
  return (void *)bad;
}

Test(mapcache, threads_never_get_each_others_mappings) {
  pthread_t t[MT_THREADS];
  for (long i = 0; i < MT_THREADS; i++)
    cr_assert_eq(pthread_create(&t[i], NULL, pass_round, (void *)i), 0);
  for (int i = 0; i < MT_THREADS; i++) {
    void *bad;
    pthread_join(t[i], &bad);
    cr_expect_eq((long)bad, 0, "thread %d mapped another memfd %ld times", i,
                 (long)bad);
  }
}
