/* The exactly-one-answer checker (issue 3's invariant), over the kernel's
 * event trace (JSON Lines or binary, scenarios/README.md "Trace format").
 *
 * For every request (by its kernel-wide number): exactly one send; at most
 * one receive by a server (never executed twice); at most one reply or
 * kernel error answering it; exactly one result delivered to its client
 * after the send -- or none if the client exited first.  The rules live in
 * libscn (scn_answers in scenarios/scn_eval.h), which the scenario
 * runner's expectations use too; this is the file-level wrapper.
 */
#ifndef UKSIM_TRACE_CHECK_H
#define UKSIM_TRACE_CHECK_H

#include <stddef.h>
#include <stdint.h>

struct trace_stats {
  uint64_t events, requests, results, errors, dropped; /* dropped: client
                                                          exited first */
};

/* 0 when the invariant holds; -1 with a message for a person in err
 * (the file and line, the request and what went wrong), also for a trace
 * that cannot be read or breaks the trace format. */
int trace_check(const char *path, struct trace_stats *st, char *err,
                size_t len);

#endif
