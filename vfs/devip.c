/* #I — TCP through the NIC (Plan 9's ip(3), tcp only), bound at /net.
 *
 *   #I/tcp/clone          open: a new conversation N; the chan becomes
 *                         N's ctl (a read of it gives "N")
 *   #I/tcp/N/ctl          write "announce PORT" or "announce *!PORT",
 *                         "hangup"
 *   #I/tcp/N/listen       open: waits for a connection on announced N;
 *                         the chan becomes the ctl of a new conversation M
 *   #I/tcp/N/data         read and write the stream
 *   #I/tcp/N/local, remote, status   one line of text each
 *
 * A conversation is uk_nic.conv[N] in kernel data; its socket is the
 * kernel's (the host's nic_* ops, sim-kernel/knic.c) and the machine holds
 * a duplicate, so no stream byte is ever in the region: a read takes what
 * the host socket has now (unread data stays there and survives a kernel),
 * and says -EAGAIN (convention 1) while it has none.
 *
 * The state machine of a conversation (enum uk_conv_state):
 *
 *   FREE --open clone--> OPEN --ctl "announce P"--> ANNOUNCED
 *   FREE --open N/listen, a connection came--> CONNECTED
 *   CONNECTED --data reads 0 (peer closed), a send fails, ctl "hangup",
 *               or its socket was not handed over at a failover--> HUNGUP
 *   ANNOUNCED --ctl "hangup", or no socket at a failover--> HUNGUP
 *   any --the last chan naming it goes (convention 4)--> FREE (gen + 1,
 *         the host closes its socket)
 *
 * Refused: "announce" of a port outside the NIC's range, or by a kernel
 * that does not own the NIC (nic.owned: only the active OS holds nic0,
 * the exclusion list): -EADDRNOTAVAIL; a port another conversation
 * announced: -EADDRINUSE; announce twice or on a connection: -EISCONN;
 * listen on what is not ANNOUNCED: -EINVAL; data of what is not
 * CONNECTED: -ENOTCONN (HUNGUP: read 0, write -EPIPE); a full table:
 * -ENFILE.  Any other ctl text: -EINVAL.
 *
 * A conversation is in use while its state is not FREE and freed when no
 * chan names it any more (the chan table is its reference count, as for
 * #| pipes).  A chan names it by its qid path: gen << 32 | (N + 1) << 4 |
 * file, so a chan that outlived its conversation is detected (-EBADF).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dev.h"
#include "vfs.h"
#include "vfs_int.h"

enum { QROOT = 0, QTCP = 1, QCLONE = 2 };
enum { FDIR = 0, FCTL, FDATA, FLISTEN, FLOCAL, FREMOTE, FSTATUS, NFILE };

static const char *const fname[NFILE] = {"",      "ctl",    "data",  "listen",
                                         "local", "remote", "status"};

static uint64_t qpath(uint32_t n, uint16_t gen, int f) {
  return (uint64_t)gen << 32 | (uint64_t)(n + 1) << 4 | (uint64_t)f;
}

/* The conversation index a qid path names (whatever its gen), or -1. */
static int conv_index(uint64_t path) {
  uint64_t n = (path & 0xffffffffu) >> 4;
  return n == 0 || n > UK_CONV_MAX ? -1 : (int)(n - 1);
}

static int file_of(uint64_t path) {
  return (int)(path & 0xf);
}

/* The conversation chan c names, if it is still the one c was made for. */
static struct uk_conv *conv_of(const struct uk_kdata *kd,
                               const struct uk_chan *c) {
  int n = conv_index(c->qid.path);
  if (n < 0)
    return NULL;
  struct uk_conv *v = (struct uk_conv *)&kd->vfs.nic.conv[n];
  if (v->state == UK_CONV_FREE || v->gen != VFS_QGEN(c->qid.path))
    return NULL;
  return v;
}

static int conv_gen(const struct uk_kdata *kd, uint32_t n, int f,
                    struct vfs_dir *d) {
  const struct uk_conv *v = &kd->vfs.nic.conv[n];
  char name[16];
  if (f == FDIR) {
    snprintf(name, sizeof name, "%u", n);
    vfs__dir(d, qpath(n, v->gen, FDIR), UK_QTDIR, VFS_DMDIR | 0555u, 0, name);
  } else {
    vfs__dir(d, qpath(n, v->gen, f), 0, 0660u, 0, fname[f]);
  }
  return 1;
}

