/* The statements that act and check: at, on and expect.
 *
 * An action runs at a virtual time (at 5ms ...) or when a trigger fires
 * (on request 100 to kvs: ..., on event prepare kvs: ...).  Expectations
 * are checked when the run ends.  Every name they use must be declared on
 * an earlier line (scn.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scn_impl.h"

static const char *const action_names[] = {
    "replace", "crash",   "panic", "hang", "kill",    "restart", "bind",
    "mount",   "unmount", "fault", "stop", "kupdate", "migrate", "input"};
static const char *const trigger_names[] = {"request", "event"};
static const char *const expect_names[] = {"all-answered", "exactly-one-answer",
                                           "no-leaks",     "errors",
                                           "latency",      "state",
                                           "trace",        "file",
                                           "failovers",    "ended",
                                           "usable-mib",   "tcp-client",
                                           "task"};
static const char *const cmp_names[] = {"<", "<=", "==", ">=", ">"};
static const char *const stat_names[] = {"p50", "p99", "max"};
static const char *const trace_names[] = {"contains", "omits"};
static const char *const file_names[] = {"equals", "contains", "fails"};
static const char *const os_names[] = {"kernel", "backup"};
static const char *const kfault_names[] = {
    "crash", "panic", "hang", "deadlock", "runaway", "stall-driver"};
/* kfault_names[i]'s enum scn_fault_kind. */
static const enum scn_fault_kind kfault_kinds[] = {
    SCN_FAULT_CRASH,    SCN_FAULT_PANIC,   SCN_FAULT_HANG,
    SCN_FAULT_DEADLOCK, SCN_FAULT_RUNAWAY, SCN_FAULT_STALL};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

const char *scn_action_name(enum scn_action_kind k) {
  return (unsigned)k < (unsigned)COUNT(action_names) ? action_names[k] : "?";
}

/* replace SVC BINARY --state M --fault F... --deadline T --args "..." */

static int r_state(struct scn__parser *p, const struct scn__tok *v, void *obj) {
  return scn__read_state(p, v, &((struct scn_action *)obj)->state);
}

static int r_fault(struct scn__parser *p, const struct scn__tok *v, void *obj) {
  struct scn_action *a = obj;
  return scn__read_fault(p, v, a->faults, &a->nfaults);
}

static int r_deadline(struct scn__parser *p, const struct scn__tok *v,
                      void *obj) {
  struct scn_action *a = obj;
  return scn__read_period(p, v, "a deadline", &a->deadline_ns);
}

static int r_args(struct scn__parser *p, const struct scn__tok *v, void *obj) {
  return scn__read_args(p, v, ((struct scn_action *)obj)->args);
}

static const struct scn__opt replace_opts[] = {
    {"--state", r_state, false},
    {"--fault", r_fault, true},
    {"--deadline", r_deadline, false},
    {"--args", r_args, false},
    {NULL, NULL, false}};

static int replace_args(struct scn__parser *p, struct scn_action *a) {
  const struct scn__tok *t = scn__word(p, "the server to replace");
  if (t == NULL || scn__read_name(p, t, a->target) < 0 ||
      scn__need_server(p, t->col, a->target) < 0)
    return -1;
  t = scn__word(p, "the new server's binary");
  if (t == NULL || scn__read_name(p, t, a->binary) < 0)
    return -1;
  return scn__read_opts(p, "replace", replace_opts, a);
}

/* The target of crash, panic, hang, kill, restart or stop: panic and
 * restart need a server (only servers report panics or restart from
 * state), stop an app (a server ends only by a fault or a replacement). */
static int target(struct scn__parser *p, struct scn_action *a) {
  const struct scn__tok *t = scn__word(p, "the process to act on");
  char base[SCN_INST_MAX + 1];
  if (t == NULL || scn__read_instance(p, t, false, a->target) < 0)
    return -1;
  scn__base_name(a->target, base);
  if (a->kind == SCN_ACT_PANIC || a->kind == SCN_ACT_RESTART) {
    if (scn__need_server(p, t->col, base) < 0)
      return -1;
  } else if (a->kind == SCN_ACT_STOP) {
    if (scn__need_app(p, t->col, a->target) < 0)
      return -1;
  } else if (scn__need_process(p, t->col, a->target, false, false) < 0) {
    return -1;
  }
  return scn__end(p);
}

