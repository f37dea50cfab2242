/* uksim run on a machine with a backup OS (Orthros, issue 14): what the
 * runner adds to a run whose kernels may die (cmd_run.c, run_os.c). */
#ifndef UKSIM_RUN_OS_H
#define UKSIM_RUN_OS_H

#include <stdbool.h>

#include "machine.h"
#include "scn.h"
#include "scn_eval.h"

/* How long the runner waits for a new active OS to answer ScenarioWait
 * after the one it asked died (a failover: detection, fence, takeover):
 * far beyond a heartbeat timeout of the scenario's (at most a minute). */
#define RUN_OS_WAIT_MS 90000
/* OS trace files joined (trace, trace.os2 ... trace.osN): the machine's
 * OS numbers grow by one per boot; a run with more is cut there. */
#define RUN_OS_TRACES_MAX 64

/* The scenario's machine statement into the machine's options: nic0's
 * ports, --backup, the heartbeat and its timeout, a user disk made in disk_dir
 * (a new temporary directory, its path in disk_dir[len], "" for none).  0, or
 * -1 with the reason on stderr. */
int run_os_opts(const struct scn *s, struct mach_opts *m, char *disk_dir,
                size_t len);

/* Whether a ScenarioWait that failed with status st is worth asking again:
 * the active died and a backup may take over. */
bool run_os_retry(const struct mach_opts *m, int st);

/* Asks the machine for its Table 5 into facts (usable_os, usable_mib;
 * usable_error when it cannot say). */
void run_os_usable(mach_client *mc, struct scn_facts *facts);

/* Joins the traces of the 2nd and later OSes (trace.os2 ...) to trace, in
 * OS order, removing them: steps go on from the previous file's last,
 * times never go back (a kernel's first events, before it took over,
 * count from its own boot).  0, or -1 with the reason on stderr. */
int run_os_join(const char *trace);

#endif
