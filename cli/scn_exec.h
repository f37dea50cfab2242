/* The scenario executor (scn_exec.c): the kernel's hooks (struct kern_ops,
 * sim-kernel/kern.h) that run a scenario file inside the kernel process.
 * Included by cmd_kernel.c, which installs them. */
#ifndef UKSIM_SCN_EXEC_H
#define UKSIM_SCN_EXEC_H

#include "kern.h"

/* Fills the executor's members of *ops (start ... wait). */
void scn_exec_ops(struct kern_ops *ops);

#endif /* UKSIM_SCN_EXEC_H */
