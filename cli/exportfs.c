/* exportfs.c: 9P ops over this process's namespace (exportfs.h).
 *
 * A fid's aux names an entry (generation << 32 | index; 0 none: a fid
 * the library closes before any op gave it one) that holds its path in
 * the namespace and, once opened, the namespace descriptor; every op is the
 * namespace call of the same name, so what the kernel's namespace does
 * (union directories, servants, mounted servers) is what the peer sees.
 * A walk stats each name it passes; ".." drops the last name and stops at
 * the root.  Calls block (the process is a uksim application): the server
 * answers one request at a time, which is what a remote console wants.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "exportfs.h"
#include "uksim/ns.h"

struct ent {
  bool used;
  uint32_t gen; /* bumped at each use, so a stale aux names nothing */
  int fd;       /* -1: not open */
  char path[EXPORTFS_PATH_MAX];
};

static struct ent ents[EXPORTFS_FIDS_MAX];

/* A new entry for path: its aux (> 0), or -ENFILE. */
static int64_t ent_new(const char *path) {
  for (int i = 0; i < EXPORTFS_FIDS_MAX; i++)
    if (!ents[i].used) {
      ents[i].used = true;
      ents[i].gen++;
      ents[i].fd = -1;
      snprintf(ents[i].path, sizeof ents[i].path, "%s", path);
      return (int64_t)ents[i].gen << 32 | i;
    }
  return -ENFILE;
}

/* The entry aux names, or NULL (none, or stale). */
static struct ent *ent_lookup(uint64_t aux) {
  uint32_t i = (uint32_t)aux;
  if (aux == 0 || i >= EXPORTFS_FIDS_MAX || !ents[i].used ||
      ents[i].gen != (uint32_t)(aux >> 32))
    return NULL;
  return &ents[i];
}

/* What a fid without an entry (a clone made when the table was full)
 * reaches: unused, so `gone` fails every op on it. */
static struct ent none = {.used = false, .fd = -1};

static struct ent *ent_of(const p9_fid *f) {
  struct ent *e = ent_lookup(f->aux);
  return e != NULL ? e : &none;
}

/* Ends r with -ENFILE when its fid has no entry: true then. */
static bool gone(p9_req *r) {
  if (ent_of(r->fid)->used)
    return false;
  p9_respond(r, -ENFILE);
  return true;
}

static p9_qid qid_of(const ns_dir *d) {
  return (p9_qid){
      .type = d->qid_type, .vers = d->qid_vers, .path = d->qid_path};
}

/* path/name into out, ".." dropping the last name: 0 or -ENAMETOOLONG. */
static int join(const char *path, p9_str name, char *out, size_t len) {
  if (name.len == 2 && !memcmp(name.s, "..", 2)) {
    snprintf(out, len, "%s", path);
    char *slash = strrchr(out, '/');
    if (slash != NULL)
      slash[slash == out ? 1 : 0] = '\0';
    return 0;
  }
  int n = snprintf(out, len, "%s%s%.*s", path, strcmp(path, "/") ? "/" : "",
                   name.len, name.s);
  return n > 0 && (size_t)n < len ? 0 : -ENAMETOOLONG;
}

static void fsattach(p9_req *r) {
  char path[EXPORTFS_PATH_MAX];
  ns_dir d;
  snprintf(path, sizeof path, "%s%.*s", r->ifcall.aname.len ? "" : "/",
           r->ifcall.aname.len, r->ifcall.aname.s);
  int e = path[0] != '/' ? -ENOENT : ns_stat(path, &d);
  int64_t i = e < 0 ? e : ent_new(path);
  if (i < 0) {
    p9_respond(r, (int)i);
    return;
  }
  r->fid->aux = (uint64_t)i;
  r->ofcall.qid = qid_of(&d);
  p9_respond(r, 0);
}

static void fswalk(p9_req *r) {
  char path[EXPORTFS_PATH_MAX], next[EXPORTFS_PATH_MAX];
  ns_dir d;
  int e = 0;
  if (gone(r))
    return;
  snprintf(path, sizeof path, "%s", ent_of(r->fid)->path);
  r->ofcall.nwqid = 0;
  for (int i = 0; i < r->ifcall.nwname; i++) {
    if ((e = join(path, r->ifcall.wname[i], next, sizeof next)) < 0 ||
        (e = ns_stat(next, &d)) < 0)
      break;
    snprintf(path, sizeof path, "%s", next);
    r->ofcall.wqid[r->ofcall.nwqid++] = qid_of(&d);
  }
  if (r->ofcall.nwqid == r->ifcall.nwname && r->newfid == r->fid) {
    snprintf(ent_of(r->fid)->path, EXPORTFS_PATH_MAX, "%s", path);
    r->newaux = r->fid->aux; /* walked in place: the same entry */
  } else if (r->ofcall.nwqid == r->ifcall.nwname) {
    int64_t i = ent_new(path);
    if (i < 0) {
      p9_respond(r, (int)i);
      return;
    }
    r->newaux = (uint64_t)i;
  }
  p9_respond(r, r->ofcall.nwqid == 0 ? e : 0);
}

