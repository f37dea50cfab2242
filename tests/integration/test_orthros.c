/* Orthros (issue 14): an ActiveOS and a BackupOS on one machine.  The
 * backup finds a dead active through the PANIC notice or the missing
 * heartbeat, fences it, becomes the active OS, and the machine boots the
 * next backup; processes outlive their kernel; the machine re-partitions
 * at every failover and the new active republishes the protected
 * processes. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "uksim/ns.h"
#include "uksim/interos.h"
#include "uksim_paths.h"

#define HB_MS 10
#define TIMEOUT_MS 50
#define DISK_TIMEOUT_MS 1000

static char trace[256], name[64]; /* of the machine boot_pair booted */
static uint16_t nic_port;         /* its nic0's first port */

/* Failure detection is in real time (a 50 ms heartbeat timeout): under
 * valgrind every kernel runs tens of times slower and fails over by
 * itself, so these tests skip there (tests/ci-skips.txt); the takeover's
 * table code runs under valgrind in tests/sim-kernel/test_adopt.c. */
static void skip_under_valgrind(void) {
  if (getenv("UKSIM_UNDER_VALGRIND"))
    cr_skip_test("real-time failure detection cannot run under valgrind");
}

TestSuite(orthros, .init = skip_under_valgrind);

/* A machine with an active and a backup OS; with dir, a disk (LevelDB
 * there) written back only on "sync", so that what was dirty when the
 * active died is in its cache alone; migrate: --cache-migrate ("": the
 * default, adopt). */
static void boot_with(mach_client *m, const char *dir, const char *migrate) {
  static int n;
  struct mach_opts o;
  mach_opts_default(&o);
  snprintf(o.name, sizeof o.name, "orthros-%d-%d", (int)getpid(), n++);
  snprintf(name, sizeof name, "%s", o.name);
  snprintf(trace, sizeof trace, "%s/%s.jsonl",
           getenv("UKSIM_BUILD_ROOT") ? getenv("UKSIM_BUILD_ROOT") : "/tmp",
           o.name);
  snprintf(o.trace_file, sizeof o.trace_file, "%s", trace);
  /* A range of its own per test process, away from the default's. */
  nic_port = (uint16_t)(30000 + (getpid() % 500) * 2 * UK_NIC_PORTS);
  o.nic_port = nic_port;
  o.backup = true;
  o.heartbeat_ms = HB_MS;
  o.heartbeat_timeout_ms = TIMEOUT_MS;
  o.trace = getenv("ORTHROS_TRACE") ? -1 : 0;
  if (dir) {
    /* The new active's loop writes the disk back synchronously (fsync):
     * on a loaded host that may outlast a short timeout. */
    o.heartbeat_timeout_ms = DISK_TIMEOUT_MS;
    cr_assert_eq(mach_disk_opt(&o, "test", dir), 0);
    snprintf(o.sync_ms, sizeof o.sync_ms, "0");
    snprintf(o.cache_migrate, sizeof o.cache_migrate, "%s", migrate);
  }
  cr_assert_eq(mach_boot(m, &o), 0, "boot: %s", m->error);
}

static void boot_pair(mach_client *m) {
  boot_with(m, NULL, "");
}

static void boot_pair_disk(mach_client *m, const char *dir) {
  boot_with(m, dir, "");
}

static Uksim__Reply *status(mach_client *m) {
  Uksim__Reply *st;
  cr_assert_eq(mach_status(m, &st), 0, "status: %s", m->error);
  return st;
}

/* Waits until `failovers` failovers happened and both an active and a
 * backup run again, and the active has sent a heartbeat the backup can
 * see; returns the active's OS number. */
static uint32_t await_pair(mach_client *m, uint32_t failovers) {
  const struct uk_interos *io;
  cr_assert_eq(mach_interos(m, &io), 0, "%s", m->error);
  for (int i = 0; i < 1000; i++) {
    Uksim__Reply *st = status(m);
    uint32_t a = st->active_os;
    bool ok = st->failovers == failovers && a && st->backup_os &&
              io->hb_os == a && io->hb_ns > 0;
    uksim__reply__free_unpacked(st, NULL);
    if (ok) {
      usleep(3 * HB_MS * 1000); /* the new backup sees a heartbeat */
      mach_interos_unmap(io);
      return a;
    }
    usleep(10 * 1000);
  }
  cr_assert_fail("no active and backup pair after %u failovers", failovers);
  return 0;
}

/* Waits for detection number n; copies the record. */
static struct uk_interos await_detection(mach_client *m, uint32_t n) {
  const struct uk_interos *io;
  struct uk_interos copy;
  cr_assert_eq(mach_interos(m, &io), 0, "%s", m->error);
  for (int i = 0; i < 500 && io->det_count < n; i++)
    usleep(10 * 1000);
  memcpy(&copy, io, sizeof copy);
  mach_interos_unmap(io);
  cr_assert_geq(copy.det_count, n, "no detection within 5 s");
  return copy;
}

/* True once the trace of OS os has a line with both strings. */
static bool trace_has(uint32_t os, const char *a, const char *b) {
  char path[300], line[1024];
  snprintf(path, sizeof path, "%s.os%u", trace, os);
  for (int i = 0; i < 200; i++) {
    FILE *f = fopen(path, "r");
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f))
      found = strstr(line, a) && strstr(line, b);
    if (f)
      fclose(f);
    if (found)
      return true;
    usleep(10 * 1000);
  }
  return false;
}

static void rm_dir(const char *dir) {
  char cmd[96];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  cr_assert_eq(system(cmd), 0);
}

/* The run's trace files (one per kernel: trace, trace.os2 ...) go at the
 * halt, unless ORTHROS_TRACE asks to keep them. */
static void remove_traces(void) {
  char path[sizeof trace + 16];
  if (getenv("ORTHROS_TRACE") || trace[0] == '\0')
    return;
  unlink(trace);
  for (int os = 2; os <= 64; os++) {
    snprintf(path, sizeof path, "%s.os%d", trace, os);
    unlink(path);
  }
}

static void halt(mach_client *m) {
  uint32_t live = 99;
  cr_assert_eq(mach_halt(m, &live), 0, "halt: %s", m->error);
  mach_close(m);
  remove_traces();
}

/* One fault into the active; returns the detection record. */
static struct uk_interos fail_once(mach_client *m, int kind, uint32_t n) {
  uint32_t a = await_pair(m, n - 1);
  cr_assert_eq(mach_fault(m, kind, 0), 0, "fault: %s", m->error);
  struct uk_interos d = await_detection(m, n);
  cr_expect_eq(d.det_dead_os, a);
  await_pair(m, n);
  return d;
}

static void report(const char *fault, const struct uk_interos *d) {
  printf("orthros: %s found %.3f ms after the fault (%.3f ms after the "
         "last heartbeat)\n",
         fault, d->det_since_fault_ns / 1e6, d->det_since_hb_ns / 1e6);
}

