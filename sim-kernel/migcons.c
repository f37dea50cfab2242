/* A task's console input across moves: see migcons.h for the states. */
#include "migcons.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "migwire.h"

void migcons_init(struct migcons *c, uint64_t task) {
  pthread_mutex_init(&c->lock, NULL);
  pthread_cond_init(&c->cond, NULL);
  c->mode = MIGCONS_LOCAL;
  c->pipe_wr = c->pipe_rd = c->away_fd = -1;
  c->task = task;
  c->home = NULL;
  c->acked = 0;
  c->held_len = 0;
}

static void close_pipe(struct migcons *c) {
  if (c->pipe_wr >= 0)
    close(c->pipe_wr);
  if (c->pipe_rd >= 0)
    close(c->pipe_rd);
  c->pipe_wr = c->pipe_rd = -1;
}

void migcons_close(struct migcons *c) {
  pthread_mutex_lock(&c->lock);
  close_pipe(c);
  pthread_mutex_unlock(&c->lock);
}

int migcons_pipe(struct migcons *c) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0)
    return -errno;
  pthread_mutex_lock(&c->lock);
  close_pipe(c);
  /* Our end never blocks: a task that reads nothing must not stop the
   * thread that delivers its input (a full pipe refuses, -EAGAIN). */
  fcntl(p[1], F_SETFL, O_NONBLOCK);
  c->pipe_wr = p[1];
  c->pipe_rd = fcntl(p[0], F_DUPFD_CLOEXEC, 0);
  pthread_mutex_unlock(&c->lock);
  return p[0];
}

/* Room left in the pipe, in bytes (0 without one). */
static size_t pipe_room(int fd) {
  int size = fd >= 0 ? fcntl(fd, F_GETPIPE_SZ) : -1, unread = 0;
  if (size < 0 || ioctl(fd, FIONREAD, &unread) < 0)
    return 0;
  return unread < size ? (size_t)(size - unread) : 0;
}

/* All n bytes into the pipe, or none (-EAGAIN). */
static int to_pipe(struct migcons *c, const uint8_t *p, size_t n) {
  if (n == 0)
    return 0;
  if (pipe_room(c->pipe_wr) < n)
    return -EAGAIN;
  for (size_t done = 0; done < n;) {
    ssize_t w = write(c->pipe_wr, p + done, n - done);
    if (w < 0 && errno != EINTR)
      return -errno;
    done += w > 0 ? (size_t)w : 0;
  }
  return 0;
}

static int to_held(struct migcons *c, const uint8_t *p, size_t n) {
  if (n > sizeof c->held - c->held_len)
    return -EAGAIN;
  memcpy(c->held + c->held_len, p, n);
  c->held_len += n;
  return 0;
}

static int send_console(int fd, uint64_t task, const uint8_t *p, size_t n,
                        int flag) {
  MigMsg m = MIG_MSG__INIT;
  MigConsole k = MIG_CONSOLE__INIT;
  k.task = task;
  k.data.data = (uint8_t *)p;
  k.data.len = n;
  k.input = flag == 'i';
  k.hold = flag == 'h';
  k.held = flag == 'H';
  k.active = flag == 'a';
  m.m_case = MIG_MSG__M_CONSOLE;
  m.console = &k;
  return mig_send(fd, &m);
}

int migcons_input(struct migcons *c, const uint8_t *p, size_t n) {
  pthread_mutex_lock(&c->lock);
  if (c->mode == MIGCONS_HOME) {
    /* Not under our lock: nothing leaves HOME, and the entry it went home
     * to may forward on in turn. */
    struct migcons *home = c->home;
    pthread_mutex_unlock(&c->lock);
    return migcons_input(home, p, n);
  }
  int r;
  switch (c->mode) {
  case MIGCONS_LOCAL:
    r = to_pipe(c, p, n);
    break;
  case MIGCONS_AWAY:
    if (c->away_fd >= 0) {
      r = send_console(c->away_fd, c->task, p, n, 'i');
      break;
    }
    /* Nowhere to send it yet: held. */
    __attribute__((fallthrough));
  case MIGCONS_HOLD:
    r = to_held(c, p, n);
    break;
  default:
    abort();
  }
  pthread_mutex_unlock(&c->lock);
  return r;
}

