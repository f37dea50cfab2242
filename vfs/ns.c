/* Namespace groups and their mount tables: bind, mount, unmount, the
 * lookup at a mount point and union directories (vfs.h has the semantics
 * and which of them follow Plan 9).
 *
 * A group holds at most UK_MOUNT_MAX mount entries, kept packed in the
 * order their mount points were first bound onto; lookups scan them, which
 * at 32 entries costs less than keeping a hash in the region.  Every change
 * first checks everything that can fail, then takes the new references,
 * then drops the old ones: a refused call leaves the tables as they were,
 * and a chan moving within a union is never freed on the way.
 */
#include <errno.h>
#include <string.h>

#include "vfs.h"
#include "vfs_int.h"

/* A union list being built: members and their flags, in order. */
struct ulist {
  int n;
  uint32_t member[UK_UNION_MAX * 2];
  uint8_t mflag[UK_UNION_MAX * 2];
};

static void ulist_add(struct ulist *u, uint32_t c, uint8_t flag) {
  u->member[u->n] = c;
  u->mflag[u->n] = flag;
  u->n++;
}

static void ulist_cat(struct ulist *u, const struct ulist *v) {
  for (int i = 0; i < v->n; i++)
    ulist_add(u, v->member[i], v->mflag[i]);
}

int vfs_ns_lookup(const struct uk_kdata *kd, uint32_t ns) {
  uint32_t i = UK_VFS_INDEX(ns);
  if (ns == UK_VFS_NONE || i >= UK_NS_MAX ||
      kd->vfs.ns[i].state != UK_NS_LIVE || kd->vfs.ns[i].gen != UK_VFS_GEN(ns))
    return -EINVAL;
  return (int)i;
}

struct uk_nsgroup *vfs__ns(struct uk_kdata *kd, uint32_t ns) {
  int i = vfs_ns_lookup(kd, ns);
  return i < 0 ? NULL : &kd->vfs.ns[i];
}

static const struct uk_nsgroup *ns_const(const struct uk_kdata *kd,
                                         uint32_t ns) {
  int i = vfs_ns_lookup(kd, ns);
  return i < 0 ? NULL : &kd->vfs.ns[i];
}

/* A free group slot made LIVE with one reference and no mounts. */
static int ns_alloc(struct uk_kdata *kd, uint32_t *ns) {
  for (uint32_t i = 0; i < UK_NS_MAX; i++) {
    struct uk_nsgroup *g = &kd->vfs.ns[i];
    if (g->state != UK_NS_FREE)
      continue;
    uint16_t gen = (uint16_t)(g->gen + 1);
    memset(g, 0, sizeof *g);
    g->gen = gen != 0 ? gen : 1;
    g->state = UK_NS_LIVE;
    g->ref = 1;
    *ns = UK_VFS_ID(i, g->gen);
    return (int)i;
  }
  return -ENOSPC;
}

int vfs_ns_new(struct uk_kdata *kd, uint32_t *ns) {
  int r = ns_alloc(kd, ns);
  return r < 0 ? r : 0;
}

static void mount_ref(struct uk_kdata *kd, const struct uk_mount *e) {
  vfs_chan_ref(kd, e->from);
  for (int k = 0; k < e->n; k++)
    vfs_chan_ref(kd, e->member[k]);
}

static void mount_unref(struct uk_kdata *kd, const struct uk_mount *e,
                        int *clunks) {
  for (int k = 0; k < e->n; k++)
    vfs__unref(kd, e->member[k], clunks);
  vfs__unref(kd, e->from, clunks);
}

int vfs_ns_copy(struct uk_kdata *kd, uint32_t from, uint32_t *ns) {
  const struct uk_nsgroup *src = vfs__ns(kd, from);
  if (src == NULL)
    return -EINVAL;
  if (!vfs__env_fits(kd, from))
    return -ENOSPC; /* checked first: a refused copy changes nothing */
  int i = ns_alloc(kd, ns);
  if (i < 0)
    return i;
  struct uk_nsgroup *g = &kd->vfs.ns[i];
  g->nmount = src->nmount;
  memcpy(g->mount, src->mount, sizeof g->mount);
  for (uint32_t m = 0; m < g->nmount; m++)
    mount_ref(kd, &g->mount[m]);
  vfs__env_copy(kd, from, *ns);
  return 0;
}

int vfs_ns_ref(struct uk_kdata *kd, uint32_t ns) {
  struct uk_nsgroup *g = vfs__ns(kd, ns);
  if (g == NULL)
    return -EINVAL;
  g->ref++;
  return 0;
}

int vfs_ns_unref(struct uk_kdata *kd, uint32_t ns) {
  struct uk_nsgroup *g = vfs__ns(kd, ns);
  if (g == NULL)
    return -EINVAL;
  if (--g->ref > 0)
    return 0;
  int clunks = 0;
  for (uint32_t m = 0; m < g->nmount; m++)
    mount_unref(kd, &g->mount[m], &clunks);
  vfs__env_free(kd, ns);
  uint16_t gen = g->gen;
  memset(g, 0, sizeof *g);
  g->gen = gen;
  return clunks;
}

