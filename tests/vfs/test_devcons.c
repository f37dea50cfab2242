/* Unit tests for the console servant #c (vfs/devcons.c).
 *
 * Invariants under test: #c lists cons consctl null zero time pid; cons
 * output lands in the output ring, which keeps the newest UK_CONS_OUT
 * bytes and which vfs_cons_output mirrors from any point; cons input is
 * what vfs_cons_input put there, drained by reads, and an empty ring is
 * -EAGAIN with the region unchanged; consctl takes rawon/rawoff only and
 * cannot be read; null, zero, time (the host's clock) and pid (the
 * caller's, from the host) read as documented, and none takes a write it
 * should refuse.
 */
#include "vfs_fixture.h"
#include "vfs_servant.h"

static uint32_t p0;

static void init(void) {
  kd_new();
  p0 = proc_new("sh", 4242);
  host_install(p0);
}

TestSuite(vfs_devcons, .init = init, .fini = servant_fini);

Test(vfs_devcons, lists_its_files_in_order, .timeout = 10) {
  static const char *const want[] = {"cons", "consctl", "null",
                                     "zero", "time",    "pid"};
  struct vfs_dir d[8], st;
  cr_assert_eq(list_in(p0, "#c", d, 8), 6);
  for (int i = 0; i < 6; i++) {
    cr_assert_str_eq(d[i].name, want[i]);
    cr_assert_eq(d[i].qid.path, (uint64_t)i + 1);
    cr_assert_eq(d[i].qid.type, 0);
  }
  stat_in(p0, "#c/time", &st);
  cr_assert_str_eq(st.name, "time");
  cr_assert_eq(st.mode, 0444u);
  uint32_t none;
  snap_take();
  cr_assert_eq(vfs_namec(kd, p0, "#c/nope", 7, &none), -ENOENT);
  cr_assert_eq(vfs_namec(kd, p0, "#cx", 3, &none), -EINVAL, "no spec");
  cr_assert_eq(vfs_namec(kd, p0, "#c/cons/x", 9, &none), -ENOTDIR);
  snap_same();
}

Test(vfs_devcons, output_goes_to_the_ring_the_kernel_mirrors, .timeout = 10) {
  uint32_t c = open_in(p0, "#c/cons", VFS_OWRITE);
  cr_assert_eq(write_str(c, "hello "), 6);
  cr_assert_eq(write_str(c, "world\n"), 6);
  char buf[64];
  uint64_t seq = 0;
  cr_assert_eq(vfs_cons_output(kd, &seq, buf, 5), 5);
  cr_assert(memcmp(buf, "hello", 5) == 0);
  cr_assert_eq(vfs_cons_output(kd, &seq, buf, sizeof buf), 7);
  cr_assert(memcmp(buf, " world\n", 7) == 0);
  cr_assert_eq(seq, 12);
  cr_assert_eq(vfs_cons_output(kd, &seq, buf, sizeof buf), 0, "all seen");
  vfs_chan_unref(kd, c);
}

Test(vfs_devcons, full_output_overwrites_the_oldest, .timeout = 10) {
  uint32_t c = open_in(p0, "#c/cons", VFS_OWRITE);
  static char big[UK_CONS_OUT + 100];
  for (size_t i = 0; i < sizeof big; i++)
    big[i] = (char)('a' + i % 26);
  cr_assert_eq(vfs_dev_write(kd, c, big, 100, 0), 100);
  cr_assert_eq(vfs_dev_write(kd, c, big + 100, UK_CONS_OUT, 0), UK_CONS_OUT);
  cr_assert_eq(kd->vfs.cons.out_len, UK_CONS_OUT);
  cr_assert_eq(kd->vfs.cons.out_total, UK_CONS_OUT + 100);
  static char got[UK_CONS_OUT + 100];
  uint64_t seq = 0; /* behind what is kept: skips to the oldest kept */
  cr_assert_eq(vfs_cons_output(kd, &seq, got, sizeof got), UK_CONS_OUT);
  cr_assert(memcmp(got, big + 100, UK_CONS_OUT) == 0);
  cr_assert_eq(seq, UK_CONS_OUT + 100);
  vfs_chan_unref(kd, c);
}

Test(vfs_devcons, input_is_read_and_empty_would_block, .timeout = 10) {
  uint32_t c = open_in(p0, "#c/cons", VFS_ORDWR);
  char buf[16];
  snap_take();
  cr_assert_eq(vfs_dev_read(kd, c, buf, sizeof buf, 0), -EAGAIN);
  snap_same();
  cr_assert_eq(vfs_cons_input(kd, "ls -l\n", 6), 6);
  cr_assert_eq(vfs_dev_read(kd, c, buf, 3, 0), 3);
  cr_assert(memcmp(buf, "ls ", 3) == 0);
  cr_assert_eq(vfs_dev_read(kd, c, buf, sizeof buf, 0), 3);
  cr_assert(memcmp(buf, "-l\n", 3) == 0);
  cr_assert_eq(vfs_dev_read(kd, c, buf, sizeof buf, 0), -EAGAIN, "drained");
  vfs_chan_unref(kd, c);
}

