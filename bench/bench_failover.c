/* uksim bench failover: Orthros's failover time (seed 001 §5, issue 14),
 * from the fault to every protected process served again by the new
 * active OS, broken into its steps.
 *
 * One run boots a machine with a backup and a LevelDB disk written back
 * only on sync (--sync-ms 0), starts ctr_srv and N protected failload
 * processes (bench/failload.c: increments in a loop, each call, answer
 * and reset published in a shared file with the answer's time), dirties D
 * MiB of the disk's buffer cache through #S/sd0/data from an attached
 * child (never synced), then injects the fault and watches:
 *   detect     the backup's own record (inter-OS region, det_since_fault)
 *   fence      detection -> the failover starts (fence, os-active, the
 *              dead OS's state received: TakeOver); from the trace
 *   devices, filecache, processes, cache
 *              the new kernel's 'failover' trace events (kfailover.c)
 *   servers    the end of those steps -> the last protected process's
 *              first answer stamped after the detection (the server's
 *              restart until it registers and answers)
 *   repartition the machine's own step log (the Os request): from its
 *              re-partition step for the new active to its repin step
 *              (re-partition, Resize, re-pinning every thread), which
 *              the machine does at the TakeOver, before the hand-over
 *   next_backup detection -> MachStatus shows the next backup (its kernel
 *              process spawned by the machine after the fence)
 * Served again is each process's own observation: the answer to its
 * first call made after the detection (CLOCK_MONOTONIC, the kernels'
 * clock), when the dead kernel no longer runs.
 *
 * Lost requests: at the end every load is stopped (SIGTERM: it finishes
 * its call in flight) and calls - answers - resets - intr - errors is
 * what never came back; resets (-ECONNRESET: the server died holding the
 * call) and intr (-EINTR: the kernel died inside the load's ICA create or
 * release before the call, adopt.h ADOPT_INTR) are reported apart.  The counter
 * must then hold between the answers and the answers plus resets (none done
 * twice): `exactly_once`.
 *
 * The baseline in the same run, `boot_..._ms`: the same machine's cold
 * boot (with its backup) until every load is served, what the service
 * costs the base system's way, by a reboot; `failover_..._ratio` is the
 * failover over it.
 *
 * Cases: panic-triggered, N = 10 and FAILOVER_PROCS_MAX processes, D = 0
 * and 64 MiB; a crash (found by the heartbeat timeout only) with 10 and 0;
 * 10 and 1 GiB (the cache at its largest, KDISK_CACHE_MIB_MAX); the usable
 * memory of OS 1..5 across 4 successive failovers.  The file-cache step
 * adopts the dead cache (--cache-migrate adopt, the default); the 64 MiB
 * cases are run again with --cache-migrate writeback (keys ..._writeback_),
 * the 1 GiB one only with --all.  A 1 GiB case runs one round whatever
 * --rounds says: dirtying 1 GiB and the halt's write-back of it take ~15 s
 * on 2 loaded cores, and the bench stays under a minute.  Each case
 * is a fresh machine in a child process (a process attaches to one
 * machine in its life); with --rounds R each figure is the median of R.
 * With --services S the loads share S counter services (load i calls
 * ctr<i mod S>), each checked exactly once on its own; the keys then end
 * their case part in _<S>s.  One service is the target's definition.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "failload.h"
#include "machine.h"
#include "stats.h"
#include "uksim/interos.h"
#include "uksim/ns.h"
#include "uksim/num.h"

/* The protected processes of the large cases: the 200, which
 * with ctr_srv, its restart on the new kernel and the attached disk
 * writer fit UK_PROC_MAX (256). */
#define FAILOVER_PROCS_MAX 200
/* --services N at most: the counter services the loads share (load i
 * calls service i mod N), each its own ctr_srv.  The default, 1, is the
 * definition of every key without an _<N>s suffix. */
#define FAILOVER_SERVICES_MAX 8
_Static_assert(FAILOVER_PROCS_MAX + FAILOVER_SERVICES_MAX + 3 <= UK_PROC_MAX,
               "the loads, their servers, the disk writer and the check fit");
/* Each load's period: one call every 20 ms, asleep between an answer and
 * the next call's time (failload.c: a call that took longer, as the one
 * a failover holds, is followed by the next at once): an application
 * that also does something else, as every one does.  Without it, 200
 * loads calling back to back keep the one counter server's queue full
 * and "served again" measures that server's throughput on two cores (the
 * queue's wait), not the failover.  20 ms is shorter than any failover
 * measured, so every load has called again before the new kernel
 * serves. */
#define FAILOVER_PERIOD_US 20000
#define FAILOVER_HB_MS 10
#define FAILOVER_TIMEOUT_MS 50
/* The heartbeat timeout of the panic runs, whose detection is the panic
 * notice's: the timeout only keeps the next backup patient.  The new
 * active writes the dirty blocks back inside its loop before it sends a
 * heartbeat (64 MiB: over a second on a loaded host), and the next
 * backup, booted at the fence, would take that silence for a death at
 * 50 ms and fence the new active half way through its failover; 200
 * spawns on a loaded host have made a backup fence the active too.  The
 * crash run keeps FAILOVER_TIMEOUT_MS: its detection is the timeout. */
