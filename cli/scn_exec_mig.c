/* Process migration in a scenario, the executor's side (scn_exec_mig.h):
 * it starts the tasks, runs the migrate actions and takes the census, each
 * through `uksim-migd --ctl`, the migration servers' own control client,
 * run as a child of the kernel's loop (uv_spawn), one at a time.
 *
 * One control command at a time, in the order the scenario asked:
 *
 *   IDLE --a command queued--> RUNNING (under lock-step: k->frozen, the
 *        scheduler takes no step) --its child exits--> its outcome handled
 *        (a trace event, perhaps a command put first in the queue)
 *        --queue empty--> IDLE (unfrozen; m->resume lets the run go on)
 *                    \--> RUNNING the next one
 *
 * The commands and what each traces (the words are scn_eval.h's):
 *   START task          on failure "task NAME: cannot start on NODE";
 *                       else puts READY first in the queue
 *   READY task          no command: waits until the task has printed its
 *                       first line at its origin: "task NAME: started on
 *                       NODE" (or "cannot start": it printed nothing)
 *   MOVE task action    "migrate NAME --to NODE --method M: done" or
 *                       ": failed: WHY" (the origin's word, or that its
 *                       migration server did not answer); a move that
 *                       was done puts FIND first in the queue
 *   FIND task node      nothing: the task's number at its new node, the
 *                       newest one running there (moves are one at a time),
 *                       or at its origin its first number (a task that
 *                       comes back takes it, migcons.h HOME)
 *   INPUT task action   "input NAME \"TEXT\": done" or ": failed: WHY": the
 *                       line, sent to the task's origin, which hosts its
 *                       console and passes it on to wherever it runs
 *   PS node             the census: after every node's, one "task NAME:
 *                       runs on ..." per task, in file order
 * A task's place is where the executor last saw it: its node and its
 * number there.  In the census it runs on that node if its entry there is
 * running or ran to its end (exited), and on any node that runs a copy no
 * task accounts for (a duplicate left behind would make two).  A node
 * whose migration server does not answer runs nothing.
 */
#include "scn_exec_mig.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migd.h"
#include "scn_eval.h"
#include "uksim/uv_check.h"
#include "uksim/xalloc.h"

/* Commands queued at once: a start per task, a move and a find per
 * migrate action, a ps per node. */
#define MIG_OPS_MAX (SCN_TASKS_MAX + 2 * SCN_STMT_MAX + MIG_NODES_MAX)
/* Bytes of a control command's output read back (a ps of a full table). */
#define MIG_CTL_OUT_MAX (MIGD_TASKS_MAX * 160 + 1024)
#define MIG_PATH_MAX 4096
/* After a migration that failed, the nodes settle what became of the task
 * (a destination that lost its origin ends its copy, an origin restarts
 * its duplicate) on their own, in real time: the next command waits this
 * long, so that what it sees does not depend on how fast they were. */
#define MIG_SETTLE_MS 1000
/* A task started is ready to move once it has printed its first line
 * (it has made its region and runs); the executor looks every
 * MIG_READY_POLL_MS, for MIG_READY_MS at most. */
#define MIG_READY_MS 10000
#define MIG_READY_POLL_MS 20
#define MIG_ADDR_MAX 64

enum op_kind { OP_START, OP_READY, OP_MOVE, OP_FIND, OP_INPUT, OP_PS };

struct op {
  enum op_kind kind;
  size_t task;                  /* START, MOVE, FIND */
  size_t node;                  /* FIND, PS */
  const struct scn_action *act; /* MOVE, INPUT */
};

/* An entry of a node's `ps`: a task there and its state. */
struct entry {
  uint64_t id;
  char state[16];
};

struct mig_node {
  char name[SCN_NAME_MAX + 1];
  char addr[MIG_ADDR_MAX];
  struct entry e[MIGD_TASKS_MAX];
  size_t ne;
};

struct mig_task {
  const struct scn_task *t;
  size_t origin, node;    /* node indexes */
  uint64_t origin_id, id; /* 0: not started, or not found */
};

