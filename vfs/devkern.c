/* #k — the kernel's tables as text files: procs, svc, icas and counters
 * (issue 13; Plan 9 has no such servant, its nearest are #p and #c's
 * sysstat).  procs and svc are exactly what `uksim ps` and `uksim svc`
 * print below their first line, from the same formatter (kfmt.h); icas
 * lists the ICA table and counters the kernel's counters and steps, one
 * "name value" a line.  Made anew on every read (text.c).
 */
#include <errno.h>

#include "dev.h"
#include "kfmt.h"
#include "vfs_int.h"

typedef size_t (*ktab_fn)(const struct uk_kdata *kd, uint32_t *cursor,
                          char *line, size_t len);

static const struct vfs__ent files[] = {
    {"procs", 0444u}, {"svc", 0444u}, {"icas", 0444u}, {"counters", 0444u}};
static const ktab_fn tables[] = {vfs_ktab_procs, vfs_ktab_svc, vfs_ktab_icas,
                                 vfs_ktab_counters};
#define NFILES ((int)(sizeof files / sizeof files[0]))

static int kerngen(const struct uk_kdata *kd, const struct uk_chan *c, int i,
                   struct vfs_dir *d) {
  (void)kd;
  return vfs__flat_gen(files, NFILES, "#k", c, i, d);
}

/* A vfs__line_fn over the table function arg points to. */
static size_t table_line(const struct uk_kdata *kd, const void *arg,
                         uint32_t *cursor, char *line, size_t len) {
  return (*(const ktab_fn *)arg)(kd, cursor, line, len);
}

static long kernread(struct uk_kdata *kd, const struct uk_chan *c, void *buf,
                     uint32_t n, uint64_t off) {
  if (c->qid.path == 0)
    return vfs_devdirread(kd, c, buf, n, off);
  if (c->qid.path > (uint64_t)NFILES)
    return -ENOENT;
  return vfs__read_lines(kd, table_line, &tables[c->qid.path - 1], buf, n, off);
}

const struct vfs_dev vfs_kerndev = {
    .dc = 'k',
    .name = "kern",
    .gen = kerngen,
    .read = kernread,
};
