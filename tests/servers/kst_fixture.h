/* Test fixture for the kvs store: segments in malloc()ed buffers standing
 * for ICAs, crash images (a copy of every segment at one instant), and a
 * plain reference model of what the store should hold. */
#ifndef UKSIM_TESTS_SERVERS_KST_FIXTURE_H
#define UKSIM_TESTS_SERVERS_KST_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvs_state.h"

#define FX_MAX 2048 /* segments a fixture can track */

struct fx_buf {
  uint32_t id;
  void *base; /* NULL: free entry (or taken from an image) */
  uint64_t size;
};

/* Every segment a store made or attached lives here until released. */
struct fx {
  struct fx_buf live[FX_MAX];
  uint32_t next_id;
  struct kst_segops ops;
  struct fx_image *inherit; /* what attach hands out */
  unsigned creates, releases, attaches;
  unsigned corrupt;      /* ops.corrupt calls */
  char corrupt_why[160]; /* the last one's reason */
};

/* Every segment of a store at one instant, as a successor would find it. */
struct fx_image {
  struct fx_buf buf[FX_MAX];
  uint32_t seg0;
};

void fx_init(struct fx *f);
/* Frees every buffer still live (and asserts nothing else is left). */
void fx_close(struct fx *f);
unsigned fx_nlive(const struct fx *f);

/* Copies every live segment of f into img; store s names segment 0. */
void fx_snap(const struct fx *f, const struct kst *s, struct fx_image *img);
void fx_image_free(struct fx_image *img);
struct fx_buf *fx_image_seg(struct fx_image *img, uint32_t id);

/* A successor: f (fresh) takes over img's segments and restores s (a deep
 * restore; fx_restore_flags for KST_RESTORE_LAZY).  Segments a lazy
 * restore has not attached stay in img until it does: img must outlive
 * s. */
int fx_restore(struct fx *f, struct fx_image *img, uint32_t layout,
               struct kst *s, char *why, size_t whylen);
int fx_restore_flags(struct fx *f, struct fx_image *img, uint32_t layout,
                     unsigned flags, struct kst *s, char *why, size_t whylen);

/* A fresh store of method and layout in f; asserts success. */
void fx_store(struct fx *f, struct kst *s, uint32_t method, uint32_t layout,
              uint64_t limit);

/* Reference model ------------------------------------------------------- */

struct model_ent {
  char key[256];
  uint32_t keylen;
  unsigned char *val;
  uint64_t vallen;
  uint64_t counter;
};

struct model {
  struct model_ent *e;
  size_t n, cap;
};

void model_put(struct model *m, const char *key, const void *val,
               uint64_t vallen);
void model_del(struct model *m, const char *key);
bool model_has(const struct model *m, const char *key);
void model_free(struct model *m);
void model_copy(struct model *dst, const struct model *src);
/* Whether s holds exactly m (counters too when check_counters). */
bool model_eq(const struct model *m, const struct kst *s, bool check_counters);

/* A value of len bytes derived from seed (caller frees). */
unsigned char *fx_value(uint64_t seed, uint64_t len);

/* Puts key with a value from seed into both s and m; asserts success. */
void fx_put(struct kst *s, struct model *m, const char *key, uint64_t seed,
            uint64_t len);

#endif
