/* REPLY_MANY_RECEIVE's transitions (include/uksim/kabi.h, sim-kernel/
 * kcall.c do_reply_many_receive), from a server of our own: an attached
 * child registers "bchk", receives the clients' queued requests as one
 * batch, has each malformed batch of replies refused with nothing taken
 * (a request named twice, an ICA handed back twice, a request it does not
 * hold, more than SRV_BATCH_MAX), then replies to the batch at once and
 * serves one more request.  Each client (ctr_load) gets exactly one
 * answer. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "uksim/kdata.h"
#include "uksim/server.h"

#define CLIENTS 3

/* Replies to req[0..n-1] with st: what the kernel says (*got requests
 * received when it took them). */
static int reply(srv_req *req, uint32_t n, uint32_t *got) {
  int32_t st[SRV_BATCH_MAX + 1] = {0};
  return srv_reply_receive_many(req, st, n, got);
}

/* The refusals, each leaving the batch held: 0, or the number of the
 * check that failed. */
static int refusals(srv_req *rq) {
  uint32_t got;
  srv_req two[SRV_BATCH_MAX + 1] = {rq[0], rq[0]};
  memset(&two[1].ctl, 0, sizeof two[1].ctl); /* no ICA: KABI_ICA_NONE */
  if (reply(two, 2, &got) != -EINVAL)
    return 21; /* one request, two replies */
  two[1] = rq[1];
  two[1].ctl = rq[0].ctl;
  if (reply(two, 2, &got) != -EINVAL)
    return 22;               /* one ICA handed back twice */
  two[0].req ^= 0x40000000u; /* another request's id */
  int r = reply(two, 1, &got);
  if (r != -ENOENT && r != -EPERM)
    return 23;
  if (reply(rq, SRV_BATCH_MAX + 1, &got) != -EINVAL)
    return 24;
  return 0;
}

/* The attached server: 0, or what failed.  It says on `ready` that it
 * has registered, and receives once `go` says the clients' calls are
 * queued. */
static int serve(int ready, int go) {
  srv_req rq[SRV_BATCH_MAX];
  uint32_t n = 0;
  if (srv_register("bchk", 1, "incr,get", NULL) < 0)
    return 10;
  if (write(ready, "r", 1) != 1)
    return 11;
  char c;
  if (read(go, &c, 1) != 1)
    return 15;
  if (srv_reply_receive_many(rq, NULL, 0, &n) < 0 || n != CLIENTS)
    return 12;
  int e = refusals(rq);
  if (e)
    return e;
  for (uint32_t i = 0; i < n; i++) {
    uint64_t v = i + 1; /* each client's counter grows from 0 */
    memcpy(rq[i].ctl.base, &v, sizeof v);
  }
  uint32_t got = 0;
  if (reply(rq, n, &got) < 0 || got != 1)
    return 13; /* then the last client's request, alone */
  uint64_t v = 1;
  memcpy(rq[0].ctl.base, &v, sizeof v);
  return srv_reply(&rq[0], 0) < 0 ? 14 : 0;
}

static pid_t start_server(mach_client *m, int *ready, int *go) {
  int proc, fd, p[2], g[2];
  cr_assert(pipe(p) == 0 && pipe(g) == 0);
  cr_assert_eq(mach_attach(m, "bchk", -1, 0, &proc, &fd), 0, "%s", m->error);
  pid_t pid = fork();
  cr_assert(pid >= 0);
  if (pid == 0) {
    char v[16];
    close(p[0]);
    close(g[1]);
    snprintf(v, sizeof v, "%d", fd);
    setenv("UKSIM_FD", v, 1);
    _exit(serve(p[1], g[0]));
  }
  close(fd);
  close(p[1]);
  close(g[0]);
  *ready = p[0];
  *go = g[1];
  return pid;
}

/* Waits until service name has n requests queued (its table entry). */
static void await_queued(mach_client *m, const char *name, uint32_t n) {
  for (int t = 0; t < 60000; t++) {
    const struct uk_kdata *kd;
    cr_assert_eq(mach_kdata(m, &kd, NULL), 0, "%s", m->error);
    uint32_t q = 0;
    for (uint32_t s = 0; s < UK_SVC_MAX; s++)
      if (kd->svc[s].state == UK_SVC_UP && !strcmp(kd->svc[s].name, name))
        q = kd->svc[s].q_len;
    mach_kdata_unmap(kd);
    if (q >= n)
      return;
    usleep(1000);
  }
  cr_assert_fail("%u requests never queued at %s", n, name);
}

static int64_t client(mach_client *m) {
  char *a[] = {"--service", "bchk", "--count", "1", "--quiet"};
  return h_spawn(m, "ctr_load", a, 5, "client", NULL);
}

Test(batch_calls, a_batch_is_received_and_bad_replies_take_nothing,
     .timeout = 120) {
  mach_client m;
  int ready, go;
  char c;
  h_boot(&m, NULL);
  pid_t srv = start_server(&m, &ready, &go);
  cr_assert_eq(read(ready, &c, 1), 1, "the server did not register");
  close(ready);
  int64_t w[CLIENTS];
  for (int i = 0; i < CLIENTS; i++)
    w[i] = client(&m);
  await_queued(&m, "bchk", CLIENTS);
  cr_assert_eq(write(go, "g", 1), 1);
  close(go);
  for (int i = 0; i < CLIENTS; i++)
    cr_expect_eq(h_wait(&m, w[i]), 0, "client %d had no answer", i);
  cr_expect_eq(h_wait(&m, client(&m)), 0, "the last client had no answer");
  int st = -1;
  cr_assert_eq(waitpid(srv, &st, 0), srv);
  cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0,
            "the server's check %d failed", WEXITSTATUS(st));
  h_halt_clean(&m);
}
