/* `uksim sh` against a real machine: the shell is an application process
 * whose builtins make namespace calls through the kernel. */
#include <criterion/criterion.h>
#include <string.h>

#include "harness.h"
#include "sh_proc.h"
#include "uksim_paths.h"

#define SH UKSIM_EXE_DEFAULT " sh --name "

static const char root[] = "bin\ndev\nenv\nfd\nmnt\nn\nnet\nproc\nsrv\ntmp\n";

Test(sh, lists_the_root_and_moves_about, .timeout = 120) {
  mach_client m;
  char name[64];
  int st;
  sp_boot(&m, name, NULL);
  const char *out =
      sp_run(&st, SH "%s -c 'ls /; pwd; cd /n/..; cd mnt; pwd'", name);
  cr_expect_eq(st, 0, "%s", out);
  cr_expect(strncmp(out, root, strlen(root)) == 0, "%s", out);
  cr_expect(strstr(out, "/\n/mnt\n"), "%s", out);
  out = sp_run(&st, SH "%s -c 'ls -l /dev'", name);
  cr_expect_eq(st, 0, "%s", out);
  h_halt_clean(&m);
}

Test(sh, errors_name_the_path_and_the_last_command_sets_the_status,
     .timeout = 120) {
  mach_client m;
  char name[64];
  int st;
  sp_boot(&m, name, NULL);
  const char *out = sp_run(&st, SH "%s -c 'ls /n/x'", name);
  cr_expect_eq(st, 1);
  cr_expect_str_eq(out, "ls: /n/x: No such file or directory\n");
  out = sp_run(&st, SH "%s -c 'cd /nowhere; pwd'", name);
  cr_expect_eq(st, 0, "the last command succeeded: %s", out);
  cr_expect(strstr(out, "cd: /nowhere: No such file or directory\n/\n"), "%s",
            out);
  out = sp_run(&st, SH "%s -c 'echo '\\''unterminated'", name);
  cr_expect_eq(st, 2);
  cr_expect(strstr(out, "nsh: unterminated quote"), "%s", out);
  out = sp_run(&st, SH "%s -c 'frob'", name);
  cr_expect_eq(st, 1);
  cr_expect(strstr(out, "nsh: frob: unknown command"), "%s", out);
  out = sp_run(&st, SH "%s -c 'bind /nope /n'", name);
  cr_expect_eq(st, 1);
  cr_expect(strstr(out, "bind: /nope /n: No such file or directory"), "%s",
            out);
  h_halt_clean(&m);
}

Test(sh, pipes_and_redirections_in_the_shell, .timeout = 120) {
  mach_client m;
  char name[64];
  int st;
  sp_boot(&m, name, NULL);
  const char *out = sp_run(
      &st, SH "%s -c 'ls / | wc; echo a b c | cat | wc; ls / | cat'", name);
  cr_expect_eq(st, 0, "%s", out);
  cr_expect(strstr(out, "     10      10      38\n"
                        "      1       3       6\n"),
            "%s", out);
  cr_expect(strstr(out, root), "%s", out);
  h_halt_clean(&m);
}

Test(sh, bind_and_unmount_change_the_tree, .timeout = 120) {
  mach_client m;
  char name[64];
  int st;
  sp_boot(&m, name, NULL);
  const char *out = sp_run(
      &st, SH "%s -c 'bind / /tmp; ls /tmp; unmount /tmp; ls /tmp'", name);
  cr_expect_eq(st, 0, "%s", out);
  cr_expect_str_eq(out, root);
  out =
      sp_run(&st, SH "%s -c 'bind -a /dev /n; bind -b / /n; ls /n | wc'", name);
  cr_expect_eq(st, 0, "%s", out);
  h_halt_clean(&m);
}

/* Two processes: one binds, one shares its namespace, one copies it, a
 * fresh one has its own; after the copy, the original's changes stay its
 * own. */
