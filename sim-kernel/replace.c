/* Server replacement (seed 000 §5) and restart after a fault (§3.1 (2)).
 *
 * Extension time, per service (uk_svc.phase):
 *
 *   SERVING    --Replace-->             REQUESTED  flag set, deadline timer on
 *   REQUESTED  --old server receives--> STARTING   successor spawned
 *   STARTING   --successor registers--> PREPARING  its register answers
 *                                       REPLACING; the old server's receive
 *                                       is answered PREPARE (its hook saves)
 *   PREPARING  --old server receives--> RESTORING  hand-off done; a
 *                                       deferred state_get is answered
 *   RESTORING  --successor receives or replies--> SERVING: the commit.  The
 *       old server's ICAs move to the successor (or are freed when it got a
 *       hand-off copy instead; ICAs of requests it holds always move), the
 *       service entry names the successor, the old server's receive is
 *       answered -ESHUTDOWN and the controller 0.
 *   REQUESTED..RESTORING --failure--> SERVING: the controller is told why,
 *       the successor killed, the hand-off ICA freed, and the old server,
 *       once it waits in receive, gets requests again (condition 3).
 *
 * Failures: the program is missing or cannot start; the successor exits or
 * panics (refuses the state) before the commit; the deadline passes; the old
 * server itself fails (then the fault path runs too).  Requests sent
 * meanwhile queue on the same service entry and are served by whichever
 * server serves next: none is lost.
 *
 * Fault time (a crash, a panic, or a hang: a request held past the
 * service's deadline):
 *
 *   any        --server fails-->  RESTARTING  the requests it held are
 *       answered -ECONNRESET except the kept ones (KEEP); those and every ICA
 *       it held are parked on the service; queued requests stay; a new
 *       instance of the service's program starts
 *   RESTARTING --it registers-->  (same)  parked ICAs move to it; register
 *       answers RESTARTING; state_get gives it the state ICA
 *   RESTARTING --it receives or replies--> SERVING
 *   RESTARTING --it fails before that, RESTART_MAX times in a row-->
 *       the service goes down (kcall.c: held -ECONNRESET, queued -ESRCH)
 *
 * Without a restart policy a failed server's service goes down at once.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "kern.h"

#define RESTART_MAX 3
#define REPLACE_DEADLINE_MS 5000
#define HANG_CHECK_MS 5

static const char *phase_name(uint32_t ph) {
  static const char *n[] = {"serving",   "requested", "starting",
                            "preparing", "restoring", "restarting"};
  return ph < sizeof n / sizeof n[0] ? n[ph] : "?";
}

static void set_phase(struct kern *k, uint32_t s, uint32_t ph) {
  kern__trace(k, "%s: %s -> %s", kd_svc(k, s)->name,
              phase_name(kd_svc(k, s)->phase), phase_name(ph));
  kd_svc(k, s)->phase = ph;
  if (ph != UK_PH_RESTARTING)
    kern__failover_settle(k); /* a failover's restart may be over */
}

/* A trace event about service s, by process `actor` (UK_NIL: kernel),
 * towards process `peer` (UK_NIL: none). */
static void svc_event(struct kern *k, const char *ev, uint32_t s,
                      uint32_t actor, uint32_t peer, const char *text) {
  kern__event(k, &(struct kern_ev){
                     .ev = ev,
                     .actor = actor != UK_NIL ? kd_proc(k, actor)->name : NULL,
                     .peer = peer != UK_NIL ? kd_proc(k, peer)->name : NULL,
                     .svc = kd_svc(k, s)->name,
                     .text = text,
                 });
}

static bool replacing(const struct uk_svc *sv) {
  return sv->phase >= UK_PH_REQUESTED && sv->phase <= UK_PH_RESTORING;
}

static bool waits_in(struct kern *k, uint32_t p, uint16_t op) {
  return kd_proc(k, p)->state == UK_PROC_WAITING &&
         kd_psched(k, p)->wait_op == op;
}

static bool waits_for_request(struct kern *k, uint32_t p) {
  return waits_in(k, p, KABI_RECEIVE) || waits_in(k, p, KABI_REPLY_RECEIVE);
}

