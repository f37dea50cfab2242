/* Load for ctr_srv: --count N increments (--forever: until SIGTERM), each
 * answer checked to grow; --tolerate-reset accepts -ECONNRESET (the server
 * failed while holding the request), --tolerate-intr -EINTR (a call a
 * failover cut short after its side effect, sim-kernel/kadopt.c); --expect N
 * ends with a get that must answer N, --expect-range LO:HI one that must answer
 * LO..HI.  Prints "ctr_load NAME: OK incrs, R resets, last L" (not with
 * --quiet: a benchmark's check) and exits 0, or 1 on any other error or a
 * wrong answer. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uksim/ap.h"

static int call(uint32_t svc, uint32_t op, uint64_t *val) {
  uk_ica ctl;
  ap_result res;
  int r = ica_create(4096, KABI_ICA_CONTROL, &ctl);
  if (r < 0)
    return r;
  r = ap_call(svc, op, &ctl, NULL, &res);
  if (r < 0) {
    ica_release(&ctl);
    return r;
  }
  if (res.status == 0 && res.ctl.base)
    memcpy(val, res.ctl.base, sizeof *val);
  ica_release(&res.ctl);
  ica_release(&res.data);
  return res.status;
}

static volatile sig_atomic_t stop;

static void on_term(int sig) {
  (void)sig;
  stop = 1; /* finish the call in flight, then report */
}

int main(int argc, char **argv) {
  long count = 100, lo = -1, hi = -1;
  int tolerate = 0, tolerate_intr = 0, forever = 0, quiet = 0;
  const char *svcname = "ctr", *me = getenv("UKSIM_NAME");
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--count") && i + 1 < argc)
      count = atol(argv[++i]);
    else if (!strcmp(argv[i], "--expect") && i + 1 < argc)
      lo = hi = atol(argv[++i]);
    else if (!strcmp(argv[i], "--expect-range") && i + 1 < argc &&
             sscanf(argv[i + 1], "%ld:%ld", &lo, &hi) == 2)
      i++;
    else if (!strcmp(argv[i], "--forever"))
      forever = 1;
    else if (!strcmp(argv[i], "--service") && i + 1 < argc)
      svcname = argv[++i];
    else if (!strcmp(argv[i], "--tolerate-reset"))
      tolerate = 1;
    else if (!strcmp(argv[i], "--tolerate-intr"))
      tolerate_intr = 1;
    else if (!strcmp(argv[i], "--quiet"))
      quiet = 1;
  }
  struct sigaction sa = {.sa_handler = on_term, .sa_flags = SA_RESTART};
  sigaction(SIGTERM, &sa, NULL);
  uint32_t svc;
  int r = ap_lookup(svcname, &svc);
  if (r < 0) {
    fprintf(stderr, "ctr_load: lookup %s: %s\n", svcname, strerror(-r));
    return 1;
  }
  uint64_t last = 0, v = 0;
  long ok = 0, resets = 0;
  for (long i = 0; (forever || i < count) && !stop; i++) {
    r = call(svc, 0, &v);
    if ((r == -ECONNRESET && tolerate) || (r == -EINTR && tolerate_intr)) {
      resets++;
      continue;
    }
    if (r < 0 || v <= last) {
      fprintf(stderr, "ctr_load: incr %ld: %s, value %llu after %llu\n", i,
              r < 0 ? strerror(-r) : "ok", (unsigned long long)v,
              (unsigned long long)last);
      return 1;
    }
    last = v;
    ok++;
  }
  if (!quiet)
    printf("ctr_load %s: %ld incrs, %ld resets, last %llu\n", me ? me : "", ok,
           resets, (unsigned long long)last);
  if (lo >= 0) {
    r = call(svc, 1, &v);
    if (r < 0 || v < (uint64_t)lo || v > (uint64_t)hi) {
      fprintf(stderr, "ctr_load: count is %llu (%s), expected %ld..%ld\n",
              (unsigned long long)v, r < 0 ? strerror(-r) : "ok", lo, hi);
      return 1;
    }
  }
  return 0;
}