#define FAILOVER_PANIC_TIMEOUT_MS 5000
#define FAILOVER_WAIT_MS 20000 /* any wait longer than this: the run fails */
/* The largest dirty case (MiB): the cache at its largest
 * (KDISK_CACHE_MIB_MAX, UK_BCACHE_MAX blocks), over a disk of the
 * default size (1 GiB, KDISK_SIZE_DEFAULT). */
#define FAILOVER_DIRTY_MAX_MIB 1024

enum step {
  S_DETECT,
  S_FENCE,
  S_TAKEOVER,
  S_DEVICES,
  S_FILECACHE,
  S_PROCESSES,
  S_CACHE,
  S_SERVERS,
  S_REPART,
  S_BACKUP,
  NSTEPS
};
static const char *const step_names[NSTEPS] = {
    "detect",    "fence", "takeover", "devices",     "filecache",
    "processes", "cache", "servers",  "repartition", "next_backup"};

struct result {
  double total_ms, step_ms[NSTEPS];
  double boot_ms; /* the baseline: a cold boot until every load is served */
  uint64_t calls, answers, resets, intrs, errors, lost;
  int exactly_once; /* 1 yes, 0 no */
  uint32_t cause;   /* UK_DETECT_* */
};

struct run {
  int kind; /* UKSIM__FAULT__KIND__* */
  int procs, dirty_mib;
  int services;        /* counter services, 1: the one named "ctr" */
  bool writeback;      /* --cache-migrate writeback, else the default (adopt) */
  uint32_t timeout_ms; /* the heartbeat timeout */
  char dir[64], trace[256], slots[256];
  struct failload_slot *slot;
};

static double ms_since(uint64_t from, uint64_t to) {
  return to > from ? (double)(to - from) / 1e6 : 0;
}

static int fail(mach_client *m, const char *what) {
  fprintf(stderr, "uksim bench failover: %s: %s\n", what,
          m ? m->error : strerror(errno));
  return -1;
}

static int boot(mach_client *m, struct run *r, bool disk) {
  struct mach_opts o;
  static int n;
  mach_opts_default(&o);
  snprintf(o.name, sizeof o.name, "bench-fo-%d-%d", (int)getpid(), n++);
  snprintf(r->trace, sizeof r->trace, "%s/trace.jsonl", r->dir);
  snprintf(o.trace_file, sizeof o.trace_file, "%s", r->trace);
  o.backup = true;
  o.heartbeat_ms = FAILOVER_HB_MS;
  o.heartbeat_timeout_ms = r->timeout_ms;
  if (disk) {
    char d[128];
    snprintf(d, sizeof d, "%s/disk", r->dir);
    if (mach_disk_opt(&o, "uksim bench failover", d) < 0)
      return -1;
    snprintf(o.sync_ms, sizeof o.sync_ms, "0");
    if (r->dirty_mib > 256) /* past the default cache size */
      snprintf(o.cache_mib, sizeof o.cache_mib, "%d", r->dirty_mib);
    if (r->writeback)
      snprintf(o.cache_migrate, sizeof o.cache_migrate, "writeback");
  }
  return mach_boot(m, &o) < 0 ? fail(m, "boot") : 0;
}

/* Waits for `failovers` failovers done and an active and a backup up, the
 * active's heartbeat seen. */
static int await_pair(mach_client *m, uint32_t failovers) {
  const struct uk_interos *io;
  if (mach_interos(m, &io) < 0)
    return fail(m, "inter-OS region");
  for (int i = 0; i < FAILOVER_WAIT_MS; i++) {
    Uksim__Reply *st;
    if (mach_status(m, &st) < 0) {
      mach_interos_unmap(io);
      return fail(m, "status");
    }
    uint32_t a = st->active_os;
    bool ok = st->failovers == failovers && a && st->backup_os;
    bool hb = io->hb_os == a && io->hb_ns > 0;
    uksim__reply__free_unpacked(st, NULL);
    if (ok && hb) {
      mach_interos_unmap(io);
      return 0;
    }
    usleep(1000);
  }
  mach_interos_unmap(io);
  fprintf(stderr, "uksim bench failover: no active and backup pair\n");
  return -1;
}

/* The shared file of the loads' slots. */
static int make_slots(struct run *r) {
  snprintf(r->slots, sizeof r->slots, "%s/slots", r->dir);
  size_t len = (size_t)r->procs * sizeof *r->slot;
  int fd = open(r->slots, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || ftruncate(fd, (off_t)len) < 0)
    return fail(NULL, r->slots);
  r->slot = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  return r->slot == MAP_FAILED ? fail(NULL, "mmap") : 0;
}

/* The name of counter service i of the run: "ctr" when it has one, else
 * ctr0, ctr1 ... */