/* Moves every ICA held by (hk, from), except one, to (to_hk, to). */
static void move_all(struct kern *k, uint8_t hk, uint32_t from, uint8_t to_hk,
                     uint32_t to, uint32_t except) {
  for (uint32_t i = 0; i < UK_ICA_MAX; i++) {
    const struct uk_ica_ent *e = &k->kd->ica[i];
    uint32_t id = KABI_ICA_ID(i, e->gen);
    if (e->state == UK_ICA_LIVE && e->holder_kind == hk && e->holder == from &&
        id != except) {
      kern_ica_move(k->kd, id, to_hk, to);
      k->kd->ctr.ica_detaches += hk == UK_HOLD_PROC;
    }
  }
}

/* The end of a replacement, either way: tell the controller. */
static void end_replacement(struct kern *k, uint32_t s, int status,
                            const char *why) {
  struct kern_svc *ks = &k->svc[s];
  struct uk_svc *sv = kd_svc(k, s);
  Uksim__Reply r = UKSIM__REPLY__INIT;

  kern__timer_stop(k, &ks->timer);
  sv->flags &= ~UK_SVC_F_REPLACE;
  r.proc = (int32_t)sv->proc;
  r.pid = sv->proc != UK_NIL ? kd_proc(k, sv->proc)->pid : 0;
  if (ks->ctl_pending)
    kern__reply(k, ks->ctl_id, status, why, &r);
  ks->ctl_pending = false;
  kern__prog_free(&ks->next);
  ks->succ_state = KABI_ICA_NONE;
  ks->handoff_given = false;
}

static void fail_replacement(struct kern *k, uint32_t s, int status,
                             const char *why) {
  struct uk_svc *sv = kd_svc(k, s);
  uint32_t n = sv->successor;

  kern__trace(k, "replacement of %s failed: %s", sv->name, why);
  svc_event(k, "fail", s, UK_NIL, sv->proc, why);
  sv->failed_replacements++;
  sv->successor = UK_NIL;
  if (n != UK_NIL) {
    if (status == -ETIMEDOUT) { /* alive but did not take over: hung */
      svc_event(k, "fault", s, n, UK_NIL, "hang: no take-over in time");
      svc_event(k, "detect", s, UK_NIL, n, "hang: no take-over in time");
    }
    kd_proc(k, n)->svc =
        UK_NIL; /* no longer the service's: its exit is its own */
    kern__kill(k, n, SIGKILL, NULL);
  }
  kern__ica_drop(k, sv->handoff_ica);
  sv->handoff_ica = KABI_ICA_NONE;
  set_phase(k, s, UK_PH_SERVING);
  end_replacement(k, s, status, why);
  kern__deliver_request(k, s); /* the old server resumes if it waits */
}

static void on_replace_timeout(struct kern *k, struct ktimer *t) {
  uint32_t s = (uint32_t)(uintptr_t)t->arg;
  char why[96];
  snprintf(why, sizeof why, "deadline passed: no take-over within %llu ms (%s)",
           (unsigned long long)k->svc[s].replace_ms,
           phase_name(kd_svc(k, s)->phase));
  kern__timer_stop(k, t);
  if (replacing(kd_svc(k, s)))
    fail_replacement(k, s, -ETIMEDOUT, why);
}

/* The next instance of service s is named "NAME.2", "NAME.3" ...: the
 * first one is the server started by hand, named as its starter chose. */
static void instance_name(struct kern *k, uint32_t s, char *out, size_t len) {
  struct kern_svc *ks = &k->svc[s];
  ks->instances = (ks->instances ? ks->instances : 1) + 1;
  snprintf(out, len, "%.*s.%u", KABI_NAME_MAX - 12, kd_svc(k, s)->name,
           ks->instances);
}

