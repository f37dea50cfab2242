/* Unit tests for taking processes over from a dead kernel's tables
 * (sim-kernel/adopt.c, Orthros seed 001 §2.6).
 *
 * The dead region is built with the kernel's own table functions (a
 * protected application, an unprotected one, a server and its service,
 * requests in every state, ICAs of every holder, namespaces), then taken
 * over into an empty region.  Each test checks one rule of adopt.h; the
 * last one damages a good dead region at random and checks that the
 * takeover never crashes and always leaves tables that hold together.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "adopt.h"
#include "ktab.h"
#include "uksim/kabi.h"
#include "vfs.h"

static struct uk_kdata *dead, *mine;
static struct adopt_plan *plan;

enum { PA = 0, PB = 1, PS = 2 }; /* protected app, unprotected app, server */
static uint32_t svc_s;
static uint32_t req_queued_a, req_queued_b, req_insvc_a, req_answered_a;
static uint32_t ica_a, ica_req_a, ica_req_b, ica_srv, ica_kernel, ica_state;

static uint32_t ica_new(uint32_t holder_kind, uint32_t holder) {
  uint32_t id;
  cr_assert_geq(kern_ica_alloc(dead, KABI_ICA_DATA, 4096, UK_NIL, &id), 0);
  kern_ica_move(dead, id, (uint8_t)holder_kind, holder);
  return id;
}

static uint32_t req_new(uint32_t client, uint32_t seq, uint32_t ctl) {
  uint32_t id;
  int i = kern_req_alloc(dead, &id);
  cr_assert_geq(i, 0);
  struct uk_req *r = &dead->req[i];
  r->client = client;
  r->client_seq = seq;
  r->svc = svc_s;
  r->ctl = ctl;
  r->data = KABI_ICA_NONE;
  if (ctl != KABI_ICA_NONE)
    kern_ica_move(dead, ctl, UK_HOLD_REQUEST, (uint32_t)i);
  dead->proc[client].outstanding++;
  return id;
}

static int idx(uint32_t req_id) {
  return kern_req_lookup(mine, req_id);
}

/* A namespace for process p: a fresh group, root and cwd chans, and one
 * open descriptor. */
static void ns_for(uint32_t p) {
  uint32_t ns, root, file;
  struct uk_qid qd = {.path = 1, .type = UK_QTDIR}, qf = {.path = 2};
  cr_assert_eq(vfs_ns_new(dead, &ns), 0);
  cr_assert_eq(vfs_chan_new(dead, '/', 0, &qd, &root), 0);
  cr_assert_eq(vfs_proc_attach(dead, p, ns, root, root), 0);
  vfs_ns_unref(dead, ns);
  vfs_chan_unref(dead, root);
  cr_assert_eq(vfs_chan_new(dead, 'c', 0, &qf, &file), 0);
  int fd;
  cr_assert_eq(vfs_fd_new(dead, p, file, &fd), 0);
}

