/* A process a kernel update cannot carry (issue 15, method A), end to end
 * on a real machine whose backup runs the layout-1001 kernel: a protected
 * ap_hog "far" whose namespace holds a mount of a real external 9P server
 * (`uksim 9p serve` over loopback TCP, dialed by the old kernel) is named
 * with the reason ("netlink") at extract, by `uksim kupdate` and in the new
 * kernel's trace, while the other processes move; an image the new
 * kernel's tables cannot take is refused at build, naming why, with
 * nothing written (sim-kernel/kimage_refuse.h's transitions).  The
 * refused process stays, served by the old kernel, which retires and
 * ends after it; a second update meanwhile is refused (sim-kernel/kkeep.h's
 * transitions). */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <libgen.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kimage.h"
#include "kimage_refuse.h"
#include "kkeep.h"
#include "kmon.h"
#include "orthros.h"
#include "sh_proc.h"
#include "uksim/ns.h"
#include "uksim_paths.h"

extern char **environ;

/* Every test boots two kernels with a real-time heartbeat: under valgrind
 * the backup would fail over by itself (tests/ci-skips.txt). */
TestSuite(kupdate_keep, .init = skip_under_valgrind);

/* The external 9P server and what the test started. */
static pid_t server_pid;
static char addr[64];

/* A machine with a layout-1001 backup, its kvs service, and a slow
 * heartbeat timeout (a loaded host must not fail over by itself); with
 * disk, a user disk (LevelDB) there. */
static uint32_t boot_v2_disk(mach_client *m, const char *disk) {
  struct mach_opts o;
  char exe[sizeof backup_kernel] = UKSIM_EXE_DEFAULT;
  snprintf(backup_kernel, sizeof backup_kernel, "%s/uksim-kernel2",
           dirname(exe));
  pair_opts(&o);
  o.heartbeat_timeout_ms = 1000;
  if (disk)
    cr_assert_eq(mach_disk_opt(&o, "test", disk), 0);
  cr_assert_eq(mach_boot(m, &o), 0, "boot: %s", m->error);
  uint32_t b = await_backup(m);
  cr_assert_eq(
      mach_spawn(m, "kvs", NULL, 0, "kvs", MACH_SPAWN_REGISTERED, NULL), 0,
      "%s", m->error);
  return b;
}

static uint32_t boot_v2(mach_client *m) {
  return boot_v2_disk(m, NULL);
}

static int spawn_hog(mach_client *m, const char *name, const char *ms) {
  char *a[] = {"icas", "2", (char *)ms};
  struct mach_prog p = {.program = "ap_hog",
                        .args = a,
                        .nargs = 3,
                        .name = name,
                        .protect = true};
  int slot;
  cr_assert_eq(mach_spawn_prog(m, &p, &slot), 0, "%s: %s", name, m->error);
  return slot;
}

/* A free loopback TCP port (bound and closed: free for a moment). */
static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sin;
  cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
  cr_assert_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
  close(fd);
  return ntohs(sin.sin_port);
}

/* In an attached process sharing far's namespace: mount the external
 * server on /n, retrying while it comes up (30 s). */
static int mount_far(const void *arg) {
  (void)arg;
  int r = -ECONNREFUSED;
  for (int i = 0; i < 3000 && r == -ECONNREFUSED; i++) {
    if (i > 0)
      usleep(10000);
    r = ns_mount_addr(addr, "/n", NS_MREPL | NS_MCREATE, "");
  }
  return r == 0 ? 0 : 1;
}

/* The slot of the live process `name` in the active's table, or
 * UK_PROC_MAX. */
static uint32_t find_slot(mach_client *m, const char *name) {
  const struct uk_kdata *kd;
  cr_assert_eq(mach_kdata(m, &kd, NULL), 0, "%s", m->error);
  uint32_t s = UK_PROC_MAX;
  for (uint32_t p = 0; p < UK_PROC_MAX && s == UK_PROC_MAX; p++)
    if (kd->proc[p].state != UK_PROC_FREE &&
        strncmp(kd->proc[p].name, name, sizeof kd->proc[p].name) == 0)
      s = p;
  mach_kdata_unmap(kd);
  return s;
}

