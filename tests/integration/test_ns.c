/* Namespace calls end to end (seed 002 §5.1): this test process attaches
 * to a real machine as a uksim process (the Attach control request, as
 * `uksim sh` does) and makes libuksim's ns_* calls through the kernel. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "uksim/ap.h"
#include "uksim/ns.h"
#include "ktab.h"

static mach_client m;

static uint64_t stats_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void attach(const char *name) {
  h_boot(&m, NULL);
  h_attach(&m, name);
}

/* The names of directory path, space separated, in the order read. */
static void list(const char *path, char *out, size_t len) {
  ns_dir d[8];
  long n;
  int fd = ns_open(path, NS_OREAD);
  cr_assert_geq(fd, 0, "open %s: %s", path, strerror(-fd));
  out[0] = '\0';
  while ((n = ns_dirread(fd, d, 8)) > 0)
    for (long i = 0; i < n; i++) {
      strncat(out, d[i].name, len - strlen(out) - 2);
      strcat(out, " ");
    }
  cr_assert_eq(n, 0, "dirread %s: %s", path, strerror((int)-n));
  cr_assert_eq(ns_close(fd), 0);
}

Test(ns, root_lists_the_plan9_tree, .timeout = 300) {
  char names[512];
  attach("t-root");
  list("/", names, sizeof names);
  cr_assert_str_eq(names, "bin dev env fd mnt n net proc srv tmp ");
  ns_dir d;
  cr_assert_eq(ns_stat("/dev", &d), 0);
  cr_assert_str_eq(d.name, "dev");
  cr_assert(d.mode & NS_DMDIR);
  h_halt_clean(&m);
}

Test(ns, chdir_and_fd2path_give_cleaned_names, .timeout = 300) {
  char buf[300];
  attach("t-cwd");
  cr_assert_eq(ns_chdir("/n/../mnt"), 0);
  int fd = ns_open(".", NS_OREAD);
  cr_assert_geq(fd, 0);
  cr_assert_eq(ns_fd2path(fd, buf, sizeof buf), 0);
  cr_assert_str_eq(buf, "/mnt");
  int fd2 = ns_dup(fd, -1);
  cr_assert_eq(fd2, fd + 1);
  cr_assert_eq(ns_close(fd), 0);
  cr_assert_eq(ns_close(fd2), 0);
  cr_assert_eq(ns_close(fd2), -EBADF);
  h_halt_clean(&m);
}

Test(ns, bind_and_unmount_change_what_a_path_names, .timeout = 300) {
  char names[512];
  attach("t-bind");
  cr_assert_eq(ns_bind("/", "/tmp", NS_MREPL), 0);
  list("/tmp", names, sizeof names);
  cr_assert_str_eq(names, "bin dev env fd mnt n net proc srv tmp ");
  cr_assert_eq(ns_unmount(NULL, "/tmp"), 0);
  list("/tmp", names, sizeof names);
  cr_assert_str_eq(names, "");
  cr_assert_eq(ns_unmount(NULL, "/tmp"), -EINVAL); /* not a mount point */
  h_halt_clean(&m);
}

Test(ns, bad_paths_get_clear_errors, .timeout = 300) {
  char longp[400], one[1];
  attach("t-bad");
  memset(longp, 'a', sizeof longp - 1);
  longp[0] = '/';
  longp[sizeof longp - 1] = '\0';
  cr_assert_eq(ns_open("/nope", NS_OREAD), -ENOENT);
  cr_assert_eq(ns_open("", NS_OREAD), -EINVAL);
  cr_assert_eq(ns_open(longp, NS_OREAD), -ENAMETOOLONG);
  cr_assert_eq(ns_bind("/nope", "/n", NS_MREPL), -ENOENT);
  cr_assert_eq(ns_open("/dev", NS_OWRITE), -EISDIR);
  cr_assert_eq(ns_create("/n/x", NS_OWRITE, 0644), -EPERM);
  cr_assert_eq(ns_read(7, one, 1), -EBADF);
  h_halt_clean(&m);
}

static void boot_ramfs(const char *name) {
  h_boot(&m, NULL);
  cr_assert_eq(
      mach_spawn(&m, "ramfs", NULL, 0, "ramfs", MACH_SPAWN_REGISTERED, NULL), 0,
      "start ramfs: %s", m.error);
  h_attach(&m, name);
}

