/* A machine under hostile clients and processes (issue 11): control
 * clients that come and go in parallel, flood without reading or crowd the
 * socket; processes that take every ICA or request they can, or break the
 * ABI with an empty packet.  Each test failed on the machine before the
 * fix it names. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "kern.h"

/* Open descriptors of process pid, from /proc. */
static int fd_count(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
  DIR *d = opendir(path);
  cr_assert_not_null(d, "%s: %s", path, strerror(errno));
  int n = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

static const char *machine_name(const mach_client *m) {
  static char name[64];
  char path[64], buf[4096];
  /* The machine's command line holds --name NAME. */
  snprintf(path, sizeof path, "/proc/%d/cmdline", (int)m->pid);
  FILE *f = fopen(path, "r");
  cr_assert_not_null(f);
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  for (size_t i = 0; i < n; i += strlen(buf + i) + 1)
    if (!strcmp(buf + i, "--name")) {
      snprintf(name, sizeof name, "%s", buf + i + strlen(buf + i) + 1);
      return name;
    }
  cr_assert_fail("no --name in the machine's command line");
  return NULL;
}

/* Connects, reads kernel data and leaves, n times; 0 when all worked. */
static int query_loop(const char *name, int n, bool send) {
  for (int i = 0; i < n; i++) {
    mach_client c;
    const struct uk_kdata *kd;
    if (mach_connect(&c, name) < 0)
      return 1;
    if (send && mach_kdata(&c, &kd, NULL) < 0) {
      fprintf(stderr, "query %d: %s\n", i, c.error);
      mach_close(&c);
      return 1;
    }
    if (send)
      mach_kdata_unmap(kd);
    mach_close(&c);
  }
  return 0;
}

static pid_t fork_queries(const char *name, int n, bool send) {
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0)
    _exit(query_loop(name, n, send));
  return pid;
}

