/* nsh's runner (see nsh.h): a parsed line, pipeline by pipeline, with the
 * in-shell buffers that stand for pipes and the ns_* files behind '<', '>'
 * and '>>'. */
#include "nsh.h"

#include <errno.h>
#include <poll.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "uksim/ns.h"
#include "uksim/xalloc.h"

void nsh_init(struct nsh *sh, FILE *out, FILE *err) {
  memset(sh, 0, sizeof *sh);
  sh->out = out;
  sh->err = err;
  sh->kernel_fd = -1;
}

static void buf_add(struct nsh_buf *b, const void *p, size_t n) {
  if (b->full || n > NSH_PIPE_MAX - b->n) {
    b->full = true;
    return;
  }
  if (b->n + n > b->cap) {
    b->cap = b->cap ? b->cap * 2 : 4096;
    while (b->cap < b->n + n)
      b->cap *= 2;
    b->p = xrealloc(b->p, b->cap);
  }
  memcpy(b->p + b->n, p, n);
  b->n += n;
}

void nsh_buf_free(struct nsh_buf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

void nsh_write(struct nsh_io *io, const void *p, size_t n) {
  if (io->to)
    buf_add(io->to, p, n);
  else
    fwrite(p, 1, n, io->f);
}

void nsh_printf(struct nsh_io *io, const char *fmt, ...) {
  char small[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  if ((size_t)n < sizeof small) {
    nsh_write(io, small, (size_t)n);
    return;
  }
  char *big = xmalloc((size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  nsh_write(io, big, (size_t)n);
  free(big);
}

int nsh_fail(struct nsh_io *io, const char *cmd, const char *path, int err) {
  if (io->f)
    fflush(io->f); /* the output so far comes before the message */
  fprintf(io->err, "%s: %s: %s\n", cmd, path, strerror(-err));
  return 1;
}

int nsh_read_file(const char *path, struct nsh_buf *b) {
  int fd = ns_open(path, NS_OREAD);
  if (fd < 0)
    return fd;
  char chunk[NS_SMALL];
  long n;
  while ((n = ns_read(fd, chunk, sizeof chunk)) > 0) {
    buf_add(b, chunk, (size_t)n);
    if (b->full) {
      n = -EFBIG;
      break;
    }
  }
  ns_close(fd);
  return n < 0 ? (int)n : 0;
}

/* Opens path for a '>' (truncated) or '>>' (at its end), creating it when
 * it does not exist: Plan 9's rc does create(2), which truncates a file
 * that exists; an open first also lets '>' reach devices such as
 * /dev/cons, where create is refused. */
static int open_out(const char *path, bool append) {
  int fd = ns_open(path, NS_OWRITE | (append ? 0 : NS_OTRUNC));
  if (fd == -ENOENT)
    fd = ns_create(path, NS_OWRITE, 0666);
  if (fd >= 0 && append) {
    int64_t off = ns_seek(fd, 0, 2);
    if (off < 0) {
      ns_close(fd);
      return (int)off;
    }
  }
  return fd;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    long w = ns_write(fd, p, n);
    if (w < 0)
      return (int)w;
    if (w == 0)
      return -EIO;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Writes a command's buffered output to its '>' or '>>' file. */
static int redirect_out(struct nsh *sh, const struct nsh_cmd *c,
                        const struct nsh_buf *b) {
  int fd = open_out(c->out, c->append);
  if (fd < 0) {
    fprintf(sh->err, "nsh: %s: %s\n", c->out, strerror(-fd));
    return 1;
  }
  int r = write_all(fd, b->p, b->n);
  int rc = ns_close(fd);
  if (r == 0)
    r = rc;
  if (r < 0) {
    fprintf(sh->err, "nsh: %s: %s\n", c->out, strerror(-r));
    return 1;
  }
  return 0;
}

/* Runs one command with input in and, unless it writes to the host, its
 * output into *out. */
static int run_cmd(struct nsh *sh, struct nsh_cmd *c, const struct nsh_buf *in,
                   struct nsh_buf *out) {
  struct nsh_buf file = {0};
  struct nsh_io io = {.f = sh->out, .err = sh->err};
  if (c->in) {
    int r = nsh_read_file(c->in, &file);
    if (r < 0) {
      nsh_buf_free(&file);
      fprintf(sh->err, "nsh: %s: %s\n", c->in, strerror(-r));
      return 1;
    }
    in = &file;
  }
  if (in) {
    io.in = in->p;
    io.inlen = in->n;
  }
  if (c->out || c->pipe)
    io.to = out;
  int st = 0;
  if (c->argc > 0) {
    const struct nsh_builtin *b = nsh_builtin_lookup(c->argv[0]);
    if (b == NULL) {
      fprintf(sh->err, "nsh: %s: unknown command ('help' lists them)\n",
              c->argv[0]);
      st = 1;
    } else {
      st = b->fn(sh, &io, c->argc, c->argv);
    }
  }
  if (out->full) {
    fprintf(sh->err, "nsh: %s: output over %u bytes dropped\n",
            c->argc ? c->argv[0] : "", NSH_PIPE_MAX);
    st = st ? st : 1;
  }
  if (c->out) {
    int r = redirect_out(sh, c, out);
    st = st ? st : r;
  }
  nsh_buf_free(&file);
  return st;
}

/* Runs the pipeline starting at cmd[i]; returns the index after it. */
static int run_pipeline(struct nsh *sh, struct nsh_line *l, int i) {
  struct nsh_buf a = {0}, b = {0};
  struct nsh_buf *in = NULL, *out = &a;
  for (;; i++) {
    struct nsh_cmd *c = &l->cmd[i];
    sh->status = run_cmd(sh, c, in, out);
    if (!c->pipe || sh->exited)
      break;
    /* This stage's output is the next one's input; c->out took it all. */
    if (c->out)
      out->n = 0;
    struct nsh_buf *t = in ? in : &b;
    t->n = 0;
    t->full = false;
    in = out;
    out = t;
  }
  nsh_buf_free(&a);
  nsh_buf_free(&b);
  fflush(sh->out);
  return i + 1;
}

int nsh_run(struct nsh *sh, const char *line, size_t n) {
  static struct nsh_line l; /* 22 KiB: kept off the stack */
  char err[256];
  if (nsh_parse(line, n, &l, err, sizeof err) < 0) {
    fprintf(sh->err, "nsh: %s\n", err);
    sh->status = 2;
    return 2;
  }
  for (int i = 0; i < l.ncmd && !sh->exited;)
    i = run_pipeline(sh, &l, i);
  return sh->status;
}

/* Lines read from a descriptor: the bytes after the last line given. */
struct lines {
  char buf[NSH_LINE_MAX + 2];
  size_t n;
  bool skipping; /* in the rest of a line that was too long */
  bool eof;
};

/* Waits until in is readable; false when the kernel connection ended
 * first (after saying so). */
static bool wait_input(struct nsh *sh, int in) {
  struct pollfd p[2] = {{.fd = in, .events = POLLIN},
                        {.fd = sh->kernel_fd, .events = POLLRDHUP}};
  for (;;) {
    if (poll(p, sh->kernel_fd >= 0 ? 2 : 1, -1) < 0) {
      if (errno == EINTR)
        continue;
      return true; /* let the read say what is wrong */
    }
    if (p[1].revents) {
      fprintf(sh->err, "nsh: the kernel closed this process's connection "
                       "(killed, or the machine halted)\n");
      return false;
    }
    if (p[0].revents)
      return true;
  }
}

/* Takes the next line out of l into line[] (NUL-terminated, *len bytes
 * with its newline): 1, or 0 when more input is needed, -1 at the end.
 * Too long a line is given as its first NSH_LINE_MAX + 1 bytes, which the
 * parser refuses, and the rest of it is skipped. */
static int next_line(struct lines *l, char *line, size_t *len) {
  for (;;) {
    char *nl = memchr(l->buf, '\n', l->n);
    bool full = l->n == sizeof l->buf - 1;
    if (!nl && !l->eof && !full)
      return 0;
    size_t k = nl ? (size_t)(nl - l->buf) + 1 : l->n;
    if (k == 0)
      return -1; /* the end, nothing left */
    bool tail = l->skipping;
    l->skipping = nl == NULL && full;
    memcpy(line, l->buf, k);
    line[k] = '\0';
    memmove(l->buf, l->buf + k, l->n - k);
    l->n -= k;
    if (!tail) {
      *len = k;
      return 1;
    }
  }
}

/* Reads more into l; false at the end of input or of the kernel
 * connection. */
static bool fill(struct nsh *sh, struct lines *l, int in) {
  if (!wait_input(sh, in)) {
    sh->status = 1;
    return false;
  }
  ssize_t n;
  do
    n = read(in, l->buf + l->n, sizeof l->buf - 1 - l->n);
  while (n < 0 && errno == EINTR);
  if (n <= 0)
    l->eof = true;
  else
    l->n += (size_t)n;
  return true;
}

int nsh_loop(struct nsh *sh, int in, const char *prompt) {
  static struct lines l;
  static char line[sizeof l.buf];
  memset(&l, 0, sizeof l);
  bool prompted = false, more = true;
  while (more && !sh->exited) {
    if (prompt && !prompted) {
      fputs(prompt, sh->out);
      fflush(sh->out);
      prompted = true;
    }
    size_t len = 0;
    int r = next_line(&l, line, &len);
    if (r < 0)
      break;
    if (r == 0) {
      more = fill(sh, &l, in);
      continue;
    }
    prompted = false;
    nsh_run(sh, line, len);
  }
  if (prompt && l.eof)
    fputc('\n', sh->out);
  return sh->status;
}
