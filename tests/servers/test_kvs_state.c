/* The kvs store (servers/kvs_state.h) as pure functions over buffers:
 * semantics against a reference model, restore of good and corrupted
 * images, and crash consistency at every step of the write path. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kst_fixture.h"
#include "uksim/kvs.h"

#define SMALL (64 * 1024)

static struct fx *fx_new(void) {
  struct fx *f = calloc(1, sizeof *f);
  cr_assert_not_null(f);
  fx_init(f);
  return f;
}

/* A lazy successor's inherited image lives as long as its fixture: fx_new
 * callers hand it over with owns(). */
static struct fx_image *owned[64];

static void owns(struct fx_image *img) {
  for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++)
    if (owned[i] == NULL) {
      owned[i] = img;
      return;
    }
  cr_assert_fail("too many owned images");
}

static void fx_free(struct fx *f) {
  fx_close(f);
  for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++)
    if (owned[i] != NULL && owned[i] == f->inherit) {
      fx_image_free(owned[i]);
      free(owned[i]);
      owned[i] = NULL;
    }
  free(f);
}

static struct fx_image *image_new(void) {
  struct fx_image *img = calloc(1, sizeof *img);
  cr_assert_not_null(img);
  return img;
}

static void image_free(struct fx_image *img) {
  fx_image_free(img);
  free(img);
}

/* Snapshots s and restores the snapshot with a fresh fixture *f2. */
static int reopen(struct fx *f, struct kst *s, uint32_t layout, unsigned flags,
                  struct fx **f2, struct kst *out, char *why) {
  struct fx_image *img = image_new();
  fx_snap(f, s, img);
  *f2 = fx_new();
  int r = fx_restore_flags(*f2, img, layout, flags, out, why, 160);
  if (r == 0 && (flags & KST_RESTORE_LAZY))
    owns(img);
  else
    image_free(img);
  return r;
}

/* Semantics -------------------------------------------------------------- */

static void basic_ops(uint32_t method) {
  struct fx *f = fx_new();
  struct kst s;
  struct kst_entry e;
  char list[64];
  fx_store(f, &s, method, 1, SMALL);
  cr_expect_eq(kst_get(&s, "a", 1, &e), -ENOENT);
  cr_expect_eq(kst_put(&s, "a", 1, "one", 3, 0, NULL), 0);
  cr_expect_eq(kst_put(&s, "bb", 2, "", 0, 0, NULL), 0);
  cr_expect_eq(kst_put(&s, "a", 1, "uno", 3, 0, NULL), 0);
  cr_assert_eq(kst_get(&s, "a", 1, &e), 0);
  cr_expect_eq(e.vallen, 3);
  cr_expect_eq(memcmp(e.val, "uno", 3), 0);
  cr_assert_eq(kst_get(&s, "bb", 2, &e), 0);
  cr_expect_eq(e.vallen, 0);
  cr_expect_eq(kst_count(&s), 2);
  cr_assert_eq(kst_keybytes(&s), 5);
  kst_list(&s, list);
  cr_expect(memcmp(list, "a\0bb", 5) == 0 || memcmp(list, "bb\0a", 5) == 0);
  cr_expect_eq(kst_del(&s, "a", 1), 0);
  cr_expect_eq(kst_del(&s, "a", 1), -ENOENT);
  cr_expect_eq(kst_count(&s), 1);
  cr_expect_eq(kst_keybytes(&s), 3);
  cr_expect_eq(kst_put(&s, "x\0y", 3, "v", 1, 0, NULL), -EINVAL);
  cr_expect_eq(kst_put(&s, "", 0, "v", 1, 0, NULL), -EINVAL);
  kst_close(&s);
  cr_expect_eq(fx_nlive(f), 0, "close releases every segment");
  fx_free(f);
}

Test(kvs_state, single_put_get_delete_list, .timeout = 10) {
  basic_ops(KST_SINGLE);
}

Test(kvs_state, chain_put_get_delete_list, .timeout = 10) {
  basic_ops(KST_CHAIN);
}

Test(kvs_state, counters_bump_in_layout_2_and_stay_0_in_layout_1,
     .timeout = 10) {
  struct fx *f = fx_new();
  struct kst s1, s2;
  uint64_t c;
  fx_store(f, &s1, KST_SINGLE, 1, SMALL);
  fx_store(f, &s2, KST_SINGLE, 2, SMALL);
  for (int i = 1; i <= 3; i++) {
    cr_assert_eq(kst_put(&s1, "k", 1, "v", 1, 0, &c), 0);
    cr_expect_eq(c, 0);
    cr_assert_eq(kst_put(&s2, "k", 1, "v", 1, 0, &c), 0);
    cr_expect_eq(c, (uint64_t)i);
  }
  kst_del(&s2, "k", 1);
  kst_put(&s2, "k", 1, "v", 1, 0, &c);
  cr_expect_eq(c, 1, "a deleted key starts again");
  kst_close(&s1);
  kst_close(&s2);
  fx_free(f);
}

