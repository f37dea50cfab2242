/* nsh's builtins (see nsh.h): each is one function over ns_* calls, named
 * in the table at the end.  Plan 9's bind(1), mount(1), ns(1), ls(1) and
 * rc's rfork give the options; where those are silent, the usage line in
 * the table says what a builtin does. */
#include "nsh.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "uksim/kdata.h"
#include "uksim/ns.h"
#include "uksim/xalloc.h"

#define PATH_BUF 1024 /* a joined path; the kernel's limit is lower */

static int usage(struct nsh_io *io, const char *name);

/* Plan 9's bind/mount flags from "-abc" style options at argv[1..]; *i is
 * the first argument after them.  -1 for an unknown option. */
static int mount_flags(int argc, char **argv, int *i) {
  int f = NS_MREPL;
  for (*i = 1; *i < argc && argv[*i][0] == '-' && argv[*i][1]; (*i)++) {
    for (const char *o = argv[*i] + 1; *o; o++) {
      if (*o == 'a')
        f = (f & ~NS_MBEFORE) | NS_MAFTER;
      else if (*o == 'b')
        f = (f & ~NS_MAFTER) | NS_MBEFORE;
      else if (*o == 'c')
        f |= NS_MCREATE;
      else
        return -1;
    }
  }
  return f;
}

static int do_bind(struct nsh *sh, struct nsh_io *io, int argc, char **argv) {
  (void)sh;
  int i, f = mount_flags(argc, argv, &i);
  if (f < 0 || argc - i != 2)
    return usage(io, argv[0]);
  int r = ns_bind(argv[i], argv[i + 1], f);
  if (r < 0)
    fprintf(io->err, "bind: %s %s: %s\n", argv[i], argv[i + 1], strerror(-r));
  return r < 0;
}

static int do_mount(struct nsh *sh, struct nsh_io *io, int argc, char **argv) {
  (void)sh;
  int i, f = mount_flags(argc, argv, &i);
  if (f < 0 || argc - i < 2 || argc - i > 3)
    return usage(io, argv[0]);
  const char *aname = argc - i == 3 ? argv[i + 2] : "";
  int r;
  if (strchr(argv[i], '!') != NULL) { /* a dial string: an external server */
    r = ns_mount_addr(argv[i], argv[i + 1], f, aname);
  } else {
    int fd = ns_open(argv[i], NS_ORDWR);
    if (fd < 0)
      return nsh_fail(io, "mount", argv[i], fd);
    r = ns_mount(fd, argv[i + 1], f, aname);
    ns_close(fd);
  }
  if (r < 0)
    fprintf(io->err, "mount: %s %s: %s\n", argv[i], argv[i + 1], strerror(-r));
  return r < 0;
}

static int do_import(struct nsh *sh, struct nsh_io *io, int argc, char **argv) {
  (void)sh;
  int i, f = mount_flags(argc, argv, &i);
  if (f < 0 || argc - i != 3)
    return usage(io, argv[0]);
  int r = ns_import(argv[i], argv[i + 1], argv[i + 2], f);
  if (r < 0)
    fprintf(io->err, "import: %s %s %s: %s\n", argv[i], argv[i + 1],
            argv[i + 2], ns_import_strerror(r));
  return r < 0;
}

static int do_unmount(struct nsh *sh, struct nsh_io *io, int argc,
                      char **argv) {
  (void)sh;
  if (argc != 2 && argc != 3)
    return usage(io, argv[0]);
  const char *old = argv[argc - 1];
  int r = ns_unmount(argc == 3 ? argv[1] : NULL, old);
  return r < 0 ? nsh_fail(io, "unmount", old, r) : 0;
}

/* Copies path's contents to the output. */
static int cat_file(struct nsh_io *io, const char *cmd, const char *path) {
  int fd = ns_open(path, NS_OREAD);
  if (fd < 0)
    return nsh_fail(io, cmd, path, fd);
  char buf[NS_SMALL];
  long n;
  while ((n = ns_read(fd, buf, sizeof buf)) > 0)
    nsh_write(io, buf, (size_t)n);
  ns_close(fd);
  return n < 0 ? nsh_fail(io, cmd, path, (int)n) : 0;
}

