/*
 * fuzz_icat.c: libFuzzer target for the ICA transport (net9p/icat.c), the
 * path a uksim 9P server's requests take.  The input is a sequence of
 * requests, each a length[2], a flags byte (bit 0: a data ICA comes with
 * it; bits 1-3: its size in 64-byte steps) and that many control ICA
 * bytes, served one by one on a memfs session.  Every request must end
 * with a negative status or an R-message in place, never a crash, hang
 * or leak; at the end the session must be fully released.
 */
#include <stdlib.h>
#include <string.h>

#include <uksim/9p.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  p9_srv_config cfg = {.msize = P9_MAXMSIZE, .max_fids = 64, .max_tags = 16};
  static FILE *devnull;
  static uint8_t ctl[1 << 16], bulk[512];
  p9_memfs *fs;
  p9_srv *srv;
  p9_icat *t;
  int err;
  if (!devnull)
    devnull = fopen("/dev/null", "w");
  cfg.log = devnull;
  fs = p9_memfs_new();
  p9_memfs_set_limit(fs, 1 << 20);
  if (!(srv = p9_srv_new(p9_memfs_ops(), fs, &cfg, &err)) ||
      !(t = p9_icat_new(srv, NULL, &err)))
    abort();
  while (size >= 3) {
    size_t n = (size_t)(data[0] | data[1] << 8);
    uint8_t fl = data[2];
    data += 3, size -= 3;
    if (n > size)
      n = size;
    memcpy(ctl, data, n);
    int st =
        p9_icat_call(t, ctl, n, (fl & 1) ? bulk : NULL, 64u * ((fl >> 1) & 7));
    if (st > 0 || (st == 0 && (n < 5 || !(ctl[4] & 1))))
      abort(); /* a status that is no status, or no answer in place */
    data += n, size -= n;
  }
  p9_icat_free(t);
  if (p9_srv_nconns(srv) != 0)
    abort();
  p9_srv_free(srv);
  p9_memfs_free(fs);
  return 0;
}
