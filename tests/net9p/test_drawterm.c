/*
 * test_drawterm.c: classic 9P2000 against Plan 9's own code.
 *
 * drawterm (Debian package drawterm-9front) carries a small Plan 9
 * kernel.  Its mount driver, devmnt.c, is a 9P2000 client, and exportfs,
 * which serves the terminal's name space to a cpu server, is a 9P2000
 * server.  Both are the code Plan 9 itself runs, written apart from ours.
 *
 * The test plays the two services drawterm dials:
 *  - Its factotum.  drawterm mounts $NAMESPACE/factotum on /mnt/factotum
 *    with devmnt.  Here that is our server: a memfs whose file `rpc`
 *    answers factotum's protocol (start -> ok, read -> done, authinfo ->
 *    an identity).  So Plan 9's mount driver is a client of our server.
 *  - A cpu server on the old protocol (drawterm -O, "ncpu"), encryption
 *    off (-e clear).  Once factotum says the authentication is done,
 *    drawterm sends its working directory; we answer "FS" and "/", it
 *    says "OK" and runs exportfs on the connection.  Our client then
 *    speaks 9P2000 to exportfs.
 * Our client is thus checked against Plan 9's server (host files, which
 * drawterm -r DIR exports at the root), and our server against Plan 9's
 * client (paths under mnt/factotum: exportfs reaches them through devmnt,
 * which sends the 9P to us).
 *
 * Not checked here: authentication.  This factotum proves nothing; Plan
 * 9's p9sk1 and dp9ik need an auth server.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <uksim/9p.h>

#include "bgsrv.h"

#define DRAWTERM "/usr/bin/drawterm"
#define USER "glenda" /* drawterm's user */
#define ME "uksim"    /* our clients' */

/* --- the factotum: memfs with an rpc file ------------------------------- */

static struct p9_srv_ops fact_ops;
/* Set and read by the test's thread and the server's: atomic. */
static _Atomic uint64_t rpc_path; /* qid path of /rpc */
static char rpc_out[128];         /* what the next read of rpc returns */
static size_t rpc_nout;
static _Atomic unsigned rpc_verbs; /* verbs drawterm sent */

static void rpc_set(const char *s, size_t n) {
  memcpy(rpc_out, s, n);
  rpc_nout = n;
}

/* auth_getinfo's layout: cuid, suid, cap as s[2], then the secret n[2]. */
static void rpc_authinfo(void) {
  static const char ai[] = "ok "
                           "\x06\x00" USER "\x06\x00" USER "\x00\x00"
                           "\x08\x00"
                           "\x00\x00\x00\x00\x00\x00\x00\x00";
  rpc_set(ai, sizeof(ai) - 1);
}

static int verb_is(const p9_fcall *f, const char *v) {
  size_t n = strlen(v);
  return f->count >= n && memcmp(f->data, v, n) == 0 &&
         (f->count == n || f->data[n] == ' ');
}

static void fact_write(p9_req *r) {
  const p9_fcall *f = &r->ifcall;
  if (r->fid->qid.path != rpc_path) {
    p9_memfs_ops()->write(r);
    return;
  }
  rpc_verbs++;
  if (verb_is(f, "start"))
    rpc_set("ok", 2);
  else if (verb_is(f, "read"))
    rpc_set("done", 4);
  else if (verb_is(f, "authinfo"))
    rpc_authinfo();
  else
    rpc_set("error unknown verb", 18);
  r->ofcall.count = f->count;
  p9_respond(r, 0);
}

static void fact_read(p9_req *r) {
  size_t n = rpc_nout;
  if (r->fid->qid.path != rpc_path) {
    p9_memfs_ops()->read(r);
    return;
  }
  if (n > r->ifcall.count)
    n = r->ifcall.count;
  memcpy(r->buf, rpc_out, n);
  r->ofcall.count = (uint32_t)n;
  p9_respond(r, 0);
}

/* --- one drawterm session ------------------------------------------------ */

