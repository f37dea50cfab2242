/* nsread: reads a file slowly through the namespace and checks every byte,
 * so that a scenario can replace or crash the file's server while the file
 * is open (issue 13: "replacement keeps files open").
 *
 *   nsread --path P --size N [--create] [--chunk C] [--pause T] [--wait K]
 *
 * The file's bytes are a pattern: record r (from 0) is "%07u\n" of r, so
 * byte i is that of record i / 8 and any byte out of place is seen.  With
 * --create, nsread first creates P and writes N bytes of the pattern.  It
 * then opens P once, reads it C bytes at a time (default 64, at most
 * NS_SMALL) with T nanoseconds of the kernel's clock between reads
 * (default 1000000: 1 ms, virtual under lock-step) through the same
 * descriptor to its end, and checks the bytes and that there are N.
 * --wait K: while P does not exist yet (ENOENT; with --create, also while
 * its directory is still the root servant's read-only one, EPERM), try
 * again after T, at most K times (default 0), so that a reader may start
 * before the scenario mounts what it reads.
 *
 * Exit status: 0 every byte was the pattern's and there were N; 1 a byte
 * differed, the file ended early or ran long, or a call failed (each
 * said on stderr); 2 a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "uksim/ap.h"
#include "uksim/num.h"
#include "uksim/ns.h"

#define RECORD 8 /* bytes of one pattern record, "%07u\n" */

struct opts {
  const char *path;
  uint64_t size, chunk, pause_ns, wait;
  bool create;
};

/* Byte i of the pattern. */
static char pattern(uint64_t i) {
  char rec[RECORD + 1];
  snprintf(rec, sizeof rec, "%07u\n", (unsigned)(i / RECORD % 10000000));
  return rec[i % RECORD];
}

/* Calls open or create until it gives a descriptor or fails otherwise
 * than for a missing file, at most o->wait retries. */
static int open_waiting(const struct opts *o, bool create) {
  for (uint64_t tries = 0;; tries++) {
    int fd = create ? ns_create(o->path, NS_OWRITE, 0666)
                    : ns_open(o->path, NS_OREAD);
    /* Before the mount, a create meets the root's read-only directory. */
    bool missing = fd == -ENOENT || (create && fd == -EPERM);
    if (!missing || tries == o->wait)
      return fd;
    ap_sleep(o->pause_ns);
  }
}

static int fail(const struct opts *o, const char *what, long r) {
  fprintf(stderr, "nsread: %s %s: %s\n", what, o->path, strerror((int)-r));
  return 1;
}

static int write_pattern(const struct opts *o) {
  char buf[NS_SMALL];
  int fd = open_waiting(o, true);
  if (fd < 0)
    return fail(o, "create", fd);
  for (uint64_t at = 0; at < o->size;) {
    size_t n = o->size - at < sizeof buf ? (size_t)(o->size - at) : sizeof buf;
    for (size_t i = 0; i < n; i++)
      buf[i] = pattern(at + i);
    long w = ns_write(fd, buf, n);
    if (w <= 0) {
      ns_close(fd);
      return fail(o, "write", w < 0 ? w : -EIO);
    }
    at += (uint64_t)w;
  }
  ns_close(fd);
  return 0;
}

/* The bytes just read at offset at: 0, or 1 after saying which differs. */
static int check(const struct opts *o, const char *buf, long n, uint64_t at) {
  for (long i = 0; i < n; i++)
    if (at + (uint64_t)i >= o->size || buf[i] != pattern(at + (uint64_t)i)) {
      fprintf(stderr, "nsread: %s: byte %llu is 0x%02x, not the pattern's\n",
              o->path, (unsigned long long)(at + (uint64_t)i),
              (unsigned char)buf[i]);
      return 1;
    }
  return 0;
}

static int read_slowly(const struct opts *o) {
  char buf[NS_SMALL];
  uint64_t at = 0, reads = 0;
  long n;
  int fd = open_waiting(o, false);
  if (fd < 0)
    return fail(o, "open", fd);
  do {
    ap_sleep(o->pause_ns);
    n = ns_read(fd, buf, (size_t)o->chunk);
    reads++;
    if (n > 0 && check(o, buf, n, at) != 0) {
      ns_close(fd);
      return 1;
    }
    at += n > 0 ? (uint64_t)n : 0;
  } while (n > 0);
  ns_close(fd);
  if (n < 0)
    return fail(o, "read", n);
  if (at != o->size) {
    fprintf(stderr, "nsread: %s: %llu bytes, not %llu\n", o->path,
            (unsigned long long)at, (unsigned long long)o->size);
    return 1;
  }
  printf("nsread: %s: %llu bytes in %llu reads, every one the pattern's\n",
         o->path, (unsigned long long)at, (unsigned long long)reads);
  return 0;
}

static int usage(void) {
  fprintf(stderr, "usage: nsread --path P --size N [--create] [--chunk C] "
                  "[--pause NS] [--wait K]\n");
  return 2;
}

static int parse(int argc, char **argv, struct opts *o) {
  static const struct option lo[] = {{"path", required_argument, 0, 'p'},
                                     {"size", required_argument, 0, 's'},
                                     {"create", no_argument, 0, 'c'},
                                     {"chunk", required_argument, 0, 'k'},
                                     {"pause", required_argument, 0, 't'},
                                     {"wait", required_argument, 0, 'w'},
                                     {0, 0, 0, 0}};
  int c, r = 0;
  while (r == 0 && (c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    if (c == 'p')
      o->path = optarg;
    else if (c == 's')
      r = num_opt_u64("nsread", "--size", optarg, 0, 1u << 30, NUM_SIZE,
                      &o->size);
    else if (c == 'c')
      o->create = true;
    else if (c == 'k')
      r = num_opt_u64("nsread", "--chunk", optarg, 1, NS_SMALL, NUM_SIZE,
                      &o->chunk);
    else if (c == 't')
      r = num_opt_u64("nsread", "--pause", optarg, 0, 3600000000000ull, 0,
                      &o->pause_ns);
    else if (c == 'w')
      r = num_opt_u64("nsread", "--wait", optarg, 0, 1000000, 0, &o->wait);
    else
      r = -EINVAL;
  }
  return r == 0 && o->path != NULL && optind == argc ? 0 : -1;
}

int main(int argc, char **argv) {
  struct opts o = {.chunk = 64, .pause_ns = 1000000};
  if (parse(argc, argv, &o) < 0)
    return usage();
  if (o.create && write_pattern(&o) != 0)
    return 1;
  return read_slowly(&o);
}
