/* diskfs end to end: a real machine, ramfs holding the device file
 * (/tmp/disk here, /n/disk in diskfs's own namespace), diskfs serving a
 * file system on it, and this test process (attached as a uksim process)
 * making a tree through the namespace calls.  The files must be on the
 * device: diskfs killed and restarted, or a second diskfs on the same
 * device after the first ended, finds every file with the same bytes. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ktab.h"
#include "uksim/ap.h"
#include "uksim/ns.h"

static mach_client m;

/* Larger than diskfs's 16 direct blocks (64 KiB), and than NS_SMALL: it
 * travels in data ICAs and lives partly behind the indirect block. */
#define BIG (200 * 1024 + 123)

static void attach(const char *name) {
  h_attach(&m, name);
}

/* Mounts the server posted as /srv/NAME on old: its entry is made, then
 * names its service (until then a mount says -ENOTCONN). */
static void mount_srv(const char *svc, const char *old) {
  char path[64];
  int r = -ENOENT;
  snprintf(path, sizeof path, "/srv/%s", svc);
  for (int i = 0; i < 2000 && (r == -ENOENT || r == -ENOTCONN); i++) {
    int fd = ns_open(path, NS_ORDWR); /* 20 s: under valgrind too */
    r = fd < 0 ? fd : ns_mount(fd, old, NS_MREPL | NS_MCREATE, "");
    if (fd >= 0)
      cr_assert_eq(ns_close(fd), 0);
    if (r == -ENOENT || r == -ENOTCONN)
      ap_sleep(10000000);
  }
  cr_assert_eq(r, 0, "mount %s %s: %s", path, old, strerror(-r));
}

/* A machine with ramfs on /tmp holding an empty device file. */
static void boot(const char *name) {
  h_boot(&m, NULL);
  cr_assert_eq(
      mach_spawn(&m, "ramfs", NULL, 0, "ramfs", MACH_SPAWN_REGISTERED, NULL), 0,
      "start ramfs: %s", m.error);
  attach(name);
  mount_srv("ramfs", "/tmp");
  int fd = ns_create("/tmp/disk", NS_ORDWR, 0600);
  cr_assert_geq(fd, 0, "create /tmp/disk: %s", strerror(-fd));
  cr_assert_eq(ns_close(fd), 0);
}

/* Starts diskfs as service svc on the device; its process slot.  With
 * restart, it also writes its barriers' "sync" to /n/ctl. */
static int start_diskfs(const char *svc, bool restart) {
  char *args[] = {"--name", (char *)svc, "/n/disk", "4M",
                  "ramfs",  "--sync",    "/n/ctl"};
  struct mach_prog p = {.program = "diskfs",
                        .args = args,
                        .nargs = restart ? 7 : 5,
                        .name = svc,
                        .flags = MACH_SPAWN_REGISTERED,
                        .restart = restart};
  int proc;
  cr_assert_eq(mach_spawn_prog(&m, &p, &proc), 0, "start diskfs: %s", m.error);
  return proc;
}

static void pattern(char *p, size_t n, unsigned seed) {
  for (size_t k = 0; k < n; k++)
    p[k] = (char)('a' + (k * 7 + seed + k / 4096) % 26);
}

static void put(const char *path, const char *s, size_t n) {
  int fd = ns_create(path, NS_ORDWR, 0644);
  cr_assert_geq(fd, 0, "create %s: %s", path, strerror(-fd));
  for (size_t done = 0; done < n;) {
    long w = ns_write(fd, s + done, n - done);
    cr_assert_gt(w, 0, "write %s: %s", path, strerror((int)-w));
    done += (size_t)w;
  }
  cr_assert_eq(ns_close(fd), 0);
}

static void expect_fd(int fd, const char *path, const char *s, size_t n) {
  char *buf = malloc(n + 1);
  size_t got = 0;
  long r = 1;
  while (got <= n && r > 0)
    if ((r = ns_pread(fd, buf + got, n + 1 - got, got)) > 0)
      got += (size_t)r;
  cr_assert_geq(r, 0, "read %s: %s", path, strerror((int)-r));
  cr_assert_eq(got, n, "%s: %zu bytes, not %zu", path, got, n);
  cr_assert(memcmp(buf, s, n) == 0, "%s: the bytes differ", path);
  free(buf);
}

static void expect(const char *path, const char *s, size_t n) {
  int fd = ns_open(path, NS_OREAD);
  cr_assert_geq(fd, 0, "open %s: %s", path, strerror(-fd));
  expect_fd(fd, path, s, n);
  cr_assert_eq(ns_close(fd), 0);
}

/* Asserts that directory path holds exactly the names in want (space
 * separated, in any order: diskfs lists in inode table order). */