static void svc_name(const struct run *r, int i, char *out, size_t len) {
  if (r->services <= 1)
    snprintf(out, len, "ctr");
  else
    snprintf(out, len, "ctr%d", i);
}

static int start_servers(mach_client *m, const struct run *r) {
  for (int i = 0; i < r->services; i++) {
    char name[16];
    svc_name(r, i, name, sizeof name);
    char *args[] = {"--service", name};
    if (mach_spawn(m, "ctr_srv", args, 2, name, MACH_SPAWN_REGISTERED, NULL) <
        0)
      return fail(m, "spawn ctr_srv");
  }
  return 0;
}

static int start_loads(mach_client *m, struct run *r, int *proc) {
  for (int i = 0; i < r->procs; i++) {
    char idx[16], name[32], period[16], svc[16];
    snprintf(idx, sizeof idx, "%d", i);
    snprintf(name, sizeof name, "load%d", i);
    snprintf(period, sizeof period, "%d", FAILOVER_PERIOD_US);
    svc_name(r, i % r->services, svc, sizeof svc);
    char *args[] = {r->slots, idx, period, svc};
    struct mach_prog p = {.program = "failload",
                          .args = args,
                          .nargs = 4,
                          .name = name,
                          .protect = true};
    if (mach_spawn_prog(m, &p, &proc[i]) < 0)
      return fail(m, "spawn failload");
  }
  for (int t = 0; t < FAILOVER_WAIT_MS; t++) {
    int ready = 0;
    for (int i = 0; i < r->procs; i++)
      ready += __atomic_load_n(&r->slot[i].answers, __ATOMIC_ACQUIRE) > 0;
    if (ready == r->procs)
      return 0;
    usleep(1000);
  }
  fprintf(stderr, "uksim bench failover: the loads never got answers\n");
  return -1;
}

/* The writes that dirty the cache: a segment each (UK_BCACHE_SEG blocks):
 * 1 GiB in 64 KiB writes took ~12 s on 2 loaded cores. */
#define FAILOVER_DIRTY_WRITE UK_BCACHE_SEG_BYTES

/* In an attached child: mib MiB written to #S/sd0/data, never synced. */
static int dirty(mach_client *m, int mib) {
  int proc, fd;
  if (mib == 0)
    return 0;
  if (mach_attach(m, "dirty", -1, 0, &proc, &fd) < 0)
    return fail(m, "attach");
  pid_t pid = fork();
  if (pid == 0) {
    static char buf[FAILOVER_DIRTY_WRITE];
    char v[16];
    snprintf(v, sizeof v, "%d", fd);
    setenv("UKSIM_FD", v, 1);
    int d = ns_open("#S/sd0/data", NS_ORDWR);
    memset(buf, 'f', sizeof buf);
    for (uint64_t off = 0; d >= 0 && off < ((uint64_t)mib << 20);
         off += sizeof buf)
      if (ns_pwrite(d, buf, sizeof buf, off) != (long)sizeof buf)
        _exit(3);
    _exit(d < 0 ? 2 : 0);
  }
  close(fd);
  int st = 1;
  if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
      WEXITSTATUS(st) != 0) {
    fprintf(stderr, "uksim bench failover: the disk write failed (%d)\n", st);
    return -1;
  }
  return 0;
}

/* The first answer of slot s to a call made after t (when the dead
 * kernel no longer ran: an answer it sent just before it died cannot
 * count), or 0 if none yet.  The call the kernel died holding, answered
 * by the new one, is not counted: served is the next, a little late. */
static uint64_t first_after(const struct failload_slot *s, uint64_t t) {
  uint64_t n = __atomic_load_n(&s->answers, __ATOMIC_ACQUIRE), best = 0;
  uint64_t from = n > FAILLOAD_RING ? n - FAILLOAD_RING : 0;
  for (uint64_t k = from; k < n; k++) {
    uint64_t a = s->ring[k % FAILLOAD_RING];
    if (s->start[k % FAILLOAD_RING] > t && (best == 0 || a < best))
      best = a;
  }
  return best;
}

/* True once MachStatus shows the next backup (its kernel process spawned
 * by the machine after the fence). */
static bool backup_back(mach_client *m) {
  Uksim__Reply *st;
  if (mach_status(m, &st) < 0)
    return false;
  bool ok = st->failovers >= 1 && st->backup_os && st->active_os;
  uksim__reply__free_unpacked(st, NULL);
  return ok;
}

/* Waits until every load has an answer after det (the last of the first
 * answers in *served) and the next backup is there (*backup: when first
 * seen, polled in the same loop). */
