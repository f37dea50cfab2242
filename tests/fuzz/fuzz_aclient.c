/*
 * fuzz_aclient.c: libFuzzer target for the asynchronous 9P client
 * (aclient.c) and the stream transport under it (stream.c): how they take
 * a server's answers apart.  The input is
 *   flags[1] script[8] answers...
 * flags picks the version offered (bit 0: 9P2000.L, else 9P2000), how the
 * answers arrive (bits 2-3: all at once or in pieces of 3, 100 or 1000
 * bytes, each piece read by its own turn of the loop, so frames straddle
 * reads) and the msize offered (bits 4-5).  Once the version is agreed,
 * each script byte sends one request (bit 7: sent from the callback of the
 * answer before it instead of at once; 0 ends the script).  The "server"
 * is the accepted end of a unix socket this process listens on: it sends
 * the answers whatever the client asks, then half-closes.
 *
 * The client's contract is checked: every callback of a request that was
 * accepted runs exactly once (with the answer, its error, or -ECONNRESET /
 * -ECANCELED and no answer), a success carries the answer to its request,
 * a server's error may be any errno, ECONNRESET included, and at the end
 * nothing is left on the loop.  Crashes, overreads and leaks are bugs.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <uksim/9p.h>

enum { SCRIPT = 8, NREQ = 2 * SCRIPT };

static const uint32_t msizes[4] = {8192, 65536, P9_MINMSIZE, 1u << 20};
static const size_t pieces[4] = {~(size_t)0, 3, 100, 1000};

typedef struct req {
  struct run *run;
  uint8_t type, op;
  uint16_t tag;
  int calls;    /* callbacks so far */
  bool sent;    /* p9_aclient_rpc took it */
  bool chained; /* sends the next script op from its callback */
} req;

typedef struct run {
  p9_aclient *c;
  bool connected, freed;
  const uint8_t *script;
  int next; /* script position */
  req reqs[NREQ];
  int nreq;
  uint8_t data[128];
} run;

static int listen_fd = -1;
static char dir[256], addr[300];

static void send_op(run *r, uint8_t op);

/* Runs the script from its position: ops up to a chained one go now. */
static void send_script(run *r) {
  while (r->next < SCRIPT && r->script[r->next]) {
    uint8_t op = r->script[r->next++];
    send_op(r, op);
    if (op & 0x80)
      return; /* the rest follows its answer */
  }
}

static void on_answer(p9_aclient *c, int err, const p9_fcall *rx, void *arg) {
  req *q = arg;
  (void)c;
  if (++q->calls > 1)
    abort(); /* a callback ran twice */
  if (err > 0)
    abort(); /* 0 or a negative errno, nothing else */
  if (err == 0 && (rx == NULL || rx->type != q->type + 1 || rx->tag != q->tag))
    abort(); /* a success that is not the answer to this request */
  if (rx == NULL && err != -ECONNRESET && err != -ECANCELED)
    abort(); /* no answer only when the connection ended */
  if (rx != NULL && rx->tag != q->tag)
    abort(); /* an answer (even an Rlerror of ECONNRESET) is this tag's */
  if (q->chained && !q->run->freed)
    send_script(q->run);
}

static void send_op(run *r, uint8_t op) {
  p9_fcall tx = {.fid = 1};
  req *q;
  if (r->nreq == NREQ || r->freed)
    return;
  q = &r->reqs[r->nreq++];
  *q = (req){.run = r, .op = op, .chained = op & 0x80};
  switch (op & 15) {
  case 1:
    tx.type = P9_TATTACH;
    tx.afid = P9_NOFID;
    tx.uname = p9_str_c("glenda");
    tx.aname = p9_str_c("");
    break;
  case 2:
    tx.type = P9_TWALK;
    tx.newfid = 2;
    tx.nwname = 2;
    tx.wname[0] = p9_str_c("a");
    tx.wname[1] = p9_str_c("b");
    break;
  case 3:
    tx.type = p9_aclient_dialect(r->c) == P9_2000L ? P9_TLOPEN : P9_TOPEN;
    break;
  case 4:
    tx.type = P9_TREAD;
    tx.count = op & 0x40 ? 65536 : 64;
    break;
  case 5:
    tx.type = P9_TWRITE;
    tx.count = sizeof r->data;
    tx.data = r->data;
    break;
  case 6:
    tx.type = p9_aclient_dialect(r->c) == P9_2000L ? P9_TREADDIR : P9_TSTAT;
    tx.count = 4096;
    break;
  case 7:
    tx.type = p9_aclient_dialect(r->c) == P9_2000L ? P9_TGETATTR : P9_TSTAT;
    tx.request_mask = P9_GETATTR_BASIC;
    break;
  case 8:
    tx.type = P9_TFLUSH;
    tx.oldtag = r->nreq > 1 ? r->reqs[r->nreq - 2].tag : 0;
    break;
  case 9:
    tx.type = P9_TCLUNK;
    break;
  default:
    tx.type = P9_TREMOVE;
    break;
  }
  q->type = tx.type;
  if (p9_aclient_rpc(r->c, &tx, on_answer, q) == 0)
    q->sent = true;
  q->tag = tx.tag;
}

