/* Unit tests for the environment servant #e (vfs/devenv.c).
 *
 * Invariants under test: a variable is created, written, read, listed,
 * stated and removed as a file of #e; each namespace group has its own
 * variables (the caller's group, from the host), an RFNAMEG copy gets a
 * copy that goes its own way, a new group starts empty and a group's
 * variables go with it; every limit (names, values, per group, in all)
 * and every bad call is refused with its errno and changes nothing; a
 * chan on a removed variable reaches nothing, not the slot's next owner.
 */
#include "vfs_fixture.h"
#include "vfs_servant.h"

static uint32_t p0;

static void init(void) {
  kd_new();
  p0 = proc_new("sh", 100);
  host_install(p0);
}

TestSuite(vfs_devenv, .init = init, .fini = servant_fini);

/* Sets variable name of the caller's group to val (creating it). */
static void setenv_to(uint32_t p, const char *name, const char *val) {
  uint32_t c = create_in(p, "#e", name, VFS_ORDWR);
  cr_assert_eq(write_str(c, val), (long)strlen(val));
  vfs_chan_unref(kd, c);
}

/* The value of path in process p ("" and false if it does not resolve). */
static bool getenv_is(uint32_t p, const char *path, const char *want) {
  uint32_t c;
  if (vfs_namec(kd, p, path, strlen(path), &c) < 0)
    return want == NULL;
  char buf[UK_ENV_VAL_MAX + 1];
  cr_assert_eq(vfs_dev_open(kd, c, VFS_OREAD), 0);
  read_all(c, buf, sizeof buf);
  vfs_chan_unref(kd, c);
  return want != NULL && strcmp(buf, want) == 0;
}

Test(vfs_devenv, a_variable_is_a_file, .timeout = 10) {
  uint32_t c = create_in(p0, "#e", "home", VFS_ORDWR);
  const struct uk_chan *ch = &kd->vfs.chan[UK_VFS_INDEX(c)];
  cr_assert(ch->flags & UK_CHAN_F_OPEN);
  cr_assert_eq(ch->qid.type, 0);
  cr_assert_str_eq(ch->path, "#e/home");
  cr_assert_eq(write_str(c, "/usr/glenda"), 11);
  char buf[32];
  cr_assert_eq(read_all(c, buf, sizeof buf), 11);
  cr_assert_str_eq(buf, "/usr/glenda");
  vfs_chan_unref(kd, c);
  setenv_to(p0, "user", "glenda");
  cr_assert(getenv_is(p0, "#e/home", "/usr/glenda"));
  cr_assert(getenv_is(p0, "#e/user", "glenda"));
  struct vfs_dir e[4], st;
  cr_assert_eq(list_in(p0, "#e", e, 4), 2);
  cr_assert_str_eq(e[0].name, "home");
  cr_assert_eq(e[0].length, 11);
  cr_assert_str_eq(e[1].name, "user");
  stat_in(p0, "#e/user", &st);
  cr_assert_str_eq(st.name, "user");
  cr_assert_eq(st.length, 6);
  cr_assert_eq(st.mode, 0664u);
}

Test(vfs_devenv, writes_at_offsets_and_truncate, .timeout = 10) {
  uint32_t c = create_in(p0, "#e", "v", VFS_ORDWR);
  cr_assert_eq(vfs_dev_write(kd, c, "abc", 3, 0), 3);
  cr_assert_eq(vfs_dev_write(kd, c, "X", 1, 1), 1);
  cr_assert_eq(vfs_dev_write(kd, c, "Z", 1, 5), 1, "a gap of zeros");
  char buf[16];
  cr_assert_eq(read_all(c, buf, sizeof buf), 6);
  cr_assert(memcmp(buf, "aXc\0\0Z", 6) == 0);
  vfs_chan_unref(kd, c);
  c = open_in(p0, "#e/v", VFS_OREAD | VFS_OTRUNC);
  cr_assert_eq(read_all(c, buf, sizeof buf), 6, "OTRUNC for reading keeps");
  vfs_chan_unref(kd, c);
  c = open_in(p0, "#e/v", VFS_OWRITE | VFS_OTRUNC);
  vfs_chan_unref(kd, c);
  cr_assert(getenv_is(p0, "#e/v", ""));
}

Test(vfs_devenv, a_value_past_the_limit_is_refused, .timeout = 10) {
  static char big[UK_ENV_VAL_MAX + 1];
  memset(big, 'v', sizeof big);
  uint32_t c = create_in(p0, "#e", "big", VFS_ORDWR);
  cr_assert_eq(vfs_dev_write(kd, c, big, UK_ENV_VAL_MAX, 0), UK_ENV_VAL_MAX);
  snap_take();
  cr_assert_eq(vfs_dev_write(kd, c, big, 1, UK_ENV_VAL_MAX), -EFBIG);
  cr_assert_eq(vfs_dev_write(kd, c, big, UK_ENV_VAL_MAX + 1, 0), -EFBIG);
  cr_assert_eq(vfs_dev_write(kd, c, big, 1, 1ull << 40), -EFBIG);
  snap_same();
  vfs_chan_unref(kd, c);
}

