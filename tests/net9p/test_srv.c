/*
 * test_srv.c: server semantics, through a capturing transport: version and
 * dialects, walk partial failure, open modes, ORCLOSE, OTRUNC, directory
 * reads at offsets, flush of a pending request, tags, fid reuse, limits,
 * out-of-order and malformed messages, shared-key authentication, names
 * that are not UTF-8, and the connection and frame limits.
 */
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>

#include <uksim/9p.h>

#include "harness.h"

static struct {
  p9_memfs *fs;
  p9_srv *srv;
  cap c;
  struct p9_srv_ops ops;
  p9_req *held; /* a request the slow read op has not answered */
  int destroyed;
} E;

static p9_fcall rx;
static const uint8_t key[P9_KEYLEN] = "0123456789abcdef0123456789abcde";

/* A read op that never answers on its own: for flush tests. */
static void slow_read(p9_req *r) {
  E.held = r;
}

static void slow_flush(p9_req *r) {
  p9_req *old = r->oldreq;
  cr_assert_eq(old, E.held);
  E.held = NULL;
  p9_respond(old, -EINTR);
}

static void count_destroy(p9_srv *srv, p9_fid *f) {
  E.destroyed++;
  p9_memfs_ops()->destroyfid(srv, f);
}

static void start(const p9_srv_config *cfg) {
  int err;
  E.fs = p9_memfs_new();
  E.ops = *p9_memfs_ops();
  E.ops.destroyfid = count_destroy;
  E.srv = p9_srv_new(&E.ops, E.fs, cfg, &err);
  cr_assert_not_null(E.srv);
  cap_init(&E.c);
  p9_srv_serve(E.srv, &E.c.t);
}

static void setup(void) {
  start(NULL);
}

/* A test-level .init runs after the suite's setup, and the suite's
 * teardown still runs once at the end. */
static FILE *keyed_log;

static void teardown(void) {
  cr_assert_null(E.held, "a test left a request unanswered");
  cap_close(&E.c.t);
  cr_assert_eq(p9_srv_nconns(E.srv), 0, "connection not released");
  cap_drop(&E.c);
  p9_srv_free(E.srv);
  p9_memfs_free(E.fs);
  if (keyed_log)
    fclose(keyed_log);
  keyed_log = NULL;
}

/* Sends tx; expects exactly one answer, decoded into rx. */
static int rpc(p9_fcall tx) {
  cap_drop(&E.c);
  cap_put(&E.c, &tx);
  cr_assert_eq(E.c.nout, 1, "%s got %d answers", p9_msgname(tx.type), E.c.nout);
  cr_assert_eq(cap_get(&E.c, 0, &rx), 0);
  cr_assert_eq(rx.tag, tx.tag);
  if (rx.type == P9_RERROR || rx.type == P9_RLERROR)
    return -1;
  cr_assert_eq(rx.type, tx.type + 1);
  return 0;
}

static void expect_error(p9_fcall tx, const char *ename) {
  cr_assert_eq(rpc(tx), -1, "%s succeeded", p9_msgname(tx.type));
  if (rx.type == P9_RERROR)
    cr_assert(p9_str_eq(rx.ename, ename), "got '%.*s', want '%s'",
              (int)rx.ename.len, rx.ename.s, ename);
  else
    cr_assert_eq(rx.ecode, (uint32_t)p9_errno(p9_str_c(ename)));
}

static void version(const char *v) {
  E.c.d = strcmp(v, "9P2000.L") == 0 ? P9_2000L : P9_2000;
  cr_assert_eq(rpc((p9_fcall){.type = P9_TVERSION,
                              .tag = P9_NOTAG,
                              .msize = 65536,
                              .version = p9_str_c(v)}),
               0);
}

static void attach(uint32_t fid) {
  cr_assert_eq(rpc((p9_fcall){.type = P9_TATTACH,
                              .tag = 1,
                              .fid = fid,
                              .afid = P9_NOFID,
                              .uname = p9_str_c("glenda")}),
               0);
}

static void session(void) {
  version("9P2000");
  attach(0);
}

static int walk(uint32_t fid, uint32_t newfid, const char *a, const char *b) {
  p9_fcall tx = {.type = P9_TWALK, .tag = 2, .fid = fid, .newfid = newfid};
  if (a)
    tx.wname[tx.nwname++] = p9_str_c(a);
  if (b)
    tx.wname[tx.nwname++] = p9_str_c(b);
  return rpc(tx);
}

static int topen(uint32_t fid, uint8_t mode) {
  return rpc((p9_fcall){.type = P9_TOPEN, .tag = 3, .fid = fid, .mode = mode});
}

static int clunk(uint32_t fid) {
  return rpc((p9_fcall){.type = P9_TCLUNK, .tag = 4, .fid = fid});
}

TestSuite(srv, .init = setup, .fini = teardown, .timeout = 10);

Test(srv, version_negotiates_dialect_and_msize) {
  cr_assert_eq(rpc((p9_fcall){.type = P9_TVERSION,
                              .tag = P9_NOTAG,
                              .msize = 1u << 30,
                              .version = p9_str_c("9P2000.u")}),
               0);
  cr_assert(p9_str_eq(rx.version, "9P2000"));
  cr_assert_eq(rx.msize, P9_DEFMSIZE);
  rpc((p9_fcall){.type = P9_TVERSION,
                 .tag = P9_NOTAG,
                 .msize = 8192,
                 .version = p9_str_c("9P1999")});
  cr_assert(p9_str_eq(rx.version, "unknown"));
  expect_error((p9_fcall){.type = P9_TVERSION,
                          .tag = P9_NOTAG,
                          .msize = 100,
                          .version = p9_str_c("9P2000")},
               "msize too small");
  version("9P2000.L");
  cr_assert(p9_str_eq(rx.version, "9P2000.L"));
}

Test(srv, messages_before_version_are_refused) {
  expect_error((p9_fcall){.type = P9_TATTACH, .tag = 1, .afid = P9_NOFID},
               "version not negotiated");
  session();
  /* A client sending an R-message or an unknown type gets Rerror. */
  expect_error((p9_fcall){.type = P9_RCLUNK, .tag = 9}, "unexpected message");
  uint8_t odd[] = {7, 0, 0, 0, 250, 9, 0};
  cap_drop(&E.c);
  cap_raw(&E.c, odd, sizeof(odd));
  cr_assert_eq(cap_get(&E.c, 0, &rx), 0);
  cr_assert(p9_str_eq(rx.ename, "unknown message type"));
  cr_assert_eq(rx.tag, 9);
}

