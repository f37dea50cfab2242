/* p9host.h: a 9P file server as a uksim OS server (uksim/p9ica.h): the
 * request loop, one session per client over net9p's ICA transport, and
 * the state ICA that keeps the sessions and the tree across a replacement
 * or a crash.  ramfs.c and hostfs.c are the two backends; each is a
 * p9_srv_ops table from net9p plus what turns its tree into the state's
 * protobuf-c form and back.
 */
#ifndef SERVERS_P9HOST_H
#define SERVERS_P9HOST_H

#include <stdint.h>

#include "p9_state.pb-c.h"
#include "uksim/9p.h"

struct p9h_backend {
  const char *kind; /* the state's kind: a successor refuses another */
  const struct p9_srv_ops *ops;
  void *arg; /* passed to fresh and load */
  /* A new empty tree (the ops' aux), or NULL with *err. */
  void *(*fresh)(void *arg, int *err);
  /* Puts fs into st (its own field), borrowing from fs; `described`
   * frees whatever describe allocated once st has been packed. */
  void (*describe)(void *fs, Uksim__P9s__State *st);
  void (*described)(Uksim__P9s__State *st);
  /* A tree rebuilt from st, or NULL with *err and a reason in why. */
  void *(*load)(void *arg, const Uksim__P9s__State *st, int *err, char *why,
                size_t whylen);
};

struct p9h_opts {
  const char *service; /* at most 31 bytes */
  uint64_t state_max;  /* bytes the state ICA may grow to */
  int trace;           /* every 9P message on stderr */
};

/* Registers o->service and serves until the kernel ends the server or a
 * successor takes over (returns 0 then); a negative errno otherwise. */
int p9h_run(const struct p9h_backend *b, const struct p9h_opts *o);

/* Parses the options every 9P server takes (--name, --state-max,
 * --trace) from argv, leaving the others to the caller in argv[1..*argc)
 * order; -1 after saying why on stderr. */
int p9h_parse(int *argc, char **argv, struct p9h_opts *o);

#endif
