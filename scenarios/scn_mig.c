/* The statements of process migration (issue 16, seed 004 §2.3):
 *
 *   task NAME --node NODE --binary ctask|mtask|ktask [--args "..."]
 *   at TIME migrate TASK --to NODE --method eager|precopy|demand
 *   on TRIGGER: migrate TASK --to NODE --method ...
 *   at TIME input TASK "TEXT"      (or on TRIGGER:)
 *   expect task NAME on NODE
 *   expect task NAME moves CMP K
 *   expect task NAME output contains "TEXT"
 *   expect task NAME lost
 *
 * NODE is a node declared on an earlier line or SCN_LOCAL_NODE, the
 * machine under test's own node; TASK a task declared on an earlier line.
 * What they mean when they run is cli/scn_exec_mig.c's header.
 */
#include <stdio.h>
#include <string.h>

#include "scn_impl.h"

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const char *const binary_names[] = {"ctask", "mtask", "ktask"};
static const char *const method_names[] = {"eager", "precopy", "demand"};
static const char *const check_names[] = {"on", "moves", "output", "lost"};
/* uksim-migd's --die-at steps (sim-kernel/migd.c step()). */
static const char *const step_names[] = {"connect", "create",  "pages",
                                         "threads", "confirm", "end",
                                         "resume",  "serve",   "fetch"};

/* The enums' 0 is "not given": names[i] is value i + 1. */
const char *scn_method_name(enum scn_method m) {
  return m >= 1 && m <= COUNT(method_names) ? method_names[m - 1] : "?";
}

const char *scn_task_binary_name(enum scn_task_binary b) {
  return b >= 1 && b <= COUNT(binary_names) ? binary_names[b - 1] : "?";
}

int scn__task_line(const struct scn *s, const char *name) {
  for (size_t i = 0; i < s->ntasks; i++)
    if (strcmp(s->tasks[i].name, name) == 0)
      return s->tasks[i].pos.line;
  return 0;
}

/* A node NAME declared before this line, or the machine's own. */
static int need_node(struct scn__parser *p, const struct scn__tok *t,
                     char out[SCN_NAME_MAX + 1]) {
  if (scn__read_name(p, t, out) < 0)
    return -1;
  if (strcmp(out, SCN_LOCAL_NODE) == 0)
    return 0;
  for (size_t i = 0; i < p->s->nnodes; i++)
    if (strcmp(p->s->nodes[i].name, out) == 0)
      return 0;
  return scn__fail(p, t->col,
                   "no node '%s' declared before this line (nor '%s', the "
                   "machine's own)",
                   out, SCN_LOCAL_NODE);
}

static int need_task(struct scn__parser *p, const struct scn__tok *t,
                     char out[SCN_NAME_MAX + 1]) {
  if (scn__read_name(p, t, out) < 0)
    return -1;
  if (scn__task_line(p->s, out) == 0)
    return scn__fail(p, t->col, "no task '%s' declared before this line", out);
  return 0;
}

/* node ... --crash-at STEP */
int scn__read_step(struct scn__parser *p, const struct scn__tok *t,
                   char out[SCN_STEP_MAX + 1]) {
  int k;
  if (scn__read_enum(p, t, "migration step", step_names, COUNT(step_names),
                     &k) < 0)
    return -1;
  snprintf(out, SCN_STEP_MAX + 1, "%s", step_names[k]);
  return 0;
}

/* task NAME --node NODE --binary B [--args "..."] */

static int t_node(struct scn__parser *p, const struct scn__tok *v, void *obj) {
  return need_node(p, v, ((struct scn_task *)obj)->node);
}

static int t_binary(struct scn__parser *p, const struct scn__tok *v,
                    void *obj) {
  int k;
  if (scn__read_enum(p, v, "task binary", binary_names, COUNT(binary_names),
                     &k) < 0)
    return -1;
  ((struct scn_task *)obj)->binary = (enum scn_task_binary)(k + 1);
  return 0;
}

static int t_args(struct scn__parser *p, const struct scn__tok *v, void *obj) {
  return scn__read_args(p, v, ((struct scn_task *)obj)->args);
}

static const struct scn__opt task_opts[] = {{"--node", t_node, false},
                                            {"--binary", t_binary, false},
                                            {"--args", t_args, false},
                                            {NULL, NULL, false}};

