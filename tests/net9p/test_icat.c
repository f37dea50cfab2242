/*
 * test_icat.c: the ICA transport (net9p/icat.c) over plain buffers
 * standing in for a request's ICAs: messages answered in place, bulk
 * Twrite/Rread bytes in the data buffer, the msize the client sees, bad
 * control ICAs answered with a negative status, an op that answers later
 * on the loop; and the state hooks: a session and a memfs tree restored
 * in a second server keep an open fid reading the same bytes, and images
 * that are not trees are refused.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include <uksim/9p.h>
#include <uksim/p9ica.h>

static struct {
  p9_memfs *fs;
  p9_srv *srv;
  p9_icat *t;
  uint8_t ctl[P9ICA_CTL_MIN];
  uint8_t *data;
  size_t data_size;
  p9_fcall rx;
} E;

static void start(void) {
  int err;
  p9_srv_config cfg = {.msize = P9_MAXMSIZE};
  E.fs = p9_memfs_new();
  E.srv = p9_srv_new(p9_memfs_ops(), E.fs, &cfg, &err);
  cr_assert_not_null(E.srv);
  E.t = p9_icat_new(E.srv, NULL, &err);
  cr_assert_not_null(E.t);
  E.data_size = 1 << 20;
  E.data = calloc(1, E.data_size);
}

static void stop(void) {
  p9_icat_free(E.t);
  p9_srv_free(E.srv);
  p9_memfs_free(E.fs);
  free(E.data);
}

/* Sends tx (with the data buffer when bulk); returns the status and
 * decodes the answer into E.rx. */
static int call(p9_fcall *tx, bool bulk) {
  long n = p9_encode(tx, P9_2000, E.ctl, sizeof(E.ctl));
  int st;
  cr_assert_gt(n, 0);
  st = p9_icat_call(E.t, E.ctl, sizeof(E.ctl), bulk ? E.data : NULL,
                    bulk ? E.data_size : 0);
  if (st == 0) {
    uint32_t size =
        E.ctl[0] | E.ctl[1] << 8 | E.ctl[2] << 16 | (uint32_t)E.ctl[3] << 24;
    if (bulk && E.ctl[4] == P9_RREAD) { /* count and no bytes in ctl */
      cr_assert_eq(size, P9_RREAD_DATA_OFF);
      memset(&E.rx, 0, sizeof(E.rx));
      E.rx.type = P9_RREAD;
      memcpy(&E.rx.count, E.ctl + 7, 4);
      return 0;
    }
    cr_assert_eq(p9_decode(E.ctl, size, P9_2000, &E.rx), 0);
  }
  return st;
}

static void ok(p9_fcall *tx, uint8_t rtype) {
  cr_assert_eq(call(tx, false), 0);
  cr_assert_eq(E.rx.type, rtype, "answer %s: %.*s", p9_msgname(E.rx.type),
               E.rx.ename.len, E.rx.ename.s);
}

static void attach(uint32_t fid) {
  p9_fcall v = {.type = P9_TVERSION,
                .tag = P9_NOTAG,
                .msize = P9ICA_MSIZE,
                .version = p9_str_c("9P2000")};
  p9_fcall a = {.type = P9_TATTACH,
                .fid = fid,
                .afid = P9_NOFID,
                .uname = p9_str_c("glenda"),
                .aname = p9_str_c("")};
  ok(&v, P9_RVERSION);
  cr_assert_eq(E.rx.msize, P9ICA_MSIZE, "the client's msize, not ours");
  ok(&a, P9_RATTACH);
}

/* Creates /name open for writing on fid (walked from root 0). */
static void create(uint32_t fid, const char *name) {
  p9_fcall w = {.type = P9_TWALK, .fid = 0, .newfid = fid};
  p9_fcall c = {.type = P9_TCREATE,
                .fid = fid,
                .name = p9_str_c(name),
                .perm = 0644,
                .mode = P9_ORDWR};
  ok(&w, P9_RWALK);
  ok(&c, P9_RCREATE);
}

static void pattern(uint8_t *p, size_t n, size_t seed) {
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)((i + seed) * 7 + 3);
}

TestSuite(icat, .init = start, .fini = stop, .timeout = 30);

Test(icat, inline_write_and_read_answer_in_the_control_ica) {
  uint8_t in[100];
  attach(0);
  create(1, "f");
  pattern(in, sizeof(in), 0);
  p9_fcall w = {.type = P9_TWRITE, .fid = 1, .count = sizeof(in), .data = in};
  ok(&w, P9_RWRITE);
  cr_assert_eq(E.rx.count, sizeof(in));
  p9_fcall r = {.type = P9_TREAD, .fid = 1, .offset = 10, .count = 50};
  ok(&r, P9_RREAD);
  cr_assert_eq(E.rx.count, 50);
  cr_assert_arr_eq(E.rx.data, in + 10, 50);
}

