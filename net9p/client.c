/*
 * client.c: the blocking 9P client.
 *
 * One request in flight at a time on a blocking socket, which is what a
 * command-line tool or a benchmark loop wants.  Reads and writes are split
 * by msize; read data goes from the socket straight into the caller's
 * buffer and write data straight from it (writev), so large I/O copies
 * nothing in user space.  Both dialects are spoken: operations pick
 * Topen/Tlopen, Tstat/Tgetattr, Tread-of-a-directory/Treaddir as needed.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <sodium.h>

#include "p9_impl.h"
#include "stream.h"

struct p9_client {
  int fd;
  p9_dialect d;
  uint32_t msize;
  uint16_t tag;
  uint8_t *wbuf, *rbuf;
  uint32_t nextfid;
  uint32_t *freefids;
  size_t nfree, capfree;
  char err[256];
};

enum { O_TRUNC_L = 01000, O_CREAT_L = 0100, O_DIRECTORY_L = 0200000 };

/* --- socket I/O ------------------------------------------------------- */

static int write_all(int fd, struct iovec *iov, int n) {
  while (n > 0) {
    ssize_t k = writev(fd, iov, n);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0)
      return -errno;
    while (n > 0 && (size_t)k >= iov->iov_len) {
      k -= (ssize_t)iov->iov_len;
      iov++;
      n--;
    }
    if (n > 0) {
      iov->iov_base = (char *)iov->iov_base + k;
      iov->iov_len -= (size_t)k;
    }
  }
  return 0;
}

static int read_all(int fd, void *buf, size_t n) {
  uint8_t *p = buf;
  while (n > 0) {
    ssize_t k = read(fd, p, n);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      return k < 0 ? -errno : -ECONNRESET;
    p += k;
    n -= (size_t)k;
  }
  return 0;
}

static uint32_t le32(const uint8_t *p) {
  return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

/* Reads the rest of a message whose first `have` bytes are in rbuf. */
static int read_rest(p9_client *c, size_t have, size_t *len) {
  uint32_t n = le32(c->rbuf);
  if (n < 7 || n > c->msize)
    return -EBADMSG;
  *len = n;
  return read_all(c->fd, c->rbuf + have, n - have);
}

/* Turns an answer into 0 or the negative errno it carries. */
static int check_reply(p9_client *c, const p9_fcall *tx, const p9_fcall *rx) {
  if (rx->tag != tx->tag)
    return -EPROTO;
  if (rx->type == P9_RERROR) {
    snprintf(c->err, sizeof(c->err), "%.*s", (int)rx->ename.len, rx->ename.s);
    return -p9_errno(rx->ename);
  }
  if (rx->type == P9_RLERROR) {
    snprintf(c->err, sizeof(c->err), "%s", strerror((int)rx->ecode));
    return p9__lerror_errno(rx->ecode);
  }
  return rx->type == tx->type + 1 ? 0 : -EPROTO;
}

static uint16_t next_tag(p9_client *c) {
  if (++c->tag == P9_NOTAG)
    c->tag = 0;
  return c->tag;
}

int p9_client_rpc(p9_client *c, p9_fcall *tx, p9_fcall *rx) {
  long n;
  size_t len;
  int err;
  if (tx->type != P9_TVERSION)
    tx->tag = next_tag(c);
  if ((n = p9_encode(tx, c->d ? c->d : P9_2000, c->wbuf, c->msize)) < 0)
    return (int)n;
  if ((err = write_all(c->fd, &(struct iovec){c->wbuf, (size_t)n}, 1)) ||
      (err = read_all(c->fd, c->rbuf, 4)) || (err = read_rest(c, 4, &len)))
    return err;
  if ((err = p9_decode(c->rbuf, len, c->d ? c->d : P9_2000, rx)) < 0)
    return err;
  return check_reply(c, tx, rx);
}

/* --- connection ------------------------------------------------------- */

static int dial_fd(const char *addr, int *fdp) {
  p9_addr a;
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  int fd, one = 1, err = p9_addr_parse(addr, &a);
  if (err)
    return err;
  memset(&ss, 0, sizeof(ss));
  if (a.is_unix) {
    struct sockaddr_un *un = (struct sockaddr_un *)&ss;
    un->sun_family = AF_UNIX;
    snprintf(un->sun_path, sizeof(un->sun_path), "%s", a.path);
    len = sizeof(*un);
  } else if ((err = p9__resolve(&a, &ss)) < 0) {
    return err;
  }
  if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
    return -errno;
  if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
    err = -errno;
    close(fd);
    return err;
  }
  if (!a.is_unix)
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  *fdp = fd;
  return 0;
}

