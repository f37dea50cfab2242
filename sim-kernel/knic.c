/* The NIC's sockets (#I, vfs/devip.c): the host side of the servant.
 *
 * nic0 is a range of UK_NIC_PORTS loopback ports from the machine's
 * --nic-port; the active OS owns it (kd->vfs.nic.owned), a backup does
 * not.  The machine owns the hardware and holds every socket of the NIC;
 * this kernel keeps its own descriptor of each (k->nic.fd, by conversation
 * index) with the machine's id for it (k->nic.sock: the conversation's
 * uk_conv.sock, index and generation):
 *
 *   announce   NicListen to the machine, which checks that nic0 and the
 *              port are this OS's (its exclusion list), makes the
 *              listening socket, keeps it and answers with a duplicate.
 *              Until the answer the ctl write says -EAGAIN (the call
 *              waits, dev.h convention 1); knic_reply retries it.
 *   accept     here, non-blocking; the connection goes to the machine at
 *              once (NicHold)
 *   close      the last chan of a conversation went, or it hung up: our
 *              descriptor closes and the machine drops its own (NicDrop,
 *              only the socket of that id: a late drop never closes a
 *              reused conversation's new socket)
 *
 * At a failover the machine hands the dead kernel's sockets to the new
 * active (TakeOverItem NIC, with their ids) and goes on holding them for
 * it.  The conversation table came with the dead kernel's vfs tables
 * (adopt.c, same indexes):
 *
 *   knic_take    (failover step "devices") the handed sockets become this
 *                kernel's, by conversation index; nic0 is ours
 *   knic_settle  (after the processes step) vfs_ip_adopted matches them:
 *                a conversation that moved keeps its socket, one with no
 *                socket hangs up, a socket whose conversation did not
 *                move closes
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
#include "uksim/xalloc.h"

_Static_assert(UK_NIC_PORTS == PART_NIC_PORTS,
               "#I's port range is the machine's NIC range");

/* Machine link ------------------------------------------------------------ */

static void hold(struct kern *k, uint32_t i) {
  Uksim__NicHold h = UKSIM__NIC_HOLD__INIT;
  Uksim__Ctl c = UKSIM__CTL__INIT;
  h.conv = i;
  h.sock = k->nic.sock[i];
  c.body_case = UKSIM__CTL__BODY_NIC_HOLD;
  c.nic_hold = &h;
  (void)ctl_post(&k->mout, &c, k->nic.fd[i]);
}

static void drop_sock(struct kern *k, uint32_t i, uint32_t sock) {
  Uksim__NicDrop d = UKSIM__NIC_DROP__INIT;
  Uksim__Ctl c = UKSIM__CTL__INIT;
  d.conv = i;
  d.sock = sock;
  c.body_case = UKSIM__CTL__BODY_NIC_DROP;
  c.nic_drop = &d;
  (void)ctl_post(&k->mout, &c, -1);
}

/* Replies to NicListen carry this id with the socket's id below. */
#define KNIC_LISTEN_ID (1ull << 61)

static void ask_listen(struct kern *k, uint32_t i, uint16_t port,
                       uint32_t sock) {
  Uksim__NicListen l = UKSIM__NIC_LISTEN__INIT;
  Uksim__Ctl c = UKSIM__CTL__INIT;
  l.conv = i;
  l.port = port;
  l.sock = sock;
  c.id = KNIC_LISTEN_ID | sock;
  c.body_case = UKSIM__CTL__BODY_NIC_LISTEN;
  c.nic_listen = &l;
  (void)ctl_post(&k->mout, &c, -1);
  k->nic.asking[i] = true;
  k->nic.asked[i] = sock;
  k->nic.failed[i] = 0;
}

/* Polling ----------------------------------------------------------------- */

static void on_ready(uv_poll_t *h, int status, int events) {
  (void)status;
  (void)events;
  struct kern *k = h->data;
  uv_poll_stop(h);
  if (kern__retiring(k))
    return; /* nic0 is the new active's (kretire.c) */
  for (uint32_t n = 0; n < UK_CONV_MAX; n++)
    if (k->nic.poll[n] == h)
      k->nic.want[n] = 0;
  kern__ns_retry(k);
}

static void poll_freed(uv_handle_t *h) {
  free(h);
}

/* The waiting call on conversation i wants events: watch its socket.
 * -EAGAIN (the call waits), or why the socket cannot be watched (the call
 * fails rather than wait for good). */
