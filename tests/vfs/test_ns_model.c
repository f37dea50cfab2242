/* The mount tables against a reference model (vfs/ns.c, vfs/fd.c), in the
 * manner of SQLite's bitvec test: seeded random sequences of bind, mount,
 * unmount, rfork and re-fork over a small name space, where a model in
 * plain arrays of names (no chans, ids or references) says what each
 * lookup, union read, union walk and create target gives, compared after
 * every step.  Also after every step: the groups the processes share are
 * the ones the model shares, every chan's reference count is exactly the
 * number of entries naming it (no leak, no early free), each clunk
 * reported is owed and each owed one was reported, vfs_check passes; a
 * call the model says fails gives that errno and leaves the whole region
 * byte-identical.  A failure prints the seed and step; UKSIM_VFS_SEED
 * sets the first seed.
 *
 * Also after every step, a random path (absolute, relative, from "#x" or
 * "#y", with ".", ".." and empty names, now and then malformed) is
 * resolved by vfs_namec in a random process and by the model's own walk
 * over the same tree: the servants #x, #y and a stand-in for mounted
 * servers (M) serve a tree in which directory (type, dev, path) has the
 * entries its letters say, "f" a file and the others directories given
 * by tree_child, and the pool's names are its nodes.  Same chan name or
 * same errno, and a refusal leaves the vfs tables byte-identical.
 *
 * Two shapes of name space: a narrow one (6 directories, deep unions that
 * fill up) and a wide one (40 directories, a mount table that fills up).
 */
#include <stdarg.h>
#include <stdio.h>

#include "dev.h"
#include "vfs_fixture.h"

#define NPROC 4
#define NLETTERS 6 /* a directory's entries are some of "a".."f" */
#define POOL_MAX 48
#define MG_MAX 16

/* One name of the name space: what a chan of it is called. */
struct name {
  uint8_t type;
  uint32_t dev;
  uint64_t path;
  bool dir;
  uint8_t letters; /* bit l: the directory has entry 'a' + l */
};

struct mmount {
  int from, n;
  int member[UK_UNION_MAX];
  uint8_t flag[UK_UNION_MAX];
};

struct mgroup {
  bool live;
  int procs;
  int nmount;
  struct mmount m[UK_MOUNT_MAX];
};

static struct name pool[POOL_MAX];
static int npool, first_server;
static uint32_t probe[POOL_MAX]; /* one chan per name, held by the test */
static struct mgroup mg[MG_MAX];
static int pg[NPROC]; /* model group of each process */
static uint64_t rng, seed;
static int step;
static long clunks_reported;

/* Error tally over all sequences, to show the run reached every refusal. */
enum { E_INVAL, E_NOTDIR, E_NOSPC_POINT, E_NOSPC_UNION, E_NOENT, E_COUNT };
static long errs[E_COUNT], ops_done[6];

#define CHECK(cond, ...)                                                       \
  cr_assert(cond, "seed %llu step %d: %s", (unsigned long long)seed, step,     \
            fmtmsg(__VA_ARGS__))