/* A fault only the missing heartbeat can reveal. */
static struct uk_interos silent_fault(mach_client *m, int kind,
                                      const char *what) {
  struct uk_interos d = fail_once(m, kind, 1);
  cr_expect_eq(d.det_cause, UK_DETECT_TIMEOUT);
  cr_expect_geq(d.det_since_hb_ns, TIMEOUT_MS * 1000000ull);
  report(what, &d);
  cr_expect(trace_has(d.det_by_os, "os-dead", "heartbeat timeout"));
  return d;
}

Test(orthros, panic_notice_finds_a_panic_fast, .timeout = 60) {
  mach_client m;
  boot_pair(&m);
  struct uk_interos d = fail_once(&m, UKSIM__FAULT__KIND__PANIC, 1);
  /* Found by the notice, not by the heartbeat's silence: the cause says
   * which (how soon is the benchmark's to measure, not a test's: a
   * loaded host delays either). */
  cr_expect_eq(d.det_cause, UK_DETECT_PANIC,
               "found by cause %u, not the notice", d.det_cause);
  cr_expect_gt(d.det_since_fault_ns, 0);
  report("panic", &d);
  cr_expect(trace_has(d.det_by_os, "os-dead", "panic notice"));
  halt(&m);
}

Test(orthros, heartbeat_timeout_finds_a_hang, .timeout = 60) {
  mach_client m;
  boot_pair(&m);
  Uksim__Reply *st = status(&m);
  pid_t hung = st->active_pid;
  uksim__reply__free_unpacked(st, NULL);
  silent_fault(&m, UKSIM__FAULT__KIND__HANG, "hang");
  cr_expect_eq(kill(hung, 0), -1, "the hung kernel was not fenced");
  halt(&m);
}

/* The machine kills the kernel and tells nobody: the cause the backup
 * gives is the timeout, never a notice. */
Test(orthros, crash_is_found_by_the_missing_heartbeat_only, .timeout = 60) {
  mach_client m;
  boot_pair(&m);
  silent_fault(&m, UKSIM__FAULT__KIND__CRASH, "crash");
  halt(&m);
}

Test(orthros, five_failovers_in_a_row, .timeout = 120) {
  static const int kinds[] = {
      UKSIM__FAULT__KIND__PANIC, UKSIM__FAULT__KIND__HANG,
      UKSIM__FAULT__KIND__CRASH, UKSIM__FAULT__KIND__PANIC,
      UKSIM__FAULT__KIND__CRASH, UKSIM__FAULT__KIND__HANG};
  mach_client m;
  boot_pair(&m);
  for (uint32_t i = 0; i < 6; i++) {
    struct uk_interos d = fail_once(&m, kinds[i], i + 1);
    cr_expect_eq(d.det_cause,
                 kinds[i] == UKSIM__FAULT__KIND__PANIC ? UK_DETECT_PANIC
                                                       : UK_DETECT_TIMEOUT,
                 "failover %u", i + 1);
  }
  Uksim__Reply *st = status(&m);
  cr_expect_eq(st->failovers, 6);
  cr_expect_eq(st->active_os, 7, "the 7th OS is active");
  cr_expect_eq(st->backup_os, 8);
  uksim__reply__free_unpacked(st, NULL);
  /* The 7th OS serves. */
  char *a[] = {"-c", "exit 5"};
  int64_t w = h_spawn(&m, "/bin/sh", a, 2, "after", NULL);
  cr_expect_eq(h_wait(&m, w), 5);
  halt(&m);
}

static Uksim__Ctl *partition(mach_client *m);
static void check_kept_partition(mach_client *m, const Uksim__Ctl *before,
                                 uint32_t active);

/* ... and the active's partition stays as it was (checked at the end). */
Test(orthros, a_backup_dying_on_standby_is_replaced, .timeout = 60) {
  mach_client m;
  boot_pair(&m);
  await_pair(&m, 0);
  cr_assert_eq(
      mach_spawn(&m, "ctr_srv", NULL, 0, "ctr", MACH_SPAWN_REGISTERED, NULL), 0,
      "%s", m.error);
  char *a[] = {"--count", "3000"};
  int64_t w = h_spawn(&m, "ctr_load", a, 2, "load", NULL);
  Uksim__Reply *st = status(&m);
  pid_t backup = st->backup_pid;
  uint32_t active = st->active_os;
  uksim__reply__free_unpacked(st, NULL);
  Uksim__Ctl *before = partition(&m);
  cr_assert_eq(kill(backup, SIGKILL), 0);
  bool replaced = false;
  for (int i = 0; i < 500 && !replaced; i++) {
    st = status(&m);
    /* 3 would boot from the active's boot disk: partition.h skips it */
    replaced = st->backup_os == 4 && st->backup_pid != backup;
    cr_expect_eq(st->active_os, active, "the active changed");
    cr_expect_eq(st->failovers, 0);
    uksim__reply__free_unpacked(st, NULL);
    usleep(10 * 1000);
  }
  cr_expect(replaced, "no new backup");
  cr_expect_eq(h_wait(&m, w), 0, "the active stopped serving");
  check_kept_partition(&m, before, active);
  uksim__ctl__free_unpacked(before, NULL);
  halt(&m);
}

/* A process whose kernel crashes is not killed with it: its connection is
 * held by the machine and handed to the new kernel. */
static bool alive(pid_t pid) {
  char path[64], st[256];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return false;
  bool ok = fgets(st, sizeof st, f) != NULL;
  fclose(f);
  const char *s = ok ? strrchr(st, ')') : NULL;
  return s && s[1] == ' ' && s[2] != 'Z' && s[2] != 'X';
}

Test(orthros, processes_outlive_their_kernel, .timeout = 60) {
  mach_client m;
  int srv, load;
  boot_pair(&m);
  await_pair(&m, 0);
  cr_assert_eq(
      mach_spawn(&m, "ctr_srv", NULL, 0, "ctr", MACH_SPAWN_REGISTERED, &srv), 0,
      "%s", m.error);
  /* A request its server held when the OS died fails with -ECONNRESET
   * (the AnT fault path: it may or may not have been done). */
  char *a[] = {"--forever", "--tolerate-reset"};
  struct mach_prog lp = {.program = "ctr_load",
                         .args = a,
                         .nargs = 2,
                         .name = "load",
                         .protect = true};
  cr_assert_eq(mach_spawn_prog(&m, &lp, &load), 0, "%s", m.error);
  const struct uk_kdata *kd;
  cr_assert_eq(mach_kdata(&m, &kd, NULL), 0, "%s", m.error);
  pid_t psrv = kd->proc[srv].pid, pload = kd->proc[load].pid;
  mach_kdata_unmap(kd);
  usleep(100 * 1000); /* calls in a loop */
  struct uk_interos d = fail_once(&m, UKSIM__FAULT__KIND__CRASH, 1);
  usleep(200 * 1000);
  cr_expect(alive(pload), "the application died with its kernel");
  /* The server's process ends with its OS; its service restarts. */
  for (int i = 0; i < 200 && alive(psrv); i++)
    usleep(10 * 1000);
  cr_expect(!alive(psrv), "the dead OS's server outlived the takeover");
  /* The new kernel received the dead one's state: both connections. */
  cr_expect(trace_has(d.det_by_os, "takeover", "2 connections"),
            "the new kernel did not receive both connections");
  halt(&m);
  usleep(100 * 1000);
  cr_expect(!alive(pload) && !alive(psrv), "orphans outlived the machine");
}

