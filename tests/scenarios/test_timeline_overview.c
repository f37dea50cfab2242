/* Unit tests for the timeline's overview (scenarios/timeline_overview.c).
 *
 * A small trace holds one replacement, a queue that grows to three and
 * drains (one request answered by the kernel with an error), and one
 * failover after a panic; the overview must draw each phase as a band where its
 * events put it, the queue's maximum and its return to zero, one lane per
 * lifeline, and nothing for a phase that never ends.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timeline.h"
#include "timeline_test.h"

TestSuite(timeline_overview, .timeout = 30);

#define EV(step, t, rest) "{\"step\":" #step ",\"t\":" #t ",\"ev\":" rest "}\n"

/* Times in us so that x = 96 + t * 560 / 1000 for t in [0, 1000] us. */
// clang-format off
static const char trace[] =
  EV(1, 0, "\"spawn\",\"actor\":\"kernel\",\"peer\":\"kvs\"")
  EV(2, 100000, "\"send\",\"actor\":\"ap1\",\"peer\":\"kvs\",\"svc\":\"kvs\",\"req\":1")
  EV(3, 150000, "\"send\",\"actor\":\"ap1\",\"peer\":\"kvs\",\"svc\":\"kvs\",\"req\":2")
  EV(4, 200000, "\"send\",\"actor\":\"ap1\",\"peer\":\"kvs\",\"svc\":\"kvs\",\"req\":3")
  EV(5, 250000, "\"flag\",\"actor\":\"kernel\",\"peer\":\"kvs\",\"svc\":\"kvs\"")
  EV(6, 375000, "\"prepare\",\"actor\":\"kvs\",\"svc\":\"kvs\"")
  EV(7, 500000, "\"handoff\",\"actor\":\"kvs\",\"peer\":\"kvs.2\",\"svc\":\"kvs\"")
  EV(8, 625000, "\"commit\",\"actor\":\"kernel\",\"peer\":\"kvs.2\",\"svc\":\"kvs\"")
  EV(9, 650000, "\"exit\",\"actor\":\"kvs\",\"status\":0")
  EV(10, 700000, "\"receive\",\"actor\":\"kvs.2\",\"peer\":\"ap1\",\"svc\":\"kvs\",\"req\":1")
  EV(11, 710000, "\"receive\",\"actor\":\"kvs.2\",\"peer\":\"ap1\",\"svc\":\"kvs\",\"req\":2")
  EV(12, 720000, "\"error\",\"actor\":\"kernel\",\"peer\":\"ap1\",\"req\":3,\"status\":-104")
  EV(13, 750000, "\"panic\",\"actor\":\"kernel\"")
  EV(14, 800000, "\"os-dead\",\"actor\":\"os2\",\"peer\":\"os1\",\"op\":\"panic notice\"")
  EV(15, 850000, "\"os-active\",\"actor\":\"kernel\",\"text\":\"os 2 takes over from os 1\"")
  EV(16, 900000, "\"failover\",\"actor\":\"kernel\",\"op\":\"devices\"")
  EV(17, 1000000, "\"failover\",\"actor\":\"kernel\",\"op\":\"publish\"");
// clang-format on

static char *overview(const struct scn_trace *tr) {
  char *buf = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&buf, &n);
  cr_assert_not_null(f);
  cr_assert_eq(scn_timeline_overview_svg(tr, f), 0);
  fclose(f);
  return buf;
}

/* The band of kind k: its x, y, width and height. */
static void band(const char *svg, int k, int *x, int *y, int *w, int *h) {
  char want[48];
  snprintf(want, sizeof want, "class=\"ov-band ov-band-%d\"", k);
  const char *p = strstr(svg, want);
  cr_assert_not_null(p, "no band of kind %d:\n%s", k, svg);
  cr_assert_eq(sscanf(p + strlen(want),
                      " x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"", x, y, w,
                      h),
               4);
  cr_assert_null(strstr(p + 1, want), "two bands of kind %d", k);
}

static int xof(int us) {
  return 96 + us * 560 / 1000;
}

