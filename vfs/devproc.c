/* #p — processes (Plan 9's port/devproc.c, the part uksim has): a
 * directory per live process (RUNNING or WAITING in kd->proc) named by its
 * pid, with
 * - status: one line as Plan 9's, name, kind (where Plan 9 has the user),
 *   state, then pid, calls and errors in 11-column numbers;
 * - ns: the process's namespace as lines of ns(1): a line a union member,
 *   in the order that rebuilds the union ("bind -b", "bind -a" around the
 *   mount point's own directory, or a replacing bind then "bind -a"), a
 *   mounted server (a UK_CHAN_MNT chan, whose dev is taken to be its
 *   service index) as "mount" of the first /srv entry posted for that
 *   service, else of its chan's path; flags -a -b -c, names
 *   quoted as rc(1) would; the last line "cd" to the current directory;
 * - ctl: write "kill" to end the process;
 * - note: write a note.  [Plan 9] a process without a note handler dies
 *   of any note, and uksim processes have none: every note kills, the
 *   note being the reason the kernel gets.
 * Killing is the kernel's: it goes through the host's kill hook (dev.h
 * convention 2), -ENOSYS with no host.
 *
 * Qid paths: 0 is the root; a process's files are ((gen << 32) | (slot +
 * 1) << 4 | file), file 0 being its directory, so a chan on a process that
 * exited does not reach the next one in its slot (-ESRCH).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "dev.h"
#include "kfmt.h"
#include "vfs.h"
#include "vfs_int.h"

enum { QPDIR = 0, QSTATUS, QNS, QCTL, QNOTE, NQ };

#define PPATH(slot, gen, f)                                                    \
  (((uint64_t)(gen) << 32) | ((uint64_t)(slot) + 1) << 4 | (uint64_t)(f))
#define NOTE_MAX 127 /* Plan 9's ERRMAX less its NUL */

static const struct vfs__ent files[] = {
    {"status", 0444u}, {"ns", 0444u}, {"ctl", 0200u}, {"note", 0200u}};

static bool live(const struct uk_proc *p) {
  return p->state == UK_PROC_RUNNING || p->state == UK_PROC_WAITING;
}

/* The slot of the live process qid path names, or -1. */
static int proc_slot(const struct uk_kdata *kd, uint64_t path) {
  uint64_t s = ((path & 0xffffffffu) >> 4) - 1;
  if (path == 0 || s >= UK_PROC_MAX || !live(&kd->proc[s]) ||
      kd->proc[s].gen != (uint32_t)(path >> 32))
    return -1;
  return (int)s;
}

static void proc_dir(const struct uk_kdata *kd, int s, int f,
                     struct vfs_dir *d) {
  char name[16];
  snprintf(name, sizeof name, "%" PRId32, kd->proc[s].pid);
  uint64_t path = PPATH(s, kd->proc[s].gen, f);
  if (f == QPDIR)
    vfs__dir(d, path, UK_QTDIR, VFS_DMDIR | 0555u, 0, name);
  else
    vfs__dir(d, path, 0, files[f - 1].mode, 0, files[f - 1].name);
}

/* Entry i of the root: the i-th live process's directory. */
static int root_entry(const struct uk_kdata *kd, int i, struct vfs_dir *d) {
  for (int s = 0; s < UK_PROC_MAX; s++)
    if (live(&kd->proc[s]) && i-- == 0) {
      proc_dir(kd, s, QPDIR, d);
      return 1;
    }
  return 0;
}

static int procgen(const struct uk_kdata *kd, const struct uk_chan *c, int i,
                   struct vfs_dir *d) {
  int s = proc_slot(kd, c->qid.path), f = (int)(c->qid.path & 0xf);
  bool up_is_root = i == VFS_GEN_PARENT && f == QPDIR;
  if (c->qid.path == 0 || up_is_root) {
    if (i >= 0)
      return root_entry(kd, i, d);
    vfs__dir(d, 0, UK_QTDIR, VFS_DMDIR | 0555u, 0, "#p");
    return 1;
  }
  if (s < 0 || f >= NQ)
    return 0;
  if (i == VFS_GEN_SELF || i == VFS_GEN_PARENT)
    proc_dir(kd, s, i == VFS_GEN_SELF ? f : QPDIR, d);
  else if (f == QPDIR && i < NQ - 1)
    proc_dir(kd, s, i + 1, d);
  else
    return 0;
  return 1;
}

