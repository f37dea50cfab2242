/* Unit tests for the pipe servant #| (vfs/devpipe.c).
 *
 * Invariants under test: each attach of #| is a new pipe whose data and
 * data1 are its two ends, what one end writes the other reads; an empty
 * end is -EAGAIN while the other end is open or was never opened, and EOF
 * once the other end's last open chan closed (by vfs_dev_close or by its
 * last reference); a full buffer is -EAGAIN (a write up to UK_PIPE_BUF is
 * all or nothing, a larger one takes what fits), a write whose reader
 * hung up -EPIPE, each leaving the region as it was; a pipe lives while a
 * chan names it and is cleared when the last goes; vfs_pipe_new gives
 * both ends open; a full pipe or chan table is -ENFILE.
 */
#include "vfs_fixture.h"
#include "vfs_servant.h"

static uint32_t p0;

static void init(void) {
  kd_new();
  p0 = proc_new("sh", 100);
  host_install(p0);
}

TestSuite(vfs_devpipe, .init = init, .fini = servant_fini);

static uint32_t pipe_index(uint32_t c) {
  return UK_VFS_INDEX(kd->vfs.chan[UK_VFS_INDEX(c)].dev);
}

static void pipe_pair(uint32_t *a, uint32_t *b) {
  cr_assert_eq(vfs_pipe_new(kd, a, b), 0);
}

Test(vfs_devpipe, each_attach_is_a_new_pipe_with_two_ends, .timeout = 10) {
  uint32_t x = walk_to(p0, "#|"), y = walk_to(p0, "#|");
  cr_assert_neq(pipe_index(x), pipe_index(y));
  cr_assert_eq(vfs_dev_open(kd, x, VFS_OREAD), 0);
  struct vfs_dir d[3];
  cr_assert_eq(vfs_dev_read(kd, x, d, sizeof d, 0), 2 * (long)sizeof d[0]);
  cr_assert_str_eq(d[0].name, "data");
  cr_assert_str_eq(d[1].name, "data1");
  vfs_chan_unref(kd, x);
  vfs_chan_unref(kd, y);
  uint32_t none;
  snap_take();
  cr_assert_eq(vfs_namec(kd, p0, "#|/nope", 7, &none), -ENOENT);
  cr_assert_eq(vfs_namec(kd, p0, "#|x", 3, &none), -EINVAL);
  snap_same();
}

Test(vfs_devpipe, a_bound_pipe_joins_its_ends, .timeout = 10) {
  bind_in(p0, "#|", "/mnt", VFS_MREPL);
  uint32_t a = open_in(p0, "/mnt/data", VFS_ORDWR);
  uint32_t b = open_in(p0, "/mnt/data1", VFS_ORDWR);
  cr_assert_eq(pipe_index(a), pipe_index(b));
  char buf[16];
  cr_assert_eq(write_str(a, "ping"), 4);
  cr_assert_eq(write_str(b, "pong!"), 5);
  struct vfs_dir st;
  cr_assert_eq(vfs_dev_stat(kd, b, &st), 0);
  cr_assert_eq(st.length, 4, "bytes waiting at data1");
  cr_assert_eq(vfs_dev_read(kd, b, buf, sizeof buf, 0), 4);
  cr_assert(memcmp(buf, "ping", 4) == 0);
  cr_assert_eq(vfs_dev_read(kd, a, buf, 2, 0), 2);
  cr_assert_eq(vfs_dev_read(kd, a, buf + 2, sizeof buf, 0), 3);
  cr_assert(memcmp(buf, "pong!", 5) == 0);
  vfs_chan_unref(kd, a);
  vfs_chan_unref(kd, b);
}

