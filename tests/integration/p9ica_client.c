/* p9ica_client: a test client that speaks 9P2000 to a 9P file server over
 * ICAs (uksim/p9ica.h) with net9p's codec and ap_call, as the kernel's
 * mount driver does.  Commands run in order; the first failure prints why
 * and exits 1.
 *
 *   p9ica_client [--service S] CMD...
 *     basic          walk, open, read, write (in the frame and in a data
 *                    ICA), create, remove, stat, wstat, directory reads
 *     garbage        bad control ICAs: each answered with a negative
 *                    status or an R-message, and the server serves on
 *     put PATH N     creates PATH with N pattern bytes (one bulk write)
 *     touch PATH     creates PATH, empty
 *     time N         N of each: 4 KiB reads through a data ICA and in the
 *                    frame, 4 KiB bulk writes (each saves the server's
 *                    state), stats; prints the mean round trip of each
 *     hold PATH      opens PATH and reads it round after round through
 *                    that one fid, 512 bytes at a time, checking every
 *                    byte against the pattern, until /done exists; a read
 *                    answered -ECONNRESET (the server died holding it) is
 *                    retried.  Prints "hold: R reads, K resets, W rounds".
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "uksim/9p.h"
#include "uksim/ap.h"
#include "uksim/p9ica.h"

static uint32_t svc;
static uk_ica ctl, data;
static p9_fcall rx;
static uint32_t nextfid = 10;
static bool is_ramfs; /* its files belong to the attaching user */

static _Noreturn void die(const char *what, int err) {
  fprintf(stderr, "p9ica_client: %s: %s\n", what,
          err < 0 ? strerror(-err) : "unexpected answer");
  exit(1);
}

static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static void ensure(uk_ica *ica, uint64_t size, uint32_t kind) {
  int r;
  if (ica->base && ica->size >= size)
    return;
  if (ica->base)
    ica_release(ica);
  if ((r = ica_create(size, kind, ica)) < 0)
    die("ica_create", r);
}

/* Sends what ctl holds (with the data ICA when bulk); returns the
 * request's status and keeps the ICAs that came back. */
static int send_ctl(bool bulk) {
  ap_result res;
  int r = ap_call(svc, P9ICA_OP, &ctl, bulk ? &data : NULL, &res);
  if (r < 0)
    die("ap_call", r);
  ctl = res.ctl;
  if (bulk)
    data = res.data;
  else if (res.data.base)
    ica_release(&res.data);
  return res.status;
}

/* One message; 0 and the answer in rx, or the request's status, or the
 * errno of an Rerror. */
static int rpc(p9_fcall *tx, bool bulk) {
  int st;
  ensure(&ctl, P9ICA_CTL_MIN, KABI_ICA_CONTROL);
  if (p9_encode(tx, P9_2000, ctl.base, ctl.size) < 0)
    die("encode", -EINVAL);
  if ((st = send_ctl(bulk)) < 0)
    return st;
  if (bulk && ((uint8_t *)ctl.base)[4] == P9_RREAD) {
    memset(&rx, 0, sizeof(rx));
    rx.type = P9_RREAD;
    rx.count = get32((uint8_t *)ctl.base + 7);
    rx.data = data.base;
    return get32(ctl.base) == P9_RREAD_DATA_OFF ? 0 : -EBADMSG;
  }
  if (p9_decode(ctl.base, get32(ctl.base), P9_2000, &rx) < 0)
    return -EBADMSG;
  if (rx.type == P9_RERROR)
    return p9_errno(rx.ename) ? -p9_errno(rx.ename) : -EIO;
  return rx.type == tx->type + 1 ? 0 : -EBADMSG;
}

static void must(p9_fcall *tx, bool bulk, const char *what) {
  int r = rpc(tx, bulk);
  if (r < 0)
    die(what, r);
}

static void pattern(uint8_t *p, size_t n, uint64_t off) {
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)((off + i) * 7 + 3);
}

/* --- 9P operations ---------------------------------------------------- */

static void attach(void) {
  p9_fcall v = {.type = P9_TVERSION,
                .tag = P9_NOTAG,
                .msize = P9ICA_MSIZE,
                .version = p9_str_c("9P2000")};
  p9_fcall a = {.type = P9_TATTACH,
                .fid = 0,
                .afid = P9_NOFID,
                .uname = p9_str_c("glenda"),
                .aname = p9_str_c("")};
  must(&v, false, "Tversion");
  if (rx.msize != P9ICA_MSIZE || !p9_str_eq(rx.version, "9P2000"))
    die("Rversion", 0);
  must(&a, false, "Tattach");
}