/* Namespaces ------------------------------------------------------------ */

/* A path in a namespace: "/..." (or "#X..." where servant), printable
 * ASCII (the executor hands it to nsh's builtin as one word, unparsed).
 * what names it in messages. */
static int ns_path(struct scn__parser *p, const struct scn__tok *t,
                   bool servant, const char *what, char out[SCN_PATH_MAX + 1]) {
  const char *c = t->text;
  if (c[0] != '/' && !(servant && c[0] == '#'))
    return scn__fail(p, t->col, "%s must start with '/'%s, got '%.40s'", what,
                     servant ? " or '#'" : "", c);
  for (; *c != '\0'; c++)
    if (*c < ' ' || *c >= 0x7f) /* a string's bytes moved: its start */
      return scn__fail(
          p, t->kind == SCN__WORD ? t->col + (int)(c - t->text) : t->col,
          "%s may hold printable ASCII only", what);
  return scn__read_text(p, t, out);
}

/* The next word or string, as a path. */
static int next_path(struct scn__parser *p, bool servant, const char *what,
                     char out[SCN_PATH_MAX + 1]) {
  const struct scn__tok *t = scn__next(p, what);
  if (t == NULL)
    return -1;
  if (t->kind == SCN__COLON)
    return scn__fail(p, t->col, "expected %s, got ':'", what);
  return ns_path(p, t, servant, what, out);
}

/* The process whose namespace a statement names: a declared server or
 * app (its first instance's group, held to the end of the run). */
static int ns_proc(struct scn__parser *p, char out[SCN_NAME_MAX + 1]) {
  const struct scn__tok *t = scn__word(p, "a process (a server or app)");
  if (t == NULL || scn__read_name(p, t, out) < 0)
    return -1;
  return scn__need_process(p, t->col, out, false, false);
}

/* --flags: some of a (after), b (before), c (create); not both a and b. */
static int n_flags(struct scn__parser *p, const struct scn__tok *v, void *obj) {
  struct scn_action *a = obj;
  size_t n = strlen(v->text);
  if (v->kind != SCN__WORD || n > SCN_NS_FLAGS_MAX ||
      strspn(v->text, "abc") != n)
    return scn__fail(p, v->col, "expected flags such as bc (a, b, c)");
  for (size_t i = 0; i < n; i++)
    if (strchr(v->text + i + 1, v->text[i]) != NULL)
      return scn__fail(p, v->col, "flag %c given twice", v->text[i]);
  if (strchr(v->text, 'a') && strchr(v->text, 'b'))
    return scn__fail(p, v->col,
                     "flags a (after) and b (before) exclude "
                     "each other");
  memcpy(a->flags, v->text, n + 1);
  return 0;
}

static int n_aname(struct scn__parser *p, const struct scn__tok *v, void *obj) {
  struct scn_action *a = obj;
  return ns_path(p, v, false, "an aname", a->aname);
}

static const struct scn__opt bind_opts[] = {{"--flags", n_flags, false},
                                            {NULL, NULL, false}};
static const struct scn__opt mount_opts[] = {{"--flags", n_flags, false},
                                             {"--aname", n_aname, false},
                                             {NULL, NULL, false}};

/* mount's server: /srv/NAME with NAME a 9P file server declared before. */
static int srv_path(struct scn__parser *p, struct scn_action *a) {
  int col = p->ti < p->ntok ? p->tok[p->ti].col : p->eol_col;
  if (next_path(p, false, "a server's /srv/NAME", a->src) < 0)
    return -1;
  if (strncmp(a->src, "/srv/", 5) != 0)
    return scn__fail(p, col, "a server is mounted from /srv/NAME");
  const char *name = a->src + 5;
  for (size_t i = 0; i < p->s->nservers; i++)
    if (strcmp(p->s->servers[i].name, name) == 0) {
      if (scn_family_of(p->s->servers[i].binary) == SCN_FAM_9P)
        return 0;
      return scn__fail(p, col + 5,
                       "server '%s' runs %s, which posts nothing in /srv "
                       "(ramfs and hostfs do)",
                       name, p->s->servers[i].binary);
    }
  return scn__fail(p, col + 5, "no server '%.40s' declared before this line",
                   name);
}

