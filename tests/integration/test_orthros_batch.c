/* A server that takes its queue a batch a call (REPLY_MANY_RECEIVE,
 * srv_reply_receive_many: ctr_srv's default), with and without a
 * failover in the middle of its batches: every increment done once, none
 * twice, none lost.  A failover's backlog through one server is what the
 * batches are for (uksim bench failover); a batch held by a server that
 * dies with its OS comes back -ECONNRESET, each of its requests, done or
 * not (the AnT fault path), so the count after the failover lies between
 * the answered increments and those plus the batch.
 *
 * Real time (loads calling back to back, a heartbeat): these tests skip
 * under valgrind (orthros.h). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "orthros.h"
#include "uksim/kabi.h"

TestSuite(orthros_batch, .init = skip_under_valgrind);

/* Loads calling back to back keep the server's queue about LOADS long, so
 * batches of up to KABI_BATCH_MAX form; each makes COUNT calls. */
#define LOADS 16
#define COUNT 300

/* The heartbeat timeout: long, so that 16 loads calling back to back on
 * a loaded host never make the backup take the busy active for dead; the
 * failover here is a panic, found by its notice. */
#define BATCH_TIMEOUT_MS 5000

static void start_loads(mach_client *m, bool protect, int *proc);

/* A machine with a backup, ctr_srv (batches: its default) and the loads
 * (protected: they move at a failover). */
static void start(mach_client *m, bool protect, int *proc) {
  struct mach_opts o;
  pair_opts(&o);
  o.heartbeat_timeout_ms = BATCH_TIMEOUT_MS;
  cr_assert_eq(mach_boot(m, &o), 0, "boot: %s", m->error);
  await_pair(m, 0);
  cr_assert_eq(
      mach_spawn(m, "ctr_srv", NULL, 0, "ctr", MACH_SPAWN_REGISTERED, NULL), 0,
      "%s", m->error);
  start_loads(m, protect, proc);
}

static void start_loads(mach_client *m, bool protect, int *proc) {
  char count[16];
  snprintf(count, sizeof count, "%d", COUNT);
  char *a[] = {"--count", count, "--tolerate-reset", "--tolerate-intr",
               "--quiet"};
  for (int i = 0; i < LOADS; i++) {
    char name[16];
    snprintf(name, sizeof name, "load%d", i);
    struct mach_prog p = {.program = "ctr_load",
                          .args = a,
                          .nargs = 5,
                          .name = name,
                          .flags = protect ? 0 : MACH_SPAWN_WAITABLE,
                          .protect = protect};
    cr_assert_eq(mach_spawn_prog(m, &p, &proc[i]), 0, "%s", m->error);
  }
}

/* Waits for each load's exit (its status checked). */
static void await_loads(mach_client *m, const int *proc) {
  for (int i = 0; i < LOADS; i++) {
    int st = -1, sig = 0;
    int64_t w = mach_wait_send(m, proc[i]);
    cr_assert(w >= 0 && mach_wait_reply(m, (uint64_t)w, &st, &sig) == 0, "%s",
              m->error);
    cr_expect(st == 0 && sig == 0,
              "load %d: status %d signal %d (an answer that did not grow)", i,
              st, sig);
  }
}

/* The counter must read lo..hi (ctr_load's final get). */
static void expect_count(mach_client *m, long lo, long hi) {
  char range[48];
  snprintf(range, sizeof range, "%ld:%ld", lo, hi);
  char *c[] = {"--count", "0", "--expect-range", range};
  int64_t w = h_spawn(m, "ctr_load", c, 4, "check", NULL);
  cr_expect_eq(h_wait(m, w), 0, "the counter is not within %s", range);
}

/* The most "receive" events one kernel step made in trace file path (a
 * batch is delivered in the step of the call that asked for it). */
static int largest_batch(const char *path) {
  char line[1024];
  long step = -1;
  int n = 0, most = 0;
  FILE *f = fopen(path, "r");
  cr_assert_not_null(f, "%s", path);
  while (fgets(line, sizeof line, f)) {
    long s;
    if (!strstr(line, "\"ev\":\"receive\"") ||
        sscanf(line, "{\"step\":%ld", &s) != 1)
      continue;
    n = s == step ? n + 1 : 1;
    step = s;
    most = n > most ? n : most;
  }
  fclose(f);
  return most;
}

Test(orthros_batch, a_queue_is_served_in_batches_each_increment_once,
     .timeout = 120) {
  mach_client m;
  int proc[LOADS];
  start(&m, false, proc);
  await_loads(&m, proc);
  expect_count(&m, LOADS * COUNT, LOADS * COUNT);
  uint32_t live;
  cr_assert_eq(mach_halt(&m, &live), 0, "%s", m.error); /* the trace whole */
  mach_close(&m);
  int most = largest_batch(trace);
  printf("orthros_batch: batches of up to %d requests\n", most);
  cr_expect_gt(most, 1, "no batch of more than one request was delivered");
  cr_expect_leq(most, KABI_BATCH_MAX);
  remove_traces();
}

/* The same loads, protected, with the active OS panicking while they
 * run: the server dies holding a batch, restarts on the new active OS
 * from its state ICA and serves the backlog in batches. */
Test(orthros_batch, a_failover_among_batches_loses_and_doubles_none,
     .timeout = 120) {
  mach_client m;
  int proc[LOADS];
  start(&m, true, proc);
  pid_t pid[LOADS];
  for (int i = 0; i < LOADS; i++)
    pid[i] = pid_of(&m, proc[i]);
  usleep(30 * 1000); /* the loads are calling */
  struct uk_interos d = fail_once(&m, UKSIM__FAULT__KIND__PANIC, 1);
  cr_expect(trace_has(d.det_by_os, "restart", "ctr"),
            "the server did not restart");
  /* Moved, they are the new kernel's: their ends are seen from here (a
   * wrong answer shows in the count). */
  for (int i = 0; i < LOADS; i++)
    for (int t = 0; t < 3000 && alive(pid[i]); t++)
      usleep(10 * 1000);
  for (int i = 0; i < LOADS; i++)
    cr_assert(!alive(pid[i]), "load %d did not finish its calls", i);
  /* At most a batch held by the dead server (-ECONNRESET, done or not),
   * and each load's call the failover cut short (-EINTR, not done). */
  expect_count(&m, LOADS * COUNT - KABI_BATCH_MAX - LOADS, LOADS * COUNT);
  cr_expect(trace_has(d.det_by_os, "\"op\":\"backlog\"", "is served"));
  halt(&m);
}