static int negotiate(p9_client *c, const char *version) {
  p9_fcall tx = {.type = P9_TVERSION, .tag = P9_NOTAG, .msize = c->msize};
  p9_fcall rx;
  int err;
  tx.version = p9_str_c(version);
  if ((err = p9_client_rpc(c, &tx, &rx)) < 0)
    return err;
  if (rx.msize < P9_IOHDRSZ * 2 || rx.msize > c->msize)
    return -EPROTO;
  c->msize = rx.msize;
  if (p9_str_eq(rx.version, "9P2000.L"))
    c->d = P9_2000L;
  else if (p9_str_eq(rx.version, "9P2000"))
    c->d = P9_2000;
  else
    return -EPROTONOSUPPORT;
  return 0;
}

p9_client *p9_client_fdopen(int fd, uint32_t msize, const char *version,
                            int *err) {
  p9_client *c = xcalloc(1, sizeof(*c));
  int e;
  c->fd = fd;
  c->msize = msize ? msize : P9_DEFMSIZE;
  c->wbuf = xmalloc(c->msize);
  c->rbuf = xmalloc(c->msize);
  c->nextfid = 1;
  if ((e = negotiate(c, version ? version : "9P2000.L")) < 0) {
    *err = e;
    p9_client_close(c);
    return NULL;
  }
  return c;
}

p9_client *p9_client_dial(const char *addr, uint32_t msize, const char *version,
                          int *err) {
  int fd, e;
  if ((e = dial_fd(addr, &fd)) < 0) {
    *err = e;
    return NULL;
  }
  return p9_client_fdopen(fd, msize, version, err);
}

void p9_client_close(p9_client *c) {
  if (!c)
    return;
  close(c->fd);
  free(c->wbuf);
  free(c->rbuf);
  free(c->freefids);
  free(c);
}

p9_dialect p9_client_dialect(p9_client *c) {
  return c->d;
}

uint32_t p9_client_msize(p9_client *c) {
  return c->msize;
}

const char *p9_client_errstr(p9_client *c) {
  return c->err;
}

/* --- fids ------------------------------------------------------------- */

static p9_cfid *cfid_new(p9_client *c) {
  p9_cfid *f = xcalloc(1, sizeof(*f));
  f->c = c;
  f->fid = c->nfree ? c->freefids[--c->nfree] : c->nextfid++;
  f->omode = P9_ONONE;
  return f;
}

static void cfid_free(p9_cfid *f) {
  p9_client *c = f->c;
  if (c->nfree == c->capfree) {
    c->capfree = c->capfree ? 2 * c->capfree : 16;
    c->freefids = xrealloc(c->freefids, c->capfree * sizeof(uint32_t));
  }
  c->freefids[c->nfree++] = f->fid;
  free(f);
}

/* Proves the key through an afid: read the challenge, write its MAC. */
static int authenticate(p9_client *c, p9_cfid *af, p9_fcall *att,
                        const uint8_t *key) {
  p9_fcall tx = {.type = P9_TAUTH,
                 .afid = af->fid,
                 .uname = att->uname,
                 .aname = att->aname,
                 .n_uname = att->n_uname};
  p9_fcall rx;
  uint8_t chal[P9_CHALLEN], mac[P9_MACLEN];
  int err;
  if ((err = p9_client_rpc(c, &tx, &rx)) < 0)
    return err;
  tx = (p9_fcall){.type = P9_TREAD, .fid = af->fid, .count = P9_CHALLEN};
  if ((err = p9_client_rpc(c, &tx, &rx)) < 0)
    return err;
  if (rx.count != P9_CHALLEN)
    return -EPROTO;
  memcpy(chal, rx.data, P9_CHALLEN);
  p9_auth_mac(key, chal, att->uname, att->aname, mac);
  tx = (p9_fcall){
      .type = P9_TWRITE, .fid = af->fid, .count = P9_MACLEN, .data = mac};
  return p9_client_rpc(c, &tx, &rx);
}

