/* Unit tests for the chan table (vfs/chan.c).
 *
 * Invariants under test: a chan id is never UK_VFS_NONE and a stale one is
 * refused everywhere; a servant's chan is freed when its last reference
 * goes, a mounted server's chan then owes a clunk and keeps its slot until
 * the kernel says the clunk was sent; chans are named by (type, dev,
 * qid.path); a full table refuses with -ENFILE and changes nothing.
 */
#include "vfs_fixture.h"

TestSuite(vfs_chan, .init = kd_new, .fini = kd_free);

Test(vfs_chan, new_is_live_with_one_reference_and_its_name, .timeout = 10) {
  struct uk_qid q = {.path = 42, .vers = 3, .type = UK_QTDIR};
  uint32_t id;
  cr_assert_eq(vfs_chan_new(kd, 'c', 5, &q, &id), 0);
  int i = vfs_chan_lookup(kd, id);
  cr_assert_eq((uint32_t)i, UK_VFS_INDEX(id));
  const struct uk_chan *c = &kd->vfs.chan[i];
  cr_assert_eq(c->state, UK_CHAN_LIVE);
  cr_assert_eq(c->ref, 1);
  cr_assert_eq(c->type, 'c');
  cr_assert_eq(c->dev, 5);
  cr_assert_eq(c->qid.path, 42);
  cr_assert_eq(c->qid.vers, 3);
  cr_assert_eq(c->flags, 0);
  cr_assert_eq(c->offset, 0);
  cr_assert(vfs_chan_isdir(kd, id));
  cr_assert_eq(vfs_chan_live(kd), 1);
  cr_assert_eq(vfs_chan_unref(kd, id), 0);
}

Test(vfs_chan, servant_chan_is_freed_at_zero_without_a_clunk, .timeout = 10) {
  uint32_t id = dir_chan(1);
  cr_assert_eq(vfs_chan_ref(kd, id), 0);
  cr_assert_eq(ref_of(id), 2);
  cr_assert_eq(vfs_chan_unref(kd, id), 0);
  cr_assert_eq(vfs_chan_unref(kd, id), 0);
  cr_assert_eq(vfs_chan_lookup(kd, id), -EBADF);
  cr_assert_eq(vfs_chan_live(kd), 0);
  cr_assert_eq(vfs_clunk_next(kd), UK_VFS_NONE);
}

Test(vfs_chan, stale_ids_are_refused_everywhere, .timeout = 10) {
  uint32_t id = dir_chan(1);
  cr_assert_eq(vfs_chan_unref(kd, id), 0);
  uint32_t again = dir_chan(2); /* reuses the slot */
  cr_assert_eq(UK_VFS_INDEX(again), UK_VFS_INDEX(id));
  cr_assert_neq(again, id);
  snap_take();
  cr_assert_eq(vfs_chan_lookup(kd, id), -EBADF);
  cr_assert_eq(vfs_chan_ref(kd, id), -EBADF);
  cr_assert_eq(vfs_chan_unref(kd, id), -EBADF);
  cr_assert_eq(vfs_chan_clunked(kd, id), -EBADF);
  cr_assert_not(vfs_chan_same(kd, id, again));
  cr_assert_not(vfs_chan_isdir(kd, id));
  cr_assert_eq(vfs_chan_lookup(kd, UK_VFS_NONE), -EBADF);
  cr_assert_eq(vfs_chan_lookup(kd, UK_VFS_ID(UK_CHAN_MAX, 1)), -EBADF);
  snap_same();
  cr_assert_eq(vfs_chan_unref(kd, again), 0);
}

Test(vfs_chan, generation_wraps_past_zero, .timeout = 10) {
  kd->vfs.chan[0].gen = 0xffff;
  uint32_t id = dir_chan(1);
  cr_assert_eq(UK_VFS_GEN(id), 1);
  cr_assert_eq(UK_VFS_INDEX(id), 0);
  cr_assert_neq(id, UK_VFS_NONE);
  vfs_chan_unref(kd, id);
}

