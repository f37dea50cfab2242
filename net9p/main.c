/*
 * main.c: uksim-9p, a stand-alone driver for the net9p commands with the
 * same argument shape as `uksim`:
 *
 *   uksim-9p 9p serve ADDR ...      (= uksim 9p serve ADDR ...)
 *   uksim-9p 9p ADDR ls PATH        (= uksim 9p ADDR ls PATH)
 *   uksim-9p bench 9p --json        (= uksim bench 9p --json)
 */
#include <stdio.h>
#include <string.h>

#include "cmd.h"

int main(int argc, char **argv) {
  if (argc > 2 && strcmp(argv[1], "bench") == 0)
    return p9_bench_main(argc - 2, argv + 2);
  if (argc > 1 && strcmp(argv[1], "9p") == 0)
    return p9_cmd_main(argc - 1, argv + 1);
  fprintf(stderr, "usage: uksim-9p 9p ... | uksim-9p bench 9p [--json]\n");
  return 2;
}
