/* The timeline's overview: the whole run zoomed out, for reading at a
 * glance beside the message-level diagram (timeline.c).
 *
 * Time runs left to right over a fixed width.  Each lifeline of the trace
 * is a lane: a grey bar while the process lives (from the event that first
 * names it to its exit), a red cross where it faults.  Phases are coloured
 * bands: a replacement's steps on the old server's lane, a failover's steps
 * across every lane (the whole machine is in it).  Below the lanes, one row
 * per service draws its queue length over time: requests sent to the
 * service and not yet received by a server of it (nor answered by the
 * kernel with an error).
 *
 * Bands come from the table `bands`: a phase opens at one event and closes
 * at the first later event of its close set (of the same service, when the
 * opening event names one); a phase that never closes is not drawn, since
 * where it would end is unknown.  Process migration (seed 004) has no trace
 * events yet: when it does, a row in that table draws it.
 *
 * The x of an event is its virtual time; a trace whose times do not advance
 * (all equal) is drawn by step instead. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "timeline.h"
#include "uksim/xalloc.h"

#define OV_LEFT 96     /* lane names */
#define OV_PLOT 560    /* width of the time axis */
#define OV_BAND_MIN 8  /* the narrowest phase drawn */
#define OV_TOP 56      /* title and key above the first lane */
#define OV_LANE 22     /* height of a process lane */
#define OV_QUEUE 40    /* height of a service's queue row */
#define OV_SERVICES 16 /* services whose queue is drawn; more are left out */

/* Where a band lies. */
enum band_lane {
  LANE_PEER,  /* the opening event's peer (the server being replaced) */
  LANE_ACTOR, /* the opening event's actor */
  LANE_ALL    /* every lane: the whole machine is in the phase */
};

struct band_kind {
  const char *name; /* in the key */
  const char *colour;
  enum scn_ev open;
  const char *open_text; /* the opening event's text starts so, or NULL */
  enum scn_ev close[3];  /* SCN_EV_COUNT ends the set */
  const char *close_op;  /* the closing event's op must be this, or NULL */
  enum band_lane lane;
};

/* The phases.  Replacement (seed 000): the flag is set and the old server
 * has yet to see it; it saved its state and the new one starts; the
 * handoff until the commit.  Failover (seed 001): a scenario's kernel fault
 * (or the active's panic) until the backup declares it dead -- the
 * detection time --; then until the backup is the active; then its
 * takeover steps until the last one (publish).  Kinds may share a name
 * and colour (the key lists each name once).  Migration (seed 004) has no
 * trace events yet: add its rows here when it does.
 *
 * clang-format off: one kind to a line reads as the table it is. */
// clang-format off
static const struct band_kind bands[] = {
  {"replacement: flag set", "#9ec1f0", SCN_EV_FLAG, NULL,
   {SCN_EV_PREPARE, SCN_EV_FAIL, SCN_EV_COUNT}, NULL, LANE_PEER},
  {"replacement: state saved", "#4f8fe0", SCN_EV_PREPARE, NULL,
   {SCN_EV_HANDOFF, SCN_EV_FAIL, SCN_EV_COUNT}, NULL, LANE_ACTOR},
  {"replacement: handoff", "#1f4fa0", SCN_EV_HANDOFF, NULL,
   {SCN_EV_COMMIT, SCN_EV_FAIL, SCN_EV_COUNT}, NULL, LANE_ACTOR},
  {"failover: not yet detected", "#b8b8b8", SCN_EV_ACTION, "fault kernel",
   {SCN_EV_OS_DEAD, SCN_EV_COUNT, SCN_EV_COUNT}, NULL, LANE_ALL},
  {"failover: not yet detected", "#b8b8b8", SCN_EV_PANIC, NULL,
   {SCN_EV_OS_DEAD, SCN_EV_COUNT, SCN_EV_COUNT}, NULL, LANE_ALL},
  {"failover: detected", "#f0a040", SCN_EV_OS_DEAD, NULL,
   {SCN_EV_OS_ACTIVE, SCN_EV_COUNT, SCN_EV_COUNT}, NULL, LANE_ALL},
  {"failover: takeover", "#e06020", SCN_EV_OS_ACTIVE, NULL,
   {SCN_EV_FAILOVER, SCN_EV_COUNT, SCN_EV_COUNT}, "publish", LANE_ALL},
};
// clang-format on

