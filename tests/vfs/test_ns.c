/* Unit tests for namespace groups, bind, mount, unmount and unions
 * (vfs/ns.c).
 *
 * Invariants under test: the union a walk sees at a mount point is the
 * one bind(2) and mount(2) give in Plan 9 (MREPL, MBEFORE, MAFTER,
 * MCREATE, the old directory kept in a fresh union, a union copied when
 * bound); mount points are found by the name of the chan, not its id;
 * unmount removes one member or the whole point; groups are independent
 * of each other; every reference is dropped when its holder goes; every
 * refused call changes nothing.
 */
#include "vfs_fixture.h"

TestSuite(vfs_ns, .init = kd_new, .fini = kd_free);

static const struct uk_mount *mount_at(uint32_t ns, uint32_t old) {
  int m = vfs_mount_lookup(kd, ns, old);
  cr_assert_geq(m, 0, "no mount point");
  return &kd->vfs.ns[UK_VFS_INDEX(ns)].mount[m];
}

/* The union at old is exactly want[0..n) with flags wflag. */
static void assert_union(uint32_t ns, uint32_t old, int n, const uint32_t *want,
                         const uint8_t *wflag) {
  const struct uk_mount *e = mount_at(ns, old);
  cr_assert_eq(e->n, n, "union of %d, not %d", e->n, n);
  for (int k = 0; k < n; k++) {
    cr_assert_eq(e->member[k], want[k], "member %d", k);
    cr_assert_eq(e->mflag[k], wflag ? wflag[k] : 0, "flag of member %d", k);
  }
}

Test(vfs_ns, new_group_is_empty_with_one_reference, .timeout = 10) {
  uint32_t ns = ns_new_ok();
  int g = vfs_ns_lookup(kd, ns);
  cr_assert_eq(kd->vfs.ns[g].ref, 1);
  cr_assert_eq(kd->vfs.ns[g].nmount, 0);
  cr_assert_eq(vfs_ns_unref(kd, ns), 0);
  cr_assert_eq(vfs_ns_lookup(kd, ns), -EINVAL);
}

Test(vfs_ns, bad_group_ids_are_refused, .timeout = 10) {
  uint32_t ns = ns_new_ok(), d = dir_chan(1), out;
  vfs_ns_unref(kd, ns);
  snap_take();
  cr_assert_eq(vfs_ns_ref(kd, ns), -EINVAL);
  cr_assert_eq(vfs_ns_unref(kd, ns), -EINVAL);
  cr_assert_eq(vfs_ns_copy(kd, ns, &out), -EINVAL);
  cr_assert_eq(vfs_bind(kd, ns, d, d, VFS_MREPL), -EINVAL);
  cr_assert_eq(vfs_mount(kd, ns, d, d, VFS_MREPL), -EINVAL);
  cr_assert_eq(vfs_unmount(kd, ns, UK_VFS_NONE, d), -EINVAL);
  cr_assert_eq(vfs_mount_lookup(kd, ns, d), -EINVAL);
  cr_assert_eq(vfs_create_target(kd, ns, d, &out), -EINVAL);
  cr_assert_eq(vfs_ns_lookup(kd, UK_VFS_NONE), -EINVAL);
  cr_assert_eq(vfs_ns_lookup(kd, UK_VFS_ID(UK_NS_MAX, 1)), -EINVAL);
  int pos = 0;
  cr_assert_eq(vfs_union_next(kd, ns, 0, &pos), UK_VFS_NONE);
  snap_same();
  vfs_chan_unref(kd, d);
}

Test(vfs_ns, full_group_table_refuses_new_and_copy, .timeout = 10) {
  uint32_t ns[UK_NS_MAX], out = 99;
  for (int i = 0; i < UK_NS_MAX; i++)
    ns[i] = ns_new_ok();
  snap_take();
  cr_assert_eq(vfs_ns_new(kd, &out), -ENOSPC);
  cr_assert_eq(vfs_ns_copy(kd, ns[0], &out), -ENOSPC);
  cr_assert_eq(out, 99);
  snap_same();
  for (int i = 0; i < UK_NS_MAX; i++)
    vfs_ns_unref(kd, ns[i]);
}

