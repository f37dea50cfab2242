/* Reading a 9P server's answers for the mount driver (kmnt.c): what a
 * server sends the kernel, trusted in nothing.  Pure functions, so the
 * fuzz run reads random answers with them (tests/fuzz/fuzz_kmnt.c). */
#ifndef UKSIM_KMNT_MSG_H
#define UKSIM_KMNT_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uksim/9p.h"
#include "uksim/kdata.h"

struct kmnt_reply {
  int err;           /* 0, the server's error as -errno, or -EIO */
  struct uk_qid qid; /* Rattach Ropen Rcreate Rlopen ...; Rwalk: the qid of
                        its one name */
  uint32_t count;    /* Rread Rwrite Rreaddir count, Rversion msize */
};

/* The answer to a T-message of type ttype, a frame at m[0..cap) in
 * dialect d.  walked: the Twalk named one name (else it cloned); bulk: the
 * Tread took a data ICA, so a Rread ends after its count.  Never reads
 * beyond m[cap). */
void kmnt__reply(uint8_t ttype, bool walked, bool bulk, p9_dialect d,
                 const uint8_t *m, size_t cap, struct kmnt_reply *out);

/* A 9P2000.L listing's entry has no length: its stat says so by this. */
#define KMNT_LEN_UNKNOWN UINT64_MAX

/* The entries in one Rread (stat(5), l false) or Rreaddir (dirents, l
 * true) at b[0..n): fn gets each as a stat (a 9P2000.L entry's mode is
 * from its type, its length KMNT_LEN_UNKNOWN); *next gets the offset to read on
 * from. Stops at fn's first non-zero answer and returns it; -EIO for an entry
 * that does not decode. */
int kmnt__list_chunk(bool l, const uint8_t *b, uint32_t n, uint64_t *next,
                     int (*fn)(void *arg, const p9_stat *st), void *arg);

#endif /* UKSIM_KMNT_MSG_H */