/* bind PROC NEW OLD [--flags F], mount PROC /srv/NAME OLD [--flags F]
 * [--aname A], unmount PROC [NEW] OLD. */
static int ns_args(struct scn__parser *p, struct scn_action *a) {
  if (ns_proc(p, a->target) < 0)
    return -1;
  switch (a->kind) {
  case SCN_ACT_BIND:
    if (next_path(p, true, "the path to bind (NEW)", a->src) < 0 ||
        next_path(p, false, "the path bound on (OLD)", a->dst) < 0)
      return -1;
    return scn__read_opts(p, "bind", bind_opts, a);
  case SCN_ACT_MOUNT:
    if (srv_path(p, a) < 0 ||
        next_path(p, false, "the path mounted on (OLD)", a->dst) < 0)
      return -1;
    return scn__read_opts(p, "mount", mount_opts, a);
  case SCN_ACT_UNMOUNT:
    if (next_path(p, true, "the path to unmount", a->dst) < 0)
      return -1;
    if (p->ti < p->ntok && p->tok[p->ti].kind != SCN__COLON) {
      memcpy(a->src, a->dst, sizeof a->src);
      if (next_path(p, false, "the path unmounted from (OLD)", a->dst) < 0)
        return -1;
    } else if (a->dst[0] == '#') {
      return scn__fail(p, p->eol_col,
                       "expected the path unmounted from "
                       "(OLD) after a servant");
    }
    return scn__end(p);
  default:
    abort(); /* only the namespace actions come here */
  }
}

/* fault kernel deadlock [ica|svc|ns]: the lock left held, in a->klock
 * ("" the default, ica). */
static int lock_arg(struct scn__parser *p, struct scn_action *a) {
  static const char *const locks[] = {"ica", "svc", "ns"};
  const struct scn__tok *t;
  int l;
  a->klock[0] = '\0';
  if (p->ti >= p->ntok)
    return 0;
  if ((t = scn__word(p, "a lock")) == NULL ||
      scn__read_enum(p, t, "lock", locks, COUNT(locks), &l) < 0)
    return -1;
  snprintf(a->klock, sizeof a->klock, "%s", locks[l]);
  return scn__end(p);
}

/* fault kernel panic|hang|crash, fault backup crash: a fault of an OS
 * (Orthros), on a machine with a backup (without one, the machine would
 * end with its kernel, and a standby has nothing to serve). */
static int fault_args(struct scn__parser *p, struct scn_action *a) {
  const struct scn__tok *t = scn__word(p, "kernel or backup");
  int os, kind;
  if (t == NULL ||
      scn__read_enum(p, t, "OS to fault", os_names, COUNT(os_names), &os) < 0)
    return -1;
  char what[32];
  snprintf(what, sizeof what, "fault %s", os_names[os]);
  if (scn__need_backup(p, t->col, what) < 0)
    return -1;
  snprintf(a->target, sizeof a->target, "%s", os_names[os]);
  if ((t = scn__word(p, "panic, hang, crash, deadlock, runaway or "
                        "stall-driver")) == NULL ||
      scn__read_enum(p, t, "kernel fault", kfault_names, COUNT(kfault_names),
                     &kind) < 0)
    return -1;
  a->kfault = kfault_kinds[kind];
  if (os == 1 && a->kfault != SCN_FAULT_CRASH)
    return scn__fail(p, t->col,
                     "a backup on standby can only crash (it serves no "
                     "call to panic or hang in)");
  return a->kfault == SCN_FAULT_DEADLOCK ? lock_arg(p, a) : scn__end(p);
}

