/* diskfs_layout.h: diskfs's on-disk file system (servers/diskfs.c serves
 * it over 9P), as functions over a block device given by two calls.  No
 * kernel calls: the unit tests run it over a buffer in memory.
 *
 * The layout, in blocks of DFS_BSIZE bytes, numbers little-endian:
 *
 *   block 0                superblock: magic "UKDISKFS", version,
 *                          block size, blocks, inodes, where each region
 *                          starts
 *   1 .. 1+DFS_ITBLOCKS    inode table: DFS_NINODES inodes of 256 bytes
 *                          (16 a block); inode 0 is the root directory
 *   then DFS_BMBLOCKS(n)   block bitmap, bit b set: block b is in use
 *                          (the metadata blocks are set too)
 *   then to the end        data blocks and indirect blocks
 *
 * An inode (offsets in bytes):
 *   0 used (0 or 1)    4 mode (9P: DMDIR, DMAPPEND, DMEXCL, 0777)
 *   8 length (u64)    16 mtime   20 parent   24 gen   28 vers
 *  32 name[128] (NUL-terminated)  160 uid[28] (NUL-terminated)
 * 188 direct[16]     252 indirect (a block of 1024 pointers)
 * A pointer is a block number, 0 for a hole (reads as zeros; block 0 is
 * never data).  Every pointer of a block past the length is 0, and the
 * bytes past the length in its last block are zero.  A directory has no
 * blocks: a file's directory is its inode's parent, and a directory read
 * scans the table.  An inode's qid path is gen << 32 | index; gen goes up
 * when the inode is freed, so a fid on a removed file never names its
 * successor.
 *
 * Crash safety: blocks are never overwritten in place except inode table
 * and bitmap blocks.  A change to a file (write, truncate, create,
 * remove, rename, wstat) writes its new data blocks and new indirect
 * block to free blocks first, then the one inode table block holding the
 * inode (the commit), then the bitmap blocks it changed.  The device is
 * expected to write each DFS_BSIZE block whole or not at all; a write cut
 * off anywhere then leaves each file as it was before the request or
 * after it, never a mix, and no block used twice.  A cut between the
 * commit and the bitmap leaves the bitmap stale; mount recomputes the
 * bitmap from the inodes anyway (dfs_mount's check) and writes it back
 * when it differs, so the only cost of a crash is that repair.
 *
 * Ordering: the guarantee needs the device to keep the order of the
 * writes across the commit.  A device that writes through in order (a
 * file another server holds) needs nothing; one behind a write-back
 * cache that may reorder (#S/sd0/data, whose ctl takes "sync") is given a
 * barrier, called before the commit when the request wrote new blocks
 * (they are on the medium before the inode naming them) and after it
 * (the commit is on the medium before a later request reuses the blocks
 * it freed, and before the client hears the answer).  Bitmap blocks
 * need no barrier: mount repairs them.
 *
 * Device interface: reads and writes of whole DFS_BSIZE blocks at
 * offsets that are multiples of DFS_BSIZE; a call may move fewer bytes
 * (it is called again for the rest); one that moves none or fails is an
 * I/O error (-EIO), except the superblock's read, which means "not
 * formatted" when it moves none.  A block 0 of zeros is not formatted
 * either; one that holds anything else but a superblock is refused, never
 * formatted over.
 */
#ifndef SERVERS_DISKFS_LAYOUT_H
#define SERVERS_DISKFS_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DFS_MAGIC "UKDISKFS"
#define DFS_VERSION 1
#define DFS_BSIZE 4096u   /* bytes of a file system block */
#define DFS_NINODES 1024u /* files and directories, the root included */
#define DFS_INODE_SIZE 256u
#define DFS_ITBLOCKS (DFS_NINODES * DFS_INODE_SIZE / DFS_BSIZE)
#define DFS_NDIRECT 16u                /* direct pointers of an inode */
#define DFS_NINDIRECT (DFS_BSIZE / 4u) /* pointers of the indirect block */
#define DFS_NPTR (DFS_NDIRECT + DFS_NINDIRECT)
/* Largest file: 1040 blocks, 4,259,840 bytes (64 KiB direct). */
#define DFS_FILE_MAX ((uint64_t)DFS_NPTR * DFS_BSIZE)
#define DFS_NAME_MAX 127u /* bytes of a file name */
#define DFS_UID_MAX 27u   /* bytes of an owner's name (Plan 9's 28) */
/* Device sizes a file system may take: room for the metadata and some
 * data, and a bitmap of at most 128 blocks (512 KiB in memory). */
