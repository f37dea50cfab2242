/*
 * test_stream.c: the stream transport end to end — blocking client over
 * TCP and unix sockets in both dialects, large I/O split by msize, the
 * listener's security rules (loopback unless keyed, 0700 socket
 * directories, key proof), answers to a client on another cpu (split in
 * two writes), the asynchronous client, the CLI tool, and the limits
 * against hostile clients (connections, frame sizes, frame buffers, frame
 * timeouts).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <uksim/9p.h>

#include "bgsrv.h"

static const uint8_t key[P9_KEYLEN] = "shared-key-for-the-tests-0123456";

static p9_cfid *dial_attach(const char *addr, const char *version,
                            uint32_t msize, p9_client **cp) {
  int err;
  p9_client *c = p9_client_dial(addr, msize, version, &err);
  p9_cfid *root;
  cr_assert_not_null(c, "dial %s: %s", addr, p9_strerror(err));
  root = p9_attach(c, "glenda", "", NULL, &err);
  cr_assert_not_null(root, "attach: %s", p9_strerror(err));
  *cp = c;
  return root;
}

static int count_entry(const p9_dir *d, void *arg) {
  (*(int *)arg)++;
  cr_assert_neq(d->name[0], 0);
  return 0;
}

/* Create, write 3 MiB (many msize-sized pieces), read back, list, stat,
 * truncate, remove: the blocking client API in one dialect. */
static void exercise(const char *addr, const char *version) {
  p9_client *c;
  p9_cfid *root = dial_attach(addr, version, 16384, &c), *f, *d;
  size_t n = 3 << 20;
  uint8_t *out = malloc(n), *in = malloc(n);
  p9_dir st;
  int err, entries = 0;
  for (size_t i = 0; i < n; i++)
    out[i] = (uint8_t)(i * 7 + i / 4093);
  cr_assert_eq(p9_mkdir(root, "dir", 0755), 0);
  f = p9_walk(root, "dir", &err);
  cr_assert_not_null(f);
  cr_assert_eq(p9_create(f, "big", 0644, P9_ORDWR), 0);
  cr_assert_eq(p9_pwrite(f, out, n, 0), (long)n);
  cr_assert_eq(p9_pread(f, in, n + 100, 0), (long)n);
  cr_assert_eq(memcmp(in, out, n), 0);
  cr_assert_eq(p9_pread(f, in, 10, n), 0, "read past the end");
  cr_assert_eq(p9_clunk(f), 0);
  f = p9_walk(root, "/dir//big", &err);
  cr_assert_not_null(f, "walk: %s", p9_strerror(err));
  cr_assert_eq(p9_fstat(f, &st), 0);
  cr_assert_eq(st.length, n);
  cr_assert_eq(p9_fwstat(f, 10, ~0u), 0);
  cr_assert_eq(p9_fstat(f, &st), 0);
  cr_assert_eq(st.length, 10);
  d = p9_walk(root, "dir", &err);
  cr_assert_eq(p9_open(d, P9_OREAD), 0);
  cr_assert_eq(p9_readdir(d, count_entry, &entries), 0);
  cr_assert_eq(entries, 1);
  cr_assert_eq(p9_clunk(d), 0);
  cr_assert_eq(p9_remove(f), 0);
  cr_assert_null(p9_walk(root, "dir/big", &err));
  cr_assert_eq(err, -ENOENT);
  cr_assert_null(p9_walk(root, "a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r", &err));
  cr_assert_eq(p9_clunk(root), 0);
  p9_client_close(c);
  free(in);
  free(out);
}

Test(stream, blocking_client_over_tcp_in_both_dialects, .timeout = 30) {
  bgsrv b;
  cr_assert_eq(bg_start(&b, "tcp!127.0.0.1!0", NULL), 0);
  exercise(b.addr, "9P2000");
  {
    p9_client *c;
    p9_cfid *root = dial_attach(b.addr, "9P2000", 0, &c);
    p9_cfid *d = p9_walk(root, "dir", &(int){0});
    cr_assert_eq(p9_remove(d), 0);
    p9_clunk(root);
    p9_client_close(c);
  }
  exercise(b.addr, "9P2000.L");
  bg_stop(&b);
}

Test(stream, unix_socket_in_a_private_directory, .timeout = 30) {
  char dir[] = "/tmp/uksim-9p-test.XXXXXX", addr[256], path[200];
  bgsrv b;
  cr_assert_not_null(mkdtemp(dir));
  snprintf(path, sizeof(path), "%s/sub/sock", dir);
  snprintf(addr, sizeof(addr), "unix!%s", path);
  cr_assert_eq(bg_start(&b, addr, NULL), 0);
  struct stat st;
  cr_assert_eq(stat(path, &st), 0);
  cr_assert(S_ISSOCK(st.st_mode));
  snprintf(path, sizeof(path), "%s/sub", dir);
  cr_assert_eq(stat(path, &st), 0);
  cr_assert_eq(st.st_mode & 0777, 0700);
  exercise(addr, "9P2000.L");
  bg_stop(&b);
  cr_assert_neq(access(addr + 5, F_OK), 0, "socket left behind");
  /* A directory others can enter is refused. */
  chmod(path, 0755);
  cr_assert_eq(bg_start(&b, addr, &(p9_srv_config){.log = stderr}), -EPERM);
  rmdir(path);
  rmdir(dir);
}

