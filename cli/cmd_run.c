/* uksim run: run a scenario (scenarios/README.md) and check what it
 * expects.
 *
 * The scenario is parsed here first (a bad file: exit 2 before anything
 * starts), then a machine boots whose kernel runs it in lock-step with the
 * seed (cli/scn_exec.c), writing its trace.  When the kernel says
 * the scenario is over, the machine halts; the trace is read back and every
 * expectation checked on it (scenarios/scn_eval.c).  The verdicts are
 * appended to the trace as `expect` events, so a trace records its run's
 * outcome, and the trace's SHA-256 is printed: the same scenario and seed
 * give the same hash.
 *
 * Dumps: for `expect state S equals "FILE"` the kernel's dumper writes S's
 * final contents to S.dump in a directory the runner gives it: a private
 * temporary one (mode 0700, in $TMPDIR), removed after the verdicts, or
 * --dump-dir DIR, kept (to write FILE from a run).  Its name is never in
 * the trace, so it does not change the hash.
 *
 * A scenario's tcp-clients (tcp_client.h) are the runner's: threads
 * started once the machine has booted, stopped when the kernel says the
 * run is over (before the halt), their figures a fact for the verdicts.
 *
 * With --json, standard output carries the JSON Lines and nothing else:
 * the machine and every program it starts (which would inherit it, and
 * print their own lines) get standard error as their standard output.
 *
 * Exit status: 0 every expectation holds; 1 one does not, the run could
 * not end (the reason, the seed and the step are printed) or a declared
 * server or app could not start; 2 bad input. */
#include <fcntl.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "kpath.h"
#include "machine.h"
#include "run_os.h"
#include "scn.h"
#include "scn_eval.h"
#include "scn_journal.h"
#include "scn_trace.h"
#include "run_migd.h"
#include "run_nodes.h"
#include "tcp_client.h"
#include "timeline.h"
#include "uksim/xalloc.h"

struct run_opts {
  const char *file;
  const char *seed; /* --seed as given, checked; NULL: not given */
  uint64_t seed_v;  /* its value */
  const char *trace_pb;
  const char *timeline;
  const char *jsonl;    /* keep the JSON Lines trace here */
  const char *dump_dir; /* keep the final-state dumps here */
  const char *disk;     /* --disk DIR, or NULL */
  long show;            /* events shown as text; -1 all */
  bool json;            /* the trace as JSON Lines on stdout */
  FILE *json_out;       /* with json: the real stdout (json_stdout) */
  bool quiet;
  bool ktrace;        /* the kernel's own trace lines on stderr */
  struct mach_opts m; /* --cores, --hw-blocks, --disk, --backup ... */
};

static void run_usage(FILE *f) {
  fprintf(f,
          "usage: uksim run [FILE.scn] [OPTIONS]\n\n"
          "Run a scenario on a fresh machine, deterministically (lock-step, "
          "seeded),\nand check its expectations.  Without FILE: "
          "scenarios/tour.scn, a live\nreplacement of a server under load.\n\n"
          "  --seed N          the run's seed (default: the scenario's, "
          "else 1)\n"
          "  --show N          trace events shown as text (default 40; -1 "
          "all)\n"
          "  --json            print the trace as JSON Lines on stdout "
          "instead\n"
          "  --jsonl FILE      keep the JSON Lines trace in FILE\n"
          "  --trace FILE      write the trace in binary form (protobuf; "
          "read it\n"
          "                    with 'uksim trace FILE')\n"
          "  --timeline FILE   draw the run as a sequence diagram (.html or "
          ".svg)\n"
          "  --dump-dir DIR    keep the final-state dumps (SERVICE.dump, for "
          "'expect\n"
          "                    state S equals \"FILE\"') in DIR\n"
          "  --quiet           print only the verdicts and the outcome\n"
          "  --kernel-trace    the kernel's own log lines on "
          "stderr\n" MACH_PART_HELP MACH_DISK_HELP MACH_POLL_US_HELP
              MACH_BACKUP_HELP "\n"
          "With --json, stdout holds the JSON Lines alone: the programs the "
          "run\nstarts, and the verdicts, write to stderr.\n\n"
          "Exit status: 0 every expectation holds, 1 one fails, the run "
          "could not\nend or a declared server or app could not start, 2 "
          "bad input.\n");
}

