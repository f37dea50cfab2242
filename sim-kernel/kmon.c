/* The seed-003 monitor (seed 003 §4): the backup kernel reads the active
 * kernel's kernel-data region every --monitor-interval ms and finds, from
 * the tables alone, a deadlock, a runaway and a stalled driver
 * (kmon_detect.c).  The active does nothing for it: the machine hands
 * the backup a read-only descriptor of the region (GetKdata) and the
 * backup maps it PROT_READ.
 *
 * States (a backup with interval > 0):
 *   UNMAPPED  asks the machine for the active's region (GetKdata, at
 *             most one on its way) at each tick            -> MAPPED
 *   MAPPED    each tick copies a view (a torn one, by magic, layout or
 *             size, is counted and skipped), runs the detectors and
 *             reports each fault found once: a "monitor" event naming
 *             the fault, its evidence and its latency; with policy
 *             failover, the backup declares the active dead as after a
 *             missed heartbeat (kos_declare_dead).  A region whose OS is
 *             no longer the active one is unmapped          -> UNMAPPED
 *   (any)     the kernel is no longer a backup: the timer stops.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kern.h"
#include "uksim/interos.h"
#include "uksim/uv_check.h"

static void unmap(struct kern *k) {
  if (k->mon.peer)
    munmap((void *)k->mon.peer, sizeof *k->mon.peer);
  k->mon.peer = NULL;
  k->mon.nold = 0;
}

static uint64_t env_u64(const char *name, uint64_t max) {
  const char *v = getenv(name);
  char *end;
  if (v == NULL || v[0] == '\0')
    return 0;
  unsigned long long n = strtoull(v, &end, 10);
  return *end == '\0' && n <= max ? n : 0;
}

void kmon_init(struct kern *k) {
  const char *pol = getenv(KMON_ENV_POLICY);
  kmon_conf_default(&k->mon.conf);
  k->mon.interval_ms = env_u64(KMON_ENV_INTERVAL, KMON_INTERVAL_MS_MAX);
  k->mon.policy =
      pol && strcmp(pol, "failover") == 0 ? KMON_FAILOVER : KMON_REPORT;
}

static void ask(struct kern *k) {
  Uksim__GetKdata g = UKSIM__GET_KDATA__INIT;
  Uksim__Ctl c = UKSIM__CTL__INIT;
  if (k->mon.asking)
    return;
  k->mon.asking = true;
  c.id = KMON_KDATA_ID;
  c.body_case = UKSIM__CTL__BODY_GET_KDATA;
  c.get_kdata = &g;
  (void)ctl_post(&k->mout, &c, -1);
}

static void check(struct kern *k);

bool kmon_reply(struct kern *k, uint64_t id, const Uksim__Reply *r, int fd) {
  if (id != KMON_KDATA_ID)
    return false;
  k->mon.asking = false;
  if (r->status < 0 || fd < 0 || k->os.role != KOS_BACKUP) {
    if (fd >= 0)
      close(fd);
    return true;
  }
  void *p = mmap(NULL, sizeof *k->mon.peer, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED)
    return true;
  unmap(k);
  k->mon.peer = p;
  k->mon.peer_os = r->active_os;
  kern__trace(k, "monitor: reading os %u's kernel data every %llu ms",
              r->active_os, (unsigned long long)k->mon.interval_ms);
  check(k); /* the first view at once: growth is seen from here on */
  return true;
}

/* ms since the machine stamped a fault into the watched OS, or -1. */
static double since_fault_ms(const struct kern *k, uint64_t now) {
  const struct uk_interos *io = k->os.io;
  uint64_t f = io ? __atomic_load_n(&io->fault_ns, __ATOMIC_ACQUIRE) : 0;
  if (f == 0 || f > now || io->fault_os != k->mon.peer_os)
    return -1;
  return (double)(now - f) / 1e6;
}