static int do_cat(struct nsh *sh, struct nsh_io *io, int argc, char **argv) {
  (void)sh;
  if (argc == 1) {
    nsh_write(io, io->in, io->inlen);
    return 0;
  }
  int st = 0;
  for (int i = 1; i < argc; i++)
    st |= cat_file(io, "cat", argv[i]);
  return st;
}

/* This process's pid as its kernel knows it, from #c/pid (read by spec,
 * so that it works in a namespace without /dev). */
static int my_pid(struct nsh_io *io, long *pid) {
  struct nsh_buf b = {0};
  int r = nsh_read_file("#c/pid", &b);
  if (r == 0 && (b.n == 0 || b.n > 20))
    r = -EPROTO;
  if (r == 0) {
    char s[24];
    memcpy(s, b.p, b.n);
    s[b.n] = '\0';
    *pid = strtol(s, NULL, 10);
  }
  nsh_buf_free(&b);
  return r < 0 ? nsh_fail(io, "ns", "#c/pid", r) : 0;
}

static int do_ns(struct nsh *sh, struct nsh_io *io, int argc, char **argv) {
  (void)sh;
  long pid = 0;
  if (argc > 2)
    return usage(io, argv[0]);
  if (argc == 2) {
    pid = strtol(argv[1], NULL, 10);
  } else if (my_pid(io, &pid)) {
    return 1;
  }
  char path[64];
  snprintf(path, sizeof path, "#p/%ld/ns", pid);
  return cat_file(io, "ns", path);
}

/* ls's listing of one directory: every entry, sorted by name as Plan 9's
 * ls does (a union lists its members in mount order otherwise). */
struct dirlist {
  ns_dir *d;
  size_t n, cap;
};

static int by_name(const void *a, const void *b) {
  return strcmp(((const ns_dir *)a)->name, ((const ns_dir *)b)->name);
}

static int read_dir(const char *path, struct dirlist *l) {
  int fd = ns_open(path, NS_OREAD);
  if (fd < 0)
    return fd;
  long n;
  do {
    if (l->cap - l->n < 16) {
      l->cap = l->cap ? 2 * l->cap : 64;
      l->d = xreallocarray(l->d, l->cap, sizeof *l->d);
    }
    n = ns_dirread(fd, l->d + l->n, l->cap - l->n);
    if (n > 0)
      l->n += (size_t)n;
  } while (n > 0);
  ns_close(fd);
  qsort(l->d, l->n, sizeof *l->d, by_name);
  return n < 0 ? (int)n : 0;
}

static void mode_string(uint32_t mode, char s[12]) {
  static const char rwx[] = "rwxrwxrwx";
  s[0] = mode & NS_DMDIR ? 'd' : '-';
  s[1] = '-';
  for (int i = 0; i < 9; i++)
    s[2 + i] = mode & (1u << (8 - i)) ? rwx[i] : '-';
  s[11] = '\0';
}

/* One line of ls -l, Plan 9's columns: mode, servant letter, owner,
 * group, length, time, name. */
static void long_line(struct nsh_io *io, const ns_dir *d, const char *name) {
  char m[12], when[32];
  time_t t = (time_t)d->mtime;
  struct tm tm;
  mode_string(d->mode, m);
  strftime(when, sizeof when, "%b %e %H:%M", localtime_r(&t, &tm));
  nsh_printf(io, "%s %c %-8s %-8s %8llu %s %s\n", m,
             d->dev_type ? d->dev_type : '?', d->uid, d->gid,
             (unsigned long long)d->length, when, name);
}

static int ls_one(struct nsh_io *io, const char *path, bool lng, bool title) {
  ns_dir st;
  int r = ns_stat(path, &st);
  if (r < 0)
    return nsh_fail(io, "ls", path, r);
  if (!(st.mode & NS_DMDIR)) {
    if (lng)
      long_line(io, &st, path);
    else
      nsh_printf(io, "%s\n", path);
    return 0;
  }
  struct dirlist l = {0};
  r = read_dir(path, &l);
  if (title)
    nsh_printf(io, "%s:\n", path);
  for (size_t i = 0; i < l.n; i++) {
    char full[UK_PATH_MAX + 1];
    ns_dir fs;
    /* A 9P2000.L server's listing says no lengths or times: stat it. */
    if (lng && (l.d[i].flags & KABI_DIR_PARTIAL) &&
        snprintf(full, sizeof full, "%s/%s", path, l.d[i].name) <
            (int)sizeof full &&
        ns_stat(full, &fs) == 0)
      l.d[i] = fs;
    if (lng)
      long_line(io, &l.d[i], l.d[i].name);
    else
      nsh_printf(io, "%s\n", l.d[i].name);
  }
  free(l.d);
  return r < 0 ? nsh_fail(io, "ls", path, r) : 0;
}

