/*
 * cmd_9p.c: `uksim 9p serve [--dir DIR] ADDR` (an in-memory tree, or a
 * host directory through net9p's hostfs, on the stream transport) and the
 * client tool `uksim 9p ADDR ls|cat|write|stat|mkdir|rm PATH`.  Errors go to
 * stderr prefixed "uksim 9p:"; exit status 0 ok, 1 failure, 2 bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "p9_impl.h"
#include "uksim/num.h"
#include "uksim/xalloc.h"
#include "uksim/uv_check.h"

static const char usage_text[] =
    "usage: uksim 9p serve ADDR [--dir DIR] [--key FILE] [--msize N] "
    "[--poll-us N] [--trace]\n"
    "                [--max-conns N] [--frame-timeout S] "
    "[--max-buffered-mib N]\n"
    "       uksim 9p ADDR [--key FILE] [--aname NAME] [--uname NAME]\n"
    "                [--dialect 9P2000|9P2000.L] [--msize N]\n"
    "                ls|cat|write|stat|mkdir|rm PATH\n"
    "\n"
    "ADDR is a Plan 9 dial string: tcp!HOST!PORT or unix!/path.\n"
    "serve exports an empty in-memory tree, or with --dir the host\n"
    "directory DIR (no path leaves it: '..' stops at it, symbolic links are\n"
    "not followed); it listens on loopback only\n"
    "unless a key file is given (clients then prove the key, see\n"
    "net9p/README.md).  After answering a loopback TCP client on another\n"
    "cpu, serve polls --poll-us microseconds for its next request (default\n"
    "100; 0 never: saves cpu, costs a wake-up per message).\n"
    "Limits against hostile clients: --max-conns connections at once (64;\n"
    "one more is closed at once), --frame-timeout seconds for a frame to\n"
    "arrive whole once begun (10; 0 never), --max-buffered-mib for all\n"
    "connections' incomplete frames together (64).\n"
    "`write` copies standard input into PATH.\n";

static int usage(FILE *f, int status) {
  fputs(usage_text, f);
  return status;
}

/* Says why `what` failed: our text for the errno and its name, and the
 * server's own text when the failure came from it (c may be NULL) and it
 * says something else: "file does not exist (ENOENT; server: No such file
 * or directory)". */
static int fail(p9_client *c, const char *what, int err) {
  const char *name = strerrorname_np(err < 0 ? -err : err);
  const char *said = c ? p9_client_errstr(c) : "";
  fprintf(stderr, "uksim 9p: %s: %s (%s", what, p9_strerror(err),
          name ? name : "unknown errno");
  if (said[0] && p9_errno(p9_str_c(said)) == -err &&
      strcmp(said, p9_strerror(err)) != 0)
    fprintf(stderr, "; server: %s", said);
  fputs(")\n", stderr);
  return 1;
}

struct opts {
  const char *key_file, *aname, *uname, *dialect, *dir;
  uint32_t msize, max_conns;
  int trace, poll_us, frame_timeout_ms;
  size_t max_buffered;
  uint8_t key[P9_KEYLEN];
};

/* --max-conns N, --frame-timeout S (0: never), --max-buffered-mib N into
 * the server's config values; -1 (said on stderr) for a bad value. */
static int parse_limit(int c, const char *arg, struct opts *o) {
  static const struct {
    int c;
    const char *name;
    double min, max;
  } lim[] = {{'C', "--max-conns", 1, 1e6},
             {'T', "--frame-timeout", 0, 86400}, /* seconds, fractions too */
             {'B', "--max-buffered-mib", 1, 1 << 20}};
  double v;
  size_t i = 0;
  while (lim[i].c != c)
    i++;
  if (num_opt_double("uksim 9p", lim[i].name, arg, lim[i].min, lim[i].max, &v) <
      0)
    return -1;
  if (c == 'C')
    o->max_conns = (uint32_t)v;
  else if (c == 'T') /* the config's 0 is the default, negative never */
    o->frame_timeout_ms = v > 0 ? (v * 1000 < 1 ? 1 : (int)(v * 1000)) : -1;
  else
    o->max_buffered = (size_t)v << 20;
  return 0;
}

