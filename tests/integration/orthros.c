/* The Orthros tests' fixture (orthros.h). */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "orthros.h"
#include "uksim/ns.h"
#include "uksim_paths.h"

char trace[256], name[64];
uint16_t nic_port;

void skip_under_valgrind(void) {
  if (getenv("UKSIM_UNDER_VALGRIND"))
    cr_skip_test("real-time failure detection cannot run under valgrind");
}

char backup_kernel[256];

void pair_opts(struct mach_opts *o) {
  static int n;
  mach_opts_default(o);
  snprintf(o->name, sizeof o->name, "orthros-%d-%d", (int)getpid(), n++);
  snprintf(name, sizeof name, "%s", o->name);
  snprintf(trace, sizeof trace, "%s/%s.jsonl",
           getenv("UKSIM_BUILD_ROOT") ? getenv("UKSIM_BUILD_ROOT") : "/tmp",
           o->name);
  snprintf(o->trace_file, sizeof o->trace_file, "%s", trace);
  /* A range of its own, probed free below the ephemeral range (from the
   * pid alone, in 30000-45999, a port could be taken already). */
  int free = h_free_ports(20000, 12000, 2 * UK_NIC_PORTS);
  cr_assert_neq(free, 0, "no free NIC ports in 20000-31999");
  nic_port = (uint16_t)free;
  o->nic_port = nic_port;
  o->backup = true;
  snprintf(o->backup_kernel, sizeof o->backup_kernel, "%s", backup_kernel);
  o->heartbeat_ms = HB_MS;
  o->heartbeat_timeout_ms = TIMEOUT_MS;
  o->trace = getenv("ORTHROS_TRACE") ? -1 : 0;
}

void boot_with(mach_client *m, const char *dir, const char *migrate) {
  struct mach_opts o;
  pair_opts(&o);
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

void boot_pair(mach_client *m) {
  boot_with(m, NULL, "");
}

Uksim__Reply *status(mach_client *m) {
  Uksim__Reply *st;
  cr_assert_eq(mach_status(m, &st), 0, "status: %s", m->error);
  return st;
}

uint32_t await_pair(mach_client *m, uint32_t failovers) {
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

struct uk_kdata_hdr region_hdr(mach_client *m, uint32_t os) {
  struct uk_kdata_hdr h;
  int fd;
  cr_assert_eq(mach_kdata_fd(m, os, &fd), 0, "kdata of os %u: %s", os,
               m->error);
  cr_assert_eq(pread(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
  close(fd);
  return h;
}

uint32_t await_backup(mach_client *m) {
  for (int i = 0; i < 500; i++) {
    Uksim__Reply *st = status(m);
    uint32_t b = st->backup_os;
    uksim__reply__free_unpacked(st, NULL);
    if (b && region_hdr(m, b).magic == UK_KDATA_MAGIC)
      return b;
    usleep(10 * 1000);
  }
  cr_assert_fail("no backup OS booted in 5 s");
  return 0;
}

struct uk_interos await_detection(mach_client *m, uint32_t n) {
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

const char *trace_line(uint32_t os, const char *a, const char *b, int ms) {
  static char line[2048];
  char path[300];
  if (os == 1) /* the 1st OS's is the trace file itself (machine.c) */
    snprintf(path, sizeof path, "%s", trace);
  else
    snprintf(path, sizeof path, "%s.os%u", trace, os);
  for (int i = 0; i <= ms / 10; i++) {
    FILE *f = fopen(path, "r");
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f))
      found = strstr(line, a) && strstr(line, b);
    if (f)
      fclose(f);
    if (found)
      return line;
    usleep(10 * 1000);
  }
  return "";
}

bool trace_has(uint32_t os, const char *a, const char *b) {
  return trace_line(os, a, b, 2000)[0] != '\0';
}

void rm_dir(const char *dir) {
  char cmd[96];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  cr_assert_eq(system(cmd), 0);
}

void remove_traces(void) {
  char path[sizeof trace + 16];
  if (getenv("ORTHROS_TRACE") || trace[0] == '\0')
    return;
  unlink(trace);
  for (int os = 2; os <= 64; os++) {
    snprintf(path, sizeof path, "%s.os%d", trace, os);
    unlink(path);
  }
}

void halt(mach_client *m) {
  uint32_t live = 99;
  cr_assert_eq(mach_halt(m, &live), 0, "halt: %s", m->error);
  mach_close(m);
  remove_traces();
}

struct uk_interos fail_once(mach_client *m, int kind, uint32_t n) {
  uint32_t a = await_pair(m, n - 1);
  cr_assert_eq(mach_fault(m, kind, 0), 0, "fault: %s", m->error);
  struct uk_interos d = await_detection(m, n);
  cr_expect_eq(d.det_dead_os, a);
  await_pair(m, n);
  return d;
}

void report(const char *fault, const struct uk_interos *d) {
  printf("orthros: %s found %.3f ms after the fault (%.3f ms after the "
         "last heartbeat)\n",
         fault, d->det_since_fault_ns / 1e6, d->det_since_hb_ns / 1e6);
}

bool alive(pid_t pid) {
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

struct uk_proc proc_entry(mach_client *m, int proc) {
  const struct uk_kdata *kd;
  cr_assert_eq(mach_kdata(m, &kd, NULL), 0, "%s", m->error);
  struct uk_proc p = kd->proc[proc];
  mach_kdata_unmap(kd);
  return p;
}

pid_t pid_of(mach_client *m, int proc) {
  return proc_entry(m, proc).pid;
}

int attached(mach_client *m, const char *name, int (*fn)(const void *),
             const void *arg) {
  return attached_ns(m, name, -1, fn, arg);
}

int attached_ns(mach_client *m, const char *name, int ns_proc,
                int (*fn)(const void *), const void *arg) {
  int proc, fd;
  cr_assert_eq(mach_attach(m, name, ns_proc, 0, &proc, &fd), 0, "%s", m->error);
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

/* diskfs "dfs" over #S without --sync (its writes stay in the cache), and
 * /n/log written with n records by fwrite, which has ended. */
void dirty_file(mach_client *m, long n) {
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

int file_check_child(const void *arg) {
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

int file_check(mach_client *m, const char *srv, const char *file, long n) {
  struct file_check_args a = {.srv = srv, .file = file, .n = n};
  return attached(m, "check", file_check_child, &a);
}

bool writing(mach_client *m, int w, const char *svc) {
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