Test(vfs_ns, repl_on_a_fresh_point_gives_the_new_chan_alone, .timeout = 10) {
  uint32_t ns = ns_new_ok(), old = dir_chan(1), new = dir_chan(2);
  cr_assert_eq(vfs_mount_lookup(kd, ns, old), -ENOENT);
  cr_assert_eq(vfs_bind(kd, ns, new, old, VFS_MREPL), 0);
  assert_union(ns, old, 1, (uint32_t[]){new}, NULL);
  cr_assert_eq(ref_of(old), 2); /* ours and the mount point's */
  cr_assert_eq(ref_of(new), 2);
  vfs_ns_unref(kd, ns);
  cr_assert_eq(ref_of(old), 1);
  cr_assert_eq(ref_of(new), 1);
  vfs_chan_unref(kd, old);
  vfs_chan_unref(kd, new);
  cr_assert_eq(vfs_chan_live(kd), 0);
}

Test(vfs_ns, after_and_before_keep_the_old_directory_in_a_fresh_union,
     .timeout = 10) {
  uint32_t ns = ns_new_ok(), d = dir_chan(1), a = dir_chan(2), b = dir_chan(3),
           c = dir_chan(4);
  cr_assert_eq(vfs_bind(kd, ns, a, d, VFS_MAFTER), 0);
  assert_union(ns, d, 2, (uint32_t[]){d, a}, NULL);
  cr_assert_eq(vfs_bind(kd, ns, b, d, VFS_MBEFORE | VFS_MCREATE), 0);
  assert_union(ns, d, 3, (uint32_t[]){b, d, a}, (uint8_t[]){UK_MCREATE, 0, 0});
  cr_assert_eq(vfs_bind(kd, ns, c, d, VFS_MAFTER), 0);
  assert_union(ns, d, 4, (uint32_t[]){b, d, a, c},
               (uint8_t[]){UK_MCREATE, 0, 0, 0});
  cr_assert_eq(ref_of(d), 3); /* ours, the mount point, the member */
  uint32_t e = dir_chan(5);
  cr_assert_eq(vfs_bind(kd, ns, a, e, VFS_MBEFORE), 0);
  assert_union(ns, e, 2, (uint32_t[]){a, e}, NULL);
  vfs_ns_unref(kd, ns);
  uint32_t all[] = {d, a, b, c, e};
  for (int i = 0; i < 5; i++) {
    cr_assert_eq(ref_of(all[i]), 1);
    vfs_chan_unref(kd, all[i]);
  }
}

Test(vfs_ns, repl_replaces_a_union_and_drops_its_members, .timeout = 10) {
  uint32_t ns = ns_new_ok(), d = dir_chan(1), a = dir_chan(2),
           s = mnt_chan(3, 1), b = dir_chan(4);
  cr_assert_eq(vfs_mount(kd, ns, s, d, VFS_MAFTER), 0);
  cr_assert_eq(vfs_bind(kd, ns, a, d, VFS_MAFTER), 0);
  cr_assert_eq(vfs_chan_unref(kd, s), 0); /* the union holds it now */
  /* Replacing drops the server's last reference: one clunk due. */
  cr_assert_eq(vfs_bind(kd, ns, b, d, VFS_MREPL), 1);
  assert_union(ns, d, 1, (uint32_t[]){b}, NULL);
  cr_assert_eq(vfs_clunk_next(kd), s);
  vfs_chan_clunked(kd, s);
  cr_assert_eq(ref_of(a), 1);
  cr_assert_eq(ref_of(d), 2); /* only the mount point's now */
  vfs_ns_unref(kd, ns);
  vfs_chan_unref(kd, d);
  vfs_chan_unref(kd, a);
  vfs_chan_unref(kd, b);
  cr_assert_eq(vfs_chan_live(kd), 0);
}

