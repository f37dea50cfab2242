/* The journal's head, read from outside the kernel (scn_journal.h). */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "scn_journal.h"

int scn_journal_t0(const char *dir, uint64_t *t0_ns) {
  char path[4096];
  struct scn_journal_head h;
  snprintf(path, sizeof path, "%s/" SCN_JOURNAL_NAME, dir);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  ssize_t n = fd < 0 ? -1 : pread(fd, &h, sizeof h, 0);
  if (fd >= 0)
    close(fd);
  if (n != (ssize_t)sizeof h || h.magic != SCN_JOURNAL_MAGIC)
    return -1; /* also while the first kernel writes it */
  *t0_ns = h.t0_ns;
  return 0;
}

void scn_journal_clear(const char *dir) {
  char path[4096];
  snprintf(path, sizeof path, "%s/" SCN_JOURNAL_NAME, dir);
  unlink(path);
}
