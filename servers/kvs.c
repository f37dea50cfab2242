/* The kvs server: service "kvs" (or --service NAME), protocol in
 * uksim/kvs.h.  Built twice
 * from this file: kvs (version 1) and kvs2 (version 2, whose state layout
 * adds a counter per key; -DKVS_VERSION=2).
 *
 * The store (kvs_state.h) survives replacement and crashes by one of three
 * methods (--state):
 *   single  the whole store in one state ICA (method 2 of seed 000 §4.2.3).
 *           A successor of the same version maps it and checks the header
 *           and the index, whose slots carry each record's size: O(index),
 *           and no record is read until a request needs it.
 *   chain   a master state ICA lists the ICAs holding the store (method 1,
 *           Fig. 5); the successor attaches the index's ICA, and each
 *           other one by id when a request first needs it.
 * That lazy restore is for extension-time replacement, where the old
 * server handed the store over with nothing in progress.  A restart after
 * a fault attaches everything and checks every record first; a record a
 * lazy successor later finds bad makes it panic, and the restart that
 * follows refuses or repairs nothing silently.
 *   copy    the store on the heap (the baseline).  Replacement serializes
 *           the whole store with protobuf-c into a hand-off ICA, O(bytes).
 *           A crash loses everything since the last snapshot (--snapshot
 *           N: one every N updates; by default none, so a restarted copy
 *           server starts empty).
 * For single and chain every update is crash-consistent (kvs_state.c), so
 * a restart after a crash at any instruction finds the store as it was
 * before or after the request in progress.
 *
 * Versions: when the successor's version differs, the replacement hook
 * exports the store in the version-neutral form (kvs_neutral.h) into a
 * hand-off ICA and the successor imports it: v1 -> v2 starts every counter
 * at 1.  A successor refuses a state a newer version wrote, with
 * srv_panic("state version 2 is newer than this server's 1"): v2 -> v1
 * would drop the counters.  A successor given a store image of another
 * layout (the hook failed) refuses it too ("state version N not
 * supported").  Either way the replacement fails and the old server keeps
 * serving.
 *
 * Caching (--cache N, seed 000 §4.1.2): puts are held unanswered, each
 * recorded in the state and kept (srv_keep), and applied and answered as a
 * batch when N are held, when any other request arrives, or when the queue
 * runs dry.  The last needs a timer the server library does not have, so
 * the server sends itself a flush request before it would wait holding
 * puts: it arrives after everything queued before it.  A successor finds
 * the held puts in the state, attaches their ICAs and answers them; each
 * is applied exactly once (kst_was_applied).
 *
 * Every request comes from an untrusted client: a missing or short control
 * ICA, a bad key or value length, or an unknown op is answered with an
 * error (-EINVAL, -EFBIG, -ENOSYS), never a crash.  Field values are copied
 * out of the control ICA once, before they are checked.
 */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kvs_neutral.h"
#include "kvs_state.h"
#include "uksim/ap.h"
#include "uksim/kvs.h"
#include "uksim/num.h"
#include "uksim/server.h"
#include "uksim/xalloc.h"

#ifndef KVS_VERSION
#define KVS_VERSION 1
#endif

#define KVS_HELD 1 /* handle(): the request is held, not answered yet */
#define KVS_STATE_SIZE_DEFAULT (256ull << 20)
#define KVS_SEG_SIZE_DEFAULT (1ull << 20)

enum method { M_SINGLE, M_CHAIN, M_COPY };

struct kvs_opts {
  enum method method;
  uint64_t state_size;         /* single: the ICA; chain, copy: all segments */
  uint64_t seg_size;           /* chain: a shared segment */
  uint32_t cache;              /* puts held at most; 0: none */
  uint64_t snapshot;           /* copy: updates between snapshots; 0: none */
  char service[KABI_NAME_MAX]; /* the service it registers */
};

/* A put held by the caching loop, its ICAs attached. */
struct held {
  srv_req req;
  uint64_t seq;
};