Test(kvs_state, single_full_answers_enospc_and_is_unchanged, .timeout = 10) {
  struct fx *f = fx_new();
  struct kst s;
  struct model m = {0};
  unsigned char *big = fx_value(1, SMALL);
  char key[16];
  fx_store(f, &s, KST_SINGLE, 1, SMALL);
  cr_expect_eq(kst_put(&s, "big", 3, big, SMALL, 0, NULL), -ENOSPC);
  int i = 0;
  for (;; i++) {
    snprintf(key, sizeof key, "k%d", i);
    unsigned char *v = fx_value((uint64_t)i, 1000);
    int r = kst_put(&s, key, (uint32_t)strlen(key), v, 1000, 0, NULL);
    if (r == 0)
      model_put(&m, key, v, 1000);
    free(v);
    if (r < 0) {
      cr_expect_eq(r, -ENOSPC);
      break;
    }
  }
  cr_expect_gt(i, 50, "a 64 KiB store holds some 60 values of 1000 bytes");
  cr_expect(model_eq(&m, &s, false), "a failed put changes nothing");
  cr_assert_eq(kst_del(&s, "k0", 2), 0);
  model_del(&m, "k0");
  fx_put(&s, &m, "k0", 99, 1000); /* the freed space is reused */
  cr_expect(model_eq(&m, &s, false));
  kst_close(&s);
  model_free(&m);
  free(big);
  fx_free(f);
}

Test(kvs_state, chain_large_value_has_its_own_segment_for_its_life,
     .timeout = 10) {
  struct fx *f = fx_new();
  struct kst s;
  struct model m = {0};
  fx_store(f, &s, KST_CHAIN, 1, 16 << 20);
  unsigned base = fx_nlive(f);
  fx_put(&s, &m, "big", 1, 1 << 20);
  cr_expect_eq(fx_nlive(f), base + 1, "a 1 MiB value gets an ICA");
  fx_put(&s, &m, "big", 2, 1 << 20);
  cr_expect_eq(fx_nlive(f), base + 1, "the old value's ICA went with it");
  cr_assert_eq(kst_del(&s, "big", 3), 0);
  model_del(&m, "big");
  cr_expect_eq(fx_nlive(f), base, "deleting it releases its ICA");
  cr_expect(model_eq(&m, &s, false));
  kst_close(&s);
  model_free(&m);
  fx_free(f);
}

/* Random puts, deletes and restores against the model.  Each restore
 * continues from the image, as a successor would, so a wrong rebuild of
 * the free space shows up as a later value overwritten. */
static void random_ops(uint32_t method, uint64_t limit, unsigned seed,
                       unsigned flags) {
  struct fx *f = fx_new();
  struct kst s;
  struct model m = {0};
  char key[32], why[160];
  srand(seed);
  fx_store(f, &s, method, 2, limit);
  for (int round = 0; round < 6; round++) {
    for (int i = 0; i < 600; i++) {
      snprintf(key, sizeof key, "key-%d", rand() % 300);
      if (rand() % 5 == 0) {
        int r = kst_del(&s, key, (uint32_t)strlen(key));
        cr_assert_eq(r, model_has(&m, key) ? 0 : -ENOENT);
        model_del(&m, key);
        continue;
      }
      uint64_t len = rand() % 50 == 0 ? 40000 : (uint64_t)(rand() % 1500);
      fx_put(&s, &m, key, (uint64_t)rand(), len);
    }
    cr_assert(model_eq(&m, &s, true), "round %d before restore", round);
    struct fx *f2;
    struct kst s2;
    cr_assert_eq(reopen(f, &s, 2, flags, &f2, &s2, why), 0, "%s", why);
    cr_assert(model_eq(&m, &s2, true), "round %d after restore", round);
    kst_forget(&s);
    fx_free(f);
    f = f2;
    s = s2;
  }
  kst_close(&s);
  model_free(&m);
  fx_free(f);
}

Test(kvs_state, single_random_ops_match_the_model_across_restores,
     .timeout = 60) {
  random_ops(KST_SINGLE, 2 << 20, 1, 0);
}

Test(kvs_state, chain_random_ops_match_the_model_across_restores,
     .timeout = 60) {
  random_ops(KST_CHAIN, 16 << 20, 2, 0);
}

Test(kvs_state, single_random_ops_match_the_model_across_lazy_restores,
     .timeout = 60) {
  random_ops(KST_SINGLE, 2 << 20, 3, KST_RESTORE_LAZY);
}

Test(kvs_state, chain_random_ops_match_the_model_across_lazy_restores,
     .timeout = 60) {
  random_ops(KST_CHAIN, 16 << 20, 4, KST_RESTORE_LAZY);
}

/* Restore ---------------------------------------------------------------- */

/* A store of method with a few keys, and its image. */
static void sample(uint32_t method, struct fx *f, struct kst *s,
                   struct model *m, struct fx_image *img) {
  char key[16];
  fx_store(f, s, method, 1, SMALL * 4);
  for (int i = 0; i < 20; i++) {
    snprintf(key, sizeof key, "k%d", i);
    fx_put(s, m, key, (uint64_t)i, (uint64_t)(i * 100));
  }
  kst_del(s, "k3", 2);
  model_del(m, "k3");
  fx_snap(f, s, img);
}

static int restore_image(struct fx_image *img, uint32_t layout, char *why) {
  struct fx *f = fx_new();
  struct kst s;
  int r = fx_restore(f, img, layout, &s, why, 160);
  if (r == 0)
    kst_forget(&s);
  fx_free(f);
  return r;
}

