/* The kvs store, kept in memory that outlives the server process: state
 * ICAs (seed 000 §4.2), or the heap for the copy baseline.
 *
 * A store is a set of segments addressed by (segment << 32 | offset), so
 * that nothing in it is a pointer and a successor can map it anywhere.
 * Segment 0 starts with struct kst_hdr.  Method "single" (method 2 of the
 * paper) has segment 0 only: one state ICA holds everything.  Method
 * "chain" (method 1, Fig. 5) makes segment 0 a small master whose segment
 * table lists, by ICA id, the other ICAs holding state (shared segments of
 * a fixed size for small records, one ICA for each large value or index).
 * Method "heap" is chain with segments from malloc(): the copy baseline,
 * which survives a replacement only by serializing (kvs_neutral.h).
 *
 * Inside: an open-addressed index (linear probing, 8-byte slots naming
 * records and their sizes) and records holding a key and its value.  The
 * free space lives in this process only (kvs_space.h); a successor
 * rebuilds it from the index alone, so restoring reads the header and the
 * index, never a record.
 *
 * Restores come in two depths.  A deep one (after a crash) attaches every
 * segment and checks every record before anything is used.  A lazy one
 * (extension-time replacement: the predecessor handed the store over from
 * its receive(), with nothing in progress) checks the header, the segment
 * table and the index, and leaves the records and chain's other segments
 * alone: a segment is attached when something in it is first needed, and
 * a record is checked every time it is read, so a record that turns out
 * bad is reported to kst_segops.corrupt, never read out of bounds.
 *
 * Crash consistency: every change is written into free space first and
 * then published by one aligned 8-byte store (a slot, the index word, a
 * segment table entry, a held-request slot), so a crash at any instruction
 * leaves the store as it was before or after the change.  The space a
 * change orphans is free again after the next restore.  Steps (kst_step)
 * mark each point between persistent writes, for the crash tests.
 *
 * Requests held by a caching server (§4.1.2) are recorded in the header
 * with a sequence number; a put applied for held request `seq` stamps seq
 * into its record, which is what makes "applied" atomic with the change
 * (kst_was_applied).
 *
 * Record layouts: layout 1 (kvs v1) and layout 2 (kvs v2: a version counter
 * per key); a layout is the version of kvs that writes it.  A successor
 * restores only its own layout; an older version's store comes through the
 * version-neutral form, and a newer version's is refused
 * (kst_check_version).  Not thread safe.
 */
#ifndef UKSIM_SERVERS_KVS_STATE_H
#define UKSIM_SERVERS_KVS_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvs_space.h"

#define KST_MAGIC 0x3274536b56534b55ull /* "UKSVkSt2": slots carry sizes */
#define KST_SEG_MAX 1024                /* chain: segments a master can list */
#define KST_HELD_MAX 64                 /* requests a caching server may hold */
#define KST_PAGE 4096                   /* segment sizes are multiples of it */
#define KST_SIZE_MIN (16 * 1024ull)
#define KST_LAYOUT_MIN 1
#define KST_LAYOUT_MAX 2
#define KST_UNKNOWN UINT64_MAX

enum kst_method { KST_SINGLE = 1, KST_CHAIN, KST_HEAP };

/* Layout, all little-endian, in segment 0 at offset 0. */
struct kst_hdr {
  uint64_t magic;
  uint32_t layout;   /* record layout: 1 or 2 */
  uint32_t method;   /* enum kst_method */
  uint64_t size;     /* bytes of segment 0 */
  uint32_t segmax;   /* entries in seg[] below: 0 (single) or KST_SEG_MAX */
  uint32_t heldmax;  /* entries in held[]: KST_HELD_MAX */
  uint64_t table;    /* the index: KST_TABLE(addr, log2 of its slots) */
  uint64_t applied;  /* the newest held request applied (kst_was_applied) */
  uint64_t seg_size; /* chain: bytes of a shared segment */
  uint64_t reserved[9];
  /* Then uint64_t seg[segmax]: seg[i] names segment i as KST_SEGW(id,
   * size), 0 when unused (seg[0] is this one: always 0).  Then struct
   * kst_held held[heldmax]. */
};

#define KST_TABLE(addr, lg) ((addr) | (uint64_t)(lg) << 56)
#define KST_TABLE_ADDR(w) ((w) & ((1ull << 56) - 1))
#define KST_TABLE_LG(w) ((uint32_t)((w) >> 56))
#define KST_SEGW(id, size) ((uint64_t)(id) | ((size) / KST_PAGE) << 32)