/* The tour, from the source tree or the install (kpath.h); NULL when
 * neither has it. */
static const char *default_scenario(void) {
  static char path[KERN_PATH_MAX];
  return kern__find_scenario("tour.scn", path, sizeof path) == 0 ? path : NULL;
}

static int parse(int argc, char **argv, struct run_opts *o) {
  static const struct option opts[] = {
      {"seed", required_argument, NULL, 's'},
      {"show", required_argument, NULL, 'n'},
      {"json", no_argument, NULL, 'j'},
      {"jsonl", required_argument, NULL, 'l'},
      {"trace", required_argument, NULL, 't'},
      {"timeline", required_argument, NULL, 'T'},
      {"dump-dir", required_argument, NULL, 'd'},
      {"quiet", no_argument, NULL, 'q'},
      {"kernel-trace", no_argument, NULL, 'K'},
      {"poll-us", required_argument, NULL, 'P'},
      {"cores", required_argument, NULL, 'c'},
      {"hw-blocks", required_argument, NULL, 'H'},
      {"disk", required_argument, NULL, 'D'},
      {"help", no_argument, NULL, 'h'},
      MACH_BACKUP_OPTS,
      {NULL, 0, NULL, 0}};
  int c, b;
  uint64_t n;
  o->show = 40;
  mach_opts_default(&o->m);
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if ((b = mach_backup_opt("uksim run", c, optarg, &o->m)) != 0) {
      if (b < 0)
        return 2;
      continue;
    }
    switch (c) {
    case 's':
      if (cli_number("run", "--seed", optarg, 0, UINT64_MAX, &o->seed_v) < 0)
        return 2;
      o->seed = optarg;
      break;
    case 'n':
      if (strcmp(optarg, "-1") == 0)
        o->show = -1;
      else if (cli_number("run", "--show", optarg, 0, LONG_MAX, &n) < 0)
        return 2;
      else
        o->show = (long)n;
      break;
    case 'j':
      o->json = true;
      break;
    case 'l':
      o->jsonl = optarg;
      break;
    case 't':
      o->trace_pb = optarg;
      break;
    case 'T':
      o->timeline = optarg;
      break;
    case 'd':
      o->dump_dir = optarg;
      break;
    case 'q':
      o->quiet = true;
      break;
    case 'K':
      o->ktrace = true;
      break;
    case 'P':
      if (mach_poll_us_opt("uksim run", optarg) < 0)
        return 2;
      break;
    case 'c':
      if (mach_cores_opt(&o->m, "uksim run", optarg) < 0)
        return 2;
      break;
    case 'H':
      if (mach_hw_blocks_opt(&o->m, "uksim run", optarg) < 0)
        return 2;
      break;
    case 'D':
      o->disk = optarg;
      break;
    case 'h':
      run_usage(stdout);
      return 0;
    default:
      run_usage(stderr);
      return 2;
    }
  }
  if (optind + 1 < argc) {
    fprintf(stderr, "uksim run: one scenario at a time\n");
    return 2;
  }
  o->file = optind < argc ? argv[optind] : default_scenario();
  if (o->file == NULL) {
    fprintf(stderr, "uksim run: tour.scn is not installed (searched the "
                    "source tree and the install): name a scenario\n");
    return 1;
  }
  return cli_part_check("run", &o->m);
}

/* Copies src into dst[size]; -1 if it does not fit. */
static int copy_str(char *dst, size_t size, const char *src) {
  size_t n = strlen(src);
  if (n >= size)
    return -1;
  memcpy(dst, src, n + 1);
  return 0;
}

/* Asks the kernel running the scenario for its end: 0, or 1 with why
 * set.  On a machine with a backup, a wait the dying active could not
 * answer is asked again of the next one (run_os.h). */
