/*
 * fuzz_kimage.c: libFuzzer target for the version-neutral images of a
 * kernel update (sim-kernel/kimage.c, kimage_cache.c).  Both directions
 * meet hostile bytes: a builder reads an image another kernel version
 * wrote, and an extractor reads a region another kernel may be writing
 * (or corrupted before it hung).  The first input byte chooses:
 *   0-5  the rest is an image for a builder of layout 1 or v2 (process,
 *        kernel part, file cache) into an empty region of that layout;
 *   6-7  the rest, repeated over a region of layout 1 or v2 past its
 *        valid header, is a torn region: FUZZ_SLOTS processes, the
 *        kernel part and the cache are extracted from it, and each image
 *        is built into a region of the other layout.
 * Nothing may crash, overrun or leak; a builder answers 0 or a negative
 * errno.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kimage.h"
#include "uksim/kdata.h"

/* Processes extracted from each torn region. */
#define FUZZ_SLOTS 64u

typedef int (*build_fn)(void *, size_t, const uint8_t *, size_t);
typedef int (*extract_fn)(const void *, size_t, uint8_t **, size_t *);

struct layout {
  size_t (*size)(void);
  void (*init)(void *, uint32_t);
  int (*extract)(const void *, size_t, uint32_t, uint8_t **, size_t *);
  build_fn build, build_kernel, build_cache;
  extract_fn extract_kernel, extract_cache;
};

static const struct layout L[2] = {
    {kimg_v1_region_size, kimg_v1_region_init, kimg_v1_extract, kimg_v1_build,
     kimg_v1_build_kernel, kimg_v1_build_cache, kimg_v1_extract_kernel,
     kimg_v1_extract_cache},
    {kimg_v2_region_size, kimg_v2_region_init, kimg_v2_extract, kimg_v2_build,
     kimg_v2_build_kernel, kimg_v2_build_cache, kimg_v2_extract_kernel,
     kimg_v2_extract_cache},
};

static void *region(const struct layout *l) {
  void *r = malloc(l->size());
  if (r == NULL)
    abort();
  l->init(r, 2);
  return r;
}

static void check(int r) {
  if (r > 0 && r >= UK_PROC_MAX)
    abort(); /* a builder returns a slot, 0 or a negative errno */
}

static void build_one(const struct layout *l, int what, const uint8_t *b,
                      size_t n) {
  void *r = region(l);
  build_fn f = what == 0   ? l->build
               : what == 1 ? l->build_kernel
                           : l->build_cache;
  check(f(r, l->size(), b, n));
  free(r);
}

/* Extracts with ex from torn and builds into a region of layout to. */
static void cross(extract_fn ex, build_fn bu, const void *torn, size_t len,
                  const struct layout *to) {
  uint8_t *b;
  size_t n;
  if (ex(torn, len, &b, &n) < 0)
    return;
  void *r = region(to);
  check(bu(r, to->size(), b, n));
  free(r);
  free(b);
}

static void torn_region(const struct layout *from, const struct layout *to,
                        const uint8_t *d, size_t n) {
  size_t len = from->size();
  uint8_t *t = region(from);
  size_t hdr = sizeof(struct uk_kdata_hdr);
  size_t have = n < len - hdr ? n : len - hdr; /* then doubled: no loop */
  memcpy(t + hdr, d, have);
  while (have > 0 && hdr + have < len) {
    size_t more = have < len - hdr - have ? have : len - hdr - have;
    memcpy(t + hdr + have, t + hdr, more);
    have += more;
  }
  cross(from->extract_kernel, to->build_kernel, t, len, to);
  cross(from->extract_cache, to->build_cache, t, len, to);
  void *r = region(to);
  /* FUZZ_SLOTS processes, spread over the table from where the input
   * says: all 4096 would make a run take a third of a second. */
  for (uint32_t k = 0; k < FUZZ_SLOTS; k++) {
    uint32_t p =
        (k * (UK_PROC_MAX / FUZZ_SLOTS) + (n ? d[0] : 0)) % UK_PROC_MAX;
    uint8_t *b;
    size_t bn;
    if (from->extract(t, len, p, &b, &bn) == 0) {
      check(to->build(r, to->size(), b, bn));
      free(b);
    }
  }
  free(r);
  free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  unsigned op = data[0] % 8;
  data++, size--;
  if (op < 6)
    build_one(&L[op / 3], (int)(op % 3), data, size);
  else
    torn_region(&L[op - 6], &L[7 - op], data, size);
  return 0;
}
