/* The echo server: service "echo", one op "null".
 *
 * Every request is answered with status 0 and the very ICAs it came with;
 * the server never reads or writes their bytes.  That makes it the far end
 * of the IPC measurements (uksim bench ipc): a null round trip costs the
 * kernel's hand-off only, and a data ICA of 4 KiB or 64 MiB must cost the
 * same, since passing an ICA moves a descriptor, never the contents.
 *
 * One kernel round trip per request: srv_reply_receive() answers the
 * request in hand and waits for the next in the same call.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "uksim/server.h"

#define ECHO_NAME "echo"
#define ECHO_VERSION 1
#define ECHO_OPNAMES "null"

/* Whether r means the kernel closed our connection: the normal way a
 * server is told to stop, not a failure. */
static int kernel_gone(int r) {
  return r == -ECONNRESET || r == -EPIPE || r == -ENOTCONN;
}

int main(void) {
  srv_req req;
  int r = srv_register(ECHO_NAME, ECHO_VERSION, ECHO_OPNAMES, NULL);
  if (r < 0) {
    fprintf(stderr, "echo: register: %s\n", strerror(-r));
    return 1;
  }
  r = srv_receive(&req);
  while (r == 0)
    r = srv_reply_receive(&req, 0);
  if (kernel_gone(r))
    return 0;
  fprintf(stderr, "echo: %s\n", strerror(-r));
  return 1;
}