static void build_dead(void) {
  kern_kdata_init(dead, 100, 1, 1ull << 30);
  cr_assert_eq(kern_proc_alloc(dead, "app-a", 1001), PA);
  cr_assert_eq(kern_proc_alloc(dead, "app-b", 1002), PB);
  cr_assert_eq(kern_proc_alloc(dead, "srv", 1003), PS);
  dead->proc[PA].flags |= UK_PROC_F_PROTECT;
  int s = kern_svc_add(dead, "kvs");
  cr_assert_geq(s, 0);
  svc_s = (uint32_t)s;
  dead->svc[s].state = UK_SVC_UP;
  dead->svc[s].proc = PS;
  dead->proc[PS].kind = UK_PROC_SERVER;
  dead->proc[PS].svc = svc_s;
  ica_state = ica_new(UK_HOLD_SVC, svc_s);
  dead->svc[s].state_ica = ica_state;
  ica_a = ica_new(UK_HOLD_PROC, PA);
  ica_srv = ica_new(UK_HOLD_PROC, PS);
  ica_kernel = ica_new(UK_HOLD_KERNEL, 0);
  struct uk_svc *sv = &dead->svc[s];
  ica_req_a = ica_new(UK_HOLD_PROC, PA);
  req_queued_a = req_new(PA, 5, ica_req_a);
  kern_q_push(dead, &sv->q_head, &sv->q_tail, &sv->q_len,
              (uint32_t)kern_req_lookup(dead, req_queued_a));
  ica_req_b = ica_new(UK_HOLD_PROC, PB);
  req_queued_b = req_new(PB, 3, ica_req_b);
  kern_q_push(dead, &sv->q_head, &sv->q_tail, &sv->q_len,
              (uint32_t)kern_req_lookup(dead, req_queued_b));
  req_insvc_a = req_new(PA, 4, KABI_ICA_NONE);
  dead->req[kern_req_lookup(dead, req_insvc_a)].state = UK_REQ_IN_SERVICE;
  sv->held = 1;
  req_answered_a = req_new(PA, 2, KABI_ICA_NONE);
  int ai = kern_req_lookup(dead, req_answered_a);
  dead->req[ai].state = UK_REQ_ANSWERED; /* still outstanding till taken */
  struct uk_proc *pa = &dead->proc[PA];
  kern_q_push(dead, &pa->res_head, &pa->res_tail, &pa->res_len, (uint32_t)ai);
  pa->call_seq = pa->answered_seq = 5; /* no call in the kernel */
  ns_for(PA);
  ns_for(PB);
  char why[160];
  cr_assert_eq(vfs_check(dead, why, sizeof why), 0, "%s", why);
}

static void setup(void) {
  dead = malloc(sizeof *dead);
  mine = malloc(sizeof *mine);
  plan = malloc(sizeof *plan);
  cr_assert(dead && mine && plan);
  build_dead();
  kern_kdata_init(mine, 200, 2, 1ull << 30);
}

static void teardown(void) {
  free(dead);
  free(mine);
  free(plan);
}

TestSuite(adopt, .init = setup, .fini = teardown);

static void adopt_ok(void) {
  cr_assert_eq(adopt_tables(dead, mine, plan), 0);
}

/* Invariants every takeover must leave, however torn the dead region. */
static void assert_whole(void) {
  char why[160];
  cr_assert_eq(vfs_check(mine, why, sizeof why), 0, "vfs: %s", why);
  uint32_t held[UK_PROC_MAX] = {0};
  for (uint32_t i = 0; i < UK_ICA_MAX; i++) {
    const struct uk_ica_ent *e = &mine->ica[i];
    if (e->state != UK_ICA_LIVE)
      continue;
    cr_assert(e->holder_kind != UK_HOLD_KERNEL, "a kernel ICA moved");
    if (e->holder_kind == UK_HOLD_PROC) {
      cr_assert_lt(e->holder, UK_PROC_MAX);
      cr_assert(plan->proc[e->holder].moved, "ICA of a process that ended");
      held[e->holder]++;
    }
  }
  for (uint32_t p = 0; p < UK_PROC_MAX; p++) {
    cr_assert_eq(mine->proc[p].icas_held, held[p]);
    cr_assert_eq(mine->proc[p].state != UK_PROC_FREE, plan->proc[p].moved);
  }
  for (uint32_t i = 0; i < UK_REQ_MAX; i++) {
    const struct uk_req *r = &mine->req[i];
    if (r->state == UK_REQ_FREE)
      continue;
    cr_assert_lt(r->client, UK_PROC_MAX);
    cr_assert(plan->proc[r->client].moved, "request of a process that ended");
  }
  for (uint32_t s = 0; s < UK_SVC_MAX; s++) {
    const struct uk_svc *sv = &mine->svc[s];
    uint32_t n = 0;
    for (uint32_t i = sv->q_head; n < sv->q_len; i = mine->req[i].next, n++) {
      cr_assert_lt(i, UK_REQ_MAX);
      cr_assert_eq(mine->req[i].state, UK_REQ_QUEUED);
    }
  }
}

