/* Making the CLI process itself a uksim application process (`uksim sh`,
 * `uksim mount`): the machine's Attach gives it a kernel connection, and
 * UKSIM_FD names it so that libuksim's ns_* calls work here as in a
 * process the kernel spawned. */
#ifndef UKSIM_CLI_ATTACH_H
#define UKSIM_CLI_ATTACH_H

#include <stdint.h>

#include "machine.h"

/* The process slot of PROC, a pid or a name as `uksim ps` prints them, in
 * kd: 0 and *slot, or -1 with why in err ("no process 'x'", "2 processes
 * are named 'x': give a pid"). */
int cli_proc_slot(const struct uk_kdata *kd, const char *proc, int *slot,
                  char *err, size_t errlen);

/* Connects mc to machine `machine`, attaches this process as `as` with the
 * namespace of PROC shared (rfflags 0), copied (NS_RFNAMEG) or clean
 * relative to it (NS_RFCNAMEG), or a fresh one (proc NULL), and sets
 * UKSIM_FD.  mc stays connected (the caller closes it).  0, or -1 after
 * "uksim CMD: why" on stderr. */
int cli_attach(const char *cmd, mach_client *mc, const char *machine,
               const char *proc, uint32_t rfflags, const char *as);

#endif
