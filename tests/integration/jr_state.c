/* See jr_state.h. */
#include "jr_state.h"

#include <stdio.h>
#include <string.h>

#include "uksim/kdata.h"
#include "uksim/ns.h"

static void say(char *out, size_t len, const char *s) {
  size_t n = strlen(out);
  snprintf(out + n, len - n, "%s\n", s);
}

static void describe_fds(char *out, size_t len) {
  char path[UK_PATH_MAX + 1], line[UK_PATH_MAX + 64];
  for (int fd = 0; fd < UK_FD_MAX; fd++) {
    if (ns_fd2path(fd, path, sizeof path) < 0)
      continue;
    /* A pipe end's offset counts what went through it and means nothing
     * to a reader or writer: the journal keeps none for it. */
    int64_t off = strncmp(path, "#|", 2) == 0 ? 0 : ns_seek(fd, 0, SEEK_CUR);
    snprintf(line, sizeof line, "fd %d %s at %lld", fd, path, (long long)off);
    say(out, len, line);
  }
}

static void describe_dir(char *out, size_t len, const char *dir) {
  char line[1024];
  int n0 = snprintf(line, sizeof line, "ls %s:", dir);
  int fd = ns_open(dir, NS_OREAD);
  if (fd < 0) {
    snprintf(line + n0, sizeof line - (size_t)n0, " error %d", fd);
    say(out, len, line);
    return;
  }
  ns_dir d[8];
  long n;
  while ((n = ns_dirread(fd, d, 8)) > 0)
    for (long i = 0; i < n; i++) {
      size_t at = strlen(line);
      snprintf(line + at, sizeof line - at, " %s:%llu", d[i].name,
               (unsigned long long)d[i].length);
    }
  ns_close(fd);
  say(out, len, line);
}

void jr_describe(char *out, size_t len) {
  out[0] = '\0';
  describe_fds(out, len);
  describe_dir(out, len, "/n");
  describe_dir(out, len, "/mnt");
  describe_dir(out, len, "/dev");
  char path[UK_PATH_MAX + 1], line[UK_PATH_MAX + 16];
  int fd = ns_open(".", NS_OREAD);
  if (fd >= 0 && ns_fd2path(fd, path, sizeof path) == 0) {
    snprintf(line, sizeof line, "cwd %s", path);
    say(out, len, line);
  }
  if (fd >= 0)
    ns_close(fd);
}