/* The heartbeat timers are real-time and in the background: a lock-step
 * scenario run with a backup gives the trace it gives without one. */
static void run_sha(const char *extra, char *sha, size_t len) {
  char cmd[1024], line[512];
  snprintf(cmd, sizeof cmd, "%s run %s/crash-mid-stream.scn --quiet %s 2>&1",
           UKSIM_EXE_DEFAULT, UKSIM_SCENARIO_DIR, extra);
  FILE *f = popen(cmd, "r");
  cr_assert_not_null(f);
  sha[0] = '\0';
  while (fgets(line, sizeof line, f)) {
    const char *s = strstr(line, "trace sha256 ");
    if (s)
      snprintf(sha, len, "%s", s + 13);
  }
  cr_expect_eq(pclose(f), 0, "uksim run %s failed", extra);
}

Test(orthros, a_backup_does_not_change_a_lockstep_run, .timeout = 120) {
  char a[128], b[128];
  run_sha("", a, sizeof a);
  run_sha("--backup", b, sizeof b);
  cr_expect(a[0] != '\0', "no trace hash");
  cr_expect_str_eq(a, b);
}

Test(orthros, uksim_fault_injects_and_refuses_bad_usage, .timeout = 60) {
  mach_client m;
  char cmd[512];
  boot_pair(&m);
  await_pair(&m, 0);
  snprintf(cmd, sizeof cmd, "%s fault --name %s kernel bogus 2>/dev/null",
           UKSIM_EXE_DEFAULT, name);
  cr_expect_eq(WEXITSTATUS(system(cmd)), 2);
  snprintf(cmd, sizeof cmd, "%s fault --name %s kernel panic",
           UKSIM_EXE_DEFAULT, name);
  cr_expect_eq(WEXITSTATUS(system(cmd)), 0);
  struct uk_interos d = await_detection(&m, 1);
  cr_expect_eq(d.det_cause, UK_DETECT_PANIC);
  await_pair(&m, 1);
  halt(&m);
}

/* Failover, steps 1-4 (kfailover.c): a protected application moves to the
 * new kernel and finishes its work there; its server restarts on the new
 * kernel from its state ICA; an unprotected application ends; a block
 * written and never synced on the dead kernel is on the disk afterwards. */
static int spawn_load(mach_client *m, char **args, size_t n, const char *as,
                      bool protect) {
  int proc;
  struct mach_prog p = {.program = "ctr_load",
                        .args = args,
                        .nargs = n,
                        .name = as,
                        .protect = protect};
  cr_assert_eq(mach_spawn_prog(m, &p, &proc), 0, "%s", m->error);
  return proc;
}

/* Process slot proc's entry in the active kernel's tables, copied. */
static struct uk_proc proc_entry(mach_client *m, int proc) {
  const struct uk_kdata *kd;
  cr_assert_eq(mach_kdata(m, &kd, NULL), 0, "%s", m->error);
  struct uk_proc p = kd->proc[proc];
  mach_kdata_unmap(kd);
  return p;
}

static pid_t pid_of(mach_client *m, int proc) {
  return proc_entry(m, proc).pid;
}

/* fn(arg) in a child attached to the active kernel as `name` (a program of
 * its own, with its own connection); the child's exit status (fn's). */
static int attached(mach_client *m, const char *name, int (*fn)(const void *),
                    const void *arg) {
  int proc, fd;
  cr_assert_eq(mach_attach(m, name, -1, 0, &proc, &fd), 0, "%s", m->error);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    char v[16];
    snprintf(v, sizeof v, "%d", fd);
    setenv("UKSIM_FD", v, 1);
    _exit(fn(arg));
  }
  close(fd);
  int st;
  cr_assert_eq(waitpid(pid, &st, 0), pid);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 99;
}

struct disk_io_args {
  char byte;
  bool write;
};

static int disk_io_child(const void *arg) {
  const struct disk_io_args *a = arg;
  char buf[8192];
  int d = ns_open("#S/sd0/data", a->write ? NS_ORDWR : NS_OREAD);
  if (d < 0)
    return 2;
  for (int i = 0; i < 8; i++) {
    memset(buf, a->write ? a->byte : 0, sizeof buf);
    long n = a->write ? ns_pwrite(d, buf, sizeof buf, (uint64_t)i * 8192)
                      : ns_pread(d, buf, sizeof buf, (uint64_t)i * 8192);
    if (n != (long)sizeof buf)
      return 3;
    for (size_t j = 0; j < sizeof buf; j++)
      if (buf[j] != a->byte)
        return 4;
  }
  return 0;
}

/* 64 KiB of `byte` at offset 0 of the disk, written and never synced
 * (write), or read back (!write), by an attached child: its status. */
static int disk_io(mach_client *m, char byte, bool write) {
  struct disk_io_args a = {.byte = byte, .write = write};
  return attached(m, "disk", disk_io_child, &a);
}

