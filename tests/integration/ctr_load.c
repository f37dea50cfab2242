/* Load for ctr_srv: --count N increments, each answer checked to grow;
 * --tolerate-reset accepts -ECONNRESET (the server failed while holding the
 * request); --expect N ends with a get that must answer N.  Prints
 * "ctr_load NAME: OK incrs, R resets, last L" and exits 0, or 1 on any
 * other error or a wrong answer. */
#include <errno.h>
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

int main(int argc, char **argv) {
  long count = 100, expect = -1;
  int tolerate = 0;
  const char *svcname = "ctr", *me = getenv("UKSIM_NAME");
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--count") && i + 1 < argc)
      count = atol(argv[++i]);
    else if (!strcmp(argv[i], "--expect") && i + 1 < argc)
      expect = atol(argv[++i]);
    else if (!strcmp(argv[i], "--service") && i + 1 < argc)
      svcname = argv[++i];
    else if (!strcmp(argv[i], "--tolerate-reset"))
      tolerate = 1;
  }
  uint32_t svc;
  int r = ap_lookup(svcname, &svc);
  if (r < 0) {
    fprintf(stderr, "ctr_load: lookup %s: %s\n", svcname, strerror(-r));
    return 1;
  }
  uint64_t last = 0, v = 0;
  long ok = 0, resets = 0;
  for (long i = 0; i < count; i++) {
    r = call(svc, 0, &v);
    if (r == -ECONNRESET && tolerate) {
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
  printf("ctr_load %s: %ld incrs, %ld resets, last %llu\n", me ? me : "", ok,
         resets, (unsigned long long)last);
  if (expect >= 0) {
    r = call(svc, 1, &v);
    if (r < 0 || v != (uint64_t)expect) {
      fprintf(stderr, "ctr_load: count is %llu (%s), expected %ld\n",
              (unsigned long long)v, r < 0 ? strerror(-r) : "ok", expect);
      return 1;
    }
  }
  return 0;
}
