#include "stats.h"

#include <sched.h>

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

int stats_pin_first(void *was) {
  cpu_set_t *all = was, one;
  sched_getaffinity(0, sizeof *all, all);
  CPU_ZERO(&one);
  for (int i = 0; i < CPU_SETSIZE; i++)
    if (CPU_ISSET(i, all)) {
      CPU_SET(i, &one);
      break;
    }
  sched_setaffinity(0, sizeof one, &one);
  return CPU_COUNT(all);
}

void stats_unpin(const void *was) {
  sched_setaffinity(0, sizeof(cpu_set_t), was);
}
