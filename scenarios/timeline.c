/* The timeline renderer: a trace drawn as a sequence diagram (AnT Fig. 8).
 *
 * Layout: a left margin with each row's step and virtual time, then one
 * lane per lifeline (the kernel first).  Each event is one row.  An event
 * with a peer is an arrow between two lanes, labelled with the event, its
 * op or service, request id and status; receive and result point at their
 * actor, every other arrow points from actor to peer.  Faults, detections,
 * replacement steps, exits, actions and expectations also get a marker on
 * the actor's lane.  A lifeline is drawn solid from the row where its actor
 * first appears to its exit (or the end), and again if the name comes back.
 *
 * The SVG needs nothing outside itself: styles are inline and every text
 * from the trace is escaped, so a browser shows it with no network.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "scn_impl.h"
#include "timeline.h"

#define MARGIN 170 /* left margin: step and time */
#define LANE 150   /* width of a lane */
#define HEAD 64    /* actor boxes above the first row */
#define ROW 24     /* height of a row */
#define LABEL_MAX 72

/* What an event is, for its colour and marker. */
enum cls { C_MSG, C_LIFE, C_REPL, C_FAIL, C_FAULT, C_DETECT, C_SCN };

static const char *const cls_names[] = {"msg",   "life",   "repl", "fail",
                                        "fault", "detect", "scn"};

static enum cls classify(enum scn_ev ev) {
  switch (ev) {
  case SCN_EV_SPAWN:
  case SCN_EV_REGISTER:
  case SCN_EV_EXIT:
  case SCN_EV_HALT:
    return C_LIFE;
  case SCN_EV_FLAG:
  case SCN_EV_PREPARE:
  case SCN_EV_HANDOFF:
  case SCN_EV_COMMIT:
  case SCN_EV_RESTART:
    return C_REPL;
  case SCN_EV_FAIL:
    return C_FAIL;
  case SCN_EV_FAULT:
  case SCN_EV_ERROR:
  case SCN_EV_PANIC:
    return C_FAULT;
  case SCN_EV_DETECT:
  case SCN_EV_OS_DEAD:
    return C_DETECT;
  case SCN_EV_OS_ACTIVE:
  case SCN_EV_TAKEOVER:
  case SCN_EV_FAILOVER:
  case SCN_EV_RESIZE:
  case SCN_EV_KUPDATE:
    return C_REPL;
  case SCN_EV_ACTION:
  case SCN_EV_EXPECT:
    return C_SCN;
  default:
    return C_MSG;
  }
}

/* Writes s with XML's special characters escaped.  Bytes XML 1.0 forbids
 * (controls but tab and newline, U+FFFE, U+FFFF) become '?'; the reader has
 * made sure s is UTF-8. */
void scn_xml_escaped(FILE *out, const char *s) {
  for (; *s != '\0'; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '&')
      fputs("&amp;", out);
    else if (c == '<')
      fputs("&lt;", out);
    else if (c == '>')
      fputs("&gt;", out);
    else if (c == '"')
      fputs("&quot;", out);
    else if (c == '\'')
      fputs("&#39;", out);
    else if (c < ' ' && c != '\t' && c != '\n')
      fputc('?', out);
    else if (c == 0xef && (unsigned char)s[1] == 0xbf &&
             ((unsigned char)s[2] & 0xfe) == 0xbe) {
      fputc('?', out);
      s += 2;
    } else
      fputc(c, out);
  }
}

static int lane_x(int lane) {
  return MARGIN + lane * LANE + LANE / 2;
}

static int row_y(size_t row) {
  return HEAD + (int)row * ROW + ROW / 2;
}

void scn_time_text(uint64_t ns, char *buf, size_t n) {
  if (ns < 1000)
    snprintf(buf, n, "%" PRIu64 "ns", ns);
  else if (ns < 1000000)
    snprintf(buf, n, "%.3fus", (double)ns / 1e3);
  else if (ns < 1000000000)
    snprintf(buf, n, "%.3fms", (double)ns / 1e6);
  else
    snprintf(buf, n, "%.3fs", (double)ns / 1e9);
}

/* Appends " part" to the label, if it fits. */
static void add(char *label, size_t cap, const char *part) {
  size_t n = strlen(label);
  if (part[0] != '\0')
    snprintf(label + n, cap - n, "%s%s", n ? " " : "", part);
}