void rep_ctl_replace(struct kern *k, uint64_t id, const Uksim__Replace *rq) {
  struct kern_svc *ks;
  char file[4096];
  int s = kern_svc_lookup(k->kd, rq->svc ? rq->svc : "");

  if (s < 0 || kd_svc(k, s)->state != UK_SVC_UP) {
    kern__reply(k, id, -ESRCH, "no such service is up", NULL);
    return;
  }
  if (kd_svc(k, s)->phase != UK_PH_SERVING) {
    const char *why = kd_svc(k, s)->phase == UK_PH_RESTARTING
                          ? "the service is restarting after a fault"
                          : "a replacement of this service is already "
                            "running";
    svc_event(k, "fail", (uint32_t)s, UK_NIL, kd_svc(k, s)->proc, why);
    kern__reply(k, id, -EBUSY, why, NULL);
    return;
  }
  int r = kern__find_program(rq->program ? rq->program : "", file, sizeof file);
  if (r < 0) {
    svc_event(k, "fail", (uint32_t)s, UK_NIL, kd_svc(k, s)->proc,
              "the new server's binary was not found");
    kern__reply(k, id, r, kern__program_error(r), NULL);
    kd_svc(k, s)->failed_replacements++;
    return;
  }
  ks = &k->svc[s];
  kern__prog_make(&ks->next, file, rq->args, rq->n_args, rq->env, rq->n_env);
  if (rq->name && rq->name[0])
    snprintf(ks->next_name, sizeof ks->next_name, "%s", rq->name);
  else
    instance_name(k, (uint32_t)s, ks->next_name, sizeof ks->next_name);
  ks->ctl_pending = true;
  ks->ctl_id = id;
  uint64_t ms = rq->deadline_ms ? rq->deadline_ms : REPLACE_DEADLINE_MS;
  ks->replace_ms = ms;
  kern__timer_start(k, &ks->timer, ms * 1000000ull, 0);
  kd_svc(k, s)->flags |= UK_SVC_F_REPLACE;
  k->kd->ctr.ica_bytes_peak = k->ica_bytes; /* the swap's peak from here */
  kern__trace(k, "replace %s with %s: flag set", kd_svc(k, s)->name, file);
  svc_event(k, "flag", (uint32_t)s, UK_NIL, kd_svc(k, s)->proc,
            kern__prog_name(file));
  set_phase(k, s, UK_PH_REQUESTED);
  uint32_t old = kd_svc(k, s)->proc;
  if (waits_for_request(k, old))
    rep_at_receive(k, old, (uint32_t)s); /* idle: its receive is now */
}

static void start_successor(struct kern *k, uint32_t s) {
  struct kern_svc *ks = &k->svc[s];
  struct kern_prog prog;
  const char *err = "out of memory";
  int n = kern__prog_dup(&prog, &ks->next);
  if (n == 0)
    n = kern__spawn(k, ks->next_name, &prog, &err);
  if (n < 0) {
    fail_replacement(k, s, n, err);
    return;
  }
  k->proc[n].pol = ks->pol;
  kd_svc(k, s)->successor = (uint32_t)n;
  set_phase(k, s, UK_PH_STARTING);
}

/* The successor has registered: hand control back to the old server so it
 * saves what the successor needs (§5.2, Fig. 8). */
static void prepare_old(struct kern *k, uint32_t s) {
  struct uk_svc *sv = kd_svc(k, s);
  uint32_t old = sv->proc;
  struct kabi_prepare_msg pm = {
      .successor_version = k->svc[s].next_version,
      .successor_pid = kd_proc(k, sv->successor)->pid,
  };
  kabi_msg m;
  kabi_msg_init(&m, KABI_ANS_PREPARE, kd_psched(k, old)->wait_seq, 0, &pm,
                sizeof pm);
  kd_proc(k, old)->state = UK_PROC_RUNNING;
  k->proc[old].preparing = true;
  svc_event(k, "prepare", s, old, UK_NIL, NULL);
  kern__answer(k, old, &m);
}

/* Gives process p the state it should restore from: the hand-off ICA if
 * the old server saved one for it, else the registered state ICA. */
static int give_state(struct kern *k, uint32_t p, uint32_t s, uint32_t seq) {
  struct uk_svc *sv = kd_svc(k, s);
  uint32_t id = sv->state_ica;
  if (sv->successor == p && sv->handoff_ica != KABI_ICA_NONE) {
    id = sv->handoff_ica;
    sv->handoff_ica = KABI_ICA_NONE;
    kern_ica_move(k->kd, id, UK_HOLD_PROC, p);
    k->svc[s].handoff_given = true;
  }
  if (kern_ica_lookup(k->kd, id) < 0)
    return -ENOENT;
  kern__trace(k, "%s gets the state of %s: ica=%#x", kd_proc(k, p)->name,
              sv->name, id);
  k->kd->ctr.ica_attaches++;
  return kern__answer_ica(k, p, seq, id);
}

static void commit(struct kern *k, uint32_t s);

