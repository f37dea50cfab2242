/* Unit tests for vfs_check (vfs/check.c): it accepts every state the
 * operations make and catches each kind of broken invariant a torn or
 * corrupted region can show. */
#include "vfs_fixture.h"

TestSuite(vfs_check, .init = kd_new, .fini = kd_free);

static uint32_t ns, d, a;

static void build(void) {
  ns = ns_new_ok();
  d = dir_chan(1);
  a = dir_chan(2);
  cr_assert_eq(vfs_bind(kd, ns, a, d, VFS_MAFTER), 0);
  cr_assert_eq(vfs_proc_attach(kd, 0, ns, d, d), 0);
  assert_vfs_ok();
}

static void assert_broken(const char *what) {
  char why[200];
  cr_assert_eq(vfs_check(kd, why, sizeof why), -EUCLEAN, "%s not caught", what);
  cr_assert_neq(why[0], '\0');
  cr_assert_eq(vfs_check(kd, NULL, 0), -EUCLEAN);
}

/* Puts the region back so the fini's check passes. */
static void repair(void) {
  kern_kdata_init(kd, 1, 2, 3);
}

Test(vfs_check, an_empty_region_is_consistent, .timeout = 10) {
  char why[8] = "junk";
  cr_assert_eq(vfs_check(kd, why, sizeof why), 0);
  cr_assert_eq(why[0], '\0');
}

Test(vfs_check, a_stale_member_is_caught, .timeout = 10) {
  build();
  kd->vfs.ns[UK_VFS_INDEX(ns)].mount[0].member[1] = UK_VFS_ID(99, 1);
  assert_broken("stale member");
  repair();
}

Test(vfs_check, a_reference_too_few_is_caught, .timeout = 10) {
  build();
  kd->vfs.chan[UK_VFS_INDEX(d)].ref = 2; /* four are stored */
  assert_broken("ref too low");
  repair();
}

Test(vfs_check, bad_union_sizes_and_flags_are_caught, .timeout = 10) {
  build();
  struct uk_mount *e = &kd->vfs.ns[UK_VFS_INDEX(ns)].mount[0];
  e->n = 0;
  assert_broken("empty union");
  e->n = UK_UNION_MAX + 1;
  assert_broken("union too long");
  e->n = 2;
  e->mflag[0] = 0x80;
  assert_broken("unknown member flag");
  repair();
}

Test(vfs_check, mixed_dirness_and_duplicate_points_are_caught, .timeout = 10) {
  build();
  kd->vfs.chan[UK_VFS_INDEX(a)].qid.type = 0;
  assert_broken("file in a directory's union");
  kd->vfs.chan[UK_VFS_INDEX(a)].qid.type = UK_QTDIR;
  struct uk_nsgroup *g = &kd->vfs.ns[UK_VFS_INDEX(ns)];
  g->mount[1] = g->mount[0];
  g->nmount = 2;
  kd->vfs.chan[UK_VFS_INDEX(d)].ref += 2;
  kd->vfs.chan[UK_VFS_INDEX(a)].ref += 1;
  assert_broken("two mounts on one point");
  repair();
}

Test(vfs_check, bad_groups_and_processes_are_caught, .timeout = 10) {
  build();
  struct uk_nsgroup *g = &kd->vfs.ns[UK_VFS_INDEX(ns)];
  g->ref = 0;
  assert_broken("live group without references");
  g->ref = 1;
  g->nmount = UK_MOUNT_MAX + 1;
  assert_broken("too many mounts");
  g->nmount = 1;
  kd->vfs.ns[5].nmount = 1;
  assert_broken("free group with mounts");
  kd->vfs.ns[5].nmount = 0;
  kd->vfs.vproc[3].cwd = d;
  assert_broken("detached process with ids");
  kd->vfs.vproc[3].cwd = 0;
  kd->vfs.vproc[0].ns = UK_VFS_ID(5, 1);
  assert_broken("process in a free group");
  repair();
}

Test(vfs_check, bad_chan_states_are_caught, .timeout = 10) {
  build();
  uint32_t f = file_chan(3);
  struct uk_chan *c = &kd->vfs.chan[UK_VFS_INDEX(f)];
  c->state = UK_CHAN_CLUNK;
  c->ref = 0;
  assert_broken("a servant chan owing a clunk");
  c->state = UK_CHAN_FREE;
  c->ref = 1;
  assert_broken("a free chan with a reference");
  c->state = UK_CHAN_LIVE;
  c->ref = 0;
  assert_broken("a live chan without one");
  c->state = 7;
  assert_broken("an unknown state");
  repair();
}

Test(vfs_check, an_unterminated_path_is_caught, .timeout = 10) {
  build();
  memset(kd->vfs.chan[UK_VFS_INDEX(d)].path, 'x', UK_PATH_MAX + 1);
  assert_broken("unterminated path");
  repair();
}
