/* The mount driver #M (seed 002 §6.1-§6.2, Fig. 4): chan operations on a
 * mounted server become 9P2000 on its server link, here a uksim service
 * that speaks 9P over the ICA queue (uksim/p9ica.h).  A chan of a mounted
 * server is type UK_CHAN_MNT, dev = the service index (the paper's mchan)
 * and fid = the kernel's fid for that file on the server.
 *
 * The kernel is the server's client (client_pid 0): it sends requests from
 * control ICAs of its own (a pool, UK_HOLD_KERNEL) and a large read or write
 * sends the caller's data ICA along.  A request takes a server round trip,
 * and the kernel never waits, so a namespace call that needs 9P runs as a
 * replay (Plan 9's namec walks one name at a time; here each walk is one
 * exchange):
 *
 *   run the call  --needs exchange i, not yet asked-->  send it; the call
 *        ^                                              waits (deferred)
 *        |                                                   |
 *        +----------- the answer of exchange i arrives ------+
 *   run the call  --every exchange it needs is answered-->  answer the
 *                                                           caller; end
 *
 * Each run makes the same exchanges in the same order (what it asks
 * depends only on the tables and the answers so far), so exchange i of a
 * run is found by its position in the call's log (struct kmnt_call), and
 * its key (type, fid, name) is checked: a run that asks for something else
 * (another process changed the tables meanwhile) starts the call afresh.
 * A run that waits changes nothing in the tables: every vfs function is all
 * or nothing, and the chans it made are dropped on its error path.
 *
 * Fids.  A Twalk or Tattach of the log makes a fid that the log owns until
 * the call ends: then a live chan holding it keeps it, and any other is
 * clunked.  A chan's last reference owes a Tclunk (vfs_clunk_next); the
 * kernel sends it, except for a fid a pending log still owns (a chan of a
 * run that waited), which the log clunks at its end.
 *
 * Sessions.  One per link: Tversion once (state NEW -> VERSIONING ->
 * READY), then a Tattach per mount.  The server keeps the session's fids as
 * state across its replacement and restart (p9ica.h), so the kernel's fids
 * stay valid; a server that is gone fails the calls on its chans with -EIO
 * and never the kernel.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dev.h"
#include "kern.h"
#include "uksim/9p.h"
#include "uksim/p9ica.h"
#include "uksim/xalloc.h"
#include "kmnt_msg.h"
#include "vfs.h"

#define POOL_ICA_SIZE (P9ICA_CTL_MIN + 256)
#define TAG_CLUNK UINT64_MAX

/* The call running now: its kernel and process (the servant ops have only
 * the region; the kernel is one thread, as Plan 9's `up` is one per cpu). */
static struct kern *K;
static uint32_t up = UK_NIL;

/* The control ICA pool ----------------------------------------------------- */

static int pool_get(struct kern *k, uint32_t *slot) {
  for (uint32_t i = 0; i < k->mpool_n; i++)
    if (!k->mpool[i].busy) {
      k->mpool[i].busy = true;
      *slot = i;
      return 0;
    }
  if (k->mpool_n == KMNT_POOL_MAX)
    return -EAGAIN; /* every one in flight: wait for one */
  uint32_t id;
  void *base;
  int r = kern__ica_new(k, KABI_ICA_CONTROL, POOL_ICA_SIZE, &id, &base);
  if (r < 0)
    return r;
  struct kmnt_pool *e = &k->mpool[k->mpool_n];
  e->id = id;
  e->base = base;
  e->busy = true;
  *slot = k->mpool_n++;
  return 0;
}

static void pool_put(struct kern *k, uint32_t slot) {
  k->mpool[slot].busy = false;
  kern_ica_move(k->kd, k->mpool[slot].id, UK_HOLD_KERNEL, 0);
}

/* A net link's public half, in kernel data: its address and dialect. */
static struct uk_netlink *net_ent(struct kern *k, uint32_t dev) {
  return &k->kd->vfs.net[dev - UK_SVC_MAX];
}

void kern__mnt_halt(struct kern *k) {
  for (uint32_t i = UK_SVC_MAX; i < KMNT_LINK_MAX; i++)
    if (k->mlink[i].net != NULL) {
      p9_aclient_close(k->mlink[i].net, NULL, NULL);
      k->mlink[i].net = NULL;
      k->mlink[i].state = KMNT_NEW;
      net_ent(k, i)->up = 0;
    }
  for (uint32_t i = 0; i < k->mpool_n; i++) {
    munmap(k->mpool[i].base, POOL_ICA_SIZE);
    kern__ica_drop(k, k->mpool[i].id);
  }
  k->mpool_n = 0;
}

/* Sending ----------------------------------------------------------------- */

static bool is_net(uint32_t dev) {
  return dev >= UK_SVC_MAX && dev < KMNT_LINK_MAX;
}

static p9_dialect dialect_of(struct kern *k, uint32_t dev) {
  return is_net(dev) && k->mlink[dev].dialect == P9_2000L ? P9_2000L : P9_2000;
}

static bool dot_l(struct kern *k, uint32_t dev) {
  return dialect_of(k, dev) == P9_2000L;
}

static long encode(struct kern *k, uint32_t slot, p9_fcall *f, uint32_t dev) {
  return p9_encode(f, dialect_of(k, dev), k->mpool[slot].base, POOL_ICA_SIZE);
}

/* Queues the 9P message in pool slot `slot` (and data ICA `data`) to link
 * dev, with the request's tag. */
static int send_req(struct kern *k, uint32_t dev, uint32_t slot, uint32_t data,
                    uint64_t tag) {
  return kern__enqueue_kernel(k, dev, P9ICA_OP, k->mpool[slot].id, data, tag);
}

/* A Tclunk nobody waits for; its answer just frees the ICA. */
static void net_clunk(struct kern *k, uint32_t dev, uint32_t fid);

static void send_clunk(struct kern *k, uint32_t dev, uint32_t fid) {
  uint32_t slot;
  if (is_net(dev)) {
    net_clunk(k, dev, fid);
    return;
  }
  if (pool_get(k, &slot) < 0)
    return; /* the server keeps a fid: bounded by its own fid table */
  p9_fcall f = {.type = P9_TCLUNK, .tag = 0x7fff, .fid = fid};
  if (encode(k, slot, &f, dev) < 0 ||
      send_req(k, dev, slot, KABI_ICA_NONE, TAG_CLUNK))
    pool_put(k, slot);
}

