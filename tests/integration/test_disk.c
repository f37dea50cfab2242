/* The disk servant #S end to end (sim-kernel/kdisk.h, vfs/devdisk.c): a
 * machine booted with a user disk (a real LevelDB directory), written
 * through #S/sd0/data with the ns_* calls, synced, halted, booted again on
 * the same disk and read back; the disk's single owner; bad input; and a
 * write that must wait for a write-back.
 *
 * libuksim keeps its connection in statics, so each attach runs its calls
 * in a child process of its own (attached_run); the test process itself
 * never makes an ns_* call. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "uksim/ns.h"

#define KiB 1024u
#define DATA "#S/sd0/data"
#define CTL "#S/sd0/ctl"

static mach_client m;
static char dir[64];

static void mkdisk(void) {
  snprintf(dir, sizeof dir, "/tmp/test_disk.XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
  cr_assert_eq(rmdir(dir), 0); /* the kernel makes it */
}

static void rmdisk(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  cr_assert_eq(system(cmd), 0);
}

/* Runs fn in a child attached to the machine as a uksim process; fn says
 * what failed on stderr and returns non-zero. */
static void attached_run(const char *name, int (*fn)(void)) {
  int fd, proc;
  cr_assert_eq(mach_attach(&m, name, -1, 0, &proc, &fd), 0, "attach: %s",
               m.error);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    char v[16];
    snprintf(v, sizeof v, "%d", fd);
    setenv("UKSIM_FD", v, 1);
    _exit(fn());
  }
  close(fd);
  int st;
  cr_assert_eq(waitpid(pid, &st, 0), pid);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s failed (status %d)",
            name, st);
}

#define CHECK(c, ...)                                                          \
  do {                                                                         \
    if (!(c)) {                                                                \
      fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                          \
      fprintf(stderr, __VA_ARGS__);                                            \
      fputc('\n', stderr);                                                     \
      return 1;                                                                \
    }                                                                          \
  } while (0)

static uint8_t pattern(uint64_t i) {
  return (uint8_t)(i * 2654435761u >> 13);
}

#define BIG (300 * KiB) /* spans 6 blocks: a data ICA */
#define BIG_OFF 100000ull

/* ctl's line has "NAME VALUE"; the value, or -1. */
static long long counter(const char *name) {
  char line[512], key[40];
  int fd = ns_open(CTL, NS_OREAD);
  if (fd < 0)
    return -1;
  long n = ns_read(fd, line, sizeof line - 1);
  ns_close(fd);
  if (n <= 0)
    return -1;
  line[n] = '\0';
  snprintf(key, sizeof key, " %s ", name);
  char *p = strstr(line, key);
  if (p == NULL && strncmp(line, key + 1, strlen(key + 1)) == 0)
    p = line - 1;
  return p ? atoll(p + strlen(key)) : -1;
}

static int check_big(int fd) {
  static uint8_t buf[BIG];
  long n = ns_pread(fd, buf, BIG, BIG_OFF);
  CHECK(n == BIG, "pread: %ld", n);
  for (uint64_t i = 0; i < BIG; i++)
    CHECK(buf[i] == pattern(i), "byte %llu differs", (unsigned long long)i);
  return 0;
}

static int write_and_sync(void) {
  static uint8_t buf[BIG];
  for (uint64_t i = 0; i < BIG; i++)
    buf[i] = pattern(i);
  int fd = ns_open(DATA, NS_ORDWR);
  CHECK(fd >= 0, "open data: %s", strerror(-fd));
  long n = ns_pwrite(fd, buf, BIG, BIG_OFF);
  CHECK(n == BIG, "pwrite: %ld", n);
  CHECK(ns_pwrite(fd, "small", 5, 7) == 5, "small pwrite");
  CHECK(check_big(fd) == 0, "read back from the cache");
  CHECK(counter("dirty") == 7, "dirty %lld", counter("dirty"));
  int c = ns_open(CTL, NS_OWRITE);
  CHECK(c >= 0, "open ctl: %s", strerror(-c));
  CHECK(ns_write(c, "sync\n", 5) == 5, "sync");
  ns_close(c);
  CHECK(counter("dirty") == 0, "dirty after sync %lld", counter("dirty"));
  CHECK(counter("writebacks") >= 1, "writebacks");
  ns_close(fd);
  return 0;
}

