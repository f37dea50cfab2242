/* libuksim for OS servers: register a service, take requests from its
 * request queue, answer them (seed 000 §2.3 and §5).
 *
 * The smallest server is a handler and srv_run():
 *
 *   static int hello(srv_req *r, void *arg) { ...; return 0; }
 *   int main(void) { return srv_run("hello", 1, "greet", hello, NULL); }
 *
 * servers/hello.c is a complete example.  A handler reads the request from
 * r->ctl.base (and r->data.base), writes its answer into the same ICAs (or
 * swaps in others), and returns a status (0 or -errno) that the client sees.
 *
 * A server holds one request at a time unless it deliberately keeps several
 * (a write-behind cache): whatever it holds when it fails is answered to the
 * clients with -ECONNRESET by the kernel.
 *
 * The kernel ends a server by closing its connection (at halt) or killing
 * it; a call then returns -ECONNRESET, -EPIPE or -ENOTCONN, which a server
 * treats as "stop".  Functions return 0 or a negative errno.  Not thread
 * safe.
 */
#ifndef UKSIM_SERVER_H
#define UKSIM_SERVER_H

#include <stdint.h>

#include "ica.h"

typedef struct srv_req {
  uint32_t req; /* request id, for srv_reply() */
  uint32_t op;  /* service-defined operation */
  int32_t client_pid;
  uk_ica ctl;  /* attached control ICA */
  uk_ica data; /* attached data ICA, or empty */
} srv_req;

typedef int (*srv_handler)(srv_req *req, void *arg);

/* Connects to the kernel; implicit in the other calls. */
int srv_init(void);

/* Registers this process as the server of `name`.  `opnames` names the ops
 * for the trace, comma separated in op order ("put,get"), or NULL.  *how
 * says whether this is a fresh start, a replacement or a restart
 * (enum kabi_reg_how). */
int srv_register(const char *name, uint32_t version, const char *opnames,
                 int *how);

/* Waits for the next request. */
int srv_receive(srv_req *req);

/* Answers `req` with `status`, handing req->ctl and req->data (whatever they
 * hold now) back to the client; both become empty. */
int srv_reply(srv_req *req, int32_t status);

/* srv_reply() then srv_receive() into the same srv_req, in one round trip. */
int srv_reply_receive(srv_req *req, int32_t status);

/* Reports an internal inconsistency; the kernel ends this server.  Does not
 * return on success. */
int srv_panic(const char *reason);

/* Registers, then serves requests with `handler` until the kernel ends the
 * process.  Returns only on error (a negative errno). */
int srv_run(const char *name, uint32_t version, const char *opnames,
            srv_handler handler, void *arg);

#endif /* UKSIM_SERVER_H */
