/* Kernel update by process migration (issue 15), end to end on a real
 * machine: a kernel of the second version (uksim-kernel2, kernel-data
 * layout v2) boots beside a running layout-1 kernel as its backup; and
 * the layout-1 extractor reads a hung kernel's tables from outside (the
 * kernel does nothing for it), writes every process's image, and a
 * layout-v2 table set is built from them: the processes the image carries
 * are there, the one it cannot carry (a server) is refused by name. */
#include <criterion/criterion.h>
#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kimage.h"
#include "kimage.pb-c.h"
#include "orthros.h"
#include "uksim_paths.h"

/* A real-time heartbeat between the two kernels: not under valgrind
 * (tests/ci-skips.txt; the fixture's skip_under_valgrind). */
TestSuite(kupdate, .init = skip_under_valgrind);

Test(kupdate, a_v2_kernel_boots_beside_the_running_one, .timeout = 60) {
  mach_client m;
  struct mach_opts o;
  mach_opts_default(&o);
  snprintf(o.name, sizeof o.name, "kupdate-%d", (int)getpid());
  char exe[sizeof o.backup_kernel] = UKSIM_EXE_DEFAULT;
  snprintf(o.backup_kernel, sizeof o.backup_kernel, "%s/uksim-kernel2",
           dirname(exe));
  o.backup = true;
  o.heartbeat_timeout_ms = 1000; /* a loaded host must not fail over */
  cr_assert_eq(mach_boot(&m, &o), 0, "boot: %s", m.error);
  uint32_t b = await_backup(&m);
  struct uk_kdata_hdr old = region_hdr(&m, 0), new = region_hdr(&m, b);
  cr_expect_eq(old.layout, UK_KDATA_LAYOUT);
  cr_expect_eq(new.layout, 1001, "the backup's layout is %u", new.layout);
  cr_expect_neq(new.size, old.size);
  cr_expect_eq(new.os_id, b);
  usleep(300 * 1000); /* it watches heartbeats and stays the backup */
  Uksim__Reply *st = status(&m);
  cr_expect_eq(st->backup_os, b);
  cr_expect_eq(st->failovers, 0);
  uksim__reply__free_unpacked(st, NULL);
  halt(&m);
}

/* Images of every live process of the hung kernel's region, built into a
 * fresh layout-v2 region; counts those built and those refused. */
static void migrate_all(const struct uk_kdata *kd, void *v2, int *built,
                        int *refused, bool *server_named) {
  for (uint32_t p = 0; p < UK_PROC_MAX; p++) {
    uint8_t *b;
    size_t n;
    if (kimg_v1_extract(kd, sizeof *kd, p, &b, &n) != 0)
      continue;
    Uksim__Kimage__Image *img = uksim__kimage__image__unpack(NULL, n, b);
    cr_assert_not_null(img);
    for (size_t k = 0; k < img->n_cannot_carry; k++)
      *server_named |= strncmp(img->cannot_carry[k], "server", 6) == 0;
    int r = kimg_v2_build(v2, kimg_v2_region_size(), b, n);
    if (r >= 0) {
      (*built)++;
      cr_expect_eq(r, (int)p);
    } else {
      (*refused)++;
      cr_expect_eq(r, -EXDEV, "slot %u: %d", p, r);
      cr_expect_gt(img->n_cannot_carry, 0);
    }
    uksim__kimage__image__free_unpacked(img, NULL);
    free(b);
  }
}

Test(kupdate, images_come_from_a_hung_kernel, .timeout = 60) {
  mach_client m;
  h_boot(&m, "kvs");
  char *hog[] = {"icas", "5", "10000"};
  h_spawn(&m, "ap_hog", hog, 3, "hog1", NULL);
  h_spawn(&m, "ap_hog", hog, 3, "hog2", NULL);
  usleep(300 * 1000); /* they hold their ICAs */
  Uksim__Reply *st = status(&m);
  pid_t kernel = st->active_pid;
  uksim__reply__free_unpacked(st, NULL);
  cr_assert_eq(mach_fault(&m, UKSIM__FAULT__KIND__HANG, 0), 0, "%s", m.error);
  usleep(100 * 1000);
  int fd;
  cr_assert_eq(mach_kdata_fd(&m, 0, &fd), 0, "%s", m.error);
  const struct uk_kdata *kd =
      mmap(NULL, sizeof *kd, PROT_READ, MAP_SHARED, fd, 0);
  cr_assert_neq((void *)kd, MAP_FAILED);
  close(fd);
  uint64_t step = kd->hdr.step;
  void *v2 = malloc(kimg_v2_region_size());
  kimg_v2_region_init(v2, 2);
  int built = 0, refused = 0;
  bool server_named = false;
  migrate_all(kd, v2, &built, &refused, &server_named);
  cr_expect_eq(kd->hdr.step, step, "the hung kernel made progress");
  cr_expect_eq(built, 2, "the two ap_hog processes: %d built", built);
  cr_expect_eq(refused, 1, "the kvs server: %d refused", refused);
  cr_expect(server_named);
  /* What was built carries their ICAs (5 each). */
  for (uint32_t p = 0, seen = 0; p < UK_PROC_MAX && seen < 2; p++) {
    uint8_t *b;
    size_t n;
    if (kimg_v2_extract(v2, kimg_v2_region_size(), p, &b, &n) != 0)
      continue;
    Uksim__Kimage__Image *img = uksim__kimage__image__unpack(NULL, n, b);
    cr_expect_eq(img->n_icas, 5, "%s holds %zu ICAs", img->proc->name,
                 img->n_icas);
    uksim__kimage__image__free_unpacked(img, NULL);
    free(b);
    seen++;
  }
  munmap((void *)kd, sizeof *kd);
  free(v2);
  kill(kernel, SIGKILL); /* no backup: the machine ends with it */
  mach_close(&m);
}

