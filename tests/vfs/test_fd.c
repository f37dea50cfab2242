/* Unit tests for processes' namespaces and descriptors (vfs/fd.c).
 *
 * Invariants under test: a process holds one reference on its group, root,
 * cwd and each descriptor's chan, and gives them all back at release; a
 * child shares, copies or gets a clean group as rfork(2)'s flags say and
 * gets a copy of the descriptors or none; descriptors are the lowest free,
 * a duplicate shares the chan; every refused call changes nothing.
 */
#include "vfs_fixture.h"

TestSuite(vfs_fd, .init = kd_new, .fini = kd_free);

static uint32_t root, cwd, ns0;

/* Process 0 attached to a fresh group with root #/ and cwd a directory;
 * the test holds no references of its own afterwards. */
static void attach0(void) {
  ns0 = ns_new_ok();
  root = dir_chan(1);
  cwd = dir_chan(2);
  cr_assert_eq(vfs_proc_attach(kd, 0, ns0, root, cwd), 0);
  vfs_ns_unref(kd, ns0);
  vfs_chan_unref(kd, root);
  vfs_chan_unref(kd, cwd);
}

static int fd_new_ok(uint32_t p, uint32_t c) {
  int fd = -1;
  cr_assert_eq(vfs_fd_new(kd, p, c, &fd), 0);
  return fd;
}

static uint32_t ns_ref_of(uint32_t ns) {
  int g = vfs_ns_lookup(kd, ns);
  cr_assert_geq(g, 0);
  return kd->vfs.ns[g].ref;
}

Test(vfs_fd, attach_takes_references, .timeout = 10) {
  attach0();
  const struct uk_vproc *v = &kd->vfs.vproc[0];
  cr_assert_eq(v->attached, 1);
  cr_assert_eq(v->ns, ns0);
  cr_assert_eq(ref_of(root), 1);
  cr_assert_eq(ref_of(cwd), 1);
  cr_assert_eq(ns_ref_of(ns0), 1);
  cr_assert_eq(vfs_proc_release(kd, 0), 0);
  cr_assert_eq(vfs_chan_live(kd), 0);
  cr_assert_eq(vfs_ns_lookup(kd, ns0), -EINVAL);
  static const struct uk_vproc zero;
  cr_assert(memcmp(&kd->vfs.vproc[0], &zero, sizeof zero) == 0);
}

Test(vfs_fd, attach_refuses_bad_arguments, .timeout = 10) {
  attach0();
  uint32_t ns = ns_new_ok(), d = dir_chan(3), stale = dir_chan(4);
  vfs_chan_unref(kd, stale);
  snap_take();
  cr_assert_eq(vfs_proc_attach(kd, 0, ns, d, d), -EBUSY);
  cr_assert_eq(vfs_proc_attach(kd, UK_PROC_MAX, ns, d, d), -ESRCH);
  cr_assert_eq(vfs_proc_attach(kd, 1, UK_VFS_NONE, d, d), -EINVAL);
  cr_assert_eq(vfs_proc_attach(kd, 1, ns, stale, d), -EBADF);
  cr_assert_eq(vfs_proc_attach(kd, 1, ns, d, stale), -EBADF);
  snap_same();
  vfs_ns_unref(kd, ns);
  vfs_chan_unref(kd, d);
  vfs_proc_release(kd, 0);
}

