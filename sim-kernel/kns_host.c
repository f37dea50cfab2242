/* What servants ask of the kernel (vfs/dev.h's host hooks). */
#include <errno.h>

#include "kern.h"

int kern__pipe_new(struct kern *k, uint32_t *c0, uint32_t *c1) {
  (void)k;
  (void)c0;
  (void)c1;
  return -ENOSYS;
}

int kern__srv_lookup(struct kern *k, uint32_t chan, uint32_t *svc) {
  (void)k;
  (void)chan;
  (void)svc;
  return -ENOSYS;
}
