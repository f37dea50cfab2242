/* Loopback ports for tests that listen: probed free, below the ephemeral
 * range (32768 and up), where a connection's own port can take any port
 * at any time and a port picked from the pid there collides sooner or
 * later (test_devip's NIC ports did, under a busy CI run). */
#ifndef UKSIM_TESTS_PORTS_H
#define UKSIM_TESTS_PORTS_H

#include <stdbool.h>

/* Whether a socket can bind 127.0.0.1:port now. */
bool h_port_free(int port);

/* A base port b in [lo, lo + span) such that b .. b + n - 1 are free on
 * loopback now: tried from an offset the pid picks (spread apart for
 * consecutive pids), then on.  Keep lo and
 * span below the ephemeral range; 0 when none is free. */
int h_free_ports(int lo, int span, int n);

#endif