typedef struct session {
  char dir[64];  /* private temporary directory (0700) */
  char root[96]; /* what drawterm -r exports at its root */
  char log[96];  /* drawterm's output */
  bgsrv fact;    /* our server, drawterm's factotum */
  FILE *trace;   /* its trace */
  pid_t pid;     /* drawterm */
  p9_client *c;  /* our client, speaking to exportfs */
  p9_cfid *top;  /* drawterm's root */
} session;

static void need_drawterm(void) {
  if (access(DRAWTERM, X_OK) != 0)
    cr_skip_test("drawterm is not installed (Debian package "
                 "drawterm-9front): Plan 9 interoperability not checked");
}

static const char *dt_output(session *s) {
  static char out[2048];
  int fd = open(s->log, O_RDONLY);
  ssize_t n = fd < 0 ? 0 : read(fd, out, sizeof(out) - 1);
  out[n > 0 ? n : 0] = 0;
  if (fd >= 0)
    close(fd);
  return out;
}

/* Creates path (a name, or dir/name) under f with data, through 9P. */
static void put(p9_cfid *f, const char *path, const void *data, size_t n) {
  char dir[128];
  const char *slash = strrchr(path, '/');
  int err;
  snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) : 0, path);
  p9_cfid *g = p9_walk(f, dir, &err);
  cr_assert_not_null(g, "walk %s", dir);
  cr_assert_eq(p9_create(g, slash ? slash + 1 : path, 0644, P9_OWRITE), 0,
               "create %s: %s", path, p9_client_errstr(f->c));
  cr_assert_eq(p9_pwrite(g, data, n, 0), (long)n);
  p9_clunk(g);
}

/* The factotum on unix!DIR/ns/factotum, and the qid of its rpc file. */
static void fact_start(session *s) {
  char addr[128];
  int err;
  p9_client *c;
  p9_cfid *root, *f;
  fact_ops = *p9_memfs_ops();
  fact_ops.read = fact_read;
  fact_ops.write = fact_write;
  s->trace = tmpfile();
  snprintf(addr, sizeof(addr), "unix!%s/ns/factotum", s->dir);
  cr_assert_eq(bg_start_ops(&s->fact, addr,
                            &(p9_srv_config){.log = s->trace, .trace = 1},
                            &fact_ops),
               0);
  c = p9_client_dial(addr, 0, "9P2000", &err);
  cr_assert_not_null(c, "dial our factotum: %s", strerror(-err));
  root = p9_attach(c, ME, "", NULL, &err);
  cr_assert_not_null(root);
  put(root, "ctl", "", 0);
  put(root, "rpc", "", 0);
  f = p9_walk(root, "rpc", &err);
  cr_assert_not_null(f);
  rpc_path = f->qid.path;
  p9_clunk(f);
  p9_clunk(root);
  p9_client_close(c);
}

static int listen_loopback(int *port) {
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(sa);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cr_assert(fd >= 0);
  cr_assert_eq(bind(fd, (struct sockaddr *)&sa, len), 0);
  cr_assert_eq(listen(fd, 1), 0);
  getsockname(fd, (struct sockaddr *)&sa, &len);
  *port = ntohs(sa.sin_port);
  return fd;
}

/* drawterm, killed with us if a failed assertion ends the test early. */
static pid_t dt_spawn(session *s, int port) {
  char host[64], ns[96];
  char *envp[] = {ns, "USER=" USER, "PATH=/usr/bin:/bin", NULL};
  char *argv[] = {
      DRAWTERM, "-G",                /* no graphics */
      "-O",                          /* the old cpu protocol */
      "-e",     "clear",             /* no encryption once authenticated */
      "-h",     host,    "-a", host, /* the auth server is not dialled */
      "-u",     USER,    "-r", s->root, NULL};
  pid_t pid;
  int fd;
  snprintf(host, sizeof(host), "tcp!127.0.0.1!%d", port);
  snprintf(ns, sizeof(ns), "NAMESPACE=%s/ns", s->dir);
  fflush(NULL);
  if ((pid = fork()) == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    fd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    dup2(open("/dev/null", O_RDONLY | O_CLOEXEC), 0);
    dup2(fd, 1);
    dup2(fd, 2);
    execve(DRAWTERM, argv, envp);
    _exit(127);
  }
  cr_assert(pid > 0);
  return pid;
}

