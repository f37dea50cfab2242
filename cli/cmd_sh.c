/* uksim sh: the namespace shell (apps/nsh) as an application process of a
 * running machine.  The CLI process attaches itself (attach.h) and runs
 * the shell's builtins in place, so what it shows is that process's
 * namespace. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attach.h"
#include "cli.h"
#include "nsh.h"
#include "uksim/ns.h"

static int usage(FILE *f, int st) {
  fprintf(f, "usage: uksim sh [--name MACHINE] [--share PROC | --copy PROC] "
             "[--as NAME]\n"
             "                [-c 'CMD; CMD ...']\n\n"
             "Run nsh, a shell over the namespace calls, as an application "
             "process of\na running machine: interactive (lines from stdin), "
             "or the commands of -c.\n\n"
             "  --name MACHINE  the machine (default: default)\n"
             "  --share PROC    share PROC's namespace (a pid or a name as "
             "'uksim ps'\n"
             "                  shows); default: a fresh namespace\n"
             "  --copy PROC     start with a copy of PROC's namespace\n"
             "  --as NAME       the process's name (default: nsh)\n"
             "  -c CMDS         run CMDS and exit with the last command's "
             "status\n\n"
             "builtins:\n");
  struct nsh_io io = {.f = f, .err = stderr};
  nsh_help(&io);
  return st;
}

int cmd_sh(int argc, char **argv) {
  static const struct option opts[] = {{"name", required_argument, NULL, 'n'},
                                       {"share", required_argument, NULL, 's'},
                                       {"copy", required_argument, NULL, 'y'},
                                       {"as", required_argument, NULL, 'a'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *machine = "default", *proc = NULL, *as = "nsh", *cmds = NULL;
  uint32_t rf = 0;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
    switch (c) {
    case 'n':
      machine = optarg;
      break;
    case 's':
    case 'y':
      if (proc) {
        fprintf(stderr, "uksim sh: give one of --share, --copy\n");
        return 2;
      }
      proc = optarg;
      rf = c == 'y' ? NS_RFNAMEG : 0;
      break;
    case 'a':
      as = optarg;
      break;
    case 'c':
      cmds = optarg;
      break;
    case 'h':
      return usage(stdout, 0);
    default:
      return usage(stderr, 2);
    }
  }
  if (optind != argc)
    return usage(stderr, 2);
  mach_client mc;
  if (cli_attach("sh", &mc, machine, proc, rf, as) < 0) {
    mach_close(&mc);
    return 1;
  }
  struct nsh sh;
  nsh_init(&sh, stdout, stderr);
  sh.kernel_fd = atoi(getenv("UKSIM_FD")); /* cli_attach set it */
  int st = cmds ? nsh_run(&sh, cmds, strlen(cmds))
                : nsh_loop(&sh, 0, isatty(0) ? "nsh% " : NULL);
  fflush(stdout);
  mach_close(&mc);
  return st;
}