/* The old server has saved: answer what the successor waits for. */
static void handed_off(struct kern *k, uint32_t s) {
  uint32_t n = kd_svc(k, s)->successor;
  svc_event(k, "handoff", s, kd_svc(k, s)->proc, n, NULL);
  set_phase(k, s, UK_PH_RESTORING);
  if (waits_in(k, n, KABI_STATE_GET)) {
    kd_proc(k, n)->state = UK_PROC_RUNNING;
    int r = give_state(k, n, s, kd_psched(k, n)->wait_seq);
    if (r < 0)
      kern__answer_status(k, n, kd_psched(k, n)->wait_seq, r);
  } else if (waits_for_request(k, n)) {
    commit(k, s); /* it wanted no state: it is ready */
    kern__deliver_request(k, s);
  }
}

/* Requests the old server holds move with their ICAs; its other ICAs move
 * too, unless the successor restored from a hand-off copy (then they hold
 * the old version's state and are freed). */
static void move_old_icas(struct kern *k, uint32_t s, uint32_t old,
                          uint32_t n) {
  for (uint32_t i = 0; i < UK_REQ_MAX; i++) {
    const struct uk_req *r = &k->kd->req[i];
    if (r->state == UK_REQ_IN_SERVICE && r->svc == s) {
      kern_ica_move(k->kd, r->ctl, UK_HOLD_PROC, n);
      kern_ica_move(k->kd, r->data, UK_HOLD_PROC, n);
      k->kd->ctr.ica_detaches += 1 + (r->data != KABI_ICA_NONE);
    }
  }
  if (!k->svc[s].handoff_given) {
    move_all(k, UK_HOLD_PROC, old, UK_HOLD_PROC, n, KABI_ICA_NONE);
    return;
  }
  for (uint32_t i = 0; i < UK_ICA_MAX; i++) {
    const struct uk_ica_ent *e = &k->kd->ica[i];
    if (e->state == UK_ICA_LIVE && e->holder_kind == UK_HOLD_PROC &&
        e->holder == old) {
      kern__ica_drop(k, KABI_ICA_ID(i, e->gen));
      k->kd->ctr.ica_detaches++;
    }
  }
}

/* The successor's state_register before the commit takes effect here. */
static void adopt_state(struct kern *k, uint32_t s) {
  struct kern_svc *ks = &k->svc[s];
  struct uk_svc *sv = kd_svc(k, s);
  if (ks->handoff_given && ks->succ_state == KABI_ICA_NONE) {
    kern__ica_drop(k, sv->state_ica); /* the old version's layout */
    sv->state_ica = KABI_ICA_NONE;
  }
  if (ks->succ_state == KABI_ICA_NONE ||
      !kern_ica_held_by(k->kd, ks->succ_state, UK_HOLD_PROC, sv->proc))
    return;
  kern__ica_drop(k, sv->state_ica);
  kern_ica_move(k->kd, ks->succ_state, UK_HOLD_SVC, s);
  sv->state_ica = ks->succ_state;
}

static void commit(struct kern *k, uint32_t s) {
  struct uk_svc *sv = kd_svc(k, s);
  struct kern_svc *ks = &k->svc[s];
  uint32_t old = sv->proc, n = sv->successor;

  move_old_icas(k, s, old, n);
  kd_proc(k, old)->svc = UK_NIL;
  sv->proc = n;
  sv->successor = UK_NIL;
  sv->version = ks->next_version;
  sv->replacements++;
  adopt_state(k, s);
  kern__prog_free(&ks->prog);
  ks->prog = ks->next;
  memset(&ks->next, 0, sizeof ks->next);
  kern__trace(k, "%s takes over %s from %s", kd_proc(k, n)->name, sv->name,
              kd_proc(k, old)->name);
  svc_event(k, "commit", s, UK_NIL, n, kd_proc(k, old)->name);
  set_phase(k, s, UK_PH_SERVING);
  if (waits_for_request(k, old)) {
    kd_proc(k, old)->state = UK_PROC_RUNNING;
    kern__answer_status(k, old, kd_psched(k, old)->wait_seq, -ESHUTDOWN);
  }
  end_replacement(k, s, 0, NULL);
}

/* A restarted instance serves: the restart is over. */
static void served(struct kern *k, uint32_t s) {
  k->svc[s].failed_starts = 0;
  set_phase(k, s, UK_PH_SERVING);
}

