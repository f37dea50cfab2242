/* The disk device and its buffer cache.
 *
 * A disk is a LevelDB database (kdisk.c): block b of UK_DISK_BLOCK bytes is
 * the value of key b as 8 big-endian bytes, and a missing key reads as
 * zeros.  Opening a disk takes LevelDB's lock, so a disk has one owner: a
 * second opener, in this process or another, gets -EBUSY.  That is device
 * ownership; migrating a disk is its next owner opening it once the first
 * is fenced (its process gone, its lock with it).
 *
 * The buffer cache (bcache.c) keeps blocks in ICAs the kernel creates and
 * holds (UK_HOLD_KERNEL, so the machine keeps a reference to each), and
 * describes them in kernel data (struct uk_bcache in uksim/kdata.h): a
 * reader from outside finds every dirty block, its ICA and its offset there.
 * Writes are acknowledged from the cache; a write-back puts the dirty blocks
 * in LevelDB write batches of at most KDISK_BATCH_BLOCKS blocks each, each
 * batch atomic (all there or none of it after a crash).
 *
 * Cache entry states (enum uk_bcache_state), per entry:
 *   FREE  -> CLEAN    a read missed and filled it from the disk
 *   FREE  -> DIRTY    a write took it
 *   CLEAN -> DIRTY    a write hit it
 *   CLEAN -> FREE     evicted (clock) to make room
 *   DIRTY -> WRITING  put in a write-back batch
 *   WRITING -> CLEAN  the batch committed
 *   WRITING -> DIRTY  the batch failed (it is written back again later)
 * A DIRTY or WRITING entry is never evicted.  When no entry can be had (every
 * one dirty and no segment may be added) a write returns -EAGAIN having
 * changed nothing: the kernel defers the call, writes back and retries it.
 *
 * Cache adoption (a failover's file-cache step, seed 001 §2.5; bcache_adopt):
 * the new kernel makes a dead kernel's dirty blocks entries of its own cache,
 * in the dead cache's own segment ICAs, without copying a byte.  Per dead
 * entry, read from the dead region alone:
 *   DIRTY or WRITING, checked (kdisk_dead_entry_ok)  -> DIRTY here, at the
 *       same offset of the same memory, its seq kept (a WRITING entry's
 *       bytes are whole: the cache never writes into an entry being
 *       written back, and writing it again is harmless)
 *   DIRTY or WRITING, failing a check                -> dropped (torn)
 *   the same block as a later-written adopted entry  -> dropped (stale)
 *   the same block as one this cache already has     -> dropped (this
 *       kernel's writes come after the failover: newer)
 *   CLEAN                                            -> dropped: the disk has
 *       it, and keeping it would keep a segment of memory for a read cache
 *   FREE or a write's entry not yet marked dirty     -> dropped: that write
 *       had not been acknowledged
 * Per dead segment holding at least one adopted entry:
 *   room here (fewer than UK_BCACHE_SEGS_MAX segments) and the kernel
 *       takes the ICA (seg_keep)           -> a segment of this cache, even
 *                                              past the size setting (which
 *                                              rises to it: hdr.seg_max)
 *   otherwise                              -> its blocks written back now,
 *                                              in atomic batches (written)
 * The adopted blocks are then written back by the cache's own write-back
 * (bcache_writeback_some, a bounded batch at a time); until then they are
 * in this cache's table, so a failover of this kernel adopts them again.
 */
#ifndef UKSIM_KDISK_H
#define UKSIM_KDISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uksim/kdata.h"

/* Blocks per LevelDB write batch in a write-back (4 MiB, a segment): each
 * batch is atomic.  Measured on LevelDB 1.23 here, 64 MiB written back in
 * batches of 64 blocks took ~0.4 s and 0.25 s of cpu, in one batch of 1024
 * ~0.9-1.5 s and 0.7 s of cpu (its batch and log record are one string). */
#define KDISK_BATCH_BLOCKS 64u
/* Blocks the kernel writes back per turn of its loop when the timer, a
 * waiting write or a sync asks: between two steps the other processes'
 * calls run. */
#define KDISK_STEP_BLOCKS KDISK_BATCH_BLOCKS
/* LevelDB's write buffer (memtable) and table file size for a disk: a few
 * batches, so a batch is not cut by a memtable flush. */