Test(srv, tversion_resets_the_session) {
  session();
  version("9P2000");
  expect_error((p9_fcall){.type = P9_TSTAT, .tag = 1, .fid = 0}, "unknown fid");
  cr_assert_eq(E.destroyed, 1);
}

Test(srv, auth_without_key_says_no_authentication_required) {
  version("9P2000");
  expect_error(
      (p9_fcall){
          .type = P9_TAUTH, .tag = 1, .afid = 5, .uname = p9_str_c("glenda")},
      "no authentication required");
  version("9P2000.L");
  cr_assert_eq(rpc((p9_fcall){.type = P9_TAUTH, .tag = 1, .afid = 5}), -1);
  cr_assert_eq(rx.type, P9_RLERROR);
  cr_assert_eq(rx.ecode, ENOENT); /* what diod's clients expect */
}

Test(srv, stat_of_root_names_it) {
  session();
  cr_assert_eq(rpc((p9_fcall){.type = P9_TSTAT, .tag = 1, .fid = 0}), 0);
  cr_assert(p9_str_eq(rx.stat.name, "/"));
  cr_assert(rx.stat.mode & P9_DMDIR);
  cr_assert(rx.stat.qid.type & P9_QTDIR);
}

Test(srv, walk_partial_failure_returns_the_prefix) {
  p9_memfs_put(E.fs, "a", NULL, (size_t)-1);
  p9_memfs_put(E.fs, "a/b", "x", 1);
  session();
  cr_assert_eq(walk(0, 1, "a", "nope"), 0);
  cr_assert_eq(rx.nwqid, 1);
  cr_assert(rx.wqid[0].type & P9_QTDIR);
  /* newfid was not created by the partial walk */
  expect_error((p9_fcall){.type = P9_TCLUNK, .tag = 4, .fid = 1},
               "unknown fid");
  expect_error((p9_fcall){.type = P9_TWALK,
                          .tag = 2,
                          .fid = 0,
                          .newfid = 1,
                          .nwname = 1,
                          .wname = {p9_str_c("nope")}},
               "file does not exist");
  cr_assert_eq(walk(0, 1, "a", "b"), 0);
  cr_assert_eq(rx.nwqid, 2);
  cr_assert_eq(walk(1, 1, "..", NULL), -1, "walked from a file");
  cr_assert_eq(walk(0, 2, NULL, NULL), 0, "clone");
  cr_assert_eq(rx.nwqid, 0);
  cr_assert_eq(clunk(2), 0);
  cr_assert_eq(walk(0, 0, "a", NULL), 0, "walk in place");
  cr_assert_eq(rpc((p9_fcall){.type = P9_TSTAT, .tag = 1, .fid = 0}), 0);
  cr_assert(p9_str_eq(rx.stat.name, "a"));
}

Test(srv, walk_of_more_than_16_names_is_refused) {
  p9_fcall tx = {
      .type = P9_TWALK, .tag = 2, .fid = 0, .newfid = 1, .nwname = 16};
  uint8_t buf[256];
  long n;
  session();
  for (int i = 0; i < 16; i++)
    tx.wname[i] = p9_str_c("x");
  n = p9_encode(&tx, P9_2000, buf, sizeof(buf));
  buf[15] = 17;
  memcpy(buf + n, "\x01\x00x", 3);
  n += 3;
  buf[0] = (uint8_t)n;
  cap_drop(&E.c);
  cap_raw(&E.c, buf, (size_t)n);
  cr_assert_eq(cap_get(&E.c, 0, &rx), 0);
  cr_assert(p9_str_eq(rx.ename, "too many names in walk"));
}

Test(srv, fid_reuse_is_refused) {
  session();
  expect_error(
      (p9_fcall){.type = P9_TATTACH, .tag = 1, .fid = 0, .afid = P9_NOFID},
      "fid already in use");
  attach(1);
  expect_error((p9_fcall){.type = P9_TWALK, .tag = 2, .fid = 0, .newfid = 1},
               "fid already in use");
  expect_error((p9_fcall){.type = P9_TWALK, .tag = 2, .fid = 7, .newfid = 8},
               "unknown fid");
}

Test(srv, open_modes_are_enforced) {
  p9_memfs_put(E.fs, "f", "hello", 5);
  session();
  walk(0, 1, "f", NULL);
  expect_error((p9_fcall){.type = P9_TREAD, .tag = 5, .fid = 1, .count = 10},
               "fid not open for reading");
  cr_assert_eq(topen(1, P9_OREAD), 0);
  cr_assert_eq(rx.iounit, 65536 - P9_IOHDRSZ);
  expect_error((p9_fcall){.type = P9_TOPEN, .tag = 3, .fid = 1},
               "fid already open");
  expect_error((p9_fcall){.type = P9_TWRITE,
                          .tag = 5,
                          .fid = 1,
                          .count = 1,
                          .data = (const uint8_t *)"x"},
               "fid not open for writing");
  expect_error((p9_fcall){.type = P9_TWALK, .tag = 2, .fid = 1, .newfid = 2},
               "cannot walk an open fid");
  cr_assert_eq(
      rpc((p9_fcall){.type = P9_TREAD, .tag = 5, .fid = 1, .count = 10}), 0);
  cr_assert_eq(rx.count, 5);
  cr_assert_eq(memcmp(rx.data, "hello", 5), 0);
  walk(0, 2, NULL, NULL);
  expect_error(
      (p9_fcall){.type = P9_TOPEN, .tag = 3, .fid = 2, .mode = P9_OWRITE},
      "is a directory");
  expect_error((p9_fcall){.type = P9_TOPEN, .tag = 3, .fid = 2, .mode = 0x80},
               "bad argument");
  walk(0, 3, "f", NULL);
  cr_assert_eq(topen(3, P9_OWRITE), 0);
  expect_error((p9_fcall){.type = P9_TREAD, .tag = 5, .fid = 3, .count = 10},
               "fid not open for reading");
}

