/*
 * memfs.c: an in-memory file tree served through the p9_srv ops table
 * (what `uksim 9p serve` exports), the lib9p ramfs of this project.
 *
 * Nodes sit in one array linked by indices (parent, first child, next
 * sibling).  A fid's aux is (generation << 32 | index): removing a node
 * bumps its generation, so a fid left pointing at a removed file gets
 * "file has been removed" instead of another file's bytes.  User names
 * sit in a second array (at most MAXUSERS, index 0 the tree's own user
 * "uksim"); nodes and fids (p9_fid.uid) hold indices into it.  Expected
 * load: thousands of files, directories scanned linearly, a few users.
 *
 * As Plan 9's ramfs does, a created file belongs to the user who
 * attached, its group is the directory's, and its permissions are
 * masked by the directory's (open(5)); an exclusive-use file (DMEXCL)
 * is open on one fid at a time.  Permission bits are kept and reported
 * but not checked against the user: net9p/README.md, "memfs".
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "p9_impl.h"

typedef struct node {
  char *name;
  uint32_t parent, child, sibling; /* indices; P9__NIL ends a list */
  uint32_t gen;
  bool used;
  uint32_t mode; /* permission bits | P9_DMDIR | P9_DMAPPEND | P9_DMEXCL */
  uint32_t uid, gid, muid; /* indices into p9_memfs.user */
  uint32_t nopen;          /* fids open on it (DMEXCL: at most one) */
  p9_qid qid;
  uint8_t *data;
  size_t len, cap;
  uint32_t atime, mtime;
} node;

struct p9_memfs {
  node *n;
  uint32_t nn, cap, free;
  uint64_t nextpath;
  uint64_t bytes, limit; /* file bytes held, and the quota (0: none) */
  char **user;           /* user names; [0] is "uksim" */
  uint32_t nuser;
};

/* Distinct user names a tree remembers: names are never forgotten (a
 * node or a fid may hold one), so a client attaching under ever new
 * names must not grow the table without end. */
enum { MAXUSERS = 256 };

static uint32_t now(void) {
  return (uint32_t)time(NULL);
}

static uint64_t aux_of(p9_memfs *fs, uint32_t i) {
  return (uint64_t)fs->n[i].gen << 32 | i;
}

/* The live node an aux names, or NULL if it was removed since. */
static node *lookup(p9_memfs *fs, uint64_t aux) {
  uint32_t i = (uint32_t)aux;
  if (i >= fs->nn || !fs->n[i].used || fs->n[i].gen != (uint32_t)(aux >> 32))
    return NULL;
  return &fs->n[i];
}

static uint32_t find(p9_memfs *fs, uint32_t dir, p9_str name) {
  for (uint32_t i = fs->n[dir].child; i != P9__NIL; i = fs->n[i].sibling)
    if (p9_str_eq(name, fs->n[i].name))
      return i;
  return P9__NIL;
}

static void link_child(p9_memfs *fs, uint32_t dir, uint32_t i) {
  fs->n[i].parent = dir;
  fs->n[i].sibling = fs->n[dir].child;
  fs->n[dir].child = i;
}

static void unlink_child(p9_memfs *fs, uint32_t i) {
  uint32_t *p = &fs->n[fs->n[i].parent].child;
  while (*p != i)
    p = &fs->n[*p].sibling;
  *p = fs->n[i].sibling;
}

/* The index of user name u, added if new; -EUSERS when the table is
 * full.  An empty name is Plan 9's anonymous "none". */
static long user_index(p9_memfs *fs, p9_str u) {
  if (u.len == 0)
    u = p9_str_c("none");
  for (uint32_t i = 0; i < fs->nuser; i++)
    if (p9_str_eq(u, fs->user[i]))
      return i;
  if (fs->nuser == MAXUSERS)
    return -EUSERS;
  if ((fs->nuser & (fs->nuser - 1)) == 0) /* 0, 1, 2, 4...: grow */
    fs->user =
        xrealloc(fs->user, (fs->nuser ? 2 * fs->nuser : 1) * sizeof(*fs->user));
  fs->user[fs->nuser] = p9_str_dup(u);
  return fs->nuser++;
}