struct kvs {
  struct kvs_opts o;
  struct kst store;
  struct kst_segops ops;
  uint32_t heap_ids; /* names of heap segments */
  /* Succession. */
  bool committed; /* a first request arrived: the service is ours */
  bool replacing; /* taking over from a live server, not after a fault */
  struct kst old; /* the store image we converted from, if any */
  bool has_old;
  bool no_state_calls; /* the kernel answered -ENOSYS: say it once */
  /* Caching. */
  struct held held[KST_HELD_MAX];
  uint32_t nheld;
  uint32_t svc; /* our own service, for the flush we send ourselves */
  uk_ica tick;  /* that flush's control ICA */
  uint32_t tick_req;
  bool tick_out;    /* sent and not yet answered */
  uint64_t updates; /* copy: since the last snapshot */
};

/* Exits through srv_panic: the replacement fails and the old server goes
 * on, or a restart gives up on this state. */
static _Noreturn void refuse(const char *why) {
  fprintf(stderr, "kvs: refusing the state: %s\n", why);
  srv_panic(why);
  exit(1);
}

static void no_state_calls(struct kvs *k, const char *what) {
  if (!k->no_state_calls)
    fprintf(stderr,
            "kvs: the kernel has no %s: the state will not survive a "
            "replacement or a crash\n",
            what);
  k->no_state_calls = true;
}

/* Segments: ICAs or heap ------------------------------------------------- */

static uk_ica seg_ica(const struct kst_seg *g) {
  return (uk_ica){
      .id = g->id, .kind = KABI_ICA_STATE, .size = g->size, .base = g->base};
}

static int ica_seg_create(void *arg, uint64_t size, struct kst_seg *out) {
  uk_ica ica;
  (void)arg;
  int r = ica_create(size, KABI_ICA_STATE, &ica);
  if (r == 0)
    *out = (struct kst_seg){.base = ica.base, .size = ica.size, .id = ica.id};
  return r;
}

static int ica_seg_attach(void *arg, uint32_t id, struct kst_seg *out) {
  uk_ica ica;
  (void)arg;
  int r = srv_ica_attach(id, &ica);
  if (r == 0)
    *out = (struct kst_seg){.base = ica.base, .size = ica.size, .id = ica.id};
  return r;
}

static void ica_seg_release(void *arg, struct kst_seg *g) {
  uk_ica ica = seg_ica(g);
  (void)arg;
  int r = ica_release(&ica);
  if (r < 0)
    fprintf(stderr, "kvs: releasing state ICA %#x: %s\n", g->id, strerror(-r));
}

static int heap_seg_create(void *arg, uint64_t size, struct kst_seg *out) {
  struct kvs *k = arg;
  void *p = xcalloc(1, size); /* the store bounds size; ICAs may refuse */
  *out = (struct kst_seg){.base = p, .size = size, .id = ++k->heap_ids};
  return 0;
}

static int heap_seg_attach(void *arg, uint32_t id, struct kst_seg *out) {
  (void)arg, (void)id, (void)out;
  return -ENOTSUP; /* heap memory dies with the process */
}

static void heap_seg_release(void *arg, struct kst_seg *g) {
  (void)arg;
  free(g->base);
}

/* A record or segment a lazy restore left unchecked turned out bad: the
 * store cannot be trusted, so this server stops and a restart restores it
 * with every record checked. */
static void ica_seg_corrupt(void *arg, const char *why) {
  (void)arg;
  refuse(why);
}

static const struct kst_segops ica_ops = {
    ica_seg_create, ica_seg_attach, ica_seg_release, NULL, ica_seg_corrupt};

/* State ICAs ------------------------------------------------------------- */

static int new_store(struct kvs *k) {
  static const uint32_t kst_of[] = {KST_SINGLE, KST_CHAIN, KST_HEAP};
  struct kst_config c = {.method = kst_of[k->o.method],
                         .layout = KVS_VERSION,
                         .limit = k->o.state_size,
                         .seg_size = k->o.seg_size};
  return kst_init(&k->store, &c, &k->ops);
}