Test(srv, otrunc_truncates) {
  p9_memfs_put(E.fs, "f", "hello", 5);
  session();
  walk(0, 1, "f", NULL);
  cr_assert_eq(topen(1, P9_OWRITE | P9_OTRUNC), 0);
  cr_assert_eq(rpc((p9_fcall){.type = P9_TSTAT, .tag = 1, .fid = 1}), 0);
  cr_assert_eq(rx.stat.length, 0);
}

/* Creates name in the root on a new fid, open for reading and writing. */
static void create_in_root(uint32_t fid, const char *name, uint8_t mode) {
  cr_assert_eq(walk(0, fid, NULL, NULL), 0);
  cr_assert_eq(rpc((p9_fcall){.type = P9_TCREATE,
                              .tag = 3,
                              .fid = fid,
                              .name = p9_str_c(name),
                              .perm = 0644,
                              .mode = P9_ORDWR | mode}),
               0);
}

Test(srv, orclose_removes_on_clunk) {
  session();
  create_in_root(1, "tmp", P9_ORCLOSE);
  cr_assert_eq(walk(0, 2, "tmp", NULL), 0);
  cr_assert_eq(clunk(2), 0);
  cr_assert_eq(clunk(1), 0);
  cr_assert_eq(walk(0, 2, "tmp", NULL), -1, "ORCLOSE file survived");
}

/* open(5): the file is removed when the fid is clunked, and a fid is
 * clunked when its connection goes away. */
Test(srv, orclose_removes_when_the_connection_closes) {
  session();
  create_in_root(1, "tmp", P9_ORCLOSE);
  create_in_root(2, "keep", 0);
  cap_close(&E.c.t);
  cr_assert_eq(p9_srv_nconns(E.srv), 0, "connection not released");
  cr_assert_eq(E.destroyed, 3, "every fid (root, tmp, keep) is destroyed");
  cap_drop(&E.c);
  cap_init(&E.c);
  p9_srv_serve(E.srv, &E.c.t);
  session();
  cr_assert_eq(walk(0, 1, "tmp", NULL), -1, "ORCLOSE file survived");
  cr_assert_eq(walk(0, 1, "keep", NULL), 0, "a plain open file was removed");
}

/* version(5): Tversion frees every fid, which clunks them; the implicit
 * clunks are not answered (rpc checks for exactly one answer). */
Test(srv, orclose_removes_when_tversion_resets_the_session) {
  session();
  create_in_root(1, "tmp", P9_ORCLOSE);
  version("9P2000");
  attach(0);
  cr_assert_eq(walk(0, 1, "tmp", NULL), -1, "ORCLOSE file survived");
}

Test(srv, create_checks_names_and_existence) {
  session();
  walk(0, 1, NULL, NULL);
  expect_error((p9_fcall){.type = P9_TCREATE,
                          .tag = 3,
                          .fid = 1,
                          .name = p9_str_c(".."),
                          .perm = 0644},
               "bad argument");
  expect_error((p9_fcall){.type = P9_TCREATE,
                          .tag = 3,
                          .fid = 1,
                          .name = p9_str_c("a/b"),
                          .perm = 0644},
               "bad argument");
  cr_assert_eq(rpc((p9_fcall){.type = P9_TCREATE,
                              .tag = 3,
                              .fid = 1,
                              .name = p9_str_c("d"),
                              .perm = P9_DMDIR | 0755}),
               0);
  cr_assert(rx.qid.type & P9_QTDIR);
  walk(0, 2, NULL, NULL);
  expect_error((p9_fcall){.type = P9_TCREATE,
                          .tag = 3,
                          .fid = 2,
                          .name = p9_str_c("d"),
                          .perm = 0644},
               "file already exists");
  cr_assert_eq(rpc((p9_fcall){.type = P9_TREMOVE, .tag = 3, .fid = 2}), -1,
               "removed the root");
  /* Tremove clunks the fid even when the remove fails. */
  expect_error((p9_fcall){.type = P9_TCLUNK, .tag = 4, .fid = 2},
               "unknown fid");
}

/* Sends Twstat for fid with the changes in st (untouched fields ~0). */
static int twstat(uint32_t fid, p9_stat st) {
  return rpc((p9_fcall){.type = P9_TWSTAT, .tag = 6, .fid = fid, .stat = st});
}

static p9_stat nochange(void) {
  p9_stat st;
  p9_stat_null(&st);
  return st;
}

/* The length of name in the root, or -1 if it is not there. */
static long length_of(const char *name) {
  long len;
  if (walk(0, 20, name, NULL) < 0)
    return -1;
  cr_assert_eq(rpc((p9_fcall){.type = P9_TSTAT, .tag = 1, .fid = 20}), 0);
  len = (long)rx.stat.length;
  clunk(20);
  return len;
}

/* stat(5): "it is an error to change the name to that of an existing
 * file"; 9P2000.L's Trenameat is POSIX rename(2) and replaces it. */
Test(srv, wstat_rename_onto_an_existing_name_fails) {
  p9_stat st = nochange();
  p9_memfs_put(E.fs, "a", "a", 1);
  p9_memfs_put(E.fs, "b", "bb", 2);
  session();
  walk(0, 1, "a", NULL);
  st.name = p9_str_c("b");
  cr_assert_eq(twstat(1, st), -1, "renamed onto b");
  cr_assert(p9_str_eq(rx.ename, "file already exists"));
  cr_assert_eq(length_of("a"), 1);
  cr_assert_eq(length_of("b"), 2, "b was replaced");
  st.name = p9_str_c("c");
  cr_assert_eq(twstat(1, st), 0);
  cr_assert_eq(length_of("a"), -1);
  cr_assert_eq(length_of("c"), 1);
  version("9P2000.L");
  attach(0);
  cr_assert_eq(rpc((p9_fcall){.type = P9_TRENAMEAT,
                              .tag = 1,
                              .fid = 0,
                              .name = p9_str_c("c"),
                              .dfid = 0,
                              .newname = p9_str_c("b")}),
               0, "9P2000.L rename must replace");
  version("9P2000");
  attach(0);
  cr_assert_eq(length_of("b"), 1);
  cr_assert_eq(length_of("c"), -1);
}