Test(stream, non_loopback_listener_needs_a_key, .timeout = 30) {
  bgsrv b;
  int err;
  p9_client *c;
  p9_srv_config cfg = {.key = key};
  cr_assert_eq(bg_start(&b, "tcp!*!0", NULL), -EPERM);
  cr_assert_eq(bg_start(&b, "tcp!127.0.0.1!0", &cfg), 0);
  c = p9_client_dial(b.addr, 0, "9P2000", &err);
  cr_assert_null(p9_attach(c, "glenda", "", NULL, &err), "no key, no attach");
  cr_assert_str_eq(p9_client_errstr(c), "authentication required");
  uint8_t wrong[P9_KEYLEN] = {1};
  cr_assert_null(p9_attach(c, "glenda", "", wrong, &err));
  cr_assert_str_eq(p9_client_errstr(c), "authentication failed");
  p9_cfid *root = p9_attach(c, "glenda", "", key, &err);
  cr_assert_not_null(root, "right key refused: %s", p9_client_errstr(c));
  p9_clunk(root);
  p9_client_close(c);
  bg_stop(&b);
}

/* Whether the root holds name, asked over a connection of its own. */
static bool exists(const char *addr, const char *name) {
  p9_client *c;
  p9_cfid *root = dial_attach(addr, "9P2000", 0, &c), *f;
  int err;
  if ((f = p9_walk(root, name, &err)))
    p9_clunk(f);
  else
    cr_assert_eq(err, -ENOENT, "walk %s: %s", name, p9_strerror(err));
  p9_clunk(root);
  p9_client_close(c);
  return f != NULL;
}

static void raw_rpc(p9_client *c, p9_fcall tx) {
  p9_fcall rx;
  int err = p9_client_rpc(c, &tx, &rx);
  cr_assert_eq(err, 0, "%s: %s", p9_msgname(tx.type), p9_strerror(err));
}

Test(stream, orclose_file_removed_on_clunk, .timeout = 30) {
  bgsrv b;
  p9_client *c;
  p9_cfid *root, *f;
  cr_assert_eq(bg_start(&b, "tcp!127.0.0.1!0", NULL), 0);
  root = dial_attach(b.addr, "9P2000", 0, &c);
  f = p9_walk(root, "", &(int){0});
  cr_assert_eq(p9_create(f, "scratch", 0644, P9_ORDWR | P9_ORCLOSE), 0);
  cr_assert_eq(p9_pwrite(f, "data", 4, 0), 4);
  cr_assert(exists(b.addr, "scratch"), "created file not visible");
  cr_assert_eq(p9_clunk(f), 0);
  cr_assert(!exists(b.addr, "scratch"), "ORCLOSE file survived Tclunk");
  p9_clunk(root);
  p9_client_close(c);
  bg_stop(&b);
}

/* open(5): an ORCLOSE file goes when its fid is clunked, and the fids of
 * a connection that drops are clunked by the server.  Raw requests with
 * fixed fid numbers, so nothing on the client side outlives the close. */
Test(stream, orclose_file_removed_when_the_connection_drops, .timeout = 30) {
  bgsrv b;
  p9_client *c;
  int err;
  cr_assert_eq(bg_start(&b, "tcp!127.0.0.1!0", NULL), 0);
  c = p9_client_dial(b.addr, 0, "9P2000", &err);
  cr_assert_not_null(c, "dial: %s", p9_strerror(err));
  raw_rpc(c, (p9_fcall){.type = P9_TATTACH,
                        .fid = 0,
                        .afid = P9_NOFID,
                        .uname = p9_str_c("glenda")});
  raw_rpc(c, (p9_fcall){.type = P9_TWALK, .fid = 0, .newfid = 1});
  raw_rpc(c, (p9_fcall){.type = P9_TCREATE,
                        .fid = 1,
                        .name = p9_str_c("scratch"),
                        .perm = 0644,
                        .mode = P9_ORDWR | P9_ORCLOSE});
  raw_rpc(c, (p9_fcall){.type = P9_TWALK, .fid = 0, .newfid = 2});
  raw_rpc(c, (p9_fcall){.type = P9_TCREATE,
                        .fid = 2,
                        .name = p9_str_c("keep"),
                        .perm = 0644,
                        .mode = P9_ORDWR});
  cr_assert(exists(b.addr, "scratch"), "created file not visible");
  p9_client_close(c); /* fids 0, 1 and 2 still open: no Tclunk sent */
  cr_assert(!exists(b.addr, "scratch"),
            "ORCLOSE file survived the dropped connection");
  cr_assert(exists(b.addr, "keep"), "a plain file went with the connection");
  bg_stop(&b);
}

static int raw_connect(const char *addr) {
  p9_addr a;
  struct sockaddr_in sin = {.sin_family = AF_INET};
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  cr_assert_eq(p9_addr_parse(addr, &a), 0);
  sin.sin_port = htons((uint16_t)atoi(a.port));
  inet_pton(AF_INET, a.host, &sin.sin_addr);
  cr_assert_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
  return fd;
}

