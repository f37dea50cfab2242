/* Version-neutral process images: the extractor and the builder of one
 * kernel-data layout (kimage.h has the contract; kimage.proto the image).
 *
 * Built twice from this one source: KIMG_FN(x) is kimg_v1_x in layout 1
 * and kimg_v2_x in layout v2, so both builds link into one program (the
 * round-trip test) without sharing a struct.  Every field this file
 * touches goes through the layout's names (uk_psched() for the scheduling
 * half of a process), never through an encoding: states and kinds are
 * mapped to the image's own enums both ways.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kimage.h"
#include "kimage.pb-c.h"
#include "kimage_int.h"
#include "uksim/kdata.h"
#include "uksim/xalloc.h"

typedef Uksim__Kimage__Image Image;

/* What an extraction allocates, freed in one place after packing.  It
 * grows as it must: a torn region may name far more objects than a
 * consistent one (every ICA held by one process, every request queued),
 * and reading it must not fail for that (fuzz_kimage found the fixed
 * bound this replaced). */
struct arena {
  void **p;
  size_t n, cap;
};

static void *alloc(struct arena *a, size_t size) {
  void *p = xcalloc(1, size);
  if (a->n == a->cap) {
    a->cap = a->cap ? 2 * a->cap : 256;
    a->p = xreallocarray(a->p, a->cap, sizeof *a->p);
  }
  a->p[a->n++] = p;
  return p;
}

static void arena_free(struct arena *a) {
  for (size_t i = 0; i < a->n; i++)
    free(a->p[i]);
  free(a->p);
}

static void cannot(struct arena *a, Image *img, const char *why) {
  img->cannot_carry =
      img->cannot_carry ? img->cannot_carry : alloc(a, 16 * sizeof(char *));
  if (img->n_cannot_carry < 16)
    img->cannot_carry[img->n_cannot_carry++] = (char *)why;
}

/* Extraction ----------------------------------------------------------------
 */

/* The service whose live server process p is, or UK_NIL. */
static uint32_t served_by(const struct uk_kdata *kd, uint32_t p) {
  uint32_t s = p < UK_PROC_MAX ? kd->proc[p].svc : UK_NIL;
  return s < UK_SVC_MAX && kd->svc[s].state != UK_SVC_FREE &&
                 kd->svc[s].proc == p
             ? s
             : UK_NIL;
}

static void take_proc(struct arena *a, Image *img, const struct uk_kdata *kd,
                      uint32_t p) {
  const struct uk_proc *u = &kd->proc[p];
  const uk_psched_t *s = uk_psched_c(kd, p);
  Uksim__Kimage__Process *pr = alloc(a, sizeof *pr);
  uksim__kimage__process__init(pr);
  pr->slot = p;
  pr->gen = u->gen;
  pr->pid = u->pid;
  char *name = alloc(a, KABI_NAME_MAX + 1);
  memcpy(name, u->name, KABI_NAME_MAX); /* torn: never past the field */
  pr->name = name;
  pr->kind = u->kind == UK_PROC_SERVER ? UKSIM__KIMAGE__PROC_KIND__SERVER
                                       : UKSIM__KIMAGE__PROC_KIND__AP;
  pr->protect = (u->flags & UK_PROC_F_PROTECT) != 0;
  pr->attached = (u->flags & UK_PROC_F_ATTACHED) != 0;
  pr->calls = u->calls;
  pr->errors = u->errors;
  uint32_t sv = served_by(kd, p);
  pr->serves = sv == UK_NIL ? 0 : sv + 1;
  img->proc = pr;
  Uksim__Kimage__Call *c = alloc(a, sizeof *c);
  uksim__kimage__call__init(c);
  c->call_seq = s->call_seq;
  c->call_op = s->call_op;
  c->answered_seq = s->answered_seq;
  c->waiting = u->state == UK_PROC_WAITING;
  c->wait_op = s->wait_op;
  c->wait_seq = s->wait_seq;
  c->wait_req = s->wait_req;
  img->call = c;
  if (u->kind == UK_PROC_SERVER)
    cannot(a, img,
           "server: a server process does not move (its service, in "
           "the kernel part, restarts on the new kernel)");
}

static void add_ica(struct arena *a, Image *img, const struct uk_kdata *kd,
                    uint32_t i) {
  const struct uk_ica_ent *e = &kd->ica[i];
  Uksim__Kimage__Ica *c = alloc(a, sizeof *c);
  uksim__kimage__ica__init(c);
  c->id = KABI_ICA_ID(i, e->gen);
  c->kind = (Uksim__Kimage__IcaKind)e->kind; /* kabi's numbers: the ABI's */
  c->size = e->size;
  c->made_by_seq = e->made_by_seq;
  img->icas[img->n_icas++] = c;
}

static void take_icas(struct arena *a, Image *img, const struct uk_kdata *kd,
                      uint32_t p) {
  img->icas = alloc(a, (UK_PROC_ICAS_MAX + 2 * UK_PROC_RESULTS_MAX) *
                           sizeof *img->icas);
  for (uint32_t i = 0; i < UK_ICA_MAX; i++) {
    const struct uk_ica_ent *e = &kd->ica[i];
    if (e->state == UK_ICA_LIVE && e->holder_kind == UK_HOLD_PROC &&
        e->holder == p && img->n_icas < UK_PROC_ICAS_MAX)
      add_ica(a, img, kd, i);
  }
}

