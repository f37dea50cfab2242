/* namec: a path to a chan in a process's namespace (seed 002 §4.2, §5.1;
 * Plan 9's port/chan.c namec and walk).
 *
 * The walk runs on copies of chans kept on a stack, one per name walked,
 * and only the chan reached goes into the table, at the end: a failed
 * namec has touched nothing, and the only failure after the walk is a
 * full chan table, refused by vfs_chan_new before it changes anything.
 *
 * At each name the walker asks whether the chan it stands on is a mount
 * point of the process's group (by name: type, dev, qid.path); if so the
 * name is walked in the union, member by member in order, the first
 * member that has it winning (vfs_union_find's rule); if not, in the chan
 * itself through its servant.  The stack holds the chans as reached, the
 * mount points and not what is mounted on them, so ".." pops back to the
 * mount point a walk entered a mounted tree through: Plan 9's cleaned
 * names give the same.  Only a ".." that climbs above the chan the walk
 * started from (the cwd) asks the servant for the parent; from the
 * process's root it stays there.
 */
#include <errno.h>
#include <string.h>

#include "dev.h"
#include "vfs.h"
#include "vfs_int.h"

struct walker {
  const struct uk_kdata *kd;
  uint32_t ns;
  uint32_t root; /* the process's root chan id */
  int depth;     /* stack[depth] is where the walk stands */
  struct uk_chan stack[UK_PATH_MAX / 2 + 2];
};

/* Walks one name in directory dir through its servant into *out. */
static int walk_in(const struct walker *w, const struct uk_chan *dir,
                   const char *name, struct uk_chan *out) {
  struct uk_qid qid;
  if (!(dir->qid.type & UK_QTDIR))
    return -ENOTDIR;
  int r = vfs_dev_walk(w->kd, dir, name, &qid);
  if (r < 0)
    return r;
  memset(out, 0, sizeof *out);
  out->type = dir->type;
  out->dev = dir->dev;
  out->qid = qid;
  return 0;
}

/* The name in the union at mount entry m: the first member that has it. */
static int walk_union(const struct walker *w, int m, const char *name,
                      struct uk_chan *out) {
  int pos = 0, r = -ENOENT;
  for (uint32_t id; (id = vfs_union_next(w->kd, w->ns, m, &pos)) != UK_VFS_NONE;) {
    r = walk_in(w, &w->kd->vfs.chan[UK_VFS_INDEX(id)], name, out);
    if (r != -ENOENT)
      return r;
  }
  return r;
}

static bool is_root(const struct walker *w, const struct uk_chan *c) {
  const struct uk_chan *r = &w->kd->vfs.chan[UK_VFS_INDEX(w->root)];
  return r->type == c->type && r->dev == c->dev && r->qid.path == c->qid.path;
}

static int dotdot(struct walker *w) {
  if (!(w->stack[w->depth].qid.type & UK_QTDIR))
    return -ENOTDIR; /* as any walk in a file, even one that goes back */
  if (w->depth > 0) {
    w->depth--;
    return 0;
  }
  struct uk_chan *cur = &w->stack[0];
  if (is_root(w, cur))
    return 0;
  struct uk_chan up;
  int r = walk_in(w, cur, "..", &up);
  if (r == 0)
    *cur = up;
  return r;
}

static int walk1(struct walker *w, const char *name) {
  if (strcmp(name, ".") == 0)
    return 0;
  if (strcmp(name, "..") == 0)
    return dotdot(w);
  const struct uk_chan *cur = &w->stack[w->depth];
  struct uk_chan *next = &w->stack[w->depth + 1];
  int m = vfs__mount_of(w->kd, w->ns, cur);
  int r;
  if (m < 0)
    r = walk_in(w, cur, name, next);
  else if (!(cur->qid.type & UK_QTDIR))
    r = -ENOTDIR;
  else
    r = walk_union(w, m, name, next);
  if (r == 0)
    w->depth++;
  return r;
}

/* The chan a path starts from: "#Xspec" (the rest is left in *rest), the
 * root for "/...", else the cwd. */
static int start(struct walker *w, const struct uk_vproc *v, char *path,
                 char **rest) {
  *rest = path;
  if (path[0] == '#') {
    if (path[1] == '\0')
      return -EINVAL;
    char *slash = strchr(path + 2, '/');
    char save = slash ? *slash : '\0';
    if (slash)
      *slash = '\0';
    int r = vfs_dev_attach(w->kd, (uint8_t)path[1], path + 2, &w->stack[0]);
    if (slash)
      *slash = save;
    *rest = slash ? slash : path + strlen(path);
    return r == -ENODEV ? -ENOENT : r;
  }
  uint32_t id = path[0] == '/' ? v->root : v->cwd;
  memcpy(&w->stack[0], &w->kd->vfs.chan[UK_VFS_INDEX(id)], sizeof w->stack[0]);
  return 0;
}

int vfs_namec(struct uk_kdata *kd, uint32_t p, const char *path, size_t len,
              uint32_t *c) {
  if (p >= UK_PROC_MAX || !kd->vfs.vproc[p].attached)
    return -ESRCH;
  if (path == NULL || len == 0 || memchr(path, '\0', len) != NULL)
    return -EINVAL;
  if (len > UK_PATH_MAX)
    return -ENAMETOOLONG;
  const struct uk_vproc *v = &kd->vfs.vproc[p];
  static struct walker zero;
  struct walker w = zero;
  char buf[UK_PATH_MAX + 1], *rest, *save = NULL;
  memcpy(buf, path, len);
  buf[len] = '\0';
  w.kd = kd;
  w.ns = v->ns;
  w.root = v->root;
  int r = start(&w, v, buf, &rest);
  for (char *name = strtok_r(rest, "/", &save); r == 0 && name != NULL;
       name = strtok_r(NULL, "/", &save))
    r = walk1(&w, name);
  if (r < 0)
    return r;
  const struct uk_chan *top = &w.stack[w.depth];
  return vfs_chan_new(kd, top->type, top->dev, &top->qid, c);
}
