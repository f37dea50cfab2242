/* fwrite: a file-writing application for the failover tests (Orthros,
 * seed 001 §5.1: "a process that reads and writes a file").
 *
 *   fwrite [--verify] SRV FILE N
 *
 * Mounts /srv/SRV on /n, creates /n/FILE and writes N records of
 * FWRITE_REC bytes ("rec 00000042\n" padded), record i at offset
 * i * FWRITE_REC, one ns_pwrite each.  A write that fails (its server died
 * holding it: -ECONNRESET; or was down for a moment) is written again,
 * after a pause, up to FWRITE_RETRIES times: a write at a fixed offset is
 * the same write twice, so the file ends with each record once whatever
 * happened to the first try.  With --verify it then reads the file back
 * (the paper's process reads and writes its file): N records, each once
 * and where it belongs, and nothing after them.  Exits 0 when all N are
 * written (and read back right), 1 on an error that lasts or a record
 * that is wrong, 2 on bad usage. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uksim/ap.h"
#include "uksim/ns.h"

#define FWRITE_REC 32
#define FWRITE_RETRIES 200
#define FWRITE_PAUSE_NS (10 * 1000 * 1000)

/* One try: open /srv/SRV and mount it on /n. */
static int mount_once(const char *path) {
  int fd = ns_open(path, NS_ORDWR);
  if (fd < 0)
    return fd;
  int r = ns_mount(fd, "/n", NS_MREPL | NS_MCREATE, "");
  ns_close(fd);
  return r;
}

/* A server posts itself just after it registers, in two steps (it
 * creates /srv/SRV, then writes its service's name in it): the entry may
 * be missing a moment (-ENOENT), or be there and not yet posted
 * (-ENOTCONN from the mount, vfs/devsrv.c). */
static int mount_srv(const char *srv) {
  char path[64];
  snprintf(path, sizeof path, "/srv/%s", srv);
  int r = mount_once(path);
  for (int t = 0; (r == -ENOENT || r == -ENOTCONN) && t < FWRITE_RETRIES; t++) {
    ap_sleep(FWRITE_PAUSE_NS);
    r = mount_once(path);
  }
  return r;
}

static void record(long i, char rec[FWRITE_REC]);

static long put(int fd, long i) {
  char rec[FWRITE_REC];
  record(i, rec);
  long r = -EIO;
  for (int t = 0; t < FWRITE_RETRIES; t++) {
    r = ns_pwrite(fd, rec, FWRITE_REC, (uint64_t)i * FWRITE_REC);
    if (r == FWRITE_REC)
      return 0;
    ap_sleep(FWRITE_PAUSE_NS);
  }
  return r < 0 ? r : -EIO;
}

/* Record i as put writes it into rec. */
static void record(long i, char rec[FWRITE_REC]) {
  memset(rec, ' ', FWRITE_REC);
  int len = snprintf(rec, FWRITE_REC, "rec %08ld", i % 100000000);
  rec[len] = ' '; /* padded with spaces, a newline last */
  rec[FWRITE_REC - 1] = '\n';
}

/* --verify: the file holds records 0..n-1, each once, and nothing else. */
static int verify(int fd, long n, const char *path) {
  char want[FWRITE_REC], got[FWRITE_REC];
  ns_dir d;
  long r = ns_fstat(fd, &d);
  if (r < 0 || d.length != (uint64_t)n * FWRITE_REC) {
    fprintf(stderr, "fwrite: %s: %llu bytes, not %ld records\n", path,
            r < 0 ? 0ull : (unsigned long long)d.length, n);
    return 1;
  }
  for (long i = 0; i < n; i++) {
    record(i, want);
    r = ns_pread(fd, got, FWRITE_REC, (uint64_t)i * FWRITE_REC);
    if (r != FWRITE_REC || memcmp(got, want, FWRITE_REC) != 0) {
      fprintf(stderr, "fwrite: %s: record %ld is wrong\n", path, i);
      return 1;
    }
  }
  printf("fwrite: %ld records read back from %s\n", n, path);
  return 0;
}

int main(int argc, char **argv) {
  bool check = argc == 5 && strcmp(argv[1], "--verify") == 0;
  argv += check;
  argc -= check;
  if (argc != 4 || atol(argv[3]) <= 0) {
    fprintf(stderr, "usage: fwrite [--verify] SRV FILE N\n");
    return 2;
  }
  char path[300];
  long n = atol(argv[3]);
  snprintf(path, sizeof path, "/n/%s", argv[2]);
  int r = mount_srv(argv[1]);
  int fd = r < 0 ? r : ns_create(path, NS_ORDWR, 0644);
  if (fd < 0) {
    fprintf(stderr, "fwrite: %s: %s\n", path, strerror(-fd));
    return 1;
  }
  for (long i = 0; i < n; i++) {
    long e = put(fd, i);
    if (e < 0) {
      fprintf(stderr, "fwrite: record %ld: %s\n", i, strerror((int)-e));
      return 1;
    }
  }
  printf("fwrite: %ld records in %s\n", n, path);
  r = check ? verify(fd, n, path) : 0;
  ns_close(fd);
  return r;
}
