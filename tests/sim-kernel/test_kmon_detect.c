/* Unit tests for the seed-003 monitor's detectors (sim-kernel/kmon_detect.c)
 * on hand-built kernel-data regions: each fault's table state is found,
 * and the healthy state next to it (a lock held briefly, a reader woken,
 * slow growth) is not, so every test can fail both ways.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "kd_fixture.h"
#include "kmon_detect.h"

TestSuite(kmon_detect, .init = kd_new, .fini = kd_free, .timeout = 30);

#define MS 1000000ull
#define T0 (10000 * MS) /* a "now" well after boot */

static struct kmon_conf conf(void) {
  struct kmon_conf c;
  kmon_conf_default(&c);
  return c;
}

static void proc(uint32_t p, uint8_t state, const char *name) {
  kd->proc[p].state = state;
  kd->proc[p].kind = UK_PROC_AP;
  strcpy(kd->proc[p].name, name);
}

static void hold(uint32_t l, uint32_t owner, uint64_t since, uint32_t waiters) {
  kd->lock[l].held = 1;
  kd->lock[l].owner = owner;
  kd->lock[l].since_ns = since;
  kd->lock[l].acquires = 42;
  kd->lock[l].waiters = waiters;
}

static int deadlock_at(uint64_t now, struct kmon_find *f) {
  struct kmon_view v;
  struct kmon_conf c = conf();
  cr_assert_eq(kmon_view_read(&v, kd, now), 0);
  return kmon_deadlock(&v, &c, f);
}

Test(kmon_detect, refuses_a_region_of_another_layout) {
  struct kmon_view v;
  kd->hdr.layout++;
  cr_assert_eq(kmon_view_read(&v, kd, T0), -EPROTO);
  kd->hdr.layout--;
  kd->hdr.magic = 0;
  cr_assert_eq(kmon_view_read(&v, kd, T0), -EPROTO);
}

Test(kmon_detect, deadlock_lock_held_with_waiters) {
  struct kmon_find f;
  proc(3, UK_PROC_WAITING, "ap");
  proc(4, UK_PROC_WAITING, "other");
  hold(UK_LOCK_ICA, 3, T0 - 200 * MS, 1);
  cr_assert_eq(deadlock_at(T0, &f), 1);
  cr_assert_eq(f.fault, KMON_DEADLOCK);
  cr_assert_str_eq(f.table, "lock");
  cr_assert_eq(f.entry[0], UK_LOCK_ICA);
  cr_assert_eq(f.age_ns, 200 * MS);
  cr_assert_not_null(strstr(f.text, "lock ica"), "%s", f.text);
  cr_assert_not_null(strstr(f.text, "proc 3 (ap)"), "%s", f.text);
}

Test(kmon_detect, no_deadlock_when_held_briefly) {
  struct kmon_find f;
  proc(3, UK_PROC_WAITING, "ap");
  hold(UK_LOCK_SVC, 3, T0 - 10 * MS, 2); /* under the 50 ms threshold */
  cr_assert_eq(deadlock_at(T0, &f), 0);
}

Test(kmon_detect, no_deadlock_when_owner_progresses) {
  struct kmon_find f;
  proc(5, UK_PROC_RUNNING, "busy"); /* runs, nobody waits: slow, not stuck */
  hold(UK_LOCK_NS, 5, T0 - 500 * MS, 0);
  cr_assert_eq(deadlock_at(T0, &f), 0);
  kd->proc[5].state = UK_PROC_WAITING; /* now its owner is blocked */
  cr_assert_eq(deadlock_at(T0, &f), 1);
  cr_assert_eq(f.entry[0], UK_LOCK_NS);
}

Test(kmon_detect, deadlock_ignores_an_owner_out_of_range) {
  struct kmon_find f;
  hold(UK_LOCK_ICA, 99999, T0 - 100 * MS, 0); /* torn: still a held lock */
  cr_assert_eq(deadlock_at(T0, &f), 1);
  cr_assert_not_null(strstr(f.text, "by ?"), "%s", f.text);
  kd->lock[UK_LOCK_ICA].since_ns = T0 + MS; /* from the future: torn */
  cr_assert_eq(deadlock_at(T0, &f), 0);
}

/* Grows the region by bytes (in ICAs of 16 MiB) and procs processes. */
static void grow(uint64_t bytes, uint32_t procs) {
  static uint32_t next;
  kd->ctr.ica_bytes += bytes;
  kd->ctr.icas_created += bytes >> 24;
  for (uint32_t i = 0; i < procs; i++, next++)
    proc(next % UK_PROC_MAX, UK_PROC_RUNNING, "r");
}