struct scn_mig {
  struct kern *k;
  const struct scn *s;
  void (*resume)(struct kern *k);
  char dir[MIG_PATH_MAX];
  char exe[MIG_PATH_MAX], key[MIG_PATH_MAX];
  char prog[3][MIG_PATH_MAX]; /* ctask, mtask, ktask (scn_task_binary - 1) */
  struct mig_node node[MIG_NODES_MAX];
  size_t nnodes;
  struct mig_task task[SCN_TASKS_MAX];
  struct op q[MIG_OPS_MAX];
  size_t head, n;
  bool running; /* a control command's child runs */
  struct op cur;
  bool froze;       /* this froze the scheduler */
  bool settle;      /* the next command waits MIG_SETTLE_MS */
  uv_timer_t timer; /* for it; initialized with the first */
  bool timer_init;
  uint64_t ready_polls; /* READY: looks so far */
  bool census;          /* started */
  size_t census_left;   /* PS commands still to come back */
};

/* Configuration -------------------------------------------------------- */

static int node_index(const struct scn_mig *m, const char *name) {
  for (size_t i = 0; i < m->nnodes; i++)
    if (strcmp(m->node[i].name, name) == 0)
      return (int)i;
  return -1;
}

static void conf_line(struct scn_mig *m, char *line) {
  char *word = strtok(line, " \n"), *a = strtok(NULL, " \n");
  char *b = strtok(NULL, " \n");
  if (word == NULL || a == NULL)
    return;
  if (strcmp(word, "exe") == 0)
    snprintf(m->exe, sizeof m->exe, "%s", a);
  else if (strcmp(word, "key") == 0)
    snprintf(m->key, sizeof m->key, "%s", a);
  else if (strcmp(word, "ctask") == 0)
    snprintf(m->prog[0], sizeof m->prog[0], "%s", a);
  else if (strcmp(word, "mtask") == 0)
    snprintf(m->prog[1], sizeof m->prog[1], "%s", a);
  else if (strcmp(word, "ktask") == 0)
    snprintf(m->prog[2], sizeof m->prog[2], "%s", a);
  else if (strcmp(word, "node") == 0 && b && m->nnodes < MIG_NODES_MAX) {
    struct mig_node *n = &m->node[m->nnodes++];
    snprintf(n->name, sizeof n->name, "%s", a);
    snprintf(n->addr, sizeof n->addr, "%s", b);
  }
}

