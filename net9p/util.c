/*
 * util.c: UTF-8 and logging helpers shared by net9p.  Allocation and
 * number parsing are the base library's (uksim/xalloc.h, uksim/num.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "p9_impl.h"

/* The length of the UTF-8 sequence that lead byte c starts, the smallest
 * code point it may encode (anything less is an overlong form), or 0. */
static int utf8_lead(uint8_t c, uint32_t *cp, uint32_t *min) {
  static const struct {
    uint8_t mask, bits;
    int len;
    uint32_t min;
  } lead[] = {
      {0xe0, 0xc0, 2, 0x80}, {0xf0, 0xe0, 3, 0x800}, {0xf8, 0xf0, 4, 0x10000}};
  for (size_t i = 0; i < sizeof(lead) / sizeof(lead[0]); i++) {
    if ((c & lead[i].mask) == lead[i].bits) {
      *cp = c & (uint8_t)~lead[i].mask;
      *min = lead[i].min;
      return lead[i].len;
    }
  }
  return 0;
}

bool p9__utf8_valid(const char *s, size_t len) {
  const uint8_t *p = (const uint8_t *)s, *end = p + len;
  while (p < end) {
    uint32_t cp, min;
    int n = *p < 0x80 ? 1 : utf8_lead(*p, &cp, &min);
    if (n == 0 || end - p < n)
      return false;
    for (int k = 1; k < n; k++) {
      if ((p[k] & 0xc0) != 0x80)
        return false;
      cp = cp << 6 | (p[k] & 0x3f);
    }
    if (n > 1 && (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)))
      return false;
    p += n;
  }
  return true;
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