Test(vfs_devenv, bad_creates_are_refused, .timeout = 10) {
  static char longname[UK_ENV_NAME_MAX + 2];
  memset(longname, 'n', sizeof longname - 1);
  setenv_to(p0, "x", "1");
  uint32_t d = walk_to(p0, "#e");
  snap_take();
  cr_assert_eq(vfs_dev_create(kd, d, "x", 0664, VFS_ORDWR), -EEXIST);
  cr_assert_eq(vfs_dev_create(kd, d, "", 0664, VFS_ORDWR), -EINVAL);
  cr_assert_eq(vfs_dev_create(kd, d, ".", 0664, VFS_ORDWR), -EINVAL);
  cr_assert_eq(vfs_dev_create(kd, d, "..", 0664, VFS_ORDWR), -EINVAL);
  cr_assert_eq(vfs_dev_create(kd, d, "a/b", 0664, VFS_ORDWR), -EINVAL);
  cr_assert_eq(vfs_dev_create(kd, d, longname, 0664, VFS_ORDWR), -ENAMETOOLONG);
  cr_assert_eq(vfs_dev_create(kd, d, "dir", VFS_DMDIR | 0775, VFS_OREAD),
               -EPERM);
  cr_assert_eq(vfs_dev_create(kd, d, "y", 0664, VFS_ORDWR | VFS_ORCLOSE),
               -EPERM);
  cr_assert_eq(vfs_dev_create(kd, d, "y", 0664, 0x80), -EINVAL);
  fh.h.up = UK_NIL;
  cr_assert_eq(vfs_dev_create(kd, d, "y", 0664, VFS_ORDWR), -ESRCH);
  snap_same();
  longname[UK_ENV_NAME_MAX] = '\0';
  fh.h.up = p0;
  cr_assert_eq(vfs_dev_create(kd, d, longname, 0664, VFS_ORDWR), 0);
  vfs_chan_unref(kd, d);
}

Test(vfs_devenv, a_group_holds_at_most_its_share, .timeout = 10) {
  char name[16];
  for (int i = 0; i < UK_ENV_NS_MAX; i++) {
    snprintf(name, sizeof name, "v%d", i);
    setenv_to(p0, name, "1");
  }
  uint32_t d = walk_to(p0, "#e");
  snap_take();
  cr_assert_eq(vfs_dev_create(kd, d, "one-more", 0664, VFS_ORDWR), -ENOSPC);
  snap_same();
  vfs_chan_unref(kd, d);
}

Test(vfs_devenv, the_pool_is_shared_and_limited, .timeout = 10) {
  char name[16];
  uint32_t p = p0;
  for (int i = 0; i < UK_ENV_MAX; i++) {
    if (i > 0 && i % UK_ENV_NS_MAX == 0) {
      p = proc_new("filler", 200 + i);
      fh.h.up = p;
    }
    snprintf(name, sizeof name, "v%d", i);
    setenv_to(p, name, "1");
  }
  p = proc_new("late", 999);
  fh.h.up = p;
  uint32_t d = walk_to(p, "#e"), copy;
  snap_take();
  cr_assert_eq(vfs_dev_create(kd, d, "x", 0664, VFS_ORDWR), -ENOSPC);
  cr_assert_eq(vfs_ns_copy(kd, kd->vfs.vproc[p0].ns, &copy), -ENOSPC,
               "no room to copy the variables");
  snap_same();
  cr_assert_eq(vfs_ns_copy(kd, kd->vfs.vproc[p].ns, &copy), 0, "none to copy");
  vfs_ns_unref(kd, copy);
  vfs_chan_unref(kd, d);
}

Test(vfs_devenv, each_group_sees_its_own, .timeout = 10) {
  uint32_t p1 = proc_new("other", 101);
  setenv_to(p0, "who", "p0");
  cr_assert(getenv_is(p0, "#e/who", "p0"));
  fh.h.up = p1;
  cr_assert(getenv_is(p1, "#e/who", NULL), "another group's variable");
  setenv_to(p1, "who", "p1");
  cr_assert(getenv_is(p1, "#e/who", "p1"));
  fh.h.up = p0;
  cr_assert(getenv_is(p0, "#e/who", "p0"));
}