/* Parses options anywhere in argv (getopt permutes the operands to
 * argv[optind..]); 1 for --help, -1 for a bad option, -2 bad key. */
static int parse_opts(int argc, char **argv, struct opts *o) {
  static const struct option lo[] = {
      {"key", required_argument, 0, 'k'},
      {"aname", required_argument, 0, 'a'},
      {"uname", required_argument, 0, 'u'},
      {"dialect", required_argument, 0, 'd'},
      {"msize", required_argument, 0, 'm'},
      {"trace", no_argument, 0, 't'},
      {"poll-us", required_argument, 0, 'p'},
      {"max-conns", required_argument, 0, 'C'},
      {"frame-timeout", required_argument, 0, 'T'},
      {"max-buffered-mib", required_argument, 0, 'B'},
      {"dir", required_argument, 0, 'D'},
      {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  int c;
  uint64_t n;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "k:a:u:d:m:p:thC:T:B:D:", lo, NULL)) !=
         -1) {
    switch (c) {
    case 'k':
      o->key_file = optarg;
      break;
    case 'a':
      o->aname = optarg;
      break;
    case 'u':
      o->uname = optarg;
      break;
    case 'd':
      o->dialect = optarg;
      break;
    case 'm':
      if (num_opt_u64("uksim 9p", "--msize", optarg, 0, P9_MAXMSIZE, 0, &n) < 0)
        return -1;
      o->msize = (uint32_t)n;
      break;
    case 't':
      o->trace = 1;
      break;
    case 'p':
      if (num_opt_u64("uksim 9p", "--poll-us", optarg, 0, 1000000, 0, &n) < 0)
        return -1;
      o->poll_us = n ? (int)n : -1; /* the config's 0 is the default */
      break;
    case 'C':
    case 'T':
    case 'B':
      if (parse_limit(c, optarg, o) < 0)
        return -1;
      break;
    case 'D':
      o->dir = optarg;
      break;
    case 'h':
      return 1;
    default:
      fprintf(stderr, "uksim 9p: bad option '%s'\n", argv[optind - 1]);
      return -1;
    }
  }
  if (o->key_file && p9_key_load(o->key_file, o->key) < 0) {
    fprintf(stderr, "uksim 9p: cannot read key file %s\n", o->key_file);
    return -2;
  }
  return 0;
}

/* --- serve ------------------------------------------------------------ */

struct serve {
  uv_signal_t sigint, sigterm;
  p9_listener *l;
  p9_srv *srv;
};

static void on_signal(uv_signal_t *h, int signum) {
  struct serve *s = h->data;
  (void)signum;
  p9_listener_close(s->l);
  p9_srv_close_conns(s->srv);
  uv_close((uv_handle_t *)&s->sigint, NULL);
  uv_close((uv_handle_t *)&s->sigterm, NULL);
}

/* The tree serve exports: memfs, or hostfs over o->dir. */
struct tree {
  const struct p9_srv_ops *ops;
  void *fs;
};

static int tree_new(struct opts *o, struct tree *t) {
  int err = 0;
  if (!o->dir) {
    *t = (struct tree){p9_memfs_ops(), p9_memfs_new()};
    return 0;
  }
  *t = (struct tree){p9_hostfs_ops(), p9_hostfs_new(o->dir, &err)};
  if (!t->fs)
    fprintf(stderr, "uksim 9p: --dir %s: %s\n", o->dir, strerror(-err));
  return t->fs ? 0 : err;
}

static void tree_free(struct tree *t) {
  if (t->ops == p9_memfs_ops())
    p9_memfs_free(t->fs);
  else
    p9_hostfs_free(t->fs);
}

