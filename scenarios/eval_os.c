/* Orthros expectations (issue 14): failovers, ended, usable-mib.
 *
 * A failover is an `os-active` event (the backup, fenced in, is the active
 * OS now: sim-kernel/kos.c).  An app that is not protected ends with its
 * OS: no kernel traces its end (the dead one is gone, the new one never
 * ran it), so "ended" is a spawn of it followed by a failover and no exit
 * of its own.  The usable memory per OS is the machine's Table 5, which
 * the runner asks before the halt (facts). */
#include <inttypes.h>
#include <string.h>

#include "eval_impl.h"
#include "scn_trace.h"

static const char *const cmp_names[] = {"<", "<=", "==", ">=", ">"};

void scn__os_expect_str(const struct scn_expect *x, char *buf, size_t len) {
  size_t n;
  switch (x->kind) {
  case SCN_EXP_FAILOVERS:
    scn__fmt(buf, len, "failovers %s %" PRIu64, cmp_names[x->cmp], x->value);
    break;
  case SCN_EXP_ENDED:
    scn__fmt(buf, len, "ended %s", x->app);
    break;
  default:
    scn__fmt(buf, len, "usable-mib");
    for (unsigned i = 0; i < x->nusable && (n = strlen(buf)) < len; i++)
      scn__fmt(buf + n, len - n, " %" PRIu32 " %" PRIu64, x->usable_os[i],
               x->usable_mib[i]);
  }
}

static void eval_failovers(const struct scn_expect *x,
                           const struct scn_trace *tr, struct scn_verdict *v) {
  uint64_t n = 0;
  char at[64] = "";
  for (size_t i = 0; i < tr->n; i++)
    if (tr->ev[i].ev == SCN_EV_OS_ACTIVE &&
        ++n == 1) /* where the first one was */
      scn__where(tr->ev[i].step, tr->ev[i].line, at, sizeof at);
  scn__verdict(v, x, scn__compare(n, x->cmp, x->value),
               "%" PRIu64 " failover%s%s%s", n, scn__s(n),
               n ? ", the first" : "", at);
}

static void eval_ended(const struct scn_expect *x, const struct scn_trace *tr,
                       struct scn_verdict *v) {
  const struct scn_event *spawn = NULL, *exit = NULL, *failover = NULL;
  char at[64];
  for (size_t i = 0; i < tr->n; i++) {
    const struct scn_event *e = &tr->ev[i];
    if (e->ev == SCN_EV_SPAWN && !strcmp(e->peer, x->app) && spawn == NULL)
      spawn = e;
    else if (e->ev == SCN_EV_EXIT && !strcmp(e->actor, x->app))
      exit = e;
    else if (e->ev == SCN_EV_OS_ACTIVE && spawn != NULL && failover == NULL)
      failover = e;
  }
  if (spawn == NULL)
    scn__verdict(v, x, false, "%s never started", x->app);
  else if (exit != NULL)
    scn__verdict(v, x, false, "%s exited by itself (%s%s)%s", x->app,
                 exit->text[0] ? exit->text : "status ",
                 exit->text[0] ? "" : (exit->status ? "not 0" : "0"),
                 scn__where(exit->step, exit->line, at, sizeof at));
  else if (failover == NULL)
    scn__verdict(v, x, false, "no failover after %s started", x->app);
  else
    scn__verdict(v, x, true, "%s ended with its OS, at the failover%s", x->app,
                 scn__where(failover->step, failover->line, at, sizeof at));
}

/* The MiB the machine says OS os had as the active, or -1 if none. */
static int64_t usable_of(const struct scn_facts *f, uint32_t os) {
  for (unsigned i = 0; i < f->nusable; i++)
    if (f->usable_os[i] == os)
      return (int64_t)f->usable_mib[i];
  return -1;
}

static void eval_usable(const struct scn_expect *x, const struct scn_facts *f,
                        struct scn_verdict *v) {
  char seen[SCN_ERR_MAX / 2] = "";
  size_t n;
  bool ok = f->usable_error == NULL;
  for (unsigned i = 0; ok && i < f->nusable && (n = strlen(seen)) < sizeof seen;
       i++)
    scn__fmt(seen + n, sizeof seen - n, "%s%" PRIu32 " %" PRIu64, i ? " " : "",
             f->usable_os[i], f->usable_mib[i]);
  for (unsigned i = 0; ok && i < x->nusable; i++)
    ok = usable_of(f, x->usable_os[i]) == (int64_t)x->usable_mib[i];
  if (f->usable_error != NULL)
    scn__verdict(v, x, false, "the machine could not say: %s", f->usable_error);
  else
    scn__verdict(v, x, ok, "the machine says %s",
                 seen[0] ? seen : "no OS was active");
}

void scn__eval_os(const struct scn_expect *x, const struct scn_trace *tr,
                  const struct scn_facts *facts, struct scn_verdict *v) {
  if (x->kind == SCN_EXP_FAILOVERS)
    eval_failovers(x, tr, v);
  else if (x->kind == SCN_EXP_ENDED)
    eval_ended(x, tr, v);
  else
    eval_usable(x, facts, v);
}