/* Starts `uksim 9p serve` and gives process slot `far` a mount of it: a
 * chan of an external server the old kernel dialed. */
static void give_netlink(mach_client *m, int far) {
  char uksim[512];
  snprintf(addr, sizeof addr, "tcp!127.0.0.1!%d", free_port());
  snprintf(uksim, sizeof uksim, "%s/cli/uksim", getenv("UKSIM_BUILD_ROOT"));
  char *argv[] = {uksim, "9p", "serve", addr, NULL};
  cr_assert_eq(posix_spawn(&server_pid, uksim, NULL, NULL, argv, environ), 0);
  cr_assert_eq(attached_ns(m, "mnt", far, mount_far, NULL), 0,
               "mount %s failed", addr);
  /* mnt shares far's namespace too: an update while the kernel has not
   * seen its connection close yet would keep it with far. */
  for (int i = 0; i < 500 && find_slot(m, "mnt") < UK_PROC_MAX; i++)
    usleep(10 * 1000);
}

static void stop_server(void) {
  if (server_pid > 0) {
    kill(server_pid, SIGTERM);
    waitpid(server_pid, NULL, 0);
  }
  server_pid = 0;
}

/* The end of a test with an external server: it and the machine go. */
static void finish(mach_client *m) {
  stop_server();
  halt(m);
}

/* Slot's image from OS os's region (layout 1), judged; -ESRCH if none. */
static int judge_slot(mach_client *m, uint32_t slot, struct kimg_refusal *f,
                      uint8_t **img, size_t *n) {
  const struct uk_kdata *kd;
  cr_assert_eq(mach_kdata(m, &kd, NULL), 0, "%s", m->error);
  int r = kimg_v1_extract(kd, sizeof *kd, slot, img, n);
  mach_kdata_unmap(kd);
  if (r < 0)
    return r;
  cr_assert_eq(kimg_judge(*img, *n, f), 0);
  return 0;
}

static uint32_t slot_named(mach_client *m, const char *name) {
  uint32_t s = find_slot(m, name);
  cr_assert_lt(s, UK_PROC_MAX, "no process %s", name);
  return s;
}

/* EXTRACTED -> REFUSED_AT_EXTRACT (far, "netlink"), -> RESTARTS (kvs,
 * a server), -> BUILD -> BUILT (hog); the refused image is not built
 * (-EXDEV) and the builder writes nothing for it. */
Test(kupdate_keep, refused_at_extract_names_the_external_server,
     .timeout = 120) {
  mach_client m;
  boot_v2(&m);
  int far = spawn_hog(&m, "far", "60000"), hog = spawn_hog(&m, "hog", "60000");
  give_netlink(&m, far);
  struct kimg_refusal f;
  uint8_t *b;
  size_t n;
  void *v2 = malloc(kimg_v2_region_size());
  kimg_v2_region_init(v2, 2);
  void *before = malloc(kimg_v2_region_size());
  memcpy(before, v2, kimg_v2_region_size());
  cr_assert_eq(judge_slot(&m, (uint32_t)far, &f, &b, &n), 0);
  cr_expect_eq(f.verdict, KIMG_REFUSED_AT_EXTRACT);
  cr_expect_str_eq(f.name, "far");
  cr_expect(strncmp(f.why, "netlink", 7) == 0, "why: %s", f.why);
  int r = kimg_v2_build(v2, kimg_v2_region_size(), b, n);
  cr_expect_eq(r, -EXDEV);
  cr_expect_eq(memcmp(before, v2, kimg_v2_region_size()), 0);
  cr_assert_eq(kimg_judge_build(b, n, r, &f), 0);
  cr_expect_eq(f.verdict, KIMG_REFUSED_AT_EXTRACT, "the extractor's reason");
  free(b);
  cr_assert_eq(judge_slot(&m, slot_named(&m, "kvs"), &f, &b, &n), 0);
  cr_expect_eq(f.verdict, KIMG_RESTARTS, "kvs: %s", f.why);
  free(b);
  cr_assert_eq(judge_slot(&m, (uint32_t)hog, &f, &b, &n), 0);
  cr_expect_eq(f.verdict, KIMG_MOVES, "hog: %s", f.why);
  cr_expect_eq(kimg_v2_build(v2, kimg_v2_region_size(), b, n), hog);
  free(b);
  free(before);
  free(v2);
  finish(&m);
}

