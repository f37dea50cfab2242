/* uksim ps / uksim svc: tables of a running machine, read straight from its
 * kernel-data region (mapped read-only), and the latency summary.  ps
 * --calls shows each process's call in the kernel (uk_proc's call_seq,
 * answered_seq, wait_*) and what a backup would do with it were the kernel
 * to die now: adopt_tables (sim-kernel/adopt.h) run on a copy of the
 * region, as a backup runs it on a dead kernel's. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adopt.h"
#include "cli.h"
#include "kern.h"
#include "machine.h"
#include "../vfs/kfmt.h"

/* The rows, as #k serves them (vfs/kfmt.h: one formatter for both),
 * each after the OS it belongs to: every process and service in a
 * kernel's tables is that OS's (a moved process is in the new active's).
 * A protected process's OS is marked '*': it moves at a failover. */
static void print_table(const struct uk_kdata *kd,
                        size_t (*line_fn)(const struct uk_kdata *, uint32_t *,
                                          char *, size_t),
                        bool procs) {
  char line[256];
  uint32_t cursor = 0;
  for (size_t n; (n = line_fn(kd, &cursor, line, sizeof line)) > 0;) {
    int slot = atoi(line);
    bool prot = procs && cursor > 1 && slot >= 0 && slot < UK_PROC_MAX &&
                (kd->proc[slot].flags & UK_PROC_F_PROTECT);
    if (cursor == 1) /* the header */
      printf("OS   ");
    else
      printf("%-3u%-2s", kd->hdr.os_id, prot ? "*" : "");
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
  printf("kernel pid %d, os %u, %llu steps; memory: %u/%u blocks of %llu "
         "MiB, %llu bytes in ICAs\n",
         kd->hdr.kernel_pid, kd->hdr.os_id, (unsigned long long)kd->hdr.step,
         info->blocks_used, info->blocks_total,
         (unsigned long long)(info->block_size >> 20),
         (unsigned long long)info->ica_bytes);
  print_table(kd, vfs_ktab_procs, true);
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
              "running machine (started with 'uksim run --keep --name "
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
  const struct uk_kdata *kd;
  Uksim__Reply *info = NULL;
  if (mach_connect(&mc, name) < 0 || mach_kdata(&mc, &kd, &info) < 0) {
    fprintf(stderr, "uksim %s: %s\n", argv[0], mc.error);
    mach_close(&mc);
    return 1;
  }
  int st = 0;
  print_generation(&mc, kd);
  if (svc)
    print_table(kd, vfs_ktab_svc, false);
  else if (calls)
    st = print_calls(kd);
  else
    print_ps(kd, info);
  uksim__reply__free_unpacked(info, NULL);
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