/* The log of a call ---------------------------------------------------------
 */

static struct kmnt_call *log_of(struct kern *k, uint32_t p) {
  if (k->mcall[p] == NULL)
    k->mcall[p] = xcalloc(1, sizeof *k->mcall[p]);
  return k->mcall[p];
}

static bool link_ok(struct kern *k, uint32_t dev) {
  if (is_net(dev))
    return k->mlink[dev].state == KMNT_READY && k->mlink[dev].net != NULL;
  return dev < UK_SVC_MAX && k->kd->svc[dev].state == UK_SVC_UP;
}

/* Gives e's pool ICA back, unless its request is still out: then the
 * answer, finding no log waiting for it, gives it back (kern__mnt_done,
 * on_net_answer). */
static void ex_release(struct kern *k, struct kmnt_ex *e) {
  if (e->slot != UK_NIL && e->done)
    pool_put(k, e->slot);
  e->slot = UK_NIL;
}

static bool fid_live(struct kern *k, uint32_t dev, uint32_t fid) {
  for (uint32_t i = 0; i < UK_CHAN_MAX; i++) {
    const struct uk_chan *c = &k->kd->vfs.chan[i];
    if (c->state == UK_CHAN_LIVE && c->type == UK_CHAN_MNT && c->dev == dev &&
        c->fid == fid)
      return true;
  }
  return false;
}

/* The call is over: fids no live chan holds are clunked, ICAs go back. */
static void log_end(struct kern *k, uint32_t p) {
  struct kmnt_call *l = k->mcall[p];
  if (l == NULL)
    return;
  for (uint32_t i = 0; i < l->n; i++) {
    struct kmnt_ex *e = &l->ex[i];
    ex_release(k, e);
    if (e->owns && e->err == 0 && !fid_live(k, e->dev, e->newfid) &&
        link_ok(k, e->dev))
      send_clunk(k, e->dev, e->newfid);
  }
  l->n = 0;
  l->cursor = 0;
  l->gen++;
}

static bool owned_by_log(struct kern *k, uint32_t dev, uint32_t fid) {
  for (uint32_t p = 0; p < UK_PROC_MAX; p++) {
    const struct kmnt_call *l = k->mcall[p];
    for (uint32_t i = 0; l && i < l->n; i++)
      if (l->ex[i].owns && l->ex[i].dev == dev && l->ex[i].newfid == fid)
        return true;
  }
  return false;
}

/* Sends the clunks chans owe, but not for fids a pending log owns. */
void kern__mnt_clunks(struct kern *k) {
  uint32_t id;
  while ((id = vfs_clunk_next(k->kd)) != UK_VFS_NONE) {
    const struct uk_chan *c = &k->kd->vfs.chan[UK_VFS_INDEX(id)];
    if (c->fid != 0 && c->fid != P9_NOFID && !owned_by_log(k, c->dev, c->fid) &&
        !fid_live(k, c->dev, c->fid) && link_ok(k, c->dev))
      send_clunk(k, c->dev, c->fid);
    vfs_chan_clunked(k->kd, id);
  }
}

/* The exchange the running call asks for next: its answer (0, with *out),
 * or -EINPROGRESS after sending it, or -ERESTART when the log holds
 * another exchange at this place.  `want` has the request's key and
 * message (type, fid, newfid, name, offset ...). */
static int net_send(struct kern *k, uint32_t dev, p9_fcall *f, uint64_t tag);

static int exchange(struct kern *k, uint32_t dev, struct kmnt_ex *want,
                    p9_fcall *f, uint32_t data, uint32_t bulk,
                    struct kmnt_ex **out) {
  struct kmnt_call *l = log_of(k, up);
  if (l->cursor < l->n) {
    struct kmnt_ex *e = &l->ex[l->cursor++];
    if (e->type != want->type || e->dev != dev || e->fid != want->fid ||
        strcmp(e->name, want->name) != 0 || e->off != want->off)
      return -ERESTART;
    if (!e->done) {
      k->mblocked = true; /* even if the caller swallows the error */
      return -EINPROGRESS;
    }
    *out = e;
    return e->err;
  }
  if (l->n == KMNT_EX_MAX)
    return -ENAMETOOLONG; /* more 9P than one call may take */
  if (!link_ok(k, dev))
    return -EIO;
  struct kmnt_ex *e = &l->ex[l->n];
  *e = *want;
  e->dev = dev;
  e->slot = UK_NIL;
  e->done = false;
  int r = pool_get(k, &e->slot);
  if (r < 0)
    return r;
  /* The request's tag: the pool slot, the log's generation, the process
   * and the exchange, so a late answer finds its place or its slot. */
  uint64_t tag =
      (uint64_t)e->slot << 48 | (uint64_t)l->gen << 16 | up << 8 | l->n;
  if (is_net(dev)) {
    if ((r = net_send(k, dev, f, tag)) < 0) {
      pool_put(k, e->slot); /* never sent */
      return r;
    }
    e->data = KABI_ICA_NONE;
    e->flen = 0;
    l->n++;
    l->cursor++;
    k->mblocked = true;
    return -EINPROGRESS;
  }
  f->tag = (uint16_t)(up * KMNT_EX_MAX + l->n);
  long len = encode(k, e->slot, f, dev);
  if (len > 0 && bulk > 0) { /* a Twrite whose bytes ride in data: count[4]
                                ends the frame and says how many */
    uint8_t *c = (uint8_t *)k->mpool[e->slot].base + len - 4;
    c[0] = (uint8_t)bulk, c[1] = (uint8_t)(bulk >> 8);
    c[2] = (uint8_t)(bulk >> 16), c[3] = (uint8_t)(bulk >> 24);
  }
  if (len < 0 || (r = send_req(k, dev, e->slot, data, tag)) < 0) {
    pool_put(k, e->slot); /* never sent */
    return len < 0 ? -EIO : r;
  }
  e->data = data;
  e->resent = false;
  e->flen = 0;
  if ((f->type == P9_TWALK || f->type == P9_TREAD || f->type == P9_TSTAT) &&
      len <= (long)sizeof e->frame) {
    e->flen = (uint16_t)len;
    memcpy(e->frame, k->mpool[e->slot].base, (size_t)len);
  }
  l->n++;
  l->cursor++;
  k->mblocked = true;
  return -EINPROGRESS;
}

/* The answer of the exchange in its pool ICA: the fields the log keeps
 * (kmnt_msg.c reads it, trusting nothing). */
