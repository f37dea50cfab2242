/* uksim ps / uksim svc: tables of a running machine, read straight from its
 * kernel-data region (mapped read-only), and the latency summary.  ps
 * --calls shows each process's call in the kernel (uk_proc's call_seq,
 * answered_seq, wait_*) and what a backup would do with it were the kernel
 * to die now: adopt_tables (sim-kernel/adopt.h) run on a copy of the
 * region, as a backup runs it on a dead kernel's.
 *
 * After a kernel update (issue 15) the active kernel may be of the other
 * kernel-data layout (uksim-kernel2, layout v2), whose structs this build
 * does not know: its tables are then read through their version-neutral
 * images (sim-kernel/kimage.h) into a copy of this build's layout, and ps
 * says which layout (kernel version) the processes are on. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adopt.h"
#include "cli.h"
#include "kern.h"
#include "kimage.h"
#include "kimage.pb-c.h"
#include "machine.h"
#include "uksim/interos.h"
#include "uksim/xalloc.h"
#include "../vfs/kfmt.h"

/* The rows, as #k serves them (vfs/kfmt.h: one formatter for both),
 * each after the OS it belongs to: every process and service in a
 * kernel's tables is that OS's (a moved process is in the new active's).
 * A protected process's OS is marked '*': it moves at a failover; 'k'
 * marks one a kernel update left on a retiring OS (kkeep.h). */
static void print_table(const struct uk_kdata *kd,
                        size_t (*line_fn)(const struct uk_kdata *, uint32_t *,
                                          char *, size_t),
                        bool procs) {
  char line[256];
  uint32_t cursor = 0;
  for (size_t n; (n = line_fn(kd, &cursor, line, sizeof line)) > 0;) {
    int slot = atoi(line);
    bool live = procs && cursor > 1 && slot >= 0 && slot < UK_PROC_MAX;
    bool prot = live && (kd->proc[slot].flags & UK_PROC_F_PROTECT);
    bool kept = live && (kd->proc[slot].flags & UK_PROC_F_KEPT);
    if (cursor == 1) /* the header */
      printf("OS   ");
    else
      printf("%-3u%-2s", kd->hdr.os_id, kept ? "k" : prot ? "*" : "");
    fwrite(line, 1, n, stdout);
  }
}

/* The OS generation: the active OS's number and the failovers so far,
 * as the machine says (the tables may be a dead OS's mid-failover). */
static void print_generation(mach_client *mc, const struct uk_kdata *kd) {
  Uksim__Reply *st = NULL;
  if (mach_status(mc, &st) < 0) {
    printf("os %u (the machine did not say its generation: %s)\n",
           kd->hdr.os_id, mc->error);
    return;
  }
  printf("os generation %u: active os %u after %u failover%s, backup os ",
         st->failovers + 1, st->active_os, st->failovers,
         st->failovers == 1 ? "" : "s");
  if (st->backup_os)
    printf("%u", st->backup_os);
  else
    printf("none");
  printf("; these tables are os %u's\n", kd->hdr.os_id);
  uksim__reply__free_unpacked(st, NULL);
}

static void print_ps(const struct uk_kdata *kd, const Uksim__Reply *info) {
  printf("kernel pid %d, os %u, %llu steps", kd->hdr.kernel_pid, kd->hdr.os_id,
         (unsigned long long)kd->hdr.step);
  if (info)
    printf("; memory: %u/%u blocks of %llu MiB, %llu bytes in ICAs",
           info->blocks_used, info->blocks_total,
           (unsigned long long)(info->block_size >> 20),
           (unsigned long long)info->ica_bytes);
  printf("\n");
  print_table(kd, vfs_ktab_procs, true);
}

/* Drops from img the ICAs the view has already: a server's, which the
 * kernel part built parked with its service (kimage.c). */
