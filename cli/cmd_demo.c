/* uksim demo: the free-running demonstration (and a lab machine to look
 * at with `uksim ps` while it runs, --keep).
 *
 * Boots a machine with one OS instance, starts the kvs server, then N
 * application processes (kvsload) that put and get keys through the kernel,
 * shows the kernel's trace of the first steps, and ends with a summary read
 * from kernel data: requests sent, answered, errors, latency per op. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cli.h"
#include "machine.h"
#include "uksim/num.h"

#define MAX_APS 32
#define DEMO_MEMORY_MIB_MAX (1u << 20) /* 1 TiB, accounted, not taken */
#define DEMO_JSONL_HELP                                                        \
  "  --jsonl FILE     keep the kernel's event trace (JSON Lines) in FILE;\n"   \
  "                   the 2nd and later OSes' in FILE.os2, FILE.os3 ...\n"

struct run_opts {
  struct mach_opts m;
  int aps;
  char requests[24], value_size[24];
  uint64_t seed;
  bool keep;
};

static void run_usage(FILE *f) {
  fprintf(
      f,
      "usage: uksim demo [OPTIONS]\n\n"
      "Boot a machine, start the kvs server and application processes "
      "that\nput and get keys through the kernel; print the kernel's "
      "trace of the\nfirst steps and a summary.\n\n"
      "  --aps N          application processes (default 2, max %d)\n"
      "  --requests N     requests per application process (default "
      "1000)\n"
      "  --value-size N   bytes per value (default 64)\n"
      "  --seed N         workload seed (default 1)\n"
      "  --trace N        kernel trace lines to show (default 40; -1 "
      "all)\n"
      "  --name NAME      machine name (default: demo-<pid>)\n"
      "  --memory-mib N   physical memory for the OS (default 4096, max "
      "1048576)\n"
      "  --keep           stay up after the run until Ctrl-C, so that\n"
      "                   'uksim ps --name NAME' can look at "
      "it\n" MACH_PART_HELP MACH_DISK_HELP MACH_POLL_US_HELP MACH_BACKUP_HELP,
      MAX_APS);
  fputs(DEMO_JSONL_HELP, f);
}

/* --jsonl FILE: the machine's trace file (the later OSes': FILE.osN). */
static int jsonl_opt(struct mach_opts *m, const char *file) {
  size_t n = strlen(file);
  if (n == 0 || n >= sizeof m->trace_file) {
    fprintf(stderr,
            "uksim demo: --jsonl '%s': empty or too long a path (%zu "
            "bytes at most)\n",
            file, sizeof m->trace_file - 1);
    return -1;
  }
  memcpy(m->trace_file, file, n + 1);
  return 0;
}

