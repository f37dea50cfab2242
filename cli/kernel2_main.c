/* `uksim-kernel2`: the second kernel version (issue 15, kernel update by
 * process migration).  The same kernel as `uksim kernel`, built from the
 * same sources in kernel-data layout v2 (uksim/kdata.h, UK_KDATA_V2: the
 * process table split in two, fields reordered and added, other state
 * encodings).  The machine boots it as a backup OS with `--kernel-bin`
 * and takes arguments exactly as for `uksim kernel`: argv[1] is "kernel".
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int main(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "kernel") != 0) {
    fprintf(stderr, "usage: uksim-kernel2 kernel [uksim kernel options]\n"
                    "(started by the machine, not by hand)\n");
    return 2;
  }
  return cmd_kernel(argc - 1, argv + 1);
}
