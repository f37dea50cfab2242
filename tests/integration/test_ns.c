/* Namespace calls end to end (seed 002 §5.1): this test process attaches
 * to a real machine as a uksim process (the Attach control request, as
 * `uksim sh` does) and makes libuksim's ns_* calls through the kernel. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "uksim/ns.h"

static mach_client m;

static void attach(const char *name) {
  int fd, proc;
  h_boot(&m, NULL);
  cr_assert_eq(mach_attach(&m, name, -1, 0, &proc, &fd), 0, "attach: %s",
               m.error);
  char v[16];
  snprintf(v, sizeof v, "%d", fd);
  setenv("UKSIM_FD", v, 1);
}

/* The names of directory path, space separated, in the order read. */
static void list(const char *path, char *out, size_t len) {
  ns_dir d[8];
  long n;
  int fd = ns_open(path, NS_OREAD);
  cr_assert_geq(fd, 0, "open %s: %s", path, strerror(-fd));
  out[0] = '\0';
  while ((n = ns_dirread(fd, d, 8)) > 0)
    for (long i = 0; i < n; i++) {
      strncat(out, d[i].name, len - strlen(out) - 2);
      strcat(out, " ");
    }
  cr_assert_eq(n, 0, "dirread %s: %s", path, strerror((int)-n));
  cr_assert_eq(ns_close(fd), 0);
}

Test(ns, root_lists_the_plan9_tree, .timeout = 60) {
  char names[512];
  attach("t-root");
  list("/", names, sizeof names);
  cr_assert_str_eq(names, "bin dev env fd mnt n net proc srv tmp ");
  ns_dir d;
  cr_assert_eq(ns_stat("/dev", &d), 0);
  cr_assert_str_eq(d.name, "dev");
  cr_assert(d.mode & NS_DMDIR);
  h_halt_clean(&m);
}

Test(ns, chdir_and_fd2path_give_cleaned_names, .timeout = 60) {
  char buf[300];
  attach("t-cwd");
  cr_assert_eq(ns_chdir("/n/../mnt"), 0);
  int fd = ns_open(".", NS_OREAD);
  cr_assert_geq(fd, 0);
  cr_assert_eq(ns_fd2path(fd, buf, sizeof buf), 0);
  cr_assert_str_eq(buf, "/mnt");
  int fd2 = ns_dup(fd, -1);
  cr_assert_eq(fd2, fd + 1);
  cr_assert_eq(ns_close(fd), 0);
  cr_assert_eq(ns_close(fd2), 0);
  cr_assert_eq(ns_close(fd2), -EBADF);
  h_halt_clean(&m);
}

Test(ns, bind_and_unmount_change_what_a_path_names, .timeout = 60) {
  char names[512];
  attach("t-bind");
  cr_assert_eq(ns_bind("/", "/tmp", NS_MREPL), 0);
  list("/tmp", names, sizeof names);
  cr_assert_str_eq(names, "bin dev env fd mnt n net proc srv tmp ");
  cr_assert_eq(ns_unmount(NULL, "/tmp"), 0);
  list("/tmp", names, sizeof names);
  cr_assert_str_eq(names, "");
  cr_assert_eq(ns_unmount(NULL, "/tmp"), -EINVAL); /* not a mount point */
  h_halt_clean(&m);
}

Test(ns, bad_paths_get_clear_errors, .timeout = 60) {
  char longp[400], one[1];
  attach("t-bad");
  memset(longp, 'a', sizeof longp - 1);
  longp[0] = '/';
  longp[sizeof longp - 1] = '\0';
  cr_assert_eq(ns_open("/nope", NS_OREAD), -ENOENT);
  cr_assert_eq(ns_open("", NS_OREAD), -EINVAL);
  cr_assert_eq(ns_open(longp, NS_OREAD), -ENAMETOOLONG);
  cr_assert_eq(ns_bind("/nope", "/n", NS_MREPL), -ENOENT);
  cr_assert_eq(ns_open("/dev", NS_OWRITE), -EISDIR);
  cr_assert_eq(ns_create("/n/x", NS_OWRITE, 0644), -EPERM);
  cr_assert_eq(ns_read(7, one, 1), -EBADF);
  h_halt_clean(&m);
}