/* Reads one NUL-terminated string of the cpu protocol. */
static int read_str(int fd, char *buf, size_t cap) {
  for (size_t i = 0; i < cap; i++) {
    if (read(fd, &buf[i], 1) != 1)
      return -1;
    if (buf[i] == 0)
      return 0;
  }
  return -1;
}

/* The server side of drawterm's ncpu() up to the start of exportfs. */
static int cpu_handshake(session *s, int lfd) {
  struct pollfd p = {.fd = lfd, .events = POLLIN};
  struct timeval tv = {.tv_sec = 20};
  char buf[256];
  int fd, one = 1;
  cr_assert_eq(poll(&p, 1, 20000), 1, "drawterm did not dial: %s",
               dt_output(s));
  fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  cr_assert(fd >= 0);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  cr_assert_eq(read_str(fd, buf, sizeof(buf)), 0);
  cr_assert_str_eq(buf, "p9", "auth method: want p9 with no encryption");
  cr_assert_eq(write(fd, "", 1), 1);
  cr_assert_eq(read_str(fd, buf, sizeof(buf)), 0,
               "no working directory from drawterm (factotum exchange "
               "failed?): %s",
               dt_output(s));
  cr_assert_eq(write(fd, "FS", 3), 3);
  cr_assert_eq(write(fd, "/", 2), 2);
  cr_assert_eq(read(fd, buf, 2), 2);
  cr_assert(memcmp(buf, "OK", 2) == 0);
  tv.tv_sec = 0;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

static void session_start(session *s) {
  int lfd, port, err, fd;
  need_drawterm();
  memset(s, 0, sizeof(*s));
  snprintf(s->dir, sizeof(s->dir), "/tmp/uksim-dt.XXXXXX");
  cr_assert_not_null(mkdtemp(s->dir));
  snprintf(s->root, sizeof(s->root), "%s/root", s->dir);
  snprintf(s->log, sizeof(s->log), "%s/drawterm.log", s->dir);
  cr_assert_eq(mkdir(s->root, 0755), 0);
  fact_start(s);
  lfd = listen_loopback(&port);
  s->pid = dt_spawn(s, port);
  fd = cpu_handshake(s, lfd);
  close(lfd);
  s->c = p9_client_fdopen(fd, 65536, "9P2000", &err);
  cr_assert_not_null(s->c, "Tversion to exportfs: %s", strerror(-err));
  s->top = p9_attach(s->c, USER, "", NULL, &err);
  cr_assert_not_null(s->top, "Tattach to exportfs: %s", p9_client_errstr(s->c));
}

static void session_stop(session *s) {
  char out[64];
  int st;
  p9_clunk(s->top);
  p9_client_close(s->c);
  kill(s->pid, SIGKILL);
  waitpid(s->pid, &st, 0);
  bg_stop(&s->fact);
  fclose(s->trace);
  sh(out, sizeof(out), "rm -rf '%s'", s->dir);
}

/* --- helpers --------------------------------------------------------- */

/* DIR/root/name (in a static buffer). */
static const char *host_path(session *s, const char *name) {
  static char path[256];
  snprintf(path, sizeof(path), "%s/%s", s->root, name);
  return path;
}

static int host_is_dir(session *s, const char *name) {
  struct stat st;
  return stat(host_path(s, name), &st) == 0 && S_ISDIR(st.st_mode);
}

static void host_put(session *s, const char *name, const void *d, size_t n) {
  FILE *f;
  cr_assert_not_null(f = fopen(host_path(s, name), "w"));
  cr_assert_eq(fwrite(d, 1, n, f), n);
  fclose(f);
}

/* A host file's bytes (malloc'd), or NULL if it does not exist. */
static uint8_t *host_get(session *s, const char *name, size_t *n) {
  struct stat st;
  uint8_t *buf;
  int fd;
  if ((fd = open(host_path(s, name), O_RDONLY)) < 0)
    return NULL;
  fstat(fd, &st);
  buf = malloc((size_t)st.st_size + 1);
  *n = (size_t)read(fd, buf, (size_t)st.st_size);
  close(fd);
  return buf;
}

static void fill(uint8_t *b, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++)
    b[i] = (uint8_t)((i * 2654435761u + seed) >> 13);
}

