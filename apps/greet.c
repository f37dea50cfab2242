/* greet: the client of hello-family servers (servers/hello.c and the
 * servers `uksim new-server` writes), for scenarios and students.
 *
 * Op 0 ("greet") carries a NUL-terminated name in the control ICA and must
 * come back as "hello, NAME".  greet sends --count of them, named
 * "NAME-0" .. "NAME-<N-1>" (NAME: this process's name), and checks every
 * answer.  --expect-count N then asks op 1 ("count"), which a server that
 * keeps state answers with the number of greetings it has served, as 8
 * bytes: that number must be N.  A server whose state is lost across a
 * replacement answers less, and greet says so.
 *
 * Exit status: 0 every answer was right; 1 an answer was wrong or a call
 * failed (named on stderr); 2 a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uksim/ap.h"
#include "uksim/num.h"

/* Most greetings one run sends; more would only make scenarios slow. */
#define GREET_COUNT_MAX 1000000
/* Bytes of the control ICA: a name, the greeting and its terminator. */
#define GREET_ICA_SIZE 4096

enum greet_op { GREET_OP = 0, GREET_COUNT = 1 };

struct greet_opts {
  const char *service;
  uint64_t count;
  uint64_t expect; /* the count op's answer, when checked */
  int check;       /* --expect-count given */
};

/* Calls op on svc with text in a fresh control ICA; the answer's first
 * len bytes go to out.  The server's status, or a call's -errno. */
static int call(uint32_t svc, uint32_t op, const char *text, char *out,
                size_t len) {
  uk_ica ctl;
  ap_result res;
  int r = ica_create(GREET_ICA_SIZE, KABI_ICA_CONTROL, &ctl);
  if (r < 0)
    return r;
  snprintf(ctl.base, ctl.size, "%s", text);
  if ((r = ap_call(svc, op, &ctl, NULL, &res)) < 0) {
    ica_release(&ctl);
    return r;
  }
  if (res.status == 0 && res.ctl.base && res.ctl.size >= len)
    memcpy(out, res.ctl.base, len);
  else if (res.status == 0)
    res.status = -EPROTO; /* an answer without its ICA */
  ica_release(&res.ctl);
  ica_release(&res.data);
  return res.status;
}

/* Sends greeting i and checks the answer.  0 or 1 (wrong, said why). */
static int greet_one(uint32_t svc, const char *me, uint64_t i) {
  char name[64], want[80], got[80];
  snprintf(name, sizeof name, "%s-%llu", me, (unsigned long long)i);
  snprintf(want, sizeof want, "hello, %s", name);
  int r = call(svc, GREET_OP, name, got, sizeof got);
  got[sizeof got - 1] = '\0';
  if (r == 0 && strcmp(got, want) == 0)
    return 0;
  if (r < 0)
    fprintf(stderr, "greet: greeting %s: %s\n", name, strerror(-r));
  else
    fprintf(stderr, "greet: greeting %s: answered \"%s\"\n", name, got);
  return 1;
}

/* Asks the count op and compares it with want.  0 or 1. */
static int check_count(uint32_t svc, uint64_t want) {
  uint64_t got = 0;
  int r = call(svc, GREET_COUNT, "", (char *)&got, sizeof got);
  if (r == 0 && got == want)
    return 0;
  if (r < 0)
    fprintf(stderr, "greet: count: %s\n", strerror(-r));
  else
    fprintf(stderr, "greet: count is %llu, expected %llu\n",
            (unsigned long long)got, (unsigned long long)want);
  return 1;
}

static void usage(FILE *f) {
  fprintf(f, "usage: greet [--service NAME] [--count N] "
             "[--expect-count N]\n");
}

/* 0, or 2 after a usage message. */
static int parse(int argc, char **argv, struct greet_opts *o) {
  static const struct option longopts[] = {
      {"service", required_argument, NULL, 's'},
      {"count", required_argument, NULL, 'c'},
      {"expect-count", required_argument, NULL, 'e'},
      {"help", no_argument, NULL, 'h'},
      {0}};
  int c;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    if (c == 's')
      o->service = optarg;
    else if (c == 'c' && num_opt_u64("greet", "--count", optarg, 0,
                                     GREET_COUNT_MAX, 0, &o->count) == 0)
      continue;
    else if (c == 'e' && num_opt_u64("greet", "--expect-count", optarg, 0,
                                     UINT64_MAX, 0, &o->expect) == 0)
      o->check = 1;
    else {
      usage(c == 'h' ? stdout : stderr);
      return c == 'h' ? -1 : 2;
    }
  }
  if (optind < argc) {
    usage(stderr);
    return 2;
  }
  return 0;
}

int main(int argc, char **argv) {
  struct greet_opts o = {.service = "hello", .count = 10};
  const char *me = getenv("UKSIM_NAME");
  int r = parse(argc, argv, &o);
  if (r != 0)
    return r < 0 ? 0 : r;
  uint32_t svc;
  if ((r = ap_lookup(o.service, &svc)) < 0) {
    fprintf(stderr, "greet: lookup %s: %s\n", o.service, strerror(-r));
    return 1;
  }
  for (uint64_t i = 0; i < o.count; i++)
    if (greet_one(svc, me ? me : "greet", i) != 0)
      return 1;
  if (o.check && check_count(svc, o.expect) != 0)
    return 1;
  printf("greet: %llu greetings answered\n", (unsigned long long)o.count);
  return 0;
}
