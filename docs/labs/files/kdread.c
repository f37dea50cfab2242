/* kdread: read a kernel's tables from its kernel-data region, from outside,
 * as a backup kernel does with a dead one (lab 08, seed 001 §2.6).
 *
 *   cc -std=c11 -I include docs/labs/files/kdread.c -o kdread
 *   kdread REGION [REGION...]
 *
 * REGION is a file holding a region: /proc/MACHINE/fd/N of the machine's
 * "uksim-kdata" memfd (the machine keeps every OS's region, a dead one's
 * too, until a backup takes it over).  For each, kdread prints the header
 * (which OS, which layout, which kernel process wrote it), the process
 * table and the buffer cache's table: the two tables Orthros reads to move
 * the chosen processes (§2.6) and the unwritten file cache (§2.5).
 *
 * It trusts nothing it reads: the region may be another layout, torn (the
 * kernel died in the middle of an update) or not a region at all.  It
 * copies the region first, so a live kernel cannot change it under the
 * checks, and it checks magic, layout and size before it reads a table.
 */
#define _POSIX_C_SOURCE 200809L /* pread */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "uksim/kdata.h"

/* The names kdata.h's encodings stand for (layout 11). */
static const char *proc_state(uint8_t s) {
  static const char *names[] = {"free", "run", "wait", "exited"};
  return s < 4 ? names[s] : "?";
}

static const char *bc_state(uint8_t s) {
  static const char *names[] = {"free", "clean", "dirty", "writing"};
  return s < 4 ? names[s] : "?";
}

/* Reads the whole region at path into kd.  0, or -1 with a message. */
static int load(const char *path, struct uk_kdata *kd) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) {
    perror(path);
    return -1;
  }
  size_t got = 0;
  while (got < sizeof *kd) {
    ssize_t n = pread(fd, (char *)kd + got, sizeof *kd - got, (off_t)got);
    if (n <= 0)
      break;
    got += (size_t)n;
  }
  close(fd);
  if (got < sizeof kd->hdr || kd->hdr.magic != UK_KDATA_MAGIC) {
    fprintf(stderr, "%s: not a kernel-data region\n", path);
    return -1;
  }
  if (kd->hdr.layout != UK_KDATA_LAYOUT || kd->hdr.size != sizeof *kd ||
      got < sizeof *kd) {
    fprintf(stderr, "%s: kernel data layout %u, not %u\n", path, kd->hdr.layout,
            UK_KDATA_LAYOUT);
    return -1;
  }
  return 0;
}

static void print_procs(const struct uk_kdata *kd) {
  printf("SLOT NAME         KIND   STATE  PROT CALL_SEQ ANSWERED WAIT_OP\n");
  for (int i = 0; i < UK_PROC_MAX; i++) {
    const struct uk_proc *p = &kd->proc[i];
    if (p->state == UK_PROC_FREE)
      continue;
    char name[KABI_NAME_MAX + 1];
    memcpy(name, p->name, KABI_NAME_MAX);
    name[KABI_NAME_MAX] = '\0'; /* a torn name may have no NUL */
    printf("%-4d %-12s %-6s %-6s %-4s %-8u %-8u %u\n", i, name,
           p->kind == UK_PROC_SERVER ? "server" : "ap", proc_state(p->state),
           (p->flags & UK_PROC_F_PROTECT) ? "yes" : "no", p->call_seq,
           p->answered_seq, p->state == UK_PROC_WAITING ? p->wait_op : 0);
  }
}

static void print_bcache(const struct uk_kdata *kd) {
  const struct uk_bcache_hdr *h = &kd->bcache.hdr;
  if (h->block_size == 0) {
    printf("no disk\n");
    return;
  }
  printf("buffer cache: %u cached, %u dirty, %llu write-backs\n", h->ncached,
         h->ndirty, (unsigned long long)h->writebacks);
  printf("ENTRY BLOCK  STATE   ICA      OFF\n");
  for (uint32_t i = 0; i < UK_BCACHE_MAX; i++) {
    const struct uk_bcache_ent *e = &kd->bcache.ent[i];
    if (e->state == UK_BC_FREE)
      continue;
    printf("%-5u %-6llu %-7s %-8x %u\n", i, (unsigned long long)e->block,
           bc_state(e->state), e->ica, e->off);
  }
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: kdread REGION [REGION...]\n");
    return 2;
  }
  struct uk_kdata *kd = malloc(sizeof *kd);
  if (kd == NULL)
    return 1;
  int bad = 0;
  for (int a = 1; a < argc; a++) {
    if (load(argv[a], kd) < 0) {
      bad = 1;
      continue;
    }
    printf("os %u, layout %u, written by kernel pid %d, %llu steps\n",
           kd->hdr.os_id, kd->hdr.layout, kd->hdr.kernel_pid,
           (unsigned long long)kd->hdr.step);
    print_procs(kd);
    print_bcache(kd);
  }
  free(kd);
  return bad;
}