static int await_served(mach_client *m, const struct run *r, uint64_t det,
                        uint64_t *served, uint64_t *backup) {
  *served = *backup = 0;
  for (int t = 0; t < FAILOVER_WAIT_MS && (!*served || !*backup); t++) {
    uint64_t last = 0;
    int n = 0;
    for (int i = 0; i < r->procs; i++) {
      uint64_t a = first_after(&r->slot[i], det);
      n += a != 0;
      last = a > last ? a : last;
    }
    if (n == r->procs)
      *served = last;
    if (!*backup && backup_back(m))
      *backup = stats_now_ns();
    usleep(500);
  }
  if (*served && *backup)
    return 0;
  fprintf(stderr, "uksim bench failover: %s\n",
          *served ? "no next backup" : "a protected process was not served");
  return -1;
}

/* The "t" (ns since the kernel's start) of a trace line. */
static double line_ms(const char *line) {
  const char *t = strstr(line, "\"t\":");
  unsigned long long ns = 0;
  return t && sscanf(t + 4, "%llu", &ns) == 1 ? (double)ns / 1e6 : 0;
}

/* The new kernel's failover steps (op and "op N us" in its trace); fence
 * is its os-dead event to its os-active, takeover from there to the
 * first step's start (the dead OS's state received). */
static void read_steps(const struct run *r, uint32_t os, struct result *res) {
  static const enum step steps[] = {S_DEVICES, S_FILECACHE, S_PROCESSES,
                                    S_CACHE};
  static const char *const ops[] = {"devices", "filecache", "processes",
                                    "cache"};
  char path[300], line[2048];
  double dead = 0, active = 0, start = 0;
  snprintf(path, sizeof path, "%s.os%u", r->trace, os);
  FILE *f = fopen(path, "r");
  while (f && fgets(line, sizeof line, f)) {
    if (strstr(line, "\"ev\":\"os-dead\"") && dead == 0)
      dead = line_ms(line);
    if (strstr(line, "\"ev\":\"os-active\"") && active == 0)
      active = line_ms(line);
    if (!strstr(line, "\"ev\":\"failover\""))
      continue;
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
      char key[48];
      unsigned long long us;
      snprintf(key, sizeof key, "\"text\":\"%s ", ops[i]);
      const char *s = strstr(line, key);
      if (s && sscanf(s + strlen(key), "%llu us", &us) == 1)
        res->step_ms[steps[i]] = (double)us / 1000;
      if (s && steps[i] == S_DEVICES)
        start = line_ms(line) - (double)us / 1000;
    }
  }
  if (f)
    fclose(f);
  res->step_ms[S_FENCE] = active > dead ? active - dead : 0;
  res->step_ms[S_TAKEOVER] = start > active ? start - active : 0;
}

/* Every load stopped (by its host pid: the process the kernel moved is the
 * same Linux process); its counts summed. */
static int stop_loads(const struct run *r, struct result *res) {
  struct failload_counts c;
  if (failload_stop(r->slot, r->procs, FAILOVER_WAIT_MS, &c) < 0)
    return fail(NULL, "kill");
  res->calls = c.calls;
  res->answers = c.answers;
  res->resets = c.resets;
  res->intrs = c.intrs;
  res->errors = c.errors;
  res->lost = c.lost;
  return 0;
}

/* Counter service svc holds every increment its loads (slot i calls
 * service i mod services) saw answered and at most the reset ones: 1 yes,
 * 0 no, -1 when it cannot be asked. */
static int check_counter(mach_client *m, const struct run *r, int svc) {
  uint64_t answers = 0, resets = 0;
  for (int i = svc; i < r->procs; i += r->services) {
    answers += r->slot[i].answers;
    resets += r->slot[i].resets;
  }
  char range[64], name[16];
  int proc, st = -1, sig = 0;
  snprintf(range, sizeof range, "%" PRIu64 ":%" PRIu64, answers,
           answers + resets);
  svc_name(r, svc, name, sizeof name);
  char *a[] = {"--count",   "0",  "--expect-range", range,
               "--service", name, "--quiet"};
  if (mach_spawn(m, "ctr_load", a, 7, "check", MACH_SPAWN_WAITABLE, &proc) < 0)
    return fail(m, "spawn ctr_load");
  int64_t w = mach_wait_send(m, proc);
  if (w < 0 || mach_wait_reply(m, (uint64_t)w, &st, &sig) < 0)
    return fail(m, "wait");
  return st == 0 && sig == 0;
}

/* Every service's counter checked (check_counter): 1, 0 or -1. */
static int check_counters(mach_client *m, const struct run *r) {
  int once = 1;
  for (int i = 0; i < r->services && once == 1; i++)
    once = check_counter(m, r, i);
  return once;
}

/* The machine's step log: ms from the re-partition for OS os to the
 * re-pinning of its threads after it (the Resize between), or 0 when the
 * log has neither. */