static int scenario_wait(mach_client *mc, const struct mach_opts *m, char *why,
                         size_t len) {
  Uksim__Ctl req = UKSIM__CTL__INIT, *rep = NULL;
  Uksim__ScenarioWait w = UKSIM__SCENARIO_WAIT__INIT;
  req.body_case = UKSIM__CTL__BODY_SCENARIO_WAIT;
  req.scenario_wait = &w;
  for (int waited = 0;; waited += 100) {
    int64_t id = mach_send(mc, &req);
    rep = NULL;
    if (id >= 0)
      mach_reply(mc, (uint64_t)id, &rep, NULL); /* its status is rep's */
    if (rep == NULL || rep->reply == NULL) {
      snprintf(why, len, "the machine failed: %.200s", mc->error);
      if (rep)
        uksim__ctl__free_unpacked(rep, NULL);
      return 1;
    }
    int st = rep->reply->status;
    if (st != 0)
      snprintf(why, len, "%s", rep->reply->error);
    uksim__ctl__free_unpacked(rep, NULL);
    if (st == 0)
      return 0;
    if (!run_os_retry(m, st) || waited >= RUN_OS_WAIT_MS)
      return 1;
    usleep(100 * 1000); /* a failover takes a heartbeat timeout or so */
  }
}

/* Boots, starts the scenario's tcp-clients (*tcp, for the caller to free
 * after the verdicts), waits for the scenario's end, stops them, halts.
 * 0, or 1 with why set. */
static int run_machine(const struct run_opts *o, const struct scn *s,
                       const char *abs, const char *trace, const char *dumps,
                       char *why, size_t len, uint32_t *live,
                       struct scn_facts *facts, struct tcp_clients **tcp) {
  struct mach_opts m = o->m;
  mach_client mc;
  m.poll_us = mach_poll_us();
  snprintf(m.name, sizeof m.name, "scn-%d", (int)getpid());
  m.trace = o->ktrace ? -1 : 0;
  if (copy_str(m.scenario, sizeof m.scenario, abs) < 0 ||
      copy_str(m.trace_file, sizeof m.trace_file, trace) < 0 ||
      copy_str(m.seed, sizeof m.seed, o->seed ? o->seed : "") < 0 ||
      copy_str(m.dump_dir, sizeof m.dump_dir, dumps) < 0) {
    snprintf(why, len, "a path or the seed is too long");
    return 1;
  }
  if (o->disk && mach_disk_opt(&m, "uksim run", o->disk) < 0) {
    snprintf(why, len, "bad --disk");
    return 1;
  }
  scn_journal_clear(dumps); /* the clients' clock is this run's */
  struct run_nodes *nodes = run_nodes_start(s, dumps, why, len);
  if (nodes == NULL)
    return 1;
  struct run_migd *migd = run_migd_start(s, dumps, why, len);
  if (migd == NULL) {
    run_nodes_stop(nodes);
    return 1;
  }
  if (mach_boot(&mc, &m) < 0) {
    snprintf(why, len, "cannot boot the machine: %s", strerror(errno));
    run_migd_stop(migd);
    run_nodes_stop(nodes);
    return 1;
  }
  *tcp = tcp_clients_start(s, dumps);
  int st = scenario_wait(&mc, &m, why, len);
  tcp_clients_stop(*tcp, facts);
  run_migd_collect(migd);
  run_migd_stop(migd);
  if (m.backup)
    run_os_usable(&mc, facts);
  if (mach_halt(&mc, live) < 0 && st == 0) {
    snprintf(why, len, "halt failed: %.200s", mc.error);
    st = 1;
  }
  mach_close(&mc);
  run_nodes_stop(nodes);
  return st;
}

static void show_events(const struct scn_trace *tr, long n) {
  char line[512];
  for (size_t i = 0; i < tr->n && (n < 0 || (long)i < n); i++) {
    scn_event_text(&tr->ev[i], line, sizeof line);
    printf("%s\n", line);
  }
  if (n >= 0 && tr->n > (size_t)n)
    printf("... %zu more events (--show -1 for all, --timeline for a "
           "picture)\n",
           tr->n - (size_t)n);
}

