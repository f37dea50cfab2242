/* A task's console input across moves (seed 004 §4, "I/O at the origin";
 * issue 16): the input a user types at the task's origin node reaches the
 * task wherever it runs, each byte exactly once and in the order typed,
 * including the bytes the task had not read yet when it moved.
 *
 * Each node's migration server keeps one struct migcons per task entry
 * (migd.c).  On the node the task runs on, its input goes into the task's
 * stdin pipe; the server keeps a duplicate of the pipe's read end, so that
 * what the task has not read can be taken out of the pipe once the task is
 * parked (task.h: a parked task reads nothing) and carried to the
 * destination.  At the origin, once the task runs elsewhere, its input is
 * sent on the console connection of the node it runs on (migd.h,
 * "Console").
 *
 * States of one entry's input (mode):
 *
 *   LOCAL  the task runs here: input -> its stdin pipe
 *   HOLD   the task is parked for a move, or runs elsewhere while the
 *          origin does not know where yet: input -> held[] (bounded by
 *          MIG_INPUT_MAX; more is refused, -EAGAIN)
 *   AWAY   origin only, the task runs at the node whose console
 *          connection is away_fd: input -> Console(input) on away_fd
 *   HOME   origin only, the task came back here as another entry (a move
 *          makes a new entry at its destination, the origin too): input
 *          -> that entry's struct migcons (home), as if typed to it
 *
 *   LOCAL --migcons_drain (task parked, move starting)--> HOLD
 *          the pipe's unread bytes, then held[], returned as the carry;
 *          the mover sends it to the destination before Threads, where
 *          migcons_input puts it into the new copy's pipe (LOCAL there)
 *          before the copy reads anything
 *   HOLD  --migcons_local(carry) (move aborted, or the task restarted
 *          here from its duplicate)--> LOCAL: carry, then held[], into
 *          the (new) pipe
 *   HOLD  --migcons_active(fd) (origin: a console connection says the task
 *          runs at its node now)--> AWAY(fd): held[] sent first
 *   AWAY  --migcons_hold(fd) (origin: that node is about to move the task
 *          on; Hold on fd)--> HOLD, answered Held on fd: nothing follows
 *          on fd, so the node that moves it on carries all it received
 *   AWAY  --migcons_lost(fd) (fd ended)--> HOLD
 *   HOLD or AWAY --migcons_home(to) (origin: the task came back here as
 *          entry `to`, parked, the move's carry in its pipe already)-->
 *          HOME(to): held[] into to (its pipe: after the carry), then
 *          every later input to to; its own pipe (the ended process's,
 *          drained at the first move) closed.  Done before the returned copy
 *          resumes and, in migd.c, under the table's lock together with
 *          `to` taking this entry's id (the one the user types to), so
 *          that no input typed to that id can pass held[]; the entry
 *          leaves the table then, and HOME passes on what was on its way
 *          to it (an input looked up before).  `to` is a
 *          fresh entry with a state machine of its own: a next move and
 *          a next return (A -> B -> A -> B -> A) are its transitions, and
 *          a HOME entry that it came home to again forwards on (a chain).
 *          Nothing leaves HOME; a Hold on it is answered Held (nothing is
 *          sent anywhere by it), an Active is stale and ignored.
 *
 * A node that is not the task's origin asks the origin to stop before it
 * drains (migcons_await_held: Hold, then Held or the origin gone), so that
 * no input is on its way to it when it takes the pipe's bytes out.  The
 * order typed is kept because each step hands over everything older
 * before anything newer can move: the carry goes before Commit on the
 * migration connection, the destination says Active only when it resumes
 * the task, and the origin sends nothing between Held and Active.
 *
 * When the origin is gone, the destination's console takes over: input
 * given to the node the task runs on (uksim-migd --ctl NODE input) goes
 * into its pipe as for any local task.
 */
#ifndef UKSIM_MIGCONS_H
#define UKSIM_MIGCONS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* Unread console input one task may have (in its pipe and held at a
 * node), and so the most one move carries: the capacity of a fresh pipe,
 * which the destination's copy must take whole. */
#define MIG_INPUT_MAX 65536

enum migcons_mode {
  MIGCONS_LOCAL = 0,
  MIGCONS_HOLD = 1,
  MIGCONS_AWAY = 2,
  MIGCONS_HOME = 3,
};

struct migcons {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int mode;             /* enum migcons_mode */
  int pipe_wr;          /* the task's stdin, our end (O_NONBLOCK), or -1 */
  int pipe_rd;          /* a duplicate of its read end, to drain it, or -1 */
  int away_fd;          /* AWAY: the console connection input goes to, or -1 */
  uint64_t task;        /* the origin's id of the task, in Console messages */
  struct migcons *home; /* HOME: the entry the task came back as */
  int acked; /* migcons_await_held: 1 Held came, -1 the origin gone */
  size_t held_len;
  uint8_t held[MIG_INPUT_MAX];
};

/* Sets up c for task `task` (its id at the origin), mode LOCAL, no pipe. */
void migcons_init(struct migcons *c, uint64_t task);

/* A new stdin pipe for a process about to start (the old one closed):
 * the read end for the process, or -errno. */
int migcons_pipe(struct migcons *c);

/* Closes the pipe (the entry is made anew: its task has ended). */
void migcons_close(struct migcons *c);

/* Input for the task, by mode (above): 0, -EAGAIN when the pipe or held[]
 * has no room for all n bytes (nothing taken), or the send's -errno. */
int migcons_input(struct migcons *c, const uint8_t *p, size_t n);

/* LOCAL -> HOLD, the task parked: what it has not read (the pipe's bytes,
 * then held[]) into carry (MIG_INPUT_MAX bytes); its length. */
size_t migcons_drain(struct migcons *c, uint8_t *carry);

/* HOLD -> LOCAL: carry, then held[], into the pipe.  0, or -EAGAIN when
 * the pipe took less (what did not fit is lost, and said). */
int migcons_local(struct migcons *c, const uint8_t *carry, size_t n);

/* Origin: HOLD or AWAY -> AWAY(fd), held[] sent on fd first. */
void migcons_active(struct migcons *c, int fd);
/* Origin: Hold on fd: -> HOLD if fd was where input went; Held on fd. */
void migcons_hold(struct migcons *c, int fd);
/* Origin: fd ended: -> HOLD if fd was where input went. */
void migcons_lost(struct migcons *c, int fd);

/* Origin: the task came back here as `to` (LOCAL, parked, the carry in
 * its pipe): c -> HOME(to), held[] into to first.  0, or -EAGAIN when to
 * took less (what did not fit is lost, and said). */
int migcons_home(struct migcons *c, struct migcons *to);

/* Not the origin, before migcons_drain: Hold to the origin on console_fd,
 * then waits up to ms for its Held (migcons_acked).  0, or -EHOSTDOWN when
 * the origin is gone (its input cannot come any more either). */
int migcons_await_held(struct migcons *c, int console_fd, int ms);
/* The console connection's reader saw Held (1) or its end (-1). */
void migcons_acked(struct migcons *c, int how);

/* Tells the origin on console_fd that the task runs here now (Active). */
int migcons_say_active(int console_fd, uint64_t task);

#endif /* UKSIM_MIGCONS_H */
