/*
 * fuzz_client.c: libFuzzer target for the blocking 9P client (client.c):
 * how it reads a server's answers.  The input is
 *   flags[1] script[8] answers...
 * flags picks the version offered (bit 0: 9P2000.L, else 9P2000), a key
 * (bit 1: attach through Tauth) and the msize offered (bits 2-3); each
 * script byte is one client operation (see run_op; 0 ends the script).  The
 * rest is the byte stream the "server" sends, whatever the client asks: a
 * helper thread writes it to the client's socket, then half-closes, and
 * reads and drops the client's requests.  Whatever arrives, the client
 * must return an answer or an error, never crash, overread, hang or leak,
 * and its results must stay within what it asked for.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uksim/9p.h>

enum { SCRIPT = 8, NFIDS = 4 };

static const uint8_t key[P9_KEYLEN] = "fuzzing-key-0123456789abcdefghij";
static const uint32_t msizes[4] = {8192, 65536, P9_MINMSIZE, 1u << 20};

/* The server's side: sends the answers, drops the requests. */
typedef struct server {
  int fd;
  const uint8_t *out;
  size_t left;
} server;

static void *serve(void *arg) {
  server *s = arg;
  uint8_t sink[4096];
  for (;;) {
    struct pollfd pf = {s->fd, POLLIN | (s->left ? POLLOUT : 0), 0};
    if (poll(&pf, 1, -1) < 0 && errno != EINTR)
      abort();
    if (pf.revents & POLLOUT) {
      ssize_t k = write(s->fd, s->out, s->left);
      if (k > 0) {
        s->out += k;
        s->left -= (size_t)k;
      }
      if (s->left == 0)
        shutdown(s->fd, SHUT_WR); /* the client reads end of stream */
    }
    if (pf.revents & (POLLIN | POLLHUP)) {
      ssize_t k = read(s->fd, sink, sizeof sink);
      if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR))
        return NULL; /* the client closed its end */
    }
  }
}

static int count_entry(const p9_dir *d, void *arg) {
  if (memchr(d->name, '\0', sizeof d->name) == NULL)
    abort();
  /* A server that never ends a listing is cut off. */
  return ++*(int *)arg > 1000 ? -ECANCELED : 0;
}

/* The fid operations take the newest fid held; walks push a new one. */
typedef struct state {
  p9_cfid *fid[NFIDS];
  int n;
  uint8_t buf[3 * 65536];
} state;

static void push(state *st, p9_cfid *f) {
  if (!f)
    return;
  if (st->n == NFIDS) {
    p9_clunk(f);
    return;
  }
  st->fid[st->n++] = f;
}

static p9_cfid *pop(state *st) {
  return st->n ? st->fid[--st->n] : NULL;
}

static void check_io(long k, size_t asked) {
  if (k > (long)asked)
    abort(); /* more than the buffer asked for */
}

static void check_status(int r) {
  if (r > 0)
    abort(); /* 0 or a negative errno, nothing else */
}

static void run_op(state *st, uint8_t op) {
  p9_cfid *f = st->n ? st->fid[st->n - 1] : NULL;
  size_t sizes[4] = {16, 4096, sizeof st->buf, 0};
  size_t n = sizes[(op >> 4) & 3];
  p9_dir d;
  int err, entries = 0;
  if (!f)
    return;
  switch (op & 15) {
  case 1:
    push(st, p9_walk(f, "a/b", &err));
    break;
  case 2:
    push(st, p9_walk(f, "", &err));
    break;
  case 3: /* more names than one Twalk carries */
    push(st, p9_walk(f, "1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17/18", &err));
    break;
  case 4:
    check_status(p9_open(f, (uint8_t)(op >> 6)));
    break;
  case 5:
    check_status(p9_create(f, "f", 0644, P9_ORDWR));
    break;
  case 6:
    check_status(p9_mkdir(f, "d", 0755));
    break;
  case 7:
    check_io(p9_pread(f, st->buf, n, 0), n);
    break;
  case 8:
    check_io(p9_pwrite(f, st->buf, n, 0), n);
    break;
  case 9:
    check_status(p9_readdir(f, count_entry, &entries));
    break;
  case 10:
    if (p9_fstat(f, &d) == 0 && memchr(d.name, '\0', sizeof d.name) == NULL)
      abort();
    break;
  case 11:
    check_status(p9_fwstat(f, op & 16 ? 0 : ~0ull, op & 32 ? 0600 : ~0u));
    break;
  case 12:
    check_status(p9_clunk(pop(st)));
    break;
  case 13:
    check_status(p9_remove(pop(st)));
    break;
  default:
    break;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static state st;
  server srv;
  pthread_t th;
  p9_client *c;
  int sv[2], err;
  if (size < 1 + SCRIPT)
    return 0;
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    abort();
  srv = (server){sv[1], data + 1 + SCRIPT, size - 1 - SCRIPT};
  fcntl(sv[1], F_SETFL, O_NONBLOCK);
  if (srv.left == 0)
    shutdown(sv[1], SHUT_WR);
  if (pthread_create(&th, NULL, serve, &srv) != 0)
    abort();
  c = p9_client_fdopen(sv[0], msizes[data[0] >> 2 & 3],
                       data[0] & 1 ? "9P2000.L" : "9P2000", &err);
  if (c) {
    if (p9_client_msize(c) > msizes[data[0] >> 2 & 3])
      abort(); /* the client took a larger msize than it offered */
    st.n = 0;
    push(&st, p9_attach(c, "glenda", "", data[0] & 2 ? key : NULL, &err));
    for (int i = 0; i < SCRIPT && data[1 + i]; i++)
      run_op(&st, data[1 + i]);
    while (st.n)
      p9_clunk(pop(&st));
    p9_client_close(c);
  }
  pthread_join(th, NULL);
  close(sv[1]);
  return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  signal(SIGPIPE, SIG_IGN);
  return 0;
}
