/* tallyfs: a 9P2000 file server of your own, for lab 06.
 *
 * It serves a tree of three entries over TCP on loopback:
 *   /        a directory
 *   /hello   read-only: "hello from tallyfs\n"
 *   /tally   write anything to it; reading it says how many writes and
 *            bytes it has taken so far: "3 writes, 17 bytes\n"
 * It is built on net9p's server library (include/uksim/9p.h, like Plan
 * 9's lib9p): a table of ops, each ending the request with exactly one
 * p9_respond; the library checks the protocol (fids, modes, offsets)
 * before an op runs, and answers the messages tallyfs has no op for.
 *
 *   cc tallyfs.c -o tallyfs $(pkg-config --cflags --libs uksim libuv)
 *   ./tallyfs 'tcp!127.0.0.1!5660'
 *
 * A fid's aux is the file's index in files[] (the root is 0), never a
 * pointer.  The tally is the server's only state; it lives in memory and
 * is lost when the server ends.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <uksim/9p.h>

/* The files, by index: a qid path is the index. */
enum { F_ROOT, F_HELLO, F_TALLY, F_COUNT };
#define HELLO_TEXT "hello from tallyfs\n"
/* Room for the tally's text, "N writes, M bytes\n". */
#define TALLY_TEXT_MAX 64

static const char *const names[F_COUNT] = {"/", "hello", "tally"};
static unsigned long long tally_writes, tally_bytes;
static char tally_text[TALLY_TEXT_MAX];

static p9_qid qid_of(uint64_t f) {
  p9_qid q = {.type = f == F_ROOT ? P9_QTDIR : 0, .path = f};
  return q;
}

/* The bytes of a file now (the tally's are made on each call). */
static const char *text_of(uint64_t f) {
  if (f == F_HELLO)
    return HELLO_TEXT;
  snprintf(tally_text, sizeof tally_text, "%llu writes, %llu bytes\n",
           tally_writes, tally_bytes);
  return tally_text;
}

static void stat_of(uint64_t f, p9_stat *st) {
  memset(st, 0, sizeof *st);
  st->qid = qid_of(f);
  st->mode = f == F_ROOT ? P9_DMDIR | 0555 : f == F_HELLO ? 0444 : 0666;
  st->length = f == F_ROOT ? 0 : strlen(text_of(f));
  st->name = p9_str_c(names[f]);
  st->uid = st->gid = st->muid = p9_str_c("tallyfs");
}

static void fs_attach(p9_req *r) {
  r->fid->aux = F_ROOT;
  r->ofcall.qid = qid_of(F_ROOT);
  p9_respond(r, 0);
}

/* Walks from the root to one of its files (or back to the root). */
static void fs_walk(p9_req *r) {
  uint64_t f = r->fid->aux;
  uint16_t i;
  for (i = 0; i < r->ifcall.nwname; i++) {
    p9_str w = r->ifcall.wname[i];
    uint64_t next = F_COUNT;
    if (p9_str_eq(w, ".."))
      next = F_ROOT;
    else if (f == F_ROOT && p9_str_eq(w, names[F_HELLO]))
      next = F_HELLO;
    else if (f == F_ROOT && p9_str_eq(w, names[F_TALLY]))
      next = F_TALLY;
    if (next == F_COUNT)
      break;
    f = next;
    r->ofcall.wqid[i] = qid_of(f);
  }
  if (i == 0 && r->ifcall.nwname > 0) {
    p9_respond(r, -ENOENT); /* not even the first name exists */
    return;
  }
  r->ofcall.nwqid = i;
  if (i == r->ifcall.nwname)
    r->newaux = f;
  p9_respond(r, 0);
}

static void fs_open(p9_req *r) {
  uint64_t f = r->fid->aux;
  int writing = (r->ifcall.mode & 3) != P9_OREAD;
  if (writing && f != F_TALLY) {
    p9_respond(r, -EACCES);
    return;
  }
  r->ofcall.qid = qid_of(f);
  p9_respond(r, 0);
}

static void fs_read(p9_req *r) {
  uint64_t f = r->fid->aux;
  if (f == F_ROOT) {
    for (uint64_t i = r->fid->dirindex + 1; i < F_COUNT; i++) {
      p9_stat st;
      stat_of(i, &st);
      if (p9_dirread_put(r, &st) < 0)
        break;
    }
    p9_respond(r, 0);
    return;
  }
  const char *t = text_of(f);
  size_t len = strlen(t), n = 0;
  if (r->ifcall.offset < len) {
    n = len - r->ifcall.offset;
    if (n > r->ifcall.count)
      n = r->ifcall.count;
    memcpy(r->buf, t + r->ifcall.offset, n);
  }
  r->ofcall.count = (uint32_t)n;
  p9_respond(r, 0);
}

/* Only the tally is open for writing (fs_open saw to it). */
static void fs_write(p9_req *r) {
  tally_writes++;
  tally_bytes += r->ifcall.count;
  r->ofcall.count = r->ifcall.count;
  p9_respond(r, 0);
}

static void fs_stat(p9_req *r) {
  stat_of(r->fid->aux, &r->ofcall.stat);
  p9_respond(r, 0);
}

/* truncate(1) on the view is a wstat (Tsetattr) of the length: the tally
 * has no length to set, so accept it and change nothing. */
static void fs_wstat(p9_req *r) {
  p9_respond(r, r->fid->aux == F_TALLY ? 0 : -EACCES);
}

static const struct p9_srv_ops tallyfs_ops = {
    .attach = fs_attach,
    .walk = fs_walk,
    .open = fs_open,
    .read = fs_read,
    .write = fs_write,
    .stat = fs_stat,
    .wstat = fs_wstat,
};

int main(int argc, char **argv) {
  int err = 0;
  if (argc != 2) {
    fprintf(stderr, "usage: tallyfs 'tcp!127.0.0.1!PORT'\n");
    return 2;
  }
  uv_loop_t *loop = uv_default_loop();
  p9_srv *srv = p9_srv_new(&tallyfs_ops, NULL, NULL, &err);
  p9_listener *l = srv ? p9_listen(srv, loop, argv[1], &err) : NULL;
  if (l == NULL) {
    fprintf(stderr, "tallyfs: %s: %s\n", argv[1], strerror(-err));
    return 1;
  }
  printf("tallyfs: serving on %s\n", p9_listener_addr(l));
  fflush(stdout);
  return uv_run(loop, UV_RUN_DEFAULT);
}
