/* UV_CHECK(call): a libuv call that fails only if uksim itself is wrong —
 * a handle started on a closed loop, a descriptor it opened itself found
 * bad — so a failure is a broken invariant (STYLE.md: abort), reported with
 * where it happened.  For code that runs a libuv loop: the kernel, the
 * machine, net9p, the CLI.  A call whose failure is an expected outcome (a kill
 * of a child that has just exited, UV_ESRCH) is checked by its caller. */
#ifndef UKSIM_UV_CHECK_H
#define UKSIM_UV_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#define UV_CHECK(call) uv_check_((call), #call, __FILE__, __LINE__)

static inline void uv_check_(int r, const char *call, const char *file,
                             int line) {
  if (r < 0) {
    fprintf(stderr, "uksim: %s:%d: %s: %s\n", file, line, call, uv_strerror(r));
    abort();
  }
}

/* uv_process_kill(p, sig), where a child that has just exited (UV_ESRCH:
 * its exit callback has not run yet, and will) is no error. */
static inline void uv_kill_child(uv_process_t *p, int sig) {
  int r = uv_process_kill(p, sig);
  if (r != UV_ESRCH)
    UV_CHECK(r);
}

#endif /* UKSIM_UV_CHECK_H */