/* --- ns --- */

/* What a chan is called in an ns line: its path; for a server's chan its
 * /srv entry, or the address the kernel dialed; a servant's root without
 * a path "#X". */
static void chan_name(const struct uk_kdata *kd, uint32_t id, char *out,
                      size_t len) {
  const struct uk_chan *c = &kd->vfs.chan[UK_VFS_INDEX(id)];
  uint32_t net = c->dev - UK_SVC_MAX;
  if (c->type == UK_CHAN_MNT && c->dev >= UK_SVC_MAX && net < UK_NETLINK_MAX &&
      kd->vfs.net[net].addr[0] != '\0') {
    snprintf(out, len, "%.*s", UK_NETLINK_ADDR_MAX, kd->vfs.net[net].addr);
    return;
  }
  for (int i = 0; c->type == UK_CHAN_MNT && i < UK_SRV_MAX; i++) {
    const struct uk_srvent *e = &kd->vfs.srv[i];
    if (e->state == UK_SRV_POSTED && e->svc == c->dev) {
      snprintf(out, len, "#s/%s", e->name);
      return;
    }
  }
  if (c->path[0] != '\0')
    snprintf(out, len, "%s", c->path);
  else if (c->qid.path == 0)
    snprintf(out, len, "#%c", c->type);
  else
    snprintf(out, len, "?");
}

/* Line t of mount entry e: the member it binds and its order flag ('a',
 * 'b' or 0 for a replacing bind), or -1 past the last.  When the mount
 * point's own directory is a member j, the members before it come from
 * "bind -b" (nearest first) and those after from "bind -a"; otherwise the
 * first is a replacing bind and the others "bind -a". */
static int line_member(const struct uk_kdata *kd, const struct uk_mount *e,
                       int t, char *order) {
  int j = 0;
  while (j < e->n && !vfs_chan_same(kd, e->member[j], e->from))
    j++;
  if (j == e->n || e->n == 1) {
    *order = t == 0 ? 0 : 'a';
    return t < e->n ? t : -1;
  }
  *order = t < j ? 'b' : 'a';
  if (t < j)
    return j - 1 - t;
  return t < e->n - 1 ? t + 1 : -1;
}

static size_t ns_line(const struct uk_kdata *kd, const struct uk_mount *e,
                      int k, char order, char *line, size_t len) {
  const struct uk_chan *c = &kd->vfs.chan[UK_VFS_INDEX(e->member[k])];
  bool mnt = c->type == UK_CHAN_MNT, create = e->mflag[k] & UK_MCREATE;
  char src[UK_PATH_MAX + 8], dst[UK_PATH_MAX + 8];
  chan_name(kd, e->member[k], src, sizeof src);
  chan_name(kd, e->from, dst, sizeof dst);
  int n = snprintf(line, len, "%s%s%s%s%s ", mnt ? "mount" : "bind",
                   order || create ? " -" : "", order == 'a' ? "a" : "",
                   order == 'b' ? "b" : "", create ? "c" : "");
  size_t at = vfs__quote(line, (size_t)n, len, src);
  if (at < len - 1)
    line[at++] = ' ';
  at = vfs__quote(line, at, len, dst);
  if (at < len - 1)
    line[at++] = '\n';
  return at < len ? at : len - 1;
}