Test(stream, oversize_message_closes_the_connection, .timeout = 30) {
  bgsrv b;
  uint8_t buf[256];
  p9_fcall tx = {.type = P9_TVERSION, .tag = P9_NOTAG, .msize = 8192};
  static const uint8_t huge[] = {0xa0, 0x86, 0x01, 0x00, P9_TWRITE, 1, 0};
  long n;
  int fd;
  cr_assert_eq(bg_start(&b, "tcp!127.0.0.1!0", NULL), 0);
  fd = raw_connect(b.addr);
  tx.version = p9_str_c("9P2000");
  n = p9_encode(&tx, P9_2000, buf, sizeof(buf));
  cr_assert_eq(write(fd, buf, (size_t)n), n);
  cr_assert_gt(read(fd, buf, sizeof(buf)), 0); /* Rversion, msize 8192 */
  /* A frame of 100000 bytes cannot be a message of this session. */
  cr_assert_eq(write(fd, huge, sizeof(huge)), (ssize_t)sizeof(huge));
  cr_assert_eq(read(fd, buf, sizeof(buf)), 0, "connection not closed");
  close(fd);
  bg_stop(&b);
}

/* Reads one whole frame into buf (cap bytes); its length. */
static size_t read_frame(int fd, uint8_t *buf, size_t cap) {
  size_t have = 0, want = 4;
  while (have < want) {
    ssize_t k = read(fd, buf + have, want - have);
    cr_assert_gt(k, 0, "connection ended after %zu bytes", have);
    have += (size_t)k;
    if (have == 4) {
      want = buf[0] | buf[1] << 8 | buf[2] << 16 | (size_t)buf[3] << 24;
      cr_assert(want >= 7 && want <= cap, "frame of %zu bytes", want);
    }
  }
  return have;
}

/* --- where the client runs ------------------------------------------- */

/* Pins the server's loop thread to one cpu and this thread to another (or
 * both to the same cpu); false when there are not two cpus to use. */
static bool place(bgsrv *b, bool apart) {
  static cpu_set_t all; /* what the test may use, before any pinning */
  cpu_set_t one;
  int cpu[2], n = 0;
  if (CPU_COUNT(&all) == 0)
    sched_getaffinity(0, sizeof(all), &all);
  for (int i = 0; i < CPU_SETSIZE && n < 2; i++)
    if (CPU_ISSET(i, &all))
      cpu[n++] = i;
  if (n < 2)
    return false;
  CPU_ZERO(&one);
  CPU_SET(cpu[apart], &one);
  cr_assert_eq(pthread_setaffinity_np(b->th, sizeof(one), &one), 0);
  CPU_ZERO(&one);
  CPU_SET(cpu[0], &one);
  cr_assert_eq(sched_setaffinity(0, sizeof(one), &one), 0);
  return true;
}

/* Write system calls made so far by the server's loop thread (the thread
 * named "p9loop"), from /proc/self/task/TID/io. */
static long loop_writes(void) {
  char path[300], comm[32], line[128];
  long n = -1;
  DIR *d = opendir("/proc/self/task");
  struct dirent *e;
  cr_assert_not_null(d);
  while (n < 0 && (e = readdir(d))) {
    FILE *f;
    snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
    if (!(f = fopen(path, "r")))
      continue;
    if (!fgets(comm, sizeof(comm), f) || strcmp(comm, "p9loop\n") != 0) {
      fclose(f);
      continue;
    }
    fclose(f);
    snprintf(path, sizeof(path), "/proc/self/task/%s/io", e->d_name);
    cr_assert_not_null(f = fopen(path, "r"), "no %s", path);
    while (fgets(line, sizeof(line), f))
      sscanf(line, "syscw: %ld", &n);
    fclose(f);
  }
  closedir(d);
  cr_assert_geq(n, 0, "no loop thread");
  return n;
}

/* Reads a 4 MiB file at msize 64 KiB; the loop thread's writes per read. */
static double writes_per_read(bgsrv *b, const uint8_t *file, size_t flen) {
  enum { MSIZE = 65536 };
  p9_client *c;
  p9_cfid *root = dial_attach(b->addr, "9P2000.L", MSIZE, &c), *f;
  uint8_t *in = malloc(flen);
  long w0,
      nread = (long)((flen + MSIZE - P9_IOHDRSZ - 1) / (MSIZE - P9_IOHDRSZ));
  int err;
  cr_assert_not_null(f = p9_walk(root, "big", &err));
  cr_assert_eq(p9_open(f, P9_OREAD), 0);
  w0 = loop_writes();
  cr_assert_eq(p9_pread(f, in, flen, 0), (long)flen);
  w0 = loop_writes() - w0;
  cr_assert_eq(memcmp(in, file, flen), 0, "wrong bytes");
  p9_clunk(f);
  p9_clunk(root);
  p9_client_close(c);
  free(in);
  return (double)w0 / (double)nread;
}

/* Writes per 64 KiB answer with the client on the server's cpu or on
 * another; poll_us as in p9_srv_config. */
static double writes_per_answer(bool apart, int poll_us, const uint8_t *file,
                                size_t flen) {
  bgsrv b;
  double w;
  cr_assert_eq(
      bg_start(&b, "tcp!127.0.0.1!0", &(p9_srv_config){.poll_us = poll_us}), 0);
  pthread_setname_np(b.th, "p9loop");
  p9_memfs_put(b.fs, "big", file, flen); /* the loop is idle: no client */
  if (!place(&b, apart)) {
    bg_stop(&b);
    return -1;
  }
  w = writes_per_read(&b, file, flen);
  bg_stop(&b);
  return w;
}

/* An answer of 16 KiB or more to a loopback client that sent from another
 * cpu goes out in two writes (the first wakes the client while the rest is
 * copied), and the loop polls for the next request; a client on the
 * server's cpu gets each answer in one write, and so does every client of
 * a server with poll_us < 0.  The bytes are the same. */