/* Walks from the root to path ("a/b"); the new fid, or the error. */
static int walk(const char *path, uint32_t *fid) {
  p9_fcall w = {.type = P9_TWALK, .fid = 0, .newfid = nextfid};
  char buf[256], *save = NULL;
  int r;
  snprintf(buf, sizeof(buf), "%s", path);
  for (char *e = strtok_r(buf, "/", &save); e; e = strtok_r(NULL, "/", &save))
    w.wname[w.nwname++] = p9_str_c(e);
  if ((r = rpc(&w, false)) < 0)
    return r;
  if (rx.nwqid != w.nwname)
    return -ENOENT;
  *fid = nextfid++;
  return 0;
}

static void clunk(uint32_t fid) {
  p9_fcall c = {.type = P9_TCLUNK, .fid = fid};
  must(&c, false, "Tclunk");
}

/* Creates name in directory dir (a path, "" the root), open for mode. */
static uint32_t create(const char *dir, const char *name, uint32_t perm,
                       uint8_t mode) {
  uint32_t fid;
  int r = walk(dir, &fid);
  if (r < 0)
    die("walk to the directory", r);
  p9_fcall c = {.type = P9_TCREATE,
                .fid = fid,
                .name = p9_str_c(name),
                .perm = perm,
                .mode = mode};
  must(&c, false, "Tcreate");
  return fid;
}

static void bulk_write(uint32_t fid, uint64_t off, size_t n) {
  p9_fcall w = {.type = P9_TWRITE, .fid = fid, .offset = off, .count = 0};
  ensure(&ctl, P9ICA_CTL_MIN, KABI_ICA_CONTROL);
  ensure(&data, n ? n : 1, KABI_ICA_DATA);
  p9_encode(&w, P9_2000, ctl.base, ctl.size);
  memcpy((uint8_t *)ctl.base + 19, &(uint32_t){(uint32_t)n}, 4);
  pattern(data.base, n, off);
  int st = send_ctl(true);
  if (st < 0)
    die("bulk Twrite", st);
  if (p9_decode(ctl.base, get32(ctl.base), P9_2000, &rx) < 0 ||
      rx.type != P9_RWRITE || rx.count != n)
    die("bulk Rwrite", 0);
}

/* Reads count bytes at off; bulk through the data ICA.  The status. */
static int read_at(uint32_t fid, uint64_t off, uint32_t count, bool bulk) {
  p9_fcall r = {.type = P9_TREAD, .fid = fid, .offset = off, .count = count};
  if (bulk)
    ensure(&data, count, KABI_ICA_DATA);
  return rpc(&r, bulk);
}

static void expect_pattern(uint64_t off, uint32_t want, const char *what) {
  uint8_t *p = malloc(want ? want : 1);
  pattern(p, want, off);
  if (rx.count != want || memcmp(rx.data, p, want) != 0) {
    fprintf(stderr, "p9ica_client: %s: %u bytes at %llu, want %u\n", what,
            rx.count, (unsigned long long)off, want);
    exit(1);
  }
  free(p);
}

/* --- commands --------------------------------------------------------- */

static void cmd_put(const char *path, size_t n) {
  const char *slash = strrchr(path, '/');
  char dir[256] = "";
  if (slash)
    snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
  uint32_t fid = create(dir, slash ? slash + 1 : path, 0644, P9_OWRITE);
  if (n)
    bulk_write(fid, 0, n);
  clunk(fid);
}

static void basic_files(void) {
  uint32_t d = create("", "dir", P9_DMDIR | 0755, P9_OREAD), f, g;
  uint8_t small[100];
  clunk(d);
  f = create("dir", "file", 0644, P9_ORDWR);
  pattern(small, sizeof(small), 0);
  p9_fcall w = {.type = P9_TWRITE, .fid = f, .count = 100, .data = small};
  must(&w, false, "inline Twrite");
  bulk_write(f, 100, 70000); /* far beyond the control ICA */
  if (read_at(f, 0, 100, false) < 0)
    die("inline Tread", -EIO);
  expect_pattern(0, 100, "inline read");
  if (read_at(f, 50, 70050, true) < 0)
    die("bulk Tread", -EIO);
  expect_pattern(50, 70050, "bulk read");
  if (read_at(f, 70100, 10, true) < 0 || rx.count != 0)
    die("read at the end", -EIO);
  clunk(f);
  if (walk("dir/file", &g) < 0)
    die("walk dir/file", -ENOENT);
  p9_fcall st = {.type = P9_TSTAT, .fid = g};
  must(&st, false, "Tstat");
  if (rx.stat.length != 70100 || !p9_str_eq(rx.stat.name, "file") ||
      (is_ramfs && !p9_str_eq(rx.stat.uid, "glenda")))
    die("stat of dir/file", 0);
  p9_fcall o = {.type = P9_TOPEN, .fid = g, .mode = P9_OREAD};
  must(&o, false, "Topen");
  if (read_at(g, 70000, 100, false) < 0)
    die("read after open", -EIO);
  expect_pattern(70000, 100, "read through another fid");
  p9_fcall rm = {.type = P9_TREMOVE, .fid = g};
  must(&rm, false, "Tremove");
  if (walk("dir/file", &g) != -ENOENT)
    die("walk to a removed file", 0);
}

