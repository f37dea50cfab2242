/*
 * fuzz_scn.c: libFuzzer target for scenarios/: the scenario parser and the
 * trace reader and timeline renderer.  Every input is parsed as a scenario
 * and read as a trace; what the reader accepts is drawn as SVG and HTML.
 * A parse either gives a tree or a "name:line..." message; crashes,
 * overreads, leaks and hangs are bugs.  Seeds: the shipped scenarios (run.sh
 * copies them in) and corpus/scn.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scn.h"
#include "timeline.h"

static FILE *sink;

static void check_message(const struct scn_err *err, const char *name) {
  if (strncmp(err->text, name, strlen(name)) != 0 ||
      err->text[strlen(name)] != ':')
    abort();
}

static void fuzz_scenario(const char *data, size_t size) {
  struct scn_err err;
  struct scn *s = scn_parse("f.scn", data, size, &err);
  if (s == NULL) {
    check_message(&err, "f.scn");
    return;
  }
  if (s->nservers + s->napps + s->nactions + s->nexpects > SCN_STMT_MAX)
    abort();
  scn_free(s);
}

static void fuzz_trace(const char *data, size_t size) {
  struct scn_err err;
  struct scn_trace *tr = scn_trace_parse("f.jsonl", data, size, &err);
  if (tr == NULL) {
    check_message(&err, "f.jsonl");
    return;
  }
  if (tr->nactors < 1 || tr->nactors > SCN_TRACE_ACTORS_MAX)
    abort();
  if (scn_timeline_svg(tr, sink) < 0 || scn_timeline_html(tr, "fuzz", sink) < 0)
    abort();
  scn_trace_free(tr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (sink == NULL && (sink = fopen("/dev/null", "w")) == NULL)
    abort();
  fuzz_scenario((const char *)data, size);
  fuzz_trace((const char *)data, size);
  return 0;
}
