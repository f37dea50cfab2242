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
 * treats as "stop".  Functions return 0 or a negative errno.
 *
 * Thread-safe in the sense of ap.h (one lock, calls taken in turn), but
 * srv_receive waits in the kernel for the next request holding that lock:
 * a server's other threads cannot call the kernel while it waits, so a
 * server should call from one thread.
 *
 * Fault injection: UKSIM_FAULT=KIND@POINT[:N],... in a server's environment
 * makes it crash, panic, hang or exit as it starts, instead of registering,
 * at its N-th request, while saving state for a successor, while restoring,
 * or during the hand-off; refuse@restore makes a successor refuse the state
 * it was handed (lib/fault.h has the details).
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

/* srv_init: connects to the kernel; implicit in the other calls.
 * Errors: -ENOTCONN (not started by a uksim kernel), -EBADF.
 * Example:
 *   if (srv_init() < 0)
 *     return 2;  // run me through a scenario or uksim spawn */
int srv_init(void);

/* srv_register: registers this process as the server of `name`, speaking
 * state version `version`.  `opnames` names the ops for the trace, comma
 * separated in op order ("put,get"), or NULL.  *how (if how is not NULL)
 * says whether this is a fresh start, a replacement or a restart (enum
 * kabi_reg_how; "Succession" below).
 * Errors: -EALREADY (this process already serves a service: one each),
 * -EEXIST (another live server has the name and no replacement is under
 * way), -ENOSPC (the service table is full), -EINVAL (an empty name),
 * -ENAMETOOLONG (a name of KABI_NAME_MAX bytes or more, or opnames too
 * long for the trace).
 * Example (the skeleton `uksim new-server` writes):
 *   int how;
 *   int r = srv_register("hello", 1, "greet,count", &how);
 *   if (r == 0)
 *     r = how == KABI_REG_FRESH ? fresh_state() : restore_state(); */
int srv_register(const char *name, uint32_t version, const char *opnames,
                 int *how);

/* srv_receive: waits for the next request of this server's queue and
 * fills *req, its ICAs attached.  The first receive of a successor commits
 * its replacement.
 * Errors: -ESHUTDOWN (a successor took over: exit 0), -EPERM (not a
 * registered server), -ECONNRESET / -EPIPE / -ENOTCONN (the kernel ended
 * this server: stop).
 * Example:
 *   srv_req req;
 *   int r = srv_receive(&req);
 *   while (r == 0)
 *     r = srv_reply_receive(&req, handle(&req));
 *   return r == -ESHUTDOWN ? 0 : 1; */
int srv_receive(srv_req *req);

/* srv_reply: answers `req` with `status` (0 or -errno, what the client
 * sees), handing req->ctl and req->data (whatever they hold now: the same
 * ICAs, or others this server holds) back to the client; both become
 * empty.  A server that holds several requests (a cache) replies to each
 * later, in any order.
 * Errors: -ENOENT (no such request), -EPERM (the request is not this
 * server's to answer, or an ICA in it is not held by this server); on an
 * error this server still holds everything.
 * Example:
 *   memcpy(req.ctl.base, answer, n);
 *   srv_reply(&req, 0); */
int srv_reply(srv_req *req, int32_t status);

/* srv_reply_receive: srv_reply() then srv_receive() into the same
 * srv_req, in one round trip: the request loop's one call.
 * Errors: those of srv_reply() (nothing was answered: this server still
 * holds the request) and of srv_receive() (the reply went).
 * Example: see srv_receive(). */
int srv_reply_receive(srv_req *req, int32_t status);

