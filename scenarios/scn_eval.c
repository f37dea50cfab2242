/* Expectations over a finished run (see scn_eval.h).
 *
 * One pass of the exactly-one-answer checker over the trace gives every
 * request with its client, service, op, send and answer; the expectations
 * about answers, errors and latency are read off that table, the others
 * off the events (patterns, the halt) or the facts (eval_state.c).  Each
 * verdict is one line, written from what was expected and what was seen.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "eval_impl.h"
#include "scn_impl.h"
#include "scn_trace.h"

static const char *const cmp_names[] = {"<", "<=", "==", ">=", ">"};
static const char *const stat_names[] = {"p50", "p99", "max"};

/* Words ------------------------------------------------------------------- */

/* A time as a scenario writes it: the largest unit that divides it. */
static void time_exact(uint64_t ns, char *buf, size_t len) {
  static const struct {
    uint64_t ns;
    const char *unit;
  } u[] = {{1000000000, "s"}, {1000000, "ms"}, {1000, "us"}, {1, "ns"}};
  for (size_t i = 0; i < 4; i++)
    if (ns % u[i].ns == 0 || u[i].ns == 1) {
      scn__fmt(buf, len, "%" PRIu64 "%s", ns / u[i].ns, u[i].unit);
      return;
    }
}

/* A measured time: ms or us with three decimals, or ns. */
static void time_seen(uint64_t ns, char *buf, size_t len) {
  if (ns >= 1000000)
    scn__fmt(buf, len, "%" PRIu64 ".%03" PRIu64 "ms", ns / 1000000,
             ns / 1000 % 1000);
  else if (ns >= 1000)
    scn__fmt(buf, len, "%" PRIu64 ".%03" PRIu64 "us", ns / 1000, ns % 1000);
  else
    scn__fmt(buf, len, "%" PRIu64 "ns", ns);
}

static void add_opt(char *buf, size_t len, const char *name, const char *v) {
  size_t n = strlen(buf);
  if (v[0] != '\0' && n < len)
    scn__fmt(buf + n, len - n, " --%s %s", name, v);
}

/* text as a scenario's string writes it (escapes for quote, backslash,
 * newline and tab), so that a verdict stays one line. */
static void escaped(const char *text, char *out, size_t len) {
  size_t o = 0;
  for (const char *c = text; *c != '\0' && o + 3 < len; c++) {
    const char *e = *c == '\n'   ? "\\n"
                    : *c == '\t' ? "\\t"
                    : *c == '"'  ? "\\\""
                    : *c == '\\' ? "\\\\"
                                 : NULL;
    if (e != NULL) {
      out[o++] = e[0];
      out[o++] = e[1];
    } else {
      out[o++] = *c;
    }
  }
  out[o] = '\0';
}

void scn_expect_str(const struct scn_expect *x, char *buf, size_t len) {
  char t[32];
  const struct scn_pattern *p = &x->pattern;
  switch (x->kind) {
  case SCN_EXP_ALL_ANSWERED:
    scn__fmt(buf, len, "all-answered");
    break;
  case SCN_EXP_EXACTLY_ONE:
    scn__fmt(buf, len, "exactly-one-answer");
    break;
  case SCN_EXP_NO_LEAKS:
    scn__fmt(buf, len, "no-leaks");
    break;
  case SCN_EXP_ERRORS:
    scn__fmt(buf, len, "errors %s %" PRIu64, cmp_names[x->cmp], x->value);
    break;
  case SCN_EXP_LATENCY:
    time_exact(x->value, t, sizeof t);
    scn__fmt(buf, len, "latency %s %s %s", stat_names[x->stat],
             cmp_names[x->cmp], t);
    break;
  case SCN_EXP_STATE:
    if (x->model)
      scn__fmt(buf, len, "state %s equals model", x->service);
    else
      scn__fmt(buf, len, "state %s equals \"%s\"", x->service, x->path);
    return;
  case SCN_EXP_TRACE_CONTAINS:
  case SCN_EXP_TRACE_OMITS:
    scn__fmt(buf, len, "trace %s %s%s%s%s%s%s",
             x->kind == SCN_EXP_TRACE_CONTAINS ? "contains" : "omits",
             scn_ev_name(p->ev), p->actor[0] ? " " : "", p->actor,
             p->text[0] ? " \"" : "", p->text, p->text[0] ? "\"" : "");
    return;
  case SCN_EXP_FAILOVERS:
  case SCN_EXP_ENDED:
  case SCN_EXP_USABLE:
    scn__os_expect_str(x, buf, len);
    return;
  case SCN_EXP_TCP:
    scn__tcp_expect_str(x, buf, len);
    return;
  case SCN_EXP_TASK:
    scn__task_expect_str(x, buf, len);
    return;
  case SCN_EXP_FILE: {
    char text[2 * SCN_TEXT_MAX + 1];
    escaped(x->text, text, sizeof text);
    scn__fmt(buf, len, "file %s %s %s%s%s%s", x->proc, x->path,
             x->fcheck == SCN_FILE_EQUALS     ? "equals"
             : x->fcheck == SCN_FILE_CONTAINS ? "contains"
                                              : "fails",
             x->fcheck == SCN_FILE_FAILS ? "" : " \"", text,
             x->fcheck == SCN_FILE_FAILS ? "" : "\"");
    return;
  }
  }
  add_opt(buf, len, "app", x->app);
  add_opt(buf, len, "service", x->service);
  add_opt(buf, len, "op", x->op);
}