/* Entry i of #I/tcp: clone, then one directory per conversation in use. */
static int tcp_entry(const struct uk_kdata *kd, int i, struct vfs_dir *d) {
  if (i == 0) {
    vfs__dir(d, QCLONE, 0, 0660u, 0, "clone");
    return 1;
  }
  for (uint32_t n = 0; n < UK_CONV_MAX; n++)
    if (kd->vfs.nic.conv[n].state != UK_CONV_FREE && --i == 0)
      return conv_gen(kd, n, FDIR, d);
  return 0;
}

static int ipgen(const struct uk_kdata *kd, const struct uk_chan *c, int i,
                 struct vfs_dir *d) {
  uint64_t p = c->qid.path;
  int n = conv_index(p);
  if (p == QROOT || (p == QTCP && i == VFS_GEN_PARENT)) {
    if (i != VFS_GEN_SELF && i != VFS_GEN_PARENT && i != 0)
      return 0;
    if (i == 0)
      vfs__dir(d, QTCP, UK_QTDIR, VFS_DMDIR | 0555u, 0, "tcp");
    else
      vfs__dir(d, QROOT, UK_QTDIR, VFS_DMDIR | 0555u, 0, "#I");
    return 1;
  }
  if (p == QTCP || (n >= 0 && i == VFS_GEN_PARENT)) {
    if (i == VFS_GEN_SELF || i == VFS_GEN_PARENT) {
      vfs__dir(d, QTCP, UK_QTDIR, VFS_DMDIR | 0555u, 0, "tcp");
      return 1;
    }
    return tcp_entry(kd, i, d);
  }
  if (p == QCLONE && i == VFS_GEN_SELF) {
    vfs__dir(d, QCLONE, 0, 0660u, 0, "clone");
    return 1;
  }
  if (n < 0 || conv_of(kd, c) == NULL)
    return 0;
  if (i == VFS_GEN_SELF)
    return conv_gen(kd, (uint32_t)n, file_of(p), d);
  if (file_of(p) != FDIR || i < 0 || i >= NFILE - 1)
    return 0;
  return conv_gen(kd, (uint32_t)n, i + 1, d);
}

static int ipattach(const struct uk_kdata *kd, const char *spec,
                    struct uk_chan *c) {
  (void)kd;
  return vfs_devattach('I', spec, c);
}

/* Whether a LIVE chan other than skip names conversation n. */
static bool named(const struct uk_kdata *kd, uint32_t n,
                  const struct uk_chan *skip) {
  for (uint32_t k = 0; k < UK_CHAN_MAX; k++) {
    const struct uk_chan *c = &kd->vfs.chan[k];
    if (c != skip && c->state == UK_CHAN_LIVE && c->type == 'I' &&
        conv_index(c->qid.path) == (int)n)
      return true;
  }
  return false;
}

static int conv_free_slot(const struct uk_kdata *kd) {
  for (uint32_t n = 0; n < UK_CONV_MAX; n++)
    if (kd->vfs.nic.conv[n].state == UK_CONV_FREE)
      return (int)n;
  return -ENFILE;
}

static struct uk_conv *conv_take(struct uk_kdata *kd, uint32_t n,
                                 uint8_t state) {
  struct uk_conv *v = &kd->vfs.nic.conv[n];
  uint16_t gen = v->gen;
  memset(v, 0, sizeof *v);
  v->gen = gen;
  v->state = state;
  v->owner = vfs_up();
  v->sock = UK_VFS_ID(n, gen);
  v->from = UK_NIL;
  return v;
}

/* Chan c (clone, or N/listen) becomes conversation n's ctl: its qid, and
 * its name with the last one (clone) or two (N/listen) names replaced. */
static void become_ctl(struct uk_chan *c, uint32_t n, uint16_t gen) {
  int drop = file_of(c->qid.path) == FLISTEN ? 2 : 1;
  c->qid.path = qpath(n, gen, FCTL);
  c->qid.type = 0;
  for (int k = 0; k < drop; k++) {
    char *s = strrchr(c->path, '/');
    if (s == NULL) {
      c->path[0] = '\0'; /* no name to keep: fd2path says -ENOENT */
      return;
    }
    *s = '\0';
  }
  char tail[24];
  snprintf(tail, sizeof tail, "%u/ctl", n);
  vfs__path_append(c, tail);
}