static void drop_built_icas(Uksim__Kimage__Image *img,
                            const struct uk_kdata *view) {
  size_t kept = 0;
  for (size_t i = 0; i < img->n_icas; i++) {
    uint32_t x = KABI_ICA_INDEX(img->icas[i]->id);
    if (x < UK_ICA_MAX && view->ica[x].state != UK_ICA_FREE)
      uksim__kimage__ica__free_unpacked(img->icas[i], NULL);
    else
      img->icas[kept++] = img->icas[i];
  }
  img->n_icas = kept;
}

/* Process `slot` of the v2 region into the view; one the image cannot
 * carry (a server) is shown all the same: ps moves nothing. */
static void view_proc(const void *v2, size_t len, uint32_t slot,
                      struct uk_kdata *view) {
  uint8_t *b;
  size_t n;
  if (kimg_v2_extract(v2, len, slot, &b, &n) < 0)
    return;
  Uksim__Kimage__Image *img = uksim__kimage__image__unpack(NULL, n, b);
  free(b);
  if (img == NULL)
    return;
  img->n_cannot_carry = 0;
  drop_built_icas(img, view);
  n = uksim__kimage__image__get_packed_size(img);
  b = xmalloc(n ? n : 1);
  uksim__kimage__image__pack(img, b);
  (void)kimg_v1_build(view, sizeof *view, b, n);
  free(b);
  uksim__kimage__image__free_unpacked(img, NULL);
}

/* The tables of a layout-v2 region (len bytes) in this build's layout,
 * made from their images; NULL if the region is not layout v2. */
static struct uk_kdata *view_of_v2(const void *v2, size_t len) {
  const struct uk_kdata_hdr *h = v2;
  if (len < kimg_v2_region_size() || h->magic != UK_KDATA_MAGIC ||
      h->size != kimg_v2_region_size())
    return NULL;
  struct uk_kdata *view = xmalloc(sizeof *view);
  kimg_v1_region_init(view, h->os_id);
  uint8_t *b;
  size_t n;
  if (kimg_v2_extract_kernel(v2, len, &b, &n) == 0) {
    (void)kimg_v1_build_kernel(view, sizeof *view, b, n);
    free(b);
  }
  for (uint32_t p = 0; p < UK_PROC_MAX; p++)
    view_proc(v2, len, p, view);
  view->hdr.kernel_pid = h->kernel_pid; /* the header is every layout's */
  view->hdr.step = h->step;
  return view;
}

/* OS os's tables (0: the active's) as a copy in this build's layout,
 * read through images when they are of the other: NULL (and why in
 * mc->error) if they cannot be read either way. */
static struct uk_kdata *os_tables(mach_client *mc, uint32_t os,
                                  uint32_t *layout) {
  int fd;
  struct stat st;
  if (mach_kdata_fd(mc, os, &fd) < 0)
    return NULL;
  void *p =
      fstat(fd, &st) == 0 && st.st_size >= (off_t)sizeof(struct uk_kdata_hdr)
          ? mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0)
          : MAP_FAILED;
  close(fd);
  if (p == MAP_FAILED)
    return NULL;
  *layout = ((const struct uk_kdata_hdr *)p)->layout;
  struct uk_kdata *view = NULL;
  if (*layout == UK_KDATA_LAYOUT &&
      (size_t)st.st_size >= sizeof(struct uk_kdata)) {
    view = xmalloc(sizeof *view);
    memcpy(view, p, sizeof *view); /* a still view of a running kernel */
  } else
    view = view_of_v2(p, (size_t)st.st_size);
  munmap(p, (size_t)st.st_size);
  if (view == NULL)
    snprintf(mc->error, sizeof mc->error,
             "kernel data layout %u: neither this build's (%u) nor v2's",
             *layout, UK_KDATA_LAYOUT);
  return view;
}

/* A kernel update's retiring OS (sim-kernel/kkeep.h), while it lives:
 * the processes it kept, after the active's, marked 'k'. */
