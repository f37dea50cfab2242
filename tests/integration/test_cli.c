/* The uksim command line against a real machine. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "uksim_paths.h"

/* Runs a shell command and returns its output (static buffer). */
static const char *run(const char *cmd, int *status) {
  static char out[16384];
  FILE *f = popen(cmd, "r");
  cr_assert_not_null(f);
  size_t n = fread(out, 1, sizeof out - 1, f);
  out[n] = '\0';
  *status = pclose(f);
  return out;
}

Test(cli, ps_and_svc_read_the_tables_of_a_running_machine, .timeout = 120) {
  mach_client m;
  struct mach_opts o;
  char cmd[512];
  int st;
  mach_opts_default(&o);
  snprintf(o.name, sizeof o.name, "cli-%d", (int)getpid());
  cr_assert_eq(mach_boot(&m, &o), 0);
  cr_assert_eq(
      mach_spawn(&m, "kvs", NULL, 0, "kvs", MACH_SPAWN_REGISTERED, NULL), 0);

  snprintf(cmd, sizeof cmd, "%s ps --name %s", UKSIM_EXE_DEFAULT, o.name);
  const char *out = run(cmd, &st);
  cr_expect_eq(st, 0);
  cr_expect(strstr(out, "kvs") && strstr(out, "server"), "ps: %s", out);
  snprintf(cmd, sizeof cmd, "%s svc --name %s", UKSIM_EXE_DEFAULT, o.name);
  out = run(cmd, &st);
  cr_expect_eq(st, 0);
  cr_expect(strstr(out, "kvs") && strstr(out, " up "), "svc: %s", out);
  h_halt_clean(&m);
}

Test(cli, ps_of_a_machine_that_is_not_running_fails_clearly, .timeout = 60) {
  char cmd[512];
  int st;
  snprintf(cmd, sizeof cmd, "%s ps --name nothing-here 2>&1",
           UKSIM_EXE_DEFAULT);
  const char *out = run(cmd, &st);
  cr_expect_neq(st, 0);
  cr_expect(strstr(out, "no machine 'nothing-here' is running"), "%s", out);
}

Test(cli, demo_succeeds, .timeout = 300) {
  char cmd[512];
  int st;
  snprintf(cmd, sizeof cmd, "%s demo --requests %d --trace 5 2>&1",
           UKSIM_EXE_DEFAULT, scaled(500));
  const char *out = run(cmd, &st);
  cr_expect_eq(st, 0, "%s", out);
  cr_expect(strstr(out, "ICAs live at shutdown: 0"), "%s", out);
  cr_expect(strstr(out, "kvs.put"), "%s", out);
}

Test(cli, unknown_command_and_bad_option_exit_2, .timeout = 60) {
  char cmd[512];
  int st;
  snprintf(cmd, sizeof cmd, "%s frobnicate 2>&1", UKSIM_EXE_DEFAULT);
  run(cmd, &st);
  cr_expect_eq(WEXITSTATUS(st), 2);
  snprintf(cmd, sizeof cmd, "%s demo --aps 0 2>&1", UKSIM_EXE_DEFAULT);
  run(cmd, &st);
  cr_expect_eq(WEXITSTATUS(st), 2);
}
