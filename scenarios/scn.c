/* The scenario parser: files, lines, declarations and options.
 *
 * A file is read line by line; each line holding a word is one statement,
 * dispatched on its first word.  Names must be declared (server, app) on an
 * earlier line than any use, so one pass checks every cross reference and
 * the error reported is always the first one in the file.  The statements
 * that act (at, on) and check (expect) are in scn_action.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scn_impl.h"

static const char *const ev_names[SCN_EV_COUNT] = {
    "spawn",  "register", "send",    "receive",   "reply",    "result",
    "flag",   "prepare",  "handoff", "commit",    "fail",     "fault",
    "detect", "restart",  "error",   "exit",      "action",   "expect",
    "halt",   "panic",    "os-dead", "os-active", "takeover", "failover",
    "resize", "kupdate",  "monitor"};

static const char *const state_names[] = {"single", "chain", "copy"};
/* A server's fault plan takes the first SERVER_FAULTS; the rest are the
 * kernel's own (fault kernel ...). */
static const char *const fault_kinds[] = {
    "crash", "panic", "hang", "refuse", "deadlock", "runaway", "stall-driver"};
#define SERVER_FAULTS 4
static const char *const fault_points[] = {"start",   "register", "restore",
                                           "request", "save",     "handoff"};
static const char *const mode_names[] = {"lockstep", "free"};
static const char *const ns_names[] = {"fresh", "share", "copy", "clean"};
/* The 9P file servers: they take --name, post /srv/NAME and are mounted. */
static const char *const p9_binaries[] = {"ramfs", "hostfs", "diskfs"};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

const char *scn_ev_name(enum scn_ev ev) {
  return (unsigned)ev < SCN_EV_COUNT ? ev_names[ev] : "?";
}

int scn_ev_parse(const char *name, enum scn_ev *ev) {
  for (int i = 0; i < SCN_EV_COUNT; i++)
    if (strcmp(name, ev_names[i]) == 0) {
      *ev = (enum scn_ev)i;
      return 0;
    }
  return -EINVAL;
}

const char *scn_state_name(enum scn_state s) {
  return s >= SCN_STATE_SINGLE && s <= SCN_STATE_COPY ? state_names[s - 1]
                                                      : "unset";
}

const char *scn_fault_kind_name(enum scn_fault_kind k) {
  return (unsigned)k < (unsigned)COUNT(fault_kinds) ? fault_kinds[k] : "?";
}

const char *scn_fault_point_name(enum scn_fault_point pt) {
  return (unsigned)pt < (unsigned)COUNT(fault_points) ? fault_points[pt] : "?";
}

enum scn_family scn_family_of(const char *binary) {
  for (int i = 0; i < COUNT(p9_binaries); i++)
    if (strcmp(binary, p9_binaries[i]) == 0)
      return SCN_FAM_9P;
  return SCN_FAM_KVS;
}

void *scn__append(void *arr, size_t *n, size_t size, const void *item) {
  arr = xreallocarray(arr, *n + 1, size);
  memcpy((char *)arr + *n * size, item, size);
  ++*n;
  return arr;
}

/* Options */

static int find_opt(const struct scn__opt *opts, const char *name) {
  for (int i = 0; opts[i].name != NULL; i++)
    if (strcmp(opts[i].name, name) == 0)
      return i;
  return -1;
}

static int unknown_opt(struct scn__parser *p, const struct scn__tok *t,
                       const char *stmt, const struct scn__opt *opts) {
  char list[256] = "";
  for (int i = 0; opts[i].name != NULL; i++) {
    size_t l = strlen(list);
    snprintf(list + l, sizeof list - l, "%s%s", i ? ", " : "", opts[i].name);
  }
  if (opts[0].name == NULL)
    return scn__fail(p, t->col, "unexpected '%.40s' (%s takes no options)",
                     t->text, stmt);
  return scn__fail(p, t->col, "unknown option '%.40s' for %s (%s)", t->text,
                   stmt, list);
}

int scn__read_opts(struct scn__parser *p, const char *stmt,
                   const struct scn__opt *opts, void *obj) {
  unsigned long long seen = 0;
  while (p->ti < p->ntok) {
    const struct scn__tok *t = &p->tok[p->ti++];
    if (t->kind != SCN__WORD || strncmp(t->text, "--", 2) != 0) {
      if (t->kind == SCN__STRING)
        return scn__fail(p, t->col, "unexpected string");
      return scn__fail(p, t->col,
                       "unexpected '%.40s' (options of %s start "
                       "with --)",
                       t->text, stmt);
    }
    int i = find_opt(opts, t->text);
    if (i < 0)
      return unknown_opt(p, t, stmt, opts);
    if ((seen & (1ull << i)) && opts[i].repeat != true)
      return scn__fail(p, t->col, "option %s given twice", opts[i].name);
    seen |= 1ull << i;
    if (opts[i].repeat == SCN__FLAG) {
      if (opts[i].set(p, t, obj) < 0)
        return -1;
      continue;
    }
    char what[64];
    snprintf(what, sizeof what, "a value for %s", opts[i].name);
    const struct scn__tok *v = scn__next(p, what);
    if (v == NULL)
      return -1;
    if (v->kind == SCN__COLON)
      return scn__fail(p, v->col, "expected %s, got ':'", what);
    if (opts[i].set(p, v, obj) < 0)
      return -1;
  }
  return 0;
}

