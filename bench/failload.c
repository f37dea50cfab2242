/* failload FILE SLOT [PERIOD_US [SERVICE [ns]]]: a protected application for
 * uksim bench failover.  Calls ctr_srv's increment (service SERVICE,
 * default "ctr") in a loop until SIGTERM, one call
 * per PERIOD_US microseconds (default 0: back to back): after an answer it
 * sleeps until PERIOD_US after that call's start; a call that took longer
 * (one the failover held) is followed by the next at once, and so is a
 * reset (the call is made again).  It publishes in slot
 * SLOT of FILE (failload.h) every call it makes, every answer it gets
 * (with its time), every reset and every -EINTR (its ICA create or
 * release cut short by the kernel's death), so that "served again after the
 * failover" is this process's own observation, not the kernel's.  With
 * "ns" it first opens two files (one at an offset), state a kernel
 * update carries (bench kupdate: through the image, or by the process's
 * replay of its journal). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "failload.h"
#include "uksim/ap.h"
#include "uksim/ns.h"

/* SIGTERM stays blocked, so that it never interrupts a call (ap_call
 * would end it with -EINTR, its answer never seen): the loop looks for it
 * between calls. */
static bool stop_asked(void) {
  sigset_t p;
  return sigpending(&p) == 0 && sigismember(&p, SIGTERM);
}

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t); /* the kernels' uv_hrtime clock */
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* One increment: its status, and the counter's value in *val.  The
 * control ICA goes to the server and comes back with the answer: kept in
 * *ctl for the next call (one kernel call an increment, as an application
 * that reuses its buffers makes), created again only when none came
 * back. */
static int incr(uint32_t svc, uk_ica *ctl, uint64_t *val) {
  ap_result res;
  int r =
      ctl->id == KABI_ICA_NONE ? ica_create(4096, KABI_ICA_CONTROL, ctl) : 0;
  if (r < 0)
    return r;
  r = ap_call(svc, 0, ctl, NULL, &res);
  if (r < 0)
    return r; /* refused: ctl is still ours */
  if (res.status == 0 && res.ctl.base)
    memcpy(val, res.ctl.base, sizeof *val);
  *ctl = res.ctl; /* empty if none came back */
  ica_release(&res.data);
  return res.status;
}

static struct failload_slot *map_slot(const char *path, long slot) {
  int fd = open(path, O_RDWR);
  if (fd < 0 || slot < 0)
    return NULL;
  off_t off = (off_t)slot * (off_t)sizeof(struct failload_slot);
  long pg = sysconf(_SC_PAGESIZE);
  off_t base = off - off % pg;
  size_t len = (size_t)(off - base) + sizeof(struct failload_slot);
  char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, base);
  close(fd);
  return p == MAP_FAILED ? NULL : (struct failload_slot *)(p + (off - base));
}

/* An application's time between two calls, asleep (the host's
 * nanosleep, no uksim call) until `until`: 200 loads spinning on two
 * cores would measure the host's scheduler, not the failover.  A paced
 * application (one call a period) rather than one that pauses after each
 * answer: an answer that came late has used its pause already, so the
 * call after a failover's is made at once, and "served again" measures
 * the failover, not a pause. */
static void pace(uint64_t until) {
  uint64_t now = now_ns();
  if (until <= now)
    return;
  struct timespec t = {.tv_sec = (time_t)((until - now) / 1000000000ull),
                       .tv_nsec = (long)((until - now) % 1000000000ull)};
  nanosleep(&t, NULL);
}

static void loop(uint32_t svc, struct failload_slot *s, uint64_t period_us) {
  uint64_t last = 0, v = 0, t0 = 0;
  uk_ica ctl = {.id = KABI_ICA_NONE};
  bool answered = false; /* the pause is work on an answer: none after a
                          * reset or an error, the call is made again */
  while (!stop_asked()) {
    if (answered)
      pace(t0 + period_us * 1000);
    answered = false;
    __atomic_store_n(&s->calls, s->calls + 1, __ATOMIC_RELEASE);
    t0 = now_ns();
    int r = incr(svc, &ctl, &v);
    if (r == -ECONNRESET) {
      __atomic_store_n(&s->resets, s->resets + 1, __ATOMIC_RELEASE);
    } else if (r == -EINTR) {
      __atomic_store_n(&s->intrs, s->intrs + 1, __ATOMIC_RELEASE);
    } else if (r < 0 || v <= last) {
      fprintf(stderr, "failload: call %llu: %s, value %llu after %llu\n",
              (unsigned long long)s->calls, r < 0 ? strerror(-r) : "ok",
              (unsigned long long)v, (unsigned long long)last);
      __atomic_store_n(&s->errors, s->errors + 1, __ATOMIC_RELEASE);
    } else {
      last = v;
      answered = true;
      s->start[s->answers % FAILLOAD_RING] = t0;
      s->ring[s->answers % FAILLOAD_RING] = now_ns();
      __atomic_store_n(&s->answers, s->answers + 1, __ATOMIC_RELEASE);
    }
  }
  ica_release(&ctl);
}

/* /dev/null and /dev/zero (at offset 100) open: per-process state, not
 * a bind (a spawned process may share its namespace with others) nor a
 * pipe (a kernel has UK_PIPE_MAX, fewer than bench kupdate's loads).
 * 0 or a negative errno. */
static int shape_ns(void) {
  int r;
  if ((r = ns_open("/dev/null", NS_OREAD)) < 0 ||
      (r = ns_open("/dev/zero", NS_OREAD)) < 0)
    return r;
  int64_t o = ns_seek(r, 100, SEEK_SET);
  return o < 0 ? (int)o : 0;
}

int main(int argc, char **argv) {
  if (argc < 3 || argc > 6 || (argc == 6 && strcmp(argv[5], "ns") != 0)) {
    fprintf(stderr, "usage: failload FILE SLOT [PERIOD_US [SERVICE [ns]]]\n");
    return 2;
  }
  if (argc == 6 && shape_ns() < 0) {
    fprintf(stderr, "failload: its namespace state cannot be made\n");
    return 1;
  }
  struct failload_slot *s = map_slot(argv[1], atol(argv[2]));
  if (s == NULL) {
    fprintf(stderr, "failload: %s slot %s: cannot map\n", argv[1], argv[2]);
    return 2;
  }
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigprocmask(SIG_BLOCK, &term, NULL);
  __atomic_store_n(&s->pid, (int32_t)getpid(), __ATOMIC_RELEASE);
  uint32_t svc;
  const char *name = argc >= 5 ? argv[4] : "ctr";
  int r = ap_lookup(name, &svc);
  if (r < 0) {
    fprintf(stderr, "failload: lookup %s: %s\n", name, strerror(-r));
    return 1;
  }
  loop(svc, s, argc >= 4 ? strtoull(argv[3], NULL, 10) : 0);
  __atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
  return 0;
}
