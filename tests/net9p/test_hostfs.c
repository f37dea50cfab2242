/*
 * test_hostfs.c: a host directory served through the ops table
 * (net9p/hostfs.c), driven over the ICA transport with plain buffers:
 * files made through 9P are the host's files and the other way round;
 * no walk leaves the served directory ('..' at its top, symbolic links
 * to outside, to a file outside, inside a subdirectory); directory reads
 * in small pieces list each entry once and no link; clones own their
 * handle; Twstat renames but never onto an existing name; and an image
 * of the handles restores an open fid in a new server.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <uksim/9p.h>

static struct {
  char top[64], dir[96];
  p9_hostfs *fs;
  p9_srv *srv;
  p9_icat *t;
  uint8_t ctl[8192];
  p9_fcall rx;
} E;

static void sh(const char *fmt, const char *arg) {
  char cmd[512];
  snprintf(cmd, sizeof(cmd), fmt, arg, arg, arg);
  cr_assert_eq(system(cmd), 0, "%s", cmd);
}

static void serve(p9_hostfs *fs) {
  int err;
  E.fs = fs;
  E.srv = p9_srv_new(p9_hostfs_ops(), E.fs, NULL, &err);
  cr_assert_not_null(E.srv);
  E.t = p9_icat_new(E.srv, NULL, &err);
  cr_assert_not_null(E.t);
}

static void start(void) {
  int err;
  strcpy(E.top, "/tmp/hostfs-test-XXXXXX");
  cr_assert_not_null(mkdtemp(E.top));
  snprintf(E.dir, sizeof(E.dir), "%s/served", E.top);
  sh("mkdir -p %s/served/sub %s/outside && echo secret > %s/outside/secret",
     E.top);
  serve(p9_hostfs_new(E.dir, &err));
}

static void stop(void) {
  p9_icat_free(E.t);
  p9_srv_free(E.srv);
  p9_hostfs_free(E.fs);
  sh("rm -rf %s", E.top);
}

/* The status of one message; its answer decoded in E.rx. */
static int call(p9_fcall *tx) {
  long n = p9_encode(tx, P9_2000, E.ctl, sizeof(E.ctl));
  int st;
  cr_assert_gt(n, 0);
  st = p9_icat_call(E.t, E.ctl, sizeof(E.ctl), NULL, 0);
  if (st == 0)
    cr_assert_eq(p9_decode(E.ctl, E.ctl[0] | E.ctl[1] << 8, P9_2000, &E.rx), 0);
  return st;
}

/* 0, or the errno of the Rerror. */
static int rpc(p9_fcall *tx) {
  cr_assert_eq(call(tx), 0);
  return E.rx.type == P9_RERROR ? -p9_errno(E.rx.ename) : 0;
}

static void ok(p9_fcall *tx) {
  int r = rpc(tx);
  cr_assert_eq(r, 0, "%s: %.*s", p9_msgname(tx->type), E.rx.ename.len,
               E.rx.ename.s);
}

static void attach(void) {
  p9_fcall v = {.type = P9_TVERSION,
                .tag = P9_NOTAG,
                .msize = 8192,
                .version = p9_str_c("9P2000")};
  p9_fcall a = {.type = P9_TATTACH,
                .fid = 0,
                .afid = P9_NOFID,
                .uname = p9_str_c("u"),
                .aname = p9_str_c("")};
  ok(&v);
  ok(&a);
}

/* Walks fid 0 along "a/b" into newfid; the Rerror's errno or 0 (a
 * partial walk is -ENOENT). */
static int walk(const char *path, uint32_t newfid) {
  p9_fcall w = {.type = P9_TWALK, .fid = 0, .newfid = newfid};
  char buf[256], *save = NULL;
  int r;
  snprintf(buf, sizeof(buf), "%s", path);
  for (char *e = strtok_r(buf, "/", &save); e; e = strtok_r(NULL, "/", &save))
    w.wname[w.nwname++] = p9_str_c(e);
  if ((r = rpc(&w)) < 0)
    return r;
  return E.rx.nwqid == w.nwname ? 0 : -ENOENT; /* partial: no newfid */
}

static void clunk(uint32_t fid) {
  p9_fcall c = {.type = P9_TCLUNK, .fid = fid};
  ok(&c);
}

static void host_file(const char *name, const char *text) {
  char p[256];
  snprintf(p, sizeof(p), "%s/%s", E.dir, name);
  FILE *f = fopen(p, "w");
  cr_assert_not_null(f);
  fputs(text, f);
  fclose(f);
}

TestSuite(hostfs, .init = start, .fini = stop, .timeout = 30);

