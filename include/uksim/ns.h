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

#include <stdbool.h>
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

/* Errors every call below may return, besides its own: -ENOTCONN (not
 * started by a uksim kernel), -ECONNRESET (the kernel went away),
 * -ENAMETOOLONG (a path longer than the kernel takes, or an element over
 * KABI_DIR_NAME_MAX), -EBADF (fd is not an open descriptor of this
 * process), and whatever a mounted 9P server answers, mapped from its
 * error string to an errno (net9p/error.c: "file does not exist" is
 * -ENOENT, "permission denied" -EACCES ...). */

/* ns_kernel_gone: true once this process's connection to its kernel has
 * ended (the kernel closed it, or a send to it failed).  A call's
 * -ECONNRESET means either that, or that a server mounted in the
 * namespace went away (its calls fail, the kernel carries on): this tells
 * the two apart.  No errors.
 * Example:
 *   if (ns_stat("/n/x", &d) == -ECONNRESET && ns_kernel_gone())
 *     exit(1); // the kernel is gone, not just the server of /n/x */
bool ns_kernel_gone(void);

/* ns_open: opens path with mode (NS_OREAD, NS_OWRITE, NS_ORDWR, NS_OEXEC,
 * or'ed with NS_OTRUNC, NS_ORCLOSE); returns the lowest free descriptor.
 * Errors: -ENOENT (no such file), -ENOTDIR (an element is not a
 * directory), -EISDIR (a directory opened for writing), -EACCES, -EMFILE
 * (UK_FD_MAX descriptors open).
 * Example:
 *   int fd = ns_open("/env/user", NS_OREAD);
 *   if (fd < 0)
 *     fprintf(stderr, "/env/user: %s\n", strerror(-fd)); */
int ns_open(const char *path, int mode);

/* ns_create: creates path (a directory when perm has NS_DMDIR) and opens
 * it with mode; returns the descriptor.
 * Errors: -EEXIST (it exists), -ENOENT (no parent), -EACCES (the
 * directory, or a union mount without NS_MCREATE, forbids creation),
 * -EMFILE.
 * Example:
 *   int fd = ns_create("/n/ram/notes", NS_OWRITE, 0644);
 *   ns_create("/n/ram/dir", NS_OREAD, NS_DMDIR | 0755); */
int ns_create(const char *path, int mode, uint32_t perm);

/* ns_read, ns_write: read or write up to n bytes at the descriptor's
 * offset, which moves; return the count (0 at the end of a file; a pipe's
 * read waits for a writer).  Up to NS_SMALL bytes travel in the control
 * ICA, more through a data ICA without a copy in the kernel.
 * ns_pread, ns_pwrite: the same at offset off, the descriptor's offset
 * unchanged.
 * Errors: -EBADF (not open for that direction), -EISDIR (writing a
 * directory; reading one gives its ns_dir entries: use ns_dirread), -EPIPE
 * (writing a pipe nobody reads).
 * Example:
 *   char buf[128];
 *   long n = ns_read(fd, buf, sizeof buf - 1);
 *   if (n >= 0)
 *     buf[n] = '\0';
 *   ns_pwrite(fd, "x", 1, 4096); */
long ns_read(int fd, void *buf, size_t n);
long ns_write(int fd, const void *buf, size_t n);
long ns_pread(int fd, void *buf, size_t n, uint64_t off);
long ns_pwrite(int fd, const void *buf, size_t n, uint64_t off);

/* ns_read_ica, ns_write_ica: read into / write from data[0..n) of an ICA
 * the caller holds, which travels to a mounted server and back: zero
 * copies.  The ICA is the caller's again when the call returns.
 * Errors: those of ns_pread; -EPERM (the ICA is not held by this
 * process), -EINVAL (n larger than the ICA).
 * Example:
 *   uk_ica big;
 *   ica_create(1 << 20, KABI_ICA_DATA, &big);
 *   long n = ns_read_ica(fd, &big, big.size, 0); */
long ns_read_ica(int fd, uk_ica *data, size_t n, uint64_t off);
long ns_write_ica(int fd, uk_ica *data, size_t n, uint64_t off);

