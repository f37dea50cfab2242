/* `uksim mount`: a process's namespace at a host directory through FUSE,
 * driven by real coreutils in a real mount. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "sh_proc.h"
#include "uksim_paths.h"

#define UKSIM UKSIM_EXE_DEFAULT

static const char root[] = "bin\ndev\nenv\nfd\nmnt\nn\nnet\nproc\nsrv\ntmp\n";

/* FUSE needs /dev/fuse and fusermount3 (Debian's fuse3). */
static void need_fuse(void) {
  int fd = open("/dev/fuse", O_RDWR);
  if (fd < 0)
    cr_skip_test("/dev/fuse cannot be opened: no FUSE here");
  close(fd);
  if (system("command -v fusermount3 >/dev/null") != 0)
    cr_skip_test("fusermount3 is not installed (Debian package fuse3)");
}

static char *new_dir(char *buf) {
  strcpy(buf, "/tmp/uksim-fuse-XXXXXX");
  cr_assert_not_null(mkdtemp(buf));
  return buf;
}

static bool mounted(const char *dir) {
  FILE *f = fopen("/proc/self/mounts", "r");
  char l[1024];
  bool found = false;
  cr_assert_not_null(f);
  while (!found && fgets(l, sizeof l, f)) {
    char *p = strchr(l, ' ');
    found =
        p && strncmp(p + 1, dir, strlen(dir)) == 0 && p[1 + strlen(dir)] == ' ';
  }
  fclose(f);
  return found;
}

/* Waits up to 10 s for dir to be unmounted. */
static bool gone(const char *dir) {
  for (int i = 0; i < 1000 && mounted(dir); i++)
    usleep(10000);
  return !mounted(dir);
}

static void mount_view(const char *machine, const char *proc, const char *dir) {
  int st;
  const char *out =
      sp_run(&st, UKSIM " mount --name %s %s %s", machine, proc, dir);
  cr_assert_eq(st, 0, "uksim mount: %s", out);
  cr_assert(mounted(dir), "%s is not mounted", dir);
}

static void unmount_view(const char *dir) {
  int st;
  const char *out = sp_run(&st, "fusermount3 -u %s", dir);
  cr_expect_eq(st, 0, "%s", out);
  cr_expect(gone(dir), "%s stayed mounted", dir);
  rmdir(dir);
}

/* A machine, a shell "keep" that holds a namespace, and the view of it at
 * a fresh directory: what most tests here start from. */
struct view {
  mach_client m;
  char name[64], dir[64];
  struct sp_sh keep;
};

/* A server posts itself in /srv after it registers (servers/ramfs.c):
 * waits up to 10 s for /srv/NAME. */
static void wait_posted(struct sp_sh *sh, const char *name) {
  char line[128], want[64];
  snprintf(line, sizeof line, "ls /srv");
  snprintf(want, sizeof want, "%s\n", name);
  for (int i = 0; i < 1000; i++) {
    if (strstr(sp_sh_do(sh, line), want))
      return;
    usleep(10000);
  }
  cr_assert_fail("%s did not post itself in /srv", name);
}

/* Boots (with server, if any), starts keep, runs setup in it (NULL:
 * nothing) and mounts the view.  0, or -1 when the server would not
 * start (nothing else done). */
static int view_up(struct view *v, const char *server, const char *setup) {
  need_fuse();
  if (sp_boot(&v->m, v->name, server) < 0)
    return -1;
  sp_sh_start(&v->keep, v->name, "keep", NULL);
  if (server)
    wait_posted(&v->keep, server);
  if (setup) {
    const char *out = sp_sh_do(&v->keep, setup);
    cr_assert_str_eq(out, "", "%s: %s", setup, out);
  }
  mount_view(v->name, "keep", new_dir(v->dir));
  return 0;
}

/* The view of a namespace with ramfs (posted as /srv/ramfs) on /tmp: a
 * writable tree. */
static void ramfs_up(struct view *v) {
  cr_assert_eq(view_up(v, "ramfs", "mount -c /srv/ramfs /tmp"), 0, "ramfs: %s",
               v->m.error);
}

static void view_down(struct view *v) {
  unmount_view(v->dir);
  cr_expect_eq(sp_sh_end(&v->keep), 0);
  h_halt_clean(&v->m);
}

