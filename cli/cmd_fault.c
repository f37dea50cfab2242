/* uksim fault: inject a kernel fault into a running machine (Orthros,
 * issue 14).  With a backup OS (uksim demo --backup --keep), the backup
 * finds the fault and takes over. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "machine.h"

static void fault_usage(FILE *f) {
  fprintf(f,
          "usage: uksim fault [--name MACHINE] [--os N] kernel "
          "panic|hang|crash|\n"
          "                                           deadlock [LOCK]|runaway|"
          "stall-driver\n\n"
          "Inject a fault into the kernel of the active OS (or OS N):\n"
          "  panic  its panic path: a PANIC notice to the backup, then it "
          "exits\n"
          "  hang   its loop stops for good (no heartbeat, no answer)\n"
          "  crash  the machine SIGKILLs it and tells nobody: the backup "
          "finds\n"
          "         it by the missing heartbeat\n"
          "  deadlock [LOCK]  a kernel lock (ica, the default; svc; ns) is "
          "never\n"
          "         released: calls needing it wait, the heartbeat goes on\n"
          "  runaway  the kernel allocates ICA memory and spawns without "
          "limit\n"
          "  stall-driver  the pipe servant no longer wakes its readers\n"
          "  (the last three are found by the backup's monitor:\n"
          "  uksim demo --backup --monitor-interval MS)\n\n"
          "  --name MACHINE   machine (default: default)\n"
          "  --os N           the OS number (default: the active one)\n\n"
          "Exit 0 injected, 1 it could not be (why is said), 2 bad "
          "usage.\n");
}

static int fault_kind(const char *s) {
  if (strcmp(s, "panic") == 0)
    return UKSIM__FAULT__KIND__PANIC;
  if (strcmp(s, "hang") == 0)
    return UKSIM__FAULT__KIND__HANG;
  if (strcmp(s, "crash") == 0)
    return UKSIM__FAULT__KIND__CRASH;
  if (strcmp(s, "deadlock") == 0)
    return UKSIM__FAULT__KIND__DEADLOCK;
  if (strcmp(s, "runaway") == 0)
    return UKSIM__FAULT__KIND__RUNAWAY;
  if (strcmp(s, "stall-driver") == 0)
    return UKSIM__FAULT__KIND__STALL_DRIVER;
  return -1;
}

int cmd_fault(int argc, char **argv) {
  static const struct option opts[] = {{"name", required_argument, NULL, 'n'},
                                       {"os", required_argument, NULL, 'o'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *name = "default";
  uint64_t os = 0;
  optind = 1;
  for (int c; (c = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
    if (c == 'n')
      name = optarg;
    else if (c == 'o') {
      if (cli_number("fault", "--os", optarg, 1, UINT32_MAX, &os) < 0)
        return 2;
    } else if (c == 'h') {
      fault_usage(stdout);
      return 0;
    } else {
      fault_usage(stderr);
      return 2;
    }
  }
  int kind = (optind + 2 == argc || optind + 3 == argc) &&
                     strcmp(argv[optind], "kernel") == 0
                 ? fault_kind(argv[optind + 1])
                 : -1;
  const char *arg = optind + 3 == argc ? argv[optind + 2] : NULL;
  if (arg && kind != UKSIM__FAULT__KIND__DEADLOCK)
    kind = -1; /* only a deadlock takes an argument */
  if (kind < 0) {
    fault_usage(stderr);
    return 2;
  }
  mach_client m;
  if (mach_connect(&m, name) < 0) {
    fprintf(stderr, "uksim fault: %s\n", m.error);
    return 1;
  }
  int r = mach_fault_arg(&m, kind, (uint32_t)os, arg);
  if (r < 0)
    fprintf(stderr, "uksim fault: %s\n", m.error);
  mach_close(&m);
  return r < 0 ? 1 : 0;
}