/* kupdate [image|replay]: needs a backup of the next kernel version. */
static const char *const kupdate_methods[] = {"image", "replay"};

static int kupdate_args(struct scn__parser *p, struct scn_action *a) {
  if (scn__need_backup(p, p->tok[0].col, "kupdate") < 0)
    return -1;
  if (p->s->machine.backup_version != 2)
    return scn__fail(p, p->tok[0].col,
                     "kupdate needs a backup of the next kernel version "
                     "(machine --backup-version 2, on an earlier line)");
  snprintf(a->target, sizeof a->target, "kernel");
  int m = 0;
  if (p->ti < p->ntok && p->tok[p->ti].kind == SCN__WORD &&
      scn__read_enum(p, scn__word(p, "a method"), "kupdate method",
                     kupdate_methods, COUNT(kupdate_methods), &m) < 0)
    return -1;
  a->kreplay = m == 1;
  return scn__end(p);
}

/* The action after "at TIME" or "on TRIGGER:"; a->when is already set. */
static int action(struct scn__parser *p, struct scn_action *a) {
  const struct scn__tok *t = scn__word(p, "an action");
  int k;
  if (t == NULL ||
      scn__read_enum(p, t, "action", action_names, COUNT(action_names), &k) < 0)
    return -1;
  a->kind = (enum scn_action_kind)k;
  int r = a->kind == SCN_ACT_REPLACE   ? replace_args(p, a)
          : a->kind == SCN_ACT_FAULT   ? fault_args(p, a)
          : a->kind == SCN_ACT_KUPDATE ? kupdate_args(p, a)
          : a->kind == SCN_ACT_MIGRATE ? scn__migrate_args(p, a)
          : a->kind == SCN_ACT_INPUT   ? scn__input_args(p, a)
          : scn_action_is_ns(a->kind)  ? ns_args(p, a)
                                       : target(p, a);
  if (r < 0)
    return -1;
  a->pos = (struct scn_pos){p->line, p->tok[0].col};
  p->s->actions = scn__append(p->s->actions, &p->s->nactions, sizeof *a, a);
  return scn__count_action(p, a);
}

/* at TIME ACTION */
int scn__st_at(struct scn__parser *p) {
  struct scn_action a = {.when.kind = SCN_TRIG_AT};
  const struct scn__tok *t = scn__word(p, "a time such as 5ms");
  if (t == NULL || scn__read_range(p, t, SCN__DURATION, 0, UINT64_MAX,
                                   &a.when.t_ns, &a.when.t_hi_ns) < 0)
    return -1;
  return action(p, &a);
}

/* request N to SVC */
static int trigger_request(struct scn__parser *p, struct scn_trigger *w) {
  const struct scn__tok *t = scn__word(p, "a request number");
  w->kind = SCN_TRIG_REQUEST;
  if (t == NULL ||
      scn__read_range(p, t, SCN__NUMBER, 1, UINT64_MAX, &w->n, &w->n_hi) < 0 ||
      scn__expect_word(p, "to") < 0)
    return -1;
  t = scn__word(p, "a service");
  if (t == NULL || scn__read_name(p, t, w->name) < 0)
    return -1;
  return scn__need_server(p, t->col, w->name);
}

/* event EV ACTOR [N] */
static int trigger_event(struct scn__parser *p, struct scn_trigger *w) {
  const struct scn__tok *t = scn__word(p, "a trace event");
  w->kind = SCN_TRIG_EVENT;
  w->n = w->n_hi = 1;
  if (t == NULL)
    return -1;
  if (scn_ev_parse(t->text, &w->ev) < 0)
    return scn__fail(p, t->col,
                     "unknown event '%.40s' (see Trace format in "
                     "scenarios/README.md)",
                     t->text);
  t = scn__word(p, "an actor (a process, kernel or *)");
  if (t == NULL || scn__read_instance(p, t, true, w->name) < 0 ||
      scn__need_process(p, t->col, w->name, true, true) < 0)
    return -1;
  if (p->ti < p->ntok && p->tok[p->ti].kind == SCN__WORD) {
    t = &p->tok[p->ti++];
    return scn__read_range(p, t, SCN__NUMBER, 1, UINT64_MAX, &w->n, &w->n_hi);
  }
  return 0;
}

