/* Unit tests for traces and timelines (scenarios/timeline.h).
 *
 * A small trace of one replacement (the steps of AnT Fig. 8) is read and
 * drawn: the SVG must name every actor, in order of first appearance, and
 * hold one arrow per event with a peer.  Malformed lines are refused with
 * "file:line: message"; random bytes are read or refused, never crash.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timeline.h"
#include "timeline_test.h"

TestSuite(timeline, .timeout = 30);

/* Fig. 8 in small: a request, then the replacement.  12 events, 8 of them
 * with a peer (register, prepare, fault and exit have none). */
static const char fig8[] =
    "{\"step\":1,\"t\":0,\"ev\":\"spawn\",\"actor\":\"kernel\","
    "\"peer\":\"kvs\",\"text\":\"kvs\"}\n"
    "{\"step\":2,\"t\":1000,\"ev\":\"register\",\"actor\":\"kvs\","
    "\"svc\":\"kvs\",\"text\":\"v1 fresh\"}\n"
    "\n"
    "{\"step\":3,\"t\":2500,\"ev\":\"send\",\"actor\":\"ap1\",\"peer\":"
    "\"kvs\",\"svc\":\"kvs\",\"req\":65537,\"op\":\"kvs.put\"}\n"
    "{\"step\":4,\"t\":2600,\"ev\":\"receive\",\"actor\":\"kvs\",\"peer\":"
    "\"ap1\",\"svc\":\"kvs\",\"req\":65537,\"op\":\"kvs.put\"}\n"
    "{\"step\":5,\"t\":2700,\"ev\":\"reply\",\"actor\":\"kvs\",\"peer\":"
    "\"ap1\",\"req\":65537,\"op\":\"kvs.put\",\"status\":0}\n"
    "{\"step\":6,\"t\":2800,\"ev\":\"result\",\"actor\":\"ap1\",\"peer\":"
    "\"kvs\",\"req\":65537,\"status\":0}\n"
    "{\"step\":7,\"t\":5000000,\"ev\":\"flag\",\"actor\":\"kernel\","
    "\"peer\":\"kvs\",\"svc\":\"kvs\"}\n"
    "{\"step\":8,\"t\":5000100,\"ev\":\"prepare\",\"actor\":\"kvs\","
    "\"svc\":\"kvs\"}\n"
    "{\"step\":9,\"t\":5000200,\"ev\":\"handoff\",\"actor\":\"kvs\","
    "\"peer\":\"kvs.2\",\"svc\":\"kvs\",\"text\":\"1 ICA, 0 queued\"}\n"
    "{\"step\":10,\"t\":5000300,\"ev\":\"commit\",\"actor\":\"kernel\","
    "\"peer\":\"kvs.2\",\"svc\":\"kvs\",\"future_key\":[1,2]}\n"
    "{\"step\":10,\"t\":5000300,\"ev\":\"fault\",\"actor\":\"ap1\","
    "\"text\":\"<crash> & \\\"burn\\\"\"}\n"
    "{\"step\":11,\"t\":6000000,\"ev\":\"exit\",\"actor\":\"kvs\","
    "\"status\":0}\n";

static void refused(const char *text, const char *want) {
  struct scn_err err = {0};
  struct scn_trace *tr = scn_trace_parse("t.jsonl", text, strlen(text), &err);
  cr_assert_null(tr, "accepted: %s", text);
  cr_assert_str_eq(err.text, want, "for: %s", text);
}

/* Renders to a string (freed by the caller). */
static char *render(const struct scn_trace *tr, bool html) {
  char *buf = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&buf, &n);
  cr_assert_not_null(f);
  int rc = html ? scn_timeline_html(tr, "Fig. 8 <small>", f)
                : scn_timeline_svg(tr, f);
  cr_assert_eq(rc, 0);
  fclose(f);
  return buf;
}

Test(timeline, reads_every_field) {
  struct scn_trace *tr = read_ok(fig8);
  cr_assert_eq(tr->n, 12);
  struct scn_event *e = &tr->ev[2];
  cr_assert_eq(e->step, 3);
  cr_assert_eq(e->t, 2500);
  cr_assert_eq(e->ev, SCN_EV_SEND);
  cr_assert_str_eq(e->actor, "ap1");
  cr_assert_str_eq(e->peer, "kvs");
  cr_assert_str_eq(e->svc, "kvs");
  cr_assert_str_eq(e->op, "kvs.put");
  cr_assert(e->has_req);
  cr_assert_eq(e->req, 65537);
  cr_assert_not(e->has_status);
  cr_assert_eq(e->line, 4, "the blank line 3 is counted");
  cr_assert(tr->ev[4].has_status);
  cr_assert_eq(tr->ev[4].status, 0);
  cr_assert_str_eq(tr->ev[10].text, "<crash> & \"burn\"");
  scn_trace_free(tr);
}