static uint8_t qid_type(uint32_t mode) {
  return (uint8_t)(mode >> 24); /* stat(5): the mode's high 8 bits */
}

/* A new node in dir (P9__NIL: the root) owned by uid; its group is the
 * directory's (the root's, the owner's). */
static uint32_t node_new(p9_memfs *fs, uint32_t dir, p9_str name, uint32_t mode,
                         uint32_t uid) {
  uint32_t i, gen = 0;
  node *n;
  if (fs->free != P9__NIL) {
    i = fs->free;
    fs->free = fs->n[i].sibling;
    gen = fs->n[i].gen + 1;
  } else {
    if (fs->nn == fs->cap) {
      fs->cap = fs->cap ? fs->cap * 2 : 64;
      fs->n = xrealloc(fs->n, fs->cap * sizeof(node));
    }
    i = fs->nn++;
  }
  n = &fs->n[i];
  memset(n, 0, sizeof(*n));
  n->used = true;
  n->gen = gen;
  n->name = p9_str_dup(name);
  n->mode = mode;
  n->qid = (p9_qid){qid_type(mode), 0, fs->nextpath++};
  n->uid = n->muid = uid;
  n->gid = dir != P9__NIL ? fs->n[dir].gid : uid;
  n->child = P9__NIL;
  n->atime = n->mtime = now();
  if (dir != P9__NIL)
    link_child(fs, dir, i);
  else
    n->parent = i;
  return i;
}

static void node_free(p9_memfs *fs, uint32_t i) {
  node *n = &fs->n[i];
  fs->bytes -= n->len;
  unlink_child(fs, i);
  free(n->name);
  free(n->data);
  n->name = NULL;
  n->data = NULL;
  n->used = false;
  n->sibling = fs->free;
  fs->free = i;
}

p9_memfs *p9_memfs_new(void) {
  p9_memfs *fs = xcalloc(1, sizeof(*fs));
  fs->free = P9__NIL;
  fs->nextpath = 1;
  user_index(fs, p9_str_c("uksim"));
  node_new(fs, P9__NIL, p9_str_c("/"), P9_DMDIR | 0775, 0);
  return fs;
}

void p9_memfs_free(p9_memfs *fs) {
  if (!fs)
    return;
  for (uint32_t i = 0; i < fs->nn; i++) {
    free(fs->n[i].name);
    free(fs->n[i].data);
  }
  for (uint32_t i = 0; i < fs->nuser; i++)
    free(fs->user[i]);
  free(fs->user);
  free(fs->n);
  free(fs);
}

/* 0 if n may become len bytes long, else why not. */
static int length_check(p9_memfs *fs, const node *n, uint64_t len) {
  if (len > SIZE_MAX / 2)
    return -EFBIG;
  if (fs->limit && len > n->len && fs->bytes + (len - n->len) > fs->limit)
    return -ENOSPC;
  return 0;
}

static int set_length(p9_memfs *fs, node *n, uint64_t len) {
  int err = length_check(fs, n, len);
  if (err)
    return err;
  fs->bytes = fs->bytes + len - n->len;
  if (len > n->cap) {
    n->cap = len;
    n->data = xrealloc(n->data, n->cap);
  }
  if (len > n->len)
    memset(n->data + n->len, 0, len - n->len);
  n->len = len;
  n->qid.vers++;
  n->mtime = now();
  return 0;
}

int p9_memfs_put(p9_memfs *fs, const char *path, const void *data, size_t len) {
  uint32_t dir = 0, i;
  const char *p = path, *e;
  while (*p == '/')
    p++;
  while ((e = strchr(p, '/'))) {
    i = find(fs, dir, (p9_str){p, (uint16_t)(e - p)});
    if (i == P9__NIL || !(fs->n[i].mode & P9_DMDIR))
      return -ENOENT;
    dir = i;
    p = e + 1;
  }
  if (!*p || strlen(p) > 255)
    return -EINVAL;
  if ((i = find(fs, dir, p9_str_c(p))) == P9__NIL)
    i = node_new(fs, dir, p9_str_c(p),
                 data || len != (size_t)-1 ? 0664 : P9_DMDIR | 0775, 0);
  if (!data && len == (size_t)-1)
    return (fs->n[i].mode & P9_DMDIR) ? 0 : -EEXIST;
  if (fs->n[i].mode & P9_DMDIR)
    return -EISDIR;
  set_length(fs, &fs->n[i], 0);
  if (set_length(fs, &fs->n[i], len) < 0)
    return -ENOSPC;
  if (len)
    memcpy(fs->n[i].data, data, len);
  return 0;
}