int scn__read_state(struct scn__parser *p, const struct scn__tok *t,
                    enum scn_state *out) {
  int i;
  if (scn__read_enum(p, t, "state method", state_names, COUNT(state_names),
                     &i) < 0)
    return -1;
  *out = (enum scn_state)(i + SCN_STATE_SINGLE);
  return 0;
}

static int fault_point(struct scn__parser *p, const struct scn__tok *pt,
                       struct scn_fault *f) {
  int i;
  size_t n = strcspn(pt->text, ":");
  struct scn__tok name = scn__sub_tok(pt, 0, n);
  if (scn__read_enum(p, &name, "fault point", fault_points, COUNT(fault_points),
                     &i) < 0)
    return -1;
  f->point = (enum scn_fault_point)i;
  if (f->point != SCN_AT_REQUEST && pt->text[n] != '\0')
    return scn__fail(p, pt->col + (int)n,
                     "only request takes a number "
                     "(request:N)");
  if (f->point != SCN_AT_REQUEST)
    return 0;
  if (pt->text[n] == '\0')
    return scn__fail(p, pt->col, "request needs a number: request:N");
  struct scn__tok num = scn__sub_tok(pt, n + 1, strlen(pt->text) - n - 1);
  return scn__read_range(p, &num, SCN__NUMBER, 1, UINT64_MAX, &f->n, &f->n_hi);
}

int scn__read_fault(struct scn__parser *p, const struct scn__tok *t,
                    struct scn_fault fs[SCN_FAULTS_MAX], unsigned *n) {
  const char *at = strchr(t->text, '@');
  struct scn_fault f = {0};
  int i;
  if (*n == SCN_FAULTS_MAX)
    return scn__fail(p, t->col, "more than %d faults in one plan",
                     SCN_FAULTS_MAX);
  if (t->kind != SCN__WORD || at == NULL)
    return scn__fail(p, t->col,
                     "expected a fault such as crash@request:10 "
                     "(KIND@POINT)");
  size_t k = (size_t)(at - t->text);
  struct scn__tok kind = scn__sub_tok(t, 0, k);
  struct scn__tok point = scn__sub_tok(t, k + 1, strlen(t->text) - k - 1);
  if (scn__read_enum(p, &kind, "fault kind", fault_kinds, SERVER_FAULTS, &i) <
          0 ||
      fault_point(p, &point, &f) < 0)
    return -1;
  f.kind = (enum scn_fault_kind)i;
  if (f.kind == SCN_FAULT_REFUSE && f.point != SCN_AT_RESTORE)
    return scn__fail(p, t->col,
                     "refuse happens only at restore "
                     "(refuse@restore)");
  fs[(*n)++] = f;
  return 0;
}

/* Declarations */

enum decl { DECL_NONE, DECL_SERVER, DECL_APP };

/* Which kind of declaration name has, and at which line. */
static enum decl lookup(const struct scn *s, const char *name, int *line) {
  for (size_t i = 0; i < s->nservers; i++)
    if (strcmp(s->servers[i].name, name) == 0)
      return *line = s->servers[i].pos.line, DECL_SERVER;
  for (size_t i = 0; i < s->napps; i++)
    if (strcmp(s->apps[i].name, name) == 0)
      return *line = s->apps[i].pos.line, DECL_APP;
  return DECL_NONE;
}

static int need(struct scn__parser *p, int col, const char *name,
                enum decl want) {
  int line;
  enum decl d = lookup(p->s, name, &line);
  const char *what = want == DECL_SERVER ? "server" : "app";
  if (d == want)
    return 0;
  if (d == DECL_NONE)
    return scn__fail(p, col, "no %s '%s' declared before this line", what,
                     name);
  return scn__fail(p, col, "'%s' is %s, not %s (line %d)", name,
                   d == DECL_SERVER ? "a server" : "an app",
                   want == DECL_SERVER ? "a server" : "an app", line);
}

int scn__need_server(struct scn__parser *p, int col, const char *name) {
  return need(p, col, name, DECL_SERVER);
}

int scn__need_app(struct scn__parser *p, int col, const char *name) {
  return need(p, col, name, DECL_APP);
}

int scn__need_process(struct scn__parser *p, int col, const char *inst,
                      bool kernel, bool star) {
  char base[SCN_INST_MAX + 1];
  int line;
  if ((star && strcmp(inst, "*") == 0) ||
      (kernel && strcmp(inst, "kernel") == 0))
    return 0;
  scn__base_name(inst, base);
  if (lookup(p->s, base, &line) != DECL_NONE)
    return 0;
  return scn__fail(p, col, "no server or app '%s' declared before this line",
                   base);
}

