/* What the servant tests share beyond vfs_fixture.h: a fake host (dev.h
 * convention 2) whose clock and kills the test sets and reads, processes
 * with a namespace of their own (kernel process table and vfs alike), and
 * helpers that resolve, open, read and write by path.  The fini releases
 * every process, drops the host and checks that no chan was leaked.
 * Include once per test file, after vfs_fixture.h. */
#ifndef TESTS_VFS_VFS_SERVANT_H
#define TESTS_VFS_VFS_SERVANT_H

#include <stdio.h>

#include "dev.h"

struct fake_host {
  struct vfs_host h;
  uint64_t now;
  int kills;       /* calls of kill */
  uint32_t killed; /* the last process kill was asked for */
  char note[128];  /* and its note */
  int kill_result; /* what kill returns */
};

static struct fake_host fh;

static inline uint64_t fake_now(void *arg) {
  return ((struct fake_host *)arg)->now;
}

static inline int fake_kill(void *arg, uint32_t p, const char *note) {
  struct fake_host *f = arg;
  f->kills++;
  f->killed = p;
  snprintf(f->note, sizeof f->note, "%s", note);
  return f->kill_result;
}

/* Installs the fake host with process up as the caller. */
static inline void host_install(uint32_t up) {
  memset(&fh, 0, sizeof fh);
  fh.h = (struct vfs_host){
      .arg = &fh, .up = up, .now_ns = fake_now, .kill = fake_kill};
  vfs_host_set(&fh.h);
}

/* A process named name with pid, in the kernel's process table and with a
 * namespace: a new empty group, root and cwd "#/" (named "/").  Returns
 * its index. */
static inline uint32_t proc_new(const char *name, int32_t pid) {
  int p = kern_proc_alloc(kd, name, pid);
  cr_assert_geq(p, 0);
  uint32_t ns = ns_new_ok(), root = chan_of('/', 0, 0, true);
  strcpy(kd->vfs.chan[UK_VFS_INDEX(root)].path, "/");
  cr_assert_eq(vfs_proc_attach(kd, (uint32_t)p, ns, root, root), 0);
  vfs_ns_unref(kd, ns);
  vfs_chan_unref(kd, root);
  return (uint32_t)p;
}

/* The chan path names in process p (the caller drops it), or fails. */
static inline uint32_t walk_to(uint32_t p, const char *path) {
  uint32_t c = UK_VFS_NONE;
  int r = vfs_namec(kd, p, path, strlen(path), &c);
  cr_assert_eq(r, 0, "%s: %d", path, r);
  return c;
}

/* path opened in mode by process p. */
static inline uint32_t open_in(uint32_t p, const char *path, uint8_t mode) {
  uint32_t c = walk_to(p, path);
  int r = vfs_dev_open(kd, c, mode);
  cr_assert_eq(r, 0, "open %s: %d", path, r);
  return c;
}

/* Reads all of c from offset 0 into buf (NUL terminated): the count. */
static inline long read_all(uint32_t c, char *buf, size_t len) {
  long got = 0, n;
  while ((n = vfs_dev_read(kd, c, buf + got, (uint32_t)(len - 1 - got),
                           (uint64_t)got)) > 0)
    got += n;
  cr_assert_geq(n, 0, "read: %ld", n);
  buf[got] = '\0';
  return got;
}

static inline long write_str(uint32_t c, const char *s) {
  return vfs_dev_write(kd, c, s, (uint32_t)strlen(s), 0);
}

/* Creates name in directory dir of process p, open in mode: the chan
 * (the directory's chan, now the new file), or fails with the errno. */
static inline uint32_t create_in(uint32_t p, const char *dir, const char *name,
                                 uint8_t mode) {
  uint32_t c = walk_to(p, dir);
  int r = vfs_dev_create(kd, c, name, 0664u, mode);
  cr_assert_eq(r, 0, "create %s in %s: %d", name, dir, r);
  return c;
}

/* The entries of directory path in process p, read in one call into
 * e[0..max): their count. */
static inline int list_in(uint32_t p, const char *path, struct vfs_dir *e,
                          int max) {
  uint32_t d = open_in(p, path, VFS_OREAD);
  long n = vfs_dev_read(kd, d, e, (uint32_t)(sizeof *e * (size_t)max), 0);
  cr_assert_geq(n, 0, "read %s: %ld", path, n);
  cr_assert_eq(n % (long)sizeof *e, 0);
  vfs_chan_unref(kd, d);
  return (int)(n / (long)sizeof *e);
}

/* The stat of path in process p into *st. */
static inline void stat_in(uint32_t p, const char *path, struct vfs_dir *st) {
  uint32_t c = walk_to(p, path);
  int r = vfs_dev_stat(kd, c, st);
  cr_assert_eq(r, 0, "stat %s: %d", path, r);
  vfs_chan_unref(kd, c);
}

/* Whether path resolves in process p (the chan is dropped again). */
static inline bool exists(uint32_t p, const char *path) {
  uint32_t c;
  if (vfs_namec(kd, p, path, strlen(path), &c) < 0)
    return false;
  vfs_chan_unref(kd, c);
  return true;
}

/* bind old onto new in process p's group (both paths in p's namespace). */
static inline void bind_in(uint32_t p, const char *new, const char *old,
                           uint32_t flag) {
  uint32_t n = walk_to(p, new), o = walk_to(p, old);
  int r = vfs_bind(kd, kd->vfs.vproc[p].ns, n, o, flag);
  cr_assert_geq(r, 0, "bind %s %s: %d", new, old, r);
  vfs_chan_unref(kd, n);
  vfs_chan_unref(kd, o);
}

/* Releases every process, drops the host, checks no chan is left. */
static inline void servant_fini(void) {
  for (uint32_t p = 0; p < UK_PROC_MAX; p++)
    if (kd->vfs.vproc[p].attached)
      vfs_proc_release(kd, p);
  for (uint32_t c; (c = vfs_clunk_next(kd)) != UK_VFS_NONE;)
    vfs_chan_clunked(kd, c);
  vfs_host_set(NULL);
  cr_assert_eq(vfs_chan_live(kd), 0, "chans leaked");
  kd_free();
}

#endif /* TESTS_VFS_VFS_SERVANT_H */