Test(vfs_chan, mounted_chan_owes_a_clunk_at_zero, .timeout = 10) {
  uint32_t id = mnt_chan(9, 1);
  kd->vfs.chan[UK_VFS_INDEX(id)].fid = 77;
  cr_assert_eq(vfs_chan_clunked(kd, id), -EBADF); /* still live */
  cr_assert_eq(vfs_chan_unref(kd, id), 1);
  const struct uk_chan *c = &kd->vfs.chan[UK_VFS_INDEX(id)];
  cr_assert_eq(c->state, UK_CHAN_CLUNK);
  cr_assert_eq(c->dev, 9);
  cr_assert_eq(c->fid, 77);
  /* Owed, not usable: the slot waits for the kernel's Tclunk. */
  cr_assert_eq(vfs_chan_lookup(kd, id), -EBADF);
  cr_assert_eq(vfs_chan_ref(kd, id), -EBADF);
  cr_assert_eq(vfs_chan_live(kd), 1);
  cr_assert_eq(vfs_clunk_next(kd), id);
  cr_assert_eq(vfs_chan_clunked(kd, id), 0);
  cr_assert_eq(vfs_chan_clunked(kd, id), -EBADF);
  cr_assert_eq(vfs_clunk_next(kd), UK_VFS_NONE);
  cr_assert_eq(vfs_chan_live(kd), 0);
}

Test(vfs_chan, a_clunk_owed_keeps_its_slot, .timeout = 10) {
  uint32_t m = mnt_chan(1, 1);
  cr_assert_eq(vfs_chan_unref(kd, m), 1);
  uint32_t d = dir_chan(1);
  cr_assert_neq(UK_VFS_INDEX(d), UK_VFS_INDEX(m));
  vfs_chan_clunked(kd, m);
  vfs_chan_unref(kd, d);
}

Test(vfs_chan, name_is_type_dev_and_path, .timeout = 10) {
  uint32_t a = chan_of('/', 0, 1, true);
  uint32_t b = chan_of('/', 0, 1, true);
  kd->vfs.chan[UK_VFS_INDEX(b)].qid.vers = 99; /* vers is not the name */
  uint32_t other_type = chan_of('e', 0, 1, true);
  uint32_t other_dev = chan_of('/', 1, 1, true);
  uint32_t other_path = chan_of('/', 0, 2, true);
  uint32_t server1 = mnt_chan(1, 1), server2 = mnt_chan(2, 1);
  cr_assert(vfs_chan_same(kd, a, b));
  cr_assert(vfs_chan_same(kd, a, a));
  cr_assert_not(vfs_chan_same(kd, a, other_type));
  cr_assert_not(vfs_chan_same(kd, a, other_dev));
  cr_assert_not(vfs_chan_same(kd, a, other_path));
  /* The same qid on two servers is two files. */
  cr_assert_not(vfs_chan_same(kd, server1, server2));
  cr_assert_not(vfs_chan_same(kd, a, UK_VFS_NONE));
  uint32_t all[] = {a, b, other_type, other_dev, other_path};
  for (unsigned i = 0; i < 5; i++)
    vfs_chan_unref(kd, all[i]);
  cr_assert_eq(vfs_chan_unref(kd, server1), 1);
  cr_assert_eq(vfs_chan_unref(kd, server2), 1);
  vfs_chan_clunked(kd, server1);
  vfs_chan_clunked(kd, server2);
}

Test(vfs_chan, full_table_refuses_with_enfile_and_changes_nothing,
     .timeout = 10) {
  static uint32_t ids[UK_CHAN_MAX];
  for (uint32_t i = 0; i < UK_CHAN_MAX; i++)
    ids[i] = dir_chan(i);
  snap_take();
  struct uk_qid q = {.path = 1};
  uint32_t id = 12345;
  cr_assert_eq(vfs_chan_new(kd, '/', 0, &q, &id), -ENFILE);
  cr_assert_eq(id, 12345);
  snap_same();
  for (uint32_t i = 0; i < UK_CHAN_MAX; i++)
    vfs_chan_unref(kd, ids[i]);
  cr_assert_eq(vfs_chan_live(kd), 0);
}
