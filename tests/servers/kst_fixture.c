/* Test fixture for the kvs store (see kst_fixture.h). */
#include "kst_fixture.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct fx_buf *free_entry(struct fx_buf *b) {
  for (size_t i = 0; i < FX_MAX; i++)
    if (b[i].base == NULL)
      return &b[i];
  cr_assert_fail("fixture: too many segments");
  return NULL;
}

static int fx_create(void *arg, uint64_t size, struct kst_seg *out) {
  struct fx *f = arg;
  struct fx_buf *b = free_entry(f->live);
  b->base = calloc(1, size);
  cr_assert_not_null(b->base);
  b->size = size;
  b->id = ++f->next_id;
  f->creates++;
  *out = (struct kst_seg){.base = b->base, .size = size, .id = b->id};
  return 0;
}

struct fx_buf *fx_image_seg(struct fx_image *img, uint32_t id) {
  for (size_t i = 0; i < FX_MAX; i++)
    if (img->buf[i].base != NULL && img->buf[i].id == id)
      return &img->buf[i];
  return NULL;
}

/* Moves a segment of the inherited image into f's live set. */
static int fx_attach(void *arg, uint32_t id, struct kst_seg *out) {
  struct fx *f = arg;
  struct fx_buf *src = f->inherit ? fx_image_seg(f->inherit, id) : NULL;
  if (src == NULL)
    return -EPERM;
  struct fx_buf *b = free_entry(f->live);
  *b = *src;
  memset(src, 0, sizeof *src);
  f->attaches++;
  *out = (struct kst_seg){.base = b->base, .size = b->size, .id = b->id};
  return 0;
}

/* A segment never attached (a lazy restore had no use for it) is still in
 * the inherited image: releasing it frees it there, as the kernel would. */
static void fx_release(void *arg, struct kst_seg *seg) {
  struct fx *f = arg;
  struct fx_buf *b = NULL;
  for (size_t i = 0; i < FX_MAX && b == NULL; i++)
    if (f->live[i].base != NULL && f->live[i].id == seg->id)
      b = &f->live[i];
  if (b == NULL && seg->base == NULL && f->inherit != NULL)
    b = fx_image_seg(f->inherit, seg->id);
  cr_assert_not_null(b, "fixture: release of an unknown segment %#x", seg->id);
  free(b->base);
  memset(b, 0, sizeof *b);
  f->releases++;
}

/* A lazy restore's late discoveries: counted, and the store goes on. */
static void fx_corrupt(void *arg, const char *why) {
  struct fx *f = arg;
  f->corrupt++;
  snprintf(f->corrupt_why, sizeof f->corrupt_why, "%s", why);
}

void fx_init(struct fx *f) {
  memset(f, 0, sizeof *f);
  f->next_id = 0x10000;
  f->ops = (struct kst_segops){fx_create, fx_attach, fx_release, f, fx_corrupt};
}

void fx_close(struct fx *f) {
  for (size_t i = 0; i < FX_MAX; i++)
    free(f->live[i].base);
  memset(f->live, 0, sizeof f->live);
}

unsigned fx_nlive(const struct fx *f) {
  unsigned n = 0;
  for (size_t i = 0; i < FX_MAX; i++)
    n += f->live[i].base != NULL;
  return n;
}

static void snap_buf(struct fx_image *img, const struct fx_buf *b) {
  struct fx_buf *to = NULL;
  for (size_t i = 0; i < FX_MAX && to == NULL; i++)
    if (img->buf[i].base == NULL)
      to = &img->buf[i];
  cr_assert_not_null(to, "fixture: image full");
  *to = *b;
  to->base = malloc(b->size);
  cr_assert_not_null(to->base);
  memcpy(to->base, b->base, b->size);
}

/* The segments a lazy restore has not attached yet are still in the
 * inherited image: a successor would find those too. */
void fx_snap(const struct fx *f, const struct kst *s, struct fx_image *img) {
  uint32_t n;
  memset(img, 0, sizeof *img);
  img->seg0 = kst_segs(s, &n)[0].id;
  for (size_t i = 0; i < FX_MAX; i++) {
    if (f->live[i].base != NULL)
      snap_buf(img, &f->live[i]);
    if (f->inherit != NULL && f->inherit->buf[i].base != NULL)
      snap_buf(img, &f->inherit->buf[i]);
  }
}