/* srv_reply_receive_many: replies to req[0..n-1] (n at most
 * SRV_BATCH_MAX) with status[0..n-1], as srv_reply() each, then receives
 * up to SRV_BATCH_MAX queued requests into req[0..*got-1], in one round
 * trip: a server with a queue takes it a batch a call instead of a
 * request a call.  The replies' results are released together, once the
 * kernel has them all: a server that saves its state once per batch,
 * after serving the batch and before this call, releases no result
 * before the state that includes it is saved.  A server being replaced
 * (and a lock-step run) gets one request at a time.
 * Errors: -EINVAL (n too large, a request or an ICA named twice) and
 * those of srv_reply() (nothing was answered: this server still holds
 * every request), then those of srv_receive() (the replies went).
 * Example:
 *   srv_req req[SRV_BATCH_MAX];
 *   int32_t st[SRV_BATCH_MAX];
 *   uint32_t n = 0;
 *   int r = srv_reply_receive_many(req, st, 0, &n);
 *   while (r == 0) {
 *     for (uint32_t i = 0; i < n; i++)
 *       st[i] = handle(&req[i]);
 *     save_state();
 *     r = srv_reply_receive_many(req, st, n, &n);
 *   } */
#define SRV_BATCH_MAX KABI_BATCH_MAX
int srv_reply_receive_many(srv_req *req, const int32_t *status, uint32_t n,
                           uint32_t *got);

/* srv_panic: reports an internal inconsistency; the kernel ends this
 * server (and restarts it if the service says so).  Does not return on
 * success.  A successor that cannot restore the state it was given (an
 * unknown state version) calls this before its first srv_receive(): the
 * replacement fails with `reason` (in the trace's fail event) and the old
 * server keeps serving.
 * Errors: -ENOTCONN, -ECONNRESET (the kernel is gone already).
 * Example:
 *   if (st->version > MY_VERSION)
 *     return srv_panic("state version 2 is newer than this server's 1"); */
int srv_panic(const char *reason);

/* Replacement and restart (seed 000 §4-§5) ----------------------------------
 *
 * State.  A server that wants its state to survive a replacement or a crash
 * keeps it in a state ICA and registers that ICA with srv_state_register().
 * It keeps the ICA attached and goes on updating it in place; the kernel
 * only remembers which ICA it is.  The state must be crash-consistent: a
 * crash at any instruction must leave an ICA its successor can restore.
 * Method 2 of the paper ("single"): everything in that one ICA.  Method 1
 * ("chain"): the registered ICA is a master that lists, by id, the other
 * ICAs holding state; the successor attaches them with srv_ica_attach().
 *
 * Succession.  srv_register() says how this server starts (*how):
 * KABI_REG_FRESH, KABI_REG_REPLACING (extension time: the old server is
 * alive and waiting) or KABI_REG_RESTARTING (after a crash, panic or hang).
 * A successor calls srv_state_get() (-ENOENT: no state was registered),
 * restores, and then calls srv_receive(): that first receive (or a first
 * srv_reply()/srv_keep() of a request it inherited) commits the
 * replacement.  Until then the old server may still resume with the same
 * ICAs, so a successor must not write to ICAs it inherited before its first
 * receive (build converted state in new ICAs).  Every ICA the old server
 * held moves to the successor at the commit; a srv_state_register() by the
 * successor before the commit takes effect at the commit.
 *
 * Hand-off (extension time).  The old server sees the replacement at its
 * next srv_receive(): the library calls the hook set with srv_on_replace(),
 * which may save state for the successor (the "copy" method serializes
 * here; a server whose successor has another version converts here into a
 * version-neutral form).  An ICA registered with srv_state_register() inside
 * the hook is a hand-off ICA: the successor gets it from srv_state_get()
 * instead of the live state ICA, and if the replacement fails it is freed
 * while the live state ICA stays registered.  Then srv_receive() returns
 * -ESHUTDOWN if the successor took over (the server should exit 0), or goes
 * on receiving requests if the replacement failed.
 *
 * Requests kept across a failure (§4.1.2).  A server that holds several
 * requests at once (a cache) records each in its state and calls
 * srv_keep(): if the server dies, the kernel gives such a request, with its
 * ICAs, to the successor instead of failing it.  The successor finds the ids
 * in its state, attaches the ICAs and answers with srv_reply().  A request
 * not kept that the server held when it failed is answered -ECONNRESET. */