static int read_back(void) {
  char small[5];
  int fd = ns_open(DATA, NS_OREAD);
  CHECK(fd >= 0, "open data: %s", strerror(-fd));
  CHECK(counter("cached") == 0, "a fresh cache: %lld", counter("cached"));
  CHECK(check_big(fd) == 0, "read back from the disk");
  CHECK(ns_pread(fd, small, 5, 7) == 5 && memcmp(small, "small", 5) == 0,
        "small read back");
  CHECK(counter("misses") >= 7, "misses %lld", counter("misses"));
  ns_close(fd);
  return 0;
}

Test(disk, written_data_survives_a_halt_and_a_boot, .timeout = 300) {
  mkdisk();
  h_boot_disk(&m, dir, "", "0");
  attached_run("t-write", write_and_sync);
  h_halt_clean(&m);
  h_boot_disk(&m, dir, "", "0");
  attached_run("t-read", read_back);
  h_halt_clean(&m);
  rmdisk();
}

/* Unsynced writes reach the disk at a clean halt too. */
static int write_only(void) {
  int fd = ns_open(DATA, NS_OWRITE);
  CHECK(fd >= 0, "open data: %s", strerror(-fd));
  CHECK(ns_pwrite(fd, "halted", 6, 1ull << 29) == 6, "pwrite");
  return 0;
}

static int read_halted(void) {
  char b[6];
  int fd = ns_open(DATA, NS_OREAD);
  CHECK(fd >= 0, "open data: %s", strerror(-fd));
  CHECK(ns_pread(fd, b, 6, 1ull << 29) == 6 && memcmp(b, "halted", 6) == 0,
        "read back");
  return 0;
}

Test(disk, a_halt_writes_the_dirty_blocks_back, .timeout = 300) {
  mkdisk();
  h_boot_disk(&m, dir, "", "0");
  attached_run("t-write", write_only);
  h_halt_clean(&m);
  h_boot_disk(&m, dir, "", "0");
  attached_run("t-read", read_halted);
  h_halt_clean(&m);
  rmdisk();
}

Test(disk, a_second_kernel_cannot_open_a_disk_in_use, .timeout = 300) {
  mach_client m2;
  struct mach_opts o;
  mkdisk();
  h_boot_disk(&m, dir, "", "");
  mach_opts_default(&o);
  snprintf(o.name, sizeof o.name, "test-%d-second", (int)getpid());
  snprintf(o.disk, sizeof o.disk, "%s", dir);
  cr_assert_neq(mach_boot(&m2, &o), 0, "a second owner booted");
  h_halt_clean(&m);
  /* Once the owner is gone the next one opens it (device migration). */
  h_boot_disk(&m, dir, "", "");
  h_halt_clean(&m);
  rmdisk();
}

static int bad_input(void) {
  ns_dir d;
  char b[16];
  CHECK(ns_stat(DATA, &d) == 0 && d.length == 1ull << 30, "data length");
  int fd = ns_open(DATA, NS_ORDWR);
  CHECK(fd >= 0, "open data: %s", strerror(-fd));
  CHECK(ns_pwrite(fd, "x", 1, 1ull << 30) == -ENOSPC, "write past the end");
  CHECK(ns_pwrite(fd, "x", 1, ~0ull >> 1) == -ENOSPC, "write far past it");
  CHECK(ns_pread(fd, b, 1, 1ull << 30) == 0, "read at the end");
  CHECK(ns_pwrite(fd, "abcdef", 6, (1ull << 30) - 2) == 2, "cut at the end");
  ns_close(fd);
  int c = ns_open(CTL, NS_ORDWR);
  CHECK(c >= 0, "open ctl");
  CHECK(ns_write(c, "garbage", 7) == -EINVAL, "garbage to ctl");
  CHECK(ns_write(c, "sync sync", 9) == -EINVAL, "two syncs to ctl");
  CHECK(ns_write(c, "", 0) == -EINVAL, "nothing to ctl");
  ns_close(c);
  CHECK(ns_open("#S/sd1/data", NS_OREAD) == -ENOENT, "no sd1");
  CHECK(ns_create("#S/sd0/new", NS_OWRITE, 0666) < 0, "create in #S");
  return 0;
}

