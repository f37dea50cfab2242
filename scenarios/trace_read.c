/* What the trace readers share: order and limits across events, keeping
 * the events or passing them on, and opening a file of either format.
 *
 * A reader sees one checked event at a time.  Collecting, it keeps them
 * in a trace with its lifelines, up to SCN_TRACE_EVENTS_MAX; streaming, it
 * hands each to a callback and keeps only the previous one, so a trace of
 * any length is checked in bounded memory.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "scn_impl.h"
#include "trace_impl.h"

int scn__reader_bad(struct scn__reader *r, const char *fmt, ...) {
  char msg[SCN_ERR_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (r->line > 0)
    scn_err_set(r->err, r->file, r->line, 0, "%s", msg);
  else
    scn_err_set(r->err, r->file, 0, 0, "event %zu: %s", r->n + 1, msg);
  return -1;
}

/* Cuts s to at most cap bytes without splitting a UTF-8 character. */
static size_t cut_utf8(const char *s, size_t len, size_t cap) {
  if (len <= cap)
    return len;
  while (cap > 0 && ((unsigned char)s[cap] & 0xc0) == 0x80)
    cap--;
  return cap;
}

int scn__reader_str(struct scn__reader *r, const char *what, const char *s,
                    size_t len, char *out, size_t cap, bool cut) {
  if (len == 0)
    return scn__reader_bad(r, "\"%s\" is empty", what);
  if (memchr(s, '\0', len) != NULL)
    return scn__reader_bad(r, "\"%s\" holds a NUL", what);
  if (len >= cap && !cut)
    return scn__reader_bad(r, "\"%s\" is longer than %zu bytes", what, cap - 1);
  len = cut_utf8(s, len, cap - 1);
  memcpy(out, s, len);
  out[len] = '\0';
  return 0;
}

/* Checks that step and time do not go back from the previous event. */
static int check_order(struct scn__reader *r, const struct scn_event *e) {
  const struct scn_event *prev = &r->prev;
  if (r->n == 0)
    return 0;
  if (e->step < prev->step)
    return scn__reader_bad(r, "step %llu after step %llu (steps never go back)",
                           (unsigned long long)e->step,
                           (unsigned long long)prev->step);
  if (e->t < prev->t)
    return scn__reader_bad(
        r, "time %llu ns after %llu ns (time never goes back)",
        (unsigned long long)e->t, (unsigned long long)prev->t);
  return 0;
}

int scn_trace_actor(const struct scn_trace *tr, const char *name) {
  for (size_t i = 0; i < tr->nactors; i++)
    if (strcmp(tr->actors[i], name) == 0)
      return (int)i;
  return -1;
}

static int add_actor(struct scn__reader *r, const char *name) {
  struct scn_trace *tr = r->tr;
  if (name[0] == '\0' || scn_trace_actor(tr, name) >= 0)
    return 0;
  if (tr->nactors == SCN_TRACE_ACTORS_MAX)
    return scn__reader_bad(r, "more than %d actors", SCN_TRACE_ACTORS_MAX);
  snprintf(tr->actors[tr->nactors++], sizeof tr->actors[0], "%s", name);
  return 0;
}

/* Keeps e in the trace being collected. */
static int keep_event(struct scn__reader *r, const struct scn_event *e) {
  struct scn_trace *tr = r->tr;
  if (tr->n == SCN_TRACE_EVENTS_MAX)
    return scn__reader_bad(r, "more than %d events", SCN_TRACE_EVENTS_MAX);
  if (add_actor(r, e->actor) < 0 || add_actor(r, e->peer) < 0)
    return -1;
  if (tr->n == r->cap) {
    r->cap = r->cap ? 2 * r->cap : 256;
    tr->ev = xreallocarray(tr->ev, r->cap, sizeof *tr->ev);
  }
  tr->ev[tr->n++] = *e;
  return 0;
}

int scn__reader_add(struct scn__reader *r, const struct scn_event *e) {
  if (r->keep != 0 && r->n == r->keep)
    return 1;
  if (check_order(r, e) < 0)
    return -1;
  if (r->tr != NULL && keep_event(r, e) < 0)
    return -1;
  r->prev = *e;
  r->n++;
  if (r->fn != NULL && (r->stopped = r->fn(e, r->arg)) != 0)
    return 1;
  return 0;
}