Test(stream, large_answers_to_a_client_on_another_cpu_in_two_writes,
     .timeout = 30) {
  size_t flen = 4 << 20;
  uint8_t *file = malloc(flen);
  double together, apart, off;
  for (size_t i = 0; i < flen; i++)
    file[i] = (uint8_t)(i * 11 + i / 65519);
  if ((together = writes_per_answer(false, 0, file, flen)) < 0) {
    free(file);
    cr_skip_test("needs two cpus");
  }
  apart = writes_per_answer(true, 0, file, flen);
  off = writes_per_answer(true, -1, file, flen);
  free(file);
  if (getenv("UKSIM_UNDER_VALGRIND")) /* its thread lock writes a pipe */
    return;
  cr_assert(together < 1.1, "%.2f writes per answer on one cpu", together);
  cr_assert(apart > 1.9 && apart < 2.1, "%.2f writes per answer apart", apart);
  cr_assert(off < 1.1, "%.2f writes per answer apart, poll_us -1", off);
}

/* Replies larger than the socket takes at once: the server writes what it
 * can, queues the rest, and later replies (small ones too) wait behind it
 * in order.  The client sends every request first, reads nothing for a
 * while, then checks each reply's tag and bytes.  Run with the client on
 * the server's cpu (one write per answer) and on another cpu (answers in
 * two writes, either of which may meet the full socket). */
static void queue_behind_a_full_socket(bool apart) {
  enum { NREAD = 16, MSIZE = 1 << 20, COUNT = MSIZE - P9_IOHDRSZ };
  size_t flen = (size_t)NREAD * COUNT;
  uint8_t *file = malloc(flen), *buf = malloc(MSIZE), *out = malloc(1 << 16);
  size_t at = 0;
  bgsrv b;
  int fd, rcv = 65536;
  p9_fcall rx,
      tx[4 + 2 * NREAD] = {
          {.type = P9_TVERSION, .tag = P9_NOTAG, .msize = MSIZE},
          {.type = P9_TATTACH, .tag = 1, .fid = 0, .afid = P9_NOFID},
          {.type = P9_TWALK, .tag = 2, .fid = 0, .newfid = 1, .nwname = 1},
          {.type = P9_TOPEN, .tag = 3, .fid = 1, .mode = P9_OREAD}};
  for (size_t i = 0; i < flen; i++)
    file[i] = (uint8_t)(i * 13 + i / 65521);
  cr_assert_eq(bg_start(&b, "tcp!127.0.0.1!0", NULL), 0);
  p9_memfs_put(b.fs, "big", file, flen); /* the loop is idle: no client */
  if (!place(&b, apart) && apart) {
    bg_stop(&b);
    free(file);
    free(buf);
    free(out);
    cr_skip_test("needs two cpus");
  }
  tx[0].version = p9_str_c("9P2000");
  tx[1].uname = p9_str_c("glenda");
  tx[2].wname[0] = p9_str_c("big");
  for (int i = 0; i < NREAD; i++) { /* a read, then a refused clunk */
    tx[4 + 2 * i] = (p9_fcall){.type = P9_TREAD,
                               .tag = (uint16_t)(10 + 2 * i),
                               .fid = 1,
                               .offset = (uint64_t)i * COUNT,
                               .count = COUNT};
    tx[5 + 2 * i] =
        (p9_fcall){.type = P9_TCLUNK, .tag = (uint16_t)(11 + 2 * i), .fid = 7};
  }
  fd = raw_connect(b.addr);
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv)); /* fills soon */
  for (int i = 0; i < 4 + 2 * NREAD; i++) {
    long n = p9_encode(&tx[i], P9_2000, out + at, (1 << 16) - at);
    cr_assert_gt(n, 0);
    at += (size_t)n;
  }
  cr_assert_eq(write(fd, out, at), (ssize_t)at);
  usleep(200000); /* the server meets a full socket meanwhile */
  for (int i = 0; i < 4 + 2 * NREAD; i++) {
    size_t n = read_frame(fd, buf, MSIZE);
    cr_assert_eq(p9_decode(buf, n, P9_2000, &rx), 0);
    cr_assert_eq(rx.tag, tx[i].tag, "reply %d out of order", i);
    if (tx[i].type == P9_TCLUNK) {
      cr_assert_eq(rx.type, P9_RERROR);
      continue;
    }
    cr_assert_eq(rx.type, tx[i].type + 1, "reply %d", i);
    if (tx[i].type == P9_TREAD) {
      cr_assert_eq(rx.count, COUNT);
      cr_assert_eq(memcmp(rx.data, file + tx[i].offset, COUNT), 0,
                   "read %d: wrong bytes", i);
    }
  }
  close(fd);
  bg_stop(&b);
  free(file);
  free(buf);
  free(out);
}

Test(stream, replies_queue_in_order_behind_a_full_socket, .timeout = 30) {
  queue_behind_a_full_socket(false);
}

Test(stream, replies_queue_in_order_behind_a_full_socket_client_elsewhere,
     .timeout = 30) {
  queue_behind_a_full_socket(true);
}

/* --- asynchronous client ---------------------------------------------- */

struct actx {
  p9_aclient *c;
  p9_listener *l;
  p9_srv *srv;
  int step, closed;
  uint32_t root, file;
};

static void async_next(p9_aclient *c, int err, const p9_fcall *rx, void *arg);

static void async_done(void *arg) {
  struct actx *x = arg;
  x->closed = 1;
  p9_listener_close(x->l);
}