#define KDISK_MEMTABLE_BYTES (4 * KDISK_BATCH_BLOCKS * (size_t)UK_DISK_BLOCK)
/* The disk size when none is given (#S/sd0/data's length). */
#define KDISK_SIZE_DEFAULT (1ull << 30)
/* The largest disk size accepted. */
#define KDISK_SIZE_MAX (1ull << 40)
/* The cache's size when none is given, and its limit (UK_BCACHE_MAX). */
#define KDISK_CACHE_MIB_DEFAULT 256u
#define KDISK_CACHE_MIB_MAX (UK_BCACHE_MAX * (UK_DISK_BLOCK >> 10) >> 10)
/* The write-back timer's period when none is given (--sync-ms). */
#define KDISK_SYNC_MS_DEFAULT 5000u

/* The device (kdisk.c). ------------------------------------------------- */

struct kdisk;
/* Opens (creating it if missing) the disk at path.  -EBUSY: another owner
 * holds it; other errors -EIO, with LevelDB's text in err. */
int kdisk_open(const char *path, struct kdisk **out, char *err, size_t len);
void kdisk_close(struct kdisk *d);
/* Block b into buf (UK_DISK_BLOCK bytes): zeros if never written. */
int kdisk_read(struct kdisk *d, uint64_t b, void *buf);

/* An atomic batch of block writes. */
struct kdisk_batch;
struct kdisk_batch *kdisk_batch_new(void);
void kdisk_batch_put(struct kdisk_batch *wb, uint64_t b, const void *buf);
int kdisk_batch_commit(struct kdisk *d, struct kdisk_batch *wb); /* and free */

/* What a write-back from a dead kernel's table did. */
struct kdisk_wb_stats {
  uint32_t written; /* blocks written */
  uint32_t torn;    /* dirty entries skipped: inconsistent with the tables */
  uint32_t batches; /* batches committed */
  /* Called after each batch when set (zero it otherwise): a failover's
   * write-back is long, and its kernel must keep its heartbeat going. */
  void (*tick)(void *arg);
  void *tick_arg;
};

/* The failover path: writes the dirty (DIRTY or WRITING) blocks of a dead
 * kernel's buffer cache to disk d, reading nothing but `dead` (a read-only
 * mapping of its kernel-data region) and its segment ICAs, mapped by
 * map_ica(id, arg) once each (NULL: that ICA cannot be had; its blocks count
 * as torn; the mappings are the caller's to undo).  Not thread-safe.
 * Every entry is checked against the tables (index, segment ICA id and
 * offset, the ICA LIVE with that generation, held by the kernel, of segment
 * size; block inside the disk); an entry that fails is skipped and counted.
 * Where two entries name one block the later write (seq) wins.  Returns 0,
 * -EINVAL for a region that is not a kernel-data region of this layout, or
 * the first batch's failure. */
int kdisk_writeback_from(const struct uk_kdata *dead,
                         void *(*map_ica)(uint32_t id, void *arg), void *arg,
                         struct kdisk *d, struct kdisk_wb_stats *st);

/* The same with the dead kernel's ICAs as descriptors indexed by ICA index
 * (the machine's table: fd -1 for none), mapped read-only for the call. */
int kdisk_writeback_fds(const struct uk_kdata *dead, const int *ica_fd,
                        struct kdisk *d, struct kdisk_wb_stats *st);

/* Whether entry i of a dead kernel's cache table is a block we may trust:
 * inside the segments made, its segment's ICA and offset, gen set, its
 * block inside the disk, and the ICA LIVE in the dead ICA table with that
 * generation, held by the kernel, of segment size.  Says nothing of its
 * state. */
bool kdisk_dead_entry_ok(const struct uk_kdata *dead, uint32_t i);
/* Whether dead is a kernel-data region of this layout with a cache to
 * read: 1, 0 when it had no disk, -EINVAL when it is not one. */
int kdisk_dead_cache(const struct uk_kdata *dead);
/* DIRTY or WRITING: a block the disk may not have. */
bool kdisk_state_dirty(uint8_t state);

/* The buffer cache (bcache.c). ------------------------------------------ */