bool rep_at_receive(struct kern *k, uint32_t p, uint32_t s) {
  struct uk_svc *sv = kd_svc(k, s);
  if (k->proc[p].preparing) {
    k->proc[p].preparing = false;
    if (sv->phase == UK_PH_PREPARING && sv->proc == p) {
      handed_off(k, s);
      return true;
    }
    return false; /* the replacement ended meanwhile: serve on */
  }
  if (sv->proc == p && sv->phase == UK_PH_REQUESTED) {
    start_successor(k, s);
    return true;
  }
  if (sv->successor == p && sv->phase == UK_PH_RESTORING) {
    commit(k, s);
    return false;
  }
  if (sv->successor == p)
    return true; /* before the hand-off: it waits (handed_off commits) */
  if (sv->proc == p && sv->phase == UK_PH_RESTARTING)
    served(k, s);
  return false;
}

void rep_before_reply(struct kern *k, uint32_t p, uint32_t s) {
  struct uk_svc *sv = kd_svc(k, s);
  if (sv->successor == p && sv->phase == UK_PH_RESTORING)
    commit(k, s);
  else if (sv->proc == p && sv->phase == UK_PH_RESTARTING)
    served(k, s);
}

int rep_register(struct kern *k, uint32_t p, uint32_t s, uint32_t version,
                 uint32_t *how) {
  struct uk_svc *sv = kd_svc(k, s);
  if (sv->successor != p)
    return 1;
  kd_proc(k, p)->kind = UK_PROC_SERVER;
  kd_proc(k, p)->svc = s;
  if (sv->phase == UK_PH_STARTING) {
    k->svc[s].next_version = version;
    *how = KABI_REG_REPLACING;
    set_phase(k, s, UK_PH_PREPARING);
    prepare_old(k, s);
    return 0;
  }
  /* RESTARTING: it serves from now on, with what its predecessor left. */
  move_all(k, UK_HOLD_SVC, s, UK_HOLD_PROC, p, sv->state_ica);
  sv->proc = p;
  sv->successor = UK_NIL;
  sv->version = version;
  *how = KABI_REG_RESTARTING;
  return 0;
}

int rep_state_get(struct kern *k, uint32_t p, uint32_t s, uint32_t seq) {
  struct uk_svc *sv = kd_svc(k, s);
  if (sv->successor == p && sv->phase == UK_PH_PREPARING) {
    kd_proc(k, p)->state = UK_PROC_WAITING; /* until the old server has saved */
    kd_psched(k, p)->wait_op = KABI_STATE_GET;
    kd_psched(k, p)->wait_seq = seq;
    return KERN_DEFER;
  }
  if (sv->successor == p || sv->proc == p)
    return give_state(k, p, s, seq);
  return -EPERM;
}

int rep_state_register(struct kern *k, uint32_t p, uint32_t s, uint32_t ica) {
  struct uk_svc *sv = kd_svc(k, s);
  if (k->proc[p].preparing) {
    if (sv->phase != UK_PH_PREPARING || sv->proc != p) {
      kern__ica_drop(k, ica); /* its replacement is over */
      return 0;
    }
    kern__ica_drop(k, sv->handoff_ica);
    kern_ica_move(k->kd, ica, UK_HOLD_SVC, s);
    sv->handoff_ica = ica;
    return 0;
  }
  if (sv->successor == p) {
    k->svc[s].succ_state = ica; /* takes effect at the commit */
    return 0;
  }
  if (sv->state_ica != ica)
    kern__ica_drop(k, sv->state_ica); /* the new state replaces the old */
  kern_ica_move(k->kd, ica, UK_HOLD_SVC, s);
  sv->state_ica = ica;
  return 0;
}

bool rep_may_attach(struct kern *k, uint32_t p, uint32_t id) {
  if (kern_ica_held_by(k->kd, id, UK_HOLD_PROC, p))
    return true;
  uint32_t s = kd_proc(k, p)->svc;
  if (s == UK_NIL || kd_svc(k, s)->successor != p)
    return false;
  struct uk_svc *sv = kd_svc(k, s);
  return kern_ica_held_by(k->kd, id, UK_HOLD_PROC, sv->proc) ||
         (id == sv->state_ica && kern_ica_lookup(k->kd, id) >= 0);
}