/* --- ops -------------------------------------------------------------- */

#define FS(r) ((p9_memfs *)p9_srv_aux((r)->srv))

/* The fid's node, or NULL after responding "file has been removed". */
static node *fid_node(p9_req *r, p9_fid *f) {
  node *n = lookup(FS(r), f->aux);
  if (!n)
    p9_respond_error(r, "file has been removed");
  return n;
}

static void fs_attach(p9_req *r) {
  long u = user_index(FS(r), r->ifcall.uname);
  if (u < 0) {
    p9_respond(r, (int)u);
    return;
  }
  r->fid->uid = (uint32_t)u;
  r->fid->aux = aux_of(FS(r), 0);
  r->ofcall.qid = FS(r)->n[0].qid;
  p9_respond(r, 0);
}

static void fs_walk(p9_req *r) {
  p9_memfs *fs = FS(r);
  node *n = fid_node(r, r->fid);
  uint32_t cur, k;
  if (!n)
    return;
  cur = (uint32_t)(n - fs->n);
  for (k = 0; k < r->ifcall.nwname; k++) {
    p9_str w = r->ifcall.wname[k];
    uint32_t next = p9_str_eq(w, "..")  ? fs->n[cur].parent
                    : p9_str_eq(w, ".") ? cur
                                        : find(fs, cur, w);
    if (!(fs->n[cur].mode & P9_DMDIR) || next == P9__NIL)
      break;
    cur = next;
    r->ofcall.wqid[k] = fs->n[cur].qid;
  }
  r->ofcall.nwqid = (uint16_t)k;
  r->newaux = aux_of(fs, cur);
  p9_respond(r, k == 0 ? -ENOENT : 0);
}

/* Once an open or create has answered success the library makes the fid
 * open, so the count goes up here and down in fs_destroyfid. */
static void fs_open(p9_req *r) {
  node *n = fid_node(r, r->fid);
  if (!n)
    return;
  if ((n->mode & P9_DMEXCL) && n->nopen) {
    p9_respond_error(r, "exclusive use file already open");
    return;
  }
  if ((r->ifcall.mode & P9_OTRUNC) && !(n->mode & P9_DMDIR))
    set_length(FS(r), n, 0);
  n->nopen++;
  r->ofcall.qid = n->qid;
  p9_respond(r, 0);
}

/* Makes a child of the fid's directory for dirfid's user; the index or a
 * negative errno. */
static long make_child(p9_req *r, p9_fid *dirfid, p9_str name, uint32_t mode) {
  p9_memfs *fs = FS(r);
  node *d = lookup(fs, dirfid->aux);
  if (!d)
    return -ENOENT;
  if (find(fs, (uint32_t)(d - fs->n), name) != P9__NIL)
    return -EEXIST;
  return node_new(fs, (uint32_t)(d - fs->n), name, mode, dirfid->uid);
}

/* open(5): a Tcreate's permissions are masked by the directory's,
 * perm & (~0666 | (dir.perm & 0666)) for a file and 0777 for a
 * directory.  A Tlcreate's mode is Linux's, already masked by the
 * client's umask, and taken as it is. */
static uint32_t create_mode(const p9_req *r, const node *d) {
  uint32_t perm = r->ifcall.perm, keep = (perm & P9_DMDIR) ? 0777 : 0666;
  if (r->ifcall.type == P9_TCREATE)
    perm &= ~keep | (d->mode & keep);
  return perm & (P9_DMDIR | P9_DMAPPEND | P9_DMEXCL | 0777);
}

