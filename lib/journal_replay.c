/* Replaying a journal (uksim/journal.h): the calls of its entries, in
 * order, through a table of operations, with each descriptor put back on
 * its old number.  A kernel hands out the lowest free descriptor, so an
 * open in the new kernel may land elsewhere: it is dup'ed onto the
 * journal's number and the temporary closed.  A pipe's two ends are
 * settled so that neither move overwrites the other.
 *
 * uk_journal_replay_self runs the replay with libuksim's own calls, in
 * the process's own context, the journal's notes off (journal_int.h) and
 * the library's lock held throughout, so that no other thread's call
 * interleaves with the rebuilding. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "conn.h"
#include "journal_int.h"
#include "lock.h"
#include "uksim/journal.h"
#include "uksim/ns.h"
#include "uksim/server.h"

struct replay {
  const struct uk_journal *j;
  uint32_t at; /* the entry being replayed */
  const struct uk_journal_ops *ops;
  void *arg;
  struct uk_journal_stats *st;
};

/* Puts descriptor got on number want (dup, then close the temporary). */
static int settle(struct replay *p, int got, int want) {
  if (got == want)
    return 0;
  p->st->calls += 2;
  int r = p->ops->dup(p->arg, got, want);
  return r < 0 ? r : p->ops->close(p->arg, got);
}

static int replay_open(struct replay *p, const struct uk_journal_entry *e) {
  p->st->calls++;
  int fd = p->ops->open(p->arg, e->a, (int)e->flag);
  if (fd < 0)
    return fd;
  int r = settle(p, fd, e->fd);
  if (r < 0 || e->off == 0)
    return r;
  p->st->calls++;
  int64_t o = p->ops->seek(p->arg, e->fd, (int64_t)e->off);
  /* A directory only rewinds: its next read starts over, which a reader
   * of directory entries (ns_dirread) must take anyway after an update. */
  return o < 0 && o != -EISDIR ? (int)o : 0;
}

/* One end of a new pipe: onto its number, or closed when the process had
 * closed it. */
static int pipe_end(struct replay *p, int got, int want) {
  if (want >= 0)
    return settle(p, got, want);
  p->st->calls++;
  return p->ops->close(p->arg, got);
}

static int replay_pipe(struct replay *p, const struct uk_journal_entry *e) {
  int fd[2];
  p->st->calls++;
  int r = p->ops->pipe(p->arg, fd);
  if (r < 0)
    return r;
  if (fd[0] == e->fd2 && fd[1] == e->fd) { /* swapped: move end 0 away */
    p->st->calls += 2;
    int t = p->ops->dup(p->arg, fd[0], -1);
    if (t < 0 || (r = p->ops->close(p->arg, fd[0])) < 0)
      return t < 0 ? t : r;
    fd[0] = t;
  }
  if (fd[1] == e->fd) /* end 0 first would overwrite end 1 */
    return (r = pipe_end(p, fd[1], e->fd2)) < 0 ? r : pipe_end(p, fd[0], e->fd);
  return (r = pipe_end(p, fd[0], e->fd)) < 0 ? r : pipe_end(p, fd[1], e->fd2);
}

/* A descriptor a replayed entry before this one opened on path (and the
 * process still holds), or -1.  A mount through it needs no descriptor of
 * its own: the process had one fewer free when it mounted, and may have
 * none to spare now. */
static int replayed_open(const struct replay *p, const char *path) {
  for (uint32_t i = 0; i < p->at; i++)
    if (p->j->e[i].kind == UK_JOURNAL_OPEN && strcmp(p->j->e[i].a, path) == 0)
      return p->j->e[i].fd;
  return -1;
}

static int replay_mount(struct replay *p, const struct uk_journal_entry *e) {
  if (e->a[0] == '\0') {
    p->st->calls++;
    return p->ops->mount_addr(p->arg, e->c, e->b, (int)e->flag);
  }
  int held = replayed_open(p, e->a);
  if (held >= 0) {
    p->st->calls++;
    return p->ops->mount(p->arg, held, e->b, (int)e->flag, e->c);
  }
  p->st->calls += 3;
  int fd = p->ops->open(p->arg, e->a, NS_ORDWR);
  if (fd < 0)
    return fd;
  int r = p->ops->mount(p->arg, fd, e->b, (int)e->flag, e->c);
  int c = p->ops->close(p->arg, fd);
  return r < 0 ? r : c;
}

static int replay_one(struct replay *p, const struct uk_journal_entry *e) {
  switch (e->kind) {
  case UK_JOURNAL_BIND:
    p->st->calls++;
    return p->ops->bind(p->arg, e->a, e->b, (int)e->flag);
  case UK_JOURNAL_MOUNT:
    return replay_mount(p, e);
  case UK_JOURNAL_UNMOUNT:
    p->st->calls++;
    return p->ops->unmount(p->arg, e->a[0] ? e->a : NULL, e->b);
  case UK_JOURNAL_CHDIR:
    p->st->calls++;
    return p->ops->chdir(p->arg, e->a);
  case UK_JOURNAL_OPEN:
    return replay_open(p, e);
  case UK_JOURNAL_DUP:
    p->st->calls++;
    return p->ops->dup(p->arg, e->fd2, e->fd);
  case UK_JOURNAL_PIPE:
    return replay_pipe(p, e);
  case UK_JOURNAL_REGISTER:
    p->st->calls++;
    return p->ops->reg(p->arg, e->a, e->flag, e->b);
  case UK_JOURNAL_RFORK:
    p->st->calls++;
    return p->ops->rfork(p->arg, (int)e->flag);
  default:
    return -EPROTO; /* a FREE or unknown entry: the journal is corrupt */
  }
}

