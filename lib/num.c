/* Strict number parsing (see uksim/num.h).
 *
 * The digits are read here rather than by strtoull(), which skips leading
 * space, takes a sign for an unsigned number and stops quietly at the
 * first byte it does not want; only num_parse_double hands its (already
 * checked) string to strtod() for the rounding.
 */
#include "uksim/num.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

static bool digit(char c) {
  return c >= '0' && c <= '9';
}

/* Reads the digits at *p into *v, moving *p past them; -EINVAL if there
 * are none, -ERANGE if they do not fit in 64 bits (all are still read). */
static int digits(const char **p, uint64_t *v) {
  const char *s = *p;
  bool over = false;
  *v = 0;
  for (; digit(*s); s++) {
    unsigned d = (unsigned)(*s - '0');
    if (*v > (UINT64_MAX - d) / 10)
      over = true;
    else
      *v = *v * 10 + d;
  }
  if (s == *p)
    return -EINVAL;
  *p = s;
  return over ? -ERANGE : 0;
}

/* The power of two a NUM_SIZE suffix stands for, or -1. */
static int suffix_shift(char c) {
  switch (c) {
  case 'K':
  case 'k':
    return 10;
  case 'M':
  case 'm':
    return 20;
  case 'G':
  case 'g':
    return 30;
  default:
    return -1;
  }
}

int num_parse_u64(const char *s, uint64_t min, uint64_t max, unsigned flags,
                  uint64_t *out) {
  uint64_t v;
  int r = digits(&s, &v);
  if (r == -EINVAL)
    return r;
  if (*s != '\0' && (flags & NUM_SIZE)) {
    int shift = suffix_shift(*s++);
    if (shift < 0)
      return -EINVAL;
    if (v > UINT64_MAX >> shift)
      r = -ERANGE;
    v <<= shift;
  }
  if (*s != '\0')
    return -EINVAL; /* "5x" is not a number, even when 5 is too large */
  if (r < 0 || v < min || v > max)
    return -ERANGE;
  *out = v;
  return 0;
}

int num_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out) {
  bool neg = *s == '-';
  uint64_t mag;
  if (neg)
    s++;
  int r = digits(&s, &mag);
  if (r == -EINVAL || *s != '\0')
    return -EINVAL;
  if (r < 0 || mag > (uint64_t)INT64_MAX + neg)
    return -ERANGE;
  /* Down to INT64_MIN, whose magnitude no int64_t holds. */
  int64_t v = !neg ? (int64_t)mag : mag == 0 ? 0 : -(int64_t)(mag - 1) - 1;
  if (v < min || v > max)
    return -ERANGE;
  *out = v;
  return 0;
}

/* Whether s has the shape num_parse_double takes (see num.h). */
static bool decimal_shape(const char *s) {
  bool any = false;
  s += *s == '-';
  for (; digit(*s); s++)
    any = true;
  if (*s == '.')
    for (s++; digit(*s); s++)
      any = true;
  if (any && (*s == 'e' || *s == 'E')) {
    s++;
    s += *s == '-' || *s == '+';
    if (!digit(*s))
      return false;
    while (digit(*s))
      s++;
  }
  return any && *s == '\0';
}

int num_parse_double(const char *s, double min, double max, double *out) {
  if (!decimal_shape(s))
    return -EINVAL;
  errno = 0;
  double v = strtod(s, NULL);
  /* ERANGE for an underflow too: a tiny value rounded to 0 is refused
   * rather than read as 0. */
  if (errno == ERANGE || !isfinite(v) || !(v >= min && v <= max))
    return -ERANGE;
  *out = v;
  return 0;
}

/* "PROG: OPT: " with whichever parts there are. */
static void prefix(const char *prog, const char *opt) {
  if (prog != NULL)
    fprintf(stderr, "%s: ", prog);
  if (opt != NULL)
    fprintf(stderr, "%s: ", opt);
}

int num_opt_u64(const char *prog, const char *opt, const char *s, uint64_t min,
                uint64_t max, unsigned flags, uint64_t *out) {
  int r = num_parse_u64(s, min, max, flags, out);
  if (r < 0) {
    prefix(prog, opt);
    if (flags & NUM_SIZE)
      fprintf(stderr,
              "'%s' is not a size in %llu..%llu bytes (K, M or G: 1024, "
              "1024^2, 1024^3)\n",
              s, (unsigned long long)min, (unsigned long long)max);
    else
      fprintf(stderr, "'%s' is not a number in %llu..%llu\n", s,
              (unsigned long long)min, (unsigned long long)max);
  }
  return r;
}

int num_opt_i64(const char *prog, const char *opt, const char *s, int64_t min,
                int64_t max, int64_t *out) {
  int r = num_parse_i64(s, min, max, out);
  if (r < 0) {
    prefix(prog, opt);
    fprintf(stderr, "'%s' is not a number in %lld..%lld\n", s, (long long)min,
            (long long)max);
  }
  return r;
}

int num_opt_double(const char *prog, const char *opt, const char *s, double min,
                   double max, double *out) {
  int r = num_parse_double(s, min, max, out);
  if (r < 0) {
    prefix(prog, opt);
    fprintf(stderr, "'%s' is not a number in %.15g..%.15g\n", s, min, max);
  }
  return r;
}
