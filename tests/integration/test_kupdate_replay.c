/* Kernel update method B, replay (issue 15), end to end on a real
 * machine: a protected process (jr_kupdate_ap) with #c bound on /mnt,
 * /dev/zero open at offset 100 on descriptor 5 and a pipe holding unread
 * bytes sleeps in kernel calls while `uksim kupdate --method replay` moves
 * it to the layout-v2 kernel.  The new kernel builds only what replay
 * cannot make (the process entry, its call, its ICAs; the pipe's bytes
 * kept aside) and answers its next call KABI_ANS_REPLAY; the process
 * replays its journal, says so, and its call goes on.  It must find its
 * state whole, and the new kernel's trace must say it replayed. */
#include <criterion/criterion.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "orthros.h"
#include "uksim_paths.h"

/* Real-time heartbeats between the two kernels (tests/ci-skips.txt). */
TestSuite(kupdate_replay, .init = skip_under_valgrind);

static void boot_v2_backup(mach_client *m) {
  struct mach_opts o;
  pair_opts(&o);
  char exe[sizeof o.backup_kernel] = UKSIM_EXE_DEFAULT;
  snprintf(o.backup_kernel, sizeof o.backup_kernel, "%s/uksim-kernel2",
           dirname(exe));
  o.heartbeat_timeout_ms = 2000; /* the update, not a detection, takes over */
  cr_assert_eq(mach_boot(m, &o), 0, "boot: %s", m->error);
}

/* The app's OUT file's text, after waiting up to ms for want in it. */
static const char *wait_for(const char *path, const char *want, int ms) {
  static char buf[512];
  for (int i = 0; i <= ms / 10; i++) {
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
      fclose(f);
    buf[n] = '\0';
    if (strstr(buf, want) || strstr(buf, "fail"))
      return buf;
    usleep(10 * 1000);
  }
  return buf;
}

/* Starts jr_kupdate_ap (protected) with OUT in out and arg (or none),
 * until it says "built"; its pid. */
static pid_t start_app(mach_client *m, char *out, size_t len, const char *arg) {
  snprintf(out, len, "%s/kupdate-replay-%d.out",
           getenv("UKSIM_BUILD_ROOT") ? getenv("UKSIM_BUILD_ROOT") : "/tmp",
           (int)getpid());
  unlink(out);
  char *a[] = {out, (char *)arg};
  struct mach_prog p = {.program = "jr_kupdate_ap",
                        .args = a,
                        .nargs = arg ? 2 : 1,
                        .name = "shaped",
                        .protect = true};
  int slot;
  cr_assert_eq(mach_spawn_prog(m, &p, &slot), 0, "%s", m->error);
  const char *s = wait_for(out, "built", 10000);
  cr_assert(strstr(s, "built") != NULL, "the app: %s", s);
  return pid_of(m, slot);
}

static void update_keeps_state(int method, const char *event) {
  mach_client m;
  boot_v2_backup(&m);
  uint32_t b = await_backup(&m), old_os, new_os;
  char out[256];
  start_app(&m, out, sizeof out, NULL);
  cr_assert_eq(mach_kupdate(&m, method, &old_os, &new_os), 0, "%s", m.error);
  cr_expect_eq(new_os, b);
  const char *s = wait_for(out, "ok", 20000);
  cr_log_info("the app said: %s", s);
  cr_expect(strstr(s, "ok") != NULL, "the app after the update: %s", s);
  if (event)
    cr_expect(trace_has(b, "kupdate", event),
              "the new kernel's trace has no kupdate \"%s\"", event);
  unlink(out);
  halt(&m);
}

Test(kupdate_replay, a_process_keeps_its_state_by_replay, .timeout = 120) {
  update_keeps_state(UKSIM__KUPDATE__METHOD__REPLAY, "replayed");
}

/* The same state through method A (images), for comparison: the pipe
 * here is the kernel's first, of generation 0, as an empty region's slot
 * is (put_pipes in kimage.c once took it for built already: "hello" was
 * lost). */
Test(kupdate_replay, a_process_keeps_its_state_by_images, .timeout = 120) {
  update_keeps_state(UKSIM__KUPDATE__METHOD__IMAGE, NULL);
}

/* A process whose journal overflowed cannot rebuild its state: the new
 * kernel ends it and its trace says why (the old kernel is gone). */
Test(kupdate_replay, an_overflowed_journal_is_refused_by_name, .timeout = 120) {
  mach_client m;
  boot_v2_backup(&m);
  uint32_t b = await_backup(&m), old_os, new_os;
  char out[256];
  pid_t pid = start_app(&m, out, sizeof out, "overflow");
  cr_assert_eq(
      mach_kupdate(&m, UKSIM__KUPDATE__METHOD__REPLAY, &old_os, &new_os), 0,
      "%s", m.error);
  for (int i = 0; i < 2000 && alive(pid); i++)
    usleep(10 * 1000);
  cr_expect(!alive(pid), "the process whose journal overflowed still runs");
  cr_expect(trace_has(b, "cannot be replayed", "the journal overflowed"),
            "the new kernel's trace does not say why");
  cr_expect(strstr(wait_for(out, "ok", 0), "ok") == NULL);
  unlink(out);
  halt(&m);
}

/* A hung kernel (its loop blocked, its process alive) updated by replay:
 * the new kernel reads its tables from outside as in method A (the hung
 * kernel does nothing for it), and the process replays against the new
 * kernel, which alone answers it.  The update is asked (uksim kupdate
 * --method replay) before the heartbeat's timeout finds the hang: a hang
 * found by the backup itself fails over by method A (the detection names
 * no method). */
Test(kupdate_replay, a_hung_kernel_is_updated_by_replay, .timeout = 120) {
  mach_client m;
  boot_v2_backup(&m);
  uint32_t b = await_backup(&m), old_os, new_os;
  char out[256];
  start_app(&m, out, sizeof out, NULL);
  cr_assert_eq(mach_fault(&m, UKSIM__FAULT__KIND__HANG, 0), 0, "%s", m.error);
  usleep(200 * 1000); /* hung: the app's sleeps go unanswered */
  cr_assert_eq(
      mach_kupdate(&m, UKSIM__KUPDATE__METHOD__REPLAY, &old_os, &new_os), 0,
      "%s", m.error);
  cr_expect_eq(new_os, b);
  const char *s = wait_for(out, "ok", 20000);
  cr_expect(strstr(s, "ok") != NULL, "the app after the update: %s", s);
  cr_expect(trace_has(b, "kupdate", "shaped replayed"),
            "the new kernel's trace has no replay");
  cr_expect(trace_has(b, "os-dead", "kernel update"),
            "the takeover was not the update's (a detection?)");
  unlink(out);
  halt(&m);
}
