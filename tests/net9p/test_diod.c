/*
 * test_diod.c: interoperability with diod, an independent 9P2000.L
 * implementation.  diod's client tools (diodls, diodcat, diodload) run
 * against our server; our client runs against a real diod exporting a
 * temporary directory.  Each test starts and stops what it needs (diod in
 * the foreground, no auth, on a free loopback port) and skips with a
 * message when diod is not installed.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <uksim/9p.h>

#include "bgsrv.h"

#define DIOD "/usr/sbin/diod"

extern char **environ;

static void need_diod(void) {
  if (access(DIOD, X_OK) != 0)
    cr_skip_test("diod is not installed (Debian package diod): "
                 "interoperability not checked");
}

static void put(p9_cfid *root, const char *name, const void *data, size_t n) {
  int err;
  p9_cfid *f = p9_walk(root, "", &err);
  cr_assert_not_null(f);
  cr_assert_eq(p9_create(f, name, 0644, P9_OWRITE), 0);
  cr_assert_eq(p9_pwrite(f, data, n, 0), (long)n);
  p9_clunk(f);
}

Test(diod, diod_tools_against_our_server, .timeout = 120) {
  bgsrv b;
  p9_client *c;
  p9_cfid *root;
  char hp[300], out[8192];
  static uint8_t zero[65536];
  int err;
  need_diod();
  cr_assert_eq(bg_start(&b, "tcp!127.0.0.1!0", NULL), 0);
  bg_hostport(&b, hp, sizeof(hp));
  c = p9_client_dial(b.addr, 0, "9P2000.L", &err);
  root = p9_attach(c, NULL, "", NULL, &err);
  cr_assert_not_null(root);
  cr_assert_eq(p9_mkdir(root, "sub", 0755), 0);
  put(root, "hello", "hello diod\n", 11);
  put(root, "zero", zero, sizeof(zero)); /* what diodload reads */
  put(root, "null", "", 0);              /* and writes */
  p9_clunk(root);
  p9_client_close(c);

  cr_assert_eq(sh(out, sizeof(out), "/usr/sbin/diodls -t 20 -s %s -a /", hp),
               0);
  cr_assert(strstr(out, "hello\n") && strstr(out, "sub\n") &&
                strstr(out, "zero\n"),
            "diodls printed: %s", out);
  cr_assert_eq(
      sh(out, sizeof(out), "/usr/sbin/diodls -t 20 -l -s %s -a / sub", hp), 0);
  cr_assert_eq(sh(out, sizeof(out), "/usr/sbin/diodls -t 20 -l -s %s -a /", hp),
               0);
  cr_assert(strstr(out, " 11 ") && strstr(out, "hello"), "diodls -l: %s", out);
  cr_assert(strstr(out, "drwxr-xr-x"), "diodls -l: %s", out);
  cr_assert_eq(
      sh(out, sizeof(out), "/usr/sbin/diodcat -t 20 -s %s -a / hello", hp), 0);
  cr_assert_str_eq(out, "hello diod\n");
  cr_assert_neq(
      sh(out, sizeof(out), "/usr/sbin/diodcat -t 20 -s %s -a / nope 2>&1", hp),
      0);
  cr_assert_eq(
      sh(out, sizeof(out), "/usr/sbin/diodload -s %s -r 1 -n 4 2>&1", hp), 0);
  cr_assert(strstr(out, "ops/s") && atol(strstr(out, ": ") + 2) > 0,
            "diodload: %s", out);
  bg_stop(&b);
}

/* --- our client against diod ------------------------------------------ */

static int free_port(void) {
  struct sockaddr_in sin = {.sin_family = AF_INET};
  socklen_t len = sizeof(sin);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
  cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
  getsockname(fd, (struct sockaddr *)&sin, &len);
  close(fd);
  return ntohs(sin.sin_port);
}