/* BUILD -> REFUSED_AT_BUILD: an image whose slot the new tables hold
 * already (another live entry) is refused whole, the reason named, the
 * region as it was. */
Test(kupdate_keep, refused_at_build_names_why_and_writes_nothing,
     .timeout = 120) {
  mach_client m;
  boot_v2(&m);
  int hog = spawn_hog(&m, "hog", "60000");
  struct kimg_refusal f;
  uint8_t *b;
  size_t n;
  cr_assert_eq(judge_slot(&m, (uint32_t)hog, &f, &b, &n), 0);
  void *v2 = malloc(kimg_v2_region_size());
  kimg_v2_region_init(v2, 2);
  cr_assert_eq(kimg_v2_build(v2, kimg_v2_region_size(), b, n), hog);
  void *before = malloc(kimg_v2_region_size());
  memcpy(before, v2, kimg_v2_region_size());
  int r = kimg_v2_build(v2, kimg_v2_region_size(), b, n);
  cr_expect_eq(r, -EEXIST);
  cr_expect_eq(memcmp(before, v2, kimg_v2_region_size()), 0);
  cr_assert_eq(kimg_judge_build(b, n, r, &f), 0);
  cr_expect_eq(f.verdict, KIMG_REFUSED_AT_BUILD);
  char text[KIMG_NAME_MAX + KIMG_WHY_MAX + 64];
  kimg_refusal_text(&f, text, sizeof text);
  cr_expect(strstr(text, "hog (pid") && strstr(text, "another live entry"),
            "%s", text);
  cr_assert_eq(kimg_judge_build(b, n, hog, &f), 0);
  cr_expect_eq(f.verdict, KIMG_MOVES);
  cr_expect_eq(kimg_judge((const uint8_t *)"\xff\xff", 2, &f), -EBADMSG);
  cr_expect_eq(f.verdict, KIMG_UNREADABLE);
  free(b);
  free(before);
  free(v2);
  halt(&m);
}

/* `uksim kupdate` names the process it cannot carry and why, the new
 * kernel's trace names it in the same words, and the rest move (the same
 * pid on the layout-1001 kernel). */
Test(kupdate_keep, uksim_kupdate_names_what_it_cannot_carry, .timeout = 180) {
  mach_client m;
  uint32_t b = boot_v2(&m);
  int far = spawn_hog(&m, "far", "60000"), hog = spawn_hog(&m, "hog", "60000");
  give_netlink(&m, far);
  pid_t hog_pid = pid_of(&m, hog), far_pid = pid_of(&m, far);
  int st;
  const char *out = sp_run(&st, "%s/cli/uksim kupdate --name %s",
                           getenv("UKSIM_BUILD_ROOT"), name);
  printf("%s", out); /* the report's sample, in the test log */
  cr_expect_eq(st, 0, "%s", out);
  cr_expect(strstr(out, "not carried: far (pid") != NULL, "%s", out);
  cr_expect(strstr(out, "cannot move: netlink") != NULL, "%s", out);
  cr_expect(strstr(out, "restarts: kvs (pid") != NULL, "%s", out);
  cr_expect(strstr(out, "1 process cannot be carried") != NULL, "%s", out);
  cr_expect(strstr(out, "hog (pid") == NULL, "hog was refused: %s", out);
  cr_expect(trace_has(b, "far (pid", "cannot move: netlink"));
  /* hog moved (the one process the new kernel built and took over) and
   * lives on; far stays on the old kernel, which retires (kkeep.h). */
  cr_expect(trace_has(b, "failover", "1 moved"));
  cr_expect(alive(hog_pid), "hog (pid %d) ended", (int)hog_pid);
  cr_expect(trace_has(b, "far (pid", "stays on os 1, which retires"));
  cr_expect(*trace_line(1, "retiring", "left 1 processes here", 10000));
  usleep(500 * 1000);
  cr_expect(alive(far_pid), "far (pid %d) ended with the old kernel",
            (int)far_pid);
  finish(&m);
}

