/* An application process that takes all it can, for the tests of the
 * per-process quotas and of the kernel's descriptor use (test_hostile.c).
 * Exit 0 when the kernel behaved as the mode expects, 1 otherwise, with
 * the reason on stderr.
 *
 *   ap_hog icas N MS     create N ICAs (each must succeed), hold them MS ms
 *   ap_hog quota-icas MS create ICAs until refused: exactly
 *                        UK_PROC_ICAS_MAX, then -EDQUOT; hold them MS ms
 *   ap_hog quota-reqs    send to "echo" without collecting until refused
 *                        (-EDQUOT, within UK_PROC_REQS_MAX), then collect
 *                        every answer
 *   ap_hog empty         send an empty packet (the kernel ends us), then
 *                        try to live on for 10 s
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "uksim/ap.h"
#include "uksim/kdata.h"

static int fail(const char *what, int r) {
  fprintf(stderr, "ap_hog: %s: %s\n", what, r < 0 ? strerror(-r) : "no");
  return 1;
}

/* Creates up to n small ICAs; returns how many, *err the first refusal. */
static int create_icas(uk_ica *icas, int n, int *err) {
  int i;
  *err = 0;
  for (i = 0; i < n; i++)
    if ((*err = ica_create(4096, KABI_ICA_DATA, &icas[i])) < 0)
      break;
  return i;
}

static int hold(uint64_t ms) {
  int r = ap_sleep(ms * 1000000ull);
  return r < 0 ? fail("sleep", r) : 0;
}

static int icas(int n, uint64_t ms) {
  static uk_ica icas[UK_ICA_MAX];
  int err;
  if (n < 0 || n > UK_ICA_MAX)
    return fail("icas: N out of range", -EINVAL);
  int got = create_icas(icas, n, &err);
  if (got < n) {
    fprintf(stderr, "ap_hog: created %d of %d ICAs\n", got, n);
    return fail("ica_create", err);
  }
  return hold(ms);
}

static int quota_icas(uint64_t ms) {
  static uk_ica icas[UK_PROC_ICAS_MAX + 1];
  int err;
  int got = create_icas(icas, UK_PROC_ICAS_MAX + 1, &err);
  if (got != UK_PROC_ICAS_MAX || err != -EDQUOT) {
    fprintf(stderr, "ap_hog: %d ICAs before the refusal, want %d\n", got,
            UK_PROC_ICAS_MAX);
    return fail("quota refusal", err);
  }
  return hold(ms);
}

static int quota_reqs(void) {
  static uint32_t req[UK_PROC_REQS_MAX + 1];
  uint32_t svc;
  int r = ap_lookup("echo", &svc), n;
  if (r < 0)
    return fail("lookup echo", r);
  for (n = 0; n <= UK_PROC_REQS_MAX; n++) {
    uk_ica ctl;
    if ((r = ica_create(64, KABI_ICA_CONTROL, &ctl)) < 0)
      return fail("ica_create", r);
    if ((r = ap_send(svc, 0, &ctl, NULL, (uint64_t)n, &req[n])) < 0) {
      ica_release(&ctl);
      break;
    }
  }
  if (r != -EDQUOT || n < UK_PROC_RESULTS_MAX || n > UK_PROC_REQS_MAX) {
    fprintf(stderr, "ap_hog: refused after %d requests\n", n);
    return fail("send quota", r);
  }
  for (int i = 0; i < n; i++) {
    ap_result res;
    if ((r = ap_await(req[i], &res)) < 0 || res.status != 0)
      return fail("await", r);
    ica_release(&res.ctl);
  }
  return 0;
}

static int empty(void) {
  const char *fd = getenv("UKSIM_FD");
  if (fd == NULL || send(atoi(fd), "", 0, 0) < 0)
    return fail("send", -errno);
  hold(10000); /* the kernel should not let us get here and return */
  return fail("still alive after an empty packet", 0);
}

int main(int argc, char **argv) {
  int r = ap_init();
  if (r < 0)
    return fail("init", r);
  if (argc == 4 && !strcmp(argv[1], "icas"))
    return icas(atoi(argv[2]), strtoull(argv[3], NULL, 10));
  if (argc == 3 && !strcmp(argv[1], "quota-icas"))
    return quota_icas(strtoull(argv[2], NULL, 10));
  if (argc == 2 && !strcmp(argv[1], "quota-reqs"))
    return quota_reqs();
  if (argc == 2 && !strcmp(argv[1], "empty"))
    return empty();
  fprintf(stderr, "usage: ap_hog icas N MS | quota-icas MS | quota-reqs | "
                  "empty\n");
  return 2;
}
