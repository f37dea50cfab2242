/* The version-neutral form of a kvs store (servers/kvs_neutral.h): export
 * and import round trips between layouts 1 and 2 (v1 -> v2 converts, v2 ->
 * v1 is refused by its version), and garbage refused. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kst_fixture.h"
#include "kvs_neutral.h"
#include "uksim/kvs.h"

static struct fx *F;

static void setup(void) {
  F = calloc(1, sizeof *F);
  fx_init(F);
}

static void teardown(void) {
  cr_expect_eq(fx_nlive(F), 0, "a store was not closed");
  fx_close(F);
  free(F);
}

TestSuite(kvs_neutral, .init = setup, .fini = teardown, .timeout = 30);

/* A store of layout with keys k0..k19 (k5 put three times), one held put
 * and an applied mark. */
static void sample(struct kst *s, struct model *m, uint32_t layout) {
  char key[16];
  struct kst_held h = {.req = 77, .op = KVS_PUT, .ctl = 0x10003, .data = 0};
  uint64_t seq;
  fx_store(F, s, KST_SINGLE, layout, 1 << 20);
  for (int i = 0; i < 20; i++) {
    snprintf(key, sizeof key, "k%d", i);
    fx_put(s, m, key, (uint64_t)i, (uint64_t)(i * 37));
  }
  fx_put(s, m, "k5", 100, 10);
  fx_put(s, m, "k5", 101, 11);
  cr_assert_eq(kst_hold(s, &h, &seq), 0);
  cr_assert_eq(kst_hold(s, &h, &seq), 0);
  kst_set_applied(s, 1);
}

/* Exports s into a malloc()ed buffer (*len bytes). */
static void *export(const struct kst *s, uint32_t version, uint64_t *len) {
  struct kvn_image im;
  kvn_build(s, version, &im);
  *len = kvn_size(&im);
  void *buf = malloc(*len);
  kvn_write(&im, buf);
  kvn_free(&im);
  cr_assert(kvn_is_image(buf, *len));
  cr_assert_not(kst_is_image(buf, *len));
  return buf;
}

static void round_trip(uint32_t from, uint32_t to, bool counters_kept) {
  struct kst a, b;
  struct model m = {0};
  struct kst_held ha[KST_HELD_MAX], hb[KST_HELD_MAX];
  char why[160] = "";
  uint64_t len;
  sample(&a, &m, from);
  void *buf = export(&a, from, &len);
  fx_store(F, &b, KST_CHAIN, to, 4 << 20);
  cr_assert_eq(kvn_import(&b, buf, len, why, sizeof why), 0, "%s", why);
  if (!counters_kept)
    for (size_t i = 0; i < m.n; i++)
      m.e[i].counter = to >= 2 ? 1 : 0;
  cr_expect(model_eq(&m, &b, to >= 2), "v%u -> v%u", from, to);
  uint32_t n = kst_held_list(&a, ha);
  cr_assert_eq(kst_held_list(&b, hb), n);
  cr_expect_eq(memcmp(ha, hb, n * sizeof *ha), 0, "held requests");
  cr_expect_eq(kst_applied(&b), 1);
  free(buf);
  kst_close(&a);
  kst_close(&b);
  model_free(&m);
}

Test(kvs_neutral, v1_to_v1_round_trips) {
  round_trip(1, 1, false);
}

Test(kvs_neutral, v1_to_v2_starts_every_counter_at_1) {
  round_trip(1, 2, false);
}

/* A downgrade would drop the counters: v1 refuses by the version the form
 * records, says so in its own words, and loads nothing. */
Test(kvs_neutral, v2_to_v1_is_refused_by_the_state_s_version) {
  struct kst a, b;
  struct model m = {0};
  struct kst_held h[KST_HELD_MAX];
  char why[160] = "";
  uint64_t len;
  sample(&a, &m, 2);
  void *buf = export(&a, 2, &len);
  fx_store(F, &b, KST_CHAIN, 1, 4 << 20);
  cr_expect_eq(kvn_import(&b, buf, len, why, sizeof why), -EPROTONOSUPPORT);
  cr_expect_str_eq(why, "state version 2 is newer than this server's 1");
  cr_expect_eq(kst_count(&b), 0, "nothing loaded");
  cr_expect_eq(kst_held_list(&b, h), 0);
  cr_expect_eq(kst_applied(&b), 0);
  free(buf);
  kst_close(&a);
  kst_close(&b);
  model_free(&m);
}

Test(kvs_neutral, v2_to_v2_keeps_the_counters) {
  round_trip(2, 2, true);
}

Test(kvs_neutral, an_empty_store_round_trips) {
  struct kst a, b;
  char why[160];
  uint64_t len;
  fx_store(F, &a, KST_SINGLE, 1, 64 * 1024);
  void *buf = export(&a, 1, &len);
  fx_store(F, &b, KST_SINGLE, 2, 64 * 1024);
  cr_expect_eq(kvn_import(&b, buf, len, why, sizeof why), 0);
  cr_expect_eq(kst_count(&b), 0);
  free(buf);
  kst_close(&a);
  kst_close(&b);
}

Test(kvs_neutral, import_into_a_small_store_answers_enospc) {
  struct kst a, b;
  struct model m = {0};
  char why[160];
  uint64_t len;
  sample(&a, &m, 1);
  fx_put(&a, &m, "big", 1, 200000);
  void *buf = export(&a, 1, &len);
  fx_store(F, &b, KST_SINGLE, 1, 64 * 1024);
  cr_expect_eq(kvn_import(&b, buf, len, why, sizeof why), -ENOSPC);
  free(buf);
  kst_close(&a);
  kst_close(&b);
  model_free(&m);
}