static void holds(const char *path, const char *want) {
  ns_dir d[4];
  long n;
  int count = 0, wanted = 0, fd = ns_open(path, NS_OREAD);
  cr_assert_geq(fd, 0, "open %s: %s", path, strerror(-fd));
  while ((n = ns_dirread(fd, d, 4)) > 0)
    for (long i = 0; i < n; i++, count++) {
      char word[KABI_DIR_NAME_MAX + 2];
      snprintf(word, sizeof word, "%s ", d[i].name);
      cr_assert(strstr(want, word), "%s holds %s", path, d[i].name);
    }
  cr_assert_eq(n, 0, "dirread %s: %s", path, strerror((int)-n));
  for (const char *p = want; (p = strchr(p, ' ')); p++)
    wanted++;
  cr_assert_eq(count, wanted, "%s: %d names, not %d", path, count, wanted);
  cr_assert_eq(ns_close(fd), 0);
}

static char big[BIG];

/* The tree: directories two deep, small files, one big one, a rename
 * and a truncate. */
static void make_tree(void) {
  pattern(big, BIG, 1);
  int fd = ns_create("/n/a", NS_OREAD, NS_DMDIR | 0775);
  cr_assert_geq(fd, 0, "mkdir /n/a: %s", strerror(-fd));
  ns_close(fd);
  fd = ns_create("/n/a/b", NS_OREAD, NS_DMDIR | 0775);
  cr_assert_geq(fd, 0);
  ns_close(fd);
  put("/n/a/x", "hello, disk\n", 12);
  put("/n/a/b/y", "deeper\n", 7);
  put("/n/a/b/gone", "soon removed", 12);
  cr_assert_eq(ns_remove("/n/a/b/gone"), 0);
  put("/n/big", big, BIG);
  put("/n/old", "renamed and cut", 15);
  ns_dir d;
  ns_dir_keep(&d);
  snprintf(d.name, sizeof d.name, "new");
  d.length = 7;
  cr_assert_eq(ns_wstat("/n/old", &d), 0);
}

static void expect_tree(void) {
  ns_dir d;
  expect("/n/a/x", "hello, disk\n", 12);
  expect("/n/a/b/y", "deeper\n", 7);
  expect("/n/big", big, BIG);
  expect("/n/new", "renamed", 7);
  cr_assert_eq(ns_stat("/n/a/b/gone", &d), -ENOENT);
  cr_assert_eq(ns_stat("/n/old", &d), -ENOENT);
  cr_assert_eq(ns_stat("/n/big", &d), 0);
  cr_assert_eq(d.length, BIG);
  cr_assert_eq(ns_stat("/n/a/b", &d), 0);
  cr_assert(d.mode & NS_DMDIR);
  holds("/n", "a big new ");
  holds("/n/a", "x b ");
  holds("/n/a/b", "y ");
}

static uint32_t restarts(const char *svc) {
  const struct uk_kdata *kd;
  cr_assert_eq(mach_kdata(&m, &kd, NULL), 0);
  int s = kern_svc_lookup(kd, svc);
  cr_assert_geq(s, 0);
  uint32_t n = kd->svc[s].restarts;
  mach_kdata_unmap(kd);
  return n;
}

/* diskfs killed with a restart policy comes back over the same device:
 * the tree is there, and a file open through the kernel's fid (kept in
 * diskfs's state ICA) reads on. */
Test(diskfs, a_tree_on_the_device_survives_a_restart, .timeout = 300) {
  boot("t-dfs-restart");
  put("/tmp/ctl", "", 0);
  int proc = start_diskfs("diskfs", true);
  mount_srv("diskfs", "/n");
  make_tree();
  int fd = ns_open("/n/a/x", NS_OREAD);
  cr_assert_geq(fd, 0);
  cr_assert_eq(mach_kill(&m, proc, SIGKILL), 0, "kill: %s", m.error);
  for (int i = 0; i < 2000 && restarts("diskfs") == 0; i++)
    ap_sleep(10000000);
  cr_assert_geq(restarts("diskfs"), 1, "diskfs did not restart");
  expect_tree();
  expect_fd(fd, "/n/a/x (open across the restart)", "hello, disk\n", 12);
  cr_assert_eq(ns_close(fd), 0);
  expect("/tmp/ctl", "sync", 4); /* the barriers went to the control file */
  h_halt_clean(&m);
}

/* A second diskfs started on the device after the first ended mounts the
 * file system the first left (the backup OS after a failover). */
Test(diskfs, a_second_server_finds_what_the_first_left, .timeout = 300) {
  boot("t-dfs-second");
  int proc = start_diskfs("d1", false);
  mount_srv("d1", "/n");
  make_tree();
  cr_assert_eq(ns_unmount(NULL, "/n"), 0);
  cr_assert_eq(mach_kill(&m, proc, SIGKILL), 0, "kill: %s", m.error);
  start_diskfs("d2", false);
  mount_srv("d2", "/n");
  expect_tree();
  put("/n/a/more", "and on", 6);
  expect("/n/a/more", "and on", 6);
  h_halt_clean(&m);
}

/* A device whose superblock is damaged is refused: the server exits
 * with the reason on stderr, it does not serve a corrupt tree. */