static int do_ls(struct nsh *sh, struct nsh_io *io, int argc, char **argv) {
  (void)sh;
  bool lng = false;
  int i = 1;
  for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
    if (strcmp(argv[i], "-l") != 0)
      return usage(io, argv[0]);
    lng = true;
  }
  if (i == argc)
    return ls_one(io, ".", lng, false);
  int st = 0;
  for (int j = i; j < argc; j++)
    st |= ls_one(io, argv[j], lng, argc - i > 1);
  return st;
}

static int do_echo(struct nsh *sh, struct nsh_io *io, int argc, char **argv) {
  (void)sh;
  int i = 1;
  bool nl = true;
  if (argc > 1 && strcmp(argv[1], "-n") == 0) {
    nl = false;
    i++;
  }
  for (int j = i; j < argc; j++)
    nsh_printf(io, "%s%s", j > i ? " " : "", argv[j]);
  if (nl)
    nsh_write(io, "\n", 1);
  return 0;
}

static int do_mkdir(struct nsh *sh, struct nsh_io *io, int argc, char **argv) {
  (void)sh;
  if (argc < 2)
    return usage(io, argv[0]);
  int st = 0;
  for (int i = 1; i < argc; i++) {
    int fd = ns_create(argv[i], NS_OREAD, NS_DMDIR | 0777);
    if (fd < 0)
      st |= nsh_fail(io, "mkdir", argv[i], fd);
    else
      ns_close(fd);
  }
  return st;
}

/* Removes path, and with recurse everything under it first. */
static int rm_path(struct nsh_io *io, const char *path, bool recurse) {
  ns_dir st;
  int r;
  if (recurse && (r = ns_stat(path, &st)) == 0 && (st.mode & NS_DMDIR)) {
    struct dirlist l = {0};
    if ((r = read_dir(path, &l)) < 0) {
      free(l.d);
      return nsh_fail(io, "rm", path, r);
    }
    int bad = 0;
    for (size_t i = 0; i < l.n; i++) {
      char sub[PATH_BUF];
      snprintf(sub, sizeof sub, "%s/%s", path, l.d[i].name);
      bad |= rm_path(io, sub, true);
    }
    free(l.d);
    if (bad)
      return 1;
  }
  r = ns_remove(path);
  return r < 0 ? nsh_fail(io, "rm", path, r) : 0;
}

static int do_rm(struct nsh *sh, struct nsh_io *io, int argc, char **argv) {
  (void)sh;
  int i = 1;
  bool rec = false;
  if (argc > 1 && strcmp(argv[1], "-r") == 0) {
    rec = true;
    i++;
  }
  if (i == argc)
    return usage(io, argv[0]);
  int st = 0;
  for (; i < argc; i++)
    st |= rm_path(io, argv[i], rec);
  return st;
}

static int do_cd(struct nsh *sh, struct nsh_io *io, int argc, char **argv) {
  (void)sh;
  if (argc > 2)
    return usage(io, argv[0]);
  const char *dir = argc == 2 ? argv[1] : "/";
  int r = ns_chdir(dir);
  return r < 0 ? nsh_fail(io, "cd", dir, r) : 0;
}

static int do_pwd(struct nsh *sh, struct nsh_io *io, int argc, char **argv) {
  (void)sh;
  if (argc != 1)
    return usage(io, argv[0]);
  char buf[PATH_BUF];
  int fd = ns_open(".", NS_OREAD);
  if (fd < 0)
    return nsh_fail(io, "pwd", ".", fd);
  int r = ns_fd2path(fd, buf, sizeof buf);
  ns_close(fd);
  if (r < 0)
    return nsh_fail(io, "pwd", ".", r);
  nsh_printf(io, "%s\n", buf);
  return 0;
}