static int parse(int argc, char **argv, struct run_opts *o) {
  static const struct option opts[] = {
      {"aps", required_argument, NULL, 'a'},
      {"requests", required_argument, NULL, 'r'},
      {"value-size", required_argument, NULL, 'v'},
      {"seed", required_argument, NULL, 's'},
      {"trace", required_argument, NULL, 't'},
      {"jsonl", required_argument, NULL, 'j'},
      {"name", required_argument, NULL, 'n'},
      {"memory-mib", required_argument, NULL, 'm'},
      {"keep", no_argument, NULL, 'k'},
      {"poll-us", required_argument, NULL, 'P'},
      {"cores", required_argument, NULL, 'c'},
      {"hw-blocks", required_argument, NULL, 'H'},
      {"disk", required_argument, NULL, 'D'},
      {"help", no_argument, NULL, 'h'},
      MACH_BACKUP_OPTS,
      {NULL, 0, NULL, 0}};
  int c, b;
  uint64_t v;
  mach_opts_default(&o->m);
  snprintf(o->m.name, sizeof o->m.name, "demo-%d", (int)getpid());
  o->m.trace = 40;
  o->aps = 2;
  strcpy(o->requests, "1000");
  o->seed = 1;
  strcpy(o->value_size, "64");
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if ((b = mach_backup_opt("uksim demo", c, optarg, &o->m)) != 0) {
      if (b < 0)
        return 2;
      continue;
    }
    switch (c) {
    case 'a':
      if (cli_number("demo", "--aps", optarg, 1, MAX_APS, &v) < 0)
        return 2;
      o->aps = (int)v;
      break;
    case 'r':
      snprintf(o->requests, sizeof o->requests, "%s", optarg);
      break;
    case 'v':
      snprintf(o->value_size, sizeof o->value_size, "%s", optarg);
      break;
    case 's':
      if (cli_number("demo", "--seed", optarg, 0, UINT64_MAX - MAX_APS,
                     &o->seed) < 0)
        return 2;
      break;
    case 't': {
      int64_t n;
      if (num_opt_i64("uksim demo", "--trace", optarg, -1, INT32_MAX, &n) < 0)
        return 2;
      o->m.trace = (long)n;
      break;
    }
    case 'j':
      if (jsonl_opt(&o->m, optarg) < 0)
        return 2;
      break;
    case 'n':
      if (!mach_name_ok(optarg))
        return fprintf(stderr, "uksim demo: --name '%s': %s\n", optarg,
                       MACH_NAME_RULE),
               2;
      snprintf(o->m.name, sizeof o->m.name, "%s", optarg);
      break;
    case 'm':
      if (cli_number("demo", "--memory-mib", optarg, 1, DEMO_MEMORY_MIB_MAX,
                     &v) < 0)
        return 2;
      o->m.blocks = (uint32_t)((v + 127) / 128);
      break;
    case 'k':
      o->keep = true;
      break;
    case 'P':
      if (mach_poll_us_opt("uksim demo", optarg) < 0)
        return 2;
      o->m.poll_us = mach_poll_us();
      break;
    case 'c':
      if (mach_cores_opt(&o->m, "uksim demo", optarg) < 0)
        return 2;
      break;
    case 'H':
      if (mach_hw_blocks_opt(&o->m, "uksim demo", optarg) < 0)
        return 2;
      break;
    case 'D':
      if (mach_disk_opt(&o->m, "uksim demo", optarg) < 0)
        return 2;
      break;
    case 'h':
      run_usage(stdout);
      return 0;
    default:
      run_usage(stderr);
      return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "uksim demo: unexpected argument '%s'\n", argv[optind]);
    return 2;
  }
  return cli_part_check("demo", &o->m);
}

/* Starts the application processes and waits for all; returns failures.
 * A failed start ends the starting, never the waiting: every Wait sent is
 * answered here, so that no late answer reaches the link afterwards. */
static int run_aps(mach_client *mc, const struct run_opts *o) {
  int64_t wid[MAX_APS];
  int fails = 0, started = 0;
  for (; started < o->aps; started++) {
    char name[32], seed[32];
    int proc;
    snprintf(name, sizeof name, "ap%d", started + 1);
    snprintf(seed, sizeof seed, "%" PRIu64, o->seed + (uint64_t)started);
    char *args[] = {"--count",      (char *)o->requests,
                    "--value-size", (char *)o->value_size,
                    "--seed",       seed,
                    "--name",       name};
    if (mach_spawn(mc, "kvsload", args, 8, name, MACH_SPAWN_WAITABLE, &proc) <
        0) {
      fprintf(stderr, "uksim demo: cannot start kvsload: %s\n", mc->error);
      fails = o->aps - started;
      break;
    }
    wid[started] = mach_wait_send(mc, proc);
  }
  for (int i = 0; i < started; i++) {
    int st = -1, sig = 0;
    if (wid[i] < 0 || mach_wait_reply(mc, (uint64_t)wid[i], &st, &sig) < 0 ||
        st != 0 || sig != 0) {
      fprintf(stderr, "uksim demo: ap%d failed (status %d, signal %d)\n", i + 1,
              st, sig);
      fails++;
    }
  }
  return fails;
}

/* Prints the kernel's counters; 1 when a request went unanswered.  A
 * kernel updated while the load ran (uksim kupdate from another terminal)
 * keeps its tables in another layout: no summary then, and no failure
 * either, for the applications' own statuses already said what the update
 * did to them. */
static int summarize(mach_client *mc) {
  const struct uk_kdata *kd;
  int r = mach_kdata(mc, &kd, NULL);
  if (r == -EPROTO) {
    fprintf(stderr, "uksim demo: no summary: %s (the kernel was updated)\n",
            mc->error);
    return 0;
  }
  if (r < 0) {
    fprintf(stderr, "uksim demo: cannot read kernel data: %s\n", mc->error);
    return 1;
  }
  cli_print_summary(kd);
  int bad = kd->ctr.sends != kd->ctr.results;
  mach_kdata_unmap(kd);
  return bad;
}

