/* A multi-threaded application on one kernel connection (apps/mtload.c,
 * lib/lock.c): T threads call T counter servers through the process's one
 * connection, every call answered once and to the thread that made it.
 * No failover here (test_orthros.c moves mtload through them), so this
 * runs under valgrind too (meson test --setup=valgrind). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

/* The most threads mtload saw inside the library at once, from its
 * report in path; -1 if the report is not there or not ok. */
static int contention(const char *path) {
  char line[256];
  int most = -1, pid, n;
  FILE *f = fopen(path, "r");
  cr_assert_not_null(f, "no mtload report at %s", path);
  while (fgets(line, sizeof line, f)) {
    printf("%s", line);
    if (sscanf(line, "mtload: pid %d, %*d threads, max %d in", &pid, &n) == 2 &&
        strstr(line, ": ok"))
      most = n;
  }
  fclose(f);
  return most;
}

static void run_mtload(int threads, int count) {
  mach_client m;
  char path[] = "/tmp/uksim-mtload-XXXXXX", t[16], c[16];
  int fd = mkstemp(path);
  cr_assert_geq(fd, 0);
  close(fd);
  h_boot(&m, NULL);
  h_spawn_counters(&m, "mt", threads);
  snprintf(t, sizeof t, "%d", threads);
  snprintf(c, sizeof c, "%d", count);
  char *a[] = {"--threads", t, "--count", c, "--result", path};
  int64_t w = h_spawn(&m, "mtload", a, 6, "mtload", NULL);
  cr_expect_eq(h_wait(&m, w), 0, "a thread's calls were not counted once");
  int most = contention(path);
  cr_expect_geq(most, threads > 1 ? 2 : 1,
                "max %d threads in the library at once", most);
  unlink(path);
  h_halt_clean(&m);
}

/* Four threads, each its own counter: every answer is one above the last
 * the thread saw, and at the end each counter is its thread's calls. */
Test(mt, four_threads_share_one_connection, .timeout = 300) {
  run_mtload(4, scaled(2000));
}

/* One thread: the lock costs nothing when it is not contended. */
Test(mt, one_thread_is_the_single_threaded_case, .timeout = 300) {
  run_mtload(1, scaled(500));
}

/* mtload refuses bad usage before it calls the kernel. */
Test(mt, mtload_refuses_bad_usage, .timeout = 60) {
  const char *bad[] = {"--threads 0", "--threads 65", "--count x", "--bogus"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char cmd[512];
    int st;
    snprintf(cmd, sizeof cmd, "%s/apps/mtload %s 2>/dev/null",
             getenv("UKSIM_BUILD_ROOT") ? getenv("UKSIM_BUILD_ROOT") : ".",
             bad[i]);
    h_run(cmd, &st);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 2, "%s: status %d", bad[i],
              st);
  }
}
