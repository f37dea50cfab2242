/* The replay journal (issue 15, kernel update method B, seed 003 §4): the
 * calls that shaped this process's kernel state, kept by libuksim in the
 * process's own memory as it makes them, so that the process can make
 * them again against a kernel of another version ("replay") and so
 * rebuild, from user space and in its own context, the namespace,
 * descriptors, pipes and service registration it had.
 *
 * It is honest because it is the process's own record: nothing in it was
 * read from the old kernel.  What a call cannot recreate is not in it and
 * must be added by the new kernel (the unread bytes of a pipe, the ICAs
 * the process holds, the requests queued for its service, the results of
 * its calls in flight).
 *
 * What is kept, one entry per live effect (a call that failed keeps
 * nothing; the note functions take the call's result and ignore r < 0):
 *
 *   call                  entry                     removed by
 *   ns_bind(new, old)     BIND new old flag         an ns_rfork with
 *   ns_mount(fd, old ..)  MOUNT old aname flag,     NS_RFCNAMEG
 *                         the path fd was opened
 *                         from (or the address)
 *   ns_unmount(new, old)  UNMOUNT new old (kept as  the same
 *                         a call: its effect
 *                         depends on all before it)
 *   ns_chdir(path)        CHDIR path (one, the      the next ns_chdir,
 *                         last)                     NS_RFCNAMEG
 *   ns_rfork(flags)       RFORK flags (it forgets   never (few: a replay
 *                         what it wiped)            must close, too, what
 *                                                   came before the journal)
 *   ns_open/ns_create     OPEN fd path mode offset  ns_close(fd), an
 *                         (mode without NS_OTRUNC:  ns_dup onto fd, an
 *                         a replay must not empty   ns_rfork with
 *                         the file again)           NS_RFCFDG
 *   ns_dup(old, new)      DUP new old (shares old's the same; closing old
 *                         offset)                   turns the first DUP of
 *                                                   it into its OPEN
 *   ns_pipe(fd)           PIPE fd[0] fd[1], each    the close of both ends
 *                         end live or closed
 *   srv_register(name)    REGISTER name version     never (one per process)
 *                         opnames
 *   ns_read/ns_write,     the OPEN's offset moves   -
 *   ns_seek               (ns_pread/pwrite: not)
 *
 * Journal states (the journal as a whole):
 *
 *   RECORDING --an entry that does not fit--> OVERFLOWED
 *   OVERFLOWED: an entry was lost: the table was full, a path too long,
 *               or the call named a descriptor the journal does not know
 *               (opened before it, or a dup of a pipe end).
 *               Sticky; entries are still removed, none added, and
 *               uk_journal_replay refuses (-ENOSPC, uk_journal_why says
 *               which call did not fit): a replay without the lost entry
 *               would rebuild a state the process never had.
 *   RECORDING --uk_journal_replay--> (entries replayed in order) --> RECORDING
 *
 * Entry lifecycle: FREE --note of a successful call--> LIVE --its undoing
 * call--> FREE.  Entries are kept in the order of their calls, and a
 * replay makes the calls in that order: a mount on a directory a bind
 * made comes after the bind, a dup after the open it copies.
 *
 * Limits: UK_JOURNAL_MAX entries, each path at most UK_PATH_MAX bytes (the
 * kernel's own limit: a longer path fails its call, so never needs an
 * entry).  Not thread-safe by itself: libuksim notes under its lock.
 */
#ifndef UKSIM_JOURNAL_H
#define UKSIM_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "kdata.h"

/* Entries a journal keeps.  Each live descriptor takes one (UK_FD_MAX:
 * 64), a pipe one for both ends, and the namespace changes the rest: a
 * process that changes its namespace more than ~190 times (an unmount is
 * one more, not one less) overflows and can only move by method A.
 * README.md, limits. */
#define UK_JOURNAL_MAX 256

enum uk_journal_kind {
  UK_JOURNAL_FREE = 0,
  UK_JOURNAL_BIND,
  UK_JOURNAL_MOUNT,
  UK_JOURNAL_UNMOUNT,
  UK_JOURNAL_CHDIR,
  UK_JOURNAL_OPEN,
  UK_JOURNAL_DUP,
  UK_JOURNAL_PIPE,
  UK_JOURNAL_REGISTER,
  UK_JOURNAL_RFORK,
};

/* One entry.  The fields each kind uses:
 *   BIND      a = new, b = old, flag
 *   MOUNT     a = srv path the fd was opened from ("" when by address),
 *             b = old, c = aname or, by address, the "addr aname" spec
 *   UNMOUNT   a = new ("" none), b = old
 *   CHDIR     a = path
 *   OPEN      fd, a = path, flag = mode, off
 *   DUP       fd = the new descriptor, fd2 = the one it copies
 *   PIPE      fd, fd2 = the two ends (-1 once closed)
 *   REGISTER  a = name, b = opnames, flag = version
 *   RFORK     flag = ns_rfork's flags */
struct uk_journal_entry {
  uint32_t kind; /* enum uk_journal_kind */
  int32_t fd, fd2;
  uint32_t flag;
  uint64_t off;
  char a[UK_PATH_MAX + 1];
  char b[UK_PATH_MAX + 1];
  char c[UK_PATH_MAX + 1];
};