static void take_answer(struct kern *k, struct kmnt_ex *e, int status) {
  struct kmnt_reply a;
  e->done = true;
  if (status < 0) {
    e->err = -EIO;
    return;
  }
  kmnt__reply(e->type, e->name[0] != '\0', e->data != KABI_ICA_NONE,
              dialect_of(k, e->dev), k->mpool[e->slot].base, POOL_ICA_SIZE, &a);
  e->err = a.err;
  e->qid = a.qid;
  e->count = a.count;
}

static void resume(struct kern *k, uint32_t p);

/* A request of the kernel's was answered (kern__complete): status is the
 * request's (a transport error, -ECONNRESET, -ESRCH) and the ICAs are the
 * request's still. */
void kern__mnt_done(struct kern *k, uint32_t ri) {
  struct uk_req *r = &k->kd->req[ri];
  uint64_t tag = r->tag;
  uint32_t ctl = r->ctl, data = r->data;
  int status = r->status;
  kern_req_free(k->kd, ri);
  uint32_t slot = UK_NIL;
  for (uint32_t i = 0; i < k->mpool_n; i++)
    if (k->mpool[i].id == ctl)
      slot = i;
  uint32_t p = (uint32_t)(tag >> 8 & 0xff), n = (uint32_t)(tag & 0xff);
  struct kmnt_call *l = p < UK_PROC_MAX ? k->mcall[p] : NULL;
  bool mine = tag != TAG_CLUNK && l && (uint32_t)(tag >> 16) == l->gen &&
              n < l->n && l->ex[n].slot == slot && !l->ex[n].done;
  if (slot != UK_NIL)
    kern_ica_move(k->kd, ctl, UK_HOLD_KERNEL, 0);
  else
    kern__ica_drop(k, ctl); /* not ours (cannot happen): not kept */
  if (!mine) {
    if (slot != UK_NIL)
      pool_put(k, slot);
    if (data != KABI_ICA_NONE)
      kern__ica_drop(k, data); /* its process is gone */
    return;
  }
  struct kmnt_ex *e = &l->ex[n];
  if (status == -ECONNRESET && e->flen > 0 && !e->resent &&
      link_ok(k, e->dev)) {
    /* Its server failed holding it and is restarting: a walk, read or
     * stat means the same to the successor (which keeps the fids). */
    memcpy(k->mpool[slot].base, e->frame, e->flen);
    e->resent = true;
    if (send_req(k, e->dev, slot, data, tag) == 0)
      return;
  }
  if (data != KABI_ICA_NONE)
    kern_ica_move(k->kd, data, UK_HOLD_PROC, p);
  take_answer(k, e, status);
  if (e->type == P9_TVERSION)
    k->mlink[e->dev].state = e->err == 0 ? KMNT_READY : KMNT_NEW;
  resume(k, p);
}

/* A process's call ends or the process does: its log goes. */
void kern__mnt_forget(struct kern *k, uint32_t p) {
  if (k->mcall[p] == NULL)
    return;
  for (uint32_t i = 0; i < k->mcall[p]->n; i++)
    if (!k->mcall[p]->ex[i].done)
      k->mcall[p]->ex[i].slot = UK_NIL; /* in flight: freed at its answer */
  log_end(k, p);
}

/* Fids for chans ------------------------------------------------------------
 */

static uint32_t new_fid(struct kern *k, uint32_t dev) {
  if (k->mlink[dev].next_fid == 0 || k->mlink[dev].next_fid == P9_NOFID)
    k->mlink[dev].next_fid = 1;
  return k->mlink[dev].next_fid++;
}

/* A fid 9P lets us walk from: one never opened.  A directory's fid is
 * never opened on the server (its reads list a clone: kern__mnt_list), so
 * it stays walkable while its chan is open. */
static bool walkable(const struct uk_chan *c) {
  return c->fid != 0 && c->fid != P9_NOFID &&
         (!(c->flags & UK_CHAN_F_OPEN) || (c->qid.type & UK_QTDIR));
}

/* A fid for walking from file (dev, qid): a chan's that is not open, or one
 * a walk of this call made. */
static uint32_t walk_fid(struct kern *k, uint32_t dev, const struct uk_qid *q) {
  struct kmnt_call *l = log_of(k, up);
  for (uint32_t i = l->cursor; i-- > 0;)
    if (l->ex[i].owns && l->ex[i].done && l->ex[i].err == 0 &&
        l->ex[i].dev == dev && l->ex[i].qid.path == q->path)
      return l->ex[i].newfid;
  for (uint32_t i = 0; i < UK_CHAN_MAX; i++) {
    const struct uk_chan *c = &k->kd->vfs.chan[i];
    if (c->state == UK_CHAN_LIVE && c->type == UK_CHAN_MNT && c->dev == dev &&
        c->qid.path == q->path && walkable(c))
      return c->fid;
  }
  return 0;
}

/* Walks fid `from` to `name` ("" clones it) into a new fid. */
static int walk(struct kern *k, uint32_t dev, uint32_t from, const char *name,
                struct kmnt_ex **out) {
  struct kmnt_ex want = {.type = P9_TWALK, .fid = from, .owns = true};
  snprintf(want.name, sizeof want.name, "%s", name);
  struct kmnt_call *l = log_of(k, up);
  want.newfid = l->cursor < l->n ? l->ex[l->cursor].newfid : new_fid(k, dev);
  p9_fcall f = {.type = P9_TWALK,
                .fid = from,
                .newfid = want.newfid,
                .nwname = name[0] ? 1 : 0};
  f.wname[0] = p9_str_c(name);
  return exchange(k, dev, &want, &f, KABI_ICA_NONE, 0, out);
}

/* Gives chan c (type M, made by namec with fid 0) a fid of its own: the
 * one the last walk to its file made, else a clone of another chan's. */
int kern__mnt_fix(struct kern *k, uint32_t c) {
  struct uk_chan *ch = &k->kd->vfs.chan[UK_VFS_INDEX(c)];
  if (ch->type != UK_CHAN_MNT || ch->fid != 0)
    return 0;
  struct kmnt_call *l = log_of(k, up);
  for (uint32_t i = l->cursor; i-- > 0;) {
    struct kmnt_ex *e = &l->ex[i];
    if (e->owns && e->done && e->err == 0 && e->dev == ch->dev &&
        e->qid.path == ch->qid.path && !fid_live(k, e->dev, e->newfid)) {
      ch->fid = e->newfid;
      return 0;
    }
  }
  uint32_t from = walk_fid(k, ch->dev, &ch->qid);
  struct kmnt_ex *e;
  if (from == 0)
    return -EIO;
  int r = walk(k, ch->dev, from, "", &e);
  if (r == 0)
    ch->fid = e->newfid;
  return r;
}