/* Reads DIR/MIG_CONF; 0, or -1 with why. */
static int read_conf(struct scn_mig *m, char *why, size_t len) {
  char path[MIG_PATH_MAX + 32], line[MIG_PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/%s", m->dir, MIG_CONF);
  FILE *f = m->dir[0] ? fopen(path, "r") : NULL;
  if (f == NULL) {
    snprintf(why, len,
             "the scenario has tasks and no migration server runs for it "
             "(only `uksim run` starts them)");
    return -1;
  }
  while (fgets(line, sizeof line, f))
    conf_line(m, line);
  fclose(f);
  for (size_t i = 0; i < m->s->ntasks; i++)
    if (node_index(m, m->s->tasks[i].node) < 0) {
      snprintf(why, len, "no migration server for node %s",
               m->s->tasks[i].node);
      return -1;
    }
  if (!m->exe[0] || !m->key[0]) {
    snprintf(why, len, "the runner's %s is incomplete", MIG_CONF);
    return -1;
  }
  return 0;
}

struct scn_mig *scn_mig_new(struct kern *k, const struct scn *s,
                            const char *dir, void (*resume)(struct kern *k),
                            char *why, size_t len) {
  struct scn_mig *m = xcalloc(1, sizeof *m);
  m->k = k;
  m->s = s;
  m->resume = resume;
  snprintf(m->dir, sizeof m->dir, "%s", dir ? dir : "");
  if (read_conf(m, why, len) < 0) {
    free(m);
    return NULL;
  }
  for (size_t i = 0; i < s->ntasks; i++)
    m->task[i].t = &s->tasks[i];
  return m;
}

/* Events ---------------------------------------------------------------- */

static void task_event(struct scn_mig *m, size_t t, int status, const char *fmt,
                       ...) __attribute__((format(printf, 4, 5)));

static void task_event(struct scn_mig *m, size_t t, int status, const char *fmt,
                       ...) {
  char text[SCN_TEXT_MAX + 1];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  kern__event(m->k, &(struct kern_ev){.ev = "action",
                                      .peer = m->task[t].t->name,
                                      .text = text,
                                      .status = status});
}

/* The action as the trace says it. */
static void act_text(const struct scn_action *a, char *buf, size_t len) {
  if (a->kind == SCN_ACT_INPUT)
    snprintf(buf, len, "input %s \"%.*s\"", a->target, SCN_INPUT_MAX, a->args);
  else
    snprintf(buf, len, "migrate %s --to %s --method %s", a->target, a->node,
             scn_method_name(a->method));
}

/* The queue -------------------------------------------------------------- */

static void run_next(struct scn_mig *m);
static void on_ready_poll(uv_timer_t *t);

static void push(struct scn_mig *m, struct op op, bool first) {
  if (m->n == MIG_OPS_MAX) /* the parser's limits keep it from filling */
    abort();
  if (first)
    m->head = (m->head + MIG_OPS_MAX - 1) % MIG_OPS_MAX;
  m->q[first ? m->head : (m->head + m->n) % MIG_OPS_MAX] = op;
  m->n++;
  if (m->k->lockstep && !m->k->frozen) {
    m->k->frozen = true;
    m->froze = true;
  }
  run_next(m);
}

bool scn_mig_busy(const struct scn_mig *m) {
  return m != NULL && (m->running || m->n > 0);
}

/* Reading what a command printed ----------------------------------------- */

static size_t read_out(const struct scn_mig *m, char *buf, size_t len) {
  char path[MIG_PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/%s", m->dir, MIG_CTL_OUT);
  FILE *f = fopen(path, "r");
  size_t n = f ? fread(buf, 1, len - 1, f) : 0;
  if (f)
    fclose(f);
  buf[n] = '\0';
  return n;
}

/* "ok task=N (...)": N, or 0. */
static uint64_t task_number(const char *out) {
  const char *p = strstr(out, "task=");
  return p ? strtoull(p + 5, NULL, 10) : 0;
}

/* The server's word in "error task=N ... (WHY)", into why: what follows
 * the first " (" to the last ")".  False when the output is no result. */
static bool result_why(const char *out, char *why, size_t len) {
  const char *open = strstr(out, " (");
  const char *close = strrchr(out, ')');
  if (strstr(out, "task=") == NULL || open == NULL || close == NULL ||
      close < open)
    return false;
  snprintf(why, len, "%.*s", (int)(close - open - 2), open + 2);
  return true;
}

/* A ps's lines into node n's entries. */
static void parse_ps(struct mig_node *n, const char *out) {
  n->ne = 0;
  for (const char *p = out; p && *p && n->ne < MIGD_TASKS_MAX;) {
    struct entry *e = &n->e[n->ne];
    unsigned long long id;
    if (sscanf(p, "task%llu %15s", &id, e->state) == 2) {
      e->id = id;
      n->ne++;
    }
    p = strchr(p, '\n');
    p = p ? p + 1 : NULL;
  }
}

static bool live_state(const char *s) {
  return strcmp(s, "running") == 0 || strcmp(s, "parked") == 0 ||
         strcmp(s, "starting") == 0;
}

/* Outcomes ---------------------------------------------------------------- */

static void start_done(struct scn_mig *m, int rc, const char *out) {
  struct mig_task *t = &m->task[m->cur.task];
  uint64_t id = rc == 0 ? task_number(out) : 0;
  char why[128];
  if (id == 0) {
    task_event(m, m->cur.task, 1, "task %s: cannot start on %s: %s", t->t->name,
               t->t->node,
               result_why(out, why, sizeof why) ? why : "no answer");
    return;
  }
  t->origin_id = t->id = id;
  push(m, (struct op){.kind = OP_READY, .task = m->cur.task}, true);
}

/* Whether task t's origin console (DIR/migd-NODE.out) has a line of it. */
static bool printed(const struct scn_mig *m, const struct mig_task *t) {
  char name[SCN_NAME_MAX + 16], path[MIG_PATH_MAX + 64], line[512];
  char prefix[32];
  bool found = false;
  snprintf(name, sizeof name, MIG_OUT_FMT, m->node[t->origin].name);
  snprintf(path, sizeof path, "%s/%s", m->dir, name);
  snprintf(prefix, sizeof prefix, "task%" PRIu64 " ", t->origin_id);
  FILE *f = fopen(path, "r");
  while (f && !found && fgets(line, sizeof line, f))
    found = strncmp(line, prefix, strlen(prefix)) == 0;
  if (f)
    fclose(f);
  return found;
}

static void ready_done(struct scn_mig *m, bool ready) {
  struct mig_task *t = &m->task[m->cur.task];
  if (ready) {
    task_event(m, m->cur.task, 0, "task %s: started on %s", t->t->name,
               t->t->node);
    return;
  }
  t->id = 0; /* never moved: it is not known to run */
  task_event(m, m->cur.task, 1,
             "task %s: cannot start on %s: it printed nothing in %d ms",
             t->t->name, t->t->node, MIG_READY_MS);
}

static void move_done(struct scn_mig *m, int rc, const char *out) {
  const struct scn_action *a = m->cur.act;
  struct mig_task *t = &m->task[m->cur.task];
  char text[SCN_TEXT_MAX + 1], why[128];
  act_text(a, text, sizeof text);
  if (rc == 0 && strstr(out, "(moved)") != NULL) {
    size_t ti = m->cur.task, dest = (size_t)node_index(m, a->node);
    t->node = dest;
    t->id = 0; /* until FIND */
    task_event(m, ti, 0, "%s%s", text, SCN_TASK_DONE);
    push(m, (struct op){.kind = OP_FIND, .task = ti, .node = dest}, true);
    return;
  }
  if (!result_why(out, why, sizeof why))
    snprintf(why, sizeof why, "%s's migration server did not answer",
             m->node[t->node].name);
  task_event(m, m->cur.task, 1, "%s: failed: %s", text, why);
  m->settle = true;
}

static void input_done(struct scn_mig *m, int rc, const char *out) {
  char text[SCN_TEXT_MAX + 1], why[128];
  act_text(m->cur.act, text, sizeof text);
  if (rc == 0) {
    task_event(m, m->cur.task, 0, "%s%s", text, SCN_TASK_DONE);
    return;
  }
  if (!result_why(out, why, sizeof why))
    snprintf(why, sizeof why, "%s's migration server did not answer",
             m->node[m->task[m->cur.task].origin].name);
  task_event(m, m->cur.task, 1, "%s: failed: %s", text, why);
}

/* The task's entry at the node it just moved to: back at its origin, its
 * first id again (migd.h, Console); elsewhere the newest live entry. */
static void find_done(struct scn_mig *m, int rc, const char *out) {
  struct mig_node *n = &m->node[m->cur.node];
  struct mig_task *t = &m->task[m->cur.task];
  if (rc != 0)
    return;
  parse_ps(n, out);
  if (m->cur.node == t->origin) {
    t->id = t->origin_id;
    return;
  }
  for (size_t i = 0; i < n->ne; i++)
    if (live_state(n->e[i].state) && n->e[i].id > t->id)
      t->id = n->e[i].id;
}

/* Whether some task's place is entry e of node n. */
static bool tracked(const struct scn_mig *m, size_t n, const struct entry *e) {
  for (size_t i = 0; i < m->s->ntasks; i++)
    if (m->task[i].id != 0 && m->task[i].node == n && m->task[i].id == e->id)
      return true;
  return false;
}

/* Whether task t runs on node n (the header's rule). */
static bool runs_on(const struct scn_mig *m, size_t t, size_t n) {
  const struct mig_node *nd = &m->node[n];
  for (size_t i = 0; i < nd->ne; i++) {
    const struct entry *e = &nd->e[i];
    bool mine =
        m->task[t].id != 0 && m->task[t].node == n && m->task[t].id == e->id;
    if (mine && (live_state(e->state) || strcmp(e->state, "exited") == 0))
      return true;
    if (!mine && live_state(e->state) && !tracked(m, n, e))
      return true;
  }
  return false;
}

static void write_tasks(const struct scn_mig *m) {
  char path[MIG_PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/%s", m->dir, MIG_TASKS);
  FILE *f = fopen(path, "w");
  if (f == NULL)
    return; /* the runner then keeps no output: the verdict says so */
  for (size_t i = 0; i < m->s->ntasks; i++) {
    const struct mig_task *t = &m->task[i];
    fprintf(f, "%s %s %" PRIu64 " %s %" PRIu64 "\n", t->t->name,
            m->node[t->origin].name, t->origin_id, m->node[t->node].name,
            t->id);
  }
  fclose(f);
}

static void census_done(struct scn_mig *m) {
  for (size_t t = 0; t < m->s->ntasks; t++) {
    char where[SCN_TEXT_MAX + 1] = "";
    size_t len = 0;
    for (size_t n = 0; n < m->nnodes; n++)
      if (runs_on(m, t, n))
        len += (size_t)snprintf(where + len, sizeof where - len, "%s%s",
                                len ? " and " : "", m->node[n].name);
    task_event(m, t, len ? 0 : 1, "task %s: %s%s", m->task[t].t->name,
               SCN_TASK_RUNS, len ? where : SCN_TASK_NOWHERE);
  }
  write_tasks(m);
}

static void op_done(struct scn_mig *m, int rc) {
  static char out[MIG_CTL_OUT_MAX];
  read_out(m, out, sizeof out);
  switch (m->cur.kind) {
  case OP_START:
    start_done(m, rc, out);
    break;
  case OP_READY:
    ready_done(m, rc == 0);
    break;
  case OP_MOVE:
    move_done(m, rc, out);
    break;
  case OP_FIND:
    find_done(m, rc, out);
    break;
  case OP_INPUT:
    input_done(m, rc, out);
    break;
  case OP_PS:
    if (rc == 0)
      parse_ps(&m->node[m->cur.node], out);
    else
      m->node[m->cur.node].ne = 0; /* gone: it runs nothing */
    if (--m->census_left == 0)
      census_done(m);
    break;
  default:
    abort();
  }
}

/* Running a command ------------------------------------------------------ */

static void on_closed(uv_handle_t *h) {
  free(h);
}

static void ctl_exited(uv_process_t *p, int64_t status, int sig) {
  struct scn_mig *m = p->data;
  uv_close((uv_handle_t *)p, on_closed);
  m->running = false;
  op_done(m, sig ? 128 + sig : (int)status);
  run_next(m);
}

/* The control command's words for op, after "--ctl ADDR", into w. */
static size_t op_words(struct scn_mig *m, const struct op *op, char **w,
                       size_t max, char *store, size_t len) {
  struct mig_task *t = &m->task[op->task];
  size_t n = 0;
  switch (op->kind) {
  case OP_START:
    w[n++] = "start";
    w[n++] = m->prog[t->t->binary - 1];
    snprintf(store, len, "%s", t->t->args);
    for (char *s = strtok(store, " "); s && n < max - 1; s = strtok(NULL, " "))
      w[n++] = s;
    break;
  case OP_MOVE:
    snprintf(store, len, "%" PRIu64, t->id);
    w[n++] = "move";
    w[n++] = store;
    w[n++] = m->node[node_index(m, op->act->node)].addr;
    w[n++] = (char *)scn_method_name(op->act->method);
    break;
  case OP_INPUT: /* the origin's number: it hosts the console */
    snprintf(store, len, "%" PRIu64, t->origin_id);
    w[n++] = "input";
    w[n++] = store;
    w[n++] = store + strlen(store) + 1;
    snprintf(w[n - 1], len - strlen(store) - 1, "%s\n", op->act->args);
    break;
  case OP_FIND:
  case OP_PS:
  case OP_READY: /* never spawned: run_next's */
    w[n++] = "ps";
    break;
  }
  return n;
}

/* The node op's command goes to. */
static const char *op_addr(const struct scn_mig *m, const struct op *op) {
  if (op->kind == OP_FIND || op->kind == OP_PS)
    return m->node[op->node].addr;
  if (op->kind == OP_START || op->kind == OP_INPUT)
    return m->node[m->task[op->task].origin].addr;
  return m->node[m->task[op->task].node].addr;
}

/* Spawns op's command with its output in DIR/MIG_CTL_OUT; -errno. */
static int spawn_op(struct scn_mig *m, const struct op *op) {
  char path[MIG_PATH_MAX + 32], store[SCN_TEXT_MAX + 32];
  char *argv[8 + SCN_ARGS_WORDS_MAX];
  size_t n = 0;
  argv[n++] = m->exe;
  argv[n++] = "--key";
  argv[n++] = m->key;
  argv[n++] = "--ctl";
  argv[n++] = (char *)op_addr(m, op);
  n += op_words(m, op, argv + n, sizeof argv / sizeof *argv - n - 1, store,
                sizeof store);
  argv[n] = NULL;
  snprintf(path, sizeof path, "%s/%s", m->dir, MIG_CTL_OUT);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return -errno;
  uv_process_t *p = xcalloc(1, sizeof *p);
  uv_stdio_container_t io[3] = {{.flags = UV_IGNORE},
                                {.flags = UV_INHERIT_FD, .data.fd = fd},
                                {.flags = UV_INHERIT_FD, .data.fd = fd}};
  uv_process_options_t o = {.exit_cb = ctl_exited,
                            .file = m->exe,
                            .args = argv,
                            .stdio = io,
                            .stdio_count = 3};
  p->data = m;
  int r = uv_spawn(m->k->loop, p, &o);
  close(fd);
  if (r < 0) {
    uv_close((uv_handle_t *)p, on_closed);
    return r;
  }
  return 0;
}

/* A move of (or input to) a task that is not running anywhere the
 * executor knows. */
static bool move_refused(struct scn_mig *m, const struct op *op) {
  char text[SCN_TEXT_MAX + 1];
  if ((op->kind != OP_MOVE && op->kind != OP_INPUT) ||
      m->task[op->task].id != 0)
    return false;
  act_text(op->act, text, sizeof text);
  task_event(m, op->task, 1, "%s: failed: the task is not running", text);
  return true;
}

static void on_settled(uv_timer_t *t) {
  struct scn_mig *m = t->data;
  m->running = false;
  run_next(m);
}

static void arm_timer(struct scn_mig *m, uv_timer_cb cb, uint64_t ms) {
  if (!m->timer_init) {
    UV_CHECK(uv_timer_init(m->k->loop, &m->timer));
    m->timer.data = m;
    m->timer_init = true;
  }
  UV_CHECK(uv_timer_start(&m->timer, cb, ms, 0));
  m->running = true;
}

/* READY: the task has printed, or the wait is over; else another look
 * later. */
static void look_ready(struct scn_mig *m) {
  bool ready = printed(m, &m->task[m->cur.task]);
  if (ready || ++m->ready_polls * MIG_READY_POLL_MS >= MIG_READY_MS) {
    m->running = false;
    op_done(m, ready ? 0 : 1);
    run_next(m);
    return;
  }
  arm_timer(m, on_ready_poll, MIG_READY_POLL_MS);
}

static void on_ready_poll(uv_timer_t *t) {
  look_ready(t->data);
}

/* Whether the next command must wait for the nodes to settle: then the
 * timer runs in its place. */
static bool settling(struct scn_mig *m) {
  if (!m->settle)
    return false;
  m->settle = false;
  arm_timer(m, on_settled, MIG_SETTLE_MS);
  return true;
}

static void run_next(struct scn_mig *m) {
  if (!m->running && m->n > 0 && settling(m))
    return;
  while (!m->running && m->n > 0) {
    m->cur = m->q[m->head];
    m->head = (m->head + 1) % MIG_OPS_MAX;
    m->n--;
    if (move_refused(m, &m->cur))
      continue;
    if (m->cur.kind == OP_READY) {
      m->ready_polls = 0;
      look_ready(m);
      continue;
    }
    if (spawn_op(m, &m->cur) == 0) {
      m->running = true;
      return;
    }
    op_done(m, 127); /* as a command that could not run */
  }
  if (m->running || m->n > 0 || !m->froze)
    return;
  m->froze = false;
  m->k->frozen = false;
  m->resume(m->k);
}

/* The executor's calls ----------------------------------------------------- */

void scn_mig_start_tasks(struct scn_mig *m) {
  for (size_t i = 0; i < m->s->ntasks; i++) {
    int n = node_index(m, m->s->tasks[i].node);
    m->task[i].origin = m->task[i].node = (size_t)n;
    push(m, (struct op){.kind = OP_START, .task = i}, false);
  }
}

void scn_mig_act(struct scn_mig *m, const struct scn_action *a) {
  char text[SCN_TEXT_MAX + 1];
  enum op_kind kind = a->kind == SCN_ACT_INPUT ? OP_INPUT : OP_MOVE;
  for (size_t i = 0; i < m->s->ntasks; i++) {
    if (strcmp(m->s->tasks[i].name, a->target) != 0)
      continue;
    act_text(a, text, sizeof text);
    task_event(m, i, 0, "%s", text);
    push(m, (struct op){.kind = kind, .task = i, .act = a}, false);
    return;
  }
}

bool scn_mig_census(struct scn_mig *m) {
  if (m == NULL || m->census)
    return false;
  m->census = true;
  m->census_left = m->nnodes;
  for (size_t n = 0; n < m->nnodes; n++)
    push(m, (struct op){.kind = OP_PS, .node = n}, false);
  return true;
}
