/* Orthros (issue 14): the new active tells the machine its failover is
 * done, and so has the next backup booted, only once its restarted
 * servers have taken every request queued at the failover (kfailover.c,
 * the "backlog" step): the backup's boot must not compete with that
 * backlog for the cores.  A slow counter server (ctr_srv --delay-ms) makes
 * the backlog last long enough to see the order from outside, in real
 * time: these tests skip under valgrind (orthros.h). */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "orthros.h"

TestSuite(orthros_backlog, .init = skip_under_valgrind);

/* The protected loads, each with one call always queued at the slow
 * server, and each request's time there: their backlog at the failover
 * takes about LOADS * DELAY_MS to serve. */
#define LOADS 8
#define DELAY_MS 100

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t); /* the detection record's clock */
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void start_loads(mach_client *m, int *proc) {
  char *a[] = {"--forever", "--tolerate-reset", "--quiet"};
  for (int i = 0; i < LOADS; i++) {
    char name[16];
    snprintf(name, sizeof name, "load%d", i);
    struct mach_prog p = {.program = "ctr_load",
                          .args = a,
                          .nargs = 3,
                          .name = name,
                          .protect = true};
    cr_assert_eq(mach_spawn_prog(m, &p, &proc[i]), 0, "%s", m->error);
  }
}

/* When (CLOCK_MONOTONIC ns) MachStatus first shows a next backup after
 * the failover (or a later one: on a loaded host the next backup can take
 * the new active's busy loop for a death); 0 if not within 20 s. */
static uint64_t backup_seen(mach_client *m, uint32_t failovers) {
  for (int i = 0; i < 20000; i++) {
    Uksim__Reply *st = status(m);
    bool up = st->failovers >= failovers && st->backup_os != 0;
    uksim__reply__free_unpacked(st, NULL);
    if (up)
      return now_ns();
    usleep(1000);
  }
  return 0;
}

Test(orthros_backlog, next_backup_boots_after_the_backlog, .timeout = 120) {
  mach_client m;
  int srv, load[LOADS];
  boot_pair(&m);
  await_pair(&m, 0);
  char delay[16], *a[] = {"--delay-ms", delay};
  snprintf(delay, sizeof delay, "%d", DELAY_MS);
  cr_assert_eq(
      mach_spawn(&m, "ctr_srv", a, 2, "ctr", MACH_SPAWN_REGISTERED, &srv), 0,
      "%s", m.error);
  start_loads(&m, load);
  usleep(3 * LOADS * DELAY_MS * 1000); /* every load has called */
  /* A loaded host can make the backup take the busy active for dead
   * meanwhile: the panic must find a backup, so it waits for the pair. */
  Uksim__Reply *st = status(&m);
  uint32_t before = st->failovers;
  uksim__reply__free_unpacked(st, NULL);
  await_pair(&m, before);
  cr_assert_eq(mach_fault(&m, UKSIM__FAULT__KIND__PANIC, 0), 0, "%s", m.error);
  struct uk_interos d = await_detection(&m, before + 1);
  uint64_t seen = backup_seen(&m, before + 1);
  cr_assert(seen != 0, "no next backup");
  double ms = (double)(seen - d.det_ns) / 1e6;
  printf("orthros: the next backup is up %.1f ms after the detection\n", ms);
  /* At least half of the backlog (each load's queued call) went through
   * the slow server before the backup booted: a boot at the restarted
   * server's registration comes in tens of ms. */
  cr_expect_geq(ms, LOADS / 2 * DELAY_MS,
                "the next backup booted %.1f ms after the detection, before "
                "the backlog (~%d ms) was served",
                ms, LOADS * DELAY_MS);
  cr_expect(trace_has(d.det_by_os, "\"op\":\"servers\"", "serves"));
  cr_expect(trace_has(d.det_by_os, "\"op\":\"backlog\"", "is served"));
  halt(&m);
}

/* How many replies in trace file path were followed by the server's next
 * "receive" before their own "result" (kcall.c do_reply_receive hands a
 * serving server its next request first). */
static int next_first_count(const char *path) {
  char line[1024], req[64] = "";
  int n = 0;
  bool replied = false;
  FILE *f = fopen(path, "r");
  cr_assert_not_null(f, "%s", path);
  while (fgets(line, sizeof line, f)) {
    const char *r = strstr(line, "\"req\":");
    if (strstr(line, "\"ev\":\"reply\"") && r) {
      snprintf(req, sizeof req, "%.*s", (int)strcspn(r, ",}"), r);
      replied = true;
    } else if (replied && strstr(line, "\"ev\":\"receive\"")) {
      n++;
      replied = false;
    } else if (replied && strstr(line, "\"ev\":\"result\"") && r &&
               strncmp(r, req, strlen(req)) == 0) {
      replied = false; /* the result went first */
    }
  }
  fclose(f);
  return n;
}

/* Not a failover's matter alone: every free-running server with a queue
 * gets its next request before its last result goes out; the loads still
 * see each answer once (ctr_load checks that every value grew). */
Test(orthros_backlog, a_serving_server_gets_its_next_request_first,
     .timeout = 120) {
  mach_client m;
  int srv, proc[4];
  boot_pair(&m);
  await_pair(&m, 0);
  cr_assert_eq(
      mach_spawn(&m, "ctr_srv", NULL, 0, "ctr", MACH_SPAWN_REGISTERED, &srv), 0,
      "%s", m.error);
  char *a[] = {"--count", "300", "--quiet"};
  for (int i = 0; i < 4; i++)
    cr_assert_eq(
        mach_spawn(&m, "ctr_load", a, 3, "load", MACH_SPAWN_WAITABLE, &proc[i]),
        0, "%s", m.error);
  for (int i = 0; i < 4; i++) {
    int st = -1, sig = 0;
    int64_t w = mach_wait_send(&m, proc[i]);
    cr_assert(w >= 0 && mach_wait_reply(&m, (uint64_t)w, &st, &sig) == 0, "%s",
              m.error);
    cr_expect(st == 0 && sig == 0, "load %d: status %d signal %d", i, st, sig);
  }
  uint32_t live;
  cr_assert_eq(mach_halt(&m, &live), 0, "%s", m.error); /* the trace whole */
  mach_close(&m);
  int n = next_first_count(trace);
  printf("orthros: %d of 1200 requests went to the server before the "
         "result before them\n",
         n);
  cr_expect_gt(n, 0, "every result went out before the next request");
  remove_traces();
}