Test(hostfs, files_made_through_9p_are_the_hosts) {
  char p[256], got[64] = {0};
  attach();
  cr_assert_eq(walk("sub", 1), 0);
  p9_fcall c = {.type = P9_TCREATE,
                .fid = 1,
                .name = p9_str_c("new"),
                .perm = 0640,
                .mode = P9_ORDWR};
  ok(&c);
  p9_fcall w = {.type = P9_TWRITE,
                .fid = 1,
                .offset = 0,
                .count = 5,
                .data = (const uint8_t *)"hello"};
  ok(&w);
  cr_assert_eq(E.rx.count, 5);
  snprintf(p, sizeof(p), "%s/sub/new", E.dir);
  int fd = open(p, O_RDONLY);
  cr_assert_geq(fd, 0);
  cr_assert_eq(read(fd, got, sizeof(got)), 5);
  close(fd);
  cr_assert_str_eq(got, "hello");
  struct stat st;
  stat(p, &st);
  cr_assert_eq(st.st_mode & 0777, 0640);
  host_file("fromhost", "abcdef");
  cr_assert_eq(walk("fromhost", 2), 0);
  p9_fcall o = {.type = P9_TOPEN, .fid = 2, .mode = P9_OREAD};
  ok(&o);
  p9_fcall r = {.type = P9_TREAD, .fid = 2, .offset = 2, .count = 100};
  ok(&r);
  cr_assert_eq(E.rx.count, 4);
  cr_assert_arr_eq(E.rx.data, "cdef", 4);
  p9_fcall s = {.type = P9_TSTAT, .fid = 2};
  ok(&s);
  cr_assert(p9_str_eq(E.rx.stat.name, "fromhost"));
  cr_assert_eq(E.rx.stat.length, 6);
  p9_fcall rm = {.type = P9_TREMOVE, .fid = 1};
  ok(&rm);
  cr_assert_eq(access(p, F_OK), -1, "removed on the host");
}

Test(hostfs, dotdot_stops_at_the_served_directory) {
  p9_qid root;
  attach();
  p9_fcall s = {.type = P9_TSTAT, .fid = 0};
  ok(&s);
  root = E.rx.stat.qid;
  cr_assert_eq(walk("..", 1), 0);
  p9_fcall s1 = {.type = P9_TSTAT, .fid = 1};
  ok(&s1);
  cr_assert_eq(E.rx.stat.qid.path, root.path, "'..' of the top is the top");
  cr_assert_eq(walk("../outside/secret", 2), -ENOENT);
  cr_assert_eq(walk("sub/../../outside", 3), -ENOENT);
  cr_assert_eq(walk("sub/..", 4), 0);
}

Test(hostfs, symbolic_links_are_never_followed_nor_listed) {
  char p[256];
  attach();
  snprintf(p, sizeof(p), "%s/outside", E.top);
  sh("ln -s ../outside %s/served/out", E.top);
  sh("ln -s /etc/passwd %s/served/pw", E.top);
  sh("ln -s ../.. %s/served/sub/up", E.top);
  sh("ln -s sub %s/served/insub", E.top);
  cr_assert_eq(walk("out", 1), -ENOENT);
  cr_assert_eq(walk("out/secret", 1), -ENOENT);
  cr_assert_eq(walk("pw", 1), -ENOENT);
  cr_assert_eq(walk("sub/up", 1), -ENOENT);
  cr_assert_eq(walk("sub/up/outside", 1), -ENOENT);
  cr_assert_eq(walk("insub", 1), -ENOENT, "even one that stays inside");
  host_file("sub/x", "x");
  cr_assert_eq(walk("insub/x", 1), -ENOENT, "nor through one on the way");
  /* Creating through a link fails too: the walk to it does. */
  p9_fcall o = {.type = P9_TOPEN, .fid = 0, .mode = P9_OREAD};
  ok(&o);
  p9_fcall r = {.type = P9_TREAD, .fid = 0, .count = 8000};
  ok(&r);
  for (uint32_t at = 0; at < E.rx.count;) {
    p9_stat st;
    long k = p9_stat_decode(E.rx.data + at, E.rx.count - at, &st);
    cr_assert_gt(k, 0);
    cr_assert(p9_str_eq(st.name, "sub"), "listed: %.*s", st.name.len,
              st.name.s);
    at += (uint32_t)k;
  }
  (void)p;
}

/* A directory on a fid's path swapped for a link after the walk (a race
 * with someone on the host): opening the fid follows no link, whether it
 * leads out or stays inside. */
