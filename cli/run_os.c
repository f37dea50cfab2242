/* uksim run on a machine with a backup OS (run_os.h; scenarios/README.md
 * "Orthros").
 *
 * The executor runs in the active kernel and goes on in the next one
 * after a failover (cli/scn_exec.c); each kernel writes its own trace
 * file.  The runner, a client of the machine, outlives every kernel: its
 * ScenarioWait is answered by the kernel that ends the run, whichever it
 * is, so a wait that the dying kernel could not answer ("the kernel went
 * away", or "a failover is in progress") is asked again; the traces are
 * joined into one before the expectations are checked; and the machine's
 * usable-memory table is asked before the halt. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kmon.h"
#include "partition.h"
#include "run_os.h"
#include "scn_trace.h"

_Static_assert(SCN_NIC_PORTS == PART_NIC_PORTS, "nic0's ports, as parsed");
_Static_assert(SCN_NIC_PORT_MAX <= UINT16_MAX - 2 * PART_NIC_PORTS,
               "--nic-port as the machine takes it");

/* The monitor's settings reach the kernels through the environment
 * (sim-kernel/kmon.h); one the command line set wins (no overwrite). */
static void monitor_env(const struct scn_machine *sm) {
  char v[24];
  if (sm->monitor_ns) {
    snprintf(v, sizeof v, "%llu",
             (unsigned long long)(sm->monitor_ns / 1000000));
    setenv(KMON_ENV_INTERVAL, v, 0);
  }
  if (sm->monitor_failover)
    setenv(KMON_ENV_POLICY, "failover", 0);
}

int run_os_opts(const struct scn *s, struct mach_opts *m, char *disk_dir,
                size_t len) {
  const struct scn_machine *sm = &s->machine;
  disk_dir[0] = '\0';
  m->nic_port = (uint16_t)sm->nic_port; /* 0: the machine picks */
  if (sm->backup == 0)
    return 0;
  m->backup = true;
  if (sm->backup_version == 2) { /* beside this uksim, as ninja builds it */
    char exe[sizeof m->backup_kernel];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    snprintf(m->backup_kernel, sizeof m->backup_kernel, "%s/uksim-kernel2",
             dirname(exe));
  }
  if (sm->heartbeat_ns)
    m->heartbeat_ms = (uint32_t)(sm->heartbeat_ns / 1000000);
  if (sm->hb_timeout_ns)
    m->heartbeat_timeout_ms = (uint32_t)(sm->hb_timeout_ns / 1000000);
  monitor_env(sm);
  if (sm->disk == 0)
    return 0;
  const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  snprintf(disk_dir, len, "%s/uksim-disk-XXXXXX", tmp);
  if (mkdtemp(disk_dir) == NULL) {
    fprintf(stderr, "uksim run: cannot make a disk in %s: %s\n", tmp,
            strerror(errno));
    disk_dir[0] = '\0';
    return -1;
  }
  snprintf(m->disk_size, sizeof m->disk_size, "%llu",
           (unsigned long long)sm->disk);
  return mach_disk_opt(m, "uksim run", disk_dir);
}

bool run_os_retry(const struct mach_opts *m, int st) {
  return m->backup && (st == -ESRCH || st == -EAGAIN);
}

void run_os_usable(mach_client *mc, struct scn_facts *facts) {
  static char why[256];
  Uksim__Ctl c = UKSIM__CTL__INIT, *rep = NULL;
  Uksim__Os os = UKSIM__OS__INIT;
  c.body_case = UKSIM__CTL__BODY_OS;
  c.os = &os;
  int64_t id = mach_send(mc, &c);
  facts->nusable = 0;
  facts->usable_error = why;
  if (id < 0 || mach_reply(mc, (uint64_t)id, &rep, NULL) < 0) {
    snprintf(why, sizeof why, "%.200s", mc->error);
    return;
  }
  const Uksim__Partition *p = rep->reply->partition;
  if (p == NULL)
    snprintf(why, sizeof why, "the machine sent no partition");
  else
    facts->usable_error = NULL;
  for (size_t i = 0; p && i < p->n_history && facts->nusable < SCN_USABLE_MAX;
       i++)
    if (p->history[i]->active_usable_mib) { /* never active: no row */
      facts->usable_os[facts->nusable] = p->history[i]->number;
      facts->usable_mib[facts->nusable++] = p->history[i]->active_usable_mib;
    }
  uksim__ctl__free_unpacked(rep, NULL);
}