/* The line of node name's statement, or 0 if none is declared. */
static int node_line(const struct scn *s, const char *name) {
  for (size_t i = 0; i < s->nnodes; i++)
    if (strcmp(s->nodes[i].name, name) == 0)
      return s->nodes[i].pos.line;
  return 0;
}

int scn__new_name(struct scn__parser *p, const struct scn__tok *t,
                  char out[SCN_NAME_MAX + 1]) {
  int line;
  if (scn__read_name(p, t, out) < 0)
    return -1;
  if (strcmp(out, "kernel") == 0)
    return scn__fail(p, t->col, "'kernel' names the kernel, not a process");
  if (lookup(p->s, out, &line) != DECL_NONE ||
      (line = scn__tcp_line(p->s, out)) > 0 ||
      (line = scn__task_line(p->s, out)) > 0 ||
      (line = node_line(p->s, out)) > 0)
    return scn__fail(p, t->col, "'%s' is already declared at line %d", out,
                     line);
  return 0;
}

static struct scn_pos here(const struct scn__parser *p) {
  return (struct scn_pos){p->line, p->tok[0].col};
}

/* scenario "title" */

static int st_scenario(struct scn__parser *p) {
  if (p->title_line != 0)
    return scn__fail(p, p->tok[0].col,
                     "second scenario statement (the "
                     "first is at line %d)",
                     p->title_line);
  const struct scn__tok *t = scn__next(p, "a title in quotes");
  if (t == NULL)
    return -1;
  if (t->kind != SCN__STRING)
    return scn__fail(p, t->col, "expected a title in quotes");
  p->title_line = p->line;
  memcpy(p->s->title, t->text, sizeof p->s->title);
  return scn__end(p);
}

/* machine --memory SIZE --seed N --grace TIME --mode lockstep|free */

static int m_memory(struct scn__parser *p, const struct scn__tok *v,
                    void *obj) {
  struct scn_machine *m = obj;
  if (scn__read_size(p, v, &m->memory) < 0)
    return -1;
  if (m->memory == 0 || m->memory % SCN_BLOCK_SIZE != 0)
    return scn__fail(p, v->col,
                     "memory must be a whole number of 128M "
                     "blocks");
  return 0;
}

static int m_seed(struct scn__parser *p, const struct scn__tok *v, void *obj) {
  struct scn_machine *m = obj;
  m->seed_set = true;
  return scn__read_u64(p, v, 0, UINT64_MAX, &m->seed);
}

static int m_grace(struct scn__parser *p, const struct scn__tok *v, void *obj) {
  struct scn_machine *m = obj;
  return scn__read_period(p, v, "grace", &m->grace_ns);
}

static int m_mode(struct scn__parser *p, const struct scn__tok *v, void *obj) {
  struct scn_machine *m = obj;
  int i;
  if (scn__read_enum(p, v, "mode", mode_names, COUNT(mode_names), &i) < 0)
    return -1;
  m->mode = (enum scn_mode)i;
  m->mode_set = true;
  return 0;
}

/* Orthros: --backup N --heartbeat TIME --heartbeat-timeout TIME --disk SIZE */

static int m_backup(struct scn__parser *p, const struct scn__tok *v,
                    void *obj) {
  uint64_t n;
  if (scn__read_u64(p, v, 0, SCN_BACKUP_MAX, &n) < 0)
    return -1;
  ((struct scn_machine *)obj)->backup = (uint32_t)n;
  return 0;
}

/* A heartbeat time: whole milliseconds, at most a minute. */
static int read_hb(struct scn__parser *p, const struct scn__tok *v,
                   const char *what, uint64_t *ns) {
  if (scn__read_period(p, v, what, ns) < 0)
    return -1;
  if (*ns > SCN_HEARTBEAT_MAX_NS || *ns % 1000000 != 0)
    return scn__fail(p, v->col, "%s is whole milliseconds, at most 60000ms",
                     what);
  return 0;
}

static int m_heartbeat(struct scn__parser *p, const struct scn__tok *v,
                       void *obj) {
  return read_hb(p, v, "a heartbeat",
                 &((struct scn_machine *)obj)->heartbeat_ns);
}

static int m_hb_timeout(struct scn__parser *p, const struct scn__tok *v,
                        void *obj) {
  return read_hb(p, v, "a heartbeat timeout",
                 &((struct scn_machine *)obj)->hb_timeout_ns);
}

static int m_disk(struct scn__parser *p, const struct scn__tok *v, void *obj) {
  struct scn_machine *m = obj;
  if (scn__read_size(p, v, &m->disk) < 0)
    return -1;
  if (m->disk == 0 || m->disk > SCN_DISK_MAX || m->disk % 4096 != 0)
    return scn__fail(p, v->col,
                     "a disk is whole 4K blocks, at most 1G (--disk 16M)");
  return 0;
}