static double repartition_ms(mach_client *m, uint32_t os) {
  Uksim__Ctl c = UKSIM__CTL__INIT, *rep = NULL;
  Uksim__Os req = UKSIM__OS__INIT;
  c.body_case = UKSIM__CTL__BODY_OS;
  c.os = &req;
  int64_t id = mach_send(m, &c);
  if (id < 0 || mach_reply(m, (uint64_t)id, &rep, NULL) < 0)
    return 0;
  const Uksim__Partition *p = rep->reply ? rep->reply->partition : NULL;
  uint64_t from = 0, to = 0;
  for (size_t i = 0; p && i < p->n_steps; i++) {
    const Uksim__PartStep *st = p->steps[i];
    if (strcmp(st->step, "repartition") == 0 && st->os == os)
      from = st->at_us;
    else if (from && !to && strcmp(st->step, "repin") == 0)
      to = st->at_us;
  }
  uksim__ctl__free_unpacked(rep, NULL);
  return from && to >= from ? (double)(to - from) / 1000 : 0;
}

/* The fault and everything after it, on a booted machine with its loads. */
static int measure(mach_client *m, struct run *r, struct result *res) {
  const struct uk_interos *io;
  if (mach_interos(m, &io) < 0)
    return fail(m, "inter-OS region");
  if (mach_fault(m, r->kind, 0) < 0)
    return fail(m, "fault");
  for (int t = 0; t < FAILOVER_WAIT_MS && io->det_count < 1; t++)
    usleep(200);
  struct uk_interos d;
  memcpy(&d, io, sizeof d);
  mach_interos_unmap(io);
  if (d.det_count < 1)
    return fail(NULL, "no detection");
  uint64_t served, backup_at;
  if (await_served(m, r, d.det_ns, &served, &backup_at) < 0 ||
      await_pair(m, 1) < 0)
    return -1;
  res->cause = d.det_cause;
  res->total_ms = ms_since(d.fault_ns, served);
  res->step_ms[S_DETECT] = d.det_since_fault_ns / 1e6;
  read_steps(r, d.det_by_os, res);
  double steps = 0;
  for (int i = S_FENCE; i <= S_CACHE; i++)
    steps += res->step_ms[i];
  /* After the kernel's steps: the restarted server registers and the
   * loads' calls are answered. */
  double after_det = ms_since(d.det_ns, served);
  res->step_ms[S_SERVERS] = after_det > steps ? after_det - steps : 0;
  res->step_ms[S_BACKUP] = ms_since(d.det_ns, backup_at);
  res->step_ms[S_REPART] = repartition_ms(m, d.det_by_os);
  return 0;
}

/* The baseline in the same run: from the machine's boot to the last of
 * the loads' first answers, what the same service costs without a
 * failover (a reboot, the base system's way: seed 001 §5). */
static double boot_ms(const struct run *r, uint64_t t0) {
  uint64_t last = 0;
  for (int i = 0; i < r->procs; i++)
    last = r->slot[i].ring[0] > last ? r->slot[i].ring[0] : last;
  return ms_since(t0, last);
}

static int run_case(struct run *r, struct result *res) {
  mach_client m;
  int proc[FAILOVER_PROCS_MAX];
  uint64_t t0 = stats_now_ns();
  if (boot(&m, r, true) < 0 || await_pair(&m, 0) < 0)
    return -1;
  int st = -1;
  if (start_servers(&m, r) < 0 || make_slots(r) < 0 ||
      start_loads(&m, r, proc) < 0)
    goto out;
  res->boot_ms = boot_ms(r, t0);
  if (dirty(&m, r->dirty_mib) < 0 || measure(&m, r, res) < 0 ||
      stop_loads(r, res) < 0)
    goto out;
  res->exactly_once = check_counters(&m, r);
  st = res->exactly_once < 0 ? -1 : 0;
out:;
  uint32_t live;
  mach_halt(&m, &live);
  mach_close(&m);
  return st;
}

/* The usable memory (MiB) of the active OS (its number from MachStatus),
 * from the machine's Os answer (what uksim os shows); 0 if it cannot be
 * read. */
static uint64_t active_usable_mib(mach_client *m) {
  Uksim__Reply *st;
  if (mach_status(m, &st) < 0)
    return 0;
  uint32_t active = st->active_os;
  uksim__reply__free_unpacked(st, NULL);
  Uksim__Ctl c = UKSIM__CTL__INIT, *rep = NULL;
  Uksim__Os os = UKSIM__OS__INIT;
  c.body_case = UKSIM__CTL__BODY_OS;
  c.os = &os;
  int64_t id = mach_send(m, &c);
  uint64_t mib = 0;
  if (id < 0 || mach_reply(m, (uint64_t)id, &rep, NULL) < 0)
    return 0;
  const Uksim__Partition *p = rep->reply ? rep->reply->partition : NULL;
  for (size_t i = 0; p && i < p->n_os; i++)
    if (p->os[i]->number == active)
      mib = p->os[i]->usable_mib;
  uksim__ctl__free_unpacked(rep, NULL);
  return mib;
}

/* Table 5's shape: OS 1's usable memory, then each next active's after
 * 4 successive panics. */