Test(vfs_ns, rebinding_a_member_in_place_never_frees_it, .timeout = 10) {
  uint32_t ns = ns_new_ok(), d = dir_chan(1), a = dir_chan(2);
  cr_assert_eq(vfs_bind(kd, ns, a, d, VFS_MREPL), 0);
  vfs_chan_unref(kd, a); /* only the union holds a */
  int m = vfs_mount_lookup(kd, ns, d);
  uint32_t member = kd->vfs.ns[UK_VFS_INDEX(ns)].mount[m].member[0];
  cr_assert_eq(vfs_bind(kd, ns, member, d, VFS_MREPL), 0);
  cr_assert_eq(ref_of(member), 1);
  assert_union(ns, d, 1, (uint32_t[]){member}, NULL);
  vfs_ns_unref(kd, ns);
  vfs_chan_unref(kd, d);
  cr_assert_eq(vfs_chan_live(kd), 0);
}

Test(vfs_ns, binding_a_union_copies_its_members, .timeout = 10) {
  uint32_t ns = ns_new_ok(), u = dir_chan(1), a = dir_chan(2), b = dir_chan(3),
           d = dir_chan(4), x = dir_chan(5);
  vfs_bind(kd, ns, a, u, VFS_MREPL | VFS_MCREATE);
  vfs_bind(kd, ns, b, u, VFS_MAFTER | VFS_MCREATE);
  cr_assert_eq(vfs_bind(kd, ns, x, d, VFS_MREPL), 0);
  /* u is a union of a, b: binding u after d's union copies a and b; only
   * the first copy carries this bind's MCREATE, none keeps u's. */
  cr_assert_eq(vfs_bind(kd, ns, u, d, VFS_MAFTER | VFS_MCREATE), 0);
  assert_union(ns, d, 3, (uint32_t[]){x, a, b}, (uint8_t[]){0, UK_MCREATE, 0});
  cr_assert_eq(vfs_bind(kd, ns, u, d, VFS_MREPL), 0);
  assert_union(ns, d, 2, (uint32_t[]){a, b}, NULL);
  /* A union named by another chan of the same file is a union too. */
  uint32_t u2 = dir_chan(1);
  cr_assert_eq(vfs_bind(kd, ns, u2, d, VFS_MBEFORE), 0);
  assert_union(ns, d, 4, (uint32_t[]){a, b, a, b}, NULL);
  vfs_ns_unref(kd, ns);
  uint32_t all[] = {u, a, b, d, x, u2};
  for (int i = 0; i < 6; i++) {
    cr_assert_eq(ref_of(all[i]), 1);
    vfs_chan_unref(kd, all[i]);
  }
}

Test(vfs_ns, mount_takes_a_server_chan_and_never_copies, .timeout = 10) {
  uint32_t ns = ns_new_ok(), d = dir_chan(1), s = mnt_chan(7, 0),
           s2 = mnt_chan(7, 0), e = dir_chan(2);
  snap_take();
  cr_assert_eq(vfs_mount(kd, ns, d, e, VFS_MREPL), -EINVAL);
  snap_same();
  cr_assert_eq(vfs_mount(kd, ns, s, d, VFS_MREPL | VFS_MCREATE), 0);
  assert_union(ns, d, 1, (uint32_t[]){s}, (uint8_t[]){UK_MCREATE});
  /* s2 names the file s does: a union to copy for bind, not for mount. */
  cr_assert_eq(vfs_bind(kd, ns, e, s2, VFS_MREPL), 0);
  cr_assert_eq(vfs_mount(kd, ns, s2, d, VFS_MAFTER), 0);
  assert_union(ns, d, 2, (uint32_t[]){s, s2}, (uint8_t[]){UK_MCREATE, 0});
  cr_assert_eq(vfs_ns_unref(kd, ns), 0); /* we still hold both */
  cr_assert_eq(vfs_chan_unref(kd, s), 1);
  cr_assert_eq(vfs_chan_unref(kd, s2), 1);
  vfs_chan_clunked(kd, s);
  vfs_chan_clunked(kd, s2);
  vfs_chan_unref(kd, d);
  vfs_chan_unref(kd, e);
  cr_assert_eq(vfs_chan_live(kd), 0);
}