/* A machine whose backup is a layout-v2 kernel; its trace goes to the
 * fixture's trace (kupdate-PID-TAG.jsonl), read with trace_has. */
static void boot_v2_backup(mach_client *m, const char *tag) {
  struct mach_opts o;
  snprintf(trace, sizeof trace, "%s/kupdate-%d-%s.jsonl",
           getenv("UKSIM_BUILD_ROOT") ? getenv("UKSIM_BUILD_ROOT") : "/tmp",
           (int)getpid(), tag);
  mach_opts_default(&o);
  snprintf(o.name, sizeof o.name, "kupdate-%d-h", (int)getpid());
  char exe[sizeof o.backup_kernel] = UKSIM_EXE_DEFAULT;
  snprintf(o.backup_kernel, sizeof o.backup_kernel, "%s/uksim-kernel2",
           dirname(exe));
  snprintf(o.trace_file, sizeof o.trace_file, "%s", trace);
  o.backup = true;
  o.heartbeat_timeout_ms = 1000;
  cr_assert_eq(mach_boot(m, &o), 0, "boot: %s", m->error);
}

static int spawn_protected(mach_client *m, const char *prog, char **args,
                           size_t n, const char *name) {
  struct mach_prog p = {
      .program = prog, .args = args, .nargs = n, .name = name, .protect = true};
  int slot;
  cr_assert_eq(mach_spawn_prog(m, &p, &slot), 0, "%s: %s", prog, m->error);
  return slot;
}

/* Two protected ap_hog processes holding 5 ICAs each for 3 s: their
 * slots and Linux pids. */
static void start_hogs(mach_client *m, int *slot, pid_t *pid) {
  char *hog[] = {"icas", "5", "3000"};
  slot[0] = spawn_protected(m, "ap_hog", hog, 3, "hog1");
  slot[1] = spawn_protected(m, "ap_hog", hog, 3, "hog2");
  usleep(300 * 1000);
  const struct uk_kdata *old;
  cr_assert_eq(mach_kdata(m, &old, NULL), 0, "%s", m->error);
  pid[0] = old->proc[slot[0]].pid;
  pid[1] = old->proc[slot[1]].pid;
  mach_kdata_unmap(old);
}

static uint32_t await_failover(mach_client *m) {
  for (int i = 0; i < 1000; i++) {
    Uksim__Reply *st = status(m);
    uint32_t a = st->failovers == 1 ? st->active_os : 0;
    uksim__reply__free_unpacked(st, NULL);
    if (a && region_hdr(m, a).layout == 1001)
      return a;
    usleep(10 * 1000);
  }
  cr_assert_fail("no failover to the layout-v2 kernel in 10 s");
  return 0;
}

/* Process slot's image in the layout-v2 kernel's region, or NULL. */
static Uksim__Kimage__Image *v2_image(mach_client *m, uint32_t os,
                                      uint32_t slot) {
  int fd;
  cr_assert_eq(mach_kdata_fd(m, os, &fd), 0, "%s", m->error);
  size_t len = kimg_v2_region_size();
  void *kd = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  cr_assert_neq(kd, MAP_FAILED);
  uint8_t *b;
  size_t n;
  Uksim__Kimage__Image *img = NULL;
  if (kimg_v2_extract(kd, len, slot, &b, &n) == 0) {
    img = uksim__kimage__image__unpack(NULL, n, b);
    free(b);
  }
  munmap(kd, len);
  return img;
}

/* The two ap_hog processes in slot[] (Linux pids pid[]) are in the
 * layout-v2 kernel of OS b with their 5 ICAs each, the same processes, and
 * end by themselves through it. */