struct uk_journal {
  uint32_t n;      /* entries e[0..n), in call order, none FREE */
  bool overflowed; /* sticky: see the state machine above */
  char why[128];   /* the call that did not fit */
  uint64_t noted;  /* successful calls noted (each added, changed or
                      removed an entry), for the trace and the bench */
  struct uk_journal_entry e[UK_JOURNAL_MAX];
};

/* uk_journal_self: this process's journal, the one libuksim's calls note
 * in (borrowed; lives as long as the process).  Read it under no lock only
 * when no other thread makes calls. */
struct uk_journal *uk_journal_self(void);

/* uk_journal_init: an empty journal, RECORDING. */
void uk_journal_init(struct uk_journal *j);

/* The notes: each takes the result r of the call it records, and records
 * nothing when r < 0 (the call changed nothing).  No errors: an entry that
 * does not fit sets the journal OVERFLOWED. */
void uk_journal_bind(struct uk_journal *j, const char *new_, const char *old,
                     int flag, int r);
void uk_journal_mount(struct uk_journal *j, int fd, const char *old, int flag,
                      const char *aname, int r);
void uk_journal_mount_addr(struct uk_journal *j, const char *spec,
                           const char *old, int flag, int r);
void uk_journal_unmount(struct uk_journal *j, const char *new_, const char *old,
                        int r);
void uk_journal_chdir(struct uk_journal *j, const char *path, int r);
/* r: the descriptor the open or create returned. */
void uk_journal_open(struct uk_journal *j, const char *path, int mode, int r);
void uk_journal_close(struct uk_journal *j, int fd, int r);
/* r: the descriptor the dup returned. */
void uk_journal_dup(struct uk_journal *j, int oldfd, int r);
void uk_journal_pipe(struct uk_journal *j, const int fd[2], int r);
/* A read or write of r bytes at the descriptor's offset (off ==
 * KABI_NS_OFF_CUR) moves it; one at an explicit offset does not. */
void uk_journal_io(struct uk_journal *j, int fd, uint64_t off, long r);
/* r: the new offset the seek returned. */
void uk_journal_seek(struct uk_journal *j, int fd, int64_t r);
/* flags: ns_rfork's; NS_RFCNAMEG forgets the namespace entries,
 * NS_RFCFDG the descriptors'. */
void uk_journal_rfork(struct uk_journal *j, int flags, int r);
void uk_journal_register(struct uk_journal *j, const char *name,
                         uint32_t version, const char *opnames, int r);

/* uk_journal_lookup: the live OPEN (or PIPE) entry behind descriptor fd,
 * following DUPs to the entry they copy, or NULL (borrowed). */
const struct uk_journal_entry *uk_journal_lookup(const struct uk_journal *j,
                                                 int fd);

/* The calls a replay makes, each returning what the libuksim call of the
 * same name returns (0, a descriptor or an offset, or a negative errno).
 * libuksim's own (uk_journal_replay_self) are ns_open, ns_dup ...; a test
 * passes a model. */
struct uk_journal_ops {
  int (*bind)(void *arg, const char *new_, const char *old, int flag);
  int (*mount)(void *arg, int fd, const char *old, int flag, const char *aname);
  int (*mount_addr)(void *arg, const char *spec, const char *old, int flag);
  int (*unmount)(void *arg, const char *new_, const char *old);
  int (*chdir)(void *arg, const char *path);
  int (*open)(void *arg, const char *path, int mode);
  int (*close)(void *arg, int fd);
  int (*dup)(void *arg, int oldfd, int newfd);
  int (*pipe)(void *arg, int fd[2]);
  int64_t (*seek)(void *arg, int fd, int64_t off);
  int (*reg)(void *arg, const char *name, uint32_t version,
             const char *opnames);
  int (*rfork)(void *arg, int flags);
};

/* What a replay did, for the trace and bench kupdate (replay_calls). */
struct uk_journal_stats {
  uint32_t entries; /* entries replayed */
  uint32_t calls;   /* calls made */
  int32_t failed;   /* the index of the entry whose call failed, or -1 */
};

/* uk_journal_replay: makes the calls of j's entries, in order, through
 * ops, so that each descriptor gets its old number back (an open that
 * lands elsewhere is dup'ed onto it and closed) and each file its offset.
 * It stops at the first call that fails.  The journal is unchanged (the
 * replayed calls are not noted again).
 * Errors: -ENOSPC (the journal overflowed: uk_journal_why), or the
 * failing call's error (st->failed names its entry). */
int uk_journal_replay(const struct uk_journal *j,
                      const struct uk_journal_ops *ops, void *arg,
                      struct uk_journal_stats *st);

/* uk_journal_replay_self: replays this process's journal through its own
 * libuksim calls, against the kernel it is connected to now (a kernel
 * update's new kernel).  The notes are off meanwhile. */
int uk_journal_replay_self(struct uk_journal_stats *st);

/* uk_journal_why: why j cannot be replayed ("" when it can). */
const char *uk_journal_why(const struct uk_journal *j);

/* uk_journal_kind_name: "bind", "open" ... for traces and tests. */
const char *uk_journal_kind_name(uint32_t kind);

#endif