Test(mount, views_of_two_processes_differ, .timeout = 120) {
  mach_client m;
  char name[64], a[64], b[64];
  int st;
  struct sp_sh left, right;
  need_fuse();
  sp_boot(&m, name, NULL);
  sp_sh_start(&left, name, "left", NULL);
  sp_sh_start(&right, name, "right", NULL);
  cr_expect_str_eq(sp_sh_do(&left, "bind / /tmp"), "");
  mount_view(name, "left", new_dir(a));
  mount_view(name, "right", new_dir(b));
  const char *out = sp_run(&st, "ls %s/tmp", a);
  cr_expect_str_eq(out, root, "left's /tmp: %s", out);
  out = sp_run(&st, "ls %s/tmp", b);
  cr_expect_str_eq(out, "", "right's /tmp: %s", out);
  /* The view shares the namespace: a later bind shows at once (after the
   * kernel's entry timeout). */
  cr_expect_str_eq(sp_sh_do(&right, "bind /dev /n"), "");
  sleep(2);
  out = sp_run(&st, "ls -d %s/n %s/dev && stat -c '%%F %%s' %s/n", b, b, b);
  cr_expect_eq(st, 0, "%s", out);
  unmount_view(a);
  unmount_view(b);
  cr_expect_eq(sp_sh_end(&left), 0);
  cr_expect_eq(sp_sh_end(&right), 0);
  h_halt_clean(&m);
}

Test(mount, unsupported_operations_fail_with_their_errno, .timeout = 120) {
  struct view v;
  int st;
  const char *d = v.dir;
  view_up(&v, NULL, NULL);
  /* #/ is read-only. */
  const char *out = sp_run(&st, "mkdir %s/x", d);
  cr_expect_neq(st, 0);
  cr_expect(strstr(out, "Operation not permitted"), "%s", out);
  out = sp_run(&st, "ln -s /etc %s/tmp/l", d);
  cr_expect(strstr(out, "Operation not permitted"), "%s", out);
  out = sp_run(&st, "ls %s/nothing", d);
  cr_expect(strstr(out, "No such file or directory"), "%s", out);
  view_down(&v);
}

Test(mount, fusermount_ends_the_view_process, .timeout = 120) {
  struct view v;
  int st;
  view_up(&v, NULL, NULL);
  const char *out = sp_run(&st, UKSIM " ps --name %s", v.name);
  cr_expect(strstr(out, " fuse "), "%s", out);
  unmount_view(v.dir);
  for (int i = 0; i < 500; i++) {
    out = sp_run(&st, UKSIM " ps --name %s", v.name);
    if (!strstr(out, " fuse "))
      break;
    usleep(10000);
  }
  cr_expect_null(strstr(out, " fuse "), "the view's process stayed: %s", out);
  cr_expect_eq(sp_sh_end(&v.keep), 0);
  h_halt_clean(&v.m);
}

Test(mount, halting_the_machine_leaves_nothing_mounted, .timeout = 120) {
  struct view v;
  uint32_t live;
  view_up(&v, NULL, NULL);
  cr_assert_eq(mach_halt(&v.m, &live), 0, "%s", v.m.error);
  mach_close(&v.m);
  cr_expect(gone(v.dir), "%s stayed mounted after the halt", v.dir);
  rmdir(v.dir);
  sp_sh_end(&v.keep);
}

/* #e through the view: create, write, append, read, list, remove; #e
 * has no wstat, so a rename and a truncate are the servant's EPERM. */
Test(mount, files_of_a_servant_through_the_view, .timeout = 120) {
  struct view v;
  int st;
  const char *d = v.dir;
  view_up(&v, NULL, "bind -c '#e' /env");
  const char *out = sp_run(&st,
                           "set -e; cd %s/env; echo hello > x; echo more >> x; "
                           "cat x; stat -c '%%s %%F' x; ls; rm x; ls",
                           d);
  cr_expect_eq(st, 0, "%s", out);
  cr_expect_str_eq(out, "hello\nmore\n11 regular file\nx\n");
  out = sp_run(&st, "cd %s/env; echo v > y; mv y z; truncate -s 0 y", d);
  cr_expect(strstr(out, "mv: cannot move 'y' to 'z': Operation not permitted"),
            "%s", out);
  cr_expect(strstr(out, "truncate: failed to truncate 'y' at 0 bytes: "
                        "Operation not permitted"),
            "%s", out);
  cr_expect_str_eq(sp_sh_do(&v.keep, "cat /env/y"), "v\n");
  view_down(&v);
}

