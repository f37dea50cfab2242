/* Unit tests for the program search (sim-kernel/kpath.c): UKSIM_PATH
 * before the build tree, empty and overlong entries skipped, a name with a
 * slash taken as given, each error, and the shipped scenarios.  This binary
 * lives in the build tree, so the build tree is searched; the install
 * beside an installed binary is tests/integration/out_of_tree.sh's to
 * check. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kpath.h"

static char dir[] = "/tmp/uksim-kpath.XXXXXX";
static char out[KERN_PATH_MAX];

/* Writes an empty file dir/name with mode. */
static void touch(const char *name, mode_t mode) {
  char path[KERN_PATH_MAX];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
  cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
  close(fd);
  cr_assert_eq(chmod(path, mode), 0);
}

static void setup(void) {
  cr_assert_not_null(mkdtemp(dir));
  unsetenv("UKSIM_PATH");
}

static void teardown(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  cr_expect_eq(system(cmd), 0);
}

TestSuite(kpath, .init = setup, .fini = teardown, .timeout = 30);

Test(kpath, uksim_path_comes_before_the_build_tree) {
  touch("kvs", 0755);
  setenv("UKSIM_PATH", dir, 1);
  cr_assert_eq(kern__find_program("kvs", out, sizeof out), 0);
  char want[KERN_PATH_MAX];
  snprintf(want, sizeof want, "%s/kvs", dir);
  cr_expect_str_eq(out, want);
}

Test(kpath, the_build_tree_is_searched_from_a_build_binary) {
  const char *root = getenv("UKSIM_BUILD_ROOT");
  cr_assert_not_null(root, "run through meson test");
  cr_assert_eq(kern__find_program("kvs", out, sizeof out), 0);
  char want[KERN_PATH_MAX];
  snprintf(want, sizeof want, "%s/servers/kvs", root);
  cr_expect_str_eq(out, want);
}

Test(kpath, empty_overlong_and_unrunnable_entries_are_skipped) {
  char *path = malloc(3 * KERN_PATH_MAX);
  cr_assert_not_null(path);
  touch("prog", 0644); /* not executable: skipped */
  memset(path, 'x', KERN_PATH_MAX + 10);
  snprintf(path + KERN_PATH_MAX + 10, 2 * KERN_PATH_MAX, "::%s:", dir);
  setenv("UKSIM_PATH", path, 1);
  cr_expect_eq(kern__find_program("prog", out, sizeof out), -ENOENT);
  touch("prog", 0755);
  cr_expect_eq(kern__find_program("prog", out, sizeof out), 0);
  free(path);
}

Test(kpath, a_name_with_a_slash_is_used_as_given) {
  char path[KERN_PATH_MAX];
  touch("exe", 0755);
  touch("plain", 0644);
  snprintf(path, sizeof path, "%s/exe", dir);
  cr_expect_eq(kern__find_program(path, out, sizeof out), 0);
  cr_expect_str_eq(out, path);
  snprintf(path, sizeof path, "%s/plain", dir);
  cr_expect_eq(kern__find_program(path, out, sizeof out), -EACCES);
  cr_expect_eq(kern__find_program(dir, out, sizeof out), -EISDIR);
  snprintf(path, sizeof path, "%s/missing", dir);
  cr_expect_eq(kern__find_program(path, out, sizeof out), -ENOENT);
}

Test(kpath, errors_say_what_went_wrong) {
  cr_expect_eq(kern__find_program("", out, sizeof out), -EINVAL);
  cr_expect_eq(kern__find_program("no-such-program", out, sizeof out), -ENOENT);
  cr_expect_str_eq(kern__program_error(-EINVAL), "empty program name");
  cr_expect(strstr(kern__program_error(-ENOENT), "UKSIM_PATH"));
  cr_expect(strstr(kern__program_error(-EACCES), "not an executable"));
}

Test(kpath, scenarios_come_from_the_source_tree_in_a_build) {
  const char *src = getenv("UKSIM_SOURCE_ROOT");
  cr_assert_not_null(src, "run through meson test");
  char want[KERN_PATH_MAX], real[KERN_PATH_MAX];
  cr_assert_eq(kern__find_scenario("tour.scn", out, sizeof out), 0);
  snprintf(want, sizeof want, "%s/scenarios/tour.scn", src);
  cr_assert_not_null(realpath(want, real));
  cr_expect_str_eq(realpath(out, want), real);
  cr_expect_eq(kern__find_scenario("no-such.scn", out, sizeof out), -ENOENT);
  cr_expect_eq(kern__find_scenario("", out, sizeof out), -EINVAL);
  cr_expect_eq(kern__find_scenario("../tour.scn", out, sizeof out), -EINVAL);
  cr_expect_eq(kern__find_scenario("/etc/passwd", out, sizeof out), -EINVAL);
  cr_expect_eq(kern__find_scenario("bench/free-10k.scn", out, sizeof out), 0);
}
