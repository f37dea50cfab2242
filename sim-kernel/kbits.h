/* A set of process slots, one bit each (UK_PROC_MAX of them): the
 * kernel's private bookkeeping of which processes kept an ICA mapped or
 * wait for a dial.  Not kernel data: nothing outside the kernel reads it. */
#ifndef UKSIM_KBITS_H
#define UKSIM_KBITS_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "uksim/kdata.h"

#define KBITS_WORDS ((UK_PROC_MAX + 63) / 64)

struct kbits {
  uint64_t w[KBITS_WORDS];
};

static inline void kbits_set(struct kbits *b, uint32_t p) {
  b->w[p / 64] |= 1ull << (p % 64);
}

static inline void kbits_clear(struct kbits *b, uint32_t p) {
  b->w[p / 64] &= ~(1ull << (p % 64));
}

static inline bool kbits_has(const struct kbits *b, uint32_t p) {
  return (b->w[p / 64] >> (p % 64)) & 1;
}

static inline void kbits_zero(struct kbits *b) {
  memset(b, 0, sizeof *b);
}

#endif /* UKSIM_KBITS_H */