void rep_panic(struct kern *k, uint32_t p, const char *reason) {
  uint32_t s = kd_proc(k, p)->svc;
  if (s != UK_NIL && kd_svc(k, s)->successor == p && replacing(kd_svc(k, s))) {
    char why[256];
    snprintf(why, sizeof why, "the new server refused: %s (state version %u)",
             reason, kd_svc(k, s)->version);
    fail_replacement(k, s, -ECANCELED, why);
    return;
  }
  kern__kill(k, p, SIGKILL, "panic");
}

/* Fault time ---------------------------------------------------------------
 */

static const char *fault_name(struct kern *k, uint32_t p, char *buf,
                              size_t len) {
  if (k->proc[p].fault)
    snprintf(buf, len, "%s", k->proc[p].fault);
  else if (kd_proc(k, p)->term_signal)
    snprintf(buf, len, "crash (signal %d)", kd_proc(k, p)->term_signal);
  else if (k->proc[p].running)
    snprintf(buf, len, "closed its connection");
  else
    snprintf(buf, len, "exit (status %d)", kd_proc(k, p)->exit_status);
  return buf;
}

static void restart(struct kern *k, uint32_t s) {
  struct kern_svc *ks = &k->svc[s];
  struct kern_prog prog;
  const char *err = "out of memory";
  int n = kern__prog_dup(&prog, &ks->prog);
  kern__prog_drop_env(&prog, "UKSIM_FAULT="); /* faults are one-shot */
  set_phase(k, s, UK_PH_RESTARTING);
  kd_svc(k, s)->restarts++;
  char name[KABI_NAME_MAX];
  instance_name(k, s, name, sizeof name);
  if (n == 0)
    n = kern__spawn(k, name, &prog, &err);
  if (n < 0) {
    kern__trace(k, "restart of %s failed: %s", kd_svc(k, s)->name, err);
    set_phase(k, s, UK_PH_SERVING);
    kern__server_down(k, s);
    return;
  }
  k->proc[n].pol = ks->pol;
  kd_svc(k, s)->successor = (uint32_t)n;
  svc_event(k, "restart", s, UK_NIL, (uint32_t)n, kd_proc(k, n)->name);
}

/* The requests server of s was processing fail (-ECONNRESET: done or not,
 * nobody knows), except those it kept in its state, which wait for the
 * next instance; returns how many it kept. */
static uint32_t fail_held(struct kern *k, uint32_t s) {
  struct uk_svc *sv = kd_svc(k, s);
  uint32_t kept = 0;
  for (uint32_t i = 0; i < UK_REQ_MAX; i++) {
    struct uk_req *r = &k->kd->req[i];
    if (r->state != UK_REQ_IN_SERVICE || r->svc != s)
      continue;
    if (r->kept) {
      kept++;
      continue;
    }
    sv->held--;
    kern__fail_request(k, i, -ECONNRESET);
  }
  return kept;
}

/* Server p of s failed: answer what it was processing, park the rest and
 * start another instance.  Returns false when the service must go down. */
static bool restart_after_fault(struct kern *k, uint32_t p, uint32_t s) {
  struct uk_svc *sv = kd_svc(k, s);
  uint32_t kept = fail_held(k, s);
  move_all(k, UK_HOLD_PROC, p, UK_HOLD_SVC, s, KABI_ICA_NONE); /* park */
  kern__trace(k, "%s: %u kept requests wait for the next instance", sv->name,
              kept);
  kd_proc(k, p)->svc = UK_NIL;
  sv->proc = UK_NIL;
  restart(k, s); /* takes the service down itself if it cannot */
  return true;
}

void rep_takeover(struct kern *k, uint32_t s) {
  uint32_t kept = fail_held(k, s);
  kern__trace(k, "takeover: %s restarts, %u kept requests wait for it",
              kd_svc(k, s)->name, kept);
  svc_event(k, "fault", s, UK_NIL, UK_NIL, "its OS died");
  restart(k, s);
}

/* The service's restart limit (--restart N) is reached: say so. */
static bool restarts_used_up(struct kern *k, uint32_t s) {
  uint32_t max = k->svc[s].pol.restart_max;
  if (max == 0 || kd_svc(k, s)->restarts < max)
    return false;
  char why[96];
  snprintf(why, sizeof why, KABI_RESTART_LIMIT_TEXT ": %u restarts used", max);
  kern__trace(k, "%s", why);
  svc_event(k, "fail", s, UK_NIL, UK_NIL, why);
  return true;
}

