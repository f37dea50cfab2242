/* The replay journal (lib/journal.c, lib/journal_replay.c): entries kept
 * as calls succeed and dropped as they are undone, its bound, and replay
 * checked against a simple model of a kernel's per-process state (SQLite
 * style): random calls on one model, noted in a journal, then the journal
 * replayed into a fresh model must give the same descriptors, offsets,
 * pipes, namespace, directory and registration. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uksim/journal.h"
#include "uksim/kabi.h"
#include "uksim/ns.h"

/* The model kernel: a descriptor table over shared open files (a dup
 * shares its file and offset), unions of names per mount point, a
 * directory and a service name. */
#define MFD 12
#define MFILES 64
#define MUNION 8
#define MMEMB 8
#define NAME 64

struct mfile {
  char path[NAME];
  uint64_t off;
  int pipe; /* 0: a file; else the pipe's id, and end says which */
  int end;
};

struct munion {
  char old[NAME];
  char memb[MMEMB][NAME];
  int n;
};

struct model {
  int fd[MFD]; /* index into f, +1; 0 closed */
  struct mfile f[MFILES];
  int nf;
  struct munion u[MUNION];
  char cwd[NAME];
  char reg[NAME];
  int pipes;
  int calls;
};

static struct munion *munion_of(struct model *m, const char *old, bool make) {
  for (int i = 0; i < MUNION; i++)
    if (m->u[i].old[0] && strcmp(m->u[i].old, old) == 0)
      return &m->u[i];
  for (int i = 0; make && i < MUNION; i++)
    if (m->u[i].old[0] == '\0') {
      snprintf(m->u[i].old, NAME, "%s", old);
      return &m->u[i];
    }
  return NULL;
}

static int m_attach(struct model *m, const char *name, const char *old,
                    int flag) {
  struct munion *u = munion_of(m, old, true);
  if (u == NULL || u->n == MMEMB)
    return -ENOSPC;
  if (flag == NS_MREPL)
    u->n = 0;
  int at = flag == NS_MBEFORE ? 0 : u->n;
  memmove(u->memb[at + 1], u->memb[at], (size_t)(u->n - at) * NAME);
  snprintf(u->memb[at], NAME, "%s", name);
  u->n++;
  return 0;
}

static void model_init(struct model *m) {
  memset(m, 0, sizeof *m);
  m_attach(m, "#c", "/dev", NS_MREPL); /* the initial namespace */
  m_attach(m, "#s", "/srv", NS_MREPL);
  snprintf(m->cwd, NAME, "/");
}

static int lowest_free(struct model *m) {
  for (int i = 0; i < MFD; i++)
    if (m->fd[i] == 0)
      return i;
  return -EMFILE;
}

static int new_file(struct model *m, const char *path, int pipe, int end) {
  if (m->nf == MFILES)
    return -ENOSPC;
  struct mfile *f = &m->f[m->nf++];
  snprintf(f->path, NAME, "%s", path);
  f->off = 0;
  f->pipe = pipe;
  f->end = end;
  return m->nf; /* index + 1 */
}

static struct mfile *file_of(struct model *m, int fd) {
  if (fd < 0 || fd >= MFD || m->fd[fd] == 0)
    return NULL;
  return &m->f[m->fd[fd] - 1];
}

/* The model's calls, as journal operations (arg: the model). */
static int m_bind(void *arg, const char *new_, const char *old, int flag) {
  struct model *m = arg;
  m->calls++;
  return new_[0] == '\0' ? -ENOENT : m_attach(m, new_, old, flag);
}

static int m_mount(void *arg, int fd, const char *old, int flag,
                   const char *aname) {
  struct model *m = arg;
  m->calls++;
  struct mfile *f = file_of(m, fd);
  if (f == NULL || f->pipe)
    return -EBADF;
  char name[NAME];
  snprintf(name, NAME, "mnt:%.24s:%.24s", f->path, aname);
  return m_attach(m, name, old, flag);
}

static int m_mount_addr(void *arg, const char *spec, const char *old,
                        int flag) {
  struct model *m = arg;
  m->calls++;
  char name[NAME];
  snprintf(name, NAME, "addr:%s", spec);
  return m_attach(m, name, old, flag);
}