/* stat(5): "Either all the changes in wstat request happen, or none of
 * them does".  A length the quota refuses keeps the name and mode; a
 * directory bit that may not change keeps the name. */
Test(srv, wstat_is_all_or_nothing) {
  p9_stat st = nochange();
  p9_memfs_set_limit(E.fs, 10);
  p9_memfs_put(E.fs, "a", "a", 1);
  session();
  walk(0, 1, "a", NULL);
  st.name = p9_str_c("renamed");
  st.mode = 0600;
  st.length = 100;
  cr_assert_eq(twstat(1, st), -1);
  cr_assert(p9_str_eq(rx.ename, "no space left on device"));
  cr_assert_eq(length_of("renamed"), -1, "renamed before the length failed");
  cr_assert_eq(length_of("a"), 1);
  cr_assert_eq(rpc((p9_fcall){.type = P9_TSTAT, .tag = 1, .fid = 1}), 0);
  cr_assert_eq(rx.stat.mode, 0664, "mode changed by a failed wstat");
  st.length = ~0ull;
  st.mode = P9_DMDIR | 0700;
  cr_assert_eq(twstat(1, st), -1);
  cr_assert_eq(length_of("a"), 1);
  st.mode = 0600;
  st.length = 5;
  cr_assert_eq(twstat(1, st), 0);
  cr_assert_eq(length_of("renamed"), 5);
  cr_assert_eq(rpc((p9_fcall){.type = P9_TSTAT, .tag = 1, .fid = 1}), 0);
  cr_assert_eq(rx.stat.mode, 0600);
}

static int tcreate(uint32_t fid, const char *name, uint32_t perm,
                   uint8_t mode) {
  return rpc((p9_fcall){.type = P9_TCREATE,
                        .tag = 3,
                        .fid = fid,
                        .name = p9_str_c(name),
                        .perm = perm,
                        .mode = mode});
}

static p9_stat stat_of(uint32_t fid) {
  cr_assert_eq(rpc((p9_fcall){.type = P9_TSTAT, .tag = 1, .fid = fid}), 0);
  return rx.stat;
}

#define cr_assert_streq9(a, b)                                                 \
  cr_assert(p9_str_eq(a, b), "'%.*s', want '%s'", (int)(a).len, (a).s, b)

/* open(5): a created file's owner is the user who attached, its group the
 * directory's, and its permissions perm & (~0666 | (dir.perm & 0666))
 * (0777 for a directory); muid is who wrote last. */
Test(srv, created_files_belong_to_the_user_and_the_directorys_group) {
  p9_stat st = nochange();
  session(); /* as glenda */
  walk(0, 1, NULL, NULL);
  cr_assert_eq(tcreate(1, "d", P9_DMDIR | 0750, P9_OREAD), 0);
  st.gid = p9_str_c("sys");
  cr_assert_eq(twstat(1, st), 0, "the group of d");
  walk(0, 2, "d", NULL);
  cr_assert_eq(tcreate(2, "f", 0666, P9_ORDWR), 0);
  st = stat_of(2);
  cr_assert_eq(st.mode, 0640, "mode %o", st.mode);
  cr_assert_streq9(st.uid, "glenda");
  cr_assert_streq9(st.gid, "sys");
  cr_assert_streq9(st.muid, "glenda");
  walk(0, 3, "d", NULL);
  cr_assert_eq(tcreate(3, "sub", P9_DMDIR | 0777, P9_OREAD), 0);
  st = stat_of(3);
  cr_assert_eq(st.mode, P9_DMDIR | 0750, "mode %o", st.mode);
  /* Another user writes f: muid says so. */
  cr_assert_eq(rpc((p9_fcall){.type = P9_TATTACH,
                              .tag = 1,
                              .fid = 10,
                              .afid = P9_NOFID,
                              .uname = p9_str_c("bootes")}),
               0);
  walk(10, 11, "d", "f");
  cr_assert_eq(topen(11, P9_OWRITE), 0);
  cr_assert_eq(rpc((p9_fcall){.type = P9_TWRITE,
                              .tag = 1,
                              .fid = 11,
                              .count = 1,
                              .data = (const uint8_t *)"x"}),
               0);
  st = stat_of(11);
  cr_assert_streq9(st.uid, "glenda");
  cr_assert_streq9(st.muid, "bootes");
  /* stat(5): "it is illegal to attempt to change the owner of a file" */
  st = nochange();
  st.uid = p9_str_c("bootes");
  cr_assert_eq(twstat(11, st), -1);
  /* The tree's own files and root belong to uksim. */
  st = stat_of(0);
  cr_assert_streq9(st.uid, "uksim");
}

/* memfs remembers at most 256 user names: a client attaching under ever
 * new ones is refused once they are full, and the known ones go on. */
Test(srv, attaching_users_are_bounded) {
  char who[16];
  int refused = 0;
  session(); /* glenda comes first */
  for (uint32_t i = 0; i < 300; i++) {
    snprintf(who, sizeof(who), "user%u", i);
    if (rpc((p9_fcall){.type = P9_TATTACH,
                       .tag = 1,
                       .fid = 1,
                       .afid = P9_NOFID,
                       .uname = p9_str_c(who)}) < 0) {
      cr_assert(p9_str_eq(rx.ename, "too many users"));
      refused++;
    } else {
      clunk(1);
    }
  }
  cr_assert_eq(refused, 300 - 254, "uksim, glenda and 254 others fit");
  attach(2);
}

/* DMEXCL is kept (and shows in the qid), and while one fid has the file
 * open another's open is refused; after a clunk it may be opened. */