/* Registers segment 0 of the store (single, chain) as the state ICA. */
static int register_store(struct kvs *k) {
  uint32_t n;
  if (k->o.method == M_COPY)
    return 0;
  uk_ica ica = seg_ica(&kst_segs(&k->store, &n)[0]);
  int r = srv_state_register(&ica);
  if (r == -ENOSYS) {
    no_state_calls(k, "state registration");
    return 0;
  }
  return r;
}

/* Writes the store in the neutral form into a new ICA. */
static int export_ica(struct kvs *k, uk_ica *out) {
  struct kvn_image im;
  kvn_build(&k->store, KVS_VERSION, &im);
  uint64_t size = kvn_size(&im);
  int r =
      size > UK_ICA_SIZE_MAX ? -EFBIG : ica_create(size, KABI_ICA_STATE, out);
  if (r == 0)
    kvn_write(&im, out->base);
  kvn_free(&im);
  return r;
}

/* Exports and registers: a hand-off ICA inside the replacement hook, a
 * snapshot otherwise.  Our mapping goes at once; the kernel keeps the ICA
 * for the successor (and frees it if the replacement fails, or when the
 * next one is registered). */
static int export_register(struct kvs *k) {
  uk_ica ica;
  int r = export_ica(k, &ica);
  if (r < 0)
    return r;
  r = srv_state_register(&ica);
  if (r < 0) {
    ica_release(&ica);
    if (r == -ENOSYS)
      no_state_calls(k, "state registration");
    return r;
  }
  ica_unmap(&ica);
  return 0;
}

/* Copy: a snapshot every o.snapshot updates. */
static void updated(struct kvs *k) {
  if (k->o.method != M_COPY || k->o.snapshot == 0 ||
      ++k->updates < k->o.snapshot)
    return;
  k->updates = 0;
  int r = export_register(k);
  if (r < 0 && r != -ENOSYS)
    fprintf(stderr, "kvs: snapshot: %s\n", strerror(-r));
}

/* The replacement hook.  single and chain hand their live state ICA to a
 * successor of the same version as it is; anything else gets the neutral
 * form. */
static int on_replace(uint32_t successor_version, void *arg) {
  struct kvs *k = arg;
  if (k->o.method != M_COPY && successor_version == KVS_VERSION)
    return 0;
  return export_register(k);
}

/* Succession ------------------------------------------------------------- */

/* Makes what the store is now what a successor or a restart would get:
 * single and chain register segment 0 (once: it is updated in place);
 * copy registers a snapshot, if it takes any.  A successor's registration
 * takes effect at the commit (if the replacement fails, the old server's
 * state stays registered). */
static int save_state(struct kvs *k) {
  if (k->o.method != M_COPY)
    return register_store(k);
  if (k->o.snapshot > 0) {
    int r = export_register(k);
    return r == -ENOSYS ? 0 : r;
  }
  return 0;
}

/* Gives back an inherited ICA: a hand-off is ours to release; the
 * registered state ICA stays the kernel's until a registration replaces
 * it, so only our mapping goes. */
static void drop_ica(uk_ica *ica) {
  if (ica_release(ica) < 0)
    ica_unmap(ica);
}

static void import_neutral(struct kvs *k, uk_ica *st) {
  char why[160];
  int r = new_store(k);
  if (r < 0) {
    snprintf(why, sizeof why, "kvs: a store for the state: %s", strerror(-r));
    refuse(why);
  }
  r = kvn_import(&k->store, st->base, st->size, why, sizeof why);
  if (r < 0)
    refuse(why);
  drop_ica(st);
}

/* A store image of our layout: adopted as it is if it has our method,
 * else copied into a new store of ours (nothing inherited is written; the
 * old segments go after the commit).  Returns whether it was adopted. */
