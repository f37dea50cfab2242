/* The replay journal (include/uksim/journal.h) against a real kernel: this
 * test process attaches to a machine as a uksim process, shapes its kernel
 * state with libuksim's ns calls (a ramfs mounted from /srv, a bind, files
 * open at offsets with a gap among their descriptors, a dup, a pipe, a
 * directory), and its journal, handed to a second, fresh process of the
 * same kernel (jr_replay), is replayed there in that process's own
 * context.  The two describe themselves (jr_state.c) and must agree.
 *
 * This is method B's replay step (issue 15) without the kernel update
 * around it: the new kernel's process starts with a fresh namespace and no
 * descriptors, as jr_replay does here.  What replay cannot create (the
 * pipe's unread bytes) is not expected in the replayed process. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "jr_state.h"
#include "uksim/ap.h"
#include "uksim/journal.h"
#include "uksim/ns.h"

extern char **environ;

static mach_client m;
static char mine[16384], theirs[16384];

static void boot_ramfs_attached(const char *name) {
  h_boot(&m, NULL);
  cr_assert_eq(
      mach_spawn(&m, "ramfs", NULL, 0, "ramfs", MACH_SPAWN_REGISTERED, NULL), 0,
      "start ramfs: %s", m.error);
  h_attach(&m, name);
}

static int put(const char *path, const char *s) {
  int fd = ns_create(path, NS_ORDWR, 0644);
  cr_assert_geq(fd, 0, "create %s: %s", path, strerror(-fd));
  cr_assert_eq(ns_write(fd, s, strlen(s)), (long)strlen(s));
  return fd;
}

/* Shapes this process's state; returns nothing, asserts every call. */
static void shape(void) {
  h_mount_srv("ramfs", "/n", NS_MREPL | NS_MCREATE);
  int a = put("/n/a", "0123456789");
  int b = put("/n/b", "abcdefghijklmnop");
  cr_assert_eq(ns_seek(b, 4, SEEK_SET), 4);
  char two[2];
  cr_assert_eq(ns_read(b, two, 2), 2);      /* b at 6 */
  cr_assert_eq(ns_pread(b, two, 2, 12), 2); /* still 6 */
  cr_assert_eq(ns_dup(b, 9), 9);            /* shares b's offset */
  cr_assert_eq(ns_close(a), 0);             /* a gap below b */
  int p[2];
  cr_assert_eq(ns_pipe(p), 0);
  cr_assert_eq(ns_write(p[1], "hi", 2), 2); /* unread: not replayable */
  int r = ns_bind("/n", "/mnt", NS_MREPL);
  cr_assert_eq(r, 0, "bind: %s", strerror(-r));
  cr_assert_eq(ns_bind("#e", "/dev", NS_MAFTER), 0);
  cr_assert_eq(ns_chdir("/n"), 0);
  /* a again, emptied and 3 bytes written: a replay that emptied it again
   * would show a length 0 in /n. */
  int c = ns_open("/n/a", NS_ORDWR | NS_OTRUNC);
  cr_assert_geq(c, 0);
  cr_assert_eq(ns_write(c, "xyz", 3), 3);
}

/* Writes this process's journal to a host file; returns its path. */
static const char *save_journal(void) {
  static char path[128];
  snprintf(path, sizeof path, "%s/journal-%d.bin",
           getenv("UKSIM_BUILD_ROOT") ? getenv("UKSIM_BUILD_ROOT") : "/tmp",
           (int)getpid());
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f);
  cr_assert_eq(fwrite(uk_journal_self(), sizeof(struct uk_journal), 1, f), 1);
  fclose(f);
  return path;
}

/* Starts jr_replay as a fresh process of the same kernel (attached with a
 * namespace of its own) and reads what it wrote. */
static void replay_elsewhere(const char *journal, char *out, size_t len) {
  int fd, proc;
  cr_assert_eq(mach_attach(&m, "t-jr-replay", -1, 0, &proc, &fd), 0,
               "attach: %s", m.error);
  cr_assert_eq(fcntl(fd, F_SETFD, 0), 0); /* the child inherits it */
  char exe[512], res[256], env[32];
  snprintf(exe, sizeof exe, "%s/tests/integration/jr_replay",
           getenv("UKSIM_BUILD_ROOT"));
  snprintf(res, sizeof res, "%s.out", journal);
  snprintf(env, sizeof env, "UKSIM_FD=%d", fd);
  char *argv[] = {exe, (char *)journal, res, NULL};
  char *envp[] = {env, NULL};
  pid_t pid;
  cr_assert_eq(posix_spawn(&pid, exe, NULL, NULL, argv, envp), 0);
  close(fd);
  int st;
  cr_assert_eq(waitpid(pid, &st, 0), pid);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "jr_replay: status %d", st);
  FILE *f = fopen(res, "r");
  cr_assert_not_null(f);
  size_t n = fread(out, 1, len - 1, f);
  out[n] = '\0';
  fclose(f);
  unlink(res);
}

TestSuite(journal_replay, .timeout = 300);

Test(journal_replay, a_fresh_process_replays_to_the_same_state) {
  boot_ramfs_attached("t-jr");
  shape();
  const struct uk_journal *j = uk_journal_self();
  cr_assert_not(j->overflowed, "%s", uk_journal_why(j));
  jr_describe(mine, sizeof mine);
  const char *path = save_journal();
  replay_elsewhere(path, theirs, sizeof theirs);
  unlink(path);
  cr_log_info("replayed %u entries:\n%s", j->n, theirs);
  char head[64];
  snprintf(head, sizeof head, "replay 0 entries %u ", j->n);
  cr_assert(strncmp(theirs, head, strlen(head)) == 0, "%s", theirs);
  const char *rest = strchr(theirs, '\n') + 1;
  cr_assert(strncmp(rest, mine, strlen(mine)) == 0,
            "the replayed state differs:\n--- this process\n%s--- replayed\n%s",
            mine, rest);
  cr_assert(strstr(mine, "fd 9 /n/b at 6") != NULL, "%s", mine);
  cr_assert(strstr(mine, "/n/a at 3") != NULL, "%s", mine);
  cr_assert(strstr(rest + strlen(mine), "pipe ok") != NULL, "%s", theirs);
  h_halt_clean(&m);
}

Test(journal_replay, an_overflowed_journal_is_refused_and_makes_no_call) {
  boot_ramfs_attached("t-jr-full");
  /* A bind and its unmount are two entries (an unmount is kept as a
   * call), and the kernel has no limit on how often they are made. */
  for (int i = 0; i <= UK_JOURNAL_MAX / 2; i++) {
    cr_assert_eq(ns_bind("#e", "/mnt", NS_MAFTER), 0);
    cr_assert_eq(ns_unmount("#e", "/mnt"), 0);
  }
  const struct uk_journal *j = uk_journal_self();
  cr_assert(j->overflowed);
  uint64_t noted = j->noted;
  struct uk_journal_stats st;
  cr_assert_eq(uk_journal_replay_self(&st), -ENOSPC);
  cr_assert_eq(st.calls, 0);
  cr_assert_eq(j->noted, noted);
  cr_log_info("refused: %s", uk_journal_why(j));
  h_halt_clean(&m);
}
