/*
 * util.c: allocation and logging helpers shared by net9p.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "p9_impl.h"

/* Out-of-memory is not a condition this library recovers from. */
void *p9__xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) {
    fputs("net9p: out of memory\n", stderr);
    abort();
  }
  return p;
}

void *p9__xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p) {
    fputs("net9p: out of memory\n", stderr);
    abort();
  }
  return p;
}

void *p9__xrealloc(void *p, size_t n) {
  p = realloc(p, n ? n : 1);
  if (!p) {
    fputs("net9p: out of memory\n", stderr);
    abort();
  }
  return p;
}

char *p9__xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  return memcpy(p9__xmalloc(n), s, n);
}

bool p9__number(const char *s, double max, double *v) {
  char *end;
  errno = 0;
  *v = strtod(s, &end);
  return *s && !*end && !errno && *v >= 0 && *v <= max;
}

void p9__log(FILE *f, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("9p: ", f ? f : stderr);
  vfprintf(f ? f : stderr, fmt, ap);
  fputc('\n', f ? f : stderr);
  fflush(f ? f : stderr);
  va_end(ap);
}
