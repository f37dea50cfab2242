/* Unit tests for the server registry #s (vfs/devsrv.c).
 *
 * Invariants under test: a server posts itself by creating #s/NAME and
 * writing its service's name, which reads back; vfs_srv_lookup gives the
 * service of a posted entry and refuses a chan that is not an entry
 * (-EINVAL), an entry removed (-ENOENT), not posted, or whose service went
 * or was replaced by another in its slot (-ENOTCONN); a second post, an
 * unknown service, a taken name, a bad name and a full table are refused
 * and change nothing; remove unposts.
 */
#include "vfs_fixture.h"
#include "vfs_servant.h"

static uint32_t p0;
static int ramfs, kvs;

static void init(void) {
  kd_new();
  p0 = proc_new("sh", 100);
  host_install(p0);
  ramfs = kern_svc_add(kd, "ramfs");
  kvs = kern_svc_add(kd, "kvs");
  cr_assert(ramfs >= 0 && kvs >= 0);
}

TestSuite(vfs_devsrv, .init = init, .fini = servant_fini);

/* #s/name posted for service svc. */
static void post(const char *name, const char *svc) {
  uint32_t c = create_in(p0, "#s", name, VFS_OWRITE);
  cr_assert_eq(write_str(c, svc), (long)strlen(svc));
  vfs_chan_unref(kd, c);
}

static int lookup(const char *path, uint32_t *svc) {
  uint32_t c = walk_to(p0, path);
  int r = vfs_srv_lookup(kd, &kd->vfs.chan[UK_VFS_INDEX(c)], svc);
  vfs_chan_unref(kd, c);
  return r;
}

Test(vfs_devsrv, post_read_list_and_lookup, .timeout = 10) {
  post("ram", "ramfs\n");
  post("k", "kvs");
  uint32_t c = open_in(p0, "#s/ram", VFS_OREAD), svc = 99;
  char buf[32];
  cr_assert_eq(read_all(c, buf, sizeof buf), 5);
  cr_assert_str_eq(buf, "ramfs");
  cr_assert_str_eq(kd->vfs.chan[UK_VFS_INDEX(c)].path, "#s/ram");
  vfs_chan_unref(kd, c);
  cr_assert_eq(lookup("#s/ram", &svc), 0);
  cr_assert_eq(svc, (uint32_t)ramfs);
  cr_assert_eq(lookup("#s/k", &svc), 0);
  cr_assert_eq(svc, (uint32_t)kvs);
  struct vfs_dir e[4];
  cr_assert_eq(list_in(p0, "#s", e, 4), 2);
  cr_assert_str_eq(e[0].name, "ram");
  cr_assert_eq(e[0].length, 5);
  cr_assert_str_eq(e[1].name, "k");
}

Test(vfs_devsrv, lookup_refuses_what_is_not_a_posted_entry, .timeout = 10) {
  uint32_t svc = 99, c = create_in(p0, "#s", "new", VFS_OWRITE);
  const struct uk_chan *ch = &kd->vfs.chan[UK_VFS_INDEX(c)];
  cr_assert_eq(vfs_srv_lookup(kd, ch, &svc), -ENOTCONN, "not posted");
  vfs_chan_unref(kd, c);
  cr_assert_eq(lookup("#s", &svc), -EINVAL, "the directory");
  cr_assert_eq(lookup("#c/cons", &svc), -EINVAL, "another servant's file");
  cr_assert_eq(vfs_srv_lookup(kd, NULL, &svc), -EINVAL);
  struct uk_chan bad = {.type = 's', .qid = {.path = 1ull << 31}};
  cr_assert_eq(vfs_srv_lookup(kd, &bad, &svc), -EINVAL, "no such slot");
  cr_assert_eq(svc, 99, "untouched on error");
}

Test(vfs_devsrv, an_entry_outliving_its_service_is_not_connected,
     .timeout = 10) {
  post("ram", "ramfs");
  uint32_t c = walk_to(p0, "#s/ram"), svc;
  const struct uk_chan *ch = &kd->vfs.chan[UK_VFS_INDEX(c)];
  kd->svc[ramfs].state = UK_SVC_DOWN; /* restarting: still the service */
  cr_assert_eq(vfs_srv_lookup(kd, ch, &svc), 0);
  kd->svc[ramfs].state = UK_SVC_FREE;
  cr_assert_eq(vfs_srv_lookup(kd, ch, &svc), -ENOTCONN, "service gone");
  cr_assert_eq(kern_svc_add(kd, "other"), ramfs, "the slot taken again");
  cr_assert_eq(vfs_srv_lookup(kd, ch, &svc), -ENOTCONN, "another service");
  uint32_t r = walk_to(p0, "#s/ram");
  cr_assert_eq(vfs_dev_remove(kd, r), 0);
  vfs_chan_unref(kd, r);
  cr_assert_eq(vfs_srv_lookup(kd, ch, &svc), -ENOENT, "removed");
  vfs_chan_unref(kd, c);
}