/* One process's line: its #p directory's name and its status file. */
static int ps_line(struct nsh_io *io, const char *pid) {
  char path[PATH_BUF];
  struct nsh_buf b = {0};
  snprintf(path, sizeof path, "#p/%s/status", pid);
  int r = nsh_read_file(path, &b);
  if (r == 0) {
    while (b.n > 0 && b.p[b.n - 1] == '\n')
      b.n--;
    nsh_printf(io, "%-8s %.*s\n", pid, (int)b.n, b.p);
  }
  nsh_buf_free(&b);
  /* A process that ended between the listing and the read is not an
   * error of ps. */
  return r < 0 && r != -ENOENT ? nsh_fail(io, "ps", path, r) : 0;
}

/* The process table as `uksim ps` prints it, from #k/procs; without #k,
 * Plan 9's way: a line per #p/PID/status. */
static int do_ps(struct nsh *sh, struct nsh_io *io, int argc, char **argv) {
  (void)sh;
  if (argc != 1)
    return usage(io, argv[0]);
  struct nsh_buf k = {0};
  if (nsh_read_file("#k/procs", &k) == 0) {
    nsh_write(io, k.p, k.n);
    nsh_buf_free(&k);
    return 0;
  }
  nsh_buf_free(&k);
  struct dirlist l = {0};
  int r = read_dir("#p", &l);
  if (r < 0) {
    free(l.d);
    return nsh_fail(io, "ps", "#p", r);
  }
  int st = 0;
  nsh_printf(io, "%-8s %s\n", "PID", "STATUS");
  for (size_t i = 0; i < l.n; i++)
    if (l.d[i].mode & NS_DMDIR)
      st |= ps_line(io, l.d[i].name);
  free(l.d);
  return st;
}

static int do_kill(struct nsh *sh, struct nsh_io *io, int argc, char **argv) {
  (void)sh;
  if (argc < 2)
    return usage(io, argv[0]);
  int st = 0;
  for (int i = 1; i < argc; i++) {
    char path[PATH_BUF];
    snprintf(path, sizeof path, "#p/%s/ctl", argv[i]);
    int fd = ns_open(path, NS_OWRITE);
    long r = fd < 0 ? fd : ns_write(fd, "kill", 4);
    if (fd >= 0)
      ns_close(fd);
    if (r < 0)
      st |= nsh_fail(io, "kill", path, (int)r);
  }
  return st;
}

/* rc's rfork letters that mean something here: n a copy of the
 * namespace, N a clean one, F no descriptors. */
static int rfork_flags(const char *s) {
  int f = 0;
  for (; *s; s++) {
    if (*s == 'n')
      f |= NS_RFNAMEG;
    else if (*s == 'N')
      f |= NS_RFCNAMEG;
    else if (*s == 'F')
      f |= NS_RFCFDG;
    else
      return -1;
  }
  return f;
}

static int do_rfork(struct nsh *sh, struct nsh_io *io, int argc, char **argv) {
  (void)sh;
  int f = argc == 1 ? NS_RFNAMEG : argc == 2 ? rfork_flags(argv[1]) : -1;
  if (f < 0)
    return usage(io, argv[0]);
  int r = ns_rfork(f);
  return r < 0 ? nsh_fail(io, "rfork", argc == 2 ? argv[1] : "n", r) : 0;
}

/* A clean namespace with the servants a fresh process gets (uksim/ns.h),
 * as Plan 9's newns builds one from /lib/namespace: what was bound or
 * mounted before is gone from this process's view only. */
static int do_newns(struct nsh *sh, struct nsh_io *io, int argc, char **argv) {
  (void)sh;
  static const char *const std[][2] = {
      {"#c", "/dev"}, {"#e", "/env"}, {"#s", "/srv"}, {"#p", "/proc"}};
  if (argc != 1)
    return usage(io, argv[0]);
  int r = ns_rfork(NS_RFCNAMEG);
  if (r < 0)
    return nsh_fail(io, "newns", "rfork", r);
  int st = 0;
  for (size_t i = 0; i < sizeof std / sizeof std[0]; i++) {
    r = ns_bind(std[i][0], std[i][1], NS_MREPL);
    if (r < 0)
      st |= nsh_fail(io, "newns", std[i][1], r);
  }
  r = ns_chdir("/");
  return st | (r < 0 ? nsh_fail(io, "newns", "/", r) : 0);
}

