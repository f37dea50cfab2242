/*
 * fuzz_srv.c: libFuzzer target for the server's message handling.  The
 * input is a byte stream split into frames by their size[4] fields and
 * fed to a server over a capturing transport (the first byte picks
 * options: bit 0 a shared key).  The server must answer or close, never
 * crash, hang or leak; at the end the connection must be fully released.
 */
#include <stdlib.h>
#include <string.h>

#include <uksim/9p.h>

#include "harness.h"

static const uint8_t key[P9_KEYLEN] = "fuzzing-key-0123456789abcdefghij";

static uint32_t le32(const uint8_t *p) {
  return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  p9_srv_config cfg = {.max_fids = 64, .max_tags = 16, .log = NULL};
  p9_memfs *fs;
  p9_srv *srv;
  cap c;
  int err;
  static FILE *devnull;
  if (size < 1)
    return 0;
  if (!devnull)
    devnull = fopen("/dev/null", "w");
  cfg.log = devnull;
  if (data[0] & 1)
    cfg.key = key;
  fs = p9_memfs_new();
  p9_memfs_set_limit(fs, 1 << 20);
  srv = p9_srv_new(p9_memfs_ops(), fs, &cfg, &err);
  if (!srv)
    abort();
  cap_init(&c);
  p9_srv_serve(srv, &c.t);
  data++;
  size--;
  while (size >= 4 && c.nclosed == 0) {
    uint32_t n = le32(data);
    if (n > size || n > c.t.max_msg)
      n = (uint32_t)size; /* a frame that lies about its size */
    cap_raw(&c, data, n);
    data += n;
    size -= n;
  }
  cap_close(&c.t);
  if (p9_srv_nconns(srv) != 0)
    abort(); /* every request answered, the connection released */
  cap_drop(&c);
  p9_srv_free(srv);
  p9_memfs_free(fs);
  return 0;
}