Test(vfs_devsrv, bad_posts_are_refused, .timeout = 10) {
  uint32_t c = create_in(p0, "#s", "x", VFS_ORDWR);
  snap_take();
  cr_assert_eq(write_str(c, "nosuch"), -ENOENT);
  cr_assert_eq(write_str(c, ""), -ENOENT);
  cr_assert_eq(write_str(c, "\n"), -ENOENT);
  cr_assert_eq(write_str(c, "ram"), -ENOENT, "a prefix is not a name");
  cr_assert_eq(vfs_dev_write(kd, c, "ramfs\0x", 7, 0), -ENOENT);
  cr_assert_eq(vfs_dev_write(kd, c, "ramfs", 5, 3), -EBUSY, "at an offset");
  snap_same();
  cr_assert_eq(write_str(c, "ramfs"), 5);
  snap_take();
  cr_assert_eq(write_str(c, "kvs"), -EBUSY, "posted once");
  snap_same();
  vfs_chan_unref(kd, c);
}

Test(vfs_devsrv, bad_creates_are_refused, .timeout = 10) {
  post("ram", "ramfs");
  uint32_t d = walk_to(p0, "#s");
  snap_take();
  cr_assert_eq(vfs_dev_create(kd, d, "ram", 0666, VFS_OWRITE), -EEXIST);
  cr_assert_eq(vfs_dev_create(kd, d, "a/b", 0666, VFS_OWRITE), -EINVAL);
  cr_assert_eq(vfs_dev_create(kd, d, "", 0666, VFS_OWRITE), -EINVAL);
  cr_assert_eq(
      vfs_dev_create(kd, d, "0123456789012345678901234567890123", 0666, 1),
      -ENAMETOOLONG);
  cr_assert_eq(vfs_dev_create(kd, d, "dir", VFS_DMDIR | 0777, VFS_OREAD),
               -EPERM);
  snap_same();
  vfs_chan_unref(kd, d);
}

Test(vfs_devsrv, the_table_is_limited, .timeout = 10) {
  char name[16];
  for (int i = 0; i < UK_SRV_MAX; i++) {
    snprintf(name, sizeof name, "s%d", i);
    vfs_chan_unref(kd, create_in(p0, "#s", name, VFS_OWRITE));
  }
  uint32_t d = walk_to(p0, "#s");
  snap_take();
  cr_assert_eq(vfs_dev_create(kd, d, "more", 0666, VFS_OWRITE), -ENOSPC);
  snap_same();
  vfs_chan_unref(kd, d);
  uint32_t r = walk_to(p0, "#s/s7");
  cr_assert_eq(vfs_dev_remove(kd, r), 0);
  vfs_chan_unref(kd, r);
  vfs_chan_unref(kd, create_in(p0, "#s", "more", VFS_OWRITE));
  cr_assert_eq(kd->vfs.srv[7].state, UK_SRV_CREATED, "the freed slot");
}

Test(vfs_devsrv, remove_unposts_and_stale_chans_reach_nothing, .timeout = 10) {
  post("ram", "ramfs");
  uint32_t old = open_in(p0, "#s/ram", VFS_ORDWR), r = walk_to(p0, "#s/ram");
  cr_assert_eq(vfs_dev_remove(kd, r), 0);
  vfs_chan_unref(kd, r);
  cr_assert(!exists(p0, "#s/ram"));
  post("ram", "kvs"); /* the same name and slot, a new generation */
  char buf[8];
  snap_take();
  cr_assert_eq(vfs_dev_read(kd, old, buf, sizeof buf, 0), -ENOENT);
  cr_assert_eq(write_str(old, "kvs"), -ENOENT);
  cr_assert_eq(vfs_dev_remove(kd, old), -ENOENT);
  snap_same();
  uint32_t d = walk_to(p0, "#s");
  cr_assert_eq(vfs_dev_remove(kd, d), -EPERM);
  vfs_chan_unref(kd, d);
  vfs_chan_unref(kd, old);
}

Test(vfs_devsrv, check_catches_two_entries_of_one_name, .timeout = 10) {
  post("a", "ramfs");
  post("b", "kvs");
  strcpy(kd->vfs.srv[1].name, "a");
  char why[200];
  cr_assert_eq(vfs_check(kd, why, sizeof why), -EUCLEAN);
  cr_assert(strstr(why, "one name") != NULL, "%s", why);
  strcpy(kd->vfs.srv[1].name, "b");
  kd->vfs.srv[1].svc = UK_SVC_MAX;
  cr_assert_eq(vfs_check(kd, why, sizeof why), -EUCLEAN);
  kd->vfs.srv[1].svc = (uint32_t)kvs;
}
