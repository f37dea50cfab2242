/* Kernel update, method B: replay (issue 15, seed 003 §4).  The new
 * kernel takes the old one's processes over as in method A (kconvert.c:
 * the old kernel is stopped, its tables read through images), but builds
 * from each image only what a process's own calls cannot make again: the
 * process entry (pid, name, counters), its call in flight and its
 * results (the exactly-once decisions of adopt.c stand unchanged), the
 * ICAs it holds, and, kernel-wide, the services with their queued
 * requests and the /srv table.  Its namespace, descriptors and pipes are
 * left out: the process rebuilds them itself, in its own context, by
 * replaying the journal libuksim kept of the calls that made them
 * (include/uksim/journal.h), against this kernel.  What replay cannot
 * create is then added here: the bytes not yet read from its pipes,
 * taken from the old kernel's pipe rings through the image.
 *
 * Per process, the state machine (enum kreplay_state; each transition a
 * "kupdate" trace event):
 *
 *   NONE      --its image is stripped and it moves (kern__replay_arm)--> DUE
 *             A DUE process has a fresh namespace ("#/" with the boot
 *             binds) and no descriptors.
 *   DUE       --its next call, whatever it is (a new one, or the one the
 *             takeover told it to restart)--> REPLAYING
 *             The call is not run: it is answered KABI_ANS_REPLAY, and
 *             the library replays, then sends it again.
 *   REPLAYING --its calls--> REPLAYING   (they are the replayed ones; a
 *             register of the service it already serves is confirmed, not
 *             refused: the service and its queue came through the image)
 *   REPLAYING --KABI_REPLAY_DONE, status 0--> NONE  (its pipes' unread
 *             bytes are put back; the original call comes next)
 *   REPLAYING --KABI_REPLAY_DONE, status < 0 (an overflowed journal, a
 *             call that failed)--> NONE, and the process is killed: its
 *             state cannot be rebuilt and its old kernel is gone, as for a
 *             process method A cannot carry.  The trace says why.
 *   any       --the process exits--> NONE (kern__replay_forget)
 *
 * A process with a TCP conversation is refused at the image (replay
 * cannot reconnect a socket): it ends, named in the trace.  A pipe
 * between two processes is not rebuilt by either's replay (each makes a
 * pipe of its own): only a pipe whose two ends one process holds keeps
 * its bytes.  Limits: KREPLAY_ENDS_MAX pipe ends carried per update.
 *
 * A hung kernel can be updated by replay when the update is asked (uksim
 * kupdate --method replay): the old kernel does nothing for either
 * method (its tables are read from outside), and replay needs only the
 * new kernel.  A hang the backup finds by itself (the heartbeat) is a
 * detection that names no method: that takeover is method A's
 * (kupdate-hung.scn).  A server process moves by neither method (its
 * image is refused, kimage.h); its service and queue come through the
 * kernel's image and a new instance restarts from its state ICA, so the
 * register confirmation above serves a server only if images ever carry
 * one.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kern.h"
#include "kimage.pb-c.h"
#include "uksim/xalloc.h"

/* Pipe ends whose unread bytes one update carries: every end of every
 * pipe of the old kernel. */
#define KREPLAY_ENDS_MAX (2 * UK_PIPE_MAX)

enum kreplay_state { KREPLAY_NONE = 0, KREPLAY_DUE, KREPLAY_REPLAYING };

/* The unread bytes of one pipe end, for process slot `slot`'s descriptor
 * fd after its replay. */
struct kreplay_end {
  uint32_t slot;
  uint32_t pipe; /* its id in the old kernel (UK_VFS_ID) */
  int32_t fd;
  uint32_t end; /* 0: the pipe's data, 1: data1 */
  uint32_t len;
  char buf[UK_PIPE_BUF];
};

struct kreplay {
  uint8_t state[UK_PROC_MAX]; /* enum kreplay_state */
  /* The pid of the process whose image went through strip in slot p (0
   * none): the slot of a server that could not move may be its restarted
   * successor's by the time the takeover is done, which must not replay. */
  int32_t stripped[UK_PROC_MAX];
  uint64_t due_ns[UK_PROC_MAX]; /* when it became DUE */
  struct kreplay_end end[KREPLAY_ENDS_MAX];
  uint32_t nend;
  uint64_t calls, messages; /* replayed calls, and the messages of the
                               protocol (REPLAY answers + DONE calls) */
};

static void note(struct kern *k, uint32_t p, const char *op, int status,
                 const char *text) {
  kern__trace(k, "kupdate: %s", text);
  kern__event(k, &(struct kern_ev){
                     .ev = "kupdate",
                     .actor = p < UK_PROC_MAX ? k->kd->proc[p].name : NULL,
                     .op = op,
                     .status = status,
                     .text = text});
  if (k->events)
    fflush(k->events); /* a test or a person follows the update live */
}

void kern__replay_begin(struct kern *k) {
  if (k->replay == NULL)
    k->replay = xcalloc(1, sizeof *k->replay);
}