Test(vfs_ns, bad_flags_chans_and_dir_mismatch_are_refused, .timeout = 10) {
  uint32_t ns = ns_new_ok(), d = dir_chan(1), a = dir_chan(2), f = file_chan(3),
           g = file_chan(4), stale = dir_chan(5);
  vfs_chan_unref(kd, stale);
  vfs_bind(kd, ns, a, d, VFS_MREPL);
  snap_take();
  cr_assert_eq(vfs_bind(kd, ns, a, d, VFS_MORDER), -EINVAL);
  cr_assert_eq(vfs_bind(kd, ns, a, d, 0x10), -EINVAL);
  cr_assert_eq(vfs_bind(kd, ns, stale, d, VFS_MREPL), -EBADF);
  cr_assert_eq(vfs_bind(kd, ns, a, stale, VFS_MREPL), -EBADF);
  cr_assert_eq(vfs_bind(kd, ns, UK_VFS_NONE, d, VFS_MREPL), -EBADF);
  cr_assert_eq(vfs_bind(kd, ns, f, d, VFS_MAFTER), -EINVAL);
  cr_assert_eq(vfs_bind(kd, ns, d, f, VFS_MREPL), -EINVAL);
  cr_assert_eq(vfs_bind(kd, ns, g, f, VFS_MBEFORE), -ENOTDIR);
  cr_assert_eq(vfs_mount(kd, ns, stale, d, VFS_MREPL), -EBADF);
  snap_same();
  /* A file may replace a file. */
  cr_assert_eq(vfs_bind(kd, ns, g, f, VFS_MREPL), 0);
  assert_union(ns, f, 1, (uint32_t[]){g}, NULL);
  vfs_ns_unref(kd, ns);
  uint32_t all[] = {d, a, f, g};
  for (int i = 0; i < 4; i++)
    vfs_chan_unref(kd, all[i]);
}

Test(vfs_ns, full_mount_table_refuses_a_new_point_only, .timeout = 10) {
  uint32_t ns = ns_new_ok(), a = dir_chan(1000), pts[UK_MOUNT_MAX];
  for (int i = 0; i < UK_MOUNT_MAX; i++) {
    pts[i] = dir_chan((uint64_t)i);
    cr_assert_eq(vfs_bind(kd, ns, a, pts[i], VFS_MREPL), 0);
  }
  uint32_t more = dir_chan(UK_MOUNT_MAX);
  snap_take();
  cr_assert_eq(vfs_bind(kd, ns, a, more, VFS_MREPL), -ENOSPC);
  cr_assert_eq(vfs_bind(kd, ns, a, more, VFS_MAFTER), -ENOSPC);
  snap_same();
  /* An existing point still takes members. */
  cr_assert_eq(vfs_bind(kd, ns, more, pts[3], VFS_MAFTER), 0);
  vfs_ns_unref(kd, ns);
  for (int i = 0; i < UK_MOUNT_MAX; i++)
    vfs_chan_unref(kd, pts[i]);
  vfs_chan_unref(kd, a);
  vfs_chan_unref(kd, more);
  cr_assert_eq(vfs_chan_live(kd), 0);
}

Test(vfs_ns, full_union_refuses_another_member, .timeout = 10) {
  uint32_t ns = ns_new_ok(), d = dir_chan(1), u = dir_chan(2), m[UK_UNION_MAX];
  for (int i = 0; i < UK_UNION_MAX; i++)
    m[i] = dir_chan(10 + (uint64_t)i);
  for (int i = 1; i < UK_UNION_MAX; i++) /* d itself is the first */
    cr_assert_eq(vfs_bind(kd, ns, m[i], d, VFS_MAFTER), 0);
  /* A union of two, to copy. */
  vfs_bind(kd, ns, m[0], u, VFS_MREPL);
  vfs_bind(kd, ns, m[1], u, VFS_MAFTER);
  snap_take();
  cr_assert_eq(vfs_bind(kd, ns, m[0], d, VFS_MBEFORE), -ENOSPC);
  cr_assert_eq(vfs_bind(kd, ns, m[0], d, VFS_MAFTER), -ENOSPC);
  cr_assert_eq(vfs_bind(kd, ns, u, d, VFS_MAFTER), -ENOSPC);
  snap_same();
  /* Replacing needs no room for what it replaces. */
  cr_assert_eq(vfs_bind(kd, ns, u, d, VFS_MREPL), 0);
  for (int i = 2; i < UK_UNION_MAX; i++)
    cr_assert_eq(vfs_bind(kd, ns, m[i], u, VFS_MAFTER), 0);
  snap_take();
  cr_assert_eq(vfs_bind(kd, ns, u, d, VFS_MAFTER), -ENOSPC);
  snap_same();
  vfs_ns_unref(kd, ns);
  vfs_chan_unref(kd, d);
  vfs_chan_unref(kd, u);
  for (int i = 0; i < UK_UNION_MAX; i++)
    vfs_chan_unref(kd, m[i]);
  cr_assert_eq(vfs_chan_live(kd), 0);
}