void scn__fmt(char *buf, size_t len, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, len, fmt, ap);
  va_end(ap);
}

void scn__verdict(struct scn_verdict *v, const struct scn_expect *x, bool holds,
                  const char *fmt, ...) {
  char what[SCN_ERR_MAX / 2];
  char seen[SCN_ERR_MAX];
  va_list ap;
  scn_expect_str(x, what, sizeof what);
  va_start(ap, fmt);
  vsnprintf(seen, sizeof seen, fmt, ap);
  va_end(ap);
  v->holds = holds;
  scn__fmt(v->text, sizeof v->text, "%s: %s", what, seen);
}

const char *scn__s(uint64_t n) {
  return n == 1 ? "" : "s";
}

const char *scn__where(uint64_t step, int line, char *buf, size_t len) {
  if (line > 0)
    scn__fmt(buf, len, " at step %" PRIu64 ", line %d", step, line);
  else
    scn__fmt(buf, len, " at step %" PRIu64, step);
  return buf;
}

bool scn__instance_of(const char *inst, const char *name) {
  size_t n = strlen(name);
  if (strncmp(inst, name, n) != 0)
    return false;
  if (inst[n] == '\0')
    return true;
  if (inst[n] != '.' || inst[n + 1] == '\0')
    return false;
  return strspn(inst + n + 1, "0123456789") == strlen(inst + n + 1);
}

const char *scn__cmp_name(enum scn_cmp c) {
  return cmp_names[c];
}

bool scn__compare(uint64_t seen, enum scn_cmp cmp, uint64_t want) {
  switch (cmp) {
  case SCN_LT:
    return seen < want;
  case SCN_LE:
    return seen <= want;
  case SCN_EQ:
    return seen == want;
  case SCN_GE:
    return seen >= want;
  case SCN_GT:
    return seen > want;
  }
  abort(); /* the parser gives no other comparison */
}

/* Answers ----------------------------------------------------------------- */

static void eval_all_answered(const struct scn_expect *x,
                              const struct scn_answers *a,
                              struct scn_verdict *v) {
  uint64_t dropped;
  const struct scn_req *r = scn_answers_missing(a, false, &dropped);
  char at[64];
  if (r != NULL) {
    scn__verdict(v, x, false,
                 "request %" PRIu64 " (%s from %s), sent%s, got no answer",
                 r->id, r->op[0] ? r->op : "?", r->client,
                 scn__where(r->sent_step, r->sent_line, at, sizeof at));
    return;
  }
  scn__verdict(v, x, true,
               "%" PRIu64 " request%s, every one answered (%" PRIu64
               " dropped with their exited client)",
               a->requests, scn__s(a->requests), dropped);
}

static void eval_exactly_one(const struct scn_expect *x,
                             const struct scn_answers *a,
                             struct scn_verdict *v) {
  uint64_t dropped;
  const struct scn_req *r;
  char at[64];
  if (a->broken) {
    scn__verdict(v, x, false, "request %" PRIu64 ": %s%s", a->what_req, a->what,
                 scn__where(a->what_step, a->what_line, at, sizeof at));
    return;
  }
  r = scn_answers_missing(a, true, &dropped);
  if (r != NULL) {
    scn__verdict(v, x, false,
                 "request %" PRIu64 " of %s, sent%s, was never answered", r->id,
                 r->client,
                 scn__where(r->sent_step, r->sent_line, at, sizeof at));
    return;
  }
  scn__verdict(v, x, true,
               "%" PRIu64
               " request%s, every one answered exactly once (%" PRIu64
               " by a kernel error, %" PRIu64 " dropped with their client)",
               a->requests, scn__s(a->requests), a->errors, dropped);
}