Test(adopt, the_protected_app_moves_the_others_end) {
  adopt_ok();
  assert_whole();
  cr_assert_eq(plan->moved, 1);
  cr_assert_eq(plan->ended, 2);
  cr_assert(plan->proc[PA].moved);
  cr_assert_str_eq(plan->proc[PB].why, "not protected");
  cr_assert_str_eq(plan->proc[PS].why, "a server: its service restarts");
  cr_assert_eq(plan->proc[PB].pid, 1002, "the pid of what ends is named");
  cr_assert_eq(mine->proc[PA].gen, dead->proc[PA].gen);
  cr_assert_eq(mine->proc[PA].pid, 1001);
  cr_assert_str_eq(mine->proc[PA].name, "app-a");
  cr_assert_eq(mine->hdr.kernel_pid, 200, "the new kernel's header stays");
  cr_assert_eq(mine->hdr.os_id, 2);
}

Test(adopt, requests_of_the_moved_app_keep_their_ids_and_order) {
  adopt_ok();
  cr_assert_geq(idx(req_queued_a), 0);
  cr_assert_geq(idx(req_insvc_a), 0);
  cr_assert_geq(idx(req_answered_a), 0);
  cr_assert_lt(idx(req_queued_b), 0, "the unprotected app's request stayed");
  const struct uk_svc *sv = &mine->svc[svc_s];
  cr_assert_eq(sv->q_len, 1);
  cr_assert_eq(sv->q_head, (uint32_t)idx(req_queued_a));
  cr_assert_eq(sv->held, 1);
  cr_assert_eq(mine->proc[PA].res_len, 1);
  cr_assert_eq(mine->proc[PA].res_head, (uint32_t)idx(req_answered_a));
  /* Queued, in service and answered: a result not yet taken counts, as
   * in kcall.c (its delivery is what counts it out). */
  cr_assert_eq(mine->proc[PA].outstanding, 3);
  cr_assert_eq(plan->reqs_moved, 3);
  cr_assert_eq(plan->reqs_dropped, 1);
}

Test(adopt, icas_follow_their_holders) {
  adopt_ok();
  cr_assert(kern_ica_held_by(mine, ica_a, UK_HOLD_PROC, PA));
  cr_assert(kern_ica_held_by(mine, ica_state, UK_HOLD_SVC, svc_s));
  cr_assert(kern_ica_held_by(mine, ica_req_a, UK_HOLD_REQUEST,
                             (uint32_t)idx(req_queued_a)));
  /* The dead server's ICA is parked with its service, as a restart does. */
  cr_assert(kern_ica_held_by(mine, ica_srv, UK_HOLD_SVC, svc_s));
  cr_assert_lt(kern_ica_lookup(mine, ica_req_b), 0);
  cr_assert_lt(kern_ica_lookup(mine, ica_kernel), 0);
  cr_assert_eq(plan->icas_dropped, 2);
  bool b = false, k = false;
  for (uint32_t i = 0; i < plan->icas_dropped; i++) {
    b |= plan->dropped_ica[i] == ica_req_b;
    k |= plan->dropped_ica[i] == ica_kernel;
  }
  cr_assert(b && k, "the dropped ICAs are named for the machine");
}

Test(adopt, the_service_stays_without_its_server) {
  adopt_ok();
  const struct uk_svc *sv = &mine->svc[svc_s];
  cr_assert_eq(sv->state, UK_SVC_UP);
  cr_assert_eq(sv->proc, UK_NIL);
  cr_assert_eq(sv->state_ica, ica_state);
  cr_assert(plan->restart_svc[svc_s]);
  cr_assert_eq(kern_svc_lookup(mine, "kvs"), (int)svc_s);
}

Test(adopt, the_namespace_moves_with_the_app_only) {
  adopt_ok();
  cr_assert(!plan->ns_torn);
  cr_assert(mine->vfs.vproc[PA].attached);
  cr_assert(!mine->vfs.vproc[PB].attached);
  cr_assert_neq(vfs_fd_lookup(mine, PA, 0), UK_VFS_NONE, "its open file");
  assert_whole();
}

Test(adopt, torn_namespaces_are_dropped_and_said) {
  dead->vfs.chan[UK_VFS_INDEX(dead->vfs.vproc[PA].root)].ref = 0;
  adopt_ok();
  cr_assert(plan->ns_torn);
  cr_assert_neq(plan->ns_why[0], '\0');
  cr_assert(plan->proc[PA].moved, "the process moves without it");
  cr_assert(!mine->vfs.vproc[PA].attached);
  assert_whole();
}