/* The servant's ops -----------------------------------------------------------
 */

static int mwalk(const struct uk_kdata *kd, const struct uk_chan *dir,
                 const char *name, struct uk_qid *qid) {
  (void)kd;
  uint32_t from = dir->fid ? dir->fid : walk_fid(K, dir->dev, &dir->qid);
  struct kmnt_ex *e;
  if (from == 0)
    return -EIO;
  int r = walk(K, dir->dev, from, name, &e);
  if (r == 0)
    *qid = e->qid;
  return r;
}

/* 9P2000.L (an external server such as diod) says open modes and file
 * modes as Linux does. */
static uint32_t lflags(uint8_t mode) {
  uint32_t f = (mode & 3) == P9_OEXEC ? 0 : (mode & 3); /* O_RDONLY ... */
  return f | ((mode & P9_OTRUNC) ? 01000 : 0);          /* O_TRUNC */
}

static int mopen(struct uk_kdata *kd, struct uk_chan *c, uint8_t mode) {
  (void)kd;
  if ((c->qid.type & UK_QTDIR) && (mode & 3) == P9_OREAD && !(mode & ~3u)) {
    c->mode = mode; /* read through clones: the fid stays walkable */
    c->flags |= UK_CHAN_F_OPEN;
    return 0;
  }
  bool l = dot_l(K, c->dev);
  struct kmnt_ex want = {.type = l ? P9_TLOPEN : P9_TOPEN,
                         .fid = c->fid,
                         .off = mode},
                 *e;
  p9_fcall f = {
      .type = want.type, .fid = c->fid, .mode = mode, .flags = lflags(mode)};
  int r = exchange(K, c->dev, &want, &f, KABI_ICA_NONE, 0, &e);
  if (r < 0)
    return r;
  c->mode = mode;
  c->flags |= UK_CHAN_F_OPEN;
  c->qid = e->qid;
  return 0;
}

/* 9P2000.L makes a directory with Tmkdir, which leaves the fid where it
 * was: a walk to the new directory gives the chan its fid. */
static int mkdir_l(struct uk_chan *dir, const char *name, uint32_t perm) {
  struct kmnt_ex want = {.type = P9_TMKDIR, .fid = dir->fid}, *e;
  snprintf(want.name, sizeof want.name, "%s", name);
  p9_fcall f = {.type = P9_TMKDIR,
                .dfid = dir->fid,
                .name = p9_str_c(name),
                .lmode = perm & 0777,
                .gid = (uint32_t)getgid()};
  int r = exchange(K, dir->dev, &want, &f, KABI_ICA_NONE, 0, &e);
  if (r == 0)
    r = walk(K, dir->dev, dir->fid, name, &e);
  if (r < 0)
    return r;
  dir->fid = e->newfid;
  dir->qid = e->qid;
  dir->mode = P9_OREAD;
  dir->flags |= UK_CHAN_F_OPEN;
  return 0;
}

static int mcreate(struct uk_kdata *kd, struct uk_chan *dir, const char *name,
                   uint32_t perm, uint8_t mode) {
  (void)kd;
  if (dir->fid == 0) {
    uint32_t from = walk_fid(K, dir->dev, &dir->qid);
    struct kmnt_ex *w;
    int r = from ? walk(K, dir->dev, from, "", &w) : -EIO;
    if (r < 0)
      return r;
    dir->fid = w->newfid;
  }
  bool l = dot_l(K, dir->dev);
  if (l && (perm & P9_DMDIR))
    return mkdir_l(dir, name, perm);
  struct kmnt_ex want = {.type = l ? P9_TLCREATE : P9_TCREATE,
                         .fid = dir->fid,
                         .off = mode},
                 *e;
  snprintf(want.name, sizeof want.name, "%s", name);
  p9_fcall f = {.type = want.type,
                .fid = dir->fid,
                .perm = perm,
                .mode = mode,
                .name = p9_str_c(name),
                .flags = lflags(mode),
                .lmode = perm & 0777,
                .gid = (uint32_t)getgid()};
  int r = exchange(K, dir->dev, &want, &f, KABI_ICA_NONE, 0, &e);
  if (r < 0)
    return r;
  dir->qid = e->qid;
  dir->mode = mode;
  dir->flags |= UK_CHAN_F_OPEN;
  return 0;
}

/* The most one Tread or Twrite carries on a net link (its msize). */
static uint32_t net_cap(uint32_t n) {
  uint32_t max = P9ICA_MSIZE - P9_IOHDRSZ;
  return n < max ? n : max;
}

/* Tread of n bytes at off.  On an ICA link the bytes land in the call's
 * data ICA if it has one, else they are copied from the answer (n <=
 * KABI_NS_SMALL); on a net link they come in the answer and are copied
 * where the call wants them (a copy the network makes unavoidable). */
/* The data ICA a read or write on c takes along (none on a net link,
 * whose messages carry the bytes), and the count, cut to one message on a
 * net link. */
static uint32_t io_data(const struct uk_chan *c, uint32_t *n) {
  if (!is_net(c->dev))
    return K->mdata;
  *n = net_cap(*n);
  return KABI_ICA_NONE;
}

static long mread(struct uk_kdata *kd, const struct uk_chan *c, void *buf,
                  uint32_t n, uint64_t off) {
  (void)kd;
  uint32_t data = io_data(c, &n);
  struct kmnt_ex want = {.type = P9_TREAD, .fid = c->fid, .off = off}, *e;
  p9_fcall f = {.type = P9_TREAD, .fid = c->fid, .offset = off, .count = n};
  int r = exchange(K, c->dev, &want, &f, data, 0, &e);
  if (r < 0)
    return r;
  if (e->count > n)
    return -EIO;
  if (data == KABI_ICA_NONE)
    memcpy(buf, (uint8_t *)K->mpool[e->slot].base + P9_RREAD_DATA_OFF,
           e->count);
  return e->count;
}