static int run_usable(struct run *r, uint64_t mib[5]) {
  mach_client m;
  int st = boot(&m, r, false);
  for (uint32_t i = 0; st == 0 && i < 5; i++) {
    st = await_pair(&m, i);
    mib[i] = st == 0 ? active_usable_mib(&m) : 0;
    if (st == 0 && i < 4 && mach_fault(&m, UKSIM__FAULT__KIND__PANIC, 0) < 0)
      st = fail(&m, "fault");
  }
  uint32_t live;
  mach_halt(&m, &live);
  mach_close(&m);
  return st;
}

/* Runs fn in a child (one machine per process); its result through a
 * pipe. */
static int in_child(struct run *r, void *out, size_t len,
                    int (*fn)(struct run *, void *)) {
  int p[2];
  if (pipe(p) < 0)
    return fail(NULL, "pipe");
  snprintf(r->dir, sizeof r->dir, "/tmp/uksim-bench-fo-XXXXXX");
  if (mkdtemp(r->dir) == NULL)
    return fail(NULL, "mkdtemp");
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    dup2(2, 1); /* the machine's programs print: stdout is the figures' */
    int st = fn(r, out);
    _exit(st == 0 && write(p[1], out, len) == (ssize_t)len ? 0 : 1);
  }
  close(p[1]);
  ssize_t n = pid < 0 ? -1 : read(p[0], out, len);
  close(p[0]);
  int st = 1;
  if (pid > 0)
    waitpid(pid, &st, 0);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", r->dir);
  if (getenv("UKSIM_BENCH_KEEP")) /* its disk and traces, to look at */
    fprintf(stderr, "uksim bench failover: kept %s\n", r->dir);
  else if (system(cmd) != 0)
    fprintf(stderr, "uksim bench failover: %s not removed\n", r->dir);
  return n == (ssize_t)len && st == 0 ? 0 : -1;
}

static int case_fn(struct run *r, void *out) {
  return run_case(r, out);
}
static int usable_fn(struct run *r, void *out) {
  return run_usable(r, out);
}

struct bench_case {
  int kind, procs, dirty_mib, services;
  bool writeback;
  const char *kind_name;
  struct result med; /* medians over the rounds */
};

/* Rounds of one case; each figure the median, counts summed. */
static int bench_case(struct bench_case *c, int rounds) {
  struct result res[rounds];
  memset(res, 0, sizeof res);
  memset(&c->med, 0, sizeof c->med);
  c->med.exactly_once = 1;
  for (int i = 0; i < rounds; i++) {
    struct run r = {.kind = c->kind,
                    .procs = c->procs,
                    .dirty_mib = c->dirty_mib,
                    .writeback = c->writeback,
                    .services = c->services,
                    .timeout_ms = c->kind == UKSIM__FAULT__KIND__PANIC
                                      ? FAILOVER_PANIC_TIMEOUT_MS
                                      : FAILOVER_TIMEOUT_MS};
    if (in_child(&r, &res[i], sizeof res[i], case_fn) < 0) {
      fprintf(stderr, "uksim bench failover: %s %dp %dm failed\n", c->kind_name,
              c->procs, c->dirty_mib);
      return -1;
    }
    c->med.calls += res[i].calls;
    c->med.answers += res[i].answers;
    c->med.resets += res[i].resets;
    c->med.intrs += res[i].intrs;
    c->med.errors += res[i].errors;
    c->med.lost += res[i].lost;
    c->med.exactly_once &= res[i].exactly_once;
    c->med.cause = res[i].cause;
  }
  double v[rounds];
  for (int i = 0; i < rounds; i++)
    v[i] = res[i].total_ms;
  c->med.total_ms = stats_median(v, (size_t)rounds);
  for (int i = 0; i < rounds; i++)
    v[i] = res[i].boot_ms;
  c->med.boot_ms = stats_median(v, (size_t)rounds);
  for (int s = 0; s < NSTEPS; s++) {
    for (int i = 0; i < rounds; i++)
      v[i] = res[i].step_ms[s];
    c->med.step_ms[s] = stats_median(v, (size_t)rounds);
  }
  return 0;
}

/* The case's key: <kind>_<N>p_<D>m, _writeback for that method, _<S>s
 * for S counter services (none for one). */
static void case_key(const struct bench_case *c, char *p, size_t len) {
  char svcs[16] = "";
  if (c->services > 1)
    snprintf(svcs, sizeof svcs, "_%ds", c->services);
  snprintf(p, len, "%s_%dp_%dm%s%s", c->kind_name, c->procs, c->dirty_mib,
           c->writeback ? "_writeback" : "", svcs);
}

static void print_case_json(const struct bench_case *c, bool first) {
  char p[64];
  case_key(c, p, sizeof p);
  printf("%s\"failover_%s_ms\": %.3f, \"boot_%s_ms\": %.3f, "
         "\"failover_%s_ratio\": %.3f",
         first ? "" : ", ", p, c->med.total_ms, p, c->med.boot_ms, p,
         c->med.total_ms / c->med.boot_ms);
  for (int s = 0; s < NSTEPS; s++)
    printf(", \"%s_%s_ms\": %.3f", p, step_names[s], c->med.step_ms[s]);
  printf(", \"%s_calls\": %" PRIu64 ", \"%s_resets\": %" PRIu64
         ", \"%s_intr\": %" PRIu64 ", \"%s_errors\": %" PRIu64
         ", \"%s_lost\": %" PRIu64,
         p, c->med.calls, p, c->med.resets, p, c->med.intrs, p, c->med.errors,
         p, c->med.lost);
}

