/* Unit tests for the file cache's version-neutral image
 * (sim-kernel/kimage_cache.c): a hand-built layout-1 buffer cache,
 * extracted by the layout-1 extractor and built by the layout-v2 builder,
 * then extracted from v2 and built into layout 1 again, keeps every dirty
 * entry (block, seq, generation, segment ICA, offset) and none of the
 * blocks' bytes; entries and segments the table does not vouch for are
 * left out and counted; a conflict and bad input write nothing.  And the
 * /srv entries the kernel part carries beside the cache: without them a
 * file server restarted on the new kernel is not found by its name. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kd_fixture.h"
#include "kimage.h"
#include "kimage.pb-c.h"

TestSuite(kimage_cache, .init = kd_new, .fini = kd_free);

#define DISK_BLOCKS 1000u

/* A segment of kd's cache: a kernel-held ICA of one segment's size. */
static uint32_t add_segment(struct uk_kdata *t) {
  uint32_t id;
  cr_assert_eq(kern_ica_alloc(t, KABI_ICA_DATA, UK_BCACHE_SEG_BYTES, 0, &id),
               0);
  kern_ica_move(t, id, UK_HOLD_KERNEL, 0);
  t->bcache.seg_ica[t->bcache.hdr.nseg++] = id;
  return id;
}

static void set_entry(struct uk_kdata *t, uint32_t i, uint64_t block,
                      uint8_t state) {
  struct uk_bcache_ent *e = &t->bcache.ent[i];
  e->block = block;
  e->seq = 100 + i;
  e->gen = 3;
  e->state = state;
  e->ica = t->bcache.seg_ica[i / UK_BCACHE_SEG];
  e->off = (i % UK_BCACHE_SEG) * UK_DISK_BLOCK;
  t->bcache.hdr.ncached++;
  t->bcache.hdr.ndirty += state == UK_BC_DIRTY || state == UK_BC_WRITING;
}

/* Two segments; dirty entries 0 and 66, one being written back (3), one
 * clean (1): three to carry. */
static void dirty_cache(struct uk_kdata *t) {
  t->bcache.hdr.block_size = UK_DISK_BLOCK;
  t->bcache.hdr.disk_bytes = (uint64_t)DISK_BLOCKS * UK_DISK_BLOCK;
  t->bcache.hdr.wseq = 500;
  t->bcache.hdr.seg_max = 4;
  strcpy(t->bcache.hdr.disk, "/tmp/disk");
  add_segment(t);
  add_segment(t);
  set_entry(t, 0, 5, UK_BC_DIRTY);
  set_entry(t, 1, 6, UK_BC_CLEAN);
  set_entry(t, 3, 7, UK_BC_WRITING);
  set_entry(t, UK_BCACHE_SEG + 2, 9, UK_BC_DIRTY);
}

static void *v2_region(void) {
  void *r = malloc(kimg_v2_region_size());
  cr_assert_not_null(r);
  kimg_v2_region_init(r, 2);
  return r;
}

static Uksim__Kimage__Cache *unpack(const uint8_t *b, size_t n) {
  Uksim__Kimage__Cache *c = uksim__kimage__cache__unpack(NULL, n, b);
  cr_assert_not_null(c);
  return c;
}

/* Entry i of t is entry i of kd as a dirty entry of the same segment. */
static void assert_carried(const struct uk_kdata *t, uint32_t i) {
  const struct uk_bcache_ent *a = &kd->bcache.ent[i], *b = &t->bcache.ent[i];
  cr_expect_eq(b->state, UK_BC_DIRTY, "entry %u state %u", i, b->state);
  cr_expect_eq(b->block, a->block);
  cr_expect_eq(b->seq, a->seq);
  cr_expect_eq(b->gen, a->gen);
  cr_expect_eq(b->ica, a->ica);
  cr_expect_eq(b->off, a->off);
  uint32_t x = KABI_ICA_INDEX(b->ica);
  cr_expect_eq(t->ica[x].state, UK_ICA_LIVE);
  cr_expect_eq(t->ica[x].gen, KABI_ICA_GEN(b->ica));
  cr_expect_eq(t->ica[x].holder_kind, UK_HOLD_KERNEL);
  cr_expect_eq(t->ica[x].size, UK_BCACHE_SEG_BYTES);
}