/* Views at t0, t0 + dt and t0 + 2 dt, the region growing by bytes and
 * procs in each window (first: in the first one too). */
static int runaway_after(uint64_t dt, uint64_t bytes, uint32_t procs,
                         bool first, struct kmon_find *f) {
  struct kmon_view older, old, cur;
  struct kmon_conf c = conf();
  kd->ctr.ica_bytes = 10 * MS;
  cr_assert_eq(kmon_view_read(&older, kd, T0), 0);
  if (first)
    grow(bytes, procs);
  cr_assert_eq(kmon_view_read(&old, kd, T0 + dt), 0);
  grow(bytes, procs);
  cr_assert_eq(kmon_view_read(&cur, kd, T0 + 2 * dt), 0);
  return kmon_runaway(&older, &old, &cur, &c, f);
}

Test(kmon_detect, runaway_ica_growth) {
  struct kmon_find f;
  cr_assert_eq(runaway_after(100 * MS, 512ull << 20, 0, true, &f), 1);
  cr_assert_eq(f.fault, KMON_RUNAWAY);
  cr_assert_str_eq(f.table, "ica");
  cr_assert_not_null(strstr(f.text, "+512 MiB"), "%s", f.text);
}

Test(kmon_detect, runaway_process_growth) {
  struct kmon_find f;
  cr_assert_eq(runaway_after(60 * MS, 0, 40, true, &f), 1);
  cr_assert_str_eq(f.table, "proc");
}

Test(kmon_detect, one_window_of_growth_is_not_a_runaway) {
  struct kmon_find f;
  cr_assert_eq(runaway_after(60 * MS, 512ull << 20, 0, false, &f), 0);
}

Test(kmon_detect, one_window_that_spends_the_budget_is_a_runaway) {
  struct kmon_find f;
  kd->hdr.budget_bytes = 560ull << 20; /* 512 MiB of it taken at once */
  cr_assert_eq(runaway_after(60 * MS, 512ull << 20, 0, false, &f), 1);
  cr_assert_not_null(strstr(f.text, "of 560 MiB free"), "%s", f.text);
}

Test(kmon_detect, no_runaway_for_slow_growth) {
  struct kmon_find f;
  /* 512 MiB in each 10 s: 51 MiB/s, below the rate */
  cr_assert_eq(runaway_after(10000 * MS, 512ull << 20, 0, true, &f), 0);
}

Test(kmon_detect, no_runaway_for_one_large_ica) {
  struct kmon_find f;
  struct kmon_view older, old, cur;
  struct kmon_conf c = conf();
  cr_assert_eq(kmon_view_read(&older, kd, T0), 0);
  kd->ctr.ica_bytes += 256ull << 20; /* a server's state ICA, twice */
  kd->ctr.icas_created += 1;
  cr_assert_eq(kmon_view_read(&old, kd, T0 + 60 * MS), 0);
  kd->ctr.ica_bytes += 256ull << 20;
  kd->ctr.icas_created += 1;
  cr_assert_eq(kmon_view_read(&cur, kd, T0 + 120 * MS), 0);
  cr_assert_eq(kmon_runaway(&older, &old, &cur, &c, &f), 0);
}

Test(kmon_detect, no_runaway_for_small_growth) {
  struct kmon_find f;
  cr_assert_eq(runaway_after(60 * MS, 16ull << 20, 8, true, &f), 0);
}

Test(kmon_detect, no_runaway_within_the_window_or_without_an_old_view) {
  struct kmon_find f;
  struct kmon_view v;
  struct kmon_conf c = conf();
  cr_assert_eq(runaway_after(5 * MS, 1ull << 30, 0, true, &f), 0);
  cr_assert_eq(kmon_view_read(&v, kd, T0), 0);
  cr_assert_eq(kmon_runaway(NULL, NULL, &v, &c, &f), 0);
}

/* Process p reads pipe 2's end 0 through chan 7; the ring holds avail
 * bytes since data_ns; p waits since wait_ns. */
