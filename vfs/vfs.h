/* vfs: chans, namespace groups, mount tables, union directories and file
 * descriptors as kernel data (seed 002 §4.2, §5.1, §6.1-§6.4; Fig. 2, 4-6).
 *
 * Everything here is a pure function over struct uk_kdata (the tables are
 * struct uk_vfs in uksim/kdata.h): no I/O, no descriptors, no allocation, no
 * pointers stored.  The kernel will resolve paths, call servants and speak
 * 9P; this layer only keeps the tables right, so a reader from outside (uksim
 * ps, a backup kernel, a monitor) can read any process's namespace from the
 * region, and unit tests check it without the loop.
 *
 * Tables (limits in kdata.h, each full table an error, never a crash):
 *
 * - chan[UK_CHAN_MAX]: the paper's objH.  A chan is one file of one servant
 *   (type = the servant's letter, dev = its instance) or of a mounted server
 *   (type UK_CHAN_MNT, dev = the server link, the paper's mchan, and fid =
 *   the server's fid), with its qid, open mode and offset, and the
 *   cleaned name namec reached it by (path, for fd2path: UK_PATH_MAX + 1
 *   bytes a chan, 256 KiB of the region in all; Plan 9 keeps a shared
 *   Path, which would need a string table with its own references).  It is
 * named by (type, dev, qid.path): mount points and union members match by that
 *   name, never by chan id and never by qid alone (vfs_chan_same).
 *   Reference counted: one reference per table entry that names it (a
 *   descriptor, a root, a cwd, a mount point's `from`, a union member) plus
 *   those the kernel holds while a call runs.  At zero a servant's chan is
 *   freed; a mounted server's chan goes to UK_CHAN_CLUNK, keeping its slot
 *   until the kernel has sent the Tclunk (vfs_clunk_next, vfs_chan_clunked):
 *   a clunk owed survives in the region, and the calls that drop references
 *   return how many clunks became due.
 * - ns[UK_NS_MAX]: namespace groups (Plan 9's Pgrp).  Each has a reference
 *   count (its processes) and a mount table mount[0..nmount), in the order
 *   the mount points were first bound onto.  A mount entry is `from` (the
 *   chan mounted on) and its union list member[0..n) with a flag per member
 *   (UK_MCREATE).  At most one entry per `from` name in a group.
 * - vproc[UK_PROC_MAX], parallel to proc[]: a process's group, root and
 *   current directory chans and its descriptor table fd[UK_FD_MAX].
 * - cons, env[], srv[], pipe[]: the servants' state (dev.h and one file
 *   per servant, devcons.c ... devpipe.c).  Environment variables belong to
 *   a group: vfs_ns_copy copies them and a group's last unref frees them.
 *
 * Invariants (vfs_check tests them all):
 * - a LIVE chan has ref >= 1; a CLUNK chan is UK_CHAN_MNT with ref 0; a
 *   FREE chan has ref 0; every chan id stored anywhere names a LIVE chan,
 *   and a chan's ref is at least the number of entries that store its id;
 *   a chan not FREE has a NUL-terminated path;
 * - a LIVE group has ref >= 1 and 0 <= nmount <= UK_MOUNT_MAX; each of its
 *   mount entries has 1 <= n <= UK_UNION_MAX members, all with the dir-ness
 *   (UK_QTDIR) of `from`, flags within UK_MCREATE; no two entries share a
 *   `from` name;
 * - an attached process names a LIVE group and LIVE root and cwd chans; a
 *   detached one stores no id at all;
 * - servants' tables (dev.h): the console's rings within bounds; a LIVE
 *   environment variable names a LIVE group, has a name unique in its
 *   group and a value within UK_ENV_VAL_MAX, and no group has more than
 *   UK_ENV_NS_MAX; a /srv entry has a unique name and, posted, a service
 *   index in range; every pipe chan names a pipe of its generation and a
 *   pipe no chan names is cleared (empty rings, not hung up); a freed env
 *   or srv slot names nothing.
 * An all-zero struct uk_vfs satisfies them: it is the empty state.
 *
 * Operations and their semantics.  The paper describes bind, mount and
 * union mounts but is silent on the flags, on unmount, on union order and
 * on how a child gets its namespace; there we follow Plan 9 (bind(2),
 * rfork(2), and port/chan.c's cmount/cunmount), as marked "[Plan 9]".
 *
 * - vfs_bind(new, old, flag): afterwards a walk reaching `old` sees a union.
 *   [Plan 9] MREPL replaces the union by `new`; MBEFORE puts `new` first,
 *   MAFTER last; MCREATE marks the new member as accepting creates.  When
 *   `old` was not yet a mount point and the flag is MBEFORE or MAFTER, `old`
 *   itself becomes a member (without MCREATE), so its own files stay
 *   visible.  `new` and `old` must both be directories or both not
 *   (-EINVAL, "inconsistent mount"), and a union (MBEFORE/MAFTER) needs a
 *   directory (-ENOTDIR).  When `new` is itself a mount point of the group,
 *   its members are copied in its place, in order (binding a union copies
 *   it); only the first copy carries MCREATE.
 * - vfs_mount(c, old, flag): the same for the root chan of a freshly
 *   attached server (type UK_CHAN_MNT); a fresh attach is never treated as
 *   a union to copy.  (The paper's mount = Tattach through #M, then this.)
 * - vfs_unmount(new, old): [Plan 9] with `new` none, `old` stops being a
 *   mount point; otherwise the first member named like `new` leaves the
 *   union, and the mount point goes when its last member does.
 * - vfs_mount_lookup(c): the mount entry a walk reaching `c` sees, if any.
 * - Union directories: [Plan 9, and issue 13] members are visited in order
 *   and a member named like an earlier one is skipped (vfs_union_next); a
 *   read lists each remaining member's entries, an entry being shown only if
 *   no earlier member has its name, so the first occurrence of a name wins
 *   (vfs_union_shows); a walk of a name takes the first member that has it
 *   (vfs_union_find); a create goes to the first member bound with MCREATE,
 *   and fails with -EACCES when none was (vfs_create_target).
 * - Groups: vfs_ns_new (empty, [Plan 9] RFCNAMEG), vfs_ns_copy (every entry,
 *   every chan referenced again, RFNAMEG), vfs_ns_ref (shared, rfork
 *   without either flag), vfs_ns_unref (freed with its mounts at zero).
 * - Processes: vfs_proc_attach (first namespace), vfs_proc_fork (a child
 *   shares, copies or gets a clean group; [Plan 9] a clean group keeps the
 *   parent's root and cwd chans and has an empty mount table), vfs_proc_rfork
 *   (the same in place: the shell's newns), vfs_proc_release (at exit),
 *   vfs_chdir.  Descriptors are always per process: a child gets a copy of
 *   its parent's table (RFFDG) or an empty one (RFCFDG); Plan 9's shared fd
 *   group is not offered.
 * - Descriptors: [Plan 9] vfs_fd_new takes the lowest free descriptor;
 *   vfs_fd_dup(old, new) with new = -1 takes the lowest free one, else
 *   closes `new` first; a duplicate shares the chan, hence its offset.
 *
 * Contracts common to all: ids from a caller are untrusted and checked
 * (range, state, generation).  Functions that change tables return a
 * non-negative count of clunks now due (most are always 0) or a negative
 * errno; on error nothing in the region has changed, byte for byte.
 * Allocation takes the lowest free slot, so a run is deterministic.
 */