/* ns_seek: moves the descriptor's offset (whence SEEK_SET, SEEK_CUR,
 * SEEK_END) and returns the new one.
 * Errors: -EINVAL (a bad whence or a negative result), -EISDIR (a
 * directory only rewinds to 0).
 * Example:
 *   int64_t size = ns_seek(fd, 0, SEEK_END); */
int64_t ns_seek(int fd, int64_t off, int whence);

/* ns_close: closes the descriptor (an NS_ORCLOSE file is removed).
 * Errors: -EBADF.
 * Example:
 *   ns_close(fd); */
int ns_close(int fd);

/* ns_dirread: directory entries of an open directory, up to nd at a time:
 * the count read, 0 at the end.  Union directories list each name once.
 * Errors: -ENOTDIR (fd is not a directory).
 * Example:
 *   ns_dir d[16];
 *   long n;
 *   int fd = ns_open("/dev", NS_OREAD);
 *   while ((n = ns_dirread(fd, d, 16)) > 0)
 *     for (long i = 0; i < n; i++)
 *       puts(d[i].name); */
long ns_dirread(int fd, ns_dir *d, size_t nd);

/* ns_stat, ns_fstat: what a file is (name, qid, mode, length, times,
 * owner), by path or descriptor.
 * Errors: -ENOENT, -ENOTDIR.
 * Example:
 *   ns_dir d;
 *   if (ns_stat("/n/ram/notes", &d) == 0)
 *     printf("%llu bytes\n", (unsigned long long)d.length); */
int ns_stat(const char *path, ns_dir *d);
int ns_fstat(int fd, ns_dir *d);

/* ns_wstat: changes what d says: numbers left KABI_DIR_KEEP32/64 and an
 * empty name stay as they are (ns_dir_keep fills d so).  A new name
 * renames the file within its directory.
 * Errors: -ENOENT, -EACCES, -EEXIST (the new name exists), and the
 * server's refusal (a servant's files are mostly fixed: -EPERM).
 * Example (truncate):
 *   ns_dir d;
 *   ns_dir_keep(&d);
 *   d.length = 0;
 *   ns_wstat("/n/ram/notes", &d); */
int ns_wstat(const char *path, const ns_dir *d);

/* ns_dir_keep: fills d with "keep" values for ns_wstat.  No errors.
 * Example: see ns_wstat. */
void ns_dir_keep(ns_dir *d);

/* ns_remove: removes a file, or an empty directory.
 * Errors: -ENOENT, -EACCES, -ENOTEMPTY (a directory with entries).
 * Example:
 *   ns_remove("/n/ram/notes"); */
int ns_remove(const char *path);

/* ns_chdir: makes path the working directory relative paths start from.
 * Errors: -ENOENT, -ENOTDIR.
 * Example:
 *   ns_chdir("/n/ram"); */
int ns_chdir(const char *path);

/* ns_fd2path: the name fd was opened by, cleaned, into buf[len].
 * Errors: -EBADF, -ERANGE (buf too small).
 * Example:
 *   char name[256];
 *   ns_fd2path(fd, name, sizeof name); */
int ns_fd2path(int fd, char *buf, size_t len);

/* ns_dup: a second descriptor for oldfd's open file: newfd, or the lowest
 * free one when newfd < 0 (an open newfd is closed first).
 * Errors: -EBADF (oldfd not open, or newfd out of range), -EMFILE.
 * Example:
 *   int copy = ns_dup(fd, -1); */
int ns_dup(int oldfd, int newfd);

/* ns_pipe: a pipe (#|): fd[0] and fd[1] both read and write, each reading
 * what the other wrote.  A read waits for data or the other end's close.
 * Errors: -EMFILE.
 * Example:
 *   int p[2];
 *   ns_pipe(p);
 *   ns_write(p[1], "ping", 4); */
int ns_pipe(int fd[2]);