/* Appends one `expect` event per verdict to the trace file. */
static void append_verdicts(const char *trace, const struct scn_trace *tr,
                            const struct scn *s, const struct scn_verdict *v) {
  FILE *f = fopen(trace, "a");
  if (f == NULL)
    return;
  uint64_t step = tr->n ? tr->ev[tr->n - 1].step : 0;
  uint64_t t = tr->n ? tr->ev[tr->n - 1].t : 0;
  for (size_t i = 0; i < s->nexpects; i++) {
    struct scn_event e = {.step = step,
                          .t = t,
                          .ev = SCN_EV_EXPECT,
                          .status = v[i].holds ? 0 : 1,
                          .has_status = true};
    snprintf(e.actor, sizeof e.actor, "kernel");
    snprintf(e.text, sizeof e.text, "%s", v[i].text);
    scn_event_json(&e, f);
  }
  fclose(f);
}

static int verdicts(const struct run_opts *o, const struct scn *s,
                    const char *trace, struct scn_facts *facts, uint64_t seed) {
  struct scn_err err;
  struct scn_trace *tr = scn_trace_load(trace, &err);
  if (tr == NULL) {
    fprintf(stderr, "uksim run: %s\n", err.text);
    return 1;
  }
  struct scn_verdict *v = xcalloc(s->nexpects + 1, sizeof *v);
  int bad = scn_eval(s, tr, facts, v);
  if (!o->quiet && !o->json)
    show_events(tr, o->show);
  append_verdicts(trace, tr, s, v);
  FILE *out = o->json ? stderr : stdout;
  for (size_t i = 0; i < s->nexpects; i++)
    fprintf(out, "%s %s\n", v[i].holds ? "  ok  " : "  FAIL", v[i].text);
  scn_trace_free(tr);
  if ((tr = scn_trace_load(trace, &err)) == NULL) {
    fprintf(stderr, "uksim run: %s\n", err.text);
    free(v);
    return 1;
  }
  if (o->json &&
      (scn_trace_write_json(tr, o->json_out) < 0 || fflush(o->json_out) != 0))
    fprintf(stderr, "uksim run: cannot write the trace to stdout\n"), bad++;
  if (o->trace_pb && scn_trace_write_pb(tr, o->trace_pb) < 0)
    fprintf(stderr, "uksim run: cannot write %s\n", o->trace_pb), bad++;
  if (o->timeline) {
    FILE *f = fopen(o->timeline, "w");
    size_t n = strlen(o->timeline);
    int r = f == NULL ? -1
            : n > 4 && !strcmp(o->timeline + n - 4, ".svg")
                ? scn_timeline_svg(tr, f)
                : scn_timeline_html(tr, s->title[0] ? s->title : o->file, f);
    if (f == NULL || fclose(f) != 0 || r < 0)
      fprintf(stderr, "uksim run: cannot write %s\n", o->timeline), bad++;
  }
  char hex[65] = "";
  scn_trace_hash(trace, hex);
  fprintf(out,
          "%zu events, %zu/%zu expectations hold, seed %" PRIu64
          ", trace sha256 %s\n",
          tr->n, s->nexpects - (size_t)bad, s->nexpects, seed, hex);
  if (bad)
    fprintf(out, "reproduce: uksim run %s --seed %" PRIu64 "\n", o->file, seed);
  scn_trace_free(tr);
  free(v);
  return bad ? 1 : 0;
}

/* Keeps standard output for the JSON Lines alone: returns a stream on
 * what it was (closed on exec, so no program inherits it), and makes
 * standard error the standard output of this process and of everything
 * it starts from now on (the machine, and the programs the kernel runs).
 * NULL, with the reason on stderr, if it cannot. */
static FILE *json_stdout(void) {
  int fd;
  FILE *f = NULL;
  fflush(stdout);
  if ((fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3)) < 0 ||
      dup2(STDERR_FILENO, STDOUT_FILENO) < 0 || (f = fdopen(fd, "w")) == NULL) {
    fprintf(stderr, "uksim run: --json: %s\n", strerror(errno));
    if (fd >= 0)
      close(fd);
  }
  return f;
}

/* Makes the directory the dumps go to, as an absolute path in out[len]:
 * o->dump_dir (made if missing), or a private temporary one.  0, or -1
 * with the reason on stderr. */
