/* uksim spawn: start a program (a server such as ramfs, or an application)
 * in a running machine, as a scenario's `server` or `app` line does. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "machine.h"

#define ENV_MAX 8

static void spawn_usage(FILE *f) {
  fprintf(f,
          "usage: uksim spawn [OPTIONS] PROGRAM [-- ARGS...]\n\n"
          "Start PROGRAM (found on the kernel's path: the build's servers/,\n"
          "apps/ ...) as a process of a running machine.  A server (--server)\n"
          "is waited for until it has registered its service; otherwise the\n"
          "process is started and left running.  Prints its process slot and\n"
          "pid.  Exit 0 started, 1 it could not start (why is said), 2 bad "
          "usage.\n\n"
          "  --name MACHINE   machine (default: default; see 'uksim demo "
          "--keep')\n"
          "  --as NAME        process name (default: PROGRAM)\n"
          "  --server         wait until it registers its service\n"
          "  --restart        a server: restart its service after a fault\n"
          "  --protect        move it to the backup OS at a failover (seed\n"
          "                   001); an unprotected process ends with its OS\n"
          "  --env KEY=VALUE  extra environment (up to %d), e.g.\n"
          "                   UKSIM_FAULT=crash@request:10\n\n"
          "  uksim spawn --name lab --server ramfs      # /srv/ramfs appears\n"
          "  uksim spawn --name lab --server ramfs -- --name ramfs2\n",
          ENV_MAX);
}

struct spawn_opts {
  const char *machine, *as;
  bool server, restart, protect;
  char *env[ENV_MAX];
  size_t nenv;
};

static int parse(int argc, char **argv, struct spawn_opts *o) {
  static const struct option opts[] = {{"name", required_argument, NULL, 'n'},
                                       {"as", required_argument, NULL, 'a'},
                                       {"server", no_argument, NULL, 's'},
                                       {"restart", no_argument, NULL, 'r'},
                                       {"protect", no_argument, NULL, 'p'},
                                       {"env", required_argument, NULL, 'e'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  memset(o, 0, sizeof *o);
  o->machine = "default";
  optind = 1;
  for (int c; (c = getopt_long(argc, argv, "+", opts, NULL)) != -1;) {
    if (c == 'n')
      o->machine = optarg;
    else if (c == 'a')
      o->as = optarg;
    else if (c == 's')
      o->server = true;
    else if (c == 'r')
      o->restart = true;
    else if (c == 'p')
      o->protect = true;
    else if (c == 'e' && o->nenv < ENV_MAX && strchr(optarg, '='))
      o->env[o->nenv++] = optarg;
    else if (c == 'h') {
      spawn_usage(stdout);
      return 1;
    } else {
      if (c == 'e')
        fprintf(stderr, "uksim spawn: --env KEY=VALUE, at most %d\n", ENV_MAX);
      else
        spawn_usage(stderr);
      return -1;
    }
  }
  if (optind >= argc || argv[optind][0] == '\0') {
    spawn_usage(stderr);
    return -1;
  }
  return 0;
}

int cmd_spawn(int argc, char **argv) {
  struct spawn_opts o;
  mach_client mc;
  int r = parse(argc, argv, &o);
  if (r != 0)
    return r < 0 ? 2 : 0;
  const char *prog = argv[optind];
  int first =
      optind + 1 + (optind + 1 < argc && !strcmp(argv[optind + 1], "--"));
  struct mach_prog p = {.program = prog,
                        .args = argv + first,
                        .nargs = (size_t)(argc - first),
                        .name = o.as,
                        .env = o.env,
                        .nenv = o.nenv,
                        .flags = o.server ? MACH_SPAWN_REGISTERED : 0,
                        .restart = o.restart,
                        .protect = o.protect};
  if (mach_connect(&mc, o.machine) < 0) {
    fprintf(stderr, "uksim spawn: %s\n", mc.error);
    return 1;
  }
  int proc = -1;
  r = mach_spawn_prog(&mc, &p, &proc);
  if (r < 0)
    fprintf(stderr, "uksim spawn: %s: %s\n", prog, mc.error);
  else
    printf("%s started: process %d\n", o.as ? o.as : prog, proc);
  mach_close(&mc);
  return r < 0 ? 1 : 0;
}
