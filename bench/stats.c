#include "stats.h"

#include <stdlib.h>
#include <time.h>

uint64_t stats_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double stats_now_s(void) {
  return (double)stats_now_ns() / 1e9;
}

static int cmp_dbl(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

void stats_sort(double *v, size_t n) {
  qsort(v, n, sizeof *v, cmp_dbl);
}

void stats_sort_u64(uint64_t *v, size_t n) {
  qsort(v, n, sizeof *v, cmp_u64);
}

double stats_median(double *v, size_t n) {
  if (n == 0)
    return 0;
  stats_sort(v, n);
  return v[n / 2];
}

double stats_pct(double *v, size_t n, double p) {
  if (n == 0)
    return 0;
  stats_sort(v, n);
  long i = (long)(p * (double)n + 0.999999) - 1;
  return v[i < 0 ? 0 : i >= (long)n ? (long)n - 1 : i];
}
