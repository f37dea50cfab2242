/* Unit tests for the servant table, the dispatch and the generic ops
 * (vfs/dev.c) and for the root servant #/ (vfs/devroot.c).
 *
 * Invariants under test: a servant is found by its letter and a letter
 * has one servant; a NULL op takes the default and a servant's own op
 * wins; the dispatch refuses a dead chan, an unknown servant, and an op
 * the chan's open mode does not allow, changing nothing; #/ is the fixed
 * tree vfs/devroot.c documents, walked, stated and read as directories.
 */
#include "vfs_fixture.h"
#include "vfs_tdev.h"

static void init(void) {
  kd_new();
  tdev_register();
}

TestSuite(vfs_dev, .init = init, .fini = kd_free);

static const char *const root_names[] = {"bin", "dev", "env",  "fd",  "mnt",
                                         "n",   "net", "proc", "srv", "tmp"};
#define NROOT 10

/* A chan in the table for what servant dc's attach gives. */
static uint32_t attach_ok(uint8_t dc) {
  struct uk_chan c;
  cr_assert_eq(vfs_dev_attach(kd, dc, "", &c), 0);
  cr_assert_eq(c.type, dc);
  return chan_of(c.type, c.dev, c.qid.path, c.qid.type & UK_QTDIR);
}

Test(vfs_dev, servants_are_found_by_letter, .timeout = 10) {
  cr_assert_eq(vfs_dev_lookup('/'), &vfs_rootdev);
  cr_assert_str_eq(vfs_rootdev.name, "root");
  cr_assert_eq(vfs_dev_lookup('t'), &tdev);
  cr_assert_null(vfs_dev_lookup('q'));
}

Test(vfs_dev, a_letter_has_one_servant, .timeout = 10) {
  static const struct vfs_dev other = {.dc = '/', .name = "other"};
  static struct vfs_dev many[VFS_DEV_EXTRA];
  cr_assert_eq(vfs_dev_add(&tdev), 0); /* again: no change */
  cr_assert_eq(vfs_dev_add(&other), -EEXIST);
  int added = 2, r = 0;
  for (int i = 0; i < VFS_DEV_EXTRA && r == 0; i++) {
    many[i] = (struct vfs_dev){.dc = (uint8_t)('A' + i), .name = "many"};
    if ((r = vfs_dev_add(&many[i])) == 0)
      added++;
  }
  cr_assert_eq(r, -ENOSPC);
  cr_assert_eq(added, VFS_DEV_EXTRA);
}

Test(vfs_dev, attach_gives_the_root_and_refuses_a_spec, .timeout = 10) {
  struct uk_chan c;
  cr_assert_eq(vfs_dev_attach(kd, '/', "", &c), 0);
  cr_assert_eq(c.type, '/');
  cr_assert_eq(c.qid.path, 0);
  cr_assert_eq(c.qid.type, UK_QTDIR);
  cr_assert_eq(vfs_dev_attach(kd, '/', "x", &c), -EINVAL);
  cr_assert_eq(vfs_dev_attach(kd, 'q', "", &c), -ENODEV);
}

Test(vfs_dev, root_walks_to_each_directory_and_back, .timeout = 10) {
  struct uk_chan root;
  struct uk_qid q;
  vfs_dev_attach(kd, '/', "", &root);
  for (int i = 0; i < NROOT; i++) {
    cr_assert_eq(vfs_dev_walk(kd, &root, root_names[i], &q), 0, "%s",
                 root_names[i]);
    cr_assert_eq(q.path, (uint64_t)i + 1);
    cr_assert_eq(q.type, UK_QTDIR);
    struct uk_chan sub = root;
    sub.qid = q;
    struct uk_qid up, none;
    cr_assert_eq(vfs_dev_walk(kd, &sub, "..", &up), 0);
    cr_assert_eq(up.path, 0);
    cr_assert_eq(vfs_dev_walk(kd, &sub, "x", &none), -ENOENT);
  }
  cr_assert_eq(vfs_dev_walk(kd, &root, "..", &q), 0);
  cr_assert_eq(q.path, 0, "the root is its own parent");
  cr_assert_eq(vfs_dev_walk(kd, &root, "nope", &q), -ENOENT);
  cr_assert_eq(vfs_dev_walk(kd, &root, "", &q), -ENOENT);
}