#ifndef UKSIM_VFS_H
#define UKSIM_VFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uksim/kdata.h"

/* bind(2)/mount(2) flags, Plan 9's values. */
#define VFS_MREPL 0x0000u
#define VFS_MBEFORE 0x0001u
#define VFS_MAFTER 0x0002u
#define VFS_MORDER 0x0003u
#define VFS_MCREATE UK_MCREATE

/* rfork(2) flags, Plan 9's values; the others are not ours to take. */
#define VFS_RFNAMEG (1u << 0)   /* copy of the parent's namespace group */
#define VFS_RFFDG (1u << 2)     /* copy of the descriptor table (default) */
#define VFS_RFCNAMEG (1u << 10) /* a clean namespace group */
#define VFS_RFCFDG (1u << 12)   /* an empty descriptor table */

/* Chans (chan.c).  vfs_chan_new gives a LIVE chan with one reference (the
 * caller's), not open, offset 0. */
int vfs_chan_new(struct uk_kdata *kd, uint8_t type, uint32_t dev,
                 const struct uk_qid *qid, uint32_t *id);
int vfs_chan_lookup(const struct uk_kdata *kd, uint32_t id); /* index */
int vfs_chan_ref(struct uk_kdata *kd, uint32_t id);
int vfs_chan_unref(struct uk_kdata *kd, uint32_t id); /* 1: clunk due */
bool vfs_chan_same(const struct uk_kdata *kd, uint32_t a, uint32_t b);
bool vfs_chan_isdir(const struct uk_kdata *kd, uint32_t id);
uint32_t vfs_clunk_next(const struct uk_kdata *kd); /* UK_VFS_NONE: none */
int vfs_chan_clunked(struct uk_kdata *kd, uint32_t id);
uint32_t vfs_chan_live(const struct uk_kdata *kd); /* LIVE and CLUNK */

