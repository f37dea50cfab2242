/* Integration-test harness (see harness.h). */
#include "harness.h"
#include "trace_check.h"

#include <criterion/criterion.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char trace_path[256];
static char last_name[64];

const char *h_name(void) {
  return last_name;
}

/* Boots o (defaults and what the caller set) as h_boot describes. */
static void boot(mach_client *m, const char *server, struct mach_opts *o);

void h_boot(mach_client *m, const char *server) {
  struct mach_opts o;
  mach_opts_default(&o);
  boot(m, server, &o);
}

void h_boot_disk(mach_client *m, const char *dir, const char *cache_mib,
                 const char *sync_ms) {
  struct mach_opts o;
  mach_opts_default(&o);
  snprintf(o.disk, sizeof o.disk, "%s", dir);
  snprintf(o.cache_mib, sizeof o.cache_mib, "%s", cache_mib);
  snprintf(o.sync_ms, sizeof o.sync_ms, "%s", sync_ms);
  boot(m, NULL, &o);
}

void h_attach(mach_client *m, const char *name) {
  int fd, proc;
  char v[16];
  cr_assert_eq(mach_attach(m, name, -1, 0, &proc, &fd), 0, "attach: %s",
               m->error);
  snprintf(v, sizeof v, "%d", fd);
  setenv("UKSIM_FD", v, 1);
}

static void boot(mach_client *m, const char *server, struct mach_opts *o) {
  static int n;
  snprintf(o->name, sizeof o->name, "test-%d-%d", (int)getpid(), n++);
  snprintf(last_name, sizeof last_name, "%s", o->name);
  if (getenv("UKSIM_TEST_TRACE")) /* debugging a test: the kernel's trace */
    o->trace = -1;
  /* Every test's event trace is checked for the exactly-one-answer
   * invariant at its halt. */
  snprintf(o->trace_file, sizeof o->trace_file, "%s/%s.jsonl",
           getenv("UKSIM_BUILD_ROOT") ? getenv("UKSIM_BUILD_ROOT") : "/tmp",
           o->name);
  snprintf(trace_path, sizeof trace_path, "%s", o->trace_file);
  cr_assert_eq(mach_boot(m, o), 0, "boot: %s", m->error);
  if (server)
    cr_assert_eq(
        mach_spawn(m, server, NULL, 0, server, MACH_SPAWN_REGISTERED, NULL), 0,
        "start %s: %s", server, m->error);
}

int64_t h_spawn(mach_client *m, const char *prog, char **args, size_t n,
                const char *name, int *proc) {
  int p;
  cr_assert_eq(mach_spawn(m, prog, args, n, name, MACH_SPAWN_WAITABLE, &p), 0,
               "spawn %s: %s", prog, m->error);
  if (proc)
    *proc = p;
  int64_t wid = mach_wait_send(m, p);
  cr_assert_geq(wid, 0);
  return wid;
}

void h_spawn_counters(mach_client *m, const char *prefix, int n) {
  for (int i = 0; i < n; i++) {
    char svc[32];
    snprintf(svc, sizeof svc, "%s%d", prefix, i);
    char *a[] = {"--service", svc};
    cr_assert_eq(
        mach_spawn(m, "ctr_srv", a, 2, svc, MACH_SPAWN_REGISTERED, NULL), 0,
        "%s: %s", svc, m->error);
  }
}

int h_wait(mach_client *m, int64_t wid) {
  int st = -1, sig = 0;
  cr_assert_eq(mach_wait_reply(m, (uint64_t)wid, &st, &sig), 0, "wait: %s",
               m->error);
  return sig ? 128 + sig : st;
}

void h_halt_clean(mach_client *m) {
  uint32_t live = 99;
  cr_assert_eq(mach_halt(m, &live), 0, "halt: %s", m->error);
  cr_assert_eq(live, 0, "%u ICAs leaked at shutdown", live);
  mach_close(m);
  if (trace_path[0] == '\0')
    return; /* booted without h_boot: no trace */
  struct trace_stats st;
  char err[512];
  cr_assert_eq(trace_check(trace_path, &st, err, sizeof err), 0,
               "exactly-one-answer invariant: %s (trace kept)", err);
  unlink(trace_path);
  trace_path[0] = '\0';
}

const char *h_run(const char *cmd, int *status) {
  static char out[16384];
  FILE *f = popen(cmd, "r");
  cr_assert_not_null(f);
  size_t n = fread(out, 1, sizeof out - 1, f);
  out[n] = '\0';
  *status = pclose(f);
  return out;
}