static void basic_dirs(void) {
  uint32_t d, f;
  for (int i = 0; i < 3; i++) {
    char name[8];
    snprintf(name, sizeof(name), "e%d", i);
    clunk(create("dir", name, 0644, P9_OWRITE));
  }
  if (walk("dir", &d) < 0)
    die("walk dir", -ENOENT);
  p9_fcall o = {.type = P9_TOPEN, .fid = d, .mode = P9_OREAD};
  must(&o, false, "Topen dir");
  if (read_at(d, 0, 4096, false) < 0)
    die("directory read", -EIO);
  int n = 0;
  for (uint32_t at = 0; at < rx.count; n++) {
    p9_stat s;
    long k = p9_stat_decode(rx.data + at, rx.count - at, &s);
    if (k < 0)
      die("stat entry", (int)k);
    at += (uint32_t)k;
  }
  if (n != 3)
    die("three entries in dir", 0);
  clunk(d);
  f = create("dir", "x", 0644, P9_OWRITE);
  p9_fcall ws = {.type = P9_TWSTAT, .fid = f};
  p9_stat_null(&ws.stat);
  ws.stat.name = p9_str_c("e0"); /* an existing name: stat(5) refuses */
  if (rpc(&ws, false) == 0)
    die("rename onto an existing file", 0);
  ws.stat.name = p9_str_c("y");
  must(&ws, false, "Twstat rename");
  clunk(f);
  if (walk("dir/y", &f) < 0)
    die("walk to the renamed file", -ENOENT);
  clunk(f);
}

static void cmd_basic(void) {
  basic_files();
  basic_dirs();
  puts("basic: ok");
}

/* Sends ctl holding len bytes as they are; the status, whose answer (if
 * 0) must be an R-message. */
static int raw(size_t len, bool bulk) {
  (void)len;
  int st = send_ctl(bulk);
  if (st == 0 && !(((uint8_t *)ctl.base)[4] & 1))
    die("an answer that is a T-message", 0);
  return st;
}

static void garbage_expect(int got, int want, const char *what) {
  if (got != want) {
    fprintf(stderr, "p9ica_client: garbage %s: status %d, want %d\n", what, got,
            want);
    exit(1);
  }
}

static void cmd_garbage(void) {
  uint8_t *c;
  srand(42);
  ensure(&ctl, P9ICA_CTL_MIN, KABI_ICA_CONTROL);
  c = ctl.base;
  memset(c, 0xff, 16); /* a size beyond the ICA */
  garbage_expect(raw(16, false), -EPROTO, "size beyond the ICA");
  memset(ctl.base, 0, 16); /* size 0 */
  garbage_expect(raw(16, false), -EPROTO, "size 0");
  p9_fcall w = {.type = P9_TWRITE, .fid = 0, .count = 0};
  p9_encode(&w, P9_2000, ctl.base, ctl.size);
  memcpy((uint8_t *)ctl.base + 19, &(uint32_t){64}, 4);
  garbage_expect(raw(23, false), -EPROTO, "bulk Twrite without a data ICA");
  for (int i = 0; i < 200; i++) { /* random bytes with a fitting size */
    c = ctl.base;
    for (int k = 0; k < 64; k++)
      c[k] = (uint8_t)rand();
    memcpy(c, &(uint32_t){(uint32_t)(7 + rand() % 57)}, 4);
    int st = raw(64, false);
    if (st > 0 || (st < 0 && st != -EPROTO && st != -EMSGSIZE))
      garbage_expect(st, -EPROTO, "random bytes");
  }
  ap_result res;
  uk_ica tiny;
  ica_create(4, KABI_ICA_CONTROL, &tiny);
  if (ap_call(svc, P9ICA_OP, &tiny, NULL, &res) < 0)
    die("ap_call", -EIO);
  garbage_expect(res.status, -EPROTO, "a 4-byte control ICA");
  ica_release(&res.ctl);
  ica_create(64, KABI_ICA_CONTROL, &tiny);
  if (ap_call(svc, 7, &tiny, NULL, &res) < 0)
    die("ap_call", -EIO);
  garbage_expect(res.status, -ENOSYS, "an unknown op");
  ica_release(&res.ctl);
  attach(); /* and the server serves on */
  p9_fcall st = {.type = P9_TSTAT, .fid = 0};
  must(&st, false, "Tstat after the garbage");
  puts("garbage: ok");
}