static void print_case_text(const struct bench_case *c) {
  printf("%-6s %3d procs %4d MiB dirty, %-9s %8.3f ms, %.2f x a cold boot's "
         "%.3f ms  (",
         c->kind_name, c->procs, c->dirty_mib,
         c->writeback ? "writeback" : "adopt", c->med.total_ms,
         c->med.total_ms / c->med.boot_ms, c->med.boot_ms);
  for (int s = 0; s < NSTEPS; s++)
    printf("%s%s %.3f", s ? ", " : "", step_names[s], c->med.step_ms[s]);
  printf(")\n    %" PRIu64 " calls, %" PRIu64 " answers, %" PRIu64
         " resets, %" PRIu64 " -EINTR, %" PRIu64 " errors, %" PRIu64
         " lost, exactly once: %s\n",
         c->med.calls, c->med.answers, c->med.resets, c->med.intrs,
         c->med.errors, c->med.lost, c->med.exactly_once ? "yes" : "NO");
}

/* --case KEY: that case alone, for working on one figure. */
static int bench_one(struct bench_case *cases, int n, const char *key,
                     int rounds) {
  char p[64];
  for (int i = 0; i < n; i++) {
    case_key(&cases[i], p, sizeof p);
    if (strcmp(p, key) != 0)
      continue;
    if (bench_case(&cases[i], rounds) < 0)
      return 1;
    print_case_text(&cases[i]);
    return cases[i].med.lost == 0 && cases[i].med.errors == 0 &&
                   cases[i].med.exactly_once
               ? 0
               : 1;
  }
  fprintf(stderr, "uksim bench failover: no case %s; the cases:", key);
  for (int i = 0; i < n; i++) {
    case_key(&cases[i], p, sizeof p);
    fprintf(stderr, " %s", p);
  }
  fprintf(stderr, "\n");
  return 2;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: uksim bench failover [--json] [--quick] [--all] "
          "[--rounds N] [--case KEY] [--services S]\n\n"
          "Orthros failover, from the fault to every protected process "
          "served again by\nthe new active OS: %d and %d protected load "
          "processes, 0 and 64 MiB of dirty\ndisk cache (and both with %d "
          "MiB), panic-triggered; a crash (heartbeat timeout)\napart; the "
          "usable memory of OS 1..5 across 4 failovers.  The dead cache is\n"
          "adopted (the default); the 64 MiB cases again with "
          "--cache-migrate\nwriteback (keys ..._writeback_...), the %d MiB "
          "one too with --all (~40 s\nmore).  Each figure is the median of N "
          "rounds (default 3; --quick: 1; a %d\nMiB case: 1).  Keys "
          "failover_<kind>_<N>p_<D>m_ms, each step's\n"
          "<kind>_<N>p_<D>m_<step>_ms, the target case's steps as <step>_ms, "
          "lost,\nresets, exactly_once, usable_mib_os1..5.  Target: "
          "failover_panic_%dp_64m_ms <= 100.\n"
          "--case KEY runs that case alone (e.g. panic_200p_64m), in text.\n"
          "--services S (1..%d): the loads share S counter services (load i "
          "calls\nctr<i mod S>), each its own server; keys get _<S>s.  The "
          "default, one\nservice, is the target's definition.\n",
          10, FAILOVER_PROCS_MAX, FAILOVER_DIRTY_MAX_MIB,
          FAILOVER_DIRTY_MAX_MIB, FAILOVER_DIRTY_MAX_MIB, FAILOVER_PROCS_MAX,
          FAILOVER_SERVICES_MAX);
}

struct opts {
  bool json, all;
  int rounds, services;
  const char *only; /* --case */
};

static int parse(int argc, char **argv, struct opts *o) {
  static const struct option lo[] = {{"json", no_argument, 0, 'j'},
                                     {"rounds", required_argument, 0, 'r'},
                                     {"quick", no_argument, 0, 'q'},
                                     {"all", no_argument, 0, 'a'},
                                     {"case", required_argument, 0, 'c'},
                                     {"services", required_argument, 0, 's'},
                                     {"help", no_argument, 0, 'h'},
                                     {0, 0, 0, 0}};
  const char *me = "uksim bench failover";
  int64_t v;
  optind = 1;
  for (int c; (c = getopt_long(argc, argv, "", lo, NULL)) != -1;) {
    if (c == 'j')
      o->json = true;
    else if (c == 'q')
      o->rounds = 1;
    else if (c == 'a')
      o->all = true;
    else if (c == 'c')
      o->only = optarg;
    else if (c == 'r' && num_opt_i64(me, "--rounds", optarg, 1, 100, &v) == 0)
      o->rounds = (int)v;
    else if (c == 's' && num_opt_i64(me, "--services", optarg, 1,
                                     FAILOVER_SERVICES_MAX, &v) == 0)
      o->services = (int)v;
    else {
      usage(c == 'h' ? stdout : stderr);
      return c == 'h' ? 0 : 2;
    }
  }
  if (optind != argc) {
    usage(stderr);
    return 2;
  }
  return -1;
}