Test(kvs_state, restore_writes_nothing_it_inherited, .timeout = 10) {
  struct fx *f = fx_new(), *f2 = fx_new();
  struct kst s, s2;
  struct model m = {0};
  struct fx_image *img = image_new(), *copy = image_new();
  char why[160];
  sample(KST_CHAIN, f, &s, &m, img);
  fx_snap(f, &s, copy);
  cr_assert_eq(fx_restore(f2, img, 1, &s2, why, sizeof why), 0, "%s", why);
  cr_expect(model_eq(&m, &s2, false));
  for (size_t i = 0; i < FX_MAX; i++) {
    const struct fx_buf *b = &copy->buf[i];
    if (b->base == NULL)
      continue;
    const struct fx_buf *live = NULL;
    for (size_t j = 0; j < FX_MAX && live == NULL; j++)
      if (f2->live[j].id == b->id && f2->live[j].base)
        live = &f2->live[j];
    cr_assert_not_null(live, "segment %#x attached", b->id);
    cr_expect_eq(memcmp(live->base, b->base, b->size), 0,
                 "segment %#x unchanged", b->id);
  }
  kst_forget(&s2);
  kst_close(&s);
  model_free(&m);
  image_free(img);
  image_free(copy);
  fx_free(f);
  fx_free(f2);
}

Test(kvs_state, restore_ignores_garbage_in_free_space, .timeout = 10) {
  struct fx *f = fx_new(), *f2 = fx_new();
  struct kst s, s2;
  struct model m = {0};
  struct fx_image *img = image_new();
  char why[160];
  sample(KST_SINGLE, f, &s, &m, img);
  for (size_t i = 0; i < s.space.n; i++) /* what a half-done put leaves */
    memset((char *)fx_image_seg(img, img->seg0)->base +
               (uint32_t)s.space.ext[i].addr,
           0xa5, s.space.ext[i].len);
  cr_assert_eq(fx_restore(f2, img, 1, &s2, why, sizeof why), 0, "%s", why);
  cr_expect(model_eq(&m, &s2, false));
  fx_put(&s2, &m, "new", 7, 3000);
  cr_expect(model_eq(&m, &s2, false));
  kst_close(&s2);
  kst_close(&s);
  model_free(&m);
  image_free(img);
  fx_free(f);
  fx_free(f2);
}

Test(kvs_state, restore_refuses_another_layout_by_name, .timeout = 10) {
  struct fx *f = fx_new();
  struct kst s;
  struct model m = {0};
  struct fx_image *img = image_new();
  char why[160] = "";
  sample(KST_SINGLE, f, &s, &m, img);
  cr_expect_eq(restore_image(img, 2, why), -EPROTONOSUPPORT);
  cr_expect_str_eq(why, "state version 1 not supported");
  kst_close(&s);
  model_free(&m);
  image_free(img);
  fx_free(f);
}

/* Versions: a successor takes its own version's state or an older one's
 * (converted through the neutral form: test_kvs_neutral.c), and refuses a
 * newer one's by that version, in its own words. */
Test(kvs_state, check_version_takes_its_own_and_older_and_refuses_newer,
     .timeout = 10) {
  char why[160] = "";
  cr_expect_eq(kst_check_version(1, 1, why, sizeof why), 0);
  cr_expect_eq(kst_check_version(2, 2, why, sizeof why), 0);
  cr_expect_eq(kst_check_version(1, 2, why, sizeof why), 0, "v2 takes v1");
  cr_expect_str_eq(why, "", "nothing said when it is taken");
  cr_expect_eq(kst_check_version(2, 1, why, sizeof why), -EPROTONOSUPPORT);
  cr_expect_str_eq(why, "state version 2 is newer than this server's 1");
}

Test(kvs_state, restore_refuses_a_newer_layout_by_its_version, .timeout = 10) {
  struct fx *f = fx_new();
  struct kst s;
  struct model m = {0};
  struct fx_image *img = image_new();
  char why[160] = "";
  fx_store(f, &s, KST_CHAIN, 2, SMALL * 4);
  fx_put(&s, &m, "k", 1, 100);
  fx_snap(f, &s, img);
  cr_expect_eq(restore_image(img, 1, why), -EPROTONOSUPPORT);
  cr_expect_str_eq(why, "state version 2 is newer than this server's 1");
  kst_close(&s);
  model_free(&m);
  image_free(img);
  fx_free(f);
}

/* Corrupts one thing in a fresh image of method and expects a refusal. */
typedef void (*corrupt_fn)(struct kst *s, struct fx_image *img);

static void *seg0_of(struct fx_image *img) {
  return fx_image_seg(img, img->seg0)->base;
}

static uint64_t *image_slots(struct kst *s, struct fx_image *img) {
  uint64_t w = s->hdr->table;
  uint32_t seg = (uint32_t)(KST_TABLE_ADDR(w) >> 32);
  uint32_t n;
  uint32_t id = kst_segs(s, &n)[seg].id;
  return (uint64_t *)((char *)fx_image_seg(img, id)->base +
                      (uint32_t)KST_TABLE_ADDR(w));
}

/* The first used slot of the image's index. */
static uint64_t *first_used(struct kst *s, struct fx_image *img) {
  uint64_t *t = image_slots(s, img);
  while (*t <= 1)
    t++;
  return t;
}

