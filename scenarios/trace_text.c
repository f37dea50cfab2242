/* Trace events for people and for other programs: one readable line per
 * event, JSON Lines written the way the kernel writes them, and the hash
 * that says two runs wrote the same trace.
 *
 * Everything here is a pure function of its input: no locale, no floating
 * point, so the text of a trace is as reproducible as the trace.
 */
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <string.h>

#include "scn_trace.h"
#include "uksim/kabi.h"

/* JSON Lines -------------------------------------------------------------- */

void scn_json_str(FILE *f, const char *key, const char *s) {
  if (s == NULL || s[0] == '\0')
    return;
  fprintf(f, ",\"%s\":\"", key);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(f, "\\%c", c);
    else if (c < 0x20)
      fprintf(f, "\\u%04x", c);
    else
      fputc(c, f);
  }
  fputc('"', f);
}

int scn_event_json(const struct scn_event *e, FILE *out) {
  fprintf(out, "{\"step\":%" PRIu64 ",\"t\":%" PRIu64, e->step, e->t);
  scn_json_str(out, "ev", scn_ev_name(e->ev));
  scn_json_str(out, "actor", e->actor);
  scn_json_str(out, "peer", e->peer);
  scn_json_str(out, "svc", e->svc);
  if (e->has_req)
    fprintf(out, ",\"req\":%" PRIu64, e->req);
  scn_json_str(out, "op", e->op);
  if (e->has_status)
    fprintf(out, ",\"status\":%" PRId64, e->status);
  scn_json_str(out, "text", e->text);
  fputs("}\n", out);
  return ferror(out) ? -EIO : 0;
}

int scn_trace_write_json(const struct scn_trace *tr, FILE *out) {
  for (size_t i = 0; i < tr->n; i++)
    if (scn_event_json(&tr->ev[i], out) < 0)
      return -EIO;
  return 0;
}

/* Readable text ----------------------------------------------------------- */

/* A string builder that cuts at the end of its buffer. */
struct sb {
  char *buf;
  size_t len, at;
};

