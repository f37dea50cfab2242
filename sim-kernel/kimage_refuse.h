/* What a kernel update does with one process, judged from its image
 * (issue 15, method A: "state the image cannot carry is named, and the
 * migration of that process fails cleanly, leaving it running on the old
 * kernel").  Layout-neutral: it reads only packed kimage.proto bytes, so
 * the new kernel (kconvert.c) and the uksim CLI (`uksim kupdate`, which
 * reads the stopped old kernel's region from outside) name a refusal in
 * the same words.
 *
 * Per process, an update is this state machine (kimage_refuse.c has it
 * with the transitions that are built and those that are not yet):
 *
 *   EXTRACTED --cannot_carry empty--> (build) --built--> BUILT --> HANDED
 *   EXTRACTED --cannot_carry "server: ..."--> RESTARTS
 *   EXTRACTED --cannot_carry anything else--> REFUSED_AT_EXTRACT
 *   (build) --refused (-EEXIST, -EINVAL, -EBADMSG, -EPROTO)--> REFUSED_AT_BUILD
 *
 * A verdict is the state a process reaches; kimg_judge gives the first
 * step's (extract) and kimg_judge_build the second's (build).
 */
#ifndef UKSIM_KIMAGE_REFUSE_H
#define UKSIM_KIMAGE_REFUSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum kimg_verdict {
  KIMG_MOVES,              /* the image carries it: built on the new kernel */
  KIMG_RESTARTS,           /* a server: its service restarts on the new one */
  KIMG_REFUSED_AT_EXTRACT, /* its image names state it cannot carry */
  KIMG_REFUSED_AT_BUILD,   /* the new kernel's builder refused the image */
  KIMG_UNREADABLE,         /* not an image */
};

/* Bytes of a refusal's reason: an extractor's cannot_carry text (about
 * 90 bytes today) or a builder's errno text, with room to spare. */
#define KIMG_WHY_MAX 200
/* Bytes of a process name in a verdict (KABI_NAME_MAX is less). */
#define KIMG_NAME_MAX 64

struct kimg_refusal {
  enum kimg_verdict verdict;
  uint32_t slot;
  int32_t pid;
  bool attached; /* came by Attach: its connection is its own */
  char name[KIMG_NAME_MAX];
  char why[KIMG_WHY_MAX]; /* "" for KIMG_MOVES */
};

/* Judges the packed image b (n bytes) as the extractor wrote it: moves,
 * restarts (a server) or refused at extract (the first cannot_carry entry
 * other than "server" is the reason).  0, or -EBADMSG (verdict
 * KIMG_UNREADABLE). */
int kimg_judge(const uint8_t *b, size_t n, struct kimg_refusal *out);

/* The verdict once the new kernel's builder answered r for that image
 * (a slot >= 0, or a negative errno; -EXDEV is the extractor's refusal).
 * 0, or -EBADMSG. */
int kimg_judge_build(const uint8_t *b, size_t n, int r,
                     struct kimg_refusal *out);

/* One line for a trace or a report: "NAME (pid P) cannot move: WHY",
 * "NAME (pid P) restarts: WHY" or "NAME (pid P) moves".  Returns what
 * snprintf returns. */
int kimg_refusal_text(const struct kimg_refusal *f, char *buf, size_t len);

#endif /* UKSIM_KIMAGE_REFUSE_H */
