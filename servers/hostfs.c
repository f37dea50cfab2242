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
#include "uksim/xalloc.h"

#define STATE_MAX_DEFAULT (16ull << 20)

struct desc {
  p9_hostfs_image img;
  Uksim__P9s__Hostfs fs;
  Uksim__P9s__HostfsHandle *h, **hp;
};

static void describe(void *fs, Uksim__P9s__State *st) {
  struct desc *d = xcalloc(1, sizeof(*d));
  p9_hostfs_image_get(fs, &d->img);
  uksim__p9s__hostfs__init(&d->fs);
  d->h = xmalloc((d->img.nhandle + 1) * sizeof(*d->h));
  d->hp = xmalloc((d->img.nhandle + 1) * sizeof(*d->hp));
  for (uint32_t i = 0; i < d->img.nhandle; i++) {
    const p9_hostfs_handle *s = &d->img.handle[i];
    uksim__p9s__hostfs_handle__init(&d->h[i]);
    d->h[i].used = s->used;
    d->h[i].gen = s->gen;
    d->h[i].path = (char *)(s->used ? s->path : "");
    d->h[i].omode = s->omode;
    d->hp[i] = &d->h[i];
  }
  d->fs.dir = (char *)p9_hostfs_dir(fs);
  d->fs.handles = d->hp;
  d->fs.n_handles = d->img.nhandle;
  st->hostfs = &d->fs;
}

static void described(Uksim__P9s__State *st) {
  struct desc *d =
      (struct desc *)((char *)st->hostfs - offsetof(struct desc, fs));
  p9_hostfs_image_free(&d->img);
  free(d->h);
  free(d->hp);
  free(d);
}

static void *load(void *arg, const Uksim__P9s__State *st, int *err, char *why,
                  size_t whylen) {
  const Uksim__P9s__Hostfs *h = st->hostfs;
  p9_hostfs_image img = {0};
  p9_hostfs *fs;
  if (!h || h->n_handles > UINT32_MAX) {
    snprintf(why, whylen, "the state holds no hostfs handles");
    *err = -EINVAL;
    return NULL;
  }
  if (strcmp(h->dir, arg) != 0) {
    snprintf(why, whylen, "the state is of directory %.80s, not %.80s",
             h->dir, (char *)arg);
    *err = -EINVAL;
    return NULL;
  }
  img.nhandle = (uint32_t)h->n_handles;
  img.handle = xcalloc(img.nhandle + 1, sizeof(*img.handle));
  for (uint32_t i = 0; i < img.nhandle; i++)
    img.handle[i] = (p9_hostfs_handle){.used = h->handles[i]->used,
                                       .gen = h->handles[i]->gen,
                                       .path = h->handles[i]->path,
                                       .omode = (uint8_t)h->handles[i]->omode};
  fs = p9_hostfs_load(arg, &img, err);
  free(img.handle);
  if (!fs)
    snprintf(why, whylen, "the hostfs handles in the state: %s",
             strerror(-*err));
  return fs;
}

static void *fresh(void *arg, int *err) {
  return p9_hostfs_new(arg, err);
}

static void fs_free(void *fs) {
  p9_hostfs_free(fs);
}

int main(int argc, char **argv) {
  struct p9h_opts o = {.service = "hostfs", .state_max = STATE_MAX_DEFAULT};
  struct p9h_backend b = {.kind = "hostfs",
                          .ops = p9_hostfs_ops(),
                          .fresh = fresh,
                          .describe = describe,
                          .described = described,
                          .load = load,
                          .free = fs_free};
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
