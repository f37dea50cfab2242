/* uksim new-server NAME [--dir DIR]: writes a server to start from.
 *
 * The skeleton is cli/skeleton/ (embedded at build time by embed.py): a
 * server with a request loop and state save/restore hooks (server.c), a
 * scenario that replaces it while a client greets it (server.scn) and a
 * Makefile that builds it with pkg-config and runs the scenario.  Every
 * "@NAME@" in a file's name or text becomes NAME.  What it writes builds
 * and passes as is (tests/integration/new_server.sh checks that against an
 * install).
 *
 * NAME must not be a program uksim already runs (kpath.h's search): the
 * new server would shadow it, or be shadowed.
 *
 * Nothing is overwritten: DIR (default ./NAME) must not exist or be empty,
 * and each file is created exclusively.  A failure part way leaves what was
 * written, and says which file failed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "kpath.h"

struct skel_file {
  const char *name; /* with @NAME@ */
  const char *text;
};

#include "skeleton_files.h"

#define PLACEHOLDER "@NAME@"

static void usage(FILE *f) {
  fprintf(f,
          "usage: uksim new-server NAME [--dir DIR]\n\n"
          "Writes a uksim server to start from into DIR (default ./NAME):\n"
          "  NAME.c     a request loop (ops greet and count) with state\n"
          "             save/restore hooks: the count survives replacement\n"
          "  NAME.scn   a scenario replacing it while a client greets it\n"
          "  Makefile   make (cc with pkg-config uksim), make check (the "
          "scenario)\n\n"
          "NAME is a C identifier of at most %d bytes; DIR must not exist "
          "or be empty.\n",
          NEW_NAME_MAX);
}

/* Whether name is a C identifier of at most NEW_NAME_MAX bytes. */
static bool good_name(const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n > NEW_NAME_MAX ||
      !(name[0] == '_' || (name[0] >= 'a' && name[0] <= 'z') ||
        (name[0] >= 'A' && name[0] <= 'Z')))
    return false;
  return strspn(name, "abcdefghijklmnopqrstuvwxyz"
                      "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == n;
}

/* Creates dir, or accepts it when it is an empty directory.  0, or -1
 * after saying why. */
static int make_dir(const char *dir) {
  if (mkdir(dir, 0777) == 0)
    return 0;
  int err = errno;
  DIR *d = err == EEXIST ? opendir(dir) : NULL;
  if (d == NULL) {
    fprintf(stderr, "uksim new-server: %s: %s\n", dir,
            strerror(err == EEXIST ? errno : err));
    return -1;
  }
  struct dirent *e;
  bool empty = true;
  while (empty && (e = readdir(d)) != NULL)
    empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
  closedir(d);
  if (!empty)
    fprintf(stderr, "uksim new-server: %s exists and is not empty\n", dir);
  return empty ? 0 : -1;
}

/* Writes text to f with every PLACEHOLDER replaced by name. */
static void substitute(FILE *f, const char *text, const char *name) {
  const char *at;
  while ((at = strstr(text, PLACEHOLDER)) != NULL) {
    fwrite(text, 1, (size_t)(at - text), f);
    fputs(name, f);
    text = at + strlen(PLACEHOLDER);
  }
  fputs(text, f);
}

/* Writes one skeleton file into dir, never over an existing file.  0, or
 * -1 after saying why. */
static int write_file(const char *dir, const struct skel_file *sf,
                      const char *name, char *path, size_t len) {
  int n = snprintf(path, len, "%s/", dir);
  FILE *f = fmemopen(path + n, len - (size_t)n, "w");
  if (f == NULL)
    return -1;
  substitute(f, sf->name, name);
  fclose(f);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
    fprintf(stderr, "uksim new-server: %s: %s\n", path, strerror(errno));
    if (fd >= 0)
      close(fd);
    return -1;
  }
  substitute(f, sf->text, name);
  if (fclose(f) != 0) {
    fprintf(stderr, "uksim new-server: %s: %s\n", path, strerror(errno));
    return -1;
  }
  return 0;
}

/* NAME and --dir from argv: 0, 1 (--help shown) or 2 (after usage). */
static int parse(int argc, char **argv, const char **name, const char **dir) {
  static const struct option opts[] = {{"dir", required_argument, NULL, 'd'},
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (c == 'd')
      *dir = optarg;
    else if (c == 'h') {
      usage(stdout);
      return 1;
    } else {
      usage(stderr);
      return 2;
    }
  }
  if (optind + 1 != argc || ((*name = argv[optind]) && !good_name(*name))) {
    if (optind + 1 == argc)
      fprintf(stderr,
              "uksim new-server: '%s' is not a C identifier of at most %d "
              "bytes\n",
              argv[optind], NEW_NAME_MAX);
    else
      usage(stderr);
    return 2;
  }
  if (*dir == NULL)
    *dir = *name;
  return 0;
}

int cmd_new_server(int argc, char **argv) {
  const char *name = NULL, *dir = NULL;
  char path[4096];
  int r = parse(argc, argv, &name, &dir);
  if (r != 0)
    return r == 1 ? 0 : r;
  if (kern__find_program(name, path, sizeof path) == 0) {
    /* The scenario would run whichever comes first on the path, and treats
     * some names (the 9P servers) as their own family. */
    fprintf(stderr,
            "uksim new-server: uksim already runs a program %s (%s): "
            "choose another name\n",
            name, path);
    return 2;
  }
  if (dir[0] == '\0') {
    fprintf(stderr, "uksim new-server: --dir is empty\n");
    return 2;
  }
  if (make_dir(dir) < 0)
    return 1;
  for (size_t i = 0; i < sizeof skel_files / sizeof skel_files[0]; i++) {
    if (write_file(dir, &skel_files[i], name, path, sizeof path) < 0)
      return 1;
    printf("wrote %s\n", path);
  }
  printf("\nnext:  cd %s && make check\n", dir);
  return 0;
}