int bench_failover_main(int argc, char **argv) {
  struct opts o = {.rounds = 3, .services = 1};
  int st = parse(argc, argv, &o);
  if (st >= 0)
    return st;
  bool json = o.json, all = o.all;
  const char *only = o.only;
  int rounds = o.rounds;
  const int P = UKSIM__FAULT__KIND__PANIC, N = FAILOVER_PROCS_MAX,
            G = FAILOVER_DIRTY_MAX_MIB;
  /* TARGET and CRASH index the target case and the crash case. */
  struct bench_case cases[] = {
      {.kind = P, .procs = 10, .dirty_mib = 0, .kind_name = "panic"},
      {.kind = P, .procs = 10, .dirty_mib = 64, .kind_name = "panic"},
      {.kind = P, .procs = N, .dirty_mib = 0, .kind_name = "panic"},
      {.kind = P, .procs = N, .dirty_mib = 64, .kind_name = "panic"},
      {.kind = UKSIM__FAULT__KIND__CRASH,
       .procs = 10,
       .dirty_mib = 0,
       .kind_name = "crash"},
      {.kind = P, .procs = 10, .dirty_mib = G, .kind_name = "panic"},
      {.kind = P, .procs = N, .dirty_mib = G, .kind_name = "panic"},
      {.kind = P,
       .procs = 10,
       .dirty_mib = 64,
       .writeback = true,
       .kind_name = "panic"},
      {.kind = P,
       .procs = N,
       .dirty_mib = 64,
       .writeback = true,
       .kind_name = "panic"},
      {.kind = P,
       .procs = 10,
       .dirty_mib = G,
       .writeback = true,
       .kind_name = "panic"}};
  enum { NCASES = sizeof cases / sizeof *cases, TARGET = 3, CRASH = 4 };
  for (int i = 0; i < NCASES; i++)
    cases[i].services = o.services;
  /* The slowest, 1 GiB written back at the failover, only with --all. */
  int ncases = all ? NCASES : NCASES - 1;
  if (only != NULL)
    return bench_one(cases, NCASES, only, rounds);
  uint64_t lost = 0, resets = 0, intrs = 0, errors = 0, usable[5] = {0};
  int once = 1;
  for (int i = 0; i < ncases; i++) {
    if (bench_case(&cases[i], cases[i].dirty_mib == G ? 1 : rounds) < 0)
      return 1;
    lost += cases[i].med.lost;
    resets += cases[i].med.resets;
    intrs += cases[i].med.intrs;
    errors += cases[i].med.errors;
    once &= cases[i].med.exactly_once;
  }
  struct run r = {.timeout_ms = FAILOVER_PANIC_TIMEOUT_MS};
  if (in_child(&r, usable, sizeof usable, usable_fn) < 0)
    return 1;
  const struct result *t = &cases[TARGET].med;
  if (json) {
    printf("{");
    for (int i = 0; i < ncases; i++)
      print_case_json(&cases[i], i == 0);
    for (int s = 0; s < NSTEPS; s++)
      printf(", \"%s_ms\": %.3f", step_names[s], t->step_ms[s]);
    printf(", \"detect_timeout_ms\": %.3f", cases[CRASH].med.step_ms[S_DETECT]);
    for (int i = 0; i < 5; i++)
      printf(", \"usable_mib_os%d\": %" PRIu64, i + 1, usable[i]);
    /* 0 after a failover: the machine's partition has no entry for the
     * new active OS (no re-partition at failover yet). */
    printf(", \"repartitioned\": %s", usable[1] ? "true" : "false");
    printf(", \"lost\": %" PRIu64 ", \"resets\": %" PRIu64
           ", \"intr\": %" PRIu64 ", \"errors\": %" PRIu64
           ", \"exactly_once\": %s, \"procs_max\": "
           "%d, \"services\": %d, \"rounds\": %d, \"target_ms\": 100, "
           "\"targets_met\": %s}\n",
           lost, resets, intrs, errors, once ? "true" : "false",
           FAILOVER_PROCS_MAX, o.services, rounds,
           t->total_ms <= 100 ? "true" : "false");
  } else {
    for (int i = 0; i < ncases; i++)
      print_case_text(&cases[i]);
    printf("usable MiB of OS 1..5:");
    for (int i = 0; i < 5; i++)
      printf(" %" PRIu64, usable[i]);
    printf("\n");
  }
  return lost == 0 && errors == 0 && once ? 0 : 1;
}