static void print_retiring(mach_client *mc) {
  const struct uk_interos *io;
  if (mach_interos(mc, &io) < 0)
    return;
  uint32_t os = io->keep_os, layout;
  mach_interos_unmap(io);
  struct uk_kdata *kd = os == 0 ? NULL : os_tables(mc, os, &layout);
  if (kd == NULL)
    return;
  printf("\nos %u retires after a kernel update (layout %u, kernel pid %d): "
         "it serves only the processes the update could not carry\n",
         os, layout, kd->hdr.kernel_pid);
  print_table(kd, vfs_ktab_procs, true);
  free(kd);
}

static const char *adopt_call_text(enum adopt_call c) {
  switch (c) {
  case ADOPT_IDLE:
    return "idle";
  case ADOPT_WAIT_RESULT:
    return "waits for request";
  case ADOPT_ANSWER_SEND:
    return "send answered: request";
  case ADOPT_ANSWER_ICA:
    return "ICA create answered: ica";
  case ADOPT_RESTART:
    return "call restarted";
  case ADOPT_INTR:
    return "call answered -EINTR";
  }
  return "?";
}

/* What adopt_tables decides for process p: "moves, ..." or "ends: why". */
static void print_call(const struct uk_kdata *kd, uint32_t p,
                       const struct adopt_plan *pl) {
  const struct uk_proc *u = &kd->proc[p];
  const uk_psched_t *us = uk_psched_c(kd, p);
  const struct adopt_proc *a = &pl->proc[p];
  printf("%-4u %-12.12s %-4s %-5s %-7u %-8u %-8u %-8u %-8u ", p, u->name,
         u->flags & UK_PROC_F_PROTECT ? "yes" : "no",
         u->state == UK_PROC_WAITING ? "wait" : "run", us->wait_op,
         us->call_seq, us->answered_seq, us->wait_seq, us->wait_req);
  if (!a->moved)
    printf("ends: %s\n", a->why ? a->why : "?");
  else if (a->call == ADOPT_WAIT_RESULT || a->call == ADOPT_ANSWER_SEND ||
           a->call == ADOPT_ANSWER_ICA)
    printf("moves, %s %u\n", adopt_call_text(a->call), a->req);
  else
    printf("moves, %s\n", adopt_call_text(a->call));
}

/* The calls, and the plan adopt_tables makes from a snapshot of kd. */
static int print_calls(const struct uk_kdata *kd) {
  struct uk_kdata *snap = malloc(sizeof *snap), *mine = calloc(1, sizeof *mine);
  struct adopt_plan *pl = malloc(sizeof *pl);
  int r = snap && mine && pl ? 0 : -1;
  if (r == 0) {
    memcpy(snap, kd, sizeof *snap);
    r = adopt_tables(snap, mine, pl);
  }
  if (r == 0) {
    printf("%-4s %-12s %-4s %-5s %-7s %-8s %-8s %-8s %-8s %s\n", "SLOT", "NAME",
           "PROT", "STATE", "WAIT_OP", "CALL_SEQ", "ANSWERED", "WAIT_SEQ",
           "WAIT_REQ", "IF THE KERNEL DIED NOW");
    for (uint32_t p = 0; p < UK_PROC_MAX; p++)
      if (snap->proc[p].state != UK_PROC_FREE)
        print_call(snap, p, pl);
    /* A running kernel changes its tables while they are copied (~2 MiB):
     * a waiting call's request may be gone from the copy. */
    if (memcmp(snap->proc, kd->proc, sizeof snap->proc) != 0)
      printf("(the kernel ran during the copy: the plan may be torn; stop "
             "the kernel, kill -STOP, to read still tables)\n");
  } else {
    fprintf(stderr, "uksim ps: the tables cannot be adopted (%d)\n", r);
  }
  free(snap);
  free(mine);
  free(pl);
  return r == 0 ? 0 : 1;
}

/* The latency at quantile q of a histogram, in microseconds (the lower
 * bound of the bucket holding it). */
static double quantile_us(const struct uk_svc_ophist *h, double q) {
  uint64_t want = (uint64_t)(q * (double)h->count), seen = 0;
  for (unsigned b = 0; b < UK_HIST_BUCKETS; b++) {
    seen += h->bucket[b];
    if (seen > want)
      return (double)uk_hist_lower(b) / 1e3;
  }
  return 0;
}