static void fs_create(p9_req *r) {
  node *d = fid_node(r, r->fid);
  long i;
  if (!d)
    return;
  i = make_child(r, r->fid, r->ifcall.name, create_mode(r, d));
  if (i < 0) {
    p9_respond(r, (int)i);
    return;
  }
  r->fid->aux = aux_of(FS(r), (uint32_t)i);
  r->ofcall.qid = FS(r)->n[i].qid;
  FS(r)->n[i].nopen++; /* the fid is open on the new file */
  p9_respond(r, 0);
}

static void fs_destroyfid(p9_srv *srv, p9_fid *f) {
  node *n = lookup(p9_srv_aux(srv), f->aux);
  if (n && f->omode != P9_ONONE && n->nopen)
    n->nopen--;
}

static void fill_stat(p9_memfs *fs, uint32_t i, p9_stat *st) {
  node *n = &fs->n[i];
  memset(st, 0, sizeof(*st));
  st->qid = n->qid;
  st->mode = n->mode;
  st->atime = n->atime;
  st->mtime = n->mtime;
  st->length = (n->mode & P9_DMDIR) ? 0 : n->len;
  st->name = p9_str_c(n->name);
  st->uid = p9_str_c(fs->user[n->uid]);
  st->gid = p9_str_c(fs->user[n->gid]);
  st->muid = p9_str_c(fs->user[n->muid]);
}

static void read_dir(p9_req *r, p9_memfs *fs, node *d) {
  uint32_t i = d->child;
  p9_stat st;
  for (uint64_t k = 0; i != P9__NIL && k < r->fid->dirindex; k++)
    i = fs->n[i].sibling;
  for (; i != P9__NIL; i = fs->n[i].sibling) {
    fill_stat(fs, i, &st);
    if (p9_dirread_put(r, &st) < 0)
      break;
  }
  p9_respond(r, 0);
}

static void fs_read(p9_req *r) {
  node *n = fid_node(r, r->fid);
  uint64_t off = r->ifcall.offset;
  size_t k;
  if (!n)
    return;
  n->atime = now();
  if (n->mode & P9_DMDIR) {
    read_dir(r, FS(r), n);
    return;
  }
  k = off < n->len ? n->len - off : 0;
  if (k > r->ifcall.count)
    k = r->ifcall.count;
  if (k) /* no copy: the library sends the bytes from here (see 9p.h) */
    r->ofcall.data = n->data + off;
  r->ofcall.count = (uint32_t)k;
  p9_respond(r, 0);
}

static void fs_write(p9_req *r) {
  node *n = fid_node(r, r->fid);
  uint64_t off = r->ifcall.offset, end;
  int err;
  if (!n)
    return;
  if (n->mode & P9_DMAPPEND)
    off = n->len;
  end = off + r->ifcall.count;
  if (end < off || end > (1ull << 40)) {
    p9_respond(r, -EFBIG);
    return;
  }
  if (end > n->len && (err = set_length(FS(r), n, end)) < 0) {
    p9_respond(r, err);
    return;
  }
  if (r->ifcall.count > 0) /* an empty file has no data to point into */
    memcpy(n->data + off, r->ifcall.data, r->ifcall.count);
  n->qid.vers++;
  n->mtime = now();
  n->muid = r->fid->uid;
  r->ofcall.count = r->ifcall.count;
  p9_respond(r, 0);
}

static int remove_node(p9_memfs *fs, uint32_t i) {
  if (i == 0)
    return -EPERM;
  if ((fs->n[i].mode & P9_DMDIR) && fs->n[i].child != P9__NIL)
    return -ENOTEMPTY;
  node_free(fs, i);
  return 0;
}

static void fs_remove(p9_req *r) {
  node *n = fid_node(r, r->fid);
  if (n)
    p9_respond(r, remove_node(FS(r), (uint32_t)(n - FS(r)->n)));
}

static void fs_stat(p9_req *r) {
  node *n = fid_node(r, r->fid);
  if (!n)
    return;
  fill_stat(FS(r), (uint32_t)(n - FS(r)->n), &r->ofcall.stat);
  p9_respond(r, 0);
}

