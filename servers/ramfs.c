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
#include "uksim/xalloc.h"

#define STATE_MAX_DEFAULT (256ull << 20)

/* What describe allocated beside the image's borrowed strings and data. */
struct desc {
  p9_memfs_image img;
  Uksim__P9s__Memfs fs;
  Uksim__P9s__MemfsNode *node, **nodep;
  Uksim__P9s__Qid *qid;
};

static void node_to_pb(const p9_memfs_slot *s, Uksim__P9s__MemfsNode *p,
                       Uksim__P9s__Qid *q) {
  uksim__p9s__memfs_node__init(p);
  uksim__p9s__qid__init(q);
  p->used = s->used;
  p->gen = s->gen;
  if (!s->used)
    return;
  p->parent = s->parent;
  p->child = s->child;
  p->sibling = s->sibling;
  p->name = (char *)s->name;
  p->mode = s->mode;
  p->uid = s->uid;
  p->gid = s->gid;
  p->muid = s->muid;
  p->nopen = s->nopen;
  q->type = s->qid.type;
  q->vers = s->qid.vers;
  q->path = s->qid.path;
  p->qid = q;
  p->data = (ProtobufCBinaryData){s->len, (uint8_t *)(uintptr_t)s->data};
  p->atime = s->atime;
  p->mtime = s->mtime;
}

static void describe(void *fs, Uksim__P9s__State *st) {
  struct desc *d = xcalloc(1, sizeof(*d));
  p9_memfs_image_get(fs, &d->img);
  uksim__p9s__memfs__init(&d->fs);
  d->node = xmalloc(d->img.nslot * sizeof(*d->node));
  d->nodep = xmalloc(d->img.nslot * sizeof(*d->nodep));
  d->qid = xmalloc(d->img.nslot * sizeof(*d->qid));
  for (uint32_t i = 0; i < d->img.nslot; i++) {
    node_to_pb(&d->img.slot[i], &d->node[i], &d->qid[i]);
    d->nodep[i] = &d->node[i];
  }
  d->fs.users = (char **)d->img.user;
  d->fs.n_users = d->img.nuser;
  d->fs.nodes = d->nodep;
  d->fs.n_nodes = d->img.nslot;
  d->fs.nextpath = d->img.nextpath;
  d->fs.limit = d->img.limit;
  st->memfs = &d->fs;
}

static void described(Uksim__P9s__State *st) {
  struct desc *d = (struct desc *)((char *)st->memfs - offsetof(struct desc, fs));
  p9_memfs_image_free(&d->img);
  free(d->node);
  free(d->nodep);
  free(d->qid);
  free(d);
}

static void node_from_pb(const Uksim__P9s__MemfsNode *p, p9_memfs_slot *s) {
  *s = (p9_memfs_slot){.used = p->used, .gen = p->gen};
  if (!p->used)
    return;
  s->parent = p->parent;
  s->child = p->child;
  s->sibling = p->sibling;
  s->name = p->name;
  s->mode = p->mode;
  s->uid = p->uid;
  s->gid = p->gid;
  s->muid = p->muid;
  s->nopen = p->nopen;
  if (p->qid)
    s->qid = (p9_qid){(uint8_t)p->qid->type, p->qid->vers, p->qid->path};
  s->data = p->data.data;
  s->len = p->data.len;
  s->atime = p->atime;
  s->mtime = p->mtime;
}

static void *load(void *arg, const Uksim__P9s__State *st, int *err, char *why,
                  size_t whylen) {
  const Uksim__P9s__Memfs *m = st->memfs;
  p9_memfs_image img = {0};
  p9_memfs *fs;
  (void)arg;
  if (!m || m->n_nodes == 0 || m->n_nodes > UINT32_MAX) {
    snprintf(why, whylen, "the state holds no ramfs tree");
    *err = -EINVAL;
    return NULL;
  }
  img.nuser = (uint32_t)m->n_users;
  img.user = (const char **)m->users;
  img.nslot = (uint32_t)m->n_nodes;
  img.slot = xmalloc(img.nslot * sizeof(*img.slot));
  for (uint32_t i = 0; i < img.nslot; i++)
    node_from_pb(m->nodes[i], &img.slot[i]);
  img.nextpath = m->nextpath;
  img.limit = m->limit;
  fs = p9_memfs_load(&img, err);
  free(img.slot);
  if (!fs)
    snprintf(why, whylen, "the ramfs tree in the state is not a tree");
  return fs;
}

static void *fresh(void *arg, int *err) {
  p9_memfs *fs = p9_memfs_new();
  (void)err;
  p9_memfs_set_limit(fs, *(uint64_t *)arg / 3);
  return fs;
}

static void fs_free(void *fs) {
  p9_memfs_free(fs);
}

int main(int argc, char **argv) {
  struct p9h_opts o = {.service = "ramfs", .state_max = STATE_MAX_DEFAULT};
  struct p9h_backend b = {.kind = "ramfs",
                          .ops = p9_memfs_ops(),
                          .arg = &o.state_max,
                          .fresh = fresh,
                          .describe = describe,
                          .described = described,
                          .load = load,
                          .free = fs_free};
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