size_t migcons_drain(struct migcons *c, uint8_t *carry) {
  pthread_mutex_lock(&c->lock);
  int unread = 0;
  size_t n = 0;
  if (c->pipe_rd >= 0 && ioctl(c->pipe_rd, FIONREAD, &unread) == 0 &&
      unread > 0) {
    ssize_t r =
        read(c->pipe_rd, carry,
             (size_t)unread < MIG_INPUT_MAX ? (size_t)unread : MIG_INPUT_MAX);
    n = r > 0 ? (size_t)r : 0;
  }
  size_t take =
      c->held_len < MIG_INPUT_MAX - n ? c->held_len : MIG_INPUT_MAX - n;
  memcpy(carry + n, c->held, take);
  memmove(c->held, c->held + take, c->held_len - take);
  c->held_len -= take;
  c->mode = MIGCONS_HOLD;
  pthread_mutex_unlock(&c->lock);
  return n + take;
}

int migcons_local(struct migcons *c, const uint8_t *carry, size_t n) {
  pthread_mutex_lock(&c->lock);
  int r = to_pipe(c, carry, n);
  if (r == 0)
    r = to_pipe(c, c->held, c->held_len);
  if (r < 0)
    fprintf(stderr, "migcons: task%llu: unread input lost: %s\n",
            (unsigned long long)c->task, strerror(-r));
  c->held_len = 0;
  c->mode = MIGCONS_LOCAL;
  pthread_mutex_unlock(&c->lock);
  return r;
}

void migcons_active(struct migcons *c, int fd) {
  pthread_mutex_lock(&c->lock);
  if (c->mode == MIGCONS_HOME) {
    pthread_mutex_unlock(&c->lock); /* stale: the task is home */
    return;
  }
  if (c->held_len == 0 ||
      send_console(fd, c->task, c->held, c->held_len, 'i') == 0)
    c->held_len = 0;
  c->away_fd = fd;
  c->mode = MIGCONS_AWAY;
  pthread_mutex_unlock(&c->lock);
}

int migcons_home(struct migcons *c, struct migcons *to) {
  pthread_mutex_lock(&c->lock);
  pthread_mutex_lock(&to->lock);
  int r = to->mode == MIGCONS_LOCAL ? to_pipe(to, c->held, c->held_len)
                                    : to_held(to, c->held, c->held_len);
  if (r < 0)
    fprintf(stderr, "migcons: task%llu: input held while away lost: %s\n",
            (unsigned long long)c->task, strerror(-r));
  pthread_mutex_unlock(&to->lock);
  /* Its own pipe was the ended process's, drained at the move. */
  close_pipe(c);
  c->held_len = 0;
  c->away_fd = -1;
  c->home = to;
  c->mode = MIGCONS_HOME;
  pthread_mutex_unlock(&c->lock);
  return r;
}

/* AWAY(fd) -> HOLD; another fd changes nothing (an old connection). */
static void stop_away(struct migcons *c, int fd) {
  if (c->away_fd != fd)
    return;
  c->away_fd = -1;
  c->mode = MIGCONS_HOLD;
}

void migcons_hold(struct migcons *c, int fd) {
  pthread_mutex_lock(&c->lock);
  stop_away(c, fd);
  send_console(fd, c->task, NULL, 0, 'H');
  pthread_mutex_unlock(&c->lock);
}

void migcons_lost(struct migcons *c, int fd) {
  pthread_mutex_lock(&c->lock);
  stop_away(c, fd);
  pthread_mutex_unlock(&c->lock);
}

int migcons_await_held(struct migcons *c, int console_fd, int ms) {
  pthread_mutex_lock(&c->lock);
  /* The origin gone is final: its connection's reader has ended. */
  int r = c->acked < 0 ? -EHOSTDOWN : 0;
  c->acked = 0;
  if (r == 0)
    r = send_console(console_fd, c->task, NULL, 0, 'h');
  struct timespec end;
  clock_gettime(CLOCK_REALTIME, &end);
  end.tv_sec += ms / 1000;
  end.tv_nsec += (long)(ms % 1000) * 1000000;
  if (end.tv_nsec >= 1000000000) {
    end.tv_sec++;
    end.tv_nsec -= 1000000000;
  }
  while (r == 0 && c->acked == 0)
    if (pthread_cond_timedwait(&c->cond, &c->lock, &end) == ETIMEDOUT)
      break;
  int ok = r == 0 && c->acked == 1;
  if (r < 0)
    c->acked = -1;
  pthread_mutex_unlock(&c->lock);
  return ok ? 0 : -EHOSTDOWN;
}

void migcons_acked(struct migcons *c, int how) {
  pthread_mutex_lock(&c->lock);
  c->acked = how;
  pthread_cond_broadcast(&c->cond);
  pthread_mutex_unlock(&c->lock);
}

int migcons_say_active(int console_fd, uint64_t task) {
  return send_console(console_fd, task, NULL, 0, 'a');
}