/* Opens path (from f) with mode; the open fid. */
static p9_cfid *open_at(p9_cfid *f, const char *path, uint8_t mode) {
  int err;
  p9_cfid *g = p9_walk(f, path, &err);
  cr_assert_not_null(g, "walk %s: %s", path, p9_client_errstr(f->c));
  cr_assert_eq(p9_open(g, mode), 0, "open %s: %s", path,
               p9_client_errstr(f->c));
  return g;
}

static long read_file(p9_cfid *f, const char *path, void *buf, size_t n) {
  p9_cfid *g = open_at(f, path, P9_OREAD);
  long k = p9_pread(g, buf, n, 0);
  p9_clunk(g);
  return k;
}

struct listing {
  char names[256][256];
  uint64_t len[256];
  uint32_t mode[256];
  int n;
};

static int note(const p9_dir *d, void *arg) {
  struct listing *l = arg;
  if (l->n < 256) {
    snprintf(l->names[l->n], sizeof(l->names[0]), "%s", d->name);
    l->len[l->n] = d->length;
    l->mode[l->n++] = d->mode;
  }
  return 0;
}

static int find(const struct listing *l, const char *name) {
  for (int i = 0; i < l->n; i++)
    if (strcmp(l->names[i], name) == 0)
      return i;
  return -1;
}

static void list(p9_cfid *f, const char *path, struct listing *l) {
  p9_cfid *g = open_at(f, path, P9_OREAD);
  memset(l, 0, sizeof(*l));
  cr_assert_eq(p9_readdir(g, note, l), 0, "read directory %s", path);
  p9_clunk(g);
}

/* --- our client against Plan 9's exportfs ------------------------------ */

