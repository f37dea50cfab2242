/* Helpers of the timeline tests (test_timeline.c, test_timeline_overview.c):
 * a trace that must be accepted, and counting what a drawing holds. */
#ifndef UKSIM_TEST_TIMELINE_H
#define UKSIM_TEST_TIMELINE_H

#include <criterion/criterion.h>
#include <string.h>

#include "timeline.h"

/* The trace of text, which must be accepted (freed by the caller). */
static inline struct scn_trace *read_ok(const char *text) {
  struct scn_err err = {0};
  struct scn_trace *tr = scn_trace_parse("t.jsonl", text, strlen(text), &err);
  cr_assert_not_null(tr, "refused: %s", err.text);
  return tr;
}

/* How many times needle occurs in hay (overlapping ones too). */
static inline int count(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
    n++;
  return n;
}

#endif