/* An index slot: a record's address (segment << 32 | offset, 16-byte
 * aligned) and its capacity in one word, published by one store.  Bits
 * 0..25 the offset / 16, 26..35 the segment, 36..63 the capacity / 16.
 * 0 is an empty slot, 1 a tombstone; a record's slot is never below
 * 2^37 (a capacity is at least 32 bytes). */
#define KST_SLOT(addr, cap)                                                    \
  (((uint64_t)(cap) >> 4) << 36 | ((uint64_t)(addr) >> 32 & 0x3ffull) << 26 |  \
   ((uint64_t)(addr)&0xffffffffull) >> 4)
#define KST_SLOT_ADDR(w)                                                       \
  (((w) >> 26 & 0x3ffull) << 32 | ((w)&0x3ffffffull) << 4)
#define KST_SLOT_CAP(w) ((w) >> 36 << 4)

/* A held request; the slot is in use while seq != 0 (written last). */
struct kst_held {
  uint64_t seq;
  uint32_t req; /* kernel request id */
  uint32_t op;  /* enum kvs_op */
  uint32_t ctl; /* its ICAs, KABI_ICA_NONE for none */
  uint32_t data;
};

/* A record, 16-byte aligned; layout 2 adds uint64_t counter after it.  The
 * key follows the header, the value the key at an 8-byte boundary. */
struct kst_rec {
  uint64_t cap;    /* bytes this record occupies (as its slot says) */
  uint64_t hash;   /* of the key */
  uint64_t vallen; /* bytes */
  uint64_t seq;    /* held request that wrote it, or 0 */
  uint32_t keylen; /* 1 .. KVS_KEY_MAX-1, no NUL inside */
  uint32_t pad;
};

/* In-memory ------------------------------------------------------------- */

struct kst_seg {
  void *base;    /* NULL: not mapped (yet: a lazy restore attaches on use) */
  uint64_t size; /* 0: unused */
  uint32_t id;   /* ICA id (heap: a number of its own) */
};

/* Where segments come from: ICAs in the server, malloc() for the copy
 * baseline and in the tests.  create zero-fills; attach maps a segment a
 * predecessor listed; release gives one back (its base may be NULL: never
 * attached).  corrupt (may be NULL) hears of a bad record or segment a
 * lazy restore found only when it was used; if it returns, the store goes
 * on as if the record were not there (the operation may fail -EIO). */
struct kst_segops {
  int (*create)(void *arg, uint64_t size, struct kst_seg *out);
  int (*attach)(void *arg, uint32_t id, struct kst_seg *out);
  void (*release)(void *arg, struct kst_seg *seg);
  void *arg;
  void (*corrupt)(void *arg, const char *why);
};

/* kst_restore flags. */
#define KST_RESTORE_LAZY 1u

struct kst_config {
  uint32_t method; /* enum kst_method */
  uint32_t layout;
  uint64_t limit;    /* bytes of all segments together (single: the ICA) */
  uint64_t seg_size; /* chain and heap: a shared segment */
};

/* One key and its value; pointers are borrowed from the store until its
 * next change. */
struct kst_entry {
  const char *key;
  uint32_t keylen;
  const void *val;
  uint64_t vallen;
  uint64_t counter; /* layout 2; 0 in layout 1 */
  uint64_t seq;
};

struct kst {
  /* private */
  struct kst_hdr *hdr;
  struct kst_seg *seg; /* nseg: hdr->segmax, or 1 for single */
  uint32_t nseg;
  struct ksp space;
  const struct kst_segops *ops;
  uint64_t limit, seg_size, seg_bytes;
  uint64_t table_cap; /* bytes the index occupies */
  uint64_t count, ntomb;
  uint64_t keybytes; /* KST_UNKNOWN after a lazy restore, until asked */
  uint64_t next_seq;
  uint32_t layout, method;
  bool lazy; /* records unchecked, segments attached on first use */
  void (*step)(void *arg);
  void *step_arg;
};

/* A fresh, empty store (segment 0 is created with ops).  0 or -errno. */
int kst_init(struct kst *s, const struct kst_config *c,
             const struct kst_segops *ops);

/* Whether a server of layout `own` takes a state written by kvs version
 * `state`: 0 for its own version or an older one (converted through the
 * neutral form); -EPROTONOSUPPORT for a newer one, with why naming both
 * ("state version 2 is newer than this server's 1").  A newer version's
 * state may hold what this one cannot keep (v2's counters); a downgrade
 * that dropped it would lose it without a word, so the successor refuses
 * and the newer server keeps serving. */
int kst_check_version(uint32_t state, uint32_t own, char *why, size_t whylen);