static long mwrite(struct uk_kdata *kd, struct uk_chan *c, const void *buf,
                   uint32_t n, uint64_t off) {
  (void)kd;
  uint32_t data = io_data(c, &n);
  struct kmnt_ex want = {.type = P9_TWRITE, .fid = c->fid, .off = off}, *e;
  p9_fcall f = {.type = P9_TWRITE,
                .fid = c->fid,
                .offset = off,
                .count = n,
                .data = data == KABI_ICA_NONE ? buf : NULL};
  if (data != KABI_ICA_NONE)
    f.count = 0; /* the frame ends after count[4]: the bytes ride in data */
  int r =
      exchange(K, c->dev, &want, &f, data, data != KABI_ICA_NONE ? n : 0, &e);
  if (r < 0)
    return r;
  return e->count > n ? -EIO : (long)e->count;
}

static int mremove(struct uk_kdata *kd, struct uk_chan *c) {
  (void)kd;
  struct kmnt_ex want = {.type = P9_TREMOVE, .fid = c->fid}, *e;
  p9_fcall f = {.type = P9_TREMOVE, .fid = c->fid};
  int r = exchange(K, c->dev, &want, &f, KABI_ICA_NONE, 0, &e);
  if (r == 0)
    c->fid = P9_NOFID; /* Tremove clunked it: no Tclunk owed */
  return r;
}

/* The answer in pool slot e->slot, decoded. */
static int answer_of(struct kern *k, const struct kmnt_ex *e, p9_fcall *a) {
  const uint8_t *m = k->mpool[e->slot].base;
  uint32_t size =
      m[0] | m[1] << 8 | (uint32_t)m[2] << 16 | (uint32_t)m[3] << 24;
  if (size > POOL_ICA_SIZE || p9_decode(m, size, dialect_of(k, e->dev), a) < 0)
    return -EIO;
  return a->type == e->type + 1 ? 0 : -EIO;
}

/* The last name of a chan's path: what 9P2000.L's getattr does not say. */
static const char *last_name(const struct uk_chan *c) {
  const char *s = strrchr(c->path, '/');
  return s && s[1] ? s + 1 : c->path;
}

static void attr_dir(const p9_attr *a, const char *name, struct kabi_dir *d) {
  memset(d, 0, sizeof *d);
  d->qid_path = a->qid.path;
  d->qid_vers = a->qid.vers;
  d->qid_type = a->qid.type;
  d->dev_type = UK_CHAN_MNT;
  d->mode = ((a->mode & 0170000) == 0040000 ? P9_DMDIR : 0) | (a->mode & 0777);
  d->atime = (uint32_t)a->atime_sec;
  d->mtime = (uint32_t)a->mtime_sec;
  d->length = (a->mode & 0170000) == 0040000 ? 0 : a->size;
  snprintf(d->name, sizeof d->name, "%s", name);
  snprintf(d->uid, sizeof d->uid, "%u", a->uid);
  snprintf(d->gid, sizeof d->gid, "%u", a->gid);
}

/* Stat of chan c as a record (its fid, or a walk to its file). */
int kern__mnt_stat(struct kern *k, const struct uk_chan *c,
                   struct kabi_dir *d) {
  uint32_t fid = c->fid ? c->fid : walk_fid(k, c->dev, &c->qid);
  bool l = dot_l(k, c->dev);
  struct kmnt_ex want = {.type = l ? P9_TGETATTR : P9_TSTAT, .fid = fid}, *e;
  p9_fcall f = {
      .type = want.type, .fid = fid, .request_mask = P9_GETATTR_BASIC};
  p9_fcall a;
  int r = exchange(k, c->dev, &want, &f, KABI_ICA_NONE, 0, &e);
  if (r < 0 || (r = answer_of(k, e, &a)) < 0)
    return r;
  if (l)
    attr_dir(&a.attr, last_name(c), d);
  else
    kern__mnt_dir(&a.stat, d);
  return 0;
}

void kern__mnt_dir(const p9_stat *st, struct kabi_dir *d) {
  memset(d, 0, sizeof *d);
  d->qid_path = st->qid.path;
  d->qid_vers = st->qid.vers;
  d->qid_type = st->qid.type;
  d->dev_type = UK_CHAN_MNT;
  d->mode = st->mode;
  d->atime = st->atime;
  d->mtime = st->mtime;
  d->length = st->length == KMNT_LEN_UNKNOWN ? 0 : st->length;
  d->flags = st->length == KMNT_LEN_UNKNOWN ? KABI_DIR_PARTIAL : 0;
#define COPY(f, v)                                                             \
  memcpy(d->f, v.s, v.len < sizeof d->f - 1 ? v.len : sizeof d->f - 1)
  COPY(name, st->name);
  COPY(uid, st->uid);
  COPY(gid, st->gid);
  COPY(muid, st->muid);
#undef COPY
}

/* 9P2000.L's wstat: Tsetattr for length, mode and mtime, then a rename by
 * Trenameat in the parent (a walk to ".." finds it). */
static int wstat_l(struct kern *k, const struct uk_chan *c, uint32_t fid,
                   const struct kabi_dir *d, const char *name) {
  struct kmnt_ex *e;
  p9_fcall f = {.type = P9_TSETATTR, .fid = fid};
  if (d->length != KABI_DIR_KEEP64)
    f.attr.valid |= P9_SETATTR_SIZE, f.attr.size = d->length;
  if (d->mode != KABI_DIR_KEEP32)
    f.attr.valid |= P9_SETATTR_MODE, f.attr.mode = d->mode & 0777;
  if (d->mtime != KABI_DIR_KEEP32)
    f.attr.valid |= P9_SETATTR_MTIME | P9_SETATTR_MTIME_SET,
        f.attr.mtime_sec = d->mtime;
  struct kmnt_ex want = {.type = P9_TSETATTR, .fid = fid, .off = f.attr.valid};
  int r = f.attr.valid ? exchange(k, c->dev, &want, &f, 0, 0, &e) : 0;
  if (r < 0 || name[0] == '\0' || strcmp(name, last_name(c)) == 0)
    return r;
  if ((r = walk(k, c->dev, fid, "..", &e)) < 0)
    return r;
  uint32_t parent = e->newfid;
  struct kmnt_ex rn = {.type = P9_TRENAMEAT, .fid = parent};
  snprintf(rn.name, sizeof rn.name, "%s", name);
  p9_fcall t = {.type = P9_TRENAMEAT,
                .fid = parent,
                .dfid = parent,
                .name = p9_str_c(last_name(c)),
                .newname = p9_str_c(name)};
  return exchange(k, c->dev, &rn, &t, 0, 0, &e);
}

