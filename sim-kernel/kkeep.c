/* The keep record of a kernel update (kkeep.h): the machine judges the
 * stopped old kernel's processes from their images, as `uksim kupdate`
 * and the new kernel do (kimage_refuse.h), so all three name the same
 * processes.  Only refusals at extract can be known before the hand-over:
 * they are the ones kept. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "kimage.h"
#include "kimage_refuse.h"
#include "kkeep.h"
#include "uksim/interos.h"

/* The state letter of /proc/PID/stat, 0 if it cannot be read. */
static char proc_state(pid_t pid) {
  char path[64], buf[256];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *paren = strrchr(buf, ')'); /* the name may hold anything */
  return paren && paren[1] == ' ' ? paren[2] : 0;
}

bool kkeep_stopped(pid_t pid) {
  char st = proc_state(pid);
  return st == 'T' || st == 't';
}

int kkeep_await_stopped(pid_t pid) {
  for (int i = 0; i < KKEEP_STOP_WAIT_MS; i++) {
    char st = proc_state(pid);
    if (st == 'T' || st == 't' || st == 0)
      return 0;
    usleep(1000);
  }
  return -ETIMEDOUT;
}

typedef int (*extract_fn)(const void *region, size_t len, uint32_t slot,
                          uint8_t **buf, size_t *n);

/* The extractor of a region's layout, by its size, or NULL. */
static extract_fn extractor(const void *kd, size_t len) {
  const struct uk_kdata_hdr *h = kd;
  if (len < sizeof *h || h->magic != UK_KDATA_MAGIC)
    return NULL;
  if (len >= kimg_v1_region_size() && h->size == kimg_v1_region_size())
    return kimg_v1_extract;
  if (len >= kimg_v2_region_size() && h->size == kimg_v2_region_size())
    return kimg_v2_extract;
  return NULL;
}

static bool refused_at_extract(extract_fn ex, const void *kd, size_t len,
                               uint32_t p) {
  uint8_t *b;
  size_t n;
  struct kimg_refusal f;
  if (ex(kd, len, p, &b, &n) < 0)
    return false; /* no live process there */
  int e = kimg_judge(b, n, &f);
  free(b);
  return e == 0 && f.verdict == KIMG_REFUSED_AT_EXTRACT;
}

int kkeep_mark(struct uk_interos *io, uint32_t os, int kd_fd) {
  struct stat st;
  kkeep_clear(io);
  if (fstat(kd_fd, &st) < 0)
    return 0;
  size_t len = (size_t)st.st_size;
  const void *kd = mmap(NULL, len, PROT_READ, MAP_SHARED, kd_fd, 0);
  if (kd == MAP_FAILED)
    return 0;
  extract_fn ex = extractor(kd, len);
  uint32_t n = 0;
  for (uint32_t p = 0; ex != NULL && p < UK_PROC_MAX; p++) {
    io->keep[p] = refused_at_extract(ex, kd, len, p);
    n += io->keep[p];
  }
  munmap((void *)kd, len);
  io->nkeep = n;
  if (n > 0)
    __atomic_store_n(&io->keep_os, os, __ATOMIC_RELEASE);
  return (int)n;
}

bool kkeep_kept(const struct uk_interos *io, uint32_t os, uint32_t p) {
  return io != NULL && os != 0 &&
         __atomic_load_n(&io->keep_os, __ATOMIC_ACQUIRE) == os &&
         p < UK_PROC_MAX && io->keep[p];
}

bool kkeep_retiring(const struct uk_interos *io) {
  return io != NULL && __atomic_load_n(&io->keep_os, __ATOMIC_ACQUIRE) != 0;
}

void kkeep_clear(struct uk_interos *io) {
  __atomic_store_n(&io->keep_os, 0, __ATOMIC_RELEASE);
  io->nkeep = 0;
  memset(io->keep, 0, sizeof io->keep);
}
