/* vfs_check: every invariant of vfs.h "Invariants", for tests and for a
 * reader of another kernel's region.  It trusts nothing it reads: every
 * index is bounds-checked before it is followed.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vfs.h"

struct census {
  uint32_t chan[UK_CHAN_MAX]; /* ids stored in the tables, per chan */
  uint32_t ns[UK_NS_MAX];     /* processes attached, per group */
  char *why;
  unsigned len;
};

static int fail(struct census *c, const char *fmt, ...) {
  if (c->len > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, c->len, fmt, ap);
    va_end(ap);
  }
  return -EUCLEAN;
}

/* Counts one stored chan id, which must name a LIVE chan. */
static int count_chan(const struct uk_kdata *kd, struct census *c, uint32_t id,
                      const char *where, uint32_t n) {
  int i = vfs_chan_lookup(kd, id);
  if (i < 0)
    return fail(c, "%s %u: chan id %#x is not live", where, n, id);
  c->chan[i]++;
  return 0;
}

static int check_chans(const struct uk_kdata *kd, struct census *c) {
  for (uint32_t i = 0; i < UK_CHAN_MAX; i++) {
    const struct uk_chan *ch = &kd->vfs.chan[i];
    bool ok =
        (ch->state == UK_CHAN_FREE && ch->ref == 0) ||
        (ch->state == UK_CHAN_LIVE && ch->ref >= c->chan[i] && ch->ref >= 1) ||
        (ch->state == UK_CHAN_CLUNK && ch->ref == 0 && ch->type == UK_CHAN_MNT);
    if (!ok)
      return fail(c, "chan %u: state %u, ref %u, %u stored references", i,
                  ch->state, ch->ref, c->chan[i]);
    if (ch->state != UK_CHAN_FREE &&
        memchr(ch->path, '\0', sizeof ch->path) == NULL)
      return fail(c, "chan %u: path not terminated", i);
  }
  return 0;
}

static int check_mount(const struct uk_kdata *kd, struct census *c,
                       const struct uk_nsgroup *g, uint32_t gi, uint32_t m) {
  const struct uk_mount *e = &g->mount[m];
  int r = count_chan(kd, c, e->from, "mount point of group", gi);
  if (r < 0)
    return r;
  if (e->n < 1 || e->n > UK_UNION_MAX)
    return fail(c, "group %u mount %u: %u members", gi, m, e->n);
  for (uint32_t k = 0; k < e->n; k++) {
    if ((r = count_chan(kd, c, e->member[k], "union member in group", gi)) < 0)
      return r;
    if ((e->mflag[k] & ~UK_MCREATE) != 0 ||
        vfs_chan_isdir(kd, e->member[k]) != vfs_chan_isdir(kd, e->from))
      return fail(c, "group %u mount %u member %u: flags %#x or dir-ness", gi,
                  m, k, e->mflag[k]);
  }
  for (uint32_t j = 0; j < m; j++)
    if (vfs_chan_same(kd, g->mount[j].from, e->from))
      return fail(c, "group %u: mounts %u and %u on the same point", gi, j, m);
  return 0;
}

static int check_groups(const struct uk_kdata *kd, struct census *c) {
  for (uint32_t i = 0; i < UK_NS_MAX; i++) {
    const struct uk_nsgroup *g = &kd->vfs.ns[i];
    if (g->state == UK_NS_FREE) {
      if (g->ref != 0 || g->nmount != 0)
        return fail(c, "free group %u: ref %u, %u mounts", i, g->ref,
                    g->nmount);
      continue;
    }
    if (g->state != UK_NS_LIVE || g->ref < 1 || g->nmount > UK_MOUNT_MAX)
      return fail(c, "group %u: state %u, ref %u, %u mounts", i, g->state,
                  g->ref, g->nmount);
    for (uint32_t m = 0; m < g->nmount; m++) {
      int r = check_mount(kd, c, g, i, m);
      if (r < 0)
        return r;
    }
  }
  return 0;
}

static int check_procs(const struct uk_kdata *kd, struct census *c) {
  static const struct uk_vproc zero;
  for (uint32_t p = 0; p < UK_PROC_MAX; p++) {
    const struct uk_vproc *v = &kd->vfs.vproc[p];
    if (!v->attached) {
      if (memcmp(v, &zero, sizeof zero) != 0)
        return fail(c, "detached process %u stores ids", p);
      continue;
    }
    int g = vfs_ns_lookup(kd, v->ns);
    if (v->attached != 1 || g < 0)
      return fail(c, "process %u: group id %#x is not live", p, v->ns);
    c->ns[g]++;
    int r = count_chan(kd, c, v->root, "root of process", p);
    if (r == 0)
      r = count_chan(kd, c, v->cwd, "cwd of process", p);
    for (int fd = 0; r == 0 && fd < UK_FD_MAX; fd++)
      if (v->fd[fd] != UK_VFS_NONE)
        r = count_chan(kd, c, v->fd[fd], "descriptor of process", p);
    if (r < 0)
      return r;
  }
  for (uint32_t i = 0; i < UK_NS_MAX; i++)
    if (kd->vfs.ns[i].ref < c->ns[i])
      return fail(c, "group %u: ref %u, %u processes attached", i,
                  kd->vfs.ns[i].ref, c->ns[i]);
  return 0;
}

int vfs_check(const struct uk_kdata *kd, char *why, unsigned len) {
  static struct census zero;
  struct census c = zero;
  c.why = why;
  c.len = len;
  int r = check_groups(kd, &c);
  if (r == 0)
    r = check_procs(kd, &c);
  if (r == 0)
    r = check_chans(kd, &c);
  if (r == 0 && len > 0)
    why[0] = '\0';
  return r;
}
