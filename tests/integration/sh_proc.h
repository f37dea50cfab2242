/* Helpers for the tests of `uksim sh` and `uksim mount`: a machine with a
 * name the CLI can be given, commands run through the host shell, and a
 * long-lived `uksim sh` whose namespace other commands share or view. */
#ifndef UKSIM_TEST_SH_PROC_H
#define UKSIM_TEST_SH_PROC_H

#include <stdio.h>
#include <sys/types.h>

#include "machine.h"

/* Boots a machine named "nsh-PID-N" into *m, name into name[64]; with
 * server, starts it (registered) too: 0, or -1 when the server could not
 * start (the machine is up either way). */
int sp_boot(mach_client *m, char *name, const char *server);

/* Runs cmd with /bin/sh, stdout and stderr together; the output (static
 * buffer) and *status, the exit status (128 + signal). */
const char *sp_run(int *status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* An interactive `uksim sh --name machine --as as [extra]`, lines
 * written to its stdin. */
struct sp_sh {
  pid_t pid;
  FILE *in, *out;
};
void sp_sh_start(struct sp_sh *s, const char *machine, const char *as,
                 const char *extra);
/* Runs one line in it and returns what it printed (static buffer). */
const char *sp_sh_do(struct sp_sh *s, const char *line);
/* Ends it (EOF on its stdin) and returns its exit status. */
int sp_sh_end(struct sp_sh *s);

#endif
