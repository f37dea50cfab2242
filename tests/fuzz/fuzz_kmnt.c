/*
 * fuzz_kmnt.c: libFuzzer target for the client side of the mount driver
 * #M: how the kernel reads what a 9P server answers (sim-kernel/kmnt_msg.c).
 * A server is untrusted: a hostile or broken one may write anything into
 * the control ICA it hands back.  The input is a selector byte (which
 * T-message was asked, which dialect, whether the read was bulk and
 * whether a walk named a name) and the bytes of the answer.  Checked:
 * the answer is read without reading past it, an error is a negative
 * errno in range, a count claimed for an in-frame Rread fits the frame,
 * and a directory listing's every entry decodes inside its chunk with a
 * name that fits it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kmnt_msg.h"

static const uint8_t types[] = {
    P9_TVERSION, P9_TATTACH,  P9_TWALK,  P9_TOPEN,    P9_TCREATE,
    P9_TREAD,    P9_TWRITE,   P9_TSTAT,  P9_TWSTAT,   P9_TREMOVE,
    P9_TLOPEN,   P9_TLCREATE, P9_TMKDIR, P9_TGETATTR, P9_TSETATTR,
    P9_TREADDIR, P9_TRENAMEAT};

struct seen {
  const uint8_t *lo, *hi;
  unsigned n;
};

static int entry(void *arg, const p9_stat *st) {
  struct seen *s = arg;
  if (st->name.len > 0 && ((const uint8_t *)st->name.s < s->lo ||
                           (const uint8_t *)st->name.s + st->name.len > s->hi))
    abort();              /* a name pointing outside the chunk it came in */
  return ++s->n > 100000; /* a listing ends */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  uint8_t sel = data[0];
  uint8_t t = types[(sel & 0x1f) % sizeof types];
  p9_dialect d = (sel & 0x20) ? P9_2000L : P9_2000;
  bool bulk = sel & 0x40, walked = sel & 0x80;
  size_t n = size - 1;
  uint8_t *m = malloc(n ? n : 1); /* exactly the answer: ASan sees overreads */
  memcpy(m, data + 1, n);
  struct kmnt_reply r;
  kmnt__reply(t, walked, bulk, d, m, n, &r);
  if (r.err > 0 || r.err < -4095)
    abort();
  bool in_frame = t == P9_TREAD && !(bulk && n >= 11 && m[0] == 11 &&
                                     m[1] == 0 && m[2] == 0 && m[3] == 0);
  if (r.err == 0 && in_frame && n >= 11 && r.count > n - 11)
    abort(); /* an in-frame Rread claiming more bytes than it holds */
  uint64_t next = 0;
  struct seen s = {.lo = m, .hi = m + n};
  int l = kmnt__list_chunk(d == P9_2000L, m, (uint32_t)n, &next, entry, &s);
  if (l > 1 || (l < 0 && l != -EIO))
    abort();
  free(m);
  return 0;
}