Test(diskfs, a_corrupt_device_is_refused, .timeout = 300) {
  char sb[4096] = "UKDISKFS";
  boot("t-dfs-bad");
  sb[8] = 99; /* version 99 */
  int fd = ns_open("/tmp/disk", NS_OWRITE);
  cr_assert_geq(fd, 0);
  cr_assert_eq(ns_pwrite(fd, sb, sizeof sb, 0), (long)sizeof sb);
  cr_assert_eq(ns_close(fd), 0);
  char *args[] = {"/n/disk", "4M", "ramfs"};
  int64_t wid = h_spawn(&m, "diskfs", args, 3, "diskfs", NULL);
  cr_assert_eq(h_wait(&m, wid), 1, "diskfs served a corrupt device");
  h_halt_clean(&m);
}

/* Plan 9's rules as memfs keeps them, over the device: a name is made
 * once, a full directory stays, a wstat is all or nothing, DMEXCL is one
 * open at a time, create masks by the directory's permissions. */
Test(diskfs, plan9_semantics_hold_over_the_device, .timeout = 300) {
  ns_dir d;
  boot("t-dfs-rules");
  start_diskfs("diskfs", false);
  mount_srv("diskfs", "/n");
  int fd = ns_create("/n/priv", NS_OREAD, NS_DMDIR | 0700);
  cr_assert_geq(fd, 0);
  ns_close(fd);
  put("/n/priv/f", "x", 1);
  cr_assert_eq(ns_stat("/n/priv/f", &d), 0);
  cr_assert_eq(d.mode & 0777, 0600, "0644 masked by the directory's 0700");
  cr_assert_lt(ns_create("/n/priv/f", NS_OWRITE, 0644), 0, "made twice");
  cr_assert_lt(ns_remove("/n/priv"), 0, "a directory with a file went");
  put("/n/priv/g", "gg", 2);
  ns_dir_keep(&d);
  snprintf(d.name, sizeof d.name, "g");
  d.length = 0;
  cr_assert_lt(ns_wstat("/n/priv/f", &d), 0, "renamed onto g");
  expect("/n/priv/f", "x", 1); /* and not truncated either */
  holds("/n/priv", "f g ");
  fd = ns_create("/n/excl", NS_OWRITE, 0x20000000u | 0644); /* DMEXCL */
  cr_assert_geq(fd, 0);
  cr_assert_lt(ns_open("/n/excl", NS_OREAD), 0, "a second open of DMEXCL");
  cr_assert_eq(ns_close(fd), 0);
  fd = ns_open("/n/excl", NS_OREAD);
  cr_assert_geq(fd, 0, "DMEXCL free again: %s", strerror(-fd));
  cr_assert_eq(ns_close(fd), 0);
  cr_assert_eq(ns_remove("/n/priv/f"), 0);
  cr_assert_eq(ns_remove("/n/priv/g"), 0);
  cr_assert_eq(ns_remove("/n/priv"), 0);
  holds("/n", "excl ");
  /* the largest file, 4,259,840 bytes (servers/diskfs_layout.h) */
  fd = ns_open("/n/excl", NS_OWRITE);
  cr_assert_geq(fd, 0);
  cr_assert_eq(ns_pwrite(fd, "z", 1, 4259839), 1);
  cr_assert_lt(ns_pwrite(fd, "z", 1, 4259840), 0, "a byte past the largest");
  cr_assert_eq(ns_close(fd), 0);
  cr_assert_eq(ns_stat("/n/excl", &d), 0);
  cr_assert_eq(d.length, 4259840);
  h_halt_clean(&m);
}

/* Replaced at extension time (seed 000 §5.2), diskfs's successor takes
 * the fids from the state and the tree from the device: an open file
 * reads on.  A successor given another device refuses the state, the
 * replacement fails, and the old server serves on. */
Test(diskfs, a_replacement_keeps_open_files_and_refuses_another_device,
     .timeout = 300) {
  char *same[] = {"/n/disk", "4M", "ramfs"};
  char *other[] = {"/n/disk2", "4M", "ramfs"};
  struct mach_prog np = {.program = "diskfs", .name = "diskfs.new"};
  int proc;
  boot("t-dfs-replace");
  start_diskfs("diskfs", false);
  mount_srv("diskfs", "/n");
  put("/n/f", "kept through a replacement", 26);
  int fd = ns_open("/n/f", NS_OREAD);
  cr_assert_geq(fd, 0);
  np.args = other;
  np.nargs = 3;
  int64_t id = mach_replace_send(&m, "diskfs", &np, 10000);
  cr_assert_geq(id, 0, "%s", m.error);
  cr_assert_lt(mach_replace_reply(&m, (uint64_t)id, &proc), 0,
               "a successor on another device took the state");
  expect("/n/f", "kept through a replacement", 26);
  np.args = same;
  id = mach_replace_send(&m, "diskfs", &np, 10000);
  cr_assert_geq(id, 0, "%s", m.error);
  cr_assert_eq(mach_replace_reply(&m, (uint64_t)id, &proc), 0, "replace: %s",
               m.error);
  expect_fd(fd, "/n/f (open across the replacement)",
            "kept through a replacement", 26);
  cr_assert_eq(ns_close(fd), 0);
  put("/n/g", "after", 5);
  expect("/n/g", "after", 5);
  h_halt_clean(&m);
}