Test(vfs_fd, calls_on_a_process_without_a_namespace_are_refused,
     .timeout = 10) {
  uint32_t d = dir_chan(1);
  int fd;
  snap_take();
  cr_assert_eq(vfs_fd_new(kd, 3, d, &fd), -ESRCH);
  cr_assert_eq(vfs_fd_dup(kd, 3, 0, -1, &fd), -ESRCH);
  cr_assert_eq(vfs_fd_close(kd, 3, 0), -ESRCH);
  cr_assert_eq(vfs_fd_lookup(kd, 3, 0), UK_VFS_NONE);
  cr_assert_eq(vfs_fd_lookup(kd, UK_PROC_MAX, 0), UK_VFS_NONE);
  cr_assert_eq(vfs_chdir(kd, 3, d), -ESRCH);
  cr_assert_eq(vfs_proc_release(kd, 3), -ESRCH);
  cr_assert_eq(vfs_proc_rfork(kd, 3, VFS_RFNAMEG), -ESRCH);
  cr_assert_eq(vfs_proc_fork(kd, 3, 4, 0), -ESRCH);
  cr_assert_eq(vfs_proc_release(kd, UK_PROC_MAX), -ESRCH);
  snap_same();
  vfs_chan_unref(kd, d);
}

Test(vfs_fd, new_takes_the_lowest_free_descriptor, .timeout = 10) {
  attach0();
  uint32_t a = file_chan(10), b = file_chan(11), c = file_chan(12);
  cr_assert_eq(fd_new_ok(0, a), 0);
  cr_assert_eq(fd_new_ok(0, b), 1);
  cr_assert_eq(vfs_fd_lookup(kd, 0, 1), b);
  cr_assert_eq(vfs_fd_close(kd, 0, 0), 0);
  cr_assert_eq(vfs_chan_lookup(kd, a), -EBADF); /* its reference moved in */
  cr_assert_eq(fd_new_ok(0, c), 0);
  cr_assert_eq(vfs_fd_lookup(kd, 0, 0), c);
  cr_assert_eq(vfs_fd_lookup(kd, 0, 2), UK_VFS_NONE);
  cr_assert_eq(vfs_fd_lookup(kd, 0, -1), UK_VFS_NONE);
  cr_assert_eq(vfs_fd_lookup(kd, 0, UK_FD_MAX), UK_VFS_NONE);
  snap_take();
  cr_assert_eq(vfs_fd_close(kd, 0, 0 + 2), -EBADF);
  cr_assert_eq(vfs_fd_close(kd, 0, -1), -EBADF);
  cr_assert_eq(vfs_fd_close(kd, 0, UK_FD_MAX), -EBADF);
  int fd;
  cr_assert_eq(vfs_fd_new(kd, 0, a, &fd), -EBADF);
  snap_same();
  vfs_proc_release(kd, 0);
  cr_assert_eq(vfs_chan_live(kd), 0);
}

Test(vfs_fd, full_descriptor_table_is_emfile, .timeout = 10) {
  attach0();
  uint32_t f = file_chan(10);
  for (int i = 0; i < UK_FD_MAX; i++) {
    vfs_chan_ref(kd, f);
    cr_assert_eq(fd_new_ok(0, f), i);
  }
  snap_take();
  int fd = 77;
  cr_assert_eq(vfs_fd_new(kd, 0, f, &fd), -EMFILE);
  cr_assert_eq(vfs_fd_dup(kd, 0, 0, -1, &fd), -EMFILE);
  cr_assert_eq(fd, 77);
  snap_same();
  cr_assert_eq(ref_of(f), UK_FD_MAX + 1);
  vfs_chan_unref(kd, f);
  vfs_proc_release(kd, 0);
  cr_assert_eq(vfs_chan_live(kd), 0);
}

