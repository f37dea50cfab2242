/* Fault injection (see fault.h). */
#include "fault.h"
#include "lock.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "uksim/num.h"
#include "uksim/server.h"

#define FAULTS_MAX 8

enum kind { K_CRASH, K_PANIC, K_HANG, K_EXIT, K_REFUSE, K_KINDS };

struct fault {
  int kind;        /* enum kind, or -1 while parsing */
  int point;       /* enum uk_fault_point, or -1 while parsing */
  unsigned long n; /* fire at the n-th arrival at the point */
};

static const char *kinds[K_KINDS] = {"crash", "panic", "hang", "exit",
                                     "refuse"};
/* In the order of enum uk_fault_point. */
static const char *points[UK_FAULT_POINTS] = {"request", "save",     "restore",
                                              "start",   "register", "handoff"};
static struct fault faults[FAULTS_MAX];
static int nfaults = -1; /* -1: not parsed yet */
static unsigned long seen[UK_FAULT_POINTS];

static int find(const char *const *names, int n, const char *s, size_t len) {
  for (int i = 0; i < n; i++)
    if (strlen(names[i]) == len && strncmp(names[i], s, len) == 0)
      return i;
  return -1;
}

/* Parses the ":N" after a point (len bytes from s); 0 or -1. */
static int parse_count(const char *s, size_t len, unsigned long *n) {
  char num[24];
  uint64_t v;
  if (len >= sizeof num)
    return -1;
  memcpy(num, s, len);
  num[len] = '\0';
  if (num_parse_u64(num, 1, ULONG_MAX, 0, &v) < 0)
    return -1;
  *n = (unsigned long)v;
  return 0;
}

/* Parses one KIND@POINT[:N]; 0 or -1. */
static int parse_one(const char *s, size_t len, struct fault *f) {
  const char *at = memchr(s, '@', len);
  if (at == NULL)
    return -1;
  f->kind = find(kinds, K_KINDS, s, (size_t)(at - s));
  const char *p = at + 1, *end = s + len;
  const char *colon = memchr(p, ':', (size_t)(end - p));
  f->point =
      find(points, UK_FAULT_POINTS, p, (size_t)((colon ? colon : end) - p));
  f->n = 1;
  if (colon && parse_count(colon + 1, (size_t)(end - colon - 1), &f->n) < 0)
    return -1;
  if (f->kind < 0 || f->point < 0)
    return -1;
  /* Only a state that was handed over can be refused. */
  return f->kind == K_REFUSE && f->point != UK_FAULT_RESTORE ? -1 : 0;
}

static void parse(void) {
  nfaults = 0;
  const char *s = getenv("UKSIM_FAULT");
  while (s && *s) {
    size_t len = strcspn(s, ",");
    if (nfaults == FAULTS_MAX || parse_one(s, len, &faults[nfaults]) < 0) {
      fprintf(stderr,
              "uksim server: bad UKSIM_FAULT entry '%.*s' (want "
              "crash|panic|hang|exit@start|register|restore|request|save|"
              "handoff[:N] or refuse@restore[:N], at most %d)\n",
              (int)len, s, FAULTS_MAX);
      exit(2);
    }
    nfaults++;
    s += len + (s[len] == ',');
  }
}

/* The plan and the counters are the process's: its threads reach points
 * under the library's lock (lock.c). */
void uk__fault_init(void) {
  uk__lock();
  if (nfaults < 0) {
    parse();
    uk__fault_at(UK_FAULT_START);
  }
  uk__unlock();
}

static _Noreturn void crash(void) {
  struct rlimit none = {0, 0};
  setrlimit(RLIMIT_CORE, &none); /* a crash, not a core file */
  raise(SIGSEGV);
  abort(); /* SIGSEGV was blocked or ignored: still a crash */
}

static _Noreturn void hang(void) {
  for (volatile unsigned long i = 0;; i++)
    ; /* stuck in a loop: only a deadline (or the halt) ends this */
}

static void fire(const struct fault *f) {
  fprintf(stderr, "uksim server: injected %s at %s %lu\n", kinds[f->kind],
          points[f->point], f->n);
  switch (f->kind) {
  case K_CRASH:
    crash();
  case K_PANIC:
    srv_panic("injected fault");
    break;
  case K_HANG:
    hang();
  case K_REFUSE:
    /* The kernel fails the replacement with this reason and kills us. */
    srv_panic("injected fault: refused the state it was handed");
    break;
  case K_EXIT:
    break;
  default:
    abort();
  }
  exit(3); /* exit, or a panic the kernel did not end us for */
}

void uk__fault_at(enum uk_fault_point point) {
  uk__lock();
  uk__fault_init();
  seen[point]++;
  for (int i = 0; i < nfaults; i++)
    if (faults[i].point == (int)point && faults[i].n == seen[point])
      fire(&faults[i]);
  uk__unlock();
}