/* ramfs (posted as /srv/ramfs) mounted on /tmp: a writable tree. */
Test(mount, coreutils_work_in_the_view, .timeout = 300) {
  struct view v;
  int st;
  ramfs_up(&v);
  const char *out =
      sp_run(&st,
             "set -e; cd %s/tmp; mkdir -p a/b; echo hello > a/b/f; "
             "cat a/b/f; echo more >> a/b/f; touch a/t; ls -l a/b | wc -l; "
             "cp -r a c; diff -r a c; find . | sort; du -s . >/dev/null; "
             "mv c/b/f c/b/g; cat c/b/g; mv c/t a/u; stat -c '%%s %%F' "
             "a/b/f a/u; head -c 100000 /dev/urandom > big; cp big c/big; "
             "cmp big c/big; rm -r c; ls",
             v.dir);
  cr_expect_eq(st, 0, "%s", out);
  cr_expect(strstr(out, "hello\n2\n"), "%s", out);
  cr_expect(strstr(out, ".\n./a\n./a/b\n./a/b/f\n./a/t\n./c\n./c/b\n"
                        "./c/b/f\n./c/t\n"),
            "%s", out);
  cr_expect(strstr(out, "hello\nmore\n11 regular file\n0 regular empty file\n"
                        "a\nbig\n"),
            "%s", out);
  /* What the namespace holds is what the shell sees. */
  cr_expect_str_eq(sp_sh_do(&v.keep, "cat /tmp/a/b/f; ls /tmp/a"),
                   "hello\nmore\nb\nt\nu\n");
  view_down(&v);
}

/* Renames through the view: a directory renamed keeps what FUSE cached
 * under it reachable by its new name (the inode table renames every path
 * below it), a rename onto an existing file replaces it, a rename across
 * directories is EXDEV, which mv turns into a copy. */
Test(mount, renames_keep_the_view_consistent, .timeout = 300) {
  struct view v;
  int st;
  ramfs_up(&v);
  const char *out =
      sp_run(&st,
             "set -e; cd %s/tmp; mkdir -p x/sub; echo 1 > x/sub/y; "
             "cat x/sub/y; mv x z; cat z/sub/y; test ! -e x; "
             "echo a > p; echo b > q; mv p q; cat q; test ! -e p; "
             "mv q z/sub/q; cat z/sub/q; ls z/sub; "
             "python3 -c 'import os; os.rename(\"z/sub/q\", \"r\")' "
             "2>&1 | tail -1",
             v.dir);
  cr_expect_eq(st, 0, "%s", out);
  cr_expect_str_eq(out, "1\n1\na\na\nq\ny\n"
                        "OSError: [Errno 18] Invalid cross-device link: "
                        "'z/sub/q' -> 'r'\n");
  cr_expect_str_eq(sp_sh_do(&v.keep, "ls /tmp; cat /tmp/z/sub/y"), "z\n1\n");
  view_down(&v);
}

/* A 9P server mounted in the namespace dies under the view: its calls
 * fail with ECONNRESET, as the kernel answers them, and the view goes on
 * serving the rest of the namespace (it ends only when its own kernel
 * connection ends).  The server is `uksim 9p serve`, a separate process
 * the kernel's mount driver dials. */
Test(mount, a_dead_mounted_server_fails_only_its_own_files, .timeout = 120) {
  struct view v;
  int st;
  char dir[64], setup[128];
  int port = h_free_ports(12000, 8000, 1); /* below the NICs' ranges */
  cr_assert_neq(port, 0, "no free port in 12000-19999");
  new_dir(dir);
  const char *out =
      sp_run(&st,
             "echo hi > %s/f; " UKSIM " 9p serve tcp!127.0.0.1!%d --dir %s "
             ">/dev/null 2>&1 & echo $!",
             dir, port, dir);
  cr_assert_eq(st, 0, "%s", out);
  pid_t server = (pid_t)atoi(out);
  cr_assert_gt(server, 0, "%s", out);
  usleep(300000); /* until it listens */
  snprintf(setup, sizeof setup, "mount -c 'tcp!127.0.0.1!%d' /n", port);
  if (view_up(&v, NULL, setup) < 0)
    cr_assert_fail("boot: %s", v.m.error);
  out = sp_run(&st, "cat %s/n/f", v.dir);
  cr_expect_str_eq(out, "hi\n", "through the view: %s", out);
  kill(server, SIGKILL); /* not our child (the shell's): init reaps it */
  for (int i = 0; i < 200 && kill(server, 0) == 0; i++)
    usleep(10000);
  out = sp_run(&st, "cat %s/n/f", v.dir);
  cr_expect_neq(st, 0, "a dead server's file read: %s", out);
  out = sp_run(&st, "ls %s/dev >/dev/null && echo served", v.dir);
  cr_expect_str_eq(out, "served\n", "the rest of the namespace: %s", out);
  cr_expect(mounted(v.dir), "the view ended with the mounted server");
  out = sp_run(&st, UKSIM " ps --name %s", v.name);
  cr_expect(strstr(out, " fuse "), "the view's process is gone: %s", out);
  view_down(&v);
  sp_run(&st, "rm -rf %s", dir);
}
