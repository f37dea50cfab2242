/* shout: the client of lab 04's new request, op 2 ("shout") of a server
 * written by `uksim new-server` and extended as the lab says.  Op 2 takes
 * a NUL-terminated name in the control ICA and must answer, in the same
 * ICA, "HELLO, NAME" in capitals.  shout sends --count of them, names
 * "shout-0" .. "shout-<N-1>", checks every answer, and stops at the first
 * wrong one.
 *
 *   cc shout.c -o shout $(pkg-config --cflags --libs uksim)
 *   shout [--service NAME] [--count N]     (a scenario app's --args)
 *
 * Exit status: 0 every answer was right; 1 an answer was wrong or a call
 * failed (named on stderr); 2 a usage error.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uksim/ap.h>

/* The op the lab adds after the skeleton's greet (0) and count (1). */
#define OP_SHOUT 2
/* Most names one run sends, and the control ICA's bytes. */
#define SHOUT_COUNT_MAX 100000
#define SHOUT_ICA_SIZE 4096

/* Sends name i and checks the answer: 0, or 1 after saying why. */
static int shout_one(uint32_t svc, unsigned long i) {
  char want[64], got[64];
  uk_ica ctl;
  ap_result res;
  snprintf(want, sizeof want, "HELLO, SHOUT-%lu", i);
  int r = ica_create(SHOUT_ICA_SIZE, KABI_ICA_CONTROL, &ctl);
  if (r < 0)
    return fprintf(stderr, "shout: ica_create: %s\n", strerror(-r)), 1;
  snprintf(ctl.base, ctl.size, "shout-%lu", i);
  if ((r = ap_call(svc, OP_SHOUT, &ctl, NULL, &res)) < 0) {
    ica_release(&ctl);
    return fprintf(stderr, "shout: call %lu: %s\n", i, strerror(-r)), 1;
  }
  snprintf(got, sizeof got, "%s",
           res.status == 0 && res.ctl.base ? (char *)res.ctl.base : "");
  ica_release(&res.ctl);
  ica_release(&res.data);
  if (res.status == 0 && strcmp(got, want) == 0)
    return 0;
  if (res.status < 0)
    fprintf(stderr, "shout: name %lu: %s\n", i, strerror(-res.status));
  else
    fprintf(stderr, "shout: name %lu: answered \"%s\"\n", i, got);
  return 1;
}

int main(int argc, char **argv) {
  const char *service = "counter";
  unsigned long count = 10;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--service") == 0)
      service = argv[i + 1];
    else if (strcmp(argv[i], "--count") == 0)
      count = strtoul(argv[i + 1], NULL, 10);
    else
      return fprintf(stderr, "usage: shout [--service S] [--count N]\n"), 2;
  }
  if (argc % 2 == 0 || count > SHOUT_COUNT_MAX)
    return fprintf(stderr, "usage: shout [--service S] [--count N]\n"), 2;
  uint32_t svc;
  int r = ap_lookup(service, &svc);
  if (r < 0)
    return fprintf(stderr, "shout: lookup %s: %s\n", service, strerror(-r)), 1;
  for (unsigned long i = 0; i < count; i++)
    if (shout_one(svc, i) != 0)
      return 1;
  printf("shout: %lu shouts answered\n", count);
  return 0;
}