/* The instance started for a restart failed before it served. */
static void restart_failed(struct kern *k, uint32_t s) {
  if (restarts_used_up(k, s)) {
    set_phase(k, s, UK_PH_SERVING);
    kern__server_down(k, s);
    return;
  }
  if (++k->svc[s].failed_starts >= RESTART_MAX) {
    kern__trace(k, "%s: %d restarts in a row failed; giving up",
                kd_svc(k, s)->name, RESTART_MAX);
    set_phase(k, s, UK_PH_SERVING);
    kern__server_down(k, s);
    return;
  }
  restart(k, s);
}

bool rep_server_failed(struct kern *k, uint32_t p, uint32_t s) {
  struct uk_svc *sv = kd_svc(k, s);
  struct kern_svc *ks = &k->svc[s];
  char why[64];

  kern__trace(k, "fault: %s, server of %s: %s", kd_proc(k, p)->name, sv->name,
              fault_name(k, p, why, sizeof why));
  svc_event(k, "fault", s, p, UK_NIL, why);
  svc_event(k, "detect", s, UK_NIL, p, why);
  if (replacing(sv))
    fail_replacement(k, s, -ECONNRESET,
                     "the old server failed during the replacement");
  if (!ks->pol.restart || restarts_used_up(k, s))
    return false;
  if (sv->phase == UK_PH_RESTARTING) { /* never served: it counts */
    if (ks->failed_starts + 1 >= RESTART_MAX) {
      ks->failed_starts = RESTART_MAX;
      return false;
    }
    ks->failed_starts++;
  }
  return restart_after_fault(k, p, s);
}

void rep_proc_gone(struct kern *k, uint32_t p) {
  for (uint32_t s = 0; s < UK_SVC_MAX; s++) {
    struct uk_svc *sv = kd_svc(k, s);
    if (sv->state == UK_SVC_FREE || sv->successor != p)
      continue;
    char why[160], f[64];
    snprintf(why, sizeof why, "the new server failed before taking over: %s",
             fault_name(k, p, f, sizeof f));
    svc_event(k, "fault", s, p, UK_NIL, f);
    svc_event(k, "detect", s, UK_NIL, p, f);
    kd_proc(k, p)->svc = UK_NIL;
    sv->successor = UK_NIL;
    if (sv->phase == UK_PH_RESTARTING)
      restart_failed(k, s);
    else if (replacing(sv))
      fail_replacement(k, s, -ECHILD, why);
  }
}

void rep_adopt(struct kern *k, uint32_t p, uint32_t s) {
  struct kern_svc *ks = &k->svc[s];
  kern__prog_free(&ks->prog);
  (void)kern__prog_dup(&ks->prog, &k->proc[p].prog);
  ks->pol = k->proc[p].pol;
  ks->failed_starts = 0;
  struct uk_svc *sv = kd_svc(k, s); /* for a kernel that takes it over */
  (void)kern__prog_pack(&ks->prog, sv->prog, sizeof sv->prog);
  sv->restart = ks->pol.restart;
  sv->restart_max = ks->pol.restart_max;
  sv->deadline_ms = ks->pol.deadline_ms;
  sv->heartbeat_ms = ks->pol.heartbeat_ms;
  rep_hang_watch(k);
}

/* Hangs -------------------------------------------------------------------- */

/* A server that makes no kernel call for longer than the deadline while
 * requests wait in its queue and it is not in receive() hangs too (stuck
 * outside any request, e.g. in its replacement hook).  Not while a
 * replacement holds deliveries back. */
static void check_queue_heads(struct kern *k, uint64_t now) {
  for (uint32_t s = 0; s < UK_SVC_MAX; s++) {
    const struct uk_svc *sv = kd_svc(k, s);
    uint64_t limit = (uint64_t)k->svc[s].pol.deadline_ms * 1000000ull;
    if (sv->state != UK_SVC_UP || limit == 0 || sv->q_len == 0 ||
        sv->proc == UK_NIL || k->proc[sv->proc].fault ||
        waits_for_request(k, sv->proc) ||
        (sv->phase != UK_PH_SERVING && sv->phase != UK_PH_REQUESTED))
      continue;
    if (now - k->proc[sv->proc].last_call_ns <= limit)
      continue;
    kern__trace(k, "hang: %s takes no request for more than %u ms",
                kd_proc(k, sv->proc)->name, k->svc[s].pol.deadline_ms);
    svc_event(k, "detect", s, UK_NIL, sv->proc, "hang: queue not served");
    kern__kill(k, sv->proc, SIGKILL, "hang");
  }
}