/* on request N to SVC: ACTION, or on event EV ACTOR [N]: ACTION */
int scn__st_on(struct scn__parser *p) {
  struct scn_action a = {0};
  const struct scn__tok *t = scn__word(p, "a trigger (request or event)");
  int k;
  if (t == NULL || scn__read_enum(p, t, "trigger", trigger_names,
                                  COUNT(trigger_names), &k) < 0)
    return -1;
  int r = k == 0 ? trigger_request(p, &a.when) : trigger_event(p, &a.when);
  if (r < 0)
    return -1;
  t = scn__next(p, "':' before the action");
  if (t == NULL)
    return -1;
  if (t->kind != SCN__COLON)
    return scn__fail(p, t->col, "expected ':' before the action");
  return action(p, &a);
}

/* Expectations */

static int e_app(struct scn__parser *p, const struct scn__tok *v, void *obj) {
  struct scn_expect *e = obj;
  if (scn__read_name(p, v, e->app) < 0)
    return -1;
  return scn__need_app(p, v->col, e->app);
}

static int e_service(struct scn__parser *p, const struct scn__tok *v,
                     void *obj) {
  struct scn_expect *e = obj;
  if (scn__read_name(p, v, e->service) < 0)
    return -1;
  return scn__need_server(p, v->col, e->service);
}

/* An op is SERVICE.OP as the trace writes it ("kvs.put"). */
static int e_op(struct scn__parser *p, const struct scn__tok *v, void *obj) {
  struct scn_expect *e = obj;
  char inst[SCN_INST_MAX + 1];
  const char *dot = strchr(v->text, '.');
  struct scn__tok svc = *v;
  if (v->kind != SCN__WORD || dot == NULL || dot[1] == '\0' ||
      strlen(v->text) > SCN_NAME_MAX)
    return scn__fail(p, v->col, "expected an op such as kvs.put");
  svc.text[dot - v->text] = '\0';
  if (scn__read_instance(p, &svc, false, inst) < 0)
    return -1;
  memcpy(e->op, v->text, strlen(v->text) + 1);
  return 0;
}

static const struct scn__opt scope_opts[] = {{"--app", e_app, false},
                                             {"--service", e_service, false},
                                             {NULL, NULL, false}};
static const struct scn__opt latency_opts[] = {{"--app", e_app, false},
                                               {"--service", e_service, false},
                                               {"--op", e_op, false},
                                               {NULL, NULL, false}};

int scn__read_cmp(struct scn__parser *p, struct scn_expect *e) {
  const struct scn__tok *t = scn__word(p, "a comparison (<, <=, ==, >=, >)");
  int k;
  if (t == NULL ||
      scn__read_enum(p, t, "comparison", cmp_names, COUNT(cmp_names), &k) < 0)
    return -1;
  e->cmp = (enum scn_cmp)k;
  return 0;
}

/* errors CMP N --app A --service S */
static int exp_errors(struct scn__parser *p, struct scn_expect *e) {
  const struct scn__tok *t;
  if (scn__read_cmp(p, e) < 0 || (t = scn__word(p, "a count")) == NULL ||
      scn__read_u64(p, t, 0, UINT64_MAX, &e->value) < 0)
    return -1;
  return scn__read_opts(p, "expect errors", scope_opts, e);
}

/* latency STAT CMP TIME --app A --service S --op OP */
static int exp_latency(struct scn__parser *p, struct scn_expect *e) {
  const struct scn__tok *t = scn__word(p, "p50, p99 or max");
  int k;
  if (t == NULL ||
      scn__read_enum(p, t, "statistic", stat_names, COUNT(stat_names), &k) < 0)
    return -1;
  e->stat = (enum scn_stat)k;
  if (scn__read_cmp(p, e) < 0 ||
      (t = scn__word(p, "a time such as 5ms")) == NULL ||
      scn__read_duration(p, t, &e->value) < 0)
    return -1;
  return scn__read_opts(p, "expect latency", latency_opts, e);
}

