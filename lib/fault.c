/* Fault injection (see fault.h). */
#include "fault.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "uksim/server.h"

#define FAULTS_MAX 8

struct fault {
  int kind; /* index in kinds[] */
  enum uk_fault_point point;
  unsigned long n; /* fire at the n-th arrival at the point */
};

static const char *kinds[] = {"crash", "panic", "hang", "exit"};
static const char *points[] = {"request", "save", "restore"};
static struct fault faults[FAULTS_MAX];
static int nfaults = -1; /* -1: not parsed yet */
static unsigned long seen[3];

static int find(const char *const *names, int n, const char *s, size_t len) {
  for (int i = 0; i < n; i++)
    if (strlen(names[i]) == len && strncmp(names[i], s, len) == 0)
      return i;
  return -1;
}

/* Parses one KIND@POINT[:N]; 0 or -1. */
static int parse_one(const char *s, size_t len, struct fault *f) {
  const char *at = memchr(s, '@', len);
  if (at == NULL)
    return -1;
  f->kind = find(kinds, 4, s, (size_t)(at - s));
  const char *p = at + 1, *end = s + len;
  const char *colon = memchr(p, ':', (size_t)(end - p));
  f->point = find(points, 3, p, (size_t)((colon ? colon : end) - p));
  f->n = 1;
  if (colon) {
    char num[24], *e;
    size_t nl = (size_t)(end - colon - 1);
    if (nl == 0 || nl >= sizeof num)
      return -1;
    memcpy(num, colon + 1, nl);
    num[nl] = '\0';
    f->n = strtoul(num, &e, 10);
    if (*e != '\0' || f->n == 0)
      return -1;
  }
  return f->kind < 0 || (int)f->point < 0 ? -1 : 0;
}

void uk__fault_init(void) {
  if (nfaults >= 0)
    return;
  nfaults = 0;
  const char *s = getenv("UKSIM_FAULT");
  while (s && *s) {
    size_t len = strcspn(s, ",");
    if (nfaults == FAULTS_MAX || parse_one(s, len, &faults[nfaults]) < 0) {
      fprintf(stderr,
              "uksim server: bad UKSIM_FAULT entry '%.*s' (want "
              "crash|panic|hang|exit@request|save|restore[:N], at most %d)\n",
              (int)len, s, FAULTS_MAX);
      exit(2);
    }
    nfaults++;
    s += len + (s[len] == ',');
  }
}

static void fire(const struct fault *f) {
  fprintf(stderr, "uksim server: injected %s at %s %lu\n", kinds[f->kind],
          points[f->point], f->n);
  switch (f->kind) {
  case 0: {
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none); /* a crash, not a core file */
    raise(SIGSEGV);
    break;
  }
  case 1:
    srv_panic("injected fault");
    break;
  case 2:
    for (volatile unsigned long i = 0;; i++)
      ; /* stuck in a loop: only a deadline ends this */
  }
  exit(3);
}

void uk__fault_at(enum uk_fault_point point) {
  uk__fault_init();
  seen[point]++;
  for (int i = 0; i < nfaults; i++)
    if (faults[i].point == point && faults[i].n == seen[point])
      fire(&faults[i]);
}