static int open_clone(struct uk_kdata *kd, struct uk_chan *c) {
  int n = conv_free_slot(kd);
  if (n < 0)
    return n;
  struct uk_conv *v = conv_take(kd, (uint32_t)n, UK_CONV_OPEN);
  become_ctl(c, (uint32_t)n, v->gen);
  return 0;
}

/* A connection of announced conversation l, as a new conversation:
 * -EAGAIN while none came (the host watches the socket). */
static int open_listen(struct uk_kdata *kd, struct uk_chan *c) {
  const struct vfs_host *h = vfs_host_get();
  struct uk_conv *l = conv_of(kd, c);
  if (l == NULL)
    return -EBADF;
  if (l->state != UK_CONV_ANNOUNCED)
    return -EINVAL;
  int n = conv_free_slot(kd);
  if (n < 0)
    return n;
  if (h == NULL || h->nic_accept == NULL)
    return -ENODEV;
  uint32_t li = (uint32_t)conv_index(c->qid.path), raddr = 0;
  uint16_t rport = 0, port = l->port;
  int r = h->nic_accept(h->arg, li, (uint32_t)n, &raddr, &rport);
  if (r < 0)
    return r;
  struct uk_conv *v = conv_take(kd, (uint32_t)n, UK_CONV_CONNECTED);
  v->port = port;
  v->raddr = raddr;
  v->rport = rport;
  v->from = li;
  become_ctl(c, (uint32_t)n, v->gen);
  return 0;
}

static int ipopen(struct uk_kdata *kd, struct uk_chan *c, uint8_t mode) {
  int r = 0;
  if ((mode & 3u) == VFS_OEXEC)
    return -EPERM;
  if (c->qid.path == QCLONE)
    r = open_clone(kd, c);
  else if (conv_index(c->qid.path) >= 0 && file_of(c->qid.path) == FLISTEN)
    r = open_listen(kd, c);
  else if (conv_index(c->qid.path) >= 0 && conv_of(kd, c) == NULL)
    r = -EBADF;
  return r < 0 ? r : vfs_devopen(kd, c, mode);
}

static const char *const state_name[] = {"Free", "Open", "Announced",
                                         "Established", "Closed"};

static int conv_text(const struct uk_kdata *kd, const struct uk_chan *c,
                     const struct uk_conv *v, char *s, size_t len) {
  uint32_t a = v->raddr;
  switch (file_of(c->qid.path)) {
  case FCTL:
    return snprintf(s, len, "%d", conv_index(c->qid.path));
  case FLOCAL:
    return snprintf(s, len, "127.0.0.1!%u\n", v->port);
  case FREMOTE:
    return snprintf(s, len, "%u.%u.%u.%u!%u\n", a >> 24, a >> 16 & 255,
                    a >> 8 & 255, a & 255, v->rport);
  case FSTATUS:
    return snprintf(s, len, "tcp/%d %s port %u owner %u nic %s\n",
                    conv_index(c->qid.path),
                    v->state < 5 ? state_name[v->state] : "?", v->port,
                    v->owner, kd->vfs.nic.owned ? "owned" : "not-owned");
  default:
    return -1;
  }
}

static void hangup(struct uk_kdata *kd, struct uk_conv *v) {
  const struct vfs_host *h = vfs_host_get();
  if (h != NULL && h->nic_close != NULL)
    h->nic_close(h->arg, (uint32_t)(v - kd->vfs.nic.conv));
  v->state = UK_CONV_HUNGUP;
}

static long data_read(struct uk_kdata *kd, struct uk_conv *v, void *buf,
                      uint32_t n) {
  const struct vfs_host *h = vfs_host_get();
  if (v->state == UK_CONV_HUNGUP)
    return 0;
  if (v->state != UK_CONV_CONNECTED)
    return -ENOTCONN;
  if (h == NULL || h->nic_recv == NULL)
    return -ENODEV;
  long r = h->nic_recv(h->arg, (uint32_t)(v - kd->vfs.nic.conv), buf, n);
  if (r == 0 || (r < 0 && r != -EAGAIN && r != -EINTR))
    hangup(kd, v); /* the peer closed: every later read is 0 too */
  return r < 0 && r != -EAGAIN ? 0 : r;
}