/* far as a reader of a file of the external server: it waits for /n (the
 * mount comes after its start), creates /n/far.dat there, then reads it
 * back 64 bytes every 60 ms (about 2 s) and checks every byte. */
static int spawn_reader(mach_client *m) {
  char *a[] = {"--path",  "/n/far.dat", "--size", "2048", "--create",
               "--pause", "60000000",   "--wait", "500"};
  struct mach_prog p = {.program = "nsread",
                        .args = a,
                        .nargs = 9,
                        .name = "far",
                        .protect = true};
  int slot;
  cr_assert_eq(mach_spawn_prog(m, &p, &slot), 0, "far: %s", m->error);
  return slot;
}

/* Updates through the machine (what `uksim kupdate` does) and waits for
 * the new kernel to be active; returns its OS number. */
static uint32_t update(mach_client *m) {
  uint32_t old_os = 0, new_os = 0;
  cr_assert_eq(mach_kupdate(m, UKSIM__KUPDATE__METHOD__IMAGE, &old_os, &new_os),
               0, "kupdate: %s", m->error);
  for (int i = 0; i < 3000; i++) {
    Uksim__Reply *st = status(m);
    bool done = st->active_os == new_os;
    uksim__reply__free_unpacked(st, NULL);
    if (done)
      return new_os;
    usleep(10 * 1000);
  }
  cr_assert_fail("os %u did not take over", new_os);
  return 0;
}

/* A layout-1001 backup's machine (with disk, a user disk) whose far, an
 * ap_hog for a minute, holds a mount of an external 9P server; returns
 * the backup's OS number and far's slot in *far. */
static uint32_t boot_with_far(mach_client *m, const char *disk, int *far) {
  uint32_t b = boot_v2_disk(m, disk);
  *far = spawn_hog(m, "far", "60000");
  give_netlink(m, *far);
  return b;
}

/* Whether OS os's trace has `name`'s exit with status 0 (within ms). */
static bool ended_well(uint32_t os, const char *name, int ms) {
  char ev[80];
  snprintf(ev, sizeof ev, "\"ev\":\"exit\",\"actor\":\"%s\"", name);
  return *trace_line(os, ev, "\"text\":\"status 0\"", ms) != '\0';
}

/* The update with far kept: the new kernel refuses it and the old one,
 * resumed, retires with far alone (up to MACH_SETTLE_WAIT_MS after the
 * update on a loaded host: its trace is waited for with room). */
static void update_keeping_far(mach_client *m, uint32_t b) {
  cr_assert_eq(update(m), b);
  cr_expect(trace_has(b, "far (pid", "stays on os 1, which retires"));
  cr_expect(*trace_line(1, "retiring", "left 1 processes here", 10000));
}

/* KEPT -> ENDED, RETIRING -> ENDED: far keeps reading and writing its
 * imported file on the old kernel after the update and ends well (status
 * 0, in the old kernel's trace); the retiring kernel then ends and the
 * machine frees its slot (`uksim os` says "retired"); the moved process
 * lives on under the new kernel. */
Test(kupdate_keep, kept_process_is_served_until_the_retiring_kernel_ends,
     .timeout = 180) {
  mach_client m;
  uint32_t b = boot_v2(&m);
  int far = spawn_reader(&m), hog = spawn_hog(&m, "hog", "12000");
  give_netlink(&m, far);
  pid_t hog_pid = pid_of(&m, hog);
  /* The file exists once far has created it: far's first reads ran. */
  for (int i = 0; i < 500 && proc_entry(&m, far).calls < 20; i++)
    usleep(10 * 1000);
  uint64_t before = proc_entry(&m, far).calls;
  update_keeping_far(&m, b);
  cr_expect(ended_well(1, "far", 30000),
            "far did not end well on the old kernel (%llu calls before the "
            "update)",
            (unsigned long long)before);
  cr_expect(*trace_line(1, "retired", "last kept process", 10000) != '\0');
  int st;
  const char *out = sp_run(&st, "%s/cli/uksim os --name %s",
                           getenv("UKSIM_BUILD_ROOT"), name);
  printf("%s", out);
  cr_expect(strstr(out, "retired") != NULL, "%s", out);
  cr_expect(strstr(out, "retires after a kernel update") == NULL, "%s", out);
  /* hog outlives the retiring kernel, its Linux parent: the machine
   * (the subreaper) reaps it and tells the new active. */
  cr_expect(alive(hog_pid), "hog (pid %d) ended", (int)hog_pid);
  cr_expect(ended_well(b, "hog", 30000),
            "hog's exit did not reach the new kernel");
  finish(&m);
}

