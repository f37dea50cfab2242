/* p9host.c: a 9P file server as a uksim OS server (see p9host.h).
 *
 * Each request is one 9P message (uksim/p9ica.h).  The server keeps one
 * net9p ICA transport, and so one 9P session with its own fid table, per
 * client_pid, and hands the request's ICAs to it; net9p's server library
 * and the backend's ops run unchanged above it.  At most MAX_SESSIONS
 * clients: one more evicts the one idle longest (its fids are clunked).
 *
 * State (method 2 of seed 000: one state ICA).  After every request that
 * may have changed the tree or a session, the whole state (sessions and
 * tree, p9_state.proto) is packed into the free half of the state ICA and
 * published by one release store of the header's `pub` word (which half,
 * and how long), so a crash at any instruction leaves the image before or
 * after the request in progress.  A state that outgrows its half moves to
 * a new ICA twice the size, registered once the image is in it.  Reads of
 * files and stats change nothing a successor needs and save nothing (a
 * file's atime is not kept).  The cost is O(state) per changing request:
 * these are laboratory servers of small trees (servers/README.md).
 *
 * A successor (replacing, or restarting after a crash) attaches the state
 * ICA, checks the header, unpacks the published image, rebuilds the tree
 * and every session with their fids, and serves: a client's open fid
 * reads on.  It writes to that ICA only after its first receive.  An image
 * it cannot use makes it srv_panic() with the reason: a replacement then
 * fails and the old server serves on.
 */
#include "p9host.h"
#include "p9state.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uksim/num.h"
#include "uksim/p9ica.h"
#include "uksim/ns.h"
#include "uksim/server.h"
#include "uksim/xalloc.h"

#define P9H_VERSION 1
#define SLOT_MIN (256u << 10)

enum { MAX_SESSIONS = 64 };

struct session {
  bool used;
  int32_t client;
  uint64_t last_use;
  p9_icat *t;
};

struct host {
  const struct p9h_backend *b;
  const struct p9h_opts *o;
  void *fs;
  p9_srv *srv;
  struct session ses[MAX_SESSIONS];
  uk_ica st; /* the registered state ICA; empty: none (no kernel support) */
  uint64_t requests;
  bool warned; /* the state outgrew --state-max: said once */
};

/* --- sessions --------------------------------------------------------- */

static p9_srv *new_srv(struct host *h) {
  p9_srv_config cfg = {.msize = P9_MAXMSIZE,
                       .max_conns = MAX_SESSIONS + 1,
                       .trace = h->o->trace};
  int err;
  p9_srv *s = p9_srv_new(h->b->ops, h->fs, &cfg, &err);
  if (!s)
    abort(); /* only a bad msize or libsodium failing */
  return s;
}

static struct session *session_new(struct host *h, int32_t client) {
  struct session *s = NULL, *lru = &h->ses[0];
  int err;
  for (int i = 0; i < MAX_SESSIONS && !s; i++)
    if (!h->ses[i].used)
      s = &h->ses[i];
    else if (h->ses[i].last_use < lru->last_use)
      lru = &h->ses[i];
  if (!s) {
    p9_icat_free(lru->t); /* its fids are clunked: destroyfid runs */
    s = lru;
  }
  *s = (struct session){.used = true, .client = client};
  s->t = p9_icat_new(h->srv, NULL, &err);
  if (!s->t)
    abort(); /* max_conns is above MAX_SESSIONS */
  return s;
}

static struct session *session_for(struct host *h, int32_t client) {
  for (int i = 0; i < MAX_SESSIONS; i++)
    if (h->ses[i].used && h->ses[i].client == client)
      return &h->ses[i];
  return session_new(h, client);
}

/* --- the state image -------------------------------------------------- */

/* What describe_sessions allocated, freed once the image is packed. */
struct img {
  Uksim__P9s__State st;
  Uksim__P9s__Session *ses, **sesp;
  Uksim__P9s__Fid *fid, **fidp;
  Uksim__P9s__Qid *qid;
  p9_session *raw;
};

