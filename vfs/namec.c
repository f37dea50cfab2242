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
 * names give the same.  A ".." that climbs above the chan the walk
 * started from (the cwd) walks the cwd's name less its last element
 * again from the start, so that it too comes back out through mount
 * points; only a cwd without a name asks its servant for the parent.
 * From the process's root ".." stays there.
 *
 * Beside the stack the walker builds the cleaned name of each step
 * (name[0..len[depth])), which the chan reached keeps for fd2path.
 */
#include <errno.h>
#include <string.h>

#include "dev.h"
#include "vfs.h"
#include "vfs_int.h"

#define DEPTH_MAX (UK_PATH_MAX / 2 + 2)

/* A step of the walk: what the chan there is called. */
struct step {
  uint8_t type;
  uint32_t dev;
  struct uk_qid qid;
};

struct walker {
  const struct uk_kdata *kd;
  uint32_t ns;
  const struct uk_vproc *v; /* the process walking */
  uint32_t root;            /* its root chan id */
  int depth;                /* stack[depth] is where the walk stands */
  bool unnamed;             /* started at a cwd without a name: no names kept */
  struct step stack[DEPTH_MAX];
  uint32_t len[DEPTH_MAX]; /* name[0..len[d]) is step d's name */
  char name[UK_PATH_MAX + 1];
};

/* A chan by value for the servant and mount-table calls. */
static void as_chan(const struct step *s, struct uk_chan *c) {
  memset(c, 0, sizeof *c);
  c->type = s->type;
  c->dev = s->dev;
  c->qid = s->qid;
}

static void from_chan(const struct uk_chan *c, struct step *s) {
  s->type = c->type;
  s->dev = c->dev;
  s->qid = c->qid;
}

/* Walks one name in directory dir through its servant into *out. */
static int walk_in(const struct walker *w, const struct uk_chan *dir,
                   const char *name, struct step *out) {
  struct uk_qid qid;
  if (!(dir->qid.type & UK_QTDIR))
    return -ENOTDIR;
  int r = vfs_dev_walk(w->kd, dir, name, &qid);
  if (r < 0)
    return r;
  out->type = dir->type;
  out->dev = dir->dev;
  out->qid = qid;
  return 0;
}

/* The name in the union at mount entry m: the first member that has it. */
static int walk_union(const struct walker *w, int m, const char *name,
                      struct step *out) {
  int pos = 0, r = -ENOENT;
  for (uint32_t id;
       (id = vfs_union_next(w->kd, w->ns, m, &pos)) != UK_VFS_NONE;) {
    r = walk_in(w, &w->kd->vfs.chan[UK_VFS_INDEX(id)], name, out);
    if (r != -ENOENT)
      return r;
  }
  return r;
}

static bool is_root(const struct walker *w, const struct step *s) {
  const struct uk_chan *r = &w->kd->vfs.chan[UK_VFS_INDEX(w->root)];
  return r->type == s->type && r->dev == s->dev && r->qid.path == s->qid.path;
}

/* Sets step 0's name to s[0..n). */
static int name_set(struct walker *w, const char *s, size_t n) {
  if (n > UK_PATH_MAX)
    return -ENAMETOOLONG;
  memcpy(w->name, s, n);
  w->len[0] = (uint32_t)n;
  return 0;
}

/* Step depth+1's name: step depth's and "/elem". */
static int name_push(struct walker *w, const char *elem) {
  uint32_t n = w->len[w->depth];
  size_t k = strlen(elem);
  /* "#X" and "#/" alike take a '/' before a name ("#//dev", not the
   * spec form "#/dev"). */
  bool slash =
      n > 0 && (w->name[n - 1] != '/' || (n == 2 && w->name[0] == '#'));
  if (w->unnamed)
    return 0;
  if (n + slash + k > UK_PATH_MAX)
    return -ENAMETOOLONG;
  if (slash)
    w->name[n++] = '/';
  memcpy(w->name + n, elem, k);
  w->len[w->depth + 1] = n + (uint32_t)k;
  return 0;
}

static int start(struct walker *w, const struct uk_vproc *v, char *path,
                 char **rest);
static int walk1(struct walker *w, const char *name);

/* ".." above the cwd, which has a name: its name less the last element,
 * walked again from where that name starts. */
