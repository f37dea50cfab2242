/* Unit tests for the keep record of a kernel update (sim-kernel/kkeep.h):
 * on hand-built layout-1 tables in a memfd, as the machine reads a
 * stopped kernel's region, only a process refused at extract (a file of
 * an external 9P server, "netlink") is kept; a region with none, or that
 * is no region, keeps nothing and leaves the record clear; the machine's
 * wait for a stopped kernel sees a stopped child and gives up on a
 * running one.  Under valgrind too. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kd_fixture.h"
#include "kkeep.h"
#include "uksim/interos.h"

TestSuite(kkeep, .init = kd_new, .fini = kd_free);

static struct uk_interos io;

/* A live chan at index i (generation 3), as the vfs leaves one. */
static uint32_t live_chan(uint32_t i, char type, uint32_t dev, const char *p) {
  kd->vfs.chan[i] = (struct uk_chan){.gen = 3,
                                     .state = UK_CHAN_LIVE,
                                     .type = (uint8_t)type,
                                     .dev = dev,
                                     .ref = 1};
  snprintf(kd->vfs.chan[i].path, sizeof kd->vfs.chan[i].path, "%s", p);
  return UK_VFS_ID(i, 3);
}

/* Process `name`; with netlink, fd 4 is a file of an external server. */
static uint32_t proc(const char *name, bool netlink) {
  int p = kern_proc_alloc(kd, name, 4000);
  cr_assert_geq(p, 0);
  struct uk_nsgroup *g = &kd->vfs.ns[p];
  g->gen = 1;
  g->state = UK_NS_LIVE;
  g->ref = 1;
  struct uk_vproc *v = &kd->vfs.vproc[p];
  v->attached = 1;
  v->ns = UK_VFS_ID((uint32_t)p, 1);
  v->root = v->cwd = live_chan(30 + (uint32_t)p, '/', 0, "/");
  if (netlink)
    v->fd[4] = live_chan(50 + (uint32_t)p, UK_CHAN_MNT, UK_SVC_MAX + 1, "/n");
  return (uint32_t)p;
}

/* The region as the machine holds it: a memfd. */
static int region_fd(const void *bytes, size_t n) {
  int fd = memfd_create("kkeep-test", MFD_CLOEXEC);
  cr_assert_geq(fd, 0);
  cr_assert_eq(write(fd, bytes, n), (ssize_t)n);
  return fd;
}

Test(kkeep, keeps_only_what_is_refused_at_extract, .timeout = 20) {
  uint32_t far = proc("far", true), hog = proc("hog", false);
  memset(&io, 0xff, sizeof io); /* a stale record is rewritten */
  int fd = region_fd(kd, sizeof *kd);
  cr_expect_eq(kkeep_mark(&io, 1, fd), 1);
  close(fd);
  cr_expect_eq(io.keep_os, 1);
  cr_expect_eq(io.nkeep, 1);
  cr_expect(kkeep_kept(&io, 1, far));
  cr_expect_not(kkeep_kept(&io, 1, hog));
  cr_expect_not(kkeep_kept(&io, 2, far), "another OS keeps nothing");
  cr_expect_not(kkeep_kept(&io, 1, UK_PROC_MAX), "out of range");
  cr_expect_not(kkeep_kept(NULL, 1, far));
  cr_expect(kkeep_retiring(&io));
  kkeep_clear(&io);
  cr_expect_not(kkeep_retiring(&io));
  cr_expect_not(kkeep_kept(&io, 1, far));
}

Test(kkeep, nothing_refused_keeps_nothing, .timeout = 20) {
  proc("hog", false);
  memset(&io, 0, sizeof io);
  int fd = region_fd(kd, sizeof *kd);
  cr_expect_eq(kkeep_mark(&io, 1, fd), 0);
  close(fd);
  cr_expect_eq(io.keep_os, 0);
  cr_expect_not(kkeep_retiring(&io));
}

Test(kkeep, no_region_keeps_nothing, .timeout = 20) {
  proc("far", true);
  memset(&io, 0, sizeof io);
  kd->hdr.magic = 0; /* torn, or never a region */
  int fd = region_fd(kd, sizeof *kd);
  cr_expect_eq(kkeep_mark(&io, 1, fd), 0);
  close(fd);
  fd = region_fd("short", 5);
  cr_expect_eq(kkeep_mark(&io, 1, fd), 0);
  close(fd);
  cr_expect_eq(kkeep_mark(&io, 1, -1), 0, "no descriptor");
  cr_expect_not(kkeep_retiring(&io));
}

Test(kkeep, waits_for_a_stopped_kernel_and_no_longer, .timeout = 20) {
  pid_t c = fork();
  cr_assert_geq(c, 0);
  if (c == 0) {
    for (;;)
      pause();
  }
  cr_expect_eq(kkeep_await_stopped(c), -ETIMEDOUT, "it runs");
  kill(c, SIGSTOP);
  cr_expect_eq(kkeep_await_stopped(c), 0);
  kill(c, SIGKILL);
  waitpid(c, NULL, 0);
  cr_expect_eq(kkeep_await_stopped(c), 0, "gone: nothing to wait for");
}
