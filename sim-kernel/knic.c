/* The NIC's sockets (#I, vfs/devip.c): the host side of the servant.
 *
 * nic0 is a range of UK_NIC_PORTS loopback ports from the machine's
 * --nic-port; the active OS owns it (kd->vfs.nic.owned), a backup does
 * not.  This kernel keeps one descriptor per conversation (k->nic.fd, by
 * conversation index) and hands the machine a duplicate of each (NicHold)
 * as soon as it has it: the listening socket at "announce", a connection
 * at the accept.  The machine thus holds every socket of the NIC, and at a
 * failover gives them to the next active kernel (TakeOverItem NIC), which
 * binds them to the conversation table it adopted with the rest of the
 * dead kernel's vfs tables (same indexes):
 *
 *   knic_take    (failover step "devices") the handed sockets become this
 *                kernel's, by conversation index; nic0 is ours
 *   knic_settle  (after the processes step) a conversation that moved
 *                keeps its socket and the machine is told it holds it
 *                again; one with no socket hangs up; a socket whose
 *                conversation did not move (its process ended) closes
 *
 * Reads, accepts and sends never block the loop: they are non-blocking,
 * and on EAGAIN the conversation's socket is polled (uv_poll, one handle
 * per conversation, for what the waiting calls want) and the namespace
 * calls waiting are retried when it is ready (kern__ns_retry).  A read or
 * listen in flight at a failover is restarted by the new kernel (adopt.c:
 * KABI_NS calls restart): nothing was consumed, the bytes are still in the
 * socket.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dev.h"
#include "kern.h"
#include "partition.h"
#include "uksim/uv_check.h"
#include "uksim/xalloc.h"

_Static_assert(UK_NIC_PORTS == PART_NIC_PORTS,
               "#I's port range is the machine's NIC range");

/* Machine link ------------------------------------------------------------ */

static void hold(struct kern *k, uint32_t i) {
  Uksim__NicHold h = UKSIM__NIC_HOLD__INIT;
  Uksim__Ctl c = UKSIM__CTL__INIT;
  h.conv = i;
  h.sock = UK_VFS_ID(i, k->kd->vfs.nic.conv[i].gen); /* devip.c's sock */
  c.body_case = UKSIM__CTL__BODY_NIC_HOLD;
  c.nic_hold = &h;
  (void)ctl_post(&k->mout, &c, k->nic.fd[i]);
}

static void drop(struct kern *k, uint32_t i) {
  Uksim__NicDrop d = UKSIM__NIC_DROP__INIT;
  Uksim__Ctl c = UKSIM__CTL__INIT;
  d.conv = i;
  c.body_case = UKSIM__CTL__BODY_NIC_DROP;
  c.nic_drop = &d;
  (void)ctl_post(&k->mout, &c, -1);
}

/* Polling ----------------------------------------------------------------- */

static void on_ready(uv_poll_t *h, int status, int events) {
  (void)status;
  (void)events;
  struct kern *k = h->data;
  uv_poll_stop(h);
  for (uint32_t n = 0; n < UK_CONV_MAX; n++)
    if (k->nic.poll[n] == h)
      k->nic.want[n] = 0;
  kern__ns_retry(k);
}

/* The waiting call on conversation i wants events: watch its socket. */
static void arm(struct kern *k, uint32_t i, int events) {
  struct knic *nic = &k->nic;
  if (nic->poll[i] == NULL) {
    nic->poll[i] = xcalloc(1, sizeof *nic->poll[i]);
    UV_CHECK(uv_poll_init(k->loop, nic->poll[i], nic->fd[i]));
    nic->poll[i]->data = k;
  }
  nic->want[i] |= events;
  UV_CHECK(uv_poll_start(nic->poll[i], nic->want[i], on_ready));
}

static void poll_freed(uv_handle_t *h) {
  free(h);
}

/* Conversation i lets go of its socket; the machine of its duplicate. */
static void release(struct kern *k, uint32_t i, bool tell) {
  struct knic *n = &k->nic;
  if (n->poll[i] != NULL)
    uv_close((uv_handle_t *)n->poll[i], poll_freed);
  n->poll[i] = NULL;
  n->want[i] = 0;
  if (n->fd[i] >= 0)
    close(n->fd[i]);
  n->fd[i] = -1;
  if (tell)
    drop(k, i);
}

/* The host's ops (vfs/dev.h) ---------------------------------------------- */

static int would_block(struct kern *k, uint32_t i, int events) {
  arm(k, i, events);
  return -EAGAIN;
}

