/* The kvs store in segments that outlive the process (see kvs_state.h).
 *
 * Write order, which is what crash consistency rests on: a change first
 * takes free space (nothing reachable points there), fills it, and then
 * publishes it with one release store of an aligned 8-byte word; only then
 * is the space it replaced given back, in memory.  A segment is published
 * in the master before anything in it is, and unpublished before it is
 * released.  Everything a restore reads is checked before it is used; after
 * a lazy restore a record is checked each time it is read (rec_get), which
 * costs a hash of its key, so that restoring costs the index, not the
 * records.
 */
#include "kvs_state.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uksim/ica.h"
#include "uksim/kvs.h"

#define SLOT_EMPTY 0ull
#define SLOT_TOMB 1ull
#define TABLE_LG_MIN 4
#define TABLE_LG_MAX 27 /* 1 GiB of slots: an ICA's limit */
#define SEG_SIZE_DEFAULT (1ull << 20)

#define ADDR(seg, off) ((uint64_t)(seg) << 32 | (uint64_t)(off))
#define ADDR_SEG(a) ((uint32_t)((a) >> 32))
#define ADDR_OFF(a) ((uint32_t)(a))

static uint64_t round_up(uint64_t n, uint64_t to) {
  return (n + to - 1) / to * to;
}

/* FNV-1a: short keys, no adversary worth a keyed hash in a laboratory. */
static uint64_t hash_key(const char *key, size_t keylen) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < keylen; i++)
    h = (h ^ (unsigned char)key[i]) * 0x100000001b3ull;
  return h;
}

static bool key_ok(const char *key, uint32_t keylen) {
  return keylen > 0 && keylen < KVS_KEY_MAX &&
         memchr(key, '\0', keylen) == NULL;
}

/* Where things are ------------------------------------------------------ */

static uint64_t hdr_bytes(uint32_t segmax) {
  return round_up(sizeof(struct kst_hdr) + segmax * sizeof(uint64_t) +
                      KST_HELD_MAX * sizeof(struct kst_held),
                  16);
}

static uint64_t *seg_table(const struct kst *s) {
  return (uint64_t *)(s->hdr + 1);
}

static struct kst_held *held_table(const struct kst *s) {
  return (struct kst_held *)(seg_table(s) + s->hdr->segmax);
}

/* addr's segment must be mapped (seg_ready). */
static void *ptr(const struct kst *s, uint64_t addr) {
  assert(s->seg[ADDR_SEG(addr)].base != NULL);
  return (char *)s->seg[ADDR_SEG(addr)].base + ADDR_OFF(addr);
}

static uint64_t *slots(const struct kst *s) {
  return ptr(s, KST_TABLE_ADDR(s->hdr->table));
}

static uint64_t nslots(const struct kst *s) {
  return 1ull << KST_TABLE_LG(s->hdr->table);
}

static uint64_t rec_hdr(uint32_t layout) {
  return sizeof(struct kst_rec) + (layout >= 2 ? sizeof(uint64_t) : 0);
}

static uint64_t rec_valoff(uint32_t layout, uint32_t keylen) {
  return round_up(rec_hdr(layout) + keylen, 8);
}

static uint64_t rec_need(uint32_t layout, uint32_t keylen, uint64_t vallen) {
  return round_up(rec_valoff(layout, keylen) + vallen, 16);
}

static struct kst_rec *rec_at(const struct kst *s, uint64_t addr) {
  return ptr(s, addr);
}

/* Layout 2 keeps the counter right after struct kst_rec. */
static uint64_t *rec_counter(struct kst_rec *r) {
  return (uint64_t *)(r + 1);
}

/* Why the record slot w names is malformed, or NULL.  Reads only inside
 * the slot's [addr, addr + cap), which the restore checked lies in the
 * segment and holds a record header. */
static const char *rec_bad(const struct kst *s, uint64_t w) {
  const struct kst_rec *r = rec_at(s, KST_SLOT_ADDR(w));
  const char *key = (const char *)r + rec_hdr(s->layout);
  uint64_t cap = KST_SLOT_CAP(w);
  if (r->cap != cap || r->keylen == 0 || r->keylen >= KVS_KEY_MAX ||
      r->vallen > KVS_VALUE_MAX ||
      rec_need(s->layout, r->keylen, r->vallen) > cap)
    return "bad lengths";
  if (!key_ok(key, r->keylen) || hash_key(key, r->keylen) != r->hash)
    return "bad key";
  return NULL;
}

static void tell_corrupt(const struct kst *s, const char *why) {
  if (s->ops->corrupt != NULL)
    s->ops->corrupt(s->ops->arg, why);
}

static int attach_one(struct kst *s, uint32_t i, char *why, size_t whylen);

/* Maps segment i if a lazy restore left it unmapped.  False (corrupt told)
 * if it cannot be.  Mapping changes nothing the store holds, hence the
 * const. */