static void fid_to_pb(const p9_session_fid *f, Uksim__P9s__Fid *p,
                      Uksim__P9s__Qid *q) {
  uksim__p9s__fid__init(p);
  p9s_qid_to_pb(f->qid, q);
  p->num = f->num;
  p->qid = q;
  p->omode = f->omode;
  p->aux = f->aux;
  p->dirindex = f->dirindex;
  p->diroffset = f->diroffset;
  p->uid = f->uid;
}

static void describe_sessions(struct host *h, struct img *im) {
  size_t nf = 0, n = 0, k = 0;
  im->raw = xcalloc(MAX_SESSIONS, sizeof(*im->raw));
  for (int i = 0; i < MAX_SESSIONS; i++)
    if (h->ses[i].used) {
      p9_srv_session_get(p9_icat_transport(h->ses[i].t), &im->raw[i]);
      nf += im->raw[i].nfid;
    }
  im->ses = xmalloc(MAX_SESSIONS * sizeof(*im->ses));
  im->sesp = xmalloc(MAX_SESSIONS * sizeof(*im->sesp));
  im->fid = xmalloc((nf + 1) * sizeof(*im->fid));
  im->fidp = xmalloc((nf + 1) * sizeof(*im->fidp));
  im->qid = xmalloc((nf + 1) * sizeof(*im->qid));
  for (int i = 0; i < MAX_SESSIONS; i++) {
    Uksim__P9s__Session *s = &im->ses[n];
    if (!h->ses[i].used)
      continue;
    uksim__p9s__session__init(s);
    s->client = h->ses[i].client;
    s->dialect = im->raw[i].dialect;
    s->msize = im->raw[i].msize;
    s->last_use = h->ses[i].last_use;
    s->fids = im->fidp + k;
    s->n_fids = im->raw[i].nfid;
    for (uint32_t j = 0; j < im->raw[i].nfid; j++, k++) {
      fid_to_pb(&im->raw[i].fid[j], &im->fid[k], &im->qid[k]);
      im->fidp[k] = &im->fid[k];
    }
    im->sesp[n++] = s;
  }
  im->st.sessions = im->sesp;
  im->st.n_sessions = n;
}

static void img_free(struct host *h, struct img *im) {
  h->b->described(&im->st);
  for (int i = 0; i < MAX_SESSIONS; i++)
    free(im->raw[i].fid);
  free(im->raw);
  free(im->ses);
  free(im->sesp);
  free(im->fid);
  free(im->fidp);
  free(im->qid);
}

static void img_build(struct host *h, struct img *im) {
  memset(im, 0, sizeof(*im));
  uksim__p9s__state__init(&im->st);
  im->st.version = P9H_VERSION;
  im->st.kind = (char *)h->b->kind;
  im->st.requests = h->requests;
  describe_sessions(h, im);
  h->b->describe(h->fs, &im->st);
}

/* --- the state ICA ---------------------------------------------------- */

/* A new state ICA whose halves hold len bytes twice over, the image in
 * it, registered in place of the old one (which the kernel frees). */
static int move_state(struct host *h, const Uksim__P9s__State *st, size_t len) {
  uint64_t cap = SLOT_MIN;
  uk_ica ica;
  int r;
  while (cap < 2 * (uint64_t)len)
    cap *= 2;
  if (p9s_area_size(cap) > h->o->state_max)
    return -ENOSPC;
  if ((r = ica_create(p9s_area_size(cap), KABI_ICA_STATE, &ica)) < 0)
    return r;
  p9s_area_init(ica.base, cap);
  p9s_publish(ica.base, st, len);
  if ((r = srv_state_register(&ica)) < 0) {
    ica_release(&ica);
    return r;
  }
  if (h->st.base)
    ica_unmap(&h->st);
  h->st = ica;
  return 0;
}

/* Makes the state ICA current.  A state that cannot be saved is said
 * once and serving goes on: the client's request did happen, and a
 * successor would find the last image that fitted. */