static long ipread(struct uk_kdata *kd, const struct uk_chan *c, void *buf,
                   uint32_t n, uint64_t off) {
  char s[96];
  if (c->qid.type & UK_QTDIR)
    return vfs_devdirread(kd, c, buf, n, off);
  struct uk_conv *v = conv_of(kd, c);
  if (v == NULL)
    return -EBADF;
  if (file_of(c->qid.path) == FDATA)
    return data_read(kd, v, buf, n);
  int len = conv_text(kd, c, v, s, sizeof s);
  if (len < 0)
    return -EPERM; /* listen is for opening */
  return vfs__read_str(buf, n, off, s, (size_t)len);
}

/* The port of "announce PORT" or "announce *!PORT", or -EINVAL. */
static long announce_port(const char *arg) {
  if (strncmp(arg, "*!", 2) == 0)
    arg += 2;
  char *end;
  if (*arg < '0' || *arg > '9')
    return -EINVAL;
  unsigned long p = strtoul(arg, &end, 10);
  while (*end == ' ' || *end == '\n')
    end++;
  return *end != '\0' || p == 0 || p > 65535 ? -EINVAL : (long)p;
}

static bool port_taken(const struct uk_kdata *kd, uint16_t port) {
  for (uint32_t n = 0; n < UK_CONV_MAX; n++)
    if (kd->vfs.nic.conv[n].state == UK_CONV_ANNOUNCED &&
        kd->vfs.nic.conv[n].port == port)
      return true;
  return false;
}

static int announce(struct uk_kdata *kd, struct uk_conv *v, const char *arg) {
  const struct uk_nic *nic = &kd->vfs.nic;
  const struct vfs_host *h = vfs_host_get();
  long port = announce_port(arg);
  if (port < 0)
    return (int)port;
  if (v->state != UK_CONV_OPEN)
    return -EISCONN;
  if (!nic->owned || nic->port_base == 0 || port < nic->port_base ||
      port >= nic->port_base + UK_NIC_PORTS)
    return -EADDRNOTAVAIL;
  if (port_taken(kd, (uint16_t)port))
    return -EADDRINUSE;
  if (h == NULL || h->nic_announce == NULL)
    return -ENODEV;
  int r = h->nic_announce(h->arg, (uint32_t)(v - nic->conv), (uint16_t)port);
  if (r < 0)
    return r;
  v->port = (uint16_t)port;
  v->state = UK_CONV_ANNOUNCED;
  return 0;
}

static long ctl_write(struct uk_kdata *kd, struct uk_conv *v, const void *buf,
                      uint32_t n) {
  char s[64];
  if (n >= sizeof s)
    return -EINVAL;
  memcpy(s, buf, n);
  s[n] = '\0';
  int r;
  if (strncmp(s, "announce ", 9) == 0)
    r = announce(kd, v, s + 9);
  else if (strcmp(s, "hangup") == 0 || strcmp(s, "hangup\n") == 0) {
    if (v->state == UK_CONV_ANNOUNCED || v->state == UK_CONV_CONNECTED)
      hangup(kd, v);
    r = 0;
  } else
    r = -EINVAL;
  return r < 0 ? r : (long)n;
}

static long data_write(struct uk_kdata *kd, struct uk_conv *v, const void *buf,
                       uint32_t n) {
  const struct vfs_host *h = vfs_host_get();
  if (v->state == UK_CONV_HUNGUP)
    return -EPIPE;
  if (v->state != UK_CONV_CONNECTED)
    return -ENOTCONN;
  if (h == NULL || h->nic_send == NULL)
    return -ENODEV;
  if (n == 0)
    return 0;
  long r = h->nic_send(h->arg, (uint32_t)(v - kd->vfs.nic.conv), buf, n);
  if (r < 0 && r != -EAGAIN) {
    hangup(kd, v);
    return -EPIPE;
  }
  return r;
}