static void async_send(struct actx *x, p9_fcall tx) {
  cr_assert_eq(p9_aclient_rpc(x->c, &tx, async_next, x), 0);
}

/* The chain: attach, walk+create, write, read, clunk, close. */
static void async_next(p9_aclient *c, int err, const p9_fcall *rx, void *arg) {
  struct actx *x = arg;
  cr_assert_eq(err, 0, "step %d: %s", x->step, p9_strerror(err));
  switch (x->step++) {
  case 0:
    x->c = c;
    x->root = p9_aclient_fid(c);
    async_send(x, (p9_fcall){.type = P9_TATTACH,
                             .fid = x->root,
                             .afid = P9_NOFID,
                             .uname = p9_str_c("glenda")});
    break;
  case 1:
    x->file = p9_aclient_fid(c);
    async_send(x,
               (p9_fcall){.type = P9_TWALK, .fid = x->root, .newfid = x->file});
    break;
  case 2:
    async_send(x, (p9_fcall){.type = P9_TLCREATE,
                             .fid = x->file,
                             .name = p9_str_c("f"),
                             .flags = 2,
                             .lmode = 0644});
    break;
  case 3:
    async_send(x, (p9_fcall){.type = P9_TWRITE,
                             .fid = x->file,
                             .count = 5,
                             .data = (const uint8_t *)"async"});
    break;
  case 4:
    cr_assert_eq(rx->count, 5);
    async_send(x, (p9_fcall){.type = P9_TREAD, .fid = x->file, .count = 100});
    break;
  case 5:
    cr_assert_eq(rx->count, 5);
    cr_assert_eq(memcmp(rx->data, "async", 5), 0);
    async_send(x, (p9_fcall){.type = P9_TCLUNK, .fid = x->file});
    break;
  case 6:
    p9_aclient_fid_put(c, x->file);
    /* Two requests in flight at once, answered by tag. */
    async_send(x, (p9_fcall){.type = P9_TGETATTR,
                             .fid = x->root,
                             .request_mask = P9_GETATTR_BASIC});
    async_send(x, (p9_fcall){.type = P9_TSTATFS, .fid = x->root});
    break;
  case 7:
    break;
  case 8:
    p9_aclient_close(c, async_done, x);
    break;
  }
}

Test(stream, asynchronous_client_on_the_servers_loop, .timeout = 30) {
  uv_loop_t loop;
  struct actx x = {0};
  p9_memfs *fs = p9_memfs_new();
  int err;
  uv_loop_init(&loop);
  x.srv = p9_srv_new(p9_memfs_ops(), fs, NULL, &err);
  x.l = p9_listen(x.srv, &loop, "tcp!127.0.0.1!0", &err);
  cr_assert_not_null(x.l);
  cr_assert_eq(p9_aclient_connect(&loop, p9_listener_addr(x.l), 65536,
                                  "9P2000.L", async_next, &x),
               0);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(x.step, 9);
  cr_assert(x.closed);
  cr_assert_eq(p9_srv_nconns(x.srv), 0);
  cr_assert_eq(uv_loop_close(&loop), 0);
  p9_srv_free(x.srv);
  p9_memfs_free(fs);
}

static void refused_cb(p9_aclient *c, int err, const p9_fcall *rx, void *arg) {
  (void)rx;
  cr_assert_null(c);
  *(int *)arg = err;
}

Test(stream, asynchronous_connect_failure_is_reported, .timeout = 30) {
  uv_loop_t loop;
  int err = 0;
  uv_loop_init(&loop);
  cr_assert_eq(p9_aclient_connect(&loop, "unix!/nonexistent/sock", 0, NULL,
                                  refused_cb, &err),
               0);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_lt(err, 0);
  cr_assert_eq(uv_loop_close(&loop), 0);
}

/* --- the command-line tool -------------------------------------------- */

Test(stream, command_line_tool, .timeout = 60) {
  const char *tool = getenv("UKSIM_9P");
  char out[4096];
  bgsrv b;
  if (!tool)
    cr_skip_test("UKSIM_9P not set (run through meson test)");
  cr_assert_eq(bg_start(&b, "tcp!127.0.0.1!0", NULL), 0);
  cr_assert_eq(sh(out, sizeof(out), "%s 9p '%s' mkdir /d", tool, b.addr), 0);
  cr_assert_eq(
      sh(out, sizeof(out), "echo hi | %s 9p '%s' write /d/f", tool, b.addr), 0);
  cr_assert_eq(sh(out, sizeof(out), "%s 9p '%s' cat /d/f", tool, b.addr), 0);
  cr_assert_str_eq(out, "hi\n");
  cr_assert_eq(
      sh(out, sizeof(out), "%s 9p --dialect 9P2000 '%s' ls /", tool, b.addr),
      0);
  cr_assert_str_eq(out, "d/\n");
  cr_assert_eq(sh(out, sizeof(out), "%s 9p '%s' stat /d/f", tool, b.addr), 0);
  cr_assert(strncmp(out, "/d/f - 0664 3 ", 14) == 0, "%s", out);
  cr_assert_eq(sh(out, sizeof(out), "%s 9p '%s' rm /d/f", tool, b.addr), 0);
  cr_assert_neq(sh(out, sizeof(out), "%s 9p '%s' cat /d/f 2>&1", tool, b.addr),
                0);
  cr_assert(strstr(out, "file does not exist"), "%s", out);
  cr_assert_eq(WEXITSTATUS(sh(out, sizeof(out), "%s 9p bogus 2>&1", tool)), 2);
  cr_assert_eq(sh(out, sizeof(out), "%s 9p --help", tool), 0);
  cr_assert(strstr(out, "usage"));
  /* bad values are named, never taken as 0 */
  cr_assert_eq(
      WEXITSTATUS(sh(out, sizeof(out),
                     "%s 9p serve tcp!127.0.0.1!0 --poll-us x 2>&1", tool)),
      2);
  cr_assert(strstr(out, "--poll-us: 'x' is not a number in 0..1000000"), "%s",
            out);
  cr_assert_eq(
      WEXITSTATUS(sh(out, sizeof(out),
                     "%s 9p serve tcp!127.0.0.1!0 --max-conns 0 2>&1", tool)),
      2);
  cr_assert(strstr(out, "--max-conns: '0' is not a number in 1..1000000"), "%s",
            out);
  cr_assert_eq(WEXITSTATUS(sh(out, sizeof(out),
                              "%s 9p serve tcp!127.0.0.1!0 --frame-timeout x "
                              "2>&1",
                              tool)),
               2);
  cr_assert(strstr(out, "--frame-timeout: 'x' is not a number in 0..86400"),
            "%s", out);
  cr_assert_eq(
      WEXITSTATUS(sh(out, sizeof(out), "%s bench 9p --poll-us x 2>&1", tool)),
      2);
  cr_assert(
      strstr(out, "uksim bench 9p: --poll-us: 'x' is not a number in 0.."),
      "%s", out);
  cr_assert_eq(
      WEXITSTATUS(sh(out, sizeof(out), "%s bench 9p --bogus 2>&1", tool)), 2);
  cr_assert(strstr(out, "unknown option --bogus"), "%s", out);
  bg_stop(&b);
}

