/*
 * fid.c: the server's per-connection fid table.
 *
 * Fixed capacity, allocated once per connection, linked only by indices:
 * nothing in it is a pointer, so the same bytes could sit in a state ICA
 * and be read by another process.  Lookups hash the fid number into
 * chains; a request holding a fid keeps its slot alive after a clunk.
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
  t->bucket = p9__xmalloc(t->nbucket * sizeof(uint32_t));
  t->slot = p9__xcalloc(cap, sizeof(p9_fid));
  for (uint32_t i = 0; i < t->nbucket; i++)
    t->bucket[i] = P9__NIL;
  for (uint32_t i = 0; i < cap; i++)
    t->slot[i].next = i + 1 < cap ? i + 1 : P9__NIL;
  t->free = cap ? 0 : P9__NIL;
  return 0;
}

void p9__fidtab_close(p9__fidtab *t) {
  free(t->bucket);
  free(t->slot);
  memset(t, 0, sizeof(*t));
}

static uint32_t *head(p9__fidtab *t, uint32_t num) {
  return &t->bucket[(num * 2654435761u) & (t->nbucket - 1)];
}

p9_fid *p9__fid_lookup(p9__fidtab *t, uint32_t num) {
  for (uint32_t i = *head(t, num); i != P9__NIL; i = t->slot[i].next) {
    if (t->slot[i].num == num) {
      t->slot[i].ref++;
      return &t->slot[i];
    }
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
  if (num == P9_NOFID || t->free == P9__NIL) {
    *err = num == P9_NOFID ? -EBADF : -ENFILE;
    return NULL;
  }
  i = t->free;
  f = &t->slot[i];
  t->free = f->next;
  memset(f, 0, sizeof(*f));
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
  uint32_t idx = (uint32_t)(f - t->slot), *p = head(t, f->num);
  if (!(f->flags & P9__FID_LIVE))
    return;
  while (*p != idx)
    p = &t->slot[*p].next;
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
  t->free = (uint32_t)(f - t->slot);
  return 1;
}
