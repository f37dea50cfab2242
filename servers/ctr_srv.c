/* ctr_srv: a counter server, the smallest server whose state must survive
 * a replacement, a crash or a failover exactly once (the tests' and the
 * benchmarks' load, and ctask's service on a scenario's nodes).
 *
 * Service "ctr" (or --service NAME); ops incr and get answer the count in
 * the first 8 bytes of the control ICA.  The count lives in a state ICA
 * (method 2 of seed 000: one ICA), updated with one aligned 8-byte store,
 * so a crash at any instruction leaves a valid state.  --version N writes
 * state version N; a server refuses state of a newer version than its own
 * (srv_panic), and converts older state into a new ICA before serving.
 * --hang-restoring yes: an instance started to restart the service
 * registers and then never restores nor serves (a restart that never ends).
 * --delay-ms N: each request takes N ms more (a slow server, whose queue
 * stays long: what a failover's backlog is made of).
 * --batch no: one request a call (srv_reply_receive) instead of a batch
 * of up to SRV_BATCH_MAX (srv_reply_receive_many, the default: a queue
 * of N requests costs N / SRV_BATCH_MAX round trips through the kernel).
 * A batch keeps seed 000's guarantee: each increment is in the state ICA
 * (the one store) before the batch's replies go, and the kernel releases
 * none of their results before it has the call that carries them all;
 * a server that dies in a batch leaves each of its requests answered
 * -ECONNRESET (done or not: the client cannot tell), none twice.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "uksim/server.h"

#define CTR_MAGIC 0x637472737461ull /* "ctrsta" */
/* --delay-ms at most: a request slower than a second would outlast the
 * tests' own deadlines. */
#define CTR_DELAY_MS_MAX 1000
enum { CTR_INCR, CTR_GET };

struct ctr_state {
  uint64_t magic;
  uint32_t version;
  uint32_t pad;
  uint64_t count;
};

static uint32_t version = 1;
static bool hang_restoring; /* --hang-restoring: a successor never serves */
static unsigned delay_ms;   /* --delay-ms: added to every request */
static bool batch = true;   /* --batch: srv_reply_receive_many */

static int fresh_state(uk_ica *st, uint64_t count) {
  int r = ica_create(4096, KABI_ICA_STATE, st);
  if (r < 0)
    return r;
  struct ctr_state *cs = st->base;
  cs->magic = CTR_MAGIC;
  cs->version = version;
  cs->count = count;
  return srv_state_register(st);
}

/* A successor: take over the predecessor's state, or refuse it. */
static int restore(uk_ica *st) {
  uk_ica old;
  int r = srv_state_get(&old);
  if (r == -ENOENT)
    return fresh_state(st, 0);
  if (r < 0)
    return r;
  const struct ctr_state *cs = old.base;
  if (old.size < sizeof *cs || cs->magic != CTR_MAGIC)
    return srv_panic("state is not a counter");
  if (cs->version > version) {
    char why[64];
    snprintf(why, sizeof why, "state version %u not supported", cs->version);
    return srv_panic(why);
  }
  if (cs->version == version) {
    *st = old; /* the same layout: serve from it in place */
    return 0;
  }
  return fresh_state(st, cs->count); /* convert into a new ICA */
}

static int handle(srv_req *rq, void *arg) {
  struct ctr_state *cs = ((uk_ica *)arg)->base;
  if (rq->ctl.size < sizeof(uint64_t))
    return -EINVAL;
  if (delay_ms)
    usleep(delay_ms * 1000);
  if (rq->op == CTR_INCR)
    cs->count++;
  else if (rq->op != CTR_GET)
    return -ENOSYS;
  memcpy(rq->ctl.base, &cs->count, sizeof cs->count);
  return 0;
}

/* One request a round trip. */
static int serve(uk_ica *st) {
  srv_req rq;
  int r = srv_receive(&rq);
  while (r == 0)
    r = srv_reply_receive(&rq, handle(&rq, st));
  return r;
}

/* A batch a round trip: the increments are stored as they are served, so
 * the state that includes a batch is saved when its replies go. */
static int serve_batches(uk_ica *st) {
  srv_req rq[SRV_BATCH_MAX];
  int32_t status[SRV_BATCH_MAX] = {0};
  uint32_t n = 0;
  int r = srv_reply_receive_many(rq, status, 0, &n);
  while (r == 0) {
    for (uint32_t i = 0; i < n; i++)
      status[i] = handle(&rq[i], st);
    r = srv_reply_receive_many(rq, status, n, &n);
  }
  return r;
}

int main(int argc, char **argv) {
  const char *name = "ctr";
  uk_ica st;
  int how;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--version"))
      version = (uint32_t)atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--service"))
      name = argv[i + 1];
    else if (!strcmp(argv[i], "--hang-restoring"))
      hang_restoring = !strcmp(argv[i + 1], "yes");
    else if (!strcmp(argv[i], "--delay-ms"))
      delay_ms = (unsigned)atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--batch"))
      batch = strcmp(argv[i + 1], "no") != 0;
    if (delay_ms > CTR_DELAY_MS_MAX)
      delay_ms = CTR_DELAY_MS_MAX;
  }
  int r = srv_register(name, version, "incr,get", &how);
  while (r == 0 && how != KABI_REG_FRESH && hang_restoring)
    pause(); /* registered, never restored: its restart never ends */
  if (r == 0)
    r = how == KABI_REG_FRESH ? fresh_state(&st, 0) : restore(&st);
  if (r == 0)
    r = batch ? serve_batches(&st) : serve(&st);
  if (r == -ESHUTDOWN)
    return 0; /* replaced */
  fprintf(stderr, "ctr_srv: %s\n", strerror(-r));
  return 1;
}