static int host_announce(void *arg, uint32_t i, uint16_t port) {
  struct kern *k = arg;
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons(port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int one = 1;
  if (i >= UK_CONV_MAX || k->nic.fd[i] >= 0)
    return -EBADF;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
      listen(fd, KNIC_BACKLOG) < 0) {
    int e = -errno;
    close(fd);
    return e;
  }
  k->nic.fd[i] = fd;
  hold(k, i);
  kern__trace(k, "nic: tcp/%u announced on 127.0.0.1:%u", i, port);
  return 0;
}

static int host_accept(void *arg, uint32_t l, uint32_t i, uint32_t *raddr,
                       uint16_t *rport) {
  struct kern *k = arg;
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  if (l >= UK_CONV_MAX || i >= UK_CONV_MAX || k->nic.fd[l] < 0 ||
      k->nic.fd[i] >= 0)
    return -EBADF;
  int fd = accept4(k->nic.fd[l], (struct sockaddr *)&sa, &len,
                   SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0)
    return errno == EAGAIN || errno == EINTR || errno == ECONNABORTED
               ? would_block(k, l, UV_READABLE)
               : -errno;
  k->nic.fd[i] = fd;
  hold(k, i);
  *raddr = ntohl(sa.sin_addr.s_addr);
  *rport = ntohs(sa.sin_port);
  kern__trace(k, "nic: tcp/%u accepted on tcp/%u", i, l);
  return 0;
}

static long host_recv(void *arg, uint32_t i, void *buf, uint32_t n) {
  struct kern *k = arg;
  if (i >= UK_CONV_MAX || k->nic.fd[i] < 0)
    return -EBADF;
  ssize_t r = recv(k->nic.fd[i], buf, n, MSG_DONTWAIT);
  if (r < 0)
    return errno == EAGAIN || errno == EINTR ? would_block(k, i, UV_READABLE)
                                             : -errno;
  return (long)r;
}

static long host_send(void *arg, uint32_t i, const void *buf, uint32_t n) {
  struct kern *k = arg;
  if (i >= UK_CONV_MAX || k->nic.fd[i] < 0)
    return -EBADF;
  ssize_t r = send(k->nic.fd[i], buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (r < 0)
    return errno == EAGAIN || errno == EINTR ? would_block(k, i, UV_WRITABLE)
                                             : -errno;
  return (long)r;
}

static void host_close(void *arg, uint32_t i) {
  struct kern *k = arg;
  if (i < UK_CONV_MAX && k->nic.fd[i] >= 0) {
    kern__trace(k, "nic: tcp/%u closed", i);
    release(k, i, true);
  }
}

void knic_init(struct kern *k, uint16_t port_base) {
  struct uk_nic *nic = &k->kd->vfs.nic;
  for (uint32_t i = 0; i < UK_CONV_MAX; i++)
    k->nic.fd[i] = -1;
  k->nic.port_base = port_base;
  nic->port_base = port_base;
  nic->owned = port_base != 0 && k->os.role == KOS_ACTIVE;
  k->vhost.nic_announce = host_announce;
  k->vhost.nic_accept = host_accept;
  k->vhost.nic_recv = host_recv;
  k->vhost.nic_send = host_send;
  k->vhost.nic_close = host_close;
}

/* Failover ---------------------------------------------------------------- */

int knic_take(struct kern *k) {
  int n = 0;
  for (uint32_t i = 0; i < UK_CONV_MAX; i++) {
    int fd = k->os.adopt_nic_fd[i];
    k->os.adopt_nic_fd[i] = -1;
    if (fd < 0)
      continue;
    if (k->nic.fd[i] >= 0)
      release(k, i, false);
    k->nic.fd[i] = fd;
    n++;
  }
  k->kd->vfs.nic.port_base = k->nic.port_base;
  k->kd->vfs.nic.owned = k->nic.port_base != 0;
  return n;
}

void knic_settle(struct kern *k, uint32_t *kept, uint32_t *lost) {
  struct uk_nic *nic = &k->kd->vfs.nic;
  *kept = *lost = 0;
  nic->port_base = k->nic.port_base;
  nic->owned = k->nic.port_base != 0;
  bool has[UK_CONV_MAX];
  uint8_t fate[UK_CONV_MAX];
  for (uint32_t i = 0; i < UK_CONV_MAX; i++)
    has[i] = k->nic.fd[i] >= 0;
  vfs_ip_adopted(k->kd, has, fate);
  for (uint32_t i = 0; i < UK_CONV_MAX; i++) {
    if (fate[i] == VFS_IP_CLOSE)
      release(k, i, false);
    if (fate[i] == VFS_IP_KEEP)
      hold(k, i); /* the machine let go of it at the takeover */
    *kept += fate[i] == VFS_IP_KEEP;
    *lost += fate[i] == VFS_IP_LOST;
  }
}
