/* Helpers for test_sh and test_mount (see sh_proc.h). */
#include "sh_proc.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "uksim_paths.h"

int sp_boot(mach_client *m, char *name, const char *server) {
  static int n;
  struct mach_opts o;
  mach_opts_default(&o);
  snprintf(o.name, sizeof o.name, "nsh-%d-%d", (int)getpid(), n++);
  snprintf(name, 64, "%s", o.name);
  cr_assert_eq(mach_boot(m, &o), 0, "boot: %s", m->error);
  if (server == NULL)
    return 0;
  return mach_spawn(m, server, NULL, 0, server, MACH_SPAWN_REGISTERED, NULL);
}

const char *sp_run(int *status, const char *fmt, ...) {
  static char out[65536];
  char cmd[4096] = "exec 2>&1; "; /* every command's errors, not the last's */
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd), fmt, ap);
  va_end(ap);
  FILE *f = popen(cmd, "r");
  cr_assert_not_null(f);
  size_t n = fread(out, 1, sizeof out - 1, f);
  out[n] = '\0';
  int st = pclose(f);
  *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return out;
}

void sp_sh_start(struct sp_sh *s, const char *machine, const char *as,
                 const char *extra) {
  int in[2], out[2];
  /* Close-on-exec: a command run later (a FUSE daemon above all) must not
   * keep this shell's stdin open after sp_sh_end closes it. */
  cr_assert_eq(pipe2(in, O_CLOEXEC), 0);
  cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
  s->pid = fork();
  cr_assert_geq(s->pid, 0);
  if (s->pid == 0) {
    char cmd[1024];
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(out[1], 2);
    close(in[1]);
    close(out[0]);
    snprintf(cmd, sizeof cmd, "exec %s sh --name %s --as %s %s",
             UKSIM_EXE_DEFAULT, machine, as, extra ? extra : "");
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  s->in = fdopen(in[1], "w");
  s->out = fdopen(out[0], "r");
  cr_assert(s->in && s->out);
  /* An answer means the shell has attached: its name can be used. */
  const char *hello = sp_sh_do(s, "");
  cr_assert_str_eq(hello, "", "uksim sh --as %s: %s", as, hello);
}

const char *sp_sh_do(struct sp_sh *s, const char *line) {
  static char out[16384];
  char l[1024];
  size_t n = 0;
  fprintf(s->in, "%s\necho '--done--'\n", line);
  fflush(s->in);
  out[0] = '\0';
  while (fgets(l, sizeof l, s->out)) {
    /* Output without a final newline (cat /dev/pid) runs into the mark. */
    size_t ll = strlen(l), ml = strlen("--done--\n");
    bool done = ll >= ml && strcmp(l + ll - ml, "--done--\n") == 0;
    if (done)
      l[ll - ml] = '\0';
    n += (size_t)snprintf(out + n, sizeof out - n, "%s", l);
    if (done)
      return out;
    if (n >= sizeof out)
      n = sizeof out - 1;
  }
  cr_assert_fail("the shell ended before '%s' did: %s", line, out);
  return out;
}

int sp_sh_end(struct sp_sh *s) {
  int st;
  fclose(s->in);
  fclose(s->out);
  cr_assert_eq(waitpid(s->pid, &st, 0), s->pid);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