/* Starts diod exporting dir; returns its pid and a connected client. */
static pid_t start_diod(const char *dir, char *addr, size_t cap,
                        p9_client **cp) {
  char listen[64], uid[16];
  char *argv[16] = {DIOD, "-f",        "-n", "-l",       listen,
                    "-e", (char *)dir, "-L", "/dev/null"};
  int argc = 9, port = free_port(), err = 0;
  pid_t pid;
  snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
  if (geteuid() != 0) { /* an unprivileged diod serves only its own uid */
    snprintf(uid, sizeof(uid), "%u", (unsigned)geteuid());
    argv[argc++] = "-u";
    argv[argc++] = uid;
  }
  cr_assert_eq(posix_spawn(&pid, DIOD, NULL, NULL, argv, environ), 0);
  snprintf(addr, cap, "tcp!127.0.0.1!%d", port);
  for (int i = 0; i < 200; i++) {
    if ((*cp = p9_client_dial(addr, 65536, "9P2000.L", &err)))
      return pid;
    usleep(25000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  cr_assert_fail("diod did not come up on %s: %s", addr, p9_strerror(err));
  return -1;
}

static void stop_diod(pid_t pid) {
  int st;
  kill(pid, SIGTERM);
  cr_assert_eq(waitpid(pid, &st, 0), pid);
}

static int collect(const p9_dir *d, void *arg) {
  strcat(arg, d->name);
  strcat(arg, (d->mode & P9_DMDIR) ? "/ " : " ");
  return 0;
}

static void slurp(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "r");
  size_t n;
  cr_assert_not_null(f, "%s", path);
  n = fread(buf, 1, cap - 1, f);
  buf[n] = 0;
  fclose(f);
}

Test(diod, our_client_against_diod, .timeout = 120) {
  char dir[] = "/tmp/uksim-diod.XXXXXX", path[256], addr[64], buf[4096];
  char names[1024] = "";
  p9_client *c;
  p9_cfid *root, *f;
  p9_dir st;
  pid_t pid;
  int err;
  need_diod();
  cr_assert_not_null(mkdtemp(dir));
  snprintf(path, sizeof(path), "%s/exported.txt", dir);
  FILE *fp = fopen(path, "w");
  fputs("served by diod\n", fp);
  fclose(fp);
  snprintf(path, sizeof(path), "%s/subdir", dir);
  mkdir(path, 0755);

  pid = start_diod(dir, addr, sizeof(addr), &c);
  cr_assert_eq(p9_client_dialect(c), P9_2000L);
  root = p9_attach(c, NULL, dir, NULL, &err);
  cr_assert_not_null(root, "attach: %s", p9_client_errstr(c));
  /* list */
  f = p9_walk(root, "", &err);
  cr_assert_eq(p9_open(f, P9_OREAD), 0);
  cr_assert_eq(p9_readdir(f, collect, names), 0);
  p9_clunk(f);
  cr_assert(strstr(names, "exported.txt ") && strstr(names, "subdir/ "),
            "listing: %s", names);
  /* read */
  f = p9_walk(root, "exported.txt", &err);
  cr_assert_not_null(f);
  cr_assert_eq(p9_fstat(f, &st), 0);
  cr_assert_eq(st.length, 15);
  cr_assert_eq(p9_open(f, P9_OREAD), 0);
  cr_assert_eq(p9_pread(f, buf, sizeof(buf), 0), 15);
  cr_assert_eq(memcmp(buf, "served by diod\n", 15), 0);
  p9_clunk(f);
  /* write a new file, overwrite it, make a directory, remove */
  f = p9_walk(root, "subdir", &err);
  cr_assert_eq(p9_create(f, "new.txt", 0644, P9_OWRITE), 0);
  cr_assert_eq(p9_pwrite(f, "written by uksim\n", 17, 0), 17);
  p9_clunk(f);
  snprintf(path, sizeof(path), "%s/subdir/new.txt", dir);
  slurp(path, buf, sizeof(buf));
  cr_assert_str_eq(buf, "written by uksim\n");
  f = p9_walk(root, "subdir/new.txt", &err);
  cr_assert_eq(p9_open(f, P9_OWRITE | P9_OTRUNC), 0);
  cr_assert_eq(p9_pwrite(f, "short\n", 6, 0), 6);
  p9_clunk(f);
  slurp(path, buf, sizeof(buf));
  cr_assert_str_eq(buf, "short\n");
  cr_assert_eq(p9_mkdir(root, "made", 0750), 0);
  snprintf(path, sizeof(path), "%s/made", dir);
  struct stat sb;
  cr_assert_eq(stat(path, &sb), 0);
  cr_assert(S_ISDIR(sb.st_mode));
  f = p9_walk(root, "made", &err);
  cr_assert_eq(p9_remove(f), 0);
  cr_assert_neq(stat(path, &sb), 0);
  cr_assert_null(p9_walk(root, "no/such", &err));
  cr_assert_eq(err, -ENOENT);
  p9_clunk(root);
  p9_client_close(c);
  stop_diod(pid);
  snprintf(path, sizeof(path), "rm -rf '%s'", dir);
  cr_assert_eq(system(path), 0);
}

Test(diod, benchmark_reports_both_servers, .timeout = 120) {
  const char *tool = getenv("UKSIM_9P");
  char out[4096];
  if (!tool)
    cr_skip_test("UKSIM_9P not set (run through meson test)");
  need_diod();
  cr_assert_eq(sh(out, sizeof(out),
                  "%s bench 9p --json --large-mib 4 --seconds 0.2 --rounds 3 "
                  "--poll-us 50",
                  tool),
               0);
  const char *keys[] = {
      "\"small_ops_per_s\": ",      "\"large_read_mb_s\": ",
      "\"diod_small_ops_per_s\": ", "\"diod_large_read_mb_s\": ",
      "\"small_ratio_p10\": ",      "\"small_ratio_p50\": ",
      "\"large_ratio_p90\": ",      "\"memfs_small_ops_per_s\": ",
      "\"memfs_large_read_mb_s\": "};
  const char *pinned = strstr(out, "\"pinned\": {");
  cr_assert_not_null(pinned, "no pinned figures in %s", out);
  cr_assert_not_null(strstr(out, "\"rounds\": 3"), "%s", out);
  cr_assert_not_null(strstr(out, "\"poll_us\": 50"), "%s", out);
  cr_assert_not_null(strstr(out, "\"cross_core\": "), "%s", out);
  /* the same keys unpinned (top level, before "pinned") and pinned */
  cr_assert_not_null(strstr(out, "{\"server\": \"hostfs\", "), "%s", out);
  for (int i = 0; i < 9; i++) {
    const char *k = strstr(out, keys[i]), *kp = strstr(pinned, keys[i]);
    cr_assert(k && k < pinned, "no unpinned %s in %s", keys[i], out);
    cr_assert_not_null(kp, "no pinned %s in %s", keys[i], out);
    cr_assert_gt(atof(k + strlen(keys[i])), 0, "%s", out);
    cr_assert_gt(atof(kp + strlen(keys[i])), 0, "%s", out);
  }
  /* the servers' cpu time: a number (0.00 is possible for a 4 MiB read
   * that takes a millisecond), or null if the clock cannot be read */
  const char *cpu[] = {
      "\"small_cpu_us_per_op\": ", "\"large_cpu_s_per_gib\": ",
      "\"diod_small_cpu_us_per_op\": ", "\"diod_large_cpu_s_per_gib\": "};
  for (int i = 0; i < 4; i++) {
    const char *k = strstr(out, cpu[i]), *kp = strstr(pinned, cpu[i]);
    cr_assert(k && k < pinned && kp, "no %s in %s", cpu[i], out);
    k += strlen(cpu[i]);
    cr_assert(strncmp(k, "null", 4) == 0 || (isdigit(*k) && atof(k) >= 0), "%s",
              out);
  }
}