struct scn_trace *scn__reader_collect(struct scn__reader *r, const char *file,
                                      size_t keep, struct scn_err *err) {
  struct scn_trace *tr = xcalloc(1, sizeof *tr);
  tr->actors = xcalloc(SCN_TRACE_ACTORS_MAX, sizeof tr->actors[0]);
  strcpy(tr->actors[0], "kernel");
  tr->nactors = 1;
  *r = (struct scn__reader){.file = file, .err = err, .tr = tr, .keep = keep};
  return tr;
}

void scn__reader_stream(struct scn__reader *r, const char *file,
                        scn_trace_fn *fn, void *arg, struct scn_err *err) {
  *r = (struct scn__reader){.file = file, .err = err, .fn = fn, .arg = arg};
}

struct scn_trace *scn__reader_done(struct scn__reader *r, int rc) {
  if (rc >= 0)
    return r->tr;
  scn_trace_free(r->tr);
  return NULL;
}

void scn_trace_free(struct scn_trace *tr) {
  if (tr == NULL)
    return;
  free(tr->ev);
  free(tr->actors);
  free(tr);
}

/* Files of either format ------------------------------------------------ */

/* The format from the first byte that is not white space: a JSON Lines
 * trace starts with '{' (or holds nothing); a binary one with its magic,
 * field 1, whose tag byte is 0x0a. */
static enum scn_trace_format sniff(FILE *f) {
  int c;
  while ((c = getc(f)) == ' ' || c == '\t' || c == '\r' || c == '\n')
    ;
  rewind(f);
  return c == EOF || c == '{' ? SCN_TRACE_JSONL : SCN_TRACE_PB;
}

static FILE *open_trace(const char *path, struct scn_err *err) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    scn_err_set(err, path, 0, 0, "cannot open: %s", strerror(errno));
  return f;
}

int scn_trace_format(const char *path, enum scn_trace_format *fmt,
                     struct scn_err *err) {
  FILE *f = open_trace(path, err);
  if (f == NULL)
    return -1;
  *fmt = sniff(f);
  fclose(f);
  return 0;
}

/* Reads all of f (at most max bytes) into a new buffer.  NULL with *err. */
static uint8_t *slurp(const char *path, FILE *f, size_t max, size_t *len,
                      struct scn_err *err) {
  size_t cap = 1 << 16, n = 0, got;
  uint8_t *buf = xcalloc(cap, 1);
  while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n > max) {
      scn_err_set(err, path, 0, 0, "longer than %zu bytes", max);
      free(buf);
      return NULL;
    }
    if (n == cap)
      buf = xreallocarray(buf, cap *= 2, 1);
  }
  if (ferror(f)) {
    scn_err_set(err, path, 0, 0, "cannot read: %s", strerror(errno));
    free(buf);
    return NULL;
  }
  *len = n;
  return buf;
}

/* Reads the binary trace in f into r. */
static int read_pb_file(struct scn__reader *r, FILE *f) {
  size_t len;
  uint8_t *buf = slurp(r->file, f, SCN_TRACE_PB_MAX, &len, r->err);
  int rc;
  if (buf == NULL)
    return -1;
  rc = scn__read_pb(r, buf, len);
  free(buf);
  return rc;
}

struct scn_trace *scn_trace_load(const char *path, struct scn_err *err) {
  struct scn_trace *tr;
  FILE *f = open_trace(path, err);
  struct scn__reader r;
  if (f == NULL)
    return NULL;
  if (sniff(f) == SCN_TRACE_JSONL) {
    tr = scn_trace_read(path, f, err);
  } else {
    scn__reader_collect(&r, path, 0, err);
    tr = scn__reader_done(&r, read_pb_file(&r, f));
  }
  fclose(f);
  return tr;
}

int scn_trace_each(const char *path, scn_trace_fn *fn, void *arg,
                   struct scn_err *err) {
  struct scn__reader r;
  int rc;
  FILE *f = open_trace(path, err);
  if (f == NULL)
    return -1;
  if (sniff(f) == SCN_TRACE_JSONL) {
    rc = scn__each_jsonl(path, f, fn, arg, err);
  } else {
    scn__reader_stream(&r, path, fn, arg, err);
    rc = read_pb_file(&r, f);
    rc = rc == 1 ? r.stopped : rc;
  }
  fclose(f);
  return rc;
}