/* --backup-version 1|2: the backup's kernel version (issue 15). */
static int m_backup_version(struct scn__parser *p, const struct scn__tok *v,
                            void *obj) {
  uint64_t n;
  if (scn__read_u64(p, v, 1, 2, &n) < 0)
    return -1;
  ((struct scn_machine *)obj)->backup_version = (uint32_t)n;
  return 0;
}

/* --monitor-interval TIME (whole ms), --monitor-policy report|failover. */
static int m_monitor(struct scn__parser *p, const struct scn__tok *v,
                     void *obj) {
  return read_hb(p, v, "a monitor interval",
                 &((struct scn_machine *)obj)->monitor_ns);
}

static int m_monitor_policy(struct scn__parser *p, const struct scn__tok *v,
                            void *obj) {
  static const char *const policies[] = {"report", "failover"};
  int i;
  if (scn__read_enum(p, v, "monitor policy", policies, 2, &i) < 0)
    return -1;
  ((struct scn_machine *)obj)->monitor_failover = (uint32_t)i;
  return 0;
}

/* --nic-port N: where nic0's ports are, so that a scenario's servers and
 * its tcp-clients agree on them. */
static int m_nic_port(struct scn__parser *p, const struct scn__tok *v,
                      void *obj) {
  uint64_t n;
  if (scn__read_u64(p, v, SCN_NIC_PORT_MIN, SCN_NIC_PORT_MAX, &n) < 0)
    return -1;
  ((struct scn_machine *)obj)->nic_port = (uint32_t)n;
  return 0;
}

static const struct scn__opt machine_opts[] = {
    {"--memory", m_memory, false},
    {"--seed", m_seed, false},
    {"--grace", m_grace, false},
    {"--mode", m_mode, false},
    {"--backup", m_backup, false},
    {"--heartbeat", m_heartbeat, false},
    {"--heartbeat-timeout", m_hb_timeout, false},
    {"--disk", m_disk, false},
    {"--nic-port", m_nic_port, false},
    {"--backup-version", m_backup_version, false},
    {"--monitor-interval", m_monitor, false},
    {"--monitor-policy", m_monitor_policy, false},
    {NULL, NULL, false}};

int scn__need_backup(struct scn__parser *p, int col, const char *what) {
  if (p->s->machine.backup > 0)
    return 0;
  return scn__fail(p, col,
                   "%s needs a machine with a backup (machine --backup 1, "
                   "on an earlier line)",
                   what);
}

/* A machine with a backup runs free: a heartbeat is real time, and a
 * failover happens when the backup sees the silence, which no lock-step
 * schedule can fix (README "Orthros"). */
static int machine_check(struct scn__parser *p, struct scn_machine *m) {
  if ((m->heartbeat_ns || m->hb_timeout_ns) && m->backup == 0)
    return scn__fail(p, p->eol_col,
                     "--heartbeat and --heartbeat-timeout need --backup 1");
  if (m->backup_version && m->backup == 0)
    return scn__fail(p, p->eol_col, "--backup-version needs --backup 1");
  if ((m->monitor_ns || m->monitor_failover) && m->backup == 0)
    return scn__fail(p, p->eol_col,
                     "--monitor-interval and --monitor-policy need --backup "
                     "1 (the backup is the monitor)");
  if (m->backup == 0)
    return 0;
  if (m->mode_set && m->mode == SCN_MODE_LOCKSTEP)
    return scn__fail(p, p->eol_col,
                     "a machine with a backup runs free (--mode free): a "
                     "failover is real time");
  m->mode = SCN_MODE_FREE;
  return 0;
}

static int st_machine(struct scn__parser *p) {
  struct scn_machine *m = &p->s->machine;
  if (m->pos.line != 0)
    return scn__fail(p, p->tok[0].col,
                     "second machine statement (the first "
                     "is at line %d)",
                     m->pos.line);
  m->pos = here(p);
  if (scn__read_opts(p, "machine", machine_opts, m) < 0)
    return -1;
  return machine_check(p, m);
}

/* server NAME --binary B --version N --state M --restart R --deadline T
 *   --heartbeat T --hold N --args "..." --fault F... */

static int s_binary(struct scn__parser *p, const struct scn__tok *v,
                    void *obj) {
  return scn__read_name(p, v, ((struct scn_server *)obj)->binary);
}

static int s_version(struct scn__parser *p, const struct scn__tok *v,
                     void *obj) {
  uint64_t n;
  if (scn__read_u64(p, v, 1, UINT32_MAX, &n) < 0)
    return -1;
  ((struct scn_server *)obj)->version = (uint32_t)n;
  return 0;
}

static int s_state(struct scn__parser *p, const struct scn__tok *v, void *obj) {
  return scn__read_state(p, v, &((struct scn_server *)obj)->state);
}

