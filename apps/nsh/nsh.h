/* nsh, the namespace shell: a uksim application process's view of its own
 * namespace, driven by lines of rc-like commands (parse.h).
 *
 * Every command is a builtin over libuksim's ns_* calls (uksim/ns.h): the
 * shell never runs a host program, so what it shows is the namespace of the
 * process it runs as and nothing of the host's.  The process must already
 * be attached to a kernel (UKSIM_FD set; `uksim sh` does that).
 *
 * Pipes are in-shell buffers: the commands of a pipeline run one after
 * another, each reading the whole output of the one before (at most
 * NSH_PIPE_MAX bytes).  That keeps the shell one single-threaded process
 * with one kernel call in flight, as libuksim requires, and makes a
 * pipeline's result independent of scheduling; the price is that a
 * pipeline's output appears when its last command ends.  A command with no
 * '<' and no '|' before it reads nothing.
 *
 * Errors go to stderr as "CMD: PATH: why" (strerror of the kernel's errno);
 * the status of a line is that of its last command (0 success, 1 failure,
 * 2 bad usage).
 */
#ifndef UKSIM_NSH_H
#define UKSIM_NSH_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "parse.h"

/* Largest output a pipeline stage or a '<' file hands on (README
 * "Limits"). */
#define NSH_PIPE_MAX (16u << 20)

struct nsh {
  FILE *out, *err; /* the host's stdout and stderr, normally */
  int status;      /* of the last command run */
  bool exited;     /* `exit` ran: stop reading lines */
  /* The kernel connection, watched while waiting for a line: a process
   * the kernel killed (kill PID from another shell) or whose machine
   * halted ends at once instead of at its next command.  -1: none. */
  int kernel_fd;
};

/* Output of a command: a host stream, or a buffer for the next stage of a
 * pipeline or a '>' file. */
struct nsh_buf {
  char *p;
  size_t n, cap;
  bool full; /* more than NSH_PIPE_MAX was written: the rest was dropped */
};

struct nsh_io {
  const char *in; /* the input: the previous stage or the '<' file */
  size_t inlen;
  FILE *f;            /* output to a host stream, or */
  struct nsh_buf *to; /* to a buffer */
  FILE *err;
};

void nsh_init(struct nsh *sh, FILE *out, FILE *err);

/* Parses and runs one line; returns its status (2 when it does not
 * parse, after the parser's message on sh->err). */
int nsh_run(struct nsh *sh, const char *line, size_t n);

/* Reads lines from descriptor in until its end, `exit` or the kernel
 * connection's end, prompting on sh->out when prompt is not NULL; returns
 * the last status (1 when the kernel connection ended).  A line over
 * NSH_LINE_MAX is refused as the parser refuses it, without being read
 * whole. */
int nsh_loop(struct nsh *sh, int in, const char *prompt);

/* What builtins use. */
void nsh_write(struct nsh_io *io, const void *p, size_t n);
void nsh_printf(struct nsh_io *io, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* "cmd: path: strerror(-err)" on io->err; returns 1, a failed status. */
int nsh_fail(struct nsh_io *io, const char *cmd, const char *path, int err);
/* Reads all of path into *b (at most NSH_PIPE_MAX); 0 or -errno. */
int nsh_read_file(const char *path, struct nsh_buf *b);
void nsh_buf_free(struct nsh_buf *b);

/* The builtins (builtins.c): argv[0] is the name.  Each returns a status. */
typedef int nsh_builtin_fn(struct nsh *sh, struct nsh_io *io, int argc,
                           char **argv);
struct nsh_builtin {
  const char *name;
  nsh_builtin_fn *fn;
  const char *usage;
};
const struct nsh_builtin *nsh_builtin_lookup(const char *name);
/* Prints every builtin's usage line. */
void nsh_help(struct nsh_io *io);

#endif /* UKSIM_NSH_H */
