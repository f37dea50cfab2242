/* scn-check: parses scenario files and says whether each is good.
 *
 *   scn-check FILE...
 *
 * Prints one line per file: a summary, or the first error as
 * "file:line:col: message".  Exit status 0 when every file parses, 2
 * otherwise (the scenario runner's status for bad input). */
#include <stdio.h>
#include <string.h>

#include "scn.h"

static int check(const char *path) {
  struct scn_err err;
  struct scn *s = scn_load(path, &err);
  if (s == NULL) {
    fprintf(stderr, "%s\n", err.text);
    return 2;
  }
  printf("%s: ok: %zu servers, %zu apps, %zu actions, %zu expectations\n", path,
         s->nservers, s->napps, s->nactions, s->nexpects);
  scn_free(s);
  return 0;
}

int main(int argc, char **argv) {
  int status = 0;
  if (argc < 2 || strcmp(argv[1], "--help") == 0) {
    fprintf(argc < 2 ? stderr : stdout, "usage: scn-check FILE...\n");
    return argc < 2 ? 2 : 0;
  }
  for (int i = 1; i < argc; i++)
    if (check(argv[i]) != 0)
      status = 2;
  return status;
}
