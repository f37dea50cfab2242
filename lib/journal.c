/* The replay journal (uksim/journal.h; its state machine and what each call
 * keeps are in the header).  Entries are an array in call order; removing
 * one shifts the rest down, so that the order a replay needs (a bind
 * before the mount on it, an open before its dup) is always the array's.
 * The array is at most UK_JOURNAL_MAX long and changes only at calls that
 * already cost a round trip to the kernel, so the shifting is cheap.
 *
 * The notes accept j == NULL and do nothing: libuksim passes NULL while
 * it replays, so that the replayed calls are not recorded a second time. */
#include "uksim/journal.h"

#include "journal_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "uksim/kabi.h"
#include "uksim/ns.h"

static struct uk_journal self;
static bool quiet; /* a replay is under way: note nothing */

struct uk_journal *uk_journal_self(void) {
  return &self;
}

struct uk_journal *uk__journal(void) {
  return quiet ? NULL : &self;
}

void uk__journal_quiet(bool on) {
  quiet = on;
}

void uk_journal_init(struct uk_journal *j) {
  memset(j, 0, sizeof *j);
}

/* Copies s into an entry's field; false when it does not fit. */
static bool put(char dst[UK_PATH_MAX + 1], const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n > UK_PATH_MAX)
    return false;
  memcpy(dst, s ? s : "", n);
  dst[n] = '\0';
  return true;
}

static void overflow(struct uk_journal *j, const char *call, const char *why) {
  if (!j->overflowed)
    snprintf(j->why, sizeof j->why, "the journal overflowed at %s: %s", call,
             why);
  j->overflowed = true;
}

/* A new entry at the end, its strings set; NULL (and OVERFLOWED) when it
 * does not fit. */
static struct uk_journal_entry *add(struct uk_journal *j, uint32_t kind,
                                    const char *a, const char *b,
                                    const char *c) {
  if (j->overflowed)
    return NULL;
  if (j->n == UK_JOURNAL_MAX) {
    overflow(j, uk_journal_kind_name(kind), "UK_JOURNAL_MAX entries live");
    return NULL;
  }
  struct uk_journal_entry *e = &j->e[j->n];
  memset(e, 0, sizeof *e);
  if (!put(e->a, a) || !put(e->b, b) || !put(e->c, c)) {
    overflow(j, uk_journal_kind_name(kind), "a path over UK_PATH_MAX");
    return NULL;
  }
  e->kind = kind;
  e->fd = e->fd2 = -1;
  j->n++;
  j->noted++;
  return e;
}

static void drop(struct uk_journal *j, uint32_t i) {
  memmove(&j->e[i], &j->e[i + 1], (j->n - i - 1) * sizeof j->e[0]);
  j->n--;
}

/* The index of the entry that holds descriptor fd (OPEN, DUP, or a PIPE
 * end), or -1. */
static int holder(const struct uk_journal *j, int fd) {
  for (uint32_t i = 0; i < j->n; i++) {
    const struct uk_journal_entry *e = &j->e[i];
    bool fds = e->kind == UK_JOURNAL_OPEN || e->kind == UK_JOURNAL_DUP ||
               e->kind == UK_JOURNAL_PIPE;
    if (fds && (e->fd == fd || (e->kind == UK_JOURNAL_PIPE && e->fd2 == fd)))
      return (int)i;
  }
  return -1;
}

void uk_journal_bind(struct uk_journal *j, const char *new_, const char *old,
                     int flag, int r) {
  struct uk_journal_entry *e;
  if (j && r >= 0 && (e = add(j, UK_JOURNAL_BIND, new_, old, NULL)))
    e->flag = (uint32_t)flag;
}

void uk_journal_mount(struct uk_journal *j, int fd, const char *old, int flag,
                      const char *aname, int r) {
  if (j == NULL || r < 0)
    return;
  const struct uk_journal_entry *o = uk_journal_lookup(j, fd);
  if (o == NULL || o->kind != UK_JOURNAL_OPEN) {
    overflow(j, "mount", "its descriptor was opened before the journal");
    return;
  }
  char srv[UK_PATH_MAX + 1];
  memcpy(srv, o->a, sizeof srv); /* add may move nothing, but be plain */
  struct uk_journal_entry *e = add(j, UK_JOURNAL_MOUNT, srv, old, aname);
  if (e)
    e->flag = (uint32_t)flag;
}

