/* The HOME transitions of a task's console input (sim-kernel/migcons.h):
 * an origin's entry whose task came back as another entry hands it what
 * it held, after the move's carry, and forwards every later input to it;
 * a Hold is answered, an Active ignored, a chain of returns forwards on,
 * and a pipe without room refuses what it cannot take. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migcons.h"
#include "migwire.h"

/* The origin's first entry of the task (left), the entry it came back as
 * (back) with its stdin pipe's read end rd, the entry of a second return
 * (again), and a console connection from where the task ran (sv[0] ours). */
static struct migcons left, back, again;
static int rd = -1, sv[2] = {-1, -1};
static uint8_t carry[MIG_INPUT_MAX];

static void setup(void) {
  migcons_init(&left, 1);
  migcons_init(&back, 1);
  migcons_init(&again, 1);
  rd = migcons_pipe(&back);
  cr_assert_geq(rd, 0);
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
}

static void teardown(void) {
  close(rd);
  close(sv[0]);
  close(sv[1]);
}

TestSuite(migcons_home, .init = setup, .fini = teardown, .timeout = 30);

/* c in HOLD (the task parked for a move, nothing unread here) holding
 * `held`. */
static void holding(struct migcons *c, const char *held) {
  cr_assert_eq(migcons_drain(c, carry), 0);
  cr_assert_eq(c->mode, MIGCONS_HOLD);
  cr_assert_eq(migcons_input(c, (const uint8_t *)held, strlen(held)), 0);
}

static void type(struct migcons *c, const char *s) {
  cr_assert_eq(migcons_input(c, (const uint8_t *)s, strlen(s)), 0);
}

/* The pipe's bytes now equal want. */
static void pipe_has(int fd, const char *want) {
  char got[256] = "";
  fcntl(fd, F_SETFL, O_NONBLOCK);
  ssize_t n = read(fd, got, sizeof got - 1);
  cr_assert_eq(n, (ssize_t)strlen(want), "read %zd: '%s'", n, n > 0 ? got : "");
  got[n] = 0;
  cr_assert_str_eq(got, want);
}

/* Nothing came on the console connection. */
static void quiet(void) {
  struct pollfd p = {.fd = sv[1], .events = POLLIN};
  cr_assert_eq(poll(&p, 1, 0), 0, "input went to the task's old node");
}

Test(migcons_home, held_input_goes_home_after_the_carry_then_later_input) {
  int first = migcons_pipe(&left); /* the task's first process's stdin */
  cr_assert_geq(first, 0);
  close(first);
  type(&back, "carry ");
  holding(&left, "held ");
  cr_assert_eq(migcons_home(&left, &back), 0);
  cr_assert_eq(left.mode, MIGCONS_HOME);
  cr_assert_eq(left.held_len, 0);
  cr_assert(left.pipe_wr < 0 && left.pipe_rd < 0, "its old pipe is open");
  type(&left, "later");
  pipe_has(rd, "carry held later");
}

Test(migcons_home, an_away_entry_goes_home_and_sends_nothing_more_away) {
  holding(&left, "");
  migcons_active(&left, sv[0]);
  cr_assert_eq(left.mode, MIGCONS_AWAY);
  cr_assert_eq(migcons_home(&left, &back), 0);
  cr_assert_eq(left.away_fd, -1);
  type(&left, "x");
  pipe_has(rd, "x");
  quiet();
}

Test(migcons_home, a_hold_is_answered_and_an_active_ignored) {
  holding(&left, "");
  migcons_home(&left, &back);
  migcons_hold(&left, sv[0]);
  MigMsg *m = mig_recv(sv[1]);
  cr_assert(m && m->m_case == MIG_MSG__M_CONSOLE && m->console->held,
            "no Held");
  mig_msg__free_unpacked(m, NULL);
  cr_assert_eq(left.mode, MIGCONS_HOME);
  migcons_active(&left, sv[0]);
  cr_assert_eq(left.mode, MIGCONS_HOME);
  type(&left, "y");
  pipe_has(rd, "y");
  quiet();
}

/* A -> B -> A -> B -> A: the entry the task came home as moves on and
 * comes home again; the first entry's input follows it each time. */
Test(migcons_home, a_second_return_forwards_on) {
  holding(&left, "1 ");
  migcons_home(&left, &back);
  type(&left, "2 ");
  pipe_has(rd, "1 2 ");
  type(&left, "3 "); /* unread when it moves on: the carry */
  cr_assert_eq(migcons_drain(&back, carry), 2);
  cr_assert_eq(memcmp(carry, "3 ", 2), 0);
  type(&left, "4 "); /* held by the entry it came home as */
  int rd2 = migcons_pipe(&again);
  migcons_input(&again, carry, 2);
  cr_assert_eq(migcons_home(&back, &again), 0);
  type(&left, "5");
  pipe_has(rd2, "3 4 5");
  close(rd2);
}

Test(migcons_home, a_full_pipe_refuses_the_held_input_and_still_goes_home) {
  int size = fcntl(back.pipe_wr, F_GETPIPE_SZ);
  cr_assert_gt(size, 0);
  static uint8_t fill[1 << 20];
  cr_assert_leq((size_t)size, sizeof fill);
  cr_assert_eq(write(back.pipe_wr, fill, (size_t)size), size);
  holding(&left, "lost");
  cr_assert_eq(migcons_home(&left, &back), -EAGAIN);
  cr_assert_eq(left.mode, MIGCONS_HOME);
  cr_assert_eq(migcons_input(&left, (const uint8_t *)"z", 1), -EAGAIN);
}