/* The record slot word w names, in the image of store s. */
static struct kst_rec *image_rec(struct kst *s, struct fx_image *img,
                                 uint64_t w) {
  uint64_t addr = KST_SLOT_ADDR(w);
  uint32_t n;
  uint32_t id = kst_segs(s, &n)[addr >> 32].id;
  return (struct kst_rec *)((char *)fx_image_seg(img, id)->base +
                            (uint32_t)addr);
}

static struct kst_rec *first_rec(struct kst *s, struct fx_image *img) {
  return image_rec(s, img, *first_used(s, img));
}

static void bad_magic(struct kst *s, struct fx_image *img) {
  (void)s;
  ((struct kst_hdr *)seg0_of(img))->magic ^= 1;
}

static void index_out_of_range(struct kst *s, struct fx_image *img) {
  (void)s;
  ((struct kst_hdr *)seg0_of(img))->table = KST_TABLE(SMALL * 4 - 64, 4);
}

static void index_too_large(struct kst *s, struct fx_image *img) {
  struct kst_hdr *h = seg0_of(img);
  (void)s;
  h->table = KST_TABLE(KST_TABLE_ADDR(h->table), 40);
}

static void record_out_of_range(struct kst *s, struct fx_image *img) {
  *first_used(s, img) = KST_SLOT((uint64_t)SMALL * 8, 64);
}

static void slot_capacity_wrong(struct kst *s, struct fx_image *img) {
  *first_used(s, img) += 1ull << 36; /* 16 bytes more than the record's */
}

static void slot_capacity_too_small(struct kst *s, struct fx_image *img) {
  uint64_t *w = first_used(s, img);
  *w = KST_SLOT(KST_SLOT_ADDR(*w), 16);
}

static void record_in_missing_segment(struct kst *s, struct fx_image *img) {
  *first_used(s, img) = KST_SLOT(900ull << 32 | 64, 64);
}

static void record_too_long(struct kst *s, struct fx_image *img) {
  first_rec(s, img)->vallen = 1ull << 40;
}

static void record_cap_short(struct kst *s, struct fx_image *img) {
  first_rec(s, img)->cap = 16;
}

static void key_with_nul(struct kst *s, struct fx_image *img) {
  struct kst_rec *r = first_rec(s, img);
  ((char *)(r + 1))[0] = '\0';
}

static void hash_wrong(struct kst *s, struct fx_image *img) {
  first_rec(s, img)->hash ^= 1;
}

static void two_slots_one_record(struct kst *s, struct fx_image *img) {
  uint64_t *t = image_slots(s, img), *u = first_used(s, img);
  while (*t != 0)
    t++;
  *t = *u;
}

static void record_over_header(struct kst *s, struct fx_image *img) {
  *first_used(s, img) = KST_SLOT(16, 64);
}

static void held_bad_op(struct kst *s, struct fx_image *img) {
  struct kst_hdr *h = seg0_of(img);
  struct kst_held *held = (struct kst_held *)((uint64_t *)(h + 1) + h->segmax);
  (void)s;
  held[3] = (struct kst_held){.seq = 5, .op = KVS_GET};
}

static void segment_missing(struct kst *s, struct fx_image *img) {
  uint32_t n;
  const struct kst_seg *g = kst_segs(s, &n);
  for (uint32_t i = 1; i < n; i++)
    if (g[i].base != NULL) {
      struct fx_buf *b = fx_image_seg(img, g[i].id);
      free(b->base);
      memset(b, 0, sizeof *b);
      return;
    }
  cr_assert_fail("no segment to remove");
}

static void segment_listed_twice(struct kst *s, struct fx_image *img) {
  struct kst_hdr *h = seg0_of(img);
  uint64_t *seg = (uint64_t *)(h + 1);
  (void)s;
  for (uint32_t i = 1; i < h->segmax; i++)
    if (seg[i] != 0) {
      seg[h->segmax - 1] = seg[i];
      return;
    }
}

static void segment_bigger_than_its_ica(struct kst *s, struct fx_image *img) {
  struct kst_hdr *h = seg0_of(img);
  uint64_t *seg = (uint64_t *)(h + 1);
  (void)s;
  for (uint32_t i = 1; i < h->segmax; i++)
    if (seg[i] != 0) {
      seg[i] += 1ull << 40;
      return;
    }
}

static void expect_refused(uint32_t method, corrupt_fn fn, const char *what) {
  struct fx *f = fx_new();
  struct kst s;
  struct model m = {0};
  struct fx_image *img = image_new();
  char why[160] = "";
  sample(method, f, &s, &m, img);
  fn(&s, img);
  int r = restore_image(img, 1, why);
  cr_expect_lt(r, 0, "%s: restored", what);
  cr_expect_neq(why[0], '\0', "%s: refused without a reason", what);
  kst_close(&s);
  model_free(&m);
  image_free(img);
  fx_free(f);
}

