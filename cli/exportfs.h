/* exportfs (seed 002 §6.3): this process's namespace, or a sub-tree of it,
 * served as a 9P2000 file server over the stream transport, so another
 * node mounts it (`import`, ns_import) and uses the servants and servers
 * in it (#c's /dev/cons, /srv entries, mounted ramfs ...) as its own. */
#ifndef UKSIM_CLI_EXPORTFS_H
#define UKSIM_CLI_EXPORTFS_H

#include <stdint.h>

#include "uksim/9p.h"

/* Files a connection may hold open or walked at once, all connections
 * together (README.md "Limits"). */
#define EXPORTFS_FIDS_MAX 256
/* The longest path in the namespace it serves. */
#define EXPORTFS_PATH_MAX 1024

/* The ops of a server whose files are this process's namespace (its
 * ns_* calls); an attach's aname is the path in it ("" for "/"). */
const struct p9_srv_ops *exportfs_ops(void);

#endif