static int m_unmount(void *arg, const char *new_, const char *old) {
  struct model *m = arg;
  m->calls++;
  struct munion *u = munion_of(m, old, false);
  if (u == NULL || u->n == 0)
    return -ENOENT;
  if (new_ == NULL) {
    u->n = 0;
    return 0;
  }
  for (int i = 0; i < u->n; i++)
    if (strcmp(u->memb[i], new_) == 0) {
      memmove(u->memb[i], u->memb[i + 1], (size_t)(u->n - i - 1) * NAME);
      u->n--;
      return 0;
    }
  return -ENOENT;
}

static int m_chdir(void *arg, const char *path) {
  struct model *m = arg;
  m->calls++;
  snprintf(m->cwd, NAME, "%s", path);
  return 0;
}

static int m_open(void *arg, const char *path, int mode) {
  struct model *m = arg;
  (void)mode;
  m->calls++;
  if (path[0] != '/' || strlen(path) >= NAME)
    return -ENOENT;
  int fd = lowest_free(m);
  if (fd < 0)
    return fd;
  int f = new_file(m, path, 0, 0);
  if (f < 0)
    return f;
  m->fd[fd] = f;
  return fd;
}

static int m_close(void *arg, int fd) {
  struct model *m = arg;
  m->calls++;
  if (file_of(m, fd) == NULL)
    return -EBADF;
  m->fd[fd] = 0;
  return 0;
}

static int m_dup(void *arg, int oldfd, int newfd) {
  struct model *m = arg;
  m->calls++;
  if (file_of(m, oldfd) == NULL || newfd >= MFD)
    return -EBADF;
  if (newfd < 0 && (newfd = lowest_free(m)) < 0)
    return newfd;
  m->fd[newfd] = m->fd[oldfd];
  return newfd;
}

static int m_pipe(void *arg, int fd[2]) {
  struct model *m = arg;
  m->calls++;
  int a = lowest_free(m);
  if (a < 0)
    return a;
  m->fd[a] = -1; /* taken while the second is found */
  int b = lowest_free(m);
  m->fd[a] = 0;
  if (b < 0)
    return b;
  int id = ++m->pipes;
  int fa = new_file(m, "#|", id, 0), fb = new_file(m, "#|", id, 1);
  if (fa < 0 || fb < 0)
    return -ENOSPC;
  m->fd[a] = fa;
  m->fd[b] = fb;
  fd[0] = a;
  fd[1] = b;
  return 0;
}

static int64_t m_seek(void *arg, int fd, int64_t off) {
  struct model *m = arg;
  m->calls++;
  struct mfile *f = file_of(m, fd);
  if (f == NULL || f->pipe || off < 0)
    return f == NULL ? -EBADF : -EINVAL;
  f->off = (uint64_t)off;
  return off;
}

static long m_io(struct model *m, int fd, uint64_t off, long n) {
  m->calls++;
  struct mfile *f = file_of(m, fd);
  if (f == NULL)
    return -EBADF;
  if (!f->pipe && off == KABI_NS_OFF_CUR)
    f->off += (uint64_t)n;
  return n;
}

static int m_reg(void *arg, const char *name, uint32_t version,
                 const char *opnames) {
  struct model *m = arg;
  (void)version;
  (void)opnames;
  m->calls++;
  if (m->reg[0])
    return -EALREADY;
  snprintf(m->reg, NAME, "%s", name);
  return 0;
}

static int m_rfork(void *arg, int flags) {
  struct model *m = arg;
  m->calls++;
  if (flags & NS_RFCNAMEG)
    memset(m->u, 0, sizeof m->u);
  if (flags & NS_RFCFDG)
    memset(m->fd, 0, sizeof m->fd);
  return 0;
}

static const struct uk_journal_ops model_ops = {
    .bind = m_bind,
    .mount = m_mount,
    .mount_addr = m_mount_addr,
    .unmount = m_unmount,
    .chdir = m_chdir,
    .open = m_open,
    .close = m_close,
    .dup = m_dup,
    .pipe = m_pipe,
    .seek = m_seek,
    .reg = m_reg,
    .rfork = m_rfork,
};

static struct uk_journal j;

static void setup(void) {
  uk_journal_init(&j);
}