/* Moves node i to dir under name (which is free there). */
static void move_node(p9_memfs *fs, uint32_t i, uint32_t dir, p9_str name) {
  unlink_child(fs, i);
  link_child(fs, dir, i);
  free(fs->n[i].name);
  fs->n[i].name = p9_str_dup(name);
}

/* 9P2000.L's rename (Trenameat, Trename) as POSIX rename(2): a file
 * already at the new name is replaced, unless it is a directory. */
static int rename_node(p9_memfs *fs, uint32_t i, uint32_t dir, p9_str name) {
  uint32_t old = find(fs, dir, name);
  if (i == 0)
    return -EPERM;
  if (old == i)
    return 0;
  if (old != P9__NIL && (fs->n[old].mode & P9_DMDIR))
    return -EEXIST;
  for (uint32_t a = dir; a != 0; a = fs->n[a].parent)
    if (a == i)
      return -EINVAL; /* into its own subtree */
  if (old != P9__NIL)
    node_free(fs, old);
  move_node(fs, i, dir, name);
  return 0;
}

static bool renames(const p9_stat *st, const node *n) {
  return st->name.len && !p9_str_eq(st->name, n->name);
}

/* Whether every change st asks of node i may be made (stat(5)).  The
 * library has checked that a new name is one a client could create. */
static int wstat_check(p9_memfs *fs, uint32_t i, const p9_stat *st) {
  node *n = &fs->n[i];
  if (st->mode != ~0u && (st->mode & P9_DMDIR) != (n->mode & P9_DMDIR))
    return -EPERM; /* "the directory bit cannot be changed" */
  if (st->length != ~0ull && (n->mode & P9_DMDIR) && st->length != 0)
    return -EISDIR;
  if (st->length != ~0ull && !(n->mode & P9_DMDIR)) {
    int err = length_check(fs, n, st->length);
    if (err)
      return err;
  }
  if (renames(st, n)) {
    if (i == 0)
      return -EPERM;
    if (st->name.len > 255)
      return -ENAMETOOLONG;
    /* "it is an error to change the name to that of an existing file" */
    if (find(fs, n->parent, st->name) != P9__NIL)
      return -EEXIST;
  }
  /* "it is illegal to attempt to change the owner of a file"; a group
   * is a name here (no memberships to check), one the table must hold. */
  if (st->uid.len && !p9_str_eq(st->uid, fs->user[n->uid]))
    return -EPERM;
  if (st->gid.len && fs->nuser == MAXUSERS && user_index(fs, st->gid) < 0)
    return -EUSERS;
  return 0;
}

/* wstat(5): "Either all the changes in wstat request happen, or none of
 * them does", so every field is checked before any is applied; once
 * wstat_check passes nothing below can fail. */
static void fs_wstat(p9_req *r) {
  p9_memfs *fs = FS(r);
  p9_stat *st = &r->ifcall.stat;
  node *n = fid_node(r, r->fid);
  uint32_t i;
  int err;
  if (!n)
    return;
  i = (uint32_t)(n - fs->n);
  if ((err = wstat_check(fs, i, st)) < 0) {
    p9_respond(r, err);
    return;
  }
  if (renames(st, n))
    move_node(fs, i, n->parent, st->name);
  if (st->length != ~0ull && !(n->mode & P9_DMDIR))
    set_length(fs, n, st->length);
  if (st->mode != ~0u) {
    n->mode =
        (n->mode & P9_DMDIR) | (st->mode & (P9_DMAPPEND | P9_DMEXCL | 0777));
    n->qid.type = qid_type(n->mode);
  }
  if (st->mtime != ~0u)
    n->mtime = st->mtime;
  if (st->gid.len)
    n->gid = (uint32_t)user_index(fs, st->gid); /* checked: it fits */
  p9_respond(r, 0);
}

static void fs_mkdir(p9_req *r) {
  long i = make_child(r, r->dfid, r->ifcall.name,
                      P9_DMDIR | (r->ifcall.lmode & 0777));
  if (i >= 0)
    r->ofcall.qid = FS(r)->n[i].qid;
  p9_respond(r, i < 0 ? (int)i : 0);
}

