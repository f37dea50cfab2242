/* The version-neutral form of a kvs store (see kvs_neutral.h). */
#include "kvs_neutral.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uksim/kvs.h"

/* protobuf-c takes non-const buffers for packing, which only reads them. */
static ProtobufCBinaryData bytes(const void *p, size_t len) {
  return (ProtobufCBinaryData){.len = len, .data = (uint8_t *)(uintptr_t)p};
}

static void build_entries(const struct kst *s, struct kvn_image *im) {
  size_t n = kst_count(s), i = 0;
  struct kst_entry e;
  uint64_t cursor = 0;
  im->ent = xmalloc(n * sizeof *im->ent);
  im->entp = xmalloc(n * sizeof *im->entp);
  while (kst_next(s, &cursor, &e)) {
    Uksim__Kvs__Entry *pe = &im->ent[i];
    uksim__kvs__entry__init(pe);
    pe->key = bytes(e.key, e.keylen);
    pe->value = bytes(e.val, e.vallen);
    pe->counter = e.counter;
    pe->seq = e.seq;
    im->entp[i++] = pe;
  }
  im->msg.n_entries = i;
  im->msg.entries = im->entp;
}

static void build_held(const struct kst *s, struct kvn_image *im) {
  struct kst_held h[KST_HELD_MAX];
  uint32_t n = kst_held_list(s, h);
  im->held = xmalloc(n * sizeof *im->held);
  im->heldp = xmalloc(n * sizeof *im->heldp);
  for (uint32_t i = 0; i < n; i++) {
    Uksim__Kvs__Held *ph = &im->held[i];
    uksim__kvs__held__init(ph);
    ph->seq = h[i].seq;
    ph->req = h[i].req;
    ph->op = h[i].op;
    ph->ctl = h[i].ctl;
    ph->data = h[i].data;
    im->heldp[i] = ph;
  }
  im->msg.n_held = n;
  im->msg.held = im->heldp;
}

void kvn_build(const struct kst *s, uint32_t from_version,
               struct kvn_image *im) {
  memset(im, 0, sizeof *im);
  uksim__kvs__state__init(&im->msg);
  im->msg.from_version = from_version;
  im->msg.applied = kst_applied(s);
  build_entries(s, im);
  build_held(s, im);
}

uint64_t kvn_size(const struct kvn_image *im) {
  return sizeof(struct kvn_hdr) + uksim__kvs__state__get_packed_size(&im->msg);
}

void kvn_write(const struct kvn_image *im, void *buf) {
  struct kvn_hdr h = {.magic = KVN_MAGIC, .format = KVN_FORMAT};
  h.len = uksim__kvs__state__pack(&im->msg, (uint8_t *)buf + sizeof h);
  memcpy(buf, &h, sizeof h);
}

void kvn_free(struct kvn_image *im) {
  free(im->ent);
  free(im->entp);
  free(im->held);
  free(im->heldp);
  memset(im, 0, sizeof *im);
}

bool kvn_is_image(const void *buf, uint64_t len) {
  uint64_t magic;
  if (buf == NULL || len < sizeof(struct kvn_hdr))
    return false;
  memcpy(&magic, buf, sizeof magic);
  return magic == KVN_MAGIC;
}

#define REFUSE(why, whylen, ...) (snprintf(why, whylen, __VA_ARGS__), -EPROTO)

static int load_entry(struct kst *dst, const Uksim__Kvs__Entry *pe, char *why,
                      size_t whylen) {
  struct kst_entry e = {.key = (const char *)pe->key.data,
                        .keylen = (uint32_t)pe->key.len,
                        .val = pe->value.data,
                        .vallen = pe->value.len,
                        .counter = pe->counter,
                        .seq = pe->seq};
  if (pe->key.len == 0 || pe->key.len >= KVS_KEY_MAX ||
      pe->value.len > KVS_VALUE_MAX)
    return REFUSE(why, whylen, "neutral state: an entry's lengths");
  int r = kst_load(dst, &e);
  if (r == -EINVAL)
    return REFUSE(why, whylen, "neutral state: a bad key");
  if (r < 0)
    snprintf(why, whylen, "neutral state: storing an entry: %s", strerror(-r));
  return r;
}

static int load_held(struct kst *dst, const Uksim__Kvs__Held *ph, char *why,
                     size_t whylen) {
  struct kst_held h = {.seq = ph->seq,
                       .req = ph->req,
                       .op = ph->op,
                       .ctl = ph->ctl,
                       .data = ph->data};
  if (h.op != KVS_PUT || h.seq == 0 || h.seq == UINT64_MAX ||
      kst_hold_load(dst, &h) < 0)
    return REFUSE(why, whylen, "neutral state: a bad held request");
  return 0;
}

static int load_state(struct kst *dst, const Uksim__Kvs__State *m, char *why,
                      size_t whylen) {
  int r = 0;
  for (size_t i = 0; i < m->n_entries && r == 0; i++)
    r = load_entry(dst, m->entries[i], why, whylen);
  if (r == 0 && m->n_held > KST_HELD_MAX)
    r = REFUSE(why, whylen, "neutral state: %zu held requests", m->n_held);
  for (size_t i = 0; i < m->n_held && r == 0; i++)
    r = load_held(dst, m->held[i], why, whylen);
  if (r == 0 && m->applied == UINT64_MAX)
    r = REFUSE(why, whylen, "neutral state: applied mark");
  if (r == 0 && m->applied != 0)
    kst_set_applied(dst, m->applied);
  return r;
}

int kvn_import(struct kst *dst, const void *buf, uint64_t len, char *why,
               size_t whylen) {
  struct kvn_hdr h;
  if (!kvn_is_image(buf, len))
    return REFUSE(why, whylen, "neutral state: magic");
  memcpy(&h, buf, sizeof h);
  if (h.format != KVN_FORMAT)
    return REFUSE(why, whylen, "neutral state: format %u", h.format);
  if (h.len > len - sizeof h)
    return REFUSE(why, whylen, "neutral state: length");
  Uksim__Kvs__State *m =
      uksim__kvs__state__unpack(NULL, h.len, (const uint8_t *)buf + sizeof h);
  if (m == NULL)
    return REFUSE(why, whylen, "neutral state: does not decode");
  int r = kst_check_version(m->from_version, kst_layout(dst), why, whylen);
  if (r == 0)
    r = load_state(dst, m, why, whylen);
  uksim__kvs__state__free_unpacked(m, NULL);
  return r;
}