Test(vfs_devpipe, empty_would_block_then_eof_when_the_writer_closes,
     .timeout = 10) {
  uint32_t a, b;
  pipe_pair(&a, &b);
  char buf[8];
  snap_take();
  cr_assert_eq(vfs_dev_read(kd, b, buf, sizeof buf, 0), -EAGAIN);
  snap_same();
  cr_assert_eq(write_str(a, "last"), 4);
  cr_assert_eq(vfs_dev_close(kd, a), 0);
  cr_assert_eq(vfs_dev_read(kd, b, buf, sizeof buf, 0), 4, "drained first");
  cr_assert_eq(vfs_dev_read(kd, b, buf, sizeof buf, 0), 0, "then EOF");
  vfs_chan_unref(kd, a);
  vfs_chan_unref(kd, b);
}

Test(vfs_devpipe, the_last_reference_closes_too, .timeout = 10) {
  uint32_t a, b;
  pipe_pair(&a, &b);
  char buf[8];
  cr_assert_eq(vfs_chan_ref(kd, a), 0); /* a dup */
  vfs_chan_unref(kd, a);
  cr_assert_eq(vfs_dev_read(kd, b, buf, sizeof buf, 0), -EAGAIN,
               "one reference left: still open");
  vfs_chan_unref(kd, a);
  cr_assert_eq(vfs_dev_read(kd, b, buf, sizeof buf, 0), 0);
  snap_take();
  cr_assert_eq(write_str(b, "x"), -EPIPE);
  snap_same();
  vfs_chan_unref(kd, b);
}

Test(vfs_devpipe, an_end_never_opened_is_not_hung_up, .timeout = 10) {
  bind_in(p0, "#|", "/mnt", VFS_MREPL);
  uint32_t a = open_in(p0, "/mnt/data", VFS_ORDWR);
  char buf[8];
  cr_assert_eq(vfs_dev_read(kd, a, buf, sizeof buf, 0), -EAGAIN);
  cr_assert_eq(write_str(a, "early"), 5, "waits for its reader");
  uint32_t b = open_in(p0, "/mnt/data1", VFS_OREAD);
  cr_assert_eq(vfs_dev_read(kd, b, buf, sizeof buf, 0), 5);
  uint32_t b2 = open_in(p0, "/mnt/data1", VFS_OREAD);
  vfs_chan_unref(kd, b);
  cr_assert_eq(write_str(a, "more"), 4, "data1 is still open once");
  vfs_chan_unref(kd, b2);
  cr_assert_eq(write_str(a, "more"), -EPIPE);
  vfs_chan_unref(kd, a);
}

Test(vfs_devpipe, a_full_buffer_would_block, .timeout = 10) {
  static char big[2 * UK_PIPE_BUF], out[2 * UK_PIPE_BUF];
  for (size_t i = 0; i < sizeof big; i++)
    big[i] = (char)i;
  uint32_t a, b;
  pipe_pair(&a, &b);
  cr_assert_eq(vfs_dev_write(kd, a, big, 100, 0), 100);
  snap_take();
  cr_assert_eq(vfs_dev_write(kd, a, big, UK_PIPE_BUF, 0), -EAGAIN,
               "all or nothing up to UK_PIPE_BUF");
  snap_same();
  cr_assert_eq(vfs_dev_write(kd, a, big + 100, UK_PIPE_BUF + 1, 0),
               UK_PIPE_BUF - 100, "a larger write takes what fits");
  snap_take();
  cr_assert_eq(vfs_dev_write(kd, a, big, 1, 0), -EAGAIN);
  cr_assert_eq(vfs_dev_write(kd, a, big, UK_PIPE_BUF + 1, 0), -EAGAIN);
  snap_same();
  cr_assert_eq(vfs_dev_write(kd, a, big, 0, 0), 0);
  cr_assert_eq(vfs_dev_read(kd, b, out, sizeof out, 0), UK_PIPE_BUF);
  cr_assert(memcmp(out, big, UK_PIPE_BUF) == 0, "in order, across the wrap");
  vfs_chan_unref(kd, a);
  vfs_chan_unref(kd, b);
}

