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

/* Connects to the kernel.  Called implicitly by every other function; call
 * it first to learn early whether this process runs under uksim. */
int ap_init(void);

/* Finds a service by name ("kvs").  *svc is what ap_send() takes. */
int ap_lookup(const char *name, uint32_t *svc);

/* Queues a request.  On success ctl and data (data may be NULL) are detached
 * and emptied: they now travel with the request.  If the kernel refuses the
 * request (bad ICA, no such service, full queue) nothing moves, the caller
 * still holds both ICAs, and the error is returned here. */
int ap_send(uint32_t svc, uint32_t op, uk_ica *ctl, uk_ica *data, uint64_t tag,
            uint32_t *req);

/* Waits for the result of request `req`, or of any request when req is 0. */
int ap_await(uint32_t req, ap_result *res);

/* ap_send() then ap_await() of that request, in one kernel round trip.
 * Returns 0 when a result came (the server's status is in res->status), or
 * a negative errno when the kernel refused the request, in which case the
 * caller still holds ctl and data.  A result carrying only a data ICA puts
 * it in res->data. */
int ap_call(uint32_t svc, uint32_t op, uk_ica *ctl, uk_ica *data,
            ap_result *res);

/* Sleeps ns nanoseconds (at most an hour: -EINVAL beyond) of the kernel's
 * clock: wall time when the kernel runs free, virtual time under the
 * lock-step scheduler, where a paced workload stays deterministic. */
int ap_sleep(uint64_t ns);

#endif /* UKSIM_AP_H */
