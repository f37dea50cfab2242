/* A hostile 9P server for the mount driver's tests: it registers a
 * service, posts itself as /srv/NAME, answers Tversion and Tattach as a
 * server should (so a mount succeeds), and then, from its N-th request on,
 * misbehaves as the mode says:
 *   garbage  random bytes with a random size field (seeded)
 *   type     a well-formed answer of the wrong type (Rclunk to anything)
 *   size     a size field beyond the control ICA
 *   error    the request's status a transport error (-EPROTO)
 *   die      exit(3) holding the request (a server dying mid-walk)
 *   p9_garbage NAME MODE [N] [SEED]            (N: default 3)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uksim/9p.h"
#include "uksim/ns.h"
#include "uksim/server.h"

static uint64_t rng;

static uint32_t next_rand(void) {
  rng = rng * 6364136223846793005ull + 1442695040888963407ull;
  return (uint32_t)(rng >> 33);
}

static void post(const char *name) {
  char path[64];
  snprintf(path, sizeof path, "#s/%s", name);
  int fd = ns_create(path, NS_OWRITE, 0600);
  if (fd >= 0) {
    ns_write(fd, name, strlen(name));
    ns_close(fd);
  }
}

/* The honest answer to a Tversion or Tattach, in place. */
static int answer_well(srv_req *r) {
  p9_fcall t, a = {0};
  const uint8_t *m = r->ctl.base;
  uint32_t size =
      m[0] | m[1] << 8 | (uint32_t)m[2] << 16 | (uint32_t)m[3] << 24;
  if (size > r->ctl.size || p9_decode(m, size, P9_2000, &t) < 0)
    return -EPROTO;
  a.tag = t.tag;
  if (t.type == P9_TVERSION) {
    a.type = P9_RVERSION;
    a.msize = t.msize;
    a.version = p9_str_c("9P2000");
  } else if (t.type == P9_TATTACH) {
    a.type = P9_RATTACH;
    a.qid = (p9_qid){.type = P9_QTDIR, .path = 1};
  } else {
    a.type = P9_RERROR;
    a.ename = p9_str_c("not yet");
  }
  return p9_encode(&a, P9_2000, r->ctl.base, r->ctl.size) < 0 ? -EMSGSIZE : 0;
}

static int misbehave(srv_req *r, const char *mode) {
  uint8_t *m = r->ctl.base;
  if (strcmp(mode, "die") == 0)
    exit(3);
  if (strcmp(mode, "error") == 0)
    return -EPROTO;
  if (strcmp(mode, "type") == 0) {
    p9_fcall a = {.type = P9_RCLUNK, .tag = (uint16_t)(m[5] | m[6] << 8)};
    return p9_encode(&a, P9_2000, m, r->ctl.size) < 0 ? -EMSGSIZE : 0;
  }
  if (strcmp(mode, "size") == 0) {
    uint32_t big = (uint32_t)r->ctl.size + 1000;
    memcpy(m, &big, 4);
    m[4] = P9_RREAD;
    return 0;
  }
  size_t n = 7 + next_rand() % 64;
  for (size_t i = 0; i < n && i < r->ctl.size; i++)
    m[i] = (uint8_t)next_rand();
  if (next_rand() % 2)
    memcpy(m, &(uint32_t){(uint32_t)n}, 4); /* sometimes a size that fits */
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fputs("usage: p9_garbage NAME garbage|type|size|error|die [N] [SEED]\n",
          stderr);
    return 2;
  }
  long after = argc > 3 ? atol(argv[3]) : 3;
  rng = argc > 4 ? strtoull(argv[4], NULL, 10) : 1;
  srv_req r;
  int st = srv_register(argv[1], 1, "9p", NULL);
  if (st < 0)
    return 1;
  post(argv[1]);
  st = srv_receive(&r);
  for (long n = 1; st == 0; n++)
    st = srv_reply_receive(&r, n < after ? answer_well(&r)
                                         : misbehave(&r, argv[2]));
  return 0;
}
