/* The failover on the new active kernel (Orthros, seed 001 §2.4–§2.6),
 * once the machine has fenced the dead OS and handed over what it holds
 * of it (kos.c: its kernel-data region read-only, its processes'
 * connections, its ICAs).  In the paper's order, each step a "failover"
 * event naming it and its duration in microseconds:
 *
 *   devices    the user disk opens here (LevelDB's lock was the dead
 *              kernel's; the fence freed it)
 *   convert    (a kernel update, issue 15: the dead kernel is of another
 *              layout) its processes' and its file cache's tables are
 *              converted through version-neutral images into a region
 *              of this layout (kconvert.c); the steps below then read
 *              that region as a dead kernel's of this version
 *   filecache  the dead kernel's dirty blocks, by the method the
 *              machine's --cache-migrate says (kern_disk_opts):
 *              writeback  written back from its buffer-cache table and
 *                         cache ICAs (kdisk_writeback_fds): only dirty
 *                         blocks, in atomic batches, before any process
 *                         runs; its time grows with the dirty bytes
 *              adopt      (the default; seed 001 §2.5 without the copy)
 *                         made dirty entries of this kernel's own cache,
 *                         in the dead cache's own ICAs (bcache_adopt,
 *                         kdisk.h); written back later by this cache's
 *                         write-back, a batch a turn of the loop.  This
 *                         step then comes after "processes" and "cache",
 *                         since it adds to the ICA table the processes'
 *                         step rebuilds and to the cache that "cache"
 *                         starts; it still ends before any process's call
 *                         is served (the whole failover is one turn of
 *                         the loop)
 *   processes  the protected processes and what they own are rebuilt
 *              from the dead kernel's tables (kern__adopt, adopt.h), the
 *              others end
 *   servers    (inside the same step) services restart by the AnT fault
 *              path; their registration comes later, on the loop
 *   cache      this kernel's own buffer cache starts
 *   publish    its protected processes (the moved ones among them) are
 *              published in the inter-OS region (kos_publish), replacing
 *              the dead kernel's table
 *   servers    later, on the loop (kern__failover_settle): every service
 *              restarted has registered and serves (or is down)
 *   backlog    later still: every request queued when "servers" ended
 *              (the calls the dead OS left and those its processes made
 *              meanwhile, numbered up to k->os.backlog_seq) has been
 *              answered by its server (handed over is not enough: a
 *              server takes its queue a batch at a time, REPLY_MANY_RECEIVE,
 *              and a batch is served after it is handed over; a request
 *              the server keeps, a cache's, is its own to answer later);
 *              the machine is told (FailoverDone)
 *              and boots the next backup only then, so that its boot
 *              (a kernel process's start, its tables, its disk) does not
 *              compete for the two cores with the restarted servers'
 *              backlog, which is what holds the protected processes
 *              (seed 001 boots the next backup after the failover).  A
 *              backlog that never drains (a server that hangs) delays it
 *              by MACH_SETTLE_WAIT_MS at most: the machine then boots
 *              the backup anyway
 *
 * Re-partition, Resize and the next backup's boot are the machine's.  Nothing
 * here has any help from the dead OS: every fact is read from what it
 * left behind.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adopt.h"
#include "kdisk.h"
#include "kern.h"
#include "uksim/interos.h"
#include "uksim/xalloc.h"

static uint64_t step_start;

static void step_done(struct kern *k, const char *step, int status,
                      const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void step_done(struct kern *k, const char *step, int status,
                      const char *fmt, ...) {
  char text[160];
  uint64_t us = (uv_hrtime() - step_start) / 1000;
  int n =
      snprintf(text, sizeof text, "%s %llu us: ", step, (unsigned long long)us);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text + n, sizeof text - (size_t)n, fmt, ap);
  va_end(ap);
  kern__trace(k, "failover: %s", text);
  kern__event(
      k, &(struct kern_ev){
             .ev = "failover", .op = step, .status = status, .text = text});
  step_start = uv_hrtime();
}

static void devices(struct kern *k) {
  int r = kern__disk_open(k, &k->disk_opts);
  int socks = knic_take(k);
  step_done(k, "devices", r, "%s, nic0 with %d sockets",
            k->disk_opts.path == NULL ? "no disk"
            : r < 0                   ? "the disk did not open"
                                      : "the disk is ours",
            socks);
}

static void tick(void *arg) {
  kos_heartbeat(arg);
}

static void file_cache_writeback(struct kern *k, const struct uk_kdata *dead) {
  struct kdisk_wb_stats st = {.tick = tick, .tick_arg = k};
  int r =
      k->disk ? kdisk_writeback_fds(dead, k->os.adopt_ica_fd, k->disk, &st) : 0;
  step_done(k, "filecache", r,
            "writeback: %u dirty blocks (%llu bytes) written back in %u "
            "batches, %u torn",
            st.written, (unsigned long long)st.written * UK_DISK_BLOCK,
            st.batches, st.torn);
}

/* Whether ICA id of the dead kernel is one of its cache's segments as its
 * ICA table says (a torn cache table must not take a process's ICA). */
