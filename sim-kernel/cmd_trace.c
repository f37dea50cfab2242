/* uksim trace: look at a kernel event trace (JSON Lines). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "trace_check.h"

static void trace_usage(FILE *f) {
  fprintf(f, "usage: uksim trace --check FILE\n\n"
             "Check the exactly-one-answer invariant on a kernel event "
             "trace (written\nwith --trace-file): every request sent is "
             "delivered to a server at most\nonce and answered exactly "
             "once, unless its client exited first.\nExit 0 when it holds, "
             "1 when it does not, 2 on bad usage.\n");
}

int cmd_trace(int argc, char **argv) {
  if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    trace_usage(stdout);
    return 0;
  }
  if (argc != 3 || strcmp(argv[1], "--check") != 0) {
    trace_usage(stderr);
    return 2;
  }
  struct trace_stats st;
  char err[512];
  if (trace_check(argv[2], &st, err, sizeof err) < 0) {
    fprintf(stderr, "uksim trace: %s\n", err);
    return 1;
  }
  printf("%llu events, %llu requests: every one answered exactly once "
         "(%llu by a kernel error, %llu dropped with their exited client)\n",
         (unsigned long long)st.events, (unsigned long long)st.requests,
         (unsigned long long)st.errors, (unsigned long long)st.dropped);
  return 0;
}
