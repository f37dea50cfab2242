/* #| — bidirectional pipes (Plan 9's port/devpipe.c).
 *
 * Each attach of '#|' makes a new pipe: a directory with two files, data
 * and data1; what is written to one is read from the other.  The kernel's
 * pipe() takes vfs_pipe_new instead, which gives both ends open at once.
 *
 * A pipe is pipe[i] in the region, and it is in use exactly while some
 * chan names it (type '|', dev = UK_VFS_ID(i, gen)): the chan table is
 * its reference count, so an attach that a failed namec threw away costs
 * nothing.  Attach takes the lowest slot no chan names (-ENFILE when all
 * are named); when the last chan naming a pipe goes (dev.h convention 4:
 * the free op) the pipe is cleared and its generation moves on.
 *
 * ring[e] holds what end e reads, UK_PIPE_BUF bytes at most.  When the
 * last open chan of an end closes, the end is hung up, for good (Plan 9
 * does not reopen a pipe's queues either):
 * - read of an empty end: 0 (EOF) if the other end hung up, else -EAGAIN
 *   (would block, convention 1);
 * - write: -EPIPE if the other end hung up; a write of at most
 *   UK_PIPE_BUF bytes goes in whole or is -EAGAIN; a larger one takes
 *   what fits and is -EAGAIN only when nothing does (POSIX's PIPE_BUF
 *   rule), so the kernel writes the rest later.
 * An end that was never opened is not hung up: a reader waits for a
 * writer to come, and writes wait in the buffer for a reader.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "dev.h"
#include "vfs.h"
#include "vfs_int.h"

enum { QDIR = 0, QDATA0, QDATA1 };

/* The host's monotonic clock (uv_hrtime's), never lock-step's virtual
 * one: a monitor in another process compares it with its own. */
static uint64_t host_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static const struct vfs__ent files[] = {{"data", 0660u}, {"data1", 0660u}};

/* The index of the pipe chan c names, or -1. */
static int pipe_of(const struct uk_kdata *kd, const struct uk_chan *c) {
  uint32_t i = UK_VFS_INDEX(c->dev);
  if (i >= UK_PIPE_MAX || kd->vfs.pipe[i].gen != UK_VFS_GEN(c->dev))
    return -1;
  return (int)i;
}

/* Whether a LIVE chan other than skip names pipe i; with qpath > 0 only
 * chans open on that end count. */
static bool named(const struct uk_kdata *kd, uint32_t i, uint64_t qpath,
                  const struct uk_chan *skip) {
  for (uint32_t k = 0; k < UK_CHAN_MAX; k++) {
    const struct uk_chan *c = &kd->vfs.chan[k];
    if (c == skip || c->state != UK_CHAN_LIVE || c->type != '|' ||
        UK_VFS_INDEX(c->dev) != i)
      continue;
    if (qpath == QDIR || (c->qid.path == qpath && (c->flags & UK_CHAN_F_OPEN)))
      return true;
  }
  return false;
}

/* The lowest pipe no chan names, or -ENFILE. */
static int pipe_free_slot(const struct uk_kdata *kd) {
  for (uint32_t i = 0; i < UK_PIPE_MAX; i++)
    if (!named(kd, i, QDIR, NULL))
      return (int)i;
  return -ENFILE;
}

static int pipegen(const struct uk_kdata *kd, const struct uk_chan *c, int i,
                   struct vfs_dir *d) {
  if (!vfs__flat_gen(files, 2, "#|", c, i, d))
    return 0;
  int p = pipe_of(kd, c);
  if (d->qid.path != QDIR && p >= 0)
    d->length = kd->vfs.pipe[p].ring[d->qid.path - 1].len;
  return 1;
}

static int pipeattach(const struct uk_kdata *kd, const char *spec,
                      struct uk_chan *c) {
  if (spec[0] != '\0')
    return -EINVAL;
  int i = pipe_free_slot(kd);
  if (i < 0)
    return i;
  memset(c, 0, sizeof *c);
  c->type = '|';
  c->dev = UK_VFS_ID(i, kd->vfs.pipe[i].gen);
  c->qid.type = UK_QTDIR;
  return 0;
}

