/* uksim: the command line.  One binary: the user's subcommands, and the
 * hidden `machine` and `kernel` roles it starts itself. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "machine.h"

static const struct cli_cmd cmds[] = {
    {"run", cmd_run, "run a scenario, deterministically (default: the tour)"},
    {"explore", cmd_explore, "run a scenario under many seeds, in parallel"},
    {"demo", cmd_demo, "boot a machine running kvs under free-running load"},
    {"ps", cmd_ps, "list the processes of a running machine"},
    {"svc", cmd_svc, "list the services of a running machine"},
    {"os", cmd_os, "show how a running machine is partitioned among its OSes"},
    {"replace", cmd_replace, "replace the server of a running service"},
    {"spawn", cmd_spawn, "start a server or program in a running machine"},
    {"trace", cmd_trace, "check an event trace (--check)"},
    {"bench", cmd_bench, "run a benchmark (ipc, replace, scenario, 9p, ns)"},
    {"9p", p9_cmd_main, "serve or use a 9P file server"},
    {"sh", cmd_sh, "a shell in a process of a running machine"},
    {"mount", cmd_mount, "a process's namespace at a host directory (FUSE)"},
    {"fault", cmd_fault, "inject a kernel fault: panic, hang, crash (Orthros)"},
    {"new-server", cmd_new_server, "write a server to start from (NAME)"},
    {"node", cmd_node,
     "ask another node (--node-port) who it is or where a "
     "service is"},
    {"exportfs", cmd_exportfs,
     "serve a process's namespace to other nodes "
     "(9P over TCP)"},
    {"import", cmd_import, "mount another node's exported namespace here"},
    {"kupdate", cmd_kupdate,
     "update the kernel: processes move to a backup of another version"},
    {"machine", mach_main, NULL}, /* started by uksim itself */
    {"kernel", cmd_kernel, NULL},
};

static void usage(FILE *f) {
  fprintf(f, "usage: uksim COMMAND [ARGS]\n\n"
             "A userspace laboratory for microkernel OS reliability.\n\n"
             "commands:\n");
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
    if (cmds[i].help)
      fprintf(f, "  %-10s %s\n", cmds[i].name, cmds[i].help);
  fprintf(f, "\n'uksim COMMAND --help' describes each.  With no command, "
             "uksim runs the tour scenario.\n");
}

int main(int argc, char **argv) {
  if (argc < 2)
    return cmd_run(1, (char *[]){"run", NULL});
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
      !strcmp(argv[1], "help")) {
    usage(stdout);
    return 0;
  }
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
    if (!strcmp(argv[1], cmds[i].name))
      return cmds[i].fn(argc - 1, argv + 1);
  fprintf(stderr, "uksim: unknown command '%s'\n\n", argv[1]);
  usage(stderr);
  return 2;
}