void cli_print_summary(const struct uk_kdata *kd) {
  printf("\nsummary: %llu requests sent, %llu answered, %llu errors; "
         "%llu calls refused (--trace names them)\n",
         (unsigned long long)kd->ctr.sends, (unsigned long long)kd->ctr.results,
         (unsigned long long)kd->ctr.errors,
         (unsigned long long)kd->ctr.bad_calls);
  printf("%-16s %10s %8s %10s %10s\n", "SERVICE.OP", "COUNT", "ERRORS",
         "P50_US", "P99_US");
  for (int i = 0; i < UK_SVC_MAX; i++) {
    const struct uk_svc *s = &kd->svc[i];
    if (s->state == UK_SVC_FREE)
      continue;
    for (int op = 0; op < UK_OPS_MAX; op++) {
      const struct uk_svc_ophist *h = &s->op[op];
      if (h->count == 0)
        continue;
      char on[64];
      printf("%-16s %10llu %8llu %10.1f %10.1f\n",
             kern__opname(kd, (uint32_t)i, (uint32_t)op, on, sizeof on),
             (unsigned long long)h->count, (unsigned long long)h->errors,
             quantile_us(h, 0.50), quantile_us(h, 0.99));
    }
  }
  printf("(latency: send to answer, measured by the kernel; errors are "
         "answers with\n a negative status, e.g. -ENOENT for a get of an "
         "absent key)\n");
}

static int table(int argc, char **argv, bool svc) {
  static const struct option opts[] = {{"name", required_argument, NULL, 'n'},
                                       {"calls", no_argument, NULL, 'c'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *name = "default";
  bool calls = false;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (c == 'n') {
      name = optarg;
    } else if (c == 'c' && !svc) {
      calls = true;
    } else {
      fprintf(c == 'h' ? stdout : stderr,
              "usage: uksim %s [--name MACHINE]%s\n\nPrint the %s table of a "
              "running machine (started with 'uksim demo --keep --name "
              "MACHINE'),\nread from its kernel data.\n%s",
              argv[0], svc ? "" : " [--calls]", svc ? "server info" : "process",
              svc ? ""
                  : "\n  --calls  each process's call in the kernel "
                    "(uk_proc.call_seq ...)\n           and what a backup "
                    "would do with it were the kernel to die\n           now "
                    "(adopt_tables, sim-kernel/adopt.h)\n");
      return c == 'h' ? 0 : 2;
    }
  }
  mach_client mc;
  const struct uk_kdata *kd = NULL;
  struct uk_kdata *view = NULL;
  Uksim__Reply *info = NULL;
  uint32_t layout = UK_KDATA_LAYOUT;
  int r = mach_connect(&mc, name);
  if (r == 0 && (r = mach_kdata(&mc, &kd, &info)) == -EPROTO)
    r = (kd = view = os_tables(&mc, 0, &layout)) ? 0 : -EPROTO;
  if (r < 0) {
    fprintf(stderr, "uksim %s: %s\n", argv[0], mc.error);
    mach_close(&mc);
    return 1;
  }
  int st = 0;
  print_generation(&mc, kd);
  if (view)
    printf("os %u runs kernel-data layout %u (the other kernel version, "
           "after a kernel update): its tables are read through "
           "version-neutral images\n",
           kd->hdr.os_id, layout);
  if (svc)
    print_table(kd, vfs_ktab_svc, false);
  else if (calls)
    st = print_calls(kd);
  else {
    print_ps(kd, info);
    print_retiring(&mc);
  }
  if (info)
    uksim__reply__free_unpacked(info, NULL);
  if (view)
    free(view);
  else
    mach_kdata_unmap(kd);
  mach_close(&mc);
  return st;
}

int cmd_ps(int argc, char **argv) {
  return table(argc, argv, false);
}

int cmd_svc(int argc, char **argv) {
  return table(argc, argv, true);
}