static bool dead_seg_ica(const struct uk_kdata *dead, uint32_t id) {
  uint32_t x = KABI_ICA_INDEX(id);
  return x < UK_ICA_MAX && dead->ica[x].state == UK_ICA_LIVE &&
         dead->ica[x].gen == KABI_ICA_GEN(id) &&
         dead->ica[x].holder_kind == UK_HOLD_KERNEL &&
         dead->ica[x].size == UK_BCACHE_SEG_BYTES;
}

/* The dead cache's segment descriptors, taken out of what the machine
 * handed over before the processes' step closes every ICA it does not
 * keep (the kernel's own among them); by ICA index, -1 none. */
static int *take_seg_fds(struct kern *k, const struct uk_kdata *dead) {
  int *fd = xmalloc(UK_ICA_MAX * sizeof *fd);
  for (uint32_t i = 0; i < UK_ICA_MAX; i++)
    fd[i] = -1;
  uint32_t n = dead->bcache.hdr.nseg;
  for (uint32_t s = 0; s < n && s < UK_BCACHE_SEGS_MAX; s++) {
    uint32_t id = dead->bcache.seg_ica[s], x = KABI_ICA_INDEX(id);
    if (!dead_seg_ica(dead, id) || fd[x] >= 0)
      continue;
    fd[x] = k->os.adopt_ica_fd[x];
    k->os.adopt_ica_fd[x] = -1;
  }
  return fd;
}

static void file_cache_adopt(struct kern *k, const struct uk_kdata *dead,
                             int *seg_fd) {
  struct bcache_adopt_stats st = {.tick = tick, .tick_arg = k};
  int r = k->bc ? kern__disk_adopt(k, dead, seg_fd, &st) : 0;
  for (uint32_t i = 0; i < UK_ICA_MAX; i++)
    if (seg_fd[i] >= 0)
      close(seg_fd[i]); /* segments not adopted: the machine lets go */
  free(seg_fd);
  step_done(k, "filecache", r,
            "adopt: %u dirty blocks (%llu bytes) adopted in %u segments (%u "
            "past the cache size), %u written back now (no room), %u torn, "
            "%u stale",
            st.adopted, (unsigned long long)st.adopted * UK_DISK_BLOCK, st.segs,
            st.over, st.written, st.torn, st.stale);
}

static void processes(struct kern *k, const struct uk_kdata *dead) {
  struct adopt_plan *pl = xcalloc(1, sizeof *pl);
  int r = kern__adopt(k, dead, k->os.adopt_conn_fd, k->os.adopt_ica_fd, pl);
  for (uint32_t p = 0; r == 0 && p < UK_PROC_MAX; p++)
    if (pl->proc[p].moved && k->proc[p].sock >= 0)
      kos_conn_hold(k, p, k->proc[p].sock); /* the machine keeps its end */
  uint32_t kept, lost, restarted = 0;
  knic_settle(k, &kept, &lost);
  for (uint32_t s = 0; s < UK_SVC_MAX; s++)
    restarted += pl->restart_svc[s];
  step_done(k, "processes", r,
            "%u moved, %u ended, %u refused, %u requests and %u ICAs kept, "
            "%u services restart, %u TCP conversations kept, %u lost%s",
            pl->moved, pl->ended, pl->refused, pl->reqs_moved, pl->icas_moved,
            restarted, kept, lost, pl->ns_torn ? ", namespaces torn" : "");
  free(pl);
}

/* Steps filecache, processes and cache from tables of this kernel's
 * layout: a dead kernel's of this version, or those a kernel update
 * converted from another version's (other_version). */