Test(srv, an_exclusive_use_file_is_open_once) {
  p9_stat st;
  session();
  walk(0, 1, NULL, NULL);
  cr_assert_eq(tcreate(1, "lock", P9_DMEXCL | 0666, P9_ORDWR), 0);
  cr_assert(rx.qid.type & P9_QTEXCL, "qid type %x", rx.qid.type);
  st = stat_of(1);
  cr_assert(st.mode & P9_DMEXCL, "DMEXCL dropped: mode %o", st.mode);
  walk(0, 2, "lock", NULL);
  expect_error(
      (p9_fcall){.type = P9_TOPEN, .tag = 3, .fid = 2, .mode = P9_OREAD},
      "exclusive use file already open");
  cr_assert_eq(clunk(1), 0);
  cr_assert_eq(topen(2, P9_OREAD), 0, "still held after the clunk");
  walk(0, 3, "lock", NULL);
  cr_assert_eq(topen(3, P9_OREAD), -1);
  cr_assert_eq(clunk(2), 0);
  cr_assert_eq(topen(3, P9_OREAD), 0);
  /* A plain file may be open on many fids. */
  walk(0, 4, NULL, NULL);
  cr_assert_eq(tcreate(4, "plain", 0666, P9_ORDWR), 0);
  walk(0, 5, "plain", NULL);
  cr_assert_eq(topen(5, P9_OREAD), 0);
}

/* Reads the root directory with count bytes per read from offset 0. */
static int read_names(uint32_t count, char names[][8]) {
  uint64_t off = 0;
  int n = 0;
  for (;;) {
    cr_assert_eq(rpc((p9_fcall){.type = P9_TREAD,
                                .tag = 5,
                                .fid = 1,
                                .offset = off,
                                .count = count}),
                 0);
    if (rx.count == 0)
      return n;
    for (uint32_t at = 0; at < rx.count;) {
      p9_stat st;
      long k = p9_stat_decode(rx.data + at, rx.count - at, &st);
      cr_assert_gt(k, 0, "partial stat entry in a directory read");
      snprintf(names[n++], 8, "%.*s", (int)st.name.len, st.name.s);
      at += (uint32_t)k;
    }
    off += rx.count;
  }
}

/* File reads (memfs sends its bytes in place), directory reads and errors,
 * through a transport that borrows (sendv) and one that takes buffers. */
static void reads_through_the_transport(void) {
  static uint8_t big[100000];
  char names[16][8];
  for (size_t i = 0; i < sizeof(big); i++)
    big[i] = (uint8_t)(i * 7 + i / 251);
  p9_memfs_put(E.fs, "big", big, sizeof(big));
  session();
  walk(0, 2, "big", NULL);
  cr_assert_eq(topen(2, P9_OREAD), 0);
  for (uint64_t off = 0; off < sizeof(big) + 10; off += 30000) {
    cr_assert_eq(rpc((p9_fcall){.type = P9_TREAD,
                                .tag = 5,
                                .fid = 2,
                                .offset = off,
                                .count = 70000}), /* clamped to msize-24 */
                 0);
    size_t want = sizeof(big) - off < 65536 - P9_IOHDRSZ
                      ? (off < sizeof(big) ? sizeof(big) - off : 0)
                      : 65536 - P9_IOHDRSZ;
    cr_assert_eq(rx.count, want, "offset %llu", (unsigned long long)off);
    cr_assert_eq(memcmp(rx.data, big + off, want), 0);
  }
  walk(0, 1, NULL, NULL); /* read_names reads fid 1 */
  cr_assert_eq(topen(1, P9_OREAD), 0);
  cr_assert_eq(read_names(8192, names), 1);
  cr_assert_str_eq(names[0], "big");
  expect_error((p9_fcall){.type = P9_TREAD, .tag = 5, .fid = 9, .count = 1},
               "unknown fid");
}

Test(srv, reads_through_a_borrowing_transport) {
  reads_through_the_transport();
}

Test(srv, reads_through_a_transport_without_sendv) {
  E.c.t.ops = &cap_ops_owning;
  reads_through_the_transport();
}

Test(srv, directory_reads_return_whole_entries_at_offsets) {
  char names[16][8], again[16][8], name[8];
  for (int i = 0; i < 10; i++) {
    snprintf(name, sizeof(name), "f%d", i);
    p9_memfs_put(E.fs, name, "x", 1);
  }
  session();
  walk(0, 1, NULL, NULL);
  cr_assert_eq(topen(1, P9_OREAD), 0);
  cr_assert_eq(read_names(100, names), 10); /* one entry per read */
  cr_assert_eq(read_names(8192, again), 10);
  for (int i = 0; i < 10; i++)
    cr_assert_str_eq(names[i], again[i]);
  expect_error(
      (p9_fcall){
          .type = P9_TREAD, .tag = 5, .fid = 1, .offset = 3, .count = 100},
      "bad offset in directory read");
  expect_error((p9_fcall){.type = P9_TREAD, .tag = 5, .fid = 1, .count = 20},
               "count too small for a directory entry");
}

Test(srv, flush_of_a_pending_request_answers_it_first) {
  p9_memfs_put(E.fs, "slow", "x", 1);
  E.ops.read = slow_read;
  E.ops.flush = slow_flush;
  session();
  walk(0, 1, "slow", NULL);
  topen(1, P9_OREAD);
  cap_drop(&E.c);
  cap_put(&E.c, &(p9_fcall){.type = P9_TREAD, .tag = 5, .fid = 1, .count = 10});
  cr_assert_eq(E.c.nout, 0);
  cr_assert_not_null(E.held);
  cap_put(&E.c, &(p9_fcall){.type = P9_TFLUSH, .tag = 6, .oldtag = 5});
  cr_assert_eq(E.c.nout, 2);
  cr_assert_eq(cap_get(&E.c, 0, &rx), 0);
  cr_assert_eq(rx.tag, 5);
  cr_assert(p9_str_eq(rx.ename, "interrupted"));
  cr_assert_eq(cap_get(&E.c, 1, &rx), 0);
  cr_assert_eq(rx.type, P9_RFLUSH);
  cr_assert_eq(rx.tag, 6);
  /* Flushing a tag nobody uses is answered at once. */
  cr_assert_eq(rpc((p9_fcall){.type = P9_TFLUSH, .tag = 7, .oldtag = 99}), 0);
}

