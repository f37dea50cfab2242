/* The node tests' shared helpers (nodes_util.h). */
#include "nodes_util.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "uksim_paths.h"

void nu_boot(struct node *n, const char *name, int port, const char *keyfile) {
  struct mach_opts o;
  mach_opts_default(&o);
  snprintf(n->name, sizeof n->name, "%s", name);
  snprintf(o.name, sizeof o.name, "%s", n->name);
  n->port = port;
  n->addr[0] = '\0';
  if (port > 0) {
    snprintf(o.node_port, sizeof o.node_port, "%d", n->port);
    snprintf(n->addr, sizeof n->addr, "tcp!127.0.0.1!%d", n->port);
  }
  if (keyfile)
    snprintf(o.node_key, sizeof o.node_key, "%s", keyfile);
  cr_assert_eq(mach_boot(&n->m, &o), 0, "boot %s: %s", n->name, n->m.error);
}

void nu_halt(struct node *n) {
  uint32_t live = 99;
  cr_assert_eq(mach_halt(&n->m, &live), 0, "halt: %s", n->m.error);
  cr_expect_eq(live, 0, "%u ICAs leaked at shutdown", live);
  mach_close(&n->m);
}

void nu_write_file(const char *path, const char *s) {
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs(s, f);
  fclose(f);
}

static void exec_exportfs(struct node *n, const char *keyfile, const char *cmds,
                          const char *at, const char *out) {
  const char *argv[12] = {"uksim", "exportfs", "--name", n->name};
  int k = 4;
  int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  dup2(fd, 1);
  dup2(fd, 2);
  if (keyfile) {
    argv[k++] = "--key";
    argv[k++] = keyfile;
  }
  if (cmds) {
    argv[k++] = "-c";
    argv[k++] = cmds;
  }
  argv[k++] = "-";
  argv[k++] = at;
  execv(UKSIM_EXE_DEFAULT, (char **)argv);
  _exit(127);
}

pid_t nu_exportfs(struct node *n, const char *keyfile, const char *cmds,
                  const char *at, const char *out) {
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0)
    exec_exportfs(n, keyfile, cmds, at, out);
  char buf[512] = "";
  for (int i = 0; i < 3000; i++) { /* 30 s: under valgrind too */
    FILE *f = fopen(out, "r");
    size_t len = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
      fclose(f);
    buf[len] = '\0';
    if (strstr(buf, "serving at"))
      return pid;
    usleep(10000);
  }
  cr_assert_fail("exportfs did not start: %s", buf);
  return -1;
}

const char *nu_sh(int *st, const char *name, const char *cmds) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s sh --name %s -c '%s' 2>&1", UKSIM_EXE_DEFAULT,
           name, cmds);
  const char *out = h_run(cmd, st);
  *st = WIFEXITED(*st) ? WEXITSTATUS(*st) : 128;
  return out;
}

void nu_console(struct node *n, char *buf, size_t len) {
  const struct uk_kdata *kd;
  cr_assert_eq(mach_kdata(&n->m, &kd, NULL), 0, "%s", n->m.error);
  const struct uk_cons *c = &kd->vfs.cons;
  size_t k = 0;
  for (uint32_t i = 0; i < c->out_len && k + 1 < len; i++)
    buf[k++] = c->out[(c->out_head + i) % UK_CONS_OUT];
  buf[k] = '\0';
  mach_kdata_unmap(kd);
}