/* Namespace groups, mount tables and unions (ns.c).  A mount entry is named
 * by its index m in the group, valid until the group's next change. */
int vfs_ns_new(struct uk_kdata *kd, uint32_t *ns);
int vfs_ns_copy(struct uk_kdata *kd, uint32_t from, uint32_t *ns);
int vfs_ns_lookup(const struct uk_kdata *kd, uint32_t ns); /* index */
int vfs_ns_ref(struct uk_kdata *kd, uint32_t ns);
int vfs_ns_unref(struct uk_kdata *kd, uint32_t ns);
int vfs_bind(struct uk_kdata *kd, uint32_t ns, uint32_t new, uint32_t old,
             uint32_t flag);
int vfs_mount(struct uk_kdata *kd, uint32_t ns, uint32_t c, uint32_t old,
              uint32_t flag);
int vfs_unmount(struct uk_kdata *kd, uint32_t ns, uint32_t new, uint32_t old);
int vfs_mount_lookup(const struct uk_kdata *kd, uint32_t ns, uint32_t c);

/* Union members in order, each distinct member once: start with *pos = 0;
 * returns the next member's chan id, UK_VFS_NONE after the last. */
uint32_t vfs_union_next(const struct uk_kdata *kd, uint32_t ns, int m,
                        int *pos);

/* Whether directory `dir` (a servant's or server's chan) has an entry
 * `name`: the walk the caller can do, for the union functions below. */
typedef bool (*vfs_has_fn)(void *arg, uint32_t dir, const char *name);

/* True if entry `name`, read from the member that vfs_union_next returned
 * for *pos == pos (the value *pos had after that call), is shown in a read
 * of the union: no earlier distinct member has that name. */
bool vfs_union_shows(const struct uk_kdata *kd, uint32_t ns, int m, int pos,
                     const char *name, vfs_has_fn has, void *arg);
/* The first distinct member that has `name`, or UK_VFS_NONE. */
uint32_t vfs_union_find(const struct uk_kdata *kd, uint32_t ns, int m,
                        const char *name, vfs_has_fn has, void *arg);
/* Where a create in directory `dir` goes: `dir` itself unless it is a
 * mount point; then the first member bound with MCREATE, or -EACCES.
 * Returns 0 and sets *target (borrowed, no reference taken). */