Test(timeline_overview, replacement_phases_lie_on_the_old_servers_lane) {
  struct scn_trace *tr = read_ok(trace);
  char *svg = overview(tr);
  int x, y, w, h;
  int kvs = scn_trace_actor(tr, "kvs");
  static const int from[] = {250, 375, 500}, to[] = {375, 500, 625};
  for (int k = 0; k < 3; k++) {
    band(svg, k, &x, &y, &w, &h);
    cr_assert_eq(x, xof(from[k]), "kind %d", k);
    cr_assert_eq(x + w, xof(to[k]), "kind %d", k);
    cr_assert_eq(y, 56 + kvs * 22 + 2, "kind %d on kvs's lane", k);
  }
  scn_trace_free(tr);
  free(svg);
}

Test(timeline_overview, failover_phases_span_every_lane) {
  struct scn_trace *tr = read_ok(trace);
  char *svg = overview(tr);
  int x, y, w, h;
  band(svg, 4, &x, &y, &w, &h); /* the panic until it is detected */
  cr_assert_eq(x, xof(750));
  cr_assert_eq(x + w, xof(800));
  cr_assert_eq(count(svg, "ov-band-3"), 0, "no scenario's fault kernel");
  band(svg, 5, &x, &y, &w, &h);
  cr_assert_eq(x, xof(800));
  cr_assert_eq(x + w, xof(850));
  cr_assert_eq(y, 56);
  cr_assert_eq(h, (int)tr->nactors * 22);
  band(svg, 6, &x, &y, &w, &h);
  cr_assert_eq(x, xof(850));
  cr_assert_eq(x + w, xof(1000), "closed by publish, not by devices");
  scn_trace_free(tr);
  free(svg);
}

/* A detection of 1 us and a takeover of 2 us in a run of 1 ms: each is
 * drawn 8 pixels wide, one after the other, not the second under the
 * first (the CI's orthros-overview screenshot saw a 4-pixel takeover
 * hidden under its detection); the title still gives the true length. */
Test(timeline_overview, short_phases_are_drawn_side_by_side) {
  // clang-format off
  static const char quick[] =
    EV(1, 0, "\"spawn\",\"actor\":\"kernel\",\"peer\":\"kvs\"")
    EV(2, 500000, "\"panic\",\"actor\":\"kernel\"")
    EV(3, 997000, "\"os-dead\",\"actor\":\"os2\",\"peer\":\"os1\"")
    EV(4, 998000, "\"os-active\",\"actor\":\"kernel\"")
    EV(5, 1000000, "\"failover\",\"actor\":\"kernel\",\"op\":\"publish\"");
  // clang-format on
  struct scn_trace *tr = read_ok(quick);
  char *svg = overview(tr);
  int x4, x5, x6, y, w4, w5, w6, h;
  band(svg, 4, &x4, &y, &w4, &h);
  band(svg, 5, &x5, &y, &w5, &h);
  band(svg, 6, &x6, &y, &w6, &h);
  cr_assert_eq(x4, xof(500));
  cr_assert_eq(x5, x4 + w4, "detection right after the panic's band");
  cr_assert_eq(w5, 8);
  cr_assert_eq(x6, x5 + w5, "takeover right after the detection");
  cr_assert_eq(w6, 8);
  cr_assert_neq(strstr(svg, "failover: takeover, 0.002 ms</title>"), NULL, "%s",
                svg);
  scn_trace_free(tr);
  free(svg);
}

Test(timeline_overview, the_queue_grows_to_three_and_drains) {
  struct scn_trace *tr = read_ok(trace);
  char *svg = overview(tr);
  cr_assert_eq(count(svg, "class=\"ov-queue\""), 1, "one service");
  cr_assert_neq(strstr(svg, ">queue kvs</text>"), NULL);
  cr_assert_neq(strstr(svg, ">max 3</text>"), NULL, "%s", svg);
  /* The row's baseline is its top + 28; the line ends there: the error
   * took the last queued request out. */
  const char *p = strstr(svg, "class=\"ov-queue\" points=\"");
  cr_assert_not_null(p);
  const char *end = strchr(p + 26, '"');
  const char *last = end;
  while (last[-1] != ' ')
    last--;
  int x, y, top;
  cr_assert_eq(sscanf(last, "%d,%d", &x, &y), 2);
  const char *row = strstr(svg, "class=\"ov-row\"");
  cr_assert_eq(sscanf(row, "class=\"ov-row\" x=\"%*d\" y=\"%d\"", &top), 1);
  cr_assert_eq(x, 96 + 560);
  cr_assert_eq(y, top + 28, "the queue did not drain: %.*s", (int)(end - p), p);
  /* At its highest (after the third send) the line reaches the top. */
  char peak[32];
  snprintf(peak, sizeof peak, " %d,%d", xof(200), top);
  cr_assert_neq(strstr(p, peak), NULL, "no peak at 200 us: %.*s",
                (int)(end - p), p);
  scn_trace_free(tr);
  free(svg);
}