/* The ICAs a result carries (held by its request). */
static void take_req_icas(struct arena *a, Image *img,
                          const struct uk_kdata *kd, uint32_t ri) {
  uint32_t ids[2] = {kd->req[ri].ctl, kd->req[ri].data};
  for (int k = 0; k < 2; k++) {
    uint32_t i = KABI_ICA_INDEX(ids[k]);
    if (ids[k] != KABI_ICA_NONE && i < UK_ICA_MAX &&
        kd->ica[i].state == UK_ICA_LIVE &&
        kd->ica[i].holder_kind == UK_HOLD_REQUEST && kd->ica[i].holder == ri)
      add_ica(a, img, kd, i);
  }
}

static void take_results(struct arena *a, Image *img, const struct uk_kdata *kd,
                         uint32_t p) {
  const uk_psched_t *s = uk_psched_c(kd, p);
  uint32_t n =
      s->res_len < UK_PROC_RESULTS_MAX ? s->res_len : UK_PROC_RESULTS_MAX;
  img->results = alloc(a, (n + 1) * sizeof *img->results);
  uint32_t i = s->res_head;
  for (uint32_t k = 0; k < n; k++, i = kd->req[i].next) {
    if (i >= UK_REQ_MAX || kd->req[i].state != UK_REQ_ANSWERED ||
        kd->req[i].client != p) {
      cannot(a, img, "results: the result queue reads torn");
      return;
    }
    const struct uk_req *r = &kd->req[i];
    Uksim__Kimage__Result *o = alloc(a, sizeof *o);
    uksim__kimage__result__init(o);
    o->id = (r->gen << 16) | (i + 1);
    o->svc = r->svc;
    o->op = r->op;
    o->status = r->status;
    o->ctl = r->ctl;
    o->data = r->data;
    o->tag = r->tag;
    o->client_seq = r->client_seq;
    o->seqno = r->seqno;
    img->results[img->n_results++] = o;
    take_req_icas(a, img, kd, i);
  }
}

/* The live chan id names, or NULL. */
static const struct uk_chan *chan_of(const struct uk_kdata *kd, uint32_t id) {
  uint32_t i = UK_VFS_INDEX(id);
  if (id == UK_VFS_NONE || i >= UK_CHAN_MAX)
    return NULL;
  const struct uk_chan *c = &kd->vfs.chan[i];
  return c->state == UK_CHAN_LIVE && c->gen == UK_VFS_GEN(id) ? c : NULL;
}

static void add_pipe(struct arena *a, Image *img, const struct uk_kdata *kd,
                     uint32_t id) {
  uint32_t i = UK_VFS_INDEX(id);
  for (size_t k = 0; k < img->n_pipes; k++)
    if (img->pipes[k]->id == id)
      return;
  if (i >= UK_PIPE_MAX || kd->vfs.pipe[i].gen != UK_VFS_GEN(id))
    return;
  const struct uk_pipe *pp = &kd->vfs.pipe[i];
  Uksim__Kimage__Pipe *o = alloc(a, sizeof *o);
  uksim__kimage__pipe__init(o);
  o->id = id;
  ProtobufCBinaryData *end[2] = {&o->unread0, &o->unread1};
  for (int e = 0; e < 2; e++) {
    const struct uk_pring *r = &pp->ring[e];
    uint32_t len = r->len < UK_PIPE_BUF ? r->len : UK_PIPE_BUF;
    uint8_t *b = alloc(a, UK_PIPE_BUF);
    for (uint32_t k = 0; k < len; k++)
      b[k] = (uint8_t)r->buf[(r->head + k) % UK_PIPE_BUF];
    end[e]->data = b;
    end[e]->len = len;
  }
  o->hungup0 = pp->hungup[0] != 0;
  o->hungup1 = pp->hungup[1] != 0;
  img->pipes[img->n_pipes++] = o;
}

/* Adds chan id (once) and what it names that the image carries. */
static void add_chan(struct arena *a, Image *img, const struct uk_kdata *kd,
                     uint32_t id) {
  const struct uk_chan *c = chan_of(kd, id);
  if (c == NULL) {
    if (id != UK_VFS_NONE)
      cannot(a, img, "namespace: a chan id that names no live chan");
    return;
  }
  for (size_t k = 0; k < img->n_chans; k++)
    if (img->chans[k]->id == id)
      return;
  Uksim__Kimage__Chan *o = alloc(a, sizeof *o);
  Uksim__Kimage__Qid *q = alloc(a, sizeof *q);
  uksim__kimage__chan__init(o);
  uksim__kimage__qid__init(q);
  o->id = id;
  o->type = c->type;
  o->dev = c->dev;
  o->fid = c->fid;
  q->path = c->qid.path;
  q->vers = c->qid.vers;
  q->type = c->qid.type;
  o->qid = q;
  o->offset = c->offset;
  o->open = (c->flags & UK_CHAN_F_OPEN) != 0;
  o->mode = c->mode;
  char *path = alloc(a, UK_PATH_MAX + 1);
  memcpy(path, c->path, UK_PATH_MAX);
  o->path = path;
  img->chans[img->n_chans++] = o;
  if (c->type == '|')
    add_pipe(a, img, kd, c->dev);
  if (c->type == UK_CHAN_MNT && c->dev >= UK_SVC_MAX)
    cannot(a, img,
           "netlink: a file of an external 9P server (its "
           "connection is the old kernel's)");
}

