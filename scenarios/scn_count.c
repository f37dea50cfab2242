/* Counting what a scenario will run, against what one run can hold.
 *
 * The kernel has SCN_SERVERS_MAX services, and a run's trace names at most
 * SCN_PROCS_MAX processes besides the kernel (its process table holds one
 * more).  A scenario that needs more is refused at the line that goes
 * beyond, when it is parsed: before, the servers past the kernel's table
 * failed to register and the run still passed, and too many processes
 * failed only after the run, when the trace was read.
 *
 * Processes are counted as instances, all that the scenario can start:
 * each server and app; one more instance per replace or restart action;
 * for a server with --restart, one per failure the scenario plans for it
 * (its fault plan entries, those of its replacements, and the crash,
 * panic, hang and kill actions aimed at it), at most N with --restart N
 * (faults are one-shot: a restarted instance runs without its plan); and
 * one dumper per service that an `expect state S equals "FILE"` names;
 * one helper per namespace action (bind, mount, unmount) and one reader
 * per `expect file`.
 * Failures nobody planned (a server running out of memory under
 * --restart always) cannot be counted; the kernel's process table still
 * bounds them while the run goes on.
 */
#include <inttypes.h>
#include <string.h>

#include "scn_impl.h"
#include "timeline.h"

_Static_assert(SCN_PROCS_MAX + 1 <= SCN_TRACE_ACTORS_MAX,
               "a run's processes and the kernel fit the trace reader");

/* The index of declared server name, or -1. */
static int server_index(const struct scn *s, const char *name) {
  for (size_t i = 0; i < s->nservers; i++)
    if (strcmp(s->servers[i].name, name) == 0)
      return (int)i;
  return -1;
}

/* How many instances server i may have in all. */
static uint64_t instances(const struct scn__parser *p, size_t i) {
  const struct scn_server *sv = &p->s->servers[i];
  const struct scn__tally *t = &p->tally[i];
  uint64_t restarts = t->faults;
  if (sv->restart == SCN_RESTART_NEVER)
    restarts = 0;
  else if (sv->restart == SCN_RESTART_LIMIT && sv->restarts < restarts)
    restarts = sv->restarts;
  return 1 + (uint64_t)t->later + restarts;
}

static int check_total(struct scn__parser *p, int col) {
  const struct scn *s = p->s;
  uint64_t servers = 0, dumpers = 0;
  for (size_t i = 0; i < s->nservers; i++) {
    servers += instances(p, i);
    dumpers += p->tally[i].dumped;
  }
  uint64_t n = servers + s->napps + dumpers + p->helpers;
  if (n <= SCN_PROCS_MAX)
    return 0;
  if (p->helpers > 0)
    return scn__fail(
        p, col,
        "%" PRIu64 " processes in one run, more than %d (apps: "
        "%zu; servers: %zu, instances with replacements and "
        "restarts: %" PRIu64 "; dumpers: %" PRIu64 "; namespace helpers: %u)",
        n, SCN_PROCS_MAX, s->napps, s->nservers, servers, dumpers, p->helpers);
  return scn__fail(p, col,
                   "%" PRIu64 " processes in one run, more than %d (apps: "
                   "%zu; servers: %zu, instances with replacements and "
                   "restarts: %" PRIu64 "; dumpers: %" PRIu64 ")",
                   n, SCN_PROCS_MAX, s->napps, s->nservers, servers, dumpers);
}

int scn__count_server(struct scn__parser *p, int col) {
  size_t n = p->s->nservers;
  if (n > SCN_SERVERS_MAX)
    return scn__fail(p, col,
                     "more than %d servers (the kernel has %d services)",
                     SCN_SERVERS_MAX, SCN_SERVERS_MAX);
  p->tally[n - 1] = (struct scn__tally){.faults = p->s->servers[n - 1].nfaults};
  return check_total(p, col);
}

int scn__count_app(struct scn__parser *p, int col) {
  return check_total(p, col);
}

int scn__count_action(struct scn__parser *p, const struct scn_action *a) {
  char base[SCN_INST_MAX + 1];
  if (scn_action_is_ns(a->kind)) /* run by a helper, counted as such */
    return scn__count_helper(p, a->pos.col);
  scn__base_name(a->target, base);
  int i = server_index(p->s, base);
  if (i < 0) /* an app: it is never started again */
    return 0;
  struct scn__tally *t = &p->tally[i];
  switch (a->kind) {
  case SCN_ACT_REPLACE:
    t->later++;
    t->faults += a->nfaults;
    break;
  case SCN_ACT_RESTART:
    t->later++;
    break;
  case SCN_ACT_CRASH:
  case SCN_ACT_PANIC:
  case SCN_ACT_HANG:
  case SCN_ACT_KILL:
    t->faults++;
    break;
  default:
    break;
  }
  return check_total(p, a->pos.col);
}

int scn__count_dump(struct scn__parser *p, int col, const char *service) {
  int i = server_index(p->s, service);
  if (i < 0) /* the parser allows only declared servers: a guard */
    return 0;
  p->tally[i].dumped = true;
  return check_total(p, col);
}

int scn__count_helper(struct scn__parser *p, int col) {
  p->helpers++;
  return check_total(p, col);
}