/* Twstat of chan c from record d (KABI_DIR_KEEP* fields stay). */
int kern__mnt_wstat(struct kern *k, const struct uk_chan *c,
                    const struct kabi_dir *d) {
  uint32_t fid = c->fid ? c->fid : walk_fid(k, c->dev, &c->qid);
  struct kmnt_ex want = {.type = P9_TWSTAT, .fid = fid}, *e;
  p9_fcall f = {.type = P9_TWSTAT, .fid = fid};
  char name[KABI_DIR_NAME_MAX + 1];
  memcpy(name, d->name, sizeof name);
  name[KABI_DIR_NAME_MAX] = '\0';
  if (dot_l(k, c->dev))
    return wstat_l(k, c, fid, d, name);
  p9_stat_null(&f.stat);
  f.stat.name = p9_str_c(name);
  f.stat.mode = d->mode;
  f.stat.mtime = d->mtime;
  f.stat.length = d->length;
  snprintf(want.name, sizeof want.name, "%s", name);
  return exchange(k, c->dev, &want, &f, KABI_ICA_NONE, 0, &e);
}

/* Lists the directory chan c (type M) from its start: fn gets each entry.
 * Opens a fid of its own; the log clunks it at the call's end. */
int kern__mnt_list(struct kern *k, const struct uk_chan *c,
                   int (*fn)(void *arg, const p9_stat *st), void *arg) {
  uint32_t from = walkable(c) ? c->fid : walk_fid(k, c->dev, &c->qid);
  bool l = dot_l(k, c->dev);
  struct kmnt_ex *w, *e;
  if (from == 0)
    return -EIO;
  int r = walk(k, c->dev, from, "", &w);
  if (r < 0)
    return r;
  uint32_t fid = w->newfid;
  struct kmnt_ex want = {
      .type = l ? P9_TLOPEN : P9_TOPEN, .fid = fid, .off = P9_OREAD};
  p9_fcall f = {.type = want.type, .fid = fid, .mode = P9_OREAD, .flags = 0};
  if ((r = exchange(k, c->dev, &want, &f, KABI_ICA_NONE, 0, &e)) < 0)
    return r;
  uint64_t off = 0;
  for (;;) {
    uint8_t type = l ? P9_TREADDIR : P9_TREAD;
    struct kmnt_ex rw = {.type = type, .fid = fid, .off = off};
    p9_fcall t = {.type = type,
                  .fid = fid,
                  .offset = off,
                  .count = P9ICA_MSIZE - P9_IOHDRSZ};
    if ((r = exchange(k, c->dev, &rw, &t, KABI_ICA_NONE, 0, &e)) < 0 ||
        e->count == 0)
      break;
    const uint8_t *b = (uint8_t *)k->mpool[e->slot].base + P9_RREAD_DATA_OFF;
    if ((r = kmnt__list_chunk(l, b, e->count, &off, fn, arg)) != 0)
      break;
  }
  return r < 0 ? r : 0;
}

static const struct vfs_dev mntdev = {
    .dc = UK_CHAN_MNT,
    .name = "mnt",
    .walk = mwalk,
    .open = mopen,
    .create = mcreate,
    .read = mread,
    .write = mwrite,
    .remove = mremove,
};

/* Net links ----------------------------------------------------------------
 * An external 9P server dialed by address ("tcp!HOST!PORT", "unix!PATH"):
 * net9p's asynchronous client on the kernel's own loop, 9P2000.L first
 * (diod speaks only that), 9P2000 if the server refuses it.  Its answers
 * are encoded again into a pool ICA, so the replay reads them as it reads
 * an ICA link's. */

_Static_assert(UK_PROC_MAX <= 256, "a 9P tag keeps the process slot in 8 bits");

static void resume_waiters(struct kern *k, uint32_t dev) {
  struct kbits w = k->mlink[dev].waiters;
  kbits_zero(&k->mlink[dev].waiters);
  for (uint32_t p = 0; p < UK_PROC_MAX; p++)
    if (kbits_has(&w, p))
      resume(k, p);
}

static int dial(struct kern *k, uint32_t dev);

/* An external exchange ended: the scheduler may step again (sched.c's
 * quiescent counts them). */
static void net_ended(struct kern *k) {
  if (k->mnet_pending > 0)
    k->mnet_pending--;
}

static void on_dialed(p9_aclient *c, int err, const p9_fcall *rx, void *arg) {
  struct kern *k = K;
  uint32_t dev = (uint32_t)(uintptr_t)arg;
  struct kmnt_link *ln = &k->mlink[dev];
  net_ended(k);
  if (err == -EPROTONOSUPPORT && !ln->tried_plain) {
    ln->tried_plain = true; /* not 9P2000.L: ask for Plan 9's 9P2000 */
    if (dial(k, dev) == 0)
      return;
  }
  ln->net = err == 0 ? c : NULL;
  ln->err = err;
  ln->state = err == 0 ? KMNT_READY : KMNT_NEW;
  ln->dialect =
      err == 0 && p9_str_eq(rx->version, "9P2000.L") ? P9_2000L : P9_2000;
  net_ent(k, dev)->up = err == 0;
  net_ent(k, dev)->dialect = ln->dialect == P9_2000L;
  kern__trace(k, "#M: %s %s (%s)", net_ent(k, dev)->addr,
              err ? "dial failed" : "dialed",
              err ? strerror(-err)
                  : (ln->dialect == P9_2000L ? "9P2000.L" : "9P2000"));
  resume_waiters(k, dev);
  sched_run(k);
}

static int dial(struct kern *k, uint32_t dev) {
  struct kmnt_link *ln = &k->mlink[dev];
  ln->state = KMNT_DIALING;
  int r = p9_aclient_connect(k->loop, net_ent(k, dev)->addr, P9ICA_MSIZE,
                             ln->tried_plain ? "9P2000" : "9P2000.L", on_dialed,
                             (void *)(uintptr_t)dev);
  if (r < 0)
    ln->state = KMNT_NEW;
  else
    k->mnet_pending++;
  return r;
}

/* The net link to addr, dialing it if need be: 0 and *dev when it is up,
 * -EINPROGRESS while it dials (the call resumes when it is done), or why
 * the dial failed (once: the next mount dials again). */