Test(kvs_state, restore_refuses_corrupted_images, .timeout = 30) {
  static const struct {
    corrupt_fn fn;
    const char *what;
  } single[] =
      {
          {bad_magic, "magic"},
          {index_out_of_range, "index out of range"},
          {index_too_large, "index too large"},
          {record_out_of_range, "record out of range"},
          {slot_capacity_wrong, "slot capacity not the record's"},
          {slot_capacity_too_small, "slot capacity below a header"},
          {record_in_missing_segment, "record in a missing segment"},
          {record_too_long, "value length"},
          {record_cap_short, "record capacity"},
          {key_with_nul, "key with a NUL"},
          {hash_wrong, "hash"},
          {two_slots_one_record, "two slots, one record"},
          {record_over_header, "record over the header"},
          {held_bad_op, "held request with a bad op"},
      },
    chain[] = {
        {segment_missing, "segment missing"},
        {segment_listed_twice, "segment listed twice"},
        {segment_bigger_than_its_ica, "segment bigger than its ICA"},
        {two_slots_one_record, "chain: two slots, one record"},
    };
  for (size_t i = 0; i < sizeof single / sizeof single[0]; i++)
    expect_refused(KST_SINGLE, single[i].fn, single[i].what);
  for (size_t i = 0; i < sizeof chain / sizeof chain[0]; i++)
    expect_refused(KST_CHAIN, chain[i].fn, chain[i].what);
}

/* The end of a test with a store s in f and a successor's fixture f2. */
static void finish(struct fx *f, struct kst *s, struct model *m, struct fx *f2,
                   struct fx_image *img) {
  kst_close(s);
  model_free(m);
  fx_free(f2);
  image_free(img);
  fx_free(f);
}

/* A lazy restore (extension-time replacement) reads the header, the
 * segment table and the index only: what is wrong there is refused at
 * once; a bad record or segment is reported to ops.corrupt when it is
 * first needed, and never read out of bounds. */
static void expect_lazy(uint32_t method, corrupt_fn fn, bool refused,
                        const char *what) {
  struct fx *f = fx_new(), *f2 = fx_new();
  struct kst s, s2;
  struct model m = {0};
  struct fx_image *img = image_new();
  struct kst_entry e;
  char why[160] = "";
  sample(method, f, &s, &m, img);
  fn(&s, img);
  int r = fx_restore_flags(f2, img, 1, KST_RESTORE_LAZY, &s2, why, sizeof why);
  cr_expect_eq(r < 0, refused, "%s: restore %d (%s)", what, r, why);
  if (r == 0) {
    for (size_t i = 0; i < m.n; i++)
      kst_get(&s2, m.e[i].key, m.e[i].keylen, &e);
    kst_keybytes(&s2); /* reads every record: a wrong hash shows here */
    cr_expect_gt(f2->corrupt, 0, "%s: never reported", what);
    cr_expect_neq(f2->corrupt_why[0], '\0', "%s: no reason", what);
    kst_forget(&s2);
  }
  finish(f, &s, &m, f2, img);
}

