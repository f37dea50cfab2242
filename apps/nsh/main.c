/* nsh as a program the kernel spawns (`spawn nsh -c '...'` in a scenario,
 * mach_spawn in a test): the shell in a process that already has its
 * kernel connection, reading -c's commands or its stdin.  `uksim sh` is
 * the same shell in a process that attaches itself. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nsh.h"

int main(int argc, char **argv) {
  struct nsh sh;
  nsh_init(&sh, stdout, stderr);
  if (argc == 3 && strcmp(argv[1], "-c") == 0)
    return nsh_run(&sh, argv[2], strlen(argv[2]));
  if (argc != 1) {
    fprintf(stderr, "usage: nsh [-c 'CMD; CMD ...']\n");
    return 2;
  }
  const char *fd = getenv("UKSIM_FD");
  sh.kernel_fd = fd ? atoi(fd) : -1;
  return nsh_loop(&sh, 0, NULL);
}