/* "send kvs.put #65537 status=0 text", cut to LABEL_MAX with "...". */
static void make_label(const struct scn_event *e, char *label, size_t cap) {
  char num[48];
  label[0] = '\0';
  add(label, cap, scn_ev_name(e->ev));
  add(label, cap, e->op[0] ? e->op : e->svc);
  if (e->has_req) {
    snprintf(num, sizeof num, "#%" PRIu64, e->req);
    add(label, cap, num);
  }
  if (e->has_status) {
    snprintf(num, sizeof num, "status=%" PRId64, e->status);
    add(label, cap, num);
  }
  add(label, cap, e->text);
  if (strlen(label) > LABEL_MAX) {
    size_t n = LABEL_MAX;
    while (n > 0 && ((unsigned char)label[n] & 0xc0) == 0x80)
      n--; /* do not split a UTF-8 character */
    strcpy(label + n, "...");
  }
}

static void put_style(FILE *out) {
  fputs("<style>\n"
        "text{font-family:sans-serif;font-size:11px;fill:#222}\n"
        ".margin{font-family:monospace;fill:#666}\n"
        ".stripe{fill:#f4f6fa}\n"
        ".box{fill:#e8eefc;stroke:#335;stroke-width:1}\n"
        ".actor{font-size:12px;font-weight:bold;text-anchor:middle}\n"
        ".life{stroke:#bbb;stroke-dasharray:4 3}\n"
        ".alive{stroke:#667;stroke-width:2}\n"
        ".arrow{stroke-width:1.4}\n"
        /* A white halo keeps labels readable where they cross lanes. */
        ".label,.note{paint-order:stroke;stroke:#fff;stroke-width:3px;"
        "stroke-linejoin:round}\n"
        ".label{text-anchor:middle}\n"
        ".note{text-anchor:start}\n"
        ".msg{stroke:#333;fill:#333}\n"
        ".life-ev{stroke:#2a7a2a;fill:#2a7a2a}\n"
        ".repl{stroke:#1f5fbf;fill:#1f5fbf}\n"
        ".fail{stroke:#b03060;fill:#b03060}\n"
        ".fault{stroke:#d00000;fill:#d00000}\n"
        ".detect{stroke:#d07000;fill:#d07000}\n"
        ".scn{stroke:#7a3fb0;fill:#7a3fb0}\n"
        "</style>\n",
        out);
}

/* One arrowhead per class, coloured like its arrow. */
static void put_defs(FILE *out) {
  fputs("<defs>\n", out);
  for (size_t i = 0; i < sizeof cls_names / sizeof cls_names[0]; i++)
    fprintf(out,
            "<marker id=\"head-%s\" viewBox=\"0 0 10 10\" refX=\"10\" "
            "refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" "
            "orient=\"auto\"><path class=\"%s\" d=\"M0,0 L10,5 L0,10 "
            "z\"/></marker>\n",
            cls_names[i], i == C_LIFE ? "life-ev" : cls_names[i]);
  fputs("</defs>\n", out);
}

static const char *cls_css(enum cls c) {
  return c == C_LIFE ? "life-ev" : cls_names[c];
}

static void put_alive(FILE *out, int x, size_t from, size_t to) {
  fprintf(out,
          "<line class=\"alive\" x1=\"%d\" y1=\"%d\" x2=\"%d\" "
          "y2=\"%d\"/>\n",
          x, row_y(from) - ROW / 2, x, row_y(to) + ROW / 4);
}

/* Solid where actor a lives: from a row that names it (as actor or peer)
 * to its exit; a name used again after an exit (a restart under the same
 * name) lives again. */
static void put_alive_spans(FILE *out, const struct scn_trace *tr, size_t a) {
  const char *name = tr->actors[a];
  bool alive = false;
  size_t from = 0;
  for (size_t i = 0; i < tr->n; i++) {
    const struct scn_event *e = &tr->ev[i];
    bool mine = strcmp(e->actor, name) == 0;
    if (!alive && (mine || strcmp(e->peer, name) == 0)) {
      alive = true;
      from = i;
    }
    if (alive && mine && e->ev == SCN_EV_EXIT) {
      put_alive(out, lane_x((int)a), from, i);
      alive = false;
    }
  }
  if (alive)
    put_alive(out, lane_x((int)a), from, tr->n - 1);
}

/* Lifelines: dashed over the whole height, solid while the actor lives,
 * under a box with the actor's name. */
