/* The state of the 9P file servers (servers/p9state.h) over plain
 * buffers: a memfs tree survives describe, publish, unpack and load
 * image for image; a publish cut short at any byte leaves the previous
 * image published; headers out of range and corrupted images are
 * refused or give a tree, never a crash; a hostfs state restores only in
 * its own directory and never with a path that climbs out. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "p9state.h"

enum { CAP = 1 << 16 };

static uint8_t *area_new(void) {
  uint8_t *a = calloc(1, p9s_area_size(CAP));
  p9s_area_init(a, CAP);
  return a;
}

/* A tree with directories, files, a removed file (a free slot with a
 * generation) and a second user. */
static p9_memfs *sample_tree(void) {
  p9_memfs *fs = p9_memfs_new();
  cr_assert_eq(p9_memfs_put(fs, "d", NULL, (size_t)-1), 0);
  cr_assert_eq(p9_memfs_put(fs, "d/a", "alpha", 5), 0);
  cr_assert_eq(p9_memfs_put(fs, "gone", "x", 1), 0);
  cr_assert_eq(p9_memfs_put(fs, "d/e", NULL, (size_t)-1), 0);
  cr_assert_eq(p9_memfs_put(fs, "d/e/b", "beta!", 5), 0);
  return fs;
}

/* st describing fs (call p9s_memfs_described after). */
static void describe(p9_memfs *fs, Uksim__P9s__State *st) {
  uksim__p9s__state__init(st);
  st->version = 1;
  st->kind = "ramfs";
  p9s_memfs_describe(fs, st);
}

/* The packed image of fs, malloc'd, its length in *len. */
static uint8_t *packed(p9_memfs *fs, size_t *len) {
  Uksim__P9s__State st;
  uint8_t *b;
  describe(fs, &st);
  *len = uksim__p9s__state__get_packed_size(&st);
  b = malloc(*len);
  uksim__p9s__state__pack(&st, b);
  p9s_memfs_described(&st);
  return b;
}

static void publish(uint8_t *area, p9_memfs *fs) {
  Uksim__P9s__State st;
  describe(fs, &st);
  cr_assert_eq(p9s_publish(area, &st, uksim__p9s__state__get_packed_size(&st)),
               0);
  p9s_memfs_described(&st);
}

/* The tree published in area, loaded (NULL if refused). */
static p9_memfs *restore(const uint8_t *area, uint64_t size) {
  const char *why;
  char buf[128];
  int err;
  Uksim__P9s__State *st = p9s_unpack(area, size, &why);
  p9_memfs *fs;
  if (!st)
    return NULL;
  fs = p9s_memfs_load(st, &err, buf, sizeof buf);
  uksim__p9s__state__free_unpacked(st, NULL);
  return fs;
}

static void same_tree(p9_memfs *a, p9_memfs *b) {
  size_t la, lb;
  uint8_t *pa = packed(a, &la), *pb = packed(b, &lb);
  cr_assert_eq(la, lb);
  cr_assert_arr_eq(pa, pb, la, "the restored tree's image differs");
  free(pa);
  free(pb);
}

Test(p9state, a_tree_survives_publish_and_load_image_for_image) {
  p9_memfs *fs = sample_tree(), *back;
  uint8_t *area = area_new();
  publish(area, fs);
  back = restore(area, p9s_area_size(CAP));
  cr_assert_not_null(back);
  same_tree(fs, back);
  /* and the next publish goes to the other half, just as restorable */
  cr_assert_eq(p9_memfs_put(fs, "d/a", "alpha2", 6), 0);
  publish(area, fs);
  p9_memfs_free(back);
  back = restore(area, p9s_area_size(CAP));
  same_tree(fs, back);
  p9_memfs_free(back);
  p9_memfs_free(fs);
  free(area);
}

/* A crash while the next image is being written, after any number of its
 * bytes: the area still restores the image published before. */