static const Uksim__Kimage__Chan *image_chan(const Uksim__Kimage__Image *img,
                                             uint32_t id) {
  for (size_t i = 0; i < img->n_chans; i++)
    if (img->chans[i]->id == id)
      return img->chans[i];
  return NULL;
}

static const Uksim__Kimage__Pipe *image_pipe(const Uksim__Kimage__Image *img,
                                             uint32_t id) {
  for (size_t i = 0; i < img->n_pipes; i++)
    if (img->pipes[i]->id == id)
      return img->pipes[i];
  return NULL;
}

static bool end_kept(const struct kreplay *r, uint32_t slot, uint32_t pipe,
                     uint32_t end) {
  for (uint32_t i = 0; i < r->nend; i++)
    if (r->end[i].slot == slot && r->end[i].pipe == pipe &&
        r->end[i].end == end)
      return true;
  return false;
}

/* Keeps, for each pipe end a descriptor of img names, what that end has
 * not read yet (once an end). */
static void keep_pipe_bytes(struct kreplay *r,
                            const Uksim__Kimage__Image *img) {
  for (size_t i = 0; i < img->n_fds && r->nend < KREPLAY_ENDS_MAX; i++) {
    const Uksim__Kimage__Chan *c = image_chan(img, img->fds[i]->chan);
    if (c == NULL || c->type != '|' || c->qid == NULL || c->qid->path < 1 ||
        c->qid->path > 2)
      continue;
    const Uksim__Kimage__Pipe *pp = image_pipe(img, c->dev);
    uint32_t end = (uint32_t)c->qid->path - 1;
    if (pp == NULL || end_kept(r, img->proc->slot, c->dev, end))
      continue;
    const ProtobufCBinaryData *b = end == 0 ? &pp->unread0 : &pp->unread1;
    struct kreplay_end *e = &r->end[r->nend];
    e->slot = img->proc->slot;
    e->pipe = c->dev;
    e->fd = (int32_t)img->fds[i]->fd;
    e->end = end;
    e->len = b->len < UK_PIPE_BUF ? (uint32_t)b->len : UK_PIPE_BUF;
    memcpy(e->buf, b->data, e->len);
    r->nend++;
  }
}

/* A new image buffer for img with why in its cannot_carry. */
static void refuse(Uksim__Kimage__Image *img, const char *why, uint8_t **b,
                   size_t *n) {
  Uksim__Kimage__Image copy = *img;
  char *list[1] = {(char *)why};
  copy.cannot_carry = list;
  copy.n_cannot_carry = 1;
  free(*b);
  *n = uksim__kimage__image__get_packed_size(&copy);
  *b = xmalloc(*n ? *n : 1);
  uksim__kimage__image__pack(&copy, *b);
}

int kern__replay_strip(struct kern *k, uint8_t **b, size_t *n) {
  Uksim__Kimage__Image *img = uksim__kimage__image__unpack(NULL, *n, *b);
  if (img == NULL || img->proc == NULL || img->proc->slot >= UK_PROC_MAX) {
    if (img)
      uksim__kimage__image__free_unpacked(img, NULL);
    return -EPROTO;
  }
  if (img->n_convs > 0) {
    refuse(img, "a TCP conversation: replay cannot reconnect it", b, n);
    uksim__kimage__image__free_unpacked(img, NULL);
    return -EXDEV;
  }
  keep_pipe_bytes(k->replay, img);
  /* What the process's replay makes again is left out of the image. */
  Uksim__Kimage__Image copy = *img;
  copy.ns = NULL;
  copy.n_chans = copy.n_fds = copy.n_pipes = 0;
  free(*b);
  *n = uksim__kimage__image__get_packed_size(&copy);
  *b = xmalloc(*n ? *n : 1);
  uksim__kimage__image__pack(&copy, *b);
  k->replay->stripped[img->proc->slot] = img->proc->pid;
  uksim__kimage__image__free_unpacked(img, NULL);
  return 0;
}

void kern__replay_arm(struct kern *k) {
  struct kreplay *r = k->replay;
  uint32_t due = 0;
  for (uint32_t p = 0; p < UK_PROC_MAX; p++) {
    bool moved = r->stripped[p] != 0 && k->proc[p].sock >= 0 &&
                 k->kd->proc[p].state != UK_PROC_FREE &&
                 k->kd->proc[p].pid == r->stripped[p];
    r->state[p] = moved ? KREPLAY_DUE : KREPLAY_NONE;
    r->due_ns[p] = uv_hrtime();
    due += moved;
  }
  char text[96];
  snprintf(text, sizeof text,
           "%u processes to replay their journals, %u pipe ends carried", due,
           r->nend);
  note(k, UK_PROC_MAX, "replay", 0, text);
}

void kern__replay_forget(struct kern *k, uint32_t p) {
  if (k->replay && p < UK_PROC_MAX)
    k->replay->state[p] = KREPLAY_NONE;
}

