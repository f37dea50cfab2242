/* The executor's journal (cli/scn_exec.c): the experimenter's notebook of
 * a run on a machine with a backup OS, DIR/exec.journal in the runner's
 * directory, outside the machine.  The first kernel writes it whole before
 * it starts anything, and again before each action and after each spawn;
 * the next active reads it to go on after a failover.  Its head holds the
 * run's start on the monotonic clock, which the runner's tcp-clients
 * (tcp_client.c) read too: the trace's times count from it. */
#ifndef UKSIM_SCN_JOURNAL_H
#define UKSIM_SCN_JOURNAL_H

#include <stdint.h>

#define SCN_JOURNAL_MAGIC 0x6c6e72756f6a6e78ull /* "xnjourn" */
#define SCN_JOURNAL_NAME "exec.journal"

struct scn_journal_head {
  uint64_t magic;
  uint64_t t0_ns;
  uint32_t nactions, napps; /* then a byte per action (fired) and per app
                               (spawned) */
};

/* The run's start as the journal in dir holds it: 0, or -1 when the
 * journal is not written yet (or is not one). */
int scn_journal_t0(const char *dir, uint64_t *t0_ns);

/* Removes the journal a previous run left in dir (a kept --dump-dir), so
 * that scn_journal_t0 reads this run's. */
void scn_journal_clear(const char *dir);

#endif
