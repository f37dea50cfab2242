/* The JSON Lines trace reader.
 *
 * jansson parses each line; this file checks it against the schema of
 * scenarios/README.md "Trace format" (required keys, types, ranges, known
 * event names) and hands the event to the shared reader (trace_read.c),
 * which checks order and limits.  Keys it does not know are ignored, so
 * the kernel may add some without breaking old readers.  A line is
 * checked for its length before it is parsed, so any input is read or
 * refused in bounded memory.
 */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "scn_impl.h"
#include "trace_impl.h"

/* An integer key in [min, max]; absent is an error only if required. */
static int get_int(struct scn__reader *r, json_t *o, const char *key,
                   bool required, json_int_t min, json_int_t *out, bool *has) {
  json_t *v = json_object_get(o, key);
  if (has != NULL)
    *has = v != NULL;
  if (v == NULL)
    return required ? scn__reader_bad(r, "missing key \"%s\"", key) : 0;
  if (!json_is_integer(v) || json_integer_value(v) < min)
    return scn__reader_bad(r, "\"%s\" must be an integer of at least %lld", key,
                           (long long)min);
  *out = json_integer_value(v);
  return 0;
}

/* A string key of at most cap - 1 bytes, or cut to fit if cut. */
static int get_str(struct scn__reader *r, json_t *o, const char *key,
                   bool required, char *out, size_t cap, bool cut) {
  json_t *v = json_object_get(o, key);
  if (v == NULL)
    return required ? scn__reader_bad(r, "missing key \"%s\"", key) : 0;
  if (!json_is_string(v))
    return scn__reader_bad(r, "\"%s\" must be a string", key);
  return scn__reader_str(r, key, json_string_value(v), json_string_length(v),
                         out, cap, cut);
}

static int get_ev(struct scn__reader *r, json_t *o, enum scn_ev *ev) {
  char name[32] = "";
  if (get_str(r, o, "ev", true, name, sizeof name, true) < 0)
    return -1;
  if (scn_ev_parse(name, ev) < 0)
    return scn__reader_bad(r, "unknown event \"%s\"", name);
  return 0;
}

/* Fills e from the object o; 0 or -1. */
static int fill(struct scn__reader *r, json_t *o, struct scn_event *e) {
  json_int_t step, t, req = 0, status = 0;
  if (get_int(r, o, "step", true, 1, &step, NULL) < 0 ||
      get_int(r, o, "t", true, 0, &t, NULL) < 0 || get_ev(r, o, &e->ev) < 0 ||
      get_str(r, o, "actor", true, e->actor, sizeof e->actor, false) < 0 ||
      get_str(r, o, "peer", false, e->peer, sizeof e->peer, false) < 0 ||
      get_str(r, o, "svc", false, e->svc, sizeof e->svc, false) < 0 ||
      get_str(r, o, "op", false, e->op, sizeof e->op, false) < 0 ||
      get_str(r, o, "text", false, e->text, sizeof e->text, true) < 0 ||
      get_int(r, o, "req", false, 0, &req, &e->has_req) < 0 ||
      get_int(r, o, "status", false, INT64_MIN, &status, &e->has_status) < 0)
    return -1;
  e->step = (uint64_t)step;
  e->t = (uint64_t)t;
  e->req = (uint64_t)req;
  e->status = (int64_t)status;
  e->line = r->line;
  return 0;
}

static bool blank(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
      return false;
  return true;
}

/* One line of input (no newline); blank lines are skipped.  0, -1 for a
 * bad line, 1 when the reader wants no more (the rest is not read). */
static int take_line(struct scn__reader *r, const char *s, size_t n) {
  struct scn_event e = {0};
  json_error_t je;
  json_t *o;
  int rc;
  if (r->keep != 0 && r->n == r->keep)
    return 1;
  if (n > SCN_TRACE_LINE_MAX)
    return scn__reader_bad(r, "line longer than %d bytes", SCN_TRACE_LINE_MAX);
  if (blank(s, n))
    return 0;
  o = json_loadb(s, n, JSON_REJECT_DUPLICATES, &je);
  if (o == NULL)
    return scn__reader_bad(r, "bad JSON at column %d: %s", je.column, je.text);
  if (!json_is_object(o))
    rc = scn__reader_bad(r, "expected a JSON object");
  else
    rc = fill(r, o, &e);
  json_decref(o);
  return rc < 0 ? -1 : scn__reader_add(r, &e);
}

int scn__read_jsonl(struct scn__reader *r, const char *buf, size_t len) {
  size_t at = 0;
  int rc = 0;
  while (rc == 0 && at < len) {
    const char *nl = memchr(buf + at, '\n', len - at);
    size_t n = nl ? (size_t)(nl - (buf + at)) : len - at;
    r->line++;
    rc = take_line(r, buf + at, n);
    at += n + 1;
  }
  return rc;
}

struct scn_trace *scn_trace_parse(const char *file, const char *buf, size_t len,
                                  struct scn_err *err) {
  struct scn__reader r;
  scn__reader_collect(&r, file, 0, err);
  return scn__reader_done(&r, scn__read_jsonl(&r, buf, len));
}

/* Reads a line of at most max bytes into buf (max + 1 bytes, so a longer
 * line is seen).  Returns its length, or -1 at the end of the input. */
static long read_line(FILE *in, char *buf, size_t max) {
  size_t n = 0;
  int c;
  while ((c = getc(in)) != EOF && c != '\n')
    if (n <= max)
      buf[n++] = (char)c;
  if (c == EOF && n == 0)
    return -1;
  return (long)n;
}

/* Reads in line by line into r.  0, -1 or 1 as take_line. */
static int read_stream(struct scn__reader *r, FILE *in) {
  char *buf = xcalloc(SCN_TRACE_LINE_MAX + 1, 1);
  long n;
  int rc = 0;
  while (rc == 0 && (n = read_line(in, buf, SCN_TRACE_LINE_MAX)) >= 0) {
    r->line++;
    rc = take_line(r, buf, (size_t)n);
  }
  if (rc == 0 && ferror(in))
    rc = scn__reader_bad(r, "cannot read: %s", strerror(errno));
  free(buf);
  return rc;
}

struct scn_trace *scn_trace_read_first(const char *file, FILE *in, size_t max,
                                       struct scn_err *err) {
  struct scn__reader r;
  scn__reader_collect(&r, file, max, err);
  return scn__reader_done(&r, read_stream(&r, in));
}

struct scn_trace *scn_trace_read(const char *file, FILE *in,
                                 struct scn_err *err) {
  return scn_trace_read_first(file, in, 0, err);
}

int scn__each_jsonl(const char *file, FILE *in, scn_trace_fn *fn, void *arg,
                    struct scn_err *err) {
  struct scn__reader r;
  int rc;
  scn__reader_stream(&r, file, fn, arg, err);
  rc = read_stream(&r, in);
  return rc == 1 ? r.stopped : rc;
}