Test(vfs_devpipe, the_pipe_goes_with_its_last_chan, .timeout = 10) {
  bind_in(p0, "#|", "/mnt", VFS_MREPL);
  uint32_t a = open_in(p0, "/mnt/data", VFS_ORDWR);
  uint32_t i = pipe_index(a);
  uint16_t gen = kd->vfs.pipe[i].gen;
  write_str(a, "kept");
  vfs_chan_unref(kd, a);
  cr_assert_eq(kd->vfs.pipe[i].ring[1].len, 4, "the bound root names it");
  uint32_t mnt = walk_to(p0, "/mnt");
  cr_assert_geq(vfs_unmount(kd, kd->vfs.vproc[p0].ns, UK_VFS_NONE, mnt), 0);
  vfs_chan_unref(kd, mnt);
  cr_assert_eq(kd->vfs.pipe[i].ring[1].len, 0, "cleared");
  cr_assert_eq(kd->vfs.pipe[i].hungup[0], 0);
  cr_assert_eq(kd->vfs.pipe[i].gen, (uint16_t)(gen + 1));
}

Test(vfs_devpipe, pipe_new_gives_two_open_ends, .timeout = 10) {
  uint32_t a, b;
  pipe_pair(&a, &b);
  const struct uk_chan *x = &kd->vfs.chan[UK_VFS_INDEX(a)];
  const struct uk_chan *y = &kd->vfs.chan[UK_VFS_INDEX(b)];
  cr_assert(x->flags & y->flags & UK_CHAN_F_OPEN);
  cr_assert_eq(x->mode, VFS_ORDWR);
  cr_assert_str_eq(x->path, "#|/data");
  cr_assert_str_eq(y->path, "#|/data1");
  cr_assert_eq(x->ref, 1);
  cr_assert_eq(x->dev, y->dev);
  vfs_chan_unref(kd, a);
  vfs_chan_unref(kd, b);
}

Test(vfs_devpipe, full_tables_are_refused, .timeout = 30) {
  uint32_t end[UK_PIPE_MAX][2], a, b;
  for (int i = 0; i < UK_PIPE_MAX; i++)
    pipe_pair(&end[i][0], &end[i][1]);
  uint32_t none;
  snap_take();
  cr_assert_eq(vfs_pipe_new(kd, &a, &b), -ENFILE);
  cr_assert_eq(vfs_namec(kd, p0, "#|", 2, &none), -ENFILE);
  snap_same();
  for (int i = 0; i < UK_PIPE_MAX; i++) {
    vfs_chan_unref(kd, end[i][0]);
    vfs_chan_unref(kd, end[i][1]);
  }
  static uint32_t fill[UK_CHAN_MAX];
  uint32_t n = 0;
  while (vfs_chan_live(kd) < UK_CHAN_MAX - 1)
    fill[n++] = dir_chan(1);
  snap_take();
  cr_assert_eq(vfs_pipe_new(kd, &a, &b), -ENFILE, "room for one chan only");
  snap_same();
  while (n > 0)
    vfs_chan_unref(kd, fill[--n]);
}

Test(vfs_devpipe, check_catches_a_chan_of_no_pipe, .timeout = 10) {
  uint32_t a, b;
  pipe_pair(&a, &b);
  char why[200];
  kd->vfs.pipe[pipe_index(a)].gen++;
  cr_assert_eq(vfs_check(kd, why, sizeof why), -EUCLEAN);
  cr_assert(strstr(why, "pipe") != NULL, "%s", why);
  kd->vfs.pipe[pipe_index(a)].gen--;
  kd->vfs.pipe[pipe_index(a)].ring[0].len = UK_PIPE_BUF + 1;
  cr_assert_eq(vfs_check(kd, why, sizeof why), -EUCLEAN);
  kd->vfs.pipe[pipe_index(a)].ring[0].len = 0;
  vfs_chan_unref(kd, a);
  vfs_chan_unref(kd, b);
  kd->vfs.pipe[0].ring[1].len = 3;
  cr_assert_eq(vfs_check(kd, why, sizeof why), -EUCLEAN, "%s", why);
  kd->vfs.pipe[0].ring[1].len = 0;
}