Test(kimage_cache, dirty_entries_cross_layouts_without_their_bytes,
     .timeout = 10) {
  dirty_cache(kd);
  uint8_t *a, *b;
  size_t na, nb;
  cr_assert_eq(kimg_v1_extract_cache(kd, sizeof *kd, &a, &na), 0);
  Uksim__Kimage__Cache *c = unpack(a, na);
  cr_expect_eq(c->n_dirty, 3);
  cr_expect_eq(c->n_seg_ica, 2);
  cr_expect_eq(c->torn, 0);
  uksim__kimage__cache__free_unpacked(c, NULL);
  cr_expect_lt(na, (size_t)UK_DISK_BLOCK, "%zu bytes: blocks were copied", na);
  void *v2 = v2_region();
  cr_assert_eq(kimg_v2_build_cache(v2, kimg_v2_region_size(), a, na), 0);
  cr_expect_eq(kimg_v2_cache_dirty(v2, kimg_v2_region_size()), 3);
  cr_expect_eq(kimg_v1_cache_dirty(v2, kimg_v2_region_size()), 0,
               "a v2 region read as layout 1");
  cr_assert_eq(kimg_v2_extract_cache(v2, kimg_v2_region_size(), &b, &nb), 0);
  struct uk_kdata *back = malloc(sizeof *back);
  kimg_v1_region_init(back, 3);
  cr_assert_eq(kimg_v1_build_cache(back, sizeof *back, b, nb), 0);
  cr_expect_eq(back->bcache.hdr.ndirty, 3);
  cr_expect_eq(back->bcache.hdr.nseg, 2);
  cr_expect_eq(back->bcache.hdr.disk_bytes, kd->bcache.hdr.disk_bytes);
  cr_expect_str_eq(back->bcache.hdr.disk, "/tmp/disk");
  assert_carried(back, 0);
  assert_carried(back, 3);
  assert_carried(back, UK_BCACHE_SEG + 2);
  cr_expect_eq(back->bcache.ent[1].state, UK_BC_FREE, "a clean entry moved");
  free(back);
  free(v2);
  free(a);
  free(b);
}

/* Every entry of every segment dirty, with the largest numbers: the
 * packed image still fits KIMG_CACHE_MAX_BYTES and builds. */
Test(kimage_cache, a_full_cache_fits_its_limit, .timeout = 30) {
  kd->hdr.budget_bytes = UINT64_MAX;
  kd->bcache.hdr.block_size = UK_DISK_BLOCK;
  kd->bcache.hdr.disk_bytes = UINT64_MAX / 2;
  kd->bcache.hdr.seg_max = UK_BCACHE_SEGS_MAX;
  memset(kd->bcache.hdr.disk, 'd', UK_DISK_NAME_MAX);
  for (uint32_t s = 0; s < UK_BCACHE_SEGS_MAX; s++)
    add_segment(kd);
  for (uint32_t i = 0; i < UK_BCACHE_MAX; i++) {
    set_entry(kd, i, kd->bcache.hdr.disk_bytes / UK_DISK_BLOCK - 1 - i,
              UK_BC_DIRTY);
    kd->bcache.ent[i].seq = UINT64_MAX - i;
    kd->bcache.ent[i].gen = UINT32_MAX;
  }
  uint8_t *a;
  size_t na;
  cr_assert_eq(kimg_v1_extract_cache(kd, sizeof *kd, &a, &na), 0);
  cr_expect_leq(na, (size_t)KIMG_CACHE_MAX_BYTES, "%zu bytes", na);
  void *v2 = v2_region();
  cr_expect_eq(kimg_v2_build_cache(v2, kimg_v2_region_size(), a, na), 0);
  cr_expect_eq(kimg_v2_cache_dirty(v2, kimg_v2_region_size()), UK_BCACHE_MAX);
  free(v2);
  free(a);
}