static void put_lifelines(FILE *out, const struct scn_trace *tr, int bottom) {
  for (size_t a = 0; a < tr->nactors; a++) {
    int x = lane_x((int)a);
    fprintf(out,
            "<line class=\"life\" x1=\"%d\" y1=\"%d\" x2=\"%d\" "
            "y2=\"%d\"/>\n",
            x, HEAD - 14, x, bottom);
    put_alive_spans(out, tr, a);
    fprintf(out,
            "<rect class=\"box\" x=\"%d\" y=\"10\" width=\"%d\" "
            "height=\"26\" rx=\"4\"/>\n",
            x - LANE / 2 + 8, LANE - 16);
    fprintf(out, "<text class=\"actor\" x=\"%d\" y=\"27\">", x);
    scn_xml_escaped(out, tr->actors[a]);
    fputs("</text>\n", out);
  }
}

/* The step and time of row i in the left margin. */
static void put_margin(FILE *out, const struct scn_event *e, size_t i) {
  char t[32];
  int y = row_y(i);
  scn_time_text(e->t, t, sizeof t);
  if (i % 2 == 0)
    fprintf(out,
            "<rect class=\"stripe\" x=\"0\" y=\"%d\" width=\"100%%\" "
            "height=\"%d\"/>\n",
            y - ROW / 2, ROW);
  fprintf(out,
          "<text class=\"margin\" x=\"8\" y=\"%d\">%" PRIu64 "</text>"
          "<text class=\"margin\" x=\"%d\" y=\"%d\" "
          "text-anchor=\"end\">%s</text>\n",
          y + 4, e->step, MARGIN - 12, y + 4, t);
}

/* A marker on lane x at y: its shape says what happened. */
static void put_marker(FILE *out, const struct scn_event *e, int x, int y) {
  enum cls c = classify(e->ev);
  const char *css = cls_css(c);
  /* An expectation that fails and a halt with live ICAs are bad news. */
  if (e->ev == SCN_EV_EXPECT || e->ev == SCN_EV_HALT)
    css = e->has_status && e->status != 0 ? "fault" : "life-ev";
  switch (c) {
  case C_FAULT:
    fprintf(out,
            "<path class=\"mark %s\" d=\"M%d,%d l10,10 m0,-10 l-10,10\" "
            "stroke-width=\"2.5\"/>\n",
            css, x - 5, y - 5);
    break;
  case C_DETECT:
    fprintf(out, "<path class=\"mark %s\" d=\"M%d,%d l6,6 l-6,6 l-6,-6 z\"/>\n",
            css, x, y - 6);
    break;
  case C_REPL:
  case C_FAIL:
    fprintf(out,
            "<rect class=\"mark %s\" x=\"%d\" y=\"%d\" width=\"10\" "
            "height=\"10\"/>\n",
            css, x - 5, y - 5);
    break;
  case C_SCN:
    fprintf(out, "<path class=\"mark %s\" d=\"M%d,%d l6,10 l-12,0 z\"/>\n", css,
            x, y - 6);
    break;
  case C_LIFE:
    if (e->ev == SCN_EV_HALT) /* the end of every lifeline: a double bar */
      fprintf(out,
              "<rect class=\"mark %s\" x=\"%d\" y=\"%d\" width=\"18\" "
              "height=\"3\"/><rect class=\"mark %s\" x=\"%d\" y=\"%d\" "
              "width=\"18\" height=\"3\"/>\n",
              css, x - 9, y - 4, css, x - 9, y + 1);
    else if (e->ev == SCN_EV_EXIT)
      fprintf(out,
              "<rect class=\"mark %s\" x=\"%d\" y=\"%d\" width=\"18\" "
              "height=\"4\"/>\n",
              css, x - 9, y - 2);
    else
      fprintf(out, "<circle class=\"mark %s\" cx=\"%d\" cy=\"%d\" r=\"4\"/>\n",
              css, x, y);
    break;
  default:
    fprintf(out, "<circle class=\"mark %s\" cx=\"%d\" cy=\"%d\" r=\"3\"/>\n",
            css, x, y);
  }
}