static const char *fmtmsg(const char *fmt, ...) {
  static char buf[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}

static uint64_t next(void) { /* splitmix64 */
  uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static int pick(int n) {
  return (int)(next() % (uint64_t)n);
}

/* A name to bind or mount: a file now and then (the pool ends with two),
 * mostly a directory, so that unions grow. */
static int pick_name(void) {
  return pick(12) == 0 ? npool - 1 - pick(2) : pick(npool - 2);
}

static void pool_add(uint8_t type, uint32_t dev, uint64_t path, bool dir) {
  pool[npool++] =
      (struct name){type, dev, path, dir, dir ? (uint8_t)(next() & 0x3f) : 0};
}

/* Directories of #x, one of #y named with the same path as the first (a
 * chan is not named by its qid alone), two servers' roots and two files. */
static void pool_init(bool wide) {
  npool = 0;
  for (int i = 0; i < (wide ? 40 : 6); i++)
    pool_add('x', 0, 1 + (uint64_t)i, true);
  pool_add('y', 0, 1, true);
  first_server = npool;
  pool_add(UK_CHAN_MNT, 1, 1, true);
  pool_add(UK_CHAN_MNT, 2, 1, true);
  pool_add('x', 0, 1000, false);
  pool_add('x', 0, 1001, false);
}

static uint32_t chan_for(int name) {
  struct uk_qid q = {.path = pool[name].path,
                     .type = pool[name].dir ? UK_QTDIR : 0};
  uint32_t id;
  CHECK(vfs_chan_new(kd, pool[name].type, pool[name].dev, &q, &id) == 0,
        "chan table full");
  return id;
}

static int name_of(uint32_t id) {
  int i = vfs_chan_lookup(kd, id);
  CHECK(i >= 0, "chan %#x is not live", id);
  const struct uk_chan *c = &kd->vfs.chan[i];
  for (int n = 0; n < npool; n++)
    if (pool[n].type == c->type && pool[n].dev == c->dev &&
        pool[n].path == c->qid.path)
      return n;
  CHECK(false, "chan %#x has no name", id);
  return -1;
}

static bool has(void *arg, uint32_t dir, const char *entry) {
  (void)arg;
  return (pool[name_of(dir)].letters >> (entry[0] - 'a')) & 1;
}

static void unref_counted(uint32_t id) {
  int r = vfs_chan_unref(kd, id);
  CHECK(r >= 0, "unref %#x: %d", id, r);
  clunks_reported += r;
}

/* --- The model: names only. --- */

static int mfind(const struct mgroup *g, int name) {
  for (int k = 0; k < g->nmount; k++)
    if (g->m[k].from == name)
      return k;
  return -1;
}

static int mg_alloc(void) {
  for (int i = 0; i < MG_MAX; i++)
    if (!mg[i].live) {
      memset(&mg[i], 0, sizeof mg[i]);
      mg[i].live = true;
      return i;
    }
  CHECK(false, "model out of groups");
  return -1;
}

static void mg_leave(int g) {
  if (--mg[g].procs == 0)
    mg[g].live = false;
}

static bool flag_bad(uint32_t flag) {
  return (flag & ~(VFS_MORDER | VFS_MCREATE)) != 0 ||
         (flag & VFS_MORDER) == VFS_MORDER;
}

/* What bind or mount (copy_union false) of src onto dst gives; 0 or the
 * errno, applied to g when 0. */
static int model_bind(struct mgroup *g, int src, int dst, uint32_t flag,
                      bool is_mount) {
  uint32_t order = flag & VFS_MORDER;
  if (flag_bad(flag) || pool[src].dir != pool[dst].dir) {
    errs[E_INVAL]++;
    return -EINVAL;
  }
  if (order != VFS_MREPL && !pool[dst].dir) {
    errs[E_NOTDIR]++;
    return -ENOTDIR;
  }
  if (is_mount && pool[src].type != UK_CHAN_MNT) {
    errs[E_INVAL]++;
    return -EINVAL;
  }
  int add[UK_UNION_MAX * 2], nadd = 0, s = is_mount ? -1 : mfind(g, src);
  if (s < 0)
    add[nadd++] = src;
  for (int k = 0; s >= 0 && k < g->m[s].n; k++)
    add[nadd++] = g->m[s].member[k];
  int m = mfind(g, dst);
  if (m < 0 && g->nmount == UK_MOUNT_MAX) {
    errs[E_NOSPC_POINT]++;
    return -ENOSPC;
  }
  struct mmount e = {.from = dst};
  if (m >= 0 && order != VFS_MREPL)
    e = g->m[m];
  else if (m < 0 && order != VFS_MREPL)
    e.member[e.n++] = dst;
  if (e.n + nadd > UK_UNION_MAX) {
    errs[E_NOSPC_UNION]++;
    return -ENOSPC;
  }
  struct mmount out = {.from = dst};
  for (int pass = 0; pass < 2; pass++) {
    bool adding = (pass == 0) != (order == VFS_MAFTER);
    for (int k = 0; k < (adding ? nadd : e.n); k++) {
      out.member[out.n] = adding ? add[k] : e.member[k];
      out.flag[out.n] = adding ? (k == 0 ? flag & VFS_MCREATE : 0) : e.flag[k];
      out.n++;
    }
  }
  g->m[m >= 0 ? m : g->nmount++] = out;
  return 0;
}

static int model_unmount(struct mgroup *g, int src, int dst) {
  int m = mfind(g, dst);
  if (m < 0) {
    errs[E_INVAL]++;
    return -EINVAL;
  }
  struct mmount *e = &g->m[m];
  int k = 0;
  while (src >= 0 && k < e->n && e->member[k] != src)
    k++;
  if (src >= 0 && k == e->n) {
    errs[E_NOENT]++;
    return -ENOENT;
  }
  if (src >= 0 && e->n > 1) {
    for (; k + 1 < e->n; k++) {
      e->member[k] = e->member[k + 1];
      e->flag[k] = e->flag[k + 1];
    }
    e->n--;
    return 0;
  }
  for (; m + 1 < g->nmount; m++)
    g->m[m] = g->m[m + 1];
  g->nmount--;
  return 0;
}

/* --- Steps: the same operation on the model and on the tables. --- */

static uint32_t random_flag(void) {
  if (pick(20) == 0)
    return pick(2) ? VFS_MORDER : 0x10;
  uint32_t order[] = {VFS_MREPL, VFS_MBEFORE, VFS_MAFTER};
  return order[pick(3)] | (pick(3) == 0 ? VFS_MCREATE : 0);
}

/* Runs a table call the model judged: expect is 0 or the errno. */
static void judge(int expect, int got, const char *what) {
  if (expect < 0) {
    CHECK(got == expect, "%s: %d, model says %d", what, got, expect);
    CHECK(memcmp(snap, kd, sizeof *kd) == 0, "%s refused but changed", what);
  } else {
    CHECK(got >= 0, "%s: %d, model says it succeeds", what, got);
    clunks_reported += got;
  }
}

static void step_bind(bool is_mount) {
  int p = pick(NPROC), dst = pick_name();
  int src = is_mount && pick(8) != 0 ? first_server + pick(2) : pick_name();
  uint32_t flag = random_flag(), ns = kd->vfs.vproc[p].ns;
  uint32_t s = chan_for(src), d = chan_for(dst);
  int expect = model_bind(&mg[pg[p]], src, dst, flag, is_mount);
  if (expect < 0)
    snap_take();
  int got =
      is_mount ? vfs_mount(kd, ns, s, d, flag) : vfs_bind(kd, ns, s, d, flag);
  judge(expect, got,
        fmtmsg("%s %d onto %d flag %#x in proc %d", is_mount ? "mount" : "bind",
               src, dst, flag, p));
  unref_counted(s);
  unref_counted(d);
}

static void step_unmount(void) {
  int p = pick(NPROC), dst = pick_name(), src = pick(3) ? pick_name() : -1;
  struct mgroup *g = &mg[pg[p]];
  if (pick(2) && g->nmount > 0) { /* mostly aim at a real point */
    struct mmount *e = &g->m[pick(g->nmount)];
    dst = e->from;
    src = src >= 0 ? e->member[pick(e->n)] : -1;
  }
  uint32_t s = src >= 0 ? chan_for(src) : UK_VFS_NONE, d = chan_for(dst);
  int expect = model_unmount(g, src, dst);
  if (expect < 0)
    snap_take();
  int got = vfs_unmount(kd, kd->vfs.vproc[p].ns, s, d);
  judge(expect, got, fmtmsg("unmount %d from %d in proc %d", src, dst, p));
  if (s != UK_VFS_NONE)
    unref_counted(s);
  unref_counted(d);
}

/* The model group for a process leaving group `from` as rfflags say. */
static int model_group_for(int from, uint32_t rfflags) {
  if (!(rfflags & (VFS_RFNAMEG | VFS_RFCNAMEG))) {
    mg[from].procs++;
    return from;
  }
  int g = mg_alloc();
  if (rfflags & VFS_RFNAMEG) {
    mg[g].nmount = mg[from].nmount;
    memcpy(mg[g].m, mg[from].m, sizeof mg[g].m);
  }
  mg[g].procs = 1;
  return g;
}

static void step_rfork(bool wide) {
  int p = pick(NPROC);
  uint32_t rf = !wide && pick(3) == 0 ? VFS_RFCNAMEG : VFS_RFNAMEG;
  int g = model_group_for(pg[p], rf);
  mg_leave(pg[p]);
  pg[p] = g;
  judge(0, vfs_proc_rfork(kd, (uint32_t)p, rf),
        fmtmsg("rfork %#x of proc %d", rf, p));
}

/* Process p exits and is started again as a child of q. */
static void step_refork(bool wide) {
  int p = pick(NPROC), q = (p + 1 + pick(NPROC - 1)) % NPROC;
  uint32_t modes[] = {0, VFS_RFNAMEG, VFS_RFCNAMEG};
  uint32_t rf = modes[pick(wide ? 2 : 3)] | (pick(2) ? VFS_RFCFDG : 0);
  mg_leave(pg[p]);
  judge(0, vfs_proc_release(kd, (uint32_t)p), fmtmsg("release %d", p));
  pg[p] = model_group_for(pg[q], rf);
  judge(0, vfs_proc_fork(kd, (uint32_t)q, (uint32_t)p, rf),
        fmtmsg("fork %d from %d with %#x", p, q, rf));
}

/* --- Comparing the tables with the model. --- */

/* A union read as "member: entries ..." for each distinct member visited,
 * an entry being the member and letter ("3: 3a 3c 5: 5b"), then each walk
 * of a letter. */
static void compare_union(uint32_t ns, int m, const struct mmount *e) {
  char want[160] = "", got[160] = "";
  int seen[UK_UNION_MAX], nseen = 0;
  unsigned letters = 0;
  for (int k = 0; k < e->n; k++) {
    bool again = false;
    for (int j = 0; j < nseen; j++)
      again |= seen[j] == e->member[k];
    if (again)
      continue;
    seen[nseen++] = e->member[k];
    snprintf(want + strlen(want), 8, "%d: ", e->member[k]);
    for (int l = 0; l < NLETTERS; l++)
      if ((pool[e->member[k]].letters >> l & 1) && !(letters >> l & 1)) {
        letters |= 1u << l;
        snprintf(want + strlen(want), 8, "%d%c ", e->member[k], 'a' + l);
      }
  }
  int pos = 0;
  for (uint32_t c; (c = vfs_union_next(kd, ns, m, &pos)) != UK_VFS_NONE;) {
    int n = name_of(c);
    snprintf(got + strlen(got), 8, "%d: ", n);
    for (int l = 0; l < NLETTERS; l++) {
      char entry[2] = {(char)('a' + l), 0};
      if ((pool[n].letters >> l & 1) &&
          vfs_union_shows(kd, ns, m, pos, entry, has, NULL))
        snprintf(got + strlen(got), 8, "%d%c ", n, 'a' + l);
    }
  }
  CHECK(strcmp(want, got) == 0, "union at %d reads [%s], model [%s]", e->from,
        got, want);
  for (int l = 0; l < NLETTERS; l++) {
    char entry[2] = {(char)('a' + l), 0};
    uint32_t c = vfs_union_find(kd, ns, m, entry, has, NULL);
    int w = -1;
    for (int k = 0; k < e->n && w < 0; k++)
      if (pool[e->member[k]].letters >> l & 1)
        w = e->member[k];
    CHECK((c == UK_VFS_NONE ? -1 : name_of(c)) == w, "walk %c at %d", 'a' + l,
          e->from);
  }
}

static void compare_group(int p) {
  const struct mgroup *mgp = &mg[pg[p]];
  uint32_t ns = kd->vfs.vproc[p].ns;
  int gi = vfs_ns_lookup(kd, ns);
  CHECK(gi >= 0, "proc %d has no live group", p);
  const struct uk_nsgroup *g = &kd->vfs.ns[gi];
  CHECK((int)g->nmount == mgp->nmount, "proc %d: %u mounts, model %d", p,
        g->nmount, mgp->nmount);
  for (int k = 0; k < mgp->nmount; k++) {
    const struct uk_mount *e = &g->mount[k];
    const struct mmount *w = &mgp->m[k];
    CHECK(name_of(e->from) == w->from && e->n == w->n,
          "proc %d mount %d: on %d with %d, model on %d with %d", p, k,
          name_of(e->from), e->n, w->from, w->n);
    for (int j = 0; j < w->n; j++)
      CHECK(name_of(e->member[j]) == w->member[j] && e->mflag[j] == w->flag[j],
            "proc %d mount %d member %d", p, k, j);
  }
  for (int n = 0; n < npool; n++) {
    int m = vfs_mount_lookup(kd, ns, probe[n]), w = mfind(mgp, n);
    CHECK(m == (w < 0 ? -ENOENT : w), "lookup %d in proc %d: %d, model %d", n,
          p, m, w);
    uint32_t t;
    int r = vfs_create_target(kd, ns, probe[n], &t), wt = w < 0 ? n : -1;
    for (int k = 0; w >= 0 && k < mgp->m[w].n && wt < 0; k++)
      if (mgp->m[w].flag[k] & UK_MCREATE)
        wt = mgp->m[w].member[k];
    CHECK(wt < 0 ? r == -EACCES : r == 0 && name_of(t) == wt,
          "create at %d in proc %d", n, p);
    if (w >= 0)
      compare_union(ns, m, &mgp->m[w]);
  }
}

/* Every chan's reference count is the entries naming it plus our probe;
 * every clunk owed was reported. */
static void census(void) {
  static uint32_t want[UK_CHAN_MAX];
  memset(want, 0, sizeof want);
  for (int n = 0; n < npool; n++)
    want[UK_VFS_INDEX(probe[n])]++;
  for (int i = 0; i < UK_NS_MAX; i++) {
    const struct uk_nsgroup *g = &kd->vfs.ns[i];
    for (uint32_t m = 0; g->state == UK_NS_LIVE && m < g->nmount; m++) {
      want[UK_VFS_INDEX(g->mount[m].from)]++;
      for (int k = 0; k < g->mount[m].n; k++)
        want[UK_VFS_INDEX(g->mount[m].member[k])]++;
    }
  }
  for (int p = 0; p < NPROC; p++) {
    const struct uk_vproc *v = &kd->vfs.vproc[p];
    want[UK_VFS_INDEX(v->root)]++;
    want[UK_VFS_INDEX(v->cwd)]++;
    for (int fd = 0; fd < UK_FD_MAX; fd++)
      if (v->fd[fd] != UK_VFS_NONE)
        want[UK_VFS_INDEX(v->fd[fd])]++;
  }
  long owed = 0;
  for (uint32_t c; (c = vfs_clunk_next(kd)) != UK_VFS_NONE; owed++)
    CHECK(vfs_chan_clunked(kd, c) == 0, "clunk of %#x", c);
  CHECK(owed == clunks_reported, "%ld clunks owed, %ld reported", owed,
        clunks_reported);
  clunks_reported = 0;
  for (int i = 0; i < UK_CHAN_MAX; i++) {
    const struct uk_chan *c = &kd->vfs.chan[i];
    CHECK(c->ref == want[i] && (c->state == UK_CHAN_LIVE) == (want[i] > 0),
          "chan %d: ref %u state %u, %u entries name it", i, c->ref, c->state,
          want[i]);
  }
  for (int p = 0; p < NPROC; p++)
    for (int q = 0; q < NPROC; q++)
      CHECK((pg[p] == pg[q]) == (kd->vfs.vproc[p].ns == kd->vfs.vproc[q].ns),
            "procs %d and %d: sharing differs from the model", p, q);
  for (int g = 0; g < MG_MAX; g++)
    if (mg[g].live)
      CHECK(mg[g].procs > 0, "model group %d without processes", g);
}

/* --- Paths: the servants' tree and the model's walk. --- */

/* What a chan is called, by value. */
struct tname {
  uint8_t type;
  uint32_t dev;
  uint64_t path;
};

static int ndirs; /* #x directories: paths 1..ndirs */

static int pool_index(struct tname t) {
  for (int n = 0; n < npool; n++)
    if (pool[n].type == t.type && pool[n].dev == t.dev &&
        pool[n].path == t.path)
      return n;
  return -1;
}

static bool tree_isdir(struct tname t) {
  return t.path < 1000;
}

static unsigned tree_letters(struct tname t) {
  int n = pool_index(t);
  if (!tree_isdir(t))
    return 0;
  if (n >= 0)
    return pool[n].letters;
  return (unsigned)(t.path * 37 + t.type + t.dev * 11) & 0x3fu;
}

/* Entry 'a' + l of directory t: "f" is a file, the others directories of
 * the same servant, among the pool's names for #x. */
static struct tname tree_child(struct tname t, int l) {
  uint64_t span = t.type == 'x' ? (uint64_t)ndirs : 3;
  struct tname c = t;
  c.path =
      l == 5 ? 1000 + t.path % 2 : 1 + (t.path * 3 + (uint64_t)l * 7) % span;
  return c;
}

static struct tname tname_of(const struct uk_chan *c) {
  return (struct tname){c->type, c->dev, c->qid.path};
}

static void tree_entry(struct tname t, const char *name, struct vfs_dir *d) {
  memset(d, 0, sizeof *d);
  d->qid.path = t.path;
  d->qid.type = tree_isdir(t) ? UK_QTDIR : 0;
  strcpy(d->name, name);
}

static int tree_gen(const struct uk_kdata *k, const struct uk_chan *c, int i,
                    struct vfs_dir *d) {
  (void)k;
  struct tname t = tname_of(c);
  if (i == VFS_GEN_SELF || i == VFS_GEN_PARENT) {
    tree_entry(i == VFS_GEN_SELF ? t : (struct tname){t.type, t.dev, 1}, "?",
               d);
    return 1;
  }
  for (int l = 0; l < NLETTERS; l++)
    if ((tree_letters(t) >> l & 1) && i-- == 0) {
      char name[2] = {(char)('a' + l), 0};
      tree_entry(tree_child(t, l), name, d);
      return 1;
    }
  return 0;
}

/* A servant's root is its path 1 (#x's is the processes' root). */
static int attach_at(uint8_t dc, const char *spec, struct uk_chan *c) {
  if (spec[0] != '\0')
    return -EINVAL;
  memset(c, 0, sizeof *c);
  c->type = dc;
  c->qid.path = 1;
  c->qid.type = UK_QTDIR;
  return 0;
}

static int xattach(const struct uk_kdata *k, const char *spec,
                   struct uk_chan *c) {
  (void)k;
  return attach_at('x', spec, c);
}

static int yattach(const struct uk_kdata *k, const char *spec,
                   struct uk_chan *c) {
  (void)k;
  return attach_at('y', spec, c);
}

static const struct vfs_dev xdev = {
    .dc = 'x', .name = "modelx", .gen = tree_gen, .attach = xattach};
static const struct vfs_dev ydev = {
    .dc = 'y', .name = "modely", .gen = tree_gen, .attach = yattach};
static const struct vfs_dev mdev = {
    .dc = UK_CHAN_MNT, .name = "modelmnt", .gen = tree_gen};

static void init(void) {
  kd_new();
  cr_assert_eq(vfs_dev_add(&xdev), 0);
  cr_assert_eq(vfs_dev_add(&ydev), 0);
  cr_assert_eq(vfs_dev_add(&mdev), 0);
}

TestSuite(vfs_model, .init = init, .fini = kd_free);

static uint64_t prng;
static long paths_done, paths_errs[4], paths_union;

static uint64_t pnext(void) {
  uint64_t z = (prng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static int ppick(int n) {
  return (int)(pnext() % (uint64_t)n);
}

/* A random path into buf; returns its length. */
static size_t random_path(char *buf) {
  static const char *const starts[] = {"/", "", "#x", "#y/", "/./", "#xz"};
  static const char *const elems[] = {"a", "b", "c",  "d", "e",
                                      "f", ".", "..", "",  "g"};
  size_t len = 0;
  int bad = ppick(40);
  if (bad == 0)
    return 0; /* empty */
  len += (size_t)sprintf(buf, "%s", starts[bad == 3 ? 5 : ppick(5)]);
  for (int k = 0, n = 1 + ppick(6); k < n; k++) {
    if (len > 0 && buf[len - 1] != '/')
      buf[len++] = '/';
    len += (size_t)sprintf(buf + len, "%s", elems[ppick(k < 2 ? 8 : 10)]);
  }
  if (len == 0)
    buf[len++] = '.';
  if (bad == 1)
    buf[ppick((int)len)] = '\0'; /* a NUL inside */
  if (bad == 2) {
    while (len <= UK_PATH_MAX)
      buf[len++] = '/';
  }
  return len;
}

/* The model's walk of buf[0..len) for process p: 0 and *out, or errno. */
/* The model's name of the walk so far: names[0..nlen[d]) at depth d; for
 * a walk from the cwd (which has no name here) none. */
static char mname[UK_PATH_MAX + 8];
static size_t mlen[UK_PATH_MAX];
static bool mnamed;

static void mname_push(int depth, const char *e) {
  size_t n = mlen[depth];
  if (n > 0 && (mname[n - 1] != '/' || (n == 2 && mname[0] == '#')))
    mname[n++] = '/';
  strcpy(mname + n, e);
  mlen[depth + 1] = n + strlen(e);
}

static int model_namec(int p, const char *buf, size_t len, struct tname *out) {
  if (len == 0 || memchr(buf, '\0', len) != NULL)
    return -EINVAL;
  if (len > UK_PATH_MAX)
    return -ENAMETOOLONG;
  char path[UK_PATH_MAX + 1];
  memcpy(path, buf, len);
  path[len] = '\0';
  struct tname root = {pool[0].type, pool[0].dev, pool[0].path};
  struct tname cwd = {pool[1].type, pool[1].dev, pool[1].path};
  struct tname stack[UK_PATH_MAX];
  int depth = 0;
  char *rest = path;
  mnamed = path[0] == '#' || path[0] == '/';
  mlen[0] = path[0] == '#' ? 2 : mnamed;
  memcpy(mname, path[0] == '#' ? path : "/", mlen[0]);
  if (path[0] == '#') {
    if (path[2] != '\0' && path[2] != '/')
      return -EINVAL; /* a spec our servants refuse */
    stack[0] = (struct tname){(uint8_t)path[1], 0, 1};
    rest = path + 2;
  } else {
    stack[0] = path[0] == '/' ? root : cwd;
  }
  const struct mgroup *g = &mg[pg[p]];
  char *save = NULL;
  for (char *e = strtok_r(rest, "/", &save); e;
       e = strtok_r(NULL, "/", &save)) {
    struct tname t = stack[depth];
    if (strcmp(e, ".") == 0)
      continue;
    if (!tree_isdir(t))
      return -ENOTDIR;
    if (strcmp(e, "..") == 0) {
      if (depth > 0)
        depth--;
      else
        stack[0] = (struct tname){t.type, t.dev, 1};
      continue;
    }
    int l = e[0] - 'a', n = pool_index(t), m = n < 0 ? -1 : mfind(g, n);
    int from = -1;
    if (m < 0 && (tree_letters(t) >> l & 1) && l < NLETTERS)
      from = 1;
    for (int k = 0; m >= 0 && k < g->m[m].n && from < 0; k++) {
      struct name *w = &pool[g->m[m].member[k]];
      struct tname mt = {w->type, w->dev, w->path};
      if (l < NLETTERS && (tree_letters(mt) >> l & 1)) {
        t = mt;
        from = 1;
        paths_union += k > 0; /* found past the first member */
      }
    }
    if (from < 0)
      return -ENOENT;
    mname_push(depth, e);
    stack[++depth] = tree_child(t, l);
  }
  *out = stack[depth];
  mname[mnamed ? mlen[depth] : 0] = '\0';
  return 0;
}

static void compare_namec(void) {
  static struct uk_vfs vsnap;
  char buf[UK_PATH_MAX + 64];
  int p = ppick(NPROC);
  size_t len = random_path(buf);
  struct tname want;
  int expect = model_namec(p, buf, len, &want);
  if (expect < 0)
    memcpy(&vsnap, &kd->vfs, sizeof vsnap);
  uint32_t c = UK_VFS_NONE;
  int got = vfs_namec(kd, (uint32_t)p, buf, len, &c);
  paths_done++;
  CHECK(got == expect, "namec \"%.*s\" in proc %d: %d, model %d", (int)len, buf,
        p, got, expect);
  if (expect < 0) {
    CHECK(memcmp(&vsnap, &kd->vfs, sizeof vsnap) == 0,
          "namec \"%.*s\" refused but changed", (int)len, buf);
    paths_errs[expect == -ENOENT ? 0 : expect == -ENOTDIR ? 1 : 2]++;
    return;
  }
  paths_errs[3]++;
  struct tname t = tname_of(&kd->vfs.chan[UK_VFS_INDEX(c)]);
  CHECK(t.type == want.type && t.dev == want.dev && t.path == want.path,
        "namec \"%.*s\" in proc %d: %c %u %llu, model %c %u %llu", (int)len,
        buf, p, t.type, t.dev, (unsigned long long)t.path, want.type, want.dev,
        (unsigned long long)want.path);
  CHECK(ref_of(c) == 1, "namec result has %u references", ref_of(c));
  CHECK(strcmp(kd->vfs.chan[UK_VFS_INDEX(c)].path, mname) == 0,
        "namec \"%.*s\": named \"%s\", model \"%s\"", (int)len, buf,
        kd->vfs.chan[UK_VFS_INDEX(c)].path, mname);
  unref_counted(c);
}

static void compare(void) {
  compare_namec();
  for (int p = 0; p < NPROC; p++)
    compare_group(p);
  census();
  char why[200];
  CHECK(vfs_check(kd, why, sizeof why) == 0, "vfs_check: %s", why);
}

/* One sequence: NPROC processes in one group with a root and a cwd and a
 * descriptor each, then `steps` random steps. */
static void sequence(uint64_t s, int steps, bool wide) {
  seed = s;
  rng = s;
  prng = s ^ 0x6e616d6563ull; /* "namec": paths draw apart from the steps */
  step = 0;
  pool_init(wide);
  ndirs = wide ? 40 : 6;
  for (int n = 0; n < npool; n++)
    probe[n] = chan_for(n);
  memset(mg, 0, sizeof mg);
  uint32_t ns = ns_new_ok();
  for (int p = 0; p < NPROC; p++) {
    CHECK(vfs_proc_attach(kd, (uint32_t)p, ns, probe[0], probe[1]) == 0,
          "attach");
    uint32_t f = chan_for(npool - 1);
    int fd;
    CHECK(vfs_fd_new(kd, (uint32_t)p, f, &fd) == 0, "fd");
    pg[p] = 0;
  }
  vfs_ns_unref(kd, ns);
  mg[0].live = true;
  mg[0].procs = NPROC;
  compare();
  for (step = 1; step <= steps; step++) {
    /* Percent of binds, mounts, unmounts and rforks, the rest re-forks:
     * the wide shape splits groups rarely so that one fills up. */
    static const int narrow[] = {45, 10, 20, 10}, broad[] = {65, 10, 5, 2};
    const int *mix = wide ? broad : narrow;
    int r = pick(100), kind;
    if (r < mix[0])
      step_bind(false), kind = 0;
    else if ((r -= mix[0]) < mix[1])
      step_bind(true), kind = 1;
    else if ((r -= mix[1]) < mix[2])
      step_unmount(), kind = 2;
    else if ((r -= mix[2]) < mix[3])
      step_rfork(wide), kind = 3;
    else
      step_refork(wide), kind = 4;
    ops_done[kind]++;
    compare();
  }
  for (int p = 0; p < NPROC; p++)
    clunks_reported += vfs_proc_release(kd, (uint32_t)p);
  for (int n = 0; n < npool; n++)
    unref_counted(probe[n]);
  for (uint32_t c; (c = vfs_clunk_next(kd)) != UK_VFS_NONE;)
    vfs_chan_clunked(kd, c), clunks_reported--;
  CHECK(clunks_reported == 0, "clunks at the end");
  CHECK(vfs_chan_live(kd) == 0, "%u chans left", vfs_chan_live(kd));
  for (int i = 0; i < UK_NS_MAX; i++)
    CHECK(kd->vfs.ns[i].state == UK_NS_FREE, "group %d left", i);
}

static uint64_t first_seed(void) {
  const char *e = getenv("UKSIM_VFS_SEED");
  return e ? strtoull(e, NULL, 0) : 13;
}

static int sequences(void) {
  return getenv("UKSIM_UNDER_VALGRIND") ? 6 : 120;
}

Test(vfs_model, random_sequences_match_the_model, .timeout = 50) {
  int nseq = sequences(), steps = 300;
  uint64_t s0 = first_seed();
  for (int i = 0; i < nseq; i++)
    sequence(s0 + (uint64_t)i, steps, i % 2 == 1);
  fprintf(stderr,
          "vfs model: %d sequences of %d steps from seed %llu (narrow and "
          "wide alternating): %ld binds, "
          "%ld mounts, %ld unmounts, %ld rforks, %ld re-forks; refused: "
          "%ld EINVAL, %ld ENOTDIR, %ld ENOSPC (mount table), %ld ENOSPC "
          "(union), %ld ENOENT; paths resolved: %ld (%ld found, %ld "
          "ENOENT, %ld ENOTDIR, %ld malformed; %ld names found in a union "
          "member after the first)\n",
          nseq, steps, (unsigned long long)s0, ops_done[0], ops_done[1],
          ops_done[2], ops_done[3], ops_done[4], errs[E_INVAL], errs[E_NOTDIR],
          errs[E_NOSPC_POINT], errs[E_NOSPC_UNION], errs[E_NOENT], paths_done,
          paths_errs[3], paths_errs[0], paths_errs[1], paths_errs[2],
          paths_union);
  cr_expect_gt(paths_union, 0, "no name found past a union's first member");
  for (int e = 0; e < 4; e++)
    cr_expect_gt(paths_errs[e], 0, "path outcome %d never reached", e);
  for (int e = 0; e < E_COUNT; e++)
    cr_expect_gt(errs[e], 0, "refusal %d never reached", e);
}