static int net_link(struct kern *k, const char *addr, uint32_t *dev) {
  int free = -1;
  for (uint32_t i = UK_SVC_MAX; i < KMNT_LINK_MAX; i++) {
    struct kmnt_link *ln = &k->mlink[i];
    char *at = net_ent(k, i)->addr;
    if (at[0] == '\0' && free < 0)
      free = (int)i;
    if (strcmp(at, addr) != 0)
      continue;
    *dev = i;
    if (ln->state == KMNT_READY)
      return 0;
    if (ln->state == KMNT_DIALING) {
      kbits_set(&ln->waiters, up);
      k->mblocked = true;
      return -EINPROGRESS;
    }
    if (ln->err < 0) { /* this call's dial failed: say why, once */
      int e = ln->err;
      at[0] = '\0';
      ln->err = 0;
      return e;
    }
  }
  if (free < 0)
    return -ENOSPC;
  struct uk_netlink *ne = net_ent(k, (uint32_t)free);
  if (strlen(addr) >= sizeof ne->addr)
    return -ENAMETOOLONG;
  struct kmnt_link *ln = &k->mlink[free];
  *ln = (struct kmnt_link){.next_fid = 1, .tried_plain = false};
  *ne = (struct uk_netlink){.up = 0};
  snprintf(ne->addr, sizeof ne->addr, "%s", addr);
  int r = dial(k, (uint32_t)free);
  if (r < 0) {
    ne->addr[0] = '\0';
    return r;
  }
  kbits_set(&ln->waiters, up);
  k->mblocked = true;
  return -EINPROGRESS;
}

static void take_net_answer(struct kern *k, int err, const p9_fcall *rx,
                            uint64_t tag) {
  uint32_t p = (uint32_t)(tag >> 8 & 0xff), n = (uint32_t)(tag & 0xff);
  struct kmnt_call *l = p < UK_PROC_MAX ? k->mcall[p] : NULL;
  if (tag == TAG_CLUNK)
    return;
  if (!l || (uint32_t)(tag >> 16) != l->gen || n >= l->n || l->ex[n].done) {
    uint32_t slot = (uint32_t)(tag >> 48);
    if (slot < k->mpool_n && k->mpool[slot].busy)
      pool_put(k, slot); /* its call ended meanwhile (kern__mnt_forget) */
    return;
  }
  struct kmnt_ex *e = &l->ex[n];
  if (err == 0 && p9_encode(rx, dialect_of(k, e->dev), k->mpool[e->slot].base,
                            POOL_ICA_SIZE) < 0)
    err = -EIO;
  if (err < 0) {
    e->done = true;
    e->err = err == -ECONNRESET || err == -ECANCELED ? -EIO : err;
  } else {
    take_answer(k, e, 0);
  }
  resume(k, p);
}

static void on_net_answer(p9_aclient *c, int err, const p9_fcall *rx,
                          void *arg) {
  struct kern *k = K;
  (void)c;
  net_ended(k);
  take_net_answer(k, err, rx, (uint64_t)(uintptr_t)arg);
  sched_run(k); /* the scheduler may be waiting for nothing but this */
}

static int net_send(struct kern *k, uint32_t dev, p9_fcall *f, uint64_t tag) {
  if (!link_ok(k, dev))
    return -EIO;
  int r = p9_aclient_rpc(k->mlink[dev].net, f, on_net_answer,
                         (void *)(uintptr_t)tag);
  k->mnet_pending += r == 0;
  return r;
}

static void net_clunk(struct kern *k, uint32_t dev, uint32_t fid) {
  p9_fcall f = {.type = P9_TCLUNK, .fid = fid};
  if (link_ok(k, dev) && p9_aclient_rpc(k->mlink[dev].net, &f, on_net_answer,
                                        (void *)(uintptr_t)TAG_CLUNK) == 0)
    k->mnet_pending++;
}

/* Mounting ------------------------------------------------------------------
 */

/* Tversion once per ICA link (a second mount waits for the first's); a
 * net link's client asked for it when it dialed. */
static int version(struct kern *k, uint32_t dev) {
  struct kmnt_link *ln = &k->mlink[dev];
  struct kmnt_call *l = log_of(k, up);
  bool mine = l->cursor < l->n && l->ex[l->cursor].type == P9_TVERSION;
  if (is_net(dev) || (!mine && ln->state == KMNT_READY))
    return 0;
  if (!mine && ln->state == KMNT_VERSIONING)
    return -EAGAIN;
  struct kmnt_ex want = {.type = P9_TVERSION}, *e;
  p9_fcall f = {
      .type = P9_TVERSION, .msize = P9ICA_MSIZE, .version = p9_str_c("9P2000")};
  int r = exchange(k, dev, &want, &f, KABI_ICA_NONE, 0, &e);
  if (r == -EINPROGRESS && !mine)
    ln->state = KMNT_VERSIONING; /* kern__mnt_done settles it */
  return r;
}

/* Keyed import (issue 16).  A net link's server that was started with a
 * key (`uksim exportfs --key`) attaches only through an afid whose
 * challenge was answered under that key (net9p/auth.c).  With the node's
 * key (the machine's --node-key, kern->mkey) the kernel proves it before
 * each Tattach on a net link, as three more exchanges of the call:
 *
 *   Tauth(afid, uname, aname) --Rerror "no authentication required"-->
 *        attach with NOFID (an exporter without a key)
 *     --Rauth--> Tread(afid) --Rread(challenge)-->
 *        Twrite(afid, mac(key, challenge, uname, aname)) --Rwrite-->
 *        attach with afid; the log owns afid and clunks it at the call's end
 *     --Rerror "authentication failed" on the Twrite--> -EACCES (wrong key)
 *
 * Without a key the kernel asks nothing, and a keyed exporter answers the
 * Tattach with "authentication required": -EACCES as well. */
static const char NET_UNAME[] = "root";
_Static_assert(sizeof((struct kern *)0)->mkey == P9_KEYLEN, "a 9P key");

static int auth_open(struct kern *k, uint32_t dev, const char *aname,
                     uint32_t *afid) {
  struct kmnt_call *l = log_of(k, up);
  struct kmnt_ex want = {.type = P9_TAUTH, .fid = P9_NOFID, .owns = true};
  struct kmnt_ex *e = NULL;
  snprintf(want.name, sizeof want.name, "%s", aname);
  want.newfid = l->cursor < l->n ? l->ex[l->cursor].newfid : new_fid(k, dev);
  p9_fcall f = {.type = P9_TAUTH,
                .afid = want.newfid,
                .uname = p9_str_c(NET_UNAME),
                .aname = p9_str_c(aname),
                .n_uname = (uint32_t)getuid()};
  int r = exchange(k, dev, &want, &f, KABI_ICA_NONE, 0, &e);
  *afid = e != NULL && r == 0 ? e->newfid : P9_NOFID;
  return r;
}

