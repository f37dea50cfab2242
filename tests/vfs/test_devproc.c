/* Unit tests for the process servant #p (vfs/devproc.c).
 *
 * Invariants under test: #p lists one directory per live process, named
 * by pid, each with status ns ctl note; status is the process's line;
 * ns gives the namespace as the ns(1) lines that rebuild it (binds before
 * and after a mount point's own directory, a replacing bind with create,
 * a server mounted from its /srv entry, quoting, the cwd), the same read
 * whole or in pieces; ctl "kill" and any note go to the host's kill with
 * their text, anything else is refused and kills nobody; a process that
 * exits leaves its chans reaching nothing.
 */
#include "vfs_fixture.h"
#include "vfs_servant.h"

static uint32_t p0, p1;

static void init(void) {
  kd_new();
  p0 = proc_new("sh", 100);
  p1 = proc_new("ramfs", 200);
  kd->proc[p1].kind = UK_PROC_SERVER;
  kd->proc[p1].state = UK_PROC_WAITING;
  kd->proc[p1].calls = 7;
  host_install(p0);
}

TestSuite(vfs_devproc, .init = init, .fini = servant_fini);

static void read_path(uint32_t p, const char *path, char *buf, size_t len) {
  uint32_t c = open_in(p, path, VFS_OREAD);
  read_all(c, buf, len);
  vfs_chan_unref(kd, c);
}

Test(vfs_devproc, a_directory_per_live_process, .timeout = 10) {
  int gone = kern_proc_alloc(kd, "gone", 300);
  kd->proc[gone].state = UK_PROC_EXITED;
  struct vfs_dir e[4], st;
  cr_assert_eq(list_in(p0, "#p", e, 4), 2);
  cr_assert_str_eq(e[0].name, "100");
  cr_assert_str_eq(e[1].name, "200");
  cr_assert_eq(e[0].mode, VFS_DMDIR | 0555u);
  cr_assert(!exists(p0, "#p/300"), "exited");
  static const char *const want[] = {"status", "ns", "ctl", "note"};
  cr_assert_eq(list_in(p0, "#p/200", e, 4), 4);
  for (int i = 0; i < 4; i++)
    cr_assert_str_eq(e[i].name, want[i]);
  uint32_t up = walk_to(p0, "#p/200/..");
  cr_assert_eq(kd->vfs.chan[UK_VFS_INDEX(up)].qid.path, 0, "back to #p");
  vfs_chan_unref(kd, up);
  stat_in(p0, "#p/200/ctl", &st);
  cr_assert_str_eq(st.name, "ctl");
  cr_assert_eq(st.mode, 0200u);
}

Test(vfs_devproc, status_is_one_line, .timeout = 10) {
  char buf[256], want[256];
  read_path(p0, "#p/200/status", buf, sizeof buf);
  snprintf(want, sizeof want, "%-27s %-27s %-27s %11d %11d %11d\n", "ramfs",
           "server", "wait", 200, 7, 0);
  cr_assert_str_eq(buf, want);
  read_path(p0, "#p/100/status", buf, sizeof buf);
  cr_assert(strncmp(buf, "sh ", 3) == 0 && strstr(buf, " ap ") &&
                strstr(buf, " run "),
            "%s", buf);
}

/* p0's namespace: a union around /dev, a replacing bind with create, a
 * union before /srv, a mounted server posted as #s/ram, cwd /dev. */
static void build_ns(void) {
  uint32_t ns = kd->vfs.vproc[p0].ns;
  int svc = kern_svc_add(kd, "ramfs");
  uint32_t e = create_in(p0, "#s", "ram", VFS_OWRITE);
  cr_assert_eq(write_str(e, "ramfs"), 5);
  vfs_chan_unref(kd, e);
  bind_in(p0, "#c", "/dev", VFS_MAFTER);
  bind_in(p0, "#k", "/dev", VFS_MBEFORE);
  bind_in(p0, "#e", "/env", VFS_MREPL | VFS_MCREATE);
  bind_in(p0, "#s", "/srv", VFS_MBEFORE);
  uint32_t m = mnt_chan((uint32_t)svc, 0), n = walk_to(p0, "/n");
  cr_assert_eq(vfs_mount(kd, ns, m, n, VFS_MAFTER | VFS_MCREATE), 0);
  vfs_chan_unref(kd, m);
  vfs_chan_unref(kd, n);
  uint32_t dev = walk_to(p0, "/dev");
  cr_assert_eq(vfs_chdir(kd, p0, dev), 0);
  vfs_chan_unref(kd, dev);
}

static const char ns_want[] = "bind -b '#k' /dev\n"
                              "bind -a '#c' /dev\n"
                              "bind -c '#e' /env\n"
                              "bind -b '#s' /srv\n"
                              "mount -ac '#s/ram' /n\n"
                              "cd /dev\n";

Test(vfs_devproc, ns_gives_the_lines_that_rebuild_it, .timeout = 10) {
  build_ns();
  char buf[1024];
  read_path(p1, "#p/100/ns", buf, sizeof buf);
  cr_assert_str_eq(buf, ns_want);
  read_path(p0, "#p/200/ns", buf, sizeof buf);
  cr_assert_str_eq(buf, "cd /\n", "p1's namespace is its own");
}