p9_cfid *p9_attach(p9_client *c, const char *uname, const char *aname,
                   const uint8_t *key, int *err) {
  p9_cfid *f = cfid_new(c), *af = NULL;
  p9_fcall tx = {.type = P9_TATTACH,
                 .fid = f->fid,
                 .afid = P9_NOFID,
                 .n_uname = (uint32_t)getuid()};
  p9_fcall rx;
  int e = 0;
  tx.uname = p9_str_c(uname ? uname : "none");
  tx.aname = p9_str_c(aname ? aname : "");
  if (key) {
    af = cfid_new(c);
    if (sodium_init() < 0 || (e = authenticate(c, af, &tx, key)) < 0)
      goto out;
    tx.afid = af->fid;
  }
  if ((e = p9_client_rpc(c, &tx, &rx)) == 0)
    f->qid = rx.qid;
out:
  if (af)
    p9_clunk(af);
  if (e < 0) {
    cfid_free(f);
    *err = e;
    return NULL;
  }
  return f;
}

/* --- walk, open, create ----------------------------------------------- */

/* Splits path into at most P9_MAXWELEM names starting at *pp. */
static int split(const char **pp, p9_str *names) {
  const char *p = *pp;
  int n = 0;
  while (n < P9_MAXWELEM) {
    const char *e;
    while (*p == '/')
      p++;
    if (!*p)
      break;
    e = strchrnul(p, '/');
    if (e - p > 0xffff)
      return -ENAMETOOLONG;
    names[n++] = (p9_str){p, (uint16_t)(e - p)};
    p = e;
  }
  while (*p == '/')
    p++;
  *pp = p;
  return n;
}

p9_cfid *p9_walk(p9_cfid *f, const char *path, int *err) {
  p9_client *c = f->c;
  p9_cfid *nf = cfid_new(c);
  p9_fcall tx = {.type = P9_TWALK, .fid = f->fid, .newfid = nf->fid};
  p9_fcall rx;
  int e, first = 1;
  nf->qid = f->qid;
  do {
    if ((e = split(&path, tx.wname)) < 0)
      break;
    tx.nwname = (uint16_t)e;
    if ((e = p9_client_rpc(c, &tx, &rx)) < 0)
      break;
    if (rx.nwqid < tx.nwname) {
      e = -ENOENT;
      snprintf(c->err, sizeof(c->err), "%s", p9_strerror(e));
      break;
    }
    if (rx.nwqid)
      nf->qid = rx.wqid[rx.nwqid - 1];
    tx.fid = nf->fid; /* continue from the new fid */
    first = 0;
  } while (*path);
  if (e < 0) {
    if (!first)
      p9_clunk(nf);
    else
      cfid_free(nf);
    *err = e;
    return NULL;
  }
  return nf;
}

static uint32_t mode_to_lflags(uint8_t mode) {
  uint32_t fl = mode & 3;
  if (fl == P9_OEXEC)
    fl = 0;
  if (mode & P9_OTRUNC)
    fl |= O_TRUNC_L;
  return fl;
}

static void opened(p9_cfid *f, const p9_fcall *rx, uint8_t mode) {
  f->qid = rx->qid;
  f->iounit = rx->iounit;
  f->omode = mode;
}

int p9_open(p9_cfid *f, uint8_t mode) {
  p9_fcall tx = {.fid = f->fid}, rx;
  int err;
  if (f->c->d == P9_2000L) {
    tx.type = P9_TLOPEN;
    tx.flags = mode_to_lflags(mode);
    if (f->qid.type & P9_QTDIR)
      tx.flags |= O_DIRECTORY_L;
  } else {
    tx.type = P9_TOPEN;
    tx.mode = mode;
  }
  if ((err = p9_client_rpc(f->c, &tx, &rx)) == 0)
    opened(f, &rx, mode);
  return err;
}

int p9_create(p9_cfid *f, const char *name, uint32_t perm, uint8_t mode) {
  p9_fcall tx = {.fid = f->fid, .name = p9_str_c(name)}, rx;
  int err;
  if (f->c->d == P9_2000L) {
    tx.type = P9_TLCREATE;
    tx.flags = mode_to_lflags(mode) | O_CREAT_L;
    tx.lmode = perm & 0777;
    tx.gid = (uint32_t)getgid();
  } else {
    tx.type = P9_TCREATE;
    tx.perm = perm;
    tx.mode = mode;
  }
  if ((err = p9_client_rpc(f->c, &tx, &rx)) == 0)
    opened(f, &rx, mode);
  return err;
}

