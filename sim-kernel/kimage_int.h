/* What the two files built once per kernel-data layout (kimage.c, the
 * process and kernel parts; kimage_cache.c, the file cache) share: the
 * name of a function in this layout's build, and the check that a region
 * is of this layout. */
#ifndef UKSIM_KIMAGE_INT_H
#define UKSIM_KIMAGE_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "uksim/kdata.h"

#ifdef UK_KDATA_V2
#define KIMG_FN(x) kimg_v2_##x
#else
#define KIMG_FN(x) kimg_v1_##x
#endif

/* Whether region (len bytes) holds kernel data of this build's layout. */
static inline bool kimg__region_ok(const struct uk_kdata *kd, size_t len) {
  return len >= sizeof *kd && kd->hdr.magic == UK_KDATA_MAGIC &&
         kd->hdr.layout == UK_KDATA_LAYOUT && kd->hdr.size == sizeof *kd;
}

#endif /* UKSIM_KIMAGE_INT_H */