Test(orthros, a_protected_app_moves_and_its_server_restarts, .timeout = 120) {
  mach_client m;
  char dir[] = "/tmp/uksim-orthros-disk-XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  boot_pair_disk(&m, dir);
  await_pair(&m, 0);
  cr_assert_eq(
      mach_spawn(&m, "ctr_srv", NULL, 0, "ctr", MACH_SPAWN_REGISTERED, NULL), 0,
      "%s", m.error);
  char *a[] = {"--count", "4000", "--tolerate-reset", "--expect-range",
               "3999:4000"};
  int load = spawn_load(&m, a, 5, "moves", true);
  char *vs[] = {"--service", "vic"};
  cr_assert_eq(
      mach_spawn(&m, "ctr_srv", vs, 2, "vic", MACH_SPAWN_REGISTERED, NULL), 0,
      "%s", m.error);
  char *f[] = {"--forever", "--service", "vic"};
  int victim = spawn_load(&m, f, 3, "ends", false);
  pid_t pload = pid_of(&m, load), pvictim = pid_of(&m, victim);
  cr_assert_eq(disk_io(&m, 'o', true), 0, "the write through #S failed");
  usleep(50 * 1000); /* calls in a loop */
  struct uk_interos d = fail_once(&m, UKSIM__FAULT__KIND__CRASH, 1);
  uint32_t os = d.det_by_os;
  cr_expect(trace_has(os, "failover", "devices"), "no devices step");
  cr_expect(trace_has(os, "failover", "adopt: "), "no file-cache step");
  cr_expect(trace_has(os, "failover", "1 moved"), "the app did not move");
  cr_expect(trace_has(os, "restart", "ctr"), "the server did not restart");
  for (int i = 0; i < 500 && alive(pvictim); i++)
    usleep(10 * 1000);
  cr_expect(!alive(pvictim), "the unprotected app outlived its OS");
  for (int i = 0; i < 3000 && alive(pload); i++)
    usleep(10 * 1000);
  cr_assert(!alive(pload), "the moved app did not finish its 4000 calls");
  /* Exactly once: the moved app's 4000 increments are all there, but for
   * at most the one its server held when the OS died (-ECONNRESET). */
  char *c[] = {"--count", "1", "--expect-range", "4000:4001"};
  int64_t wid = h_spawn(&m, "ctr_load", c, 4, "check", NULL);
  cr_expect_eq(h_wait(&m, wid), 0, "the counter lost or doubled increments");
  cr_expect_eq(disk_io(&m, 'o', false), 0,
               "the unsynced block is not on the disk after the failover");
  halt(&m);
  rm_dir(dir);
}

struct file_check_args {
  const char *srv, *file;
  long n;
};

static int file_check_child(const void *arg) {
  const struct file_check_args *a = arg;
  char path[96], rec[33], want[32];
  snprintf(path, sizeof path, "/srv/%s", a->srv);
  int s = ns_open(path, NS_ORDWR);
  if (s < 0 || ns_mount(s, "/n", NS_MREPL, "") < 0)
    return 2;
  snprintf(path, sizeof path, "/n/%s", a->file);
  int f = ns_open(path, NS_OREAD);
  ns_dir d;
  if (f < 0 || ns_fstat(f, &d) < 0 || d.length != (uint64_t)a->n * 32)
    return 3;
  for (long i = 0; i < a->n; i++) {
    snprintf(want, sizeof want, "rec %08ld ", i);
    if (ns_pread(f, rec, 32, (uint64_t)i * 32) != 32 ||
        memcmp(rec, want, strlen(want)) != 0 || rec[31] != '\n')
      return 4;
  }
  return 0;
}

/* In an attached child: mounts /srv/SRV on /n and checks that /n/FILE
 * holds records 0..n-1 of fwrite, each once, in order.  The child's
 * status: 0 whole, else which check failed. */
static int file_check(mach_client *m, const char *srv, const char *file,
                      long n) {
  struct file_check_args a = {.srv = srv, .file = file, .n = n};
  return attached(m, "check", file_check_child, &a);
}

/* True once process w has made 100 calls and service svc has a state
 * ICA (read from the active kernel's tables), within 20 s. */
static bool writing(mach_client *m, int w, const char *svc) {
  for (int i = 0; i < 2000; i++) {
    const struct uk_kdata *kd;
    cr_assert_eq(mach_kdata(m, &kd, NULL), 0, "%s", m->error);
    bool ok = kd->proc[w].calls >= 100;
    for (uint32_t s = 0; ok && s < UK_SVC_MAX; s++)
      if (strcmp(kd->svc[s].name, svc) == 0)
        ok = kd->svc[s].state_ica != KABI_ICA_NONE;
    mach_kdata_unmap(kd);
    if (ok)
      return true;
    usleep(10 * 1000);
  }
  return false;
}

/* The paper's file-writing process (§5.1): a protected application writes
 * a file on diskfs, which stores it on the disk through #S, while the
 * active OS panics; the application moves, diskfs restarts on the new OS
 * over the same disk (its open files in its state ICA), and the file ends
 * with every record once. */
Test(orthros, a_file_written_through_a_failover_is_whole, .timeout = 120) {
  mach_client m;
  char dir[] = "/tmp/uksim-orthros-fs-XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  boot_pair_disk(&m, dir);
  await_pair(&m, 0);
  char *fs[] = {"--name", "dfs", "--sync", "#S/sd0/ctl", "#S/sd0/data", "16M"};
  struct mach_prog dp = {.program = "diskfs",
                         .args = fs,
                         .nargs = 6,
                         .name = "dfs",
                         .flags = MACH_SPAWN_REGISTERED};
  cr_assert_eq(mach_spawn_prog(&m, &dp, NULL), 0, "diskfs: %s", m.error);
  char *a[] = {"dfs", "log", "1000"};
  struct mach_prog wp = {.program = "fwrite",
                         .args = a,
                         .nargs = 3,
                         .name = "writer",
                         .protect = true};
  int w;
  cr_assert_eq(mach_spawn_prog(&m, &wp, &w), 0, "fwrite: %s", m.error);
  pid_t pw = pid_of(&m, w);
  /* In the middle of its writes, once diskfs keeps its open files in a
   * state ICA (its successor takes them over from there). */
  cr_assert(writing(&m, w, "dfs"), "fwrite did not get going");
  cr_assert(alive(pw), "fwrite ended before the fault");
  struct uk_interos d = fail_once(&m, UKSIM__FAULT__KIND__PANIC, 1);
  cr_expect(trace_has(d.det_by_os, "failover", "1 moved"),
            "fwrite did not move");
  for (int i = 0; i < 6000 && alive(pw); i++)
    usleep(10 * 1000);
  cr_assert(!alive(pw), "fwrite did not finish on the new OS");
  cr_expect_eq(file_check(&m, "dfs", "log", 1000), 0,
               "the file is not every record once");
  halt(&m);
  rm_dir(dir);
}

/* Failover steps 5-6 (the machine's): after each failover, read from the
 * machine (the Os request), the new active's kernel data and the inter-OS
 * region: the new active owns the user disk and nic0, its ICA budget is
 * its usable memory, the BSP hosts no backup, the protected process is
 * published by the new active; over 4 failovers usable memory is OS1 >
 * OS2 = ... = OS5 (Table 5); a standby death leaves the active's
 * partition as it was. */
#define FAILOVERS 4

/* The partition as the machine answers `uksim os` (free with
 * uksim__ctl__free_unpacked). */
static Uksim__Ctl *partition(mach_client *m) {
  Uksim__Ctl c = UKSIM__CTL__INIT, *rep;
  Uksim__Os os = UKSIM__OS__INIT;
  c.body_case = UKSIM__CTL__BODY_OS;
  c.os = &os;
  int64_t id = mach_send(m, &c);
  cr_assert_geq(id, 0, "%s", m->error);
  cr_assert_eq(mach_reply(m, (uint64_t)id, &rep, NULL), 0, "%s", m->error);
  cr_assert_not_null(rep->reply->partition);
  return rep;
}

