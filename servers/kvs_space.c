/* Free space of a kvs store: sorted, coalesced extents (see kvs_space.h). */
#include "kvs_space.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

void ksp_init(struct ksp *sp) {
  memset(sp, 0, sizeof *sp);
}

void ksp_close(struct ksp *sp) {
  free(sp->ext);
  memset(sp, 0, sizeof *sp);
}

/* Index of the first extent whose address is >= addr. */
static size_t lower_bound(const struct ksp *sp, uint64_t addr) {
  size_t lo = 0, hi = sp->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (sp->ext[mid].addr < addr)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static void insert_at(struct ksp *sp, size_t i, uint64_t addr, uint64_t len) {
  if (sp->n == sp->cap) {
    sp->cap = sp->cap ? 2 * sp->cap : 16;
    sp->ext = xrealloc(sp->ext, sp->cap * sizeof *sp->ext);
  }
  memmove(&sp->ext[i + 1], &sp->ext[i], (sp->n - i) * sizeof *sp->ext);
  sp->ext[i] = (struct ksp_ext){addr, len};
  sp->n++;
}

static void remove_at(struct ksp *sp, size_t i) {
  memmove(&sp->ext[i], &sp->ext[i + 1], (sp->n - i - 1) * sizeof *sp->ext);
  sp->n--;
}

void ksp_give(struct ksp *sp, uint64_t addr, uint64_t len,
              struct ksp_ext *merged) {
  size_t i = lower_bound(sp, addr);
  struct ksp_ext *prev = i > 0 ? &sp->ext[i - 1] : NULL;
  struct ksp_ext *next = i < sp->n ? &sp->ext[i] : NULL;
  assert(len > 0);
  assert(prev == NULL || prev->addr + prev->len <= addr);
  assert(next == NULL || addr + len <= next->addr);
  sp->free_bytes += len;
  if (prev != NULL && prev->addr + prev->len == addr) {
    prev->len += len;
    if (next != NULL && addr + len == next->addr) {
      prev->len += next->len;
      remove_at(sp, i);
    }
    i--;
  } else if (next != NULL && addr + len == next->addr) {
    next->addr = addr;
    next->len += len;
  } else {
    insert_at(sp, i, addr, len);
  }
  if (merged != NULL)
    *merged = sp->ext[i];
}

int ksp_take(struct ksp *sp, uint64_t len, uint64_t *addr, uint64_t *got) {
  for (size_t i = 0; i < sp->n; i++) {
    struct ksp_ext *e = &sp->ext[i];
    if (e->len < len)
      continue;
    *addr = e->addr;
    if (e->len - len < KSP_SLACK) {
      *got = e->len;
      remove_at(sp, i);
    } else {
      *got = len;
      e->addr += len;
      e->len -= len;
    }
    sp->free_bytes -= *got;
    return 0;
  }
  return -ENOSPC;
}

bool ksp_drop(struct ksp *sp, uint64_t addr, uint64_t len) {
  size_t i = lower_bound(sp, addr);
  if (i == sp->n || sp->ext[i].addr != addr || sp->ext[i].len != len)
    return false;
  remove_at(sp, i);
  sp->free_bytes -= len;
  return true;
}

static int by_addr(const void *a, const void *b) {
  const struct ksp_ext *x = a, *y = b;
  return x->addr < y->addr ? -1 : x->addr > y->addr;
}

int ksp_rebuild(struct ksp *sp, const struct ksp_ext *area, size_t nareas,
                struct ksp_ext *used, size_t nused) {
  size_t u = 0;
  qsort(used, nused, sizeof *used, by_addr);
  sp->n = 0;
  sp->free_bytes = 0;
  for (size_t a = 0; a < nareas; a++) {
    uint64_t pos = area[a].addr, end = area[a].addr + area[a].len;
    for (; u < nused && used[u].addr < end; u++) {
      /* Before pos: overlaps the previous extent or lies outside every
       * area.  Past end: leaves its area. */
      if (used[u].addr < pos || used[u].len == 0 ||
          used[u].len > end - used[u].addr)
        return -EPROTO;
      if (used[u].addr > pos)
        ksp_give(sp, pos, used[u].addr - pos, NULL);
      pos = used[u].addr + used[u].len;
    }
    if (pos < end)
      ksp_give(sp, pos, end - pos, NULL);
  }
  return u == nused ? 0 : -EPROTO;
}