/* Takes over the store whose segment 0 is seg0 (an inherited state ICA);
 * writes nothing.  Always checks the header, the segment table and the
 * index (every slot in range, no two records overlapping) and rebuilds the
 * free space from the slots: O(index slots), and no record is read.
 * Without KST_RESTORE_LAZY it also attaches every segment with ops and
 * checks every record (O(keys) pages); with it, segments other than the
 * index's are attached and records checked when first used (see the top
 * of this file).  Returns 0; -EPROTONOSUPPORT when the layout is not
 * `layout` (why: newer, as kst_check_version says, or "not supported"),
 * -EPROTO for anything malformed (why says what, for
 * srv_panic); or an error of ops.  limit is the new cap on segment bytes
 * for chain (single keeps its size).  On failure nothing is held:
 * attached segments are forgotten, not released. */
int kst_restore(struct kst *s, const struct kst_seg *seg0, uint32_t layout,
                uint64_t limit, unsigned flags, const struct kst_segops *ops,
                char *why, size_t whylen);

/* Whether buf starts like a store image (the magic). */
bool kst_is_image(const void *buf, uint64_t len);

/* Releases every segment with ops, then frees this process's memory. */
void kst_close(struct kst *s);

/* Frees this process's memory only: the segments live on (the server is
 * exiting, or a successor owns them). */
void kst_forget(struct kst *s);

/* Releases segments (not 0) that hold nothing, e.g. after a restore found
 * some.  Only for a store this process may write. */
void kst_trim(struct kst *s);

/* Stores val under key, replacing any old value.  A held request's seq, or
 * 0.  *counter (may be NULL) gets the key's new counter (layout 2).  0,
 * -ENOSPC (the store is unchanged), or -ENOMEM/-errno of ops. */
int kst_put(struct kst *s, const char *key, uint32_t keylen, const void *val,
            uint64_t vallen, uint64_t seq, uint64_t *counter);

/* Stores an entry as given (an import): its counter (layout 2; 0 becomes
 * 1) and seq are kept. */
int kst_load(struct kst *s, const struct kst_entry *e);

/* Finds key.  An exception to the _get verb: *e is borrowed.  0 or
 * -ENOENT. */
int kst_get(const struct kst *s, const char *key, uint32_t keylen,
            struct kst_entry *e);

/* 0 or -ENOENT. */
int kst_del(struct kst *s, const char *key, uint32_t keylen);

uint64_t kst_count(const struct kst *s);

/* Bytes of a list answer: every key and a NUL after each.  After a lazy
 * restore the first call walks the records. */
uint64_t kst_keybytes(const struct kst *s);

/* Writes the list answer (kst_keybytes bytes) into buf. */
void kst_list(const struct kst *s, char *buf);

/* Iterates: start with *cursor = 0; false at the end. */
bool kst_next(const struct kst *s, uint64_t *cursor, struct kst_entry *e);

/* Records a held request; *seq gets its number.  0 or -ENOSPC. */
int kst_hold(struct kst *s, const struct kst_held *h, uint64_t *seq);

/* Records a held request with its own seq (an import). */
int kst_hold_load(struct kst *s, const struct kst_held *h);

/* Forgets held request seq (answered). */
void kst_unhold(struct kst *s, uint64_t seq);

/* Copies the held requests into out (KST_HELD_MAX entries), oldest first;
 * returns how many. */
uint32_t kst_held_list(const struct kst *s, struct kst_held *out);

/* Records that held request seq has been applied.  Held requests are
 * applied in seq order, each unheld before the next is applied. */
void kst_set_applied(struct kst *s, uint64_t seq);
uint64_t kst_applied(const struct kst *s);

/* Whether the put of held request seq (for key) has been applied. */
bool kst_was_applied(const struct kst *s, uint64_t seq, const char *key,
                     uint32_t keylen);

/* Copies every entry, held request and the applied mark of src into dst
 * (a method or layout change).  0 or an error of kst_load. */
int kst_copy(struct kst *dst, const struct kst *src);

/* The segments, for a server that must release or count them: *n entries,
 * unused ones with size 0 (a listed segment a lazy restore has not needed
 * yet has base NULL). */
const struct kst_seg *kst_segs(const struct kst *s, uint32_t *n);

uint32_t kst_layout(const struct kst *s);
uint32_t kst_method(const struct kst *s);

/* Calls fn(arg) at every point between two persistent writes (tests). */
void kst_set_step(struct kst *s, void (*fn)(void *arg), void *arg);

#endif /* UKSIM_SERVERS_KVS_STATE_H */