#define NBANDS (sizeof bands / sizeof bands[0])

struct ov {
  const struct scn_trace *tr;
  FILE *out;
  bool by_step; /* times do not advance: x from the step */
  uint64_t x0, x1;
  char (*svc)[SCN_NAME_MAX + 1]; /* services with a queue row */
  size_t nsvc;
};

static uint64_t ev_pos(const struct ov *v, const struct scn_event *e) {
  return v->by_step ? e->step : e->t;
}

static int xpos(const struct ov *v, uint64_t at) {
  if (v->x1 <= v->x0)
    return OV_LEFT;
  return OV_LEFT +
         (int)((double)(at - v->x0) * OV_PLOT / (double)(v->x1 - v->x0));
}

static int lane_top(size_t lane) {
  return OV_TOP + (int)lane * OV_LANE;
}

static int queue_top(const struct ov *v, size_t i) {
  return lane_top(v->tr->nactors) + 10 + (int)i * OV_QUEUE;
}

static int bottom(const struct ov *v) {
  return queue_top(v, v->nsvc) + 28;
}

/* The axis: by time, unless no time passes in the trace. */
static void axis_range(struct ov *v) {
  const struct scn_trace *tr = v->tr;
  v->by_step = tr->n == 0 || tr->ev[tr->n - 1].t == tr->ev[0].t;
  v->x0 = tr->n ? ev_pos(v, &tr->ev[0]) : 0;
  v->x1 = tr->n ? ev_pos(v, &tr->ev[tr->n - 1]) : 0;
}

/* Services --------------------------------------------------------------- */

static size_t svc_index(struct ov *v, const char *svc, bool add) {
  for (size_t i = 0; i < v->nsvc; i++)
    if (strcmp(v->svc[i], svc) == 0)
      return i;
  if (!add || svc[0] == '\0' || v->nsvc == OV_SERVICES)
    return SIZE_MAX;
  snprintf(v->svc[v->nsvc], sizeof v->svc[0], "%s", svc);
  return v->nsvc++;
}

static void find_services(struct ov *v) {
  v->svc = xcalloc(OV_SERVICES, sizeof *v->svc);
  for (size_t i = 0; i < v->tr->n; i++)
    if (v->tr->ev[i].ev == SCN_EV_SEND)
      svc_index(v, v->tr->ev[i].svc, true);
}

/* The queue of a service after one event that changed it. */
struct qpoint {
  uint64_t at;
  int64_t q;
};

/* Removes req from the pending set; whether it was there. */
static bool take(uint64_t *pending, size_t *n, uint64_t req) {
  for (size_t i = 0; i < *n; i++)
    if (pending[i] == req) {
      pending[i] = pending[--*n];
      return true;
    }
  return false;
}

/* The queue of svc over the trace: requests sent to it and not yet
 * received by a server of it, nor answered by the kernel with an error (a
 * request queued to a server that died).  *n points, heap. */
static struct qpoint *queue_points(const struct ov *v, const char *svc,
                                   size_t *n) {
  const struct scn_trace *tr = v->tr;
  uint64_t *pending = xcalloc(tr->n + 1, sizeof *pending);
  struct qpoint *p = xcalloc(tr->n + 1, sizeof *p);
  size_t np = 0;
  *n = 0;
  for (size_t i = 0; i < tr->n; i++) {
    const struct scn_event *e = &tr->ev[i];
    bool changed = false;
    if (e->ev == SCN_EV_SEND && e->has_req && strcmp(e->svc, svc) == 0) {
      pending[np++] = e->req;
      changed = true;
    } else if ((e->ev == SCN_EV_RECEIVE || e->ev == SCN_EV_ERROR) && e->has_req)
      changed = take(pending, &np, e->req);
    if (changed)
      p[(*n)++] = (struct qpoint){ev_pos(v, e), (int64_t)np};
  }
  free(pending);
  return p;
}