static void fs_unlinkat(p9_req *r) {
  p9_memfs *fs = FS(r);
  node *d = fid_node(r, r->fid);
  uint32_t i;
  if (!d)
    return;
  i = find(fs, (uint32_t)(d - fs->n), r->ifcall.name);
  p9_respond(r, i == P9__NIL ? -ENOENT : remove_node(fs, i));
}

static void fs_renameat(p9_req *r) {
  p9_memfs *fs = FS(r);
  node *od = fid_node(r, r->fid), *nd;
  uint32_t i;
  if (!od || !(nd = fid_node(r, r->dfid)))
    return;
  i = find(fs, (uint32_t)(od - fs->n), r->ifcall.name);
  p9_respond(r, i == P9__NIL ? -ENOENT
                             : rename_node(fs, i, (uint32_t)(nd - fs->n),
                                           r->ifcall.newname));
}

static void fs_rename(p9_req *r) {
  p9_memfs *fs = FS(r);
  node *n = fid_node(r, r->fid), *nd;
  if (!n || !(nd = fid_node(r, r->dfid)))
    return;
  p9_respond(r, rename_node(fs, (uint32_t)(n - fs->n), (uint32_t)(nd - fs->n),
                            r->ifcall.name));
}

static const struct p9_srv_ops memfs_ops = {
    .attach = fs_attach,
    .walk = fs_walk,
    .open = fs_open,
    .create = fs_create,
    .read = fs_read,
    .write = fs_write,
    .remove = fs_remove,
    .stat = fs_stat,
    .wstat = fs_wstat,
    .mkdir = fs_mkdir,
    .unlinkat = fs_unlinkat,
    .renameat = fs_renameat,
    .rename = fs_rename,
    .destroyfid = fs_destroyfid,
};

void p9_memfs_set_limit(p9_memfs *fs, uint64_t bytes) {
  fs->limit = bytes;
}

const struct p9_srv_ops *p9_memfs_ops(void) {
  return &memfs_ops;
}

/* --- the tree as an image --------------------------------------------- */

static void slot_out(const node *n, p9_memfs_slot *s) {
  *s = (p9_memfs_slot){.used = n->used, .gen = n->gen};
  if (!n->used)
    return;
  s->parent = n->parent;
  s->child = n->child;
  s->sibling = n->sibling;
  s->name = n->name;
  s->mode = n->mode;
  s->uid = n->uid;
  s->gid = n->gid;
  s->muid = n->muid;
  s->nopen = n->nopen;
  s->qid = n->qid;
  s->data = n->data;
  s->len = n->len;
  s->atime = n->atime;
  s->mtime = n->mtime;
}

void p9_memfs_image_get(p9_memfs *fs, p9_memfs_image *img) {
  img->nuser = fs->nuser;
  img->user = xmalloc(fs->nuser * sizeof(*img->user));
  for (uint32_t i = 0; i < fs->nuser; i++)
    img->user[i] = fs->user[i];
  img->nslot = fs->nn;
  img->slot = xmalloc(fs->nn * sizeof(*img->slot));
  for (uint32_t i = 0; i < fs->nn; i++)
    slot_out(&fs->n[i], &img->slot[i]);
  img->nextpath = fs->nextpath;
  img->limit = fs->limit;
}

void p9_memfs_image_free(p9_memfs_image *img) {
  free(img->user);
  free(img->slot);
  memset(img, 0, sizeof(*img));
}

static bool link_ok(const p9_memfs_image *img, uint32_t i) {
  return i == P9__NIL || (i < img->nslot && img->slot[i].used);
}

/* One used slot on its own: names, users, links in range. */
static bool slot_ok(const p9_memfs_image *img, uint32_t i) {
  const p9_memfs_slot *s = &img->slot[i];
  size_t nl = s->name ? strlen(s->name) : 0;
  if (!s->name || nl == 0 || nl > 255 || (i && strchr(s->name, '/')))
    return false;
  if (s->uid >= img->nuser || s->gid >= img->nuser || s->muid >= img->nuser)
    return false;
  if (!link_ok(img, s->parent) || s->parent == P9__NIL ||
      !link_ok(img, s->child) || !link_ok(img, s->sibling))
    return false;
  if (!(s->mode & P9_DMDIR) && s->child != P9__NIL)
    return false;
  if (((s->mode & P9_DMDIR) && s->len) || (s->len && !s->data) ||
      s->len > SIZE_MAX / 2)
    return false;
  return s->qid.type == qid_type(s->mode);
}