Test(disk, bad_input_gets_a_clear_error, .timeout = 300) {
  mkdisk();
  h_boot_disk(&m, dir, "", "");
  attached_run("t-bad", bad_input);
  h_halt_clean(&m);
  rmdisk();
}

/* The cache is one segment (4 MiB, 64 blocks): a second 4 MiB write finds
 * every block dirty, waits for a write-back and then completes. */
#define SEGB (4u << 20)
static int fill_twice(void) {
  static uint8_t buf[SEGB];
  int fd = ns_open(DATA, NS_ORDWR);
  CHECK(fd >= 0, "open data");
  memset(buf, 1, SEGB);
  CHECK(ns_pwrite(fd, buf, SEGB, 0) == SEGB, "first");
  CHECK(counter("dirty") == 64, "dirty %lld", counter("dirty"));
  memset(buf, 2, SEGB);
  CHECK(ns_pwrite(fd, buf, SEGB, SEGB) == SEGB, "second");
  CHECK(counter("waits") >= 1, "waits %lld", counter("waits"));
  CHECK(counter("writebacks") >= 1, "writebacks");
  CHECK(ns_pread(fd, buf, SEGB, 0) == SEGB && buf[0] == 1 && buf[SEGB - 1] == 1,
        "first read back");
  CHECK(ns_pwrite(fd, buf, SEGB + 1, 0) == -EFBIG, "larger than the cache");
  return 0;
}

Test(disk, a_write_to_a_full_dirty_cache_waits_for_a_write_back,
     .timeout = 300) {
  mkdisk();
  h_boot_disk(&m, dir, "4", "0");
  attached_run("t-full", fill_twice);
  h_halt_clean(&m);
  rmdisk();
}

/* 24 MiB dirty is six write-back steps (KDISK_STEP_BLOCKS, 4 MiB): the
 * sync waits through all of them, the other calls running in between. */
#define SYNCB (24u << 20)
static int sync_in_steps(void) {
  static uint8_t buf[SYNCB];
  int fd = ns_open(DATA, NS_ORDWR);
  CHECK(fd >= 0, "open data");
  memset(buf, 3, SYNCB);
  CHECK(ns_pwrite(fd, buf, SYNCB, 0) == SYNCB, "write");
  CHECK(counter("dirty") == 384, "dirty %lld", counter("dirty"));
  int c = ns_open(CTL, NS_OWRITE);
  CHECK(c >= 0, "open ctl");
  CHECK(ns_write(c, "sync", 4) == 4, "sync");
  CHECK(counter("dirty") == 0, "dirty after sync %lld", counter("dirty"));
  CHECK(counter("writebacks") == 6, "batches %lld", counter("writebacks"));
  CHECK(counter("written") == 384, "written %lld", counter("written"));
  return 0;
}

Test(disk, a_large_sync_is_written_back_in_steps, .timeout = 300) {
  mkdisk();
  h_boot_disk(&m, dir, "32", "0");
  attached_run("t-steps", sync_in_steps);
  h_halt_clean(&m);
  rmdisk();
}

/* The timer writes back without being asked. */
static int timer_writes_back(void) {
  int fd = ns_open(DATA, NS_ORDWR);
  CHECK(fd >= 0, "open data");
  CHECK(ns_pwrite(fd, "tick", 4, 0) == 4, "write");
  for (int i = 0; i < 200 && counter("dirty") != 0; i++)
    usleep(10000);
  CHECK(counter("dirty") == 0, "still dirty after 2 s");
  CHECK(counter("writebacks") == 1, "writebacks %lld", counter("writebacks"));
  return 0;
}

Test(disk, the_timer_writes_dirty_blocks_back, .timeout = 300) {
  mkdisk();
  h_boot_disk(&m, dir, "", "50");
  attached_run("t-timer", timer_writes_back);
  h_halt_clean(&m);
  rmdisk();
}