/* The queue of svc as a step line; its maximum as the row's label. */
static void put_queue(struct ov *v, size_t s) {
  size_t n;
  struct qpoint *p = queue_points(v, v->svc[s], &n);
  int64_t max = 0;
  for (size_t i = 0; i < n; i++)
    max = p[i].q > max ? p[i].q : max;
  int top = queue_top(v, s), h = OV_QUEUE - 12, y = top + h;
  fprintf(v->out,
          "<rect class=\"ov-row\" x=\"%d\" y=\"%d\" width=\"%d\" "
          "height=\"%d\"/>\n<text class=\"ov-name\" x=\"4\" y=\"%d\">queue ",
          OV_LEFT, top, OV_PLOT, h, top + h / 2 + 4);
  scn_xml_escaped(v->out, v->svc[s]);
  fprintf(v->out,
          "</text><text class=\"ov-max\" x=\"%d\" y=\"%d\">max %" PRId64
          "</text>\n<polyline class=\"ov-queue\" points=\"%d,%d",
          OV_LEFT + OV_PLOT + 4, top + 9, max, OV_LEFT, y);
  for (size_t i = 0; i < n; i++) {
    int x = xpos(v, p[i].at);
    fprintf(v->out, " %d,%d", x, y);
    y = top + h - (max ? (int)(p[i].q * h / max) : 0);
    fprintf(v->out, " %d,%d", x, y);
  }
  fprintf(v->out, " %d,%d\"/>\n", OV_LEFT + OV_PLOT, y);
  free(p);
}

/* Lanes ---------------------------------------------------------------- */

static void put_alive(struct ov *v, size_t a, uint64_t from, uint64_t to) {
  int x0 = xpos(v, from), x1 = xpos(v, to);
  fprintf(v->out,
          "<rect class=\"ov-alive\" x=\"%d\" y=\"%d\" width=\"%d\" "
          "height=\"6\"/>\n",
          x0, lane_top(a) + OV_LANE / 2 - 3, x1 - x0 > 1 ? x1 - x0 : 1);
}

/* The bar of lane a while its process lives (as timeline.c's lifelines). */
static void put_lane(struct ov *v, size_t a) {
  const struct scn_trace *tr = v->tr;
  const char *name = tr->actors[a];
  bool alive = false;
  uint64_t from = 0;
  fprintf(v->out, "<text class=\"ov-name\" x=\"4\" y=\"%d\">",
          lane_top(a) + OV_LANE / 2 + 4);
  scn_xml_escaped(v->out, name);
  fputs("</text>\n", v->out);
  for (size_t i = 0; i < tr->n; i++) {
    const struct scn_event *e = &tr->ev[i];
    bool mine = strcmp(e->actor, name) == 0;
    if (!alive && (mine || strcmp(e->peer, name) == 0)) {
      alive = true;
      from = ev_pos(v, e);
    }
    if (alive && mine && e->ev == SCN_EV_EXIT) {
      put_alive(v, a, from, ev_pos(v, e));
      alive = false;
    }
  }
  if (alive)
    put_alive(v, a, from, v->x1);
}

static void put_faults(struct ov *v) {
  for (size_t i = 0; i < v->tr->n; i++) {
    const struct scn_event *e = &v->tr->ev[i];
    int a = scn_trace_actor(v->tr, e->actor);
    if ((e->ev != SCN_EV_FAULT && e->ev != SCN_EV_PANIC) || a < 0)
      continue;
    fprintf(v->out,
            "<path class=\"ov-fault\" d=\"M%d,%d l8,8 m0,-8 l-8,8\"/>\n",
            xpos(v, ev_pos(v, e)) - 4, lane_top((size_t)a) + OV_LANE / 2 - 4);
  }
}

/* Bands -------------------------------------------------------------------- */

