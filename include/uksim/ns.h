/* libuksim's namespace calls: files, directories, pipes and the process's
 * own namespace (seed 002 §4-§6; Plan 9's open(2), read(2), bind(2) ...).
 *
 *   int fd = ns_open("/dev/cons", NS_OWRITE);
 *   ns_write(fd, "hello\n", 6);
 *   ns_close(fd);
 *   ns_bind("#c", "/dev", NS_MAFTER);
 *   int srv = ns_open("/srv/ramfs", NS_ORDWR);
 *   ns_mount(srv, "/n/ram", NS_MREPL | NS_MCREATE, "");
 *
 * Every process started by a uksim kernel has a namespace: its own, a copy
 * of its parent's or a share of it, as it was spawned (rfork's RFNAMEG /
 * RFCNAMEG; see `uksim run` and the scenario language).  A fresh namespace
 * has "#/" as its root ("/bin /dev /env /fd /mnt /n /net /proc /srv /tmp")
 * with "#c" bound on /dev, "#e" on /env, "#s" on /srv and "#p" on /proc.
 *
 * Descriptors are this process's, 0..UK_FD_MAX-1, and have nothing to do
 * with Linux descriptors.  A read or write of at most NS_SMALL bytes travels
 * in the process's ns control ICA; a larger one through a data ICA, handed
 * to a mounted server and back without a copy in the kernel (ns_read_ica,
 * ns_write_ica do that with the caller's own ICA, no copy at all).
 *
 * All functions return 0 (or a count, a descriptor) or a negative errno;
 * the namespace is never left half changed.
 *
 * Thread-safe (see ap.h): a call holds the library's lock from writing
 * its paths or data into the process's ns ICAs to reading its answer out
 * of them.  A read that waits in the kernel (a pipe, a slow server) blocks
 * every other thread's call meanwhile.
 */
#ifndef UKSIM_NS_H
#define UKSIM_NS_H

#include <stddef.h>
#include <stdint.h>

#include "ica.h"
#include "kabi.h"

/* open(5) modes. */
#define NS_OREAD 0
#define NS_OWRITE 1
#define NS_ORDWR 2
#define NS_OEXEC 3
#define NS_OTRUNC 0x10
#define NS_ORCLOSE 0x40

/* bind(2)/mount(2) flags, Plan 9's values. */
#define NS_MREPL 0x0000
#define NS_MBEFORE 0x0001
#define NS_MAFTER 0x0002
#define NS_MCREATE 0x0004

/* rfork(2) flags for ns_rfork, Plan 9's values. */
#define NS_RFNAMEG (1 << 0)   /* a copy of the namespace */
#define NS_RFCNAMEG (1 << 10) /* a clean namespace (empty mount table) */
#define NS_RFCFDG (1 << 12)   /* close every descriptor */

#define NS_DMDIR 0x80000000u /* mode bit of a directory */

/* Largest read or write carried in the control ICA. */
#define NS_SMALL KABI_NS_SMALL

typedef struct kabi_dir ns_dir; /* name, qid, mode, length, times, owner */

int ns_open(const char *path, int mode);
/* Creates path (a directory when perm has NS_DMDIR) and opens it. */
int ns_create(const char *path, int mode, uint32_t perm);
long ns_read(int fd, void *buf, size_t n);
long ns_write(int fd, const void *buf, size_t n);
long ns_pread(int fd, void *buf, size_t n, uint64_t off);
long ns_pwrite(int fd, const void *buf, size_t n, uint64_t off);
/* Reads into / writes from data[0..n) of an ICA the caller holds, which
 * travels to a mounted server and back: zero copies. */
long ns_read_ica(int fd, uk_ica *data, size_t n, uint64_t off);
long ns_write_ica(int fd, uk_ica *data, size_t n, uint64_t off);
int64_t ns_seek(int fd, int64_t off, int whence);
int ns_close(int fd);
/* Directory entries of an open directory, up to nd at a time: the count
 * read, 0 at the end. */
long ns_dirread(int fd, ns_dir *d, size_t nd);
int ns_stat(const char *path, ns_dir *d);
int ns_fstat(int fd, ns_dir *d);
/* Changes what d says: numbers left KABI_DIR_KEEP32/64 and an empty name
 * stay as they are (ns_dir_keep fills d so). */
int ns_wstat(const char *path, const ns_dir *d);
void ns_dir_keep(ns_dir *d);
int ns_remove(const char *path);
int ns_chdir(const char *path);
/* The name fd was opened by, cleaned, into buf. */
int ns_fd2path(int fd, char *buf, size_t len);
/* newfd < 0: the lowest free descriptor. */
int ns_dup(int oldfd, int newfd);
int ns_pipe(int fd[2]);
int ns_bind(const char *new_, const char *old, int flag);
/* Mounts the server whose link fd is open (/srv/NAME) on old, attaching
 * to aname ("" for its root). */
int ns_mount(int fd, const char *old, int flag, const char *aname);
/* Mounts the external 9P server at dial address addr ("tcp!HOST!PORT",
 * "unix!PATH": diod, `uksim 9p serve`, a Plan 9 exportfs) on old, attaching
 * to aname.  The kernel dials it once and shares the connection among the
 * mounts of that address; 9P2000.L if the server speaks it, else 9P2000. */
int ns_mount_addr(const char *addr, const char *old, int flag,
                  const char *aname);
/* import (seed 002 §6.3): mounts `remote` of the namespace another node
 * exports at addr (`uksim exportfs`) on `local`, so this process uses the
 * other node's servants and servers (its /dev/cons, its /srv) here. */
int ns_import(const char *addr, const char *remote, const char *local,
              int flag);
/* new_ NULL: old stops being a mount point. */
int ns_unmount(const char *new_, const char *old);
int ns_rfork(int flags);

#endif /* UKSIM_NS_H */
