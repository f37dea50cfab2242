/* Allocation that aborts when memory runs out (see uksim/xalloc.h). */
#include "uksim/xalloc.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Says which program ran out and of how much, then aborts.  The line is
 * formatted on the stack and written with write(2): stdio may want memory
 * of its own, which is what there is none of. */
static _Noreturn void out_of_memory(size_t n, size_t size) {
  char line[160];
  int len;
  if (n == 1)
    len = snprintf(line, sizeof line, "%s: out of memory (%zu bytes)\n",
                   program_invocation_short_name, size);
  else
    len = snprintf(line, sizeof line,
                   "%s: out of memory (%zu items of %zu bytes)\n",
                   program_invocation_short_name, n, size);
  if (len > 0)
    (void)!write(STDERR_FILENO, line,
                 (size_t)len < sizeof line ? (size_t)len : sizeof line - 1);
  abort();
}

void *xmalloc(size_t size) {
  void *p = malloc(size ? size : 1);
  if (p == NULL)
    out_of_memory(1, size);
  return p;
}

void *xcalloc(size_t n, size_t size) {
  void *p = n && size ? calloc(n, size) : calloc(1, 1);
  if (p == NULL)
    out_of_memory(n, size);
  return p;
}

void *xrealloc(void *p, size_t size) {
  void *q = realloc(p, size ? size : 1);
  if (q == NULL)
    out_of_memory(1, size);
  return q;
}

void *xreallocarray(void *p, size_t n, size_t size) {
  if (size != 0 && n > SIZE_MAX / size)
    out_of_memory(n, size);
  size_t total = n * size;
  void *q = realloc(p, total ? total : 1);
  if (q == NULL)
    out_of_memory(n, size);
  return q;
}

char *xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  return memcpy(xmalloc(n), s, n);
}

char *xstrndup(const char *s, size_t n) {
  size_t len = strnlen(s, n);
  char *d = xmalloc(len + 1);
  memcpy(d, s, len);
  d[len] = '\0';
  return d;
}