TestSuite(journal, .init = setup, .timeout = 30);

Test(journal, an_open_adds_an_entry_and_its_close_removes_it) {
  uk_journal_open(&j, "/n/ram/a", NS_ORDWR, 3);
  cr_assert_eq(j.n, 1);
  cr_assert_eq(j.e[0].kind, UK_JOURNAL_OPEN);
  cr_assert_eq(j.e[0].fd, 3);
  cr_assert_str_eq(j.e[0].a, "/n/ram/a");
  uk_journal_close(&j, 3, 0);
  cr_assert_eq(j.n, 0);
  cr_assert_null(uk_journal_lookup(&j, 3));
}

Test(journal, a_failed_call_keeps_nothing) {
  uk_journal_open(&j, "/nope", NS_OREAD, -ENOENT);
  uk_journal_bind(&j, "#c", "/dev", NS_MAFTER, -ENOENT);
  int p[2] = {1, 2};
  uk_journal_pipe(&j, p, -EMFILE);
  uk_journal_register(&j, "kvs", 1, "", -EEXIST);
  cr_assert_eq(j.n, 0);
  uk_journal_open(&j, "/a", NS_OREAD, 0);
  uk_journal_close(&j, 0, -EBADF); /* the close failed: still open */
  cr_assert_eq(j.n, 1);
}

Test(journal, a_null_journal_notes_nothing) {
  uk_journal_open(NULL, "/a", NS_OREAD, 0); /* a replay under way */
  uk_journal_close(NULL, 0, 0);
  cr_assert_eq(j.n, 0);
}

Test(journal, the_offset_follows_reads_writes_and_seeks) {
  uk_journal_open(&j, "/a", NS_ORDWR, 0);
  uk_journal_io(&j, 0, KABI_NS_OFF_CUR, 10);
  uk_journal_io(&j, 0, KABI_NS_OFF_CUR, 5);
  cr_assert_eq(uk_journal_lookup(&j, 0)->off, 15);
  uk_journal_io(&j, 0, 4096, 100); /* a pread: the offset stays */
  uk_journal_io(&j, 0, KABI_NS_OFF_CUR, -EIO);
  cr_assert_eq(uk_journal_lookup(&j, 0)->off, 15);
  uk_journal_seek(&j, 0, 3);
  cr_assert_eq(uk_journal_lookup(&j, 0)->off, 3);
  uk_journal_seek(&j, 0, -EINVAL);
  cr_assert_eq(uk_journal_lookup(&j, 0)->off, 3);
}

Test(journal, an_open_with_otrunc_replays_without_it) {
  uk_journal_open(&j, "/a", NS_OWRITE | NS_OTRUNC | NS_ORCLOSE, 0);
  cr_assert_eq(j.e[0].flag, NS_OWRITE | NS_ORCLOSE);
}

Test(journal, a_dup_shares_the_offset_and_survives_its_source) {
  uk_journal_open(&j, "/a", NS_OREAD, 0);
  uk_journal_dup(&j, 0, 5);
  uk_journal_dup(&j, 0, 6);
  uk_journal_io(&j, 5, KABI_NS_OFF_CUR, 7); /* through the copy */
  cr_assert_eq(uk_journal_lookup(&j, 0)->off, 7);
  uk_journal_close(&j, 0, 0);
  const struct uk_journal_entry *e = uk_journal_lookup(&j, 5);
  cr_assert_not_null(e);
  cr_assert_eq(e->kind, UK_JOURNAL_OPEN);
  cr_assert_eq(e->fd, 5);
  cr_assert_eq(e->off, 7);
  cr_assert_eq(uk_journal_lookup(&j, 6), e, "the other copy follows it");
  cr_assert_eq(j.n, 2);
}

Test(journal, a_pipe_is_one_entry_until_both_ends_close) {
  int p[2] = {3, 4};
  uk_journal_pipe(&j, p, 0);
  cr_assert_eq(j.n, 1);
  uk_journal_close(&j, 4, 0);
  cr_assert_eq(j.n, 1);
  cr_assert_eq(j.e[0].fd2, -1);
  uk_journal_close(&j, 3, 0);
  cr_assert_eq(j.n, 0);
}