/* Calls in the kernel when it died ------------------------------------------*/

Test(adopt, no_call_in_the_kernel_is_idle) {
  adopt_ok();
  cr_assert_eq(plan->proc[PA].call, ADOPT_IDLE);
}

Test(adopt, a_call_waiting_for_its_result_keeps_waiting) {
  struct uk_proc *pa = &dead->proc[PA];
  pa->state = UK_PROC_WAITING;
  pa->wait_op = KABI_CALL;
  pa->wait_seq = pa->call_seq = 6;
  pa->wait_req = req_insvc_a;
  adopt_ok();
  cr_assert_eq(plan->proc[PA].call, ADOPT_WAIT_RESULT);
  cr_assert_eq(plan->proc[PA].req, req_insvc_a);
  cr_assert_eq(plan->proc[PA].seq, 6);
  cr_assert_eq(mine->proc[PA].state, UK_PROC_WAITING);
}

Test(adopt, a_waiting_namespace_call_or_sleep_restarts) {
  /* UK_WAIT_LOCK: a call parked on a held kernel lock, never started. */
  uint16_t ops[] = {KABI_NS, KABI_SLEEP, UK_WAIT_LOCK};
  for (int i = 0; i < 3; i++) {
    build_dead();
    kern_kdata_init(mine, 200, 2, 1ull << 30);
    struct uk_proc *pa = &dead->proc[PA];
    pa->state = UK_PROC_WAITING;
    pa->wait_op = ops[i];
    pa->wait_seq = pa->call_seq = 9;
    adopt_ok();
    cr_assert_eq(plan->proc[PA].call, ADOPT_RESTART);
    cr_assert_eq(plan->proc[PA].seq, 9);
    cr_assert_eq(mine->proc[PA].state, UK_PROC_RUNNING);
  }
}

/* A kernel killed inside a call's path leaves its lock held: the new
 * kernel's locks are its own, all free. */
Test(adopt, the_dead_kernels_locks_are_not_inherited) {
  dead->lock[UK_LOCK_SVC].held = 1;
  dead->lock[UK_LOCK_SVC].owner = PA;
  dead->lock[UK_LOCK_SVC].waiters = 3;
  adopt_ok();
  for (int l = 0; l < UK_LOCK_MAX; l++) {
    cr_assert_eq(mine->lock[l].held, 0, "lock %d held", l);
    cr_assert_eq(mine->lock[l].waiters, 0, "lock %d has waiters", l);
  }
}

Test(adopt, a_send_cut_short_after_its_request_is_answered_with_it) {
  dead->proc[PA].call_seq = 4; /* made req_insvc_a, never answered */
  dead->proc[PA].call_op = KABI_SEND;
  adopt_ok();
  cr_assert_eq(plan->proc[PA].call, ADOPT_ANSWER_SEND);
  cr_assert_eq(plan->proc[PA].req, req_insvc_a, "sent once, not twice");
}

Test(adopt, a_call_cut_short_after_its_request_waits_for_it) {
  dead->proc[PA].call_seq = 4;
  dead->proc[PA].call_op = KABI_CALL;
  adopt_ok();
  cr_assert_eq(plan->proc[PA].call, ADOPT_WAIT_RESULT);
  cr_assert_eq(mine->proc[PA].state, UK_PROC_WAITING);
  cr_assert_eq(mine->proc[PA].wait_req, req_insvc_a);
}

Test(adopt, a_send_cut_short_before_its_request_restarts) {
  dead->proc[PA].call_seq = 6; /* no request has client_seq 6 */
  dead->proc[PA].call_op = KABI_SEND;
  adopt_ok();
  cr_assert_eq(plan->proc[PA].call, ADOPT_RESTART);
}

Test(adopt, a_namespace_call_cut_short_is_interrupted) {
  dead->proc[PA].call_seq = 6;
  dead->proc[PA].call_op = KABI_NS; /* it may have changed tables */
  adopt_ok();
  cr_assert_eq(plan->proc[PA].call, ADOPT_INTR);
}

