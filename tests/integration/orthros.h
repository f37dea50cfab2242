/* The Orthros integration tests' fixture (test_orthros*.c, one file a
 * subject): a machine with an active and a backup OS booted by this test
 * process, waits on its failovers, and the helpers more than one subject
 * uses.  Failure detection is in real time (a 50 ms heartbeat timeout):
 * under valgrind every kernel runs tens of times slower and fails over by
 * itself, so every test of the suite skips there (skip_under_valgrind,
 * tests/ci-skips.txt); the takeover's table code runs under valgrind in
 * tests/sim-kernel/test_adopt.c. */
#ifndef UKSIM_TESTS_ORTHROS_H
#define UKSIM_TESTS_ORTHROS_H

#include <stdbool.h>
#include <stdint.h>

#include "harness.h"
#include "uksim/interos.h"
#include "uksim/kdata.h"

#define HB_MS 10
#define TIMEOUT_MS 50
#define DISK_TIMEOUT_MS 1000

/* The machine boot_with booted last: its trace file (the 2nd OS's is
 * trace.os2 ...), its name and its nic0's first port. */
extern char trace[256], name[64];
extern uint16_t nic_port;

/* Failure detection is in real time (a 50 ms heartbeat timeout): under
 * valgrind every kernel runs tens of times slower and fails over by
 * itself, so these tests skip there (tests/ci-skips.txt); the takeover's
 * table code runs under valgrind in tests/sim-kernel/test_adopt.c. */
void skip_under_valgrind(void);

/* The options boot_with starts from: a name, a trace file (trace) and
 * nic0 ports (nic_port) of their own, an active and a backup OS watching
 * its heartbeat (HB_MS, TIMEOUT_MS).  For a test that changes some before
 * mach_boot. */
void pair_opts(struct mach_opts *o);

/* A machine with an active and a backup OS; with dir, a disk (LevelDB
 * there) written back only on "sync", so that what was dirty when the
 * active died is in its cache alone; migrate: --cache-migrate ("": the
 * default, adopt). */
void boot_with(mach_client *m, const char *dir, const char *migrate);

/* When set, boot_with's backup OS boots from this kernel program (mach
 * --backup-kernel: a kernel update's next version, issue 15). */
extern char backup_kernel[256];

void boot_pair(mach_client *m);

Uksim__Reply *status(mach_client *m);

/* Waits until `failovers` failovers happened and both an active and a
 * backup run again, and the active has sent a heartbeat the backup can
 * see; returns the active's OS number. */
uint32_t await_pair(mach_client *m, uint32_t failovers);

/* The header of OS os's kernel data (any layout: the header is shared). */
struct uk_kdata_hdr region_hdr(mach_client *m, uint32_t os);

/* Waits until a backup OS runs and its kernel data is set up; returns
 * its OS number. */
uint32_t await_backup(mach_client *m);

/* Waits for detection number n; copies the record. */
struct uk_interos await_detection(mach_client *m, uint32_t n);

/* The first line of OS os's trace with both strings, once there is one
 * within ms ms; "" if none came.  The line is static: the next call
 * overwrites it. */
const char *trace_line(uint32_t os, const char *a, const char *b, int ms);

/* True once the trace of OS os has a line with both strings (2 s). */
bool trace_has(uint32_t os, const char *a, const char *b);

void rm_dir(const char *dir);

/* The run's trace files (one per kernel: trace, trace.os2 ...) go at the
 * halt, unless ORTHROS_TRACE asks to keep them. */
void remove_traces(void);

void halt(mach_client *m);

/* One fault into the active; returns the detection record. */
struct uk_interos fail_once(mach_client *m, int kind, uint32_t n);

void report(const char *fault, const struct uk_interos *d);

/* Whether process pid runs (exists and is not a zombie). */
bool alive(pid_t pid);

/* Process slot proc's entry in the active kernel's tables, copied. */
struct uk_proc proc_entry(mach_client *m, int proc);

pid_t pid_of(mach_client *m, int proc);

/* fn(arg) in a child attached to the active kernel as `name` (a program of
 * its own, with its own connection); the child's exit status (fn's). */
int attached(mach_client *m, const char *name, int (*fn)(const void *),
             const void *arg);
/* The same in process slot ns_proc's namespace group (shared: what fn
 * binds or mounts, that process sees). */
int attached_ns(mach_client *m, const char *name, int ns_proc,
                int (*fn)(const void *), const void *arg);

/* diskfs "dfs" over #S without --sync (its writes stay in the cache), and
 * /n/log written with n records by fwrite, which has ended. */
void dirty_file(mach_client *m, long n);

struct file_check_args {
  const char *srv, *file;
  long n;
};

int file_check_child(const void *arg);

/* In an attached child: mounts /srv/SRV on /n and checks that /n/FILE
 * holds records 0..n-1 of fwrite, each once, in order.  The child's
 * status: 0 whole, else which check failed. */
int file_check(mach_client *m, const char *srv, const char *file, long n);

/* True once process w has made 100 calls and service svc has a state
 * ICA (read from the active kernel's tables), within 20 s. */
bool writing(mach_client *m, int w, const char *svc);

#endif /* UKSIM_TESTS_ORTHROS_H */