/* Puts the kept bytes of p's pipe ends into the pipes its replay made. */
static uint32_t put_pipe_bytes(struct kern *k, uint32_t p) {
  struct kreplay *r = k->replay;
  uint32_t put = 0;
  for (uint32_t i = 0; i < r->nend; i++) {
    struct kreplay_end *e = &r->end[i];
    if (e->slot != p || e->len == 0 || e->fd < 0 || e->fd >= UK_FD_MAX)
      continue;
    uint32_t id = k->kd->vfs.vproc[p].fd[e->fd];
    uint32_t ci = UK_VFS_INDEX(id);
    const struct uk_chan *c = ci < UK_CHAN_MAX ? &k->kd->vfs.chan[ci] : NULL;
    uint32_t pi = c ? UK_VFS_INDEX(c->dev) : UK_PIPE_MAX;
    if (id == UK_VFS_NONE || c->type != '|' || c->qid.path != e->end + 1 ||
        pi >= UK_PIPE_MAX) {
      char text[128];
      snprintf(text, sizeof text,
               "%u unread bytes of descriptor %d lost: it is no pipe end "
               "after the replay",
               e->len, e->fd);
      note(k, p, "replay", -ENOENT, text);
      continue;
    }
    struct uk_pring *ring = &k->kd->vfs.pipe[pi].ring[e->end];
    uint32_t n = e->len <= UK_PIPE_BUF - ring->len ? e->len : 0;
    for (uint32_t b = 0; b < n; b++)
      ring->buf[(ring->head + ring->len + b) % UK_PIPE_BUF] = e->buf[b];
    ring->len += n;
    put += n;
    e->len = 0;
  }
  return put;
}

/* KABI_REPLAY_DONE from p. */
static void replay_done(struct kern *k, uint32_t p, const kabi_msg *m) {
  struct kreplay *r = k->replay;
  struct kabi_replay_done_args a;
  char text[256];
  r->state[p] = KREPLAY_NONE;
  r->messages++;
  if (kabi_payload(m, &a, sizeof a) < 0) {
    a.status = -EPROTO;
    snprintf(a.why, sizeof a.why, "a malformed KABI_REPLAY_DONE");
  }
  a.why[sizeof a.why - 1] = '\0';
  if (a.status < 0) {
    snprintf(text, sizeof text, "%s (pid %d) cannot be replayed: %s",
             k->kd->proc[p].name, k->kd->proc[p].pid, a.why);
    note(k, p, "refused", a.status, text);
    kern__kill(k, p, SIGKILL, "replay failed");
    return;
  }
  r->calls += a.calls;
  uint32_t bytes = put_pipe_bytes(k, p);
  snprintf(text, sizeof text,
           "%s replayed %u journal entries in %u calls, %u unread pipe "
           "bytes put back, %llu us after the takeover",
           k->kd->proc[p].name, a.entries, a.calls, bytes,
           (unsigned long long)(uv_hrtime() - r->due_ns[p]) / 1000);
  note(k, p, "replayed", 0, text);
  kern__answer_status(k, p, m->hdr.seq, 0);
}

/* A register of the service p already serves, made by its replay: the
 * service (and its queue) came through the image, so it is confirmed. */
static bool confirm_register(struct kern *k, uint32_t p, const kabi_msg *m) {
  struct kabi_register_args a;
  uint32_t s = k->kd->proc[p].svc;
  if (kabi_payload(m, &a, sizeof a) < 0 || s >= UK_SVC_MAX)
    return false;
  a.name[sizeof a.name - 1] = '\0';
  if (strcmp(k->kd->svc[s].name, a.name) != 0)
    return false;
  struct kabi_register_ans ans = {.how = KABI_REG_FRESH, .svc = s};
  kabi_msg out;
  kabi_msg_init(&out, KABI_ANS_REGISTER, m->hdr.seq, 0, &ans, sizeof ans);
  kern__answer(k, p, &out);
  return true;
}

bool kern__replay_call(struct kern *k, uint32_t p, kabi_msg *m) {
  struct kreplay *r = k->replay;
  if (r == NULL || p >= UK_PROC_MAX)
    return false;
  switch ((enum kreplay_state)r->state[p]) {
  case KREPLAY_NONE:
    return false;
  case KREPLAY_DUE: {
    kabi_msg out;
    r->state[p] = KREPLAY_REPLAYING;
    r->messages++;
    kabi_msg_init(&out, KABI_ANS_REPLAY, m->hdr.seq, 0, NULL, 0);
    kern__answer(k, p, &out);
    return true;
  }
  case KREPLAY_REPLAYING:
    if (m->hdr.op == KABI_REPLAY_DONE) {
      replay_done(k, p, m);
      return true;
    }
    return m->hdr.op == KABI_REGISTER && confirm_register(k, p, m);
  }
  abort(); /* a state outside the enum: the array is corrupt */
}

uint64_t kern__replay_calls(const struct kern *k) {
  return k->replay ? k->replay->calls : 0;
}
