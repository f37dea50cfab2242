/* Process migration in a scenario (issue 16): the executor's side
 * (scn_exec_mig.c, in the kernel) and what it shares with the runner's
 * side (run_migd.c, in `uksim run`).
 *
 * The runner starts one migration server (uksim-migd) per node before the
 * machine boots, the machine's own node SCN_LOCAL_NODE among them, each
 * on a free loopback port with a key file it generated, and writes where
 * they are to MIG_CONF in the run's private directory.  The executor
 * reads it, starts the tasks, migrates them and, when the scenario's
 * actions are done, looks where each runs; it writes MIG_TASKS for the
 * runner, which waits for the tasks to end and keeps each one's output.
 * Nothing of this (ports, task numbers, times) reaches the trace:
 * scn_eval.h lists the words that do. */
#ifndef UKSIM_CLI_SCN_EXEC_MIG_H
#define UKSIM_CLI_SCN_EXEC_MIG_H

#include <stdbool.h>

#include "kern.h"
#include "scn.h"

/* In the run's directory.  MIG_CONF's lines: "exe PATH" (uksim-migd),
 * "key PATH", "mtask PATH", "ctask PATH" and one "node NAME ADDR" per
 * node (ADDR tcp!127.0.0.1!PORT).  MIG_TASKS's: one "NAME ORIGIN ID NODE
 * ID" per task: its origin node and number there, the node it was last
 * seen on and its number there. */
#define MIG_CONF "migd.conf"
#define MIG_TASKS "tasks"
/* Each migration server's console (stdout: its tasks' lines) and
 * notices (stderr): migd-NODE.out and migd-NODE.err. */
#define MIG_OUT_FMT "migd-%s.out"
/* A control command's output, overwritten by each. */
#define MIG_CTL_OUT "migd-ctl.out"
/* Nodes with a migration server: the declared ones and the machine's. */
#define MIG_NODES_MAX (SCN_NODES_MAX + 1)

struct scn_mig;

/* Reads DIR/MIG_CONF for s (NULL with why set when it cannot: a run
 * without the runner's directory or servers).  It lives as long as the
 * kernel does, as the executor's run.  resume is called when a
 * piece of work the executor waited for is done, so the run goes on. */
struct scn_mig *scn_mig_new(struct kern *k, const struct scn *s,
                            const char *dir, void (*resume)(struct kern *k),
                            char *why, size_t len);
/* Starts every task (the run waits: scn_mig_busy). */
void scn_mig_start_tasks(struct scn_mig *m);
/* A migrate or input action: queued behind what runs. */
void scn_mig_act(struct scn_mig *m, const struct scn_action *a);
/* Whether a control command runs or waits to: under lock-step the
 * scheduler takes no step meanwhile (k->frozen), so where the outcome
 * falls in the trace depends on nothing but the scenario and the seed. */
bool scn_mig_busy(const struct scn_mig *m);
/* Once the scenario's actions are done: looks where each task runs (the
 * census) and writes DIR/MIG_TASKS.  True if it started, false if it is
 * done already (NULL m: no tasks, nothing to do). */
bool scn_mig_census(struct scn_mig *m);

#endif
