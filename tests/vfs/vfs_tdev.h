/* A test servant for the vfs tests: a fixed tree served through gen
 * (dev.h), with a read op for its files and a write op that keeps what was
 * written, registered under a letter of the test's choosing ('t', and 'M'
 * to stand for a mounted server until #M exists).
 *
 *   /  f (file)  d/ { g (file)  h/ }  e/ { g (file)  k/ }
 */
#ifndef TESTS_VFS_VFS_TDEV_H
#define TESTS_VFS_VFS_TDEV_H

#include <stdio.h>
#include <string.h>

#include "dev.h"

struct tnode {
  uint64_t path, parent;
  const char *name;
  bool dir;
};

static const struct tnode tnodes[] = {
    {0, 0, "/", true},  {1, 0, "f", false}, {2, 0, "d", true},
    {3, 2, "g", false}, {4, 2, "h", true},  {5, 0, "e", true},
    {6, 5, "g", false}, {7, 5, "k", true},
};
#define TNODES ((int)(sizeof tnodes / sizeof tnodes[0]))

static char twritten[64];
static uint32_t twritten_n;

static void tentry(int n, struct vfs_dir *d) {
  memset(d, 0, sizeof *d);
  d->qid.path = tnodes[n].path;
  d->qid.type = tnodes[n].dir ? UK_QTDIR : 0;
  d->mode = tnodes[n].dir ? VFS_DMDIR | 0775u : 0664u;
  d->length = tnodes[n].dir ? 0 : 5;
  strcpy(d->name, tnodes[n].name);
}

static int tgen(const struct uk_kdata *kd, const struct uk_chan *c, int i,
                struct vfs_dir *d) {
  (void)kd;
  uint64_t p = c->qid.path;
  if (p >= (uint64_t)TNODES)
    return 0;
  if (i == VFS_GEN_SELF || i == VFS_GEN_PARENT) {
    tentry(i == VFS_GEN_SELF ? (int)p : (int)tnodes[p].parent, d);
    return 1;
  }
  for (int n = 1; n < TNODES; n++)
    if (tnodes[n].parent == p && i-- == 0) {
      tentry(n, d);
      return 1;
    }
  return 0;
}

/* A file reads as "fileN" (N its qid path). */
static long tread(struct uk_kdata *kd, const struct uk_chan *c, void *buf,
                  uint32_t n, uint64_t off) {
  if (c->qid.type & UK_QTDIR)
    return vfs_devdirread(kd, c, buf, n, off);
  char text[8];
  snprintf(text, sizeof text, "file%u", (unsigned)c->qid.path);
  size_t len = strlen(text);
  if (off >= len)
    return 0;
  size_t k = len - off < n ? len - off : n;
  memcpy(buf, text + off, k);
  return (long)k;
}

static long twrite(struct uk_kdata *kd, struct uk_chan *c, const void *buf,
                   uint32_t n, uint64_t off) {
  (void)kd;
  (void)c;
  (void)off;
  twritten_n = n < sizeof twritten ? n : (uint32_t)sizeof twritten;
  memcpy(twritten, buf, twritten_n);
  return (long)twritten_n;
}

static const struct vfs_dev tdev = {
    .dc = 't', .name = "test", .gen = tgen, .read = tread, .write = twrite};
static const struct vfs_dev mdev = {
    .dc = UK_CHAN_MNT, .name = "fakemnt", .gen = tgen};

static inline void tdev_register(void) {
  cr_assert_eq(vfs_dev_add(&tdev), 0);
  cr_assert_eq(vfs_dev_add(&mdev), 0);
}

#endif /* TESTS_VFS_VFS_TDEV_H */
