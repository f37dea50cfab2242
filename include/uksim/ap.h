/* libuksim for application processes: send requests to OS servers through
 * the kernel and collect their results (seed 000 §2.3, Fig. 3).
 *
 *   uint32_t kvs;
 *   uk_ica ctl;
 *   ap_lookup("kvs", &kvs);
 *   ica_create(4096, KABI_ICA_CONTROL, &ctl);
 *   ... write the request into ctl.base ...
 *   ap_result res;
 *   ap_call(kvs, KVS_GET, &ctl, NULL, &res);   // ctl comes back in res.ctl
 *
 * A request is a control ICA (what to do) plus an optional data ICA (the
 * bytes to work on).  ap_send() moves both to the server's request queue;
 * the result comes back through this process's result queue, normally with
 * the same ICAs (the server may return other ones).  Every request gets
 * exactly one result: the server's answer or a kernel error.
 *
 * The process must have been started by a uksim kernel (it finds its kernel
 * connection in the UKSIM_FD environment variable).  All functions return 0
 * or a negative errno; none keeps a pointer to its arguments.
 *
 * Threads: every function here (and in ica.h, ns.h, server.h) is safe to
 * call from any thread.  The process has one kernel connection and the
 * kernel one call of it at a time, so the library serialises the calls
 * under one process-wide lock held from a call's send to its answer
 * (lib/lock.c).  A call that waits in the kernel -- ap_await, ap_call
 * until the server answers, ap_sleep -- blocks every other thread's call
 * until it returns: threads that must not wait on each other should make
 * calls that answer promptly.  A uk_ica or ap_result belongs to the thread
 * using it; the library shares none.  Not async-signal-safe.
 */
#ifndef UKSIM_AP_H
#define UKSIM_AP_H

#include <stdint.h>

#include "ica.h"

typedef struct ap_result {
  uint32_t req;   /* the request id ap_send() gave */
  int32_t status; /* the server's status, or a kernel error: -ECONNRESET
                     (the server failed while holding the request), -ESRCH
                     (no such service), -EPERM (ICA not held), -EBUSY (the
                     service's queue is full), -ENOSPC (request table full) */
  uint64_t tag;   /* the tag given to ap_send() */
  uint32_t op;
  uk_ica ctl;  /* attached; empty if none came back */
  uk_ica data; /* attached; empty if none came back */
} ap_result;

/* ap_init: connects to the kernel.  Called implicitly by every other
 * function; call it first to learn early whether this process runs under
 * uksim.  Calling it again is harmless.
 * Errors: -ENOTCONN (not started by a uksim kernel: no UKSIM_FD), -EBADF
 * (UKSIM_FD is not an open descriptor).
 * Example:
 *   if (ap_init() < 0) {
 *     fprintf(stderr, "run me with uksim run or uksim spawn\n");
 *     return 2;
 *   } */
int ap_init(void);

/* ap_lookup: finds a service by name ("kvs"); *svc is what ap_send() and
 * ap_call() take.  The id stays valid across replacements and restarts of
 * the service's server.
 * Errors: -ESRCH (no service of that name is registered), -ENAMETOOLONG
 * (name of KABI_NAME_MAX bytes or more), -ENOTCONN, -ECONNRESET (the
 * kernel went away).
 * Example:
 *   uint32_t svc;
 *   int r = ap_lookup("hello", &svc);
 *   if (r < 0)
 *     fprintf(stderr, "hello: %s\n", strerror(-r)); */
int ap_lookup(const char *name, uint32_t *svc);

/* ap_send: queues request op for service svc and returns at once; *req
 * (if req is not NULL) gets the request's id for ap_await(), and tag comes
 * back in the result.  On success ctl and data (data may be NULL) are
 * detached and emptied: they now travel with the request.  If the kernel
 * refuses the request nothing moves, the caller still holds both ICAs,
 * and the error is returned here.
 * Errors: -ESRCH (no such service, or it is down), -EPERM (an ICA this
 * process does not hold), -EINVAL (no control ICA, or ctl == data),
 * -EBUSY (the service's queue is full: UK_QUEUE_MAX), -EDQUOT (this
 * process has UK_PROC_REQS_MAX requests out: collect results first),
 * -ENOSPC (the kernel's request table is full).
 * Example (two requests in flight, then their results):
 *   uint32_t a, b;
 *   ap_send(svc, 0, &ctl1, NULL, 1, &a);
 *   ap_send(svc, 0, &ctl2, NULL, 2, &b);
 *   ap_result r1, r2;
 *   ap_await(a, &r1);
 *   ap_await(b, &r2); */
int ap_send(uint32_t svc, uint32_t op, uk_ica *ctl, uk_ica *data, uint64_t tag,
            uint32_t *req);

/* ap_await: waits for the result of request `req`, or of any of this
 * process's requests when req is 0, and fills *res (its ICAs attached: the
 * caller releases or reuses them).  Returns 0 when a result came; the
 * server's own status is res->status (see ap_result for the kernel's).
 * Errors: -ENOENT (req is not an outstanding request of this process, or
 * req is 0 and none is outstanding: nothing would ever come).
 * Example:
 *   ap_result res;
 *   if (ap_await(0, &res) == 0 && res.status == 0)
 *     use(res.ctl.base);
 *   ica_release(&res.ctl);
 *   ica_release(&res.data); */
int ap_await(uint32_t req, ap_result *res);

/* ap_call: ap_send() then ap_await() of that request, in one kernel round
 * trip.  Returns 0 when a result came (the server's status is in
 * res->status), or a negative errno when the kernel refused the request,
 * in which case the caller still holds ctl and data.  A result carrying
 * only a data ICA puts it in res->data.
 * Errors: those of ap_send().
 * Example (apps/greet.c):
 *   uk_ica ctl;
 *   ap_result res;
 *   ica_create(4096, KABI_ICA_CONTROL, &ctl);
 *   strcpy(ctl.base, "world");
 *   if (ap_call(svc, 0, &ctl, NULL, &res) < 0)
 *     ica_release(&ctl);              // refused: still ours
 *   else if (res.status == 0)
 *     puts(res.ctl.base);             // "hello, world"
 *   ica_release(&res.ctl); */
int ap_call(uint32_t svc, uint32_t op, uk_ica *ctl, uk_ica *data,
            ap_result *res);

/* ap_sleep: sleeps ns nanoseconds of the kernel's clock: wall time when
 * the kernel runs free, virtual time under the lock-step scheduler, where
 * a paced workload stays deterministic.  Use it, not sleep(3), in anything
 * a scenario runs.
 * Errors: -EINVAL (more than KABI_SLEEP_MAX_NS, an hour).
 * Example:
 *   ap_sleep(1000000);  // 1 ms, virtual under `uksim run` */
int ap_sleep(uint64_t ns);

#endif /* UKSIM_AP_H */