/* The entry whose mount point is named like chan c, or -1. */
static int mount_find(const struct uk_kdata *kd, const struct uk_nsgroup *g,
                      uint32_t c) {
  for (uint32_t m = 0; m < g->nmount; m++)
    if (vfs_chan_same(kd, g->mount[m].from, c))
      return (int)m;
  return -1;
}

int vfs__mount_of(const struct uk_kdata *kd, uint32_t ns,
                  const struct uk_chan *c) {
  const struct uk_nsgroup *g = ns_const(kd, ns);
  for (uint32_t m = 0; g != NULL && m < g->nmount; m++) {
    int i = vfs_chan_lookup(kd, g->mount[m].from);
    if (i < 0)
      continue;
    const struct uk_chan *f = &kd->vfs.chan[i];
    if (f->type == c->type && f->dev == c->dev && f->qid.path == c->qid.path)
      return (int)m;
  }
  return -1;
}

/* Checks what bind and mount both require of new and old. */
static int check_bind(const struct uk_kdata *kd, uint32_t new, uint32_t old,
                      uint32_t flag) {
  if ((flag & ~(VFS_MORDER | VFS_MCREATE)) != 0 ||
      (flag & VFS_MORDER) == VFS_MORDER)
    return -EINVAL;
  if (vfs_chan_lookup(kd, new) < 0 || vfs_chan_lookup(kd, old) < 0)
    return -EBADF;
  if (vfs_chan_isdir(kd, new) != vfs_chan_isdir(kd, old))
    return -EINVAL;
  if ((flag & VFS_MORDER) != VFS_MREPL && !vfs_chan_isdir(kd, old))
    return -ENOTDIR;
  return 0;
}

/* Puts the members `add` onto mount point old in the order the flag says
 * (vfs.h "vfs_bind"). */
static int attach_union(struct uk_kdata *kd, struct uk_nsgroup *g, uint32_t old,
                        const struct ulist *add, uint32_t flag) {
  uint32_t order = flag & VFS_MORDER;
  int m = mount_find(kd, g, old);
  struct ulist base = {0}, next = {0};
  if (m < 0 && g->nmount == UK_MOUNT_MAX)
    return -ENOSPC;
  if (m < 0 && order != VFS_MREPL)
    ulist_add(&base, old, 0);
  if (m >= 0 && order != VFS_MREPL)
    for (int k = 0; k < g->mount[m].n; k++)
      ulist_add(&base, g->mount[m].member[k], g->mount[m].mflag[k]);
  if (base.n + add->n > UK_UNION_MAX)
    return -ENOSPC;
  ulist_cat(&next, order == VFS_MAFTER ? &base : add);
  ulist_cat(&next, order == VFS_MAFTER ? add : &base);

  struct uk_mount *e = &g->mount[m >= 0 ? (uint32_t)m : g->nmount];
  struct uk_mount prev = *e;
  for (int k = 0; k < next.n; k++)
    vfs_chan_ref(kd, next.member[k]);
  int clunks = 0;
  if (m < 0) {
    memset(e, 0, sizeof *e);
    e->from = old;
    vfs_chan_ref(kd, old);
    g->nmount++;
  } else {
    for (int k = 0; k < prev.n; k++)
      vfs__unref(kd, prev.member[k], &clunks);
  }
  memset(e->member, 0, sizeof e->member);
  memset(e->mflag, 0, sizeof e->mflag);
  e->n = (uint8_t)next.n;
  memcpy(e->member, next.member, sizeof e->member[0] * (size_t)next.n);
  memcpy(e->mflag, next.mflag, (size_t)next.n);
  return clunks;
}

int vfs_bind(struct uk_kdata *kd, uint32_t ns, uint32_t new, uint32_t old,
             uint32_t flag) {
  struct uk_nsgroup *g = vfs__ns(kd, ns);
  if (g == NULL)
    return -EINVAL;
  int r = check_bind(kd, new, old, flag);
  if (r < 0)
    return r;
  struct ulist add = {0};
  int src = mount_find(kd, g, new);
  if (src < 0) {
    ulist_add(&add, new, (uint8_t)(flag & VFS_MCREATE));
  } else {
    /* Binding a union copies it; only the first copy may create. */
    const struct uk_mount *u = &g->mount[src];
    for (int k = 0; k < u->n; k++)
      ulist_add(&add, u->member[k], k == 0 ? (uint8_t)(flag & VFS_MCREATE) : 0);
  }
  return attach_union(kd, g, old, &add, flag);
}

int vfs_mount(struct uk_kdata *kd, uint32_t ns, uint32_t c, uint32_t old,
              uint32_t flag) {
  struct uk_nsgroup *g = vfs__ns(kd, ns);
  if (g == NULL)
    return -EINVAL;
  int r = check_bind(kd, c, old, flag);
  if (r < 0)
    return r;
  if (kd->vfs.chan[vfs_chan_lookup(kd, c)].type != UK_CHAN_MNT)
    return -EINVAL;
  struct ulist add = {0};
  ulist_add(&add, c, (uint8_t)(flag & VFS_MCREATE));
  return attach_union(kd, g, old, &add, flag);
}

