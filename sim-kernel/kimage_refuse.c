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
 * Per process, the update runs this state machine (every transition is
 * built):
 *
 *   EXTRACTED  the old kernel's tables read from outside into an image
 *     --cannot_carry empty--> BUILD                                built
 *     --cannot_carry "server: ..."--> RESTARTS                    built
 *     --cannot_carry other--> REFUSED_AT_EXTRACT                   built
 *   BUILD  the new kernel builds its tables from the image
 *     --slot returned--> BUILT                                    built
 *     --negative errno--> REFUSED_AT_BUILD (nothing written)      built
 *   BUILT --the machine hands its connection and ICAs--> HANDED   built
 *   REFUSED_AT_EXTRACT
 *     --> KEPT     the machine judged it so too while the old kernel was
 *                  stopped, and the old kernel is not fenced but RETIRING
 *                  (kkeep.h has its state machine): the process stays
 *                  there, served by it until it ends        built
 *     --> ENDS     a machine with a user disk fences the old kernel as
 *                  before (the disk's lock), and the process ends with
 *                  it, named in the trace and by `uksim kupdate`   built
 *   REFUSED_AT_BUILD --> ENDS  the machine cannot know it before the
 *                  hand-over: the new kernel ends it            built
 *
 * Calls between a moved process and what stayed (KEPT): a kept process's
 * call to a service (which restarts on the new kernel) is refused by the
 * retiring kernel with -EXDEV; a call on its kept netlink mount is
 * served by the old kernel's session.  How the four problems found while
 * building the refusals (the order of hand-over and resume, the moved
 * processes as the old kernel's children, servers not restarted, the
 * disk's lock) are solved: kkeep.h and kretire.c.
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