static void hogs_moved(mach_client *m, uint32_t b, const int *slot,
                       const pid_t *pid) {
  for (int i = 0; i < 2; i++) {
    Uksim__Kimage__Image *img = NULL;
    for (int t = 0; t < 500 && img == NULL; t++) { /* its failover step */
      img = v2_image(m, b, (uint32_t)slot[i]);
      if (img == NULL)
        usleep(10 * 1000);
    }
    cr_assert_not_null(img, "hog%d did not move", i + 1);
    cr_expect_eq(img->proc->pid, pid[i], "hog%d was restarted", i + 1);
    cr_expect_eq(img->n_icas, 5);
    uksim__kimage__image__free_unpacked(img, NULL);
    cr_expect_eq(kill(pid[i], 0), 0);
  }
  /* They end by themselves through the new kernel: release, exit. */
  for (int i = 0; i < 2; i++) {
    Uksim__Kimage__Image *img = NULL;
    for (int t = 0; t < 1000; t++) {
      img = v2_image(m, b, (uint32_t)slot[i]);
      if (img == NULL || img->proc->pid != pid[i])
        break;
      uksim__kimage__image__free_unpacked(img, NULL);
      img = NULL;
      usleep(10 * 1000);
    }
    cr_expect_null(img, "hog%d still lives on the new kernel", i + 1);
  }
}

Test(kupdate, a_hung_kernel_is_updated_through_images, .timeout = 90) {
  mach_client m;
  boot_v2_backup(&m, "h");
  uint32_t b = await_backup(&m);
  cr_assert_eq(
      mach_spawn(&m, "kvs", NULL, 0, "kvs", MACH_SPAWN_REGISTERED, NULL), 0,
      "%s", m.error);
  int slot[2];
  pid_t pid[2];
  start_hogs(&m, slot, pid);
  cr_assert_eq(mach_fault(&m, UKSIM__FAULT__KIND__HANG, 0), 0, "%s", m.error);
  cr_assert_eq(await_failover(&m), b);
  hogs_moved(&m, b, slot, pid);
  cr_expect(trace_has(b, "images of 2 processes", "layout 1001"));
  cr_expect(trace_has(b, "kvs (pid", "cannot move: server"));
  halt(&m);
}

Test(kupdate, uksim_kupdate_moves_running_processes, .timeout = 90) {
  mach_client m;
  boot_v2_backup(&m, "k");
  uint32_t b = await_backup(&m), old_os = 0, new_os = 0;
  int slot[2];
  pid_t pid[2];
  start_hogs(&m, slot, pid);
  cr_assert_eq(
      mach_kupdate(&m, UKSIM__KUPDATE__METHOD__IMAGE, &old_os, &new_os), 0,
      "%s", m.error);
  cr_expect_eq(new_os, b);
  cr_assert_eq(await_failover(&m), b);
  const struct uk_interos *io;
  cr_assert_eq(mach_interos(&m, &io), 0, "%s", m.error);
  cr_expect_eq(io->det_cause, UK_DETECT_KUPDATE);
  cr_expect_eq(io->det_dead_os, old_os);
  mach_interos_unmap(io);
  hogs_moved(&m, b, slot, pid);
  halt(&m);
}

/* An update under load loses no request: a protected counter client in
 * the middle of its 4000 increments moves to the new kernel version, the
 * counter's service (state ICA and queue carried in the kernel part)
 * restarts there, and the count comes out exactly once (but for at most
 * the one increment the server held at the update: -ECONNRESET). */
Test(kupdate, an_update_under_load_loses_no_request, .timeout = 120) {
  mach_client m;
  boot_v2_backup(&m, "l");
  uint32_t b = await_backup(&m), old_os, new_os;
  cr_assert_eq(
      mach_spawn(&m, "ctr_srv", NULL, 0, "ctr", MACH_SPAWN_REGISTERED, NULL), 0,
      "%s", m.error);
  char *a[] = {"--count", "4000", "--tolerate-reset", "--expect-range",
               "3999:4000"};
  struct mach_prog p = {.program = "ctr_load",
                        .args = a,
                        .nargs = 5,
                        .name = "load",
                        .protect = true};
  int slot;
  cr_assert_eq(mach_spawn_prog(&m, &p, &slot), 0, "%s", m.error);
  const struct uk_kdata *old;
  cr_assert_eq(mach_kdata(&m, &old, NULL), 0, "%s", m.error);
  pid_t pload = old->proc[slot].pid;
  mach_kdata_unmap(old);
  usleep(50 * 1000); /* calls in a loop */
  cr_assert_eq(
      mach_kupdate(&m, UKSIM__KUPDATE__METHOD__IMAGE, &old_os, &new_os), 0,
      "%s", m.error);
  cr_assert_eq(await_failover(&m), b);
  for (int i = 0; i < 3000 && alive(pload); i++)
    usleep(10 * 1000);
  cr_assert(!alive(pload), "the moved client did not finish its 4000 calls");
  char *c[] = {"--count", "1", "--expect-range", "4000:4001"};
  int64_t wid = h_spawn(&m, "ctr_load", c, 4, "check", NULL);
  cr_expect_eq(h_wait(&m, wid), 0, "the counter lost or doubled increments");
  cr_expect(trace_has(b, "images of 1 processes", "1 refused"));
  cr_expect(trace_has(b, "failover", "1 moved"));
  halt(&m);
}