static void take_mounts(struct arena *a, Image *img, const struct uk_kdata *kd,
                        const struct uk_nsgroup *g) {
  uint32_t n = g->nmount < UK_MOUNT_MAX ? g->nmount : UK_MOUNT_MAX;
  Uksim__Kimage__Namespace *ns = img->ns;
  ns->mounts = alloc(a, (n + 1) * sizeof *ns->mounts);
  for (uint32_t m = 0; m < n; m++) {
    const struct uk_mount *mt = &g->mount[m];
    Uksim__Kimage__Mount *o = alloc(a, sizeof *o);
    uksim__kimage__mount__init(o);
    o->from = mt->from;
    add_chan(a, img, kd, mt->from);
    uint32_t k = mt->n <= UK_UNION_MAX ? mt->n : UK_UNION_MAX;
    o->members = alloc(a, (k + 1) * sizeof *o->members);
    for (uint32_t j = 0; j < k; j++) {
      Uksim__Kimage__Member *b = alloc(a, sizeof *b);
      uksim__kimage__member__init(b);
      b->chan = mt->member[j];
      b->create = (mt->mflag[j] & UK_MCREATE) != 0;
      add_chan(a, img, kd, b->chan);
      o->members[o->n_members++] = b;
    }
    ns->mounts[ns->n_mounts++] = o;
  }
}

static void take_ns(struct arena *a, Image *img, const struct uk_kdata *kd,
                    uint32_t p) {
  const struct uk_vproc *v = &kd->vfs.vproc[p];
  size_t most = 2 + UK_FD_MAX + UK_MOUNT_MAX * (1 + UK_UNION_MAX);
  img->chans = alloc(a, most * sizeof *img->chans);
  img->pipes = alloc(a, most * sizeof *img->pipes);
  img->fds = alloc(a, UK_FD_MAX * sizeof *img->fds);
  if (!v->attached)
    return;
  uint32_t gi = UK_VFS_INDEX(v->ns);
  if (gi >= UK_NS_MAX || kd->vfs.ns[gi].state != UK_NS_LIVE ||
      kd->vfs.ns[gi].gen != UK_VFS_GEN(v->ns)) {
    cannot(a, img, "namespace: its group reads torn");
    return;
  }
  Uksim__Kimage__Namespace *ns = alloc(a, sizeof *ns);
  uksim__kimage__namespace__init(ns);
  ns->id = v->ns;
  ns->root = v->root;
  ns->cwd = v->cwd;
  img->ns = ns;
  add_chan(a, img, kd, v->root);
  add_chan(a, img, kd, v->cwd);
  take_mounts(a, img, kd, &kd->vfs.ns[gi]);
  for (uint32_t f = 0; f < UK_FD_MAX; f++) {
    if (v->fd[f] == UK_VFS_NONE)
      continue;
    Uksim__Kimage__Fd *o = alloc(a, sizeof *o);
    uksim__kimage__fd__init(o);
    o->fd = f;
    o->chan = v->fd[f];
    add_chan(a, img, kd, v->fd[f]);
    img->fds[img->n_fds++] = o;
  }
}

static void take_convs(struct arena *a, Image *img, const struct uk_kdata *kd,
                       uint32_t p) {
  img->convs = alloc(a, UK_CONV_MAX * sizeof *img->convs);
  for (uint32_t i = 0; i < UK_CONV_MAX; i++) {
    const struct uk_conv *c = &kd->vfs.nic.conv[i];
    if (c->state == UK_CONV_FREE || c->owner != p)
      continue;
    Uksim__Kimage__Conv *o = alloc(a, sizeof *o);
    uksim__kimage__conv__init(o);
    o->index = i;
    o->gen = c->gen;
    o->state = (Uksim__Kimage__ConvState)c->state; /* same names, see below */
    o->port = c->port;
    o->rport = c->rport;
    o->raddr = c->raddr;
    o->sock = c->sock;
    o->from = c->from;
    img->convs[img->n_convs++] = o;
  }
}

int KIMG_FN(extract)(const void *region, size_t len, uint32_t slot,
                     uint8_t **buf, size_t *n) {
  const struct uk_kdata *kd = region;
  if (!kimg__region_ok(kd, len))
    return -EPROTO;
  if (slot >= UK_PROC_MAX || (kd->proc[slot].state != UK_PROC_RUNNING &&
                              kd->proc[slot].state != UK_PROC_WAITING))
    return -ESRCH;
  struct arena *a = xcalloc(1, sizeof *a);
  Image img = UKSIM__KIMAGE__IMAGE__INIT;
  img.version = KIMG_VERSION;
  img.from_layout = UK_KDATA_LAYOUT;
  img.from_os = kd->hdr.os_id;
  take_proc(a, &img, kd, slot);
  take_icas(a, &img, kd, slot);
  take_results(a, &img, kd, slot);
  take_ns(a, &img, kd, slot);
  take_convs(a, &img, kd, slot);
  *n = uksim__kimage__image__get_packed_size(&img);
  *buf = xmalloc(*n ? *n : 1);
  uksim__kimage__image__pack(&img, *buf);
  arena_free(a);
  free(a);
  return 0;
}

/* Building ------------------------------------------------------------------
 * Two passes over the image: conflicts first (nothing written), then the
 * tables.  A chan, group, pipe or conversation already live with the
 * image's id was built from another image (a process sharing it): it is
 * shared, and the references this process holds are added. */

static bool ica_free_for(const struct uk_kdata *kd, uint32_t id) {
  uint32_t i = KABI_ICA_INDEX(id);
  return i < UK_ICA_MAX && kd->ica[i].state == UK_ICA_FREE;
}

static bool req_free_for(const struct uk_kdata *kd, uint32_t id) {
  uint32_t i = (id & 0xffffu) - 1;
  return i < UK_REQ_MAX && kd->req[i].state == UK_REQ_FREE;
}