static int serve(const char *addr, struct opts *o) {
  uv_loop_t loop;
  struct tree tree;
  p9_srv_config cfg = {.msize = o->msize,
                       .trace = o->trace,
                       .poll_us = o->poll_us,
                       .max_conns = o->max_conns,
                       .frame_timeout_ms = o->frame_timeout_ms,
                       .max_buffered = o->max_buffered};
  struct serve s;
  int err;
  if (o->key_file)
    cfg.key = o->key;
  if (tree_new(o, &tree) < 0)
    return 1;
  uv_loop_init(&loop);
  if (!(s.srv = p9_srv_new(tree.ops, tree.fs, &cfg, &err)))
    return fail(NULL, "server", err);
  if (!(s.l = p9_listen(s.srv, &loop, addr, &err))) {
    fprintf(stderr, "uksim 9p: cannot listen on %s: %s\n", addr,
            err == -EPERM ? "refused (see the log above)" : uv_strerror(err));
    p9_srv_free(s.srv);
    tree_free(&tree);
    uv_loop_close(&loop);
    return 1;
  }
  printf("serving on %s\n", p9_listener_addr(s.l));
  fflush(stdout);
  UV_CHECK(uv_signal_init(&loop, &s.sigint));
  UV_CHECK(uv_signal_init(&loop, &s.sigterm));
  s.sigint.data = s.sigterm.data = &s;
  UV_CHECK(uv_signal_start(&s.sigint, on_signal, SIGINT));
  UV_CHECK(uv_signal_start(&s.sigterm, on_signal, SIGTERM));
  uv_run(&loop, UV_RUN_DEFAULT);
  p9_srv_free(s.srv);
  tree_free(&tree);
  uv_loop_close(&loop);
  return 0;
}

/* --- client tool ------------------------------------------------------ */

static int print_entry(const p9_dir *d, void *arg) {
  (void)arg;
  printf("%s%s\n", d->name, (d->mode & P9_DMDIR) ? "/" : "");
  return 0;
}

static int do_ls(p9_cfid *f, const char *path) {
  p9_dir d;
  int err = p9_fstat(f, &d);
  if (err)
    return fail(f->c, path, err);
  if (!(d.mode & P9_DMDIR)) {
    printf("%s\n", path);
    return 0;
  }
  if ((err = p9_open(f, P9_OREAD)) || (err = p9_readdir(f, print_entry, 0)))
    return fail(f->c, path, err);
  return 0;
}

/* Reads in pieces of what one Rread carries (msize less Plan 9's
 * IOHDRSZ, or the iounit the open gave if smaller), so that each piece
 * is one request, and one more (an empty Rread) ends the file. */
static int do_cat(p9_cfid *f, const char *path) {
  size_t n = p9_client_msize(f->c) - P9_IOHDRSZ;
  char *buf;
  uint64_t off = 0;
  long k;
  int err = p9_open(f, P9_OREAD);
  if (!err && f->iounit && f->iounit < n)
    n = f->iounit;
  buf = xmalloc(n);
  while (!err && (k = p9_pread(f, buf, n, off)) > 0) {
    fwrite(buf, 1, (size_t)k, stdout);
    off += (uint64_t)k;
    if ((size_t)k < n)
      break; /* p9_pread returns less only at the end: it asked already */
  }
  free(buf);
  if (err || k < 0)
    return fail(f->c, path, err ? err : (int)k);
  return fflush(stdout) == 0 ? 0 : 1;
}

static int copy_stdin(p9_cfid *f, const char *path) {
  char buf[65536];
  uint64_t off = 0;
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0) {
    long k = p9_pwrite(f, buf, n, off);
    if (k < 0)
      return fail(f->c, path, (int)k);
    off += (uint64_t)k;
  }
  return 0;
}

/* Splits "a/b/c" into the parent "a/b" and the name "c" (in place). */
static const char *split_last(char *path) {
  char *slash = strrchr(path, '/');
  if (!slash)
    return NULL;
  *slash = 0;
  return slash + 1;
}