static bool closes(const struct band_kind *k, const struct scn_event *open,
                   const struct scn_event *e) {
  bool in = false;
  for (size_t i = 0; i < 3 && k->close[i] != SCN_EV_COUNT; i++)
    in = in || e->ev == k->close[i];
  return in && (open->svc[0] == '\0' || strcmp(e->svc, open->svc) == 0) &&
         (k->close_op == NULL || strcmp(e->op, k->close_op) == 0);
}

/* One phase to draw: its kind and the events that open and close it. */
struct band_at {
  size_t kind;
  const struct scn_event *open, *close;
};

static int band_order(const void *pa, const void *pb) {
  const struct band_at *a = pa, *b = pb;
  if (a->open->step != b->open->step)
    return a->open->step < b->open->step ? -1 : 1;
  if (a->open != b->open)
    return a->open < b->open ? -1 : 1;
  return a->kind < b->kind ? -1 : a->kind > b->kind;
}

/* A phase is drawn at least OV_BAND_MIN wide, and after the phase drawn
 * before it in its lane (cursor[lane], the lanes' common band at
 * cursor[nactors]): a takeover of 12 ms in a run of 2 s would otherwise be
 * a sliver under the detection before it.  Its title gives its true
 * length. */
static void put_band(struct ov *v, const struct band_at *b, int *cursor) {
  const struct band_kind *k = &bands[b->kind];
  int a = k->lane == LANE_PEER    ? scn_trace_actor(v->tr, b->open->peer)
          : k->lane == LANE_ACTOR ? scn_trace_actor(v->tr, b->open->actor)
                                  : -1;
  if (k->lane != LANE_ALL && a < 0)
    return;
  size_t lane = a >= 0 ? (size_t)a : v->tr->nactors;
  int x0 = xpos(v, ev_pos(v, b->open)), x1 = xpos(v, ev_pos(v, b->close));
  if (x0 < cursor[lane])
    x0 = cursor[lane];
  if (x1 < x0 + OV_BAND_MIN)
    x1 = x0 + OV_BAND_MIN;
  cursor[lane] = x1;
  int y = a >= 0 ? lane_top((size_t)a) + 2 : lane_top(0);
  int h = a >= 0 ? OV_LANE - 4 : lane_top(v->tr->nactors) - lane_top(0);
  fprintf(v->out,
          "<rect class=\"ov-band ov-band-%zu\" x=\"%d\" y=\"%d\" "
          "width=\"%d\" height=\"%d\" fill=\"%s\" opacity=\"%s\"><title>",
          b->kind, x0, y, x1 - x0, h, k->colour,
          k->lane == LANE_ALL ? "0.35" : "1");
  scn_xml_escaped(v->out, k->name);
  if (v->by_step)
    fprintf(v->out, ", %" PRIu64 " steps", b->close->step - b->open->step);
  else
    fprintf(v->out, ", %.3f ms", (double)(b->close->t - b->open->t) / 1e6);
  fputs("</title></rect>\n", v->out);
}

static bool opens(const struct band_kind *k, const struct scn_event *e) {
  return e->ev == k->open &&
         (k->open_text == NULL ||
          strncmp(e->text, k->open_text, strlen(k->open_text)) == 0);
}

/* Every phase of every kind: each opening event with its first closing
 * one, drawn in the order they opened. */
static void put_bands(struct ov *v) {
  const struct scn_trace *tr = v->tr;
  struct band_at *all = NULL;
  size_t n = 0, cap = 0;
  for (size_t k = 0; k < NBANDS; k++)
    for (size_t i = 0; i < tr->n; i++) {
      if (!opens(&bands[k], &tr->ev[i]))
        continue;
      for (size_t j = i + 1; j < tr->n; j++)
        if (closes(&bands[k], &tr->ev[i], &tr->ev[j])) {
          if (n == cap)
            all = xreallocarray(all, cap = cap ? 2 * cap : 16, sizeof *all);
          all[n++] = (struct band_at){k, &tr->ev[i], &tr->ev[j]};
          break;
        }
    }
  if (n > 0)
    qsort(all, n, sizeof *all, band_order);
  int *cursor = xcalloc(tr->nactors + 1, sizeof *cursor);
  for (size_t i = 0; i < n; i++)
    put_band(v, &all[i], cursor);
  free(cursor);
  free(all);
}

