/* The scenario executor (scn_exec.c): the kernel's hooks (struct kern_ops,
 * sim-kernel/kern.h) that run a scenario file inside the kernel process.
 * Included by cmd_kernel.c, which installs them. */
#ifndef UKSIM_SCN_EXEC_H
#define UKSIM_SCN_EXEC_H

#include "kern.h"

/* Fills the executor's members of *ops (start ... wait). */
void scn_exec_ops(struct kern_ops *ops);

/* The run's start on the monotonic clock, as the executor's journal in
 * dir holds it (the trace's times count from it): 0, or -1 when the
 * journal is not written yet (or is not one). */
int scn_exec_journal_t0(const char *dir, uint64_t *t0_ns);

/* Removes the journal a previous run left in dir (a kept --dump-dir), so
 * that scn_exec_journal_t0 reads this run's. */
void scn_exec_journal_clear(const char *dir);

#endif /* UKSIM_SCN_EXEC_H */