Test(sh, namespaces_differ_between_processes, .timeout = 120) {
  mach_client m;
  char name[64];
  int st;
  struct sp_sh left;
  sp_boot(&m, name, NULL);
  sp_sh_start(&left, name, "left", NULL);
  cr_expect_str_eq(sp_sh_do(&left, "bind / /tmp"), "");
  const char *out = sp_run(&st, SH "%s --share left -c 'ls /tmp'", name);
  cr_expect_str_eq(out, root, "shared: %s", out);
  out = sp_run(&st, SH "%s -c 'ls /tmp'", name);
  cr_expect_str_eq(out, "", "fresh: %s", out);
  out = sp_run(&st, SH "%s --copy left -c 'unmount /tmp; ls /tmp'", name);
  cr_expect_str_eq(out, "", "copy, unmounted: %s", out);
  cr_expect_str_eq(sp_sh_do(&left, "ls /tmp | wc"), "     10      10      38\n",
                   "the copy's unmount leaked");
  out = sp_run(&st, SH "%s --share nobody -c 'ls'", name);
  cr_expect_eq(st, 1);
  cr_expect(strstr(out, "no process 'nobody'"), "%s", out);
  cr_expect_eq(sp_sh_end(&left), 0);
  h_halt_clean(&m);
}

/* The servants #c and #e (vfs/). */
Test(sh, builds_a_namespace_from_servants, .timeout = 120) {
  mach_client m;
  char name[64];
  int st;
  sp_boot(&m, name, NULL);
  const char *out = sp_run(&st, SH "%s -c 'ls '\\''#c'\\'''", name);
  cr_expect_eq(st, 0, "ls '#c': %s", out);
  out = sp_run(&st,
               SH "%s -c 'bind '\\''#c'\\'' /dev; cat /dev/pid; "
                  "bind -c '\\''#e'\\'' /env; echo hello world > /env/x; "
                  "echo more >> /env/x; cat /env/x; ls /env'",
               name);
  cr_expect_eq(st, 0, "%s", out);
  cr_expect(strstr(out, "hello world\nmore\n"), "%s", out);
  cr_expect(strstr(out, "\nx\n"), "%s", out);
  out = sp_run(&st, SH "%s -c 'ns'", name);
  cr_expect_eq(st, 0, "%s", out);
  out = sp_run(&st, SH "%s -c 'ps'", name);
  cr_expect_eq(st, 0, "%s", out);
  h_halt_clean(&m);
}

/* kill writes "kill" to #p/PID/ctl; the killed shell, waiting for a line,
 * sees its connection close and ends with status 1. */
Test(sh, kill_ends_another_process, .timeout = 120) {
  mach_client m;
  char name[64], pid[32];
  int st;
  struct sp_sh victim;
  sp_boot(&m, name, NULL);
  sp_sh_start(&victim, name, "victim", NULL);
  snprintf(pid, sizeof pid, "%s", sp_sh_do(&victim, "cat /dev/pid"));
  pid[strcspn(pid, "\n")] = '\0';
  const char *out = sp_run(&st, SH "%s -c 'ps'", name);
  cr_expect(strstr(out, "victim"), "%s", out);
  out = sp_run(&st, SH "%s -c 'kill %s'", name, pid);
  cr_expect_eq(st, 0, "%s", out);
  char line[256] = "";
  cr_expect_not_null(fgets(line, sizeof line, victim.out));
  cr_expect(strstr(line, "the kernel closed this process's connection"), "%s",
            line);
  cr_expect_eq(sp_sh_end(&victim), 1);
  out = sp_run(&st, SH "%s -c 'ps'", name);
  cr_expect_null(strstr(out, "victim"), "%s", out);
  out = sp_run(&st, SH "%s -c 'kill %s'", name, pid);
  cr_expect_eq(st, 1);
  cr_expect(strstr(out, "kill: #p/"), "%s", out);
  h_halt_clean(&m);
}

/* nsh as a program the kernel spawns: -c's status is the process's. */
Test(sh, nsh_spawned_by_the_kernel_exits_with_its_status, .timeout = 120) {
  mach_client m;
  char name[64];
  char *ok[] = {"-c", "bind -c '#e' /env; echo v > /env/x; cat /env/x"};
  char *bad[] = {"-c", "ls /nope"};
  char *usage[] = {"-x"};
  sp_boot(&m, name, NULL);
  cr_expect_eq(h_wait(&m, h_spawn(&m, "nsh", ok, 2, "nsh-ok", NULL)), 0);
  cr_expect_eq(h_wait(&m, h_spawn(&m, "nsh", bad, 2, "nsh-bad", NULL)), 1);
  cr_expect_eq(h_wait(&m, h_spawn(&m, "nsh", usage, 1, "nsh-usage", NULL)), 2);
  h_halt_clean(&m);
}
