/* Trace files in both formats, and trace events for people.
 *
 * The kernel writes JSON Lines (scenarios/README.md "Trace format"); a run
 * can also keep its trace as one protobuf-c message (trace.proto), the
 * form that crosses version boundaries.  Both hold the same events, and a
 * reader tells them apart by the first byte: '{' (or an empty file) is
 * JSON Lines, anything else must be the binary form.  Every reader checks
 * the events as timeline.h's reader does and refuses a bad trace with a
 * message, never a crash.
 */
#ifndef UKSIM_SCN_TRACE_H
#define UKSIM_SCN_TRACE_H

#include <stdio.h>

#include "timeline.h"

#define SCN_TRACE_PB_MAX (64u << 20)  /* bytes in a binary trace file */
#define SCN_TRACE_MAGIC "uksim-trace" /* Trace.magic */
#define SCN_TRACE_VERSION 1           /* Trace.version */
/* Bytes scn_event_text writes at most (it cuts to the len it is given). */
#define SCN_EVENT_TEXT_MAX (3 * SCN_INST_MAX + SCN_TEXT_MAX + 128)

enum scn_trace_format { SCN_TRACE_JSONL, SCN_TRACE_PB };

/* Called with each event in trace order.  Returns 0 to go on, or a
 * positive value to stop the reading, which then returns that value. */
typedef int scn_trace_fn(const struct scn_event *e, void *arg);

/* The format of the trace at path.  0, or -1 with *err filled. */
int scn_trace_format(const char *path, enum scn_trace_format *fmt,
                     struct scn_err *err);

/* Reads the whole trace at path, in either format.  A new trace, or NULL
 * with *err filled ("file:line: message", or "file: event N: message"). */
struct scn_trace *scn_trace_load(const char *path, struct scn_err *err);

/* Passes every event of the trace at path to fn, in order, keeping none:
 * a JSON Lines trace may then be longer than SCN_TRACE_EVENTS_MAX.
 * Returns 0 when fn took every event, -1 with *err filled for a trace that
 * cannot be read or is bad (the events before the bad one were passed),
 * or the first non-zero value fn returned. */
int scn_trace_each(const char *path, scn_trace_fn *fn, void *arg,
                   struct scn_err *err);

/* Writes tr to path as a binary trace (trace.proto).  0 or a negative
 * errno. */
int scn_trace_write_pb(const struct scn_trace *tr, const char *path);

/* Reads a binary trace from len bytes of buf; file names it in messages.
 * A new trace, or NULL with *err filled. */
struct scn_trace *scn_trace_parse_pb(const char *file, const void *buf,
                                     size_t len, struct scn_err *err);

/* Writes e as one JSON Lines line, keys in the kernel's order.  0 or
 * -EIO. */
int scn_event_json(const struct scn_event *e, FILE *out);
/* Writes ,"key":"s" with s escaped (", \ and control bytes); nothing for a
 * NULL or empty s (an absent key).  The kernel writes its trace with it
 * too, so both writers give the same bytes (and the same trace hash). */
void scn_json_str(FILE *f, const char *key, const char *s);

/* Writes every event of tr as JSON Lines.  0 or -EIO. */
int scn_trace_write_json(const struct scn_trace *tr, FILE *out);

/* One line (no newline) that tells a person what e means: its step, its
 * virtual time in ms, who did it (to whom, for a message), and what
 * happened in plain words, ending with the event's name where the words
 * do not start with it:
 *   [   42]    1.250ms  ap1 -> kvs          send req 65537 kvs.put
 *   [   57]    2.000ms  kvs                 sees the flag, saves... (prepare)
 * Cut to fit len bytes (len 0 writes nothing); the whole line
 * fits in SCN_EVENT_TEXT_MAX. */
void scn_event_text(const struct scn_event *e, char *buf, size_t len);

/* The SHA-256 of the bytes of the file at path, as 64 lowercase hex
 * digits and a NUL: two runs with equal hashes wrote the same trace.  0 or
 * a negative errno. */
int scn_trace_hash(const char *path, char hex[65]);

#endif
