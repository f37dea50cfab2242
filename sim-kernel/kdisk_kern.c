/* The kernel's disk: opened at boot (--disk PATH), its buffer cache in ICAs
 * the kernel holds, the host ops #S calls (vfs/dev.h), the write-back
 * timer (--sync-ms) and the write-back a waiting write asks for.
 *
 * A write the cache cannot take (every block dirty) and a sync with blocks
 * still dirty are deferred by the namespace calls (-EAGAIN, kns.c); they ask
 * for a write-back step on the next turn of the loop, after which the
 * waiting calls are retried.  A step runs in the loop: LevelDB's synced
 * write of one batch of at most KDISK_STEP_BLOCKS blocks; the next step
 * comes on a later turn, so other processes' calls run in between.  The
 * timer (--sync-ms) starts the same steps; the halt writes everything at
 * once.  Blocks adopted from a dead kernel's cache at a failover
 * (kern__disk_adopt) are written back by the same timer and syncs.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/mman.h>

#include "kdisk.h"
#include "kern.h"

static int seg_new(void *arg, uint32_t *ica, void **base) {
  return kern__ica_new(arg, KABI_ICA_DATA, UK_BCACHE_SEG_BYTES, ica, base);
}

static void seg_drop(void *arg, uint32_t ica, void *base) {
  munmap(base, UK_BCACHE_SEG_BYTES);
  kern__ica_drop(arg, ica);
}

static int seg_keep(void *arg, int fd, uint32_t *ica) {
  return kern__ica_keep(arg, KABI_ICA_DATA, UK_BCACHE_SEG_BYTES, fd, ica);
}

/* Writes everything back now (the halt). */
static void writeback_all(struct kern *k) {
  uint32_t dirty = k->kd->bcache.hdr.ndirty;
  uint64_t t0 = kern__now_ns();
  int r = bcache_writeback(k->bc);
  if (dirty > 0)
    kern__trace(k, "disk: halt write-back of %u blocks: %s, %llu us", dirty,
                r < 0 ? "failed" : "done",
                (unsigned long long)((kern__now_ns() - t0) / 1000));
}

/* Asks for a write-back step on the next turn of the loop. */
static void writeback_soon(struct kern *k) {
  if (!k->disk_wb.on)
    kern__timer_start(k, &k->disk_wb, 0, 0);
}

/* One step: a batch of KDISK_STEP_BLOCKS, another step while blocks are
 * dirty, and the calls waiting for it (a write, a sync) retried. */
static void on_wb_timer(struct kern *k, struct ktimer *t) {
  (void)t;
  long r = bcache_writeback_some(k->bc, KDISK_STEP_BLOCKS);
  if (r < 0)
    kern__trace(k, "disk: write-back failed (%ld); blocks stay dirty", r);
  else if (k->kd->bcache.hdr.ndirty > 0)
    writeback_soon(k);
  kern__ns_retry(k);
}

static void on_sync_timer(struct kern *k, struct ktimer *t) {
  (void)t;
  if (k->kd->bcache.hdr.ndirty > 0)
    writeback_soon(k);
}

static long host_disk_read(void *arg, void *buf, uint32_t n, uint64_t off) {
  struct kern *k = arg;
  return bcache_read(k->bc, buf, n, off);
}

static long host_disk_write(void *arg, const void *buf, uint32_t n,
                            uint64_t off) {
  struct kern *k = arg;
  long r = bcache_write(k->bc, buf, n, off);
  if (r == -EAGAIN)
    writeback_soon(k);
  return r;
}

/* A sync is over when no block is dirty; until then it waits (-EAGAIN) and
 * the write-back goes on a step per turn, so a large one does not stop the
 * other processes.  (Blocks others dirty meanwhile make it wait longer.) */
static int host_disk_sync(void *arg) {
  struct kern *k = arg;
  if (k->kd->bcache.hdr.ndirty == 0)
    return 0;
  long r = bcache_writeback_some(k->bc, KDISK_STEP_BLOCKS);
  if (r < 0)
    return (int)r;
  if (k->kd->bcache.hdr.ndirty == 0)
    return 0;
  writeback_soon(k);
  return -EAGAIN;
}

int kern__disk_open(struct kern *k, const struct kern_disk_opts *o) {
  char err[256];
  if (o->path == NULL)
    return 0;
  int r = kdisk_open(o->path, &k->disk, err, sizeof err);
  if (r < 0)
    fprintf(stderr, "uksim kernel: disk %s: %s%s\n", o->path,
            r == -EBUSY ? "in use by another owner: " : "", err);
  return r;
}

void kern__disk_cache(struct kern *k, const struct kern_disk_opts *o) {
  if (k->disk == NULL)
    return;
  struct bcache_seg_ops ops = {
      .seg_new = seg_new, .seg_drop = seg_drop, .seg_keep = seg_keep, .arg = k};
  k->bc =
      bcache_new(&k->kd->bcache, k->disk, o->path, o->size, o->cache_mib, &ops);
  k->vhost.disk_read = host_disk_read;
  k->vhost.disk_write = host_disk_write;
  k->vhost.disk_sync = host_disk_sync;
  kern__timer_init(k, &k->disk_wb, on_wb_timer, NULL);
  kern__timer_init(k, &k->disk_sync, on_sync_timer, NULL);
  k->disk_sync.background = true;
  if (o->sync_ms > 0)
    kern__timer_start(k, &k->disk_sync, o->sync_ms * 1000000,
                      o->sync_ms * 1000000);
  kern__trace(k, "disk %s: %llu MiB, cache up to %u MiB, sync every %llu ms",
              o->path, (unsigned long long)(o->size >> 20), o->cache_mib,
              (unsigned long long)o->sync_ms);
}

int kern__disk_adopt(struct kern *k, const struct uk_kdata *dead, int *ica_fd,
                     struct bcache_adopt_stats *st) {
  /* The adopted blocks wait for the write-back timer (--sync-ms) or a
   * sync, as they did in the dead kernel's cache: started at once, its
   * steps (a synced LevelDB batch each, ~20 ms) came between every turn
   * that serves the moved processes, and measured 64 MiB adopted served
   * again in 530-770 ms instead of ~40. */
  return bcache_adopt(k->bc, dead, ica_fd, st);
}

int kern__disk_start(struct kern *k, const struct kern_disk_opts *o) {
  int r = kern__disk_open(k, o);
  if (r == 0)
    kern__disk_cache(k, o);
  return r;
}

void kern__disk_halt(struct kern *k) {
  if (k->disk == NULL)
    return;
  kern__timer_stop(k, &k->disk_sync);
  kern__timer_stop(k, &k->disk_wb);
  writeback_all(k);
  bcache_free(k->bc); /* drops the cache's ICAs */
  kdisk_close(k->disk);
  k->bc = NULL;
  k->disk = NULL;
  k->vhost.disk_read = NULL;
  k->vhost.disk_write = NULL;
  k->vhost.disk_sync = NULL;
}
