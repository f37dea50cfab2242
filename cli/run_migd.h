/* The migration servers of a scenario with tasks (issue 16; the
 * protocol between this runner's side and the executor's is
 * scn_exec_mig.h): one uksim-migd per node, the machine's own
 * (SCN_LOCAL_NODE) first, each on a free loopback port in
 * RUN_MIGD_PORT_LO..RUN_MIGD_PORT_HI and proving a key generated for the
 * run (DIR/migd.key, mode 0600).  Outside the machine and its trace, as
 * the peer nodes are. */
#ifndef UKSIM_CLI_RUN_MIGD_H
#define UKSIM_CLI_RUN_MIGD_H

#include <stddef.h>

#include "scn.h"

/* A scenario whose tasks call services (a ctask or a ktask) gives each
 * node, the machine's own too, services of its own: a machine
 * (scn-PID-mig-NODE, its output in the run's node-NODE.log) with a
 * counter, ctr_srv registered as RUN_MIGD_SERVICE, and kvs, and a network
 * message server (netmsg serve, on a free port in the range below) that
 * knows the other nodes' as peers and to which the node's migration
 * server advertises itself (uksim-migd --netmsg).  So a task calls its
 * origin's services wherever it runs (sim-kernel/migd.h, "Service
 * calls"). */
#define RUN_MIGD_SERVICE "ctr"

/* Below the ephemeral range (32768 and up) and the machines' NIC ranges
 * (from 20000), as the node tests' ports (tests/integration/test_nodes.c):
 * a port is probed free before a server is started on it, and another
 * one tried if the server could not take it. */
#define RUN_MIGD_PORT_LO 10000
#define RUN_MIGD_PORT_HI 11999
#define RUN_MIGD_TRIES 8
/* How long a migration server may take to answer its first `ps`. */
#define RUN_MIGD_START_MS 5000
/* After the run, how long the tasks may take to end (or to stop
 * printing: mtask's echo thread waits for input to its end), all
 * together, and how long an origin's console must stay still to count as
 * complete. */
#define RUN_MIGD_END_MS 30000
#define RUN_MIGD_QUIET_MS 1000

struct run_migd;

/* Starts the servers for s in dir (none when s has no task): NULL with
 * why set when one could not start (the ones started are stopped). */
struct run_migd *run_migd_start(const struct scn *s, const char *dir, char *why,
                                size_t len);
/* After the run: waits for each task of DIR/tasks to end where it runs
 * and keeps the lines its origin printed for it in DIR/task-NAME.out. */
void run_migd_collect(struct run_migd *r);
/* Stops the servers (their tasks die with them) and frees r. */
void run_migd_stop(struct run_migd *r);

#endif
