/* hello: the smallest useful uksim server, and the one to copy.
 *
 * Service "hello", one op "greet".  The client writes a NUL-terminated name
 * at the start of its control ICA; the answer, in the same ICA, is
 * "hello, NAME".  Run it and try it:
 *
 *   build/cli/uksim run --help
 *
 * Outside the tree, against an installed uksim (README "Install"):
 *
 *   cc hello.c -o myhello $(pkg-config --cflags --libs uksim)
 *   UKSIM_PATH=. uksim run my.scn     # server hello --binary myhello
 *
 * A server is a handler plus srv_run(): the library registers the service,
 * takes one request at a time from the kernel and sends the handler's
 * status back to the client with the request's ICAs.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "uksim/server.h"

enum hello_op { HELLO_GREET = 0 };

#define GREETING "hello, "

/* Answers one request.  Returns 0 or -errno; the client sees exactly that
 * status.  Anything the client sent is untrusted: check it before use. */
static int hello(srv_req *r, void *arg) {
  (void)arg; /* srv_run() passes it through; this server has no state */

  /* Op numbers are the service's own; refuse the ones we do not know
   * rather than guessing, so a client bug shows up as an error. */
  if (r->op != HELLO_GREET)
    return -ENOSYS;

  /* The control ICA is mapped at r->ctl.base while we hold it.  A client
   * may send none, or one without a terminating NUL: never read past the
   * ICA's end. */
  if (r->ctl.base == NULL)
    return -EINVAL;
  char *buf = r->ctl.base;
  size_t len = strnlen(buf, r->ctl.size);
  if (len == r->ctl.size)
    return -EINVAL; /* no NUL inside the ICA */

  /* Write the answer in place: the ICA goes back to the client as is, so
   * no copy and no new ICA are needed.  Make room first; the name moves
   * right by the length of the greeting, terminator included. */
  size_t glen = strlen(GREETING);
  if (glen + len + 1 > r->ctl.size)
    return -ENAMETOOLONG;
  memmove(buf + glen, buf, len + 1);
  memcpy(buf, GREETING, glen);
  return 0;
}

int main(void) {
  /* Returns only if the kernel connection fails or the kernel ends the
   * service by closing it. */
  int r = srv_run("hello", 1, "greet", hello, NULL);
  if (r == -ECONNRESET)
    return 0;
  fprintf(stderr, "hello: %s\n", strerror(-r));
  return 1;
}
