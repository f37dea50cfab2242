/* The uksim command line against a real machine. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "uksim_paths.h"

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
  const char *out = h_run(cmd, &st);
  cr_expect_eq(st, 0);
  cr_expect(strstr(out, "kvs") && strstr(out, "server"), "ps: %s", out);
  snprintf(cmd, sizeof cmd, "%s svc --name %s", UKSIM_EXE_DEFAULT, o.name);
  out = h_run(cmd, &st);
  cr_expect_eq(st, 0);
  cr_expect(strstr(out, "kvs") && strstr(out, " up "), "svc: %s", out);
  h_halt_clean(&m);
}

Test(cli, ps_of_a_machine_that_is_not_running_fails_clearly, .timeout = 60) {
  char cmd[512];
  int st;
  snprintf(cmd, sizeof cmd, "%s ps --name nothing-here 2>&1",
           UKSIM_EXE_DEFAULT);
  const char *out = h_run(cmd, &st);
  cr_expect_neq(st, 0);
  cr_expect(strstr(out, "no machine 'nothing-here' is running"), "%s", out);
}

Test(cli, demo_succeeds, .timeout = 300) {
  char cmd[512];
  int st;
  snprintf(cmd, sizeof cmd, "%s demo --requests %d --trace 5 2>&1",
           UKSIM_EXE_DEFAULT, scaled(500));
  const char *out = h_run(cmd, &st);
  cr_expect_eq(st, 0, "%s", out);
  cr_expect(strstr(out, "ICAs live at shutdown: 0"), "%s", out);
  cr_expect(strstr(out, "kvs.put"), "%s", out);
}

Test(cli, unknown_command_and_bad_option_exit_2, .timeout = 60) {
  char cmd[512];
  int st;
  snprintf(cmd, sizeof cmd, "%s frobnicate 2>&1", UKSIM_EXE_DEFAULT);
  h_run(cmd, &st);
  cr_expect_eq(WEXITSTATUS(st), 2);
  snprintf(cmd, sizeof cmd, "%s demo --aps 0 2>&1", UKSIM_EXE_DEFAULT);
  h_run(cmd, &st);
  cr_expect_eq(WEXITSTATUS(st), 2);
}

/* Boots a machine for the CLI to talk to; *name gets its name. */
static void boot_named(mach_client *m, char *name, size_t len) {
  struct mach_opts o;
  mach_opts_default(&o);
  snprintf(o.name, sizeof o.name, "cli-%d", (int)getpid());
  snprintf(name, len, "%s", o.name);
  cr_assert_eq(mach_boot(m, &o), 0, "%s", m->error);
  cr_assert_eq(
      mach_spawn(m, "kvs", NULL, 0, "kvs", MACH_SPAWN_REGISTERED, NULL), 0);
}

Test(cli, replace_names_what_is_wrong_with_its_arguments, .timeout = 120) {
  mach_client m;
  char name[64], cmd[512];
  int st;
  boot_named(&m, name, sizeof name);
  snprintf(cmd, sizeof cmd, "%s replace --name %s kvs '' 2>&1",
           UKSIM_EXE_DEFAULT, name);
  const char *out = h_run(cmd, &st);
  cr_expect_eq(WEXITSTATUS(st), 2);
  cr_expect(strstr(out, "empty program name"), "%s", out);
  snprintf(cmd, sizeof cmd, "%s replace --name %s kvs /tmp 2>&1",
           UKSIM_EXE_DEFAULT, name);
  out = h_run(cmd, &st);
  cr_expect_eq(WEXITSTATUS(st), 1);
  cr_expect(strstr(out, "is a directory"), "%s", out);
  snprintf(cmd, sizeof cmd, "%s replace --name ../lab kvs kvs 2>&1",
           UKSIM_EXE_DEFAULT);
  out = h_run(cmd, &st);
  cr_expect_eq(WEXITSTATUS(st), 1);
  cr_expect(strstr(out, "bad machine name '../lab'"), "%s", out);
  h_halt_clean(&m);
}

/* Starts `uksim demo --keep` in a process group of its own with its output
 * in a file; returns its pid once it says the machine stays up. */
