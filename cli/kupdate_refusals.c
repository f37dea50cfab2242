/* `uksim kupdate`'s report of the processes an update cannot carry
 * (kupdate_refusals.h).  The region is the stopped old kernel's: it is
 * read with the extractor of its own layout, never through its structs,
 * so this works for an update from either layout. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "kimage.h"
#include "kimage_refuse.h"
#include "kupdate_refusals.h"
#include "uksim/kdata.h"

typedef int (*extract_fn)(const void *region, size_t len, uint32_t slot,
                          uint8_t **buf, size_t *n);

int kupdate_region_map(int fd, struct kupdate_region *r) {
  struct stat st;
  if (fstat(fd, &st) < 0)
    return -errno;
  r->len = (size_t)st.st_size;
  r->kd = mmap(NULL, r->len, PROT_READ, MAP_SHARED, fd, 0);
  if (r->kd == MAP_FAILED) {
    r->kd = NULL;
    return -errno;
  }
  return 0;
}

void kupdate_region_unmap(struct kupdate_region *r) {
  if (r->kd != NULL)
    munmap((void *)r->kd, r->len);
  r->kd = NULL;
}

/* The extractor of the region's layout, or NULL. */
static extract_fn extractor(const struct kupdate_region *r) {
  const struct uk_kdata_hdr *h = r->kd;
  if (r->len < sizeof *h || h->magic != UK_KDATA_MAGIC)
    return NULL;
  if (r->len >= kimg_v1_region_size() && h->size == kimg_v1_region_size())
    return kimg_v1_extract;
  if (r->len >= kimg_v2_region_size() && h->size == kimg_v2_region_size())
    return kimg_v2_extract;
  return NULL;
}

/* Prints slot's verdict unless it moves; 1 if it was refused at extract. */
static int report(const struct kupdate_region *r, extract_fn ex, uint32_t slot,
                  FILE *out) {
  uint8_t *b;
  size_t n;
  if (ex(r->kd, r->len, slot, &b, &n) < 0)
    return 0; /* no live process there */
  struct kimg_refusal f;
  char text[KIMG_NAME_MAX + KIMG_WHY_MAX + 64];
  int e = kimg_judge(b, n, &f);
  free(b);
  if (e < 0 || f.verdict == KIMG_MOVES)
    return 0;
  kimg_refusal_text(&f, text, sizeof text);
  fprintf(out, "  %s: %s\n",
          f.verdict == KIMG_RESTARTS ? "restarts" : "not carried", text);
  return f.verdict == KIMG_REFUSED_AT_EXTRACT;
}

int kupdate_refusals(const struct kupdate_region *r, FILE *out) {
  extract_fn ex = extractor(r);
  if (ex == NULL)
    return -EPROTO;
  int refused = 0;
  for (uint32_t p = 0; p < UK_PROC_MAX; p++)
    refused += report(r, ex, p, out);
  return refused;
}
