/* Demand paging for process migration (seed 004 §2.3 step 5; the states
 * and what a lost peer means are in migd.h): the destination resumes a
 * task whose region holds only its header, and fetches every other page
 * from the origin when the task first touches it, through the userfaultfd
 * the task's process registered in MISSING mode (task.h,
 * UKSIM_TASK_DEMAND); a fetcher beside it asks for the pages not touched
 * yet, so that the origin's part in the task ends (post-copy).
 *
 * Both sides run on the migration connection after Resumed, in blocking
 * mode, messages of migrate.proto: PageReq (destination -> origin),
 * Pages and ZeroPages (answers), Result (a request refused), PagesDone
 * (destination -> origin: the end).  Used by uksim-migd (migd.c).
 */
#ifndef UKSIM_MIGPAGE_H
#define UKSIM_MIGPAGE_H

#include <stdint.h>
#include <sys/types.h>

#include "migd.h"
#include "uksim/task.h"

/* Pages one PageReq may ask for: one Pages message's worth. */
#define MIG_PAGEREQ_MAX (MIG_CHUNK / TASK_PAGE)
/* Neighbours fetched with each faulting page (`move ... demand N`), at
 * most: the rest of one request. */
#define MIG_PREPAGE_MAX (MIG_PAGEREQ_MAX - 1)
/* Pages the background fetcher keeps asked for and not yet in: enough to
 * keep the connection busy, little enough that a fault's request waits
 * behind at most this much of the fetcher's traffic. */
#define MIG_FETCH_WINDOW (2 * MIG_PAGEREQ_MAX)
/* What a demand migration sends before resuming: the header pages. */
#define MIG_HEADER_BYTES                                                       \
  ((sizeof(struct task_hdr) + TASK_PAGE - 1) / TASK_PAGE * TASK_PAGE)
/* A hole is answered past the request, to its end but at most this many
 * pages: the fewer requests for a task's untouched pages, the sooner the
 * origin is free; the shorter each answer, the sooner a fault's own
 * answer, queued behind it, is installed. */
#define MIG_ZERO_RUN_MAX (4096u)
/* How often the fault handler looks whether the fetch has ended. */
#define MIG_FAULT_POLL_MS 50

/* What demand paging measured, the destination's figures (PagesDone). */
struct migpage_stats {
  uint64_t remote_faults; /* first touches that waited for the origin */
  uint64_t fault_us_sum;  /* their total wait: fault read to page in */
  uint64_t fault_us_max;
  uint64_t first_fault_us; /* resume to the first remote fault served */
  uint64_t pages;          /* pages installed from the origin's answers */
  uint64_t bytes;          /* origin: page bytes sent while serving */
};

/* Origin: answers the destination's page requests on `fd` from the
 * suspended duplicate `region_fd` of `size` bytes until PagesDone
 * (returns 0, *st filled from it) or until the destination is lost or
 * breaks the protocol (-EPIPE, -EPROTO: the task is lost, migd.h).  A
 * request outside the region is answered Result(-ERANGE) and refused;
 * serving goes on.  `first_served` runs once, after the first answer
 * (fault injection). */
int migpage_serve(int fd, int region_fd, uint64_t size,
                  struct migpage_stats *st, void (*first_served)(void));

/* Destination: a copy of the task's userfaultfd, descriptor `task_fd` in
 * process `pid` (task_hdr.uffd), or -errno. */
int migpage_take_uffd(pid_t pid, int task_fd);

/* Destination: fetches the region of `size` bytes, whose header pages
 * (the first `have` bytes) are present, into the task process behind
 * `uffd`, on faults (with `prepage` neighbours, at most MIG_PREPAGE_MAX)
 * and in the background, from the origin on `fd`; sends PagesDone when
 * every page is in, or once the task's process has ended.  Returns 0,
 * 1 when the task ended before every page was in, or -errno when the
 * origin was lost or refused a request (the task cannot go on: migd.h).
 * `first_fetched` runs once, after the first answer is installed (fault
 * injection). */
int migpage_fetch(int fd, int uffd, uint64_t size, uint64_t have,
                  uint32_t prepage, struct migpage_stats *st,
                  void (*first_fetched)(void));

#endif /* UKSIM_MIGPAGE_H */