static int s_restart(struct scn__parser *p, const struct scn__tok *v,
                     void *obj) {
  struct scn_server *s = obj;
  uint64_t n;
  if (strcmp(v->text, "never") == 0 || strcmp(v->text, "always") == 0) {
    s->restart = v->text[0] == 'n' ? SCN_RESTART_NEVER : SCN_RESTART_ALWAYS;
    return 0;
  }
  if (v->kind != SCN__WORD || v->text[0] < '0' || v->text[0] > '9')
    return scn__fail(p, v->col,
                     "expected never, always or a number of "
                     "restarts, got '%.40s'",
                     v->text);
  if (scn__read_u64(p, v, 1, UINT32_MAX, &n) < 0)
    return -1;
  s->restart = SCN_RESTART_LIMIT;
  s->restarts = (uint32_t)n;
  return 0;
}

static int s_deadline(struct scn__parser *p, const struct scn__tok *v,
                      void *obj) {
  return scn__read_duration(p, v, &((struct scn_server *)obj)->deadline_ns);
}

static int s_heartbeat(struct scn__parser *p, const struct scn__tok *v,
                       void *obj) {
  return scn__read_duration(p, v, &((struct scn_server *)obj)->heartbeat_ns);
}

static int s_hold(struct scn__parser *p, const struct scn__tok *v, void *obj) {
  uint64_t n;
  if (scn__read_u64(p, v, 1, SCN_HOLD_MAX, &n) < 0)
    return -1;
  ((struct scn_server *)obj)->hold = (uint32_t)n;
  return 0;
}

static int s_args(struct scn__parser *p, const struct scn__tok *v, void *obj) {
  return scn__read_args(p, v, ((struct scn_server *)obj)->args);
}

static int s_fault(struct scn__parser *p, const struct scn__tok *v, void *obj) {
  struct scn_server *s = obj;
  return scn__read_fault(p, v, s->faults, &s->nfaults);
}

static const struct scn__opt server_opts[] = {
    {"--binary", s_binary, false},     {"--version", s_version, false},
    {"--state", s_state, false},       {"--restart", s_restart, false},
    {"--deadline", s_deadline, false}, {"--heartbeat", s_heartbeat, false},
    {"--hold", s_hold, false},         {"--args", s_args, false},
    {"--fault", s_fault, true},        {NULL, NULL, false}};

static int st_server(struct scn__parser *p) {
  struct scn_server sv = {.version = 1, .state = SCN_STATE_SINGLE};
  const struct scn__tok *t = scn__word(p, "a server name");
  if (t == NULL || scn__new_name(p, t, sv.name) < 0)
    return -1;
  if (strlen(sv.name) > SCN_SERVER_NAME_MAX)
    return scn__fail(p, t->col,
                     "a server's name is at most %d bytes (its later "
                     "instances are NAME.2, NAME.3 ...)",
                     SCN_SERVER_NAME_MAX);
  memcpy(sv.binary, sv.name, sizeof sv.binary);
  sv.pos = here(p);
  if (scn__read_opts(p, "server", server_opts, &sv) < 0)
    return -1;
  if (scn_family_of(sv.binary) == SCN_FAM_9P &&
      (sv.hold > 0 || sv.state != SCN_STATE_SINGLE))
    return scn__fail(p, t->col,
                     "%s is a 9P file server: --hold and --state are kvs's "
                     "options",
                     sv.binary);
  p->s->servers = scn__append(p->s->servers, &p->s->nservers, sizeof sv, &sv);
  return scn__count_server(p, sv.pos.col);
}

/* app NAME --binary B --service S --count N --keys N --value-size S[..S]
 *   --seed N --mix P:G:D --rate N --start T --args "..." */

static int a_binary(struct scn__parser *p, const struct scn__tok *v,
                    void *obj) {
  return scn__read_name(p, v, ((struct scn_app *)obj)->binary);
}

static int a_service(struct scn__parser *p, const struct scn__tok *v,
                     void *obj) {
  struct scn_app *a = obj;
  if (scn__read_name(p, v, a->service) < 0)
    return -1;
  return scn__need_server(p, v->col, a->service);
}

static int a_count(struct scn__parser *p, const struct scn__tok *v, void *obj) {
  return scn__read_u64(p, v, 0, UINT64_MAX, &((struct scn_app *)obj)->count);
}

static int a_keys(struct scn__parser *p, const struct scn__tok *v, void *obj) {
  return scn__read_u64(p, v, 1, SCN_KEYS_MAX, &((struct scn_app *)obj)->keys);
}

static int a_value_size(struct scn__parser *p, const struct scn__tok *v,
                        void *obj) {
  struct scn_app *a = obj;
  if (v->kind != SCN__WORD)
    return scn__fail(p, v->col, "expected a size such as 64K, got a string");
  if (scn__read_range(p, v, SCN__SIZE, 0, UINT64_MAX, &a->value_min,
                      &a->value_max) < 0)
    return -1;
  if (a->value_max > SCN_VALUE_MAX)
    return scn__fail(p, v->col, "a value is at most %uM bytes",
                     SCN_VALUE_MAX >> 20);
  return 0;
}

