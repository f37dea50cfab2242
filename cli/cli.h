/* The uksim subcommands.  Each takes argv with argv[0] = its own name and
 * returns the process exit status: 0 success, 1 failure, 2 bad usage. */
#ifndef UKSIM_CLI_H
#define UKSIM_CLI_H

#include <stdint.h>

struct cli_cmd {
  const char *name;
  int (*fn)(int argc, char **argv);
  const char *help; /* NULL: hidden */
};

int cmd_run(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_explore(int argc, char **argv);
int cmd_ps(int argc, char **argv);
int cmd_svc(int argc, char **argv);
int cmd_replace(int argc, char **argv);
int cmd_spawn(int argc, char **argv); /* cmd_spawn.c */
int cmd_trace(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_sh(int argc, char **argv);      /* cmd_sh.c, the shell in apps/nsh */
int cmd_mount(int argc, char **argv);   /* cmd_mount.c, FUSE in nsfuse.c */
int cmd_os(int argc, char **argv);      /* cmd_os.c: the partition */
int cmd_fault(int argc, char **argv);   /* cmd_fault.c, Orthros */
int cmd_kupdate(int argc, char **argv); /* cmd_kupdate.c, issue 15 */
/* cmd_new.c: uksim new-server NAME.  NAME names the service, the binary
 * and the scenario's processes, whose instances the kernel names
 * "NAME.GENERATION" in KABI_NAME_MAX bytes: hence the room left. */
#define NEW_NAME_MAX 24
int cmd_new_server(int argc, char **argv);

/* Nodes (issue 16): cmd_node.c (hello, lookup), cmd_exportfs.c. */
int cmd_node(int argc, char **argv);
int cmd_exportfs(int argc, char **argv);
int cmd_import(int argc, char **argv);

/* uksim 9p serve ADDR ... | uksim 9p ADDR ls|cat|write|stat|mkdir|rm PATH */
int p9_cmd_main(int argc, char **argv);
int cmd_kernel(int argc, char **argv); /* the role the machine starts */

/* A decimal number in [min, max] given as option opt of command cmd
 * (include/uksim/num.h, the one parser); 0, or -1 with "uksim CMD: OPT:
 * 'V' is not a number in MIN..MAX" on stderr. */
int cli_number(const char *cmd, const char *opt, const char *v, uint64_t min,
               uint64_t max, uint64_t *out);

/* Checks the partition a machine booted with m would get (cores, hardware
 * blocks): -1 when it is fine, else 2 after "uksim CMD: why" on stderr. */
struct mach_opts;
int cli_part_check(const char *cmd, const struct mach_opts *m);

/* Prints the latency summary of every service from kernel data. */
struct uk_kdata;
void cli_print_summary(const struct uk_kdata *kd);

#endif /* UKSIM_CLI_H */
