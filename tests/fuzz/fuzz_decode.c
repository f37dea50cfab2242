/*
 * fuzz_decode.c: libFuzzer target for the codec.  Any input is decoded in
 * both dialects (and as a stat entry and a dirent); what decodes must
 * re-encode to the same bytes.  Crashes, overreads and leaks are bugs.
 */
#include <stdlib.h>
#include <string.h>

#include <uksim/9p.h>

static void check(const uint8_t *data, size_t size, p9_dialect d) {
  p9_fcall f;
  char line[256];
  uint8_t *buf;
  long n;
  if (p9_decode(data, size, d, &f) < 0)
    return;
  p9_fcall_fmt(line, sizeof(line), &f);
  n = p9_fcall_size(&f, d);
  if (n < 0)
    abort();
  buf = malloc((size_t)n);
  if (p9_encode(&f, d, buf, (size_t)n) != n)
    abort();
  /* Tfsync's datasync is optional on the wire: the only non-identity. */
  if (f.type != P9_TFSYNC && ((size_t)n != size || memcmp(buf, data, size)))
    abort();
  free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  p9_stat st;
  p9_dirent de;
  check(data, size, P9_2000);
  check(data, size, P9_2000L);
  if (p9_stat_decode(data, size, &st) > 0 && p9_stat_size(&st) > size)
    abort();
  p9_dirent_decode(data, size, &de);
  return 0;
}
