/* What every benchmark measures with: one clock and the order statistics
 * its figures are (bench_*.c, ipcload.c, replload.c). */
#ifndef UKSIM_BENCH_STATS_H
#define UKSIM_BENCH_STATS_H

#include <stddef.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in ns. */
uint64_t stats_now_ns(void);
/* The same in seconds. */
double stats_now_s(void);

/* Sort v[0..n) ascending. */
void stats_sort(double *v, size_t n);
void stats_sort_u64(uint64_t *v, size_t n);

/* The median as the benchmarks have always reported it: v[n / 2] after
 * sorting v[0..n) (the upper one of an even count); 0 if n is 0. */
double stats_median(double *v, size_t n);
/* The nearest-rank percentile p (0 < p <= 1) of v[0..n), which it sorts:
 * the smallest value with at least p * n values at or below it; 0 if n
 * is 0. */
double stats_pct(double *v, size_t n, double p);

/* Pins this process (and the children it starts later) to the first cpu
 * it may run on, for the benchmarks' "pinned" figures; *was gets the set
 * to go back to with stats_unpin.  Returns the number of cpus in *was. */
int stats_pin_first(void *was);
void stats_unpin(const void *was);

#endif /* UKSIM_BENCH_STATS_H */
