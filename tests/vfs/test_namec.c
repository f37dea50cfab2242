/* Unit tests for path resolution (vfs/namec.c).
 *
 * Invariants under test: a path names what Plan 9's namec gives: from the
 * root, the cwd or a servant's root ("#X"), "." and ".." (which stays at
 * the root and comes back out of a mounted tree to its mount point),
 * across mount points into unions where the first member that has a name
 * wins; the chan returned is new, named as reached, with one reference;
 * every refusal (bad path, missing name, a walk in a file, a full chan
 * table) gives its errno and leaves the region byte-identical.
 *
 * Process 0's namespace: root and cwd "#/", an empty group; tests bind the
 * test servant #t (vfs_tdev.h: / f d/{g h/} e/{g k/}) and a fake mounted
 * server (type M, the same tree) onto #/'s directories.
 */
#include "vfs_fixture.h"
#include "vfs_tdev.h"

static uint32_t ns, root;

static void init(void) {
  kd_new();
  tdev_register();
  ns = ns_new_ok();
  root = chan_of('/', 0, 0, true);
  cr_assert_eq(vfs_proc_attach(kd, 0, ns, root, root), 0);
}

static void fini(void) {
  vfs_proc_release(kd, 0);
  vfs_ns_unref(kd, ns);
  vfs_chan_unref(kd, root);
  for (uint32_t c; (c = vfs_clunk_next(kd)) != UK_VFS_NONE;)
    vfs_chan_clunked(kd, c);
  cr_assert_eq(vfs_chan_live(kd), 0, "chans leaked");
  kd_free();
}

TestSuite(vfs_namec, .init = init, .fini = fini);

/* Resolves path in process 0, which must succeed and give a chan named
 * (type, dev, path) with one reference; drops it. */
static void resolves(const char *path, uint8_t type, uint32_t dev,
                     uint64_t qpath) {
  uint32_t c = UK_VFS_NONE;
  int r = vfs_namec(kd, 0, path, strlen(path), &c);
  cr_assert_eq(r, 0, "%s: %d", path, r);
  int i = vfs_chan_lookup(kd, c);
  cr_assert_geq(i, 0);
  const struct uk_chan *ch = &kd->vfs.chan[i];
  cr_assert(ch->type == type && ch->dev == dev && ch->qid.path == qpath,
            "%s: %c %u %llu, not %c %u %llu", path, ch->type, ch->dev,
            (unsigned long long)ch->qid.path, type, dev,
            (unsigned long long)qpath);
  cr_assert_eq(ch->ref, 1);
  cr_assert_eq(ch->flags, 0, "not open");
  assert_vfs_ok();
  cr_assert_eq(vfs_chan_unref(kd, c), ch->type == UK_CHAN_MNT);
  if (ch->type == UK_CHAN_MNT)
    vfs_chan_clunked(kd, c);
}

/* path[0..len) is refused with err and the region is as it was. */
static void refused_len(const char *path, size_t len, int err) {
  uint32_t c = 77;
  snap_take();
  int r = vfs_namec(kd, 0, path, len, &c);
  cr_assert_eq(r, err, "%.*s: %d, not %d", (int)len, path, r, err);
  cr_assert_eq(c, 77);
  snap_same();
  assert_vfs_ok();
}

static void refused(const char *path, int err) {
  refused_len(path, strlen(path), err);
}

/* The chan path names, which the caller must drop. */
static uint32_t get(const char *path) {
  uint32_t c;
  cr_assert_eq(vfs_namec(kd, 0, path, strlen(path), &c), 0, "%s", path);
  return c;
}

static void bind_ok(const char *new, const char *old, uint32_t flag) {
  uint32_t n = get(new), o = get(old);
  cr_assert_geq(vfs_bind(kd, ns, n, o, flag), 0, "bind %s %s", new, old);
  vfs_chan_unref(kd, n);
  vfs_chan_unref(kd, o);
}

/* Mounts the fake server on dev `link` onto old. */
static void mount_ok(uint32_t link, const char *old, uint32_t flag) {
  uint32_t m = mnt_chan(link, 0), o = get(old);
  cr_assert_geq(vfs_mount(kd, ns, m, o, flag), 0);
  vfs_chan_unref(kd, m);
  vfs_chan_unref(kd, o);
}