static uint64_t fsclonefid(p9_srv *srv, const p9_fid *f) {
  char path[EXPORTFS_PATH_MAX];
  (void)srv;
  snprintf(path, sizeof path, "%s", ent_of(f)->path);
  int64_t i = ent_new(path);
  return i < 0 ? 0 : (uint64_t)i; /* full: none, so every op fails */
}

static void fsopen(p9_req *r) {
  if (gone(r))
    return;
  struct ent *e = ent_of(r->fid);
  ns_dir d;
  int fd = ns_open(e->path, r->ifcall.mode & (3 | NS_OTRUNC));
  if (fd >= 0 && ns_fstat(fd, &d) < 0)
    d.qid_type = 0;
  if (fd >= 0) {
    e->fd = fd;
    r->ofcall.qid = qid_of(&d);
  }
  p9_respond(r, fd < 0 ? fd : 0);
}

static void fscreate(p9_req *r) {
  if (gone(r))
    return;
  struct ent *e = ent_of(r->fid);
  char path[EXPORTFS_PATH_MAX];
  ns_dir d;
  int fd = join(e->path, r->ifcall.name, path, sizeof path);
  if (fd == 0)
    fd = ns_create(path, r->ifcall.mode & (3 | NS_OTRUNC), r->ifcall.perm);
  if (fd >= 0 && ns_fstat(fd, &d) == 0) {
    e->fd = fd;
    snprintf(e->path, sizeof e->path, "%s", path);
    r->ofcall.qid = qid_of(&d);
  }
  p9_respond(r, fd < 0 ? fd : 0);
}

static void put_stat(const ns_dir *d, p9_stat *st) {
  *st = (p9_stat){.qid = qid_of(d),
                  .mode = d->mode,
                  .atime = d->atime,
                  .mtime = d->mtime,
                  .length = d->length};
  st->name = (p9_str){d->name, (uint16_t)strlen(d->name)};
  st->uid = (p9_str){d->uid, (uint16_t)strlen(d->uid)};
  st->gid = (p9_str){d->gid, (uint16_t)strlen(d->gid)};
  st->muid = (p9_str){d->muid, (uint16_t)strlen(d->muid)};
}

/* A directory read from entry r->fid->dirindex on: the namespace's own
 * descriptor reads in order only, so each read skips to there afresh. */
static void read_dir(p9_req *r, struct ent *e) {
  ns_dir d[16];
  p9_stat st;
  uint64_t at = 0;
  int fd = ns_open(e->path, NS_OREAD);
  long n = fd;
  bool full = false;
  while (fd >= 0 && !full && (n = ns_dirread(fd, d, 16)) > 0)
    for (long i = 0; i < n && !full; i++, at++) {
      if (at < r->fid->dirindex)
        continue;
      put_stat(&d[i], &st);
      full = p9_dirread_put(r, &st) < 0;
    }
  if (fd >= 0)
    ns_close(fd);
  p9_respond(r, n < 0 && r->ofcall.count == 0 ? (int)n : 0);
}

static void fsread(p9_req *r) {
  struct ent *e = ent_of(r->fid);
  if (r->fid->qid.type & P9_QTDIR) {
    read_dir(r, e);
    return;
  }
  long n = ns_pread(e->fd, r->buf, r->ifcall.count, r->ifcall.offset);
  r->ofcall.count = n > 0 ? (uint32_t)n : 0;
  p9_respond(r, n < 0 ? (int)n : 0);
}

static void fswrite(p9_req *r) {
  struct ent *e = ent_of(r->fid);
  long n = ns_pwrite(e->fd, r->ifcall.data, r->ifcall.count, r->ifcall.offset);
  r->ofcall.count = n > 0 ? (uint32_t)n : 0;
  p9_respond(r, n < 0 ? (int)n : 0);
}

static void fsstat(p9_req *r) {
  static ns_dir d; /* its strings must live until p9_respond */
  if (gone(r))
    return;
  int e = ns_stat(ent_of(r->fid)->path, &d);
  if (e == 0)
    put_stat(&d, &r->ofcall.stat);
  p9_respond(r, e);
}

static void fsremove(p9_req *r) {
  if (gone(r))
    return;
  p9_respond(r, ns_remove(ent_of(r->fid)->path));
}

static void fsdestroyfid(p9_srv *srv, p9_fid *f) {
  (void)srv;
  struct ent *e = ent_lookup(f->aux);
  if (e == NULL)
    return; /* closed before any op gave it an entry */
  if (e->fd >= 0)
    ns_close(e->fd);
  e->used = false;
}

static const struct p9_srv_ops ops = {
    .attach = fsattach,
    .walk = fswalk,
    .clonefid = fsclonefid,
    .open = fsopen,
    .create = fscreate,
    .read = fsread,
    .write = fswrite,
    .stat = fsstat,
    .remove = fsremove,
    .destroyfid = fsdestroyfid,
};

const struct p9_srv_ops *exportfs_ops(void) {
  return &ops;
}
