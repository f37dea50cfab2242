/* ramfs: net9p's in-memory tree (memfs) as a uksim OS server, the 9P file
 * server of seed 002 on the ICA request queue (uksim/p9ica.h).
 *
 *   ramfs [--name NAME] [--state-max B] [--trace]
 *
 * Service "ramfs" by default.  The tree and every client's fids are
 * server state (p9host.c): a client holding an open fid reads the same
 * bytes through it after `uksim replace ramfs ...` and after a crash and
 * restart.  The tree's file bytes count against the state ICA: they may
 * hold at most a third of --state-max (default 256M), so that two images
 * of a full tree fit; a write beyond is "no space left on device".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "p9host.h"
#include "p9state.h"

#define STATE_MAX_DEFAULT (256ull << 20)

static void describe(void *fs, Uksim__P9s__State *st) {
  p9s_memfs_describe(fs, st);
}

/* The successor's --state-max, not its predecessor's, bounds the files. */
static void *load(void *arg, const Uksim__P9s__State *st, int *err, char *why,
                  size_t whylen) {
  p9_memfs *fs = p9s_memfs_load(st, err, why, whylen);
  if (fs)
    p9_memfs_set_limit(fs, *(uint64_t *)arg / 3);
  return fs;
}

static void *fresh(void *arg, int *err) {
  p9_memfs *fs = p9_memfs_new();
  (void)err;
  p9_memfs_set_limit(fs, *(uint64_t *)arg / 3);
  return fs;
}

int main(int argc, char **argv) {
  struct p9h_opts o = {.service = "ramfs", .state_max = STATE_MAX_DEFAULT};
  struct p9h_backend b = {.kind = "ramfs",
                          .ops = p9_memfs_ops(),
                          .arg = &o.state_max,
                          .fresh = fresh,
                          .describe = describe,
                          .described = p9s_memfs_described,
                          .load = load};
  int r;
  if (p9h_parse(&argc, argv, &o) < 0 || argc != 1) {
    fputs("usage: ramfs [--name NAME] [--state-max B] [--trace]\n", stderr);
    return 2;
  }
  r = p9h_run(&b, &o);
  if (r < 0)
    fprintf(stderr, "ramfs: %s\n", strerror(-r));
  return r < 0;
}