/* A Twrite frame that ends after count[4] takes its bytes from the data
 * ICA; a Tread with a data ICA gets them there, beyond any frame's size. */
static void bulk_write(uint32_t fid, uint64_t off, size_t n, size_t seed) {
  p9_fcall w = {.type = P9_TWRITE, .fid = fid, .offset = off, .count = 0};
  long k = p9_encode(&w, P9_2000, E.ctl, sizeof(E.ctl));
  cr_assert_eq(k, 23);
  memcpy(E.ctl + 19, &(uint32_t){(uint32_t)n}, 4);
  pattern(E.data, n, seed);
  cr_assert_eq(p9_icat_call(E.t, E.ctl, sizeof(E.ctl), E.data, E.data_size), 0);
  cr_assert_eq(p9_decode(E.ctl, 11, P9_2000, &E.rx), 0);
  cr_assert_eq(E.rx.type, P9_RWRITE);
  cr_assert_eq(E.rx.count, n);
}

Test(icat, bulk_bytes_travel_in_the_data_ica) {
  size_t n = 300000; /* far beyond the control ICA */
  uint8_t *want = malloc(n);
  attach(0);
  create(1, "big");
  bulk_write(1, 0, n, 5);
  memset(E.data, 0, E.data_size);
  p9_fcall r = {.type = P9_TREAD, .fid = 1, .offset = 0, .count = (uint32_t)n};
  cr_assert_eq(call(&r, true), 0);
  cr_assert_eq(E.rx.type, P9_RREAD);
  cr_assert_eq(E.rx.count, n);
  pattern(want, n, 5);
  cr_assert_arr_eq(E.data, want, n);
  free(want);
}

Test(icat, a_read_without_a_data_ica_is_cut_to_the_control_ica) {
  attach(0);
  create(1, "big");
  bulk_write(1, 0, 20000, 1);
  p9_fcall r = {.type = P9_TREAD, .fid = 1, .count = 20000};
  ok(&r, P9_RREAD);
  cr_assert_eq(E.rx.count, sizeof(E.ctl) - P9_RREAD_DATA_OFF);
}

Test(icat, a_9p_error_is_an_rerror_with_status_0) {
  attach(0);
  p9_fcall w = {.type = P9_TWALK, .fid = 0, .newfid = 1, .nwname = 1};
  w.wname[0] = p9_str_c("missing");
  ok(&w, P9_RERROR);
}

Test(icat, bad_control_icas_get_a_negative_status) {
  uint8_t small[4] = {0};
  attach(0);
  create(1, "f");
  cr_assert_eq(p9_icat_call(E.t, small, sizeof(small), NULL, 0), -EPROTO);
  cr_assert_eq(p9_icat_call(E.t, NULL, 0, NULL, 0), -EPROTO);
  memset(E.ctl, 0xff, sizeof(E.ctl)); /* size beyond the ICA */
  cr_assert_eq(p9_icat_call(E.t, E.ctl, sizeof(E.ctl), NULL, 0), -EPROTO);
  memset(E.ctl, 0, 8); /* size 0 */
  cr_assert_eq(p9_icat_call(E.t, E.ctl, sizeof(E.ctl), NULL, 0), -EPROTO);
  /* A bulk Twrite without its data ICA, or counting beyond it. */
  p9_fcall w = {.type = P9_TWRITE, .fid = 1, .count = 0};
  p9_encode(&w, P9_2000, E.ctl, sizeof(E.ctl));
  memcpy(E.ctl + 19, &(uint32_t){10}, 4);
  cr_assert_eq(p9_icat_call(E.t, E.ctl, sizeof(E.ctl), NULL, 0), -EPROTO);
  memcpy(E.ctl + 19, &(uint32_t){100}, 4);
  cr_assert_eq(p9_icat_call(E.t, E.ctl, sizeof(E.ctl), E.data, 99), -EPROTO);
  /* The session goes on. */
  p9_fcall st = {.type = P9_TSTAT, .fid = 1};
  ok(&st, P9_RSTAT);
}