static bool take_image(struct kvs *k, uk_ica *st) {
  char why[160] = "";
  struct kst_seg seg0 = {.base = st->base, .size = st->size, .id = st->id};
  struct kst img;
  int r = kst_restore(&img, &seg0, KVS_VERSION, k->o.state_size,
                      k->replacing ? KST_RESTORE_LAZY : 0, &ica_ops, why,
                      sizeof why);
  if (r < 0)
    refuse(why);
  bool same = (kst_method(&img) == KST_SINGLE) == (k->o.method == M_SINGLE);
  if (same && k->o.method != M_COPY) {
    k->store = img;
    return true;
  }
  r = new_store(k);
  if (r == 0)
    r = kst_copy(&k->store, &img);
  if (r < 0) {
    snprintf(why, sizeof why, "kvs: converting the state: %s", strerror(-r));
    refuse(why);
  }
  k->old = img;
  k->has_old = true;
  return false;
}

/* A successor: restores from the state its predecessor left, writing
 * nothing it inherited (the old server may yet resume). */
static int restore(struct kvs *k) {
  uk_ica st;
  int r = srv_state_get(&st);
  if (r == -ENOENT || r == -ENOSYS) {
    if (r == -ENOSYS)
      no_state_calls(k, "state hand-over");
    fprintf(stderr, "kvs: no state to take over: starting empty\n");
    r = new_store(k);
    return r == 0 ? save_state(k) : r;
  }
  if (r < 0)
    return r;
  if (kvn_is_image(st.base, st.size))
    import_neutral(k, &st);
  else if (!kst_is_image(st.base, st.size))
    refuse("kvs: the state ICA holds no kvs state");
  else if (take_image(k, &st))
    return 0; /* the registered state ICA is our store already */
  return save_state(k);
}

/* After the commit, a store we converted from is ours to drop: its other
 * segments moved to us; its segment 0 is the registered state ICA, which
 * our own registration replaced (or, for copy, stays registered). */
static void drop_old(struct kvs *k) {
  uint32_t n;
  if (!k->has_old)
    return;
  struct kst_seg *g = (struct kst_seg *)kst_segs(&k->old, &n);
  for (uint32_t i = 1; i < n; i++)
    if (g[i].size != 0)
      ica_seg_release(NULL, &g[i]);
  uk_ica seg0 = seg_ica(&g[0]);
  ica_unmap(&seg0);
  kst_forget(&k->old);
  k->has_old = false;
}

/* Puts a predecessor held: its ICAs come back by id.  One we cannot attach
 * was answered already (it was not kept yet when the server died, or was
 * answered just before), so its record goes. */
static void adopt_held(struct kvs *k) {
  struct kst_held h[KST_HELD_MAX];
  uint32_t n = kst_held_list(&k->store, h);
  for (uint32_t i = 0; i < n; i++) {
    struct held *x = &k->held[k->nheld];
    memset(x, 0, sizeof *x);
    x->req.req = h[i].req;
    x->req.op = h[i].op;
    x->seq = h[i].seq;
    if (srv_ica_attach(h[i].ctl, &x->req.ctl) < 0) {
      kst_unhold(&k->store, h[i].seq);
      continue;
    }
    if (h[i].data != KABI_ICA_NONE)
      srv_ica_attach(h[i].data, &x->req.data); /* missing: -EINVAL later */
    k->nheld++;
  }
}

/* The first request has arrived: the service is ours, and so is every
 * ICA our predecessor held. */
static void commit(struct kvs *k) {
  k->committed = true;
  drop_old(k);
  if (k->o.method != M_COPY)
    kst_trim(&k->store);
  adopt_held(k);
}
/* Requests --------------------------------------------------------------- */

/* Copies the request's control block into c, checking that it is there and
 * whole.  The key is NUL-terminated in c when keylen is in range. */
static int read_ctl(const srv_req *r, struct kvs_ctl *c) {
  if (r->ctl.base == NULL || r->ctl.size < sizeof *c)
    return -EINVAL;
  memcpy(c, r->ctl.base, sizeof *c);
  if (c->keylen < KVS_KEY_MAX)
    c->key[c->keylen] = '\0';
  return 0;
}

/* Keys are 1..KVS_KEY_MAX-1 bytes without NUL (list separates them by
 * NUL, so a NUL inside a key would make list answers ambiguous). */