/* Whether request r is in the scope of x (--app, --service, --op). */
static bool in_scope(const struct scn_expect *x, const struct scn_req *r) {
  return (x->app[0] == '\0' || scn__instance_of(r->client, x->app)) &&
         (x->service[0] == '\0' || strcmp(r->svc, x->service) == 0) &&
         (x->op[0] == '\0' || strcmp(r->op, x->op) == 0);
}

/* " (ENOENT)" for a status that is a negative errno, else "". */
static const char *errno_paren(int64_t status, char buf[32]) {
  const char *name =
      status < 0 && status > -4096 ? strerrorname_np((int)-status) : NULL;
  buf[0] = '\0';
  if (name != NULL)
    scn__fmt(buf, 32, " (%s)", name);
  return buf;
}

static void eval_errors(const struct scn_expect *x, const struct scn_answers *a,
                        struct scn_verdict *v) {
  const struct scn_req *first = NULL;
  uint64_t n = 0, in = 0;
  char at[64], name[32], more[160] = "";
  for (size_t i = 0; i < a->n; i++) {
    const struct scn_req *r = &a->req[i];
    if (!in_scope(x, r))
      continue;
    in++;
    if (!r->kernel_error) /* a server's own status is its answer */
      continue;
    if (n++ == 0)
      first = r;
  }
  bool holds = scn__compare(n, x->cmp, x->value);
  if (first != NULL)
    scn__fmt(more, sizeof more,
             "; the first: request %" PRIu64 " answered %" PRId64 "%s%s",
             first->id, first->status, errno_paren(first->status, name),
             scn__where(first->answer_step, first->answer_line, at, sizeof at));
  scn__verdict(v, x, holds,
               "%" PRIu64 " error answer%s among %" PRIu64 " request%s%s", n,
               scn__s(n), in, scn__s(in), more);
}

/* Latency ----------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* The statistic of n sorted latencies: the nearest-rank percentile, so
 * that it is always a latency that was measured. */
static uint64_t stat_of(const uint64_t *lat, size_t n, enum scn_stat st) {
  unsigned pct = st == SCN_STAT_P50 ? 50 : st == SCN_STAT_P99 ? 99 : 100;
  size_t rank = (n * pct + 99) / 100;
  return lat[rank > 0 ? rank - 1 : 0];
}

/* For an upper bound, the first request (in send order) over it. */
static const struct scn_req *first_over(const struct scn_expect *x,
                                        const struct scn_answers *a) {
  if (x->cmp != SCN_LT && x->cmp != SCN_LE)
    return NULL;
  for (size_t i = 0; i < a->n; i++) {
    const struct scn_req *r = &a->req[i];
    if (in_scope(x, r) && r->answered &&
        !scn__compare(r->answer_t - r->sent_t, x->cmp, x->value))
      return r;
  }
  return NULL;
}

static void eval_latency(const struct scn_expect *x,
                         const struct scn_answers *a, struct scn_verdict *v) {
  uint64_t *lat = xcalloc(a->n ? a->n : 1, sizeof *lat), seen;
  size_t n = 0;
  const struct scn_req *r;
  char t[32], rt[32], at[64], more[192] = "";
  for (size_t i = 0; i < a->n; i++)
    if (in_scope(x, &a->req[i]) && a->req[i].answered)
      lat[n++] = a->req[i].answer_t - a->req[i].sent_t;
  if (n == 0) {
    free(lat);
    scn__verdict(v, x, false, "no answered request in its scope");
    return;
  }
  qsort(lat, n, sizeof *lat, cmp_u64);
  seen = stat_of(lat, n, x->stat);
  free(lat);
  time_seen(seen, t, sizeof t);
  if ((r = first_over(x, a)) != NULL) {
    time_seen(r->answer_t - r->sent_t, rt, sizeof rt);
    scn__fmt(more, sizeof more,
             "; the first over the bound: request %" PRIu64 " took %s, sent%s",
             r->id, rt, scn__where(r->sent_step, r->sent_line, at, sizeof at));
  }
  scn__verdict(v, x, scn__compare(seen, x->cmp, x->value),
               "%s is %s over %zu answered request%s%s", stat_names[x->stat], t,
               n, scn__s(n), more);
}