Test(adopt, calls_without_effects_cut_short_restart) {
  uint16_t ops[] = {KABI_LOOKUP, KABI_ICA_CREATE, KABI_ICA_RELEASE,
                    KABI_ICA_ATTACH};
  for (int i = 0; i < 4; i++) {
    build_dead();
    kern_kdata_init(mine, 200, 2, 1ull << 30);
    dead->proc[PA].call_seq = 6;
    dead->proc[PA].call_op = ops[i];
    adopt_ok();
    cr_assert_eq(plan->proc[PA].call, ADOPT_RESTART, "op %u", ops[i]);
  }
}

Test(adopt, an_ica_create_cut_short_after_its_ica_is_answered_with_it) {
  dead->proc[PA].call_seq = 6;
  dead->proc[PA].call_op = KABI_ICA_CREATE;
  uint32_t id;
  cr_assert_geq(kern_ica_alloc(dead, KABI_ICA_DATA, 4096, PA, &id), 0);
  cr_assert_eq(dead->ica[KABI_ICA_INDEX(id)].made_by_seq, 6,
               "kern_ica_alloc records the creating call");
  adopt_ok();
  cr_assert_eq(plan->proc[PA].call, ADOPT_ANSWER_ICA);
  cr_assert_eq(plan->proc[PA].req, id, "made once, not twice");
}

/* What cannot be taken over -------------------------------------------------*/

Test(adopt, not_a_region_of_this_layout) {
  dead->hdr.layout++;
  cr_assert_eq(adopt_tables(dead, mine, plan), -EPROTO);
  dead->hdr.layout--;
  dead->hdr.magic = 0;
  cr_assert_eq(adopt_tables(dead, mine, plan), -EPROTO);
}

Test(adopt, a_kernel_with_processes_of_its_own_refuses) {
  cr_assert_geq(kern_proc_alloc(mine, "mine", 1), 0);
  cr_assert_eq(adopt_tables(dead, mine, plan), -EBUSY);
}

Test(adopt, a_torn_result_queue_refuses_the_process) {
  dead->proc[PA].res_len = 3;
  adopt_ok();
  cr_assert(!plan->proc[PA].moved);
  cr_assert_eq(plan->refused, 1);
  cr_assert_str_eq(plan->proc[PA].why, "its entry does not read whole");
  assert_whole();
}

Test(adopt, a_cycle_in_a_service_queue_ends) {
  struct uk_svc *sv = &dead->svc[svc_s];
  dead->req[sv->q_tail].next = sv->q_head; /* a cycle */
  sv->q_len = 5;
  adopt_ok();
  assert_whole();
}

/* A good region damaged at random: the takeover may refuse, never crash,
 * and what it builds holds together. */
Test(adopt, random_damage_never_breaks_the_new_tables, .timeout = 120) {
  unsigned seed =
      getenv("UKSIM_TEST_SEED") ? (unsigned)atoi(getenv("UKSIM_TEST_SEED")) : 1;
  srand(seed);
  struct uk_kdata *good = malloc(sizeof *good);
  memcpy(good, dead, sizeof *good);
  /* Damage falls on the tables a takeover reads, where it matters. */
  size_t lo = offsetof(struct uk_kdata, proc), hi = sizeof *good;
  for (int round = 0; round < 300; round++) {
    memcpy(dead, good, sizeof *dead);
    kern_kdata_init(mine, 200, 2, 1ull << 30);
    for (int k = 0; k < 1 + rand() % 16; k++) {
      size_t at = lo + (size_t)rand() % (hi - lo);
      ((unsigned char *)dead)[at] = (unsigned char)rand();
    }
    /* Damage near the live entries too, not only in empty slots. */
    unsigned char *hot[] = {
        (unsigned char *)&dead->proc[PA], (unsigned char *)&dead->svc[svc_s],
        (unsigned char *)&dead->req[0], (unsigned char *)&dead->ica[0],
        (unsigned char *)&dead->vfs.vproc[PA]};
    unsigned char *h = hot[rand() % 5];
    h[rand() % 64] = (unsigned char)rand();
    int r = adopt_tables(dead, mine, plan);
    cr_assert(r == 0 || r == -EPROTO, "seed %u round %d: %d", seed, round, r);
    if (r == 0)
      assert_whole();
  }
  free(good);
}