/* `uksim 9p serve --dir` serves a host directory: its files are read
 * and written through the tool, and a link out of it is not followed. */
Test(stream, command_line_tool_serves_a_host_directory, .timeout = 60) {
  const char *tool = getenv("UKSIM_9P");
  char dir[] = "/tmp/serve-dir-XXXXXX", out[4096], addr[128], path[160];
  int pid = 0;
  FILE *p;
  if (!tool)
    cr_skip_test("UKSIM_9P not set (run through meson test)");
  cr_assert_not_null(mkdtemp(dir));
  cr_assert_eq(sh(out, sizeof(out),
                  "echo hi > %s/hello && ln -s /etc/passwd %s/esc", dir, dir),
               0);
  snprintf(out, sizeof(out),
           "echo $$; exec %s 9p serve --dir %s tcp!127.0.0.1!0", tool, dir);
  cr_assert_not_null(p = popen(out, "r"));
  cr_assert_eq(fscanf(p, "%d serving on %127s", &pid, addr), 2);
  cr_assert_eq(sh(out, sizeof(out), "%s 9p '%s' cat /hello", tool, addr), 0);
  cr_assert_str_eq(out, "hi\n");
  cr_assert_eq(sh(out, sizeof(out), "%s 9p '%s' ls /", tool, addr), 0);
  cr_assert_str_eq(out, "hello\n", "the link is not listed");
  cr_assert_neq(sh(out, sizeof(out), "%s 9p '%s' cat /esc 2>&1", tool, addr),
                0);
  cr_assert_neq(
      sh(out, sizeof(out), "%s 9p '%s' cat /../etc/passwd 2>&1", tool, addr),
      0);
  cr_assert_eq(
      sh(out, sizeof(out), "echo new | %s 9p '%s' write /made", tool, addr), 0);
  snprintf(path, sizeof(path), "%s/made", dir);
  cr_assert_eq(sh(out, sizeof(out), "cat %s", path), 0);
  cr_assert_str_eq(out, "new\n", "written on the host");
  kill(pid, SIGTERM);
  pclose(p);
  cr_assert_eq(sh(out, sizeof(out),
                  "%s 9p serve --dir %s/none "
                  "tcp!127.0.0.1!0 2>&1",
                  tool, dir) != 0,
               1);
  cr_assert(strstr(out, "No such file or directory"), "%s", out);
  sh(out, sizeof(out), "rm -rf %s", dir);
}

/* A server that says its errors as Linux does: a walk that finds
 * nothing answers "No such file or directory", not Plan 9's text. */
static struct p9_srv_ops linuxish_ops;
static _Atomic int linuxish_made; /* files created so far: new0, new1 */

static void linuxish_create(p9_req *r) {
  linuxish_made++;
  p9_memfs_ops()->create(r);
}

static void linuxish_walk(p9_req *r) {
  p9_str w = r->ifcall.wname[0];
  bool made = (p9_str_eq(w, "new0") && linuxish_made > 0) ||
              (p9_str_eq(w, "new1") && linuxish_made > 1);
  if (r->ifcall.nwname == 1 && !made)
    p9_respond_error(r, "No such file or directory");
  else
    p9_memfs_ops()->walk(r);
}

/* `uksim 9p write` creates a file its walk did not find at a server
 * that says so in Linux's words, and a failure prints the errno, our
 * text and the server's. */
