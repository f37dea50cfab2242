/* expect tcp-client NAME connected (issue 14: "their TCP clients still
 * connected").
 *
 * The client is the runner's, outside the machine (cli/tcp_client.c): the
 * trace cannot hold what it saw, so its figures come as facts.  It holds
 * when the client connected once and that connection never broke, every
 * line it sent came back whole, and -- when the scenario faulted the
 * active kernel -- a line sent after the last `fault kernel` action came
 * back.  The faulted kernel stops right after it traces that action (a
 * panic, a hang, a kill), so such a line was echoed through the OS that
 * took over: the connection outlived the last failover, not just the
 * ones before it.  The action's time is on the run's clock, as the
 * client's last_sent_ns is. */
#include <inttypes.h>
#include <string.h>

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

/* The time of the last `fault kernel` action in tr; false if none. */
static bool last_fault(const struct scn_trace *tr, uint64_t *t) {
  bool any = false;
  for (size_t i = 0; i < tr->n; i++)
    if (tr->ev[i].ev == SCN_EV_ACTION &&
        strncmp(tr->ev[i].text, "fault kernel", 12) == 0) {
      *t = tr->ev[i].t;
      any = true;
    }
  return any;
}

/* Whether a line sent after the last kernel fault came back; what it says
 * about it in buf. */
static bool after_fault(const struct scn_tcp_seen *c,
                        const struct scn_trace *tr, char *buf, size_t len) {
  uint64_t t;
  if (!last_fault(tr, &t)) {
    scn__fmt(buf, len, "no kernel fault");
    return true;
  }
  if (!c->has_last || c->last_sent_ns <= t) {
    scn__fmt(buf, len,
             "no line sent after the last kernel fault (at %.3f s) came back",
             (double)t / 1e9);
    return false;
  }
  scn__fmt(buf, len,
           "its last echoed line sent %.3f s after the last kernel "
           "fault",
           (double)(c->last_sent_ns - t) / 1e9);
  return true;
}

void scn__eval_tcp(const struct scn_expect *x, const struct scn_trace *tr,
                   const struct scn_facts *facts, struct scn_verdict *v) {
  const struct scn_tcp_seen *c = seen_of(facts, x->app);
  char last[128];
  if (c == NULL) {
    scn__verdict(v, x, false, "the client did not run");
    return;
  }
  if (!c->connected) {
    scn__verdict(v, x, false, "it never connected: %s", c->why);
    return;
  }
  bool late = after_fault(c, tr, last, sizeof last);
  bool ok = !c->broke && c->sent > 0 && c->echoed == c->sent && late;
  scn__verdict(v, x, ok,
               "%s%s%s%" PRIu64 " line%s sent, %" PRIu64
               " echoed, the longest wait %.1f ms; %s",
               c->broke ? "the connection broke: " : "one connection",
               c->broke ? c->why : "", c->broke ? "; " : ", ", c->sent,
               scn__s(c->sent), c->echoed, (double)c->max_wait_ns / 1e6, last);
}