Test(journal, a_mount_keeps_the_path_its_descriptor_was_opened_from) {
  uk_journal_open(&j, "/srv/ramfs", NS_ORDWR, 2);
  uk_journal_mount(&j, 2, "/n/ram", NS_MREPL | NS_MCREATE, "", 0);
  uk_journal_close(&j, 2, 0);
  cr_assert_eq(j.n, 1);
  cr_assert_eq(j.e[0].kind, UK_JOURNAL_MOUNT);
  cr_assert_str_eq(j.e[0].a, "/srv/ramfs");
  cr_assert_str_eq(j.e[0].b, "/n/ram");
  cr_assert_eq(j.e[0].flag, NS_MREPL | NS_MCREATE);
}

Test(journal, a_mount_of_an_unknown_descriptor_makes_it_unreplayable) {
  uk_journal_mount(&j, 9, "/n/x", NS_MREPL, "", 0);
  cr_assert(j.overflowed);
  cr_assert(strstr(uk_journal_why(&j), "mount") != NULL);
}

Test(journal, a_reused_descriptor_has_one_holder) {
  uk_journal_open(&j, "/a", NS_OREAD, 0);
  uk_journal_open(&j, "/b", NS_OREAD, 1);
  uk_journal_dup(&j, 1, 0); /* dup onto 0 closes /a there */
  cr_assert_eq(j.n, 2);
  cr_assert_str_eq(uk_journal_lookup(&j, 0)->a, "/b");
}

Test(journal, chdir_keeps_only_the_last) {
  uk_journal_chdir(&j, "/a", 0);
  uk_journal_chdir(&j, "/b", 0);
  cr_assert_eq(j.n, 1);
  cr_assert_str_eq(j.e[0].a, "/b");
}

Test(journal, rfork_forgets_what_it_wiped_and_is_kept) {
  uk_journal_bind(&j, "#e", "/env", NS_MREPL, 0);
  uk_journal_open(&j, "/a", NS_OREAD, 0);
  uk_journal_rfork(&j, NS_RFCNAMEG, 0);
  cr_assert_eq(j.n, 2);
  cr_assert_eq(j.e[0].kind, UK_JOURNAL_OPEN);
  cr_assert_eq(j.e[1].kind, UK_JOURNAL_RFORK);
  uk_journal_rfork(&j, NS_RFCFDG, 0);
  cr_assert_eq(j.n, 2);
  cr_assert_eq(j.e[0].kind, UK_JOURNAL_RFORK);
}

Test(journal, overflow_is_sticky_and_refuses_replay) {
  for (int i = 0; i < UK_JOURNAL_MAX; i++)
    uk_journal_bind(&j, "#c", "/dev", NS_MAFTER, 0);
  cr_assert_eq(j.n, UK_JOURNAL_MAX);
  cr_assert_not(j.overflowed);
  cr_assert_str_eq(uk_journal_why(&j), "");
  uk_journal_open(&j, "/a", NS_OREAD, 0);
  cr_assert(j.overflowed);
  cr_assert_eq(j.n, UK_JOURNAL_MAX);
  cr_assert(strstr(uk_journal_why(&j), "UK_JOURNAL_MAX") != NULL, "why: %s",
            uk_journal_why(&j));
  uk_journal_rfork(&j, NS_RFCNAMEG, 0); /* room again, but an entry is lost */
  cr_assert(j.overflowed);
  struct model m;
  model_init(&m);
  struct uk_journal_stats st;
  cr_assert_eq(uk_journal_replay(&j, &model_ops, &m, &st), -ENOSPC);
  cr_assert_eq(m.calls, 0, "a refused replay makes no call");
}

Test(journal, a_path_too_long_overflows) {
  char path[UK_PATH_MAX + 2];
  memset(path, 'x', sizeof path - 1);
  path[sizeof path - 1] = '\0';
  uk_journal_open(&j, path, NS_OREAD, 0);
  cr_assert(j.overflowed);
  cr_assert_eq(j.n, 0);
}

/* The two models agree on descriptors (open, path, offset, which share a
 * file, which pipe end), unions, directory and registration. */
static unsigned cur_seed;