static void take_tables(struct kern *k, const struct uk_kdata *dead) {
  if (k->disk_opts.cache_writeback) {
    file_cache_writeback(k, dead);
    processes(k, dead);
    kern__disk_cache(k, &k->disk_opts);
    step_done(k, "cache", 0, "this kernel's buffer cache is up");
  } else {
    int *seg_fd = take_seg_fds(k, dead);
    processes(k, dead);
    kern__disk_cache(k, &k->disk_opts);
    step_done(k, "cache", 0, "this kernel's buffer cache is up");
    file_cache_adopt(k, dead, seg_fd);
  }
}

/* The dead kernel was another version (a kernel update, issue 15): its
 * processes and its file cache's table come over through images
 * (kconvert.c) into a region of this layout, taken then as a dead
 * kernel's of this version: the cache's dirty blocks are adopted in their
 * own ICAs (or written back, --cache-migrate writeback). */
static void other_version(struct kern *k, const void *dead, size_t len) {
  struct uk_kdata *conv = kern__kimage_convert(k, dead, len);
  if (conv != NULL) {
    step_done(k, "convert", 0,
              "another kernel version (layout %u): its processes and its "
              "file cache's table converted through images",
              ((const struct uk_kdata_hdr *)dead)->layout);
    take_tables(k, conv);
    free(conv);
    if (k->replay != NULL)
      kern__replay_arm(k); /* method B: they replay at their next call */
    return;
  }
  kern__disk_cache(k, &k->disk_opts);
  step_done(k, "cache", 0, "this kernel's buffer cache is up");
  step_done(k, "filecache", -EPROTO,
            "the dead kernel's layout is unknown: its file cache is lost");
}

static size_t region_len(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 ? (size_t)st.st_size : 0;
}

void kern__failover(struct kern *k) {
  size_t len = region_len(k->os.adopt_kd_fd);
  size_t size = len > sizeof(struct uk_kdata) ? len : sizeof(struct uk_kdata);
  step_start = uv_hrtime();
  const struct uk_kdata *dead =
      mmap(NULL, size, PROT_READ, MAP_SHARED, k->os.adopt_kd_fd, 0);
  if (dead == MAP_FAILED) {
    kern__trace(k, "failover: the dead kernel's data cannot be mapped");
    return;
  }
  devices(k);
  if (len >= sizeof dead->hdr && dead->hdr.magic == UK_KDATA_MAGIC &&
      dead->hdr.layout != UK_KDATA_LAYOUT) {
    other_version(k, dead, len);
  } else {
    take_tables(k, dead);
  }
  kos_publish(k);
  step_done(k, "publish", 0, "%u protected processes published",
            k->os.io ? k->os.io->nprot : 0);
  munmap((void *)dead, size);
  close(k->os.adopt_kd_fd);
  k->os.adopt_kd_fd = -1;
  k->os.settling = true;
  kern__failover_settle(k);
}

/* Whether a request numbered up to k->os.backlog_seq still waits in a
 * service's queue (a queue is in order, so its head tells), or is with
 * its server and not answered nor kept. */
static bool backlog_open(const struct kern *k) {
  for (uint32_t s = 0; s < UK_SVC_MAX; s++) {
    const struct uk_svc *sv = &k->kd->svc[s];
    if (sv->state == UK_SVC_UP && sv->q_len > 0 &&
        k->kd->req[sv->q_head].seqno <= k->os.backlog_seq)
      return true;
  }
  for (uint32_t i = 0; i < UK_REQ_MAX; i++) {
    const struct uk_req *r = &k->kd->req[i];
    if (r->state == UK_REQ_IN_SERVICE && !r->kept &&
        r->seqno <= k->os.backlog_seq)
      return true;
  }
  return false;
}

void kern__failover_settle(struct kern *k) {
  if (!k->os.settling)
    return;
  if (k->os.backlog_seq == 0) {
    for (uint32_t s = 0; s < UK_SVC_MAX; s++)
      if (k->kd->svc[s].phase == UK_PH_RESTARTING)
        return;
    step_done(k, "servers", 0, "every restarted service serves");
    k->os.backlog_seq = k->req_seqno ? k->req_seqno : 1;
  }
  if (backlog_open(k))
    return;
  k->os.settling = false;
  k->os.backlog_seq = 0;
  step_done(k, "backlog", 0, "every request queued at the failover is served");
  if (k->events)
    fflush(k->events); /* the failover's record whole, for its readers */
  kos_failover_done(k);
}