/* Imports buf (len bytes) into a fresh store; expects -EPROTO. */
static void expect_refused(const void *buf, uint64_t len, const char *what) {
  struct kst b;
  char why[160] = "";
  fx_store(F, &b, KST_SINGLE, 1, 1 << 20);
  cr_expect_eq(kvn_import(&b, buf, len, why, sizeof why), -EPROTO, "%s", what);
  cr_expect_neq(why[0], '\0', "%s: no reason", what);
  kst_close(&b);
}

/* Packs a hand-made message. */
static void *pack(const Uksim__Kvs__State *msg, uint64_t *len) {
  size_t n = uksim__kvs__state__get_packed_size(msg);
  struct kvn_hdr h = {.magic = KVN_MAGIC, .format = KVN_FORMAT, .len = n};
  unsigned char *buf = malloc(sizeof h + n);
  uksim__kvs__state__pack(msg, buf + sizeof h);
  memcpy(buf, &h, sizeof h);
  *len = sizeof h + n;
  return buf;
}

Test(kvs_neutral, import_refuses_malformed_buffers) {
  struct kst a;
  struct model m = {0};
  uint64_t len;
  sample(&a, &m, 1);
  unsigned char *buf = export(&a, 1, &len);
  expect_refused(buf, 8, "too short for the header");
  expect_refused(buf, len - 5, "truncated message");
  buf[0] ^= 1;
  expect_refused(buf, len, "magic");
  buf[0] ^= 1;
  ((struct kvn_hdr *)buf)->format = 9;
  expect_refused(buf, len, "format");
  ((struct kvn_hdr *)buf)->format = KVN_FORMAT;
  ((struct kvn_hdr *)buf)->len = len;
  expect_refused(buf, len, "length beyond the buffer");
  free(buf);
  kst_close(&a);
  model_free(&m);
}

Test(kvs_neutral, import_refuses_bad_entries_and_held_requests) {
  Uksim__Kvs__State msg = UKSIM__KVS__STATE__INIT;
  Uksim__Kvs__Entry e = UKSIM__KVS__ENTRY__INIT, *ep = &e;
  Uksim__Kvs__Held h = UKSIM__KVS__HELD__INIT, *hp = &h;
  uint64_t len;
  msg.n_entries = 1;
  msg.entries = &ep;
  e.key = (ProtobufCBinaryData){.len = 3, .data = (uint8_t *)"a\0b"};
  void *buf = pack(&msg, &len);
  expect_refused(buf, len, "key with a NUL");
  free(buf);
  e.key = (ProtobufCBinaryData){.len = 0, .data = NULL};
  buf = pack(&msg, &len);
  expect_refused(buf, len, "empty key");
  free(buf);
  msg.n_entries = 0;
  msg.n_held = 1;
  msg.held = &hp;
  h.seq = 0;
  buf = pack(&msg, &len);
  expect_refused(buf, len, "held request numbered 0");
  free(buf);
  h.seq = 4;
  h.op = KVS_LIST;
  buf = pack(&msg, &len);
  expect_refused(buf, len, "held request not a put");
  free(buf);
}

Test(kvs_neutral, import_of_random_bytes_is_refused_or_harmless,
     .timeout = 60) {
  struct kst a;
  struct model m = {0};
  uint64_t len;
  char why[160];
  sample(&a, &m, 2);
  unsigned char *clean = export(&a, 2, &len);
  unsigned char *buf = malloc(len);
  srand(5);
  for (int i = 0; i < 500; i++) {
    memcpy(buf, clean, len);
    for (int j = 0; j < 1 + rand() % 6; j++)
      buf[sizeof(struct kvn_hdr) +
          (uint64_t)rand() % (len - sizeof(struct kvn_hdr))] =
          (unsigned char)rand();
    struct kst b;
    fx_store(F, &b, KST_SINGLE, 2, 1 << 20);
    int r = kvn_import(&b, buf, len, why, sizeof why);
    cr_assert(r == 0 || r == -EPROTO || r == -EPROTONOSUPPORT || r == -ENOSPC,
              "import: %d", r);
    kst_close(&b);
  }
  free(buf);
  free(clean);
  kst_close(&a);
  model_free(&m);
}

/* A number at or below the applied mark would pass for applied: a put
 * held after an import must be numbered past it. */
Test(kvs_neutral, holds_after_an_import_number_past_the_applied_mark) {
  struct kst a, b;
  struct kst_held h = {.req = 1, .op = KVS_PUT};
  char why[160];
  uint64_t len, seq;
  fx_store(F, &a, KST_SINGLE, 1, 64 * 1024);
  cr_assert_eq(kst_put(&a, "k", 1, "v", 1, 500, NULL), 0);
  kst_set_applied(&a, 500);
  void *buf = export(&a, 1, &len);
  fx_store(F, &b, KST_CHAIN, 2, 1 << 20);
  cr_assert_eq(kvn_import(&b, buf, len, why, sizeof why), 0, "%s", why);
  cr_assert_eq(kst_hold(&b, &h, &seq), 0);
  cr_expect_eq(seq, 501);
  cr_expect_not(kst_was_applied(&b, seq, "k", 1));
  free(buf);
  kst_close(&a);
  kst_close(&b);
}
