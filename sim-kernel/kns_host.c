/* What servants ask of the kernel (vfs/dev.h's host hooks), and the mount
 * driver #M: turning chan operations into 9P on a server link. */
#include <errno.h>

#include "kern.h"

void kern__vfs_up(struct kern *k, uint32_t p) {
  (void)k;
  (void)p;
}

int kern__pipe_new(struct kern *k, uint32_t *c0, uint32_t *c1) {
  (void)k;
  (void)c0;
  (void)c1;
  return -ENOSYS;
}

long kern__mnt_mount(struct kern *k, uint32_t p, int fd, const char *old,
                     uint32_t oldlen, const char *aname, uint32_t flags) {
  (void)k, (void)p, (void)fd, (void)old, (void)oldlen, (void)aname,
      (void)flags;
  return -ENOSYS;
}
