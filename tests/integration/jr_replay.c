/* A process that takes another's replay journal and replays it, in its
 * own context, against its kernel (test_journal_replay.c): what a process
 * does at a kernel update by replay, here into a fresh process of the
 * same kernel so that the two states can be compared.
 *
 *   jr_replay JOURNAL OUT
 *
 * JOURNAL holds a struct uk_journal as written by the test; OUT gets
 * "replay R entries E calls C" and then jr_describe's lines, and, after
 * them, what a byte written into the replayed pipe reads back as ("pipe
 * ok" when the two ends are joined).  Exit 0, or 1 when a file fails. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jr_state.h"
#include "uksim/journal.h"
#include "uksim/ns.h"

static char desc[16384];

/* The pipe's ends, found by name among the descriptors. */
static void pipe_check(FILE *out) {
  int ends[2], n = 0;
  char path[UK_PATH_MAX + 1], c = 0;
  for (int fd = 0; fd < UK_FD_MAX && n < 2; fd++)
    if (ns_fd2path(fd, path, sizeof path) == 0 && strncmp(path, "#|", 2) == 0)
      ends[n++] = fd;
  if (n == 2 && ns_write(ends[1], "Z", 1) == 1 && ns_read(ends[0], &c, 1) == 1)
    fprintf(out, "pipe %s\n", c == 'Z' ? "ok" : "wrong");
  else
    fprintf(out, "pipe missing\n");
}

int main(int argc, char **argv) {
  if (argc != 3)
    return 2;
  FILE *in = fopen(argv[1], "rb");
  if (in == NULL ||
      fread(uk_journal_self(), sizeof(struct uk_journal), 1, in) != 1)
    return 1;
  fclose(in);
  struct uk_journal_stats st;
  int r = uk_journal_replay_self(&st);
  FILE *out = fopen(argv[2], "w");
  if (out == NULL)
    return 1;
  fprintf(out, "replay %d entries %u calls %u failed %d\n", r, st.entries,
          st.calls, st.failed);
  jr_describe(desc, sizeof desc);
  fputs(desc, out);
  pipe_check(out);
  fclose(out);
  return 0;
}