static int a_seed(struct scn__parser *p, const struct scn__tok *v, void *obj) {
  struct scn_app *a = obj;
  a->seed_set = true;
  return scn__read_u64(p, v, 0, UINT64_MAX, &a->seed);
}

static int a_mix(struct scn__parser *p, const struct scn__tok *v, void *obj) {
  struct scn_app *a = obj;
  size_t at = 0;
  uint64_t w, sum = 0;
  for (int i = 0; i < 3; i++) {
    size_t n = strcspn(v->text + at, ":");
    struct scn__tok part = scn__sub_tok(v, at, n);
    if ((i < 2) != (v->text[at + n] == ':') || v->kind != SCN__WORD)
      return scn__fail(p, v->col,
                       "expected a mix such as 50:45:5 "
                       "(put:get:delete weights)");
    if (scn__read_u64(p, &part, 0, 1000000, &w) < 0)
      return -1;
    a->mix[i] = (unsigned)w;
    sum += w;
    at += n + 1;
  }
  if (sum == 0)
    return scn__fail(p, v->col, "a mix needs a weight above 0");
  return 0;
}

static int a_rate(struct scn__parser *p, const struct scn__tok *v, void *obj) {
  return scn__read_u64(p, v, 0, 1000000000, &((struct scn_app *)obj)->rate);
}

static int a_start(struct scn__parser *p, const struct scn__tok *v, void *obj) {
  return scn__read_duration(p, v, &((struct scn_app *)obj)->start_ns);
}

static int a_args(struct scn__parser *p, const struct scn__tok *v, void *obj) {
  return scn__read_args(p, v, ((struct scn_app *)obj)->args);
}

/* --ns fresh, or --ns share:P, copy:P, clean:P with P declared before. */
static int a_ns(struct scn__parser *p, const struct scn__tok *v, void *obj) {
  struct scn_app *a = obj;
  size_t n = strcspn(v->text, ":");
  struct scn__tok kind = scn__sub_tok(v, 0, n);
  int i;
  if (v->kind != SCN__WORD)
    return scn__fail(p, v->col, "expected fresh, share:P, copy:P or clean:P");
  if (scn__read_enum(p, &kind, "namespace", ns_names, COUNT(ns_names), &i) < 0)
    return -1;
  a->ns.kind = (enum scn_ns_kind)i;
  if ((a->ns.kind == SCN_NS_FRESH) != (v->text[n] == '\0'))
    return scn__fail(p, v->col,
                     a->ns.kind == SCN_NS_FRESH ? "fresh takes no process"
                                                : "%s needs a process: %s:PROC",
                     ns_names[i], ns_names[i]);
  if (a->ns.kind == SCN_NS_FRESH)
    return 0;
  struct scn__tok from = scn__sub_tok(v, n + 1, strlen(v->text) - n - 1);
  if (scn__read_name(p, &from, a->ns.from) < 0)
    return -1;
  return scn__need_process(p, from.col, a->ns.from, false, false);
}

/* The process whose namespace app a takes must be spawned first: a
 * server (at time 0) or an app that starts no later (in file order on
 * the same time). */
static int ns_order(struct scn__parser *p, const struct scn_app *a, int col) {
  for (size_t i = 0; a->ns.kind != SCN_NS_FRESH && i < p->s->napps; i++) {
    const struct scn_app *from = &p->s->apps[i];
    if (strcmp(from->name, a->ns.from) == 0 && from->start_ns > a->start_ns)
      return scn__fail(p, col,
                       "app '%s' starts before '%s', whose namespace it "
                       "takes (--start)",
                       a->name, from->name);
  }
  return 0;
}

/* --protect: the app is one of the processes chosen in advance (Orthros
 * §2.6) that move to the backup OS; only on a machine with a backup. */
static int a_protect(struct scn__parser *p, const struct scn__tok *t,
                     void *obj) {
  if (scn__need_backup(p, t->col, "--protect") < 0)
    return -1;
  ((struct scn_app *)obj)->protect = true;
  return 0;
}

static const struct scn__opt app_opts[] = {
    {"--protect", a_protect, SCN__FLAG},
    {"--binary", a_binary, false},
    {"--service", a_service, false},
    {"--count", a_count, false},
    {"--keys", a_keys, false},
    {"--value-size", a_value_size, false},
    {"--seed", a_seed, false},
    {"--mix", a_mix, false},
    {"--rate", a_rate, false},
    {"--start", a_start, false},
    {"--args", a_args, false},
    {"--ns", a_ns, false},
    {NULL, NULL, false}};