/* A chan slot the image's chan may take: free, or the same chan. */
static bool chan_fits(const struct uk_kdata *kd, const Uksim__Kimage__Chan *c) {
  uint32_t i = UK_VFS_INDEX(c->id);
  if (i >= UK_CHAN_MAX)
    return false;
  const struct uk_chan *t = &kd->vfs.chan[i];
  return t->state == UK_CHAN_FREE ||
         (t->state == UK_CHAN_LIVE && t->gen == UK_VFS_GEN(c->id) &&
          t->type == c->type && t->dev == c->dev);
}

static int check(const struct uk_kdata *kd, const Image *img) {
  if (img->proc == NULL || img->call == NULL || img->proc->slot >= UK_PROC_MAX)
    return -EINVAL;
  if (kd->proc[img->proc->slot].state != UK_PROC_FREE)
    return -EEXIST;
  for (size_t k = 0; k < img->n_icas; k++)
    if (!ica_free_for(kd, img->icas[k]->id))
      return -EEXIST;
  for (size_t k = 0; k < img->n_results; k++)
    if (!req_free_for(kd, img->results[k]->id))
      return -EEXIST;
  for (size_t k = 0; k < img->n_chans; k++)
    if (!chan_fits(kd, img->chans[k]))
      return -EEXIST;
  for (size_t k = 0; k < img->n_fds; k++)
    if (img->fds[k]->fd >= UK_FD_MAX)
      return -EINVAL;
  for (size_t k = 0; k < img->n_pipes; k++) {
    uint32_t i = UK_VFS_INDEX(img->pipes[k]->id);
    if (i >= UK_PIPE_MAX || img->pipes[k]->unread0.len > UK_PIPE_BUF ||
        img->pipes[k]->unread1.len > UK_PIPE_BUF)
      return -EINVAL;
    uint16_t g = kd->vfs.pipe[i].gen;
    if (g != 0 && g != UK_VFS_GEN(img->pipes[k]->id))
      return -EEXIST;
  }
  for (size_t k = 0; k < img->n_convs; k++) {
    uint32_t i = img->convs[k]->index;
    if (i >= UK_CONV_MAX || kd->vfs.nic.conv[i].state != UK_CONV_FREE)
      return -EEXIST;
  }
  if (img->ns != NULL) {
    uint32_t g = UK_VFS_INDEX(img->ns->id);
    if (g >= UK_NS_MAX || img->ns->n_mounts > UK_MOUNT_MAX)
      return -EINVAL;
    if (kd->vfs.ns[g].state == UK_NS_LIVE &&
        kd->vfs.ns[g].gen != UK_VFS_GEN(img->ns->id))
      return -EEXIST;
  }
  return 0;
}

/* Server pr serves its service again if the kernel part built it and no
 * other process serves it. */
static void link_server(struct uk_kdata *kd, const Uksim__Kimage__Process *pr) {
  uint32_t s = pr->serves - 1;
  if (pr->serves == 0 || s >= UK_SVC_MAX || kd->svc[s].state == UK_SVC_FREE ||
      kd->svc[s].proc != UK_NIL)
    return;
  kd->svc[s].proc = pr->slot;
  kd->proc[pr->slot].svc = s;
}

static void put_proc(struct uk_kdata *kd, const Image *img) {
  const Uksim__Kimage__Process *pr = img->proc;
  const Uksim__Kimage__Call *c = img->call;
  struct uk_proc *u = &kd->proc[pr->slot];
  uk_psched_t *s = uk_psched(kd, pr->slot);
  memset(u, 0, sizeof *u);
  memset(s, 0, sizeof *s); /* u itself in layout 1 */
  u->gen = pr->gen;
  u->pid = pr->pid;
  strncpy(u->name, pr->name, KABI_NAME_MAX - 1);
  u->kind = pr->kind == UKSIM__KIMAGE__PROC_KIND__SERVER ? UK_PROC_SERVER
                                                         : UK_PROC_AP;
  u->flags = (pr->protect ? UK_PROC_F_PROTECT : 0) |
             (pr->attached ? UK_PROC_F_ATTACHED : 0);
  u->svc = UK_NIL;
  link_server(kd, pr);
  u->calls = pr->calls;
  u->errors = pr->errors;
  u->state = c->waiting ? UK_PROC_WAITING : UK_PROC_RUNNING;
#ifdef UK_KDATA_V2
  u->origin_os = img->from_os;
  u->image_version = img->version;
#endif
  s->call_seq = c->call_seq;
  s->call_op = c->call_op;
  s->answered_seq = c->answered_seq;
  s->wait_op = (uint16_t)c->wait_op;
  s->wait_seq = c->wait_seq;
  s->wait_req = c->wait_req;
  s->res_head = s->res_tail = UK_NIL;
}

/* The holder of ICA id: the request of a result that carries it, else the
 * process. */
static void ica_holder(const Image *img, uint32_t id, uint8_t *hk,
                       uint32_t *holder) {
  *hk = UK_HOLD_PROC;
  *holder = img->proc->slot;
  for (size_t k = 0; k < img->n_results; k++)
    if (img->results[k]->ctl == id || img->results[k]->data == id) {
      *hk = UK_HOLD_REQUEST;
      *holder = (img->results[k]->id & 0xffffu) - 1;
    }
}

static void put_icas(struct uk_kdata *kd, const Image *img) {
  uk_psched_t *s = uk_psched(kd, img->proc->slot);
  for (size_t k = 0; k < img->n_icas; k++) {
    const Uksim__Kimage__Ica *c = img->icas[k];
    struct uk_ica_ent *e = &kd->ica[KABI_ICA_INDEX(c->id)];
    e->gen = (uint16_t)KABI_ICA_GEN(c->id);
    e->state = UK_ICA_LIVE;
    e->kind = (uint8_t)c->kind;
    e->size = c->size;
    e->made_by_seq = c->made_by_seq;
    ica_holder(img, c->id, &e->holder_kind, &e->holder);
    if (e->holder_kind == UK_HOLD_PROC)
      s->icas_held++;
  }
}