static long ipwrite(struct uk_kdata *kd, struct uk_chan *c, const void *buf,
                    uint32_t n, uint64_t off) {
  (void)off;
  struct uk_conv *v = conv_of(kd, c);
  if (v == NULL)
    return -EBADF;
  if (file_of(c->qid.path) == FCTL)
    return ctl_write(kd, v, buf, n);
  if (file_of(c->qid.path) == FDATA)
    return data_write(kd, v, buf, n);
  return -EPERM;
}

/* The last chan naming a conversation went: its socket closes. */
static void ipfree(struct uk_kdata *kd, const struct uk_chan *c) {
  int n = conv_index(c->qid.path);
  struct uk_conv *v = conv_of(kd, c);
  if (v == NULL || named(kd, (uint32_t)n, NULL))
    return;
  const struct vfs_host *h = vfs_host_get();
  if (h != NULL && h->nic_close != NULL)
    h->nic_close(h->arg, (uint32_t)n);
  uint16_t gen = (uint16_t)(v->gen + 1);
  memset(v, 0, sizeof *v);
  v->gen = gen;
}

/* Invariants (vfs_check) ------------------------------------------------- */

static bool conv_ok(const struct uk_conv *v) {
  if (v->state == UK_CONV_FREE)
    return v->port == 0 && v->rport == 0 && v->raddr == 0 && v->owner == 0 &&
           v->sock == 0 && v->from == 0;
  bool port = v->state == UK_CONV_OPEN || v->port != 0;
  return v->state <= UK_CONV_HUNGUP && port &&
         (v->owner < UK_PROC_MAX || v->owner == UK_NIL) &&
         (v->from < UK_CONV_MAX || v->from == UK_NIL);
}

static int bad(char *why, unsigned len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(char *why, unsigned len, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (len > 0)
    vsnprintf(why, len, fmt, ap);
  va_end(ap);
  return -EUCLEAN;
}

int vfs__ip_chan_check(const struct uk_kdata *kd, uint32_t i, bool *named,
                       char *why, unsigned len) {
  const struct uk_chan *c = &kd->vfs.chan[i];
  int n = conv_index(c->qid.path);
  if (n < 0 && c->qid.path > QCLONE)
    return bad(why, len, "chan %u: #I qid %#llx", i,
               (unsigned long long)c->qid.path);
  if (n >= 0 && (conv_of(kd, c) == NULL || file_of(c->qid.path) >= NFILE))
    return bad(why, len, "chan %u: conversation %d is not there", i, n);
  if (n >= 0)
    named[n] = true;
  return 0;
}

int vfs__ip_table_check(const struct uk_kdata *kd, const bool *named, char *why,
                        unsigned len) {
  for (uint32_t n = 0; n < UK_CONV_MAX; n++) {
    const struct uk_conv *v = &kd->vfs.nic.conv[n];
    if (!conv_ok(v) || (v->state != UK_CONV_FREE && !named[n]))
      return bad(why, len, "conversation %u: state %u, port %u%s", n, v->state,
                 v->port, named[n] ? "" : ", no chan names it");
  }
  if (kd->vfs.nic.owned > 1)
    return bad(why, len, "nic: owned %u", kd->vfs.nic.owned);
  return 0;
}

/* At a failover ---------------------------------------------------------- */

void vfs_ip_adopted(struct uk_kdata *kd, const bool has_sock[UK_CONV_MAX],
                    uint8_t fate[UK_CONV_MAX]) {
  for (uint32_t n = 0; n < UK_CONV_MAX; n++) {
    struct uk_conv *v = &kd->vfs.nic.conv[n];
    bool live = v->state == UK_CONV_ANNOUNCED || v->state == UK_CONV_CONNECTED;
    fate[n] = live && has_sock[n] ? VFS_IP_KEEP
              : live              ? VFS_IP_LOST
              : has_sock[n]       ? VFS_IP_CLOSE
                                  : VFS_IP_NONE;
    if (fate[n] == VFS_IP_LOST)
      v->state = UK_CONV_HUNGUP; /* its socket did not come */
  }
}

const struct vfs_dev vfs_ipdev = {
    .dc = 'I',
    .name = "ip",
    .gen = ipgen,
    .attach = ipattach,
    .open = ipopen,
    .read = ipread,
    .write = ipwrite,
    .free = ipfree,
};