Test(vfs_ns, mount_points_are_found_by_name_not_by_id, .timeout = 10) {
  uint32_t ns = ns_new_ok(), d = dir_chan(1), a = dir_chan(2);
  vfs_bind(kd, ns, a, d, VFS_MREPL);
  uint32_t same = dir_chan(1), other_dev = chan_of('/', 1, 1, true);
  uint32_t other_type = chan_of('e', 0, 1, true);
  cr_assert_eq(vfs_mount_lookup(kd, ns, same), 0);
  cr_assert_eq(vfs_mount_lookup(kd, ns, other_dev), -ENOENT);
  cr_assert_eq(vfs_mount_lookup(kd, ns, other_type), -ENOENT);
  cr_assert_eq(vfs_mount_lookup(kd, ns, a), -ENOENT);
  /* A bind through the other chan changes the same point. */
  cr_assert_eq(vfs_bind(kd, ns, other_dev, same, VFS_MAFTER), 0);
  assert_union(ns, d, 2, (uint32_t[]){a, other_dev}, NULL);
  cr_assert_eq(kd->vfs.ns[UK_VFS_INDEX(ns)].nmount, 1);
  vfs_chan_unref(kd, other_type);
  cr_assert_eq(vfs_mount_lookup(kd, ns, other_type), -EBADF);
  vfs_ns_unref(kd, ns);
  uint32_t all[] = {d, a, same, other_dev};
  for (int i = 0; i < 4; i++)
    vfs_chan_unref(kd, all[i]);
}

Test(vfs_ns, unmount_removes_a_member_or_the_point, .timeout = 10) {
  uint32_t ns = ns_new_ok(), d = dir_chan(1), a = dir_chan(2), b = dir_chan(3),
           e = dir_chan(4), f = dir_chan(5);
  vfs_bind(kd, ns, a, d, VFS_MREPL);
  vfs_bind(kd, ns, b, d, VFS_MAFTER);
  vfs_bind(kd, ns, a, d, VFS_MAFTER);
  vfs_bind(kd, ns, a, e, VFS_MREPL);
  vfs_bind(kd, ns, b, f, VFS_MREPL);
  snap_take();
  cr_assert_eq(vfs_unmount(kd, ns, UK_VFS_NONE, a), -EINVAL);
  cr_assert_eq(vfs_unmount(kd, ns, d, d), -ENOENT);
  cr_assert_eq(vfs_unmount(kd, ns, UK_VFS_ID(5, 5), d), -EBADF);
  snap_same();
  /* The first member named like a goes, by name. */
  uint32_t a2 = dir_chan(2);
  cr_assert_eq(vfs_unmount(kd, ns, a2, d), 0);
  assert_union(ns, d, 2, (uint32_t[]){b, a}, NULL);
  cr_assert_eq(vfs_unmount(kd, ns, b, d), 0);
  cr_assert_eq(vfs_unmount(kd, ns, a, d), 0); /* the last member */
  cr_assert_eq(vfs_mount_lookup(kd, ns, d), -ENOENT);
  cr_assert_eq(vfs_mount_lookup(kd, ns, f), 1); /* order kept: e, f */
  cr_assert_eq(vfs_unmount(kd, ns, UK_VFS_NONE, e), 0);
  cr_assert_eq(vfs_mount_lookup(kd, ns, f), 0);
  cr_assert_eq(kd->vfs.ns[UK_VFS_INDEX(ns)].nmount, 1);
  vfs_ns_unref(kd, ns);
  uint32_t all[] = {d, a, b, e, f, a2};
  for (int i = 0; i < 6; i++) {
    cr_assert_eq(ref_of(all[i]), 1);
    vfs_chan_unref(kd, all[i]);
  }
  cr_assert_eq(vfs_chan_live(kd), 0);
}