int vfs_create_target(const struct uk_kdata *kd, uint32_t ns, uint32_t dir,
                      uint32_t *target);

/* Processes and descriptors (fd.c).  p is a process index. */
int vfs_proc_attach(struct uk_kdata *kd, uint32_t p, uint32_t ns, uint32_t root,
                    uint32_t cwd);
int vfs_proc_fork(struct uk_kdata *kd, uint32_t parent, uint32_t child,
                  uint32_t rfflags);
int vfs_proc_rfork(struct uk_kdata *kd, uint32_t p, uint32_t rfflags);
int vfs_proc_release(struct uk_kdata *kd, uint32_t p);
int vfs_chdir(struct uk_kdata *kd, uint32_t p, uint32_t c);
/* Stores the caller's reference on c in the lowest free descriptor (on
 * success only: on error the caller still holds it). */
int vfs_fd_new(struct uk_kdata *kd, uint32_t p, uint32_t c, int *fd);
uint32_t vfs_fd_lookup(const struct uk_kdata *kd, uint32_t p, int fd);
int vfs_fd_dup(struct uk_kdata *kd, uint32_t p, int oldfd, int newfd, int *fd);
int vfs_fd_close(struct uk_kdata *kd, uint32_t p, int fd);

/* Path resolution (namec.c, seed 002 §5.1, Plan 9's namec): the chan that
 * path[0..len) names in process p's namespace, a new chan with one
 * reference (the caller's) in *c.
 * - "/..." starts at p's root, "#X..." at the root of servant X (what
 *   follows the letter up to a '/' is the attach spec, Plan 9's "#l0"),
 *   anything else at p's cwd; empty names ("a//b", a trailing '/') are
 *   skipped, "." stays.
 * - Every name is walked in turn, ".." too: "nope/.." is -ENOENT and
 *   "file/.." -ENOTDIR (POSIX; Plan 9 cleans such names away first).
 * - ".." pops the name walked last, so from inside a mounted tree it
 *   comes back to the mount point it was entered through; at p's root it
 *   stays; above the starting cwd it walks the cwd's name (its chan's
 *   path) less the last element again, and only for a cwd without a name
 *   is it the servant's parent of the cwd.
 * - The chan keeps the cleaned name it was reached by in its path
 *   ("/n/d/..", from the cwd "/dev" "../n" are both "/n"), for fd2path;
 *   a name that would grow past UK_PATH_MAX is -ENAMETOOLONG.
 * - At a mount point of p's group the name is walked in the union, the
 *   first member that has it winning.  The result is the chan reached,
 *   not what is mounted on it ([Plan 9] namec for Amount/Acreate, and what
 *   vfs_bind, vfs_mount_lookup and vfs_create_target take): whoever opens
 *   or reads it looks up the union there.
 * Errors: -ESRCH (p not attached), -EINVAL (empty path, a NUL in it, "#"
 * without a letter, a spec the servant refuses), -ENAMETOOLONG (len >
 * UK_PATH_MAX), -ENOENT (a name missing, a letter with no servant),
 * -ENOTDIR (a name walked in a file), -ENFILE (chan table full).  On
 * error nothing in the region has changed. */
int vfs_namec(struct uk_kdata *kd, uint32_t p, const char *path, size_t len,
              uint32_t *c);
/* The name descriptor fd of p was opened by (its chan's path: what namec
 * reached it by, cleaned) into buf[0..len).  -EBADF for no such fd,
 * -ENOENT for a chan namec did not make, -ERANGE if len is too short. */
int vfs_fd2path(const struct uk_kdata *kd, uint32_t p, int fd, char *buf,
                size_t len);

/* Checks every invariant above; on a violation returns -EUCLEAN and says
 * which in why.  Meant for tests and for readers of another kernel's
 * region (treat a torn view as such). */
int vfs_check(const struct uk_kdata *kd, char *why, unsigned len);

#endif /* UKSIM_VFS_H */