static void same_model(struct model *a, struct model *b) {
  for (int i = 0; i < MFD; i++) {
    struct mfile *fa = file_of(a, i), *fb = file_of(b, i);
    cr_assert_eq(fa == NULL, fb == NULL, "descriptor %d", i);
    if (fa == NULL)
      continue;
    cr_assert_str_eq(fa->path, fb->path, "descriptor %d", i);
    cr_assert_eq(
        fa->off, fb->off, "seed %u: descriptor %d's offset %llu, replayed %llu",
        cur_seed, i, (unsigned long long)fa->off, (unsigned long long)fb->off);
    cr_assert_eq(fa->pipe != 0, fb->pipe != 0);
    cr_assert_eq(fa->end, fb->end, "descriptor %d's pipe end", i);
    for (int k = 0; k < MFD; k++) {
      struct mfile *ga = file_of(a, k), *gb = file_of(b, k);
      if (ga == NULL)
        continue;
      cr_assert_eq(a->fd[i] == a->fd[k], b->fd[i] == b->fd[k],
                   "descriptors %d and %d share a file in one model only", i,
                   k);
      cr_assert_eq(fa->pipe && fa->pipe == ga->pipe,
                   fb->pipe && fb->pipe == gb->pipe,
                   "descriptors %d and %d: one pipe in one model only", i, k);
    }
  }
  for (int i = 0; i < MUNION; i++) {
    struct munion *ua = &a->u[i];
    if (ua->old[0] == '\0' || ua->n == 0)
      continue;
    struct munion *ub = munion_of(b, ua->old, false);
    cr_assert_not_null(ub, "union %s", ua->old);
    cr_assert_eq(ua->n, ub->n, "union %s", ua->old);
    for (int k = 0; k < ua->n; k++)
      cr_assert_str_eq(ua->memb[k], ub->memb[k], "union %s", ua->old);
  }
  for (int i = 0; i < MUNION; i++)
    cr_assert(b->u[i].n == 0 || munion_of(a, b->u[i].old, false) != NULL,
              "union %s only after the replay", b->u[i].old);
  cr_assert_str_eq(a->cwd, b->cwd);
  cr_assert_str_eq(a->reg, b->reg);
}

static const char *const paths[] = {"/a", "/b", "/srv/ramfs", "/n/x"};
static const char *const olds[] = {"/dev", "/srv", "/n", "/tmp"};
static const char *const news[] = {"#c", "#s", "#e", "/n/x"};
static const int flags[] = {NS_MREPL, NS_MBEFORE, NS_MAFTER};

#define PICK(a) a[rand() % (int)(sizeof a / sizeof a[0])]

/* One random call on m, noted in j. */
static void random_call(struct model *m) {
  int fd = rand() % MFD;
  switch (rand() % 12) {
  case 0:
  case 1: {
    const char *p = PICK(paths);
    uk_journal_open(&j, p, NS_ORDWR, m_open(m, p, NS_ORDWR));
    break;
  }
  case 2:
    uk_journal_close(&j, fd, m_close(m, fd));
    break;
  case 3: {
    int to = rand() % 3 ? -1 : rand() % MFD;
    struct mfile *f = file_of(m, fd);
    if (f && f->pipe)
      break; /* the journal refuses a dup of a pipe end: tested above */
    uk_journal_dup(&j, fd, m_dup(m, fd, to));
    break;
  }
  case 4: {
    int p[2];
    int r = m_pipe(m, p);
    uk_journal_pipe(&j, p, r);
    break;
  }
  case 5:
  case 6: {
    long n = rand() % 100;
    uint64_t off = rand() % 4 ? KABI_NS_OFF_CUR : 0; /* 0: a pread */
    uk_journal_io(&j, fd, off, m_io(m, fd, off, n));
    break;
  }
  case 7: {
    int64_t off = rand() % 1000;
    uk_journal_seek(&j, fd, m_seek(m, fd, off));
    break;
  }
  case 8: {
    const char *n = PICK(news), *o = PICK(olds);
    int fl = PICK(flags);
    uk_journal_bind(&j, n, o, fl, m_bind(m, n, o, fl));
    break;
  }
  case 9: {
    const char *o = PICK(olds);
    const char *n = rand() % 3 ? PICK(news) : NULL;
    uk_journal_unmount(&j, n, o, m_unmount(m, n, o));
    break;
  }
  case 10: {
    struct mfile *f = file_of(m, fd);
    if (f == NULL || f->pipe)
      break;
    const char *o = PICK(olds);
    int fl = PICK(flags);
    uk_journal_mount(&j, fd, o, fl, "", m_mount(m, fd, o, fl, ""));
    break;
  }
  default: {
    const char *p = PICK(paths);
    uk_journal_chdir(&j, p, m_chdir(m, p));
    break;
  }
  }
}