static int climb(struct walker *w, const struct uk_vproc *v) {
  char up[UK_PATH_MAX + 1], *rest, *save = NULL;
  uint32_t n = w->len[0];
  while (n > 0 && w->name[n - 1] != '/')
    n--;
  if (n == 0) /* "#t": a servant's root is its own parent */
    n = w->len[0];
  else if (n > 1 && !(n == 3 && w->name[0] == '#'))
    n--; /* drop the '/' too, but keep "/" and "#X/" */
  memcpy(up, w->name, n);
  up[n] = '\0';
  w->depth = 0;
  int r = start(w, v, up, &rest);
  for (char *e = strtok_r(rest, "/", &save); r == 0 && e;
       e = strtok_r(NULL, "/", &save))
    r = walk1(w, e);
  if (r == 0 && w->depth > 0) { /* the result becomes the new step 0 */
    w->stack[0] = w->stack[w->depth];
    w->len[0] = w->len[w->depth];
    w->depth = 0;
  }
  return r;
}

static int dotdot(struct walker *w) {
  struct step *cur = &w->stack[w->depth];
  if (!(cur->qid.type & UK_QTDIR))
    return -ENOTDIR; /* as any walk in a file, even one that goes back */
  if (w->depth > 0) {
    w->depth--;
    return 0;
  }
  if (is_root(w, cur))
    return 0;
  if (!w->unnamed)
    return climb(w, w->v);
  struct uk_chan c;
  as_chan(cur, &c);
  return walk_in(w, &c, "..", cur);
}

static int walk1(struct walker *w, const char *name) {
  if (strcmp(name, ".") == 0)
    return 0;
  if (strcmp(name, "..") == 0)
    return dotdot(w);
  if (w->depth + 1 >= DEPTH_MAX)
    return -ENAMETOOLONG;
  struct uk_chan cur;
  as_chan(&w->stack[w->depth], &cur);
  struct step *next = &w->stack[w->depth + 1];
  int m = vfs__mount_of(w->kd, w->ns, &cur);
  int r;
  if (m < 0)
    r = walk_in(w, &cur, name, next);
  else if (!(cur.qid.type & UK_QTDIR))
    r = -ENOTDIR;
  else
    r = walk_union(w, m, name, next);
  if (r == 0)
    r = name_push(w, name);
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
    size_t n = slash ? (size_t)(slash - path) : strlen(path);
    char save = path[n];
    struct uk_chan c;
    path[n] = '\0';
    int r = vfs_dev_attach(w->kd, (uint8_t)path[1], path + 2, &c);
    path[n] = save;
    *rest = path + n;
    if (r < 0)
      return r == -ENODEV ? -ENOENT : r;
    from_chan(&c, &w->stack[0]);
    return name_set(w, path, n);
  }
  uint32_t id = path[0] == '/' ? v->root : v->cwd;
  const struct uk_chan *c = &w->kd->vfs.chan[UK_VFS_INDEX(id)];
  from_chan(c, &w->stack[0]);
  if (path[0] == '/')
    return name_set(w, "/", 1);
  if (c->path[0] == '\0' && is_root(w, &w->stack[0]))
    return name_set(w, "/", 1); /* a cwd at the root is called "/" */
  w->unnamed = c->path[0] == '\0';
  return name_set(w, c->path, strlen(c->path));
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
  w.v = v;
  int r = start(&w, v, buf, &rest);
  for (char *name = strtok_r(rest, "/", &save); r == 0 && name != NULL;
       name = strtok_r(NULL, "/", &save))
    r = walk1(&w, name);
  if (r < 0)
    return r;
  const struct step *top = &w.stack[w.depth];
  r = vfs_chan_new(kd, top->type, top->dev, &top->qid, c);
  if (r == 0 && !w.unnamed) {
    char *dst = kd->vfs.chan[UK_VFS_INDEX(*c)].path;
    memcpy(dst, w.name, w.len[w.depth]);
    dst[w.len[w.depth]] = '\0';
  }
  return r;
}

int vfs_fd2path(const struct uk_kdata *kd, uint32_t p, int fd, char *buf,
                size_t len) {
  uint32_t id = vfs_fd_lookup(kd, p, fd);
  if (id == UK_VFS_NONE)
    return -EBADF;
  const char *name = kd->vfs.chan[UK_VFS_INDEX(id)].path;
  size_t n = strlen(name);
  if (n == 0)
    return -ENOENT;
  if (n + 1 > len)
    return -ERANGE;
  memcpy(buf, name, n + 1);
  return 0;
}