/* "cd" to process p's current directory. */
static size_t cd_line(const struct uk_kdata *kd, const struct uk_vproc *v,
                      char *line, size_t len) {
  char cwd[UK_PATH_MAX + 8];
  chan_name(kd, v->cwd, cwd, sizeof cwd);
  size_t at = vfs__quote(line, 3, len, cwd);
  memcpy(line, "cd ", 3);
  if (at < len - 1)
    line[at++] = '\n';
  return at < len ? at : len - 1;
}

#define NS_LINES (UK_UNION_MAX + 1) /* cursor = mount * NS_LINES + line */

/* A vfs__line_fn: the ns text of the process slot arg points to. */
static size_t ns_text(const struct uk_kdata *kd, const void *arg,
                      uint32_t *cursor, char *line, size_t len) {
  const struct uk_vproc *v = &kd->vfs.vproc[*(const int *)arg];
  int g = vfs_ns_lookup(kd, v->ns);
  if (!v->attached || g < 0)
    return 0;
  const struct uk_nsgroup *grp = &kd->vfs.ns[g];
  for (;;) {
    uint32_t m = *cursor / NS_LINES, t = *cursor % NS_LINES;
    if (m > grp->nmount)
      return 0;
    if (m == grp->nmount) {
      *cursor = (m + 1) * NS_LINES;
      return cd_line(kd, v, line, len);
    }
    char order;
    int k = line_member(kd, &grp->mount[m], (int)t, &order);
    if (k < 0) {
      *cursor = (m + 1) * NS_LINES;
      continue;
    }
    (*cursor)++;
    return ns_line(kd, &grp->mount[m], k, order, line, len);
  }
}

/* --- reads and writes --- */

static long status_read(const struct uk_kdata *kd, int s, void *buf, uint32_t n,
                        uint64_t off) {
  const struct uk_proc *p = &kd->proc[s];
  char line[160];
  int len =
      snprintf(line, sizeof line, "%-27.*s %-27s %-27s %11d %11llu %11llu\n",
               KABI_NAME_MAX, p->name, vfs_proc_kind_name(p->kind),
               vfs_proc_state_name(p->state), p->pid,
               (unsigned long long)p->calls, (unsigned long long)p->errors);
  return vfs__read_str(buf, n, off, line, (size_t)len);
}

static long procread(struct uk_kdata *kd, const struct uk_chan *c, void *buf,
                     uint32_t n, uint64_t off) {
  int s = proc_slot(kd, c->qid.path), f = (int)(c->qid.path & 0xf);
  if (c->qid.type & UK_QTDIR)
    return vfs_devdirread(kd, c, buf, n, off);
  if (s < 0)
    return -ESRCH;
  if (f == QSTATUS)
    return status_read(kd, s, buf, n, off);
  if (f == QNS)
    return vfs__read_lines(kd, ns_text, &s, buf, n, off);
  return -EPERM;
}

/* The text of a ctl or note write, a trailing newline dropped. */
static int note_text(const void *buf, uint32_t n, char *out) {
  if (n > 0 && ((const char *)buf)[n - 1] == '\n')
    n--;
  if (n == 0 || n > NOTE_MAX || memchr(buf, '\0', n) != NULL)
    return -EINVAL;
  memcpy(out, buf, n);
  out[n] = '\0';
  return 0;
}

static long procwrite(struct uk_kdata *kd, struct uk_chan *c, const void *buf,
                      uint32_t n, uint64_t off) {
  (void)off;
  int s = proc_slot(kd, c->qid.path), f = (int)(c->qid.path & 0xf);
  char note[NOTE_MAX + 1];
  if (s < 0)
    return -ESRCH;
  if (f != QCTL && f != QNOTE)
    return -EPERM;
  int r = note_text(buf, n, note);
  if (r == 0 && f == QCTL && strcmp(note, "kill") != 0)
    r = -EINVAL; /* the one ctl message uksim has */
  if (r == 0)
    r = vfs_kill((uint32_t)s, note);
  return r < 0 ? r : (long)n;
}

const struct vfs_dev vfs_procdev = {
    .dc = 'p',
    .name = "proc",
    .gen = procgen,
    .read = procread,
    .write = procwrite,
};
