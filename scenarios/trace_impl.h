/* Private to libscn: what the JSON Lines reader (trace.c) and the binary
 * reader (trace_pb.c) share.  Each decodes one event at a time and hands it
 * to scn__reader_add, which checks what holds across events (steps and
 * times never go back, the limits) and then keeps the event in a trace or
 * passes it to a callback. */
#ifndef UKSIM_TRACE_IMPL_H
#define UKSIM_TRACE_IMPL_H

#include "scn_trace.h"

struct scn__reader {
  const char *file;
  struct scn_err *err;
  struct scn_trace *tr; /* collects the events, or NULL: fn takes them */
  scn_trace_fn *fn;
  void *arg;
  int stopped;           /* what fn returned when it asked to stop */
  struct scn_event prev; /* the last event taken, if n > 0 */
  size_t n;              /* events taken */
  size_t cap;            /* events allocated in tr */
  size_t keep;           /* stop quietly after this many events, 0: never */
  int line;              /* of the input, 0 for a binary trace */
};

/* Starts a reader that collects into a new trace (returned). */
struct scn_trace *scn__reader_collect(struct scn__reader *r, const char *file,
                                      size_t keep, struct scn_err *err);
/* Starts a reader that passes each event to fn. */
void scn__reader_stream(struct scn__reader *r, const char *file,
                        scn_trace_fn *fn, void *arg, struct scn_err *err);

/* Fills r->err with "file:line: message" (or "file: event N: message" in a
 * binary trace) and returns -1. */
int scn__reader_bad(struct scn__reader *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Takes the next event.  0; -1 for a bad one (r->err filled); 1 when the
 * reader wants no more (keep reached, or fn asked to stop). */
int scn__reader_add(struct scn__reader *r, const struct scn_event *e);

/* Copies s into out (cap bytes with the NUL); a longer s is an error, or is
 * cut at a UTF-8 character boundary if cut.  what names the field. */
int scn__reader_str(struct scn__reader *r, const char *what, const char *s,
                    size_t len, char *out, size_t cap, bool cut);

/* The end of a collecting read: the trace, or NULL (freed) if rc < 0. */
struct scn_trace *scn__reader_done(struct scn__reader *r, int rc);

/* The JSON Lines reader over a whole buffer, and the binary one.  0, -1 or
 * 1 as scn__reader_add. */
int scn__read_jsonl(struct scn__reader *r, const char *buf, size_t len);
int scn__read_pb(struct scn__reader *r, const uint8_t *buf, size_t len);

/* scn_trace_each over a JSON Lines stream. */
int scn__each_jsonl(const char *file, FILE *in, scn_trace_fn *fn, void *arg,
                    struct scn_err *err);

#endif