static int check_key(const struct kvs_ctl *c) {
  if (c->keylen == 0 || c->keylen >= KVS_KEY_MAX)
    return -EINVAL;
  if (memchr(c->key, '\0', c->keylen) != NULL)
    return -EINVAL;
  return 0;
}

/* Tells the client how many value (or list) bytes the data ICA holds, and
 * the key's counter (version 2). */
static void set_answer(srv_req *r, uint64_t vallen, uint64_t counter) {
  struct kvs_ctl *out = r->ctl.base;
  out->vallen = vallen;
  out->counter = (uint32_t)counter;
}

/* Makes r->data an attached data ICA of at least len (> 0) bytes for the
 * answer: the client's own one if it sent one big enough, otherwise a new
 * one, and the client's is released.  On failure r->data is unchanged. */
static int answer_ica(srv_req *r, uint64_t len) {
  if (r->data.base != NULL && r->data.kind == KABI_ICA_DATA &&
      r->data.size >= len)
    return 0;
  uk_ica fresh;
  int err = ica_create(len, KABI_ICA_DATA, &fresh);
  if (err < 0)
    return err;
  err = ica_release(&r->data);
  if (err < 0) {
    ica_release(&fresh);
    return err;
  }
  r->data = fresh;
  return 0;
}

/* put: the value is copied from the data ICA into the store (the store must
 * outlive the ICA, which goes back to the client).  seq: the held request
 * this is, or 0. */
static int do_put(struct kvs *k, srv_req *r, const struct kvs_ctl *c,
                  uint64_t seq) {
  uint64_t counter;
  if (c->vallen > KVS_VALUE_MAX)
    return -EFBIG;
  if (c->vallen > 0 && (r->data.base == NULL || r->data.size < c->vallen))
    return -EINVAL;
  int err = kst_put(&k->store, c->key, c->keylen, r->data.base, c->vallen, seq,
                    &counter);
  if (err < 0)
    return err;
  set_answer(r, c->vallen, counter);
  updated(k);
  return 0;
}

static int do_get(struct kvs *k, srv_req *r, const struct kvs_ctl *c) {
  struct kst_entry e;
  int err = kst_get(&k->store, c->key, c->keylen, &e);
  if (err < 0)
    return err;
  if (e.vallen > 0) {
    err = answer_ica(r, e.vallen);
    if (err < 0)
      return err;
    memcpy(r->data.base, e.val, e.vallen);
  }
  set_answer(r, e.vallen, e.counter);
  return 0;
}

static int do_delete(struct kvs *k, const struct kvs_ctl *c) {
  int err = kst_del(&k->store, c->key, c->keylen);
  if (err == 0)
    updated(k);
  return err;
}

static int do_list(struct kvs *k, srv_req *r) {
  uint64_t len = kst_keybytes(&k->store);
  if (len > 0) {
    int err = answer_ica(r, len);
    if (err < 0)
      return err;
    kst_list(&k->store, r->data.base);
  }
  set_answer(r, len, 0);
  return 0;
}

/* Checks and performs one request; returns the status for the client. */
static int dispatch(struct kvs *k, srv_req *r) {
  struct kvs_ctl c;
  if (r->op > KVS_FLUSH)
    return -ENOSYS;
  int err = read_ctl(r, &c);
  if (err == 0 && r->op != KVS_LIST && r->op != KVS_FLUSH)
    err = check_key(&c);
  if (err < 0)
    return err;
  switch (r->op) {
  case KVS_PUT:
    return do_put(k, r, &c, 0);
  case KVS_GET:
    return do_get(k, r, &c);
  case KVS_DELETE:
    return do_delete(k, &c);
  case KVS_LIST:
    return do_list(k, r);
  case KVS_FLUSH:
    return 0; /* the held puts were answered before it was dispatched */
  default:
    abort(); /* ops were range-checked above */
  }
}

/* Caching ---------------------------------------------------------------- */

/* Applies held put h unless it was applied already (by us or by the server
 * we took over from); returns the client's status. */
