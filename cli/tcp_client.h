/* The tcp-clients of a scenario (scenarios/README.md "Orthros"): TCP
 * clients outside the machine, run by the runner (cmd_run.c), one thread
 * and one connection each.  They are the experimenter's, not the OS's: no
 * kernel call, nothing in the trace; what they saw is a fact for the
 * evaluator (struct scn_tcp_seen). */
#ifndef UKSIM_TCP_CLIENT_H
#define UKSIM_TCP_CLIENT_H

#include "scn.h"
#include "scn_eval.h"

/* How long a client tries to connect (the server has not announced its
 * port yet: refused), every TCP_CLIENT_RETRY_MS; then it gives up. */
#define TCP_CLIENT_CONNECT_MS 60000
#define TCP_CLIENT_RETRY_MS 10
/* How long it waits for one echo before it calls the connection broken:
 * far beyond a failover (a heartbeat timeout, at most a minute, and the
 * takeover). */
#define TCP_CLIENT_ECHO_WAIT_MS 90000
/* Bytes in a line: "NAME 00000042\n". */
#define TCP_CLIENT_LINE_MAX (SCN_NAME_MAX + 24)

struct tcp_clients;

/* Starts a client per tcp-client statement of s; the run's clock is the
 * executor's start, read from the journal in dir (scn_journal.h) once the
 * kernel has written it.  NULL when s declares none. */
struct tcp_clients *tcp_clients_start(const struct scn *s, const char *dir);

/* The run is over: stops every client (a line in flight is not waited
 * for), waits for their threads and puts their figures in facts (valid
 * until tcp_clients_free).  Nothing for NULL. */
void tcp_clients_stop(struct tcp_clients *c, struct scn_facts *facts);

void tcp_clients_free(struct tcp_clients *c);

#endif
