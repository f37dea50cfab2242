/* The scenario executor's namespace groups (scn_ns.c): a group held for a
 * declared process from its spawn to the end of the run, and processes
 * spawned into such a group.  Private to cli/scn_exec.c. */
#ifndef UKSIM_SCN_NS_H
#define UKSIM_SCN_NS_H

#include <stdbool.h>
#include <stdint.h>

#include "kern.h"
#include "scn.h"

/* References on a process's group, root and current directory, taken when
 * it was spawned: the group stays what the scenario names PROC's
 * namespace after PROC has exited, so later binds, shares and readers
 * still find it. */
struct scn_ns_hold {
  bool held;
  uint32_t ns, root, cwd;
};

/* Holds process p's group; 0 or -errno (p has no namespace). */
int scn_ns_hold(struct kern *k, uint32_t p, struct scn_ns_hold *h);

/* Lets go of h (if held) and sends the clunks that makes due. */
void scn_ns_drop(struct kern *k, struct scn_ns_hold *h);

/* Gives process p, just spawned (it has made no call), h's group instead
 * of the fresh one kern__spawn gave it: shared, a copy or a clean group
 * with h's root (rfork(2)'s RFNAMEG, RFCNAMEG).  Its descriptor table
 * stays empty.  0, or -errno with p left with no namespace (the caller
 * ends it). */
int scn_ns_enter(struct kern *k, uint32_t p, const struct scn_ns_hold *h,
                 enum scn_ns_kind kind);

#endif /* UKSIM_SCN_NS_H */
