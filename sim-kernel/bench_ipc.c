#include <stdio.h>
#include "cli.h"
int bench_ipc_main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  fprintf(stderr, "not yet\n");
  return 1;
}