static void put(struct sb *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void put(struct sb *b, const char *fmt, ...) {
  va_list ap;
  int n;
  if (b->at + 1 >= b->len)
    return;
  va_start(ap, fmt);
  n = vsnprintf(b->buf + b->at, b->len - b->at, fmt, ap);
  va_end(ap);
  if (n > 0)
    b->at += (size_t)n < b->len - b->at ? (size_t)n : b->len - b->at - 1;
}

static const char *or_q(const char *s) {
  return s[0] ? s : "?";
}

/* " ok", or " error -2 ENOENT" for a negative status. */
static void put_status(struct sb *b, const struct scn_event *e) {
  const char *name;
  if (!e->has_status || e->status == 0) {
    put(b, ": ok");
    return;
  }
  put(b, ": status %" PRId64, e->status);
  name = e->status < 0 && e->status > -4096 ? strerrorname_np((int)-e->status)
                                            : NULL;
  if (name != NULL)
    put(b, " (%s)", name);
}

/* A request's message: "send req 65537 kvs.put". */
static void put_msg(struct sb *b, const struct scn_event *e) {
  put(b, "%s req %" PRIu64 " %s", scn_ev_name(e->ev), e->req, or_q(e->op));
  if (e->ev == SCN_EV_REPLY || e->ev == SCN_EV_RESULT || e->ev == SCN_EV_ERROR)
    put_status(b, e);
}

static void put_text(struct sb *b, const char *sep, const char *text) {
  if (text[0] != '\0')
    put(b, "%s%s", sep, text);
}

/* What the replacement and life-cycle events mean, in plain words, with
 * the actor as the subject of the sentence. */
static void put_words(struct sb *b, const struct scn_event *e) {
  switch (e->ev) {
  case SCN_EV_SPAWN:
    put(b, "starts %s", or_q(e->peer));
    put_text(b, ", running ", e->text);
    break;
  case SCN_EV_REGISTER:
    put(b, "registers service %s", or_q(e->svc));
    put_text(b, ": ", e->text);
    break;
  case SCN_EV_FLAG:
    put(b, "sets the replacement flag of %s", or_q(e->svc));
    break;
  case SCN_EV_PREPARE:
    put(b, "sees the flag, saves its state");
    break;
  case SCN_EV_HANDOFF:
    put(b, "hands its ICAs and queued requests to %s", or_q(e->peer));
    break;
  case SCN_EV_COMMIT:
    put(b, "commits the replacement of %s: %s serves it now", or_q(e->svc),
        or_q(e->peer));
    break;
  case SCN_EV_FAIL:
    if (strncmp(e->text, KABI_RESTART_LIMIT_TEXT,
                strlen(KABI_RESTART_LIMIT_TEXT)) == 0) {
      put(b, "gives up restarting %s (%s); the service goes down", or_q(e->svc),
          e->text);
      break;
    }
    put(b, "gives up the replacement of %s", or_q(e->svc));
    if (e->text[0] != '\0')
      put(b, " (%s)", e->text);
    put(b, "; the old server resumes");
    break;
  case SCN_EV_FAULT:
    put(b, "goes wrong");
    put_text(b, ": ", e->text);
    break;
  case SCN_EV_DETECT:
    put(b, "detects that %s failed", or_q(e->peer));
    put_text(b, ": ", e->text);
    break;
  case SCN_EV_RESTART:
    put(b, "restarts %s as %s from its state", or_q(e->svc), or_q(e->peer));
    break;
  case SCN_EV_EXIT:
    if (e->has_status && e->status != 0)
      put(b, "exits with status %" PRId64, e->status);
    else if (strncmp(e->text, "signal", 6) == 0)
      put(b, "is killed by %s", e->text);
    else
      put(b, "exits with status 0");
    break;
  case SCN_EV_ACTION:
    put(b, "runs a scenario action");
    put_text(b, ": ", e->text);
    break;
  case SCN_EV_EXPECT:
    put(b, "checks an expectation: %s",
        e->has_status && e->status != 0 ? "FAILS" : "holds");
    put_text(b, ": ", e->text);
    break;
  case SCN_EV_HALT:
    put(b, "halts the machine");
    put_text(b, ", ", e->text);
    if (e->text[0] == '\0')
      put(b, ", %" PRId64 " ICAs live", e->has_status ? e->status : 0);
    break;
  default:
    put(b, "%s", scn_ev_name(e->ev));
    put_text(b, ": ", e->text);
  }
  put(b, " (%s)", scn_ev_name(e->ev));
}

static bool is_msg(enum scn_ev ev) {
  return ev == SCN_EV_SEND || ev == SCN_EV_RECEIVE || ev == SCN_EV_REPLY ||
         ev == SCN_EV_RESULT || ev == SCN_EV_ERROR;
}

/* "ap1 -> kvs": who did it to whom.  receive and result take a message
 * in, so their arrow points at the actor. */
static void who(const struct scn_event *e, char *out, size_t len) {
  bool inward = e->ev == SCN_EV_RECEIVE || e->ev == SCN_EV_RESULT;
  if (e->peer[0] == '\0' || !is_msg(e->ev))
    snprintf(out, len, "%s", e->actor);
  else
    snprintf(out, len, "%s %s %s", e->actor, inward ? "<-" : "->", e->peer);
}

void scn_event_text(const struct scn_event *e, char *buf, size_t len) {
  struct sb b = {buf, len, 0};
  char w[2 * SCN_INST_MAX + 8];
  if (len == 0)
    return;
  buf[0] = '\0';
  who(e, w, sizeof w);
  put(&b, "[%5" PRIu64 "] %4" PRIu64 ".%03" PRIu64 "ms  %-18s  ", e->step,
      e->t / 1000000, e->t / 1000 % 1000, w);
  if (is_msg(e->ev))
    put_msg(&b, e);
  else
    put_words(&b, e);
}

/* Hash -------------------------------------------------------------------- */

int scn_trace_hash(const char *path, char hex[65]) {
  unsigned char buf[1 << 16], out[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_state st;
  size_t n;
  int rc = 0;
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return -errno;
  crypto_hash_sha256_init(&st);
  while ((n = fread(buf, 1, sizeof buf, f)) > 0)
    crypto_hash_sha256_update(&st, buf, n);
  if (ferror(f))
    rc = -EIO;
  fclose(f);
  if (rc < 0)
    return rc;
  crypto_hash_sha256_final(&st, out);
  sodium_bin2hex(hex, 65, out, sizeof out);
  return 0;
}