Test(srv, flush_waits_for_an_op_without_a_flush_callback) {
  p9_memfs_put(E.fs, "slow", "x", 1);
  E.ops.read = slow_read;
  session();
  walk(0, 1, "slow", NULL);
  topen(1, P9_OREAD);
  cap_drop(&E.c);
  cap_put(&E.c, &(p9_fcall){.type = P9_TREAD, .tag = 5, .fid = 1, .count = 10});
  cap_put(&E.c, &(p9_fcall){.type = P9_TFLUSH, .tag = 6, .oldtag = 5});
  cr_assert_eq(E.c.nout, 0, "Rflush before the flushed request ended");
  /* The duplicate tag is refused while tag 5 is pending. */
  cap_put(&E.c, &(p9_fcall){.type = P9_TSTAT, .tag = 5, .fid = 0});
  cr_assert_eq(cap_get(&E.c, 0, &rx), 0);
  cr_assert(p9_str_eq(rx.ename, "duplicate tag"));
  p9_req *r = E.held;
  E.held = NULL;
  memcpy(r->buf, "y", 1);
  r->ofcall.count = 1;
  p9_respond(r, 0);
  cr_assert_eq(E.c.nout, 3);
  cr_assert_eq(cap_get(&E.c, 1, &rx), 0);
  cr_assert_eq(rx.type, P9_RREAD);
  cr_assert_eq(cap_get(&E.c, 2, &rx), 0);
  cr_assert_eq(rx.type, P9_RFLUSH);
}

Test(srv, connection_close_with_a_pending_request_is_clean) {
  p9_memfs_put(E.fs, "slow", "x", 1);
  E.ops.read = slow_read;
  session();
  walk(0, 1, "slow", NULL);
  topen(1, P9_OREAD);
  cap_drop(&E.c);
  cap_put(&E.c, &(p9_fcall){.type = P9_TREAD, .tag = 5, .fid = 1, .count = 10});
  cap_close(&E.c.t);
  cr_assert_eq(p9_srv_nconns(E.srv), 1, "freed under a pending request");
  p9_req *r = E.held;
  E.held = NULL;
  p9_respond(r, 0); /* dropped: nobody to send it to */
  cr_assert_eq(E.c.nout, 0);
  cr_assert_eq(p9_srv_nconns(E.srv), 0);
  cr_assert_eq(E.destroyed, 2);
}

Test(srv, malformed_and_runt_messages) {
  uint8_t bad[] = {9, 0, 0, 0, P9_TCLUNK, 1, 0, 0, 0}; /* fid cut short */
  uint8_t runt[] = {5, 0, 0, 0, 1};
  session();
  cap_drop(&E.c);
  cap_raw(&E.c, bad, sizeof(bad));
  cr_assert_eq(cap_get(&E.c, 0, &rx), 0);
  cr_assert(p9_str_eq(rx.ename, "malformed message"));
  cap_raw(&E.c, runt, sizeof(runt));
  cr_assert_eq(E.c.nclosed, 1);
}

Test(srv, dotl_operations) {
  version("9P2000.L");
  cr_assert_eq(rpc((p9_fcall){.type = P9_TATTACH,
                              .tag = 1,
                              .fid = 0,
                              .afid = P9_NOFID,
                              .n_uname = 0}),
               0);
  cr_assert_eq(rpc((p9_fcall){.type = P9_TMKDIR,
                              .tag = 1,
                              .dfid = 0,
                              .name = p9_str_c("d"),
                              .lmode = 0755}),
               0);
  cr_assert(rx.qid.type & P9_QTDIR);
  walk(0, 1, NULL, NULL);
  cr_assert_eq(rpc((p9_fcall){.type = P9_TLCREATE,
                              .tag = 1,
                              .fid = 1,
                              .name = p9_str_c("f"),
                              .flags = 01102,
                              .lmode = 0644}),
               0);
  cr_assert_eq(rpc((p9_fcall){.type = P9_TWRITE,
                              .tag = 1,
                              .fid = 1,
                              .count = 3,
                              .data = (const uint8_t *)"abc"}),
               0);
  cr_assert_eq(rpc((p9_fcall){.type = P9_TGETATTR,
                              .tag = 1,
                              .fid = 1,
                              .request_mask = P9_GETATTR_BASIC}),
               0);
  cr_assert_eq(rx.attr.size, 3);
  cr_assert_eq(rx.attr.mode & 0170000, 0100000);
  cr_assert_eq(rpc((p9_fcall){.type = P9_TSETATTR,
                              .tag = 1,
                              .fid = 1,
                              .attr = {.valid = P9_SETATTR_SIZE, .size = 1}}),
               0);
  walk(0, 2, NULL, NULL);
  cr_assert_eq(rpc((p9_fcall){.type = P9_TLOPEN, .tag = 1, .fid = 2}), 0);
  cr_assert_eq(
      rpc((p9_fcall){.type = P9_TREADDIR, .tag = 1, .fid = 2, .count = 4096}),
      0);
  int n = 0;
  uint64_t last = 0;
  for (uint32_t at = 0; at < rx.count; n++) {
    p9_dirent de;
    long k = p9_dirent_decode(rx.data + at, rx.count - at, &de);
    cr_assert_gt(k, 0);
    at += (uint32_t)k;
    last = de.offset;
  }
  cr_assert_eq(n, 2);
  cr_assert_eq(rpc((p9_fcall){.type = P9_TREADDIR,
                              .tag = 1,
                              .fid = 2,
                              .offset = last,
                              .count = 4096}),
               0);
  cr_assert_eq(rx.count, 0, "readdir past the end");
  cr_assert_eq(rpc((p9_fcall){.type = P9_TRENAMEAT,
                              .tag = 1,
                              .fid = 0,
                              .name = p9_str_c("f"),
                              .dfid = 0,
                              .newname = p9_str_c("g")}),
               0);
  cr_assert_eq(walk(0, 3, "g", NULL), 0);
  p9_memfs_put(E.fs, "d/x", "x", 1);
  cr_assert_eq(
      rpc((p9_fcall){
          .type = P9_TUNLINKAT, .tag = 1, .fid = 0, .name = p9_str_c("d")}),
      -1);
  cr_assert_eq(rx.ecode, ENOTEMPTY);
  cr_assert_eq(rpc((p9_fcall){.type = P9_TXATTRWALK,
                              .tag = 1,
                              .fid = 0,
                              .newfid = 9,
                              .name = p9_str_c("user.x")}),
               -1);
  cr_assert_eq(rpc((p9_fcall){.type = P9_TSTATFS, .tag = 1, .fid = 0}), 0);
  cr_assert_eq(rx.statfs.namelen, 255);
  cr_assert_eq(rpc((p9_fcall){.type = P9_TFSYNC, .tag = 1, .fid = 1}), 0);
  /* 9P2000-only messages are unknown in a 9P2000.L session. */
  cap_drop(&E.c);
  uint8_t topen_msg[] = {12, 0, 0, 0, P9_TOPEN, 1, 0, 0, 0, 0, 0, 0};
  cap_raw(&E.c, topen_msg, sizeof(topen_msg));
  cr_assert_eq(cap_get(&E.c, 0, &rx), 0);
  cr_assert_eq(rx.type, P9_RLERROR);
}

