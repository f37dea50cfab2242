/* The free-space allocator of the kvs store (servers/kvs_space.h), checked
 * against a byte map. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kvs_space.h"

Test(kvs_space, adjacent_ranges_coalesce_in_any_order, .timeout = 10) {
  struct ksp sp;
  struct ksp_ext m;
  ksp_init(&sp);
  ksp_give(&sp, 200, 100, NULL);
  ksp_give(&sp, 0, 100, NULL);
  ksp_give(&sp, 100, 100, &m);
  cr_expect_eq(sp.n, 1);
  cr_expect_eq(m.addr, 0);
  cr_expect_eq(m.len, 300);
  cr_expect_eq(sp.free_bytes, 300);
  ksp_close(&sp);
}

Test(kvs_space, take_is_first_fit_and_keeps_tiny_remainders, .timeout = 10) {
  struct ksp sp;
  uint64_t a, got;
  ksp_init(&sp);
  ksp_give(&sp, 1000, 96, NULL);
  ksp_give(&sp, 5000, 4096, NULL);
  cr_expect_eq(ksp_take(&sp, 64, &a, &got), 0);
  cr_expect_eq(a, 1000);
  cr_expect_eq(got, 96, "a 32-byte remainder stays with the allocation");
  cr_expect_eq(ksp_take(&sp, 1024, &a, &got), 0);
  cr_expect_eq(a, 5000);
  cr_expect_eq(got, 1024);
  cr_expect_eq(ksp_take(&sp, 8192, &a, &got), -ENOSPC);
  cr_expect_eq(sp.free_bytes, 3072);
  ksp_close(&sp);
}

Test(kvs_space, drop_removes_only_a_whole_extent, .timeout = 10) {
  struct ksp sp;
  ksp_init(&sp);
  ksp_give(&sp, 1ull << 32, 8192, NULL);
  cr_expect_not(ksp_drop(&sp, 1ull << 32, 4096));
  cr_expect(ksp_drop(&sp, 1ull << 32, 8192));
  cr_expect_eq(sp.n, 0);
  cr_expect_eq(sp.free_bytes, 0);
  ksp_close(&sp);
}

Test(kvs_space, rebuild_frees_the_gaps_between_used_extents, .timeout = 10) {
  struct ksp sp;
  struct ksp_ext area[2] = {{0, 1000}, {1ull << 32, 500}};
  struct ksp_ext used[3] = {{1ull << 32, 100}, {100, 100}, {0, 50}};
  ksp_init(&sp);
  cr_assert_eq(ksp_rebuild(&sp, area, 2, used, 3), 0);
  cr_assert_eq(sp.n, 3);
  cr_expect_eq(sp.ext[0].addr, 50);
  cr_expect_eq(sp.ext[0].len, 50);
  cr_expect_eq(sp.ext[1].addr, 200);
  cr_expect_eq(sp.ext[1].len, 800);
  cr_expect_eq(sp.ext[2].addr, (1ull << 32) + 100);
  cr_expect_eq(sp.ext[2].len, 400);
  ksp_close(&sp);
}

Test(kvs_space, rebuild_refuses_overlap_and_strays, .timeout = 10) {
  struct ksp sp;
  struct ksp_ext area[1] = {{0, 1000}};
  struct ksp_ext overlap[2] = {{0, 100}, {50, 100}};
  struct ksp_ext same[2] = {{64, 16}, {64, 16}};
  struct ksp_ext beyond[1] = {{900, 200}};
  struct ksp_ext outside[1] = {{5000, 10}};
  struct ksp_ext empty[1] = {{10, 0}};
  ksp_init(&sp);
  cr_expect_eq(ksp_rebuild(&sp, area, 1, overlap, 2), -EPROTO);
  cr_expect_eq(ksp_rebuild(&sp, area, 1, same, 2), -EPROTO);
  cr_expect_eq(ksp_rebuild(&sp, area, 1, beyond, 1), -EPROTO);
  cr_expect_eq(ksp_rebuild(&sp, area, 1, outside, 1), -EPROTO);
  cr_expect_eq(ksp_rebuild(&sp, area, 1, empty, 1), -EPROTO);
  ksp_close(&sp);
}

/* Random takes and gives against a byte map: no byte is handed out twice,
 * every byte given back is free again, and the totals agree. */
Test(kvs_space, random_use_matches_a_byte_map, .timeout = 60) {
  enum { SIZE = 1 << 16, N = 4000 };
  struct ksp sp;
  unsigned char *map = calloc(SIZE, 1);
  struct ksp_ext held[256];
  size_t nheld = 0;
  uint64_t used = 0;
  srand(7);
  ksp_init(&sp);
  ksp_give(&sp, 0, SIZE, NULL);
  for (int i = 0; i < N; i++) {
    if (nheld < 256 && rand() % 3 != 0) {
      uint64_t a, got, len = 16 * (1 + rand() % 64);
      if (ksp_take(&sp, len, &a, &got) < 0)
        continue;
      cr_assert_geq(got, len);
      for (uint64_t b = a; b < a + got; b++)
        cr_assert_eq(map[b]++, 0, "byte %llu handed out twice",
                     (unsigned long long)b);
      held[nheld++] = (struct ksp_ext){a, got};
      used += got;
    } else if (nheld > 0) {
      size_t j = (size_t)rand() % nheld;
      memset(map + held[j].addr, 0, held[j].len);
      ksp_give(&sp, held[j].addr, held[j].len, NULL);
      used -= held[j].len;
      held[j] = held[--nheld];
    }
    cr_assert_eq(sp.free_bytes, SIZE - used);
  }
  for (size_t i = 1; i < sp.n; i++)
    cr_assert_gt(sp.ext[i].addr, sp.ext[i - 1].addr + sp.ext[i - 1].len,
                 "extents sorted and never adjacent");
  ksp_close(&sp);
  free(map);
}