static void put_results(struct uk_kdata *kd, const Image *img) {
  uk_psched_t *s = uk_psched(kd, img->proc->slot);
  for (size_t k = 0; k < img->n_results; k++) {
    const Uksim__Kimage__Result *o = img->results[k];
    uint32_t i = (o->id & 0xffffu) - 1;
    struct uk_req *r = &kd->req[i];
    memset(r, 0, sizeof *r);
    r->gen = o->id >> 16;
    r->state = UK_REQ_ANSWERED;
    r->next = UK_NIL;
    r->client = img->proc->slot;
    r->svc = o->svc;
    r->op = o->op;
    r->ctl = o->ctl;
    r->data = o->data;
    r->status = o->status;
    r->client_seq = o->client_seq;
    r->tag = o->tag;
    r->seqno = o->seqno;
    if (s->res_len == 0)
      s->res_head = i;
    else
      kd->req[s->res_tail].next = i;
    s->res_tail = i;
    s->res_len++;
    s->outstanding++; /* a result not yet collected is still outstanding */
  }
}

static const Uksim__Kimage__Chan *image_chan(const Image *img, uint32_t id) {
  for (size_t k = 0; k < img->n_chans; k++)
    if (img->chans[k]->id == id)
      return img->chans[k];
  return NULL;
}

/* One more reference to chan id, made from the image on the first. */
static uint32_t chan_ref(struct uk_kdata *kd, const Image *img, uint32_t id) {
  const Uksim__Kimage__Chan *o = image_chan(img, id);
  if (o == NULL)
    return UK_VFS_NONE;
  struct uk_chan *c = &kd->vfs.chan[UK_VFS_INDEX(id)];
  if (c->state == UK_CHAN_LIVE) {
    c->ref++;
    return id;
  }
  memset(c, 0, sizeof *c);
  c->gen = (uint16_t)UK_VFS_GEN(id);
  c->state = UK_CHAN_LIVE;
  c->type = (uint8_t)o->type;
  c->flags = o->open ? UK_CHAN_F_OPEN : 0;
  c->mode = (uint8_t)o->mode;
  c->ref = 1;
  c->dev = o->dev;
  c->fid = o->fid;
  if (o->qid != NULL) {
    c->qid.path = o->qid->path;
    c->qid.vers = o->qid->vers;
    c->qid.type = (uint8_t)o->qid->type;
  }
  c->offset = o->offset;
  strncpy(c->path, o->path, UK_PATH_MAX);
  return id;
}

static void put_group(struct uk_kdata *kd, const Image *img) {
  struct uk_nsgroup *g = &kd->vfs.ns[UK_VFS_INDEX(img->ns->id)];
  if (g->state == UK_NS_LIVE) { /* shared with a process built before */
    g->ref++;
    return;
  }
  memset(g, 0, sizeof *g);
  g->gen = (uint16_t)UK_VFS_GEN(img->ns->id);
  g->state = UK_NS_LIVE;
  g->ref = 1;
  for (size_t m = 0; m < img->ns->n_mounts; m++) {
    const Uksim__Kimage__Mount *o = img->ns->mounts[m];
    struct uk_mount *mt = &g->mount[g->nmount++];
    mt->from = chan_ref(kd, img, o->from);
    for (size_t j = 0; j < o->n_members && j < UK_UNION_MAX; j++) {
      mt->member[mt->n] = chan_ref(kd, img, o->members[j]->chan);
      mt->mflag[mt->n++] = o->members[j]->create ? UK_MCREATE : 0;
    }
  }
}

static void put_ns(struct uk_kdata *kd, const Image *img) {
  if (img->ns == NULL)
    return;
  struct uk_vproc *v = &kd->vfs.vproc[img->proc->slot];
  memset(v, 0, sizeof *v);
  put_group(kd, img);
  v->attached = 1;
  v->ns = img->ns->id;
  v->root = chan_ref(kd, img, img->ns->root);
  v->cwd = chan_ref(kd, img, img->ns->cwd);
  for (size_t k = 0; k < img->n_fds; k++)
    v->fd[img->fds[k]->fd] = chan_ref(kd, img, img->fds[k]->chan);
}

static void put_ring(struct uk_pring *r, const ProtobufCBinaryData *b) {
  r->head = 0;
  r->len = (uint32_t)b->len;
  memcpy(r->buf, b->data, b->len);
}

/* A pipe between two processes is in both their images, the same bytes
 * read from the same stopped region: the second build writes what the
 * first wrote.  (Telling "built already" by the generation would skip a
 * generation-0 pipe, which an empty region's slot seems to be.) */
static void put_pipes(struct uk_kdata *kd, const Image *img) {
  for (size_t k = 0; k < img->n_pipes; k++) {
    const Uksim__Kimage__Pipe *o = img->pipes[k];
    struct uk_pipe *p = &kd->vfs.pipe[UK_VFS_INDEX(o->id)];
    p->gen = (uint16_t)UK_VFS_GEN(o->id);
    put_ring(&p->ring[0], &o->unread0);
    put_ring(&p->ring[1], &o->unread1);
    p->hungup[0] = o->hungup0;
    p->hungup[1] = o->hungup1;
  }
}