Test(timeline_overview, one_lane_per_lifeline_and_a_cross_per_fault) {
  struct scn_trace *tr = read_ok(trace);
  char *svg = overview(tr);
  for (size_t a = 0; a < tr->nactors; a++) {
    char want[64];
    snprintf(want, sizeof want, ">%s</text>", tr->actors[a]);
    cr_assert_eq(count(svg, want), 1, "%s", tr->actors[a]);
  }
  cr_assert_eq(count(svg, "class=\"ov-fault\""), 1);
  /* kvs lives from its spawn to its exit. */
  int kvs = scn_trace_actor(tr, "kvs");
  char alive[96];
  snprintf(alive, sizeof alive,
           "<rect class=\"ov-alive\" x=\"%d\" y=\"%d\" width=\"%d\"", xof(0),
           56 + kvs * 22 + 8, xof(650) - xof(0));
  cr_assert_neq(strstr(svg, alive), NULL, "%s", svg);
  scn_trace_free(tr);
  free(svg);
}

/* A flag whose replacement never commits (the commit is another
 * service's). */
// clang-format off
static const char unended[] =
  EV(1, 0, "\"spawn\",\"actor\":\"kernel\",\"peer\":\"kvs\"")
  EV(2, 10, "\"flag\",\"actor\":\"kernel\",\"peer\":\"kvs\",\"svc\":\"kvs\"")
  EV(3, 20, "\"commit\",\"actor\":\"kernel\",\"peer\":\"kvs.2\",\"svc\":\"other\"");
static const char timeless[] =
  EV(1, 0, "\"spawn\",\"actor\":\"kernel\",\"peer\":\"kvs\"")
  EV(9, 0, "\"exit\",\"actor\":\"kvs\",\"status\":0");
// clang-format on

Test(timeline_overview, a_phase_that_never_ends_is_not_drawn) {
  struct scn_trace *tr = read_ok(unended);
  char *svg = overview(tr);
  cr_assert_eq(count(svg, "ov-band"), 0, "%s", svg);
  scn_trace_free(tr);
  free(svg);
}

Test(timeline_overview, times_that_do_not_advance_are_drawn_by_step) {
  struct scn_trace *tr = read_ok(timeless);
  char *svg = overview(tr);
  cr_assert_neq(strstr(svg, ">step 1</text>"), NULL, "%s", svg);
  cr_assert_neq(strstr(svg, ">step 9</text>"), NULL, "%s", svg);
  scn_trace_free(tr);
  free(svg);
}

Test(timeline_overview, an_empty_trace_draws) {
  struct scn_trace *tr = read_ok("\n");
  char *svg = overview(tr);
  cr_assert_eq(count(svg, "</svg>"), 1);
  scn_trace_free(tr);
  free(svg);
}

Test(timeline_overview, the_page_shows_the_overview_beside_the_diagram) {
  struct scn_trace *tr = read_ok(trace);
  char *buf = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&buf, &n);
  cr_assert_eq(scn_timeline_html(tr, "t", f), 0);
  fclose(f);
  const char *side = strstr(buf, "<div class=\"side\">");
  const char *ov = strstr(buf, "class=\"overview\"");
  const char *detail = strstr(buf, "<div class=\"detail\">");
  cr_assert(side && ov && detail && side < ov && ov < detail);
  cr_assert_null(strstr(buf, "<script"));
  scn_trace_free(tr);
  free(buf);
}
