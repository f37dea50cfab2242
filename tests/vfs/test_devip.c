/* Unit tests for the TCP servant #I (vfs/devip.c).
 *
 * The host's NIC ops here are real loopback sockets, as the kernel's
 * (sim-kernel/knic.c) are, kept by conversation index in this file; the
 * client is a plain socket of this test.  Invariants under test: a clone
 * is a new conversation whose ctl reads its number, listed in tcp; an
 * announce outside the NIC's range, or on a NIC this kernel does not
 * own, is -EADDRNOTAVAIL and a bad one -EINVAL, -EADDRINUSE, -EISCONN,
 * each changing nothing; listen is -EAGAIN until a client connects, then
 * its chan is the new conversation's ctl; data moves both ways, -EAGAIN
 * while nothing came, 0 and -EPIPE once the peer closed; the last chan
 * naming a conversation frees it (gen moves on, the socket closes), and
 * vfs_check holds at every step.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../ports.h"
#include "vfs_fixture.h"
#include "vfs_servant.h"

static uint32_t p0;
static uint16_t base; /* the NIC's first port, per test process */
static int sock[UK_CONV_MAX];

static int t_announce(void *arg, uint32_t i, uint16_t port) {
  (void)arg;
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons(port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 4) < 0) {
    close(fd);
    return -errno;
  }
  sock[i] = fd;
  return 0;
}

static int t_accept(void *arg, uint32_t l, uint32_t i, uint32_t *raddr,
                    uint16_t *rport) {
  (void)arg;
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  int fd = accept4(sock[l], (struct sockaddr *)&sa, &len, SOCK_NONBLOCK);
  if (fd < 0)
    return -errno;
  sock[i] = fd;
  *raddr = ntohl(sa.sin_addr.s_addr);
  *rport = ntohs(sa.sin_port);
  return 0;
}

static long t_recv(void *arg, uint32_t i, void *buf, uint32_t n) {
  (void)arg;
  ssize_t r = recv(sock[i], buf, n, MSG_DONTWAIT);
  return r < 0 ? -errno : (long)r;
}

