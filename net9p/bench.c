/* bench.c: placeholder, replaced below. */
#include <stdio.h>

#include "cmd.h"

int p9_bench_main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  fprintf(stderr, "uksim bench 9p: not yet\n");
  return 1;
}