/* The frame -----------------------------------------------------------------
 */

/* Whether kind k's name came before it in the table (its key is drawn). */
static bool named_before(size_t k) {
  for (size_t j = 0; j < k; j++)
    if (strcmp(bands[j].name, bands[k].name) == 0)
      return true;
  return false;
}

/* The title, and a key of the band kinds, three to a row. */
static void put_key(struct ov *v) {
  size_t n = 0;
  fprintf(v->out, "<text class=\"ov-title\" x=\"4\" y=\"14\">overview "
                  "(time \u2192)</text>\n");
  for (size_t k = 0; k < NBANDS; k++) {
    if (named_before(k))
      continue;
    int x = OV_LEFT + (int)(n % 3) * 190, y = 20 + (int)(n / 3) * 14;
    n++;
    fprintf(v->out,
            "<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" "
            "fill=\"%s\"/><text class=\"ov-key\" x=\"%d\" y=\"%d\">",
            x, y, bands[k].colour, x + 14, y + 9);
    scn_xml_escaped(v->out, bands[k].name);
    fputs("</text>\n", v->out);
  }
}

static void put_axis(struct ov *v) {
  int y = bottom(v) - 14;
  char a[32], b[32];
  if (v->by_step) {
    snprintf(a, sizeof a, "step %" PRIu64, v->x0);
    snprintf(b, sizeof b, "step %" PRIu64, v->x1);
  } else {
    scn_time_text(v->x0, a, sizeof a);
    scn_time_text(v->x1, b, sizeof b);
  }
  fprintf(v->out,
          "<line class=\"ov-axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" "
          "y2=\"%d\"/>\n<text class=\"ov-key\" x=\"%d\" y=\"%d\">%s</text>"
          "<text class=\"ov-key\" x=\"%d\" y=\"%d\" "
          "text-anchor=\"end\">%s</text>\n",
          OV_LEFT, y, OV_LEFT + OV_PLOT, y, OV_LEFT, y + 12, a,
          OV_LEFT + OV_PLOT, y + 12, b);
}

static void put_style(FILE *out) {
  fputs("<style>\n"
        "text{font-family:sans-serif;font-size:11px;fill:#222}\n"
        ".ov-title{font-size:12px;font-weight:bold}\n"
        ".ov-name{font-family:monospace}\n"
        ".ov-key,.ov-max{font-size:10px;fill:#555}\n"
        ".ov-alive{fill:#9aa0ab}\n"
        ".ov-row{fill:#f4f6fa}\n"
        ".ov-queue{fill:none;stroke:#2a7a2a;stroke-width:1.5}\n"
        ".ov-fault{stroke:#d00000;stroke-width:2.5}\n"
        ".ov-axis{stroke:#667}\n"
        "</style>\n",
        out);
}

int scn_timeline_overview_svg(const struct scn_trace *tr, FILE *out) {
  struct ov v = {.tr = tr, .out = out};
  axis_range(&v);
  find_services(&v);
  int width = OV_LEFT + OV_PLOT + 56, height = bottom(&v);
  fprintf(out,
          "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"overview\" "
          "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n",
          width, height, width, height);
  put_style(out);
  fprintf(out,
          "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" "
          "fill=\"#fff\"/>\n",
          width, height);
  put_key(&v);
  for (size_t a = 0; a < tr->nactors; a++)
    put_lane(&v, a);
  put_bands(&v);
  put_faults(&v);
  for (size_t s = 0; s < v.nsvc; s++)
    put_queue(&v, s);
  put_axis(&v);
  fputs("</svg>\n", out);
  free(v.svc);
  return ferror(out) ? -EIO : 0;
}
