/* p9state.c: the state area and the trees' protobuf-c form (see
 * p9state.h). */
#include "p9state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uksim/xalloc.h"

#define P9S_MAGIC 0x31687339707375ull /* "usp9sh1" */

/* The area's first page.  pub is (image length << 1 | half), or 0 before
 * the first image; half k starts at P9S_HDR_SIZE + k * slot_cap. */
struct hdr {
  uint64_t magic;
  uint64_t slot_cap;
  uint64_t pub;
};

uint64_t p9s_area_size(uint64_t slot_cap) {
  return P9S_HDR_SIZE + 2 * slot_cap;
}

void p9s_area_init(void *base, uint64_t slot_cap) {
  *(struct hdr *)base = (struct hdr){.magic = P9S_MAGIC, .slot_cap = slot_cap};
}

uint64_t p9s_slot_cap(const void *base) {
  return ((const struct hdr *)base)->slot_cap;
}

static uint8_t *half(const void *base, unsigned k) {
  const struct hdr *hd = base;
  return (uint8_t *)base + P9S_HDR_SIZE + k * hd->slot_cap;
}

int p9s_publish(void *base, const Uksim__P9s__State *st, size_t len) {
  struct hdr *hd = base;
  uint64_t pub = __atomic_load_n(&hd->pub, __ATOMIC_ACQUIRE);
  unsigned next = pub ? (unsigned)(pub & 1) ^ 1 : 0;
  if (len > hd->slot_cap)
    return -ENOSPC;
  uksim__p9s__state__pack(st, half(base, next));
  __atomic_store_n(&hd->pub, (uint64_t)len << 1 | next, __ATOMIC_RELEASE);
  return 0;
}

Uksim__P9s__State *p9s_unpack(const void *base, uint64_t size,
                              const char **why) {
  const struct hdr *hd = base;
  uint64_t pub, len;
  *why = "the state ICA holds no 9P server state";
  if (size < P9S_HDR_SIZE || hd->magic != P9S_MAGIC)
    return NULL;
  pub = __atomic_load_n(&hd->pub, __ATOMIC_ACQUIRE);
  len = pub >> 1;
  *why = "the state ICA's header is out of range";
  if (hd->slot_cap == 0 || hd->slot_cap > (size - P9S_HDR_SIZE) / 2 ||
      pub == 0 || len > hd->slot_cap)
    return NULL;
  *why = "the state image does not parse";
  return uksim__p9s__state__unpack(NULL, len, half(base, (unsigned)(pub & 1)));
}

void p9s_qid_to_pb(p9_qid qid, Uksim__P9s__Qid *q) {
  uksim__p9s__qid__init(q);
  q->type = qid.type;
  q->vers = qid.vers;
  q->path = qid.path;
}

p9_qid p9s_qid_from_pb(const Uksim__P9s__Qid *q) {
  return q ? (p9_qid){(uint8_t)q->type, q->vers, q->path} : (p9_qid){0};
}

/* --- memfs ------------------------------------------------------------ */

/* What describe allocated beside the image's borrowed strings and data. */
struct mdesc {
  p9_memfs_image img;
  Uksim__P9s__Memfs fs;
  Uksim__P9s__MemfsNode *node, **nodep;
  Uksim__P9s__Qid *qid;
};

static void node_to_pb(const p9_memfs_slot *s, Uksim__P9s__MemfsNode *p,
                       Uksim__P9s__Qid *q) {
  uksim__p9s__memfs_node__init(p);
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
  p9s_qid_to_pb(s->qid, q);
  p->qid = q;
  p->data = (ProtobufCBinaryData){s->len, (uint8_t *)(uintptr_t)s->data};
  p->atime = s->atime;
  p->mtime = s->mtime;
}

void p9s_memfs_describe(p9_memfs *fs, Uksim__P9s__State *st) {
  struct mdesc *d = xcalloc(1, sizeof(*d));
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

void p9s_memfs_described(Uksim__P9s__State *st) {
  struct mdesc *d =
      (struct mdesc *)((char *)st->memfs - offsetof(struct mdesc, fs));
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
  s->qid = p9s_qid_from_pb(p->qid);
  s->data = p->data.data;
  s->len = p->data.len;
  s->atime = p->atime;
  s->mtime = p->mtime;
}

p9_memfs *p9s_memfs_load(const Uksim__P9s__State *st, int *err, char *why,
                         size_t whylen) {
  const Uksim__P9s__Memfs *m = st->memfs;
  p9_memfs_image img = {0};
  p9_memfs *fs;
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

/* --- hostfs ----------------------------------------------------------- */

/* What describe allocated beside the image's borrowed paths. */
struct hdesc {
  p9_hostfs_image img;
  Uksim__P9s__Hostfs fs;
  Uksim__P9s__HostfsHandle *h, **hp;
};

void p9s_hostfs_describe(p9_hostfs *fs, Uksim__P9s__State *st) {
  struct hdesc *d = xcalloc(1, sizeof(*d));
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

void p9s_hostfs_described(Uksim__P9s__State *st) {
  struct hdesc *d =
      (struct hdesc *)((char *)st->hostfs - offsetof(struct hdesc, fs));
  p9_hostfs_image_free(&d->img);
  free(d->h);
  free(d->hp);
  free(d);
}

p9_hostfs *p9s_hostfs_load(const char *dir, const Uksim__P9s__State *st,
                           int *err, char *why, size_t whylen) {
  const Uksim__P9s__Hostfs *h = st->hostfs;
  p9_hostfs_image img = {0};
  p9_hostfs *fs;
  if (!h || h->n_handles > UINT32_MAX) {
    snprintf(why, whylen, "the state holds no hostfs handles");
    *err = -EINVAL;
    return NULL;
  }
  if (strcmp(h->dir, dir) != 0) {
    snprintf(why, whylen, "the state is of directory %.80s, not %.80s", h->dir,
             dir);
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
  fs = p9_hostfs_load(dir, &img, err);
  free(img.handle);
  if (!fs)
    snprintf(why, whylen, "the hostfs handles in the state: %s",
             strerror(-*err));
  return fs;
}