Test(vfs_dev, walk_in_a_file_or_of_no_servant_is_refused, .timeout = 10) {
  struct uk_chan f = {.type = 't', .qid = {.path = 1}}, x = {.type = 'q'};
  struct uk_qid q;
  x.qid.type = UK_QTDIR;
  cr_assert_eq(vfs_dev_walk(kd, &f, "g", &q), -ENOTDIR);
  cr_assert_eq(vfs_dev_walk(kd, &x, "g", &q), -ENODEV);
}

Test(vfs_dev, stat_describes_the_chan, .timeout = 10) {
  uint32_t r = attach_ok('/'), dev = chan_of('/', 0, 2, true);
  struct vfs_dir d;
  cr_assert_eq(vfs_dev_stat(kd, r, &d), 0);
  cr_assert_str_eq(d.name, "/");
  cr_assert_eq(d.mode, VFS_DMDIR | 0555u);
  cr_assert_eq(vfs_dev_stat(kd, dev, &d), 0);
  cr_assert_str_eq(d.name, "dev");
  cr_assert_eq(d.qid.path, 2);
  uint32_t gone = chan_of('/', 0, 99, true);
  cr_assert_eq(vfs_dev_stat(kd, gone, &d), -ENOENT);
  vfs_chan_unref(kd, gone);
  cr_assert_eq(vfs_dev_stat(kd, gone, &d), -EBADF);
  uint32_t orphan = chan_of('q', 0, 0, true);
  cr_assert_eq(vfs_dev_stat(kd, orphan, &d), -ENODEV);
  vfs_chan_unref(kd, orphan);
  vfs_chan_unref(kd, r);
  vfs_chan_unref(kd, dev);
}

Test(vfs_dev, open_checks_the_mode, .timeout = 10) {
  uint32_t r = attach_ok('/');
  snap_take();
  cr_assert_eq(vfs_dev_open(kd, r, VFS_OWRITE), -EISDIR);
  cr_assert_eq(vfs_dev_open(kd, r, VFS_ORDWR), -EISDIR);
  cr_assert_eq(vfs_dev_open(kd, r, VFS_OREAD | VFS_OTRUNC), -EISDIR);
  cr_assert_eq(vfs_dev_open(kd, r, VFS_OREAD | VFS_ORCLOSE), -EPERM);
  cr_assert_eq(vfs_dev_open(kd, r, 0x80), -EINVAL);
  cr_assert_eq(vfs_dev_open(kd, UK_VFS_NONE, VFS_OREAD), -EBADF);
  snap_same();
  cr_assert_eq(vfs_dev_open(kd, r, VFS_OREAD), 0);
  const struct uk_chan *c = &kd->vfs.chan[UK_VFS_INDEX(r)];
  cr_assert(c->flags & UK_CHAN_F_OPEN);
  cr_assert_eq(c->mode, VFS_OREAD);
  snap_take();
  cr_assert_eq(vfs_dev_open(kd, r, VFS_OREAD), -EBADF, "already open");
  snap_same();
  cr_assert_eq(vfs_dev_close(kd, r), 0);
  cr_assert_eq(c->flags & UK_CHAN_F_OPEN, 0);
  cr_assert_eq(vfs_dev_close(kd, r), -EBADF, "not open");
  vfs_chan_unref(kd, r);
}

