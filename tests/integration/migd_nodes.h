/* Three real uksim machines a, b and c on loopback, each with its network
 * message server (netmsg serve, the other two as --peer) and a uksim-migd
 * advertised to it: the world of the service-call and lookup tests of
 * process migration (issue 16). */
#ifndef UKSIM_TEST_MIGD_NODES_H
#define UKSIM_TEST_MIGD_NODES_H

#include <stdbool.h>
#include <sys/types.h>

#include "harness.h"

#define MN_NODES 3

struct mn_node {
  mach_client m;
  char mname[64];   /* the machine's name */
  const char *name; /* the node's name: a, b, c */
  int netmsg, port; /* netmsg serve's port and uksim-migd's */
  pid_t migd;
  char out[96], err[96]; /* uksim-migd's stdout (task consoles), stderr */
};

extern struct mn_node mn[MN_NODES];

/* The build tree (UKSIM_BUILD_ROOT). */
const char *mn_build(void);
/* Boots the machines with `server` registered as `service` on each ("":
 * none), then the network message servers, then the migration servers. */
void mn_start(const char *server, const char *service);
/* Kills node n's migration server (as a node that disappears). */
void mn_stop_migd(struct mn_node *n);
/* Halts everything and removes the files (a suite's fini), the nodes'
 * logs kept when MN_KEEP is set (to read after a failure). */
void mn_stop(void);
/* Runs `uksim-migd --ctl` on node n with the words fmt makes: its output
 * (a static buffer) and exit status. */
const char *mn_ctl(struct mn_node *n, int *rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Tasks running on n now (0 when its migration server is gone). */
int mn_running(struct mn_node *n);
bool mn_file_has(const char *path, const char *s);
/* Waits up to 10 s for s in the file. */
void mn_wait_for(const char *path, const char *s);

#endif