/* Writes s to a new file path, then reads it back whole. */
static void put(const char *path, const char *s) {
  int fd = ns_create(path, NS_ORDWR, 0644);
  cr_assert_geq(fd, 0, "create %s: %s", path, strerror(-fd));
  long w = ns_write(fd, s, strlen(s));
  cr_assert_eq(w, (long)strlen(s), "write %s: %ld %s", path, w,
               w < 0 ? strerror((int)-w) : "");
  cr_assert_eq(ns_close(fd), 0);
}

static void expect(const char *path, const char *s) {
  char buf[256];
  int fd = ns_open(path, NS_OREAD);
  cr_assert_geq(fd, 0, "open %s: %s", path, strerror(-fd));
  long n = ns_read(fd, buf, sizeof buf - 1);
  cr_assert_geq(n, 0, "read %s: %s", path, strerror((int)-n));
  buf[n] = '\0';
  cr_assert_str_eq(buf, s, "%s", path);
  cr_assert_eq(ns_close(fd), 0);
}

Test(ns, a_local_server_mounted_through_srv, .timeout = 300) {
  char names[512];
  boot_ramfs("t-mnt");
  h_mount_srv("ramfs", "/n", NS_MREPL | NS_MCREATE);
  put("/n/hello", "hello, 9P over ICAs\n");
  expect("/n/hello", "hello, 9P over ICAs\n");
  cr_assert_eq(ns_create("/n/d", NS_OREAD, NS_DMDIR | 0755) >= 0, 1);
  put("/n/d/x", "x");
  list("/n", names, sizeof names);
  cr_assert_str_eq(names, "d hello "); /* ramfs lists newest first */
  ns_dir d;
  cr_assert_eq(ns_stat("/n/hello", &d), 0);
  cr_assert_eq(d.length, 20);
  cr_assert_str_eq(d.name, "hello");
  cr_assert_eq(ns_open("/n/nope", NS_OREAD), -ENOENT);
  cr_assert_eq(ns_remove("/n/d/x"), 0);
  cr_assert_eq(ns_open("/n/d/x", NS_OREAD), -ENOENT);
  h_halt_clean(&m);
}

Test(ns, large_io_travels_in_a_data_ica, .timeout = 300) {
  size_t n = 3u << 20;
  char *out = malloc(n), *in = malloc(n);
  for (size_t i = 0; i < n; i++)
    out[i] = (char)(i * 7 + i / 4096);
  boot_ramfs("t-big");
  h_mount_srv("ramfs", "/n", NS_MREPL | NS_MCREATE);
  int fd = ns_create("/n/big", NS_ORDWR, 0644);
  cr_assert_geq(fd, 0);
  cr_assert_eq(ns_write(fd, out, n), (long)n);
  cr_assert_eq(ns_seek(fd, 0, 0), 0);
  long got = ns_read(fd, in, n);
  cr_assert_eq(got, (long)n, "read %ld: %s", got,
               got < 0 ? strerror((int)-got) : "");
  cr_assert(memcmp(in, out, n) == 0, "the 3 MiB came back changed");
  cr_assert_eq(ns_pread(fd, in, 100, n - 50), 50);
  cr_assert(memcmp(in, out + n - 50, 50) == 0);
  cr_assert_eq(ns_close(fd), 0);
  free(out);
  free(in);
  h_halt_clean(&m);
}

Test(ns, union_of_a_servant_and_a_server, .timeout = 300) {
  char names[512];
  boot_ramfs("t-union");
  h_mount_srv("ramfs", "/n", NS_MREPL | NS_MCREATE);
  put("/n/cons", "shadowed by #c's cons");
  put("/n/only", "ramfs's own");
  cr_assert_eq(ns_bind("#c", "/n", NS_MBEFORE), 0);
  list("/n", names, sizeof names);
  cr_assert_str_eq(names, "cons consctl null zero time pid only ");
  expect("/n/only", "ramfs's own");
  cr_assert_eq(ns_unmount("#c", "/n"), 0);
  expect("/n/cons", "shadowed by #c's cons");
  put("/n/new", "created in the member bound with create");
  expect("/n/new", "created in the member bound with create");
  h_halt_clean(&m);
}