/* srv_state_register: registers `ica` (held and attached by this server,
 * normally of kind KABI_ICA_STATE) as its state ICA: the one a successor
 * gets from srv_state_get().  Registering another one later replaces it
 * (the kernel frees the old one: ica_unmap() it).  Inside the replace
 * hook it registers a hand-off ICA instead ("Hand-off" above).
 * Errors: -EPERM (not a registered server, or the ICA is not held by it).
 * Example:
 *   uk_ica st;
 *   ica_create(4096, KABI_ICA_STATE, &st);
 *   srv_state_register(&st); */
int srv_state_register(const uk_ica *ica);

/* srv_state_get: for a successor (*how was KABI_REG_REPLACING or
 * KABI_REG_RESTARTING): attaches the state ICA its predecessor registered
 * (or the hand-off ICA its replace hook registered).  Do not write to it
 * before the first srv_receive(): until then the old server may resume.
 * Errors: -ENOENT (the predecessor registered none: start fresh), -EPERM
 * (not a registered server).
 * Example:
 *   uk_ica st;
 *   int r = srv_state_get(&st);
 *   if (r == -ENOENT)
 *     return fresh_state();
 *   if (r == 0 && ((struct my_state *)st.base)->magic != MY_MAGIC)
 *     return srv_panic("not my state"); */
int srv_state_get(uk_ica *ica);

/* srv_ica_attach: attaches an ICA this server holds, or that the server
 * it replaces holds, by id (a chained state ICA of method 1, or the ICAs
 * of a kept request).
 * Errors: -EPERM (no such ICA, or neither this server nor its
 * predecessor holds it).
 * Example (method 1: the master lists the other state ICAs):
 *   for (uint32_t i = 0; i < master->n; i++)
 *     srv_ica_attach(master->ids[i], &part[i]); */
int srv_ica_attach(uint32_t id, uk_ica *ica);

/* srv_keep: marks request `req` (delivered to this server, recorded in its
 * state) as kept: if this server dies, the kernel hands it, with its ICAs,
 * to the successor instead of failing it ("Requests kept" above).
 * Errors: -ENOENT (no such request), -EPERM (not this server's).
 * Example (a write-behind cache holding the request to answer later):
 *   st->held[st->n++] = req.req;
 *   srv_keep(&req); */
int srv_keep(const srv_req *req);

/* srv_on_replace: sets the hook called (inside srv_receive()) when this
 * server is being replaced, with the successor's version: the place to
 * save state for the successor.  The hook returns 0 or -errno; an error is
 * only logged: the successor then gets the live state ICA and may refuse
 * it (srv_panic), failing the replacement.  No errors.
 * Example:
 *   static int save_state(uint32_t v, void *arg) {
 *     (void)v, (void)arg;
 *     state()->handoffs++;  // method 2: the state is in the ICA already
 *     return 0;
 *   }
 *   srv_on_replace(save_state, NULL); */
typedef int (*srv_replace_hook)(uint32_t successor_version, void *arg);
void srv_on_replace(srv_replace_hook hook, void *arg);

/* srv_run: registers, then serves requests with `handler` (its return
 * value is each request's status) until the kernel ends the process or a
 * successor takes over.  For a server without state; one with state
 * writes the loop itself (srv_receive()).
 * Errors: those of srv_register(); -ECONNRESET and the like when the
 * kernel ends the server.  Returns 0 when replaced.
 * Example (servers/hello.c):
 *   int r = srv_run("hello", 1, "greet", hello, NULL);
 *   return r == 0 || r == -ECONNRESET ? 0 : 1; */
int srv_run(const char *name, uint32_t version, const char *opnames,
            srv_handler handler, void *arg);

#endif /* UKSIM_SERVER_H */
