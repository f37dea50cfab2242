/* failload (bench/failload.c) and uksim bench failover share a file of
 * these slots, one per protected load process, so the bench can see each
 * process's calls and answers without asking any kernel. */
#ifndef UKSIM_FAILLOAD_H
#define UKSIM_FAILLOAD_H

#include <stdint.h>

/* Completion times kept per process: the bench finds in them the first
 * answer after the detection; at ~1 call per 100 us this is ~100 ms. */
#define FAILLOAD_RING 1024

struct failload_slot {
  uint64_t calls;   /* calls made (counted before each is sent) */
  uint64_t answers; /* answered with a value that grew */
  uint64_t resets;  /* -ECONNRESET: its server died holding the call */
  uint64_t intrs;   /* -EINTR: its kernel died inside an ICA create or
                     * release (sim-kernel/adopt.h: ADOPT_INTR) */
  uint64_t errors;  /* any other failure or a value that did not grow */
  uint32_t done;    /* set after SIGTERM, once the call in flight is over */
  int32_t pid;      /* its host pid: the bench stops it with SIGTERM */
  /* Answer k at k % RING: when its call started and when it was answered
   * (CLOCK_MONOTONIC ns, the kernels' uv_hrtime clock). */
  uint64_t start[FAILLOAD_RING], ring[FAILLOAD_RING];
};

/* What the loads of a run did, summed over their slots; lost: calls with
 * neither an answer, a reset, an -EINTR nor an error. */
struct failload_counts {
  uint64_t calls, answers, resets, intrs, errors, lost;
};

/* Stops the n loads of slot[] (SIGTERM by host pid: the process a kernel
 * moved is the same Linux process), waits up to wait_ms for each to finish
 * its call in flight, and sums their counts into *c.  0, or -1 when a load
 * has no pid or cannot be signalled (nothing summed). */
int failload_stop(struct failload_slot *slot, int n, int wait_ms,
                  struct failload_counts *c);

#endif /* UKSIM_FAILLOAD_H */