static bool exists(const char *path) {
  uint32_t fid;
  int r = walk(path, &fid);
  if (r == 0)
    clunk(fid);
  return r == 0;
}

static void cmd_hold(const char *path) {
  uint32_t fid;
  p9_fcall st = {.type = P9_TSTAT};
  long reads = 0, resets = 0, rounds = 0;
  uint64_t off = 0, len;
  int r;
  if ((r = walk(path, &fid)) < 0)
    die("walk to the held file", r);
  st.fid = fid;
  must(&st, false, "Tstat");
  len = rx.stat.length;
  p9_fcall o = {.type = P9_TOPEN, .fid = fid, .mode = P9_OREAD};
  must(&o, false, "Topen");
  for (;;) {
    uint32_t want = len - off < 512 ? (uint32_t)(len - off) : 512;
    r = read_at(fid, off, 512, reads % 2 == 0);
    if (r == -ECONNRESET) {
      resets++;
      continue;
    }
    if (r < 0)
      die("read through the held fid", r);
    expect_pattern(off, want, "read through the held fid");
    reads++;
    off += want;
    if (off == len) {
      off = 0;
      rounds++;
      if (exists("done"))
        break;
    }
    ap_sleep(1000 * 1000);
  }
  printf("hold: %ld reads, %ld resets, %ld rounds\n", reads, resets, rounds);
}

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* The mean microseconds of n runs of one kind (0 reads in the data ICA,
 * 1 in the frame, 2 bulk writes, 3 stats) on fid. */
static double time_kind(uint32_t fid, int kind, long n) {
  p9_fcall st = {.type = P9_TSTAT, .fid = fid};
  double t0 = now_us();
  for (long i = 0; i < n; i++) {
    int r = kind == 2   ? (bulk_write(fid, 0, 4096), 0)
            : kind == 3 ? rpc(&st, false)
                        : read_at(fid, 0, 4096, kind == 0);
    if (r < 0)
      die("timed request", r);
  }
  return (now_us() - t0) / (double)n;
}

static void cmd_time(long n) {
  uint32_t fid = create("", "timed", 0644, P9_ORDWR);
  double us[4];
  bulk_write(fid, 0, 4096);
  for (int k = 0; k < 4; k++)
    us[k] = time_kind(fid, k, n);
  printf("time: 4 KiB read in a data ICA %.1f us, in the frame %.1f us; "
         "4 KiB bulk write (state saved) %.1f us; stat %.1f us (%ld each)\n",
         us[0], us[1], us[2], us[3], n);
  p9_fcall rm = {.type = P9_TREMOVE, .fid = fid};
  must(&rm, false, "Tremove");
}

int main(int argc, char **argv) {
  const char *service = "ramfs";
  int i = 1, r;
  if (argc > 2 && strcmp(argv[1], "--service") == 0) {
    service = argv[2];
    i = 3;
  }
  is_ramfs = strncmp(service, "ramfs", 5) == 0;
  if ((r = ap_lookup(service, &svc)) < 0)
    die("lookup", r);
  if (i < argc && strcmp(argv[i], "garbage") != 0)
    attach();
  for (; i < argc; i++) {
    if (strcmp(argv[i], "basic") == 0)
      cmd_basic();
    else if (strcmp(argv[i], "garbage") == 0)
      cmd_garbage();
    else if (strcmp(argv[i], "put") == 0 && i + 2 < argc)
      cmd_put(argv[i + 1], (size_t)atol(argv[i + 2])), i += 2;
    else if (strcmp(argv[i], "touch") == 0 && i + 1 < argc)
      cmd_put(argv[++i], 0);
    else if (strcmp(argv[i], "time") == 0 && i + 1 < argc)
      cmd_time(atol(argv[++i]));
    else if (strcmp(argv[i], "hold") == 0 && i + 1 < argc)
      cmd_hold(argv[++i]);
    else
      die(argv[i], -EINVAL);
  }
  ica_release(&ctl);
  ica_release(&data);
  return 0;
}