/* What the shell and the FUSE view do with a tree: nested directories,
 * appending, listing a subdirectory, renaming in place. */
Test(ns, a_tree_on_a_mounted_server, .timeout = 300) {
  char names[512];
  boot_ramfs("t-tree");
  h_mount_srv("ramfs", "/tmp", NS_MREPL | NS_MCREATE);
  int fd = ns_create("/tmp/a", NS_OREAD, NS_DMDIR | 0755);
  cr_assert_geq(fd, 0, "mkdir a: %s", strerror(-fd));
  cr_assert_eq(ns_close(fd), 0);
  fd = ns_create("/tmp/a/b", NS_OREAD, NS_DMDIR | 0755);
  cr_assert_geq(fd, 0, "mkdir a/b: %s", strerror(-fd));
  cr_assert_eq(ns_close(fd), 0);
  put("/tmp/a/b/f", "hello\n");
  fd = ns_open("/tmp/a/b/f", NS_OWRITE);
  cr_assert_geq(fd, 0, "open a/b/f: %s", strerror(-fd));
  cr_assert_eq(ns_seek(fd, 0, 2), 6);
  cr_assert_eq(ns_write(fd, "more\n", 5), 5);
  cr_assert_eq(ns_close(fd), 0);
  expect("/tmp/a/b/f", "hello\nmore\n");
  put("/tmp/a/t", "");
  list("/tmp/a", names, sizeof names);
  cr_assert_str_eq(names, "t b ");
  ns_dir d;
  ns_dir_keep(&d);
  strcpy(d.name, "u");
  cr_assert_eq(ns_wstat("/tmp/a/t", &d), 0);
  list("/tmp/a", names, sizeof names);
  cr_assert_str_eq(names, "u b ");
  cr_assert_eq(ns_chdir("/tmp/a/b"), 0);
  expect("f", "hello\nmore\n");
  expect("../u", "");
  h_halt_clean(&m);
}

/* Reads 10 bytes at a time from fd into got, n bytes in all. */
static void read_some(int fd, char *got, size_t n) {
  for (size_t at = 0; at < n; at += 10) {
    long r = ns_read(fd, got + at, 10);
    cr_assert_eq(r, 10, "read at %zu: %ld %s", at, r,
                 r < 0 ? strerror((int)-r) : "");
  }
}

static const char text[] = "0123456789abcdefghijABCDEFGHIJklmnopqrstKLMNOPQRST"
                           "uvwxyzUVWX!@#$%^&*()";

/* The file open through the kernel's fid keeps its place and its bytes
 * when ramfs is replaced under it (the fid table is ramfs's state). */
Test(ns, an_open_file_survives_a_ramfs_replacement, .timeout = 300) {
  char got[sizeof text] = {0};
  int proc;
  boot_ramfs("t-repl");
  h_mount_srv("ramfs", "/n", NS_MREPL | NS_MCREATE);
  put("/n/f", text);
  int fd = ns_open("/n/f", NS_OREAD);
  cr_assert_geq(fd, 0);
  read_some(fd, got, 30);
  struct mach_prog np = {.program = "ramfs", .name = "ramfs.new"};
  int64_t id = mach_replace_send(&m, "ramfs", &np, 5000);
  cr_assert_geq(id, 0, "%s", m.error);
  cr_assert_eq(mach_replace_reply(&m, (uint64_t)id, &proc), 0, "replace: %s",
               m.error);
  read_some(fd, got + 30, 40);
  cr_assert_eq(ns_read(fd, got, 10), 0, "the end is where it was");
  cr_assert_str_eq(got, text);
  cr_assert_eq(ns_close(fd), 0);
  h_halt_clean(&m);
}

/* ... and when ramfs crashes holding the kernel's Tread and is restarted
 * (its state is current after every request that changes it). */