Test(journal, replay_rebuilds_the_model_state_for_random_calls) {
  int compared = 0;
  for (unsigned seed = 1; seed <= 300; seed++) {
    srand(seed);
    cur_seed = seed;
    struct model a, b;
    model_init(&a);
    model_init(&b);
    uk_journal_init(&j);
    int steps = 1 + rand() % 60;
    for (int s = 0; s < steps; s++)
      random_call(&a);
    if (rand() % 4 == 0)
      uk_journal_register(&j, "svc", 2, "get", m_reg(&a, "svc", 2, "get"));
    if (a.nf > MFILES - 8)
      continue; /* the model ran out of files, not the journal */
    cr_assert_not(j.overflowed, "seed %u: %s", seed, uk_journal_why(&j));
    struct uk_journal_stats st;
    int r = uk_journal_replay(&j, &model_ops, &b, &st);
    cr_assert_eq(r, 0, "seed %u: entry %d (%s) failed: %d", seed, st.failed,
                 uk_journal_kind_name(j.e[st.failed < 0 ? 0 : st.failed].kind),
                 r);
    cr_assert_eq(st.entries, j.n);
    cr_assert_eq((int)st.calls, b.calls, "seed %u: calls counted", seed);
    same_model(&a, &b);
    compared++;
  }
  cr_assert_gt(compared, 200, "only %d runs compared", compared);
}

Test(journal, replay_puts_each_descriptor_on_its_number) {
  /* The process opened 0..2, closed 0 and 1: /c is on 2 alone, and a
   * fresh kernel would hand out 0. */
  uk_journal_open(&j, "/a", NS_OREAD, 0);
  uk_journal_open(&j, "/b", NS_OREAD, 1);
  uk_journal_open(&j, "/c", NS_OREAD, 2);
  uk_journal_io(&j, 2, KABI_NS_OFF_CUR, 42);
  uk_journal_close(&j, 0, 0);
  uk_journal_close(&j, 1, 0);
  struct model m;
  model_init(&m);
  struct uk_journal_stats st;
  cr_assert_eq(uk_journal_replay(&j, &model_ops, &m, &st), 0);
  cr_assert_null(file_of(&m, 0));
  cr_assert_str_eq(file_of(&m, 2)->path, "/c");
  cr_assert_eq(file_of(&m, 2)->off, 42);
  cr_assert_eq(st.calls, 4, "open, dup, close, seek");
}

Test(journal, replay_of_a_pipe_whose_ends_are_swapped) {
  int p[2] = {1, 0}; /* the kernel would give 0, 1 */
  uk_journal_pipe(&j, p, 0);
  struct model m;
  model_init(&m);
  cr_assert_eq(uk_journal_replay(&j, &model_ops, &m, NULL), 0);
  cr_assert_eq(file_of(&m, 1)->end, 0);
  cr_assert_eq(file_of(&m, 0)->end, 1);
  cr_assert_null(file_of(&m, 2), "the temporary is closed");
}

Test(journal, replay_stops_at_the_first_failing_call) {
  uk_journal_open(&j, "/a", NS_OREAD, 0);
  uk_journal_register(&j, "svc", 1, "", 0);
  uk_journal_open(&j, "/b", NS_OREAD, 1);
  struct model m;
  model_init(&m);
  snprintf(m.reg, NAME, "taken"); /* the new kernel refuses the register */
  struct uk_journal_stats st;
  cr_assert_eq(uk_journal_replay(&j, &model_ops, &m, &st), -EALREADY);
  cr_assert_eq(st.failed, 1);
  cr_assert_eq(st.entries, 1);
  cr_assert_null(file_of(&m, 1), "nothing after the failure");
}