static void save(struct host *h) {
  struct img im;
  size_t len;
  int r = 0;
  img_build(h, &im);
  len = uksim__p9s__state__get_packed_size(&im.st);
  if (!h->st.base || p9s_publish(h->st.base, &im.st, len) == -ENOSPC)
    r = move_state(h, &im.st, len);
  img_free(h, &im);
  if (r < 0 && !h->warned)
    fprintf(stderr, "%s: the state (%zu bytes) is not saved: %s\n",
            h->o->service, len, strerror(-r));
  h->warned = h->warned || r < 0;
}

/* --- restoring -------------------------------------------------------- */

static _Noreturn void refuse(struct host *h, const char *why) {
  fprintf(stderr, "%s: refusing the state: %s\n", h->o->service, why);
  srv_panic(why);
  exit(1);
}

static int session_from_pb(struct host *h, const Uksim__P9s__Session *p) {
  p9_session s = {.dialect = (p9_dialect)p->dialect, .msize = p->msize};
  struct session *ss;
  int r;
  s.fid = xcalloc(p->n_fids + 1, sizeof(*s.fid));
  for (size_t i = 0; i < p->n_fids; i++) {
    const Uksim__P9s__Fid *f = p->fids[i];
    s.fid[i] = (p9_session_fid){.num = f->num,
                                .qid = p9s_qid_from_pb(f->qid),
                                .omode = (uint8_t)f->omode,
                                .aux = f->aux,
                                .dirindex = f->dirindex,
                                .diroffset = f->diroffset,
                                .uid = f->uid};
  }
  s.nfid = (uint32_t)p->n_fids;
  ss = session_for(h, p->client);
  ss->last_use = p->last_use;
  r = p9_srv_session_set(p9_icat_transport(ss->t), &s);
  free(s.fid);
  return r;
}

/* Rebuilds the tree and the sessions from the predecessor's state; 0, or
 * -ENOENT when it registered none (it died before its first save): the
 * successor then starts empty. */
static int restore(struct host *h) {
  uk_ica ica;
  const char *why;
  char msg[200];
  int r = srv_state_get(&ica), err;
  Uksim__P9s__State *st;
  if (r == -ENOENT) {
    fprintf(stderr, "%s: no state to take over: starting empty\n",
            h->o->service);
    return r;
  }
  if (r < 0) {
    snprintf(msg, sizeof(msg), "no state to take over: %s", strerror(-r));
    refuse(h, msg);
  }
  if (!(st = p9s_unpack(ica.base, ica.size, &why)))
    refuse(h, why);
  if (st->version > P9H_VERSION || strcmp(st->kind, h->b->kind) != 0) {
    snprintf(msg, sizeof(msg), "state version %u of '%s' is not %s's %u",
             st->version, st->kind, h->b->kind, P9H_VERSION);
    refuse(h, msg);
  }
  snprintf(msg, sizeof(msg), "the tree in the state");
  if (!(h->fs = h->b->load(h->b->arg, st, &err, msg, sizeof(msg))))
    refuse(h, msg);
  h->srv = new_srv(h);
  for (size_t i = 0; i < st->n_sessions; i++)
    if (session_from_pb(h, st->sessions[i]) < 0)
      refuse(h, "a session in the state is not one this server agrees to");
  h->requests = st->requests;
  uksim__p9s__state__free_unpacked(st, NULL);
  h->st = ica; /* the live state ICA is ours from the first receive on */
  return 0;
}

static int start_fresh(struct host *h) {
  int err;
  if (!(h->fs = h->b->fresh(h->b->arg, &err)))
    return err;
  h->srv = new_srv(h);
  save(h);
  return 0;
}

/* --- requests --------------------------------------------------------- */

static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

/* Whether a message of this type, on this session, may change what the
 * state holds: everything but stats and reads of files (a directory read
 * moves its fid's position). */