Test(ns, an_open_file_survives_a_ramfs_crash, .timeout = 300) {
  char got[sizeof text] = {0};
  int fd, proc;
  h_boot(&m, NULL);
  char *env[] = {"UKSIM_FAULT=crash@request:12"};
  struct mach_prog sp = {.program = "ramfs",
                         .name = "ramfs",
                         .env = env,
                         .nenv = 1,
                         .flags = MACH_SPAWN_REGISTERED,
                         .restart = true};
  cr_assert_eq(mach_spawn_prog(&m, &sp, NULL), 0, "%s", m.error);
  cr_assert_eq(mach_attach(&m, "t-crash", -1, 0, &proc, &fd), 0);
  char v[16];
  snprintf(v, sizeof v, "%d", fd);
  setenv("UKSIM_FD", v, 1);
  h_mount_srv("ramfs", "/n", NS_MREPL | NS_MCREATE);
  put("/n/f", text);
  fd = ns_open("/n/f", NS_OREAD);
  cr_assert_geq(fd, 0);
  read_some(fd, got, 70); /* request 12 is one of these reads */
  cr_assert_str_eq(got, text);
  const struct uk_kdata *kd;
  cr_assert_eq(mach_kdata(&m, &kd, NULL), 0);
  int s = kern_svc_lookup(kd, "ramfs");
  cr_assert_geq(s, 0);
  cr_assert_geq(kd->svc[s].restarts, 1, "ramfs did not crash and restart");
  mach_kdata_unmap(kd);
  cr_assert_eq(ns_close(fd), 0);
  h_halt_clean(&m);
}

/* A free loopback TCP port. */
static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sin;
  bind(fd, (struct sockaddr *)&sin, sizeof sin);
  getsockname(fd, (struct sockaddr *)&sin, &len);
  close(fd);
  return ntohs(sin.sin_port);
}

/* Whether something listens on tcp!127.0.0.1!PORT within 30 s. */
static bool wait_listening(const char *addr) {
  int port = atoi(strrchr(addr, '!') + 1);
  struct sockaddr_in sin = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  for (int i = 0; i < 3000; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int r = connect(fd, (struct sockaddr *)&sin, sizeof sin);
    close(fd);
    if (r == 0)
      return true;
    usleep(10000);
  }
  return false;
}

/* Starts argv (an external 9P server) and mounts addr on /n, retrying
 * while the server comes up. */
static pid_t start_and_mount(char **argv, const char *addr, const char *aname) {
  pid_t pid;
  cr_assert_eq(posix_spawn(&pid, argv[0], NULL, NULL, argv, environ), 0);
  int r = -ECONNREFUSED;
  for (int i = 0; i < 3000 && r == -ECONNREFUSED; i++) { /* 30 s */
    if (i > 0)
      usleep(10000);
    r = ns_mount_addr(addr, "/n", NS_MREPL | NS_MCREATE, aname);
  }
  if (r < 0) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
  }
  cr_assert_eq(r, 0, "mount %s: %s", addr, strerror(-r));
  return pid;
}

static void stop(pid_t pid) {
  kill(pid, SIGTERM);
  waitpid(pid, NULL, 0);
}

/* Fig. 6 (c) on one host: an external server (`uksim 9p serve`, its
 * 9P2000 over TCP) mounted into the namespace. */
Test(ns, an_external_server_over_tcp, .timeout = 300) {
  char addr[64], names[512], uksim[512];
  attach("t-tcp");
  snprintf(addr, sizeof addr, "tcp!127.0.0.1!%d", free_port());
  snprintf(uksim, sizeof uksim, "%s/cli/uksim", getenv("UKSIM_BUILD_ROOT"));
  char *argv[] = {uksim, "9p", "serve", addr, NULL};
  pid_t pid = start_and_mount(argv, addr, "");
  /* ns names the mount by the address the kernel dialed. */
  char me[16] = {0}, nspath[64], ns[2048], line[128];
  int fd = ns_open("/dev/pid", NS_OREAD);
  cr_assert_gt(ns_read(fd, me, sizeof me - 1), 0);
  ns_close(fd);
  snprintf(nspath, sizeof nspath, "/proc/%d/ns", atoi(me));
  fd = ns_open(nspath, NS_OREAD);
  long n = ns_read(fd, ns, sizeof ns - 1);
  cr_assert_gt(n, 0, "%s", nspath);
  ns[n] = '\0';
  ns_close(fd);
  snprintf(line, sizeof line, "mount -c '%s' /n\n", addr);
  cr_assert_not_null(strstr(ns, line), "%s has no '%s': %s", nspath, line, ns);
  put("/n/hello", "over tcp\n");
  expect("/n/hello", "over tcp\n");
  cr_assert_geq(ns_create("/n/d", NS_OREAD, NS_DMDIR | 0755), 0);
  list("/n", names, sizeof names);
  cr_assert(strstr(names, "hello ") && strstr(names, "d "), "%s", names);
  ns_dir d;
  cr_assert_eq(ns_stat("/n/hello", &d), 0);
  cr_assert_eq(d.length, 9);
  cr_assert_eq(ns_remove("/n/hello"), 0);
  cr_assert_eq(ns_open("/n/hello", NS_OREAD), -ENOENT);
  stop(pid);
  /* The server is gone: the mount's operations fail, the kernel lives. */
  cr_assert_lt(ns_create("/n/x", NS_OWRITE, 0644), 0);
  list("/", names, sizeof names);
  h_halt_clean(&m);
}

