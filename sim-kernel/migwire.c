/* Frames of the migration protocol: see migwire.h. */
#include "migwire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migd.h"
#include "uksim/num.h"
#include "uksim/xalloc.h"

/* Writers of one socket (a task's console connection has several) must
 * not interleave frames: one lock for all, frames are short-lived. */
static pthread_mutex_t send_lock = PTHREAD_MUTEX_INITIALIZER;

static int write_all(int fd, const uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return w < 0 ? -errno : -EPIPE;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int read_all(int fd, uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t r = recv(fd, p, n, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return r < 0 ? -errno : 0;
    p += r;
    n -= (size_t)r;
  }
  return 1;
}

/* m packed behind its 4-byte length, in a buffer the caller frees, or
 * NULL for a message over MIG_FRAME_MAX. */
static uint8_t *frame(const MigMsg *m, size_t *len) {
  size_t n = mig_msg__get_packed_size(m);
  if (n > MIG_FRAME_MAX)
    return NULL;
  uint8_t *buf = xmalloc(n + 4);
  buf[0] = (uint8_t)n;
  buf[1] = (uint8_t)(n >> 8);
  buf[2] = (uint8_t)(n >> 16);
  buf[3] = (uint8_t)(n >> 24);
  mig_msg__pack(m, buf + 4);
  *len = n + 4;
  return buf;
}

static int sendfile_all(int fd, int src_fd, off_t off, size_t n) {
  while (n > 0) {
    ssize_t w = sendfile(fd, src_fd, &off, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return w < 0 ? -errno : -EIO; /* 0: src_fd ended short */
    n -= (size_t)w;
  }
  return 0;
}

int mig_send_bulk(int fd, const MigMsg *m, int src_fd, off_t off, size_t len) {
  size_t n;
  uint8_t *buf = frame(m, &n);
  if (!buf)
    return -EMSGSIZE;
  pthread_mutex_lock(&send_lock);
  int r = write_all(fd, buf, n);
  if (r == 0 && len > 0)
    r = sendfile_all(fd, src_fd, off, len);
  pthread_mutex_unlock(&send_lock);
  free(buf);
  return r;
}

int mig_send(int fd, const MigMsg *m) {
  return mig_send_bulk(fd, m, -1, 0, 0);
}

/* Moves n bytes from the pipe into dst_fd at *off. */
static int pipe_to_file(int rd, int dst_fd, off_t *off, size_t n) {
  while (n > 0) {
    ssize_t m = splice(rd, NULL, dst_fd, off, n, SPLICE_F_MOVE);
    if (m < 0 && errno == EINTR)
      continue;
    if (m <= 0)
      return -EIO;
    n -= (size_t)m;
  }
  return 0;
}

/* The fallback when the socket does not splice: through a buffer. */
static int copy_in(int fd, int dst_fd, off_t off, size_t len) {
  uint8_t *buf = xmalloc(MIG_CHUNK);
  int r = 0;
  while (r == 0 && len > 0) {
    size_t want = len < MIG_CHUNK ? len : MIG_CHUNK;
    r = read_all(fd, buf, want);
    if (r <= 0) {
      r = r < 0 ? r : -EPIPE;
      break;
    }
    r = pwrite(dst_fd, buf, want, off) == (ssize_t)want ? 0 : -EIO;
    off += (off_t)want;
    len -= want;
  }
  free(buf);
  return r;
}

int mig_bulk_pipe(int p[2]) {
  if (pipe2(p, O_CLOEXEC) < 0)
    return -errno;
  fcntl(p[1], F_SETPIPE_SZ, MIG_CHUNK); /* fewer rounds; a smaller one works */
  return 0;
}

int mig_recv_bulk(int fd, int dst_fd, off_t off, size_t len,
                  const int pipe[2]) {
  size_t moved = 0;
  while (moved < len) {
    size_t want = len - moved < MIG_CHUNK ? len - moved : MIG_CHUNK;
    ssize_t n = splice(fd, NULL, pipe[1], NULL, want, SPLICE_F_MOVE);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EINVAL && moved == 0)
      return copy_in(fd, dst_fd, off, len);
    if (n <= 0)
      return n < 0 ? -errno : -EPIPE;
    off_t at = off + (off_t)moved;
    if (pipe_to_file(pipe[0], dst_fd, &at, (size_t)n) < 0)
      return -EIO;
    moved += (size_t)n;
  }
  return 0;
}

MigMsg *mig_recv(int fd) {
  uint8_t h[4];
  int r = read_all(fd, h, 4);
  if (r <= 0) {
    errno = -r;
    return NULL;
  }
  uint32_t n =
      h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
  if (n > MIG_FRAME_MAX) {
    errno = EPROTO;
    return NULL;
  }
  uint8_t *buf = xmalloc(n ? n : 1);
  r = read_all(fd, buf, n);
  MigMsg *m = r > 0 || n == 0 ? mig_msg__unpack(NULL, n, buf) : NULL;
  free(buf);
  if (!m)
    errno = r < 0 ? -r : EPROTO;
  return m;
}

int mig_send_result(int fd, int err, const char *msg) {
  MigMsg m = MIG_MSG__INIT;
  MigResult res = MIG_RESULT__INIT;
  res.err = err;
  res.msg = (char *)msg;
  m.m_case = MIG_MSG__M_RESULT;
  m.result = &res;
  return mig_send(fd, &m);
}

void mig_timeout(int fd, int ms) {
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

int migd_lookup(const char *addr, struct sockaddr_in *sa) {
  char host[64];
  uint64_t port;
  const char *bang;
  if (strncmp(addr, "tcp!", 4) != 0 || !(bang = strrchr(addr + 4, '!')) ||
      bang - (addr + 4) >= (long)sizeof host)
    return -EINVAL;
  memcpy(host, addr + 4, (size_t)(bang - (addr + 4)));
  host[bang - (addr + 4)] = 0;
  if (num_parse_u64(bang + 1, 1, 65535, 0, &port) < 0)
    return -EINVAL;
  memset(sa, 0, sizeof *sa);
  sa->sin_family = AF_INET;
  sa->sin_port = htons((uint16_t)port);
  return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -EINVAL;
}

/* Connects a TCP socket to addr: the socket or -errno. */
static int connect_to(const char *addr) {
  struct sockaddr_in sa;
  int r = migd_lookup(addr, &sa);
  if (r < 0)
    return r;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    r = -errno;
    close(fd);
    return r;
  }
  return fd;
}

int mig_dial(const char *addr, const uint8_t *key, char *err, size_t len) {
  char why[MIG_ERR_MAX];
  int fd = connect_to(addr);
  if (fd < 0) {
    snprintf(why, sizeof why, "%s", strerror(-fd));
  } else {
    mig_timeout(fd, MIG_PEER_TIMEOUT_MS);
    int r = mig_hs_dial(fd, key, why, sizeof why);
    if (r < 0) {
      close(fd);
      fd = r;
    }
  }
  if (fd < 0 && err != NULL)
    snprintf(err, len, "%s: %s", addr, why[0] ? why : strerror(-fd));
  return fd;
}