/* Counts lines, words and bytes of the input or of files, as wc(1). */
static void count(const char *p, size_t n, unsigned long long c[3]) {
  bool inword = false;
  for (size_t i = 0; i < n; i++) {
    bool blank = p[i] == ' ' || p[i] == '\t' || p[i] == '\n';
    c[0] += p[i] == '\n';
    c[1] += !blank && !inword;
    inword = !blank;
  }
  c[2] += n;
}

static int do_wc(struct nsh *sh, struct nsh_io *io, int argc, char **argv) {
  (void)sh;
  unsigned long long c[3] = {0, 0, 0};
  if (argc == 1) {
    count(io->in, io->inlen, c);
    nsh_printf(io, "%7llu %7llu %7llu\n", c[0], c[1], c[2]);
    return 0;
  }
  int st = 0;
  for (int i = 1; i < argc; i++) {
    struct nsh_buf b = {0};
    int r = nsh_read_file(argv[i], &b);
    if (r < 0) {
      st |= nsh_fail(io, "wc", argv[i], r);
    } else {
      unsigned long long f[3] = {0, 0, 0};
      count(b.p, b.n, f);
      nsh_printf(io, "%7llu %7llu %7llu %s\n", f[0], f[1], f[2], argv[i]);
    }
    nsh_buf_free(&b);
  }
  return st;
}

static int do_exit(struct nsh *sh, struct nsh_io *io, int argc, char **argv) {
  if (argc > 2)
    return usage(io, argv[0]);
  sh->exited = true;
  return argc == 2 ? (int)strtol(argv[1], NULL, 10) & 0xff : sh->status;
}

static int do_help(struct nsh *sh, struct nsh_io *io, int argc, char **argv) {
  (void)sh, (void)argc, (void)argv;
  nsh_help(io);
  return 0;
}

static const struct nsh_builtin builtins[] = {
    {"bind", do_bind, "bind [-abc] new old    put new (a path or '#x') on old"},
    {"mount", do_mount,
     "mount [-abc] /srv/NAME|tcp!HOST!PORT old [aname]    mount a server "
     "on old"},
    {"import", do_import,
     "import [-abc] tcp!HOST!PORT remote local    mount another node's "
     "exported remote on local"},
    {"unmount", do_unmount, "unmount [new] old    undo a bind or mount"},
    {"ns", do_ns, "ns [pid]    the namespace as bind/mount lines"},
    {"ls", do_ls, "ls [-l] [path...]"},
    {"cat", do_cat, "cat [path...]    no path: the input"},
    {"echo", do_echo, "echo [-n] word..."},
    {"mkdir", do_mkdir, "mkdir dir..."},
    {"rm", do_rm, "rm [-r] path..."},
    {"cd", do_cd, "cd [dir]    default /"},
    {"pwd", do_pwd, "pwd"},
    {"ps", do_ps, "ps    the process table (#k/procs, else #p/*/status)"},
    {"kill", do_kill, "kill pid...    writes kill to #p/PID/ctl"},
    {"rfork", do_rfork,
     "rfork [nNF]    n copy of the namespace (default), N clean, F no fds"},
    {"newns", do_newns,
     "newns    a clean namespace with #c #e #s #p on /dev /env /srv /proc"},
    {"wc", do_wc, "wc [path...]    lines, words, bytes; no path: the input"},
    {"exit", do_exit, "exit [status]"},
    {"help", do_help, "help"},
};

const struct nsh_builtin *nsh_builtin_lookup(const char *name) {
  for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
    if (strcmp(builtins[i].name, name) == 0)
      return &builtins[i];
  return NULL;
}

void nsh_help(struct nsh_io *io) {
  for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
    nsh_printf(io, "  %s\n", builtins[i].usage);
  nsh_printf(io, "  a | b, > file, >> file, < file, 'quoted words', "
                 "# comment\n");
}

static int usage(struct nsh_io *io, const char *name) {
  const struct nsh_builtin *b = nsh_builtin_lookup(name);
  fprintf(io->err, "usage: %s\n", b ? b->usage : name);
  return 2;
}