Test(vfs_ns, unmount_reports_clunks_due, .timeout = 10) {
  uint32_t ns = ns_new_ok(), d = dir_chan(1), s = mnt_chan(1, 0),
           t = mnt_chan(2, 0);
  vfs_mount(kd, ns, s, d, VFS_MREPL);
  vfs_mount(kd, ns, t, d, VFS_MAFTER);
  vfs_chan_unref(kd, s);
  vfs_chan_unref(kd, t);
  cr_assert_eq(vfs_unmount(kd, ns, UK_VFS_NONE, d), 2);
  cr_assert_eq(vfs_chan_clunked(kd, vfs_clunk_next(kd)), 0);
  cr_assert_eq(vfs_chan_clunked(kd, vfs_clunk_next(kd)), 0);
  cr_assert_eq(vfs_clunk_next(kd), UK_VFS_NONE);
  vfs_ns_unref(kd, ns);
  vfs_chan_unref(kd, d);
  cr_assert_eq(vfs_chan_live(kd), 0);
}

Test(vfs_ns, copy_is_independent_and_references_every_chan, .timeout = 10) {
  uint32_t ns = ns_new_ok(), d = dir_chan(1), a = dir_chan(2), b = dir_chan(3),
           cp;
  vfs_bind(kd, ns, a, d, VFS_MAFTER);
  cr_assert_eq(vfs_ns_copy(kd, ns, &cp), 0);
  cr_assert_neq(cp, ns);
  assert_union(cp, d, 2, (uint32_t[]){d, a}, NULL);
  cr_assert_eq(ref_of(d), 5);
  cr_assert_eq(ref_of(a), 3);
  vfs_bind(kd, cp, b, d, VFS_MREPL);
  assert_union(ns, d, 2, (uint32_t[]){d, a}, NULL);
  assert_union(cp, d, 1, (uint32_t[]){b}, NULL);
  cr_assert_eq(vfs_mount_lookup(kd, ns, b), -ENOENT);
  vfs_ns_unref(kd, ns);
  assert_union(cp, d, 1, (uint32_t[]){b}, NULL);
  vfs_ns_unref(kd, cp);
  uint32_t all[] = {d, a, b};
  for (int i = 0; i < 3; i++) {
    cr_assert_eq(ref_of(all[i]), 1);
    vfs_chan_unref(kd, all[i]);
  }
}

Test(vfs_ns, shared_group_lives_until_its_last_reference, .timeout = 10) {
  uint32_t ns = ns_new_ok(), d = dir_chan(1), s = mnt_chan(1, 0);
  vfs_mount(kd, ns, s, d, VFS_MREPL);
  vfs_chan_unref(kd, s);
  cr_assert_eq(vfs_ns_ref(kd, ns), 0);
  cr_assert_eq(vfs_ns_unref(kd, ns), 0);
  cr_assert_eq(vfs_mount_lookup(kd, ns, d), 0);
  cr_assert_eq(vfs_ns_unref(kd, ns), 1); /* the server's chan: a clunk */
  vfs_chan_clunked(kd, s);
  vfs_chan_unref(kd, d);
  cr_assert_eq(vfs_chan_live(kd), 0);
}

/* A fake directory listing for the union tests: chan qid path p has entry
 * "x" when bit x - 'a' of p is set. */
static bool has_name(void *arg, uint32_t dir, const char *name) {
  (void)arg;
  int i = vfs_chan_lookup(kd, dir);
  cr_assert_geq(i, 0);
  return (kd->vfs.chan[i].qid.path >> (name[0] - 'a')) & 1;
}