/* HANDED, a Linux child of the retiring kernel, exits: the retiring
 * kernel reaps it without a fault and passes the exit on; the new kernel
 * traces it as its process's exit. */
Test(kupdate_keep, moved_child_exit_reaches_the_new_kernel, .timeout = 180) {
  mach_client m;
  int far;
  uint32_t b = boot_with_far(&m, NULL, &far);
  spawn_hog(&m, "brief", "3000");
  update_keeping_far(&m, b);
  cr_expect(ended_well(b, "brief", 20000),
            "brief's exit did not reach the new kernel");
  cr_expect(!trace_has(1, "\"actor\":\"brief\"", "\"ev\":\"exit\""),
            "the retiring kernel traced a moved process's exit");
  finish(&m);
}

/* RETIRING: a second kernel update while a kernel retires is refused,
 * with the reason; the retiring kernel and the active one go on. */
Test(kupdate_keep, second_update_while_retiring_is_refused, .timeout = 180) {
  mach_client m;
  int far;
  uint32_t b = boot_with_far(&m, NULL, &far);
  pid_t far_pid = pid_of(&m, far);
  update_keeping_far(&m, b);
  uint32_t old_os = 0, new_os = 0;
  cr_expect_lt(
      mach_kupdate(&m, UKSIM__KUPDATE__METHOD__IMAGE, &old_os, &new_os), 0);
  cr_expect(strstr(m.error, "still serves processes it kept") != NULL, "%s",
            m.error);
  Uksim__Reply *st = status(&m);
  cr_expect_eq(st->active_os, b);
  uksim__reply__free_unpacked(st, NULL);
  cr_expect(alive(far_pid), "far (pid %d) ended", (int)far_pid);
  finish(&m);
}

/* RETIRING, as the CLI shows it: `uksim ps` lists the active's processes
 * (the moved one on os 2) and then the retiring OS's kept one, marked
 * 'k'; `uksim os` names the retiring OS. */
Test(kupdate_keep, ps_and_os_show_both_kernels_while_one_retires,
     .timeout = 180) {
  mach_client m;
  int far;
  uint32_t b = boot_with_far(&m, NULL, &far);
  spawn_hog(&m, "hog", "60000");
  update_keeping_far(&m, b);
  int st;
  const char *out = sp_run(&st, "%s/cli/uksim ps --name %s",
                           getenv("UKSIM_BUILD_ROOT"), name);
  printf("%s", out);
  cr_expect_eq(st, 0, "%s", out);
  const char *ret = strstr(out, "os 1 retires after a kernel update");
  cr_expect(ret != NULL, "%s", out);
  cr_expect(ret && strstr(ret, "1  k ") && strstr(ret, "far"),
            "far is not listed as kept on os 1: %s", out);
  cr_expect(strstr(out, "2  * ") != NULL, "nothing moved to os 2: %s", out);
  out = sp_run(&st, "%s/cli/uksim os --name %s", getenv("UKSIM_BUILD_ROOT"),
               name);
  cr_expect(strstr(out, "os 1 retires after a kernel update") != NULL, "%s",
            out);
  out = sp_run(&st, "%s/cli/uksim os --name %s --json",
               getenv("UKSIM_BUILD_ROOT"), name);
  cr_expect(strstr(out, "\"retiring\":{\"os\":1,\"kept\":1}}") != NULL, "%s",
            out);
  finish(&m);
}