Test(stream, command_line_tool_reads_other_servers_errors, .timeout = 60) {
  const char *tool = getenv("UKSIM_9P");
  char out[4096];
  bgsrv b;
  if (!tool)
    cr_skip_test("UKSIM_9P not set (run through meson test)");
  linuxish_ops = *p9_memfs_ops();
  linuxish_ops.walk = linuxish_walk;
  linuxish_ops.create = linuxish_create;
  cr_assert_eq(bg_start_ops(&b, "tcp!127.0.0.1!0", NULL, &linuxish_ops), 0);
  for (int i = 0; i < 2; i++) {
    const char *d = i ? "9P2000.L" : "9P2000";
    cr_assert_eq(sh(out, sizeof(out),
                    "echo hi | %s 9p --dialect %s '%s' write /new%d 2>&1", tool,
                    d, b.addr, i),
                 0, "%s: %s", d, out);
    cr_assert_eq(sh(out, sizeof(out), "%s 9p --dialect %s '%s' cat /new%d",
                    tool, d, b.addr, i),
                 0);
    cr_assert_str_eq(out, "hi\n");
  }
  cr_assert_neq(sh(out, sizeof(out),
                   "%s 9p --dialect 9P2000 '%s' cat /newer 2>&1", tool, b.addr),
                0);
  cr_assert_str_eq(out, "uksim 9p: /newer: file does not exist (ENOENT; "
                        "server: No such file or directory)\n");
  bg_stop(&b);
}

/* `cat` asks for msize - IOHDRSZ bytes, what one Rread carries: each
 * piece of the file is one Tread (and one more finds the end). */
Test(stream, command_line_cat_reads_a_piece_per_request, .timeout = 60) {
  const char *tool = getenv("UKSIM_9P");
  char out[4096], line[512];
  size_t piece = 8192 - P9_IOHDRSZ, len = 3 * piece + 5;
  uint8_t *data = malloc(len);
  FILE *log = tmpfile();
  bgsrv b;
  int treads = 0;
  if (!tool)
    cr_skip_test("UKSIM_9P not set (run through meson test)");
  memset(data, 'x', len);
  cr_assert_eq(
      bg_start(&b, "tcp!127.0.0.1!0", &(p9_srv_config){.trace = 1, .log = log}),
      0);
  p9_memfs_put(b.fs, "f", data, len);
  cr_assert_eq(sh(out, sizeof(out), "%s 9p --msize 8192 '%s' cat /f | wc -c",
                  tool, b.addr),
               0);
  cr_assert_eq(atol(out), (long)len);
  bg_stop(&b);
  rewind(log);
  while (fgets(line, sizeof(line), log))
    treads += strstr(line, "<- Tread ") != NULL;
  cr_assert_eq(treads, 4 + 1, "%d Treads for 3 whole pieces and a bit", treads);
  fclose(log);
  free(data);
}

/* --- limits against hostile clients ----------------------------------- */

static FILE *quiet(void) {
  static FILE *f;
  if (!f)
    f = fopen("/dev/null", "w");
  return f;
}

/* Sends Tversion at msize on a raw socket and reads the Rversion. */
static void raw_version(int fd, uint32_t msize) {
  uint8_t buf[256];
  p9_fcall tx = {.type = P9_TVERSION, .tag = P9_NOTAG, .msize = msize};
  long n;
  tx.version = p9_str_c("9P2000");
  n = p9_encode(&tx, P9_2000, buf, sizeof(buf));
  cr_assert_eq(write(fd, buf, (size_t)n), n);
  read_frame(fd, buf, sizeof(buf));
}

/* Whether the server closes fd within ms milliseconds (bytes it sends
 * meanwhile are read and dropped). */
static bool closed_within(int fd, int ms) {
  uint8_t buf[256];
  struct pollfd p = {.fd = fd, .events = POLLIN};
  uint64_t end = uv_hrtime() + (uint64_t)ms * 1000000;
  while (uv_hrtime() < end) {
    int left = (int)((end - uv_hrtime()) / 1000000);
    if (poll(&p, 1, left > 0 ? left : 1) == 1 &&
        read(fd, buf, sizeof(buf)) <= 0)
      return true;
  }
  return false;
}

/* Announces a Twrite frame of size bytes and sends only its first 27. */
static void announce(int fd, uint32_t size) {
  uint8_t head[27] = {(uint8_t)size,
                      (uint8_t)(size >> 8),
                      (uint8_t)(size >> 16),
                      (uint8_t)(size >> 24),
                      P9_TWRITE,
                      1};
  cr_assert_eq(write(fd, head, sizeof(head)), (ssize_t)sizeof(head));
}

/* A client that must keep being served: its root holds "f". */
static void still_served(const char *addr) {
  cr_assert(exists(addr, "f"), "the good client lost f");
}

/* A connection beyond max_conns is closed at once and counted; the ones
 * being served go on, and once one leaves a new one is served. */
Test(stream, connections_beyond_max_conns_are_closed_and_counted,
     .timeout = 30) {
  bgsrv b;
  p9_client *c1, *c2, *c3 = NULL;
  p9_cfid *r1, *r2;
  int err;
  cr_assert_eq(bg_start(&b, "tcp!127.0.0.1!0",
                        &(p9_srv_config){.max_conns = 2, .log = quiet()}),
               0);
  p9_memfs_put(b.fs, "f", "x", 1); /* the loop is idle: no client */
  r1 = dial_attach(b.addr, "9P2000", 0, &c1);
  r2 = dial_attach(b.addr, "9P2000.L", 0, &c2);
  cr_assert_null(p9_client_dial(b.addr, 0, "9P2000", &err),
                 "a third connection was served");
  cr_assert_null(p9_client_dial(b.addr, 0, "9P2000", &err));
  cr_assert_eq(bg_stats(&b).refused, 2);
  p9_cfid *f = p9_walk(r1, "f", &err);
  cr_assert_not_null(f, "the first client lost f: %s", p9_strerror(err));
  p9_clunk(f);
  cr_assert_not_null(f = p9_walk(r2, "f", &err));
  p9_clunk(f);
  p9_clunk(r2);
  p9_client_close(c2);
  for (int i = 0; i < 200 && !c3; i++) /* until the server saw c2 go */
    if (!(c3 = p9_client_dial(b.addr, 0, "9P2000", &err)))
      usleep(10000);
  cr_assert_not_null(c3, "no connection served after one left");
  p9_client_close(c3);
  p9_clunk(r1);
  p9_client_close(c1);
  bg_stop(&b);
  cr_assert_geq(b.stats.refused, 2); /* and the tries while c2 left */
}