Test(kimage_cache, what_the_table_does_not_vouch_for_is_left_out,
     .timeout = 10) {
  dirty_cache(kd);
  kd->bcache.ent[0].ica ^= 1u << 16;     /* not its segment's ICA */
  kd->bcache.ent[3].block = DISK_BLOCKS; /* past the disk */
  /* Segment 1's ICA held by a process: not the cache's. */
  kern_ica_move(kd, kd->bcache.seg_ica[1], UK_HOLD_PROC, 0);
  uint8_t *a;
  size_t na;
  cr_assert_eq(kimg_v1_extract_cache(kd, sizeof *kd, &a, &na), 0);
  Uksim__Kimage__Cache *c = unpack(a, na);
  cr_expect_eq(c->n_dirty, 0);
  cr_expect_eq(c->torn, 3);
  cr_expect_eq(c->seg_ica[1], KABI_ICA_NONE);
  uksim__kimage__cache__free_unpacked(c, NULL);
  void *v2 = v2_region();
  cr_assert_eq(kimg_v2_build_cache(v2, kimg_v2_region_size(), a, na), 0);
  cr_expect_eq(kimg_v2_cache_dirty(v2, kimg_v2_region_size()), 0);
  free(v2);
  free(a);
}

Test(kimage_cache, no_disk_carries_nothing, .timeout = 10) {
  uint8_t *a;
  size_t na;
  cr_assert_eq(kimg_v1_extract_cache(kd, sizeof *kd, &a, &na), 0);
  void *v2 = v2_region();
  cr_assert_eq(kimg_v2_build_cache(v2, kimg_v2_region_size(), a, na), 0);
  cr_expect_eq(kimg_v2_cache_dirty(v2, kimg_v2_region_size()), 0);
  free(v2);
  free(a);
}

/* A packed Cache of one dirty entry at index, in segment 0 of ICA seg. */
static uint8_t *one_entry(uint32_t index, uint32_t seg, size_t *n) {
  Uksim__Kimage__Cache c = UKSIM__KIMAGE__CACHE__INIT;
  Uksim__Kimage__CacheEntry e = UKSIM__KIMAGE__CACHE_ENTRY__INIT, *pe = &e;
  c.version = KIMG_VERSION;
  c.block_size = UK_DISK_BLOCK;
  c.disk_bytes = (uint64_t)DISK_BLOCKS * UK_DISK_BLOCK;
  c.disk = "d";
  c.seg_ica = &seg;
  c.n_seg_ica = 1;
  e.index = index;
  e.block = 1;
  e.gen = 1;
  c.dirty = &pe;
  c.n_dirty = 1;
  *n = uksim__kimage__cache__get_packed_size(&c);
  uint8_t *b = malloc(*n);
  uksim__kimage__cache__pack(&c, b);
  return b;
}

Test(kimage_cache, a_conflict_or_bad_input_writes_nothing, .timeout = 10) {
  void *v2 = v2_region();
  size_t len = kimg_v2_region_size(), n;
  uint8_t junk[64];
  memset(junk, 0xa5, sizeof junk);
  cr_expect_eq(kimg_v2_build_cache(v2, len, junk, sizeof junk), -EBADMSG);
  cr_expect_eq(kimg_v1_build_cache(v2, len, junk, sizeof junk), -EPROTO);
  uint8_t *a = one_entry(UK_BCACHE_SEG, KABI_ICA_ID(5, 1), &n); /* seg 1 */
  cr_expect_eq(kimg_v2_build_cache(v2, len, a, n), -EINVAL);
  free(a);
  a = one_entry(0, KABI_ICA_ID(UK_ICA_MAX, 1), &n); /* ICA out of range */
  cr_expect_eq(kimg_v2_build_cache(v2, len, a, n), -EINVAL);
  free(a);
  /* ICA 5 taken in the target (another image's): nothing is written. */
  a = one_entry(0, KABI_ICA_ID(5, 1), &n);
  cr_expect_eq(kimg_v1_build_cache(kd, sizeof *kd, a, n), 0);
  cr_expect_eq(kimg_v1_build_cache(kd, sizeof *kd, a, n), -EEXIST,
               "a second cache over the first");
  uint32_t id;
  struct uk_kdata *t = malloc(sizeof *t);
  kimg_v1_region_init(t, 4);
  for (int i = 0; i < 6; i++)
    cr_assert_eq(kern_ica_alloc(t, KABI_ICA_DATA, 4096, 0, &id), 0);
  cr_expect_eq(kimg_v1_build_cache(t, sizeof *t, a, n), -EEXIST);
  cr_expect_eq(t->bcache.hdr.block_size, 0);
  cr_expect_eq(kimg_v1_cache_dirty(t, sizeof *t), 0);
  free(t);
  free(a);
  free(v2);
}