/* state SVC equals model, or state SVC equals "FILE" */
static int exp_state(struct scn__parser *p, struct scn_expect *e) {
  const struct scn__tok *t = scn__word(p, "a service");
  if (t == NULL || scn__read_name(p, t, e->service) < 0 ||
      scn__need_server(p, t->col, e->service) < 0 ||
      scn__expect_word(p, "equals") < 0)
    return -1;
  t = scn__next(p, "model or a file name in quotes");
  if (t == NULL)
    return -1;
  if (t->kind == SCN__STRING && t->text[0] != '\0') {
    memcpy(e->path, t->text, sizeof e->path);
    if (scn__count_dump(p, e->pos.col, e->service) < 0)
      return -1;
  } else if (t->kind == SCN__WORD && strcmp(t->text, "model") == 0)
    e->model = true;
  else
    return scn__fail(p, t->col, "expected model or a file name in quotes");
  return scn__end(p);
}

/* trace contains|omits EV [ACTOR] ["text"] */
static int exp_trace(struct scn__parser *p, struct scn_expect *e) {
  struct scn_pattern *pt = &e->pattern;
  const struct scn__tok *t = scn__word(p, "contains or omits");
  int k;
  if (t == NULL || scn__read_enum(p, t, "trace check", trace_names,
                                  COUNT(trace_names), &k) < 0)
    return -1;
  e->kind = k == 0 ? SCN_EXP_TRACE_CONTAINS : SCN_EXP_TRACE_OMITS;
  if ((t = scn__word(p, "a trace event")) == NULL)
    return -1;
  if (scn_ev_parse(t->text, &pt->ev) < 0)
    return scn__fail(p, t->col,
                     "unknown event '%.40s' (see Trace format in "
                     "scenarios/README.md)",
                     t->text);
  if (p->ti < p->ntok && p->tok[p->ti].kind == SCN__WORD) {
    t = &p->tok[p->ti++];
    if (scn__read_instance(p, t, true, pt->actor) < 0 ||
        scn__need_process(p, t->col, pt->actor, true, true) < 0)
      return -1;
  }
  if (p->ti < p->ntok && p->tok[p->ti].kind == SCN__STRING)
    memcpy(pt->text, p->tok[p->ti++].text, sizeof pt->text);
  return scn__end(p);
}

/* file PROC PATH equals|contains "TEXT", or file PROC PATH fails */
static int exp_file(struct scn__parser *p, struct scn_expect *e) {
  const struct scn__tok *t;
  int k;
  e->kind = SCN_EXP_FILE;
  if (ns_proc(p, e->proc) < 0 ||
      next_path(p, true, "the path to read", e->path) < 0 ||
      (t = scn__word(p, "equals, contains or fails")) == NULL ||
      scn__read_enum(p, t, "file check", file_names, COUNT(file_names), &k) < 0)
    return -1;
  e->fcheck = (enum scn_file_check)k;
  if (e->fcheck != SCN_FILE_FAILS) {
    if ((t = scn__next(p, "a text in quotes")) == NULL)
      return -1;
    if (t->kind != SCN__STRING)
      return scn__fail(p, t->col, "expected a text in quotes");
    memcpy(e->text, t->text, sizeof e->text);
  }
  if (scn__end(p) < 0)
    return -1;
  return scn__count_helper(p, e->pos.col);
}

/* failovers CMP N */
static int exp_failovers(struct scn__parser *p, struct scn_expect *e) {
  const struct scn__tok *t;
  if (scn__read_cmp(p, e) < 0 || (t = scn__word(p, "a count")) == NULL ||
      scn__read_u64(p, t, 0, UINT32_MAX, &e->value) < 0)
    return -1;
  return scn__end(p);
}