/* How the cache gets and gives back its segment ICAs (the kernel's
 * kern__ica_new and kern__ica_drop; memfds in the unit tests). */
struct bcache_seg_ops {
  int (*seg_new)(void *arg, uint32_t *ica, void **base);
  void (*seg_drop)(void *arg, uint32_t ica, void *base);
  /* Cache adoption: makes descriptor fd (a dead kernel's segment, mapped by
   * the cache) an ICA of this kernel's (kern__ica_keep), the descriptor
   * its own from then on; 0 and its id, or an error (the budget, a full
   * table) with fd still the caller's.  NULL: nothing is adopted. */
  int (*seg_keep)(void *arg, int fd, uint32_t *ica);
  void *arg;
};

struct bcache;
/* A cache of at most cache_mib MiB (rounded up to whole segments) over disk
 * d of disk_bytes bytes, described in t (zeroed here; name goes in it). */
struct bcache *bcache_new(struct uk_bcache *t, struct kdisk *d,
                          const char *name, uint64_t disk_bytes,
                          uint32_t cache_mib, const struct bcache_seg_ops *ops);
/* Writes back, then drops every segment and closes nothing (d is the
 * caller's).  The table goes back to all-zero. */
void bcache_free(struct bcache *bc);
/* Bytes read from off (short at the disk's end, 0 at or past it). */
long bcache_read(struct bcache *bc, void *buf, uint32_t n, uint64_t off);
/* Bytes written at off (short at the disk's end; -ENOSPC past it), or
 * -EAGAIN with nothing changed when the blocks it needs are all dirty, or
 * -EFBIG for a write that needs more blocks than the whole cache. */
long bcache_write(struct bcache *bc, const void *buf, uint32_t n, uint64_t off);
/* Writes every dirty block back; 0, or the first batch's error (the blocks
 * of the failed batch stay dirty). */
int bcache_writeback(struct bcache *bc);
/* Writes one batch of at most max (<= KDISK_BATCH_BLOCKS) dirty blocks,
 * taking up where the last batch stopped: the blocks written, 0 when none
 * is dirty, or the batch's error (its blocks stay dirty). */
long bcache_writeback_some(struct bcache *bc, uint32_t max);
/* The table's invariants: entries within the segments made, each with its
 * segment's ICA and its own offset, a known state, cached ones with a gen
 * and a block inside the disk, ncached and ndirty their counts.  0, or
 * -EINVAL with the first broken one in why (also for a torn view). */
int bcache_check(const struct uk_bcache *t, char *why, size_t len);
/* What a cache adoption did (kdisk.h's header has the rules). */
struct bcache_adopt_stats {
  uint32_t adopted; /* dirty blocks now entries here, still dirty */
  uint32_t segs;    /* dead segments now this cache's (no byte copied) */
  uint32_t over;    /* of them, past this cache's size setting */
  uint32_t written; /* dirty blocks written back now: no room here */
  uint32_t torn;    /* dirty entries dropped: inconsistent with the tables */
  uint32_t stale;   /* dirty entries dropped: a later write of their block */
  /* Called after each segment written back now, when set (the caller's):
   * the failover's kernel keeps its heartbeat going. */
  void (*tick)(void *arg);
  void *tick_arg;
};

/* Adopts the dirty blocks of a dead kernel's cache (dead: a read-only view
 * of its kernel-data region) into bc, as kdisk.h's header says (st's
 * counts zeroed here, its tick kept).  ica_fd:
 * the dead kernel's ICAs as descriptors by ICA index (-1 none); a
 * descriptor adopted is taken (set to -1), the others stay the caller's.
 * Every entry is checked; a segment that cannot be mapped has its blocks
 * torn.  Returns 0, -EINVAL for a region that is not a kernel-data region
 * of this layout, or the first failed write-back of a segment that did not
 * fit (its blocks are lost, as in kdisk_writeback_from).  Not thread-safe. */
int bcache_adopt(struct bcache *bc, const struct uk_kdata *dead, int *ica_fd,
                 struct bcache_adopt_stats *st);
/* The table, for counters. */
const struct uk_bcache *bcache_table(const struct bcache *bc);

#endif /* UKSIM_KDISK_H */
