/* Servants: the kernel's own file trees (seed 002 §3.2, §5.2), each a
 * table of operations named by a type letter, as Plan 9's Dev (port/dev.c,
 * port/devroot.c).  A chan of a servant has type = its letter, dev = its
 * instance (0 for all servants so far) and a qid the servant chose.
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
 * Directory reads give whole struct vfs_dir records, the offset counting
 * bytes of records (a multiple of sizeof(struct vfs_dir)); the 9P stat(5)
 * encoding is the kernel call's business, not the servant's.
 */
#ifndef UKSIM_VFS_DEV_H
#define UKSIM_VFS_DEV_H

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
  /* Bytes read or written, or a negative errno. */
  long (*read)(const struct uk_kdata *kd, const struct uk_chan *c, void *buf,
               uint32_t n, uint64_t off);
  long (*write)(struct uk_kdata *kd, struct uk_chan *c, const void *buf,
                uint32_t n, uint64_t off);
  /* Makes `name` in directory dir; dir becomes the new file, open. */
  int (*create)(struct uk_kdata *kd, struct uk_chan *dir, const char *name,
                uint32_t perm, uint8_t mode);
  int (*remove)(struct uk_kdata *kd, struct uk_chan *c);
  /* The last use of an open chan is over (before its last reference). */
  void (*close)(struct uk_kdata *kd, struct uk_chan *c);
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

/* Dispatch: the op of c's servant, or its default.  -EBADF for a chan not
 * LIVE or not open as the op needs, -ENODEV for a letter no servant has. */
int vfs_dev_attach(const struct uk_kdata *kd, uint8_t dc, const char *spec,
                   struct uk_chan *c);
int vfs_dev_walk(const struct uk_kdata *kd, const struct uk_chan *dir,
                 const char *name, struct uk_qid *qid);
int vfs_dev_stat(const struct uk_kdata *kd, uint32_t c, struct vfs_dir *d);
int vfs_dev_open(struct uk_kdata *kd, uint32_t c, uint8_t mode);
long vfs_dev_read(const struct uk_kdata *kd, uint32_t c, void *buf, uint32_t n,
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
 * only for reading (-EISDIR), no OTRUNC or ORCLOSE (-EPERM); read: the gen
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
