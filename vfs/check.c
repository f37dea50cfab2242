/* vfs_check: every invariant of vfs.h "Invariants", for tests and for a
 * reader of another kernel's region.  It trusts nothing it reads: every
 * index is bounds-checked before it is followed.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vfs.h"
#include "vfs_int.h"

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

static bool name_ok(const char *name, size_t cap) {
  return memchr(name, '\0', cap) != NULL && name[0] != '\0';
}

static int check_cons(const struct uk_kdata *kd, struct census *c) {
  const struct uk_cons *k = &kd->vfs.cons;
  if (k->out_len > UK_CONS_OUT || k->out_head >= UK_CONS_OUT ||
      k->out_total < k->out_len || k->in_len > UK_CONS_IN ||
      k->in_head >= UK_CONS_IN || k->raw > 1)
    return fail(c, "console: out %u at %u (%llu in all), in %u at %u, raw %u",
                k->out_len, k->out_head, (unsigned long long)k->out_total,
                k->in_len, k->in_head, k->raw);
  return 0;
}

static int check_env(const struct uk_kdata *kd, struct census *c) {
  uint32_t per[UK_NS_MAX] = {0};
  for (uint32_t i = 0; i < UK_ENV_MAX; i++) {
    const struct uk_envvar *v = &kd->vfs.env[i];
    if (v->state == UK_ENV_FREE && v->ns == 0 && v->len == 0 &&
        v->name[0] == '\0')
      continue;
    int g = vfs_ns_lookup(kd, v->ns);
    if (v->state != UK_ENV_LIVE || g < 0 || v->gen == 0 ||
        !name_ok(v->name, sizeof v->name) || v->len > UK_ENV_VAL_MAX)
      return fail(c, "env %u: state %u, group %#x, len %u", i, v->state, v->ns,
                  v->len);
    if (++per[g] > UK_ENV_NS_MAX)
      return fail(c, "group %d: more than %u variables", g, UK_ENV_NS_MAX);
    for (uint32_t j = 0; j < i; j++)
      if (kd->vfs.env[j].state == UK_ENV_LIVE && kd->vfs.env[j].ns == v->ns &&
          strcmp(kd->vfs.env[j].name, v->name) == 0)
        return fail(c, "env %u and %u: one name in one group", j, i);
  }
  return 0;
}

static int check_srv(const struct uk_kdata *kd, struct census *c) {
  for (uint32_t i = 0; i < UK_SRV_MAX; i++) {
    const struct uk_srvent *e = &kd->vfs.srv[i];
    if (e->state == UK_SRV_FREE && e->svc == 0 && e->name[0] == '\0' &&
        e->posted[0] == '\0')
      continue;
    bool ok =
        (e->state == UK_SRV_CREATED && e->svc == 0 && e->posted[0] == '\0') ||
        (e->state == UK_SRV_POSTED && e->svc < UK_SVC_MAX &&
         name_ok(e->posted, sizeof e->posted));
    if (!ok || e->gen == 0 || !name_ok(e->name, sizeof e->name))
      return fail(c, "srv %u: state %u, service %u", i, e->state, e->svc);
    for (uint32_t j = 0; j < i; j++)
      if (kd->vfs.srv[j].state != UK_SRV_FREE &&
          strcmp(kd->vfs.srv[j].name, e->name) == 0)
        return fail(c, "srv %u and %u: one name", j, i);
  }
  return 0;
}

/* Every pipe chan names a pipe of its generation; a pipe no chan names
 * is clear; rings within bounds.  #I's conversations in the same pass
 * over the chans (devip.c). */
static int check_pipes(const struct uk_kdata *kd, struct census *c) {
  bool named[UK_PIPE_MAX] = {false}, conv[UK_CONV_MAX] = {false};
  for (uint32_t i = 0; i < UK_CHAN_MAX; i++) {
    const struct uk_chan *ch = &kd->vfs.chan[i];
    int r;
    if (ch->state == UK_CHAN_LIVE && ch->type == 'I' &&
        (r = vfs__ip_chan_check(kd, i, conv, c->why, c->len)) < 0)
      return r;
    if (ch->state != UK_CHAN_LIVE || ch->type != '|')
      continue;
    uint32_t p = UK_VFS_INDEX(ch->dev);
    if (p >= UK_PIPE_MAX || kd->vfs.pipe[p].gen != UK_VFS_GEN(ch->dev))
      return fail(c, "chan %u: pipe %#x is not there", i, ch->dev);
    named[p] = true;
  }
  for (uint32_t p = 0; p < UK_PIPE_MAX; p++) {
    const struct uk_pipe *q = &kd->vfs.pipe[p];
    bool clear = q->ring[0].len == 0 && q->ring[1].len == 0 &&
                 q->ring[0].head == 0 && q->ring[1].head == 0 &&
                 q->hungup[0] == 0 && q->hungup[1] == 0;
    if (!named[p] && !clear)
      return fail(c, "pipe %u: no chan names it, not cleared", p);
    for (int e = 0; e < 2; e++)
      if (q->ring[e].len > UK_PIPE_BUF || q->ring[e].head >= UK_PIPE_BUF ||
          q->hungup[e] > 1)
        return fail(c, "pipe %u end %d: %u bytes at %u, hungup %u", p, e,
                    q->ring[e].len, q->ring[e].head, q->hungup[e]);
  }
  return vfs__ip_table_check(kd, conv, c->why, c->len);
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
  if (r == 0)
    r = check_cons(kd, &c);
  if (r == 0)
    r = check_env(kd, &c);
  if (r == 0)
    r = check_srv(kd, &c);
  if (r == 0)
    r = check_pipes(kd, &c);
  if (r == 0 && len > 0)
    why[0] = '\0';
  return r;
}
