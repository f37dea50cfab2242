/* Servants: the kernel's own file trees (seed 002 §3.2, §5.2), each a
 * table of operations named by a type letter, as Plan 9's Dev (port/dev.c,
 * port/devroot.c).  A chan of a servant has type = its letter, dev = its
 * instance (0 for all servants but #|, where it names the pipe) and a qid
 * the servant chose.
 *
 * A servant fills in the ops it needs and leaves the rest NULL: each NULL
 * slot takes the generic default below (Plan 9 writes devwalk, devstat,
 * ... into the table; here NULL means the default, so a table lists only
 * what its servant does itself).  The defaults that walk, stat and read
 * directories work from the servant's `gen`, Plan 9's devgen: entry i of a
 * directory, one at a time, which is all a servant with a fixed tree has
 * to write.
 *
 * The ops work on chans, never on paths: namec (vfs_namec) turns a path
 * into chans one name at a time, crossing mount points itself, and asks a
 * servant only to walk one name from one of its directories.  walk, stat
 * and attach get a chan by value (namec walks on copies and puts the chan
 * in the table only at the end, so a failed walk leaves no trace); the
 * others get the chan in the table, which the dispatch functions
 * (vfs_dev_*) have checked: LIVE, of a registered servant, and open in a
 * mode that allows the op (lib9p's "check the protocol, then call").
 *
 * Servants are registered in one table by letter (dev.c: vfs_devtab), plus
 * those added at run time with vfs_dev_add (tests, and servants that live
 * outside vfs/ such as the mount driver #M to come).
 *
 * Conventions the kernel relies on:
 *
 * 1. Would block.  A read or write that must wait (an empty pipe or
 *    console, a full pipe) returns -EAGAIN and changes nothing in the
 *    region.  The kernel never blocks its loop on it: it defers the
 *    caller's call and retries it after later namespace calls have changed
 *    things (a write to the pipe, console input, a close of the other end).
 * 2. The caller.  Servants that need the calling process (Plan 9's `up`:
 *    #c pid, #e's group) or the kernel (#c time, #p kill) ask the host
 *    (struct vfs_host below) that the kernel installs with vfs_host_set
 *    and keeps current: h->up is the process index of the call being
 *    served, set before each namespace call.  With no host (unit tests
 *    that install none) up is UK_NIL, the clock reads 0 and kill is
 *    -ENOSYS.
 * 3. Directory reads give whole struct vfs_dir records, the offset
 *    counting bytes of records (a multiple of sizeof(struct vfs_dir)), and
 *    stat gives one; the 9P stat(5) or kabi_dir encoding is the kernel
 *    call's business, not the servant's.
 * 4. The last reference.  When a servant's chan loses its last reference
 *    (vfs_chan_unref) it is closed first if still open (the servant's
 *    close op, Plan 9's cclose), then the servant's free op runs: a
 *    servant whose objects live as long as chans name them (#| pipes)
 *    frees them there.  The kernel may also close a chan earlier with
 *    vfs_dev_close; a chan is never closed twice.
 * 5. Text files (#c time and pid, #p, #k, #s and #e values) are read at
 *    an offset like any file; a reader that wants a consistent view reads
 *    from 0 in one call with a buffer large enough.
 */
#ifndef UKSIM_VFS_DEV_H
#define UKSIM_VFS_DEV_H

#include <stdbool.h>
#include <stdint.h>

#include "uksim/kdata.h"

/* 9P open modes (open(5)). */
#define VFS_OREAD 0u
#define VFS_OWRITE 1u
#define VFS_ORDWR 2u
#define VFS_OEXEC 3u
#define VFS_OTRUNC 0x10u
#define VFS_ORCLOSE 0x40u

#define VFS_DMDIR 0x80000000u /* a directory's mode bit (stat(5)) */

#define VFS_DIRNAME_MAX 31 /* longest name of a servant's own entry */

/* One directory entry as a servant describes it: what stat gives and what
 * a directory read lists. */
struct vfs_dir {
  struct uk_qid qid;
  uint32_t mode; /* VFS_DMDIR | permission bits */
  uint32_t pad;
  uint64_t length;
  char name[VFS_DIRNAME_MAX + 1];
};

/* Entry i (0, 1, ...) of directory c into *d: returns 1, or 0 past the
 * last.  Two special i: VFS_GEN_SELF asks for c's own entry (stat),
 * VFS_GEN_PARENT for its parent (a walk of ".."; a root is its own
 * parent). */
typedef int (*vfs_gen_fn)(const struct uk_kdata *kd, const struct uk_chan *c,
                          int i, struct vfs_dir *d);
#define VFS_GEN_SELF (-1)
#define VFS_GEN_PARENT (-2)