void uk_journal_mount_addr(struct uk_journal *j, const char *spec,
                           const char *old, int flag, int r) {
  struct uk_journal_entry *e;
  if (j && r >= 0 && (e = add(j, UK_JOURNAL_MOUNT, "", old, spec)))
    e->flag = (uint32_t)flag;
}

/* An unmount is kept as a call of its own, never by dropping the bind it
 * undoes: what it leaves depends on everything before it (a bind with
 * NS_MREPL over the initial namespace's "#c" on /dev, then its unmount,
 * leaves /dev empty, which dropping the bind would not). */
void uk_journal_unmount(struct uk_journal *j, const char *new_, const char *old,
                        int r) {
  if (j && r >= 0)
    add(j, UK_JOURNAL_UNMOUNT, new_, old, NULL);
}

void uk_journal_chdir(struct uk_journal *j, const char *path, int r) {
  if (j == NULL || r < 0)
    return;
  for (uint32_t i = 0; i < j->n; i++)
    if (j->e[i].kind == UK_JOURNAL_CHDIR) {
      drop(j, i);
      break;
    }
  add(j, UK_JOURNAL_CHDIR, path, NULL, NULL);
}

/* Descriptor fd is being reused or closed: forget what held it.  A DUP of
 * a closed OPEN becomes an OPEN of the same file at the same offset (the
 * kernel keeps the file open through the dup). */
static void forget_fd(struct uk_journal *j, int fd) {
  int i = holder(j, fd);
  if (i < 0)
    return;
  struct uk_journal_entry *e = &j->e[i];
  if (e->kind == UK_JOURNAL_PIPE) {
    if (e->fd == fd)
      e->fd = -1;
    else
      e->fd2 = -1;
    if (e->fd < 0 && e->fd2 < 0)
      drop(j, (uint32_t)i);
    return;
  }
  for (uint32_t k = (uint32_t)i + 1; e->kind == UK_JOURNAL_OPEN && k < j->n;
       k++)
    if (j->e[k].kind == UK_JOURNAL_DUP && j->e[k].fd2 == fd) {
      int nfd = j->e[k].fd;
      drop(j, k);
      e->fd = nfd; /* the first dup takes the open's place (and order) */
      for (uint32_t m = k; m < j->n; m++)
        if (j->e[m].kind == UK_JOURNAL_DUP && j->e[m].fd2 == fd)
          j->e[m].fd2 = nfd; /* the others now copy it */
      return;
    }
  drop(j, (uint32_t)i);
}

void uk_journal_open(struct uk_journal *j, const char *path, int mode, int r) {
  if (j == NULL || r < 0)
    return;
  forget_fd(j, r); /* a stale entry would be a second holder */
  struct uk_journal_entry *e = add(j, UK_JOURNAL_OPEN, path, NULL, NULL);
  if (e) {
    e->fd = r;
    e->flag = (uint32_t)mode & ~(uint32_t)NS_OTRUNC;
  }
}

void uk_journal_close(struct uk_journal *j, int fd, int r) {
  if (j && r >= 0) {
    forget_fd(j, fd);
    j->noted++;
  }
}

void uk_journal_dup(struct uk_journal *j, int oldfd, int r) {
  if (j == NULL || r < 0 || r == oldfd)
    return;
  forget_fd(j, r);
  const struct uk_journal_entry *o = uk_journal_lookup(j, oldfd);
  if (o == NULL || o->kind != UK_JOURNAL_OPEN) {
    /* A pipe end, or a descriptor from before the journal: replay cannot
     * make that copy. */
    overflow(j, "dup", "its descriptor is no file the journal opened");
    return;
  }
  struct uk_journal_entry *e = add(j, UK_JOURNAL_DUP, NULL, NULL, NULL);
  if (e) {
    e->fd = r;
    e->fd2 = oldfd;
  }
}