static bool seg_ready(const struct kst *s, uint32_t i) {
  char why[160];
  if (s->seg[i].base != NULL)
    return true;
  if (attach_one((struct kst *)s, i, why, sizeof why) == 0)
    return true;
  tell_corrupt(s, why);
  return false;
}

/* The record slot w names, checked if a lazy restore left it unchecked;
 * NULL (corrupt told) if it is bad. */
static struct kst_rec *rec_get(const struct kst *s, uint64_t w) {
  char why[160];
  if (!seg_ready(s, ADDR_SEG(KST_SLOT_ADDR(w))))
    return NULL;
  const char *bad = s->lazy ? rec_bad(s, w) : NULL;
  if (bad == NULL)
    return rec_at(s, KST_SLOT_ADDR(w));
  snprintf(why, sizeof why, "state ICA: record %#llx: %s",
           (unsigned long long)KST_SLOT_ADDR(w), bad);
  tell_corrupt(s, why);
  return NULL;
}

static void rec_entry(const struct kst *s, struct kst_rec *r,
                      struct kst_entry *e) {
  e->key = (const char *)r + rec_hdr(s->layout);
  e->keylen = r->keylen;
  e->val = (const char *)r + rec_valoff(s->layout, r->keylen);
  e->vallen = r->vallen;
  e->counter = s->layout >= 2 ? *rec_counter(r) : 0;
  e->seq = r->seq;
}

/* Persistent writes ------------------------------------------------------ */

static void step(struct kst *s) {
  if (s->step != NULL)
    s->step(s->step_arg);
}

/* The one way a change becomes visible: a release store (so the bytes it
 * publishes are written first, whatever the compiler would reorder) of an
 * aligned word, which a crash cannot tear. */
static void publish(struct kst *s, uint64_t *word, uint64_t v) {
  assert(((uintptr_t)word & 7) == 0);
  __atomic_store_n(word, v, __ATOMIC_RELEASE);
  step(s);
}

/* Numbers at or below what a store already holds would pass for applied
 * (kst_was_applied): new holds number past them, also after an import. */
static void seq_seen(struct kst *s, uint64_t seq) {
  if (seq >= s->next_seq)
    s->next_seq = seq + 1;
}

/* Space ------------------------------------------------------------------ */

static int free_seg_index(const struct kst *s, uint32_t *i) {
  for (uint32_t j = 1; j < s->nseg; j++) {
    if (s->seg[j].size == 0) {
      *i = j;
      return 0;
    }
  }
  return -ENOSPC;
}

/* Adds a segment with room for need bytes: a shared one of seg_size for
 * small records, one of its own for anything a quarter of that or more. */
static int add_seg(struct kst *s, uint64_t need) {
  uint64_t size =
      need >= s->seg_size / 4 ? round_up(need, KST_PAGE) : s->seg_size;
  uint32_t i;
  if (s->method == KST_SINGLE || size > UK_ICA_SIZE_MAX ||
      s->seg_bytes + size > s->limit || free_seg_index(s, &i) < 0)
    return -ENOSPC;
  struct kst_seg g;
  int r = s->ops->create(s->ops->arg, size, &g);
  if (r < 0)
    return r;
  g.size = size;
  s->seg[i] = g;
  s->seg_bytes += size;
  step(s);
  publish(s, &seg_table(s)[i], KST_SEGW(g.id, size));
  ksp_give(&s->space, ADDR(i, 0), size, NULL);
  return 0;
}

/* Takes len bytes of free space in a mapped segment, adding a segment if
 * none has room. */
static int alloc(struct kst *s, uint64_t len, uint64_t *addr, uint64_t *got) {
  int r = 0;
  if (ksp_take(&s->space, len, addr, got) < 0) {
    r = add_seg(s, len);
    if (r == 0)
      r = ksp_take(&s->space, len, addr, got);
  }
  if (r == 0 && !seg_ready(s, ADDR_SEG(*addr)))
    r = -EIO; /* the space stays taken: its segment is unusable */
  return r;
}

/* Unpublishes segment i (its space already dropped) and releases it.  A
 * crash in between leaks the ICA, never a live record. */
static void drop_seg(struct kst *s, uint32_t i) {
  publish(s, &seg_table(s)[i], 0);
  s->seg_bytes -= s->seg[i].size;
  s->ops->release(s->ops->arg, &s->seg[i]);
  memset(&s->seg[i], 0, sizeof s->seg[i]);
}

/* Gives space back; a segment other than 0 that is then empty goes back
 * to its provider at once, so a large value's own ICA lives as long as the
 * value. */
