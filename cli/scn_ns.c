/* Namespace groups for the scenario executor (scn_ns.h).
 *
 * The kernel gives a spawned process a fresh namespace, or one made from
 * a live process's (kern->spawn_ns_from).  A scenario names a declared
 * process's namespace also after that process has exited (an app's group
 * is read by `expect file` at the end, shared by an app started later,
 * changed by a bind after its exit), so the executor holds each such group
 * itself, by the same references a process holds (vfs.h: a group's ref
 * counts its holders, chans count every holder), and spawns into a held
 * group by swapping the fresh namespace kern__spawn gave for it before the
 * new process makes its first call.  Everything here is vfs table work in
 * the kernel's loop, so it is as deterministic as the run.
 */
#include "scn_ns.h"

#include <errno.h>

#include "vfs.h"

int scn_ns_hold(struct kern *k, uint32_t p, struct scn_ns_hold *h) {
  if (p >= UK_PROC_MAX || !k->kd->vfs.vproc[p].attached)
    return -ESRCH;
  const struct uk_vproc *v = &k->kd->vfs.vproc[p];
  *h = (struct scn_ns_hold){true, v->ns, v->root, v->cwd};
  vfs_ns_ref(k->kd, h->ns);
  vfs_chan_ref(k->kd, h->root);
  vfs_chan_ref(k->kd, h->cwd);
  return 0;
}

void scn_ns_drop(struct kern *k, struct scn_ns_hold *h) {
  if (!h->held)
    return;
  h->held = false;
  vfs_ns_unref(k->kd, h->ns);
  vfs_chan_unref(k->kd, h->root);
  vfs_chan_unref(k->kd, h->cwd);
  kern__mnt_clunks(k); /* a mounted server's root chan may be the last */
}

/* A group for kind, with one reference the caller gives away. */
static int group_for(struct kern *k, const struct scn_ns_hold *h,
                     enum scn_ns_kind kind, uint32_t *ns) {
  switch (kind) {
  case SCN_NS_SHARE:
    *ns = h->ns;
    return vfs_ns_ref(k->kd, h->ns);
  case SCN_NS_COPY:
    return vfs_ns_copy(k->kd, h->ns, ns);
  case SCN_NS_CLEAN:
    return vfs_ns_new(k->kd, ns);
  case SCN_NS_FRESH:
    break;
  }
  return -EINVAL; /* fresh is kern__spawn's own */
}

int scn_ns_enter(struct kern *k, uint32_t p, const struct scn_ns_hold *h,
                 enum scn_ns_kind kind) {
  uint32_t ns;
  if (!h->held)
    return -ESRCH;
  int r = group_for(k, h, kind, &ns);
  if (r < 0)
    return r;
  vfs_proc_release(k->kd, p); /* the fresh namespace: servants only */
  kern__mnt_clunks(k);
  r = vfs_proc_attach(k->kd, p, ns, h->root, h->cwd);
  vfs_ns_unref(k->kd, ns); /* attached, p holds its own reference */
  return r < 0 ? r : 0;
}