Test(timeline, lifelines_in_order_of_first_appearance) {
  struct scn_trace *tr = read_ok(fig8);
  const char *want[] = {"kernel", "kvs", "ap1", "kvs.2"};
  cr_assert_eq(tr->nactors, 4);
  for (int i = 0; i < 4; i++)
    cr_assert_str_eq(tr->actors[i], want[i]);
  cr_assert_eq(scn_trace_actor(tr, "kvs.2"), 3);
  cr_assert_eq(scn_trace_actor(tr, "nobody"), -1);
  scn_trace_free(tr);
}

Test(timeline, svg_names_every_actor_and_draws_every_arrow) {
  struct scn_trace *tr = read_ok(fig8);
  char *svg = render(tr, false);
  cr_assert(strncmp(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\"", 39) == 0);
  cr_assert_eq(count(svg, "</svg>"), 1);
  const char *actors[] = {">kernel</text>", ">kvs</text>", ">ap1</text>",
                          ">kvs.2</text>"};
  for (int i = 0; i < 4; i++)
    cr_assert_eq(count(svg, actors[i]), 1, "%s", actors[i]);
  cr_assert_eq(count(svg, "<line class=\"arrow"), 8);
  cr_assert_eq(count(svg, "class=\"actor\""), 4);
  cr_assert_geq(count(svg, "class=\"mark"), 6,
                "flag, prepare, handoff, "
                "commit, fault, exit");
  cr_assert_neq(strstr(svg, "send kvs.put #65537"), NULL);
  cr_assert_neq(strstr(svg, "reply kvs.put #65537 status=0"), NULL);
  cr_assert_neq(strstr(svg, "5.000ms"), NULL, "times in the margin");
  scn_trace_free(tr);
  free(svg);
}

Test(timeline, arrows_point_the_way_messages_travel) {
  struct scn_trace *tr = read_ok(fig8);
  char *svg = render(tr, false);
  /* Lanes: kernel at x=245, kvs 395, ap1 545.  An arrow stops just short
   * of its lane.  send goes ap1 -> kvs; receive is drawn the same way (the
   * request travels to its actor); reply goes back kvs -> ap1. */
  cr_assert_neq(strstr(svg, "class=\"arrow msg\" x1=\"545\" y1=\"124\" "
                            "x2=\"397\""),
                NULL, "%s", svg);
  cr_assert_neq(strstr(svg, "class=\"arrow msg\" x1=\"545\" y1=\"148\" "
                            "x2=\"397\""),
                NULL);
  cr_assert_neq(strstr(svg, "class=\"arrow msg\" x1=\"395\" y1=\"172\" "
                            "x2=\"543\""),
                NULL);
  scn_trace_free(tr);
  free(svg);
}

Test(timeline, text_from_the_trace_is_escaped) {
  struct scn_trace *tr = read_ok(fig8);
  char *svg = render(tr, false);
  cr_assert_neq(strstr(svg, "&lt;crash&gt; &amp; &quot;burn&quot;"), NULL);
  cr_assert_null(strstr(svg, "<crash>"));
  scn_trace_free(tr);
  free(svg);
  tr = read_ok("{\"step\":1,\"t\":0,\"ev\":\"fault\",\"actor\":\"a\","
               "\"text\":\"x\\u0001y\\uffffz\"}\n");
  svg = render(tr, false);
  cr_assert_neq(strstr(svg, "x?y?z"), NULL, "%s", svg);
  scn_trace_free(tr);
  free(svg);
}

Test(timeline, html_embeds_the_svg_without_scripts) {
  struct scn_trace *tr = read_ok(fig8);
  char *html = render(tr, true);
  cr_assert(strncmp(html, "<!DOCTYPE html>", 15) == 0);
  cr_assert_eq(count(html, "<svg "), 2); /* the overview, the diagram */
  cr_assert_eq(count(html, "<line class=\"arrow"), 8);
  cr_assert_null(strstr(html, "<script"));
  cr_assert_null(strstr(html, "src="), "nothing to fetch");
  cr_assert_null(strstr(html, "href="), "nothing to fetch");
  cr_assert_neq(strstr(html, "<title>Fig. 8 &lt;small&gt;</title>"), NULL);
  scn_trace_free(tr);
  free(html);
}