Test(icat, an_answer_larger_than_the_control_ica_is_emsgsize) {
  uint8_t ctl[48];
  attach(0);
  create(1, "a-name-long-enough-that-the-stat-does-not-fit");
  p9_fcall st = {.type = P9_TSTAT, .fid = 1};
  long n = p9_encode(&st, P9_2000, ctl, sizeof(ctl));
  cr_assert_eq(p9_icat_call(E.t, ctl, (size_t)n, NULL, 0), -EMSGSIZE);
}

Test(icat, random_control_icas_never_crash_and_never_succeed_silently) {
  srand(13);
  attach(0);
  for (int i = 0; i < 20000; i++) {
    size_t n = 7 + (size_t)rand() % 64;
    for (size_t k = 0; k < n; k++)
      E.ctl[k] = (uint8_t)rand();
    memcpy(E.ctl, &(uint32_t){rand() % 2 ? (uint32_t)n : (uint32_t)rand()}, 4);
    E.ctl[4] = (uint8_t)(100 + rand() % 28);
    if (E.ctl[4] == P9_TVERSION || E.ctl[4] == P9_TFLUSH)
      continue;
    int st = p9_icat_call(E.t, E.ctl, n, rand() % 2 ? E.data : NULL, 64);
    cr_assert_leq(st, 0);
    if (st == 0)
      cr_assert(E.ctl[4] & 1, "an answer, not the request left in place");
  }
  p9_fcall s = {.type = P9_TSTAT, .fid = 0};
  ok(&s, P9_RSTAT);
}

/* --- an op that answers later ----------------------------------------- */

static p9_req *later;

static void answer_later(uv_timer_t *tm) {
  (void)tm;
  later->ofcall.count = 0;
  p9_respond(later, 0);
}

static void slow_read(p9_req *r) {
  later = r;
  uv_timer_start(r->aux = p9_srv_aux(r->srv), answer_later, 5, 0);
}

static void file_attach(p9_req *r) {
  r->ofcall.qid = (p9_qid){P9_QTFILE, 0, 1};
  p9_respond(r, 0);
}