static const Uksim__PartOs *os_of(const Uksim__Partition *p, uint32_t n) {
  for (size_t i = 0; i < p->n_os; i++)
    if (p->os[i]->number == n)
      return p->os[i];
  return NULL;
}

static uint32_t dev_owner(const Uksim__Partition *p, const char *dev) {
  for (size_t i = 0; i < p->n_devices; i++)
    if (strcmp(p->devices[i]->name, dev) == 0)
      return p->devices[i]->owner;
  return 0;
}

/* The active's ICA budget, once it equals `want` (the Resize arrives
 * after the TakeOver), or what it is after 5 s. */
static uint64_t budget_of_active(mach_client *m, uint64_t want) {
  uint64_t b = 0;
  for (int i = 0; i < 500; i++) {
    const struct uk_kdata *kd;
    cr_assert_eq(mach_kdata(m, &kd, NULL), 0, "%s", m->error);
    b = kd->hdr.budget_bytes;
    mach_kdata_unmap(kd);
    if (b == want)
      break;
    usleep(10 * 1000);
  }
  return b;
}

/* Waits until OS `os` has published the protected table; a copy. */
static struct uk_interos published_by(mach_client *m, uint32_t os) {
  const struct uk_interos *io;
  struct uk_interos copy;
  cr_assert_eq(mach_interos(m, &io), 0, "%s", m->error);
  for (int i = 0; i < 500 && io->prot_os != os; i++)
    usleep(10 * 1000);
  usleep(20 * 1000); /* the publication in progress ends */
  memcpy(&copy, io, sizeof copy);
  mach_interos_unmap(io);
  return copy;
}

/* Step 6 after step 4: the next backup booted after the new active said
 * its failover was done (its restarted services serve), not at the
 * takeover; both in the machine's step log, in order. */
static void check_backup_after_done(const Uksim__Partition *p,
                                    uint32_t active) {
  long repin = -1, done = -1, boot = -1;
  if (active == 1)
    return; /* no failover yet */
  for (size_t i = 0; i < p->n_steps; i++) {
    const Uksim__PartStep *st = p->steps[i];
    if (st->os == active && strcmp(st->step, "repin") == 0)
      repin = (long)i;
    else if (repin >= 0 && st->os == active &&
             strcmp(st->step, "failover-done") == 0)
      done = (long)i;
    else if (repin >= 0 && boot < 0 && strcmp(st->step, "boot-backup") == 0)
      boot = (long)i;
  }
  cr_expect_geq(repin, 0, "no repin step for os %u", active);
  cr_expect_geq(done, 0, "os %u's failover-done is not in the log", active);
  cr_expect_gt(boot, done,
               "the next backup booted (step %ld) before os %u's "
               "failover was done (step %ld)",
               boot, active, done);
}

/* What must hold of the partition with `active` active, after any number
 * of failovers. */
static void check_partition(mach_client *m, uint32_t active, pid_t pload) {
  Uksim__Ctl *rep = partition(m);
  const Uksim__Partition *p = rep->reply->partition;
  const Uksim__PartOs *a = os_of(p, active);
  cr_assert_not_null(a, "os %u is not in the partition", active);
  cr_expect_str_eq(a->role, "active");
  cr_expect_eq(dev_owner(p, "user"), active, "the user disk is not os %u's",
               active);
  cr_expect_eq(dev_owner(p, "nic0"), active, "nic0 is not os %u's", active);
  for (size_t i = 0; i < p->n_os; i++)
    for (size_t c = 0; c < p->os[i]->n_cores; c++)
      cr_expect(
          !(p->os[i]->cores[c]->bsp && strcmp(p->os[i]->role, "backup") == 0),
          "backup os %u has the BSP", p->os[i]->number);
  for (size_t i = 0; i < p->n_steps; i++)
    cr_expect_eq(p->steps[i]->status, 0, "step %s of os %u: %s",
                 p->steps[i]->step, p->steps[i]->os, p->steps[i]->text);
  check_backup_after_done(p, active);
  uint64_t want = a->usable_mib << 20;
  cr_expect_eq(budget_of_active(m, want), want,
               "os %u's ICA budget is not its usable memory (%llu MiB)", active,
               (unsigned long long)a->usable_mib);
  uksim__ctl__free_unpacked(rep, NULL);
  struct uk_interos io = published_by(m, active);
  cr_expect_eq(io.prot_os, active, "os %u did not publish", active);
  cr_expect_eq(io.nprot, 1, "protected processes published: %u", io.nprot);
  cr_expect_eq(io.prot[0].os, active);
  cr_expect_eq(io.prot[0].pid, pload, "the published pid is not the app's");
  cr_expect_str_eq(io.prot[0].name, "moves");
}

/* Table 5's shape: OS1 > OS2 = OS3 = ... as active. */
static void check_table5(mach_client *m, uint32_t oses) {
  Uksim__Ctl *rep = partition(m);
  const Uksim__Partition *p = rep->reply->partition;
  uint64_t usable[FAILOVERS + 2] = {0};
  for (size_t i = 0; i < p->n_history; i++)
    if (p->history[i]->number <= oses)
      usable[p->history[i]->number] = p->history[i]->active_usable_mib;
  printf("orthros-part: usable MiB as active:");
  for (uint32_t n = 1; n <= oses; n++)
    printf(" os%u %llu", n, (unsigned long long)usable[n]);
  printf("\n");
  cr_expect_gt(usable[2], 0);
  cr_expect_gt(usable[1], usable[2], "OS1 does not have more than OS2");
  for (uint32_t n = 3; n <= oses; n++)
    cr_expect_eq(usable[n], usable[2], "OS%u != OS2", n);
  uksim__ctl__free_unpacked(rep, NULL);
}

static int spawn_moving_load(mach_client *m) {
  int proc;
  char *a[] = {"--forever", "--tolerate-reset", "--tolerate-intr"};
  struct mach_prog lp = {.program = "ctr_load",
                         .args = a,
                         .nargs = 3,
                         .name = "moves",
                         .protect = true};
  cr_assert_eq(
      mach_spawn(m, "ctr_srv", NULL, 0, "ctr", MACH_SPAWN_REGISTERED, NULL), 0,
      "%s", m->error);
  cr_assert_eq(mach_spawn_prog(m, &lp, &proc), 0, "%s", m->error);
  return proc;
}

