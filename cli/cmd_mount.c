/* uksim mount: a process's namespace at a host directory, through FUSE
 * (nsfuse.h).  The command attaches itself to the machine as a process
 * sharing PROC's namespace, so that a bind PROC makes later shows here too.
 *
 * Unless -f, it runs in the background once the mount is in place: it
 * forks first, the child attaches and mounts, and tells the parent through
 * a pipe whether that worked; the parent then exits 0, or 1 with the
 * child's message already on stderr.  Forking before the attach (not
 * after, as fuse_daemonize would) keeps one host process behind the
 * kernel connection from start to end. */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attach.h"
#include "cli.h"
#include "nsfuse.h"

static int usage(FILE *f, int st) {
  fprintf(f,
          "usage: uksim mount [--name MACHINE] [-f] [-d] [--as NAME] PROC "
          "DIR\n\n"
          "Show the namespace of process PROC (a pid or a name as 'uksim "
          "ps' shows)\nat host directory DIR through FUSE, for ls, cat, cp "
          "and every other tool.\nThe view shares PROC's namespace: a bind "
          "PROC makes shows here too.\n\n"
          "  --name MACHINE  the machine (default: default)\n"
          "  -f              stay in the foreground (default: go to the "
          "background\n"
          "                  once DIR is mounted)\n"
          "  -d              libfuse's debug output (implies -f)\n"
          "  --as NAME       the viewing process's name (default: fuse)\n\n"
          "'fusermount3 -u DIR' ends it; so does the machine halting, which "
          "unmounts DIR.\nRenames across directories fail with EXDEV (mv "
          "copies instead); links,\nsymlinks and device nodes with EPERM.\n");
  return st;
}

/* The daemon's end of the pipe to its parent: one byte, 0 mounted. */
static int ready_fd = -1;

static void tell_parent(void *arg) {
  (void)arg;
  if (ready_fd < 0)
    return;
  char ok = 0;
  if (write(ready_fd, &ok, 1) != 1) {
    /* The parent is gone; nobody is left to tell. */
  }
  close(ready_fd);
  ready_fd = -1;
  /* From now on nothing is printed to the terminal the command ran in. */
  int null = open("/dev/null", O_RDWR);
  if (null >= 0) {
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    close(null);
  }
}

static int serve(const char *machine, const char *proc, const char *as,
                 const char *dir, bool debug) {
  mach_client mc;
  char fsname[128];
  if (cli_attach("mount", &mc, machine, proc, 0, as) < 0) {
    mach_close(&mc);
    return 1;
  }
  snprintf(fsname, sizeof fsname, "uksim:%s:%s", machine, proc);
  struct nsfuse_opts o = {
      .dir = dir, .fsname = fsname, .debug = debug, .ready = tell_parent};
  int r = nsfuse_serve(&o);
  if (r < 0)
    fprintf(stderr, "uksim mount: %s: could not mount\n", dir);
  mach_close(&mc);
  return r < 0;
}

/* Forks; the parent waits for the child's word and exits with it. */
static int background(const char *machine, const char *proc, const char *as,
                      const char *dir) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) {
    perror("uksim mount: pipe");
    return 1;
  }
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    perror("uksim mount: fork");
    return 1;
  }
  if (pid == 0) {
    close(p[0]);
    ready_fd = p[1];
    setsid();
    _exit(serve(machine, proc, as, dir, false));
  }
  close(p[1]);
  char ok;
  if (read(p[0], &ok, 1) == 1)
    return 0; /* mounted; the child serves on */
  int st;
  waitpid(pid, &st, 0);
  return 1;
}

int cmd_mount(int argc, char **argv) {
  static const struct option opts[] = {{"name", required_argument, NULL, 'n'},
                                       {"as", required_argument, NULL, 'a'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *machine = "default", *as = "fuse";
  bool fg = false, debug = false;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "+fdh", opts, NULL)) != -1) {
    if (c == 'n')
      machine = optarg;
    else if (c == 'a')
      as = optarg;
    else if (c == 'f')
      fg = true;
    else if (c == 'd')
      fg = debug = true;
    else
      return usage(c == 'h' ? stdout : stderr, c == 'h' ? 0 : 2);
  }
  if (argc - optind != 2)
    return usage(stderr, 2);
  const char *proc = argv[optind], *dir = argv[optind + 1];
  struct stat st;
  if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
    fprintf(stderr, "uksim mount: %s: not a directory\n", dir);
    return 1;
  }
  return fg ? serve(machine, proc, as, dir, debug)
            : background(machine, proc, as, dir);
}