/* The same with diod (9P2000.L only), serving a host directory. */
Test(ns, diod_mounted_over_tcp, .timeout = 300) {
  char addr[64], listen[64], names[512], dir[] = "/tmp/uksim-diod-XXXXXX";
  if (access("/usr/sbin/diod", X_OK) != 0)
    cr_skip_test("diod is not installed (Debian package diod)");
  cr_assert_not_null(mkdtemp(dir));
  char path[128];
  snprintf(path, sizeof path, "%s/host.txt", dir);
  FILE *f = fopen(path, "w");
  fputs("from the host\n", f);
  fclose(f);
  attach("t-diod");
  int port = free_port();
  snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
  snprintf(addr, sizeof addr, "tcp!127.0.0.1!%d", port);
  char *argv[] = {"/usr/sbin/diod", "-f", "-n", "-l", listen, "-e", dir, "-L",
                  "/dev/null",      NULL};
  pid_t pid = start_and_mount(argv, addr, dir);
  expect("/n/host.txt", "from the host\n");
  put("/n/new.txt", "from uksim\n");
  snprintf(path, sizeof path, "%s/new.txt", dir);
  char buf[64] = {0};
  f = fopen(path, "r");
  cr_assert_not_null(f, "new.txt is not on the host");
  cr_assert_not_null(fgets(buf, sizeof buf, f));
  fclose(f);
  cr_assert_str_eq(buf, "from uksim\n");
  cr_assert_geq(ns_create("/n/sub", NS_OREAD, NS_DMDIR | 0755), 0);
  list("/n", names, sizeof names);
  cr_assert(strstr(names, "host.txt ") && strstr(names, "new.txt ") &&
                strstr(names, "sub "),
            "%s", names);
  ns_dir d;
  cr_assert_eq(ns_stat("/n/new.txt", &d), 0);
  cr_assert_eq(d.length, 11);
  cr_assert_str_eq(d.name, "new.txt");
  cr_assert_eq(ns_remove("/n/new.txt"), 0);
  cr_assert_neq(access(path, F_OK), 0, "new.txt stayed on the host");
  stop(pid);
  h_halt_clean(&m);
  char cmd[96];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  cr_assert_eq(system(cmd), 0);
}

/* A server that answers garbage, or dies, after a good mount: each call
 * on its mount fails with an error, the namespace is as it was, and the
 * kernel serves on (the machine halts with no ICA left, every request
 * answered once). */
static void hostile(const char *mode) {
  char names[512];
  int fd, proc;
  h_boot(&m, NULL);
  char *args[] = {"bad", (char *)mode, "3", "7"};
  cr_assert_eq(
      mach_spawn(&m, "p9_garbage", args, 4, "bad", MACH_SPAWN_REGISTERED, NULL),
      0, "%s", m.error);
  cr_assert_eq(mach_attach(&m, "t-hostile", -1, 0, &proc, &fd), 0);
  char v[16];
  snprintf(v, sizeof v, "%d", fd);
  setenv("UKSIM_FD", v, 1);
  h_mount_srv("bad", "/n", NS_MREPL);
  for (int i = 0; i < 3; i++) {
    cr_assert_lt(ns_open("/n/x", NS_OREAD), 0, "%s: open", mode);
    ns_dir d;
    cr_assert_lt(ns_stat("/n/y", &d), 0, "%s: stat", mode);
    cr_assert_lt(ns_create("/n/z", NS_OWRITE, 0644), 0, "%s: create", mode);
  }
  list("/", names, sizeof names);
  cr_assert_str_eq(names, "bin dev env fd mnt n net proc srv tmp ");
  cr_assert_eq(ns_unmount(NULL, "/n"), 0);
  list("/n", names, sizeof names);
  cr_assert_str_eq(names, "");
  h_halt_clean(&m);
}

