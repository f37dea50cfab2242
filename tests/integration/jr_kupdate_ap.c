/* An application for the replay update's test (test_kupdate_replay.c):
 * it shapes its kernel state, says so, sleeps through a kernel update in
 * kernel calls, and checks that its state is still there.
 *
 *   jr_kupdate_ap OUT [overflow]
 *
 * State: #c bound on /mnt, /dev/zero open at offset 100 on descriptor 5
 * (0 and 1 taken then closed: a replay must put it back on 5), a pipe
 * with "hello" unread (carried by the kernel, not by the replay).
 * OUT (a host file) gets "built" once the state is there, then "ok" or
 * "fail: WHAT".  Exit 0 when ok.  With "overflow", it then binds and
 * unmounts until its journal overflows (uksim/journal.h): a replay must
 * refuse it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uksim/ap.h"
#include "uksim/journal.h"
#include "uksim/ns.h"

static FILE *out;

static int fail(const char *what) {
  fprintf(out, "fail: %s\n", what);
  fclose(out);
  return 1;
}

/* Descriptor 5 on /dev/zero at 100, a pipe with "hello" unread, #c on
 * /mnt; *p the pipe.  0 or -1. */
static int shape(int p[2]) {
  int a = ns_open("/dev/null", NS_OREAD), b = ns_open("/dev/null", NS_OREAD);
  for (int fd = 2; fd < 5; fd++)
    if (ns_open("/dev/null", NS_OREAD) != fd)
      return -1;
  if (ns_open("/dev/zero", NS_OREAD) != 5 || ns_seek(5, 100, SEEK_SET) != 100)
    return -1;
  for (int fd = 2; fd < 5; fd++)
    ns_close(fd);
  if (a < 0 || b < 0 || ns_close(a) < 0 || ns_close(b) < 0)
    return -1;
  if (ns_pipe(p) < 0 || ns_write(p[1], "hello", 5) != 5)
    return -1;
  return ns_bind("#c", "/mnt", NS_MREPL);
}

static const char *check(const int p[2]) {
  char path[UK_PATH_MAX + 1], buf[8] = {0};
  ns_dir d;
  if (ns_fd2path(5, path, sizeof path) < 0 || strcmp(path, "/dev/zero") != 0)
    return "descriptor 5 is not /dev/zero";
  if (ns_seek(5, 0, SEEK_CUR) != 100)
    return "/dev/zero is not at offset 100";
  if (ns_stat("/mnt/cons", &d) < 0)
    return "#c is not bound on /mnt";
  /* A pipe end's length is what it has to read: looked at first, as a
   * read of an empty end would wait for ever (this process holds the
   * other end). */
  if (ns_fstat(p[0], &d) < 0 || d.length != 5)
    return "the pipe lost its unread bytes";
  if (ns_read(p[0], buf, 5) != 5 || strcmp(buf, "hello") != 0)
    return "the pipe's unread bytes changed";
  if (ns_write(p[1], "x", 1) != 1 || ns_read(p[0], buf, 1) != 1 ||
      buf[0] != 'x')
    return "the pipe's ends are not joined";
  return NULL;
}

int main(int argc, char **argv) {
  int p[2];
  if (argc < 2 || argc > 3 || (out = fopen(argv[1], "w")) == NULL)
    return 2;
  setvbuf(out, NULL, _IOLBF, 0);
  if (shape(p) < 0)
    return fail("its state could not be made");
  while (argc == 3 && !uk_journal_self()->overflowed)
    if (ns_bind("#c", "/tmp", NS_MREPL) < 0 || ns_unmount("#c", "/tmp") < 0)
      return fail("bind and unmount");
  fprintf(out, "built %u entries\n", uk_journal_self()->n);
  for (int i = 0; i < 40; i++) /* 4 s in kernel calls: the update comes */
    if (ap_sleep(100 * 1000 * 1000) < 0)
      return fail("a sleep failed");
  const char *why = check(p);
  if (why)
    return fail(why);
  fprintf(out, "ok\n");
  fclose(out);
  return 0;
}