/* A /srv entry posted for service s (generation 4). */
static void post_srv(struct uk_kdata *t, uint32_t i, const char *name,
                     uint32_t s) {
  struct uk_srvent *e = &t->vfs.srv[i];
  e->gen = 2;
  e->state = UK_SRV_POSTED;
  e->svc = s;
  e->svc_gen = 4;
  strcpy(e->name, name);
  strcpy(e->posted, name);
}

Test(kimage_cache, srv_entries_cross_layouts_in_the_kernel_part,
     .timeout = 10) {
  post_srv(kd, 3, "dfs", 1);
  kd->vfs.srv[5].gen = 1;
  kd->vfs.srv[5].state = UK_SRV_CREATED;
  strcpy(kd->vfs.srv[5].name, "empty");
  uint8_t *a, *b;
  size_t na, nb;
  cr_assert_eq(kimg_v1_extract_kernel(kd, sizeof *kd, &a, &na), 0);
  void *v2 = v2_region();
  cr_assert_eq(kimg_v2_build_kernel(v2, kimg_v2_region_size(), a, na), 0);
  cr_assert_eq(kimg_v2_extract_kernel(v2, kimg_v2_region_size(), &b, &nb), 0);
  struct uk_kdata *back = malloc(sizeof *back);
  kimg_v1_region_init(back, 3);
  cr_assert_eq(kimg_v1_build_kernel(back, sizeof *back, b, nb), 0);
  cr_expect_eq(
      memcmp(&back->vfs.srv[3], &kd->vfs.srv[3], sizeof kd->vfs.srv[3]), 0,
      "/srv/dfs changed on the way");
  cr_expect_eq(back->vfs.srv[5].state, UK_SRV_CREATED);
  cr_expect_str_eq(back->vfs.srv[5].name, "empty");
  cr_expect_eq(back->vfs.srv[0].state, UK_SRV_FREE);
  /* The same entries again over them: a conflict, nothing written. */
  cr_expect_eq(kimg_v1_build_kernel(back, sizeof *back, b, nb), -EEXIST);
  free(back);
  free(v2);
  free(a);
  free(b);
}

/* A torn region whose every request looks queued and every ICA looks
 * held by a request: more objects than a consistent kernel part names.
 * Its extraction answers (fuzz_kimage once found it aborting). */
Test(kimage_cache, a_torn_kernel_part_is_read_whole, .timeout = 30) {
  for (uint32_t i = 0; i < UK_REQ_MAX; i++) {
    kd->req[i].state = UK_REQ_QUEUED;
    kd->req[i].client = 0;
    kd->req[i].svc = 0;
  }
  for (uint32_t i = 0; i < UK_ICA_MAX; i++) {
    kd->ica[i].state = UK_ICA_LIVE;
    kd->ica[i].holder_kind = UK_HOLD_REQUEST;
    kd->ica[i].holder = i % UK_REQ_MAX;
  }
  uint8_t *a;
  size_t na;
  cr_assert_eq(kimg_v1_extract_kernel(kd, sizeof *kd, &a, &na), 0);
  Uksim__Kimage__Kernel *k = uksim__kimage__kernel__unpack(NULL, na, a);
  cr_assert_not_null(k);
  cr_expect_eq(k->n_requests, UK_REQ_MAX);
  cr_expect_eq(k->n_icas, UK_ICA_MAX);
  uksim__kimage__kernel__free_unpacked(k, NULL);
  free(a);
}