static void on_connect(p9_aclient *c, int err, const p9_fcall *rx, void *arg) {
  run *r = arg;
  if (err < 0) {
    if (c != NULL || rx != NULL)
      abort();
    return; /* the client freed itself */
  }
  if (rx == NULL || rx->type != P9_RVERSION || p9_aclient_msize(c) > rx->msize)
    abort();
  r->c = c;
  r->connected = true;
  send_script(r);
}

static void on_closed(void *arg) {
  ((run *)arg)->freed = true;
}

/* Reads and drops what the client sent, so its writes never block. */
static void drain(int fd) {
  uint8_t sink[4096];
  while (read(fd, sink, sizeof sink) > 0)
    ;
}

/* Writes the answers, a piece per turn of the loop, then half-closes. */
static void answer(uv_loop_t *loop, int peer, const uint8_t *p, size_t n,
                   size_t piece) {
  while (n > 0) {
    size_t k = n < piece ? n : piece;
    ssize_t w = write(peer, p, k);
    if (w < 0 && errno != EAGAIN)
      break; /* the client closed: the rest has nowhere to go */
    if (w > 0) {
      p += w;
      n -= (size_t)w;
    }
    uv_run(loop, UV_RUN_NOWAIT);
    drain(peer);
  }
  shutdown(peer, SHUT_WR);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static run r;
  uv_loop_t loop;
  int peer;
  if (size < 1 + SCRIPT)
    return 0;
  memset(&r, 0, sizeof r);
  r.script = data + 1;
  if (uv_loop_init(&loop) < 0 ||
      p9_aclient_connect(&loop, addr, msizes[data[0] >> 4 & 3],
                         data[0] & 1 ? "9P2000.L" : "9P2000", on_connect,
                         &r) < 0)
    abort();
  if ((peer = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK)) < 0)
    abort(); /* the connect is in the backlog already */
  answer(&loop, peer, data + 1 + SCRIPT, size - 1 - SCRIPT,
         pieces[data[0] >> 2 & 3]);
  uv_run(&loop, UV_RUN_DEFAULT); /* until the client sees end of stream */
  if (r.connected && !r.freed)
    p9_aclient_close(r.c, on_closed, &r);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (r.connected && !r.freed)
    abort(); /* close never finished */
  for (int i = 0; i < r.nreq; i++)
    if ((r.reqs[i].sent && r.reqs[i].calls != 1) || r.reqs[i].calls > 1)
      abort(); /* a callback lost or repeated */
  if (uv_loop_close(&loop) != 0)
    abort(); /* a handle left open */
  close(peer);
  return 0;
}

static void remove_socket(void) {
  char path[sizeof dir + 2];
  snprintf(path, sizeof path, "%s/s", dir);
  unlink(path);
  rmdir(dir);
}

/* The listening socket lives in a directory of its own under $TMPDIR
 * (run.sh points that into its work directory, which it removes). */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  struct sockaddr_un un = {.sun_family = AF_UNIX};
  const char *tmp = getenv("TMPDIR");
  (void)argc;
  (void)argv;
  signal(SIGPIPE, SIG_IGN);
  snprintf(dir, sizeof dir, "%s/fuzz-aclient.XXXXXX", tmp ? tmp : "/tmp");
  if (!mkdtemp(dir))
    abort();
  atexit(remove_socket);
  snprintf(un.sun_path, sizeof un.sun_path, "%s/s", dir);
  snprintf(addr, sizeof addr, "unix!%s", un.sun_path);
  listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&un, sizeof un) < 0 ||
      listen(listen_fd, 4) < 0)
    abort();
  return 0;
}