/* Events ------------------------------------------------------------------ */

static bool matches(const struct scn_pattern *p, const struct scn_event *e) {
  return e->ev == p->ev &&
         (p->actor[0] == '\0' || strcmp(p->actor, "*") == 0 ||
          strcmp(p->actor, e->actor) == 0) &&
         (p->text[0] == '\0' || strstr(e->text, p->text) != NULL);
}

static void eval_pattern(const struct scn_expect *x, const struct scn_trace *tr,
                         struct scn_verdict *v) {
  bool contains = x->kind == SCN_EXP_TRACE_CONTAINS;
  char text[SCN_ERR_MAX / 2], at[64];
  for (size_t i = 0; i < tr->n; i++) {
    const struct scn_event *e = &tr->ev[i];
    if (!matches(&x->pattern, e))
      continue;
    scn_event_text(e, text, sizeof text);
    scn__verdict(v, x, contains, "found%s: %s",
                 scn__where(e->step, e->line, at, sizeof at), text);
    return;
  }
  scn__verdict(v, x, !contains, "no such event among %zu", tr->n);
}

/* The machine's last halt event says how many ICAs were still live. */
static void eval_no_leaks(const struct scn_expect *x,
                          const struct scn_trace *tr, struct scn_verdict *v) {
  const struct scn_event *h = NULL;
  char at[64];
  for (size_t i = 0; i < tr->n; i++)
    if (tr->ev[i].ev == SCN_EV_HALT)
      h = &tr->ev[i];
  if (h == NULL) {
    scn__verdict(v, x, false,
                 "the trace has no halt event (the machine did "
                 "not halt, or the trace is cut short)");
    return;
  }
  int64_t live = h->has_status ? h->status : 0;
  scn__where(h->step, h->line, at, sizeof at);
  if (live == 0)
    scn__verdict(v, x, true, "no ICA live when the machine halted%s", at);
  else
    scn__verdict(v, x, false, "%" PRId64 " ICAs live when the machine halted%s",
                 live, at);
}

/* Dispatch ---------------------------------------------------------------- */

void scn_eval_one(const struct scn *s, const struct scn_expect *x,
                  const struct scn_trace *tr, const struct scn_answers *ans,
                  const struct scn_facts *facts, struct scn_verdict *out) {
  switch (x->kind) {
  case SCN_EXP_ALL_ANSWERED:
    eval_all_answered(x, ans, out);
    break;
  case SCN_EXP_EXACTLY_ONE:
    eval_exactly_one(x, ans, out);
    break;
  case SCN_EXP_NO_LEAKS:
    eval_no_leaks(x, tr, out);
    break;
  case SCN_EXP_ERRORS:
    eval_errors(x, ans, out);
    break;
  case SCN_EXP_LATENCY:
    eval_latency(x, ans, out);
    break;
  case SCN_EXP_STATE:
    if (x->model)
      scn__eval_model(s, x, tr, out);
    else
      scn__eval_file(x, facts, out);
    break;
  case SCN_EXP_TRACE_CONTAINS:
  case SCN_EXP_TRACE_OMITS:
    eval_pattern(x, tr, out);
    break;
  case SCN_EXP_FILE:
    scn__eval_read(x, facts, out);
    break;
  case SCN_EXP_FAILOVERS:
  case SCN_EXP_ENDED:
  case SCN_EXP_USABLE:
    scn__eval_os(x, tr, facts, out);
    break;
  case SCN_EXP_TCP:
    scn__eval_tcp(s, x, tr, facts, out);
    break;
  case SCN_EXP_TASK:
    scn__eval_task(x, tr, facts, out);
    break;
  default:
    abort(); /* the parser gives no other kind */
  }
}

int scn_eval(const struct scn *s, const struct scn_trace *tr,
             const struct scn_facts *facts, struct scn_verdict *out) {
  struct scn_answers a;
  int failed = 0;
  scn_answers_init(&a);
  for (size_t i = 0; i < tr->n; i++)
    scn_answers_add(&a, &tr->ev[i]);
  for (size_t i = 0; i < s->nexpects; i++) {
    scn_eval_one(s, &s->expects[i], tr, &a, facts, &out[i]);
    failed += !out[i].holds;
  }
  scn_answers_close(&a);
  return failed;
}