Test(drawterm, our_client_against_exportfs, .timeout = 120) {
  static uint8_t big[3 << 20], back[3 << 20];
  static const char hello[] = "hello from the host\n";
  session s;
  struct listing l;
  p9_dir d;
  p9_cfid *f;
  p9_fcall tx, rx;
  uint8_t *got;
  size_t n;
  int i, err;
  session_start(&s);
  cr_assert_eq(p9_client_dialect(s.c), P9_2000, "exportfs speaks 9P2000");
  fill(big, sizeof(big), 7);
  host_put(&s, "hello.txt", hello, sizeof(hello) - 1);
  host_put(&s, "big.bin", big, sizeof(big));

  /* The root: drawterm's own directories, then the host's files. */
  list(s.top, "", &l);
  cr_assert((i = find(&l, "hello.txt")) >= 0, "hello.txt not listed");
  cr_assert_eq(l.len[i], sizeof(hello) - 1);
  cr_assert((i = find(&l, "big.bin")) >= 0);
  cr_assert_eq(l.len[i], sizeof(big));
  cr_assert((i = find(&l, "mnt")) >= 0);
  cr_assert(l.mode[i] & P9_DMDIR);

  /* Reads, the large one split by msize. */
  cr_assert_eq(read_file(s.top, "hello.txt", back, sizeof(back)),
               (long)sizeof(hello) - 1);
  cr_assert(memcmp(back, hello, sizeof(hello) - 1) == 0);
  cr_assert_eq(read_file(s.top, "big.bin", back, sizeof(back)),
               (long)sizeof(big));
  cr_assert(memcmp(back, big, sizeof(big)) == 0);
  f = p9_walk(s.top, "hello.txt", &err);
  cr_assert_eq(p9_fstat(f, &d), 0);
  cr_assert_str_eq(d.name, "hello.txt");
  cr_assert_eq(d.length, sizeof(hello) - 1);
  cr_assert_not(d.mode & P9_DMDIR);
  p9_clunk(f);

  /* The root is a union (drawterm binds the host's files after its own
   * without MCREATE): Plan 9 refuses to create there. */
  f = p9_walk(s.top, "", &err);
  cr_assert_neq(p9_create(f, "made.bin", 0644, P9_OWRITE), 0);
  cr_assert(strstr(p9_client_errstr(s.c), "mounted directory forbids creation"),
            "%s", p9_client_errstr(s.c));
  p9_clunk(f);

  /* In a plain directory: create and write, truncate with wstat, remove. */
  cr_assert_eq(mkdir(host_path(&s, "w"), 0755), 0);
  f = p9_walk(s.top, "w", &err);
  cr_assert_eq(p9_create(f, "made.bin", 0644, P9_OWRITE), 0, "create: %s",
               p9_client_errstr(s.c));
  cr_assert_eq(p9_pwrite(f, big, 200000, 0), 200000);
  p9_clunk(f);
  cr_assert_not_null(got = host_get(&s, "w/made.bin", &n));
  cr_assert_eq(n, 200000);
  cr_assert(memcmp(got, big, n) == 0);
  free(got);
  f = p9_walk(s.top, "w/made.bin", &err);
  cr_assert_eq(p9_fwstat(f, 1000, ~0u), 0, "wstat: %s", p9_client_errstr(s.c));
  cr_assert_not_null(got = host_get(&s, "w/made.bin", &n));
  cr_assert_eq(n, 1000);
  free(got);
  cr_assert_eq(p9_remove(f), 0);
  cr_assert_null(host_get(&s, "w/made.bin", &n));
  cr_assert_eq(p9_mkdir(s.top, "w/sub", 0755), 0);
  cr_assert(host_is_dir(&s, "w/sub"));
  list(s.top, "w/sub", &l);
  cr_assert_eq(l.n, 0);

  /* Errors: a missing name, and Tauth on a server without auth. */
  cr_assert_null(p9_walk(s.top, "no/such/file", &err));
  cr_assert(err < 0);
  cr_assert_neq(p9_client_errstr(s.c)[0], 0);
  tx = (p9_fcall){.type = P9_TAUTH, .afid = 99};
  tx.uname = p9_str_c(USER);
  tx.aname = p9_str_c("");
  cr_assert(p9_client_rpc(s.c, &tx, &rx) < 0, "Tauth must be refused");
  cr_assert_eq(rx.type, P9_RERROR);
  session_stop(&s);
}

/* --- Plan 9's mount driver against our server ------------------------- */

#define VIA "mnt/factotum/" /* exportfs -> devmnt -> our server */

