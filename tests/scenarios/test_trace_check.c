/* The exactly-one-answer checker (scenarios/trace_check.c) on traces
 * written here, one per way the invariant can break.  Every event has step
 * 1 and time 1, so that any order of them is a trace whose steps and times
 * never go back. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "trace_check.h"

static char path[64];
static char err[512];
static struct trace_stats st;

static int check(const char *trace) {
  snprintf(path, sizeof path, "/tmp/uksim-trace-test-%d.jsonl", (int)getpid());
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs(trace, f);
  fclose(f);
  int r = trace_check(path, &st, err, sizeof err);
  unlink(path);
  return r;
}

#define SEND(n)                                                                \
  "{\"step\":1,\"t\":1,\"ev\":\"send\",\"actor\":\"ap\",\"req\":" #n "}\n"
#define RECV(n)                                                                \
  "{\"step\":1,\"t\":1,\"ev\":\"receive\",\"actor\":\"kvs\",\"req\":" #n "}\n"
#define REPLY(n)                                                               \
  "{\"step\":1,\"t\":1,\"ev\":\"reply\",\"actor\":\"kvs\",\"req\":" #n "}\n"
#define ERROR(n)                                                               \
  "{\"step\":1,\"t\":1,\"ev\":\"error\",\"actor\":\"kernel\",\"req\":" #n      \
  ",\"status\":-104}\n"
#define RESULT(n)                                                              \
  "{\"step\":1,\"t\":1,\"ev\":\"result\",\"actor\":\"ap\",\"req\":" #n "}\n"
#define EXIT(who) "{\"step\":1,\"t\":1,\"ev\":\"exit\",\"actor\":\"" who "\"}\n"

Test(trace_check, answered_requests_pass) {
  cr_expect_eq(check(SEND(1) SEND(2) RECV(1) REPLY(1) RECV(2) ERROR(2) RESULT(2)
                         RESULT(1)),
               0, "%s", err);
  cr_expect_eq(st.requests, 2);
  cr_expect_eq(st.errors, 1);
}

Test(trace_check, unanswered_request_fails) {
  cr_expect_eq(check(SEND(1) RECV(1)), -1);
  cr_expect(strstr(err, "request 1 of ap was never answered"), "%s", err);
}

Test(trace_check, unanswered_request_of_an_exited_client_passes) {
  cr_expect_eq(check(SEND(1) EXIT("ap")), 0, "%s", err);
  cr_expect_eq(st.dropped, 1);
}

Test(trace_check, double_delivery_fails) {
  cr_expect_eq(check(SEND(1) RECV(1) RECV(1) REPLY(1) RESULT(1)), -1);
  cr_expect(strstr(err, "delivered to a server twice"), "%s", err);
}

Test(trace_check, double_result_fails) {
  cr_expect_eq(check(SEND(1) RECV(1) REPLY(1) RESULT(1) RESULT(1)), -1);
  cr_expect(strstr(err, "two results"), "%s", err);
}

Test(trace_check, double_answer_fails) {
  cr_expect_eq(check(SEND(1) RECV(1) REPLY(1) ERROR(1) RESULT(1)), -1);
  cr_expect(strstr(err, "answered twice"), "%s", err);
}

Test(trace_check, result_without_send_fails) {
  cr_expect_eq(check(RESULT(7)), -1);
  cr_expect(strstr(err, "never sent"), "%s", err);
}

Test(trace_check, garbage_line_fails_with_its_line_number) {
  cr_expect_eq(check(SEND(1) "not json\n"), -1);
  cr_expect(strstr(err, ":2: bad JSON"), "%s", err);
}

Test(trace_check, event_breaking_the_format_fails) {
  cr_expect_eq(check(SEND(1) "{\"step\":1,\"t\":1,\"ev\":\"teleport\","
                             "\"actor\":\"ap\"}\n"),
               -1);
  cr_expect(strstr(err, ":2: unknown event \"teleport\""), "%s", err);
}

Test(trace_check, request_event_without_number_fails) {
  cr_expect_eq(check("{\"step\":1,\"t\":1,\"ev\":\"send\",\"actor\":\"ap\"}\n"),
               -1);
  cr_expect(strstr(err, ":1: request 0: a request event without a request"),
            "%s", err);
}

Test(trace_check, missing_file_fails) {
  cr_expect_eq(trace_check("/nonexistent/trace.jsonl", &st, err, sizeof err),
               -1);
  cr_expect(strstr(err, "cannot open"), "%s", err);
}

#define HALT "{\"step\":1,\"t\":1,\"ev\":\"halt\",\"actor\":\"kernel\"}\n"

/* A halt traces nothing after it: a request its server replied to just
 * before has no result event, and was not lost (a caching kvs's flush to
 * itself, integration-kvs_replace once on CI). */
Test(trace_check, replied_request_cut_by_the_halt_passes) {
  cr_expect_eq(check(SEND(1) RECV(1) REPLY(1) HALT), 0, "%s", err);
  cr_expect_eq(st.dropped, 1);
}

/* ... but one the server never answered is missing, halt or not. */
Test(trace_check, unreplied_request_at_the_halt_fails) {
  cr_expect_eq(check(SEND(1) RECV(1) HALT), -1);
  cr_expect(strstr(err, "request 1 of ap was never answered"), "%s", err);
}

/* Without a halt, a reply is not a result. */
Test(trace_check, replied_request_without_a_halt_fails) {
  cr_expect_eq(check(SEND(1) RECV(1) REPLY(1)), -1);
  cr_expect(strstr(err, "request 1 of ap was never answered"), "%s", err);
}

#define KSEND(n)                                                               \
  "{\"step\":1,\"t\":1,\"ev\":\"send\",\"actor\":\"kernel\",\"req\":" #n "}\n"

/* The mount driver's own requests (a Tclunk nobody waits for) end with the
 * kernel when it halts, as a process's end with the process ... */
Test(trace_check, kernel_request_cut_by_the_halt_passes) {
  cr_expect_eq(check(KSEND(1) RECV(1) HALT), 0, "%s", err);
  cr_expect_eq(st.dropped, 1);
}

/* ... but without a halt one the server never answered is missing. */
Test(trace_check, unanswered_kernel_request_fails) {
  cr_expect_eq(check(KSEND(1) RECV(1)), -1);
  cr_expect(strstr(err, "request 1 of kernel was never answered"), "%s", err);
}