#define DFS_SIZE_MIN (1ull << 20)
#define DFS_SIZE_MAX (16ull << 30)
#define DFS_BMBLOCKS(nblocks)                                                  \
  (((nblocks) + DFS_BSIZE * 8 - 1) / (DFS_BSIZE * 8))

struct dfs_dev {
  void *arg;
  /* Bytes moved (may be short), or a negative errno. */
  long (*pread)(void *arg, void *buf, size_t n, uint64_t off);
  long (*pwrite)(void *arg, const void *buf, size_t n, uint64_t off);
  /* Optional (NULL: the device writes through, in order): every write
   * before it is on the medium before any write after it; 0 or -errno. */
  int (*barrier)(void *arg);
};

struct dfs_inode {
  uint32_t used, mode;
  uint64_t length;
  uint32_t mtime, parent, gen, vers;
  char name[DFS_NAME_MAX + 1];
  char uid[DFS_UID_MAX + 1];
  uint32_t direct[DFS_NDIRECT];
  uint32_t indirect;
};

struct dfs {
  struct dfs_dev dev;
  uint32_t nblocks, ninodes, bitmap_start, data_start;
  struct dfs_inode *ino; /* the inode table as on the device */
  uint8_t *bm;           /* the bitmap as on the device */
  uint32_t rotor;        /* where the next allocation looks first */
  uint32_t bm_lo, bm_hi; /* bitmap blocks changed since written: [lo, hi) */
  uint32_t repaired;     /* bitmap bits mount found stale and rewrote */
};

/* Writes an empty file system (a root directory owned by uid) over size
 * bytes of dev.  0 or a negative errno (-EINVAL: a size out of range). */
int dfs_format(const struct dfs_dev *dev, uint64_t size, const char *uid);
/* Reads and checks the file system on dev, which holds size bytes:
 * 0, -ENODATA when dev is not formatted (block 0 missing or zeros), -EUCLEAN
 * with the reason in why when it is not a sound file system, another
 * negative errno for an I/O error.  A stale bitmap is repaired. */
int dfs_mount(struct dfs *fs, const struct dfs_dev *dev, uint64_t size,
              char *why, size_t whylen);
void dfs_unmount(struct dfs *fs);

/* The live inode of qid path / aux value gen << 32 | index, or -1. */
long dfs_lookup_aux(const struct dfs *fs, uint64_t aux);
uint64_t dfs_aux(const struct dfs *fs, uint32_t i);
/* The child of directory dir named name (len bytes), or -1. */
long dfs_find(const struct dfs *fs, uint32_t dir, const char *name, size_t len);
/* The k-th child of dir (in table order) at or after *pos, which moves
 * past it: -1 at the end. */
long dfs_next_child(const struct dfs *fs, uint32_t dir, uint32_t *pos);
/* Blocks not in use. */
uint32_t dfs_free_blocks(const struct dfs *fs);

/* Creates name (len bytes) in directory dir: the new inode's index or a
 * negative errno (-EEXIST, -ENOSPC: no inode, -ENAMETOOLONG...). */
long dfs_create(struct dfs *fs, uint32_t dir, const char *name, size_t len,
                uint32_t mode, const char *uid, uint32_t mtime);
/* Removes inode i (not the root, not a directory with children). */
int dfs_remove(struct dfs *fs, uint32_t i);
/* Reads up to n bytes at off: the count (0 past the end) or -errno. */
long dfs_read(struct dfs *fs, uint32_t i, uint64_t off, void *buf, size_t n);
/* Writes n bytes at off, all or nothing: n or -errno (-EFBIG, -ENOSPC). */
long dfs_write(struct dfs *fs, uint32_t i, uint64_t off, const void *buf,
               size_t n, uint32_t mtime);
/* Makes file i len bytes long (zeros when it grows). */
int dfs_truncate(struct dfs *fs, uint32_t i, uint64_t len, uint32_t mtime);

/* What a wstat changes of an inode, in one commit: all of it or none. */
struct dfs_attr {
  uint64_t length;  /* DFS_KEEP64: kept (a directory's is always kept) */
  const char *name; /* NULL: kept; else name_len bytes, free in its dir */
  size_t name_len;
  uint32_t mode;  /* DFS_KEEP32: kept; the DMDIR bit is the inode's */
  uint32_t mtime; /* DFS_KEEP32: kept */
};
#define DFS_KEEP32 0xffffffffu
#define DFS_KEEP64 0xffffffffffffffffull
/* 0 if dfs_change(fs, i, a) would succeed but for an I/O error. */
int dfs_change_check(const struct dfs *fs, uint32_t i,
                     const struct dfs_attr *a);
int dfs_change(struct dfs *fs, uint32_t i, const struct dfs_attr *a);

#endif
