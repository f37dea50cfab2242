/* The monitor's detectors (kmon_detect.h has the contract): pure functions
 * of copied views, so that unit tests feed them hand-built tables.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kmon_detect.h"

void kmon_conf_default(struct kmon_conf *c) {
  c->lock_ns = KMON_LOCK_MS_DEFAULT * 1000000ull;
  c->stall_ns = KMON_STALL_MS_DEFAULT * 1000000ull;
  c->window_ns = KMON_WINDOW_MS_DEFAULT * 1000000ull;
}

const char *kmon_fault_name(enum kmon_fault f) {
  switch (f) {
  case KMON_DEADLOCK:
    return "deadlock";
  case KMON_RUNAWAY:
    return "runaway";
  case KMON_STALLED:
    return "stalled-driver";
  default:
    return "none";
  }
}

const char *kmon_lock_name(uint32_t l) {
  static const char *const names[UK_LOCK_COUNT] = {
      [UK_LOCK_ICA] = "ica", [UK_LOCK_SVC] = "svc", [UK_LOCK_NS] = "ns"};
  return l < UK_LOCK_COUNT ? names[l] : "?";
}

/* The pipe end chan id names, if it is a live pipe chan: its index (end
 * in *end), or -1.  Every index is checked: the region may be torn. */
static int pipe_end(const struct uk_kdata *kd, uint32_t chan, uint8_t *end) {
  uint32_t ci = UK_VFS_INDEX(chan);
  if (chan == UK_VFS_NONE || ci >= UK_CHAN_MAX)
    return -1;
  const struct uk_chan *c = &kd->vfs.chan[ci];
  if (c->gen != UK_VFS_GEN(chan) || c->state != UK_CHAN_LIVE ||
      c->type != '|' || (c->qid.path != 1 && c->qid.path != 2))
    return -1;
  uint32_t pi = UK_VFS_INDEX(c->dev);
  if (pi >= UK_PIPE_MAX || kd->vfs.pipe[pi].gen != UK_VFS_GEN(c->dev))
    return -1;
  *end = (uint8_t)(c->qid.path - 1);
  return (int)pi;
}

static void read_proc(struct kmon_vproc *vp, const struct uk_kdata *kd,
                      uint32_t p) {
  const struct uk_proc *pp = &kd->proc[p];
  const uk_psched_t *ps = uk_psched_c(kd, p);
  vp->state = pp->state;
  vp->wait_op = ps->wait_op;
  vp->calls = pp->calls;
  vp->wait_ns = ps->wait_ns;
  memcpy(vp->name, pp->name, sizeof vp->name);
  vp->name[sizeof vp->name - 1] = '\0';
  vp->pipe = -1;
  if (vp->state != UK_PROC_WAITING || vp->wait_op != KABI_NS)
    return;
  vp->pipe = pipe_end(kd, ps->wait_chan, &vp->end);
  if (vp->pipe < 0)
    return;
  const struct uk_pipe *pi = &kd->vfs.pipe[vp->pipe];
  vp->avail = pi->ring[vp->end].len;
  if (vp->avail > UK_PIPE_BUF)
    vp->avail = UK_PIPE_BUF; /* torn */
  vp->data_ns = pi->data_ns[vp->end];
}

int kmon_view_read(struct kmon_view *v, const struct uk_kdata *kd,
                   uint64_t now) {
  if (kd->hdr.magic != UK_KDATA_MAGIC || kd->hdr.layout != UK_KDATA_LAYOUT ||
      kd->hdr.size != sizeof *kd)
    return -EPROTO;
  v->t_ns = now;
  v->step = kd->hdr.step;
  v->budget_bytes = kd->hdr.budget_bytes;
  v->ica_bytes = kd->ctr.ica_bytes;
  v->spawned = kd->ctr.spawned;
  v->icas_created = kd->ctr.icas_created;
  v->icas_released = kd->ctr.icas_released;
  memcpy(v->lock, kd->lock, sizeof v->lock);
  v->procs_live = 0;
  for (uint32_t p = 0; p < UK_PROC_MAX; p++) {
    read_proc(&v->proc[p], kd, p);
    v->procs_live += v->proc[p].state == UK_PROC_RUNNING ||
                     v->proc[p].state == UK_PROC_WAITING;
  }
  return 0;
}