Test(icat, an_op_answering_later_is_awaited_on_the_loop) {
  uv_loop_t loop;
  uv_timer_t tm;
  /* static: the server borrows its ops until stop() frees it */
  static const struct p9_srv_ops ops = {.attach = file_attach,
                                        .read = slow_read};
  int err;
  uv_loop_init(&loop);
  uv_timer_init(&loop, &tm);
  p9_icat_free(E.t);
  p9_srv_free(E.srv);
  E.srv = p9_srv_new(&ops, &tm, NULL, &err);
  E.t = p9_icat_new(E.srv, &loop, &err);
  attach(0);
  p9_fcall o = {.type = P9_TOPEN, .fid = 0, .mode = P9_OREAD};
  ok(&o, P9_ROPEN);
  p9_fcall r = {.type = P9_TREAD, .fid = 0, .count = 10};
  later = NULL;
  ok(&r, P9_RREAD);
  cr_assert_not_null(later, "the op ran");
  cr_assert_eq(E.rx.count, 0);
  cr_assert_eq(p9_icat_dropped(E.t), 0);
  p9_icat_free(E.t);
  E.t = NULL;
  uv_close((uv_handle_t *)&tm, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
}

/* A file's read op that fills r->buf fills the data ICA itself: the
 * transport offers it to the library (p9_transport_ops.rbuf), so the
 * bytes are not copied between the op and the client. */
static uint8_t *read_into;

static void fill_read(p9_req *r) {
  read_into = r->buf;
  pattern(r->buf, r->ifcall.count, 3);
  r->ofcall.count = r->ifcall.count;
  p9_respond(r, 0);
}

Test(icat, a_files_read_op_reads_straight_into_the_data_ica) {
  /* static: the server borrows its ops until stop() frees it */
  static const struct p9_srv_ops ops = {.attach = file_attach,
                                        .read = fill_read};
  uint8_t want[5000];
  int err;
  p9_icat_free(E.t);
  p9_srv_free(E.srv);
  E.srv = p9_srv_new(&ops, NULL, &(p9_srv_config){.msize = P9_MAXMSIZE}, &err);
  E.t = p9_icat_new(E.srv, NULL, &err);
  attach(0);
  p9_fcall o = {.type = P9_TOPEN, .fid = 0, .mode = P9_OREAD};
  ok(&o, P9_ROPEN);
  p9_fcall r = {.type = P9_TREAD, .fid = 0, .count = sizeof(want)};
  cr_assert_eq(call(&r, true), 0);
  cr_assert_eq(read_into, E.data, "the op read into the library's buffer");
  cr_assert_eq(E.rx.count, sizeof(want));
  pattern(want, sizeof(want), 3);
  cr_assert_arr_eq(E.data, want, sizeof(want));
  /* Without a data ICA the bytes travel in the frame, from its buffer. */
  ok(&r, P9_RREAD);
  cr_assert_neq(read_into, E.data);
  cr_assert_arr_eq(E.rx.data, want, E.rx.count);
}

/* --- state: sessions and trees restored in another server ------------- */

/* Serves a copy of E's tree and session as a successor would: images
 * out of the old server, a new tree and server from them. */
static void succeed(void) {
  p9_memfs_image img;
  p9_session ses;
  p9_memfs *fs;
  p9_srv *srv;
  p9_icat *t;
  int err;
  p9_srv_config cfg = {.msize = P9_MAXMSIZE};
  p9_memfs_image_get(E.fs, &img);
  fs = p9_memfs_load(&img, &err);
  cr_assert_not_null(fs, "load: %d", err);
  p9_memfs_image_free(&img);
  cr_assert_eq(p9_srv_session_get(p9_icat_transport(E.t), &ses), 0);
  srv = p9_srv_new(p9_memfs_ops(), fs, &cfg, &err);
  t = p9_icat_new(srv, NULL, &err);
  cr_assert_eq(p9_srv_session_set(p9_icat_transport(t), &ses), 0);
  free(ses.fid);
  stop();
  E.fs = fs;
  E.srv = srv;
  E.t = t;
  E.data = calloc(1, E.data_size);
}

Test(icat, a_restored_session_keeps_reading_the_same_bytes) {
  uint8_t want[4000];
  attach(0);
  create(1, "f");
  bulk_write(1, 0, sizeof(want), 9);
  pattern(want, sizeof(want), 9);
  p9_fcall r = {.type = P9_TREAD, .fid = 1, .offset = 0, .count = 1000};
  ok(&r, P9_RREAD);
  succeed();
  r.offset = 1000;
  ok(&r, P9_RREAD);
  cr_assert_eq(E.rx.count, 1000);
  cr_assert_arr_eq(E.rx.data, want + 1000, 1000);
  /* The fid is still open for writing, and new fids and files work. */
  bulk_write(1, 4000, 10, 0);
  create(2, "g");
  p9_fcall c = {.type = P9_TCLUNK, .fid = 2};
  ok(&c, P9_RCLUNK);
}

Test(icat, a_session_with_a_fid_twice_or_a_bad_msize_is_refused) {
  p9_session_fid f[2] = {{.num = 3, .omode = P9_ONONE},
                         {.num = 3, .omode = P9_ONONE}};
  p9_session s = {.dialect = P9_2000, .msize = 8192, .nfid = 2, .fid = f};
  p9_icat *t;
  int err;
  t = p9_icat_new(E.srv, NULL, &err);
  cr_assert_eq(p9_srv_session_set(p9_icat_transport(t), &s), -EBADF);
  s.nfid = 1;
  s.msize = 100;
  cr_assert_eq(p9_srv_session_set(p9_icat_transport(t), &s), -EINVAL);
  s.msize = 8192;
  cr_assert_eq(p9_srv_session_set(p9_icat_transport(t), &s), 0);
  cr_assert_eq(p9_srv_session_set(p9_icat_transport(t), &s), -EBUSY);
  p9_icat_free(t);
}

/* An image is checked whole before anything is built from it. */
Test(icat, images_that_are_not_trees_are_refused) {
  p9_memfs_image img;
  int err;
  p9_memfs_put(E.fs, "d", NULL, (size_t)-1);
  p9_memfs_put(E.fs, "d/x", "abc", 3);
  p9_memfs_put(E.fs, "y", "z", 1);
  p9_memfs_image_get(E.fs, &img);
  struct {
    uint32_t *field;
    uint32_t bad;
  } cases[] = {
      {&img.slot[1].parent, 2},          /* d's parent is x, a file */
      {&img.slot[2].sibling, 1},         /* x's sibling is its parent */
      {&img.slot[0].child, 7},           /* out of range */
      {&img.slot[3].uid, 99},            /* no such user */
      {&img.slot[1].child, 0xffffffffu}, /* x never reached */
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    uint32_t keep = *cases[i].field;
    *cases[i].field = cases[i].bad;
    cr_expect_null(p9_memfs_load(&img, &err), "case %zu loaded", i);
    *cases[i].field = keep;
  }
  p9_memfs *fs = p9_memfs_load(&img, &err);
  cr_assert_not_null(fs, "the untouched image loads");
  p9_memfs_free(fs);
  p9_memfs_image_free(&img);
}