int scn__st_task(struct scn__parser *p) {
  struct scn_task k = {.binary = SCN_TASK_UNSET};
  const struct scn__tok *t = scn__word(p, "a task name");
  if (t == NULL || scn__new_name(p, t, k.name) < 0)
    return -1;
  if (p->s->ntasks == SCN_TASKS_MAX)
    return scn__fail(p, t->col, "more than %d tasks", SCN_TASKS_MAX);
  k.pos = (struct scn_pos){p->line, p->tok[0].col};
  if (scn__read_opts(p, "task", task_opts, &k) < 0)
    return -1;
  if (k.node[0] == '\0')
    return scn__fail(p, t->col, "a task needs --node NODE (where it starts)");
  if (k.binary == SCN_TASK_UNSET)
    return scn__fail(p, t->col, "a task needs --binary ctask, mtask or ktask");
  p->s->tasks = scn__append(p->s->tasks, &p->s->ntasks, sizeof k, &k);
  return 0;
}

/* migrate TASK --to NODE --method M: both options needed. */

static int m_to(struct scn__parser *p, const struct scn__tok *v, void *obj) {
  return need_node(p, v, ((struct scn_action *)obj)->node);
}

static int m_method(struct scn__parser *p, const struct scn__tok *v,
                    void *obj) {
  int k;
  if (scn__read_enum(p, v, "method", method_names, COUNT(method_names), &k) < 0)
    return -1;
  ((struct scn_action *)obj)->method = (enum scn_method)(k + 1);
  return 0;
}

static const struct scn__opt migrate_opts[] = {
    {"--to", m_to, false}, {"--method", m_method, false}, {NULL, NULL, false}};

int scn__migrate_args(struct scn__parser *p, struct scn_action *a) {
  const struct scn__tok *t = scn__word(p, "the task to migrate");
  if (t == NULL || need_task(p, t, a->target) < 0 ||
      scn__read_opts(p, "migrate", migrate_opts, a) < 0)
    return -1;
  if (a->node[0] == '\0')
    return scn__fail(p, t->col, "migrate needs --to NODE");
  if (a->method == SCN_METHOD_UNSET)
    return scn__fail(p, t->col,
                     "migrate needs --method eager, precopy or demand");
  return 0;
}

/* input TASK "TEXT": one line, so no newline in it (the executor ends
 * it with one), and not empty. */
int scn__input_args(struct scn__parser *p, struct scn_action *a) {
  const struct scn__tok *t = scn__word(p, "the task to type to");
  if (t == NULL || need_task(p, t, a->target) < 0 ||
      (t = scn__next(p, "a quoted line")) == NULL)
    return -1;
  if (t->kind != SCN__STRING)
    return scn__fail(p, t->col, "expected a quoted line");
  if (t->text[0] == '\0' || strchr(t->text, '\n') != NULL)
    return scn__fail(p, t->col, "a line of input is one line, not empty");
  if (strlen(t->text) > SCN_INPUT_MAX)
    return scn__fail(p, t->col, "a line of input is at most %d bytes",
                     SCN_INPUT_MAX);
  snprintf(a->args, sizeof a->args, "%s", t->text);
  return scn__end(p);
}

/* expect task NAME on NODE | moves CMP K | output contains "T" | lost */
int scn__exp_task(struct scn__parser *p, struct scn_expect *e) {
  const struct scn__tok *t = scn__word(p, "a task");
  int k;
  if (t == NULL || need_task(p, t, e->app) < 0 ||
      (t = scn__word(p, "on, moves, output or lost")) == NULL ||
      scn__read_enum(p, t, "task check", check_names, COUNT(check_names), &k) <
          0)
    return -1;
  e->tcheck = (enum scn_task_check)k;
  switch (e->tcheck) {
  case SCN_TASK_ON:
    if ((t = scn__word(p, "a node")) == NULL || need_node(p, t, e->proc) < 0)
      return -1;
    break;
  case SCN_TASK_MOVES:
    if (scn__read_cmp(p, e) < 0 || (t = scn__word(p, "a count")) == NULL ||
        scn__read_u64(p, t, 0, UINT32_MAX, &e->value) < 0)
      return -1;
    break;
  case SCN_TASK_OUTPUT:
    if (scn__expect_word(p, "contains") < 0 ||
        (t = scn__next(p, "a quoted text")) == NULL)
      return -1;
    if (t->kind != SCN__STRING)
      return scn__fail(p, t->col, "expected a quoted text");
    if (t->text[0] == '\0')
      return scn__fail(p, t->col, "an empty text is in every output");
    snprintf(e->text, sizeof e->text, "%s", t->text);
    break;
  case SCN_TASK_LOST:
    break;
  }
  return scn__end(p);
}