Test(vfs_devcons, input_takes_what_fits, .timeout = 10) {
  static char in[UK_CONS_IN + 10];
  memset(in, 'x', sizeof in);
  cr_assert_eq(vfs_cons_input(kd, in, 10), 10);
  cr_assert_eq(vfs_cons_input(kd, in, sizeof in), UK_CONS_IN - 10);
  cr_assert_eq(vfs_cons_input(kd, in, 1), 0, "full");
  uint32_t c = open_in(p0, "#c/cons", VFS_OREAD);
  static char out[UK_CONS_IN + 10];
  cr_assert_eq(vfs_dev_read(kd, c, out, sizeof out, 0), UK_CONS_IN);
  cr_assert_eq(vfs_cons_input(kd, "ab", 2), 2, "room again, wrapped");
  cr_assert_eq(vfs_dev_read(kd, c, out, sizeof out, 0), 2);
  cr_assert(memcmp(out, "ab", 2) == 0);
  vfs_chan_unref(kd, c);
}

Test(vfs_devcons, consctl_takes_rawon_and_rawoff_only, .timeout = 10) {
  uint32_t c = open_in(p0, "#c/consctl", VFS_ORDWR);
  cr_assert_eq(write_str(c, "rawon"), 5);
  cr_assert_eq(kd->vfs.cons.raw, 1);
  cr_assert_eq(write_str(c, "rawoff\n"), 7);
  cr_assert_eq(kd->vfs.cons.raw, 0);
  char buf[8];
  snap_take();
  cr_assert_eq(write_str(c, "raw"), -EINVAL);
  cr_assert_eq(write_str(c, "rawonx"), -EINVAL);
  cr_assert_eq(write_str(c, ""), -EINVAL);
  cr_assert_eq(vfs_dev_read(kd, c, buf, sizeof buf, 0), -EPERM, "write-only");
  snap_same();
  vfs_chan_unref(kd, c);
}

Test(vfs_devcons, null_and_zero, .timeout = 10) {
  uint32_t n = open_in(p0, "#c/null", VFS_ORDWR);
  uint32_t z = open_in(p0, "#c/zero", VFS_OREAD);
  char buf[32];
  memset(buf, 'q', sizeof buf);
  cr_assert_eq(vfs_dev_read(kd, n, buf, sizeof buf, 0), 0);
  cr_assert_eq(write_str(n, "gone"), 4);
  cr_assert_eq(vfs_dev_read(kd, z, buf, sizeof buf, 1000), (long)sizeof buf);
  for (size_t i = 0; i < sizeof buf; i++)
    cr_assert_eq(buf[i], 0);
  vfs_chan_unref(kd, z);
  z = open_in(p0, "#c/zero", VFS_ORDWR);
  snap_take();
  cr_assert_eq(write_str(z, "x"), -EPERM);
  snap_same();
  vfs_chan_unref(kd, z);
  vfs_chan_unref(kd, n);
}

Test(vfs_devcons, time_is_the_host_clock_in_decimal, .timeout = 10) {
  fh.now = 1234567890123ull;
  uint32_t t = open_in(p0, "#c/time", VFS_ORDWR);
  char buf[32];
  cr_assert_eq(read_all(t, buf, sizeof buf), 13);
  cr_assert_str_eq(buf, "1234567890123");
  cr_assert_eq(vfs_dev_read(kd, t, buf, 4, 9), 4);
  cr_assert(memcmp(buf, "0123", 4) == 0);
  cr_assert_eq(write_str(t, "5"), -EPERM);
  vfs_host_set(NULL);
  cr_assert_eq(read_all(t, buf, sizeof buf), 1);
  cr_assert_str_eq(buf, "0", "no host: the clock reads 0");
  vfs_chan_unref(kd, t);
}

Test(vfs_devcons, pid_is_the_callers, .timeout = 10) {
  uint32_t q = proc_new("other", 77);
  uint32_t c = open_in(p0, "#c/pid", VFS_OREAD);
  char buf[16];
  cr_assert_eq(read_all(c, buf, sizeof buf), 4);
  cr_assert_str_eq(buf, "4242");
  fh.h.up = q;
  read_all(c, buf, sizeof buf);
  cr_assert_str_eq(buf, "77");
  fh.h.up = UK_NIL;
  cr_assert_eq(vfs_dev_read(kd, c, buf, sizeof buf, 0), -ESRCH);
  vfs_host_set(NULL);
  cr_assert_eq(vfs_dev_read(kd, c, buf, sizeof buf, 0), -ESRCH);
  vfs_chan_unref(kd, c);
}

Test(vfs_devcons, check_catches_rings_out_of_bounds, .timeout = 10) {
  char why[200];
  kd->vfs.cons.out_len = UK_CONS_OUT + 1;
  cr_assert_eq(vfs_check(kd, why, sizeof why), -EUCLEAN);
  cr_assert(strstr(why, "console") != NULL, "%s", why);
  kd->vfs.cons.out_len = 0;
  kd->vfs.cons.in_head = UK_CONS_IN;
  cr_assert_eq(vfs_check(kd, why, sizeof why), -EUCLEAN);
  kd->vfs.cons.in_head = 0;
}

/* [Plan 9] a device file has nothing to truncate: `echo x > /dev/cons`
 * opens with OTRUNC, which is dropped, and writes. */
Test(vfs_devcons, otrunc_is_dropped_for_its_files, .timeout = 10) {
  uint32_t c = open_in(p0, "#c/cons", VFS_OWRITE | VFS_OTRUNC);
  cr_assert_eq(kd->vfs.chan[UK_VFS_INDEX(c)].mode, VFS_OWRITE);
  cr_assert_eq(vfs_dev_write(kd, c, "x\n", 2, 0), 2);
  uint32_t n = open_in(p0, "#c/null", VFS_OWRITE | VFS_OTRUNC);
  cr_assert_eq(vfs_dev_write(kd, n, "y", 1, 0), 1);
  vfs_chan_unref(kd, c);
  vfs_chan_unref(kd, n);
}
