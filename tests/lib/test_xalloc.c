/* Unit tests for the out-of-memory policy (lib/xalloc.c): the allocators
 * return usable memory, zero sizes are not NULL, and a request that cannot
 * be met (or whose n * size overflows) aborts instead of returning NULL. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "uksim/xalloc.h"

Test(xalloc, allocates_and_zero_sizes_are_not_null, .timeout = 10) {
  char *p = xmalloc(0), *q = xcalloc(0, 8), *r = xcalloc(8, 0);
  cr_assert(p != NULL && q != NULL && r != NULL);
  free(p);
  free(q);
  free(r);
  unsigned *z = xcalloc(16, sizeof *z);
  for (int i = 0; i < 16; i++)
    cr_assert_eq(z[i], 0);
  free(z);
}

Test(xalloc, realloc_keeps_contents_and_size_zero_keeps_block, .timeout = 10) {
  int *a = xreallocarray(NULL, 4, sizeof *a);
  for (int i = 0; i < 4; i++)
    a[i] = i;
  a = xreallocarray(a, 1000, sizeof *a);
  for (int i = 0; i < 4; i++)
    cr_assert_eq(a[i], i);
  a = xrealloc(a, 0);
  cr_assert_not_null(a);
  free(a);
}

Test(xalloc, strdup_copies, .timeout = 10) {
  char *s = xstrdup("uksim"), *t = xstrndup("uksim", 2), *u = xstrndup("ab", 9);
  cr_assert_str_eq(s, "uksim");
  cr_assert_str_eq(t, "uk");
  cr_assert_str_eq(u, "ab");
  free(s);
  free(t);
  free(u);
}

/* The sizes are read from a volatile so the compiler cannot see an
 * allocation it knows must fail (GCC warns about such a call). */
static volatile size_t huge = SIZE_MAX;

/* 2^62 bytes: more than any address space holds, and still positive as a
 * signed number (valgrind reports a "fishy" negative size as an error). */
Test(xalloc, malloc_failure_aborts, .signal = SIGABRT, .timeout = 10) {
  (void)xmalloc(huge / 4 + 1);
}

Test(xalloc, calloc_overflow_aborts, .signal = SIGABRT, .timeout = 10) {
  (void)xcalloc(huge / 2, 4);
}

Test(xalloc, reallocarray_overflow_aborts, .signal = SIGABRT, .timeout = 10) {
  (void)xreallocarray(NULL, huge / 2, 4);
}
