/* Unit tests for trace files (scenarios/scn_trace.h): the binary form and
 * its round trip with JSON Lines, format detection, streaming, the text a
 * person reads, and the hash that compares runs.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scn_trace.h"

TestSuite(trace_io, .timeout = 30);

/* Every key, an escaped text, a status but no req, a req but no status,
 * and the halt event; in the kernel's key order, so that writing it back
 * gives the same bytes. */
static const char trace[] =
    "{\"step\":1,\"t\":0,\"ev\":\"spawn\",\"actor\":\"kernel\","
    "\"peer\":\"kvs\",\"text\":\"kvs\"}\n"
    "{\"step\":42,\"t\":1250000,\"ev\":\"send\",\"actor\":\"ap1\","
    "\"peer\":\"kvs\",\"svc\":\"kvs\",\"req\":65537,\"op\":\"kvs.put\"}\n"
    "{\"step\":43,\"t\":1250100,\"ev\":\"reply\",\"actor\":\"kvs\","
    "\"peer\":\"ap1\",\"svc\":\"kvs\",\"req\":65537,\"op\":\"kvs.put\","
    "\"status\":-2}\n"
    "{\"step\":57,\"t\":2000000,\"ev\":\"prepare\",\"actor\":\"kvs\","
    "\"svc\":\"kvs\",\"status\":0}\n"
    "{\"step\":58,\"t\":2000000,\"ev\":\"fault\",\"actor\":\"kvs.2\","
    "\"text\":\"say \\\"hi\\\"\\\\ \\u000a \xc3\xa9\"}\n"
    "{\"step\":99,\"t\":9000000000,\"ev\":\"halt\",\"actor\":\"kernel\","
    "\"status\":0,\"text\":\"0 ICAs live\"}\n";

static char path[64];

static void make_path(void) {
  snprintf(path, sizeof path, "/tmp/uksim-trace-io-%d", (int)getpid());
}

static void remove_path(void) {
  unlink(path);
}

static void write_bytes(const void *buf, size_t len) {
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f);
  cr_assert_eq(fwrite(buf, 1, len, f), len);
  fclose(f);
}

static struct scn_trace *parse(const char *text) {
  struct scn_err err = {0};
  struct scn_trace *tr = scn_trace_parse("t", text, strlen(text), &err);
  cr_assert_not_null(tr, "%s", err.text);
  return tr;
}

/* The JSON Lines of tr, in a new string. */
static char *to_json(const struct scn_trace *tr) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  cr_assert_eq(scn_trace_write_json(tr, f), 0);
  fclose(f);
  return buf;
}

Test(trace_io, json_written_back_is_the_same_bytes) {
  struct scn_trace *tr = parse(trace);
  char *out = to_json(tr);
  cr_expect_str_eq(out, trace);
  free(out);
  scn_trace_free(tr);
}

Test(trace_io, binary_round_trip_equals_the_json_trace, .init = make_path,
     .fini = remove_path) {
  struct scn_err err = {0};
  struct scn_trace *tr = parse(trace), *back;
  enum scn_trace_format fmt;
  cr_assert_eq(scn_trace_write_pb(tr, path), 0);
  cr_assert_eq(scn_trace_format(path, &fmt, &err), 0);
  cr_expect_eq(fmt, SCN_TRACE_PB);
  back = scn_trace_load(path, &err);
  cr_assert_not_null(back, "%s", err.text);
  cr_assert_eq(back->n, tr->n);
  for (size_t i = 0; i < tr->n; i++) {
    struct scn_event a = tr->ev[i], b = back->ev[i];
    a.line = b.line = 0; /* a binary trace has no lines */
    cr_expect_eq(memcmp(&a, &b, sizeof a), 0, "event %zu differs", i + 1);
  }
  cr_expect_eq(back->nactors, tr->nactors);
  char *out = to_json(back);
  cr_expect_str_eq(out, trace);
  free(out);
  scn_trace_free(back);
  scn_trace_free(tr);
}

Test(trace_io, load_reads_json_lines_too, .init = make_path,
     .fini = remove_path) {
  struct scn_err err = {0};
  enum scn_trace_format fmt;
  write_bytes(trace, strlen(trace));
  cr_assert_eq(scn_trace_format(path, &fmt, &err), 0);
  cr_expect_eq(fmt, SCN_TRACE_JSONL);
  struct scn_trace *tr = scn_trace_load(path, &err);
  cr_assert_not_null(tr, "%s", err.text);
  cr_expect_eq(tr->n, 6);
  cr_expect_eq(tr->ev[5].ev, SCN_EV_HALT);
  scn_trace_free(tr);
}