Test(orthros, four_failovers_repartition_and_republish, .timeout = 300) {
  mach_client m;
  boot_pair(&m);
  uint32_t active = await_pair(&m, 0);
  pid_t pload = pid_of(&m, spawn_moving_load(&m));
  check_partition(&m, active, pload);
  for (uint32_t i = 1; i <= FAILOVERS; i++) {
    cr_assert_eq(mach_fault(&m,
                            i % 2 ? UKSIM__FAULT__KIND__CRASH
                                  : UKSIM__FAULT__KIND__PANIC,
                            0),
                 0, "fault: %s", m.error);
    active = await_pair(&m, i);
    cr_expect_eq(active, i + 1, "the %uth OS is not active", i + 1);
    check_partition(&m, active, pload);
  }
  check_table5(&m, FAILOVERS + 1);
  /* uksim ps names the OS of each process and the generation. */
  char cmd[512], want[96];
  int st;
  snprintf(cmd, sizeof cmd, "%s ps --name %s", UKSIM_EXE_DEFAULT, name);
  const char *out = h_run(cmd, &st);
  cr_expect_eq(st, 0);
  snprintf(want, sizeof want, "active os %u after %u failovers", active,
           FAILOVERS);
  cr_expect(strstr(out, want), "ps: no generation '%s': %s", want, out);
  snprintf(want, sizeof want, "\n%-3u%-2s", active, "*");
  cr_expect(strstr(out, want) && strstr(out, "moves"),
            "ps: the protected process is not os %u's: %s", active, out);
  snprintf(cmd, sizeof cmd, "%s os --name %s", UKSIM_EXE_DEFAULT, name);
  out = h_run(cmd, &st);
  cr_expect_eq(st, 0);
  cr_expect(strstr(out, "repartition") && strstr(out, "ACTIVE_USABLE_MIB"),
            "os: %s", out);
  h_halt_clean(&m);
  remove_traces();
}

/* A standby death changed nothing of the active's partition, and the
 * machine logged the lost backup (OS 2). */
static void check_kept_partition(mach_client *m, const Uksim__Ctl *before,
                                 uint32_t active) {
  const Uksim__PartOs *a = os_of(before->reply->partition, active);
  Uksim__Ctl *after = partition(m);
  const Uksim__Partition *p = after->reply->partition;
  const Uksim__PartOs *b = os_of(p, active);
  cr_assert(a && b, "os %u is not in the partition", active);
  cr_expect_str_eq(b->role, "active");
  cr_expect_eq(b->usable_mib, a->usable_mib);
  cr_expect_str_eq(b->cpus, a->cpus);
  cr_expect_str_eq(b->general_blocks, a->general_blocks);
  cr_expect_eq(b->n_cores, a->n_cores);
  cr_expect_eq(dev_owner(p, "user"), active);
  cr_expect_eq(dev_owner(p, "nic0"), active);
  bool lost = false;
  for (size_t i = 0; i < p->n_steps; i++)
    lost |= strcmp(p->steps[i]->step, "backup-lost") == 0 &&
            p->steps[i]->os == 2 && p->steps[i]->status == 0;
  cr_expect(lost, "no backup-lost step for os 2");
  uksim__ctl__free_unpacked(after, NULL);
}

/* The file-cache step (kfailover.c, bcache_adopt in kdisk.h): a diskfs
 * file written and never synced is dirty in the active's cache alone; the
 * new active adopts those blocks (no write-back before processes run),
 * serves the file from them at once, adopts them again if it dies too
 * before writing them back, and writes them back on a sync.
 * --cache-migrate writeback writes them back before processes run. */

/* The "filecache" count of OS os's trace: the blocks "adopt: N dirty
 * blocks" or "writeback: N dirty blocks" says (how), -1 if none within 2 s. */
static long filecache_blocks(uint32_t os, const char *how) {
  char path[300], line[2048], key[32];
  snprintf(path, sizeof path, "%s.os%u", trace, os);
  snprintf(key, sizeof key, "%s: ", how);
  for (int i = 0; i < 200; i++) {
    FILE *f = fopen(path, "r");
    long n = -1;
    while (f && n < 0 && fgets(line, sizeof line, f)) {
      const char *at =
          strstr(line, "\"ev\":\"failover\"") ? strstr(line, key) : NULL;
      if (at && sscanf(at + strlen(key), "%ld dirty blocks", &n) != 1)
        n = -1;
    }
    if (f)
      fclose(f);
    if (n >= 0)
      return n;
    usleep(10 * 1000);
  }
  return -1;
}

/* diskfs "dfs" over #S without --sync (its writes stay in the cache), and
 * /n/log written with n records by fwrite, which has ended. */
static void dirty_file(mach_client *m, long n) {
  char *fs[] = {"--name", "dfs", "#S/sd0/data", "16M"};
  struct mach_prog dp = {.program = "diskfs",
                         .args = fs,
                         .nargs = 4,
                         .name = "dfs",
                         .flags = MACH_SPAWN_REGISTERED};
  cr_assert_eq(mach_spawn_prog(m, &dp, NULL), 0, "diskfs: %s", m->error);
  char count[16];
  snprintf(count, sizeof count, "%ld", n);
  char *a[] = {"dfs", "log", count};
  cr_assert_eq(h_wait(m, h_spawn(m, "fwrite", a, 3, "writer", NULL)), 0,
               "fwrite failed");
}

/* The active kernel's buffer-cache header, from its kernel data. */
static struct uk_bcache_hdr cache_hdr(mach_client *m) {
  const struct uk_kdata *kd;
  cr_assert_eq(mach_kdata(m, &kd, NULL), 0, "%s", m->error);
  struct uk_bcache_hdr h = kd->bcache.hdr;
  mach_kdata_unmap(kd);
  return h;
}

static int disk_sync_child(const void *arg) {
  (void)arg;
  int c = ns_open("#S/sd0/ctl", NS_OWRITE);
  return c >= 0 && ns_pwrite(c, "sync", 4, 0) == 4 ? 0 : 1;
}

/* "sync" to #S/sd0/ctl from an attached child (the cache's write-back, a
 * step a turn of the kernel's loop): its status. */
static int disk_sync(mach_client *m) {
  return attached(m, "sync", disk_sync_child, NULL);
}

/* A machine booted with a disk in a new directory dir (a mkdtemp
 * template), --cache-migrate migrate, and a diskfs file of `records`
 * records dirty in the active's cache (dirty_file). */
static void boot_dirty(mach_client *m, char *dir, const char *migrate,
                       long records) {
  cr_assert_not_null(mkdtemp(dir));
  boot_with(m, dir, migrate);
  await_pair(m, 0);
  dirty_file(m, records);
}