Test(vfs_devproc, ns_reads_the_same_in_pieces, .timeout = 10) {
  build_ns();
  uint32_t c = open_in(p0, "#p/100/ns", VFS_OREAD);
  char buf[1024];
  size_t got = 0;
  for (long n; (n = vfs_dev_read(kd, c, buf + got, 5, got)) > 0;)
    got += (size_t)n;
  buf[got] = '\0';
  cr_assert_str_eq(buf, ns_want);
  cr_assert_eq(vfs_dev_read(kd, c, buf, 10, 10000), 0, "past the end");
  vfs_chan_unref(kd, c);
}

Test(vfs_devproc, ns_quotes_names_rc_would_split, .timeout = 10) {
  uint32_t ns = kd->vfs.vproc[p0].ns;
  uint32_t a = walk_to(p0, "#c"), b = walk_to(p0, "/tmp");
  strcpy(kd->vfs.chan[UK_VFS_INDEX(a)].path, "it's here");
  cr_assert_geq(vfs_bind(kd, ns, a, b, VFS_MREPL), 0);
  vfs_chan_unref(kd, a);
  vfs_chan_unref(kd, b);
  char buf[256];
  read_path(p0, "#p/100/ns", buf, sizeof buf);
  cr_assert_str_eq(buf, "bind 'it''s here' /tmp\ncd /\n");
}

Test(vfs_devproc, ctl_kill_and_notes_go_to_the_host, .timeout = 10) {
  uint32_t ctl = open_in(p0, "#p/200/ctl", VFS_OWRITE);
  uint32_t note = open_in(p0, "#p/200/note", VFS_OWRITE);
  cr_assert_eq(write_str(ctl, "kill\n"), 5);
  cr_assert_eq(fh.kills, 1);
  cr_assert_eq(fh.killed, p1);
  cr_assert_str_eq(fh.note, "kill");
  cr_assert_eq(write_str(note, "interrupt"), 9);
  cr_assert_eq(fh.kills, 2);
  cr_assert_str_eq(fh.note, "interrupt", "every note kills, the note says why");
  static char longnote[200];
  memset(longnote, 'n', sizeof longnote - 1);
  snap_take();
  cr_assert_eq(write_str(ctl, "stop"), -EINVAL);
  cr_assert_eq(write_str(ctl, ""), -EINVAL);
  cr_assert_eq(write_str(note, ""), -EINVAL);
  cr_assert_eq(write_str(note, longnote), -EINVAL);
  cr_assert_eq(vfs_dev_write(kd, note, "a\0b", 3, 0), -EINVAL);
  snap_same();
  cr_assert_eq(fh.kills, 2, "refused writes kill nobody");
  fh.kill_result = -EPERM;
  cr_assert_eq(write_str(ctl, "kill"), -EPERM, "the host's answer");
  vfs_host_set(NULL);
  cr_assert_eq(write_str(ctl, "kill"), -ENOSYS, "no host");
  vfs_chan_unref(kd, ctl);
  vfs_chan_unref(kd, note);
}

Test(vfs_devproc, reads_and_writes_that_make_no_sense, .timeout = 10) {
  uint32_t ctl = open_in(p0, "#p/200/ctl", VFS_ORDWR);
  uint32_t st = open_in(p0, "#p/200/status", VFS_ORDWR);
  char buf[8];
  snap_take();
  cr_assert_eq(vfs_dev_read(kd, ctl, buf, sizeof buf, 0), -EPERM);
  cr_assert_eq(write_str(st, "kill"), -EPERM);
  snap_same();
  vfs_chan_unref(kd, ctl);
  vfs_chan_unref(kd, st);
}

Test(vfs_devproc, an_exited_process_reaches_nothing, .timeout = 10) {
  uint32_t st = open_in(p0, "#p/200/status", VFS_OREAD);
  uint32_t ctl = open_in(p0, "#p/200/ctl", VFS_OWRITE);
  uint32_t dir = walk_to(p0, "#p/200");
  kd->proc[p1].state = UK_PROC_EXITED;
  char buf[8];
  struct vfs_dir d;
  snap_take();
  cr_assert_eq(vfs_dev_read(kd, st, buf, sizeof buf, 0), -ESRCH);
  cr_assert_eq(write_str(ctl, "kill"), -ESRCH);
  cr_assert_eq(vfs_dev_stat(kd, dir, &d), -ENOENT);
  snap_same();
  cr_assert_eq(fh.kills, 0);
  kd->proc[p1].state = UK_PROC_FREE;
  int again = kern_proc_alloc(kd, "new", 200); /* same slot and pid */
  cr_assert_eq(again, (int)p1);
  cr_assert_eq(vfs_dev_read(kd, st, buf, sizeof buf, 0), -ESRCH,
               "not the slot's next process");
  vfs_chan_unref(kd, st);
  vfs_chan_unref(kd, ctl);
  vfs_chan_unref(kd, dir);
}

Test(vfs_devproc, a_process_without_a_namespace_has_an_empty_ns,
     .timeout = 10) {
  int bare = kern_proc_alloc(kd, "bare", 400);
  cr_assert_geq(bare, 0);
  char buf[64] = "x";
  read_path(p0, "#p/400/ns", buf, sizeof buf);
  cr_assert_str_eq(buf, "");
  read_path(p0, "#p/400/status", buf, sizeof buf);
  cr_assert(strncmp(buf, "bare ", 5) == 0, "%s", buf);
}
