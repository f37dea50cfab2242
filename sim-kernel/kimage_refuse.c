/* A process a kernel update cannot carry (issue 15, method A), judged
 * from its version-neutral image (kimage_refuse.h has the contract).
 *
 * Why a process cannot be carried.  The image (kimage.proto) has a field
 * for everything a layout-1 process owns in the kernel except a few
 * things that are the old kernel's alone; the extractor (kimage.c) names
 * each in Image.cannot_carry.  The natural case is "netlink": a chan of
 * an external 9P server that the old kernel dialed over TCP or a unix
 * socket (`mount tcp!HOST!PORT /n`; kmnt.c, dev >= UK_SVC_MAX).  Its fids
 * live in that one session, whose socket and 9P state (tags, fids, the
 * negotiated dialect) are in the old kernel's memory, not in kernel data,
 * and layout 1001 has no table for them either: the image has no field
 * that could carry them, so the process cannot move.  No test-only switch
 * makes a refusal: the tests mount a real external server.  A server
 * process is refused too ("server: ..."), but for another reason and to
 * another end: its service restarts on the new kernel from its program
 * and state ICA (the kernel part of the image), as at a failover.
 *
 * Per process, the update runs this state machine; "built" marks the
 * transitions this tree has, "not built" those the design asks for next
 * (the lead's issue 15 list):
 *
 *   EXTRACTED  the old kernel's tables read from outside into an image
 *     --cannot_carry empty--> BUILD                                built
 *     --cannot_carry "server: ..."--> RESTARTS                    built
 *     --cannot_carry other--> REFUSED_AT_EXTRACT                   built
 *   BUILD  the new kernel builds its tables from the image
 *     --slot returned--> BUILT                                    built
 *     --negative errno--> REFUSED_AT_BUILD (nothing written)      built
 *   BUILT --the machine hands its connection and ICAs--> HANDED   built
 *   REFUSED_AT_EXTRACT, REFUSED_AT_BUILD
 *     --> ENDS     the old kernel is fenced (killed), so the process
 *                  ends with it, named in the trace and in `uksim
 *                  kupdate`'s output                      built (today)
 *     --> KEPT     the old kernel is not fenced but RETIRING: the Fence
 *                  names the kept slots (UK_PROC_F_UNCARRIED in its
 *                  table), the machine hands over only the others'
 *                  connections, the old kernel drops the moved ones
 *                  without killing them, refuses spawns, serves only the
 *                  kept processes, and ends when the last ends  not built
 *
 * Calls between a moved process and what stayed (for KEPT): a kept
 * process's call to a service (which restarts on the new kernel) is
 * refused by the retiring kernel with -EXDEV, "moved to OS N"; a call
 * on its kept netlink mount is served by the old kernel's session.
 *
 * What KEPT must solve, found while building the rest:
 *  - Order.  The old kernel must stay stopped until the machine has
 *    handed the moved processes' connections, ICAs and nic0 sockets to
 *    the new kernel (take_over), and must drop its own copies before it
 *    reads any of them: resumed, its loop may run a moved process's
 *    readable callback before any message on its link.  So the retire
 *    word (the kept slots) must be in shared memory the machine writes
 *    while it is stopped (the inter-OS region), checked at the top of
 *    every process and #I socket callback (kern.c on_proc_readable,
 *    knic.c), and the machine must ignore its ConnDrop/IcaDrop of what
 *    it has handed over already.
 *  - Children.  The moved processes stay the old kernel's Linux
 *    children (only a parent's death reparents them to the machine,
 *    the subreaper): the retiring kernel must reap them without a trace
 *    of a fault and pass each exit on (OrphanExit) to the new active.
 *  - Servers.  The new kernel kills the old servers (their services
 *    restart there); the retiring kernel must not restart them (the
 *    AnT fault path) and must mark their services down, so that a kept
 *    process's send is answered with an error, not queued for ever.
 *  - The disk.  The user disk's LevelDB lock is the old kernel's until
 *    it closes it; the new kernel opens it at the Fence's answer.  With
 *    a disk the retiring kernel must close it first (its dirty blocks
 *    travel in the cache image), or the update must fence as today.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kimage.pb-c.h"
#include "kimage_refuse.h"

typedef Uksim__Kimage__Image Image;

/* The reason a server's image gives: its service restarts instead. */
static const char server_why[] = "server:";

static void copy_text(char *to, size_t size, const char *from) {
  snprintf(to, size, "%s", from ? from : "");
}

/* The first reason that is not the server's, else the server's. */
static const char *reason_of(const Image *img, enum kimg_verdict *v) {
  const char *server = NULL;
  for (size_t i = 0; i < img->n_cannot_carry; i++) {
    const char *w = img->cannot_carry[i];
    if (strncmp(w, server_why, sizeof server_why - 1) != 0) {
      *v = KIMG_REFUSED_AT_EXTRACT;
      return w;
    }
    server = w;
  }
  *v = server ? KIMG_RESTARTS : KIMG_MOVES;
  return server;
}

static Image *judge_common(const uint8_t *b, size_t n,
                           struct kimg_refusal *out) {
  memset(out, 0, sizeof *out);
  out->verdict = KIMG_UNREADABLE;
  Image *img = uksim__kimage__image__unpack(NULL, n, b);
  if (img == NULL || img->proc == NULL) {
    if (img)
      uksim__kimage__image__free_unpacked(img, NULL);
    copy_text(out->why, sizeof out->why, "an image that does not read");
    return NULL;
  }
  out->slot = img->proc->slot;
  out->pid = img->proc->pid;
  out->attached = img->proc->attached;
  copy_text(out->name, sizeof out->name, img->proc->name);
  return img;
}

int kimg_judge(const uint8_t *b, size_t n, struct kimg_refusal *out) {
  Image *img = judge_common(b, n, out);
  if (img == NULL)
    return -EBADMSG;
  copy_text(out->why, sizeof out->why, reason_of(img, &out->verdict));
  uksim__kimage__image__free_unpacked(img, NULL);
  return 0;
}

/* Why a builder refuses, in the words of kimage.h's contract. */
static const char *build_why(int r) {
  switch (r) {
  case -EEXIST:
    return "build: an id it names is another live entry in the new "
           "kernel's tables";
  case -EINVAL:
    return "build: an id out of the new kernel's table bounds";
  case -EBADMSG:
    return "build: not an image";
  case -EPROTO:
    return "build: an image of a newer version";
  default:
    return strerror(r < 0 ? -r : r);
  }
}

int kimg_judge_build(const uint8_t *b, size_t n, int r,
                     struct kimg_refusal *out) {
  int e = kimg_judge(b, n, out);
  if (e < 0 || r >= 0 || r == -EXDEV)
    return e; /* built, or the extractor's own refusal */
  out->verdict = KIMG_REFUSED_AT_BUILD;
  copy_text(out->why, sizeof out->why, build_why(r));
  return 0;
}

int kimg_refusal_text(const struct kimg_refusal *f, char *buf, size_t len) {
  if (f->verdict == KIMG_MOVES)
    return snprintf(buf, len, "%s (pid %d) moves", f->name, (int)f->pid);
  if (f->verdict == KIMG_UNREADABLE)
    return snprintf(buf, len, "%s", f->why);
  return snprintf(buf, len, "%s (pid %d) cannot move: %s", f->name, (int)f->pid,
                  f->why);
}