static void free_space(struct kst *s, uint64_t addr, uint64_t len) {
  struct ksp_ext m;
  ksp_give(&s->space, addr, len, &m);
  uint32_t i = ADDR_SEG(m.addr);
  if (i != 0 && ADDR_OFF(m.addr) == 0 && m.len == s->seg[i].size &&
      ksp_drop(&s->space, m.addr, m.len))
    drop_seg(s, i);
}

void kst_trim(struct kst *s) {
  for (uint32_t i = 1; i < s->nseg; i++)
    if (s->seg[i].size != 0 && ksp_drop(&s->space, ADDR(i, 0), s->seg[i].size))
      drop_seg(s, i);
}

/* The index -------------------------------------------------------------- */

struct probe {
  int64_t found;  /* slot of the key, or -1 */
  int64_t insert; /* first slot a new key may take, or -1 */
};

/* The header decides most slots; only a likely match is checked whole
 * (rec_get) before its key is compared. */
static bool rec_matches(const struct kst *s, uint64_t w, const char *key,
                        uint32_t keylen, uint64_t hash) {
  if (!seg_ready(s, ADDR_SEG(KST_SLOT_ADDR(w))))
    return false;
  struct kst_rec *r = rec_at(s, KST_SLOT_ADDR(w));
  return r->hash == hash && r->keylen == keylen && rec_get(s, w) != NULL &&
         memcmp((const char *)r + rec_hdr(s->layout), key, keylen) == 0;
}

/* Linear probing, bounded by the table size so that even a table with no
 * empty slot ends. */
static void probe(const struct kst *s, const char *key, uint32_t keylen,
                  uint64_t hash, struct probe *p) {
  uint64_t n = nslots(s), mask = n - 1, *t = slots(s);
  p->found = p->insert = -1;
  for (uint64_t k = 0, i = hash & mask; k < n; k++, i = (i + 1) & mask) {
    if (t[i] == SLOT_EMPTY || t[i] == SLOT_TOMB) {
      if (p->insert < 0)
        p->insert = (int64_t)i;
      if (t[i] == SLOT_EMPTY)
        return;
    } else if (rec_matches(s, t[i], key, keylen, hash)) {
      p->found = (int64_t)i;
      return;
    }
  }
}

static void place(uint64_t *t, uint64_t n, uint64_t w, uint64_t hash) {
  uint64_t i = hash & (n - 1);
  while (t[i] != SLOT_EMPTY)
    i = (i + 1) & (n - 1);
  t[i] = w;
}

/* Builds a table of 2^lg slots in free space, then publishes it with the
 * index word: the records do not move, so both tables are whole. */
static int rehash(struct kst *s, uint32_t lg) {
  uint64_t n = 1ull << lg, addr, got;
  if (lg > TABLE_LG_MAX)
    return -ENOSPC;
  int r = alloc(s, n * sizeof(uint64_t), &addr, &got);
  if (r < 0)
    return r;
  uint64_t *t = ptr(s, addr), *old = slots(s), on = nslots(s);
  memset(t, 0, n * sizeof *t);
  for (uint64_t i = 0; i < on; i++) {
    struct kst_rec *rec = old[i] > SLOT_TOMB ? rec_get(s, old[i]) : NULL;
    if (rec == NULL && old[i] > SLOT_TOMB) {
      free_space(s, addr, got);
      return -EIO;
    }
    if (rec != NULL)
      place(t, n, old[i], rec->hash);
  }
  step(s);
  uint64_t old_addr = KST_TABLE_ADDR(s->hdr->table), old_cap = s->table_cap;
  publish(s, &s->hdr->table, KST_TABLE(addr, lg));
  s->table_cap = got;
  s->ntomb = 0;
  free_space(s, old_addr, old_cap);
  return 0;
}

/* Before adding a key: keeps the table at most 3/4 used (tombstones
 * count), doubling it when live keys pass half. */
static int make_room(struct kst *s) {
  uint64_t n = nslots(s);
  if ((s->count + s->ntomb + 1) * 4 <= n * 3)
    return 0;
  uint32_t lg = KST_TABLE_LG(s->hdr->table);
  return rehash(s, (s->count + 1) * 2 > n ? lg + 1 : lg);
}

/* Records ---------------------------------------------------------------- */

/* Writes a record for e into free space; *w gets its slot word. */
static int write_rec(struct kst *s, const struct kst_entry *e, uint64_t hash,
                     uint64_t counter, uint64_t *w) {
  uint64_t got, addr;
  int r = alloc(s, rec_need(s->layout, e->keylen, e->vallen), &addr, &got);
  if (r < 0)
    return r;
  *w = KST_SLOT(addr, got);
  struct kst_rec *rec = rec_at(s, addr);
  *rec = (struct kst_rec){.cap = got,
                          .hash = hash,
                          .vallen = e->vallen,
                          .seq = e->seq,
                          .keylen = e->keylen};
  if (s->layout >= 2)
    *rec_counter(rec) = counter;
  memcpy((char *)rec + rec_hdr(s->layout), e->key, e->keylen);
  if (e->vallen > 0)
    memcpy((char *)rec + rec_valoff(s->layout, e->keylen), e->val, e->vallen);
  step(s);
  return 0;
}