static void report(struct kern *k, const struct kmon_find *f, uint64_t now) {
  char me[16], peer[16], text[KMON_TEXT_MAX + 160];
  if (k->mon.found[f->fault])
    return;
  k->mon.found[f->fault] = true;
  double lat = since_fault_ms(k, now);
  snprintf(me, sizeof me, "os%u", k->os.id);
  snprintf(peer, sizeof peer, "os%u", k->mon.peer_os);
  /* The latency first: a reader that shows only the start of a long
   * finding (a scenario's verdict) still sees it. */
  snprintf(text, sizeof text,
           "%s in table %s, latency %.3f ms after the fault (interval %llu "
           "ms, %llu reads): %s",
           kmon_fault_name(f->fault), f->table, lat,
           (unsigned long long)k->mon.interval_ms,
           (unsigned long long)k->mon.reads, f->text);
  kern__trace(k, "monitor: os %u: %s", k->mon.peer_os, text);
  kern__event(k, &(struct kern_ev){.ev = "monitor",
                                   .actor = me,
                                   .peer = peer,
                                   .op = kmon_fault_name(f->fault),
                                   .status = lat < 0 ? -1 : (int)(lat * 1000),
                                   .req = f->count,
                                   .text = text});
  if (k->events)
    fflush(k->events);
  if (k->mon.policy == KMON_FAILOVER)
    kos_declare_dead(k, UK_DETECT_MONITOR);
}

/* The newest view becomes old, old becomes older, once a window passed. */
static void age_views(struct kern *k) {
  struct kmon_view *v = k->mon.view;
  if (k->mon.nold > 0 && v[2].t_ns - v[1].t_ns < k->mon.conf.window_ns)
    return;
  if (k->mon.nold > 0)
    v[0] = v[1];
  v[1] = v[2];
  if (k->mon.nold < 2)
    k->mon.nold++;
}

/* One read of the region and the detectors over it. */
static void check(struct kern *k) {
  struct kmon_view *v = k->mon.view;
  struct kmon_find f;
  uint64_t now = uv_hrtime();
  if (kmon_view_read(&v[2], k->mon.peer, now) < 0) {
    k->mon.torn++;
    return;
  }
  k->mon.reads++;
  if (kmon_deadlock(&v[2], &k->mon.conf, &f))
    report(k, &f, now);
  if (k->os.role == KOS_BACKUP && kmon_stalled(&v[2], &k->mon.conf, &f))
    report(k, &f, now);
  if (k->os.role == KOS_BACKUP &&
      kmon_runaway(k->mon.nold > 1 ? &v[0] : NULL,
                   k->mon.nold > 0 ? &v[1] : NULL, &v[2], &k->mon.conf, &f))
    report(k, &f, now);
  age_views(k);
}

static void on_tick(uv_timer_t *t) {
  struct kern *k = t->loop->data;
  const struct uk_interos *io = k->os.io;
  if (k->os.role != KOS_BACKUP) {
    uv_timer_stop(t);
    unmap(k);
    return;
  }
  if (k->mon.peer && io &&
      __atomic_load_n(&io->active_os, __ATOMIC_ACQUIRE) != k->mon.peer_os)
    unmap(k); /* another OS is active now */
  if (k->mon.peer == NULL) {
    ask(k);
    return;
  }
  check(k);
}

/* KMON_PAUSE_SIGNAL: reads stop or start again; a resumed monitor's next
 * view is compared with the last one before the pause, whose age the
 * rate detectors take into account like any interval's. */
static void on_pause(uv_signal_t *h, int sig) {
  (void)sig;
  struct kern *k = h->loop->data;
  k->mon.paused = !k->mon.paused;
  if (k->mon.paused)
    UV_CHECK(uv_timer_stop(&k->mon.timer));
  else
    UV_CHECK(uv_timer_start(&k->mon.timer, on_tick, k->mon.interval_ms,
                            k->mon.interval_ms));
}

void kmon_start(struct kern *k) {
  if (k->mon.interval_ms == 0 || k->os.role != KOS_BACKUP)
    return;
  UV_CHECK(uv_timer_init(k->loop, &k->mon.timer));
  uv_unref((uv_handle_t *)&k->mon.timer); /* background: keeps nothing up */
  UV_CHECK(uv_timer_start(&k->mon.timer, on_tick, k->mon.interval_ms,
                          k->mon.interval_ms));
  UV_CHECK(uv_signal_init(k->loop, &k->mon.pause_sig));
  uv_unref((uv_handle_t *)&k->mon.pause_sig);
  UV_CHECK(uv_signal_start(&k->mon.pause_sig, on_pause, KMON_PAUSE_SIGNAL));
  ask(k); /* mapped before the first tick: a long interval's first read
             is then a comparison, not the baseline */
}