static pid_t keep_demo(const char *name, const char *log) {
  char cmd[512];
  snprintf(cmd, sizeof cmd,
           "exec %s demo --keep --name %s --requests 20 --trace 0 >%s 2>&1",
           UKSIM_EXE_DEFAULT, name, log);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    setpgid(0, 0);
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
  }
  for (int i = 0; i < 3000; i++) {
    char buf[8192] = "";
    FILE *f = fopen(log, "r");
    if (f) {
      buf[fread(buf, 1, sizeof buf - 1, f)] = '\0';
      fclose(f);
    }
    if (strstr(buf, "stays up"))
      return pid;
    usleep(10000);
  }
  cr_assert_fail("the demo did not come up");
  return -1;
}

static int reap_demo(pid_t pid, const char *log, char *out, size_t len) {
  int st;
  cr_assert_eq(waitpid(pid, &st, 0), pid);
  FILE *f = fopen(log, "r");
  cr_assert_not_null(f);
  out[fread(out, 1, len - 1, f)] = '\0';
  fclose(f);
  unlink(log);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The machine of a demo, found by its name in /proc. */
static pid_t machine_pid(const char *name) {
  char cmd[256];
  int st;
  /* Anchored: the shell running pgrep has the pattern in its own command
   * line, and once pids wrap it may come first. */
  snprintf(cmd, sizeof cmd, "pgrep -f -- '^[^ ]*uksim machine --name %s '",
           name);
  const char *out = h_run(cmd, &st);
  cr_assert_eq(st, 0, "no machine %s", name);
  return (pid_t)atoi(out);
}

Test(cli, ctrl_c_halts_a_kept_demo_cleanly, .timeout = 120) {
  char name[64], log[128], out[8192];
  snprintf(name, sizeof name, "keep-%d", (int)getpid());
  snprintf(log, sizeof log, "/tmp/%s.log", name);
  pid_t d = keep_demo(name, log);
  /* Ctrl-C at a terminal: SIGINT to the demo's whole process group. */
  kill(-d, SIGINT);
  cr_expect_eq(reap_demo(d, log, out, sizeof out), 0, "%s", out);
  cr_expect(strstr(out, "ICAs live at shutdown: 0"), "%s", out);
  cr_expect(!strstr(out, "kernel exited"), "%s", out);
}

Test(cli, second_demo_of_a_name_fails_at_once, .timeout = 120) {
  char name[64], log[128], out[8192], cmd[512];
  int st;
  snprintf(name, sizeof name, "twice-%d", (int)getpid());
  snprintf(log, sizeof log, "/tmp/%s.log", name);
  pid_t d = keep_demo(name, log);
  snprintf(cmd, sizeof cmd, "%s demo --keep --name %s --requests 5 2>&1",
           UKSIM_EXE_DEFAULT, name);
  const char *o2 = h_run(cmd, &st);
  cr_expect_eq(WEXITSTATUS(st), 1, "%s", o2);
  cr_expect(strstr(o2, "a machine of this name is running"), "%s", o2);
  cr_expect(!strstr(o2, "booted"), "%s", o2);
  kill(d, SIGTERM);
  cr_expect_eq(reap_demo(d, log, out, sizeof out), 0, "%s", out);
}

Test(cli, demo_whose_machine_dies_says_so_and_the_name_boots_again,
     .timeout = 120) {
  char name[64], log[128], out[8192], cmd[512];
  int st;
  snprintf(name, sizeof name, "dies-%d", (int)getpid());
  snprintf(log, sizeof log, "/tmp/%s.log", name);
  pid_t d = keep_demo(name, log);
  kill(machine_pid(name), SIGKILL);
  cr_expect_eq(reap_demo(d, log, out, sizeof out), 1, "%s", out);
  cr_expect(strstr(out, "went away"), "%s", out);
  cr_expect(!strstr(out, "ICAs live"), "%s", out);
  /* The stale socket is told from a live machine, and does not stop the
   * next machine of that name. */
  snprintf(cmd, sizeof cmd, "%s ps --name %s 2>&1", UKSIM_EXE_DEFAULT, name);
  const char *o2 = h_run(cmd, &st);
  cr_expect_neq(st, 0);
  cr_expect(strstr(o2, "ended without cleaning up"), "%s", o2);
  snprintf(cmd, sizeof cmd, "%s demo --name %s --requests 5 --trace 0 2>&1",
           UKSIM_EXE_DEFAULT, name);
  o2 = h_run(cmd, &st);
  cr_expect_eq(st, 0, "%s", o2);
}

Test(cli, machine_ended_by_sigterm_cleans_up, .timeout = 120) {
  char name[64], log[128], out[8192], dir[256];
  snprintf(name, sizeof name, "term-%d", (int)getpid());
  snprintf(log, sizeof log, "/tmp/%s.log", name);
  pid_t d = keep_demo(name, log);
  kill(machine_pid(name), SIGTERM);
  cr_expect_eq(reap_demo(d, log, out, sizeof out), 1, "%s", out);
  cr_expect(strstr(out, "went away"), "%s", out);
  cr_assert_eq(mach_rundir(name, dir, sizeof dir, false), 0);
  cr_expect_neq(access(dir, F_OK), 0, "%s is left behind", dir);
}

/* uksim ps --calls: every process's call columns and the plan adopt_tables
 * makes from the tables: a protected application moves, an unprotected
 * one and the servers end. */
static void spawn_ctr_load(mach_client *m, const char *as, bool protect) {
  char *a[] = {"--forever"};
  struct mach_prog p = {.program = "ctr_load",
                        .args = a,
                        .nargs = 1,
                        .name = as,
                        .protect = protect};
  cr_assert_eq(mach_spawn_prog(m, &p, NULL), 0, "%s", m->error);
}

static const char *line_of(const char *out, const char *name) {
  static char line[512];
  const char *at = strstr(out, name);
  if (at == NULL)
    return "";
  while (at > out && at[-1] != '\n')
    at--;
  size_t n = strcspn(at, "\n");
  snprintf(line, sizeof line, "%.*s", (int)n, at);
  return line;
}

Test(cli, ps_calls_shows_the_plan_a_backup_would_follow, .timeout = 120) {
  mach_client m;
  char name[64], cmd[512];
  int st;
  boot_named(&m, name, sizeof name);
  cr_assert_eq(
      mach_spawn(&m, "ctr_srv", NULL, 0, "ctr", MACH_SPAWN_REGISTERED, NULL), 0,
      "%s", m.error);
  spawn_ctr_load(&m, "moves", true);
  spawn_ctr_load(&m, "stays", false);
  usleep(100 * 1000);
  snprintf(cmd, sizeof cmd, "%s ps --name %s --calls", UKSIM_EXE_DEFAULT, name);
  const char *out = h_run(cmd, &st);
  cr_expect_eq(st, 0, "%s", out);
  cr_expect(strstr(out, "CALL_SEQ ANSWERED WAIT_SEQ WAIT_REQ IF THE KERNEL"),
            "%s", out);
  cr_expect(strstr(line_of(out, "moves"), " yes ") &&
                strstr(line_of(out, "moves"), "moves, "),
            "%s", out);
  cr_expect(strstr(line_of(out, "stays"), " no ") &&
                strstr(line_of(out, "stays"), "ends: not protected"),
            "%s", out);
  cr_expect(strstr(line_of(out, "kvs"), "ends: a server"), "%s", out);
  snprintf(cmd, sizeof cmd, "%s svc --name %s --calls 2>&1", UKSIM_EXE_DEFAULT,
           name);
  h_run(cmd, &st);
  cr_expect_eq(WEXITSTATUS(st), 2, "svc takes no --calls");
  h_halt_clean(&m);
}

/* uksim demo --jsonl FILE keeps the kernel's events; an empty name is bad
 * usage. */
Test(cli, demo_keeps_its_trace_in_jsonl, .timeout = 120) {
  char cmd[512], file[128], line[512];
  int st;
  snprintf(file, sizeof file, "/tmp/uksim-cli-%d.jsonl", (int)getpid());
  snprintf(cmd, sizeof cmd, "%s demo --requests 10 --trace 0 --jsonl %s 2>&1",
           UKSIM_EXE_DEFAULT, file);
  const char *out = h_run(cmd, &st);
  cr_expect_eq(st, 0, "%s", out);
  FILE *f = fopen(file, "r");
  cr_assert_not_null(f, "no %s", file);
  bool spawn = false;
  while (!spawn && fgets(line, sizeof line, f))
    spawn = strstr(line, "\"ev\":\"spawn\"") && strstr(line, "kvs");
  fclose(f);
  unlink(file);
  cr_expect(spawn, "no spawn event of kvs in the trace");
  snprintf(cmd, sizeof cmd, "%s demo --jsonl '' 2>&1", UKSIM_EXE_DEFAULT);
  out = h_run(cmd, &st);
  cr_expect_eq(WEXITSTATUS(st), 2, "%s", out);
  cr_expect(strstr(out, "--jsonl ''"), "%s", out);
}