Test(vfs_fd, dup_shares_the_chan, .timeout = 10) {
  attach0();
  uint32_t a = file_chan(10), s = mnt_chan(1, 5);
  kd->vfs.chan[UK_VFS_INDEX(s)].qid.type = 0;
  int fa = fd_new_ok(0, a), fs = fd_new_ok(0, s), fd;
  cr_assert_eq(vfs_fd_dup(kd, 0, fa, -1, &fd), 0);
  cr_assert_eq(fd, 2);
  cr_assert_eq(vfs_fd_lookup(kd, 0, 2), a);
  cr_assert_eq(ref_of(a), 2);
  /* Onto itself: nothing changes. */
  cr_assert_eq(vfs_fd_dup(kd, 0, fa, fa, &fd), 0);
  cr_assert_eq(fd, fa);
  cr_assert_eq(ref_of(a), 2);
  /* Onto an open descriptor: it is closed first, here the server's last
   * reference, so a clunk is due. */
  cr_assert_eq(vfs_fd_dup(kd, 0, fa, fs, &fd), 1);
  cr_assert_eq(fd, fs);
  cr_assert_eq(vfs_fd_lookup(kd, 0, fs), a);
  cr_assert_eq(vfs_clunk_next(kd), s);
  vfs_chan_clunked(kd, s);
  cr_assert_eq(vfs_fd_dup(kd, 0, fa, 40, &fd), 0);
  cr_assert_eq(ref_of(a), 4);
  snap_take();
  cr_assert_eq(vfs_fd_dup(kd, 0, 9, -1, &fd), -EBADF);
  cr_assert_eq(vfs_fd_dup(kd, 0, fa, -2, &fd), -EBADF);
  cr_assert_eq(vfs_fd_dup(kd, 0, fa, UK_FD_MAX, &fd), -EBADF);
  cr_assert_eq(vfs_fd_dup(kd, 0, -1, 3, &fd), -EBADF);
  snap_same();
  vfs_proc_release(kd, 0);
  cr_assert_eq(vfs_chan_live(kd), 0);
}

Test(vfs_fd, close_of_a_server_chan_reports_the_clunk, .timeout = 10) {
  attach0();
  uint32_t s = mnt_chan(1, 5);
  int fd = fd_new_ok(0, s);
  cr_assert_eq(vfs_fd_close(kd, 0, fd), 1);
  cr_assert_eq(vfs_fd_close(kd, 0, fd), -EBADF);
  cr_assert_eq(vfs_clunk_next(kd), s);
  vfs_chan_clunked(kd, s);
  vfs_proc_release(kd, 0);
}

Test(vfs_fd, chdir_moves_the_cwd_reference, .timeout = 10) {
  attach0();
  uint32_t d = dir_chan(3), f = file_chan(4), stale = dir_chan(5);
  vfs_chan_unref(kd, stale);
  cr_assert_eq(vfs_chdir(kd, 0, d), 0);
  cr_assert_eq(kd->vfs.vproc[0].cwd, d);
  cr_assert_eq(ref_of(d), 2);
  cr_assert_eq(vfs_chan_lookup(kd, cwd), -EBADF); /* the old cwd is gone */
  snap_take();
  cr_assert_eq(vfs_chdir(kd, 0, f), -ENOTDIR);
  cr_assert_eq(vfs_chdir(kd, 0, stale), -EBADF);
  snap_same();
  cr_assert_eq(vfs_chdir(kd, 0, d), 0); /* to where it is */
  cr_assert_eq(ref_of(d), 2);
  vfs_chan_unref(kd, d);
  vfs_chan_unref(kd, f);
  vfs_proc_release(kd, 0);
  cr_assert_eq(vfs_chan_live(kd), 0);
}

Test(vfs_fd, fork_shares_copies_or_cleans_the_group, .timeout = 10) {
  attach0();
  uint32_t d = dir_chan(3), a = dir_chan(4);
  vfs_bind(kd, ns0, a, d, VFS_MREPL);
  cr_assert_eq(vfs_proc_fork(kd, 0, 1, 0), 0);
  cr_assert_eq(kd->vfs.vproc[1].ns, ns0);
  cr_assert_eq(ns_ref_of(ns0), 2);
  cr_assert_eq(vfs_proc_fork(kd, 0, 2, VFS_RFNAMEG), 0);
  uint32_t cp = kd->vfs.vproc[2].ns;
  cr_assert_neq(cp, ns0);
  cr_assert_eq(vfs_mount_lookup(kd, cp, d), 0);
  cr_assert_eq(vfs_proc_fork(kd, 0, 3, VFS_RFCNAMEG), 0);
  uint32_t clean = kd->vfs.vproc[3].ns;
  cr_assert_eq(kd->vfs.ns[UK_VFS_INDEX(clean)].nmount, 0);
  /* A clean group keeps the parent's root and cwd chans. */
  cr_assert_eq(kd->vfs.vproc[3].root, root);
  cr_assert_eq(kd->vfs.vproc[3].cwd, cwd);
  cr_assert_eq(ref_of(root), 4);
  /* The shared group sees the parent's binds, the copy does not. */
  vfs_unmount(kd, ns0, UK_VFS_NONE, d);
  cr_assert_eq(vfs_mount_lookup(kd, kd->vfs.vproc[1].ns, d), -ENOENT);
  cr_assert_eq(vfs_mount_lookup(kd, cp, d), 0);
  for (uint32_t p = 0; p < 4; p++)
    cr_assert_geq(vfs_proc_release(kd, p), 0);
  vfs_chan_unref(kd, d);
  vfs_chan_unref(kd, a);
  cr_assert_eq(vfs_chan_live(kd), 0);
}

