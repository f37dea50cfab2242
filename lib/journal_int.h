/* libuksim's own use of its replay journal (uksim/journal.h): the calls
 * note in uk__journal(), which is NULL while uk_journal_replay_self runs,
 * so that the replayed calls are not recorded again.  Both are used under
 * the library's lock (lock.c). */
#ifndef UKSIM_LIB_JOURNAL_INT_H
#define UKSIM_LIB_JOURNAL_INT_H

#include <stdbool.h>

#include "uksim/journal.h"

/* This process's journal, or NULL while a replay runs (borrowed). */
struct uk_journal *uk__journal(void);

/* Turns the notes off (on == true) for a replay, and back on. */
void uk__journal_quiet(bool on);

/* The kernel answered a call KABI_ANS_REPLAY (conn.c): replays the
 * journal against it and tells it how that went (KABI_REPLAY_DONE).
 * Returns the replay's error, or the KABI_REPLAY_DONE call's. */
int uk__journal_replay_for_kernel(void);

#endif