static long t_send(void *arg, uint32_t i, const void *buf, uint32_t n) {
  (void)arg;
  ssize_t r = send(sock[i], buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
  return r < 0 ? -errno : (long)r;
}

static void t_close(void *arg, uint32_t i) {
  (void)arg;
  if (sock[i] >= 0)
    close(sock[i]);
  sock[i] = -1;
}

static void init(void) {
  kd_new();
  p0 = proc_new("techo", 100);
  host_install(p0);
  fh.h.nic_announce = t_announce;
  fh.h.nic_accept = t_accept;
  fh.h.nic_recv = t_recv;
  fh.h.nic_send = t_send;
  fh.h.nic_close = t_close;
  for (int i = 0; i < UK_CONV_MAX; i++)
    sock[i] = -1;
  /* Below the ephemeral range and probed free: from the pid alone, in
   * 40000-55999, a port the test announces was once taken already. */
  int b = h_free_ports(20000, 12000, UK_NIC_PORTS);
  cr_assert_neq(b, 0, "no %d free ports in 20000-31999", UK_NIC_PORTS);
  base = (uint16_t)b;
  kd->vfs.nic.port_base = base;
  kd->vfs.nic.owned = 1;
}

static void fini(void) {
  servant_fini(); /* frees every conversation: closes every socket */
  for (int i = 0; i < UK_CONV_MAX; i++)
    cr_expect_eq(sock[i], -1, "socket of conversation %d left open", i);
}

TestSuite(vfs_devip, .init = init, .fini = fini);

static void check_ok(void) {
  char why[160];
  cr_assert_eq(vfs_check(kd, why, sizeof why), 0, "%s", why);
}

static uint32_t clone_conv(void) {
  uint32_t c = open_in(p0, "#I/tcp/clone", VFS_ORDWR);
  check_ok();
  return c;
}

static const char *text(uint32_t c) {
  static char buf[128];
  read_all(c, buf, sizeof buf);
  return buf;
}

static void port_str(char *s, size_t len, const char *fmt, unsigned port) {
  snprintf(s, len, fmt, port);
}

Test(vfs_devip, clone_makes_a_conversation_listed_in_tcp, .timeout = 10) {
  uint32_t c = clone_conv();
  cr_expect_str_eq(text(c), "0");
  cr_expect_str_eq(kd->vfs.chan[UK_VFS_INDEX(c)].path, "#I/tcp/0/ctl");
  struct vfs_dir e[4];
  cr_assert_eq(list_in(p0, "#I/tcp", e, 4), 2);
  cr_expect_str_eq(e[0].name, "clone");
  cr_expect_str_eq(e[1].name, "0");
  cr_assert_eq(list_in(p0, "#I/tcp/0", e, 4), 4);
  cr_expect_str_eq(e[0].name, "ctl");
  cr_expect_str_eq(e[1].name, "data");
  uint32_t st = open_in(p0, "#I/tcp/0/status", VFS_OREAD);
  cr_expect(strstr(text(st), "tcp/0 Open"), "%s", text(st));
  cr_expect_eq(kd->vfs.nic.conv[0].owner, p0);
  vfs_chan_unref(kd, st);
  vfs_chan_unref(kd, c);
  cr_expect_eq(kd->vfs.nic.conv[0].state, UK_CONV_FREE);
  cr_expect_eq(kd->vfs.nic.conv[0].gen, 1, "gen did not move on");
  cr_expect(!exists(p0, "#I/tcp/0"), "a freed conversation is listed");
  check_ok();
}

Test(vfs_devip, announce_takes_only_the_nics_ports, .timeout = 10) {
  uint32_t c = clone_conv(), d = clone_conv();
  char s[48];
  port_str(s, sizeof s, "announce %u", base - 1u);
  cr_expect_eq(write_str(c, s), -EADDRNOTAVAIL);
  port_str(s, sizeof s, "announce %u", base + UK_NIC_PORTS);
  cr_expect_eq(write_str(c, s), -EADDRNOTAVAIL);
  cr_expect_eq(write_str(c, "announce x"), -EINVAL);
  cr_expect_eq(write_str(c, "announce 70000"), -EINVAL);
  cr_expect_eq(write_str(c, "listen"), -EINVAL);
  kd->vfs.nic.owned = 0; /* a backup: nic0 is the active's */
  port_str(s, sizeof s, "announce *!%u", base + 1u);
  cr_expect_eq(write_str(c, s), -EADDRNOTAVAIL);
  cr_expect_eq(kd->vfs.nic.conv[0].state, UK_CONV_OPEN, "a refusal changed it");
  kd->vfs.nic.owned = 1;
  cr_assert_eq(write_str(c, s), (long)strlen(s));
  cr_expect_eq(kd->vfs.nic.conv[0].state, UK_CONV_ANNOUNCED);
  cr_expect_eq(write_str(c, s), -EISCONN);
  cr_expect_eq(write_str(d, s), -EADDRINUSE);
  uint32_t l = open_in(p0, "#I/tcp/0/local", VFS_OREAD);
  port_str(s, sizeof s, "127.0.0.1!%u\n", base + 1u);
  cr_expect_str_eq(text(l), s);
  check_ok();
  vfs_chan_unref(kd, l);
  vfs_chan_unref(kd, d);
  vfs_chan_unref(kd, c);
  cr_expect_eq(sock[0], -1, "the listening socket was not closed");
}

static int dial(uint16_t port) {
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons(port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  return fd;
}

/* Opens path until it stops saying -EAGAIN (a connection on its way). */
static uint32_t open_waiting(const char *path) {
  uint32_t c = walk_to(p0, path);
  int r;
  for (int i = 0; (r = vfs_dev_open(kd, c, VFS_ORDWR)) == -EAGAIN && i < 500;
       i++)
    usleep(1000);
  cr_assert_eq(r, 0, "open %s: %d", path, r);
  return c;
}

static long read_waiting(uint32_t c, char *buf, uint32_t n) {
  long r;
  for (int i = 0; (r = vfs_dev_read(kd, c, buf, n, 0)) == -EAGAIN && i < 500;
       i++)
    usleep(1000);
  return r;
}

Test(vfs_devip, listen_gives_a_connection_that_moves_bytes, .timeout = 10) {
  uint32_t c = clone_conv();
  char s[48], buf[16];
  port_str(s, sizeof s, "announce %u", base + 2u);
  cr_assert_eq(write_str(c, s), (long)strlen(s));
  uint32_t l = walk_to(p0, "#I/tcp/0/listen");
  cr_expect_eq(vfs_dev_open(kd, l, VFS_ORDWR), -EAGAIN, "no client yet");
  cr_expect_eq(kd->vfs.nic.conv[1].state, UK_CONV_FREE, "-EAGAIN changed it");
  vfs_chan_unref(kd, l);
  int cl = dial(base + 2);
  l = open_waiting("#I/tcp/0/listen");
  cr_expect_str_eq(text(l), "1");
  cr_expect_str_eq(kd->vfs.chan[UK_VFS_INDEX(l)].path, "#I/tcp/1/ctl");
  check_ok();
  uint32_t d = open_in(p0, "#I/tcp/1/data", VFS_ORDWR);
  cr_expect_eq(vfs_dev_read(kd, d, buf, sizeof buf, 0), -EAGAIN);
  cr_assert_eq(send(cl, "hi", 2, 0), 2);
  cr_expect_eq(read_waiting(d, buf, sizeof buf), 2);
  cr_expect_eq(memcmp(buf, "hi", 2), 0);
  cr_expect_eq(write_str(d, "yo"), 2);
  cr_assert_eq(recv(cl, buf, sizeof buf, 0), 2);
  cr_expect_eq(memcmp(buf, "yo", 2), 0);
  uint32_t r = open_in(p0, "#I/tcp/1/remote", VFS_OREAD);
  cr_expect(strncmp(text(r), "127.0.0.1!", 10) == 0, "%s", text(r));
  close(cl);
  cr_expect_eq(read_waiting(d, buf, sizeof buf), 0, "no EOF");
  cr_expect_eq(kd->vfs.nic.conv[1].state, UK_CONV_HUNGUP);
  cr_expect_eq(write_str(d, "x"), -EPIPE);
  check_ok();
  vfs_chan_unref(kd, r);
  vfs_chan_unref(kd, d);
  vfs_chan_unref(kd, l);
  cr_expect_eq(kd->vfs.nic.conv[1].state, UK_CONV_FREE);
  vfs_chan_unref(kd, c);
  check_ok();
}

Test(vfs_devip, data_of_a_conversation_not_connected_is_refused,
     .timeout = 10) {
  uint32_t c = clone_conv();
  uint32_t d = open_in(p0, "#I/tcp/0/data", VFS_ORDWR);
  char buf[8];
  cr_expect_eq(vfs_dev_read(kd, d, buf, sizeof buf, 0), -ENOTCONN);
  cr_expect_eq(write_str(d, "x"), -ENOTCONN);
  uint32_t l = walk_to(p0, "#I/tcp/0/listen");
  cr_expect_eq(vfs_dev_open(kd, l, VFS_ORDWR), -EINVAL, "listen unannounced");
  vfs_chan_unref(kd, l);
  vfs_chan_unref(kd, d);
  vfs_chan_unref(kd, c);
}

Test(vfs_devip, a_full_table_refuses_a_clone, .timeout = 10) {
  uint32_t c[UK_CONV_MAX];
  for (int i = 0; i < UK_CONV_MAX; i++)
    c[i] = clone_conv();
  uint32_t x = walk_to(p0, "#I/tcp/clone");
  cr_expect_eq(vfs_dev_open(kd, x, VFS_ORDWR), -ENFILE);
  vfs_chan_unref(kd, x);
  for (int i = 0; i < UK_CONV_MAX; i++)
    vfs_chan_unref(kd, c[i]);
  check_ok();
}

Test(vfs_devip, check_finds_a_chan_naming_a_stale_conversation, .timeout = 10) {
  char why[160];
  uint32_t c = clone_conv();
  kd->vfs.nic.conv[0].gen++; /* as if freed and reused behind the chan */
  cr_expect_eq(vfs_check(kd, why, sizeof why), -EUCLEAN);
  cr_expect(strstr(why, "conversation 0"), "%s", why);
  char buf[8];
  cr_expect_eq(vfs_dev_read(kd, c, buf, sizeof buf, 0), -EBADF);
  kd->vfs.nic.conv[0].gen--;
  vfs_chan_unref(kd, c);
}