Test(vfs_namec, absolute_paths_walk_from_the_root, .timeout = 10) {
  resolves("/", '/', 0, 0);
  resolves("/dev", '/', 0, 2);
  resolves("/tmp", '/', 0, 10);
  resolves("//srv//", '/', 0, 9);
  resolves("/./n/.", '/', 0, 6);
}

Test(vfs_namec, relative_paths_walk_from_the_cwd, .timeout = 10) {
  resolves("proc", '/', 0, 8);
  resolves(".", '/', 0, 0);
  uint32_t dev = get("/dev");
  cr_assert_eq(vfs_chdir(kd, 0, dev), 0);
  vfs_chan_unref(kd, dev);
  resolves(".", '/', 0, 2);
  resolves("..", '/', 0, 0);
  resolves("../srv", '/', 0, 9);
  resolves("/", '/', 0, 0);
  refused("srv", -ENOENT);
}

Test(vfs_namec, dotdot_at_the_root_stays_there, .timeout = 10) {
  resolves("..", '/', 0, 0);
  resolves("/..", '/', 0, 0);
  resolves("/../../dev/../../env", '/', 0, 3);
}

Test(vfs_namec, a_servant_is_named_by_its_letter, .timeout = 10) {
  resolves("#/", '/', 0, 0);
  resolves("#//dev", '/', 0, 2);
  resolves("#t", 't', 0, 0);
  resolves("#t/d/h", 't', 0, 4);
  resolves("#t/d/h/../..", 't', 0, 0);
  resolves("#t/..", 't', 0, 0);
  refused("#", -EINVAL);
  refused("#/dev", -EINVAL); /* "dev" is a spec #/ does not take */
  refused("#q/x", -ENOENT);
}

Test(vfs_namec, bad_paths_are_refused, .timeout = 10) {
  char lng[UK_PATH_MAX + 2];
  refused_len("/", 0, -EINVAL);
  refused_len(NULL, 1, -EINVAL);
  refused_len("/d\0v", 4, -EINVAL);
  refused_len("\0", 1, -EINVAL);
  memset(lng, '/', sizeof lng);
  refused_len(lng, UK_PATH_MAX + 1, -ENAMETOOLONG);
  for (int i = 0; i < UK_PATH_MAX; i += 2)
    lng[i] = '.', lng[i + 1] = '/';
  lng[0] = '/';
  uint32_t c;
  cr_assert_eq(vfs_namec(kd, 0, lng, UK_PATH_MAX, &c), 0, "at the limit");
  vfs_chan_unref(kd, c);
  lng[UK_PATH_MAX - 1] = 'x';
  refused_len(lng, UK_PATH_MAX, -ENOENT);
  snap_take();
  cr_assert_eq(vfs_namec(kd, 1, "/", 1, &c), -ESRCH);
  cr_assert_eq(vfs_namec(kd, UK_PROC_MAX, "/", 1, &c), -ESRCH);
  snap_same();
}

Test(vfs_namec, missing_names_and_walks_in_files_are_refused, .timeout = 10) {
  refused("/nope", -ENOENT);
  refused("/dev/nope", -ENOENT);
  refused("nope/..", -ENOENT);
  refused("#t/f/x", -ENOTDIR);
  refused("#t/f/..", -ENOTDIR);
  refused("#t/d/g/..", -ENOTDIR);
  resolves("#t/d/g/", 't', 0, 3); /* a trailing '/' is an empty name */
}

Test(vfs_namec, a_bound_tree_is_walked_and_left_by_dotdot, .timeout = 10) {
  bind_ok("#t", "/n", VFS_MREPL);
  resolves("/n", '/', 0, 6); /* the mount point, as reached */
  resolves("/n/f", 't', 0, 1);
  resolves("/n/d/g", 't', 0, 3);
  resolves("/n/d/..", '/', 0, 6);
  resolves("/n/d/h/../../..", '/', 0, 0);
  resolves("/n/..", '/', 0, 0);
  refused("/n/f/x", -ENOTDIR);
  refused("/n/x", -ENOENT);
  refused("/n/bin", -ENOENT); /* replaced: #/'s /n is not seen */
}

