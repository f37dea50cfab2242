/*
 * cmd.h: the net9p command-line entry points, wired into `uksim`.
 *
 *   uksim 9p serve ADDR [--key FILE] [--msize N] [--trace]
 *   uksim 9p ADDR [options] ls|cat|write|stat|mkdir|rm PATH
 *   uksim bench 9p [--json] [--large-mib N] [--seconds S]
 *
 * argv[0] is "9p" in both.  Exit status: 0 ok, 1 failure, 2 bad usage.
 */
#ifndef NET9P_CMD_H
#define NET9P_CMD_H

int p9_cmd_main(int argc, char **argv);
int p9_bench_main(int argc, char **argv);

#endif
