/*
 * test_v9fs.c: the Linux kernel's 9P client (v9fs, an implementation
 * independent of ours) mounts our server, once in classic 9P2000 and once
 * in 9P2000.L.  This machine's kernel has no 9P client, so v9fs-vm.sh
 * boots Debian's kernel under QEMU and mounts our server through a
 * virtio console (trans=fd); busybox tools in the guest list, read, copy
 * a file larger than msize, write, truncate, chmod, rename, make a
 * directory and remove.  Our own client then checks what the guest left
 * on the server.  No skipping: a missing package fails the test, naming
 * the package (scripts/deps.sh installs them all).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <uksim/9p.h>

#include "bgsrv.h"

enum { BIG = 300 * 1024 }; /* many times the guest's 8 KiB msize */

static uint8_t big_byte(size_t i) {
  return (uint8_t)(i * 31 + i / 977);
}

/* The dialect our own client speaks in a test: the one the guest does not,
 * so a Tversion offering the guest's dialect can only be the guest's. */
static const char *other_dialect;

static p9_cfid *dial(const bgsrv *b, p9_client **cp) {
  int err;
  p9_cfid *root;
  *cp = p9_client_dial(b->addr, 0, other_dialect, &err);
  cr_assert_not_null(*cp, "dial: %s", p9_strerror(err));
  root = p9_attach(*cp, "glenda", "", NULL, &err);
  cr_assert_not_null(root, "attach: %s", p9_strerror(err));
  return root;
}

static void put(p9_cfid *root, const char *name, const void *data, size_t n) {
  int err;
  p9_cfid *f = p9_walk(root, "", &err);
  cr_assert_not_null(f);
  cr_assert_eq(p9_create(f, name, 0644, P9_OWRITE), 0, "create %s", name);
  cr_assert_eq(p9_pwrite(f, data, n, 0), (long)n);
  p9_clunk(f);
}

/* The files the guest starts from. */
static void populate(const bgsrv *b) {
  p9_client *c;
  p9_cfid *root = dial(b, &c);
  uint8_t *big = malloc(BIG);
  for (size_t i = 0; i < BIG; i++)
    big[i] = big_byte(i);
  put(root, "hello", "hello from uksim\n", 17);
  put(root, "big", big, BIG);
  put(root, "gone", "x", 1);
  put(root, "old", "renamed\n", 8);
  put(root, "long", "0123456789", 10);
  cr_assert_eq(p9_mkdir(root, "sub", 0755), 0);
  p9_clunk(root);
  p9_client_close(c);
  free(big);
}

/* What the guest does in the mount point M; set -e stops at the first
 * failure, which then shows as "v9fs-vm: exit N". */
static const char guest[] = "set -e\n"
                            "echo \"list: $(ls $M | tr '\\n' ' ')\"\n"
                            "echo \"read: $(cat $M/hello)\"\n"
                            "echo \"size: $(stat -c '%s %F' $M/hello)\"\n"
                            "echo \"dir: $(stat -c '%F' $M/sub)\"\n"
                            "cp $M/big $M/sub/big.copy\n"
                            "cmp $M/big $M/sub/big.copy && echo 'copy: same'\n"
                            "echo 'written by linux' > $M/new\n"
                            "echo 'appended' >> $M/new\n"
                            "truncate -s 4 $M/long\n"
                            "chmod 600 $M/hello\n"
                            "echo \"mode: $(stat -c '%a' $M/hello)\"\n"
                            "mv $M/old $M/renamed\n"
                            "mkdir $M/made\n"
                            "rm $M/gone\n"
                            "echo \"after: $(ls $M | tr '\\n' ' ')\"\n";

static void strip_cr(char *s) {
  char *w = s;
  for (; *s; s++)
    if (*s != '\r')
      *w++ = *s;
  *w = 0;
}

/* Boots the guest, which mounts b on /mnt with version (a v9fs option)
 * and runs the guest script there; returns its console output. */
static const char *run_guest(const bgsrv *b, const char *version) {
  static char out[1 << 16];
  char script[] = "/tmp/uksim-v9fs-guest.XXXXXX";
  const char *vm = getenv("V9FS_VM");
  p9_addr a;
  FILE *f;
  int fd = mkstemp(script), st;
  cr_assert_not_null(vm, "V9FS_VM (the path of v9fs-vm.sh) is not set");
  cr_assert_geq(fd, 0);
  f = fdopen(fd, "w");
  fprintf(f, "M=/mnt\n%s", guest);
  fclose(f);
  cr_assert_eq(p9_addr_parse(b->addr, &a), 0);
  st = sh(out, sizeof(out), "sh %s %s %s %s 2>&1", vm, a.port, version, script);
  unlink(script);
  strip_cr(out); /* the serial console ends lines with CR LF */
  cr_assert_eq(st, 0, "v9fs-vm.sh failed (status %d):\n%s", st, out);
  cr_assert(strstr(out, "v9fs-vm: mounted"), "no mount:\n%s", out);
  cr_assert(strstr(out, "v9fs-vm: exit 0"), "guest failed:\n%s", out);
  return out;
}

static void expect_line(const char *out, const char *line) {
  cr_assert(strstr(out, line), "want '%s' in:\n%s", line, out);
}

