/* The binary trace (trace.proto): one Trace message holding every event.
 *
 * Writing copies each event into a protobuf-c Event that points at the
 * event's own strings, so nothing is allocated per event.  Reading unpacks
 * the whole message (protobuf-c checks the wire format and the required
 * fields), checks the magic and version, then checks each event as the
 * JSON Lines reader does before the shared reader takes it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scn_impl.h"
#include "trace.pb-c.h"
#include "trace_impl.h"

/* An optional string: NULL for an absent (empty) one. */
static char *opt(const char *s) {
  return s[0] != '\0' ? (char *)s : NULL;
}

static void to_pb(const struct scn_event *e, Uksim__Trace__Event *pe) {
  uksim__trace__event__init(pe);
  pe->step = e->step;
  pe->t = e->t;
  pe->ev = (char *)scn_ev_name(e->ev);
  pe->actor = (char *)e->actor;
  pe->peer = opt(e->peer);
  pe->svc = opt(e->svc);
  pe->op = opt(e->op);
  pe->text = opt(e->text);
  pe->has_req = e->has_req;
  pe->req = e->req;
  pe->has_status = e->has_status;
  pe->status = e->status;
}

/* Packs tr into a new buffer of *len bytes. */
static uint8_t *pack(const struct scn_trace *tr, size_t *len) {
  Uksim__Trace__Trace t = UKSIM__TRACE__TRACE__INIT;
  Uksim__Trace__Event *pev = xcalloc(tr->n ? tr->n : 1, sizeof *pev);
  Uksim__Trace__Event **pp = xcalloc(tr->n ? tr->n : 1, sizeof *pp);
  uint8_t *buf;
  for (size_t i = 0; i < tr->n; i++) {
    to_pb(&tr->ev[i], &pev[i]);
    pp[i] = &pev[i];
  }
  t.magic = SCN_TRACE_MAGIC;
  t.version = SCN_TRACE_VERSION;
  t.n_events = tr->n;
  t.events = pp;
  *len = uksim__trace__trace__get_packed_size(&t);
  buf = xcalloc(*len ? *len : 1, 1);
  uksim__trace__trace__pack(&t, buf);
  free(pp);
  free(pev);
  return buf;
}

int scn_trace_write_pb(const struct scn_trace *tr, const char *path) {
  size_t len;
  uint8_t *buf = pack(tr, &len);
  FILE *f = fopen(path, "wb");
  int rc = 0;
  if (f == NULL) {
    rc = -errno;
  } else {
    if (fwrite(buf, 1, len, f) != len)
      rc = -EIO;
    if (fclose(f) != 0 && rc == 0)
      rc = -EIO;
  }
  free(buf);
  return rc;
}

/* A string field into out; absent is an error only if required. */
static int get_str(struct scn__reader *r, const char *what, const char *s,
                   bool required, char *out, size_t cap, bool cut) {
  if (s == NULL)
    return required ? scn__reader_bad(r, "missing \"%s\"", what) : 0;
  return scn__reader_str(r, what, s, strlen(s), out, cap, cut);
}

/* The JSON reader's integers are at most 2^63 - 1; so are these, so that
 * every binary trace converts to JSON Lines and back. */
static int get_u63(struct scn__reader *r, const char *what, uint64_t v,
                   uint64_t min) {
  if (v < min || v > INT64_MAX)
    return scn__reader_bad(r, "\"%s\" must be %llu .. 2^63-1", what,
                           (unsigned long long)min);
  return 0;
}

/* Fills e from pe; 0 or -1. */
static int from_pb(struct scn__reader *r, const Uksim__Trace__Event *pe,
                   struct scn_event *e) {
  if (get_u63(r, "step", pe->step, 1) < 0 || get_u63(r, "t", pe->t, 0) < 0 ||
      (pe->has_req && get_u63(r, "req", pe->req, 0) < 0))
    return -1;
  if (scn_ev_parse(pe->ev, &e->ev) < 0)
    return scn__reader_bad(r, "unknown event \"%.32s\"", pe->ev);
  if (get_str(r, "actor", pe->actor, true, e->actor, sizeof e->actor, false) <
          0 ||
      get_str(r, "peer", pe->peer, false, e->peer, sizeof e->peer, false) < 0 ||
      get_str(r, "svc", pe->svc, false, e->svc, sizeof e->svc, false) < 0 ||
      get_str(r, "op", pe->op, false, e->op, sizeof e->op, false) < 0 ||
      get_str(r, "text", pe->text, false, e->text, sizeof e->text, true) < 0)
    return -1;
  e->step = pe->step;
  e->t = pe->t;
  e->has_req = pe->has_req;
  e->req = pe->req;
  e->has_status = pe->has_status;
  e->status = pe->status;
  return 0;
}

/* What is wrong with the file as a whole: no event number. */
static int bad_file(struct scn__reader *r, const char *msg, const char *arg) {
  scn_err_set(r->err, r->file, 0, 0, "%s%.32s", msg, arg);
  return -1;
}

static int check_header(struct scn__reader *r, const Uksim__Trace__Trace *t) {
  char v[16];
  if (strcmp(t->magic, SCN_TRACE_MAGIC) != 0)
    return bad_file(r, "not a uksim trace: its magic is ", t->magic);
  snprintf(v, sizeof v, "%u", t->version);
  if (t->version != SCN_TRACE_VERSION)
    return bad_file(r, "a newer trace than this reader knows: version ", v);
  return 0;
}

int scn__read_pb(struct scn__reader *r, const uint8_t *buf, size_t len) {
  Uksim__Trace__Trace *t = uksim__trace__trace__unpack(NULL, len, buf);
  int rc;
  if (t == NULL)
    return bad_file(r,
                    "neither JSON Lines nor a binary trace (protobuf-c "
                    "cannot unpack it)",
                    "");
  rc = check_header(r, t);
  for (size_t i = 0; rc == 0 && i < t->n_events; i++) {
    struct scn_event e = {0};
    rc = from_pb(r, t->events[i], &e) < 0 ? -1 : scn__reader_add(r, &e);
  }
  uksim__trace__trace__free_unpacked(t, NULL);
  return rc;
}

struct scn_trace *scn_trace_parse_pb(const char *file, const void *buf,
                                     size_t len, struct scn_err *err) {
  struct scn__reader r;
  scn__reader_collect(&r, file, 0, err);
  return scn__reader_done(&r, scn__read_pb(&r, buf, len));
}