Test(orthros, a_dirty_file_is_adopted_served_at_once_and_written_back,
     .timeout = 120) {
  mach_client m;
  char dir[] = "/tmp/uksim-orthros-adopt-XXXXXX";
  boot_dirty(&m, dir, "", 2000);
  cr_assert_gt(cache_hdr(&m).ndirty, 0, "nothing dirty before the fault");
  struct uk_interos d = fail_once(&m, UKSIM__FAULT__KIND__PANIC, 1);
  long adopted = filecache_blocks(d.det_by_os, "adopt");
  cr_assert_gt(adopted, 0, "no dirty block adopted");
  cr_expect_eq(cache_hdr(&m).blocks_written, 0,
               "the new kernel wrote back before anything asked it to");
  cr_expect_eq(file_check(&m, "dfs", "log", 2000), 0,
               "the file is not whole right after the failover");
  /* The cache's own write-back, then a failover with nothing to adopt:
   * the file is then read from the LevelDB disk. */
  cr_assert_eq(disk_sync(&m), 0, "the sync failed");
  struct uk_bcache_hdr h = cache_hdr(&m);
  cr_expect_eq(h.ndirty, 0);
  cr_expect_geq(h.blocks_written, (uint64_t)adopted);
  d = fail_once(&m, UKSIM__FAULT__KIND__PANIC, 2);
  cr_expect_eq(filecache_blocks(d.det_by_os, "adopt"), 0);
  cr_expect_eq(file_check(&m, "dfs", "log", 2000), 0,
               "the file is not on the disk after the write-back");
  halt(&m);
  rm_dir(dir);
}

Test(orthros, adopted_blocks_survive_a_second_failover_before_write_back,
     .timeout = 120) {
  mach_client m;
  char dir[] = "/tmp/uksim-orthros-twice-XXXXXX";
  boot_dirty(&m, dir, "", 1500);
  struct uk_interos d = fail_once(&m, UKSIM__FAULT__KIND__PANIC, 1);
  long first = filecache_blocks(d.det_by_os, "adopt");
  cr_assert_gt(first, 0, "no dirty block adopted");
  /* The second active dies before any write-back: the third adopts the
   * same blocks from the second's table (crash: no notice, no help). */
  d = fail_once(&m, UKSIM__FAULT__KIND__CRASH, 2);
  cr_expect_geq(filecache_blocks(d.det_by_os, "adopt"), first);
  cr_expect_eq(file_check(&m, "dfs", "log", 1500), 0,
               "the file is not whole after two failovers");
  halt(&m);
  rm_dir(dir);
}

Test(orthros, writeback_migration_writes_the_dead_cache_before_processes,
     .timeout = 120) {
  mach_client m;
  char dir[] = "/tmp/uksim-orthros-wb-XXXXXX";
  boot_dirty(&m, dir, "writeback", 1000);
  struct uk_interos d = fail_once(&m, UKSIM__FAULT__KIND__PANIC, 1);
  cr_expect_gt(filecache_blocks(d.det_by_os, "writeback"), 0,
               "no dirty block written back");
  cr_expect_eq(filecache_blocks(d.det_by_os, "adopt"), -1);
  cr_expect_eq(file_check(&m, "dfs", "log", 1000), 0,
               "the file is not whole after the failover");
  halt(&m);
  rm_dir(dir);
}

/* The NIC (#I, vfs/devip.c; knic.c): an echo server reached from outside
 * through nic0 keeps its TCP clients through 5 failovers.  The client
 * below is this test process, a plain Linux socket on 127.0.0.1. */
#define ECHO_WAIT_S 10 /* longest wait for an echo, through a failover */