/* The slot's capacity, not the record's: a slot the restore checked is
 * what the free space was rebuilt from. */
static void free_rec(struct kst *s, uint64_t w) {
  free_space(s, KST_SLOT_ADDR(w), KST_SLOT_CAP(w));
}

/* Puts e; bump: the counter is the old one plus one (a put), else e's own
 * (an import).  *counter gets the one stored. */
static int store(struct kst *s, const struct kst_entry *e, bool bump,
                 uint64_t *counter) {
  if (!key_ok(e->key, e->keylen))
    return -EINVAL;
  if (e->vallen > KVS_VALUE_MAX)
    return -EFBIG;
  uint64_t hash = hash_key(e->key, e->keylen), w;
  struct probe p;
  probe(s, e->key, e->keylen, hash, &p);
  if (p.found < 0) {
    int r = make_room(s);
    if (r < 0)
      return r;
    probe(s, e->key, e->keylen, hash, &p); /* the table may have moved */
  }
  uint64_t *t = slots(s), c = 0;
  if (s->layout >= 2 && bump) /* a found record was checked by probe() */
    c = p.found < 0 ? 1
                    : *rec_counter(rec_at(s, KST_SLOT_ADDR(t[p.found]))) + 1;
  else if (s->layout >= 2)
    c = e->counter ? e->counter : 1;
  int r = write_rec(s, e, hash, c, &w);
  if (r < 0)
    return r;
  t = slots(s);
  if (p.found >= 0) {
    uint64_t old = t[p.found];
    publish(s, &t[p.found], w);
    free_rec(s, old);
  } else {
    assert(p.insert >= 0);
    s->ntomb -= t[p.insert] == SLOT_TOMB;
    publish(s, &t[p.insert], w);
    s->count++;
    if (s->keybytes != KST_UNKNOWN)
      s->keybytes += e->keylen + 1;
  }
  if (counter != NULL)
    *counter = c;
  seq_seen(s, e->seq);
  return 0;
}

int kst_put(struct kst *s, const char *key, uint32_t keylen, const void *val,
            uint64_t vallen, uint64_t seq, uint64_t *counter) {
  struct kst_entry e = {
      .key = key, .keylen = keylen, .val = val, .vallen = vallen, .seq = seq};
  return store(s, &e, true, counter);
}

int kst_load(struct kst *s, const struct kst_entry *e) {
  return store(s, e, false, NULL);
}

/* The slot of key, or -1. */
static int64_t find(const struct kst *s, const char *key, uint32_t keylen) {
  struct probe p;
  if (!key_ok(key, keylen))
    return -1;
  probe(s, key, keylen, hash_key(key, keylen), &p);
  return p.found;
}

int kst_get(const struct kst *s, const char *key, uint32_t keylen,
            struct kst_entry *e) {
  int64_t i = find(s, key, keylen);
  if (i < 0)
    return -ENOENT;
  rec_entry(s, rec_at(s, KST_SLOT_ADDR(slots(s)[i])), e);
  return 0;
}

/* Slot i just became empty: tombstones right before it end no probe chain
 * either now.  Each becomes empty on its own; any prefix of that is a
 * consistent table. */
static void clear_tombs_before(struct kst *s, uint64_t i) {
  uint64_t *t = slots(s), mask = nslots(s) - 1;
  for (uint64_t j = (i - 1) & mask; j != i && t[j] == SLOT_TOMB;
       j = (j - 1) & mask) {
    publish(s, &t[j], SLOT_EMPTY);
    s->ntomb--;
  }
}

int kst_del(struct kst *s, const char *key, uint32_t keylen) {
  int64_t found = find(s, key, keylen);
  if (found < 0)
    return -ENOENT;
  uint64_t *t = slots(s), n = nslots(s), i = (uint64_t)found;
  uint64_t old = t[i];
  /* A slot followed by an empty one ends no probe chain: it may become
   * empty too, instead of a tombstone. */
  bool empty = t[(i + 1) & (n - 1)] == SLOT_EMPTY;
  publish(s, &t[i], empty ? SLOT_EMPTY : SLOT_TOMB);
  s->ntomb += !empty;
  s->count--;
  if (s->keybytes != KST_UNKNOWN)
    s->keybytes -= rec_at(s, KST_SLOT_ADDR(old))->keylen + 1;
  free_rec(s, old);
  if (empty)
    clear_tombs_before(s, i);
  return 0;
}

uint64_t kst_count(const struct kst *s) {
  return s->count;
}