/* ns_bind: makes old (an existing file or directory) show new_ as well or
 * instead: NS_MREPL replaces old, NS_MBEFORE / NS_MAFTER make a union
 * directory with new_ searched before / after what is there, NS_MCREATE
 * lets a union create in new_.  new_ may be a servant ("#c", "#e" ...).
 * Only this process's namespace changes (and those sharing it).
 * Errors: -ENOENT (new_ or old does not exist), -EINVAL (a bad flag, or
 * a directory bound on a file), -ENOSPC (UK_MOUNT_MAX mount points, or
 * UK_UNION_MAX members of one union).
 * Example:
 *   ns_bind("#c", "/dev", NS_MAFTER);
 *   ns_bind("/n/ram/bin", "/bin", NS_MBEFORE); */
int ns_bind(const char *new_, const char *old, int flag);

/* ns_mount: mounts the server whose link fd is open (/srv/NAME) on old,
 * attaching to aname ("" for its root); flag as ns_bind's.
 * Errors: those of ns_bind; -EBADF (fd is not a server link), the
 * server's own error for its attach.
 * Example:
 *   int srv = ns_open("/srv/ramfs", NS_ORDWR);
 *   ns_mount(srv, "/n/ram", NS_MREPL | NS_MCREATE, "");
 *   ns_close(srv); */
int ns_mount(int fd, const char *old, int flag, const char *aname);

/* ns_mount_addr: mounts the external 9P server at dial address addr
 * ("tcp!HOST!PORT", "unix!PATH": diod, `uksim 9p serve`, a Plan 9
 * exportfs) on old, attaching to aname.  The kernel dials it once and
 * shares the connection among the mounts of that address; 9P2000.L if the
 * server speaks it, else 9P2000.
 * Errors: those of ns_bind; -EINVAL (a malformed address), -ECONNREFUSED
 * and the like (the dial failed), the server's error for its attach.
 * Example:
 *   ns_mount_addr("tcp!127.0.0.1!5640", "/n/remote", NS_MREPL, ""); */
int ns_mount_addr(const char *addr, const char *old, int flag,
                  const char *aname);

/* ns_import (seed 002 §6.3): mounts `remote` of the namespace another
 * node exports at addr ("tcp!HOST!PORT", `uksim exportfs`) on `local`,
 * with flag as ns_mount's (NS_MREPL, NS_MBEFORE, NS_MAFTER, NS_MCREATE),
 * so that this process uses the other node's servants and servers (its
 * /dev/cons, its /srv) here.  An exporter started with a key (`uksim
 * exportfs --key FILE`) is answered under this node's key (the machine's
 * --node-key FILE, the same secret), through 9P's Tauth.
 * Errors: those of ns_mount_addr (addr dialled, remote its attach name:
 * the server's error when it exports no such path); -EACCES when the
 * exporter wants a key and this node has none or another.
 * Example:
 *   ns_import("tcp!127.0.0.1!17011", "/dev", "/n/adev", NS_MREPL); */
int ns_import(const char *addr, const char *remote, const char *local,
              int flag);

/* ns_import_strerror: a person's words for an error of ns_import: for
 * -EACCES, that the exporter asks for a key this node does not prove (the
 * kernel proves the node's --node-key to an exporter started with --key);
 * else strerror.  No errors.
 * Example:
 *   int r = ns_import(addr, "/dev", "/n/adev", NS_MREPL);
 *   if (r < 0)
 *     fprintf(stderr, "import: %s\n", ns_import_strerror(r)); */
const char *ns_import_strerror(int err);

/* ns_unmount: removes new_ from the union at old; new_ NULL: old stops
 * being a mount point altogether.
 * Errors: -EINVAL (old is not a mount point), -ENOENT (new_ is not in
 * its union).
 * Example:
 *   ns_unmount(NULL, "/n/ram"); */
int ns_unmount(const char *new_, const char *old);

/* ns_rfork: changes what this process shares, Plan 9's rfork(2) for the
 * namespace: NS_RFNAMEG (its own copy of the namespace), NS_RFCNAMEG (a
 * clean one, an empty mount table), NS_RFCFDG (every descriptor closed).
 * Errors: -EINVAL (another flag), -ENOSPC (the namespace table is full).
 * Example:
 *   ns_rfork(NS_RFNAMEG);     // binds from here on are this process's
 *   ns_bind("#e", "/env", NS_MREPL); */
int ns_rfork(int flags);

#endif /* UKSIM_NS_H */