/* In a kernel call: waiting for its answer, or (lock-step) its call not
 * yet performed.  Such a process is not silent: the kernel holds it. */
static bool in_kernel(struct kern *k, uint32_t p) {
  return kd_proc(k, p)->state == UK_PROC_WAITING ||
         (k->lockstep && k->proc[p].run == KS_CALLED);
}

/* Heartbeats: a server that runs outside the kernel (makes no call, is in
 * none) for longer than its heartbeat interval hangs, whether or not it
 * holds a request -- e.g. stuck while saving its state. */
static void check_heartbeats(struct kern *k, uint64_t now) {
  for (uint32_t s = 0; s < UK_SVC_MAX; s++) {
    const struct uk_svc *sv = kd_svc(k, s);
    uint64_t limit = (uint64_t)k->svc[s].pol.heartbeat_ms * 1000000ull;
    if (sv->state != UK_SVC_UP || limit == 0 || sv->proc == UK_NIL ||
        k->proc[sv->proc].fault || in_kernel(k, sv->proc) ||
        now - k->proc[sv->proc].last_call_ns <= limit)
      continue;
    kern__trace(k, "hang: %s missed its heartbeat (%u ms)",
                kd_proc(k, sv->proc)->name, k->svc[s].pol.heartbeat_ms);
    svc_event(k, "detect", s, UK_NIL, sv->proc, "hang: heartbeat missed");
    kern__kill(k, sv->proc, SIGKILL, "hang");
  }
}

static void on_hang_check(struct kern *k, struct ktimer *t) {
  (void)t;
  uint64_t now = kern__now_ns();
  check_queue_heads(k, now);
  check_heartbeats(k, now);
  for (uint32_t i = 0; i < UK_REQ_MAX; i++) {
    const struct uk_req *r = &k->kd->req[i];
    if (r->state != UK_REQ_IN_SERVICE || r->kept || r->svc == UK_NIL)
      continue;
    uint32_t srv = kd_svc(k, r->svc)->proc;
    uint64_t limit = (uint64_t)k->svc[r->svc].pol.deadline_ms * 1000000ull;
    if (limit == 0 || srv == UK_NIL || now - r->recv_ns <= limit ||
        k->proc[srv].fault)
      continue;
    kern__trace(k, "hang: %s has held req=%u for more than %u ms",
                kd_proc(k, srv)->name, kern_req_id(k->kd, i),
                k->svc[r->svc].pol.deadline_ms);
    svc_event(k, "detect", r->svc, UK_NIL, srv,
              "hang: request deadline passed");
    kern__kill(k, srv, SIGKILL, "hang");
  }
}

void rep_hang_watch(struct kern *k) {
  if (k->hang_timer.on)
    return;
  for (uint32_t s = 0; s < UK_SVC_MAX; s++)
    if (k->svc[s].pol.deadline_ms || k->svc[s].pol.heartbeat_ms) {
      kern__timer_start(k, &k->hang_timer, HANG_CHECK_MS * 1000000ull,
                        HANG_CHECK_MS * 1000000ull);
      return;
    }
}

/* Timers, set up once at boot.  The hang check is a background timer: it
 * alone does not keep a lock-step run going (sched.c). */
void rep_init(struct kern *k) {
  for (uint32_t s = 0; s < UK_SVC_MAX; s++)
    kern__timer_init(k, &k->svc[s].timer, on_replace_timeout,
                     (void *)(uintptr_t)s);
  kern__timer_init(k, &k->hang_timer, on_hang_check, NULL);
  k->hang_timer.background = true;
}

void rep_halt(struct kern *k) {
  for (uint32_t s = 0; s < UK_SVC_MAX; s++) {
    if (kd_svc(k, s)->state == UK_SVC_FREE)
      continue;
    if (replacing(kd_svc(k, s)))
      fail_replacement(k, s, -ECANCELED, "the machine is halting");
    k->svc[s].pol.restart = false;
  }
  kern__timer_stop(k, &k->hang_timer);
}