static void put_convs(struct uk_kdata *kd, const Image *img) {
  for (size_t k = 0; k < img->n_convs; k++) {
    const Uksim__Kimage__Conv *o = img->convs[k];
    struct uk_conv *c = &kd->vfs.nic.conv[o->index];
    c->gen = (uint16_t)o->gen;
    c->state = (uint8_t)o->state;
    c->port = (uint16_t)o->port;
    c->rport = (uint16_t)o->rport;
    c->raddr = o->raddr;
    c->owner = img->proc->slot;
    c->sock = o->sock;
    c->from = o->from;
  }
}

int KIMG_FN(build)(void *region, size_t len, const uint8_t *buf, size_t n) {
  struct uk_kdata *kd = region;
  if (!kimg__region_ok(kd, len))
    return -EPROTO;
  if (n > KIMG_MAX_BYTES)
    return -EBADMSG;
  Image *img = uksim__kimage__image__unpack(NULL, n, buf);
  if (img == NULL)
    return -EBADMSG;
  int r = img->version > KIMG_VERSION ? -EPROTO
          : img->n_cannot_carry > 0   ? -EXDEV
                                      : check(kd, img);
  if (r == 0) {
    put_proc(kd, img);
    put_icas(kd, img);
    put_results(kd, img);
    put_ns(kd, img);
    put_pipes(kd, img);
    put_convs(kd, img);
    r = (int)img->proc->slot;
  }
  uksim__kimage__image__free_unpacked(img, NULL);
  return r;
}

size_t KIMG_FN(region_size)(void) {
  return sizeof(struct uk_kdata);
}

/* An empty region of this layout, as a freshly booted kernel has it
 * (kern_kdata_init's header and "no link" fields). */
void KIMG_FN(region_init)(void *region, uint32_t os_id) {
  struct uk_kdata *kd = region;
  memset(kd, 0, sizeof *kd);
  kd->hdr.magic = UK_KDATA_MAGIC;
  kd->hdr.layout = UK_KDATA_LAYOUT;
  kd->hdr.size = sizeof *kd;
  kd->hdr.os_id = os_id;
  for (int i = 0; i < UK_PROC_MAX; i++)
    kd->proc[i].svc = UK_NIL;
  for (int i = 0; i < UK_SVC_MAX; i++)
    kd->svc[i].proc = kd->svc[i].successor = UK_NIL;
}

/* The kernel-wide part -------------------------------------------------------
 * Services and the requests queued at them or in service (kimage.proto
 * Kernel).  A request of the kernel's own (UK_KCLIENT, the mount driver)
 * has no process to answer and is not carried. */

typedef Uksim__Kimage__Kernel Kernel;

static bool carried_req(const struct uk_req *r) {
  return (r->state == UK_REQ_QUEUED || r->state == UK_REQ_IN_SERVICE) &&
         r->client < UK_PROC_MAX && r->svc < UK_SVC_MAX;
}

static void take_queue(struct arena *a, Uksim__Kimage__Service *o,
                       const struct uk_kdata *kd, uint32_t s) {
  const struct uk_svc *sv = &kd->svc[s];
  o->queue = alloc(a, UK_QUEUE_MAX * sizeof *o->queue);
  uint32_t i = sv->q_head;
  while (o->n_queue < sv->q_len && o->n_queue < UK_QUEUE_MAX &&
         i < UK_REQ_MAX && kd->req[i].state == UK_REQ_QUEUED &&
         kd->req[i].svc == s) {
    o->queue[o->n_queue++] = (kd->req[i].gen << 16) | (i + 1);
    i = kd->req[i].next;
  }
}

static void take_service(struct arena *a, Kernel *kn, const struct uk_kdata *kd,
                         uint32_t s) {
  const struct uk_svc *sv = &kd->svc[s];
  Uksim__Kimage__Service *o = alloc(a, sizeof *o);
  uksim__kimage__service__init(o);
  o->index = s;
  o->gen = sv->gen;
  o->up = sv->state == UK_SVC_UP;
  char *name = alloc(a, KABI_NAME_MAX + 1);
  char *ops = alloc(a, KABI_OPNAMES_MAX + 1);
  memcpy(name, sv->name, KABI_NAME_MAX);
  memcpy(ops, sv->opnames, KABI_OPNAMES_MAX);
  o->name = name;
  o->opnames = ops;
  o->state_ica = sv->state_ica;
  o->version = sv->version;
  uint8_t *prog = alloc(a, UK_SVC_PROG_MAX);
  memcpy(prog, sv->prog, UK_SVC_PROG_MAX);
  o->prog.data = prog;
  o->prog.len = UK_SVC_PROG_MAX;
  o->restart = sv->restart != 0;
  o->restart_max = sv->restart_max;
  o->deadline_ms = sv->deadline_ms;
  o->heartbeat_ms = sv->heartbeat_ms;
  o->requests = sv->requests;
  o->replies = sv->replies;
  o->errors = sv->errors;
  take_queue(a, o, kd, s);
  kn->services[kn->n_services++] = o;
}

static void take_request(struct arena *a, Kernel *kn, const struct uk_kdata *kd,
                         uint32_t i) {
  const struct uk_req *r = &kd->req[i];
  Uksim__Kimage__Request *o = alloc(a, sizeof *o);
  uksim__kimage__request__init(o);
  o->id = (r->gen << 16) | (i + 1);
  o->state = r->state == UK_REQ_QUEUED ? UKSIM__KIMAGE__REQ_STATE__QUEUED
                                       : UKSIM__KIMAGE__REQ_STATE__IN_SERVICE;
  o->client = r->client;
  o->svc = r->svc;
  o->op = r->op;
  o->ctl = r->ctl;
  o->data = r->data;
  o->kept = r->kept;
  o->client_seq = r->client_seq;
  o->tag = r->tag;
  o->seqno = r->seqno;
  kn->requests[kn->n_requests++] = o;
}