static int apply_held(struct kvs *k, struct held *h) {
  struct kvs_ctl c;
  int st = read_ctl(&h->req, &c);
  if (st == 0)
    st = check_key(&c);
  if (st < 0)
    return st;
  if (kst_was_applied(&k->store, h->seq, c.key, c.keylen)) {
    struct kst_entry e;
    if (kst_get(&k->store, c.key, c.keylen, &e) == 0)
      set_answer(&h->req, c.vallen, e.counter);
    return 0;
  }
  st = do_put(k, &h->req, &c, h->seq);
  if (st == 0)
    kst_set_applied(&k->store, h->seq);
  return st;
}

/* Applies and answers every held put, oldest first.  Each is answered
 * before its record goes (a crash in between: the successor finds the
 * ICAs gone and drops the record) and before the next is applied. */
static void flush(struct kvs *k) {
  for (uint32_t i = 0; i < k->nheld; i++) {
    struct held *h = &k->held[i];
    int r = srv_reply(&h->req, apply_held(k, h));
    if (r < 0) {
      fprintf(stderr, "kvs: answering held request %u: %s\n", h->req.req,
              strerror(-r));
      ica_release(&h->req.ctl);
      ica_release(&h->req.data);
    }
    kst_unhold(&k->store, h->seq);
  }
  k->nheld = 0;
}

/* Records put r in the state, then keeps it (in this order: a crash in
 * between leaves a record whose request the kernel answered, which a
 * successor drops; the other order could leave a kept request nobody
 * knows).  0 when held; an error: answer it now. */
static int hold(struct kvs *k, srv_req *r) {
  struct kst_held h = {
      .req = r->req, .op = KVS_PUT, .ctl = r->ctl.id, .data = r->data.id};
  uint64_t seq;
  int err = kst_hold(&k->store, &h, &seq);
  if (err < 0)
    return err;
  err = srv_keep(r);
  if (err < 0) {
    kst_unhold(&k->store, seq);
    return err;
  }
  k->held[k->nheld++] = (struct held){.req = *r, .seq = seq};
  if (k->nheld >= k->o.cache)
    flush(k);
  return 0;
}

/* Whether held puts wait for an answer: ours, or (before the commit) those
 * the state we took over records. */
static bool pending(struct kvs *k) {
  struct kst_held h[KST_HELD_MAX];
  if (k->nheld > 0)
    return true;
  return !k->committed && kst_held_list(&k->store, h) > 0;
}

/* Before waiting while puts are held: sends ourselves a flush, which comes
 * back once the requests queued before it are taken. */
static int arm_tick(struct kvs *k) {
  if (k->tick_out || !pending(k))
    return 0;
  int r = k->svc ? 0 : ap_lookup(k->o.service, &k->svc);
  if (r == 0 && k->tick.id == KABI_ICA_NONE)
    r = ica_create(sizeof(struct kvs_ctl), KABI_ICA_CONTROL, &k->tick);
  if (r < 0)
    return r;
  memset(k->tick.base, 0, sizeof(struct kvs_ctl));
  r = ap_send(k->svc, KVS_FLUSH, &k->tick, NULL, 0, &k->tick_req);
  k->tick_out = r == 0;
  return r;
}

/* Our flush came back and was answered: collect its result. */
static void reap_tick(struct kvs *k) {
  ap_result res;
  k->tick_out = false;
  if (ap_await(k->tick_req, &res) < 0)
    return;
  k->tick = res.ctl;
  ica_release(&res.data);
}

/* Handles one request; returns its status, or KVS_HELD. */
static int handle(struct kvs *k, srv_req *r) {
  if (r->op == KVS_PUT && k->o.cache > 0 && hold(k, r) == 0)
    return KVS_HELD;
  flush(k); /* so that what this request sees includes the held puts */
  return dispatch(k, r);
}

/* Waits for the next request, first making sure held puts cannot wait
 * forever. */
static int next(struct kvs *k, srv_req *r) {
  if (arm_tick(k) < 0 && k->committed)
    flush(k);
  return srv_receive(r);
}