Test(trace_io, empty_trace_round_trips, .init = make_path,
     .fini = remove_path) {
  struct scn_err err = {0};
  struct scn_trace *tr = parse("");
  cr_assert_eq(scn_trace_write_pb(tr, path), 0);
  scn_trace_free(tr);
  tr = scn_trace_load(path, &err);
  cr_assert_not_null(tr, "%s", err.text);
  cr_expect_eq(tr->n, 0);
  scn_trace_free(tr);
}

static void load_refused(const void *buf, size_t len, const char *want) {
  struct scn_err err = {0};
  write_bytes(buf, len);
  struct scn_trace *tr = scn_trace_load(path, &err);
  cr_expect_null(tr);
  cr_expect(strstr(err.text, want), "%s", err.text);
  scn_trace_free(tr);
}

Test(trace_io, bad_binary_traces_are_refused, .init = make_path,
     .fini = remove_path) {
  struct scn_trace *tr = parse(trace);
  cr_assert_eq(scn_trace_write_pb(tr, path), 0);
  scn_trace_free(tr);
  FILE *f = fopen(path, "rb");
  unsigned char buf[4096];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  /* Cut short: protobuf-c refuses the wire format. */
  load_refused(buf, n - 5, "cannot unpack");
  /* Another magic. */
  buf[2] = 'X';
  load_refused(buf, n, "not a uksim trace");
  load_refused("\x00\x01garbage", 9, "neither JSON Lines nor a binary");
}

Test(trace_io, bad_binary_events_are_refused_by_number, .init = make_path,
     .fini = remove_path) {
  struct scn_trace *tr = parse(trace);
  strcpy(tr->ev[1].actor, ""); /* a required key left empty */
  cr_assert_eq(scn_trace_write_pb(tr, path), 0);
  scn_trace_free(tr);
  struct scn_err err = {0};
  cr_expect_null(scn_trace_load(path, &err));
  cr_expect(strstr(err.text, ": event 2: \"actor\" is empty"), "%s", err.text);
}

Test(trace_io, missing_file_is_refused) {
  struct scn_err err = {0};
  cr_expect_null(scn_trace_load("/nonexistent/t.jsonl", &err));
  cr_expect(strstr(err.text, "cannot open"), "%s", err.text);
}

/* Streaming ---------------------------------------------------------------- */

static int count(const struct scn_event *e, void *arg) {
  (void)e;
  return ++*(int *)arg == 3 ? 7 : 0;
}

static int count_all(const struct scn_event *e, void *arg) {
  (void)e;
  ++*(int *)arg;
  return 0;
}

Test(trace_io, each_passes_events_and_stops_when_asked, .init = make_path,
     .fini = remove_path) {
  struct scn_err err = {0};
  int n = 0;
  write_bytes(trace, strlen(trace));
  cr_expect_eq(scn_trace_each(path, count, &n, &err), 7);
  cr_expect_eq(n, 3);
  n = 0;
  cr_expect_eq(scn_trace_each(path, count_all, &n, &err), 0);
  cr_expect_eq(n, 6);
}

Test(trace_io, each_reports_the_first_bad_line, .init = make_path,
     .fini = remove_path) {
  static const char bad[] = "{\"step\":2,\"t\":0,\"ev\":\"spawn\",\"actor\":"
                            "\"kernel\"}\n"
                            "{\"step\":1,\"t\":0,\"ev\":\"spawn\",\"actor\":"
                            "\"kernel\"}\n";
  struct scn_err err = {0};
  int n = 0;
  write_bytes(bad, strlen(bad));
  cr_expect_eq(scn_trace_each(path, count_all, &n, &err), -1);
  cr_expect_eq(n, 1);
  cr_expect(strstr(err.text, ":2: step 1 after step 2"), "%s", err.text);
}

/* Text ----------------------------------------------------------------------
 */

static void text_of(size_t i, char *buf, size_t len) {
  struct scn_trace *tr = parse(trace);
  scn_event_text(&tr->ev[i], buf, len);
  scn_trace_free(tr);
}