/* A connection to 127.0.0.1:port, or -1. */
static int dial(uint16_t port) {
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons(port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct timeval tv = {.tv_sec = ECHO_WAIT_S};
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Sends line on fd and reads it back whole: true if it came. */
static bool echoes(int fd, const char *line) {
  char got[128];
  size_t n = strlen(line), have = 0;
  if (send(fd, line, n, MSG_NOSIGNAL) != (ssize_t)n)
    return false;
  while (have < n) {
    ssize_t r = recv(fd, got + have, n - have, 0);
    if (r <= 0)
      return false;
    have += (size_t)r;
  }
  return memcmp(got, line, n) == 0;
}

/* A new client is served: connect, one line, close. */
static bool new_client_echoes(uint16_t port, const char *line) {
  int fd = dial(port);
  bool ok = fd >= 0 && echoes(fd, line);
  if (fd >= 0)
    close(fd);
  return ok;
}

static void spawn_techo(mach_client *m, const char *port, const char *as,
                        bool protect) {
  char *a[] = {(char *)port};
  struct mach_prog p = {.program = "techo",
                        .args = a,
                        .nargs = 1,
                        .name = as,
                        .protect = protect};
  cr_assert_eq(mach_spawn_prog(m, &p, NULL), 0, "%s", m->error);
}

/* The port techo announces answers (a connect before it is ours is
 * refused). */
static int await_listener(uint16_t port) {
  for (int i = 0; i < 500; i++) {
    int fd = dial(port);
    if (fd >= 0)
      return fd;
    usleep(10 * 1000);
  }
  return -1;
}

Test(orthros, a_tcp_client_stays_connected_through_5_failovers,
     .timeout = 180) {
  static const int kinds[] = {
      UKSIM__FAULT__KIND__PANIC, UKSIM__FAULT__KIND__HANG,
      UKSIM__FAULT__KIND__CRASH, UKSIM__FAULT__KIND__PANIC,
      UKSIM__FAULT__KIND__CRASH};
  mach_client m;
  char port[16], line[64];
  boot_pair(&m);
  await_pair(&m, 0);
  uint16_t p = (uint16_t)(nic_port + 3);
  snprintf(port, sizeof port, "%u", p);
  spawn_techo(&m, port, "techo1", true);
  int a = await_listener(p);
  cr_assert_geq(a, 0, "techo does not answer on 127.0.0.1:%u", p);
  spawn_techo(&m, port, "techo2", true); /* the second listener */
  cr_assert(echoes(a, "before\n"), "no echo before any failover");
  cr_expect(new_client_echoes(p, "new 0\n"), "no second client");
  /* An unprotected echo server ends with its OS: its client sees the end
   * of the stream and its port refuses, so neither the new kernel nor the
   * machine kept its sockets. */
  uint16_t up = (uint16_t)(p + 5);
  snprintf(port, sizeof port, "%u", up);
  spawn_techo(&m, port, "techo-u", false);
  int u = await_listener(up);
  cr_assert_geq(u, 0, "the unprotected techo does not answer");
  cr_assert(echoes(u, "unprotected\n"));
  for (uint32_t i = 0; i < 5; i++) {
    /* The client's outage: from the fault to its first echo once the
     * backup has found the fault (detection included). */
    await_pair(&m, i);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert_eq(mach_fault(&m, kinds[i], 0), 0, "fault: %s", m.error);
    struct uk_interos d = await_detection(&m, i + 1);
    snprintf(line, sizeof line, "after failover %u\n", i + 1);
    cr_assert(echoes(a, line), "the client lost its echo at failover %u",
              i + 1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("orthros-nic: failover %u: the client's echo %.1f ms after the "
           "fault\n",
           i + 1,
           (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
    await_pair(&m, i + 1);
    if (i == 0) {
      char c;
      cr_expect_leq(recv(u, &c, 1, 0), 0,
                    "the unprotected server's client "
                    "still has a connection");
      close(u);
      u = dial(up);
      cr_expect_lt(u, 0, "port %u still accepts connections", up);
      if (u >= 0)
        close(u);
    }
    snprintf(line, sizeof line, "new %u\n", i + 1);
    cr_expect(new_client_echoes(p, line), "no new client after failover %u",
              i + 1);
    cr_expect(trace_has(d.det_by_os, "failover", "TCP conversations kept"),
              "no NIC in the processes step of os %u", d.det_by_os);
  }
  close(a);
  halt(&m);
}

/* Only nic0's range, and only on the OS that owns it: nic1's ports (the
 * backup's NIC) and a port outside both are refused (techo exits 3). */
Test(orthros, a_port_outside_nic0_is_refused, .timeout = 60) {
  mach_client m;
  char nic1[16];
  boot_pair(&m);
  await_pair(&m, 0);
  snprintf(nic1, sizeof nic1, "%u", nic_port + UK_NIC_PORTS);
  char *a1[] = {nic1}, *a2[] = {"1"};
  cr_expect_eq(h_wait(&m, h_spawn(&m, "techo", a1, 1, "nic1", NULL)), 3);
  cr_expect_eq(h_wait(&m, h_spawn(&m, "techo", a2, 1, "low", NULL)), 3);
  halt(&m);
}

/* The paper's multi-threaded process (issue 14: "multi-threaded
 * applications move whole"): mtload, protected, 4 threads on the process's
 * one kernel connection, each incrementing its own counter (ctr_srv mt0 ..
 * mt3, unprotected: they restart from their state ICAs on each new OS),
 * through several failovers.  The process is the same pid throughout (it
 * moved, it never restarted), and at the end every thread's counter is
 * its answered calls, plus at most the calls a failover cut short after
 * their effect (-ECONNRESET, -EINTR: "unsure"), each counted at most once. */
#define MT_THREADS 4

/* mtload's report in path: *pid its pid, *unsure its threads' unsure calls
 * in all; true when it says ok and each thread made calls. */
static bool mt_report(const char *path, pid_t *pid, long *unsure) {
  char line[256];
  int p = -1, threads = 0;
  bool ok = false;
  long calls, u;
  *unsure = 0;
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return false;
  while (fgets(line, sizeof line, f)) {
    printf("%s", line);
    if (sscanf(line, "mtload: thread %*d svc %*s %ld calls, %ld unsure", &calls,
               &u) == 2 &&
        calls > 0) {
      threads++;
      *unsure += u;
    }
    if (sscanf(line, "mtload: pid %d,", &p) == 1)
      ok = strstr(line, ": ok") != NULL;
  }
  fclose(f);
  *pid = p;
  return ok && threads == MT_THREADS;
}

static int spawn_mtload(mach_client *m, const char *path) {
  char t[8];
  snprintf(t, sizeof t, "%d", MT_THREADS);
  h_spawn_counters(m, "mt", MT_THREADS);
  char *a[] = {"--threads",        t,          "--forever",
               "--tolerate-reset", "--result", (char *)path};
  struct mach_prog p = {.program = "mtload",
                        .args = a,
                        .nargs = 6,
                        .name = "mtload",
                        .protect = true};
  int proc;
  cr_assert_eq(mach_spawn_prog(m, &p, &proc), 0, "%s", m->error);
  return proc;
}

static uint64_t calls_of(mach_client *m, int proc) {
  return proc_entry(m, proc).calls;
}

/* True once process proc has made `more` calls on the active kernel (from
 * now), within 10 s. */
static bool calling(mach_client *m, int proc, uint64_t more) {
  uint64_t from = calls_of(m, proc);
  for (int i = 0; i < 1000; i++) {
    uint64_t n = calls_of(m, proc);
    if (n < from)
      from = 0; /* a new kernel counts from 0 */
    if (n >= from + more)
      return true;
    usleep(10 * 1000);
  }
  return false;
}

/* mtload through the faults in kinds (n of them), then told to stop. */
static void mt_through(const int *kinds, uint32_t n) {
  mach_client m;
  char path[] = "/tmp/uksim-orthros-mt-XXXXXX";
  int fd = mkstemp(path);
  cr_assert_geq(fd, 0);
  close(fd);
  unlink(path); /* mtload writes it whole at its end */
  boot_pair(&m);
  await_pair(&m, 0);
  int proc = spawn_mtload(&m, path);
  pid_t pid = pid_of(&m, proc);
  for (uint32_t i = 1; i <= n; i++) {
    /* In the middle of its calls: some made on this OS. */
    cr_assert(calling(&m, proc, 2000), "mtload is not calling before fault %u",
              i);
    struct uk_interos d = fail_once(&m, kinds[i - 1], i);
    cr_expect(trace_has(d.det_by_os, "failover", "1 moved"),
              "mtload did not move at failover %u", i);
    cr_assert(alive(pid), "mtload died at failover %u", i);
    cr_assert_eq(pid_of(&m, proc), pid, "mtload is not in its slot on OS %u",
                 i + 1);
  }
  cr_assert(calling(&m, proc, 2000), "mtload is not calling on the last OS");
  cr_assert_eq(kill(pid, SIGTERM), 0);
  for (int i = 0; i < 1000 && alive(pid); i++)
    usleep(10 * 1000);
  cr_assert(!alive(pid), "mtload did not finish");
  pid_t said;
  long unsure;
  cr_expect(mt_report(path, &said, &unsure),
            "a thread's calls were not counted exactly once");
  cr_expect_eq(said, pid, "the report is not the moved process's");
  /* A failover cuts at most the request each counter server held. */
  cr_expect_leq(unsure, (long)n * MT_THREADS, "%ld unsure calls", unsure);
  unlink(path);
  halt(&m);
}

Test(orthros, a_multithreaded_app_moves_whole, .timeout = 180) {
  static const int kinds[] = {UKSIM__FAULT__KIND__PANIC,
                              UKSIM__FAULT__KIND__HANG,
                              UKSIM__FAULT__KIND__CRASH};
  mt_through(kinds, 3);
}

Test(orthros, a_multithreaded_app_moves_through_five_failovers,
     .timeout = 300) {
  static const int kinds[] = {
      UKSIM__FAULT__KIND__CRASH, UKSIM__FAULT__KIND__PANIC,
      UKSIM__FAULT__KIND__HANG, UKSIM__FAULT__KIND__PANIC,
      UKSIM__FAULT__KIND__CRASH};
  mt_through(kinds, 5);
}