static int st_app(struct scn__parser *p) {
  struct scn_app a = {.binary = "kvsload",
                      .count = 1000,
                      .keys = 100,
                      .value_min = 64,
                      .value_max = 64,
                      .mix = {50, 45, 5}};
  const struct scn__tok *t = scn__word(p, "an app name");
  if (t == NULL || scn__new_name(p, t, a.name) < 0)
    return -1;
  a.pos = here(p);
  if (scn__read_opts(p, "app", app_opts, &a) < 0 || ns_order(p, &a, t->col) < 0)
    return -1;
  /* Only kvsload sends to a service (any other program gets its --args). */
  if (a.service[0] == '\0' && strcmp(a.binary, "kvsload") == 0) {
    if (p->s->nservers == 0)
      return scn__fail(p, t->col,
                       "app '%s' needs a server: declare one "
                       "before it, or give --service",
                       a.name);
    memcpy(a.service, p->s->servers[0].name, sizeof a.service);
  }
  p->s->apps = scn__append(p->s->apps, &p->s->napps, sizeof a, &a);
  return scn__count_app(p, a.pos.col);
}

/* tcp-client NAME PORT --every TIME --lines N --until TIME */

int scn__tcp_line(const struct scn *s, const char *name) {
  for (size_t i = 0; i < s->ntcps; i++)
    if (strcmp(s->tcps[i].name, name) == 0)
      return s->tcps[i].pos.line;
  return 0;
}

static int t_every(struct scn__parser *p, const struct scn__tok *v, void *obj) {
  struct scn_tcp_client *c = obj;
  if (scn__read_period(p, v, "--every", &c->every_ns) < 0)
    return -1;
  if (c->every_ns < SCN_TCP_EVERY_MIN_NS || c->every_ns > SCN_TCP_EVERY_MAX_NS)
    return scn__fail(p, v->col, "--every is 1ms to 60s");
  return 0;
}

static int t_lines(struct scn__parser *p, const struct scn__tok *v, void *obj) {
  return scn__read_u64(p, v, 1, SCN_TCP_LINES_MAX,
                       &((struct scn_tcp_client *)obj)->lines);
}

static int t_until(struct scn__parser *p, const struct scn__tok *v, void *obj) {
  return scn__read_period(p, v, "--until",
                          &((struct scn_tcp_client *)obj)->until_ns);
}

static int t_server(struct scn__parser *p, const struct scn__tok *v,
                    void *obj) {
  struct scn_tcp_client *c = obj;
  if (scn__read_name(p, v, c->server) < 0)
    return -1;
  return scn__need_app(p, v->col, c->server);
}

static const struct scn__opt tcp_opts[] = {{"--every", t_every, false},
                                           {"--lines", t_lines, false},
                                           {"--until", t_until, false},
                                           {"--server", t_server, false},
                                           {NULL, NULL, false}};

/* The client reaches a port of nic0, which only a machine statement with
 * --nic-port places; its lines come in real time, so the machine runs
 * free (lock-step would wait for them in no order a seed fixes). */
static int tcp_port(struct scn__parser *p, const struct scn__tok *t,
                    uint32_t *port) {
  const struct scn_machine *m = &p->s->machine;
  uint64_t n;
  if (m->nic_port == 0)
    return scn__fail(p, t->col,
                     "a tcp-client needs machine --nic-port on an earlier "
                     "line (where nic0's ports are)");
  if (m->mode != SCN_MODE_FREE)
    return scn__fail(p, t->col,
                     "a tcp-client needs a free-running machine (--mode "
                     "free or --backup 1): its lines come in real time");
  if (scn__read_u64(p, t, 1, 65535, &n) < 0)
    return -1;
  if (n < m->nic_port || n >= m->nic_port + SCN_NIC_PORTS)
    return scn__fail(p, t->col, "port %u is not nic0's (%u to %u)", (unsigned)n,
                     m->nic_port, m->nic_port + SCN_NIC_PORTS - 1);
  *port = (uint32_t)n;
  return 0;
}

static int st_tcp_client(struct scn__parser *p) {
  struct scn_tcp_client c = {.every_ns = SCN_TCP_EVERY_DEFAULT_NS};
  const struct scn__tok *t = scn__word(p, "a tcp-client name");
  if (t == NULL || scn__new_name(p, t, c.name) < 0)
    return -1;
  if (p->s->ntcps == SCN_TCP_CLIENTS_MAX)
    return scn__fail(p, t->col, "more than %d tcp-clients",
                     SCN_TCP_CLIENTS_MAX);
  c.pos = here(p);
  if ((t = scn__word(p, "a port of nic0")) == NULL ||
      tcp_port(p, t, &c.port) < 0 ||
      scn__read_opts(p, "tcp-client", tcp_opts, &c) < 0)
    return -1;
  p->s->tcps = scn__append(p->s->tcps, &p->s->ntcps, sizeof c, &c);
  return 0;
}

/* node NAME --port N */

static int n_port(struct scn__parser *p, const struct scn__tok *v, void *obj) {
  uint64_t n;
  if (scn__read_u64(p, v, SCN_NIC_PORT_MIN, 65534, &n) < 0)
    return -1;
  ((struct scn_node *)obj)->port = (uint32_t)n;
  return 0;
}

static int n_crash_at(struct scn__parser *p, const struct scn__tok *v,
                      void *obj) {
  return scn__read_step(p, v, ((struct scn_node *)obj)->crash_at);
}