Test(vfs_namec, a_union_takes_the_first_member_with_the_name, .timeout = 10) {
  bind_ok("#t/d", "/mnt", VFS_MREPL);
  bind_ok("#t/e", "/mnt", VFS_MAFTER);
  resolves("/mnt/g", 't', 0, 3); /* d's g */
  resolves("/mnt/h", 't', 0, 4);
  resolves("/mnt/k", 't', 0, 7); /* only e has it */
  resolves("/mnt/k/..", '/', 0, 5);
  refused("/mnt/zz", -ENOENT);
  bind_ok("#t/e", "/tmp", VFS_MBEFORE);
  bind_ok("#t/d", "/tmp", VFS_MBEFORE);
  bind_ok("#t/e", "/tmp", VFS_MBEFORE); /* [e d e /tmp]: e once */
  resolves("/tmp/g", 't', 0, 6);        /* e's g now */
  resolves("/tmp/h", 't', 0, 4);
  refused("/tmp/bin", -ENOENT); /* #/'s /tmp is empty */
}

Test(vfs_namec, a_union_keeps_the_old_directory_after, .timeout = 10) {
  bind_ok("#t", "/", VFS_MBEFORE); /* [#t /] at the root */
  resolves("/f", 't', 0, 1);
  resolves("/dev", '/', 0, 2);
  resolves("/d/../dev", '/', 0, 2);
  resolves("/d/..", '/', 0, 0);
  refused("/nope", -ENOENT);
}

Test(vfs_namec, mounted_servers_are_walked_like_servants, .timeout = 10) {
  mount_ok(1, "/srv", VFS_MREPL);
  mount_ok(2, "/net", VFS_MREPL);
  mount_ok(3, "/net", VFS_MAFTER);
  resolves("/srv/d/h", UK_CHAN_MNT, 1, 4);
  resolves("/net/e/k", UK_CHAN_MNT, 2, 7); /* the first of two servers */
  resolves("/net/e/..", '/', 0, 7);
  bind_ok("/srv/e", "/srv/d", VFS_MREPL); /* a mount point in a mounted tree */
  resolves("/srv/d/k", UK_CHAN_MNT, 1, 7);
  refused("/srv/d/h", -ENOENT);
  resolves("/srv/d/..", '/', 0, 9); /* back out through /srv */
}

Test(vfs_namec, a_file_bound_on_a_file_is_not_walked_into, .timeout = 10) {
  bind_ok("#t/f", "#t/d/g", VFS_MREPL);
  bind_ok("#t", "/n", VFS_MREPL);
  resolves("/n/d/g", 't', 0, 3); /* the mount point, as reached */
  refused("/n/d/g/x", -ENOTDIR);
}

Test(vfs_namec, dotdot_above_the_cwd_asks_the_servant, .timeout = 10) {
  uint32_t h = get("#t/d/h");
  cr_assert_eq(vfs_chdir(kd, 0, h), 0);
  vfs_chan_unref(kd, h);
  resolves("..", 't', 0, 2);
  resolves("../..", 't', 0, 0);
  resolves("../../../f", 't', 0, 1);
}

Test(vfs_namec, a_full_chan_table_refuses_and_changes_nothing, .timeout = 30) {
  uint32_t c, held[UK_CHAN_MAX];
  int n = 0;
  while (vfs_namec(kd, 0, "/dev", 4, &c) == 0)
    held[n++] = c;
  cr_assert_eq(n, UK_CHAN_MAX - 1, "the root is one");
  refused("/dev", -ENFILE);
  refused("/nope", -ENOENT);
  for (int i = 0; i < n; i++)
    vfs_chan_unref(kd, held[i]);
}

Test(vfs_namec, references_stay_right_with_many_results, .timeout = 10) {
  bind_ok("#t", "/n", VFS_MBEFORE);
  uint32_t a = get("/n/d"), b = get("/n/d");
  cr_assert_neq(a, b, "each namec gives a new chan");
  cr_assert(vfs_chan_same(kd, a, b));
  cr_assert_eq(ref_of(a), 1);
  int fd;
  cr_assert_eq(vfs_fd_new(kd, 0, a, &fd), 0);
  assert_vfs_ok();
  cr_assert_eq(vfs_fd_close(kd, 0, fd), 0);
  vfs_chan_unref(kd, b);
  assert_vfs_ok();
}