Test(vfs_fd, fork_copies_descriptors_unless_asked_for_none, .timeout = 10) {
  attach0();
  uint32_t f = file_chan(10);
  int fd = fd_new_ok(0, f);
  vfs_fd_dup(kd, 0, fd, 5, &fd);
  cr_assert_eq(vfs_proc_fork(kd, 0, 1, VFS_RFFDG), 0);
  cr_assert_eq(vfs_fd_lookup(kd, 1, 0), f);
  cr_assert_eq(vfs_fd_lookup(kd, 1, 5), f);
  cr_assert_eq(ref_of(f), 4);
  cr_assert_eq(vfs_proc_fork(kd, 0, 2, VFS_RFCFDG), 0);
  for (int i = 0; i < UK_FD_MAX; i++)
    cr_assert_eq(vfs_fd_lookup(kd, 2, i), UK_VFS_NONE);
  for (uint32_t p = 0; p < 3; p++)
    vfs_proc_release(kd, p);
  cr_assert_eq(vfs_chan_live(kd), 0);
}

Test(vfs_fd, fork_refusals_change_nothing, .timeout = 10) {
  attach0();
  cr_assert_eq(vfs_proc_fork(kd, 0, 1, 0), 0);
  snap_take();
  cr_assert_eq(vfs_proc_fork(kd, 0, 1, 0), -EBUSY);
  cr_assert_eq(vfs_proc_fork(kd, 0, UK_PROC_MAX, 0), -ESRCH);
  cr_assert_eq(vfs_proc_fork(kd, 0, 2, VFS_RFNAMEG | VFS_RFCNAMEG), -EINVAL);
  cr_assert_eq(vfs_proc_fork(kd, 0, 2, VFS_RFFDG | VFS_RFCFDG), -EINVAL);
  cr_assert_eq(vfs_proc_fork(kd, 0, 2, 1u << 4), -EINVAL);
  cr_assert_eq(vfs_proc_rfork(kd, 0, VFS_RFNAMEG | VFS_RFCNAMEG), -EINVAL);
  cr_assert_eq(vfs_proc_rfork(kd, 0, 1u << 5), -EINVAL);
  snap_same();
  /* No group left for a copy or a clean one; sharing still works. */
  uint32_t ns[UK_NS_MAX];
  int n = 0;
  while (vfs_ns_new(kd, &ns[n]) == 0)
    n++;
  cr_assert_eq(n, UK_NS_MAX - 1);
  snap_take();
  cr_assert_eq(vfs_proc_fork(kd, 0, 2, VFS_RFNAMEG), -ENOSPC);
  cr_assert_eq(vfs_proc_fork(kd, 0, 2, VFS_RFCNAMEG), -ENOSPC);
  cr_assert_eq(vfs_proc_rfork(kd, 0, VFS_RFNAMEG), -ENOSPC);
  cr_assert_eq(vfs_proc_rfork(kd, 0, VFS_RFCNAMEG), -ENOSPC);
  snap_same();
  cr_assert_eq(vfs_proc_fork(kd, 0, 2, 0), 0);
  for (int i = 0; i < n; i++)
    vfs_ns_unref(kd, ns[i]);
  for (uint32_t p = 0; p < 3; p++)
    vfs_proc_release(kd, p);
  cr_assert_eq(vfs_chan_live(kd), 0);
}

