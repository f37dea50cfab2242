/*
 * fid.c: the server's per-connection fid table.
 *
 * Capacity fixed per connection, slots allocated in chunks as fids are
 * used, linked only by indices: nothing in a slot is a pointer, so the
 * slots could sit in a state ICA and be read by another process.  Lookups
 * hash the fid number into chains; a request holding a fid keeps its slot
 * alive after a clunk.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "p9_impl.h"

int p9__fidtab_init(p9__fidtab *t, uint32_t cap) {
  memset(t, 0, sizeof(*t));
  t->cap = cap;
  t->nbucket = 64;
  while (t->nbucket < cap / 2)
    t->nbucket <<= 1;
  t->bucket = xmalloc(t->nbucket * sizeof(uint32_t));
  t->chunk = xcalloc((cap + P9__FIDCHUNK - 1) / P9__FIDCHUNK, sizeof(p9_fid *));
  for (uint32_t i = 0; i < t->nbucket; i++)
    t->bucket[i] = P9__NIL;
  t->free = P9__NIL;
  return 0;
}

void p9__fidtab_close(p9__fidtab *t) {
  for (uint32_t i = 0; i < t->nslot; i += P9__FIDCHUNK)
    free(t->chunk[i / P9__FIDCHUNK]);
  free(t->chunk);
  free(t->bucket);
  memset(t, 0, sizeof(*t));
}

p9_fid *p9__fid_slot(p9__fidtab *t, uint32_t i) {
  return &t->chunk[i / P9__FIDCHUNK][i % P9__FIDCHUNK];
}

/* Adds the next chunk's slots to the free list; false when the table
 * already has cap slots. */
static bool grow(p9__fidtab *t) {
  uint32_t n =
      t->cap - t->nslot < P9__FIDCHUNK ? t->cap - t->nslot : P9__FIDCHUNK;
  p9_fid *c;
  if (n == 0)
    return false;
  c = t->chunk[t->nslot / P9__FIDCHUNK] = xcalloc(n, sizeof(p9_fid));
  for (uint32_t i = 0; i < n; i++) {
    c[i].idx = t->nslot + i;
    c[i].next = i + 1 < n ? t->nslot + i + 1 : t->free;
  }
  t->free = t->nslot;
  t->nslot += n;
  return true;
}

static uint32_t *head(p9__fidtab *t, uint32_t num) {
  return &t->bucket[(num * 2654435761u) & (t->nbucket - 1)];
}

p9_fid *p9__fid_lookup(p9__fidtab *t, uint32_t num) {
  for (uint32_t i = *head(t, num); i != P9__NIL;) {
    p9_fid *f = p9__fid_slot(t, i);
    if (f->num == num) {
      f->ref++;
      return f;
    }
    i = f->next;
  }
  return NULL;
}

p9_fid *p9__fid_alloc(p9__fidtab *t, uint32_t num, int *err) {
  p9_fid *f = p9__fid_lookup(t, num);
  uint32_t i;
  if (f) {
    f->ref--;
    *err = -EBADF;
    return NULL;
  }
  if (num == P9_NOFID || (t->free == P9__NIL && !grow(t))) {
    *err = num == P9_NOFID ? -EBADF : -ENFILE;
    return NULL;
  }
  i = t->free;
  f = p9__fid_slot(t, i);
  t->free = f->next;
  memset(f, 0, sizeof(*f));
  f->idx = i;
  f->num = num;
  f->omode = P9_ONONE;
  f->ref = 1;
  f->flags = P9__FID_LIVE;
  f->next = *head(t, num);
  *head(t, num) = i;
  t->nlive++;
  return f;
}

void p9__fid_unlink(p9__fidtab *t, p9_fid *f) {
  uint32_t *p = head(t, f->num);
  if (!(f->flags & P9__FID_LIVE))
    return;
  while (*p != f->idx)
    p = &p9__fid_slot(t, *p)->next;
  *p = f->next;
  f->next = P9__NIL;
  f->flags &= ~P9__FID_LIVE;
  t->nlive--;
}

int p9__fid_unref(p9__fidtab *t, p9_fid *f) {
  if (--f->ref > 0)
    return 0;
  if (f->flags & P9__FID_LIVE)
    p9__fid_unlink(t, f);
  f->flags = 0;
  f->next = t->free;
  t->free = f->idx;
  return 1;
}
