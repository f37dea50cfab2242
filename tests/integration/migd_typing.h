/* Console input in the migration tests (sim-kernel/migcons.h): lines
 * typed to a task at node a, before, during and between moves, and the
 * check that a console echoed exactly those lines, each once and in the
 * order typed (apps/mtask echoes "taskID echo LINE"). */
#ifndef UKSIM_TEST_MIGD_TYPING_H
#define UKSIM_TEST_MIGD_TYPING_H

#include "migd_nodes.h"

/* Lines one test may type. */
#define MT_LINES_MAX 256

/* The lines typed so far, in order. */
extern char mt_typed[MT_LINES_MAX][16];
extern int mt_ntyped;

/* A suite's init: skipped under valgrind (migration is real time), no
 * line typed yet. */
void mt_setup(void);
/* Starts apps/mtask --read-after MOVES at a, as its task1, and waits for
 * its first count. */
void mt_start_task(int read_after);
/* Types `count` lines `prefix`NN at node n to its task id. */
void mt_type_lines(struct mn_node *n, int id, const char *prefix, int count);
/* Moves task id of node `from` to node `to` by method, while a child
 * types `during` lines mNN at a to task1: they land before, in or after
 * the move, wherever they land. */
void mt_move_typing(int from, int id, int to, const char *method, int during);
/* The echoes in the file are task`id`'s, and exactly the lines typed. */
void mt_echoes_are_typed(const char *path, int id);

#endif
