/* uksim trace: look at a kernel event trace, JSON Lines or binary
 * (scenarios/README.md "Trace format"): as text a person can follow, as
 * JSON Lines, converted to the binary form, hashed, or checked for the
 * exactly-one-answer invariant.  Reading and text come from libscn
 * (scenarios/scn_trace.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "scn_trace.h"
#include "trace_check.h"

static void trace_usage(FILE *f) {
  fprintf(f, "usage: uksim trace [--json] FILE\n"
             "       uksim trace --binary OUT FILE\n"
             "       uksim trace --hash FILE\n"
             "       uksim trace --check FILE\n\n"
             "Print a kernel event trace (JSON Lines or binary, told apart by "
             "its first\nbyte) one event a line in plain words, or with --json "
             "as JSON Lines.\n--binary writes it to OUT in the binary form "
             "(protobuf-c).  --hash prints\nthe SHA-256 of the file: two runs "
             "wrote the same trace when it is equal.\n--check checks the "
             "exactly-one-answer invariant: every request sent is\ndelivered "
             "to a server at most once and answered exactly once, unless "
             "its\nclient exited first.\n\nExit 0; 1 when the check fails or "
             "the output cannot be written; 2 on bad\nusage or a bad trace.\n");
}

static int print_text(const struct scn_event *e, void *arg) {
  char line[SCN_EVENT_TEXT_MAX];
  scn_event_text(e, line, sizeof line);
  return fprintf(arg, "%s\n", line) < 0 ? 1 : 0;
}

static int print_json(const struct scn_event *e, void *arg) {
  return scn_event_json(e, arg) < 0 ? 1 : 0;
}

/* Prints every event of path with fn; the exit status. */
static int print(const char *path, scn_trace_fn *fn) {
  struct scn_err err;
  int rc = scn_trace_each(path, fn, stdout, &err);
  if (rc < 0) {
    fprintf(stderr, "uksim trace: %s\n", err.text);
    return 2;
  }
  if (rc > 0 || fflush(stdout) != 0) {
    fprintf(stderr, "uksim trace: cannot write: %s\n", strerror(errno));
    return 1;
  }
  return 0;
}

static int to_binary(const char *out, const char *path) {
  struct scn_err err;
  struct scn_trace *tr = scn_trace_load(path, &err);
  int rc;
  if (tr == NULL) {
    fprintf(stderr, "uksim trace: %s\n", err.text);
    return 2;
  }
  rc = scn_trace_write_pb(tr, out);
  scn_trace_free(tr);
  if (rc < 0) {
    fprintf(stderr, "uksim trace: %s: %s\n", out, strerror(-rc));
    return 1;
  }
  return 0;
}

static int hash(const char *path) {
  char hex[65];
  int rc = scn_trace_hash(path, hex);
  if (rc < 0) {
    fprintf(stderr, "uksim trace: %s: %s\n", path, strerror(-rc));
    return 2;
  }
  printf("%s  %s\n", hex, path);
  return 0;
}

static int check(const char *path) {
  struct trace_stats st;
  char err[512];
  if (trace_check(path, &st, err, sizeof err) < 0) {
    fprintf(stderr, "uksim trace: %s\n", err);
    return 1;
  }
  printf("%llu events, %llu requests: every one answered exactly once "
         "(%llu by a kernel error, %llu dropped with their client: it exited, "
         "or the halt ended it)\n",
         (unsigned long long)st.events, (unsigned long long)st.requests,
         (unsigned long long)st.errors, (unsigned long long)st.dropped);
  return 0;
}

int cmd_trace(int argc, char **argv) {
  if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    trace_usage(stdout);
    return 0;
  }
  if (argc == 2 && argv[1][0] != '-')
    return print(argv[1], print_text);
  if (argc == 3 && !strcmp(argv[1], "--json"))
    return print(argv[2], print_json);
  if (argc == 3 && !strcmp(argv[1], "--hash"))
    return hash(argv[2]);
  if (argc == 3 && !strcmp(argv[1], "--check"))
    return check(argv[2]);
  if (argc == 4 && !strcmp(argv[1], "--binary"))
    return to_binary(argv[2], argv[3]);
  trace_usage(stderr);
  return 2;
}
