/* The exactly-one-answer checker (see trace_check.h): libscn's checker
 * (scenarios/scn_eval.h), fed from a trace file of either format one
 * event at a time, so a trace of any length is checked without being kept.
 */
#include "trace_check.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "scn_eval.h"
#include "scn_trace.h"

static int take(const struct scn_event *e, void *arg) {
  scn_answers_add(arg, e);
  return 0;
}

/* The first broken rule, as "path:line: request N: what". */
static void say_broken(const char *path, const struct scn_answers *a, char *err,
                       size_t len) {
  if (a->what_line > 0)
    snprintf(err, len, "%s:%d: request %" PRIu64 ": %s", path, a->what_line,
             a->what_req, a->what);
  else
    snprintf(err, len, "%s: step %" PRIu64 ": request %" PRIu64 ": %s", path,
             a->what_step, a->what_req, a->what);
}

/* After the last event: the verdict, and the counts. */
static int finish(const char *path, const struct scn_answers *a,
                  struct trace_stats *st, char *err, size_t len) {
  const struct scn_req *r;
  *st = (struct trace_stats){.events = a->events,
                             .requests = a->requests,
                             .results = a->results,
                             .errors = a->errors};
  if (a->broken) {
    say_broken(path, a, err, len);
    return -1;
  }
  if ((r = scn_answers_missing(a, true, &st->dropped)) != NULL) {
    snprintf(err, len, "request %" PRIu64 " of %s was never answered", r->id,
             r->client);
    return -1;
  }
  return 0;
}

int trace_check(const char *path, struct trace_stats *st, char *err,
                size_t len) {
  struct scn_answers a;
  struct scn_err e;
  int rc;
  memset(st, 0, sizeof *st);
  scn_answers_init(&a);
  if (scn_trace_each(path, take, &a, &e) != 0) {
    snprintf(err, len, "%s", e.text);
    rc = -1;
  } else {
    rc = finish(path, &a, st, err, len);
  }
  scn_answers_close(&a);
  return rc;
}