/* ended APP: an app that is not protected ends with its OS. */
static int exp_ended(struct scn__parser *p, struct scn_expect *e) {
  const struct scn__tok *t = scn__word(p, "an app");
  if (t == NULL || scn__read_name(p, t, e->app) < 0 ||
      scn__need_app(p, t->col, e->app) < 0)
    return -1;
  return scn__end(p);
}

/* usable-mib OS MIB [OS MIB ...]: OS numbers from 1, MiB as the machine's
 * Table 5 says (its ACTIVE_USABLE_MIB). */
static int exp_usable(struct scn__parser *p, struct scn_expect *e) {
  uint64_t os;
  while (p->ti < p->ntok) {
    const struct scn__tok *t = scn__word(p, "an OS number");
    if (t == NULL || scn__read_u64(p, t, 1, UINT32_MAX, &os) < 0)
      return -1;
    if (e->nusable == SCN_USABLE_MAX)
      return scn__fail(p, t->col, "more than %d OSes in one usable-mib",
                       SCN_USABLE_MAX);
    e->usable_os[e->nusable] = (uint32_t)os;
    if ((t = scn__word(p, "its usable MiB")) == NULL ||
        scn__read_u64(p, t, 0, UINT32_MAX, &e->usable_mib[e->nusable]) < 0)
      return -1;
    e->nusable++;
  }
  if (e->nusable == 0)
    return scn__fail(p, p->eol_col, "expected an OS number and its MiB");
  return 0;
}

/* tcp-client NAME connected: a client declared before this line. */
static int exp_tcp(struct scn__parser *p, struct scn_expect *e) {
  const struct scn__tok *t = scn__word(p, "a tcp-client");
  if (t == NULL || scn__read_name(p, t, e->app) < 0)
    return -1;
  if (scn__tcp_line(p->s, e->app) == 0)
    return scn__fail(p, t->col, "no tcp-client '%s' declared before this line",
                     e->app);
  if (scn__expect_word(p, "connected") < 0)
    return -1;
  return scn__end(p);
}

/* expect KIND ... */
int scn__st_expect(struct scn__parser *p) {
  struct scn_expect e = {.pos = {p->line, p->tok[0].col}};
  const struct scn__tok *t = scn__word(p, "an expectation");
  int k, r;
  if (t == NULL || scn__read_enum(p, t, "expectation", expect_names,
                                  COUNT(expect_names), &k) < 0)
    return -1;
  /* "trace" is two kinds (contains, omits): the names after it are one
   * kind further on. */
  e.kind = (enum scn_expect_kind)(k > SCN_EXP_TRACE_CONTAINS ? k + 1 : k);
  char what[SCN_TEXT_MAX + 8];
  snprintf(what, sizeof what, "expect %s", t->text);
  if (e.kind > SCN_EXP_FILE && e.kind != SCN_EXP_TCP &&
      e.kind != SCN_EXP_TASK && scn__need_backup(p, t->col, what) < 0)
    return -1;
  switch (e.kind) {
  case SCN_EXP_ERRORS:
    r = exp_errors(p, &e);
    break;
  case SCN_EXP_LATENCY:
    r = exp_latency(p, &e);
    break;
  case SCN_EXP_STATE:
    r = exp_state(p, &e);
    break;
  case SCN_EXP_TRACE_CONTAINS:
    r = exp_trace(p, &e);
    break;
  case SCN_EXP_FILE:
    r = exp_file(p, &e);
    break;
  case SCN_EXP_FAILOVERS:
    r = exp_failovers(p, &e);
    break;
  case SCN_EXP_ENDED:
    r = exp_ended(p, &e);
    break;
  case SCN_EXP_USABLE:
    r = exp_usable(p, &e);
    break;
  case SCN_EXP_TCP:
    r = exp_tcp(p, &e);
    break;
  case SCN_EXP_TASK:
    r = scn__exp_task(p, &e);
    break;
  default:
    r = scn__end(p);
    break;
  }
  if (r < 0)
    return -1;
  p->s->expects = scn__append(p->s->expects, &p->s->nexpects, sizeof e, &e);
  return 0;
}