Test(timeline, empty_trace_draws_the_kernel_alone) {
  struct scn_trace *tr = read_ok("\n\n");
  cr_assert_eq(tr->n, 0);
  cr_assert_eq(tr->nactors, 1);
  char *svg = render(tr, false);
  cr_assert_eq(count(svg, ">kernel</text>"), 1);
  cr_assert_eq(count(svg, "<line class=\"arrow"), 0);
  scn_trace_free(tr);
  free(svg);
}

Test(timeline, long_text_is_cut_at_a_character) {
  char line[1200];
  strcpy(line, "{\"step\":1,\"t\":0,\"ev\":\"action\",\"actor\":\"kernel\","
               "\"text\":\"");
  for (int i = 0; i < 200; i++)
    strcat(line, "\xc3\xa9"); /* 400 bytes of two-byte characters */
  strcat(line, "\"}");
  struct scn_trace *tr = read_ok(line);
  cr_assert_eq(strlen(tr->ev[0].text), 254);
  scn_trace_free(tr);
}

Test(timeline, reads_from_a_file) {
  FILE *f = fmemopen((void *)fig8, sizeof fig8 - 1, "r");
  struct scn_err err;
  struct scn_trace *tr = scn_trace_read("f.jsonl", f, &err);
  fclose(f);
  cr_assert_not_null(tr, "%s", err.text);
  cr_assert_eq(tr->n, 12);
  scn_trace_free(tr);
}

Test(timeline, read_first_stops_without_reading_the_rest) {
  char text[sizeof fig8 + 16];
  snprintf(text, sizeof text, "%s%s", fig8, "not json at all\n");
  FILE *f = fmemopen(text, strlen(text), "r");
  struct scn_err err;
  struct scn_trace *tr = scn_trace_read_first("f.jsonl", f, 5, &err);
  cr_assert_not_null(tr, "%s", err.text);
  cr_assert_eq(tr->n, 5);
  cr_assert_eq(tr->ev[4].ev, SCN_EV_REPLY);
  scn_trace_free(tr);
  rewind(f);
  cr_assert_null(scn_trace_read_first("f.jsonl", f, 0, &err));
  cr_assert_str_eq(err.text,
                   "f.jsonl:14: bad JSON at column 3: '[' or '{' expected "
                   "near 'not'");
  fclose(f);
}

#define E1 "{\"step\":1,\"t\":0,\"ev\":\"spawn\",\"actor\":\"kernel\"}\n"

Test(timeline, malformed_lines_are_refused) {
  refused(E1 "{\"step\":2,\n", "t.jsonl:2: bad JSON at column 10: "
                               "string or '}' expected near end of file");
  refused("[1,2]\n", "t.jsonl:1: expected a JSON object");
  refused("{\"t\":0,\"ev\":\"spawn\",\"actor\":\"kernel\"}\n",
          "t.jsonl:1: missing key \"step\"");
  refused("{\"step\":0,\"t\":0,\"ev\":\"spawn\",\"actor\":\"k\"}\n",
          "t.jsonl:1: \"step\" must be an integer of at least 1");
  refused("{\"step\":1.5,\"t\":0,\"ev\":\"spawn\",\"actor\":\"k\"}\n",
          "t.jsonl:1: \"step\" must be an integer of at least 1");
  refused("{\"step\":1,\"t\":-1,\"ev\":\"spawn\",\"actor\":\"k\"}\n",
          "t.jsonl:1: \"t\" must be an integer of at least 0");
  refused("{\"step\":1,\"t\":0,\"ev\":\"explode\",\"actor\":\"k\"}\n",
          "t.jsonl:1: unknown event \"explode\"");
  refused("{\"step\":1,\"t\":0,\"ev\":7,\"actor\":\"k\"}\n",
          "t.jsonl:1: \"ev\" must be a string");
  refused("{\"step\":1,\"t\":0,\"ev\":\"spawn\"}\n",
          "t.jsonl:1: missing key \"actor\"");
  refused("{\"step\":1,\"t\":0,\"ev\":\"spawn\",\"actor\":\"\"}\n",
          "t.jsonl:1: \"actor\" is empty");
  refused("{\"step\":1,\"t\":0,\"ev\":\"send\",\"actor\":\"a\",\"req\":-4}\n",
          "t.jsonl:1: \"req\" must be an integer of at least 0");
  refused("{\"step\":1,\"t\":0,\"ev\":\"send\",\"actor\":\"a\","
          "\"status\":\"ok\"}\n",
          "t.jsonl:1: \"status\" must be an integer of at least "
          "-9223372036854775808");
  refused("{\"step\":1,\"t\":0,\"ev\":\"spawn\",\"actor\":\"k\",\"step\":2}\n",
          "t.jsonl:1: bad JSON at column 47: duplicate object key near "
          "'\"step\"'");
  refused("{\"step\":1,\"t\":0,\"ev\":\"spawn\",\"actor\":\"k\","
          "\"svc\":\"a-service-name-well-over-the-limit\"}\n",
          "t.jsonl:1: \"svc\" is longer than 31 bytes");
}