Test(p9state, a_publish_cut_short_leaves_the_previous_image) {
  p9_memfs *fs = sample_tree(), *before = sample_tree(), *back;
  uint8_t *area = area_new(), *next;
  size_t len;
  publish(area, fs);
  cr_assert_eq(p9_memfs_put(fs, "d/new", "more bytes", 10), 0);
  next = packed(fs, &len);
  uint64_t pub;
  memcpy(&pub, area + 16, 8);
  uint8_t *other = area + P9S_HDR_SIZE + ((pub & 1) ^ 1) * CAP;
  for (size_t k = 0; k <= len; k += 7) {
    memcpy(other, next, k); /* what a crash after k bytes leaves */
    memset(other + k, 0xa5, 16);
    back = restore(area, p9s_area_size(CAP));
    cr_assert_not_null(back, "cut after %zu bytes", k);
    same_tree(before, back);
    p9_memfs_free(back);
  }
  publish(area, fs);
  back = restore(area, p9s_area_size(CAP));
  same_tree(fs, back);
  p9_memfs_free(back);
  p9_memfs_free(fs);
  p9_memfs_free(before);
  free(next);
  free(area);
}

Test(p9state, headers_out_of_range_are_refused) {
  p9_memfs *fs = sample_tree();
  uint8_t *area = area_new();
  const char *why;
  uint64_t v;
  cr_assert_null(p9s_unpack(area, p9s_area_size(CAP), &why));
  cr_assert(strstr(why, "out of range"), "nothing published: %s", why);
  publish(area, fs);
  cr_assert_null(p9s_unpack(area, 100, &why), "an area smaller than a page");
  cr_assert_null(p9s_unpack(area, p9s_area_size(CAP) - 1, &why),
                 "halves beyond the area");
  memcpy(&v, area + 16, 8);
  uint64_t bad = ((uint64_t)CAP + 1) << 1;
  memcpy(area + 16, &bad, 8);
  cr_assert_null(p9s_unpack(area, p9s_area_size(CAP), &why), "len > half");
  memcpy(area + 16, &v, 8);
  area[0] ^= 1;
  cr_assert_null(p9s_unpack(area, p9s_area_size(CAP), &why));
  cr_assert(strstr(why, "no 9P server state"), "%s", why);
  p9_memfs_free(fs);
  free(area);
}

/* Random bytes changed in a published image: a successor refuses it or
 * gets a tree (which it can serve); it never crashes or leaks. */
Test(p9state, corrupted_images_are_refused_or_trees, .timeout = 120) {
  p9_memfs *fs = sample_tree();
  uint8_t *area = area_new(), *img;
  size_t len;
  int refused = 0;
  img = packed(fs, &len);
  srand(7);
  for (int i = 0; i < 3000; i++) {
    publish(area, fs);
    uint64_t pub;
    memcpy(&pub, area + 16, 8);
    uint8_t *h = area + P9S_HDR_SIZE + (pub & 1) * CAP;
    for (int k = 0; k < 1 + rand() % 4; k++)
      h[rand() % len] = (uint8_t)rand();
    p9_memfs *back = restore(area, p9s_area_size(CAP));
    refused += back == NULL;
    if (back) { /* a tree: it takes a put */
      p9_memfs_put(back, "probe", "p", 1);
      p9_memfs_free(back);
    }
  }
  cr_expect_gt(refused, 0, "no corruption was caught");
  free(img);
  p9_memfs_free(fs);
  free(area);
}

Test(p9state, a_hostfs_state_restores_only_in_its_own_directory) {
  char dir[] = "/tmp/p9state-XXXXXX", why[160];
  int err;
  Uksim__P9s__State st;
  cr_assert_not_null(mkdtemp(dir));
  p9_hostfs *fs = p9_hostfs_new(dir, &err), *back;
  cr_assert_not_null(fs);
  uksim__p9s__state__init(&st);
  p9s_hostfs_describe(fs, &st);
  back = p9s_hostfs_load(dir, &st, &err, why, sizeof why);
  cr_assert_not_null(back, "%s", why);
  p9_hostfs_free(back);
  cr_assert_null(p9s_hostfs_load("/tmp", &st, &err, why, sizeof why));
  cr_assert(strstr(why, "not /tmp"), "%s", why);
  Uksim__P9s__HostfsHandle h = UKSIM__P9S__HOSTFS_HANDLE__INIT, *hp = &h;
  h.used = 1;
  h.gen = 1;
  h.path = "a/../../etc";
  h.omode = P9_ONONE;
  st.hostfs->handles = &hp;
  st.hostfs->n_handles = 1;
  cr_assert_null(p9s_hostfs_load(dir, &st, &err, why, sizeof why),
                 "a path that climbs out");
  p9s_hostfs_described(&st);
  p9_hostfs_free(fs);
  rmdir(dir);
}