struct join {
  FILE *out;
  uint64_t step0; /* added to this file's steps */
  uint64_t last_step, last_t;
};

static int join_event(const struct scn_event *e, void *arg) {
  struct join *j = arg;
  struct scn_event c = *e;
  c.step += j->step0;
  if (c.step < j->last_step)
    c.step = j->last_step;
  if (c.t < j->last_t)
    c.t = j->last_t;
  j->last_step = c.step;
  j->last_t = c.t;
  return scn_event_json(&c, j->out) < 0 ? -1 : 0;
}

static int is_takeover(const struct scn_event *e, void *arg) {
  (void)arg;
  return e->ev == SCN_EV_OS_ACTIVE;
}

static int is_finding(const struct scn_event *e, void *arg) {
  (void)arg;
  return e->ev == SCN_EV_MONITOR;
}

/* Whether the backup at path has a monitor's finding (seed 003): its
 * findings join the trace even without a failover. */
static bool found(const char *path) {
  struct scn_err err;
  return scn_trace_each(path, is_finding, NULL, &err) == 1;
}

/* A backup that never took over gives only its findings. */
static int join_finding(const struct scn_event *e, void *arg) {
  return e->ev == SCN_EV_MONITOR ? join_event(e, arg) : 0;
}

/* Whether the OS whose trace is at path took over (an os-active event): a
 * backup that never did ran none of the scenario, and its file (a halt)
 * is left out, so a backup changes no trace of a run without a failover. */
static bool took_over(const char *path) {
  struct scn_err err;
  return scn_trace_each(path, is_takeover, NULL, &err) == 1;
}

int run_os_join(const char *trace) {
  char part[PATH_MAX + 16], joined[PATH_MAX + 16];
  struct scn_err err;
  bool any = false;
  /* OS numbers may skip one (a backup lost on standby skips the next of
   * its parity: README "The partition through failovers"). */
  for (int os = 2; os <= RUN_OS_TRACES_MAX; os++) {
    snprintf(part, sizeof part, "%s.os%d", trace, os);
    any |= access(part, R_OK) == 0 && (took_over(part) || found(part));
  }
  for (int os = 2; !any && os <= RUN_OS_TRACES_MAX; os++) {
    snprintf(part, sizeof part, "%s.os%d", trace, os);
    unlink(part);
  }
  if (!any)
    return 0; /* no failover: the first OS's file is the trace */
  snprintf(joined, sizeof joined, "%s.joined", trace);
  struct join j = {.out = fopen(joined, "we")};
  int r = j.out ? 0 : -1;
  for (int os = 1; r == 0 && os <= RUN_OS_TRACES_MAX; os++) {
    if (os > 1)
      snprintf(part, sizeof part, "%s.os%d", trace, os);
    if (access(os > 1 ? part : trace, R_OK) < 0)
      continue;
    j.step0 = j.last_step;
    if (os == 1 || took_over(part))
      r = scn_trace_each(os > 1 ? part : trace, join_event, &j, &err);
    else if (found(part))
      r = scn_trace_each(part, join_finding, &j, &err);
    if (r < 0)
      fprintf(stderr, "uksim run: %s\n", err.text);
    if (os > 1)
      unlink(part);
  }
  if (j.out && fclose(j.out) != 0)
    r = -1;
  if (r == 0 && rename(joined, trace) < 0)
    r = -1;
  if (r < 0)
    fprintf(stderr, "uksim run: the OSes' traces could not be joined\n");
  return r;
}