/* The ICAs of the services (state), of the carried requests, and those
 * their servers hold (parked with the service). */
static void take_kernel_icas(struct arena *a, Kernel *kn,
                             const struct uk_kdata *kd) {
  Image tmp = UKSIM__KIMAGE__IMAGE__INIT;
  tmp.icas = alloc(a, UK_ICA_MAX * sizeof *tmp.icas);
  for (uint32_t i = 0; i < UK_ICA_MAX; i++) {
    const struct uk_ica_ent *e = &kd->ica[i];
    if (e->state != UK_ICA_LIVE)
      continue;
    bool svc = e->holder_kind == UK_HOLD_SVC && e->holder < UK_SVC_MAX &&
               kd->svc[e->holder].state != UK_SVC_FREE;
    bool req = e->holder_kind == UK_HOLD_REQUEST && e->holder < UK_REQ_MAX &&
               carried_req(&kd->req[e->holder]);
    uint32_t parked =
        e->holder_kind == UK_HOLD_PROC ? served_by(kd, e->holder) : UK_NIL;
    if (svc || req || parked != UK_NIL)
      add_ica(a, &tmp, kd, i);
    if (parked != UK_NIL)
      tmp.icas[tmp.n_icas - 1]->parked_svc = parked + 1;
  }
  kn->icas = tmp.icas;
  kn->n_icas = tmp.n_icas;
}

/* The /srv entries (#s), each with its names copied (torn: never past
 * their fields). */
static void take_srv(struct arena *a, Kernel *kn, const struct uk_kdata *kd) {
  Uksim__Kimage__SrvEntry *o = alloc(a, UK_SRV_MAX * sizeof *o);
  char(*name)[UK_SRV_NAME_MAX + 1] = alloc(a, UK_SRV_MAX * sizeof *name);
  char(*posted)[KABI_NAME_MAX + 1] = alloc(a, UK_SRV_MAX * sizeof *posted);
  kn->srv = alloc(a, UK_SRV_MAX * sizeof *kn->srv);
  for (uint32_t i = 0; i < UK_SRV_MAX; i++) {
    const struct uk_srvent *e = &kd->vfs.srv[i];
    if (e->state != UK_SRV_CREATED && e->state != UK_SRV_POSTED)
      continue;
    Uksim__Kimage__SrvEntry *x = &o[kn->n_srv];
    uksim__kimage__srv_entry__init(x);
    x->index = i;
    x->gen = e->gen;
    x->posted = e->state == UK_SRV_POSTED;
    x->svc = e->svc;
    x->svc_gen = e->svc_gen;
    memcpy(name[i], e->name, UK_SRV_NAME_MAX);
    memcpy(posted[i], e->posted, KABI_NAME_MAX);
    x->name = name[i];
    x->posted_name = posted[i];
    kn->srv[kn->n_srv++] = x;
  }
}

int KIMG_FN(extract_kernel)(const void *region, size_t len, uint8_t **buf,
                            size_t *n) {
  const struct uk_kdata *kd = region;
  if (!kimg__region_ok(kd, len))
    return -EPROTO;
  struct arena *a = xcalloc(1, sizeof *a);
  Kernel kn = UKSIM__KIMAGE__KERNEL__INIT;
  kn.version = KIMG_VERSION;
  kn.from_layout = UK_KDATA_LAYOUT;
  kn.from_os = kd->hdr.os_id;
  kn.services = alloc(a, UK_SVC_MAX * sizeof *kn.services);
  kn.requests = alloc(a, UK_REQ_MAX * sizeof *kn.requests);
  for (uint32_t s = 0; s < UK_SVC_MAX; s++)
    if (kd->svc[s].state != UK_SVC_FREE)
      take_service(a, &kn, kd, s);
  for (uint32_t i = 0; i < UK_REQ_MAX; i++)
    if (carried_req(&kd->req[i]))
      take_request(a, &kn, kd, i);
  take_kernel_icas(a, &kn, kd);
  take_srv(a, &kn, kd);
  *n = uksim__kimage__kernel__get_packed_size(&kn);
  *buf = xmalloc(*n ? *n : 1);
  uksim__kimage__kernel__pack(&kn, *buf);
  arena_free(a);
  free(a);
  return 0;
}

static int check_kernel(const struct uk_kdata *kd, const Kernel *kn) {
  for (size_t k = 0; k < kn->n_services; k++) {
    const Uksim__Kimage__Service *o = kn->services[k];
    if (o->index >= UK_SVC_MAX || o->n_queue > UK_QUEUE_MAX ||
        o->prog.len > UK_SVC_PROG_MAX)
      return -EINVAL;
    if (kd->svc[o->index].state != UK_SVC_FREE)
      return -EEXIST;
  }
  for (size_t k = 0; k < kn->n_requests; k++) {
    const Uksim__Kimage__Request *o = kn->requests[k];
    if (o->client >= UK_PROC_MAX || o->svc >= UK_SVC_MAX)
      return -EINVAL;
    if (!req_free_for(kd, o->id))
      return -EEXIST;
  }
  for (size_t k = 0; k < kn->n_icas; k++)
    if (!ica_free_for(kd, kn->icas[k]->id))
      return -EEXIST;
  for (size_t k = 0; k < kn->n_srv; k++) {
    if (kn->srv[k]->index >= UK_SRV_MAX)
      return -EINVAL;
    if (kd->vfs.srv[kn->srv[k]->index].state != UK_SRV_FREE)
      return -EEXIST;
  }
  return 0;
}