/* Serves until the kernel ends the server (0), a successor takes over
 * (-ESHUTDOWN), or an error. */
static int serve(struct kvs *k) {
  srv_req req;
  int r = next(k, &req);
  while (r == 0) {
    if (!k->committed)
      commit(k);
    int st = handle(k, &req);
    bool tick = req.op == KVS_FLUSH && k->tick_out && req.req == k->tick_req;
    if (st == KVS_HELD) {
      r = next(k, &req);
    } else if (tick) {
      r = srv_reply(&req, st);
      reap_tick(k);
      if (r == 0)
        r = next(k, &req);
    } else {
      r = srv_reply_receive(&req, st);
    }
  }
  if (r == -ECONNRESET || r == -EPIPE || r == -ENOTCONN)
    return 0;
  return r;
}

/* Options ---------------------------------------------------------------- */

static void usage(FILE *f) {
  fprintf(
      f,
      "usage: kvs [options]   (kvs version %d)\n"
      "The key-value store server; the kernel starts it.\n"
      "  --state M          how the store survives replacement and crashes:\n"
      "                     single (one state ICA), chain (a master ICA\n"
      "                     listing the ICAs), copy (heap; serialized at\n"
      "                     replacement) (default single)\n"
      "  --state-size B     single: the state ICA; chain, copy: all of the\n"
      "                     store (default 256M, at most 1G); a put that\n"
      "                     does not fit is answered -ENOSPC\n"
      "  --segment-size B   chain: a shared segment (default 1M)\n"
      "  --cache N          hold up to N puts, answered as a batch (at most\n"
      "                     %d; single and chain only; default 0)\n"
      "  --snapshot N       copy: register a snapshot every N updates, what\n"
      "                     a restart after a crash gets (default 0: none,\n"
      "                     a restart starts empty)\n"
      "  --service NAME     the service to register (default " KVS_NAME ")\n"
      "  --help             this text\n"
      "Sizes take a K, M or G suffix.\n",
      KVS_VERSION, KST_HELD_MAX);
}

/* A number of option opt (as written, "--cache") in [min, max], a size
 * with NUM_SIZE (a K, M or G suffix); said on stderr when it is not one.
 * 0 or -EINVAL. */
static int opt_num(const char *opt, const char *s, uint64_t min, uint64_t max,
                   unsigned flags, uint64_t *out) {
  return num_opt_u64("kvs", opt, s, min, max, flags, out) < 0 ? -EINVAL : 0;
}

static int parse_method(const char *s, enum method *m) {
  static const char *names[] = {"single", "chain", "copy"};
  for (int i = 0; i < 3; i++) {
    if (strcmp(s, names[i]) == 0) {
      *m = (enum method)i;
      return 0;
    }
  }
  return -EINVAL;
}

/* A service name fits the kernel's table (the kernel checks the rest). */
static int parse_service(const char *s, char *out) {
  if (*s == '\0' || strlen(s) >= KABI_NAME_MAX)
    return -EINVAL;
  strcpy(out, s);
  return 0;
}

/* Applies one option (opt: its name as written, for messages); 0, or
 * -EINVAL for a bad value, said on stderr. */
static int set_opt(struct kvs_opts *o, int c, const char *opt,
                   const char *arg) {
  uint64_t v = 0;
  const char *what = NULL;
  int r = 0;
  switch (c) {
  case 'm':
    what = "single, chain or copy";
    r = parse_method(arg, &o->method);
    break;
  case 's':
    return opt_num(opt, arg, KST_SIZE_MIN, UK_ICA_SIZE_MAX, NUM_SIZE,
                   &o->state_size);
  case 'g':
    return opt_num(opt, arg, KST_PAGE, UK_ICA_SIZE_MAX, NUM_SIZE, &o->seg_size);
  case 'c':
    r = opt_num(opt, arg, 0, KST_HELD_MAX, 0, &v);
    o->cache = (uint32_t)v;
    return r;
  case 'n':
    return opt_num(opt, arg, 0, UINT64_MAX, 0, &o->snapshot);
  case 'v':
    what = "a service name that fits the kernel's table";
    r = parse_service(arg, o->service);
    break;
  default:
    return -EINVAL; /* getopt_long has already complained */
  }
  if (r < 0)
    fprintf(stderr, "kvs: %s: '%s' is not %s\n", opt, arg, what);
  return r;
}