static const struct scn__opt node_opts[] = {{"--port", n_port, false},
                                            {"--crash-at", n_crash_at, false},
                                            {NULL, NULL, false}};

/* Without --port, a node for migration only (scn.h). */
static int st_node(struct scn__parser *p) {
  struct scn_node n = {.port = 0};
  const struct scn__tok *t = scn__word(p, "a node name");
  if (t == NULL || scn__new_name(p, t, n.name) < 0)
    return -1;
  if (strcmp(n.name, SCN_LOCAL_NODE) == 0)
    return scn__fail(p, t->col, "'%s' names the machine's own node",
                     SCN_LOCAL_NODE);
  if (p->s->nnodes == SCN_NODES_MAX)
    return scn__fail(p, t->col, "more than %d nodes", SCN_NODES_MAX);
  n.pos = here(p);
  if (scn__read_opts(p, "node", node_opts, &n) < 0)
    return -1;
  p->s->nodes = scn__append(p->s->nodes, &p->s->nnodes, sizeof n, &n);
  return 0;
}

/* Files and lines */

static const struct {
  const char *word;
  int (*parse)(struct scn__parser *p);
} statements[] = {{"scenario", st_scenario},  {"machine", st_machine},
                  {"server", st_server},      {"app", st_app},
                  {"at", scn__st_at},         {"on", scn__st_on},
                  {"expect", scn__st_expect}, {"tcp-client", st_tcp_client},
                  {"node", st_node},          {"task", scn__st_task}};

static int statement(struct scn__parser *p) {
  const struct scn__tok *t = &p->tok[p->ti++];
  if (++p->nstmt > SCN_STMT_MAX)
    return scn__fail(p, t->col, "more than %d statements", SCN_STMT_MAX);
  for (int i = 0; t->kind == SCN__WORD && i < COUNT(statements); i++)
    if (strcmp(t->text, statements[i].word) == 0)
      return statements[i].parse(p);
  if (t->kind != SCN__WORD)
    return scn__fail(p, t->col,
                     "expected a statement (scenario, machine, "
                     "server, app, tcp-client, at, on or expect)");
  return scn__fail(p, t->col,
                   "unknown statement '%.40s' (scenario, machine, "
                   "server, app, tcp-client, at, on or expect)",
                   t->text);
}

/* Reads every line of buf; 0, or -1 at the first error. */
static int parse_lines(struct scn__parser *p, const char *buf, size_t len) {
  size_t at = 0;
  for (p->line = 1; at < len; p->line++) {
    const char *nl = memchr(buf + at, '\n', len - at);
    size_t n = nl ? (size_t)(nl - (buf + at)) : len - at;
    size_t next = at + n + 1;
    if (n > 0 && buf[at + n - 1] == '\r')
      n--; /* a file written on Windows reads the same */
    if (n > SCN_LINE_MAX)
      return scn__fail(p, SCN_LINE_MAX + 1, "line longer than %d bytes",
                       SCN_LINE_MAX);
    if (scn__lex(p, buf + at, n) < 0)
      return -1;
    if (p->ntok > 0 && statement(p) < 0)
      return -1;
    at = next;
  }
  return 0;
}

struct scn *scn_parse(const char *file, const char *buf, size_t len,
                      struct scn_err *err) {
  struct scn__parser *p = xcalloc(1, sizeof *p);
  struct scn *s = xcalloc(1, sizeof *s);
  int r;
  snprintf(s->file, sizeof s->file, "%s", file);
  *p = (struct scn__parser){.file = file, .err = err, .s = s, .line = 1};
  if (len > SCN_FILE_MAX)
    r = scn__fail(p, 1, "file larger than %u bytes", SCN_FILE_MAX);
  else
    r = parse_lines(p, buf, len);
  free(p);
  if (r < 0) {
    scn_free(s);
    return NULL;
  }
  return s;
}

struct scn *scn_load(const char *path, struct scn_err *err) {
  FILE *f = fopen(path, "rb");
  char *buf;
  size_t n;
  if (f == NULL) {
    scn_err_set(err, path, 0, 0, "cannot open: %s", strerror(errno));
    return NULL;
  }
  /* One byte more than the limit, so a larger file is seen to be larger. */
  buf = xcalloc(SCN_FILE_MAX + 1, 1);
  n = fread(buf, 1, SCN_FILE_MAX + 1, f);
  if (ferror(f)) {
    scn_err_set(err, path, 0, 0, "cannot read: %s", strerror(errno));
    fclose(f);
    free(buf);
    return NULL;
  }
  fclose(f);
  struct scn *s = scn_parse(path, buf, n, err);
  free(buf);
  return s;
}

void scn_free(struct scn *s) {
  if (s == NULL)
    return;
  free(s->servers);
  free(s->apps);
  free(s->actions);
  free(s->expects);
  free(s->tcps);
  free(s->nodes);
  free(s->tasks);
  free(s);
}