Test(ns, a_server_answering_garbage_fails_only_its_calls, .timeout = 300) {
  hostile("garbage");
}
Test(ns, a_server_answering_the_wrong_type, .timeout = 300) {
  hostile("type");
}
Test(ns, a_server_answering_past_its_ica, .timeout = 300) {
  hostile("size");
}
Test(ns, a_server_failing_the_transport, .timeout = 300) {
  hostile("error");
}
Test(ns, a_server_dying_mid_walk, .timeout = 300) {
  hostile("die");
}

/* Mounting what is not a server, and binding onto what is not there. */
Test(ns, mounting_a_non_server_is_refused, .timeout = 300) {
  attach("t-nonsrv");
  int fd = ns_open("/dev/cons", NS_ORDWR);
  cr_assert_geq(fd, 0);
  cr_assert_lt(ns_mount(fd, "/n", NS_MREPL, ""), 0);
  cr_assert_eq(ns_mount(99, "/n", NS_MREPL, ""), -EBADF);
  cr_assert_eq(ns_bind("#c", "/nope", NS_MREPL), -ENOENT);
  cr_assert_eq(ns_bind("/dev/cons", "/n", NS_MREPL), -EINVAL);
  cr_assert_lt(ns_mount_addr("tcp!127.0.0.1!1", "/n", NS_MREPL, ""), 0);
  h_halt_clean(&m);
}

/* #| between two processes sharing a namespace (Plan 9: bind '#|' on a
 * directory both see): a read of the empty pipe is a deferred answer --
 * the reader waits while the kernel serves the writer -- and ends with the
 * bytes; the writer's close is the reader's end of file. */
Test(ns, a_pipe_read_waits_for_the_writer, .timeout = 300) {
  char buf[64], v[16];
  int me, fd, rfd, sync[2];
  h_boot(&m, NULL);
  cr_assert_eq(mach_attach(&m, "reader", -1, 0, &me, &fd), 0);
  cr_assert_eq(pipe(sync), 0);
  /* Fork before this process's first call: libuksim's connection is one
   * per process, and the child must use its own. */
  pid_t c = fork();
  if (c == 0) { /* the writer: a process of the same machine, same ns */
    mach_client w;
    int wfd, wslot;
    if (mach_connect(&w, h_name()) < 0 ||
        mach_attach(&w, "writer", me, 0, &wslot, &wfd) < 0)
      _exit(10);
    snprintf(v, sizeof v, "%d", wfd);
    setenv("UKSIM_FD", v, 1);
    if (ns_bind("#|", "/n", NS_MREPL) < 0 || write(sync[1], "b", 1) != 1)
      _exit(11);
    usleep(300000); /* the reader is waiting in its read by now */
    ns_dir d;
    if (ns_stat("/n/data1", &d) < 0) /* served while the reader waits */
      _exit(12);
    int fd1 = ns_open("/n/data1", NS_OWRITE);
    if (fd1 < 0 || ns_write(fd1, "through the pipe", 16) != 16)
      _exit(13);
    _exit(ns_close(fd1) == 0 ? 0 : 14);
  }
  snprintf(v, sizeof v, "%d", fd);
  setenv("UKSIM_FD", v, 1);
  cr_assert_eq(read(sync[0], buf, 1), 1, "the writer did not bind");
  rfd = ns_open("/n/data", NS_OREAD);
  cr_assert_geq(rfd, 0, "open /n/data: %s", strerror(-rfd));
  uint64_t t0 = stats_ms();
  long n = ns_read(rfd, buf, sizeof buf);
  cr_assert_eq(n, 16, "read: %ld", n);
  cr_assert_geq(stats_ms() - t0, 150, "the read did not wait for the writer");
  cr_assert_eq(memcmp(buf, "through the pipe", 16), 0);
  int st;
  cr_assert_eq(waitpid(c, &st, 0), c);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer: %d", st);
  cr_assert_eq(ns_read(rfd, buf, sizeof buf), 0, "end of file");
  cr_assert_eq(ns_close(rfd), 0);
  h_halt_clean(&m);
}