/* Removes mount entry m, keeping the others in order. */
static void mount_remove(struct uk_kdata *kd, struct uk_nsgroup *g, int m,
                         int *clunks) {
  mount_unref(kd, &g->mount[m], clunks);
  memmove(&g->mount[m], &g->mount[m + 1],
          sizeof g->mount[0] * (g->nmount - (uint32_t)m - 1));
  g->nmount--;
  memset(&g->mount[g->nmount], 0, sizeof g->mount[0]);
}

int vfs_unmount(struct uk_kdata *kd, uint32_t ns, uint32_t new, uint32_t old) {
  struct uk_nsgroup *g = vfs__ns(kd, ns);
  if (g == NULL)
    return -EINVAL;
  if (vfs_chan_lookup(kd, old) < 0 ||
      (new != UK_VFS_NONE &&vfs_chan_lookup(kd, new) < 0))
    return -EBADF;
  int m = mount_find(kd, g, old);
  if (m < 0)
    return -EINVAL; /* not a mount point */
  struct uk_mount *e = &g->mount[m];
  int k = 0;
  while (new != UK_VFS_NONE && k < e->n &&
         !vfs_chan_same(kd, e->member[k], new))
    k++;
  if (k == e->n)
    return -ENOENT; /* not in the union */
  int clunks = 0;
  if (new == UK_VFS_NONE || e->n == 1) {
    mount_remove(kd, g, m, &clunks);
    return clunks;
  }
  vfs__unref(kd, e->member[k], &clunks);
  memmove(&e->member[k], &e->member[k + 1],
          sizeof e->member[0] * (size_t)(e->n - k - 1));
  memmove(&e->mflag[k], &e->mflag[k + 1], (size_t)(e->n - k - 1));
  e->n--;
  e->member[e->n] = UK_VFS_NONE;
  e->mflag[e->n] = 0;
  return clunks;
}

int vfs_mount_lookup(const struct uk_kdata *kd, uint32_t ns, uint32_t c) {
  const struct uk_nsgroup *g = ns_const(kd, ns);
  if (g == NULL)
    return -EINVAL;
  if (vfs_chan_lookup(kd, c) < 0)
    return -EBADF;
  int m = mount_find(kd, g, c);
  return m < 0 ? -ENOENT : m;
}

/* Mount entry m of group ns, or NULL if either is not valid. */
static const struct uk_mount *entry(const struct uk_kdata *kd, uint32_t ns,
                                    int m) {
  const struct uk_nsgroup *g = ns_const(kd, ns);
  if (g == NULL || m < 0 || (uint32_t)m >= g->nmount)
    return NULL;
  return &g->mount[m];
}

/* Whether member k repeats an earlier member of the union. */
static bool repeated(const struct uk_kdata *kd, const struct uk_mount *e,
                     int k) {
  for (int j = 0; j < k; j++)
    if (vfs_chan_same(kd, e->member[j], e->member[k]))
      return true;
  return false;
}

uint32_t vfs_union_next(const struct uk_kdata *kd, uint32_t ns, int m,
                        int *pos) {
  const struct uk_mount *e = entry(kd, ns, m);
  if (e == NULL || *pos < 0)
    return UK_VFS_NONE;
  for (int k = *pos; k < e->n; k++) {
    if (repeated(kd, e, k))
      continue;
    *pos = k + 1;
    return e->member[k];
  }
  *pos = e->n;
  return UK_VFS_NONE;
}

bool vfs_union_shows(const struct uk_kdata *kd, uint32_t ns, int m, int pos,
                     const char *name, vfs_has_fn has, void *arg) {
  const struct uk_mount *e = entry(kd, ns, m);
  if (e == NULL || pos < 1 || pos > e->n)
    return false;
  for (int j = 0; j < pos - 1; j++)
    if (!repeated(kd, e, j) && has(arg, e->member[j], name))
      return false;
  return true;
}

uint32_t vfs_union_find(const struct uk_kdata *kd, uint32_t ns, int m,
                        const char *name, vfs_has_fn has, void *arg) {
  int pos = 0;
  for (uint32_t c; (c = vfs_union_next(kd, ns, m, &pos)) != UK_VFS_NONE;)
    if (has(arg, c, name))
      return c;
  return UK_VFS_NONE;
}

int vfs_create_target(const struct uk_kdata *kd, uint32_t ns, uint32_t dir,
                      uint32_t *target) {
  int m = vfs_mount_lookup(kd, ns, dir);
  if (m == -ENOENT) {
    *target = dir;
    return 0;
  }
  if (m < 0)
    return m;
  const struct uk_mount *e = entry(kd, ns, m);
  for (int k = 0; k < e->n; k++)
    if (e->mflag[k] & UK_MCREATE) {
      *target = e->member[k];
      return 0;
    }
  return -EACCES; /* "mounted directory forbids creation" */
}