static bool may_change(const srv_req *r, struct session *s) {
  const uint8_t *m = r->ctl.base;
  p9_session_fid f;
  if (r->ctl.size < 11)
    return false; /* refused before the library saw it */
  switch (m[4]) {
  case P9_TSTAT:
  case P9_TGETATTR:
  case P9_TSTATFS:
  case P9_TREADLINK:
    return false;
  case P9_TREAD:
    return p9_srv_session_fid(p9_icat_transport(s->t), get32(m + 7), &f) < 0 ||
           (f.qid.type & P9_QTDIR);
  }
  return true;
}

static int handle(struct host *h, srv_req *r) {
  struct session *s;
  bool change;
  int st;
  if (r->op != P9ICA_OP)
    return -ENOSYS;
  if (!r->ctl.base)
    return -EPROTO;
  s = session_for(h, r->client_pid);
  s->last_use = ++h->requests;
  change = may_change(r, s);
  st = p9_icat_call(s->t, r->ctl.base, r->ctl.size, r->data.base, r->data.size);
  if (change && st != -EPROTO)
    save(h);
  return st;
}

/* A server posts itself ([Plan 9] srv(3), seed 002 §6.1): /srv/NAME, an
 * entry of the kernel's server registry #s naming this service, which any
 * process then mounts.  The entry names the service, not this process, so
 * a successor finds it posted already. */
static void post(const char *service) {
  char path[KABI_NAME_MAX + 4];
  snprintf(path, sizeof path, "#s/%s", service);
  int fd = ns_create(path, NS_OWRITE, 0600);
  if (fd < 0) {
    if (fd != -EEXIST)
      fprintf(stderr, "%s: cannot post %s: %s\n", service, path, strerror(-fd));
    return;
  }
  if (ns_write(fd, service, strlen(service)) < 0)
    fprintf(stderr, "%s: cannot post %s\n", service, path);
  ns_close(fd);
}

/* The server's one host.  Static, so that what it holds stays reachable
 * when p9h_run returns: a replaced server exits without closing its
 * sessions, since closing clunks their fids, and a fid opened ORCLOSE
 * would remove a file its client still holds through the successor. */
static struct host host;

int p9h_run(const struct p9h_backend *b, const struct p9h_opts *o) {
  struct host *h = &host;
  srv_req req;
  int how, r = srv_register(o->service, P9H_VERSION, P9ICA_OPNAMES, &how);
  if (r < 0)
    return r;
  *h = (struct host){.b = b, .o = o};
  if (how == KABI_REG_FRESH || (r = restore(h)) == -ENOENT)
    r = start_fresh(h);
  if (r == 0 && how == KABI_REG_FRESH)
    post(o->service);
  if (r == 0)
    r = srv_receive(&req);
  while (r == 0)
    r = srv_reply_receive(&req, handle(h, &req));
  return r == -ESHUTDOWN ? 0 : r;
}

/* --- options ---------------------------------------------------------- */

/* One option; 0, or -1 after saying why. */
static int set_opt(int c, char **argv, struct p9h_opts *o) {
  switch (c) {
  case 'n':
    if (strlen(optarg) >= KABI_NAME_MAX) {
      fprintf(stderr, "%s: --name: '%s' is longer than %d bytes\n", argv[0],
              optarg, KABI_NAME_MAX - 1);
      return -1;
    }
    o->service = optarg;
    return 0;
  case 's':
    return num_opt_u64(argv[0], "--state-max", optarg, 1u << 20,
                       UK_ICA_SIZE_MAX, NUM_SIZE, &o->state_max) < 0
               ? -1
               : 0;
  case 't':
    o->trace = 1;
    return 0;
  default: /* getopt said which */
    return -1;
  }
}

int p9h_parse(int *argc, char **argv, struct p9h_opts *o) {
  static const struct option lo[] = {{"name", required_argument, 0, 'n'},
                                     {"state-max", required_argument, 0, 's'},
                                     {"trace", no_argument, 0, 't'},
                                     {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(*argc, argv, "", lo, NULL)) != -1)
    if (set_opt(c, argv, o) < 0)
      return -1;
  for (int i = optind; i < *argc; i++)
    argv[1 + i - optind] = argv[i];
  *argc = 1 + *argc - optind;
  return 0;
}
