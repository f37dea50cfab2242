/* expect tcp-client NAME connected (issue 14: "their TCP clients still
 * connected").
 *
 * The client is the runner's, outside the machine (cli/tcp_client.c): the
 * trace cannot hold what it saw, so its figures come as facts.  It holds
 * when:
 *   - the client connected, and that one connection never broke: it may
 *     end only after the scenario acted on the client's --server app (an
 *     `action` event naming it: kill echo), which ends the conversation;
 *   - every line it sent came back whole (but the one in flight when the
 *     scenario ended its server);
 *   - when the scenario faulted the active kernel, a line sent after the
 *     last `fault kernel` action came back.  The faulted kernel stops
 *     right after it traces that action (a panic, a hang, a kill), so such
 *     a line was echoed through the OS that took over: the connection
 *     outlived the last failover, not just the ones before it.
 * The actions' times are on the run's clock, as the client's are, but
 * for a kernel that took over: it stamps from its own boot when that came
 * before the run's start (cli/scn_exec.c exec_resume, so that its trace
 * never goes back), a few ms earlier than the run's clock.  A break seen
 * up to EVAL_TCP_CLOCK_SLACK_NS before the action on the server is that
 * action's. */
#include <inttypes.h>
#include <string.h>

#define EVAL_TCP_CLOCK_SLACK_NS (100 * 1000000ull)

#include "eval_impl.h"
#include "scn_trace.h"

void scn__tcp_expect_str(const struct scn_expect *x, char *buf, size_t len) {
  scn__fmt(buf, len, "tcp-client %s connected", x->app);
}

static const struct scn_tcp_seen *seen_of(const struct scn_facts *f,
                                          const char *name) {
  for (size_t i = 0; f && i < f->ntcp; i++)
    if (strcmp(f->tcp[i].name, name) == 0)
      return &f->tcp[i];
  return NULL;
}

static const struct scn_tcp_client *decl_of(const struct scn *s,
                                            const char *name) {
  for (size_t i = 0; i < s->ntcps; i++)
    if (strcmp(s->tcps[i].name, name) == 0)
      return &s->tcps[i];
  return NULL;
}

/* The last `fault kernel` action of tr; NULL if none. */
static const struct scn_event *last_fault(const struct scn_trace *tr) {
  const struct scn_event *last = NULL;
  for (size_t i = 0; i < tr->n; i++)
    if (tr->ev[i].ev == SCN_EV_ACTION &&
        strncmp(tr->ev[i].text, "fault kernel", 12) == 0)
      last = &tr->ev[i];
  return last;
}

/* The first action on app server at or before time t (give or take the
 * clocks' slack); NULL if none. */
static const struct scn_event *server_ended(const struct scn_trace *tr,
                                            const char *server, uint64_t t) {
  for (size_t i = 0; server[0] != '\0' && i < tr->n &&
                     tr->ev[i].t <= t + EVAL_TCP_CLOCK_SLACK_NS;
       i++)
    if (tr->ev[i].ev == SCN_EV_ACTION && strcmp(tr->ev[i].peer, server) == 0)
      return &tr->ev[i];
  return NULL;
}

/* Whether a line sent after the last kernel fault came back; what it says
 * about it in buf. */
static bool after_fault(const struct scn_tcp_seen *c,
                        const struct scn_trace *tr, char *buf, size_t len) {
  const struct scn_event *f = last_fault(tr);
  if (f == NULL) {
    scn__fmt(buf, len, "no kernel fault");
    return true;
  }
  if (!c->has_last || c->last_sent_ns <= f->t) {
    scn__fmt(buf, len,
             "no line sent after the last kernel fault (at %.3f s) came back",
             (double)f->t / 1e9);
    return false;
  }
  scn__fmt(buf, len,
           "its last echoed line sent %.3f s after the last kernel fault",
           (double)(c->last_sent_ns - f->t) / 1e9);
  return true;
}

/* How the connection ended, into buf: true unless it broke before the
 * scenario ended its server. */
static bool how_it_ended(const struct scn_tcp_seen *c,
                         const struct scn_event *end, char *buf, size_t len) {
  if (!c->broke)
    scn__fmt(buf, len, "one connection");
  else if (end != NULL)
    scn__fmt(buf, len, "one connection, until '%s' at %.3f s (%s)", end->text,
             (double)end->t / 1e9, c->why);
  else
    scn__fmt(buf, len, "the connection broke at %.3f s: %s",
             (double)c->broke_ns / 1e9, c->why);
  return !c->broke || end != NULL;
}

void scn__eval_tcp(const struct scn *s, const struct scn_expect *x,
                   const struct scn_trace *tr, const struct scn_facts *facts,
                   struct scn_verdict *v) {
  const struct scn_tcp_seen *c = seen_of(facts, x->app);
  const struct scn_tcp_client *d = decl_of(s, x->app);
  char last[128], how[SCN_ERR_MAX / 2];
  if (c == NULL || d == NULL) {
    scn__verdict(v, x, false, "the client did not run");
    return;
  }
  if (!c->connected) {
    scn__verdict(v, x, false, "it never connected: %s", c->why);
    return;
  }
  const struct scn_event *end =
      c->broke ? server_ended(tr, d->server, c->broke_ns) : NULL;
  bool whole = how_it_ended(c, end, how, sizeof how);
  bool late = after_fault(c, tr, last, sizeof last);
  /* The line in flight when the scenario ended the server is not lost. */
  uint64_t in_flight = end != NULL ? 1 : 0;
  bool all = c->echoed > 0 && c->echoed + in_flight >= c->sent;
  scn__verdict(v, x, whole && late && all,
               "%s: %" PRIu64 " line%s sent, %" PRIu64
               " echoed, the longest wait %.1f ms; %s",
               how, c->sent, scn__s(c->sent), c->echoed,
               (double)c->max_wait_ns / 1e6, last);
}