void fx_image_free(struct fx_image *img) {
  for (size_t i = 0; i < FX_MAX; i++)
    free(img->buf[i].base);
  memset(img, 0, sizeof *img);
}

int fx_restore(struct fx *f, struct fx_image *img, uint32_t layout,
               struct kst *s, char *why, size_t whylen) {
  return fx_restore_flags(f, img, layout, 0, s, why, whylen);
}

int fx_restore_flags(struct fx *f, struct fx_image *img, uint32_t layout,
                     unsigned flags, struct kst *s, char *why, size_t whylen) {
  struct kst_seg seg0;
  for (size_t i = 0; i < FX_MAX; i++)
    if (img->buf[i].id > f->next_id)
      f->next_id = img->buf[i].id;
  f->inherit = img;
  cr_assert_eq(fx_attach(f, img->seg0, &seg0), 0, "no segment 0");
  f->attaches = 0;
  int r =
      kst_restore(s, &seg0, layout, 64ull << 20, flags, &f->ops, why, whylen);
  if (!(flags & KST_RESTORE_LAZY))
    f->inherit = NULL; /* a deep restore took all it needs */
  return r;
}

void fx_store(struct fx *f, struct kst *s, uint32_t method, uint32_t layout,
              uint64_t limit) {
  struct kst_config c = {.method = method,
                         .layout = layout,
                         .limit = limit,
                         .seg_size = 64 * 1024};
  cr_assert_eq(kst_init(s, &c, &f->ops), 0);
}

/* Model ------------------------------------------------------------------ */

static struct model_ent *model_find(const struct model *m, const char *key) {
  for (size_t i = 0; i < m->n; i++)
    if (strcmp(m->e[i].key, key) == 0)
      return &m->e[i];
  return NULL;
}

void model_put(struct model *m, const char *key, const void *val,
               uint64_t vallen) {
  struct model_ent *e = model_find(m, key);
  if (e == NULL) {
    if (m->n == m->cap) {
      m->cap = m->cap ? 2 * m->cap : 16;
      m->e = realloc(m->e, m->cap * sizeof *m->e);
      cr_assert_not_null(m->e);
    }
    e = &m->e[m->n++];
    memset(e, 0, sizeof *e);
    strcpy(e->key, key);
    e->keylen = (uint32_t)strlen(key);
  }
  free(e->val);
  e->val = malloc(vallen ? vallen : 1);
  memcpy(e->val, val, vallen);
  e->vallen = vallen;
  e->counter++;
}

bool model_has(const struct model *m, const char *key) {
  return model_find(m, key) != NULL;
}

void model_del(struct model *m, const char *key) {
  struct model_ent *e = model_find(m, key);
  if (e == NULL)
    return;
  free(e->val);
  *e = m->e[--m->n];
}

void model_free(struct model *m) {
  for (size_t i = 0; i < m->n; i++)
    free(m->e[i].val);
  free(m->e);
  memset(m, 0, sizeof *m);
}

void model_copy(struct model *dst, const struct model *src) {
  memset(dst, 0, sizeof *dst);
  for (size_t i = 0; i < src->n; i++) {
    model_put(dst, src->e[i].key, src->e[i].val, src->e[i].vallen);
    dst->e[i].counter = src->e[i].counter;
  }
}

bool model_eq(const struct model *m, const struct kst *s, bool check_counters) {
  struct kst_entry e;
  if (kst_count(s) != m->n)
    return false;
  uint64_t keybytes = 0;
  for (size_t i = 0; i < m->n; i++) {
    const struct model_ent *x = &m->e[i];
    keybytes += x->keylen + 1;
    if (kst_get(s, x->key, x->keylen, &e) != 0 || e.vallen != x->vallen ||
        memcmp(e.val, x->val, x->vallen) != 0)
      return false;
    if (check_counters && e.counter != x->counter)
      return false;
  }
  return keybytes == kst_keybytes(s);
}

unsigned char *fx_value(uint64_t seed, uint64_t len) {
  unsigned char *v = malloc(len ? len : 1);
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  for (uint64_t i = 0; i < len; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    v[i] = (unsigned char)x;
  }
  return v;
}

void fx_put(struct kst *s, struct model *m, const char *key, uint64_t seed,
            uint64_t len) {
  unsigned char *v = fx_value(seed, len);
  int r = kst_put(s, key, (uint32_t)strlen(key), v, len, 0, NULL);
  cr_assert_eq(r, 0, "put %s: %d", key, r);
  model_put(m, key, v, len);
  free(v);
}
