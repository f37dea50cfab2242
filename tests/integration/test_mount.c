/* `uksim mount`: a process's namespace at a host directory through FUSE,
 * driven by real coreutils in a real mount. */
#include <criterion/criterion.h>
#include <fcntl.h>
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
  mach_client m;
  char name[64], d[64];
  int st;
  struct sp_sh keep;
  need_fuse();
  sp_boot(&m, name, NULL);
  sp_sh_start(&keep, name, "keep", NULL);
  mount_view(name, "keep", new_dir(d));
  /* #/ is read-only. */
  const char *out = sp_run(&st, "mkdir %s/x", d);
  cr_expect_neq(st, 0);
  cr_expect(strstr(out, "Operation not permitted"), "%s", out);
  out = sp_run(&st, "ln -s /etc %s/tmp/l", d);
  cr_expect(strstr(out, "Operation not permitted"), "%s", out);
  out = sp_run(&st, "ls %s/nothing", d);
  cr_expect(strstr(out, "No such file or directory"), "%s", out);
  unmount_view(d);
  cr_expect_eq(sp_sh_end(&keep), 0);
  h_halt_clean(&m);
}

Test(mount, fusermount_ends_the_view_process, .timeout = 120) {
  mach_client m;
  char name[64], d[64];
  int st;
  struct sp_sh keep;
  need_fuse();
  sp_boot(&m, name, NULL);
  sp_sh_start(&keep, name, "keep", NULL);
  mount_view(name, "keep", new_dir(d));
  const char *out = sp_run(&st, UKSIM " ps --name %s", name);
  cr_expect(strstr(out, " fuse "), "%s", out);
  unmount_view(d);
  for (int i = 0; i < 500; i++) {
    out = sp_run(&st, UKSIM " ps --name %s", name);
    if (!strstr(out, " fuse "))
      break;
    usleep(10000);
  }
  cr_expect_null(strstr(out, " fuse "), "the view's process stayed: %s", out);
  cr_expect_eq(sp_sh_end(&keep), 0);
  h_halt_clean(&m);
}

Test(mount, halting_the_machine_leaves_nothing_mounted, .timeout = 120) {
  mach_client m;
  char name[64], d[64];
  struct sp_sh keep;
  need_fuse();
  sp_boot(&m, name, NULL);
  sp_sh_start(&keep, name, "keep", NULL);
  mount_view(name, "keep", new_dir(d));
  uint32_t live;
  cr_assert_eq(mach_halt(&m, &live), 0, "%s", m.error);
  mach_close(&m);
  cr_expect(gone(d), "%s stayed mounted after the halt", d);
  rmdir(d);
  sp_sh_end(&keep);
}

/* #e through the view: create, write, append, read, list, remove; #e
 * has no wstat, so a rename and a truncate are the servant's EPERM. */
Test(mount, files_of_a_servant_through_the_view, .timeout = 120) {
  mach_client m;
  char name[64], d[64];
  int st;
  struct sp_sh keep;
  need_fuse();
  sp_boot(&m, name, NULL);
  sp_sh_start(&keep, name, "keep", NULL);
  cr_assert_str_eq(sp_sh_do(&keep, "bind -c '#e' /env"), "");
  mount_view(name, "keep", new_dir(d));
  const char *out = sp_run(&st,
                           "set -e; cd %s/env; echo hello > x; echo more >> x; "
                           "cat x; stat -c '%%s %%F' x; ls; rm x; ls",
                           d);
  cr_expect_eq(st, 0, "%s", out);
  cr_expect_str_eq(out, "hello\nmore\n11 regular file\nx\n");
  out = sp_run(&st, "cd %s/env; echo v > y; mv y z; truncate -s 0 y", d);
  cr_expect(strstr(out, "mv: cannot move 'y' to 'z': Operation not permitted"),
            "%s", out);
  cr_expect(strstr(out, "Operation not permitted"), "%s", out);
  cr_expect_str_eq(sp_sh_do(&keep, "cat /env/y"), "v\n");
  unmount_view(d);
  cr_expect_eq(sp_sh_end(&keep), 0);
  h_halt_clean(&m);
}

/* Needs ramfs and /srv (servers/, vfs/): a writable tree to copy into. */
Test(mount, coreutils_work_in_the_view, .timeout = 300) {
  mach_client m;
  char name[64], d[64];
  int st;
  struct sp_sh keep;
  need_fuse();
  if (sp_boot(&m, name, "ramfs") < 0) {
    h_halt_clean(&m);
    cr_skip_test("no ramfs server yet: %s", m.error);
  }
  sp_sh_start(&keep, name, "keep", NULL);
  /* A server posts itself in /srv by its service's name (vfs/devsrv.c);
   * the shell does it for ramfs if it has not, by #s: the fresh namespace
   * binds #s on /srv without -c, so /srv refuses creation. */
  const char *out = sp_sh_do(&keep, "ls /srv");
  if (strstr(out, "ramfs\n") == NULL)
    cr_expect_str_eq(sp_sh_do(&keep, "echo ramfs > '#s/ramfs'"), "");
  out = sp_sh_do(&keep, "mount -c /srv/ramfs /tmp");
  if (out[0] != '\0') {
    sp_sh_end(&keep);
    h_halt_clean(&m);
    cr_skip_test("mount /srv/ramfs failed (not there yet): %s", out);
  }
  out = sp_sh_do(&keep, "echo probe > /tmp/p; cat /tmp/p; ls /tmp; rm /tmp/p");
  if (strcmp(out, "probe\np\n") != 0) {
    sp_sh_end(&keep);
    h_halt_clean(&m);
    cr_skip_test("files of a mounted server cannot be used yet: %s", out);
  }
  mount_view(name, "keep", new_dir(d));
  out = sp_run(&st,
               "set -e; cd %s/tmp; mkdir -p a/b; echo hello > a/b/f; "
               "cat a/b/f; echo more >> a/b/f; touch a/t; ls -l a/b | wc -l; "
               "cp -r a c; diff -r a c; find . | sort; du -s . >/dev/null; "
               "mv c/b/f c/b/g; cat c/b/g; mv c/t a/u; stat -c '%%s %%F' "
               "a/b/f a/u; head -c 100000 /dev/urandom > big; cp big c/big; "
               "cmp big c/big; rm -r c; ls",
               d);
  cr_expect_eq(st, 0, "%s", out);
  cr_expect(strstr(out, "hello\n2\n"), "%s", out);
  cr_expect(strstr(out, ".\n./a\n./a/b\n./a/b/f\n./a/t\n./c\n./c/b\n"
                        "./c/b/f\n./c/t\n"),
            "%s", out);
  cr_expect(strstr(out, "hello\nmore\n11 regular file\n0 regular empty file\n"
                        "a\nbig\n"),
            "%s", out);
  /* What the namespace holds is what the shell sees. */
  cr_expect_str_eq(sp_sh_do(&keep, "cat /tmp/a/b/f; ls /tmp/a"),
                   "hello\nmore\nb\nt\nu\n");
  unmount_view(d);
  cr_expect_eq(sp_sh_end(&keep), 0);
  h_halt_clean(&m);
}