bool kst_next(const struct kst *s, uint64_t *cursor, struct kst_entry *e) {
  uint64_t *t = slots(s), n = nslots(s);
  while (*cursor < n) {
    uint64_t w = t[(*cursor)++];
    struct kst_rec *r = w > SLOT_TOMB ? rec_get(s, w) : NULL;
    if (r != NULL) {
      rec_entry(s, r, e);
      return true;
    }
  }
  return false;
}

/* A lazy restore leaves the sum to the first caller: it is the one figure
 * of a store that needs every record. */
uint64_t kst_keybytes(const struct kst *s) {
  if (s->keybytes == KST_UNKNOWN) {
    struct kst_entry e;
    uint64_t cursor = 0, n = 0;
    while (kst_next(s, &cursor, &e))
      n += e.keylen + 1;
    ((struct kst *)s)->keybytes = n; /* a cache: the store is unchanged */
  }
  return s->keybytes;
}

void kst_list(const struct kst *s, char *buf) {
  struct kst_entry e;
  uint64_t cursor = 0, off = 0;
  while (kst_next(s, &cursor, &e)) {
    memcpy(buf + off, e.key, e.keylen);
    buf[off + e.keylen] = '\0';
    off += e.keylen + 1;
  }
  assert(off == kst_keybytes(s));
}

/* Held requests ---------------------------------------------------------- */

static struct kst_held *held_slot(const struct kst *s, uint64_t seq) {
  struct kst_held *h = held_table(s);
  for (uint32_t i = 0; i < s->hdr->heldmax; i++)
    if (h[i].seq == seq)
      return &h[i];
  return NULL;
}

/* The fields first, then seq, which makes the slot count. */
static int hold_as(struct kst *s, const struct kst_held *h, uint64_t seq) {
  struct kst_held *slot = held_slot(s, 0);
  if (slot == NULL)
    return -ENOSPC;
  slot->req = h->req;
  slot->op = h->op;
  slot->ctl = h->ctl;
  slot->data = h->data;
  step(s);
  publish(s, &slot->seq, seq);
  seq_seen(s, seq);
  return 0;
}

int kst_hold(struct kst *s, const struct kst_held *h, uint64_t *seq) {
  *seq = s->next_seq;
  return hold_as(s, h, *seq);
}

int kst_hold_load(struct kst *s, const struct kst_held *h) {
  return h->seq == 0 || held_slot(s, h->seq) != NULL ? -EINVAL
                                                     : hold_as(s, h, h->seq);
}

void kst_unhold(struct kst *s, uint64_t seq) {
  struct kst_held *slot = seq ? held_slot(s, seq) : NULL;
  if (slot != NULL)
    publish(s, &slot->seq, 0);
}