Test(hostfs, a_path_swapped_for_a_link_after_the_walk_is_not_followed) {
  attach();
  sh("mkdir -p %s/served/other && echo in > %s/served/other/x && echo out > "
     "%s/outside/x",
     E.top);
  host_file("sub/x", "x");
  cr_assert_eq(walk("sub/x", 1), 0);
  cr_assert_eq(walk("sub/x", 2), 0);
  sh("mv %s/served/sub %s/served/sub.old && ln -s ../outside %s/served/sub",
     E.top);
  p9_fcall o = {.type = P9_TOPEN, .fid = 1, .mode = P9_OREAD};
  cr_assert_neq(rpc(&o), 0, "opened outside/x through the link");
  sh("rm %s/served/sub && ln -s other %s/served/sub && true %s", E.top);
  o.fid = 2;
  cr_assert_neq(rpc(&o), 0, "opened other/x through the link");
}

Test(hostfs, directory_reads_in_small_pieces_list_each_entry_once) {
  char name[32];
  int seen[40] = {0}, n = 0;
  attach();
  for (int i = 0; i < 40; i++) {
    snprintf(name, sizeof(name), "file%02d", i);
    host_file(name, "x");
  }
  cr_assert_eq(walk("", 1), 0);
  p9_fcall o = {.type = P9_TOPEN, .fid = 1, .mode = P9_OREAD};
  ok(&o);
  for (uint64_t off = 0;;) {
    p9_fcall r = {.type = P9_TREAD, .fid = 1, .offset = off, .count = 150};
    ok(&r);
    if (E.rx.count == 0)
      break;
    for (uint32_t at = 0; at < E.rx.count;) {
      p9_stat st;
      int k;
      long len = p9_stat_decode(E.rx.data + at, E.rx.count - at, &st);
      cr_assert_gt(len, 0);
      if (sscanf(st.name.s, "file%2d", &k) == 1)
        seen[k]++;
      n++;
      at += (uint32_t)len;
    }
    off += E.rx.count;
  }
  cr_assert_eq(n, 41, "40 files and sub");
  for (int i = 0; i < 40; i++)
    cr_assert_eq(seen[i], 1, "file%02d seen %d times", i, seen[i]);
}

Test(hostfs, a_clone_owns_its_handle) {
  attach();
  cr_assert_eq(walk("", 5), 0); /* a walk of no names */
  clunk(0);
  p9_fcall s = {.type = P9_TSTAT, .fid = 5};
  ok(&s);
  cr_assert(p9_str_eq(E.rx.stat.name, "/"));
}

Test(hostfs, wstat_renames_but_not_onto_an_existing_name) {
  attach();
  host_file("a", "12345");
  host_file("b", "b");
  cr_assert_eq(walk("a", 1), 0);
  p9_fcall w = {.type = P9_TWSTAT, .fid = 1};
  p9_stat_null(&w.stat);
  w.stat.name = p9_str_c("b");
  w.stat.length = 2;
  cr_assert_eq(rpc(&w), -EEXIST);
  char p[256];
  struct stat st;
  snprintf(p, sizeof(p), "%s/a", E.dir);
  cr_assert_eq(stat(p, &st), 0);
  cr_assert_eq(st.st_size, 5, "nothing of a refused wstat happened");
  w.stat.name = p9_str_c("c");
  ok(&w);
  snprintf(p, sizeof(p), "%s/c", E.dir);
  cr_assert_eq(stat(p, &st), 0);
  cr_assert_eq(st.st_size, 2);
  p9_fcall s = {.type = P9_TSTAT, .fid = 1};
  ok(&s);
  cr_assert(p9_str_eq(E.rx.stat.name, "c"), "the fid follows its file");
}

Test(hostfs, an_image_restores_an_open_fid) {
  p9_hostfs_image img;
  p9_session ses;
  int err;
  attach();
  host_file("f", "0123456789");
  cr_assert_eq(walk("f", 1), 0);
  p9_fcall o = {.type = P9_TOPEN, .fid = 1, .mode = P9_OREAD};
  ok(&o);
  p9_hostfs_image_get(E.fs, &img);
  p9_hostfs *fs = p9_hostfs_load(E.dir, &img, &err);
  cr_assert_not_null(fs);
  img.handle[0].path = "../x";
  cr_assert_null(p9_hostfs_load(E.dir, &img, &err), "a path with '..'");
  p9_hostfs_image_free(&img);
  p9_srv_session_get(p9_icat_transport(E.t), &ses);
  p9_icat_free(E.t);
  p9_srv_free(E.srv);
  p9_hostfs_free(E.fs);
  serve(fs);
  cr_assert_eq(p9_srv_session_set(p9_icat_transport(E.t), &ses), 0);
  free(ses.fid);
  p9_fcall r = {.type = P9_TREAD, .fid = 1, .offset = 4, .count = 3};
  ok(&r);
  cr_assert_arr_eq(E.rx.data, "456", 3);
}