/* STOPPED --a user disk--> fenced as before: the disk's LevelDB lock is
 * the old kernel's until it dies, and the new kernel opens the disk at
 * the Fence's answer, so nothing is kept: far ends with the old kernel,
 * the rest move, and no OS retires. */
Test(kupdate_keep, with_a_user_disk_nothing_is_kept, .timeout = 180) {
  mach_client m;
  char dir[] = "/tmp/uksim-keep-disk-XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  int far;
  uint32_t b = boot_with_far(&m, dir, &far);
  int hog = spawn_hog(&m, "hog", "60000");
  pid_t far_pid = pid_of(&m, far), hog_pid = pid_of(&m, hog);
  cr_assert_eq(update(&m), b);
  cr_expect(trace_has(b, "far (pid", "cannot move: netlink"));
  cr_expect(*trace_line(b, "failover", "1 moved", 10000));
  for (int i = 0; i < 500 && alive(far_pid); i++)
    usleep(10 * 1000);
  cr_expect(!alive(far_pid), "far lives on without its kernel");
  cr_expect(alive(hog_pid), "hog (pid %d) ended", (int)hog_pid);
  cr_expect(!trace_has(1, "retiring", "left"));
  int st;
  const char *out = sp_run(&st, "%s/cli/uksim os --name %s",
                           getenv("UKSIM_BUILD_ROOT"), name);
  cr_expect(strstr(out, "retire") == NULL, "%s", out);
  finish(&m);
  rm_dir(dir);
}

/* ACTIVE --already stopped elsewhere--> nothing kept: the old kernel
 * stopped itself in the middle of a step (UKSIM_KSTOP, kmon.h: just
 * before it sends a counter's result), as SIGSTOP could stop it anywhere.
 * Resumed, it would finish that step for a client that moved (the result
 * sent twice: kkeep.h), so the machine keeps nothing: far is refused and
 * ends with the fenced kernel, no OS retires, and the moved client gets
 * that result once, from the new kernel, its count exact. */
Test(kupdate_keep, a_kernel_stopped_mid_step_keeps_nothing, .timeout = 180) {
  mach_client m;
  int far;
  setenv(KSTOP_ENV, "1:result:30", 1);
  uint32_t b = boot_with_far(&m, NULL, &far);
  unsetenv(KSTOP_ENV);
  pid_t far_pid = pid_of(&m, far);
  Uksim__Reply *st = status(&m);
  pid_t kernel = st->active_pid;
  uksim__reply__free_unpacked(st, NULL);
  cr_assert_eq(
      mach_spawn(&m, "ctr_srv", NULL, 0, "ctr", MACH_SPAWN_REGISTERED, NULL), 0,
      "%s", m.error);
  char *a[] = {"--count", "100"};
  struct mach_prog p = {
      .program = "ctr_load", .args = a, .nargs = 2, .name = "load"};
  p.protect = true;
  int slot;
  cr_assert_eq(mach_spawn_prog(&m, &p, &slot), 0, "%s", m.error);
  pid_t load = pid_of(&m, slot);
  for (int i = 0; i < 1000 && !kkeep_stopped(kernel); i++)
    usleep(10 * 1000);
  cr_assert(kkeep_stopped(kernel), "the kernel never reached its stop point");
  cr_assert_eq(update(&m), b);
  cr_expect(trace_has(b, "far (pid", "cannot move: netlink"));
  cr_expect(!trace_has(b, "far (pid", "which retires"));
  for (int i = 0; i < 1000 && (alive(far_pid) || alive(load)); i++)
    usleep(10 * 1000);
  cr_expect(!alive(far_pid), "far lives on without its kernel");
  cr_expect(!alive(load), "the moved client did not finish its calls");
  cr_expect(!trace_has(1, "retiring", "left"));
  char *c[] = {"--count", "0", "--expect", "100"};
  cr_expect_eq(h_wait(&m, h_spawn(&m, "ctr_load", c, 4, "check", NULL)), 0,
               "the count is not 100: an increment lost or counted twice");
  finish(&m);
}
