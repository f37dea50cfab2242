/* #/ — the root servant (Plan 9's port/devroot.c): a fixed tree of empty
 * directories, there so that a namespace has mount points to bind onto.
 * Every process's first root is "#/", and the kernel binds the other
 * servants and servers onto its directories (bind '#c' /dev, mount
 * /srv/ramfs /n/ramfs, ...).
 *
 * The set is Plan 9's root less what uksim has no use for yet (boot,
 * net.alt, root): /bin /dev /env /fd /mnt /n /net /proc /srv /tmp.  qid
 * path i names entry i of the table below, 0 being "/" itself; all are
 * directories, mode 0555 (nothing is created in #/ itself: a union bound
 * with MCREATE over a directory takes the creates).
 */
#include <string.h>

#include "dev.h"

static const char *const names[] = {
    "/", "bin", "dev", "env", "fd", "mnt", "n", "net", "proc", "srv", "tmp",
};
#define NNAMES ((int)(sizeof names / sizeof names[0]))

static void entry(int i, struct vfs_dir *d) {
  memset(d, 0, sizeof *d);
  d->qid.path = (uint64_t)i;
  d->qid.type = UK_QTDIR;
  d->mode = VFS_DMDIR | 0555u;
  strcpy(d->name, names[i]);
}

/* Only "/" has entries; every entry's parent is "/". */
static int rootgen(const struct uk_kdata *kd, const struct uk_chan *c, int i,
                   struct vfs_dir *d) {
  (void)kd;
  if (c->qid.path >= (uint64_t)NNAMES)
    return 0;
  if (i == VFS_GEN_SELF) {
    entry((int)c->qid.path, d);
    return 1;
  }
  if (i == VFS_GEN_PARENT) {
    entry(0, d);
    return 1;
  }
  if (c->qid.path != 0 || i < 0 || i + 1 >= NNAMES)
    return 0;
  entry(i + 1, d);
  return 1;
}

const struct vfs_dev vfs_rootdev = {
    .dc = '/',
    .name = "root",
    .gen = rootgen,
};