static int by_seq(const void *a, const void *b) {
  const struct kst_held *x = a, *y = b;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

uint32_t kst_held_list(const struct kst *s, struct kst_held *out) {
  const struct kst_held *h = held_table(s);
  uint32_t n = 0;
  for (uint32_t i = 0; i < s->hdr->heldmax; i++)
    if (h[i].seq != 0)
      out[n++] = h[i];
  qsort(out, n, sizeof *out, by_seq);
  return n;
}

void kst_set_applied(struct kst *s, uint64_t seq) {
  publish(s, &s->hdr->applied, seq);
  seq_seen(s, seq);
}

uint64_t kst_applied(const struct kst *s) {
  return s->hdr->applied;
}

/* A crash may fall between the put's publish and kst_set_applied: then the
 * key's record carries seq.  A later put of the key is applied only after
 * `applied` has moved past seq, so the two tests together are exact. */
bool kst_was_applied(const struct kst *s, uint64_t seq, const char *key,
                     uint32_t keylen) {
  struct kst_entry e;
  if (seq <= s->hdr->applied)
    return true;
  return kst_get(s, key, keylen, &e) == 0 && e.seq == seq;
}

/* A fresh store ---------------------------------------------------------- */

static int check_config(const struct kst_config *c) {
  if (c->layout < KST_LAYOUT_MIN || c->layout > KST_LAYOUT_MAX)
    return -EINVAL;
  if (c->method < KST_SINGLE || c->method > KST_HEAP)
    return -EINVAL;
  if (c->limit < KST_SIZE_MIN || c->limit % KST_PAGE != 0)
    return -EINVAL;
  if (c->method == KST_SINGLE && c->limit > UK_ICA_SIZE_MAX)
    return -EINVAL;
  return 0;
}

static void fill_hdr(struct kst *s, uint64_t size0, uint32_t segmax) {
  struct kst_hdr *h = s->hdr;
  h->layout = s->layout;
  h->method = s->method;
  h->size = size0;
  h->segmax = segmax;
  h->heldmax = KST_HELD_MAX;
  h->seg_size = s->seg_size;
}

int kst_init(struct kst *s, const struct kst_config *c,
             const struct kst_segops *ops) {
  int r = check_config(c);
  if (r < 0)
    return r;
  memset(s, 0, sizeof *s);
  s->ops = ops;
  s->layout = c->layout;
  s->method = c->method;
  s->limit = c->limit;
  s->seg_size =
      c->seg_size ? round_up(c->seg_size, KST_PAGE) : SEG_SIZE_DEFAULT;
  s->next_seq = 1;
  uint32_t segmax = c->method == KST_SINGLE ? 0 : KST_SEG_MAX;
  uint64_t hb = hdr_bytes(segmax);
  uint64_t size0 = segmax == 0 ? c->limit : round_up(hb, KST_PAGE);
  s->nseg = segmax ? segmax : 1; /* seg[0] names segment 0 itself */
  s->seg = xmalloc(s->nseg * sizeof *s->seg);
  memset(s->seg, 0, s->nseg * sizeof *s->seg);
  ksp_init(&s->space);
  r = ops->create(ops->arg, size0, &s->seg[0]);
  if (r < 0) {
    kst_forget(s);
    return r;
  }
  s->seg[0].size = size0;
  s->seg_bytes = size0;
  s->hdr = s->seg[0].base;
  fill_hdr(s, size0, segmax);
  if (size0 > hb)
    ksp_give(&s->space, ADDR(0, hb), size0 - hb, NULL);
  uint64_t addr, n = 1ull << TABLE_LG_MIN;
  r = alloc(s, n * sizeof(uint64_t), &addr, &s->table_cap);
  if (r < 0) {
    kst_close(s);
    return r;
  }
  memset(ptr(s, addr), 0, n * sizeof(uint64_t));
  s->hdr->table = KST_TABLE(addr, TABLE_LG_MIN);
  publish(s, &s->hdr->magic, KST_MAGIC);
  return 0;
}

void kst_forget(struct kst *s) {
  ksp_close(&s->space);
  free(s->seg);
  memset(s, 0, sizeof *s);
}

void kst_close(struct kst *s) {
  for (uint32_t i = s->nseg; i-- > 0;)
    if (s->seg[i].size != 0)
      s->ops->release(s->ops->arg, &s->seg[i]);
  kst_forget(s);
}

bool kst_is_image(const void *buf, uint64_t len) {
  uint64_t magic;
  if (buf == NULL || len < sizeof(struct kst_hdr))
    return false;
  memcpy(&magic, buf, sizeof magic);
  return magic == KST_MAGIC;
}

/* Restoring -------------------------------------------------------------- */

int kst_check_version(uint32_t state, uint32_t own, char *why, size_t whylen) {
  if (state <= own)
    return 0;
  snprintf(why, whylen, "state version %u is newer than this server's %u",
           state, own);
  return -EPROTONOSUPPORT;
}

/* What a restore collects while it checks: the extents in use. */
struct scan {
  struct ksp_ext *used;
  size_t n, cap;
  char *why;
  size_t whylen;
};

#define REFUSE(sc, ...)                                                        \
  (snprintf((sc)->why, (sc)->whylen, __VA_ARGS__), -EPROTO)

static void add_used(struct scan *sc, uint64_t addr, uint64_t len) {
  if (sc->n == sc->cap) {
    sc->cap = sc->cap ? 2 * sc->cap : 64;
    sc->used = xrealloc(sc->used, sc->cap * sizeof *sc->used);
  }
  sc->used[sc->n++] = (struct ksp_ext){addr, len};
}

/* Whether [addr, addr+len) lies inside one listed segment (mapped or
 * not). */
static bool in_seg(const struct kst *s, uint64_t addr, uint64_t len) {
  uint32_t i = ADDR_SEG(addr);
  if (i >= s->nseg || s->seg[i].size == 0)
    return false;
  uint64_t off = ADDR_OFF(addr), size = s->seg[i].size;
  return off <= size && len <= size - off;
}

static int check_hdr(const struct kst_seg *seg0, uint32_t layout,
                     struct scan *sc) {
  const struct kst_hdr *h = seg0->base;
  if (!kst_is_image(seg0->base, seg0->size))
    return REFUSE(sc, "state ICA: not a kvs store (magic)");
  if (h->layout != layout) {
    /* An older image, too, is refused: only the neutral form converts. */
    if (kst_check_version(h->layout, layout, sc->why, sc->whylen) == 0)
      snprintf(sc->why, sc->whylen, "state version %u not supported",
               h->layout);
    return -EPROTONOSUPPORT;
  }
  if (h->method != KST_SINGLE && h->method != KST_CHAIN)
    return REFUSE(sc, "state ICA: method %u cannot be inherited", h->method);
  uint32_t segmax = h->method == KST_SINGLE ? 0 : KST_SEG_MAX;
  if (h->segmax != segmax || h->heldmax != KST_HELD_MAX)
    return REFUSE(sc, "state ICA: table sizes %u/%u", h->segmax, h->heldmax);
  if (h->size > seg0->size || h->size < hdr_bytes(segmax) ||
      h->size > UK_ICA_SIZE_MAX)
    return REFUSE(sc, "state ICA: size %llu of %llu",
                  (unsigned long long)h->size, (unsigned long long)seg0->size);
  if (segmax > 0 && ((const uint64_t *)(h + 1))[0] != 0)
    return REFUSE(sc, "state ICA: segment 0 listed");
  return 0;
}

static int by_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

/* Refuses a segment table naming one ICA twice (two mappings of the same
 * bytes would let one record overwrite another). */
static int check_unique(const struct kst *s, struct scan *sc) {
  uint32_t ids[KST_SEG_MAX], n = 0;
  const uint64_t *w = seg_table(s);
  for (uint32_t i = 1; i < s->nseg; i++)
    if (w[i] != 0)
      ids[n++] = (uint32_t)w[i];
  qsort(ids, n, sizeof *ids, by_u32);
  for (uint32_t i = 1; i < n; i++)
    if (ids[i] == ids[i - 1])
      return REFUSE(sc, "state ICA: ICA %#x listed twice", ids[i]);
  return 0;
}

/* Takes segment i's id and size from the segment table, unmapped. */
static int list_one(struct kst *s, uint32_t i, struct scan *sc) {
  uint64_t w = seg_table(s)[i], size = (w >> 32) * KST_PAGE;
  uint32_t id = (uint32_t)w;
  if (size == 0 || size > UK_ICA_SIZE_MAX || id == 0)
    return REFUSE(sc, "segment %u: bad entry %#llx", i, (unsigned long long)w);
  s->seg[i] = (struct kst_seg){.base = NULL, .size = size, .id = id};
  s->seg_bytes += size;
  return 0;
}

/* Maps listed segment i.  An ICA smaller than listed is refused and stays
 * unmapped here (its mapping is forgotten, not released: it is not ours to
 * free). */
static int attach_one(struct kst *s, uint32_t i, char *why, size_t whylen) {
  struct kst_seg g;
  int r = s->ops->attach(s->ops->arg, s->seg[i].id, &g);
  if (r < 0) {
    snprintf(why, whylen, "segment %u: ICA %#x: %s", i, s->seg[i].id,
             strerror(-r));
    return r;
  }
  if (g.size < s->seg[i].size) {
    snprintf(why, whylen, "segment %u: ICA %#x has %llu bytes, expected %llu",
             i, s->seg[i].id, (unsigned long long)g.size,
             (unsigned long long)s->seg[i].size);
    return -EPROTO;
  }
  s->seg[i].base = g.base;
  return 0;
}

/* Lists every segment; a deep restore maps them all, a lazy one only the
 * index's. */
static int attach_segs(struct kst *s, struct scan *sc) {
  int r = check_unique(s, sc);
  for (uint32_t i = 1; i < s->nseg && r == 0; i++)
    if (seg_table(s)[i] != 0)
      r = list_one(s, i, sc);
  for (uint32_t i = 1; i < s->nseg && r == 0; i++)
    if (s->seg[i].size != 0 &&
        (!s->lazy || i == ADDR_SEG(KST_TABLE_ADDR(s->hdr->table))))
      r = attach_one(s, i, sc->why, sc->whylen);
  return r;
}

/* A slot: its record lies in a segment and has room for a record header;
 * a deep restore also checks the record itself. */
static int check_slot(struct kst *s, uint64_t w, struct scan *sc) {
  uint64_t addr = KST_SLOT_ADDR(w), cap = KST_SLOT_CAP(w);
  if (cap < rec_need(s->layout, 1, 0) || !in_seg(s, addr, cap))
    return REFUSE(sc, "record %#llx: out of range", (unsigned long long)addr);
  const char *bad = s->lazy ? NULL : rec_bad(s, w);
  if (bad != NULL)
    return REFUSE(sc, "record %#llx: %s", (unsigned long long)addr, bad);
  if (!s->lazy)
    s->keybytes += rec_at(s, addr)->keylen + 1;
  add_used(sc, addr, cap);
  s->count++;
  return 0;
}

static int check_index(struct kst *s, struct scan *sc) {
  uint64_t w = s->hdr->table, addr = KST_TABLE_ADDR(w);
  uint32_t lg = KST_TABLE_LG(w);
  if (lg < TABLE_LG_MIN || lg > TABLE_LG_MAX || addr % 8 != 0 ||
      !in_seg(s, addr, (1ull << lg) * sizeof(uint64_t)))
    return REFUSE(sc, "index %#llx: out of range", (unsigned long long)w);
  uint64_t n = 1ull << lg, *t = slots(s);
  s->table_cap = n * sizeof(uint64_t);
  add_used(sc, addr, s->table_cap);
  for (uint64_t i = 0; i < n; i++) {
    if (t[i] == SLOT_TOMB)
      s->ntomb++;
    else if (t[i] != SLOT_EMPTY && check_slot(s, t[i], sc) < 0)
      return -EPROTO;
  }
  return 0;
}

static int check_held(struct kst *s, struct scan *sc) {
  const struct kst_held *h = held_table(s);
  s->next_seq = s->hdr->applied + 1;
  for (uint32_t i = 0; i < s->hdr->heldmax; i++) {
    if (h[i].seq == 0)
      continue;
    if (h[i].op != KVS_PUT || h[i].seq == UINT64_MAX)
      return REFUSE(sc, "held request %u: bad", i);
    if (h[i].seq >= s->next_seq)
      s->next_seq = h[i].seq + 1;
  }
  return s->hdr->applied == UINT64_MAX ? REFUSE(sc, "applied mark") : 0;
}

/* Rebuilds the free space: every byte of every segment the header, the
 * index and the records do not use. */
static int rebuild_space(struct kst *s, struct scan *sc) {
  struct ksp_ext *area = xmalloc(s->nseg * sizeof *area);
  size_t na = 0;
  for (uint32_t i = 0; i < s->nseg; i++)
    if (s->seg[i].size != 0)
      area[na++] = (struct ksp_ext){ADDR(i, 0), s->seg[i].size};
  add_used(sc, ADDR(0, 0), hdr_bytes(s->hdr->segmax));
  int r = ksp_rebuild(&s->space, area, na, sc->used, sc->n);
  free(area);
  return r < 0 ? REFUSE(sc, "records overlap") : 0;
}

static int restore_steps(struct kst *s, const struct kst_seg *seg0,
                         uint32_t layout, struct scan *sc) {
  int r = check_hdr(seg0, layout, sc);
  if (r < 0)
    return r;
  s->hdr = seg0->base;
  s->layout = s->hdr->layout;
  s->method = s->hdr->method;
  s->seg_size = round_up(s->hdr->seg_size, KST_PAGE);
  if (s->seg_size == 0 || s->seg_size > UK_ICA_SIZE_MAX)
    s->seg_size = SEG_SIZE_DEFAULT;
  s->nseg = s->hdr->segmax ? s->hdr->segmax : 1;
  s->seg = xmalloc(s->nseg * sizeof *s->seg);
  memset(s->seg, 0, s->nseg * sizeof *s->seg);
  s->seg[0] = *seg0;
  s->seg[0].size = s->hdr->size;
  s->seg_bytes = s->hdr->size;
  r = attach_segs(s, sc);
  if (r == 0)
    r = check_index(s, sc);
  if (r == 0)
    r = check_held(s, sc);
  if (r == 0)
    r = rebuild_space(s, sc);
  return r;
}

int kst_restore(struct kst *s, const struct kst_seg *seg0, uint32_t layout,
                uint64_t limit, unsigned flags, const struct kst_segops *ops,
                char *why, size_t whylen) {
  struct scan sc = {.why = why, .whylen = whylen};
  memset(s, 0, sizeof *s);
  s->ops = ops;
  s->lazy = (flags & KST_RESTORE_LAZY) != 0;
  ksp_init(&s->space);
  int r = restore_steps(s, seg0, layout, &sc);
  free(sc.used);
  if (r < 0) {
    kst_forget(s);
    return r;
  }
  if (s->lazy)
    s->keybytes = KST_UNKNOWN;
  s->limit = s->method == KST_SINGLE ? s->seg_bytes : limit;
  if (s->limit < s->seg_bytes)
    s->limit = s->seg_bytes;
  return 0;
}

/* Conversion and accessors ----------------------------------------------- */

int kst_copy(struct kst *dst, const struct kst *src) {
  struct kst_entry e;
  struct kst_held h[KST_HELD_MAX];
  uint64_t cursor = 0;
  int r = 0;
  while (r == 0 && kst_next(src, &cursor, &e))
    r = kst_load(dst, &e);
  uint32_t n = kst_held_list(src, h);
  for (uint32_t i = 0; i < n && r == 0; i++)
    r = kst_hold_load(dst, &h[i]);
  if (r == 0 && kst_applied(src) != 0)
    kst_set_applied(dst, kst_applied(src));
  return r;
}

const struct kst_seg *kst_segs(const struct kst *s, uint32_t *n) {
  *n = s->nseg;
  return s->seg;
}

uint32_t kst_layout(const struct kst *s) {
  return s->layout;
}

uint32_t kst_method(const struct kst *s) {
  return s->method;
}

void kst_set_step(struct kst *s, void (*fn)(void *arg), void *arg) {
  s->step = fn;
  s->step_arg = arg;
}