Test(trace_io, text_is_one_aligned_line) {
  char buf[SCN_EVENT_TEXT_MAX];
  text_of(1, buf, sizeof buf);
  cr_expect_str_eq(buf, "[   42]    1.250ms  ap1 -> kvs          send req "
                        "65537 kvs.put");
  text_of(2, buf, sizeof buf);
  cr_expect_str_eq(buf, "[   43]    1.250ms  kvs -> ap1          reply req "
                        "65537 kvs.put: status -2 (ENOENT)");
  text_of(3, buf, sizeof buf);
  cr_expect_str_eq(buf, "[   57]    2.000ms  kvs                 sees the "
                        "flag, saves its state (prepare)");
  text_of(0, buf, sizeof buf);
  cr_expect_str_eq(buf, "[    1]    0.000ms  kernel              starts kvs, "
                        "running kvs (spawn)");
  text_of(5, buf, sizeof buf);
  cr_expect_str_eq(buf, "[   99] 9000.000ms  kernel              halts the "
                        "machine, 0 ICAs live (halt)");
  cr_expect_null(strchr(buf, '\n'));
}

Test(trace_io, text_is_cut_to_the_buffer) {
  char buf[16];
  memset(buf, 'x', sizeof buf);
  text_of(1, buf, 10);
  cr_expect_str_eq(buf, "[   42]  ");
  cr_expect_eq(buf[10], 'x');
  text_of(1, buf, 0); /* writes nothing */
  cr_expect_eq(buf[0], '[');
}

Test(trace_io, every_event_has_words) {
  char buf[SCN_EVENT_TEXT_MAX];
  struct scn_event e = {.step = 1};
  strcpy(e.actor, "kvs");
  for (int ev = 0; ev < SCN_EV_COUNT; ev++) {
    e.ev = (enum scn_ev)ev;
    scn_event_text(&e, buf, sizeof buf);
    cr_expect(strlen(buf) > 30, "%s", buf);
  }
}

/* Hash ----------------------------------------------------------------------
 */

Test(trace_io, hash_is_sha256_of_the_bytes, .init = make_path,
     .fini = remove_path) {
  char hex[65], again[65];
  write_bytes("abc", 3);
  cr_assert_eq(scn_trace_hash(path, hex), 0);
  cr_expect_str_eq(
      hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  write_bytes(trace, strlen(trace));
  cr_assert_eq(scn_trace_hash(path, hex), 0);
  cr_assert_eq(scn_trace_hash(path, again), 0);
  cr_expect_str_eq(hex, again);
}

Test(trace_io, hash_changes_with_one_byte, .init = make_path,
     .fini = remove_path) {
  char a[65], b[65];
  char copy[sizeof trace];
  memcpy(copy, trace, sizeof trace);
  write_bytes(copy, strlen(copy));
  cr_assert_eq(scn_trace_hash(path, a), 0);
  copy[strlen(copy) / 2] ^= 1;
  write_bytes(copy, strlen(copy));
  cr_assert_eq(scn_trace_hash(path, b), 0);
  cr_expect_str_neq(a, b);
}

Test(trace_io, hash_of_a_missing_file_is_an_error) {
  char hex[65];
  cr_expect_eq(scn_trace_hash("/nonexistent/t", hex), -ENOENT);
}

/* Any bytes -----------------------------------------------------------------
 */

Test(trace_io, mutated_binary_traces_are_read_or_refused, .init = make_path,
     .fini = remove_path) {
  struct scn_trace *tr = parse(trace);
  cr_assert_eq(scn_trace_write_pb(tr, path), 0);
  scn_trace_free(tr);
  FILE *f = fopen(path, "rb");
  unsigned char good[4096], buf[4096];
  size_t n = fread(good, 1, sizeof good, f);
  fclose(f);
  srand(7);
  for (int round = 0; round < 20000; round++) {
    struct scn_err err = {0};
    memcpy(buf, good, n);
    for (int k = 0; k < 1 + round % 4; k++)
      buf[(size_t)rand() % n] = (unsigned char)rand();
    tr = scn_trace_parse_pb("t", buf, (size_t)rand() % (n + 1), &err);
    cr_assert(tr != NULL || err.text[0] != '\0');
    scn_trace_free(tr);
  }
}