static void reader(uint32_t p, uint32_t avail, uint64_t data_ns,
                   uint64_t wait_ns) {
  struct uk_pipe *pi = &kd->vfs.pipe[2];
  struct uk_chan *c = &kd->vfs.chan[7];
  pi->gen = 3;
  pi->ring[0].len = avail;
  pi->data_ns[0] = data_ns;
  c->gen = 5;
  c->state = UK_CHAN_LIVE;
  c->type = '|';
  c->dev = UK_VFS_ID(2, 3);
  c->qid.path = 1; /* data: reads ring[0] */
  proc(p, UK_PROC_WAITING, "reader");
  kd->proc[p].wait_op = KABI_NS;
  kd->proc[p].wait_chan = UK_VFS_ID(7, 5);
  kd->proc[p].wait_ns = wait_ns;
}

static int stalled_at(uint64_t now, struct kmon_find *f) {
  struct kmon_view v;
  struct kmon_conf c = conf();
  cr_assert_eq(kmon_view_read(&v, kd, now), 0);
  return kmon_stalled(&v, &c, f);
}

Test(kmon_detect, stalled_reader_with_data) {
  struct kmon_find f;
  reader(9, 5, T0 - 80 * MS, T0 - 1000 * MS);
  cr_assert_eq(stalled_at(T0, &f), 1);
  cr_assert_eq(f.fault, KMON_STALLED);
  cr_assert_str_eq(f.table, "pipe");
  cr_assert_eq(f.entry[0], 9);
  cr_assert_eq(f.count, 1);
  cr_assert_eq(f.age_ns, 80 * MS); /* from the data, not from the wait */
  cr_assert_not_null(strstr(f.text, "pipe 2 end 0 (5 bytes)"), "%s", f.text);
}

Test(kmon_detect, not_stalled_when_data_just_came) {
  struct kmon_find f;
  reader(9, 5, T0 - 1 * MS, T0 - 1000 * MS); /* the wake-up is due now */
  cr_assert_eq(stalled_at(T0, &f), 0);
}

Test(kmon_detect, not_stalled_when_the_pipe_is_empty) {
  struct kmon_find f;
  reader(9, 0, T0 - 500 * MS, T0 - 1000 * MS);
  cr_assert_eq(stalled_at(T0, &f), 0);
}

Test(kmon_detect, stalled_ignores_a_stale_chan) {
  struct kmon_find f;
  reader(9, 5, T0 - 500 * MS, T0 - 1000 * MS);
  kd->vfs.chan[7].gen = 6; /* reused: the reader's link is stale */
  cr_assert_eq(stalled_at(T0, &f), 0);
  kd->vfs.chan[7].gen = 5;
  kd->vfs.pipe[2].gen = 4; /* the pipe was reused */
  cr_assert_eq(stalled_at(T0, &f), 0);
  kd->vfs.pipe[2].gen = 3;
  kd->proc[9].wait_chan = UK_VFS_ID(UK_CHAN_MAX + 1, 5); /* out of range */
  cr_assert_eq(stalled_at(T0, &f), 0);
}

Test(kmon_detect, stalled_counts_every_blocked_reader) {
  struct kmon_find f;
  reader(9, 5, T0 - 500 * MS, T0 - 1000 * MS);
  for (uint32_t p = 20; p < 40; p++) {
    kd->proc[p] = kd->proc[9];
  }
  cr_assert_eq(stalled_at(T0, &f), 1);
  cr_assert_eq(f.count, 21);
  cr_assert_eq(f.n, KMON_EVIDENCE_MAX);
}

/* Readers pile up on a stalled servant: the finding names the servant,
 * gives the longest wait (from the oldest read, not from the data) and
 * lists each reader's process and pipe. */
Test(kmon_detect, stalled_gives_the_longest_wait_and_each_reader) {
  struct kmon_find f;
  reader(9, 5, T0 - 80 * MS, T0 - 700 * MS);
  kd->proc[12] = kd->proc[9];
  kd->proc[12].wait_ns = T0 - 300 * MS;
  cr_assert_eq(stalled_at(T0, &f), 1);
  cr_assert_eq(f.count, 2);
  cr_assert_eq(f.wait_ns, 700 * MS);
  cr_assert_eq(f.age_ns, 80 * MS);
  cr_assert_not_null(strstr(f.text, "servant #| (pipe): 2 readers"), "%s",
                     f.text);
  cr_assert_not_null(strstr(f.text, "the longest waiting 700.0 ms"), "%s",
                     f.text);
  cr_assert_not_null(strstr(f.text, "proc 9 (reader) on pipe 2 end 0"), "%s",
                     f.text);
  cr_assert_not_null(strstr(f.text, "proc 12 (reader) on pipe 2 end 0"), "%s",
                     f.text);
}
