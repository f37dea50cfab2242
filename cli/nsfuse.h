/* The FUSE view of a uksim process's namespace (`uksim mount`): libfuse3's
 * low-level API over libuksim's ns_* calls, in a process already attached
 * to the kernel with the namespace to show (cli/attach.h).
 *
 * Every FUSE operation is one or a few ns_* calls on the path the inode
 * stands for, and ends in exactly one fuse_reply_*.  The session is served
 * by one thread, since libuksim allows one kernel call in flight.
 */
#ifndef UKSIM_CLI_NSFUSE_H
#define UKSIM_CLI_NSFUSE_H

#include <stdbool.h>

struct nsfuse_opts {
  const char *dir;    /* the host mount point */
  const char *fsname; /* what /proc/mounts shows as the source */
  bool debug;         /* libfuse's -d: every request on stderr */
  /* Called once the mount is in place (the daemon tells its parent). */
  void (*ready)(void *arg);
  void *arg;
};

/* Mounts the namespace at o->dir and serves it until the mount goes
 * (fusermount3 -u, umount), a SIGINT/SIGTERM/SIGHUP, or the kernel
 * connection closes (the machine halted: the mount is then taken away
 * lazily, so that nothing stays mounted).  0, or -errno when the mount
 * could not be made (after a message on stderr). */
int nsfuse_serve(const struct nsfuse_opts *o);

#endif