static int do_write(p9_cfid *root, const char *path) {
  char *parent = xstrdup(path);
  const char *name = split_last(parent);
  p9_cfid *f;
  int err, st;
  if ((f = p9_walk(root, path, &err))) {
    err = p9_open(f, P9_OWRITE | P9_OTRUNC);
  } else if (err == -ENOENT && (f = p9_walk(root, name ? parent : "", &err))) {
    err = p9_create(f, name ? name : path, 0664, P9_OWRITE);
  }
  st = err ? fail(root->c, path, err) : copy_stdin(f, path);
  if (f)
    p9_clunk(f);
  free(parent);
  return st;
}

static int do_stat(p9_cfid *f, const char *path) {
  p9_dir d;
  int err = p9_fstat(f, &d);
  if (err)
    return fail(f->c, path, err);
  printf("%s %s %04o %llu %u qid(%llx %u %x)\n", path,
         (d.mode & P9_DMDIR) ? "d" : "-", d.mode & 0777,
         (unsigned long long)d.length, d.mtime, (unsigned long long)d.qid.path,
         d.qid.vers, d.qid.type);
  return 0;
}

static int do_mkdir(p9_cfid *root, const char *path) {
  char *parent = xstrdup(path);
  const char *name = split_last(parent);
  p9_cfid *d = p9_walk(root, name ? parent : "", &(int){0});
  int err = d ? p9_mkdir(d, name ? name : path, 0775) : -ENOENT;
  p9_clunk(d);
  free(parent);
  return err ? fail(root->c, path, err) : 0;
}

static int run_op(p9_cfid *root, const char *op, const char *path) {
  p9_cfid *f;
  int err, st;
  if (strcmp(op, "write") == 0)
    return do_write(root, path);
  if (strcmp(op, "mkdir") == 0)
    return do_mkdir(root, path);
  if (!(f = p9_walk(root, path, &err)))
    return fail(root->c, path, err);
  if (strcmp(op, "rm") == 0) {
    err = p9_remove(f);
    return err ? fail(root->c, path, err) : 0;
  }
  st = strcmp(op, "ls") == 0    ? do_ls(f, path)
       : strcmp(op, "cat") == 0 ? do_cat(f, path)
                                : do_stat(f, path);
  p9_clunk(f);
  return st;
}

static int is_op(const char *s) {
  static const char *const ops[] = {"ls",   "cat",   "write",
                                    "stat", "mkdir", "rm"};
  for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
    if (strcmp(s, ops[i]) == 0)
      return 1;
  return 0;
}

static int client(const char *addr, const char *op, const char *path,
                  struct opts *o) {
  p9_client *c;
  p9_cfid *root;
  int err, st;
  if (!(c = p9_client_dial(addr, o->msize ? o->msize : 65536,
                           o->dialect ? o->dialect : "9P2000.L", &err))) {
    fprintf(stderr, "uksim 9p: cannot connect to %s: %s\n", addr,
            p9_strerror(err));
    return 1;
  }
  root = p9_attach(c, o->uname ? o->uname : getenv("USER"), o->aname,
                   o->key_file ? o->key : NULL, &err);
  if (!root) {
    fprintf(stderr, "uksim 9p: attach to %s refused: %s\n", addr,
            p9_client_errstr(c)[0] ? p9_client_errstr(c) : p9_strerror(err));
    p9_client_close(c);
    return 1;
  }
  st = run_op(root, op, path);
  p9_clunk(root);
  p9_client_close(c);
  return st;
}

int p9_cmd_main(int argc, char **argv) {
  struct opts o = {0};
  int err = parse_opts(argc, argv, &o);
  char **av = argv + optind;
  int ac = argc - optind;
  if (err == 1)
    return usage(stdout, 0);
  if (err)
    return err == -1 ? usage(stderr, 2) : 1;
  signal(SIGPIPE, SIG_IGN);
  if (ac == 2 && strcmp(av[0], "serve") == 0)
    return serve(av[1], &o);
  if (ac == 3 && is_op(av[1]))
    return client(av[0], av[1], av[2], &o);
  fprintf(stderr, "uksim 9p: expected `serve ADDR` or `ADDR OP PATH`\n");
  return usage(stderr, 2);
}
