/* Integration-test harness: boot a real machine (machine, kernel, servers
 * and application processes are real processes), drive it through the
 * control socket, and check the kernel's own tables at the end. */
#ifndef UKSIM_TEST_HARNESS_H
#define UKSIM_TEST_HARNESS_H

#include <stdbool.h>
#include <stdlib.h>

#include "machine.h"
#include "../ports.h"

/* Request counts shrink under valgrind (every process runs 20-50x slower);
 * the scale is printed so a log says what ran. */
static inline int scaled(int n) {
  return getenv("UKSIM_UNDER_VALGRIND") ? n / 10 : n;
}

/* Boots a machine with a unique name and starts the kvs server. */
void h_boot(mach_client *m, const char *server);

/* The same without a server, with a user disk in dir (a LevelDB directory)
 * and the kernel's disk settings ("" for a default). */
void h_boot_disk(mach_client *m, const char *dir, const char *cache_mib,
                 const char *sync_ms);

/* Attaches this (test) process to m as an application process named name:
 * its calls go to m's kernel from now on (UKSIM_FD). */
void h_attach(mach_client *m, const char *name);

/* h_free_ports: a block of free loopback ports (tests/ports.h). */

/* The name of the machine h_boot booted last (for another client). */
const char *h_name(void);

/* Spawns an application process; returns the wait id for h_wait. */
int64_t h_spawn(mach_client *m, const char *prog, char **args, size_t n,
                const char *name, int *proc);

/* Starts n counter servers (ctr_srv) as services PREFIX0 .. PREFIX<n-1>,
 * one for each thread of mtload --service PREFIX. */
void h_spawn_counters(mach_client *m, const char *prefix, int n);

/* Waits for a process started by h_spawn; returns its exit status, or
 * 128 + signal. */
int h_wait(mach_client *m, int64_t wid);

/* Runs a shell command; its standard output (a static buffer, 16 KiB at
 * most) and in *status what pclose says. */
const char *h_run(const char *cmd, int *status);

/* Halts the machine and asserts that no ICA is left. */
void h_halt_clean(mach_client *m);

/* From an attached process (h_attach): mounts the server that posted
 * itself as /srv/SVC on old with flag (NS_MREPL ...), waiting up to 20 s
 * for the entry to name its service (harness_ns.c). */
void h_mount_srv(const char *svc, const char *old, int flag);

#endif