int uk_journal_replay(const struct uk_journal *j,
                      const struct uk_journal_ops *ops, void *arg,
                      struct uk_journal_stats *st) {
  struct uk_journal_stats none;
  struct replay p = {j, 0, ops, arg, st ? st : &none};
  memset(p.st, 0, sizeof *p.st);
  p.st->failed = -1;
  if (j->overflowed)
    return -ENOSPC;
  for (uint32_t i = 0; i < j->n; i++) {
    p.at = i;
    int r = replay_one(&p, &j->e[i]);
    if (r < 0) {
      p.st->failed = (int32_t)i;
      return r;
    }
    p.st->entries++;
  }
  return 0;
}

/* libuksim's own calls, as journal operations. */
static int self_bind(void *arg, const char *new_, const char *old, int flag) {
  (void)arg;
  return ns_bind(new_, old, flag);
}

static int self_mount(void *arg, int fd, const char *old, int flag,
                      const char *aname) {
  (void)arg;
  return ns_mount(fd, old, flag, aname);
}

/* spec is "addr" or "addr aname", as ns_mount_addr wrote it. */
static int self_mount_addr(void *arg, const char *spec, const char *old,
                           int flag) {
  (void)arg;
  char addr[UK_PATH_MAX + 1];
  const char *sp = strchr(spec, ' ');
  size_t n = sp ? (size_t)(sp - spec) : strlen(spec);
  memcpy(addr, spec, n);
  addr[n] = '\0';
  return ns_mount_addr(addr, old, flag, sp ? sp + 1 : "");
}

static int self_unmount(void *arg, const char *new_, const char *old) {
  (void)arg;
  return ns_unmount(new_, old);
}

static int self_chdir(void *arg, const char *path) {
  (void)arg;
  return ns_chdir(path);
}

static int self_open(void *arg, const char *path, int mode) {
  (void)arg;
  return ns_open(path, mode);
}

static int self_close(void *arg, int fd) {
  (void)arg;
  return ns_close(fd);
}

static int self_dup(void *arg, int oldfd, int newfd) {
  (void)arg;
  return ns_dup(oldfd, newfd);
}

static int self_pipe(void *arg, int fd[2]) {
  (void)arg;
  return ns_pipe(fd);
}

static int64_t self_seek(void *arg, int fd, int64_t off) {
  (void)arg;
  return ns_seek(fd, off, 0 /* SEEK_SET */);
}

static int self_reg(void *arg, const char *name, uint32_t version,
                    const char *opnames) {
  (void)arg;
  return srv_register(name, version, opnames, NULL);
}

static int self_rfork(void *arg, int flags) {
  (void)arg;
  return ns_rfork(flags);
}

static const struct uk_journal_ops self_ops = {
    .bind = self_bind,
    .mount = self_mount,
    .mount_addr = self_mount_addr,
    .unmount = self_unmount,
    .chdir = self_chdir,
    .open = self_open,
    .close = self_close,
    .dup = self_dup,
    .pipe = self_pipe,
    .seek = self_seek,
    .reg = self_reg,
    .rfork = self_rfork,
};

int uk_journal_replay_self(struct uk_journal_stats *st) {
  uk__lock();
  uk__journal_quiet(true);
  int r = uk_journal_replay(uk_journal_self(), &self_ops, NULL, st);
  uk__journal_quiet(false);
  uk__unlock();
  return r;
}

/* Why a replay failed, for the kernel's trace. */
static void replay_why(int r, const struct uk_journal_stats *st, char *why,
                       size_t len) {
  const struct uk_journal *j = uk_journal_self();
  if (r == -ENOSPC && j->overflowed)
    snprintf(why, len, "%s", uk_journal_why(j));
  else if (r < 0 && st->failed >= 0 && (uint32_t)st->failed < j->n)
    snprintf(why, len, "entry %d (%s) failed: %s", st->failed,
             uk_journal_kind_name(j->e[st->failed].kind), strerror(-r));
  else if (r < 0)
    snprintf(why, len, "%s", strerror(-r));
}

int uk__journal_replay_for_kernel(void) {
  struct uk_journal_stats st;
  struct kabi_replay_done_args a;
  memset(&a, 0, sizeof a);
  int r = uk_journal_replay_self(&st);
  a.status = r;
  a.entries = st.entries;
  a.calls = st.calls;
  a.failed = st.failed;
  replay_why(r, &st, a.why, sizeof a.why);
  kabi_msg m;
  kabi_msg_init(&m, KABI_REPLAY_DONE, 0, 0, &a, sizeof a);
  int d = uk__call(&m);
  kabi_msg_close_fds(&m);
  return r < 0 ? r : d;
}
