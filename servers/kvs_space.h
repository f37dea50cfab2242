/* Free space of a kvs store (servers/kvs_state.c), kept in this process's
 * memory only.
 *
 * The store never writes its allocator into its state ICAs: a successor
 * rebuilds the free space from what the index reaches (ksp_rebuild), so a
 * crash can leak at most until the next restore and the allocator needs no
 * crash-consistency of its own.
 *
 * Addresses are opaque 64-bit numbers (the store uses segment << 32 |
 * offset); a free extent never spans two segments because segments are
 * never adjacent in that space.  Extents are kept sorted by address and
 * coalesced; allocation is first fit.  Load: a few thousand extents at the
 * most in practice (holes left by replaced values of different sizes).
 */
#ifndef UKSIM_SERVERS_KVS_SPACE_H
#define UKSIM_SERVERS_KVS_SPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uksim/xalloc.h"

/* A remainder smaller than this stays with the allocation rather than
 * becoming a hole nobody can use. */
#define KSP_SLACK 64

struct ksp_ext {
  uint64_t addr;
  uint64_t len;
};

struct ksp {
  struct ksp_ext *ext; /* sorted by addr, disjoint, never adjacent */
  size_t n, cap;
  uint64_t free_bytes;
};

void ksp_init(struct ksp *sp);
void ksp_close(struct ksp *sp);

/* Returns [addr, addr+len) to the free space, merging it with neighbours.
 * The range must not overlap free space (asserted).  *merged, if not NULL,
 * gets the free extent that now contains it. */
void ksp_give(struct ksp *sp, uint64_t addr, uint64_t len,
              struct ksp_ext *merged);

/* Takes len bytes (first fit).  *got is len, or the whole extent when less
 * than KSP_SLACK would remain.  0 or -ENOSPC. */
int ksp_take(struct ksp *sp, uint64_t len, uint64_t *addr, uint64_t *got);

/* Removes [addr, addr+len) if it is exactly one free extent (a segment
 * about to be released).  Returns whether it did. */
bool ksp_drop(struct ksp *sp, uint64_t addr, uint64_t len);

/* Rebuilds the free space as every byte of the areas `area` (nareas) that
 * no extent of `used` covers.  `used` is sorted in place.  Returns 0, or
 * -EPROTO if two used extents overlap or one leaves its area. */
int ksp_rebuild(struct ksp *sp, const struct ksp_ext *area, size_t nareas,
                struct ksp_ext *used, size_t nused);

#endif /* UKSIM_SERVERS_KVS_SPACE_H */