static void limited(void) {
  teardown(); /* Criterion ran the suite's setup before this one */
  p9_srv_config cfg = {.max_fids = 3, .max_tags = 2};
  start(&cfg);
}

Test(srv, per_connection_limits, .init = limited) {
  p9_memfs_put(E.fs, "slow", "x", 1);
  E.ops.read = slow_read;
  session();
  walk(0, 1, "slow", NULL);
  walk(0, 2, NULL, NULL);
  expect_error((p9_fcall){.type = P9_TWALK, .tag = 2, .fid = 0, .newfid = 3},
               "too many fids");
  topen(1, P9_OREAD);
  cap_drop(&E.c);
  cap_put(&E.c, &(p9_fcall){.type = P9_TREAD, .tag = 5, .fid = 1, .count = 10});
  cap_put(&E.c, &(p9_fcall){.type = P9_TSTAT, .tag = 6, .fid = 0});
  cap_put(&E.c, &(p9_fcall){.type = P9_TSTAT, .tag = 7, .fid = 0});
  cr_assert_eq(E.c.nout, 2); /* Rstat 6 and 7: the read holds one tag */
  cap_drop(&E.c);
  cap_put(&E.c, &(p9_fcall){.type = P9_TFLUSH, .tag = 8, .oldtag = 5});
  cap_put(&E.c, &(p9_fcall){.type = P9_TSTAT, .tag = 9, .fid = 0});
  cr_assert_eq(cap_get(&E.c, 0, &rx), 0);
  cr_assert(p9_str_eq(rx.ename, "too many outstanding requests"));
  p9_req *r = E.held;
  E.held = NULL;
  p9_respond(r, -EINTR);
}

static void keyed(void) {
  teardown(); /* Criterion ran the suite's setup before this one */
  keyed_log = fopen("/dev/null", "w");
  p9_srv_config cfg = {.key = key, .log = keyed_log};
  start(&cfg);
}

Test(srv, attach_needs_the_key_proven_through_the_afid, .init = keyed) {
  uint8_t mac[P9_MACLEN];
  p9_str who = p9_str_c("glenda"), tree = p9_str_c("");
  version("9P2000");
  expect_error((p9_fcall){.type = P9_TATTACH,
                          .tag = 1,
                          .fid = 0,
                          .afid = P9_NOFID,
                          .uname = who},
               "authentication required");
  cr_assert_eq(
      rpc((p9_fcall){.type = P9_TAUTH, .tag = 1, .afid = 5, .uname = who}), 0);
  cr_assert(rx.qid.type & P9_QTAUTH);
  cr_assert_eq(
      rpc((p9_fcall){.type = P9_TREAD, .tag = 1, .fid = 5, .count = 64}), 0);
  cr_assert_eq(rx.count, P9_CHALLEN);
  uint8_t chal[P9_CHALLEN];
  memcpy(chal, rx.data, P9_CHALLEN);
  memset(mac, 0, sizeof(mac));
  expect_error((p9_fcall){.type = P9_TWRITE,
                          .tag = 1,
                          .fid = 5,
                          .count = P9_MACLEN,
                          .data = mac},
               "authentication failed");
  expect_error(
      (p9_fcall){
          .type = P9_TATTACH, .tag = 1, .fid = 0, .afid = 5, .uname = who},
      "authentication failed");
  p9_auth_mac(key, chal, who, tree, mac);
  cr_assert_eq(rpc((p9_fcall){.type = P9_TWRITE,
                              .tag = 1,
                              .fid = 5,
                              .count = P9_MACLEN,
                              .data = mac}),
               0);
  expect_error((p9_fcall){.type = P9_TATTACH,
                          .tag = 1,
                          .fid = 0,
                          .afid = 5,
                          .uname = p9_str_c("someone-else")},
               "authentication failed");
  cr_assert_eq(
      rpc((p9_fcall){
          .type = P9_TATTACH, .tag = 1, .fid = 0, .afid = 5, .uname = who}),
      0);
  cr_assert_eq(clunk(5), 0);
}

static void one_fid(void) {
  teardown(); /* Criterion ran the suite's setup before this one */
  keyed_log = fopen("/dev/null", "w");
  start(&(p9_srv_config){.max_fids = 1, .log = keyed_log});
}

/* A Tattach that finds the fid table full is refused (it used to be
 * answered Rattach with a zero qid and no fid behind it), in both
 * dialects, and the fid already held still works. */
Test(srv, attach_with_no_fid_left_is_refused, .init = one_fid) {
  p9_fcall second = {.type = P9_TATTACH,
                     .tag = 1,
                     .fid = 1,
                     .afid = P9_NOFID,
                     .uname = p9_str_c("glenda")};
  session();
  expect_error(second, "too many fids");
  expect_error((p9_fcall){.type = P9_TSTAT, .tag = 1, .fid = 1}, "unknown fid");
  cr_assert_eq(rpc((p9_fcall){.type = P9_TSTAT, .tag = 1, .fid = 0}), 0);
  version("9P2000.L");
  attach(0);
  cr_assert_eq(rpc(second), -1);
  cr_assert_eq(rx.type, P9_RLERROR);
  cr_assert_eq(rx.ecode, ENFILE);
}

static void keyed_one_fid(void) {
  teardown(); /* Criterion ran the suite's setup before this one */
  keyed_log = fopen("/dev/null", "w");
  start(&(p9_srv_config){.key = key, .max_fids = 1, .log = keyed_log});
}