/* The name the chan of path keeps. */
static void named(const char *path, const char *want) {
  uint32_t c = get(path);
  cr_assert_str_eq(kd->vfs.chan[UK_VFS_INDEX(c)].path, want, "%s", path);
  vfs_chan_unref(kd, c);
}

Test(vfs_namec, a_chan_keeps_the_cleaned_name_it_was_reached_by,
     .timeout = 10) {
  bind_ok("#t", "/n", VFS_MREPL);
  named("/", "/");
  named("//dev/./", "/dev");
  named("/n/d/../e/k", "/n/e/k");
  named("/n/d/h/../..", "/n");
  named("dev", "/dev"); /* the cwd is the root */
  named("#t/d", "#t/d");
  named("#t", "#t");
  named("#//dev", "#//dev");
  named("#/", "#/");
  uint32_t d = get("/dev");
  cr_assert_eq(vfs_chdir(kd, 0, d), 0);
  vfs_chan_unref(kd, d);
  named("../n/f", "/n/f");
  named(".", "/dev");
}

Test(vfs_namec, fd2path_gives_the_name, .timeout = 10) {
  bind_ok("#t", "/n", VFS_MBEFORE);
  uint32_t c = get("/n/d/g"), anon = chan_of('/', 0, 2, true);
  int fd, fa;
  char buf[16];
  cr_assert_eq(vfs_fd_new(kd, 0, c, &fd), 0);
  cr_assert_eq(vfs_fd_new(kd, 0, anon, &fa), 0);
  cr_assert_eq(vfs_fd2path(kd, 0, fd, buf, sizeof buf), 0);
  cr_assert_str_eq(buf, "/n/d/g");
  cr_assert_eq(vfs_fd2path(kd, 0, fd, buf, 7), 0);
  cr_assert_eq(vfs_fd2path(kd, 0, fd, buf, 6), -ERANGE);
  cr_assert_eq(vfs_fd2path(kd, 0, fa, buf, sizeof buf), -ENOENT);
  cr_assert_eq(vfs_fd2path(kd, 0, 9, buf, sizeof buf), -EBADF);
  cr_assert_eq(vfs_fd2path(kd, 1, fd, buf, sizeof buf), -EBADF);
  vfs_fd_close(kd, 0, fd);
  vfs_fd_close(kd, 0, fa);
}

Test(vfs_namec, dotdot_above_a_named_cwd_comes_out_through_the_mount,
     .timeout = 10) {
  bind_ok("#t", "/n", VFS_MREPL);
  uint32_t d = get("/n/d");
  cr_assert_eq(vfs_chdir(kd, 0, d), 0);
  vfs_chan_unref(kd, d);
  resolves("h", 't', 0, 4);
  resolves("..", '/', 0, 6); /* /n, not #t's root */
  resolves("../..", '/', 0, 0);
  resolves("../../../dev", '/', 0, 2);
  resolves("../d/h", 't', 0, 4);
  named("../d/h", "/n/d/h");
  uint32_t k = get("#t/e/k");
  cr_assert_eq(vfs_chdir(kd, 0, k), 0);
  vfs_chan_unref(kd, k);
  resolves("..", 't', 0, 5);
  named("../..", "#t");
  named("../../..", "#t");
}

Test(vfs_namec, a_name_past_the_limit_is_refused, .timeout = 10) {
  bind_ok("#t/d", "#t/d/h", VFS_MREPL); /* /n/d/h/h/h... */
  bind_ok("#t", "/n", VFS_MREPL);
  char deep[UK_PATH_MAX + 1] = "/n/d";
  while (strlen(deep) + 2 <= UK_PATH_MAX)
    strcat(deep, "/h");
  uint32_t c = get(deep);
  cr_assert_eq(strlen(kd->vfs.chan[UK_VFS_INDEX(c)].path), strlen(deep));
  cr_assert_eq(vfs_chdir(kd, 0, c), 0);
  vfs_chan_unref(kd, c);
  resolves(".", 't', 0, 4); /* the mount point h, as reached */
  refused("h/h", -ENAMETOOLONG);
  resolves("../h", 't', 0, 4);
}