static void expect_file(p9_cfid *root, const char *name, const char *want) {
  char buf[256];
  int err;
  long n;
  p9_cfid *f = p9_walk(root, name, &err);
  cr_assert_not_null(f, "%s: %s", name, p9_strerror(err));
  cr_assert_eq(p9_open(f, P9_OREAD), 0);
  n = p9_pread(f, buf, sizeof(buf) - 1, 0);
  cr_assert_geq(n, 0);
  buf[n] = 0;
  cr_assert_str_eq(buf, want, "%s", name);
  p9_clunk(f);
}

static void expect_absent(p9_cfid *root, const char *name) {
  int err;
  cr_assert_null(p9_walk(root, name, &err), "%s still there", name);
  cr_assert_eq(err, -ENOENT);
}

/* Checks what the guest script left on the server. */
static void check_server(const bgsrv *b) {
  p9_client *c;
  p9_cfid *root = dial(b, &c), *f;
  uint8_t *buf = malloc(BIG + 1);
  p9_dir st;
  int err;
  expect_file(root, "new", "written by linux\nappended\n");
  expect_file(root, "long", "0123");
  expect_file(root, "renamed", "renamed\n");
  expect_absent(root, "old");
  expect_absent(root, "gone");
  f = p9_walk(root, "made", &err);
  cr_assert_not_null(f, "made: %s", p9_strerror(err));
  cr_assert_eq(p9_fstat(f, &st), 0);
  cr_assert(st.mode & P9_DMDIR, "made is not a directory");
  p9_clunk(f);
  f = p9_walk(root, "hello", &err);
  cr_assert_eq(p9_fstat(f, &st), 0);
  cr_assert_eq(st.mode & 0777, 0600);
  p9_clunk(f);
  f = p9_walk(root, "sub/big.copy", &err);
  cr_assert_not_null(f, "sub/big.copy: %s", p9_strerror(err));
  cr_assert_eq(p9_open(f, P9_OREAD), 0);
  cr_assert_eq(p9_pread(f, buf, BIG + 1, 0), BIG);
  for (size_t i = 0; i < BIG; i++)
    cr_assert_eq(buf[i], big_byte(i), "byte %zu of the copy", i);
  p9_clunk(f);
  p9_clunk(root);
  p9_client_close(c);
  free(buf);
}

/* The server's trace, read back once the server has stopped. */
static char *slurp_trace(FILE *log) {
  static char buf[1 << 20];
  size_t n;
  rewind(log);
  n = fread(buf, 1, sizeof(buf) - 1, log);
  buf[n] = 0;
  fclose(log);
  return buf;
}

/* Whether a Tversion in the trace offered exactly v, with the msize
 * v9fs-vm.sh asks for. */
static bool offered(const char *trace, const char *v) {
  const char *t = trace, *end;
  char want[64];
  size_t n =
      (size_t)snprintf(want, sizeof(want), " msize 8192 version '%s'", v);
  while ((t = strstr(t, "<- Tversion ")) && (end = strchr(t, '\n'))) {
    if ((size_t)(end - t) > n && strncmp(end - n, want, n) == 0)
      return true;
    t = end;
  }
  return false;
}

/* Boots the guest with v9fs option version; the client must offer
 * tversion, and the server's trace must show each of the NULL-ended
 * message names in want (so the dialect is the one asked for). */
static void mount_and_check(const char *version, const char *tversion,
                            const char *const *want) {
  bgsrv b;
  const char *out;
  char *trace;
  p9_srv_config cfg = {.log = tmpfile(), .trace = 1};
  cr_assert_not_null(cfg.log);
  other_dialect = strcmp(tversion, "9P2000") == 0 ? "9P2000.L" : "9P2000";
  cr_assert_eq(bg_start(&b, "tcp!127.0.0.1!0", &cfg), 0);
  populate(&b);
  out = run_guest(&b, version);
  expect_line(out, "list: big gone hello long old sub \n");
  expect_line(out, "read: hello from uksim\n");
  expect_line(out, "size: 17 regular file\n");
  expect_line(out, "dir: directory\n");
  expect_line(out, "copy: same\n");
  expect_line(out, "mode: 600\n");
  expect_line(out, "after: big hello long made new renamed sub \n");
  check_server(&b);
  bg_stop(&b);
  trace = slurp_trace(cfg.log);
  cr_assert(offered(trace, tversion), "the client did not offer %s", tversion);
  for (; *want; want++)
    cr_assert(strstr(trace, *want), "no '%s' in the server's trace", *want);
}

/* version=9p2000: the messages and semantics of Plan 9's section 5. */
Test(v9fs, linux_mounts_our_server_in_classic_9p2000, .timeout = 300) {
  static const char *const want[] = {"<- Topen ", "<- Tcreate ", "<- Twstat ",
                                     "<- Tremove ", NULL};
  mount_and_check("9p2000", "9P2000", want);
}

Test(v9fs, linux_mounts_our_server_in_9p2000_L, .timeout = 300) {
  static const char *const want[] = {"<- Tlopen ", "<- Tlcreate ",
                                     "<- Tsetattr ", "<- Tmkdir ", NULL};
  mount_and_check("9p2000.L", "9P2000.L", want);
}
