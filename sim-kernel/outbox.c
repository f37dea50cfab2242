/* Ordered, reliable sending on a non-blocking socket (see outbox.h). */
#include "outbox.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kabi_io.h"
#include "uksim/xalloc.h"
#include "uksim/uv_check.h"

struct outbox_msg {
  struct outbox_msg *next;
  unsigned nfds;
  int fds[UK_FDS_BATCH_MAX];
  size_t len;
  unsigned char buf[];
};

void outbox_init(struct outbox *o, int sock, uv_poll_t *poll, uv_poll_cb cb,
                 int read_events) {
  memset(o, 0, sizeof *o);
  o->sock = sock;
  o->poll = poll;
  o->cb = cb;
  o->read_events = read_events;
}

static int send_one(struct outbox *o, const void *buf, size_t len,
                    const int *fds, unsigned nfds) {
  return uk_sendfds_batch(o->sock, buf, len, fds, nfds);
}

static void want_writable(struct outbox *o, bool on) {
  if (o->poll && !uv_is_closing((uv_handle_t *)o->poll))
    UV_CHECK(
        uv_poll_start(o->poll, o->read_events | (on ? UV_WRITABLE : 0), o->cb));
}

int outbox_send_fds(struct outbox *o, const void *buf, size_t len,
                    const int *fds, unsigned nfds) {
  if (nfds > UK_FDS_BATCH_MAX)
    return -EINVAL;
  if (o->head == NULL) {
    int r = send_one(o, buf, len, fds, nfds);
    if (r != -EAGAIN)
      return r;
  }
  if (o->count >= OUTBOX_MAX)
    return -ENOBUFS;
  struct outbox_msg *m = xmalloc(sizeof *m + len);
  m->next = NULL;
  m->len = len;
  memcpy(m->buf, buf, len);
  /* The caller may close its descriptors (an ICA released) before we send;
   * one that cannot be duplicated goes as -1 and the packet without it. */
  m->nfds = 0;
  for (unsigned i = 0; i < nfds; i++) {
    int d = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);
    if (d >= 0)
      m->fds[m->nfds++] = d;
  }
  if (o->tail)
    o->tail->next = m;
  else
    o->head = m;
  o->tail = m;
  if (o->count++ == 0)
    want_writable(o, true);
  return 0;
}

int outbox_send(struct outbox *o, const void *buf, size_t len, int fd) {
  return outbox_send_fds(o, buf, len, &fd, fd >= 0 ? 1 : 0);
}

static void pop(struct outbox *o) {
  struct outbox_msg *m = o->head;
  o->head = m->next;
  if (o->head == NULL)
    o->tail = NULL;
  o->count--;
  for (unsigned i = 0; i < m->nfds; i++)
    close(m->fds[i]);
  free(m);
}

void outbox_flush(struct outbox *o) {
  while (o->head) {
    int r =
        send_one(o, o->head->buf, o->head->len, o->head->fds, o->head->nfds);
    if (r == -EAGAIN)
      return;
    pop(o); /* sent, or the peer is gone: either way it is done */
  }
  want_writable(o, false);
}

void outbox_set_read_events(struct outbox *o, int read_events) {
  o->read_events = read_events;
  want_writable(o, o->head != NULL);
}

void outbox_clear(struct outbox *o) {
  while (o->head)
    pop(o);
}