/* Fills o from argv.  Returns 0, 1 for --help, or -EINVAL. */
static int parse_opts(int argc, char **argv, struct kvs_opts *o) {
  static const struct option longopts[] = {
      {"state", required_argument, NULL, 'm'},
      {"state-size", required_argument, NULL, 's'},
      {"segment-size", required_argument, NULL, 'g'},
      {"cache", required_argument, NULL, 'c'},
      {"snapshot", required_argument, NULL, 'n'},
      {"service", required_argument, NULL, 'v'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  *o = (struct kvs_opts){.method = M_SINGLE,
                         .state_size = KVS_STATE_SIZE_DEFAULT,
                         .seg_size = KVS_SEG_SIZE_DEFAULT,
                         .service = KVS_NAME};
  int c, idx = 0;
  while ((c = getopt_long(argc, argv, "", longopts, &idx)) != -1) {
    if (c == 'h')
      return 1;
    char opt[32];
    snprintf(opt, sizeof opt, "--%s", c == '?' ? "?" : longopts[idx].name);
    if (set_opt(o, c, opt, optarg) < 0)
      return -EINVAL;
  }
  o->state_size = (o->state_size + KST_PAGE - 1) / KST_PAGE * KST_PAGE;
  if (o->cache > 0 && o->method == M_COPY) {
    /* Held puts must be recorded in a state that is current at every
     * instruction; copy's is current only at a snapshot. */
    fputs("kvs: --cache needs --state single or chain\n", stderr);
    return -EINVAL;
  }
  return optind == argc ? 0 : -EINVAL;
}

/* Main ------------------------------------------------------------------- */

/* A successor serves now: what is left of us is the exit, which unmaps
 * the state ICAs page table by page table (some 5 ms for 256 MiB here).
 * At idle priority that work waits for a free CPU instead of taking one
 * from the kernel and the successor while they drain the requests queued
 * during the swap. */
static void step_aside(void) {
  struct sched_param sp = {.sched_priority = 0};
  if (sched_setscheduler(0, SCHED_IDLE, &sp) < 0)
    perror("kvs: sched_setscheduler");
}

static int start(struct kvs *k) {
  int how;
  int r = srv_register(k->o.service, KVS_VERSION, KVS_OPNAMES, &how);
  if (r < 0)
    return r;
  k->replacing = how == KABI_REG_REPLACING;
  if (how != KABI_REG_FRESH)
    return restore(k);
  k->committed = true;
  r = new_store(k);
  return r == 0 ? save_state(k) : r;
}

int main(int argc, char **argv) {
  struct kvs k;
  memset(&k, 0, sizeof k);
  int r = parse_opts(argc, argv, &k.o);
  if (r > 0) {
    usage(stdout);
    return 0;
  }
  if (r < 0) {
    fputs("kvs: try kvs --help\n", stderr);
    return 2;
  }
  k.ops = k.o.method == M_COPY
              ? (struct kst_segops){heap_seg_create, heap_seg_attach,
                                    heap_seg_release, &k, NULL}
              : ica_ops;
  r = start(&k);
  srv_on_replace(on_replace, &k);
  if (r == 0)
    r = serve(&k);
  if (r == -ESHUTDOWN)
    step_aside();
  /* State ICAs outlive us (a successor may own them now); heap goes. */
  if (k.o.method == M_COPY && k.store.hdr != NULL)
    kst_close(&k.store);
  else if (k.store.hdr != NULL)
    kst_forget(&k.store);
  if (r < 0 && r != -ESHUTDOWN) {
    fprintf(stderr, "kvs: %s\n", strerror(-r));
    return 1;
  }
  return 0;
}