Test(kvs_state, lazy_restore_refuses_a_bad_index_and_defers_records,
     .timeout = 30) {
  static const struct {
    uint32_t method;
    corrupt_fn fn;
    bool refused;
    const char *what;
  } t[] = {
      {KST_SINGLE, bad_magic, true, "magic"},
      {KST_SINGLE, index_out_of_range, true, "index out of range"},
      {KST_SINGLE, record_out_of_range, true, "record out of range"},
      {KST_SINGLE, record_in_missing_segment, true, "missing segment"},
      {KST_SINGLE, slot_capacity_too_small, true, "slot below a header"},
      {KST_SINGLE, two_slots_one_record, true, "two slots, one record"},
      {KST_SINGLE, record_over_header, true, "record over the header"},
      {KST_SINGLE, held_bad_op, true, "held request"},
      {KST_CHAIN, segment_listed_twice, true, "segment listed twice"},
      {KST_SINGLE, record_too_long, false, "value length"},
      {KST_SINGLE, record_cap_short, false, "record capacity"},
      {KST_SINGLE, key_with_nul, false, "key with a NUL"},
      {KST_SINGLE, hash_wrong, false, "hash"},
      {KST_CHAIN, segment_missing, false, "segment missing"},
      {KST_CHAIN, segment_bigger_than_its_ica, false, "segment too big"},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    expect_lazy(t[i].method, t[i].fn, t[i].refused, t[i].what);
}

/* Every record's bytes garbage, the index intact: a lazy restore does not
 * notice, because it reads no record. */
Test(kvs_state, lazy_restore_reads_no_record, .timeout = 10) {
  struct fx *f = fx_new(), *f2 = fx_new();
  struct kst s, s2;
  struct model m = {0};
  struct fx_image *img = image_new();
  char why[160] = "";
  sample(KST_SINGLE, f, &s, &m, img);
  uint64_t *t = image_slots(&s, img), n = 1ull << KST_TABLE_LG(s.hdr->table);
  for (uint64_t i = 0; i < n; i++)
    if (t[i] > 1)
      memset(image_rec(&s, img, t[i]), 0xa5, KST_SLOT_CAP(t[i]));
  cr_assert_eq(
      fx_restore_flags(f2, img, 1, KST_RESTORE_LAZY, &s2, why, sizeof why), 0,
      "%s", why);
  cr_expect_eq(kst_count(&s2), m.n);
  cr_expect_eq(f2->corrupt, 0);
  cr_expect_eq(kst_keybytes(&s2), 0, "no record is good");
  cr_expect_gt(f2->corrupt, 0);
  kst_forget(&s2);
  finish(f, &s, &m, f2, img);
}

/* A lazy chain successor attaches the index's segment, and another only
 * when a record in it is read. */
Test(kvs_state, lazy_chain_restore_attaches_on_first_use, .timeout = 10) {
  struct fx *f = fx_new(), *f2;
  struct kst s, s2;
  struct model m = {0};
  char why[160], key[16];
  fx_store(f, &s, KST_CHAIN, 1, 16 << 20);
  for (int i = 0; i < 40; i++) {
    snprintf(key, sizeof key, "k%d", i);
    fx_put(&s, &m, key, (uint64_t)i, 20000); /* three to a 64 KiB segment */
  }
  cr_assert_eq(reopen(f, &s, 1, KST_RESTORE_LAZY, &f2, &s2, why), 0, "%s", why);
  cr_expect_leq(f2->attaches, 1, "restore attached %u", f2->attaches);
  unsigned before = f2->attaches;
  struct kst_entry e;
  cr_assert_eq(kst_get(&s2, "k7", 2, &e), 0);
  cr_expect_eq(f2->attaches, before + 1, "one segment for one record");
  cr_expect(model_eq(&m, &s2, false));
  cr_expect_eq(f2->corrupt, 0);
  fx_put(&s2, &m, "k7", 99, 20000);
  cr_expect(model_eq(&m, &s2, false));
  kst_close(&s2);
  cr_expect_eq(fx_nlive(f2), 0, "every segment released, attached or not");
  kst_close(&s);
  model_free(&m);
  fx_free(f2);
  fx_free(f);
}

/* Whatever bytes change, a restore refuses or yields a store that works
 * (a lazy one may skip records it finds bad, and report them). */
static void random_corruption(unsigned flags) {
  struct fx *f = fx_new();
  struct kst s;
  struct model m = {0};
  struct fx_image *clean = image_new();
  char why[160];
  int restored = 0;
  sample(KST_SINGLE, f, &s, &m, clean);
  uint64_t used =
      4096 + 20 * 2000; /* where the header, index and records are */
  srand(3);
  for (int i = 0; i < 1500; i++) {
    struct fx_image *img = image_new();
    fx_snap(f, &s, img);
    unsigned char *b = seg0_of(img);
    int flips = 1 + rand() % 4;
    for (int j = 0; j < flips; j++) {
      uint64_t at = (uint64_t)rand() % (i % 2 ? 2048 : used);
      b[at] ^= (unsigned char)(1u << (rand() % 8));
    }
    struct fx *f2 = fx_new();
    struct kst s2;
    if (fx_restore_flags(f2, img, 1, flags, &s2, why, sizeof why) == 0) {
      struct kst_entry e;
      uint64_t cursor = 0, n = 0;
      while (kst_next(&s2, &cursor, &e))
        n++;
      cr_assert(n == kst_count(&s2) || (flags && f2->corrupt > 0));
      char *list = malloc(kst_keybytes(&s2) + 1);
      kst_list(&s2, list);
      free(list);
      kst_put(&s2, "after", 5, "x", 1, 0, NULL);
      kst_del(&s2, "k5", 2);
      kst_close(&s2);
      restored++;
    }
    fx_free(f2);
    image_free(img);
  }
  cr_log_info("%d of 1500 corrupted images restored", restored);
  kst_close(&s);
  model_free(&m);
  image_free(clean);
  fx_free(f);
}

Test(kvs_state, random_corruption_is_refused_or_harmless, .timeout = 120) {
  random_corruption(0);
}

Test(kvs_state, random_corruption_is_refused_or_harmless_when_lazy,
     .timeout = 120) {
  random_corruption(KST_RESTORE_LAZY);
}

/* Crash consistency ------------------------------------------------------ */

/* Collects an image of the store at every step of a change. */
struct crash {
  struct fx *f;
  struct kst *s;
  struct fx_image **img;
  size_t n;
};

static void on_step(void *arg) {
  struct crash *c = arg;
  c->img = realloc(c->img, (c->n + 1) * sizeof *c->img);
  c->img[c->n] = image_new();
  fx_snap(c->f, c->s, c->img[c->n]);
  c->n++;
}

typedef void (*change_fn)(struct kst *s, struct model *m);

/* Runs change on a store like `prepare` made, with an image taken at each
 * step; every image must restore to the model before or after the change,
 * never back to "before" once it was "after", and stay usable. */
static void every_step(uint32_t method, change_fn prepare, change_fn change,
                       const char *what) {
  struct fx *f = fx_new();
  struct kst s;
  struct model before = {0}, after;
  struct crash c = {.f = f, .s = &s};
  char why[160];
  fx_store(f, &s, method, 2, 1 << 20);
  prepare(&s, &before);
  model_copy(&after, &before);
  kst_set_step(&s, on_step, &c);
  change(&s, &after);
  kst_set_step(&s, NULL, NULL);
  cr_assert(model_eq(&after, &s, true), "%s: the change itself", what);
  cr_assert_gt(c.n, 0, "%s: no steps", what);
  bool was_after = false;
  for (size_t i = 0; i < c.n; i++) {
    struct fx *f2 = fx_new();
    struct kst s2;
    int r = fx_restore(f2, c.img[i], 2, &s2, why, sizeof why);
    cr_assert_eq(r, 0, "%s: step %zu: %s", what, i, why);
    bool b = model_eq(&before, &s2, true), a = model_eq(&after, &s2, true);
    cr_assert(a || b, "%s: step %zu is neither before nor after", what, i);
    cr_assert(!(was_after && b && !a), "%s: step %zu went back", what, i);
    was_after |= a && !b;
    struct model probe;
    model_copy(&probe, a ? &after : &before);
    fx_put(&s2, &probe, "probe", 5, 3000); /* the free space is right */
    cr_assert(model_eq(&probe, &s2, false), "%s: step %zu: probe", what, i);
    model_free(&probe);
    kst_close(&s2);
    fx_free(f2);
    image_free(c.img[i]);
  }
  cr_expect(was_after, "%s: the last step is after", what);
  free(c.img);
  kst_close(&s);
  model_free(&before);
  model_free(&after);
  fx_free(f);
}

static void ten_keys(struct kst *s, struct model *m) {
  char key[16];
  for (int i = 0; i < 10; i++) {
    snprintf(key, sizeof key, "k%d", i);
    fx_put(s, m, key, (uint64_t)i, 500);
  }
}

static void eleven_keys(struct kst *s, struct model *m) {
  ten_keys(s, m);
  fx_put(s, m, "k10", 10, 500); /* 12 of 16 slots used: next one rehashes */
}

static void big_key(struct kst *s, struct model *m) {
  ten_keys(s, m);
  fx_put(s, m, "big", 1, 200000);
}

static void put_new(struct kst *s, struct model *m) {
  fx_put(s, m, "new", 77, 700);
}

static void put_replace(struct kst *s, struct model *m) {
  fx_put(s, m, "k4", 78, 900);
}

static void put_big_replace(struct kst *s, struct model *m) {
  fx_put(s, m, "big", 2, 200000);
}

static void delete_one(struct kst *s, struct model *m) {
  cr_assert_eq(kst_del(s, "k2", 2), 0);
  model_del(m, "k2");
}

static void delete_big(struct kst *s, struct model *m) {
  cr_assert_eq(kst_del(s, "big", 3), 0);
  model_del(m, "big");
}

Test(kvs_state, single_crash_at_every_step_is_before_or_after, .timeout = 60) {
  every_step(KST_SINGLE, ten_keys, put_new, "single put new");
  every_step(KST_SINGLE, ten_keys, put_replace, "single put replace");
  every_step(KST_SINGLE, eleven_keys, put_new, "single put with rehash");
  every_step(KST_SINGLE, ten_keys, delete_one, "single delete");
}

Test(kvs_state, chain_crash_at_every_step_is_before_or_after, .timeout = 60) {
  every_step(KST_CHAIN, ten_keys, put_new, "chain put new");
  every_step(KST_CHAIN, eleven_keys, put_new, "chain put with rehash");
  every_step(KST_CHAIN, ten_keys, put_big_replace, "chain put new segment");
  every_step(KST_CHAIN, big_key, put_big_replace, "chain replace segment");
  every_step(KST_CHAIN, big_key, delete_big, "chain release segment");
}

/* A crash between publishing a new segment and publishing the record in it
 * leaves an empty segment: the successor finds it free and, once it may
 * write, gives it back. */
Test(kvs_state, trim_releases_a_segment_a_crash_left_empty, .timeout = 10) {
  struct fx *f = fx_new(), *f2;
  struct kst s, s2;
  struct model m = {0};
  char why[160];
  fx_store(f, &s, KST_CHAIN, 1, 16 << 20);
  ten_keys(&s, &m);
  fx_put(&s, &m, "big", 1, 1 << 20);
  model_del(&m, "big");
  struct fx_image *img = image_new();
  fx_snap(f, &s, img);
  uint64_t *slot = first_used(&s, img);
  while (*slot <= 1 || image_rec(&s, img, *slot)->vallen != 1 << 20)
    slot++;
  *slot = 1; /* the big record never made it into the index */
  f2 = fx_new();
  cr_assert_eq(fx_restore(f2, img, 1, &s2, why, sizeof why), 0, "%s", why);
  cr_expect(model_eq(&m, &s2, false));
  unsigned before = fx_nlive(f2);
  kst_trim(&s2);
  cr_expect_eq(fx_nlive(f2), before - 1, "the empty segment is released");
  cr_expect(model_eq(&m, &s2, false));
  kst_close(&s2);
  kst_close(&s);
  model_free(&m);
  image_free(img);
  fx_free(f);
  fx_free(f2);
}

/* Held requests ---------------------------------------------------------- */

/* What a caching server does for one held put (kvs.c flush). */
static void held_put(struct kst *s, uint64_t seq, const char *val) {
  cr_assert_eq(kst_put(s, "k", 1, val, strlen(val), seq, NULL), 0);
  kst_set_applied(s, seq);
  kst_unhold(s, seq);
}

/* What a successor does with the held puts it finds; seq n puts "v<n>". */
static void settle(struct kst *s) {
  struct kst_held h[KST_HELD_MAX];
  uint32_t n = kst_held_list(s, h);
  for (uint32_t i = 0; i < n; i++) {
    char val[8];
    snprintf(val, sizeof val, "v%llu", (unsigned long long)h[i].seq);
    if (!kst_was_applied(s, h[i].seq, "k", 1))
      held_put(s, h[i].seq, val);
    else
      kst_unhold(s, h[i].seq);
  }
}

/* Two held puts of one key, with an image at every step from the first
 * hold to the last unhold.  Whatever image a successor restores, settling
 * it applies each recorded put exactly once: the counter (layout 2) counts
 * applications.  A put not yet recorded is answered by the kernel. */
Test(kvs_state, held_put_applies_exactly_once_whatever_step_fails,
     .timeout = 60) {
  struct fx *f = fx_new();
  struct kst s;
  struct crash c = {.f = f, .s = &s};
  struct kst_held h = {.req = 42, .op = KVS_PUT, .ctl = 7, .data = 8};
  char why[160];
  uint64_t seq1, seq2;
  fx_store(f, &s, KST_SINGLE, 2, SMALL);
  cr_assert_eq(kst_put(&s, "k", 1, "v0", 2, 0, NULL), 0); /* counter 1 */
  kst_set_step(&s, on_step, &c);
  cr_assert_eq(kst_hold(&s, &h, &seq1), 0);
  size_t held1 = c.n - 1; /* the image right after seq1 was published */
  cr_assert_eq(kst_hold(&s, &h, &seq2), 0);
  size_t held2 = c.n - 1;
  cr_assert(seq1 == 1 && seq2 == 2);
  held_put(&s, seq1, "v1");
  held_put(&s, seq2, "v2");
  kst_set_step(&s, NULL, NULL);
  for (size_t i = 0; i < c.n; i++) {
    struct fx *f2 = fx_new();
    struct kst s2;
    struct kst_entry e;
    cr_assert_eq(fx_restore(f2, c.img[i], 2, &s2, why, sizeof why), 0);
    settle(&s2);
    uint64_t recorded = (i >= held1) + (i >= held2);
    cr_assert_eq(kst_get(&s2, "k", 1, &e), 0);
    cr_assert_eq(e.counter, 1 + recorded, "step %zu: %llu applications of %llu",
                 i, (unsigned long long)e.counter - 1,
                 (unsigned long long)recorded);
    char want[8];
    snprintf(want, sizeof want, "v%llu", (unsigned long long)recorded);
    cr_assert(e.vallen == 2 && memcmp(e.val, want, 2) == 0, "step %zu", i);
    struct kst_held left[KST_HELD_MAX];
    cr_assert_eq(kst_held_list(&s2, left), 0);
    kst_close(&s2);
    fx_free(f2);
    image_free(c.img[i]);
  }
  free(c.img);
  kst_close(&s);
  fx_free(f);
}

Test(kvs_state, held_requests_survive_a_restore_in_order, .timeout = 10) {
  struct fx *f = fx_new(), *f2;
  struct kst s, s2;
  struct kst_held h[KST_HELD_MAX];
  char why[160];
  uint64_t seq;
  fx_store(f, &s, KST_CHAIN, 1, 1 << 20);
  for (uint32_t i = 0; i < 5; i++) {
    struct kst_held x = {.req = 100 + i, .op = KVS_PUT, .ctl = i, .data = 0};
    cr_assert_eq(kst_hold(&s, &x, &seq), 0);
  }
  kst_unhold(&s, 2);
  kst_set_applied(&s, 1);
  cr_assert_eq(reopen(f, &s, 1, 0, &f2, &s2, why), 0, "%s", why);
  cr_assert_eq(kst_held_list(&s2, h), 4);
  cr_expect_eq(h[0].seq, 1);
  cr_expect_eq(h[0].req, 100);
  cr_expect_eq(h[1].seq, 3);
  cr_expect_eq(h[3].req, 104);
  cr_expect_eq(kst_applied(&s2), 1);
  struct kst_held x = {.req = 9, .op = KVS_PUT};
  cr_assert_eq(kst_hold(&s2, &x, &seq), 0);
  cr_expect_eq(seq, 6, "numbers go on after the restore");
  kst_close(&s2);
  kst_close(&s);
  fx_free(f);
  fx_free(f2);
}

Test(kvs_state, hold_refuses_beyond_the_table, .timeout = 10) {
  struct fx *f = fx_new();
  struct kst s;
  struct kst_held x = {.req = 1, .op = KVS_PUT};
  uint64_t seq;
  fx_store(f, &s, KST_SINGLE, 1, SMALL);
  for (int i = 0; i < KST_HELD_MAX; i++)
    cr_assert_eq(kst_hold(&s, &x, &seq), 0);
  cr_expect_eq(kst_hold(&s, &x, &seq), -ENOSPC);
  kst_close(&s);
  fx_free(f);
}

/* Conversion ------------------------------------------------------------- */

Test(kvs_state, copy_converts_method_and_layout_and_keeps_held, .timeout = 10) {
  struct fx *f = fx_new();
  struct kst a, b;
  struct model m = {0};
  struct kst_held h = {.req = 5, .op = KVS_PUT, .ctl = 3}, out[KST_HELD_MAX];
  uint64_t seq;
  fx_store(f, &a, KST_SINGLE, 1, SMALL * 4);
  ten_keys(&a, &m);
  cr_assert_eq(kst_hold(&a, &h, &seq), 0);
  kst_set_applied(&a, 0);
  fx_store(f, &b, KST_CHAIN, 2, 1 << 20);
  cr_assert_eq(kst_copy(&b, &a), 0);
  for (size_t i = 0; i < m.n; i++)
    m.e[i].counter = 1; /* v1 -> v2: counters start at 1 */
  cr_expect(model_eq(&m, &b, true));
  cr_assert_eq(kst_held_list(&b, out), 1);
  cr_expect_eq(out[0].seq, seq);
  cr_expect_eq(out[0].req, 5);
  kst_close(&a);
  kst_close(&b);
  model_free(&m);
  fx_free(f);
}