/* Waits for Ctrl-C or SIGTERM, so that the machine is then halted cleanly
 * (its ICAs counted) rather than dying with this process, or for the
 * machine to go away by itself (its control link closes).  A message on
 * the link is no end: a request that met a failover may be answered late,
 * and taking that answer for the machine's end would halt a machine that
 * runs (the owner leaving halts it).  SIGINT may have been ignored from
 * birth (a background job): its default is restored.  Returns false when
 * the machine went away. */
static bool wait_for_end(mach_client *mc) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  signal(SIGINT, SIG_DFL);
  sigprocmask(SIG_BLOCK, &set, NULL);
  int sfd = signalfd(-1, &set, SFD_CLOEXEC);
  struct pollfd pf[2] = {{.fd = sfd, .events = POLLIN},
                         {.fd = mc->sock, .events = POLLIN | POLLRDHUP}};
  bool by_signal = sfd < 0, gone = false;
  while (!by_signal && !gone) {
    if (poll(pf, 2, -1) < 0) {
      gone = errno != EINTR;
      continue;
    }
    by_signal = pf[0].revents & POLLIN;
    if (!by_signal && (pf[1].revents & (POLLHUP | POLLRDHUP | POLLERR)))
      gone = true;
    else if (!by_signal && (pf[1].revents & POLLIN))
      gone = mach_drop_late(mc) < 0;
  }
  struct signalfd_siginfo si;
  if (sfd >= 0 && by_signal && read(sfd, &si, sizeof si) < 0)
    by_signal = true; /* taken either way: it must not end us unblocked */
  if (sfd >= 0)
    close(sfd);
  sigprocmask(SIG_UNBLOCK, &set, NULL);
  return by_signal;
}

/* Halts the machine and says how many ICAs were left; 0 when none. */
static int halt(mach_client *mc) {
  uint32_t live = 0;
  if (mach_halt(mc, &live) < 0) {
    fprintf(stderr, "uksim demo: halt: %s\n", mc->error);
    return 1;
  }
  printf("ICAs live at shutdown: %u\n", live);
  return live != 0;
}

/* --keep: the machine stays up for other terminals until Ctrl-C. */
static int keep(mach_client *mc, const struct run_opts *o) {
  /* A ping, not a look at the tables: after a kernel update they are in
   * a layout this uksim does not read, and the machine is up all the same. */
  if (mach_ping(mc, MACH_FAILOVER_WAIT_MS) < 0) {
    fprintf(stderr, "uksim demo: machine '%s' is gone: %s\n", o->m.name,
            mc->error);
    return 1;
  }
  printf("uksim: machine '%s' stays up; 'uksim ps --name %s' in another "
         "terminal; Ctrl-C to end\n",
         o->m.name, o->m.name);
  fflush(stdout);
  if (!wait_for_end(mc)) {
    fprintf(stderr, "uksim demo: machine '%s' went away\n", o->m.name);
    return 1;
  }
  return 0;
}

int cmd_demo(int argc, char **argv) {
  struct run_opts o;
  mach_client mc;
  memset(&o, 0, sizeof o);
  int r = parse(argc, argv, &o);
  if (r >= 0)
    return r;
  if (mach_boot(&mc, &o.m) < 0) {
    fprintf(stderr, "uksim demo: cannot boot machine '%s': %s\n", o.m.name,
            mc.error[0] ? mc.error : strerror(errno));
    mach_close(&mc);
    return 1;
  }
  printf("uksim: machine '%s' booted; kernel trace of the first %ld steps "
         "follows (stderr)\n",
         o.m.name, o.m.trace);
  fflush(stdout);
  int fails = 0;
  if (mach_spawn(&mc, "kvs", NULL, 0, "kvs", MACH_SPAWN_REGISTERED, NULL) < 0) {
    fprintf(stderr, "uksim demo: cannot start kvs: %s\n", mc.error);
    fails = 1;
  } else {
    fails = run_aps(&mc, &o);
    fails += summarize(&mc);
  }
  bool gone = o.keep && keep(&mc, &o) != 0;
  fails += gone ? 1 : halt(&mc);
  mach_close(&mc);
  return fails ? 1 : 0;
}
