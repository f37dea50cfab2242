/* What the node tests share (issue 16): real machines booted as nodes,
 * `uksim exportfs` beside them, `uksim sh` in them, their consoles. */
#ifndef UKSIM_TEST_NODES_UTIL_H
#define UKSIM_TEST_NODES_UTIL_H

#include <stddef.h>
#include <sys/types.h>

#include "harness.h"

struct node {
  mach_client m;
  char name[64];
  int port;      /* its --node-port, 0: none */
  char addr[64]; /* "tcp!127.0.0.1!PORT" when it listens */
};

/* Boots machine `name` as node n, listening for nodes at port (0: not)
 * and with keyfile as its --node-key (NULL: none). */
void nu_boot(struct node *n, const char *name, int port, const char *keyfile);
/* Halts n and expects no ICA left. */
void nu_halt(struct node *n);
void nu_write_file(const char *path, const char *s);
/* Starts `uksim exportfs` of a fresh namespace of n at `at`, with --key
 * keyfile (NULL: none) and -c cmds (NULL: none), its output in out; waits
 * until it serves. */
pid_t nu_exportfs(struct node *n, const char *keyfile, const char *cmds,
                  const char *at, const char *out);
/* `uksim sh -c cmds` on machine `name`: its output, *st its exit status. */
const char *nu_sh(int *st, const char *name, const char *cmds);
/* What n's console printed lately: its output ring, read from the
 * kernel's tables as any outside reader reads them. */
void nu_console(struct node *n, char *buf, size_t len);

#endif