Test(srv, auth_with_no_fid_left_is_refused, .init = keyed_one_fid) {
  p9_str who = p9_str_c("glenda");
  version("9P2000");
  cr_assert_eq(
      rpc((p9_fcall){.type = P9_TAUTH, .tag = 1, .afid = 5, .uname = who}), 0);
  expect_error((p9_fcall){.type = P9_TAUTH, .tag = 1, .afid = 6, .uname = who},
               "too many fids");
  expect_error((p9_fcall){.type = P9_TREAD, .tag = 1, .fid = 6, .count = 64},
               "unknown fid");
  cr_assert_eq(
      rpc((p9_fcall){.type = P9_TREAD, .tag = 1, .fid = 5, .count = 64}), 0);
  cr_assert_eq(rx.count, P9_CHALLEN);
}

/* 9P strings are UTF-8 (intro(5)): a name that is not is refused wherever
 * the server takes one, and nothing is created or renamed.  Overlong
 * forms, surrogates and code points past U+10FFFF are not UTF-8 either. */
Test(srv, names_that_are_not_utf8_are_refused) {
  static const char *const bad[] = {"caf\xe9", "\xc0\xaf", "\xed\xa0\x80",
                                    "\xf4\x90\x80\x80", "ab\xe2\x82"};
  const char *why = "name is not valid UTF-8";
  session();
  p9_memfs_put(E.fs, "f", "x", 1);
  for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
    p9_fcall w = {.type = P9_TWALK, .tag = 2, .fid = 0, .newfid = 1};
    w.wname[w.nwname++] = p9_str_c(bad[k]);
    expect_error(w, why);
    walk(0, 1, NULL, NULL);
    expect_error((p9_fcall){.type = P9_TCREATE,
                            .tag = 1,
                            .fid = 1,
                            .name = p9_str_c(bad[k]),
                            .perm = 0644,
                            .mode = P9_ORDWR},
                 why);
    clunk(1);
    walk(0, 1, "f", NULL);
    p9_fcall ws = {.type = P9_TWSTAT, .tag = 1, .fid = 1};
    p9_stat_null(&ws.stat);
    ws.stat.name = p9_str_c(bad[k]);
    expect_error(ws, why);
    clunk(1);
  }
  cr_assert_eq(walk(0, 1, "f", NULL), 0, "the wstat renamed f");
  clunk(1);
  cr_assert_eq(walk(0, 1, "caf\xc3\xa9", NULL), -1); /* valid: not there */
  cr_assert(p9_str_eq(rx.ename, "file does not exist"));
  version("9P2000.L");
  attach(0);
  cr_assert_eq(rpc((p9_fcall){.type = P9_TMKDIR,
                              .tag = 1,
                              .dfid = 0,
                              .name = p9_str_c(bad[0]),
                              .lmode = 0755}),
               -1);
  cr_assert_eq(rx.ecode, EILSEQ);
  cr_assert_eq(rpc((p9_fcall){.type = P9_TRENAMEAT,
                              .tag = 1,
                              .fid = 0,
                              .name = p9_str_c("f"),
                              .dfid = 0,
                              .newname = p9_str_c(bad[0])}),
               -1);
  cr_assert_eq(rx.ecode, EILSEQ);
}

static void two_conns(void) {
  teardown(); /* Criterion ran the suite's setup before this one */
  keyed_log = fopen("/dev/null", "w");
  start(&(p9_srv_config){.max_conns = 2, .log = keyed_log});
}

/* p9_srv_serve refuses a connection beyond max_conns (the caller closes
 * its transport) and counts it; the connections served go on. */
Test(srv, serve_refuses_connections_beyond_max_conns, .init = two_conns) {
  cap second, third;
  p9_srv_stats st;
  cap_init(&second);
  cap_init(&third);
  cr_assert_eq(p9_srv_serve(E.srv, &second.t), 0);
  cr_assert_eq(p9_srv_serve(E.srv, &third.t), -EMFILE);
  cr_assert_null(third.t.recv, "a refused transport got an upcall");
  p9_srv_read_stats(E.srv, &st);
  cr_assert_eq(st.refused, 1);
  cr_assert_eq(st.conns, 2);
  session();
  cr_assert_eq(rpc((p9_fcall){.type = P9_TSTAT, .tag = 1, .fid = 0}), 0);
  cap_close(&second.t);
  cr_assert_eq(p9_srv_serve(E.srv, &third.t), 0, "the freed place unused");
  cap_close(&third.t);
  cap_drop(&second);
  cap_drop(&third);
}

/* The largest frame the transport may take: P9_MINMSIZE until a dialect
 * is agreed (only a Tversion can come), then the negotiated msize, and
 * back when a Tversion fails. */
Test(srv, frames_are_bounded_by_msize_and_before_tversion_by_the_minimum) {
  cr_assert_eq(E.c.t.max_msg, P9_MINMSIZE);
  version("9P2000");
  cr_assert_eq(E.c.t.max_msg, 65536);
  rpc((p9_fcall){.type = P9_TVERSION,
                 .tag = P9_NOTAG,
                 .msize = 65536,
                 .version = p9_str_c("9P1999")});
  cr_assert_eq(E.c.t.max_msg, P9_MINMSIZE);
  expect_error((p9_fcall){.type = P9_TVERSION,
                          .tag = P9_NOTAG,
                          .msize = 100,
                          .version = p9_str_c("9P2000")},
               "msize too small");
  cr_assert_eq(E.c.t.max_msg, P9_MINMSIZE);
}

/* Fids past the first chunk of slots: allocated, found, clunked and
 * reused, and all clunked when the connection closes. */
Test(srv, fids_across_chunks_of_the_table) {
  session();
  for (uint32_t f = 1; f <= 200; f++)
    cr_assert_eq(walk(0, f, NULL, NULL), 0, "fid %u", f);
  for (uint32_t f = 1; f <= 200; f += 2)
    cr_assert_eq(clunk(f), 0, "fid %u", f);
  for (uint32_t f = 1; f <= 200; f += 2)
    cr_assert_eq(walk(0, 1000 + f, NULL, NULL), 0, "fid %u", 1000 + f);
  cr_assert_eq(rpc((p9_fcall){.type = P9_TSTAT, .tag = 1, .fid = 1101}), 0);
  expect_error((p9_fcall){.type = P9_TSTAT, .tag = 1, .fid = 101},
               "unknown fid");
  cr_assert_eq(E.destroyed, 100);
  cap_close(&E.c.t);
  cr_assert_eq(E.destroyed, 301, "fids left behind at close");
}