Test(vfs_dev, root_reads_its_entries_in_order_in_pieces, .timeout = 10) {
  const uint32_t rec = sizeof(struct vfs_dir);
  uint32_t r = attach_ok('/');
  struct vfs_dir d[4];
  cr_assert_eq(vfs_dev_read(kd, r, d, sizeof d, 0), -EBADF, "not open");
  cr_assert_eq(vfs_dev_open(kd, r, VFS_OREAD), 0);
  snap_take();
  cr_assert_eq(vfs_dev_read(kd, r, d, rec - 1, 0), -EINVAL);
  cr_assert_eq(vfs_dev_read(kd, r, d, sizeof d, 1), -EINVAL);
  cr_assert_eq(vfs_dev_write(kd, r, "x", 1, 0), -EBADF);
  cr_assert_eq(vfs_dev_create(kd, r, "x", 0777, VFS_OREAD), -EBADF);
  snap_same();
  int seen = 0;
  for (uint64_t off = 0;;) {
    long n = vfs_dev_read(kd, r, d, 3 * rec + 7, off);
    cr_assert_geq(n, 0);
    cr_assert_eq(n % rec, 0);
    if (n == 0)
      break;
    for (long k = 0; k < n / (long)rec; k++, seen++) {
      cr_assert_str_eq(d[k].name, root_names[seen]);
      cr_assert_eq(d[k].qid.path, (uint64_t)seen + 1);
      cr_assert_eq(d[k].mode, VFS_DMDIR | 0555u);
    }
    off += (uint64_t)n;
  }
  cr_assert_eq(seen, NROOT);
  uint32_t srv = chan_of('/', 0, 9, true);
  cr_assert_eq(vfs_dev_open(kd, srv, VFS_OREAD), 0);
  cr_assert_eq(vfs_dev_read(kd, srv, d, sizeof d, 0), 0, "empty");
  vfs_chan_unref(kd, srv);
  vfs_chan_unref(kd, r);
}

Test(vfs_dev, root_refuses_create_remove_and_write, .timeout = 10) {
  uint32_t r = attach_ok('/');
  snap_take();
  cr_assert_eq(vfs_dev_create(kd, r, "x", 0777, VFS_OREAD), -EPERM);
  cr_assert_eq(vfs_dev_remove(kd, r), -EPERM);
  snap_same();
  vfs_chan_unref(kd, r);
}

Test(vfs_dev, a_servants_own_ops_win_over_the_defaults, .timeout = 10) {
  uint32_t f = chan_of('t', 0, 3, false), d = chan_of('t', 0, 2, true);
  char buf[16] = "";
  cr_assert_eq(vfs_dev_open(kd, f, VFS_ORDWR), 0);
  cr_assert_eq(vfs_dev_read(kd, f, buf, sizeof buf, 0), 5);
  cr_assert(memcmp(buf, "file3", 5) == 0);
  cr_assert_eq(vfs_dev_read(kd, f, buf, 2, 3), 2);
  cr_assert(memcmp(buf, "e3", 2) == 0);
  cr_assert_eq(vfs_dev_write(kd, f, "hello", 5, 0), 5);
  cr_assert(twritten_n == 5 && memcmp(twritten, "hello", 5) == 0);
  cr_assert_eq(vfs_dev_open(kd, d, VFS_OREAD), 0);
  struct vfs_dir e[3];
  cr_assert_eq(vfs_dev_read(kd, d, e, sizeof e, 0), 2 * (long)sizeof e[0]);
  cr_assert_str_eq(e[0].name, "g");
  cr_assert_str_eq(e[1].name, "h");
  cr_assert_eq(vfs_dev_close(kd, f), 0);
  cr_assert_eq(vfs_dev_open(kd, f, VFS_OWRITE), 0);
  cr_assert_eq(vfs_dev_read(kd, f, buf, sizeof buf, 0), -EBADF, "write only");
  vfs_chan_unref(kd, f);
  vfs_chan_unref(kd, d);
}