static int make_dumps(const struct run_opts *o, char *out, size_t len) {
  const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  char path[PATH_MAX];
  if (o->dump_dir == NULL) {
    snprintf(path, sizeof path, "%s/uksim-dump-XXXXXX", tmp);
    if (mkdtemp(path) == NULL) {
      fprintf(stderr, "uksim run: cannot make a dump directory in %s: %s\n",
              tmp, strerror(errno));
      return -1;
    }
  } else if (mkdir(o->dump_dir, 0777) < 0 && errno != EEXIST) {
    fprintf(stderr, "uksim run: --dump-dir %s: %s\n", o->dump_dir,
            strerror(errno));
    return -1;
  }
  errno = 0;
  if (realpath(o->dump_dir ? o->dump_dir : path, out) == NULL ||
      strlen(out) >= len) {
    fprintf(stderr, "uksim run: dump directory %s: %s\n",
            o->dump_dir ? o->dump_dir : path,
            errno ? strerror(errno) : "name too long");
    return -1;
  }
  return 0;
}

/* Removes the temporary dump directory and what the dumpers left in it. */
static void remove_dumps(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  if (d == NULL)
    return;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
      unlinkat(dirfd(d), e->d_name, 0);
  closedir(d);
  rmdir(dir);
}

int cmd_run(int argc, char **argv) {
  struct run_opts o = {0};
  int r = parse(argc, argv, &o);
  if (r >= 0)
    return r;
  struct scn_err err;
  struct scn *s = scn_load(o.file, &err);
  if (s == NULL) {
    fprintf(stderr, "%s\n", err.text);
    return 2;
  }
  if (o.json && (o.json_out = json_stdout()) == NULL) {
    scn_free(s);
    return 1;
  }
  char abs[PATH_MAX], dir[PATH_MAX], trace[PATH_MAX + 32], why[256] = "";
  char dumps[sizeof((struct mach_opts *)0)->dump_dir];
  if (realpath(o.file, abs) == NULL) {
    perror(o.file);
    scn_free(s);
    return 2;
  }
  if (make_dumps(&o, dumps, sizeof dumps) < 0) {
    scn_free(s);
    return 2;
  }
  snprintf(trace, sizeof trace, "%s", abs); /* dirname() may write to it */
  snprintf(dir, sizeof dir, "%s", dirname(trace));
  uint64_t seed = o.seed ? o.seed_v : s->machine.seed_set ? s->machine.seed : 1;
  if (o.jsonl)
    snprintf(trace, sizeof trace, "%s", o.jsonl);
  else
    snprintf(trace, sizeof trace, "%s/uksim-run-%d.jsonl",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
  if (!o.quiet && !o.json)
    printf("uksim: %s%s%s, seed %" PRIu64 "\n", o.file, s->title[0] ? ": " : "",
           s->title, seed);
  fflush(stdout);
  uint32_t live = 0;
  struct scn_facts facts = {.dump_dir = dumps, .scn_dir = dir};
  struct tcp_clients *tcp = NULL;
  char disk[PATH_MAX];
  int st = run_os_opts(s, &o.m, disk, sizeof disk) < 0
               ? (snprintf(why, sizeof why, "no disk for the machine"), 1)
               : run_machine(&o, s, abs, trace, dumps, why, sizeof why, &live,
                             &facts, &tcp);
  if (st != 0)
    fprintf(stderr,
            "uksim run: the run did not end normally: %s (seed %" PRIu64 ")\n",
            why, seed);
  if (o.m.backup && run_os_join(trace) < 0)
    st = 1;
  if (access(trace, R_OK) == 0)
    st |= verdicts(&o, s, trace, &facts, seed);
  tcp_clients_free(tcp);
  if (disk[0] != '\0')
    remove_dumps(disk); /* a LevelDB directory: files only */
  if (!o.jsonl)
    unlink(trace);
  if (!o.dump_dir)
    remove_dumps(dumps);
  if (o.json_out && fclose(o.json_out) != 0)
    st = 1;
  scn_free(s);
  return st ? 1 : 0;
}