Test(timeline, order_is_checked) {
  refused("{\"step\":2,\"t\":5,\"ev\":\"spawn\",\"actor\":\"k\"}\n"
          "{\"step\":1,\"t\":5,\"ev\":\"spawn\",\"actor\":\"k\"}\n",
          "t.jsonl:2: step 1 after step 2 (steps never go back)");
  refused("{\"step\":2,\"t\":5,\"ev\":\"spawn\",\"actor\":\"k\"}\n"
          "{\"step\":2,\"t\":4,\"ev\":\"spawn\",\"actor\":\"k\"}\n",
          "t.jsonl:2: time 4 ns after 5 ns (time never goes back)");
}

Test(timeline, limits_are_checked) {
  char *buf = malloc(SCN_TRACE_LINE_MAX + 64);
  memset(buf, ' ', SCN_TRACE_LINE_MAX + 1);
  strcpy(buf + SCN_TRACE_LINE_MAX + 1, "\n");
  refused(buf, "t.jsonl:1: line longer than 65536 bytes");
  FILE *f = fmemopen(buf, strlen(buf), "r");
  struct scn_err err;
  cr_assert_null(scn_trace_read("f.jsonl", f, &err));
  cr_assert_str_eq(err.text, "f.jsonl:1: line longer than 65536 bytes");
  fclose(f);
  free(buf);
  buf = malloc(100 * 80);
  buf[0] = '\0';
  for (int i = 0; i < SCN_TRACE_ACTORS_MAX; i++)
    sprintf(buf + strlen(buf),
            "{\"step\":1,\"t\":0,\"ev\":\"spawn\",\"actor\":\"p%d\"}\n", i);
  refused(buf, "t.jsonl:64: more than 64 actors");
  free(buf);
}

Test(timeline, nul_and_invalid_utf8_are_refused) {
  const char nul[] = "{\"step\":1,\"t\":0,\"ev\":\"spawn\",\"actor\":\"a\0\"}";
  struct scn_err err;
  cr_assert_null(scn_trace_parse("t.jsonl", nul, sizeof nul - 1, &err));
  cr_assert(strncmp(err.text, "t.jsonl:1: bad JSON", 19) == 0, "%s", err.text);
  refused("{\"step\":1,\"t\":0,\"ev\":\"spawn\",\"actor\":\"a\\u0000\"}",
          "t.jsonl:1: bad JSON at column 46: \\u0000 is not allowed without "
          "JSON_ALLOW_NUL near '\"a\\u0000\"'");
  refused("{\"step\":1,\"t\":0,\"ev\":\"spawn\",\"actor\":\"\xff\"}",
          "t.jsonl:1: bad JSON at column 38: unable to decode byte 0xff near "
          "'\"'");
}

static uint64_t next(uint64_t *x) {
  *x += 0x9e3779b97f4a7c15ull;
  uint64_t z = *x;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

Test(timeline, mutated_traces_are_read_or_refused) {
  const char alphabet[] = "{}[]\":,0123456789-.\\u \nabcdeklnprstv\xc3\xff";
  char buf[sizeof fig8];
  uint64_t x = 3;
  for (int i = 0; i < 3000; i++) {
    memcpy(buf, fig8, sizeof fig8);
    for (int k = 0; k < 1 + (int)(next(&x) % 4); k++)
      buf[next(&x) % (sizeof fig8 - 1)] =
          alphabet[next(&x) % (sizeof alphabet - 1)];
    struct scn_err err = {0};
    struct scn_trace *tr = scn_trace_parse("m", buf, sizeof fig8 - 1, &err);
    if (tr == NULL) {
      cr_assert(strncmp(err.text, "m:", 2) == 0, "%s", err.text);
      continue;
    }
    char *svg = render(tr, false);
    cr_assert_eq(count(svg, "</svg>"), 1);
    free(svg);
    scn_trace_free(tr);
  }
}