int p9_mkdir(p9_cfid *dir, const char *name, uint32_t perm) {
  p9_fcall tx = {.type = P9_TMKDIR, .dfid = dir->fid}, rx;
  p9_cfid *f;
  int err;
  if (dir->c->d == P9_2000L) {
    tx.name = p9_str_c(name);
    tx.lmode = perm & 0777;
    tx.gid = (uint32_t)getgid();
    return p9_client_rpc(dir->c, &tx, &rx);
  }
  if (!(f = p9_walk(dir, "", &err)))
    return err;
  err = p9_create(f, name, P9_DMDIR | (perm & 0777), P9_OREAD);
  p9_clunk(f);
  return err;
}

/* --- I/O -------------------------------------------------------------- */

static uint32_t chunk(p9_cfid *f, size_t n) {
  uint32_t max = f->c->msize - P9_IOHDRSZ;
  if (f->iounit && f->iounit < max)
    max = f->iounit;
  return n < max ? (uint32_t)n : max;
}

/* One Tread whose data lands in buf; returns the count or -errno. */
static long read_once(p9_cfid *f, uint8_t *buf, uint32_t n, uint64_t off) {
  p9_client *c = f->c;
  p9_fcall tx = {.type = P9_TREAD, .fid = f->fid, .offset = off, .count = n};
  p9_fcall rx;
  uint8_t *h = c->rbuf;
  size_t len;
  uint32_t count;
  int err;
  tx.tag = next_tag(c);
  long k = p9_encode(&tx, c->d, c->wbuf, c->msize);
  if ((err = write_all(c->fd, &(struct iovec){c->wbuf, (size_t)k}, 1)) ||
      (err = read_all(c->fd, h, 7)))
    return err;
  if (h[4] == P9_RREAD && le32(h) >= 11) {
    if ((err = read_all(c->fd, h + 7, 4)))
      return err;
    count = le32(h + 7);
    if (count > n || le32(h) != 11 + count || (h[5] | h[6] << 8) != tx.tag)
      return -EPROTO;
    return (err = read_all(c->fd, buf, count)) ? err : (long)count;
  }
  if ((err = read_rest(c, 7, &len)) ||
      (err = p9_decode(c->rbuf, len, c->d, &rx)) < 0)
    return err;
  err = check_reply(c, &tx, &rx);
  return err ? err : -EPROTO;
}

long p9_pread(p9_cfid *f, void *buf, size_t n, uint64_t off) {
  size_t done = 0;
  while (done < n) {
    long k =
        read_once(f, (uint8_t *)buf + done, chunk(f, n - done), off + done);
    if (k < 0)
      return done ? (long)done : k;
    if (k == 0)
      break;
    done += (size_t)k;
  }
  return (long)done;
}

static long write_once(p9_cfid *f, const uint8_t *buf, uint32_t n,
                       uint64_t off) {
  p9_client *c = f->c;
  p9_fcall tx = {.type = P9_TWRITE, .fid = f->fid, .offset = off}, rx;
  struct iovec iov[2];
  size_t len;
  int err;
  tx.tag = next_tag(c);
  long k = p9_encode(&tx, c->d, c->wbuf, c->msize); /* header, count 0 */
  put32(c->wbuf, (uint32_t)k + n);
  put32(c->wbuf + k - 4, n);
  iov[0] = (struct iovec){c->wbuf, (size_t)k};
  iov[1] = (struct iovec){(void *)buf, n};
  if ((err = write_all(c->fd, iov, 2)) || (err = read_all(c->fd, c->rbuf, 4)) ||
      (err = read_rest(c, 4, &len)) ||
      (err = p9_decode(c->rbuf, len, c->d, &rx)) < 0)
    return err;
  tx.type = P9_TWRITE;
  if ((err = check_reply(c, &tx, &rx)) < 0)
    return err;
  return rx.count <= n ? (long)rx.count : -EPROTO;
}

long p9_pwrite(p9_cfid *f, const void *buf, size_t n, uint64_t off) {
  size_t done = 0;
  do {
    long k = write_once(f, (const uint8_t *)buf + done, chunk(f, n - done),
                        off + done);
    if (k < 0)
      return done ? (long)done : k;
    if (k == 0 && n)
      break;
    done += (size_t)k;
  } while (done < n);
  return (long)done;
}

/* --- directories and stat --------------------------------------------- */

static void dir_from_stat(p9_dir *d, const p9_stat *st) {
  memset(d, 0, sizeof(*d));
  snprintf(d->name, sizeof(d->name), "%.*s", (int)st->name.len, st->name.s);
  d->qid = st->qid;
  d->mode = st->mode;
  d->length = st->length;
  d->mtime = st->mtime;
}