Test(drawterm, devmnt_against_our_server, .timeout = 120) {
  static uint8_t big[300000], back[300000];
  session s;
  struct listing l;
  p9_client *me;
  p9_cfid *mine, *f, *g;
  p9_dir d;
  char name[32], line[512];
  int err, i, attaches = 0, dotl = 0;
  session_start(&s);
  cr_assert_geq(rpc_verbs, 3,
                "drawterm's factotum exchange went through "
                "devmnt (start, read, authinfo)");
  me = p9_client_dial(s.fact.addr, 0, "9P2000", &err);
  mine = p9_attach(me, ME, "", NULL, &err);
  cr_assert_not_null(mine);
  fill(big, sizeof(big), 3);

  /* Written by us, read by Plan 9. */
  put(mine, "seed.bin", big, sizeof(big));
  cr_assert_eq(read_file(s.top, VIA "seed.bin", back, sizeof(back)),
               (long)sizeof(big));
  cr_assert(memcmp(back, big, sizeof(big)) == 0);

  /* Written by Plan 9 (devmnt splits it into Twrites), read by us.  The
   * mount point itself is mounted without MCREATE: create below it. */
  cr_assert_eq(p9_mkdir(mine, "w", 0755), 0);
  f = p9_walk(s.top, VIA "w", &err);
  cr_assert_eq(p9_create(f, "new.bin", 0644, P9_OWRITE), 0, "create: %s",
               p9_client_errstr(s.c));
  cr_assert_eq(p9_pwrite(f, big, sizeof(big), 0), (long)sizeof(big));
  p9_clunk(f);
  memset(back, 0, sizeof(back));
  cr_assert_eq(read_file(mine, "w/new.bin", back, sizeof(back)),
               (long)sizeof(big));
  cr_assert(memcmp(back, big, sizeof(big)) == 0);

  /* wstat and mkdir through devmnt. */
  f = p9_walk(s.top, VIA "w/new.bin", &err);
  cr_assert_eq(p9_fwstat(f, 5, ~0u), 0, "wstat: %s", p9_client_errstr(s.c));
  p9_clunk(f);
  f = p9_walk(mine, "w/new.bin", &err);
  cr_assert_eq(p9_fstat(f, &d), 0);
  cr_assert_eq(d.length, 5);
  p9_clunk(f);
  cr_assert_eq(p9_mkdir(s.top, VIA "w/d2", 0755), 0, "mkdir: %s",
               p9_client_errstr(s.c));
  f = p9_walk(mine, "w/d2", &err);
  cr_assert_not_null(f);
  cr_assert(f->qid.type & P9_QTDIR);
  p9_clunk(f);

  /* 200 entries (~18 KB): devmnt reads the directory at successive
   * offsets, 8 KiB at a time. */
  cr_assert_eq(p9_mkdir(mine, "d", 0755), 0);
  for (i = 0; i < 200; i++) {
    snprintf(name, sizeof(name), "d/entry-with-a-long-name-%03d", i);
    put(mine, name, name, strlen(name));
  }
  list(s.top, VIA "d", &l);
  cr_assert_eq(l.n, 200);
  for (i = 0; i < 200; i++) {
    snprintf(name, sizeof(name), "entry-with-a-long-name-%03d", i);
    cr_assert(find(&l, name) >= 0, "%s missing", name);
  }

  /* ORCLOSE: the file goes when Plan 9 clunks the fid. */
  put(mine, "tmp.txt", "x", 1);
  f = open_at(s.top, VIA "tmp.txt", P9_OREAD | P9_ORCLOSE);
  cr_assert_not_null(g = p9_walk(mine, "tmp.txt", &err));
  p9_clunk(g);
  p9_clunk(f);
  cr_assert_null(p9_walk(mine, "tmp.txt", &err), "ORCLOSE file left");

  /* Remove, and an error string crossing both hops. */
  f = p9_walk(s.top, VIA "w/new.bin", &err);
  cr_assert_eq(p9_remove(f), 0);
  cr_assert_null(p9_walk(mine, "w/new.bin", &err));
  cr_assert_null(p9_walk(s.top, VIA "absent", &err));
  cr_assert_str_eq(p9_client_errstr(s.c), "file does not exist");
  p9_clunk(mine);
  p9_client_close(me);

  /* What devmnt spoke (its attaches name the host user drawterm runs
   * as, ours name ME): classic 9P2000, never 9P2000.L. */
  rewind(s.trace);
  while (fgets(line, sizeof(line), s.trace)) {
    attaches += strstr(line, "Tattach") && !strstr(line, "'" ME "'");
    dotl += strstr(line, "9P2000.L") != NULL;
  }
  if (attaches < 1 || getenv("DT_TRACE")) {
    rewind(s.trace);
    while (fgets(line, sizeof(line), s.trace))
      fputs(line, stderr);
  }
  cr_assert_geq(attaches, 1, "no Tattach from drawterm's devmnt");
  cr_assert_eq(dotl, 0);
  session_stop(&s);
}
