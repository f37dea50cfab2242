/* tally: a uksim OS server, written by `uksim new-server tally`, then
 * "optimised" by a student: lab 12's server with a planted
 * protocol bug (docs/labs/12-explore.md).  Do not copy it: copy the
 * skeleton `uksim new-server` writes.
 *
 * THE BUG: greet() answers first and counts later.  The greeting it just
 * served is only remembered in `pending`, a variable of this process,
 * and added to the state ICA when the next request comes in.  The
 * student's reasoning: "the next request always comes".  It does not
 * when the server is replaced between two requests: save_state() does
 * not know about `pending`, the successor starts from a state one
 * greeting short, and the client's final count disagrees.
 *
 * Service "tally" (or --service NAME), two ops:
 *   0 greet  the control ICA holds a NUL-terminated name; the answer, in
 *            the same ICA, is "hello, NAME".
 *   1 count  the answer is the number of greetings served so far, as 8
 *            bytes: the server's state, which survives a replacement.
 *
 * The state lives in one state ICA (method 2 of the AnT paper: everything
 * in one ICA), registered with srv_state_register() and updated in place
 * with single aligned stores, so that a crash at any instruction leaves a
 * state the successor can restore.  A successor (a replacement, or a
 * restart after a crash) restores it in restore_state(); the old server's
 * save_state() hook runs when it is being replaced.
 *
 * Build and run (Makefile beside this file):
 *   make                 cc tally.c $(pkg-config --cflags --libs uksim)
 *   make check           UKSIM_PATH=. uksim run tally.scn
 *
 * Where to go from here: add ops to handle() (and their names to OPNAMES),
 * fields to struct tally_state (bump STATE_VERSION and convert the old
 * layout in restore_state()), and expectations to tally.scn.  The calls
 * are documented in <uksim/server.h>, <uksim/ica.h> and <uksim/ap.h>.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uksim/server.h>

/* The layout of the state ICA; a successor refuses a newer one. */
#define STATE_VERSION 1
#define STATE_MAGIC 0x6b69747374617465ull /* "kitstate" */
/* Bytes of the state ICA (the kernel hands out whole pages). */
#define STATE_SIZE 4096
#define GREETING "hello, "
#define OPNAMES "greet,count"

enum op { OP_GREET = 0, OP_COUNT = 1 };

struct state {
  uint64_t magic;
  uint32_t version;
  uint32_t handoffs;  /* replacements this state has been through */
  uint64_t greetings; /* greetings served, by every instance */
};

static uk_ica state_ica; /* attached for the server's life */
/* Greetings answered but not yet in the state ICA (the planted bug). */
static uint64_t pending;

static struct state *state(void) {
  return state_ica.base;
}

/* A first start: a new state ICA, registered so a successor finds it. */
static int fresh_state(void) {
  int r = ica_create(STATE_SIZE, KABI_ICA_STATE, &state_ica);
  if (r < 0)
    return r;
  *state() = (struct state){.magic = STATE_MAGIC, .version = STATE_VERSION};
  return srv_state_register(&state_ica);
}

/* A successor: take over the predecessor's state, or refuse it (the
 * replacement then fails and the old server keeps serving). */
static int restore_state(void) {
  int r = srv_state_get(&state_ica);
  if (r == -ENOENT)
    return fresh_state(); /* the predecessor registered none */
  if (r < 0)
    return r;
  const struct state *s = state();
  if (state_ica.size < sizeof *s || s->magic != STATE_MAGIC)
    return srv_panic("the state is not this server's");
  if (s->version > STATE_VERSION)
    return srv_panic("the state is newer than this server");
  /* Same layout: serve from it in place.  Do not write to it before the
   * first srv_receive(): until then the old server may resume with it. */
  return 0;
}

/* Called in the old server when a successor is taking over.  With method 2
 * the state is already in the ICA the successor gets, so saving is one
 * store; a server that keeps state elsewhere would write it out here. */
static int save_state(uint32_t successor_version, void *arg) {
  (void)successor_version;
  (void)arg;
  state()->handoffs++;
  return 0;
}

/* greet: "NAME" becomes "hello, NAME" in place. */
static int greet(srv_req *r) {
  char *buf = r->ctl.base;
  size_t len = strnlen(buf, r->ctl.size), glen = strlen(GREETING);
  if (len == r->ctl.size)
    return -EINVAL; /* no NUL inside the ICA */
  if (glen + len + 1 > r->ctl.size)
    return -ENAMETOOLONG;
  memmove(buf + glen, buf, len + 1);
  memcpy(buf, GREETING, glen);
  pending++; /* counted at the next request: the bug */
  return 0;
}

/* Answers one request: 0 or -errno, which the client sees.  Anything the
 * client sent is untrusted: check it before use. */
static int handle(srv_req *r) {
  state()->greetings += pending; /* the previous request's greeting */
  pending = 0;
  if (r->ctl.base == NULL)
    return -EINVAL;
  switch (r->op) {
  case OP_GREET:
    return greet(r);
  case OP_COUNT:
    if (r->ctl.size < sizeof(uint64_t))
      return -EINVAL;
    memcpy(r->ctl.base, &state()->greetings, sizeof(uint64_t));
    return 0;
  default:
    return -ENOSYS; /* an op we do not know: say so, do not guess */
  }
}

/* The options a scenario gives a server: --service NAME, --state METHOD
 * (only "single" is implemented here). */
static const char *options(int argc, char **argv) {
  static const struct option longopts[] = {
      {"service", required_argument, NULL, 's'},
      {"state", required_argument, NULL, 'm'},
      {0}};
  const char *service = "tally";
  int c;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    if (c == 's')
      service = optarg;
    else if (c != 'm' || strcmp(optarg, "single") != 0) {
      fprintf(stderr, "tally: usage: tally [--service NAME] "
                      "[--state single]\n");
      exit(2);
    }
  }
  return service;
}

int main(int argc, char **argv) {
  const char *service = options(argc, argv);
  int how;
  srv_req req;
  int r = srv_register(service, STATE_VERSION, OPNAMES, &how);
  if (r == 0)
    r = how == KABI_REG_FRESH ? fresh_state() : restore_state();
  srv_on_replace(save_state, NULL);
  if (r == 0)
    r = srv_receive(&req);
  while (r == 0)
    r = srv_reply_receive(&req, handle(&req));
  if (r == -ESHUTDOWN || r == -ECONNRESET)
    return 0; /* replaced by a successor, or ended by the kernel */
  fprintf(stderr, "tally: %s\n", strerror(-r));
  return 1;
}
