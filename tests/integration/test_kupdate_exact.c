/* Exactly once across a kernel update stopped at the worst point: the
 * active kernel stops itself (UKSIM_KSTOP, sim-kernel/kmon.h) just before
 * it sends a counter increment's result to its protected client, after the
 * server has counted it, and `uksim kupdate` moves the client to the
 * layout-v2 kernel.  The client must get that answer from the new kernel
 * and go on; the count must come out exactly at its increments.  A kernel
 * that freed the request before the send left a call with neither request
 * nor answer, which the new kernel restarted: the increment counted twice
 * (bench kupdate's counter_exact false, about one run in a dozen). */
#include <criterion/criterion.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kmon.h"
#include "orthros.h"
#include "uksim_paths.h"

/* The client's increments, and the result before whose send the old
 * kernel stops (in the middle: calls before and after the update). */
#define EXACT_INCRS "200"
#define EXACT_STOP_AT "60"

/* Real-time heartbeats between the two kernels (tests/ci-skips.txt). */
TestSuite(kupdate_exact, .init = skip_under_valgrind);

/* True once the Linux process pid is stopped (state T in /proc). */
static bool stopped(pid_t pid) {
  char path[64], st[512];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  size_t n = f ? fread(st, 1, sizeof st - 1, f) : 0;
  if (f)
    fclose(f);
  st[n] = '\0';
  const char *end = strrchr(st, ')'); /* after the command's name */
  return end && end[1] == ' ' && end[2] == 'T';
}

/* A machine whose active OS (1) stops at the stop point; with next, its
 * backup is the layout-v2 kernel and the heartbeat timeout long enough
 * that the update, not a detection, takes the stopped kernel over;
 * without, a backup of the same version that finds the silence (50 ms)
 * and fails over (adopt.c reads the tables as they are). */
static void boot_stopping(mach_client *m, bool next) {
  setenv(KSTOP_ENV, "1:result:" EXACT_STOP_AT, 1);
  struct mach_opts o;
  pair_opts(&o);
  if (next) {
    char exe[sizeof o.backup_kernel] = UKSIM_EXE_DEFAULT;
    snprintf(o.backup_kernel, sizeof o.backup_kernel, "%s/uksim-kernel2",
             dirname(exe));
    o.heartbeat_timeout_ms = 2000;
  }
  cr_assert_eq(mach_boot(m, &o), 0, "boot: %s", m->error);
  unsetenv(KSTOP_ENV);
}

/* ctr_srv and its protected client, until the active kernel stops at the
 * stop point; the client's Linux pid. */
static pid_t load_until_stopped(mach_client *m) {
  Uksim__Reply *st = status(m);
  pid_t kernel = st->active_pid;
  cr_assert_eq(st->active_os, 1, "the stop point names OS 1");
  uksim__reply__free_unpacked(st, NULL);
  cr_assert_eq(
      mach_spawn(m, "ctr_srv", NULL, 0, "ctr", MACH_SPAWN_REGISTERED, NULL), 0,
      "%s", m->error);
  char *a[] = {"--count", EXACT_INCRS};
  struct mach_prog p = {.program = "ctr_load",
                        .args = a,
                        .nargs = 2,
                        .name = "load",
                        .protect = true};
  int slot;
  cr_assert_eq(mach_spawn_prog(m, &p, &slot), 0, "%s", m->error);
  const struct uk_kdata *kd;
  cr_assert_eq(mach_kdata(m, &kd, NULL), 0, "%s", m->error);
  pid_t load = kd->proc[slot].pid;
  mach_kdata_unmap(kd);
  for (int i = 0; i < 1000 && !stopped(kernel); i++)
    usleep(10 * 1000);
  cr_assert(stopped(kernel) || !alive(kernel),
            "the kernel never reached its stop point");
  return load;
}

/* The moved client ends by itself; every increment was answered
 * (ctr_load tolerates no reset here: the server had answered before the
 * stop) and counted once. */
static void counted_once(mach_client *m, pid_t load) {
  for (int i = 0; i < 3000 && alive(load); i++)
    usleep(10 * 1000);
  cr_assert(!alive(load), "the moved client did not finish its calls");
  char *c[] = {"--count", "0", "--expect", EXACT_INCRS};
  int64_t wid = h_spawn(m, "ctr_load", c, 4, "check", NULL);
  cr_expect_eq(h_wait(m, wid), 0,
               "the count is not " EXACT_INCRS ": an increment was lost or "
               "counted twice");
}

Test(kupdate_exact, a_result_cut_before_its_send_is_answered_once,
     .timeout = 120) {
  mach_client m;
  boot_stopping(&m, true);
  uint32_t b = await_backup(&m), old_os, new_os;
  pid_t load = load_until_stopped(&m);
  cr_assert_eq(
      mach_kupdate(&m, UKSIM__KUPDATE__METHOD__IMAGE, &old_os, &new_os), 0,
      "%s", m.error);
  cr_expect_eq(new_os, b);
  counted_once(&m, load);
  cr_expect(trace_has(b, "takeover", "waits for its result"),
            "the new kernel did not deliver the result it found queued");
  halt(&m);
}

/* The same point under an Orthros failover of the same version: the
 * tables are read as the stopped kernel left them (adopt.c). */
Test(kupdate_exact, a_failover_at_that_point_answers_once_too, .timeout = 120) {
  mach_client m;
  boot_stopping(&m, false);
  await_backup(&m);
  pid_t load = load_until_stopped(&m);
  uint32_t a = await_pair(&m, 1);
  counted_once(&m, load);
  cr_expect(trace_has(a, "takeover", "waits for its result"),
            "the new kernel did not deliver the result it found queued");
  halt(&m);
}