static const char *owner_name(const struct kmon_view *v, uint32_t owner,
                              char *buf, size_t len) {
  if (owner == UK_KCLIENT)
    return "the kernel";
  if (owner >= UK_PROC_MAX)
    return "?";
  snprintf(buf, len, "proc %u (%s)", owner, v->proc[owner].name);
  return buf;
}

/* The owner of a lock makes no progress: it waits (for this lock, or
 * anything) or is gone.  The kernel's own paths run to the end of their
 * turn, so a lock the kernel left held has no owner to progress. */
static int owner_stuck(const struct kmon_view *v, uint32_t owner) {
  if (owner == UK_KCLIENT || owner >= UK_PROC_MAX)
    return 1;
  return v->proc[owner].state != UK_PROC_RUNNING;
}

int kmon_deadlock(const struct kmon_view *v, const struct kmon_conf *c,
                  struct kmon_find *f) {
  for (uint32_t l = 0; l < UK_LOCK_COUNT; l++) {
    const struct uk_lock *lk = &v->lock[l];
    if (!lk->held || lk->since_ns == 0 || lk->since_ns > v->t_ns ||
        v->t_ns - lk->since_ns < c->lock_ns)
      continue;
    if (lk->waiters == 0 && !owner_stuck(v, lk->owner))
      continue;
    char who[64];
    f->fault = KMON_DEADLOCK;
    f->table = "lock";
    f->entry[0] = l;
    f->n = f->count = 1;
    f->age_ns = v->t_ns - lk->since_ns;
    snprintf(f->text, sizeof f->text,
             "lock %s held %.1f ms by %s, %u calls waiting, taken %llu times",
             kmon_lock_name(l), (double)f->age_ns / 1e6,
             owner_name(v, lk->owner, who, sizeof who), lk->waiters,
             (unsigned long long)lk->acquires);
    return 1;
  }
  return 0;
}

/* Net growth per second of a over dt ns; 0 when it shrank. */
static uint64_t rate(uint64_t from, uint64_t to, uint64_t dt) {
  if (to <= from || dt == 0)
    return 0;
  return (uint64_t)((double)(to - from) * 1e9 / (double)dt);
}

/* Whether the kernel grew like a runaway from a to b: ICA memory (in
 * several new ICAs, not one large one) or processes, beyond a size and a
 * rate.  *bytes says which. */
static int grew(const struct kmon_view *a, const struct kmon_view *b,
                int *bytes) {
  uint64_t dt = b->t_ns - a->t_ns;
  uint64_t db = b->ica_bytes > a->ica_bytes ? b->ica_bytes - a->ica_bytes : 0;
  uint64_t live_a = a->icas_created - a->icas_released;
  uint64_t live_b = b->icas_created - b->icas_released;
  uint64_t dp =
      b->procs_live > a->procs_live ? b->procs_live - a->procs_live : 0;
  *bytes = db >= KMON_RUNAWAY_MIN_BYTES &&
           live_b >= live_a + KMON_RUNAWAY_MIN_ICAS &&
           rate(a->ica_bytes, b->ica_bytes, dt) >= KMON_RUNAWAY_BYTES_PER_S;
  int procs =
      dp >= KMON_RUNAWAY_MIN_PROCS &&
      rate(a->procs_live, b->procs_live, dt) >= KMON_RUNAWAY_PROCS_PER_S;
  return *bytes || procs;
}

/* Less than KMON_RUNAWAY_FREE_PCT of the ICA budget is left. */
static int nearly_spent(const struct kmon_view *v) {
  uint64_t free_b =
      v->budget_bytes > v->ica_bytes ? v->budget_bytes - v->ica_bytes : 0;
  return free_b * 100 < v->budget_bytes * KMON_RUNAWAY_FREE_PCT;
}