static int reap(pid_t pid) {
  int st;
  cr_assert_eq(waitpid(pid, &st, 0), pid);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Defect 1: a client slot was reused while its poll handle was still
 * closing, and libuv aborted the machine. */
Test(hostile, clients_that_come_and_go_in_parallel, .timeout = 300) {
  mach_client m;
  h_boot(&m, "kvs");
  const char *name = machine_name(&m);
  int n = scaled(300);
  pid_t kids[4] = {fork_queries(name, n, true), fork_queries(name, n, true),
                   fork_queries(name, n, true), fork_queries(name, n, false)};
  for (int i = 0; i < 4; i++)
    cr_expect_eq(reap(kids[i]), 0, "query loop %d failed", i);
  const struct uk_kdata *kd;
  cr_assert_eq(mach_kdata(&m, &kd, NULL), 0, "the machine died: %s", m.error);
  mach_kdata_unmap(kd);
  h_halt_clean(&m);
}

/* Defect 1 under load: parallel replacements of a serving kvs. */
Test(hostile, parallel_replacements_under_load, .timeout = 300) {
  mach_client m;
  h_boot(&m, "kvs");
  const char *name = machine_name(&m);
  char count[16];
  snprintf(count, sizeof count, "%d", scaled(3000));
  char *args[] = {"--count", count};
  int64_t load = h_spawn(&m, "kvsload", args, 2, "load", NULL);
  pid_t kids[5];
  for (int i = 0; i < 5; i++) {
    kids[i] = fork();
    cr_assert_geq(kids[i], 0);
    if (kids[i] > 0)
      continue;
    int bad = 0;
    for (int j = 0; j < 3; j++) {
      mach_client c;
      struct mach_prog p = {.program = "kvs"};
      if (mach_connect(&c, name) < 0)
        _exit(1);
      int64_t id = mach_replace_send(&c, "kvs", &p, 0);
      int r = id < 0 ? (int)id : mach_replace_reply(&c, (uint64_t)id, NULL);
      bad += r < 0 && r != -EBUSY; /* one replacement at a time */
      mach_close(&c);
    }
    _exit(bad);
  }
  for (int i = 0; i < 5; i++)
    cr_expect_eq(reap(kids[i]), 0, "replacer %d saw an undocumented failure",
                 i);
  cr_expect_eq(h_wait(&m, load), 0, "the load saw a wrong answer");
  h_halt_clean(&m);
}

/* A raw client that sends GetKdata requests until its socket is full and
 * reads nothing; returns its socket. */
static int flood(const char *name, int *sent) {
  char dir[256];
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  cr_assert_eq(mach_rundir(name, dir, sizeof dir, false), 0);
  cr_assert_lt(strlen(dir) + 14, sizeof a.sun_path);
  memcpy(a.sun_path, dir, strlen(dir));
  strcat(a.sun_path, "/control.sock");
  int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  cr_assert_eq(connect(s, (struct sockaddr *)&a, sizeof a), 0);
  Uksim__Ctl c = UKSIM__CTL__INIT;
  Uksim__GetKdata g = UKSIM__GET_KDATA__INIT;
  c.body_case = UKSIM__CTL__BODY_GET_KDATA;
  c.get_kdata = &g;
  *sent = 0;
  for (int idle = 0; idle < 50 && *sent < 100000;) {
    c.id = (uint64_t)*sent + 1;
    if (ctl_send(s, &c, -1) == 0) {
      ++*sent;
      idle = 0;
    } else {
      idle++;
      usleep(10000); /* full: give the machine a chance to read more */
    }
  }
  return s;
}

/* Defect 2: answers to a client that never read them piled up in the
 * machine, a descriptor each, until it had none left. */
Test(hostile, client_that_never_reads_is_slowed_then_dropped,
     .timeout = 300) {
  mach_client m;
  h_boot(&m, "kvs");
  const char *name = machine_name(&m);
  /* A replacement first, so that the new server's state ICA (a machine
   * descriptor) is in the count before the flood. */
  struct mach_prog p = {.program = "kvs"};
  int64_t id = mach_replace_send(&m, "kvs", &p, 0);
  cr_expect_eq(mach_replace_reply(&m, (uint64_t)id, NULL), 0, "%s", m.error);
  int before = fd_count(m.pid), sent;
  int s = flood(name, &sent);
  int during = fd_count(m.pid);
  cr_expect_lt(during, before + MACH_CLIENT_OUTBOX_MAX + 32,
               "%d descriptors with a flooder (%d before, %d requests sent)",
               during, before, sent);
  /* Everyone else is served meanwhile. */
  cr_expect_eq(query_loop(name, 20, true), 0);
  id = mach_replace_send(&m, "kvs", &p, 0);
  cr_expect_eq(mach_replace_reply(&m, (uint64_t)id, NULL), 0, "%s", m.error);
  /* Dropped once it has read nothing for the stall time. */
  sleep(MACH_CLIENT_STALL_MS / 1000 + 2);
  int after = fd_count(m.pid);
  cr_expect_leq(after, before, "%d descriptors after the drop, %d before",
                after, before);
  char buf[CTL_MSG_MAX];
  int n = 0;
  while (recv(s, buf, sizeof buf, MSG_DONTWAIT) > 0)
    n++;
  cr_expect_lt(n, sent, "every request was answered: not dropped");
  close(s);
  h_halt_clean(&m);
}

/* Defect 2, with Debian's default soft limit of 1,024 descriptors: the
 * machine did not raise its own, and 4,000 ICAs (within UK_ICA_MAX) made
 * it stop reading its kernel. */
Test(hostile, icas_within_the_limit_under_a_1024_descriptor_limit,
     .timeout = 300) {
  struct rlimit rl;
  cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
  rl.rlim_cur = 1024;
  cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
  mach_client m;
  h_boot(&m, NULL);
  int64_t w[4];
  for (int i = 0; i < 4; i++) {
    char *args[] = {"icas", "1000", "2000"};
    w[i] = h_spawn(&m, "ap_hog", args, 3, "hog", NULL);
  }
  for (int i = 0; i < 4; i++)
    cr_expect_eq(h_wait(&m, w[i]), 0, "hog %d could not create its ICAs", i);
  char *one[] = {"icas", "10", "0"};
  cr_expect_eq(h_wait(&m, h_spawn(&m, "ap_hog", one, 3, "after", NULL)), 0);
  h_halt_clean(&m);
}

/* Waits until some process holds n ICAs. */
static void await_held(mach_client *m, uint32_t n) {
  for (int i = 0; i < 3000; i++) {
    const struct uk_kdata *kd;
    cr_assert_eq(mach_kdata(m, &kd, NULL), 0, "%s", m->error);
    bool there = false;
    for (int p = 0; p < UK_PROC_MAX; p++)
      there |= kd->proc[p].state != UK_PROC_FREE && kd->proc[p].icas_held >= n;
    mach_kdata_unmap(kd);
    if (there)
      return;
    usleep(10000);
  }
  cr_assert_fail("no process came to hold %u ICAs", n);
}

/* Quotas: one process holding every ICA it may leaves the others theirs. */
Test(hostile, one_process_cannot_take_every_ica, .timeout = 300) {
  mach_client m;
  h_boot(&m, NULL);
  char *hog[] = {"quota-icas", "20000"};
  int hp;
  int64_t wh = h_spawn(&m, "ap_hog", hog, 2, "hog", &hp);
  await_held(&m, UK_PROC_ICAS_MAX);
  char *other[] = {"icas", "100", "0"};
  cr_expect_eq(h_wait(&m, h_spawn(&m, "ap_hog", other, 3, "other", NULL)), 0,
               "another process could not create ICAs");
  cr_assert_eq(mach_kill(&m, hp, SIGTERM), 0);
  cr_expect_eq(h_wait(&m, wh), 128 + SIGTERM, "the hog was not refused");
  h_halt_clean(&m);
}

Test(hostile, one_process_cannot_take_every_request, .timeout = 300) {
  mach_client m;
  h_boot(&m, "echo");
  char *args[] = {"quota-reqs"};
  cr_expect_eq(h_wait(&m, h_spawn(&m, "ap_hog", args, 1, "hog", NULL)), 0);
  h_halt_clean(&m);
}

/* An empty packet used to half-disconnect its sender: the kernel stopped
 * reading it and it stayed "running" for ever. */
Test(hostile, empty_packet_ends_the_process, .timeout = 60) {
  mach_client m;
  h_boot(&m, NULL);
  char *args[] = {"empty"};
  cr_expect_eq(h_wait(&m, h_spawn(&m, "ap_hog", args, 1, "empty", NULL)),
               128 + SIGKILL);
  const struct uk_kdata *kd;
  cr_assert_eq(mach_kdata(&m, &kd, NULL), 0);
  cr_expect_eq(kd->ctr.bad_calls, 1);
  mach_kdata_unmap(kd);
  h_halt_clean(&m);
}

/* The machine takes MACH_CLIENTS_MAX clients (its owner among them); the
 * next one is told so in words (it used to get an empty error). */
Test(hostile, one_client_too_many_is_told_why, .timeout = 120) {
  mach_client m, c[MACH_CLIENTS_MAX];
  const struct uk_kdata *kd;
  h_boot(&m, NULL);
  const char *name = machine_name(&m);
  for (int i = 0; i < MACH_CLIENTS_MAX - 1; i++) {
    cr_assert_eq(mach_connect(&c[i], name), 0);
    cr_assert_eq(mach_kdata(&c[i], &kd, NULL), 0, "client %d: %s", i,
                 c[i].error);
    mach_kdata_unmap(kd);
  }
  mach_client x;
  cr_assert_eq(mach_connect(&x, name), 0); /* accepted, then refused */
  cr_expect_lt(mach_kdata(&x, &kd, NULL), 0);
  cr_expect(strstr(x.error, "at most 31 control clients") != NULL, "'%s'",
            x.error);
  mach_close(&x);
  mach_close(&c[0]);
  int r = -1;
  for (int i = 0; i < 100 && r < 0; i++) { /* once the slot is free */
    mach_client y;
    cr_assert_eq(mach_connect(&y, name), 0);
    if ((r = mach_kdata(&y, &kd, NULL)) == 0)
      mach_kdata_unmap(kd);
    mach_close(&y);
    usleep(10000);
  }
  cr_expect_eq(r, 0, "a slot given back was not reused");
  for (int i = 1; i < MACH_CLIENTS_MAX - 1; i++)
    mach_close(&c[i]);
  h_halt_clean(&m);
}
