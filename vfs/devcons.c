/* #c — the console (Plan 9's port/devcons.c, the part a uksim process
 * needs): cons, consctl, null, zero, time and pid.
 *
 * cons writes go to an output ring in the region (struct uk_cons) that
 * the kernel mirrors into its trace (vfs_cons_output); when it is full
 * the oldest bytes are overwritten, so console output never blocks.  cons
 * reads drain an input ring the kernel fills (vfs_cons_input); an empty
 * one is -EAGAIN, "would block" (dev.h convention 1).  consctl takes
 * "rawon" and "rawoff" (kept for the kernel; input is not echoed either
 * way) and is write-only, as in Plan 9.  null reads empty and swallows
 * writes; zero reads zeros.  time is the kernel clock in ns since boot and
 * pid the caller's pid, both decimal without a newline (the host gives
 * both, convention 2; with no caller pid is -ESRCH).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "dev.h"
#include "vfs_int.h"

enum { QCONS = 1, QCONSCTL, QNULL, QZERO, QTIME, QPID };

static const struct vfs__ent files[] = {
    {"cons", 0660u}, {"consctl", 0220u}, {"null", 0666u},
    {"zero", 0444u}, {"time", 0444u},    {"pid", 0444u},
};

static int consgen(const struct uk_kdata *kd, const struct uk_chan *c, int i,
                   struct vfs_dir *d) {
  (void)kd;
  return vfs__flat_gen(files, (int)(sizeof files / sizeof files[0]), "#c", c, i,
                       d);
}

static long cons_in(struct uk_kdata *kd, char *buf, uint32_t n) {
  struct uk_cons *k = &kd->vfs.cons;
  if (k->in_len == 0)
    return -EAGAIN;
  return (long)vfs__ring_take(k->in, UK_CONS_IN, &k->in_head, &k->in_len, buf,
                              n);
}

static long pid_read(const struct uk_kdata *kd, void *buf, uint32_t n,
                     uint64_t off) {
  uint32_t up = vfs_up();
  if (up >= UK_PROC_MAX || kd->proc[up].state == UK_PROC_FREE)
    return -ESRCH;
  char s[16];
  int len = snprintf(s, sizeof s, "%" PRId32, kd->proc[up].pid);
  return vfs__read_str(buf, n, off, s, (size_t)len);
}

static long consread(struct uk_kdata *kd, const struct uk_chan *c, void *buf,
                     uint32_t n, uint64_t off) {
  char s[24];
  switch (c->qid.path) {
  case 0:
    return vfs_devdirread(kd, c, buf, n, off);
  case QCONS:
    return cons_in(kd, buf, n);
  case QNULL:
    return 0;
  case QZERO:
    memset(buf, 0, n);
    return (long)n;
  case QTIME:
    snprintf(s, sizeof s, "%" PRIu64, vfs_now_ns());
    return vfs__read_str(buf, n, off, s, strlen(s));
  case QPID:
    return pid_read(kd, buf, n, off);
  default: /* consctl */
    return -EPERM;
  }
}

static void cons_out(struct uk_cons *k, const char *buf, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    k->out[(k->out_head + k->out_len) % UK_CONS_OUT] = buf[i];
    if (k->out_len < UK_CONS_OUT)
      k->out_len++;
    else
      k->out_head = (k->out_head + 1) % UK_CONS_OUT;
  }
  k->out_total += n;
}

/* "rawon" or "rawoff", a trailing newline allowed. */
static long consctl(struct uk_cons *k, const char *buf, uint32_t n) {
  uint32_t len = n > 0 && buf[n - 1] == '\n' ? n - 1 : n;
  if (len == 5 && memcmp(buf, "rawon", 5) == 0)
    k->raw = 1;
  else if (len == 6 && memcmp(buf, "rawoff", 6) == 0)
    k->raw = 0;
  else
    return -EINVAL;
  return (long)n;
}

static long conswrite(struct uk_kdata *kd, struct uk_chan *c, const void *buf,
                      uint32_t n, uint64_t off) {
  (void)off;
  switch (c->qid.path) {
  case QCONS:
    cons_out(&kd->vfs.cons, buf, n);
    return (long)n;
  case QCONSCTL:
    return consctl(&kd->vfs.cons, buf, n);
  case QNULL:
    return (long)n;
  default:
    return -EPERM;
  }
}

uint32_t vfs_cons_input(struct uk_kdata *kd, const void *buf, uint32_t n) {
  struct uk_cons *k = &kd->vfs.cons;
  return vfs__ring_put(k->in, UK_CONS_IN, k->in_head, &k->in_len, buf, n);
}

uint32_t vfs_cons_output(const struct uk_kdata *kd, uint64_t *seq, void *buf,
                         uint32_t n) {
  const struct uk_cons *k = &kd->vfs.cons;
  uint64_t first = k->out_total - k->out_len; /* oldest byte still kept */
  if (*seq < first || *seq > k->out_total)
    *seq = first;
  uint64_t left = k->out_total - *seq;
  uint32_t take = left < n ? (uint32_t)left : n;
  uint32_t at = (uint32_t)((k->out_head + (*seq - first)) % UK_CONS_OUT);
  for (uint32_t i = 0; i < take; i++)
    ((char *)buf)[i] = k->out[(at + i) % UK_CONS_OUT];
  *seq += take;
  return take;
}

const struct vfs_dev vfs_consdev = {
    .dc = 'c',
    .name = "cons",
    .gen = consgen,
    .read = consread,
    .write = conswrite,
};
