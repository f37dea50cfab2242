/* A takeover across kernel versions (issue 15, kernel update method A):
 * the dead kernel's region is of the other kernel-data layout, so this
 * kernel cannot read its tables as its own (adopt_tables refuses them).
 * Instead the other layout's extractor (kimage.c built for that layout:
 * it never sees this build's structs) writes each process's image, and
 * this layout's builder makes a region of this kernel's layout from them;
 * adopt_tables then takes the processes over from that region as from a
 * dead kernel of its own version (kfailover.c).
 *
 * A process whose image names state it cannot carry (kimage.h) is not in
 * the converted region, and the trace names what kept it.  Unless the
 * machine kept it on the old kernel, which then retires (kkeep.h), the
 * old kernel is gone, so it ends like a process that a failover does not
 * move.  The
 * kernel-wide part comes first: the services with their queues, then the
 * disk's buffer cache (its segment table and dirty entries; the blocks
 * stay in the old segments' ICAs), which kfailover.c adopts from the
 * converted region as from a dead kernel of its own version.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kern.h"
#include "kimage.h"
#include "kimage.pb-c.h"
#include "kimage_refuse.h"
#include "kkeep.h"
#include "uksim/interos.h"
#include "uksim/xalloc.h"

/* This build's builder and the other layout's extractor. */
#ifdef UK_KDATA_V2
#define OWN_BUILD kimg_v2_build
#define OWN_BUILD_KERNEL kimg_v2_build_kernel
#define OWN_INIT kimg_v2_region_init
#define OWN_BUILD_CACHE kimg_v2_build_cache
#define OTHER_EXTRACT kimg_v1_extract
#define OTHER_EXTRACT_KERNEL kimg_v1_extract_kernel
#define OTHER_EXTRACT_CACHE kimg_v1_extract_cache
#else
#define OWN_BUILD kimg_v1_build
#define OWN_BUILD_KERNEL kimg_v1_build_kernel
#define OWN_INIT kimg_v1_region_init
#define OWN_BUILD_CACHE kimg_v1_build_cache
#define OTHER_EXTRACT kimg_v2_extract
#define OTHER_EXTRACT_KERNEL kimg_v2_extract_kernel
#define OTHER_EXTRACT_CACHE kimg_v2_extract_cache
#endif

/* A "kupdate" event in the trace (and the debug trace). */
static void note(struct kern *k, const char *op, int status, const char *text) {
  kern__trace(k, "kupdate: %s", text);
  kern__event(k,
              &(struct kern_ev){
                  .ev = "kupdate", .op = op, .status = status, .text = text});
}

/* A process's image could not be built (r): trace why, in the words
 * `uksim kupdate` uses (kimage_refuse.h), and end it. */
static void refuse(struct kern *k, const uint8_t *b, size_t n, int r) {
  struct kimg_refusal f;
  char text[KIMG_NAME_MAX + KIMG_WHY_MAX + 64];
  int e = kimg_judge_build(b, n, r, &f);
  kimg_refusal_text(&f, text, sizeof text);
  note(k, "refused", r, text);
  if (e == 0 && kkeep_kept(k->os.io, k->os.dead_os, f.slot)) {
    snprintf(text, sizeof text, "%s (pid %d) stays on os %u, which retires",
             f.name, (int)f.pid, k->os.dead_os);
    note(k, "kept", 0, text);
  } else if (e == 0 && f.pid > 0 && !f.attached)
    kill(f.pid, SIGKILL); /* its kernel is gone: it ends */
}

/* The services and their queued or in-service requests, first. */
static int convert_kernel(struct kern *k, const void *dead, size_t len,
                          struct uk_kdata *kd) {
  uint8_t *b;
  size_t n;
  int r = OTHER_EXTRACT_KERNEL(dead, len, &b, &n);
  if (r < 0)
    return r;
  r = OWN_BUILD_KERNEL(kd, sizeof *kd, b, n);
  free(b);
  if (r < 0)
    note(k, "convert", r, "the services and their queues could not be built");
  return r;
}

/* The disk's buffer cache, after the services (whose ICAs it must not
 * take).  Not fatal: without it the processes still move, and the trace
 * says the dirty blocks were not carried. */
static void convert_cache(struct kern *k, const void *dead, size_t len,
                          struct uk_kdata *kd) {
  uint8_t *b;
  size_t n;
  int r = OTHER_EXTRACT_CACHE(dead, len, &b, &n);
  if (r < 0)
    return;
  Uksim__Kimage__Cache *c = uksim__kimage__cache__unpack(NULL, n, b);
  r = OWN_BUILD_CACHE(kd, sizeof *kd, b, n);
  free(b);
  char text[160];
  snprintf(text, sizeof text,
           "file cache: %zu dirty blocks in %zu segments carried, %u torn%s",
           c && r == 0 ? c->n_dirty : 0, c && r == 0 ? c->n_seg_ica : 0,
           c ? c->torn : 0, r < 0 ? " (its table could not be built)" : "");
  note(k, "cache", r, text);
  if (c)
    uksim__kimage__cache__free_unpacked(c, NULL);
}

struct uk_kdata *kern__kimage_convert(struct kern *k, const void *dead,
                                      size_t len) {
  struct uk_kdata *kd = xcalloc(1, sizeof *kd);
  OWN_INIT(kd, k->os.id);
  uint32_t moved = 0, refused = 0;
  uint64_t t0 = uv_hrtime();
  if (convert_kernel(k, dead, len, kd) == -EPROTO) {
    note(k, "convert", -EPROTO,
         "the dead kernel's region is of no layout this kernel knows");
    free(kd);
    return NULL;
  }
  convert_cache(k, dead, len, kd);
  for (uint32_t p = 0; p < UK_PROC_MAX; p++) {
    uint8_t *b;
    size_t n;
    int r = OTHER_EXTRACT(dead, len, p, &b, &n);
    if (r == -EPROTO) {
      note(k, "convert", r,
           "the dead kernel's region is of no layout this "
           "kernel knows");
      free(kd);
      return NULL;
    }
    if (r < 0)
      continue; /* no process in slot p */
    if (k->replay != NULL && (r = kern__replay_strip(k, &b, &n)) < 0) {
      refused++; /* method B: replay cannot make its state again */
      refuse(k, b, n, r);
      free(b);
      continue;
    }
    r = OWN_BUILD(kd, sizeof *kd, b, n);
    if (r >= 0)
      moved++;
    else {
      refused++;
      refuse(k, b, n, r);
    }
    free(b);
  }
  char text[160];
  snprintf(text, sizeof text,
           "images of %u processes built into layout %u, %u refused, in "
           "%llu us",
           moved, UK_KDATA_LAYOUT, refused,
           (unsigned long long)(uv_hrtime() - t0) / 1000);
  note(k, "convert", 0, text);
  return kd;
}