/* Fig. 6 (b) twice: a union of two servers, ramfs and a second ramfs
 * (another service), on one directory: each one's files show, a name in
 * both shows the first's, and a create goes to the one mounted with -c. */
Test(ns, a_union_of_two_servers, .timeout = 300) {
  char names[512];
  boot_ramfs("t-2srv");
  char *args[] = {"--name", "ramfs2"};
  cr_assert_eq(
      mach_spawn(&m, "ramfs", args, 2, "ramfs2", MACH_SPAWN_REGISTERED, NULL),
      0, "%s", m.error);
  h_mount_srv("ramfs", "/n", NS_MREPL | NS_MCREATE);
  put("/n/a", "first's a");
  put("/n/both", "first's both");
  cr_assert_eq(ns_bind("/", "/mnt", NS_MREPL), 0); /* somewhere to stand */
  h_mount_srv("ramfs2", "/tmp", NS_MREPL | NS_MCREATE);
  put("/tmp/b", "second's b");
  put("/tmp/both", "second's both");
  cr_assert_eq(ns_unmount(NULL, "/tmp"), 0);
  h_mount_srv("ramfs2", "/n", NS_MAFTER);
  list("/n", names, sizeof names);
  cr_assert_str_eq(names, "both a b ", "%s", names);
  expect("/n/a", "first's a");
  expect("/n/b", "second's b");
  expect("/n/both", "first's both");
  put("/n/new", "created in the first");
  cr_assert_eq(ns_unmount(NULL, "/n"), 0);
  h_mount_srv("ramfs", "/n", NS_MREPL);
  expect("/n/new", "created in the first");
  h_halt_clean(&m);
}

/* uksim spawn starts a server in a running machine: it posts itself. */
Test(ns, uksim_spawn_starts_a_server, .timeout = 300) {
  char cmd[512], names[512];
  attach("t-spawn");
  const char *uksim = getenv("UKSIM_BUILD_ROOT");
  snprintf(cmd, sizeof cmd,
           "%s/cli/uksim spawn --name %s --server ramfs -- --name ramfs3 "
           ">/dev/null",
           uksim, h_name());
  cr_assert_eq(system(cmd), 0, "%s", cmd);
  snprintf(cmd, sizeof cmd,
           "%s/cli/uksim spawn --name %s no-such-program 2>/dev/null", uksim,
           h_name());
  int st = system(cmd);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "a missing program: %d", st);
  h_mount_srv("ramfs3", "/n", NS_MREPL | NS_MCREATE);
  put("/n/x", "spawned");
  list("/n", names, sizeof names);
  cr_assert_str_eq(names, "x ");
  h_halt_clean(&m);
}

/* The shell mounts an external server by its dial string. */
Test(ns, the_shell_mounts_by_address, .timeout = 300) {
  char addr[64], cmd[512], out[256] = {0};
  h_boot(&m, NULL);
  const char *root = getenv("UKSIM_BUILD_ROOT");
  snprintf(addr, sizeof addr, "tcp!127.0.0.1!%d", free_port());
  char uksim[256];
  snprintf(uksim, sizeof uksim, "%s/cli/uksim", root);
  char *argv[] = {uksim, "9p", "serve", addr, NULL};
  pid_t pid;
  cr_assert_eq(posix_spawn(&pid, uksim, NULL, NULL, argv, environ), 0);
  snprintf(cmd, sizeof cmd,
           "%s sh --name %s -c 'mount -c %s /n; echo hi > /n/f; cat /n/f' "
           "2>&1",
           uksim, h_name(), addr);
  cr_assert(wait_listening(addr), "%s never listened", addr);
  FILE *p = popen(cmd, "r");
  size_t n = fread(out, 1, sizeof out - 1, p);
  out[n] = '\0';
  pclose(p);
  cr_assert_str_eq(out, "hi\n");
  stop(pid);
  h_halt_clean(&m);
}
