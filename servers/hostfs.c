/* hostfs: a host directory as a uksim OS server (the u9fs role of seed
 * 002), served by net9p's hostfs backend over the ICA request queue
 * (uksim/p9ica.h).
 *
 *   hostfs [--name NAME] [--state-max B] [--trace] DIR
 *
 * Service "hostfs" by default.  The files are the host's and outlive the
 * server; its state is every client's fids and the handle each names (a
 * path beneath DIR and how its fid opened it), so an open fid reads on
 * after a replacement or a restart, from wherever the file is then.  A
 * successor refuses a state of another directory.  No path leaves DIR:
 * net9p/hostfs.c says how.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "p9host.h"
#include "p9state.h"

#define STATE_MAX_DEFAULT (16ull << 20)

static void describe(void *fs, Uksim__P9s__State *st) {
  p9s_hostfs_describe(fs, st);
}

static void *load(void *arg, const Uksim__P9s__State *st, int *err, char *why,
                  size_t whylen) {
  return p9s_hostfs_load(arg, st, err, why, whylen);
}

static void *fresh(void *arg, int *err) {
  return p9_hostfs_new(arg, err);
}

int main(int argc, char **argv) {
  struct p9h_opts o = {.service = "hostfs", .state_max = STATE_MAX_DEFAULT};
  struct p9h_backend b = {.kind = "hostfs",
                          .ops = p9_hostfs_ops(),
                          .fresh = fresh,
                          .describe = describe,
                          .described = p9s_hostfs_described,
                          .load = load};
  int r;
  if (p9h_parse(&argc, argv, &o) < 0 || argc != 2) {
    fputs("usage: hostfs [--name NAME] [--state-max B] [--trace] DIR\n",
          stderr);
    return 2;
  }
  /* The state names the directory as the first server saw it: resolved,
   * so that a successor given another spelling of it agrees. */
  if (!(b.arg = realpath(argv[1], NULL))) {
    fprintf(stderr, "hostfs: %s: %s\n", argv[1], strerror(errno));
    return 1;
  }
  r = p9h_run(&b, &o);
  free(b.arg);
  if (r < 0)
    fprintf(stderr, "hostfs: %s: %s\n", argv[1], strerror(-r));
  return r < 0;
}