static int arm(struct kern *k, uint32_t i, int events) {
  struct knic *nic = &k->nic;
  int r = 0;
  if (nic->poll[i] == NULL) {
    nic->poll[i] = xcalloc(1, sizeof *nic->poll[i]);
    if ((r = uv_poll_init(k->loop, nic->poll[i], nic->fd[i])) < 0) {
      free(nic->poll[i]);
      nic->poll[i] = NULL;
      return r;
    }
    nic->poll[i]->data = k;
  }
  nic->want[i] |= events;
  r = uv_poll_start(nic->poll[i], nic->want[i], on_ready);
  return r < 0 ? r : -EAGAIN;
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
    drop_sock(k, i, n->sock[i]);
  n->sock[i] = 0;
}

/* The host's ops (vfs/dev.h) ---------------------------------------------- */

/* conversation i's socket id, as devip.c gives it (uk_conv.sock). */
static uint32_t sock_id(struct kern *k, uint32_t i) {
  return UK_VFS_ID(i, k->kd->vfs.nic.conv[i].gen);
}

/* Asks the machine, then waits for its answer (knic_reply). */
static int host_announce(void *arg, uint32_t i, uint16_t port) {
  struct kern *k = arg;
  struct knic *nic = &k->nic;
  if (i >= UK_CONV_MAX)
    return -EBADF;
  uint32_t sock = sock_id(k, i);
  if (nic->fd[i] >= 0 && nic->sock[i] == sock) {
    kern__trace(k, "nic: tcp/%u announced on 127.0.0.1:%u", i, port);
    return 0;
  }
  if (!nic->asking[i] || nic->asked[i] != sock) {
    ask_listen(k, i, port, sock);
    return -EAGAIN;
  }
  int r = nic->failed[i];
  if (r == 0)
    return -EAGAIN; /* not answered yet */
  nic->asking[i] = false;
  nic->failed[i] = 0;
  return r;
}

bool knic_reply(struct kern *k, uint64_t id, const Uksim__Reply *r, int fd) {
  struct knic *nic = &k->nic;
  if ((id & ~0xffffffffull) != KNIC_LISTEN_ID)
    return false;
  uint32_t sock = (uint32_t)id, i = UK_VFS_INDEX(sock);
  if (i >= UK_CONV_MAX || !nic->asking[i] || nic->asked[i] != sock) {
    if (fd >= 0) { /* its conversation went meanwhile */
      close(fd);
      if (i < UK_CONV_MAX)
        drop_sock(k, i, sock);
    }
    return true;
  }
  if (r->status < 0 || fd < 0) {
    nic->failed[i] = r->status < 0 ? r->status : -EIO;
    if (fd >= 0)
      close(fd);
  } else {
    if (nic->fd[i] >= 0)
      release(k, i, false);
    nic->fd[i] = fd;
    nic->sock[i] = sock;
    nic->asking[i] = false;
  }
  kern__ns_retry(k);
  return true;
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
               ? arm(k, l, UV_READABLE)
               : -errno;
  k->nic.fd[i] = fd;
  k->nic.sock[i] = sock_id(k, i); /* devip.c takes it with this gen */
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
    return errno == EAGAIN || errno == EINTR ? arm(k, i, UV_READABLE) : -errno;
  return (long)r;
}

static long host_send(void *arg, uint32_t i, const void *buf, uint32_t n) {
  struct kern *k = arg;
  if (i >= UK_CONV_MAX || k->nic.fd[i] < 0)
    return -EBADF;
  ssize_t r = send(k->nic.fd[i], buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (r < 0)
    return errno == EAGAIN || errno == EINTR ? arm(k, i, UV_WRITABLE) : -errno;
  return (long)r;
}

static void host_close(void *arg, uint32_t i) {
  struct kern *k = arg;
  if (i >= UK_CONV_MAX)
    return;
  k->nic.asking[i] = false; /* an answer still to come is dropped */
  k->nic.failed[i] = 0;
  if (k->nic.fd[i] >= 0) {
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
    k->nic.sock[i] = k->os.adopt_nic_sock[i];
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
      release(k, i, true); /* the machine holds it for us: it lets go */
    *kept += fate[i] == VFS_IP_KEEP;
    *lost += fate[i] == VFS_IP_LOST;
  }
}
