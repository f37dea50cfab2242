/* vfs/ internals shared by its files; not part of vfs.h. */
#ifndef UKSIM_VFS_INT_H
#define UKSIM_VFS_INT_H

#include "uksim/kdata.h"

/* Drops a reference to a chan known to be LIVE, counting a clunk now due
 * into *clunks. */
void vfs__unref(struct uk_kdata *kd, uint32_t id, int *clunks);

/* The LIVE group that ns names, or NULL. */
struct uk_nsgroup *vfs__ns(struct uk_kdata *kd, uint32_t ns);

/* The mount entry of group ns whose mount point is named like *c (a chan
 * by value, not in the table: namec walks on copies), or -1. */
int vfs__mount_of(const struct uk_kdata *kd, uint32_t ns,
                  const struct uk_chan *c);

#endif /* UKSIM_VFS_INT_H */