void uk_journal_pipe(struct uk_journal *j, const int fd[2], int r) {
  if (j == NULL || r < 0)
    return;
  forget_fd(j, fd[0]);
  forget_fd(j, fd[1]);
  struct uk_journal_entry *e = add(j, UK_JOURNAL_PIPE, NULL, NULL, NULL);
  if (e) {
    e->fd = fd[0];
    e->fd2 = fd[1];
  }
}

/* The OPEN entry behind fd, DUPs followed, writable; NULL if none. */
static struct uk_journal_entry *open_of(struct uk_journal *j, int fd) {
  return (struct uk_journal_entry *)uk_journal_lookup(j, fd);
}

void uk_journal_io(struct uk_journal *j, int fd, uint64_t off, long r) {
  struct uk_journal_entry *e;
  if (j && r > 0 && off == KABI_NS_OFF_CUR && (e = open_of(j, fd)) &&
      e->kind == UK_JOURNAL_OPEN)
    e->off += (uint64_t)r;
}

void uk_journal_seek(struct uk_journal *j, int fd, int64_t r) {
  struct uk_journal_entry *e;
  if (j && r >= 0 && (e = open_of(j, fd)) && e->kind == UK_JOURNAL_OPEN)
    e->off = (uint64_t)r;
}

static bool is_ns(uint32_t kind) {
  return kind == UK_JOURNAL_BIND || kind == UK_JOURNAL_MOUNT ||
         kind == UK_JOURNAL_UNMOUNT || kind == UK_JOURNAL_CHDIR;
}

static bool is_fd(uint32_t kind) {
  return kind == UK_JOURNAL_OPEN || kind == UK_JOURNAL_DUP ||
         kind == UK_JOURNAL_PIPE;
}

/* The rfork is kept (a replay makes it too: a clean namespace is empty,
 * not the new kernel's default), and what it wiped is forgotten. */
void uk_journal_rfork(struct uk_journal *j, int flags, int r) {
  if (j == NULL || r < 0)
    return;
  bool clean_ns = flags & NS_RFCNAMEG, clean_fd = flags & NS_RFCFDG;
  for (uint32_t i = j->n; i-- > 0;)
    if ((clean_ns && is_ns(j->e[i].kind)) || (clean_fd && is_fd(j->e[i].kind)))
      drop(j, i);
  struct uk_journal_entry *e = add(j, UK_JOURNAL_RFORK, NULL, NULL, NULL);
  if (e)
    e->flag = (uint32_t)flags;
}

void uk_journal_register(struct uk_journal *j, const char *name,
                         uint32_t version, const char *opnames, int r) {
  struct uk_journal_entry *e;
  if (j && r >= 0 && (e = add(j, UK_JOURNAL_REGISTER, name, opnames, NULL)))
    e->flag = version;
}

const struct uk_journal_entry *uk_journal_lookup(const struct uk_journal *j,
                                                 int fd) {
  int i = holder(j, fd);
  if (i < 0)
    return NULL;
  if (j->e[i].kind == UK_JOURNAL_DUP)
    i = holder(j, j->e[i].fd2); /* a dup's source is live: forget_fd */
  return i < 0 ? NULL : &j->e[i];
}

const char *uk_journal_why(const struct uk_journal *j) {
  return j->overflowed ? j->why : "";
}

const char *uk_journal_kind_name(uint32_t kind) {
  static const char *const names[] = {
      [UK_JOURNAL_FREE] = "free",         [UK_JOURNAL_BIND] = "bind",
      [UK_JOURNAL_MOUNT] = "mount",       [UK_JOURNAL_UNMOUNT] = "unmount",
      [UK_JOURNAL_CHDIR] = "chdir",       [UK_JOURNAL_OPEN] = "open",
      [UK_JOURNAL_DUP] = "dup",           [UK_JOURNAL_PIPE] = "pipe",
      [UK_JOURNAL_REGISTER] = "register", [UK_JOURNAL_RFORK] = "rfork"};
  return kind < sizeof names / sizeof names[0] ? names[kind] : "?";
}