static long piperead(struct uk_kdata *kd, const struct uk_chan *c, void *buf,
                     uint32_t n, uint64_t off) {
  if (c->qid.path == QDIR)
    return vfs_devdirread(kd, c, buf, n, off);
  int i = pipe_of(kd, c), e = (int)c->qid.path - 1;
  if (i < 0)
    return -EBADF;
  struct uk_pipe *p = &kd->vfs.pipe[i];
  struct uk_pring *r = &p->ring[e];
  if (r->len == 0)
    return p->hungup[1 - e] ? 0 : -EAGAIN;
  return (long)vfs__ring_take(r->buf, UK_PIPE_BUF, &r->head, &r->len, buf, n);
}

static long pipewrite(struct uk_kdata *kd, struct uk_chan *c, const void *buf,
                      uint32_t n, uint64_t off) {
  (void)off;
  int i = pipe_of(kd, c);
  if (c->qid.path == QDIR || i < 0)
    return -EBADF;
  struct uk_pipe *p = &kd->vfs.pipe[i];
  int other = 2 - (int)c->qid.path; /* data writes ring[1], data1 ring[0] */
  struct uk_pring *r = &p->ring[other];
  uint32_t room = UK_PIPE_BUF - r->len;
  if (p->hungup[other])
    return -EPIPE;
  if (n == 0)
    return 0;
  if (room == 0 || (n <= UK_PIPE_BUF && room < n))
    return -EAGAIN;
  if (r->len == 0) /* for a monitor: how long data has waited (seed 003) */
    p->data_ns[other] = host_ns();
  return (long)vfs__ring_put(r->buf, UK_PIPE_BUF, r->head, &r->len, buf, n);
}

static void pipeclose(struct uk_kdata *kd, struct uk_chan *c) {
  int i = pipe_of(kd, c);
  if (c->qid.path != QDIR && i >= 0 && !named(kd, (uint32_t)i, c->qid.path, c))
    kd->vfs.pipe[i].hungup[c->qid.path - 1] = 1;
}

static void pipefree(struct uk_kdata *kd, const struct uk_chan *c) {
  int i = pipe_of(kd, c);
  if (i < 0 || named(kd, (uint32_t)i, QDIR, NULL))
    return;
  struct uk_pipe *p = &kd->vfs.pipe[i];
  uint16_t gen = (uint16_t)(p->gen + 1);
  memset(p, 0, sizeof *p);
  p->gen = gen;
}

/* A new chan on end qpath of the pipe dev, open for reading and writing. */
static void end_new(struct uk_kdata *kd, uint32_t dev, uint64_t qpath,
                    uint32_t *id) {
  struct uk_qid q = {.path = qpath};
  vfs_chan_new(kd, '|', dev, &q, id); /* the caller made sure of room */
  struct uk_chan *c = &kd->vfs.chan[UK_VFS_INDEX(*id)];
  c->mode = VFS_ORDWR;
  c->flags |= UK_CHAN_F_OPEN;
  strcpy(c->path, qpath == QDATA0 ? "#|/data" : "#|/data1");
}

int vfs_pipe_new(struct uk_kdata *kd, uint32_t *c0, uint32_t *c1) {
  int i = pipe_free_slot(kd);
  if (i < 0)
    return i;
  if (UK_CHAN_MAX - vfs_chan_live(kd) < 2)
    return -ENFILE;
  uint32_t dev = UK_VFS_ID(i, kd->vfs.pipe[i].gen);
  end_new(kd, dev, QDATA0, c0);
  end_new(kd, dev, QDATA1, c1);
  return 0;
}

const struct vfs_dev vfs_pipedev = {
    .dc = '|',
    .name = "pipe",
    .gen = pipegen,
    .attach = pipeattach,
    .read = piperead,
    .write = pipewrite,
    .close = pipeclose,
    .free = pipefree,
};
