/* diskfs_layout.c: diskfs's on-disk file system (see diskfs_layout.h for
 * the layout and what a cut-off write leaves).
 *
 * The inode table and the bitmap are read whole at mount and kept in
 * memory as they are on the device: every change is made to a copy,
 * written, and only then taken into memory, so a failed write leaves the
 * memory and the device as they were.  A change to a file is a
 * transaction (struct tx): its block pointers before and after, the new
 * blocks written to free blocks, then one inode table block (the commit),
 * then the old blocks freed and the bitmap written.
 */
#include "diskfs_layout.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PER_BLOCK (DFS_BSIZE / DFS_INODE_SIZE)

/* --- numbers on the device ------------------------------------------- */

static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

static uint64_t get64(const uint8_t *p) {
  return get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void put64(uint8_t *p, uint64_t v) {
  put32(p, (uint32_t)v);
  put32(p + 4, (uint32_t)(v >> 32));
}

static void inode_put(uint8_t *p, const struct dfs_inode *n) {
  memset(p, 0, DFS_INODE_SIZE);
  put32(p, n->used);
  put32(p + 4, n->mode);
  put64(p + 8, n->length);
  put32(p + 16, n->mtime);
  put32(p + 20, n->parent);
  put32(p + 24, n->gen);
  put32(p + 28, n->vers);
  memcpy(p + 32, n->name, strnlen(n->name, DFS_NAME_MAX));
  memcpy(p + 160, n->uid, strnlen(n->uid, DFS_UID_MAX));
  for (uint32_t k = 0; k < DFS_NDIRECT; k++)
    put32(p + 188 + 4 * k, n->direct[k]);
  put32(p + 252, n->indirect);
}

/* Decodes an inode; the strings are cut at their last byte so that a
 * missing NUL never runs past them (the check says which is bad). */
static void inode_get(const uint8_t *p, struct dfs_inode *n) {
  n->used = get32(p);
  n->mode = get32(p + 4);
  n->length = get64(p + 8);
  n->mtime = get32(p + 16);
  n->parent = get32(p + 20);
  n->gen = get32(p + 24);
  n->vers = get32(p + 28);
  memcpy(n->name, p + 32, DFS_NAME_MAX + 1);
  memcpy(n->uid, p + 160, DFS_UID_MAX + 1);
  for (uint32_t k = 0; k < DFS_NDIRECT; k++)
    n->direct[k] = get32(p + 188 + 4 * k);
  n->indirect = get32(p + 252);
}

/* --- blocks ---------------------------------------------------------- */

/* Reads block b whole; -ENODATA if the device gave no byte at all. */
static int blk_read(const struct dfs_dev *d, uint32_t b, void *buf) {
  size_t got = 0;
  while (got < DFS_BSIZE) {
    long n = d->pread(d->arg, (uint8_t *)buf + got, DFS_BSIZE - got,
                      (uint64_t)b * DFS_BSIZE + got);
    if (n < 0)
      return (int)n;
    if (n == 0)
      return got == 0 ? -ENODATA : -EIO;
    got += (size_t)n;
  }
  return 0;
}

static int blk_read_io(const struct dfs_dev *d, uint32_t b, void *buf) {
  int r = blk_read(d, b, buf);
  return r == -ENODATA ? -EIO : r;
}

static int blk_write(const struct dfs_dev *d, uint32_t b, const void *buf) {
  size_t put = 0;
  while (put < DFS_BSIZE) {
    long n = d->pwrite(d->arg, (const uint8_t *)buf + put, DFS_BSIZE - put,
                       (uint64_t)b * DFS_BSIZE + put);
    if (n <= 0)
      return n < 0 ? (int)n : -EIO;
    put += (size_t)n;
  }
  return 0;
}

static bool bit(const uint8_t *bm, uint32_t b) {
  return bm[b / 8] >> (b % 8) & 1;
}

static void set_bit(struct dfs *fs, uint32_t b, bool on) {
  uint32_t blk = b / (DFS_BSIZE * 8);
  if (on)
    fs->bm[b / 8] |= (uint8_t)(1u << (b % 8));
  else
    fs->bm[b / 8] &= (uint8_t) ~(1u << (b % 8));
  if (fs->bm_lo == fs->bm_hi)
    fs->bm_lo = fs->bm_hi = blk;
  if (blk < fs->bm_lo)
    fs->bm_lo = blk;
  if (blk + 1 > fs->bm_hi)
    fs->bm_hi = blk + 1;
}

/* A free block, now in use, or 0 when none is left. */
static uint32_t alloc_block(struct dfs *fs) {
  uint32_t span = fs->nblocks - fs->data_start;
  for (uint32_t k = 0; k < span; k++) {
    uint32_t b = fs->data_start + (fs->rotor - fs->data_start + k) % span;
    if (!bit(fs->bm, b)) {
      set_bit(fs, b, true);
      fs->rotor = b + 1 < fs->nblocks ? b + 1 : fs->data_start;
      return b;
    }
  }
  return 0;
}

/* Writes the bitmap blocks changed since the last time.  A failure is
 * not the caller's: the change it committed stands, and mount repairs a
 * stale bitmap. */
static void bitmap_flush(struct dfs *fs) {
  for (uint32_t k = fs->bm_lo; k < fs->bm_hi; k++)
    if (blk_write(&fs->dev, fs->bitmap_start + k, fs->bm + k * DFS_BSIZE) < 0)
      return;
  fs->bm_lo = fs->bm_hi = 0;
}

uint32_t dfs_free_blocks(const struct dfs *fs) {
  uint32_t n = 0;
  for (uint32_t b = fs->data_start; b < fs->nblocks; b++)
    n += !bit(fs->bm, b);
  return n;
}

/* Writes the inode table block of inode i with n in its place. */
static int inode_write(struct dfs *fs, uint32_t i, const struct dfs_inode *n) {
  uint8_t buf[DFS_BSIZE];
  uint32_t first = i / PER_BLOCK * PER_BLOCK;
  for (uint32_t k = 0; k < PER_BLOCK; k++)
    inode_put(buf + k * DFS_INODE_SIZE,
              first + k == i ? n : &fs->ino[first + k]);
  return blk_write(&fs->dev, 1 + i / PER_BLOCK, buf);
}

static int barrier(struct dfs *fs) {
  return fs->dev.barrier ? fs->dev.barrier(fs->dev.arg) : 0;
}

/* --- transactions ---------------------------------------------------- */

struct tx {
  uint32_t i;
  bool wrote; /* new blocks written: a barrier before the commit */
  struct dfs_inode nw;
  uint32_t optr[DFS_NPTR], nptr[DFS_NPTR];
};

static uint32_t nblk(uint64_t len) {
  return (uint32_t)((len + DFS_BSIZE - 1) / DFS_BSIZE);
}

/* The block pointers of inode n, the indirect ones read from its block. */
static int load_ptrs(struct dfs *fs, const struct dfs_inode *n, uint32_t *ptr) {
  uint8_t buf[DFS_BSIZE];
  int r;
  memcpy(ptr, n->direct, sizeof(n->direct));
  memset(ptr + DFS_NDIRECT, 0, DFS_NINDIRECT * 4);
  if (!n->indirect)
    return 0;
  if ((r = blk_read_io(&fs->dev, n->indirect, buf)) < 0)
    return r;
  for (uint32_t k = 0; k < DFS_NINDIRECT; k++)
    ptr[DFS_NDIRECT + k] = get32(buf + 4 * k);
  return 0;
}

static int tx_begin(struct dfs *fs, uint32_t i, struct tx *t) {
  t->i = i;
  t->wrote = false;
  t->nw = fs->ino[i];
  int r = load_ptrs(fs, &fs->ino[i], t->optr);
  memcpy(t->nptr, t->optr, sizeof(t->optr));
  return r;
}

/* Gives back the blocks the transaction took; returns err. */
static int tx_abort(struct dfs *fs, struct tx *t, uint32_t newind, int err) {
  for (uint32_t k = 0; k < DFS_NPTR; k++)
    if (t->nptr[k] && t->nptr[k] != t->optr[k])
      set_bit(fs, t->nptr[k], false);
  if (newind)
    set_bit(fs, newind, false);
  return err;
}

static bool needs_indirect(const uint32_t *ptr) {
  for (uint32_t k = DFS_NDIRECT; k < DFS_NPTR; k++)
    if (ptr[k])
      return true;
  return false;
}

/* A new indirect block for t->nptr, written; 0 if none is needed, the
 * old one if its pointers did not change, or a negative errno. */
static long write_indirect(struct dfs *fs, struct tx *t) {
  uint8_t buf[DFS_BSIZE];
  uint32_t b;
  int r;
  if (!needs_indirect(t->nptr))
    return 0;
  if (memcmp(t->nptr + DFS_NDIRECT, t->optr + DFS_NDIRECT, DFS_NINDIRECT * 4) ==
          0 &&
      fs->ino[t->i].indirect)
    return fs->ino[t->i].indirect;
  if (!(b = alloc_block(fs)))
    return -ENOSPC;
  for (uint32_t k = 0; k < DFS_NINDIRECT; k++)
    put32(buf + 4 * k, t->nptr[DFS_NDIRECT + k]);
  if ((r = blk_write(&fs->dev, b, buf)) < 0) {
    set_bit(fs, b, false);
    return r;
  }
  t->wrote = true;
  return b;
}

/* The commit: the new indirect block, then the inode's table block; the
 * old blocks are freed only once that is written. */
static int tx_commit(struct dfs *fs, struct tx *t) {
  const struct dfs_inode *old = &fs->ino[t->i];
  long ind = write_indirect(fs, t);
  uint32_t newind;
  int r;
  if (ind < 0)
    return tx_abort(fs, t, 0, (int)ind);
  newind = ind != old->indirect ? (uint32_t)ind : 0;
  memcpy(t->nw.direct, t->nptr, sizeof(t->nw.direct));
  t->nw.indirect = (uint32_t)ind;
  if ((t->wrote && (r = barrier(fs)) < 0) ||
      (r = inode_write(fs, t->i, &t->nw)) < 0)
    return tx_abort(fs, t, newind, r);
  /* Written, so committed as far as this process knows: a barrier that
   * fails now leaves the device's order unknown, said to the caller,
   * but memory follows the write. */
  r = barrier(fs);
  for (uint32_t k = 0; k < DFS_NPTR; k++)
    if (t->optr[k] && t->optr[k] != t->nptr[k])
      set_bit(fs, t->optr[k], false);
  if (old->indirect && old->indirect != (uint32_t)ind)
    set_bit(fs, old->indirect, false);
  fs->ino[t->i] = t->nw;
  bitmap_flush(fs);
  return r;
}

/* Replaces block k of the transaction's file with a copy whose bytes
 * [from, to) are src (NULL: zeros); the rest is kept from the old block
 * (or zeros for a hole). */
static int cow_block(struct dfs *fs, struct tx *t, uint32_t k, size_t from,
                     size_t to, const void *src) {
  uint8_t buf[DFS_BSIZE];
  uint32_t b;
  int r;
  if (from == 0 && to == DFS_BSIZE)
    ;
  else if (t->optr[k] && (r = blk_read_io(&fs->dev, t->optr[k], buf)) < 0)
    return r;
  else if (!t->optr[k])
    memset(buf, 0, sizeof(buf));
  if (src)
    memcpy(buf + from, src, to - from);
  else
    memset(buf + from, 0, to - from);
  if (!(b = alloc_block(fs)))
    return -ENOSPC;
  if ((r = blk_write(&fs->dev, b, buf)) < 0) {
    set_bit(fs, b, false);
    return r;
  }
  t->nptr[k] = b;
  t->wrote = true;
  return 0;
}

/* --- format and mount ------------------------------------------------ */

struct geom {
  uint32_t nblocks, bitmap_start, data_start;
};

static int geometry(uint64_t size, struct geom *g) {
  if (size < DFS_SIZE_MIN || size > DFS_SIZE_MAX)
    return -EINVAL;
  g->nblocks = (uint32_t)(size / DFS_BSIZE);
  g->bitmap_start = 1 + DFS_ITBLOCKS;
  g->data_start = g->bitmap_start + DFS_BMBLOCKS(g->nblocks);
  return 0;
}

static void super_put(uint8_t *p, const struct geom *g) {
  memset(p, 0, DFS_BSIZE);
  memcpy(p, DFS_MAGIC, 8);
  put32(p + 8, DFS_VERSION);
  put32(p + 12, DFS_BSIZE);
  put32(p + 16, g->nblocks);
  put32(p + 20, DFS_NINODES);
  put32(p + 24, 1);
  put32(p + 28, g->bitmap_start);
  put32(p + 32, g->data_start);
}

/* The bitmap of a file system with no data: its metadata blocks. */
static void bitmap_base(uint8_t *bm, uint32_t data_start) {
  for (uint32_t b = 0; b < data_start; b++)
    bm[b / 8] |= (uint8_t)(1u << (b % 8));
}

/* The superblock is written last: a format cut off before it leaves a
 * device that is still not formatted. */
int dfs_format(const struct dfs_dev *dev, uint64_t size, const char *uid) {
  uint8_t buf[DFS_BSIZE];
  struct dfs_inode root = {.used = 1, .mode = 0x80000000u | 0775};
  struct geom g;
  int r;
  if ((r = geometry(size, &g)) < 0)
    return r;
  snprintf(root.name, sizeof root.name, "/");
  snprintf(root.uid, sizeof root.uid, "%.*s", (int)DFS_UID_MAX, uid);
  for (uint32_t b = 1; b < g.data_start; b++) {
    memset(buf, 0, sizeof buf);
    if (b == 1)
      inode_put(buf, &root);
    if (b >= g.bitmap_start) {
      uint8_t *bm = calloc(DFS_BMBLOCKS(g.nblocks), DFS_BSIZE);
      if (!bm)
        return -ENOMEM;
      bitmap_base(bm, g.data_start);
      memcpy(buf, bm + (size_t)(b - g.bitmap_start) * DFS_BSIZE, DFS_BSIZE);
      free(bm);
    }
    if ((r = blk_write(dev, b, buf)) < 0)
      return r;
  }
  super_put(buf, &g);
  if (dev->barrier && (r = dev->barrier(dev->arg)) < 0)
    return r;
  if ((r = blk_write(dev, 0, buf)) < 0)
    return r;
  return dev->barrier ? dev->barrier(dev->arg) : 0;
}

#define BAD(...)                                                               \
  do {                                                                         \
    snprintf(why, whylen, __VA_ARGS__);                                        \
    return -EUCLEAN;                                                           \
  } while (0)

static bool all_zero(const uint8_t *p, size_t n) {
  for (size_t k = 0; k < n; k++)
    if (p[k])
      return false;
  return true;
}

static int super_check(struct dfs *fs, const uint8_t *p, uint64_t size,
                       char *why, size_t whylen) {
  struct geom g;
  if (memcmp(p, DFS_MAGIC, 8) != 0 && all_zero(p, DFS_BSIZE))
    return -ENODATA;
  if (memcmp(p, DFS_MAGIC, 8) != 0)
    BAD("block 0 holds something that is not diskfs's superblock: "
        "not formatting over it");
  if (get32(p + 8) != DFS_VERSION)
    BAD("version %u, not %u", get32(p + 8), DFS_VERSION);
  if (get32(p + 12) != DFS_BSIZE || get32(p + 20) != DFS_NINODES ||
      get32(p + 24) != 1)
    BAD("block size %u, %u inodes: not this layout's", get32(p + 12),
        get32(p + 20));
  if ((uint64_t)get32(p + 16) * DFS_BSIZE > size)
    BAD("the file system is %u blocks, the device only %llu bytes",
        get32(p + 16), (unsigned long long)size);
  if (geometry((uint64_t)get32(p + 16) * DFS_BSIZE, &g) < 0 ||
      g.bitmap_start != get32(p + 28) || g.data_start != get32(p + 32))
    BAD("the superblock's regions do not agree with its %u blocks",
        get32(p + 16));
  fs->nblocks = g.nblocks;
  fs->ninodes = DFS_NINODES;
  fs->bitmap_start = g.bitmap_start;
  fs->data_start = g.data_start;
  return 0;
}

static int read_table(struct dfs *fs) {
  uint8_t buf[DFS_BSIZE];
  int r;
  for (uint32_t b = 0; b < DFS_ITBLOCKS; b++) {
    if ((r = blk_read_io(&fs->dev, 1 + b, buf)) < 0)
      return r;
    for (uint32_t k = 0; k < PER_BLOCK; k++)
      inode_get(buf + k * DFS_INODE_SIZE, &fs->ino[b * PER_BLOCK + k]);
  }
  return 0;
}

static bool name_ok(const char *s, size_t max, bool slash_ok) {
  size_t n = strnlen(s, max + 1);
  return n > 0 && n <= max && (slash_ok || !memchr(s, '/', n));
}

/* Marks block b, pointer k of inode i, as used in seen; why if it is out
 * of range or used twice. */
static int claim(struct dfs *fs, uint8_t *seen, uint32_t i, uint32_t b,
                 char *why, size_t whylen) {
  if (b < fs->data_start || b >= fs->nblocks)
    BAD("inode %u points at block %u, outside the data blocks", i, b);
  if (bit(seen, b))
    BAD("block %u is used twice (inode %u)", b, i);
  seen[b / 8] |= (uint8_t)(1u << (b % 8));
  return 0;
}

static int check_blocks(struct dfs *fs, uint8_t *seen, uint32_t i, char *why,
                        size_t whylen) {
  const struct dfs_inode *n = &fs->ino[i];
  uint32_t ptr[DFS_NPTR], have = nblk(n->length);
  int r;
  if (n->indirect && (r = claim(fs, seen, i, n->indirect, why, whylen)) < 0)
    return r;
  if (n->indirect && have <= DFS_NDIRECT)
    BAD("inode %u has an indirect block it does not need", i);
  if ((r = load_ptrs(fs, n, ptr)) < 0)
    return r;
  for (uint32_t k = 0; k < DFS_NPTR; k++) {
    if (ptr[k] && k >= have)
      BAD("inode %u has block %u past its length", i, k);
    if (ptr[k] && (r = claim(fs, seen, i, ptr[k], why, whylen)) < 0)
      return r;
  }
  return 0;
}

static int check_inode(struct dfs *fs, uint8_t *seen, uint32_t i, char *why,
                       size_t whylen) {
  const struct dfs_inode *n = &fs->ino[i];
  bool dir = n->mode & 0x80000000u;
  if (n->used != 1)
    BAD("inode %u: used is %u", i, n->used);
  if (!name_ok(n->name, DFS_NAME_MAX, i == 0) ||
      !name_ok(n->uid, DFS_UID_MAX, 1))
    BAD("inode %u has a bad name or owner", i);
  if (n->parent >= fs->ninodes || fs->ino[n->parent].used != 1 ||
      !(fs->ino[n->parent].mode & 0x80000000u) || (i == 0 && n->parent != 0))
    BAD("inode %u's directory %u is not a directory", i, n->parent);
  if (n->length > DFS_FILE_MAX || (dir && (n->length || n->indirect)))
    BAD("inode %u is %llu bytes long", i, (unsigned long long)n->length);
  return check_blocks(fs, seen, i, why, whylen);
}

/* Every inode reaches the root through its directories, and no two in a
 * directory share a name. */
static int check_tree(struct dfs *fs, char *why, size_t whylen) {
  for (uint32_t i = 1; i < fs->ninodes; i++) {
    uint32_t a = i, steps = 0;
    if (!fs->ino[i].used)
      continue;
    while (a != 0 && steps++ < fs->ninodes)
      a = fs->ino[a].parent;
    if (a != 0)
      BAD("inode %u is in a loop of directories", i);
    for (uint32_t j = i + 1; j < fs->ninodes; j++)
      if (fs->ino[j].used && fs->ino[j].parent == fs->ino[i].parent &&
          strcmp(fs->ino[j].name, fs->ino[i].name) == 0)
        BAD("inodes %u and %u are both '%s'", i, j, fs->ino[i].name);
  }
  return 0;
}

static int check(struct dfs *fs, uint8_t *seen, char *why, size_t whylen) {
  int r;
  if (!fs->ino[0].used || !(fs->ino[0].mode & 0x80000000u))
    BAD("the root is not a directory");
  bitmap_base(seen, fs->data_start);
  for (uint32_t i = 0; i < fs->ninodes; i++) {
    if (fs->ino[i].used == 0)
      continue;
    if ((r = check_inode(fs, seen, i, why, whylen)) < 0)
      return r;
  }
  return check_tree(fs, why, whylen);
}

/* Takes the bitmap computed from the inodes (seen) in place of the one
 * read, writing back the blocks that differ. */
static int bitmap_repair(struct dfs *fs, uint8_t *seen) {
  uint32_t nbm = DFS_BMBLOCKS(fs->nblocks);
  for (uint32_t b = 0; b < fs->nblocks; b++)
    fs->repaired += bit(seen, b) != bit(fs->bm, b);
  for (uint32_t k = 0; k < nbm; k++) {
    size_t at = (size_t)k * DFS_BSIZE;
    if (memcmp(seen + at, fs->bm + at, DFS_BSIZE) == 0)
      continue;
    int r = blk_write(&fs->dev, fs->bitmap_start + k, seen + at);
    if (r < 0)
      return r;
  }
  memcpy(fs->bm, seen, (size_t)nbm * DFS_BSIZE);
  return 0;
}

static int read_bitmap(struct dfs *fs) {
  int r;
  for (uint32_t k = 0; k < DFS_BMBLOCKS(fs->nblocks); k++)
    if ((r = blk_read_io(&fs->dev, fs->bitmap_start + k,
                         fs->bm + (size_t)k * DFS_BSIZE)) < 0)
      return r;
  return 0;
}

static int mount_checked(struct dfs *fs, uint64_t size, char *why,
                         size_t whylen) {
  uint8_t sb[DFS_BSIZE], *seen;
  size_t bmbytes;
  int r = blk_read(&fs->dev, 0, sb);
  if (r < 0 || (r = super_check(fs, sb, size, why, whylen)) < 0)
    return r;
  bmbytes = (size_t)DFS_BMBLOCKS(fs->nblocks) * DFS_BSIZE;
  fs->ino = calloc(fs->ninodes, sizeof(*fs->ino));
  fs->bm = calloc(1, bmbytes);
  seen = calloc(1, bmbytes);
  if (!fs->ino || !fs->bm || !seen)
    r = -ENOMEM;
  if (r == 0)
    r = read_table(fs);
  if (r == 0)
    r = read_bitmap(fs);
  if (r == 0)
    r = check(fs, seen, why, whylen);
  if (r == 0)
    r = bitmap_repair(fs, seen);
  free(seen);
  return r;
}

int dfs_mount(struct dfs *fs, const struct dfs_dev *dev, uint64_t size,
              char *why, size_t whylen) {
  int r;
  *fs = (struct dfs){.dev = *dev};
  if ((r = mount_checked(fs, size, why, whylen)) < 0) {
    dfs_unmount(fs);
    return r;
  }
  fs->rotor = fs->data_start;
  return 0;
}

void dfs_unmount(struct dfs *fs) {
  free(fs->ino);
  free(fs->bm);
  fs->ino = NULL;
  fs->bm = NULL;
}

/* --- the tree -------------------------------------------------------- */

uint64_t dfs_aux(const struct dfs *fs, uint32_t i) {
  return (uint64_t)fs->ino[i].gen << 32 | i;
}

long dfs_lookup_aux(const struct dfs *fs, uint64_t aux) {
  uint32_t i = (uint32_t)aux;
  if (i >= fs->ninodes || !fs->ino[i].used ||
      fs->ino[i].gen != (uint32_t)(aux >> 32))
    return -1;
  return i;
}

static bool is_dir(const struct dfs *fs, uint32_t i) {
  return fs->ino[i].mode & 0x80000000u;
}

long dfs_find(const struct dfs *fs, uint32_t dir, const char *name,
              size_t len) {
  for (uint32_t i = 1; i < fs->ninodes; i++)
    if (fs->ino[i].used && fs->ino[i].parent == dir &&
        strnlen(fs->ino[i].name, DFS_NAME_MAX + 1) == len &&
        memcmp(fs->ino[i].name, name, len) == 0)
      return i;
  return -1;
}

long dfs_next_child(const struct dfs *fs, uint32_t dir, uint32_t *pos) {
  for (uint32_t i = *pos < 1 ? 1 : *pos; i < fs->ninodes; i++)
    if (fs->ino[i].used && fs->ino[i].parent == dir) {
      *pos = i + 1;
      return i;
    }
  *pos = fs->ninodes;
  return -1;
}

static int name_check(const struct dfs *fs, uint32_t dir, const char *name,
                      size_t len) {
  if (len == 0 || memchr(name, '/', len) || memchr(name, '\0', len))
    return -EINVAL;
  if (len > DFS_NAME_MAX)
    return -ENAMETOOLONG;
  return dfs_find(fs, dir, name, len) >= 0 ? -EEXIST : 0;
}

long dfs_create(struct dfs *fs, uint32_t dir, const char *name, size_t len,
                uint32_t mode, const char *uid, uint32_t mtime) {
  struct tx t;
  uint32_t i = 1;
  int r;
  if (dir >= fs->ninodes || !fs->ino[dir].used || !is_dir(fs, dir))
    return -ENOTDIR;
  if ((r = name_check(fs, dir, name, len)) < 0)
    return r;
  while (i < fs->ninodes && fs->ino[i].used)
    i++;
  if (i == fs->ninodes)
    return -ENOSPC;
  if ((r = tx_begin(fs, i, &t)) < 0)
    return r;
  t.nw = (struct dfs_inode){.used = 1,
                            .mode = mode,
                            .mtime = mtime,
                            .parent = dir,
                            .gen = fs->ino[i].gen};
  memcpy(t.nw.name, name, len);
  snprintf(t.nw.uid, sizeof t.nw.uid, "%.*s", (int)DFS_UID_MAX, uid);
  if ((r = tx_commit(fs, &t)) < 0)
    return r;
  return i;
}

int dfs_remove(struct dfs *fs, uint32_t i) {
  struct tx t;
  uint32_t pos = 0;
  int r;
  if (i == 0)
    return -EPERM;
  if (is_dir(fs, i) && dfs_next_child(fs, i, &pos) >= 0)
    return -ENOTEMPTY;
  if ((r = tx_begin(fs, i, &t)) < 0)
    return r;
  memset(t.nptr, 0, sizeof(t.nptr));
  t.nw = (struct dfs_inode){.gen = fs->ino[i].gen + 1};
  return tx_commit(fs, &t);
}

long dfs_read(struct dfs *fs, uint32_t i, uint64_t off, void *buf, size_t n) {
  const struct dfs_inode *in = &fs->ino[i];
  uint32_t ptr[DFS_NPTR];
  uint8_t blk[DFS_BSIZE];
  size_t done = 0;
  int r;
  if (off >= in->length)
    return 0;
  if (n > in->length - off)
    n = (size_t)(in->length - off);
  if ((r = load_ptrs(fs, in, ptr)) < 0)
    return r;
  while (done < n) {
    uint64_t at = off + done;
    uint32_t k = (uint32_t)(at / DFS_BSIZE), from = (uint32_t)(at % DFS_BSIZE);
    size_t take = DFS_BSIZE - from < n - done ? DFS_BSIZE - from : n - done;
    if (!ptr[k])
      memset(blk, 0, sizeof blk);
    else if ((r = blk_read_io(&fs->dev, ptr[k], blk)) < 0)
      return r;
    memcpy((uint8_t *)buf + done, blk + from, take);
    done += take;
  }
  return (long)n;
}

long dfs_write(struct dfs *fs, uint32_t i, uint64_t off, const void *buf,
               size_t n, uint32_t mtime) {
  struct tx t;
  uint64_t end = off + n;
  int r;
  if (is_dir(fs, i))
    return -EISDIR;
  if (end < off || end > DFS_FILE_MAX)
    return -EFBIG;
  if ((r = tx_begin(fs, i, &t)) < 0)
    return r;
  for (uint64_t at = off; at < end;) {
    uint32_t k = (uint32_t)(at / DFS_BSIZE), from = (uint32_t)(at % DFS_BSIZE);
    size_t to =
        end - at < DFS_BSIZE - from ? from + (size_t)(end - at) : DFS_BSIZE;
    if ((r = cow_block(fs, &t, k, from, to,
                       (const uint8_t *)buf + (at - off))) < 0)
      return tx_abort(fs, &t, 0, r);
    at += to - from;
  }
  if (end > t.nw.length)
    t.nw.length = end;
  t.nw.mtime = mtime;
  t.nw.vers++;
  return (r = tx_commit(fs, &t)) < 0 ? r : (long)n;
}

/* Makes the transaction's file len bytes long: blocks past it go, and
 * the tail of a kept last block is zeroed in a copy. */
static int tx_length(struct dfs *fs, struct tx *t, uint64_t len) {
  uint32_t keep = nblk(len), tail = (uint32_t)(len % DFS_BSIZE);
  int r;
  if (len < t->nw.length) {
    for (uint32_t k = keep; k < DFS_NPTR; k++)
      t->nptr[k] = 0;
    if (tail && t->optr[keep - 1] &&
        (r = cow_block(fs, t, keep - 1, tail, DFS_BSIZE, NULL)) < 0)
      return r;
  }
  if (len != t->nw.length)
    t->nw.vers++;
  t->nw.length = len;
  return 0;
}

int dfs_change_check(const struct dfs *fs, uint32_t i,
                     const struct dfs_attr *a) {
  int r;
  if (a->length != DFS_KEEP64 && is_dir(fs, i) && a->length != 0)
    return -EISDIR;
  if (a->length != DFS_KEEP64 && a->length > DFS_FILE_MAX)
    return -EFBIG;
  /* a shrink copies at most its last block and the indirect block */
  if (a->length != DFS_KEEP64 && !is_dir(fs, i) &&
      a->length < fs->ino[i].length && dfs_free_blocks(fs) < 2)
    return -ENOSPC;
  if (a->name && i == 0)
    return -EPERM;
  if (a->name &&
      (r = name_check(fs, fs->ino[i].parent, a->name, a->name_len)) < 0)
    return r;
  return 0;
}

int dfs_change(struct dfs *fs, uint32_t i, const struct dfs_attr *a) {
  struct tx t;
  int r;
  if ((r = dfs_change_check(fs, i, a)) < 0 || (r = tx_begin(fs, i, &t)) < 0)
    return r;
  if (a->length != DFS_KEEP64 && !is_dir(fs, i) &&
      (r = tx_length(fs, &t, a->length)) < 0)
    return tx_abort(fs, &t, 0, r);
  if (a->name) {
    memset(t.nw.name, 0, sizeof t.nw.name);
    memcpy(t.nw.name, a->name, a->name_len);
  }
  if (a->mode != DFS_KEEP32)
    t.nw.mode = (t.nw.mode & 0x80000000u) | (a->mode & ~0x80000000u);
  if (a->mtime != DFS_KEEP32)
    t.nw.mtime = a->mtime;
  return tx_commit(fs, &t);
}

int dfs_truncate(struct dfs *fs, uint32_t i, uint64_t len, uint32_t mtime) {
  struct dfs_attr a = {.length = len, .mode = DFS_KEEP32, .mtime = mtime};
  return dfs_change(fs, i, &a);
}
