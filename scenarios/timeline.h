/* Traces and timelines: read a kernel trace (JSON Lines, scenarios/README.md
 * "Trace format") and draw it as a sequence diagram like Fig. 8 of the AnT
 * paper, as a self-contained SVG or an HTML page embedding it.
 *
 * The reader checks every line against the schema and refuses the first bad
 * one as "file:line: message"; a trace it accepts draws without error.  The
 * events are copied into fixed-size fields, so the trace holds no pointer
 * into the input.  Lifelines are the kernel, then every actor and peer in
 * the order they first appear.
 */
#ifndef UKSIM_TIMELINE_H
#define UKSIM_TIMELINE_H

#include <stdint.h>
#include <stdio.h>

#include "scn.h"

#define SCN_TRACE_EVENTS_MAX 200000 /* events in a trace (~100 MB read) */
#define SCN_TRACE_LINE_MAX 65536    /* bytes in a line, without newline */
#define SCN_TRACE_ACTORS_MAX 64     /* lifelines */

/* One trace line.  Absent strings are empty; has_* say whether the
 * integers were given. */
struct scn_event {
  uint64_t step;
  uint64_t t; /* virtual time, ns */
  enum scn_ev ev;
  char actor[SCN_INST_MAX + 1];
  char peer[SCN_INST_MAX + 1];
  char svc[SCN_NAME_MAX + 1];
  char op[SCN_INST_MAX + 1];
  char text[SCN_TEXT_MAX + 1]; /* cut at a character boundary if longer */
  uint64_t req;
  int64_t status;
  bool has_req;
  bool has_status;
  int line; /* in the trace file */
};

struct scn_trace {
  struct scn_event *ev;
  size_t n;
  char (*actors)[SCN_INST_MAX + 1]; /* lifelines; actors[0] is "kernel" */
  size_t nactors;
};

/* Reads a whole trace from in; file names it in messages.  Returns a new
 * trace, or NULL with *err filled ("file:line: message"). */
struct scn_trace *scn_trace_read(const char *file, FILE *in,
                                 struct scn_err *err);

/* Reads the first max events (at most SCN_TRACE_EVENTS_MAX) and stops
 * there: the rest of in is neither read nor checked.  max 0: all. */
struct scn_trace *scn_trace_read_first(const char *file, FILE *in, size_t max,
                                       struct scn_err *err);

/* The same as scn_trace_read, from len bytes of buf. */
struct scn_trace *scn_trace_parse(const char *file, const char *buf, size_t len,
                                  struct scn_err *err);

void scn_trace_free(struct scn_trace *tr);

/* The lifeline index of name, or -1. */
int scn_trace_actor(const struct scn_trace *tr, const char *name);

/* Writes the timeline as an SVG document.  0, or -EIO if out failed. */
int scn_timeline_svg(const struct scn_trace *tr, FILE *out);

/* Writes the overview of the trace as an SVG document (timeline_overview.c):
 * a lane per lifeline with the replacement and failover phases as coloured
 * bands, and each service's queue length over time.  0, or -EIO. */
int scn_timeline_overview_svg(const struct scn_trace *tr, FILE *out);

/* "1.250ms": virtual time ns in the unit that reads best, into buf. */
void scn_time_text(uint64_t ns, char *buf, size_t n);

/* Writes s with XML's special characters escaped; bytes XML 1.0 forbids
 * become '?'.  s should be UTF-8. */
void scn_xml_escaped(FILE *out, const char *s);

/* Writes an HTML page with a heading (title, escaped), the overview and,
 * beside it, the message-level diagram, both SVG inline.  0, or -EIO. */
int scn_timeline_html(const struct scn_trace *tr, const char *title, FILE *out);

#endif
