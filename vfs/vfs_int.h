/* vfs/ internals shared by its files; not part of vfs.h. */
#ifndef UKSIM_VFS_INT_H
#define UKSIM_VFS_INT_H

#include "uksim/kdata.h"

/* Drops a reference to a chan known to be LIVE, counting a clunk now due
 * into *clunks. */
void vfs__unref(struct uk_kdata *kd, uint32_t id, int *clunks);

/* The LIVE group that ns names, or NULL. */
struct uk_nsgroup *vfs__ns(struct uk_kdata *kd, uint32_t ns);

#endif /* UKSIM_VFS_INT_H */