static int readdir_classic(p9_cfid *f, int (*fn)(const p9_dir *, void *),
                           void *arg) {
  uint32_t n = chunk(f, f->c->msize);
  uint8_t *buf = xmalloc(n);
  uint64_t off = 0;
  long k;
  int err = 0;
  while (!err && (k = read_once(f, buf, n, off)) > 0) {
    p9_stat st;
    p9_dir d;
    long used;
    for (long at = 0; !err && at < k; at += used) {
      if ((used = p9_stat_decode(buf + at, (size_t)(k - at), &st)) < 0) {
        err = -EPROTO;
        break;
      }
      dir_from_stat(&d, &st);
      err = fn(&d, arg);
    }
    off += (uint64_t)k;
  }
  free(buf);
  return err ? err : (k < 0 ? (int)k : 0);
}

static int readdir_dotl(p9_cfid *f, int (*fn)(const p9_dir *, void *),
                        void *arg) {
  p9_fcall tx = {.type = P9_TREADDIR, .fid = f->fid}, rx;
  uint64_t off = 0;
  int err;
  tx.count = chunk(f, f->c->msize);
  for (;;) {
    tx.offset = off;
    if ((err = p9_client_rpc(f->c, &tx, &rx)) < 0 || rx.count == 0)
      return err;
    for (uint32_t at = 0; at < rx.count;) {
      p9_dirent de;
      p9_dir d = {0};
      long used = p9_dirent_decode(rx.data + at, rx.count - at, &de);
      if (used < 0)
        return -EPROTO;
      at += (uint32_t)used;
      off = de.offset;
      if (p9_str_eq(de.name, ".") || p9_str_eq(de.name, ".."))
        continue;
      snprintf(d.name, sizeof(d.name), "%.*s", (int)de.name.len, de.name.s);
      d.qid = de.qid;
      d.mode = (de.qid.type & P9_QTDIR) ? P9_DMDIR : 0;
      if ((err = fn(&d, arg)) != 0)
        return err;
    }
  }
}

int p9_readdir(p9_cfid *f, int (*fn)(const p9_dir *d, void *arg), void *arg) {
  if (f->c->d == P9_2000L)
    return readdir_dotl(f, fn, arg);
  return readdir_classic(f, fn, arg);
}

int p9_fstat(p9_cfid *f, p9_dir *d) {
  p9_fcall tx = {.fid = f->fid}, rx;
  int err;
  if (f->c->d != P9_2000L) {
    tx.type = P9_TSTAT;
    if ((err = p9_client_rpc(f->c, &tx, &rx)) == 0)
      dir_from_stat(d, &rx.stat);
    return err;
  }
  tx.type = P9_TGETATTR;
  tx.request_mask = P9_GETATTR_BASIC;
  if ((err = p9_client_rpc(f->c, &tx, &rx)) < 0)
    return err;
  memset(d, 0, sizeof(*d));
  d->qid = rx.attr.qid;
  d->mode = (rx.attr.mode & 0777) |
            ((rx.attr.mode & 0170000) == 0040000 ? P9_DMDIR : 0);
  d->length = rx.attr.size;
  d->mtime = (uint32_t)rx.attr.mtime_sec;
  return 0;
}

int p9_fwstat(p9_cfid *f, uint64_t length, uint32_t mode) {
  p9_fcall tx = {.fid = f->fid}, rx;
  if (f->c->d == P9_2000L) {
    tx.type = P9_TSETATTR;
    if (length != ~0ull) {
      tx.attr.valid |= P9_SETATTR_SIZE;
      tx.attr.size = length;
    }
    if (mode != ~0u) {
      tx.attr.valid |= P9_SETATTR_MODE;
      tx.attr.mode = mode & 0777;
    }
  } else {
    tx.type = P9_TWSTAT;
    p9_stat_null(&tx.stat);
    tx.stat.length = length;
    tx.stat.mode = mode;
  }
  return p9_client_rpc(f->c, &tx, &rx);
}

static int fid_rpc_free(p9_cfid *f, uint8_t type) {
  p9_fcall tx = {.type = type, .fid = f->fid}, rx;
  int err = p9_client_rpc(f->c, &tx, &rx);
  cfid_free(f);
  return err;
}

int p9_clunk(p9_cfid *f) {
  return f ? fid_rpc_free(f, P9_TCLUNK) : 0;
}

int p9_remove(p9_cfid *f) {
  return fid_rpc_free(f, P9_TREMOVE);
}