Test(vfs_ns, union_visits_members_once_in_order, .timeout = 10) {
  uint32_t ns = ns_new_ok(), d = dir_chan(0x1), a = dir_chan(0x3),
           b = dir_chan(0x6), a2 = dir_chan(0x3);
  vfs_bind(kd, ns, a, d, VFS_MBEFORE);
  vfs_bind(kd, ns, b, d, VFS_MAFTER);
  vfs_bind(kd, ns, a2, d, VFS_MAFTER); /* names a again */
  int m = vfs_mount_lookup(kd, ns, d), pos = 0;
  cr_assert_eq(vfs_union_next(kd, ns, m, &pos), a);
  cr_assert(vfs_union_shows(kd, ns, m, pos, "a", has_name, NULL));
  cr_assert(vfs_union_shows(kd, ns, m, pos, "b", has_name, NULL));
  cr_assert_eq(vfs_union_next(kd, ns, m, &pos), d);
  cr_assert_not(vfs_union_shows(kd, ns, m, pos, "a", has_name, NULL));
  cr_assert_eq(vfs_union_next(kd, ns, m, &pos), b);
  cr_assert_not(vfs_union_shows(kd, ns, m, pos, "b", has_name, NULL));
  cr_assert(vfs_union_shows(kd, ns, m, pos, "c", has_name, NULL));
  cr_assert_eq(vfs_union_next(kd, ns, m, &pos), UK_VFS_NONE);
  cr_assert_eq(vfs_union_next(kd, ns, m, &pos), UK_VFS_NONE);
  cr_assert_eq(vfs_union_find(kd, ns, m, "a", has_name, NULL), a);
  cr_assert_eq(vfs_union_find(kd, ns, m, "c", has_name, NULL), b);
  cr_assert_eq(vfs_union_find(kd, ns, m, "d", has_name, NULL), UK_VFS_NONE);
  /* A mount index past the table, or a bad position, ends at once. */
  pos = 0;
  cr_assert_eq(vfs_union_next(kd, ns, m + 1, &pos), UK_VFS_NONE);
  pos = -1;
  cr_assert_eq(vfs_union_next(kd, ns, m, &pos), UK_VFS_NONE);
  cr_assert_not(vfs_union_shows(kd, ns, m, 0, "a", has_name, NULL));
  cr_assert_not(vfs_union_shows(kd, ns, m, 5, "a", has_name, NULL));
  vfs_ns_unref(kd, ns);
  uint32_t all[] = {d, a, b, a2};
  for (int i = 0; i < 4; i++)
    vfs_chan_unref(kd, all[i]);
}

Test(vfs_ns, create_goes_to_the_first_member_bound_with_create, .timeout = 10) {
  uint32_t ns = ns_new_ok(), d = dir_chan(1), a = dir_chan(2), b = dir_chan(3),
           c = dir_chan(4), t;
  cr_assert_eq(vfs_create_target(kd, ns, d, &t), 0);
  cr_assert_eq(t, d); /* not a mount point: the directory itself */
  vfs_bind(kd, ns, a, d, VFS_MAFTER);
  snap_take();
  cr_assert_eq(vfs_create_target(kd, ns, d, &t), -EACCES);
  snap_same();
  vfs_bind(kd, ns, b, d, VFS_MAFTER | VFS_MCREATE);
  vfs_bind(kd, ns, c, d, VFS_MAFTER | VFS_MCREATE);
  cr_assert_eq(vfs_create_target(kd, ns, d, &t), 0);
  cr_assert_eq(t, b);
  vfs_bind(kd, ns, c, d, VFS_MBEFORE | VFS_MCREATE);
  cr_assert_eq(vfs_create_target(kd, ns, d, &t), 0);
  cr_assert_eq(t, c);
  uint32_t stale = dir_chan(9);
  vfs_chan_unref(kd, stale);
  cr_assert_eq(vfs_create_target(kd, ns, stale, &t), -EBADF);
  vfs_ns_unref(kd, ns);
  vfs_chan_unref(kd, a);
  vfs_chan_unref(kd, d);
  vfs_chan_unref(kd, b);
  vfs_chan_unref(kd, c);
  cr_assert_eq(vfs_chan_live(kd), 0);
}
