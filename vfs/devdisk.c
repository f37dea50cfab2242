/* #S — the disk (Plan 9's sd(3) in shape): #S/sd0/data reads and writes the
 * kernel's disk at any offset through its buffer cache, #S/sd0/ctl takes
 * "sync" (write every dirty block back now) and reads as one line of the
 * cache's counters, #S/sd0/cache lists the cache's table (the blocks held,
 * their state, ICA and offset).  sd0 is there only when the kernel has a
 * disk.
 *
 * The servant holds no state: the disk, the cache and its LevelDB live in
 * the kernel (sim-kernel/bcache.c, kdisk.c), reached through the host's
 * disk ops (dev.h struct vfs_host), and the counters are read from the
 * cache's table in kernel data (struct uk_bcache).  A write the cache
 * cannot take yet is -EAGAIN: the kernel writes back and retries the call.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "dev.h"
#include "vfs_int.h"

enum { QROOT = 0, QSD, QDATA, QCTL, QCACHE };

static bool has_disk(const struct uk_kdata *kd) {
  return kd->bcache.hdr.block_size != 0;
}

static int sd_entry(const struct uk_kdata *kd, uint64_t q, struct vfs_dir *d) {
  switch (q) {
  case QROOT:
    vfs__dir(d, QROOT, UK_QTDIR, VFS_DMDIR | 0555u, 0, "#S");
    return 1;
  case QSD:
    vfs__dir(d, QSD, UK_QTDIR, VFS_DMDIR | 0555u, 0, "sd0");
    return 1;
  case QDATA:
    vfs__dir(d, QDATA, 0, 0666u, kd->bcache.hdr.disk_bytes, "data");
    return 1;
  case QCTL:
    vfs__dir(d, QCTL, 0, 0666u, 0, "ctl");
    return 1;
  case QCACHE:
    vfs__dir(d, QCACHE, 0, 0444u, 0, "cache");
    return 1;
  }
  return 0;
}

static int diskgen(const struct uk_kdata *kd, const struct uk_chan *c, int i,
                   struct vfs_dir *d) {
  uint64_t q = c->qid.path;
  if (q > QCACHE || (q != QROOT && !has_disk(kd)))
    return 0;
  if (i == VFS_GEN_SELF)
    return sd_entry(kd, q, d);
  if (i == VFS_GEN_PARENT)
    return sd_entry(kd, q >= QDATA ? QSD : QROOT, d);
  if (q == QROOT)
    return i == 0 && has_disk(kd) ? sd_entry(kd, QSD, d) : 0;
  if (q == QSD && i >= 0 && i < 3)
    return sd_entry(kd, QDATA + (uint64_t)i, d);
  return 0;
}

/* The ctl file's line: what the cache holds and has done. */
static long ctl_read(const struct uk_kdata *kd, void *buf, uint32_t n,
                     uint64_t off) {
  const struct uk_bcache_hdr *h = &kd->bcache.hdr;
  char line[512];
  int len = snprintf(
      line, sizeof line,
      "cached %" PRIu32 " dirty %" PRIu32 " writebacks %" PRIu64
      " written %" PRIu64 " hits %" PRIu64 " misses %" PRIu64
      " evictions %" PRIu64 " waits %" PRIu64 " segments %" PRIu32
      " block %" PRIu32 " size %" PRIu64 "\n",
      h->ncached, h->ndirty, h->writebacks, h->blocks_written, h->hits,
      h->misses, h->evictions, h->waits, h->nseg, h->block_size, h->disk_bytes);
  return vfs__read_str(buf, n, off, line, (size_t)len);
}

static const char *const state_name[] = {"free", "clean", "dirty", "writing"};

/* The cache file: a header, then one line per entry holding a block. */
static size_t cache_line(const struct uk_kdata *kd, const void *arg,
                         uint32_t *cursor, char *line, size_t len) {
  const struct uk_bcache *t = &kd->bcache;
  (void)arg;
  if (*cursor == 0) {
    (*cursor)++;
    return (size_t)snprintf(line, len, "%-6s %-10s %-7s %-8s %-8s %-6s %s\n",
                            "ENTRY", "BLOCK", "STATE", "ICA", "OFF", "GEN",
                            "SEQ");
  }
  for (uint32_t i = *cursor - 1; i < UK_BCACHE_MAX; i++) {
    const struct uk_bcache_ent *e = &t->ent[i];
    if (e->state == UK_BC_FREE || e->state > UK_BC_WRITING)
      continue;
    *cursor = i + 2;
    return (size_t)snprintf(line, len,
                            "%-6" PRIu32 " %-10" PRIu64 " %-7s %-8" PRIx32
                            " %-8" PRIu32 " %-6" PRIu32 " %" PRIu64 "\n",
                            i, e->block, state_name[e->state], e->ica, e->off,
                            e->gen, e->seq);
  }
  *cursor = UK_BCACHE_MAX + 1;
  return 0;
}

static long diskread(struct uk_kdata *kd, const struct uk_chan *c, void *buf,
                     uint32_t n, uint64_t off) {
  const struct vfs_host *h = vfs_host_get();
  switch (c->qid.path) {
  case QROOT:
  case QSD:
    return vfs_devdirread(kd, c, buf, n, off);
  case QDATA:
    if (h == NULL || h->disk_read == NULL)
      return -ENODEV;
    return h->disk_read(h->arg, buf, n, off);
  case QCTL:
    return ctl_read(kd, buf, n, off);
  case QCACHE:
    return vfs__read_lines(kd, cache_line, NULL, buf, n, off);
  }
  return -ENOENT;
}

/* "sync", with or without a newline; anything else is -EINVAL. */
static long ctl_write(const struct vfs_host *h, const void *buf, uint32_t n) {
  const char *s = buf;
  uint32_t len = n > 0 && s[n - 1] == '\n' ? n - 1 : n;
  if (len != 4 || memcmp(s, "sync", 4) != 0)
    return -EINVAL;
  int r = h->disk_sync(h->arg);
  return r < 0 ? r : (long)n;
}

static long diskwrite(struct uk_kdata *kd, struct uk_chan *c, const void *buf,
                      uint32_t n, uint64_t off) {
  const struct vfs_host *h = vfs_host_get();
  (void)kd;
  if (h == NULL || h->disk_write == NULL || h->disk_sync == NULL)
    return -ENODEV;
  if (c->qid.path == QDATA)
    return h->disk_write(h->arg, buf, n, off);
  if (c->qid.path == QCTL)
    return ctl_write(h, buf, n);
  return -EPERM;
}

const struct vfs_dev vfs_diskdev = {
    .dc = 'S',
    .name = "disk",
    .gen = diskgen,
    .read = diskread,
    .write = diskwrite,
};