static void put_srv(struct uk_kdata *kd, const Uksim__Kimage__SrvEntry *o) {
  struct uk_srvent *e = &kd->vfs.srv[o->index];
  memset(e, 0, sizeof *e);
  e->gen = (uint16_t)o->gen;
  e->state = o->posted ? UK_SRV_POSTED : UK_SRV_CREATED;
  e->svc = o->svc;
  e->svc_gen = o->svc_gen;
  strncpy(e->name, o->name, UK_SRV_NAME_MAX);
  strncpy(e->posted, o->posted_name, KABI_NAME_MAX - 1);
}

/* Service o's queue again, of the carried requests, in its old order. */
static void put_queue(struct uk_kdata *kd, struct uk_svc *sv,
                      const Uksim__Kimage__Service *o) {
  sv->q_head = sv->q_tail = UK_NIL;
  for (size_t j = 0; j < o->n_queue; j++) {
    uint32_t i = (o->queue[j] & 0xffffu) - 1;
    if (i >= UK_REQ_MAX || kd->req[i].state != UK_REQ_QUEUED)
      continue; /* not among the carried requests */
    if (sv->q_len == 0)
      sv->q_head = i;
    else
      kd->req[sv->q_tail].next = i;
    sv->q_tail = i;
    sv->q_len++;
  }
}

static void put_service(struct uk_kdata *kd, const Uksim__Kimage__Service *o) {
  struct uk_svc *sv = &kd->svc[o->index];
  memset(sv, 0, sizeof *sv);
  sv->gen = o->gen;
  sv->state = o->up ? UK_SVC_UP : UK_SVC_DOWN;
  strncpy(sv->name, o->name, KABI_NAME_MAX - 1);
  strncpy(sv->opnames, o->opnames, KABI_OPNAMES_MAX - 1);
  sv->proc = sv->successor = UK_NIL;
  sv->state_ica = o->state_ica;
  sv->handoff_ica = KABI_ICA_NONE;
  sv->version = o->version;
  sv->phase = UK_PH_SERVING;
  memcpy(sv->prog, o->prog.data, o->prog.len);
  sv->restart = o->restart;
  sv->restart_max = o->restart_max;
  sv->deadline_ms = o->deadline_ms;
  sv->heartbeat_ms = o->heartbeat_ms;
  sv->requests = o->requests;
  sv->replies = o->replies;
  sv->errors = o->errors;
  put_queue(kd, sv, o);
}

static void put_request(struct uk_kdata *kd, const Uksim__Kimage__Request *o) {
  uint32_t i = (o->id & 0xffffu) - 1;
  struct uk_req *r = &kd->req[i];
  memset(r, 0, sizeof *r);
  r->gen = o->id >> 16;
  r->state = o->state == UKSIM__KIMAGE__REQ_STATE__QUEUED ? UK_REQ_QUEUED
                                                          : UK_REQ_IN_SERVICE;
  r->next = UK_NIL;
  r->client = o->client;
  r->svc = o->svc;
  r->op = o->op;
  r->ctl = o->ctl;
  r->data = o->data;
  r->kept = o->kept;
  r->client_seq = o->client_seq;
  r->tag = o->tag;
  r->seqno = o->seqno;
}

/* Kernel ICA c's holder: the request that carries it, else the service
 * whose state ICA it is. */
static void put_kernel_ica(struct uk_kdata *kd, const Kernel *kn,
                           const Uksim__Kimage__Ica *c) {
  struct uk_ica_ent *e = &kd->ica[KABI_ICA_INDEX(c->id)];
  e->gen = (uint16_t)KABI_ICA_GEN(c->id);
  e->state = UK_ICA_LIVE;
  e->kind = (uint8_t)c->kind;
  e->size = c->size;
  e->made_by_seq = c->made_by_seq;
  e->holder_kind = UK_HOLD_NONE;
  for (size_t k = 0; k < kn->n_requests; k++)
    if (kn->requests[k]->ctl == c->id || kn->requests[k]->data == c->id) {
      e->holder_kind = UK_HOLD_REQUEST;
      e->holder = (kn->requests[k]->id & 0xffffu) - 1;
    }
  for (size_t k = 0; k < kn->n_services; k++)
    if (kn->services[k]->state_ica == c->id) {
      e->holder_kind = UK_HOLD_SVC;
      e->holder = kn->services[k]->index;
    }
  if (c->parked_svc > 0 && c->parked_svc <= UK_SVC_MAX) {
    e->holder_kind = UK_HOLD_SVC;
    e->holder = c->parked_svc - 1;
  }
}

int KIMG_FN(build_kernel)(void *region, size_t len, const uint8_t *buf,
                          size_t n) {
  struct uk_kdata *kd = region;
  if (!kimg__region_ok(kd, len))
    return -EPROTO;
  if (n > KIMG_KERNEL_MAX_BYTES)
    return -EBADMSG;
  Kernel *kn = uksim__kimage__kernel__unpack(NULL, n, buf);
  if (kn == NULL)
    return -EBADMSG;
  int r = kn->version > KIMG_VERSION ? -EPROTO : check_kernel(kd, kn);
  if (r == 0) {
    for (size_t k = 0; k < kn->n_requests; k++)
      put_request(kd, kn->requests[k]);
    for (size_t k = 0; k < kn->n_services; k++)
      put_service(kd, kn->services[k]);
    for (size_t k = 0; k < kn->n_icas; k++)
      put_kernel_ica(kd, kn, kn->icas[k]);
    for (size_t k = 0; k < kn->n_srv; k++)
      put_srv(kd, kn->srv[k]);
  }
  uksim__kimage__kernel__free_unpacked(kn, NULL);
  return r;
}