/* Reads the afid's challenge and writes back its MAC under the node key. */
static int auth_prove(struct kern *k, uint32_t dev, uint32_t afid,
                      const char *aname) {
  uint8_t chal[P9_CHALLEN], mac[P9_MACLEN];
  struct kmnt_ex rd = {.type = P9_TREAD, .fid = afid}, *e = NULL;
  p9_fcall f = {.type = P9_TREAD, .fid = afid, .count = P9_CHALLEN};
  int r = exchange(k, dev, &rd, &f, KABI_ICA_NONE, 0, &e);
  if (r < 0)
    return r;
  if (e->count != P9_CHALLEN)
    return -EACCES; /* not the challenge net9p's servers give */
  memcpy(chal, (uint8_t *)k->mpool[e->slot].base + P9_RREAD_DATA_OFF,
         P9_CHALLEN);
  p9_auth_mac(k->mkey, chal, p9_str_c(NET_UNAME), p9_str_c(aname), mac);
  struct kmnt_ex wr = {.type = P9_TWRITE, .fid = afid};
  f = (p9_fcall){
      .type = P9_TWRITE, .fid = afid, .count = P9_MACLEN, .data = mac};
  return exchange(k, dev, &wr, &f, KABI_ICA_NONE, 0, &e);
}

/* The afid a Tattach on dev names: P9_NOFID when none is needed or the
 * kernel has no key, or -errno (-EINPROGRESS while the exchanges run). */
static int net_auth(struct kern *k, uint32_t dev, const char *aname,
                    uint32_t *afid) {
  *afid = P9_NOFID;
  if (!is_net(dev) || !k->mkeyed)
    return 0;
  int r = auth_open(k, dev, aname, afid);
  if (r == -ENOENT) { /* "no authentication required" */
    *afid = P9_NOFID;
    return 0;
  }
  if (r < 0)
    return r;
  r = auth_prove(k, dev, *afid, aname);
  if (r != -EINPROGRESS)
    kern__trace(k, "#M: %s: %s", net_ent(k, dev)->addr,
                r == 0 ? "the node key proved" : "the node key refused");
  return r;
}

static int attach(struct kern *k, uint32_t dev, const char *aname,
                  uint32_t *c) {
  struct kmnt_call *l = log_of(k, up);
  struct kmnt_ex want = {.type = P9_TATTACH, .fid = P9_NOFID, .owns = true}, *e;
  uint32_t afid;
  int r = net_auth(k, dev, aname, &afid);
  if (r < 0)
    return r;
  snprintf(want.name, sizeof want.name, "%s", aname);
  want.newfid = l->cursor < l->n ? l->ex[l->cursor].newfid : new_fid(k, dev);
  /* 9P2000.L names the user by number too (diod maps it to its users). */
  p9_fcall f = {.type = P9_TATTACH,
                .fid = want.newfid,
                .afid = afid,
                .uname =
                    p9_str_c(is_net(dev) ? NET_UNAME : k->kd->proc[up].name),
                .aname = p9_str_c(aname),
                .n_uname = (uint32_t)getuid()};
  r = exchange(k, dev, &want, &f, KABI_ICA_NONE, 0, &e);
  if (r < 0)
    return r;
  if (!(e->qid.type & UK_QTDIR))
    return -ENOTDIR;
  if ((r = vfs_chan_new(k->kd, UK_CHAN_MNT, dev, &e->qid, c)) < 0)
    return r;
  k->kd->vfs.chan[UK_VFS_INDEX(*c)].fid = e->newfid;
  return 0;
}

/* The link to mount: the service of /srv entry fd, or (fd < 0) the server
 * at the address spec starts with ("tcp!HOST!PORT[ ANAME]"), *aname then
 * what follows it. */
static int link_for(struct kern *k, uint32_t p, int fd, char *spec,
                    const char **aname, uint32_t *dev) {
  if (fd < 0) {
    char *sp = strchr(spec, ' ');
    *aname = sp ? sp + 1 : "";
    if (sp)
      *sp = '\0';
    return net_link(k, spec, dev);
  }
  uint32_t link = vfs_fd_lookup(k->kd, p, fd);
  if (link == UK_VFS_NONE)
    return -EBADF;
  int r = kern__srv_lookup(k, link, dev);
  if (r < 0)
    return r; /* not a server link */
  return link_ok(k, *dev) ? 0 : -ECONNREFUSED;
}

long kern__mnt_mount(struct kern *k, uint32_t p, int fd, const char *old,
                     uint32_t oldlen, const char *aname, uint32_t flags) {
  char spec[KABI_DIR_NAME_MAX + 1];
  uint32_t dev, root, at;
  snprintf(spec, sizeof spec, "%s", aname);
  int r = link_for(k, p, fd, spec, &aname, &dev);
  if (r < 0 || (r = version(k, dev)) < 0 ||
      (r = attach(k, dev, fd < 0 ? aname : spec, &root)) < 0)
    return r;
  if ((r = vfs_namec(k->kd, p, old, oldlen, &at)) == 0) {
    r = vfs_mount(k->kd, k->kd->vfs.vproc[p].ns, root, at, flags);
    vfs_chan_unref(k->kd, at);
  }
  vfs_chan_unref(k->kd, root);
  return r < 0 ? r : 0;
}

/* Running calls
 * ----------------------------------------------------------------- */

void kern__vfs_up(struct kern *k, uint32_t p) {
  K = k;
  up = p;
  kern__host_up(k, p);
  if (p != UK_NIL)
    log_of(k, p)->cursor = 0;
  k->mblocked = false;
}

static void resume(struct kern *k, uint32_t p) {
  kern__ns_resume(k, p);
}

int kern__mnt_init(struct kern *k) {
  K = k;
  for (uint32_t i = 0; i < KMNT_LINK_MAX; i++)
    k->mlink[i] = (struct kmnt_link){.state = KMNT_NEW, .next_fid = 1};
  int r = vfs_dev_add(&mntdev);
  return r < 0 ? r : 0;
}

/* Ends the call's log if it did not wait: its fids are settled. */
void kern__mnt_call_over(struct kern *k, uint32_t p) {
  kern__mnt_clunks(k); /* first: the chans of runs that waited hold fids
                          the log owns, and some live chan may hold now */
  log_end(k, p);
}