Test(vfs_fd, rfork_in_place_gives_a_new_group, .timeout = 10) {
  attach0();
  uint32_t d = dir_chan(3), s = mnt_chan(1, 0);
  vfs_mount(kd, ns0, s, d, VFS_MREPL);
  vfs_chan_unref(kd, s);
  vfs_chan_unref(kd, d);
  cr_assert_eq(vfs_proc_fork(kd, 0, 1, 0), 0); /* 1 shares ns0 */
  cr_assert_eq(vfs_proc_rfork(kd, 0, VFS_RFNAMEG), 0);
  uint32_t cp = kd->vfs.vproc[0].ns;
  cr_assert_neq(cp, ns0);
  cr_assert_eq(ns_ref_of(ns0), 1);
  cr_assert_eq(kd->vfs.ns[UK_VFS_INDEX(cp)].nmount, 1);
  /* 1 leaves ns0 for a clean group: ns0 goes, the copy keeps s. */
  cr_assert_eq(vfs_proc_rfork(kd, 1, VFS_RFCNAMEG), 0);
  cr_assert_eq(vfs_ns_lookup(kd, ns0), -EINVAL);
  cr_assert_eq(ref_of(s), 1);
  /* 0 does the same: the last reference to s goes. */
  cr_assert_eq(vfs_proc_rfork(kd, 0, VFS_RFCNAMEG), 1);
  cr_assert_eq(vfs_clunk_next(kd), s);
  vfs_chan_clunked(kd, s);
  cr_assert_eq(vfs_proc_rfork(kd, 0, 0), 0);
  cr_assert_eq(vfs_proc_rfork(kd, 0, VFS_RFFDG), 0);
  vfs_proc_release(kd, 0);
  vfs_proc_release(kd, 1);
  cr_assert_eq(vfs_chan_live(kd), 0);
}

Test(vfs_fd, rfork_cfdg_closes_every_descriptor, .timeout = 10) {
  attach0();
  uint32_t s = mnt_chan(1, 0), f = file_chan(5);
  kd->vfs.chan[UK_VFS_INDEX(s)].qid.type = 0;
  fd_new_ok(0, s);
  fd_new_ok(0, f);
  cr_assert_eq(vfs_proc_rfork(kd, 0, VFS_RFCFDG), 1);
  cr_assert_eq(vfs_fd_lookup(kd, 0, 0), UK_VFS_NONE);
  cr_assert_eq(vfs_fd_lookup(kd, 0, 1), UK_VFS_NONE);
  vfs_chan_clunked(kd, s);
  vfs_proc_release(kd, 0);
  cr_assert_eq(vfs_chan_live(kd), 0);
}

Test(vfs_fd, release_gives_everything_back_and_counts_clunks, .timeout = 10) {
  attach0();
  uint32_t d = dir_chan(3), s = mnt_chan(1, 0), t = mnt_chan(2, 1);
  vfs_mount(kd, ns0, s, d, VFS_MREPL);
  fd_new_ok(0, t);
  vfs_chan_unref(kd, s);
  vfs_chan_unref(kd, d);
  cr_assert_eq(vfs_proc_release(kd, 0), 2);
  cr_assert_eq(vfs_chan_live(kd), 2); /* both owe a clunk */
  vfs_chan_clunked(kd, vfs_clunk_next(kd));
  vfs_chan_clunked(kd, vfs_clunk_next(kd));
  cr_assert_eq(vfs_chan_live(kd), 0);
  cr_assert_eq(vfs_proc_release(kd, 0), -ESRCH);
  /* The slot can be attached again. */
  attach0();
  vfs_proc_release(kd, 0);
}
