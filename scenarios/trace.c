/* The trace reader: JSON Lines in, a checked array of events out.
 *
 * jansson parses each line; this file checks it against the schema of
 * scenarios/README.md "Trace format" (required keys, types, ranges, known
 * event names, steps and times that never go back) and collects the
 * lifelines.  Keys it does not know are ignored, so the kernel may add
 * some without breaking old readers.  Every limit of timeline.h is checked
 * before memory grows, so any input is read or refused in bounded memory.
 */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "scn_impl.h"
#include "timeline.h"

struct reader {
  const char *file;
  struct scn_err *err;
  struct scn_trace *tr;
  size_t cap;  /* events allocated */
  size_t keep; /* stop quietly after this many events, 0: never */
  int line;
};

static int bad(struct reader *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int bad(struct reader *r, const char *fmt, ...) {
  char msg[SCN_ERR_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  scn_err_set(r->err, r->file, r->line, 0, "%s", msg);
  return -1;
}

/* An integer key in [min, max]; absent is an error only if required. */
static int get_int(struct reader *r, json_t *o, const char *key, bool required,
                   json_int_t min, json_int_t *out, bool *has) {
  json_t *v = json_object_get(o, key);
  if (has != NULL)
    *has = v != NULL;
  if (v == NULL)
    return required ? bad(r, "missing key \"%s\"", key) : 0;
  if (!json_is_integer(v) || json_integer_value(v) < min)
    return bad(r, "\"%s\" must be an integer of at least %lld", key,
               (long long)min);
  *out = json_integer_value(v);
  return 0;
}

/* Cuts s to at most cap bytes without splitting a UTF-8 character. */
static size_t cut_utf8(const char *s, size_t len, size_t cap) {
  if (len <= cap)
    return len;
  while (cap > 0 && ((unsigned char)s[cap] & 0xc0) == 0x80)
    cap--;
  return cap;
}

/* A string key of at most cap - 1 bytes, or cut to fit if cut. */
static int get_str(struct reader *r, json_t *o, const char *key, bool required,
                   char *out, size_t cap, bool cut) {
  json_t *v = json_object_get(o, key);
  if (v == NULL)
    return required ? bad(r, "missing key \"%s\"", key) : 0;
  if (!json_is_string(v))
    return bad(r, "\"%s\" must be a string", key);
  size_t n = json_string_length(v);
  const char *s = json_string_value(v);
  if (n == 0)
    return bad(r, "\"%s\" is empty", key);
  if (n >= cap && !cut)
    return bad(r, "\"%s\" is longer than %zu bytes", key, cap - 1);
  n = cut_utf8(s, n, cap - 1);
  memcpy(out, s, n);
  out[n] = '\0';
  return 0;
}

static int get_ev(struct reader *r, json_t *o, enum scn_ev *ev) {
  char name[32] = "";
  if (get_str(r, o, "ev", true, name, sizeof name, true) < 0)
    return -1;
  if (scn_ev_parse(name, ev) < 0)
    return bad(r, "unknown event \"%s\"", name);
  return 0;
}

/* Fills e from the object o; 0 or -1. */
static int fill(struct reader *r, json_t *o, struct scn_event *e) {
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

/* Checks that step and time do not go back from the previous event. */
static int check_order(struct reader *r, const struct scn_event *e) {
  const struct scn_event *prev;
  if (r->tr->n == 0)
    return 0;
  prev = &r->tr->ev[r->tr->n - 1];
  if (e->step < prev->step)
    return bad(r, "step %llu after step %llu (steps never go back)",
               (unsigned long long)e->step, (unsigned long long)prev->step);
  if (e->t < prev->t)
    return bad(r, "time %llu ns after %llu ns (time never goes back)",
               (unsigned long long)e->t, (unsigned long long)prev->t);
  return 0;
}

int scn_trace_actor(const struct scn_trace *tr, const char *name) {
  for (size_t i = 0; i < tr->nactors; i++)
    if (strcmp(tr->actors[i], name) == 0)
      return (int)i;
  return -1;
}

static int add_actor(struct reader *r, const char *name) {
  struct scn_trace *tr = r->tr;
  if (name[0] == '\0' || scn_trace_actor(tr, name) >= 0)
    return 0;
  if (tr->nactors == SCN_TRACE_ACTORS_MAX)
    return bad(r, "more than %d actors", SCN_TRACE_ACTORS_MAX);
  snprintf(tr->actors[tr->nactors++], sizeof tr->actors[0], "%s", name);
  return 0;
}

static int add_event(struct reader *r, const struct scn_event *e) {
  struct scn_trace *tr = r->tr;
  if (tr->n == SCN_TRACE_EVENTS_MAX)
    return bad(r, "more than %d events", SCN_TRACE_EVENTS_MAX);
  if (check_order(r, e) < 0 || add_actor(r, e->actor) < 0 ||
      add_actor(r, e->peer) < 0)
    return -1;
  if (tr->n == r->cap) {
    r->cap = r->cap ? 2 * r->cap : 256;
    tr->ev = scn__xrealloc(tr->ev, r->cap, sizeof *tr->ev);
  }
  tr->ev[tr->n++] = *e;
  return 0;
}

static bool blank(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
      return false;
  return true;
}

/* One line of input (no newline); blank lines are skipped.  0, -1 for a
 * bad line, 1 when the events asked for are read (the rest is not). */
static int take_line(struct reader *r, const char *s, size_t n) {
  struct scn_event e = {0};
  json_error_t je;
  json_t *o;
  int rc;
  if (r->keep != 0 && r->tr->n == r->keep)
    return 1;
  if (n > SCN_TRACE_LINE_MAX)
    return bad(r, "line longer than %d bytes", SCN_TRACE_LINE_MAX);
  if (blank(s, n))
    return 0;
  o = json_loadb(s, n, JSON_REJECT_DUPLICATES, &je);
  if (o == NULL)
    return bad(r, "bad JSON at column %d: %s", je.column, je.text);
  if (!json_is_object(o))
    rc = bad(r, "expected a JSON object");
  else
    rc = fill(r, o, &e);
  json_decref(o);
  return rc < 0 ? -1 : add_event(r, &e);
}

static struct scn_trace *trace_new(struct reader *r, const char *file,
                                   size_t keep, struct scn_err *err) {
  struct scn_trace *tr = scn__xcalloc(1, sizeof *tr);
  tr->actors = scn__xcalloc(SCN_TRACE_ACTORS_MAX, sizeof tr->actors[0]);
  strcpy(tr->actors[0], "kernel");
  tr->nactors = 1;
  *r = (struct reader){.file = file, .err = err, .tr = tr, .keep = keep};
  return tr;
}

static struct scn_trace *done(struct scn_trace *tr, int rc) {
  if (rc >= 0)
    return tr;
  scn_trace_free(tr);
  return NULL;
}

struct scn_trace *scn_trace_parse(const char *file, const char *buf, size_t len,
                                  struct scn_err *err) {
  struct reader r;
  struct scn_trace *tr = trace_new(&r, file, 0, err);
  size_t at = 0;
  int rc = 0;
  while (rc == 0 && at < len) {
    const char *nl = memchr(buf + at, '\n', len - at);
    size_t n = nl ? (size_t)(nl - (buf + at)) : len - at;
    r.line++;
    rc = take_line(&r, buf + at, n);
    at += n + 1;
  }
  return done(tr, rc);
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

struct scn_trace *scn_trace_read_first(const char *file, FILE *in, size_t max,
                                       struct scn_err *err) {
  struct reader r;
  struct scn_trace *tr = trace_new(&r, file, max, err);
  char *buf = scn__xcalloc(SCN_TRACE_LINE_MAX + 1, 1);
  long n;
  int rc = 0;
  while (rc == 0 && (n = read_line(in, buf, SCN_TRACE_LINE_MAX)) >= 0) {
    r.line++;
    rc = take_line(&r, buf, (size_t)n);
  }
  if (rc == 0 && ferror(in)) {
    scn_err_set(err, file, 0, 0, "cannot read: %s", strerror(errno));
    rc = -1;
  }
  free(buf);
  return done(tr, rc);
}

struct scn_trace *scn_trace_read(const char *file, FILE *in,
                                 struct scn_err *err) {
  return scn_trace_read_first(file, in, 0, err);
}

void scn_trace_free(struct scn_trace *tr) {
  if (tr == NULL)
    return;
  free(tr->ev);
  free(tr->actors);
  free(tr);
}
