/* `expect file PROC PATH equals|contains "TEXT"` and `... fails`.
 *
 * When the applications are done, the executor (cli/scn_exec.c) starts a
 * reader in PROC's namespace group: `nscmd --out DIR/read-LINE.out cat
 * PATH`, LINE being the expectation's line.  nscmd writes what cat printed
 * to that file when the read succeeds, and the error it printed to
 * read-LINE.out.err when it fails (never both), so the verdict tells a
 * file that could not be read from a reader that never ran.  Messages
 * name neither file by its path: a verdict goes into the trace, whose
 * hash must not depend on where the run's files were.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "eval_impl.h"
#include "uksim/xalloc.h"

void scn_read_out_name(int line, char *buf, size_t len) {
  scn__fmt(buf, len, "read-%d.out", line);
}

char *scn__slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  struct stat st;
  if (f == NULL)
    return NULL;
  if (fstat(fileno(f), &st) < 0 || st.st_size > SCN_DUMP_MAX) {
    fclose(f);
    return NULL;
  }
  /* One byte more than its size shows a file that grew over the limit. */
  size_t cap = (size_t)st.st_size + 1;
  char *buf = xcalloc(cap + 1, 1);
  *n = fread(buf, 1, cap, f);
  bool bad = ferror(f) || *n > SCN_DUMP_MAX;
  fclose(f);
  if (bad) {
    free(buf);
    return NULL;
  }
  return buf;
}

/* The first line of the reader's error, for the verdict. */
static void first_line(const char *text, char *out, size_t len) {
  scn__fmt(out, len, "%.*s", (int)strcspn(text, "\n"), text);
}

/* Text for a person: at most 60 bytes, control bytes as '?'. */
static void shown(const char *p, size_t n, char *out, size_t len) {
  size_t i, o = 0;
  for (i = 0; i < n && i < 60 && o + 2 < len; i++) {
    unsigned char c = (unsigned char)p[i];
    if (c == '\n') {
      out[o++] = '\\';
      out[o++] = 'n';
    } else {
      out[o++] = c < ' ' || c == 0x7f ? '?' : (char)c;
    }
  }
  out[o] = '\0';
  if (i < n && o + 4 < len)
    strcat(out, "...");
}

static void judge(const struct scn_expect *x, const char *got, size_t n,
                  struct scn_verdict *v) {
  char g[128];
  size_t tn = strlen(x->text);
  shown(got, n, g, sizeof g);
  switch (x->fcheck) {
  case SCN_FILE_EQUALS:
    scn__verdict(v, x, n == tn && memcmp(got, x->text, n) == 0,
                 "%s read %zu byte%s: \"%s\"", x->proc, n, scn__s(n), g);
    return;
  case SCN_FILE_CONTAINS:
    scn__verdict(v, x, memmem(got, n, x->text, tn) != NULL,
                 "%s read %zu byte%s: \"%s\"", x->proc, n, scn__s(n), g);
    return;
  case SCN_FILE_FAILS:
    scn__verdict(v, x, false, "%s read it: %zu byte%s, \"%s\"", x->proc, n,
                 scn__s(n), g);
    return;
  }
  abort(); /* the parser gives no other check */
}

void scn__eval_read(const struct scn_expect *x, const struct scn_facts *facts,
                    struct scn_verdict *v) {
  char name[32], out[4096], err[4200], why[160];
  size_t n;
  char *got;
  if (facts == NULL || facts->dump_dir == NULL) {
    scn__verdict(v, x, false, "no reader ran (the runner gave no directory)");
    return;
  }
  scn_read_out_name(x->pos.line, name, sizeof name);
  scn__fmt(out, sizeof out, "%s/%s", facts->dump_dir, name);
  scn__fmt(err, sizeof err, "%s.err", out);
  if ((got = scn__slurp(out, &n)) != NULL) {
    judge(x, got, n, v);
    free(got);
    return;
  }
  if ((got = scn__slurp(err, &n)) == NULL) {
    scn__verdict(v, x, false,
                 "no reader ran in %s's namespace (it was never started, "
                 "or its reader was killed: see the trace)",
                 x->proc);
    return;
  }
  first_line(got, why, sizeof why);
  free(got);
  scn__verdict(v, x, x->fcheck == SCN_FILE_FAILS, "%s could not read it: %s",
               x->proc, why[0] ? why : "(no message)");
}
