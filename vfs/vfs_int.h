/* vfs/ internals shared by its files; not part of vfs.h. */
#ifndef UKSIM_VFS_INT_H
#define UKSIM_VFS_INT_H

#include <stdbool.h>
#include <stddef.h>

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

/* #e's part in namespace groups (devenv.c): whether the pool has room
 * for a copy of group from's variables, the copy (after that said yes),
 * and freeing a group's variables when the group goes. */
bool vfs__env_fits(const struct uk_kdata *kd, uint32_t from);
void vfs__env_copy(struct uk_kdata *kd, uint32_t from, uint32_t to);
void vfs__env_free(struct uk_kdata *kd, uint32_t ns);

/* For servants (dev.c, text.c). */
struct vfs_dir;

/* Fills *d: qid (path, type), mode, length and name (cut at
 * VFS_DIRNAME_MAX). */
void vfs__dir(struct vfs_dir *d, uint64_t path, uint8_t qtype, uint32_t mode,
              uint64_t length, const char *name);
/* A servant whose root holds files only: entry i of tab has qid path
 * i + 1, the root path 0 and the name root.  A vfs_gen_fn's body. */
struct vfs__ent {
  const char *name;
  uint32_t mode;
};
int vfs__flat_gen(const struct vfs__ent *tab, int n, const char *root,
                  const struct uk_chan *c, int i, struct vfs_dir *d);
/* The qid path of slot i of a servant's table whose slot has generation
 * gen (0 is the servant's root), and back: the slot, or -1. */
#define VFS_QPATH(i, gen) (((uint64_t)(gen) << 32) | ((uint64_t)(i) + 1))
#define VFS_QGEN(path) ((uint32_t)((path) >> 32))
static inline int vfs__qslot(uint64_t path, uint32_t max) {
  uint64_t i = (path & 0xffffffffu) - 1;
  return path == 0 || i >= max ? -1 : (int)i;
}
/* A name a servant may create: not empty, ".", ".." or with a '/'
 * (-EINVAL), at most max bytes (-ENAMETOOLONG). */
int vfs__check_name(const char *name, size_t max);
/* Directory chan dir becomes the file it just created (qid path, a plain
 * file), open in mode (dev.h: create). */
void vfs__created(struct uk_chan *dir, uint64_t path, uint8_t mode,
                  const char *name);
/* c's path and "/name", when c has a path and the result fits. */
void vfs__path_append(struct uk_chan *c, const char *name);
/* The last reference of servant chan index i went (dev.h convention 4):
 * close it if open, make it FREE, run its servant's free. */
void vfs__chan_last(struct uk_kdata *kd, uint32_t i);

/* #I's invariants (devip.c), in vfs_check's one pass over the chans:
 * LIVE #I chan i names a conversation of its generation (marked in
 * named[UK_CONV_MAX]), then every conversation in use is named by a chan
 * and its fields are in range.  0, or -EUCLEAN with why filled in. */
int vfs__ip_chan_check(const struct uk_kdata *kd, uint32_t i, bool *named,
                       char *why, unsigned len);
int vfs__ip_table_check(const struct uk_kdata *kd, const bool *named, char *why,
                        unsigned len);

/* Bytes [off, off + n) of the text s[0..len) into buf: the count. */
long vfs__read_str(void *buf, uint32_t n, uint64_t off, const char *s,
                   size_t len);
/* A text made of lines, each made on demand: fn writes the line at
 * *cursor (0 first) into line[0..len) and returns its length, moving
 * *cursor past it, or returns 0 after the last. */
typedef size_t (*vfs__line_fn)(const struct uk_kdata *kd, const void *arg,
                               uint32_t *cursor, char *line, size_t len);
#define VFS_LINE_MAX 1200 /* longest line a vfs__line_fn makes */
/* Bytes [off, off + n) of the text fn makes, into buf: the count. */
long vfs__read_lines(const struct uk_kdata *kd, vfs__line_fn fn,
                     const void *arg, void *buf, uint32_t n, uint64_t off);
/* Appends name to out[0..cap) quoted as rc(1) would ('#c' and 'a b' are
 * quoted, /dev is not): the new length, or cap when it does not fit. */
size_t vfs__quote(char *out, size_t at, size_t cap, const char *name);

/* Byte rings of cap bytes, ring[head] the oldest of len: take moves up to
 * n bytes out from the front, put up to n in at the back (what fits);
 * both return the count. */
uint32_t vfs__ring_take(const char *ring, uint32_t cap, uint32_t *head,
                        uint32_t *len, void *out, uint32_t n);
uint32_t vfs__ring_put(char *ring, uint32_t cap, uint32_t head, uint32_t *len,
                       const void *in, uint32_t n);

#endif /* UKSIM_VFS_INT_H */
