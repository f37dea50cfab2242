/* failload_stop (failload.h): the end of a run of failload processes,
 * shared by uksim bench failover and kupdate. */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "failload.h"

int failload_stop(struct failload_slot *slot, int n, int wait_ms,
                  struct failload_counts *c) {
  memset(c, 0, sizeof *c);
  for (int i = 0; i < n; i++)
    if (slot[i].pid <= 0 || kill(slot[i].pid, SIGTERM) < 0)
      return -1;
  for (int i = 0; i < n; i++) {
    const struct failload_slot *s = &slot[i];
    for (int t = 0; t < wait_ms && !__atomic_load_n(&s->done, __ATOMIC_ACQUIRE);
         t++)
      usleep(1000);
    c->calls += s->calls;
    c->answers += s->answers;
    c->resets += s->resets;
    c->intrs += s->intrs;
    c->errors += s->errors;
  }
  c->lost = c->calls - c->answers - c->resets - c->intrs - c->errors;
  return 0;
}
