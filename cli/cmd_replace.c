/* uksim replace: replace the server of a running service (seed 000 §5). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "machine.h"
#include "uksim/xalloc.h"

#define ENV_MAX 8

static void replace_usage(FILE *f) {
  fprintf(f,
          "usage: uksim replace [OPTIONS] SERVICE PROGRAM [-- ARGS...]\n\n"
          "Replace the server of SERVICE on a running machine with a new "
          "server\nrunning PROGRAM, handing over its queued requests and "
          "its state\n(seed 000 §5.2).  Waits for the outcome: exit 0 when "
          "the new server\nhas taken over, 1 when the replacement failed "
          "(the old server keeps\nserving), 2 on bad usage.\n\n"
          "  --name MACHINE       machine (default: default; see 'uksim demo "
          "--keep')\n"
          "  --state METHOD       pass --state METHOD to the new server "
          "(single,\n"
          "                       chain or copy, for servers that take it)\n"
          "  --as NAME            process name of the new server (default: "
          "PROGRAM)\n"
          "  --deadline MS        fail unless the new server takes over "
          "within MS\n"
          "                       milliseconds (default 5000)\n"
          "  --env KEY=VALUE      extra environment for the new server "
          "(up to %d),\n"
          "                       e.g. UKSIM_FAULT=crash@restore\n",
          ENV_MAX);
}

struct replace_opts {
  const char *machine, *state, *as;
  unsigned long deadline;
  char *env[ENV_MAX];
  size_t nenv;
};

static int parse(int argc, char **argv, struct replace_opts *o) {
  static const struct option opts[] = {
      {"name", required_argument, NULL, 'n'},
      {"state", required_argument, NULL, 's'},
      {"as", required_argument, NULL, 'a'},
      {"deadline", required_argument, NULL, 'd'},
      {"env", required_argument, NULL, 'e'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  int c;
  uint64_t v;
  memset(o, 0, sizeof *o);
  o->machine = "default";
  optind = 1;
  while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
    switch (c) {
    case 'n':
      o->machine = optarg;
      break;
    case 's':
      if (strcmp(optarg, "single") && strcmp(optarg, "chain") &&
          strcmp(optarg, "copy")) {
        fprintf(stderr, "uksim replace: --state is single, chain or copy\n");
        return -1;
      }
      o->state = optarg;
      break;
    case 'a':
      o->as = optarg;
      break;
    case 'd':
      if (cli_number("replace", "--deadline", optarg, 1, 3600000, &v) < 0)
        return -1;
      o->deadline = (unsigned long)v;
      break;
    case 'e':
      if (o->nenv == ENV_MAX || !strchr(optarg, '=')) {
        fprintf(stderr, "uksim replace: --env KEY=VALUE, at most %d\n",
                ENV_MAX);
        return -1;
      }
      o->env[o->nenv++] = optarg;
      break;
    case 'h':
      replace_usage(stdout);
      return 1;
    default:
      replace_usage(stderr);
      return -1;
    }
  }
  if (argc - optind < 2) {
    replace_usage(stderr);
    return -1;
  }
  return 0;
}

int cmd_replace(int argc, char **argv) {
  struct replace_opts o;
  mach_client mc;
  int r = parse(argc, argv, &o);
  if (r != 0)
    return r < 0 ? 2 : 0;
  const char *svc = argv[optind], *prog = argv[optind + 1];
  if (svc[0] == '\0' || prog[0] == '\0') {
    fprintf(stderr, "uksim replace: empty %s name\n",
            svc[0] ? "program" : "service");
    return 2;
  }
  int first =
      optind + 2 + (optind + 2 < argc && !strcmp(argv[optind + 2], "--"));
  size_t nextra = (size_t)(argc - first);
  char **args = xcalloc(nextra + 2, sizeof *args);
  size_t n = 0;
  if (o.state) {
    args[n++] = "--state";
    args[n++] = (char *)o.state;
  }
  for (int i = first; i < argc; i++)
    args[n++] = argv[i];
  struct mach_prog p = {.program = prog,
                        .args = args,
                        .nargs = n,
                        .name = o.as,
                        .env = o.env,
                        .nenv = o.nenv};
  if (mach_connect(&mc, o.machine) < 0) {
    fprintf(stderr, "uksim replace: %s\n", mc.error);
    free(args);
    return 1;
  }
  int64_t id = mach_replace_send(&mc, svc, &p, (uint32_t)o.deadline);
  int proc = -1;
  r = id < 0 ? (int)id : mach_replace_reply(&mc, (uint64_t)id, &proc);
  if (r < 0)
    printf("replacement of %s failed: %s; the old server keeps serving\n", svc,
           mc.error[0] ? mc.error : "the machine went away");
  else
    printf("%s replaced: %s (process %d) is serving\n", svc, prog, proc);
  mach_close(&mc);
  free(args);
  return r < 0 ? 1 : 0;
}