/* One event: an arrow between two lanes, or a marker with a note. */
static void put_event(FILE *out, const struct scn_trace *tr,
                      const struct scn_event *e, size_t i) {
  char label[SCN_TEXT_MAX + 128];
  int a = scn_trace_actor(tr, e->actor);
  int p = e->peer[0] ? scn_trace_actor(tr, e->peer) : -1;
  int y = row_y(i);
  enum cls c = classify(e->ev);
  make_label(e, label, sizeof label);
  if (p < 0 || p == a) {
    put_marker(out, e, lane_x(a), y);
    fprintf(out, "<text class=\"note\" x=\"%d\" y=\"%d\">", lane_x(a) + 12,
            y + 4);
  } else {
    bool inward = e->ev == SCN_EV_RECEIVE || e->ev == SCN_EV_RESULT;
    int from = lane_x(inward ? p : a), to = lane_x(inward ? a : p);
    if (c != C_MSG && c != C_LIFE)
      put_marker(out, e, lane_x(a), y);
    fprintf(out,
            "<line class=\"arrow %s\" x1=\"%d\" y1=\"%d\" x2=\"%d\" "
            "y2=\"%d\" marker-end=\"url(#head-%s)\"/>\n",
            cls_css(c), from, y, to + (to > from ? -2 : 2), y, cls_names[c]);
    fprintf(out, "<text class=\"label\" x=\"%d\" y=\"%d\">", (from + to) / 2,
            y - 4);
  }
  scn_xml_escaped(out, label);
  fputs("</text>\n", out);
}

int scn_timeline_svg(const struct scn_trace *tr, FILE *out) {
  int width = MARGIN + (int)tr->nactors * LANE + 220;
  int bottom = HEAD + (int)tr->n * ROW + 16;
  fprintf(out,
          "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
          "height=\"%d\" viewBox=\"0 0 %d %d\">\n",
          width, bottom + 8, width, bottom + 8);
  put_style(out);
  put_defs(out);
  fprintf(out,
          "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" "
          "fill=\"#fff\"/>\n",
          width, bottom + 8);
  fprintf(out,
          "<text class=\"margin\" x=\"8\" y=\"27\">step</text>"
          "<text class=\"margin\" x=\"%d\" y=\"27\" "
          "text-anchor=\"end\">time</text>\n",
          MARGIN - 12);
  for (size_t i = 0; i < tr->n; i++)
    put_margin(out, &tr->ev[i], i);
  put_lifelines(out, tr, bottom);
  for (size_t i = 0; i < tr->n; i++)
    put_event(out, tr, &tr->ev[i], i);
  fputs("</svg>\n", out);
  return ferror(out) ? -EIO : 0;
}

int scn_timeline_html(const struct scn_trace *tr, const char *title,
                      FILE *out) {
  fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">"
        "\n<title>",
        out);
  scn_xml_escaped(out, title);
  fputs("</title>\n<style>\n"
        "body{font-family:sans-serif;margin:16px;color:#222;background:#fff}\n"
        "h1{font-size:18px;margin:0 0 6px}\n"
        "p{margin:0 0 12px;font-size:13px;color:#555}\n"
        ".key{display:inline-block;width:10px;height:10px;margin:0 4px 0 "
        "12px}\n"
        /* The overview stays in view beside the diagram as it scrolls. */
        ".views{display:flex;align-items:flex-start;gap:16px}\n"
        ".views>.side{position:sticky;top:0;flex:none}\n"
        "</style>\n</head>\n<body>\n<h1>",
        out);
  scn_xml_escaped(out, title);
  fprintf(out,
          "</h1>\n<p>%zu events, %zu lifelines. Key:"
          "<span class=\"key\" style=\"background:#333\"></span>messages"
          "<span class=\"key\" style=\"background:#2a7a2a\"></span>"
          "spawn, register, exit"
          "<span class=\"key\" style=\"background:#1f5fbf\"></span>"
          "replacement"
          "<span class=\"key\" style=\"background:#b03060\"></span>"
          "failed replacement"
          "<span class=\"key\" style=\"background:#d00000\"></span>"
          "faults, errors"
          "<span class=\"key\" style=\"background:#d07000\"></span>"
          "detection"
          "<span class=\"key\" style=\"background:#7a3fb0\"></span>"
          "scenario actions, expectations</p>\n",
          tr->n, tr->nactors);
  fputs("<div class=\"views\">\n<div class=\"side\">\n", out);
  if (scn_timeline_overview_svg(tr, out) < 0)
    return -EIO;
  fputs("</div>\n<div class=\"detail\">\n", out);
  if (scn_timeline_svg(tr, out) < 0)
    return -EIO;
  fputs("</div>\n</div>\n</body>\n</html>\n", out);
  return ferror(out) ? -EIO : 0;
}
