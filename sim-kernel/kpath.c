/* The program search path (kpath.h): UKSIM_PATH, the build tree when the
 * running binary is in it, the install beside the binary, the configured
 * install.  Everything is recomputed per call: spawns are rare, and the
 * environment may change between scenarios of one process (tests). */
#include "kpath.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "uksim_paths.h"

/* 0 when path is an executable regular file, else -errno. */
static int runnable(const char *path) {
  struct stat st;
  if (stat(path, &st) < 0)
    return -errno;
  if (S_ISDIR(st.st_mode))
    return -EISDIR;
  if (!S_ISREG(st.st_mode))
    return -EACCES;
  return access(path, X_OK) == 0 ? 0 : -errno;
}

const char *kern__program_error(int r) {
  switch (r) {
  case -EINVAL:
    return "empty program name";
  case -EISDIR:
    return "the program is a directory";
  case -EACCES:
    return "the program is not an executable file";
  default:
    return "program not found (searched UKSIM_PATH, the build tree and the "
           "install)";
  }
}

/* Looks for prog in each directory of the colon-separated list dirs (empty
 * entries skipped).  A candidate longer than len is skipped, not cut. */
static bool search(const char *dirs, const char *prog, char *out, size_t len) {
  for (const char *d = dirs; *d != '\0';) {
    size_t n = strcspn(d, ":");
    if (n > 0 && n <= INT_MAX &&
        (size_t)snprintf(out, len, "%.*s/%s", (int)n, d, prog) < len &&
        runnable(out) == 0)
      return true;
    d += n + (d[n] == ':');
  }
  return false;
}

/* The directory of the running binary, symbolic links resolved. */
static bool exe_dir(char dir[KERN_PATH_MAX]) {
  ssize_t n = readlink("/proc/self/exe", dir, KERN_PATH_MAX - 1);
  if (n <= 0)
    return false;
  dir[n] = '\0';
  char *slash = strrchr(dir, '/');
  if (slash == NULL)
    return false;
  *slash = '\0';
  return true;
}

/* Whether dir is root or under it (both resolved). */
static bool under(const char *dir, const char *root) {
  char real[PATH_MAX];
  if (realpath(root, real) == NULL)
    return false;
  size_t n = strlen(real);
  return strncmp(dir, real, n) == 0 && (dir[n] == '\0' || dir[n] == '/');
}

/* <exe>/../<sub>/uksim<tail> when the binary sits in <root>/<bindir>;
 * false when it does not, or the directories were configured absolute. */
static bool beside(const char *dir, const char *sub, const char *tail,
                   char out[KERN_PATH_MAX]) {
  const char *bin = UKSIM_BINDIR;
  size_t nd = strlen(dir), nb = strlen(bin);
  if (bin[0] == '/' || sub[0] == '/' || nd <= nb ||
      strcmp(dir + nd - nb, bin) != 0 || dir[nd - nb - 1] != '/')
    return false;
  return (size_t)snprintf(out, KERN_PATH_MAX, "%.*s/%s/uksim%s",
                          (int)(nd - nb - 1), dir, sub, tail) < KERN_PATH_MAX;
}

int kern__find_program(const char *prog, char *out, size_t len) {
  char dir[KERN_PATH_MAX], inst[KERN_PATH_MAX];
  const char *env = getenv("UKSIM_PATH");
  if (prog[0] == '\0')
    return -EINVAL;
  if (strchr(prog, '/')) {
    snprintf(out, len, "%s", prog);
    return runnable(out);
  }
  if (env && search(env, prog, out, len))
    return 0;
  bool have_dir = exe_dir(dir);
  if (have_dir && under(dir, UKSIM_BUILD_ROOT) &&
      search(UKSIM_BUILD_PATH, prog, out, len))
    return 0;
  if (have_dir && beside(dir, UKSIM_LIBEXECDIR, "", inst) &&
      search(inst, prog, out, len))
    return 0;
  return search(UKSIM_INSTALL_DIR, prog, out, len) ? 0 : -ENOENT;
}

/* Whether dir/name is a readable file; out gets the path either way. */
static bool readable(const char *dir, const char *name, char *out, size_t len) {
  return (size_t)snprintf(out, len, "%s/%s", dir, name) < len &&
         access(out, R_OK) == 0;
}

int kern__find_scenario(const char *name, char *out, size_t len) {
  char dir[KERN_PATH_MAX], inst[KERN_PATH_MAX];
  bool have_dir = exe_dir(dir);
  if (name[0] == '\0' || name[0] == '/' || strstr(name, ".."))
    return -EINVAL; /* only what the scenarios directory holds */
  if (have_dir && under(dir, UKSIM_BUILD_ROOT))
    return readable(UKSIM_SCENARIO_DIR, name, out, len) ? 0 : -ENOENT;
  if (have_dir && beside(dir, UKSIM_DATADIR, "/scenarios", inst) &&
      readable(inst, name, out, len))
    return 0;
  return readable(UKSIM_INSTALL_SCENARIOS, name, out, len) ? 0 : -ENOENT;
}
