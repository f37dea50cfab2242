/* nscmd: one line of nsh (apps/nsh/nsh.h) as an application process.
 *
 *   nscmd [--out FILE] [--exact] WORD...
 *
 * The words are joined by spaces into one nsh line and run in this
 * process's namespace: `nscmd bind '#c' /mnt`, `nscmd echo hi '>' /n/x`.
 * --exact runs the builtin named by the first word with the others as its
 * arguments, as they are: no quoting, comment, '>' or '|' (what the
 * executor uses, so that any path is one word).
 * The scenario executor (cli/scn_exec.c) runs each namespace action (bind,
 * mount, unmount) and each `expect file` reader as an nscmd sharing the
 * namespace group it acts on; a scenario's app may run one as well.
 *
 * --out FILE: what the line prints goes to FILE, written whole or not at
 * all (FILE.tmp renamed when the line succeeds), and what it says on
 * stderr to FILE.err, which is removed when the line succeeds.  So FILE
 * exists exactly when the line succeeded, and FILE.err says why not.
 *
 * Exit status: the line's (0 success, 1 failure, 2 bad usage of a
 * builtin or of nscmd itself).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nsh.h"
#include "uksim/xalloc.h"

/* argv[from..argc) joined by spaces, a new string. */
static char *join(int argc, char **argv, int from, size_t *n) {
  size_t len = 1;
  for (int i = from; i < argc; i++)
    len += strlen(argv[i]) + 1;
  char *line = xcalloc(len, 1);
  for (int i = from; i < argc; i++) {
    if (i > from)
      strcat(line, " ");
    strcat(line, argv[i]);
  }
  *n = strlen(line);
  return line;
}

/* What to run: a line, or a builtin's words. */
struct cmd {
  const char *line;
  size_t n;
  int argc; /* --exact: argv[0..argc) */
  char **argv;
};

/* Runs c with output to out and errors to err; its status. */
static int run(const struct cmd *c, FILE *out, FILE *err) {
  struct nsh sh;
  nsh_init(&sh, out, err);
  if (c->line != NULL)
    return nsh_run(&sh, c->line, c->n);
  const struct nsh_builtin *b = nsh_builtin_lookup(c->argv[0]);
  if (b == NULL) {
    fprintf(err, "nscmd: %s: no such builtin\n", c->argv[0]);
    return 2;
  }
  struct nsh_io io = {.f = out, .err = err};
  return b->fn(&sh, &io, c->argc, c->argv);
}

/* Runs c with its output to out and its errors to out.err (see the
 * top); returns its status. */
static int run_to_file(const struct cmd *c, const char *out) {
  size_t len = strlen(out) + 5;
  char *tmp = xcalloc(len, 1), *err = xcalloc(len, 1);
  snprintf(tmp, len, "%s.tmp", out);
  snprintf(err, len, "%s.err", out);
  FILE *o = fopen(tmp, "w"), *e = fopen(err, "w");
  int st = 2;
  if (o == NULL || e == NULL) {
    fprintf(stderr, "nscmd: cannot write %s\n", o ? err : tmp);
  } else {
    st = run(c, o, e);
  }
  /* Closed before the exit, so that whoever sees the exit sees the files. */
  if (o != NULL && fclose(o) != 0 && st == 0)
    st = 1;
  if (e != NULL)
    fclose(e);
  if (st == 0 && rename(tmp, out) == 0)
    unlink(err);
  else
    unlink(tmp);
  free(tmp);
  free(err);
  return st;
}

int main(int argc, char **argv) {
  const char *out = NULL;
  bool exact = false;
  int from = 1;
  if (from + 1 < argc && strcmp(argv[from], "--out") == 0) {
    out = argv[from + 1];
    from += 2;
  }
  if (from < argc && strcmp(argv[from], "--exact") == 0) {
    exact = true;
    from++;
  }
  if (from >= argc) {
    fprintf(stderr, "usage: nscmd [--out FILE] [--exact] WORD...\n");
    return 2;
  }
  struct cmd c = {.argc = argc - from, .argv = argv + from};
  char *line = exact ? NULL : join(argc, argv, from, &c.n);
  c.line = line;
  int st = out != NULL ? run_to_file(&c, out) : run(&c, stdout, stderr);
  fflush(stdout);
  free(line);
  return st;
}
