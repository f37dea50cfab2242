/* What servants ask of the kernel (vfs/dev.h's struct vfs_host: the caller,
 * the clock, kill), the console's output, and the servants' pieces the
 * namespace calls use (pipes, /srv entries). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>

#include "dev.h"
#include "kern.h"
#include "vfs.h"

static uint64_t host_now(void *arg) {
  struct kern *k = arg;
  return kern__now_ns() - k->t0_ns;
}

/* #p's ctl and note: "kill" ends the process ([Plan 9] proc(3)). */
static int host_kill(void *arg, uint32_t p, const char *note) {
  struct kern *k = arg;
  if (p >= UK_PROC_MAX || k->kd->proc[p].state == UK_PROC_FREE ||
      k->kd->proc[p].state == UK_PROC_EXITED)
    return -ESRCH;
  kern__trace(k, "%s killed by note '%s'", k->kd->proc[p].name, note);
  kern__kill(k, p, SIGKILL, "killed");
  return 0;
}

void kern__host_init(struct kern *k) {
  k->vhost = (struct vfs_host){
      .arg = k, .up = UK_NIL, .now_ns = host_now, .kill = host_kill};
  vfs_host_set(&k->vhost);
}

void kern__host_up(struct kern *k, uint32_t p) {
  k->vhost.up = p;
}

/* Copies what processes wrote to #c/cons since the last time to the
 * kernel's standard output (the machine's terminal; under `uksim run
 * --json`, its standard error). */
void kern__cons_flush(struct kern *k) {
  char buf[4096];
  uint32_t n;
  while ((n = vfs_cons_output(k->kd, &k->cons_seq, buf, sizeof buf)) > 0) {
    fwrite(buf, 1, n, stdout);
    fflush(stdout);
  }
}

int kern__pipe_new(struct kern *k, uint32_t *c0, uint32_t *c1) {
  return vfs_pipe_new(k->kd, c0, c1);
}

int kern__srv_lookup(struct kern *k, uint32_t chan, uint32_t *svc) {
  if (vfs_chan_lookup(k->kd, chan) < 0)
    return -EBADF;
  return vfs_srv_lookup(k->kd, &k->kd->vfs.chan[UK_VFS_INDEX(chan)], svc);
}
