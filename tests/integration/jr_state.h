/* What a process's kernel state looks like from inside, for the replay
 * journal's integration test (test_journal_replay.c, jr_replay.c): its
 * descriptors (the name each was opened by and its offset), the names
 * and lengths under a few directories of its namespace and its current
 * directory, one line each, through libuksim's ns calls only. */
#ifndef UKSIM_TEST_JR_STATE_H
#define UKSIM_TEST_JR_STATE_H

#include <stddef.h>

/* Writes the description into out[len] (cut short when it does not fit).
 * Uses one descriptor of its own for a moment, above every open one. */
void jr_describe(char *out, size_t len);

#endif
