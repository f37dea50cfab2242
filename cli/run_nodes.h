/* A scenario's peer nodes (`node NAME --port N`, scenarios/scn.h): real
 * machines the runner boots beside the one under test and halts after
 * it, each with kvs, ramfs, `netmsg serve` at N and `uksim exportfs` at
 * N + 1.  They are outside the run's trace, as tcp-clients are. */
#ifndef UKSIM_CLI_RUN_NODES_H
#define UKSIM_CLI_RUN_NODES_H

#include <stddef.h>

#include "scn.h"

struct run_nodes;

/* Boots every node of s, their output (stderr) into DIR/node-NAME.log, the
 * run's private directory: NULL with why set when one could not start
 * (its log's end on stderr; the ones started are halted again); a struct
 * with no node when s has none. */
struct run_nodes *run_nodes_start(const struct scn *s, const char *dir,
                                  char *why, size_t len);
/* The log of node `name`'s machine in dir, into path. */
void run_node_log(const char *dir, const char *name, char *path, size_t len);
/* Its last lines on stderr, after a failure. */
void run_node_log_show(const char *path);
/* Halts them and frees n (NULL: nothing). */
void run_nodes_stop(struct run_nodes *n);

#endif