Test(vfs_devenv, rfork_copies_shares_or_starts_clean, .timeout = 10) {
  setenv_to(p0, "a", "1");
  uint32_t kid = (uint32_t)kern_proc_alloc(kd, "kid", 300);
  cr_assert_eq(vfs_proc_fork(kd, p0, kid, VFS_RFNAMEG), 0);
  fh.h.up = kid;
  cr_assert(getenv_is(kid, "#e/a", "1"), "a copy");
  uint32_t c = open_in(kid, "#e/a", VFS_OWRITE | VFS_OTRUNC);
  write_str(c, "2");
  vfs_chan_unref(kd, c);
  cr_assert(getenv_is(kid, "#e/a", "2"));
  fh.h.up = p0;
  cr_assert(getenv_is(p0, "#e/a", "1"), "the copy goes its own way");
  uint32_t clean = (uint32_t)kern_proc_alloc(kd, "clean", 301);
  cr_assert_eq(vfs_proc_fork(kd, p0, clean, VFS_RFCNAMEG), 0);
  fh.h.up = clean;
  cr_assert(getenv_is(clean, "#e/a", NULL), "a clean group starts empty");
  uint32_t shared = (uint32_t)kern_proc_alloc(kd, "shared", 302);
  cr_assert_eq(vfs_proc_fork(kd, p0, shared, 0), 0);
  fh.h.up = shared;
  cr_assert(getenv_is(shared, "#e/a", "1"), "a shared group shares");
}

Test(vfs_devenv, a_group_going_frees_its_variables, .timeout = 10) {
  uint32_t kid = (uint32_t)kern_proc_alloc(kd, "kid", 300);
  setenv_to(p0, "a", "1");
  cr_assert_eq(vfs_proc_fork(kd, p0, kid, VFS_RFNAMEG), 0);
  int live = 0;
  for (int i = 0; i < UK_ENV_MAX; i++)
    live += kd->vfs.env[i].state == UK_ENV_LIVE;
  cr_assert_eq(live, 2);
  cr_assert_eq(vfs_proc_release(kd, kid), 0);
  live = 0;
  for (int i = 0; i < UK_ENV_MAX; i++)
    live += kd->vfs.env[i].state == UK_ENV_LIVE;
  cr_assert_eq(live, 1, "the copy went with its group");
  vfs_proc_release(kd, p0);
  cr_assert_eq(kd->vfs.env[0].state, UK_ENV_FREE);
}

Test(vfs_devenv, remove_and_a_stale_chan, .timeout = 10) {
  setenv_to(p0, "gone", "old");
  uint32_t old = open_in(p0, "#e/gone", VFS_ORDWR);
  uint32_t r = walk_to(p0, "#e/gone");
  cr_assert_eq(vfs_dev_remove(kd, r), 0);
  vfs_chan_unref(kd, r);
  cr_assert(!exists(p0, "#e/gone"));
  setenv_to(p0, "next", "new"); /* takes the slot again */
  char buf[8];
  struct vfs_dir st;
  snap_take();
  cr_assert_eq(vfs_dev_read(kd, old, buf, sizeof buf, 0), -ENOENT);
  cr_assert_eq(vfs_dev_write(kd, old, "x", 1, 0), -ENOENT);
  cr_assert_eq(vfs_dev_remove(kd, old), -ENOENT);
  cr_assert_eq(vfs_dev_stat(kd, old, &st), -ENOENT);
  snap_same();
  cr_assert(getenv_is(p0, "#e/next", "new"));
  uint32_t d = walk_to(p0, "#e");
  cr_assert_eq(vfs_dev_remove(kd, d), -EPERM);
  vfs_chan_unref(kd, d);
  vfs_chan_unref(kd, old);
}

Test(vfs_devenv, check_catches_a_variable_of_no_group, .timeout = 10) {
  setenv_to(p0, "a", "1");
  kd->vfs.env[0].ns = UK_VFS_ID(5, 9);
  char why[200];
  cr_assert_eq(vfs_check(kd, why, sizeof why), -EUCLEAN);
  cr_assert(strstr(why, "env 0") != NULL, "%s", why);
  kd->vfs.env[0].ns = kd->vfs.vproc[p0].ns;
  kd->vfs.env[0].len = UK_ENV_VAL_MAX + 1;
  cr_assert_eq(vfs_check(kd, why, sizeof why), -EUCLEAN);
  kd->vfs.env[0].len = 1;
}

Test(vfs_devenv, bad_opens_are_refused, .timeout = 10) {
  setenv_to(p0, "a", "1");
  uint32_t c = walk_to(p0, "#e/a"), d = walk_to(p0, "#e");
  snap_take();
  cr_assert_eq(vfs_dev_open(kd, c, VFS_OREAD | VFS_ORCLOSE), -EPERM);
  cr_assert_eq(vfs_dev_open(kd, c, 0x80), -EINVAL);
  cr_assert_eq(vfs_dev_open(kd, d, VFS_OWRITE), -EISDIR);
  snap_same();
  uint32_t r = walk_to(p0, "#e/a");
  cr_assert_eq(vfs_dev_remove(kd, r), 0);
  vfs_chan_unref(kd, r);
  snap_take();
  cr_assert_eq(vfs_dev_open(kd, c, VFS_OREAD), -ENOENT, "removed");
  snap_same();
  vfs_chan_unref(kd, c);
  vfs_chan_unref(kd, d);
}