/* The tree from the root: every used slot reached once, from the
 * directory its parent link names, and nothing else.  The root's own
 * sibling link is never followed. */
static bool tree_ok(const p9_memfs_image *img) {
  uint8_t *seen = xcalloc(img->nslot, 1);
  uint32_t *stack = xmalloc(img->nslot * sizeof(*stack));
  uint32_t sp = 0, reached = 1, used = 0;
  bool ok = img->slot[0].parent == 0 && (img->slot[0].mode & P9_DMDIR);
  seen[0] = 1;
  stack[sp++] = 0;
  while (ok && sp) {
    uint32_t d = stack[--sp];
    for (uint32_t c = img->slot[d].child; ok && c != P9__NIL;
         c = img->slot[c].sibling) {
      ok = !seen[c] && img->slot[c].parent == d;
      seen[c] = 1;
      reached++;
      if (ok && (img->slot[c].mode & P9_DMDIR))
        stack[sp++] = c;
    }
  }
  for (uint32_t i = 0; i < img->nslot; i++)
    used += img->slot[i].used;
  free(seen);
  free(stack);
  return ok && reached == used;
}

static bool image_ok(const p9_memfs_image *img) {
  if (img->nuser == 0 || img->nuser > MAXUSERS || img->nslot == 0 ||
      !img->slot[0].used)
    return false;
  for (uint32_t i = 0; i < img->nuser; i++)
    if (!img->user[i] || strlen(img->user[i]) > 0xffff)
      return false;
  for (uint32_t i = 0; i < img->nslot; i++)
    if (img->slot[i].used && !slot_ok(img, i))
      return false;
  return tree_ok(img);
}

static void slot_in(p9_memfs *fs, uint32_t i, const p9_memfs_slot *s) {
  node *n = &fs->n[i];
  memset(n, 0, sizeof(*n));
  n->gen = s->gen;
  if (!s->used) {
    n->sibling = fs->free;
    fs->free = i;
    return;
  }
  *n = (node){.name = xstrdup(s->name),
              .parent = s->parent,
              .child = s->child,
              .sibling = s->sibling,
              .gen = s->gen,
              .used = true,
              .mode = s->mode,
              .uid = s->uid,
              .gid = s->gid,
              .muid = s->muid,
              .nopen = s->nopen,
              .qid = s->qid,
              .len = s->len,
              .cap = s->len,
              .atime = s->atime,
              .mtime = s->mtime};
  if (s->len) {
    n->data = xmalloc(s->len);
    memcpy(n->data, s->data, s->len);
  }
  fs->bytes += s->len;
}

p9_memfs *p9_memfs_load(const p9_memfs_image *img, int *err) {
  p9_memfs *fs;
  if (!image_ok(img)) {
    *err = -EINVAL;
    return NULL;
  }
  fs = xcalloc(1, sizeof(*fs));
  fs->free = P9__NIL;
  fs->nextpath = img->nextpath;
  fs->limit = img->limit;
  fs->user = xmalloc(MAXUSERS * sizeof(*fs->user));
  for (uint32_t i = 0; i < img->nuser; i++)
    fs->user[i] = xstrdup(img->user[i]);
  fs->nuser = img->nuser;
  fs->n = xmalloc(img->nslot * sizeof(node));
  fs->nn = fs->cap = img->nslot;
  for (uint32_t i = img->nslot; i-- > 0;)
    slot_in(fs, i, &img->slot[i]);
  for (uint32_t i = 0; i < fs->nn; i++)
    if (fs->n[i].used && fs->n[i].qid.path >= fs->nextpath)
      fs->nextpath = fs->n[i].qid.path + 1; /* never reuse a path */
  return fs;
}