int kmon_runaway(const struct kmon_view *older, const struct kmon_view *old,
                 const struct kmon_view *v, const struct kmon_conf *c,
                 struct kmon_find *f) {
  int bytes, before;
  if (old == NULL || v->t_ns <= old->t_ns ||
      v->t_ns - old->t_ns < c->window_ns || !grew(old, v, &bytes))
    return 0;
  /* One window of growth is an allocation (a server's start); a runaway
   * goes on, or has spent the budget already. */
  if (!(older && old->t_ns > older->t_ns && grew(older, old, &before)) &&
      !nearly_spent(v))
    return 0;
  uint64_t dt = v->t_ns - old->t_ns;
  uint64_t db =
      v->ica_bytes > old->ica_bytes ? v->ica_bytes - old->ica_bytes : 0;
  uint64_t free_b =
      v->budget_bytes > v->ica_bytes ? v->budget_bytes - v->ica_bytes : 0;
  f->fault = KMON_RUNAWAY;
  f->table = bytes ? "ica" : "proc";
  f->n = f->count = 0;
  f->age_ns = dt;
  snprintf(f->text, sizeof f->text,
           "in %.1f ms: ICA memory +%llu MiB (%llu MiB/s), processes %u -> "
           "%u; %llu MiB of %llu MiB free",
           (double)dt / 1e6, (unsigned long long)(db >> 20),
           (unsigned long long)(rate(old->ica_bytes, v->ica_bytes, dt) >> 20),
           old->procs_live, v->procs_live, (unsigned long long)(free_b >> 20),
           (unsigned long long)(v->budget_bytes >> 20));
  return 1;
}

/* How long process p has waited with data it could read, 0 if it has
 * none or is not waiting on a pipe. */
static uint64_t starved_ns(const struct kmon_view *v, uint32_t p) {
  const struct kmon_vproc *vp = &v->proc[p];
  if (vp->state != UK_PROC_WAITING || vp->pipe < 0 || vp->avail == 0)
    return 0;
  uint64_t since = vp->data_ns > vp->wait_ns ? vp->data_ns : vp->wait_ns;
  return since && since <= v->t_ns ? v->t_ns - since : 0;
}

/* Appends the evidence of reader p to f->text. */
static void name_reader(const struct kmon_view *v, uint32_t p,
                        struct kmon_find *f) {
  const struct kmon_vproc *vp = &v->proc[p];
  size_t len = strlen(f->text);
  snprintf(f->text + len, sizeof f->text - len,
           "; proc %u (%s) on pipe %d end %u (%u bytes)", p, vp->name, vp->pipe,
           vp->end, vp->avail);
}

/* How long p has waited in its read, whatever its data. */
static uint64_t waited_ns(const struct kmon_view *v, uint32_t p) {
  uint64_t w = v->proc[p].wait_ns;
  return w && w <= v->t_ns ? v->t_ns - w : 0;
}

int kmon_stalled(const struct kmon_view *v, const struct kmon_conf *c,
                 struct kmon_find *f) {
  f->n = f->count = 0;
  f->age_ns = f->wait_ns = 0;
  for (uint32_t p = 0; p < UK_PROC_MAX; p++) {
    uint64_t age = starved_ns(v, p);
    if (age < c->stall_ns || age == 0)
      continue;
    f->count++;
    if (f->n < KMON_EVIDENCE_MAX)
      f->entry[f->n++] = p;
    if (age > f->age_ns)
      f->age_ns = age;
    if (waited_ns(v, p) > f->wait_ns)
      f->wait_ns = waited_ns(v, p);
  }
  if (f->n == 0)
    return 0;
  f->fault = KMON_STALLED;
  f->table = "pipe";
  snprintf(f->text, sizeof f->text,
           "servant #| (pipe): %u readers blocked with data, the longest "
           "waiting %.1f ms, data unread for %.1f ms",
           f->count, (double)f->wait_ns / 1e6, (double)f->age_ns / 1e6);
  for (uint32_t i = 0; i < f->n; i++)
    name_reader(v, f->entry[i], f);
  return 1;
}