Test(vfs_dev, default_read_of_a_file_is_refused, .timeout = 10) {
  uint32_t f = chan_of(UK_CHAN_MNT, 1, 1, false);
  char buf[8];
  cr_assert_eq(vfs_dev_open(kd, f, VFS_ORDWR), 0);
  cr_assert_eq(vfs_dev_read(kd, f, buf, sizeof buf, 0), -EPERM);
  cr_assert_eq(vfs_dev_write(kd, f, buf, 1, 0), -EPERM);
  vfs_chan_unref(kd, f);
  vfs_chan_clunked(kd, vfs_clunk_next(kd));
}

Test(vfs_dev, every_servant_of_vfs_is_registered, .timeout = 10) {
  static const struct {
    uint8_t dc;
    const struct vfs_dev *dev;
  } want[] = {{'/', &vfs_rootdev}, {'c', &vfs_consdev}, {'e', &vfs_envdev},
              {'s', &vfs_srvdev},  {'|', &vfs_pipedev}, {'p', &vfs_procdev},
              {'k', &vfs_kerndev}};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    cr_assert_eq(vfs_dev_lookup(want[i].dc), want[i].dev, "#%c", want[i].dc);
    cr_assert_eq(want[i].dev->dc, want[i].dc);
  }
}

Test(vfs_dev, without_a_host_there_is_no_caller_clock_or_kill, .timeout = 10) {
  vfs_host_set(NULL);
  cr_assert_null(vfs_host_get());
  cr_assert_eq(vfs_up(), UK_NIL);
  cr_assert_eq(vfs_now_ns(), 0);
  cr_assert_eq(vfs_kill(0, "kill"), -ENOSYS);
  struct vfs_host h = {.up = 3};
  vfs_host_set(&h);
  cr_assert_eq(vfs_host_get(), &h);
  cr_assert_eq(vfs_up(), 3);
  cr_assert_eq(vfs_now_ns(), 0, "a host without a clock");
  cr_assert_eq(vfs_kill(0, "kill"), -ENOSYS, "a host without kill");
  vfs_host_set(NULL);
}

/* A servant that counts its close and free calls. */
static int closes, frees;
static uint64_t freed_path;

static void cclose(struct uk_kdata *k, struct uk_chan *c) {
  (void)k;
  cr_assert(c->flags & UK_CHAN_F_OPEN, "closed while open");
  closes++;
}

static void cfree(struct uk_kdata *k, const struct uk_chan *c) {
  (void)k;
  cr_assert_eq(c->state, UK_CHAN_FREE, "already free when told");
  freed_path = c->qid.path;
  frees++;
}

static const struct vfs_dev countdev = {
    .dc = 'n', .name = "count", .gen = tgen, .close = cclose, .free = cfree};

Test(vfs_dev, the_last_reference_closes_once_then_frees, .timeout = 10) {
  cr_assert_eq(vfs_dev_add(&countdev), 0);
  uint32_t a = chan_of('n', 0, 3, false), b = chan_of('n', 0, 1, false);
  cr_assert_eq(vfs_dev_open(kd, a, VFS_OREAD), 0);
  cr_assert_eq(vfs_chan_ref(kd, a), 0);
  vfs_chan_unref(kd, a);
  cr_assert_eq(closes + frees, 0, "a reference is left");
  vfs_chan_unref(kd, a);
  cr_assert_eq(closes, 1, "open at its last reference: closed");
  cr_assert_eq(frees, 1);
  cr_assert_eq(freed_path, 3);
  cr_assert_eq(vfs_dev_open(kd, b, VFS_OREAD), 0);
  cr_assert_eq(vfs_dev_close(kd, b), 0);
  cr_assert_eq(closes, 2);
  vfs_chan_unref(kd, b);
  cr_assert_eq(closes, 2, "closed already: not again");
  cr_assert_eq(frees, 2, "but freed");
  uint32_t never = chan_of('n', 0, 1, false);
  vfs_chan_unref(kd, never);
  cr_assert_eq(closes, 2, "never opened: no close");
  cr_assert_eq(frees, 3);
}