/* Before Tversion a frame can only be a Tversion: one announcing 1 MiB
 * is closed at once, not buffered. */
Test(stream, a_large_frame_before_tversion_closes_the_connection,
     .timeout = 30) {
  bgsrv b;
  int fd;
  cr_assert_eq(
      bg_start(&b, "tcp!127.0.0.1!0", &(p9_srv_config){.log = quiet()}), 0);
  fd = raw_connect(b.addr);
  announce(fd, 1u << 20);
  cr_assert(closed_within(fd, 3000), "a 1 MiB frame before Tversion waited");
  close(fd);
  fd = raw_connect(b.addr); /* after Tversion, msize decides */
  raw_version(fd, 1u << 20);
  announce(fd, 1u << 20);
  cr_assert(!closed_within(fd, 200), "a frame within msize was refused");
  close(fd);
  bg_stop(&b);
  cr_assert_eq(b.stats.oversize, 1);
}

/* A frame begun and not finished within frame_timeout_ms closes its
 * connection, even if bytes trickle in; a connection idle between frames
 * stays, and so does a client that keeps working meanwhile. */
Test(stream, an_incomplete_frame_times_out_an_idle_connection_does_not,
     .timeout = 30) {
  bgsrv b;
  int stuck, trickle, idle;
  uint8_t byte = 0;
  cr_assert_eq(
      bg_start(&b, "tcp!127.0.0.1!0",
               &(p9_srv_config){.frame_timeout_ms = 300, .log = quiet()}),
      0);
  p9_memfs_put(b.fs, "f", "x", 1); /* the loop is idle: no client */
  stuck = raw_connect(b.addr);
  trickle = raw_connect(b.addr);
  idle = raw_connect(b.addr);
  raw_version(stuck, 8192);
  raw_version(idle, 8192);
  announce(stuck, 1000); /* 1,000 bytes announced, 27 sent */
  announce(trickle, 1000);
  still_served(b.addr);
  for (int i = 0; i < 5; i++) { /* a byte every 100 ms: still 300 ms */
    usleep(100000);
    send(trickle, &byte, 1, MSG_NOSIGNAL); /* fails once it is closed */
  }
  cr_assert(closed_within(stuck, 2000), "the stuck frame was waited on");
  cr_assert(closed_within(trickle, 2000), "trickling kept a frame alive");
  cr_assert(!closed_within(idle, 500), "an idle connection was dropped");
  still_served(b.addr);
  raw_version(idle, 8192); /* and it is still served */
  close(stuck);
  close(trickle);
  close(idle);
  bg_stop(&b);
  cr_assert_eq(b.stats.timed_out, 2);
}

/* Frame buffers cost what arrived, not what was announced, and share one
 * budget: 40 connections announcing 1 MiB each hold 4 KiB each; a frame
 * that would take the buffers past max_buffered closes its own
 * connection and nobody else's. */
Test(stream, frame_buffers_grow_with_what_arrived_within_a_budget,
     .timeout = 30) {
  enum { N = 40, BIG = 900 << 10 };
  bgsrv b;
  int fd[N], big;
  uint8_t *chunk = calloc(1, 64 << 10);
  p9_srv_stats st;
  cr_assert_eq(bg_start(&b, "tcp!127.0.0.1!0",
                        &(p9_srv_config){.max_conns = N + 4,
                                         .max_buffered = 512 << 10,
                                         .log = quiet()}),
               0);
  p9_memfs_put(b.fs, "f", "x", 1); /* the loop is idle: no client */
  for (int i = 0; i < N; i++) {
    fd[i] = raw_connect(b.addr);
    raw_version(fd[i], 1u << 20);
    announce(fd[i], 1u << 20);
  }
  still_served(b.addr);
  st = bg_stats(&b);
  cr_assert_leq(st.buffered, N * 4096 + 4096, "%zu bytes buffered",
                st.buffered);
  big = raw_connect(b.addr);
  raw_version(big, 1u << 20);
  announce(big, BIG);
  for (size_t sent = 27; sent < BIG && !closed_within(big, 0);) {
    size_t n = BIG - sent < (64 << 10) ? BIG - sent : (64 << 10);
    ssize_t k = send(big, chunk, n, MSG_NOSIGNAL);
    if (k <= 0)
      break;
    sent += (size_t)k;
  }
  cr_assert(closed_within(big, 3000), "a frame past the budget was kept");
  still_served(b.addr);
  for (int i = 0; i < N; i++) {
    cr_assert(!closed_within(fd[i], 0), "connection %d was dropped", i);
    close(fd[i]);
  }
  close(big);
  free(chunk);
  bg_stop(&b);
  cr_assert_eq(b.stats.no_buffer, 1);
  cr_assert_eq(b.stats.buffered, 0);
}