struct vfs_dev {
  uint8_t dc;       /* type letter: "#/" is '/' */
  const char *name; /* "root", "cons", ... */
  vfs_gen_fn gen;   /* needed by the default attach, walk, stat and read */
  /* The servant's root chan into *c (type, dev and qid; nothing else is
   * read).  spec is what followed the letter in "#Xspec". */
  int (*attach)(const struct uk_kdata *kd, const char *spec, struct uk_chan *c);
  /* The qid of entry `name` of directory dir (".." for its parent); dir
   * is known to be a directory of this servant. */
  int (*walk)(const struct uk_kdata *kd, const struct uk_chan *dir,
              const char *name, struct uk_qid *qid);
  int (*stat)(const struct uk_kdata *kd, const struct uk_chan *c,
              struct vfs_dir *d);
  /* Sets c's mode and OPEN flag (the dispatch has checked c is not open). */
  int (*open)(struct uk_kdata *kd, struct uk_chan *c, uint8_t mode);
  /* Bytes read or written, or a negative errno; -EAGAIN: would block
   * (convention 1).  A read may change the region (it drains a pipe or
   * the console's input). */
  long (*read)(struct uk_kdata *kd, const struct uk_chan *c, void *buf,
               uint32_t n, uint64_t off);
  long (*write)(struct uk_kdata *kd, struct uk_chan *c, const void *buf,
                uint32_t n, uint64_t off);
  /* Makes `name` in directory dir; dir becomes the new file, open. */
  int (*create)(struct uk_kdata *kd, struct uk_chan *dir, const char *name,
                uint32_t perm, uint8_t mode);
  int (*remove)(struct uk_kdata *kd, struct uk_chan *c);
  /* The last use of an open chan is over (before its last reference). */
  void (*close)(struct uk_kdata *kd, struct uk_chan *c);
  /* c's last reference went, open or not (convention 4); c is already
   * FREE in the table and passed by value. */
  void (*free)(struct uk_kdata *kd, const struct uk_chan *c);
};

/* The servant with letter dc, or NULL. */
const struct vfs_dev *vfs_dev_lookup(uint8_t dc);
/* Registers d (borrowed for the life of the process): -EEXIST if its
 * letter is taken by another table, -ENOSPC beyond VFS_DEV_EXTRA, 0 if d
 * is already registered. */
#define VFS_DEV_EXTRA 8
int vfs_dev_add(const struct vfs_dev *d);

/* The servants in vfs/ (one file each). */
extern const struct vfs_dev vfs_rootdev; /* #/ devroot.c */
extern const struct vfs_dev vfs_consdev; /* #c devcons.c */
extern const struct vfs_dev vfs_envdev;  /* #e devenv.c */
extern const struct vfs_dev vfs_srvdev;  /* #s devsrv.c */
extern const struct vfs_dev vfs_pipedev; /* #| devpipe.c */
extern const struct vfs_dev vfs_procdev; /* #p devproc.c */
extern const struct vfs_dev vfs_kerndev; /* #k devkern.c */
extern const struct vfs_dev vfs_diskdev; /* #S devdisk.c */
extern const struct vfs_dev vfs_ipdev;   /* #I devip.c */

/* What servants need of the kernel (convention 2).  Borrowed: the kernel
 * keeps it alive and current while it serves namespace calls. */
struct vfs_host {
  void *arg;
  uint32_t up; /* process index of the caller, UK_NIL outside a call */
  uint64_t (*now_ns)(void *arg); /* the kernel clock, ns since boot */
  /* Ends process p (a process index) for `note` ("kill" from #p ctl, or
   * the note written to #p note); 0 or a negative errno. */
  int (*kill)(void *arg, uint32_t p, const char *note);
  /* #S: the kernel's disk through its buffer cache (sim-kernel/kdisk.h),
   * NULL without a disk.  Bytes read or written at off, or a negative
   * errno: 0 reading at or past the disk's end, -ENOSPC writing there,
   * -EAGAIN for a write that must wait for a write-back (the kernel starts
   * one and retries the call), -EFBIG for one larger than the cache.
   * disk_sync writes every dirty block back: 0 or a negative errno. */
  long (*disk_read)(void *arg, void *buf, uint32_t n, uint64_t off);
  long (*disk_write)(void *arg, const void *buf, uint32_t n, uint64_t off);
  int (*disk_sync)(void *arg);
  /* #I: the NIC's sockets, by conversation index (the kernel keeps the
   * descriptors; devip.c keeps the table).  nic_announce listens on
   * 127.0.0.1:port; nic_accept takes a connection of announced lconv as
   * conv, giving its remote address; nic_recv and nic_send move bytes (0
   * from nic_recv: the peer closed).  -EAGAIN: would block, the kernel
   * retries the call when the socket is ready (convention 1).  nic_close
   * lets go of conv's socket.  NULL without a NIC. */
  int (*nic_announce)(void *arg, uint32_t conv, uint16_t port);
  int (*nic_accept)(void *arg, uint32_t lconv, uint32_t conv, uint32_t *raddr,
                    uint16_t *rport);
  long (*nic_recv)(void *arg, uint32_t conv, void *buf, uint32_t n);
  long (*nic_send)(void *arg, uint32_t conv, const void *buf, uint32_t n);
  void (*nic_close)(void *arg, uint32_t conv);
};
void vfs_host_set(const struct vfs_host *h); /* NULL: no host */
const struct vfs_host *vfs_host_get(void);   /* NULL if none */
uint32_t vfs_up(void);                       /* h->up, or UK_NIL */
uint64_t vfs_now_ns(void);                   /* h->now_ns(), or 0 */
int vfs_kill(uint32_t p, const char *note);  /* h->kill(), or -ENOSYS */

/* #c for the kernel: console input in (bytes taken, which is fewer than n
 * when the ring fills), and output out: the bytes written since *seq (a
 * count of bytes ever written, 0 at boot) into buf[0..n), advancing *seq;
 * output overwritten before it was mirrored is skipped. */
uint32_t vfs_cons_input(struct uk_kdata *kd, const void *buf, uint32_t n);
uint32_t vfs_cons_output(const struct uk_kdata *kd, uint64_t *seq, void *buf,
                         uint32_t n);

/* #s for the kernel's mount: the service that /srv entry c (a #s chan)
 * names.  -EINVAL for a chan that is not an entry of #s, -ENOENT for an
 * entry removed since, -ENOTCONN for one not posted or whose service is
 * gone. */
int vfs_srv_lookup(const struct uk_kdata *kd, const struct uk_chan *c,
                   uint32_t *svc);

/* #| for the kernel's pipe(): a new pipe and its two ends as chans open
 * for reading and writing, one reference each (the caller's), named
 * "#|/data" and "#|/data1".  -ENFILE when the pipe or chan table is full. */
int vfs_pipe_new(struct uk_kdata *kd, uint32_t *c0, uint32_t *c1);

/* #I at a failover (sim-kernel/knic.c): the conversations came with the
 * dead kernel's vfs tables, their sockets from the machine (has_sock[n]:
 * conversation n's came).  fate[n]: VFS_IP_KEEP (in use, its socket
 * came), VFS_IP_LOST (in use, no socket: it is HUNGUP now), VFS_IP_CLOSE
 * (a socket whose conversation is not in use: its process did not move;
 * the kernel closes it), VFS_IP_NONE. */
enum { VFS_IP_NONE = 0, VFS_IP_KEEP, VFS_IP_LOST, VFS_IP_CLOSE };
void vfs_ip_adopted(struct uk_kdata *kd, const bool has_sock[UK_CONV_MAX],
                    uint8_t fate[UK_CONV_MAX]);

/* Dispatch: the op of c's servant, or its default.  -EBADF for a chan not
 * LIVE or not open as the op needs, -ENODEV for a letter no servant has. */
int vfs_dev_attach(const struct uk_kdata *kd, uint8_t dc, const char *spec,
                   struct uk_chan *c);
int vfs_dev_walk(const struct uk_kdata *kd, const struct uk_chan *dir,
                 const char *name, struct uk_qid *qid);
int vfs_dev_stat(const struct uk_kdata *kd, uint32_t c, struct vfs_dir *d);
int vfs_dev_open(struct uk_kdata *kd, uint32_t c, uint8_t mode);
long vfs_dev_read(struct uk_kdata *kd, uint32_t c, void *buf, uint32_t n,
                  uint64_t off);
long vfs_dev_write(struct uk_kdata *kd, uint32_t c, const void *buf, uint32_t n,
                   uint64_t off);
int vfs_dev_create(struct uk_kdata *kd, uint32_t dir, const char *name,
                   uint32_t perm, uint8_t mode);
int vfs_dev_remove(struct uk_kdata *kd, uint32_t c);
int vfs_dev_close(struct uk_kdata *kd, uint32_t c);

/* The generic defaults, for a servant that wraps them.  attach: the root
 * qid (path 0, a directory), refusing a spec (-EINVAL); walk: the gen
 * entry named so (-ENOENT); stat: gen's VFS_GEN_SELF; open: a directory
 * only for reading and never truncated (-EISDIR), no ORCLOSE (-EPERM),
 * OTRUNC dropped for a file ([Plan 9]: nothing to truncate); read: the gen
 * entries of a directory, -EPERM for a file; write, create and remove:
 * -EPERM; close: nothing. */
int vfs_devattach(uint8_t dc, const char *spec, struct uk_chan *c);
int vfs_devwalk(const struct uk_kdata *kd, const struct uk_chan *dir,
                const char *name, struct uk_qid *qid);
int vfs_devstat(const struct uk_kdata *kd, const struct uk_chan *c,
                struct vfs_dir *d);
int vfs_devopen(struct uk_kdata *kd, struct uk_chan *c, uint8_t mode);
long vfs_devdirread(const struct uk_kdata *kd, const struct uk_chan *c,
                    void *buf, uint32_t n, uint64_t off);

#endif /* UKSIM_VFS_DEV_H */
