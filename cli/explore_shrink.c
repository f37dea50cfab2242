/* Shrinking a failing seed (explore.h): the smallest fault count and the
 * earliest fault points under which the seed still fails the same way.
 *
 * The model is the one exploration uses: a fault is a fault action (`at`
 * or `on` ... crash, panic, hang, fault) or a `--fault` option, and where
 * it strikes is a range the seed picks from (`on event receive kvs
 * 1..900: panic kvs`, `at 1ms..4ms ...`, `--fault panic@request:1..300`).
 * Shrinking rewrites the scenario -- never the kernel -- and runs the
 * rewrites under the same seed, one at a time, each a `uksim run` as
 * exploration's runs are.  It goes through these states, in order:
 *
 *   PICKS  run the seed again keeping its trace, and read the value the
 *          seed picked for each range ("line L: picks V from LO..HI").
 *   PIN    rewrite every range as its pick and run it: the seed must still
 *          fail the same way (same exit status, same first FAIL line up to
 *          its ':'), else shrinking stops and the seed keeps its plain
 *          reproducer.  Pinned, the other faults' points stay put when one
 *          fault is taken away (a pick depends on which range it is).
 *   DROP   for each fault in file order, take it away (an action's line
 *          becomes a comment, a --fault option is removed): kept away if
 *          the seed still fails the same way, put back if not.
 *   EARLY  for each fault left whose point was picked from LO..HI, try LO,
 *          then bisect between the last point that passed and the first
 *          that failed: the point kept fails and the one below it passed.
 *   DONE   write the last rewrite that failed next to the scenario (or in
 *          --shrink-dir): the reproducer runs it under the same seed.
 *
 * Each step that runs costs one run; at most EXPLORE_SHRINK_RUNS_MAX, after
 * which the last failing rewrite is what is kept.  Lines keep their
 * numbers (a dropped line stays as a comment), so that the shrunk run's
 * messages name the scenario's lines. */
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "explore.h"
#include "scn.h"
#include "uksim/xalloc.h"

/* A range of the scenario text: where it is and what the seed made of it. */
struct point {
  int line;
  size_t at, len; /* the range's bytes in its line */
  int owner;      /* the --fault option it is in (0, 1 ...), -1: trigger */
  bool time;      /* a time: written back with "ns" */
  uint64_t lo, hi, pick, v;
  bool picked;
};

struct fault {
  int line;
  int opt;   /* the line's opt-th --fault option, -1: the line's action */
  int point; /* index into points, -1: none picked */
  bool dropped;
};

struct shrink {
  const struct explore_opts *o;
  uint64_t seed;
  char **lines;
  size_t nlines;
  struct point pt[EXPLORE_SHRINK_POINTS_MAX];
  unsigned npt;
  struct fault f[EXPLORE_SHRINK_POINTS_MAX];
  unsigned nf;
  int status;    /* the failure being shrunk */
  char sig[256]; /* its first FAIL line, up to ':' */
  char tmp[PATH_MAX], jsonl[PATH_MAX], out[PATH_MAX];
  unsigned runs;
};

/* The scenario's text ------------------------------------------------------ */

static int load_lines(struct shrink *k) {
  FILE *f = fopen(k->o->file, "r");
  if (f == NULL)
    return -1;
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  while ((n = getline(&line, &cap, f)) >= 0) {
    if (n > 0 && line[n - 1] == '\n')
      line[n - 1] = '\0';
    k->lines = xreallocarray(k->lines, k->nlines + 1, sizeof *k->lines);
    k->lines[k->nlines++] = xstrdup(line);
  }
  free(line);
  fclose(f);
  return 0;
}

/* A number with an optional time unit, in [s, e); ns for a time. */
static bool value(const char *s, const char *e, uint64_t *v, bool *time) {
  static const struct {
    const char *unit;
    uint64_t ns;
  } units[] = {
      {"", 0}, {"ns", 1}, {"us", 1000}, {"ms", 1000000}, {"s", 1000000000}};
  char *u;
  errno = 0;
  uint64_t n = strtoull(s, &u, 10);
  if (u == s || errno)
    return false;
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
    if ((size_t)(e - u) == strlen(units[i].unit) &&
        strncmp(u, units[i].unit, (size_t)(e - u)) == 0) {
      *time = units[i].ns != 0;
      *v = *time ? n * units[i].ns : n;
      return true;
    }
  return false;
}

static bool alnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z');
}

/* The range whose ".." is at dots in line, if it is one. */
static void range_at(struct shrink *k, int line, const char *s,
                     const char *dots, int owner) {
  const char *a = dots, *e = dots + 2;
  while (a > s && alnum(a[-1]))
    a--;
  while (alnum(*e))
    e++;
  struct point p = {.line = line,
                    .at = (size_t)(a - s),
                    .len = (size_t)(e - a),
                    .owner = owner};
  bool t2;
  if (k->npt == EXPLORE_SHRINK_POINTS_MAX || !value(a, dots, &p.lo, &p.time) ||
      !value(dots + 2, e, &p.hi, &t2))
    return;
  k->pt[k->npt++] = p;
}

/* Whether the word at s[p] is the option --fault. */
static bool fault_opt_at(const char *s, size_t p) {
  return strncmp(s + p, "--fault", 7) == 0 &&
         (p == 0 || s[p - 1] == ' ' || s[p - 1] == '\t') &&
         (s[p + 7] == ' ' || s[p + 7] == '\t');
}

/* Every range of line i, each with the --fault option it is in. */
static void find_ranges(struct shrink *k, size_t i) {
  const char *s = k->lines[i];
  int owner = -1;
  bool quoted = false;
  for (const char *p = s; *p != '\0'; p++) {
    if (*p == '"' && (p == s || p[-1] != '\\'))
      quoted = !quoted;
    if (quoted)
      continue;
    if (*p == '#')
      return;
    if (fault_opt_at(s, (size_t)(p - s)))
      owner++;
    if (p[0] == '.' && p[1] == '.')
      range_at(k, (int)i + 1, s, p++, owner < 0 ? -1 : owner);
  }
}

/* The point of line's range owned by owner, -1 when it has none. */
static int point_of(const struct shrink *k, int line, int owner) {
  for (unsigned i = 0; i < k->npt; i++)
    if (k->pt[i].line == line && k->pt[i].owner == owner)
      return (int)i;
  return -1;
}

static void add_fault(struct shrink *k, int line, int opt) {
  if (k->nf == EXPLORE_SHRINK_POINTS_MAX)
    return;
  k->f[k->nf++] =
      (struct fault){.line = line, .opt = opt, .point = point_of(k, line, opt)};
}

static bool is_fault(enum scn_action_kind a) {
  return a == SCN_ACT_CRASH || a == SCN_ACT_PANIC || a == SCN_ACT_HANG ||
         a == SCN_ACT_FAULT;
}

/* The faults, from the parsed scenario, in file order per kind. */
static int find_faults(struct shrink *k) {
  struct scn_err err;
  struct scn *s = scn_load(k->o->file, &err);
  if (s == NULL)
    return -1;
  for (size_t i = 0; i < s->nservers; i++)
    for (unsigned j = 0; j < s->servers[i].nfaults; j++)
      add_fault(k, s->servers[i].pos.line, (int)j);
  for (size_t i = 0; i < s->nactions; i++) {
    const struct scn_action *a = &s->actions[i];
    if (is_fault(a->kind))
      add_fault(k, a->pos.line, -1);
    for (unsigned j = 0; j < a->nfaults; j++)
      add_fault(k, a->pos.line, (int)j);
  }
  scn_free(s);
  return 0;
}

/* Rewrites ----------------------------------------------------------------- */

static bool dropped_opt(const struct shrink *k, int line, int opt) {
  for (unsigned i = 0; i < k->nf; i++)
    if (k->f[i].line == line && k->f[i].opt == opt && k->f[i].dropped)
      return true;
  return false;
}

static const struct point *point_at(const struct shrink *k, int line,
                                    size_t at) {
  for (unsigned i = 0; i < k->npt; i++)
    if (k->pt[i].line == line && k->pt[i].at == at && k->pt[i].picked)
      return &k->pt[i];
  return NULL;
}

/* Line i as the rewrite has it: picked ranges as their values, dropped
 * --fault options (the option and its word) left out. */
static void write_line(const struct shrink *k, size_t i, FILE *f) {
  const char *s = k->lines[i];
  int line = (int)i + 1, opt = -1;
  if (dropped_opt(k, line, -1)) {
    fprintf(f, "# shrunk away: %s\n", s);
    return;
  }
  for (size_t p = 0; s[p] != '\0';) {
    const struct point *pt = point_at(k, line, p);
    if (fault_opt_at(s, p) && dropped_opt(k, line, ++opt)) {
      p += 7;
      p += strspn(s + p, " \t");
      p += strcspn(s + p, " \t");
      p += strspn(s + p, " \t"); /* one space between the words left */
      continue;
    }
    if (pt != NULL) {
      fprintf(f, "%" PRIu64 "%s", pt->v, pt->time ? "ns" : "");
      p += pt->len;
      continue;
    }
    fputc(s[p++], f);
  }
  fputc('\n', f);
}

static int write_scenario(const struct shrink *k, const char *path) {
  FILE *f = fopen(path, "w");
  if (f == NULL)
    return -1;
  for (size_t i = 0; i < k->nlines; i++)
    write_line(k, i, f);
  return fclose(f) == 0 ? 0 : -1;
}

/* Runs -----------------------------------------------------------------------
 */

/* The first FAIL line of a run's output, up to its ':'. */
static void signature(const char *out, char *sig, size_t len) {
  const char *p = out ? strstr(out, "FAIL ") : NULL;
  size_t n = p ? strcspn(p, ":\n") : 0;
  snprintf(sig, len, "%.*s", (int)n, p ? p : "");
}

/* Runs file under the seed; 1 when it fails as the seed did, 0 when not,
 * -1 when the run budget is spent or the run could not start. */
static int fails(struct shrink *k, const char *file, const char *jsonl) {
  if (k->runs == EXPLORE_SHRINK_RUNS_MAX)
    return -1;
  k->runs++;
  struct explore_opts o = {.file = file,
                           .first = k->seed,
                           .seeds = 1,
                           .jobs = 1,
                           .timeout_s = k->o->timeout_s,
                           .shard_k = 1,
                           .shard_n = 1,
                           .jsonl = jsonl};
  struct explore_result r;
  if (explore(&o, &r) < 0)
    return -1;
  char sig[sizeof k->sig];
  signature(r.seed[0].output, sig, sizeof sig);
  int st = r.seed[0].status;
  explore_result_free(&r);
  if (st == 127)
    return -1;
  return st == k->status && strcmp(sig, k->sig) == 0;
}

static int rewrite_fails(struct shrink *k) {
  if (write_scenario(k, k->tmp) < 0)
    return -1;
  return fails(k, k->tmp, NULL);
}

/* PICKS: the seed's pick for each range, from its trace. */
static int read_picks(struct shrink *k) {
  if (fails(k, k->o->file, k->jsonl) != 1)
    return -1;
  FILE *f = fopen(k->jsonl, "r");
  char *line = NULL, *p;
  size_t cap = 0;
  if (f == NULL)
    return -1;
  while (getline(&line, &cap, f) >= 0) {
    int ln;
    uint64_t v, lo, hi;
    if ((p = strstr(line, "\"line ")) == NULL ||
        sscanf(p + 1, "line %d: picks %" SCNu64 " from %" SCNu64 "..%" SCNu64,
               &ln, &v, &lo, &hi) != 4)
      continue;
    for (unsigned i = 0; i < k->npt; i++) {
      struct point *pt = &k->pt[i];
      if (pt->line == ln && !pt->picked && pt->lo == lo && pt->hi == hi) {
        pt->picked = true;
        pt->pick = pt->v = v;
        break;
      }
    }
  }
  free(line);
  fclose(f);
  return 0;
}

/* DROP */
static void drop_faults(struct shrink *k) {
  for (unsigned i = 0; i < k->nf; i++) {
    k->f[i].dropped = true;
    if (rewrite_fails(k) != 1)
      k->f[i].dropped = false;
  }
}

/* EARLY: pt as early as still fails: LO, or the point of LO..pick whose
 * predecessor passed (bisection keeps the invariant: pass passed, fail
 * failed). */
static void earliest(struct shrink *k, struct point *pt) {
  uint64_t pass = pt->lo, fail = pt->v;
  pt->v = pt->lo;
  int r = rewrite_fails(k);
  if (r == 1)
    return;
  while (r >= 0 && fail - pass > 1) {
    uint64_t mid = pass + (fail - pass) / 2;
    pt->v = mid;
    if ((r = rewrite_fails(k)) == 1)
      fail = mid;
    else if (r == 0)
      pass = mid;
  }
  pt->v = fail;
}

static void early_points(struct shrink *k) {
  for (unsigned i = 0; i < k->nf; i++)
    if (!k->f[i].dropped && k->f[i].point >= 0 && k->pt[k->f[i].point].picked)
      earliest(k, &k->pt[k->f[i].point]);
}

/* DONE -----------------------------------------------------------------------
 */

static void say_fault(const struct shrink *k, const struct fault *f, FILE *o) {
  const char *u = "";
  fprintf(o, "  line %d%s: ", f->line, f->opt >= 0 ? " (--fault)" : "");
  if (f->dropped) {
    fprintf(o, "taken away, still fails\n");
    return;
  }
  if (f->point < 0 || !k->pt[f->point].picked) {
    fprintf(o, "kept\n");
    return;
  }
  const struct point *p = &k->pt[f->point];
  u = p->time ? "ns" : "";
  fprintf(o,
          "kept, at %" PRIu64 "%s (the seed picked %" PRIu64 "%s from %" PRIu64
          "%s..%" PRIu64 "%s)\n",
          p->v, u, p->pick, u, p->lo, u, p->hi, u);
}

/* Appends what shrinking found to s->output; s->repro runs the rewrite. */
static void say(const struct shrink *k, struct explore_seed *s) {
  char *text = NULL;
  size_t len = 0;
  unsigned kept = 0;
  FILE *o = open_memstream(&text, &len);
  for (unsigned i = 0; i < k->nf; i++)
    kept += !k->f[i].dropped;
  fprintf(o,
          "shrunk in %u runs (seed %" PRIu64 ", the same failure: %s): %u of "
          "%u faults kept, written to %s\n",
          k->runs, k->seed, k->sig[0] ? k->sig : "the same exit status", kept,
          k->nf, k->out);
  for (unsigned i = 0; i < k->nf; i++)
    say_fault(k, &k->f[i], o);
  fclose(o);
  size_t n = s->output ? strlen(s->output) : 0;
  s->output = xrealloc(s->output, n + len + 1);
  memcpy(s->output + n, text, len + 1);
  free(text);
  free(s->repro);
  size_t rn = strlen(k->out) + 64;
  s->repro = xmalloc(rn);
  snprintf(s->repro, rn, "run %s --seed %" PRIu64, k->out, k->seed);
}

static void paths(struct shrink *k, const char *dir) {
  char copy[PATH_MAX], d[PATH_MAX];
  snprintf(copy, sizeof copy, "%s", k->o->file);
  char *base = basename(copy), *dot = strrchr(base, '.');
  if (dot != NULL && strcmp(dot, ".scn") == 0)
    *dot = '\0';
  snprintf(d, sizeof d, "%s", k->o->file);
  if (dir == NULL)
    dir = dirname(d); /* relative files of the scenario stay found */
  snprintf(k->out, sizeof k->out, "%s/%s.seed-%" PRIu64 ".shrunk.scn", dir,
           base, k->seed);
  snprintf(k->tmp, sizeof k->tmp, "%s/.%s.seed-%" PRIu64 ".shrinking-%d.scn",
           dir, base, k->seed, (int)getpid());
  snprintf(k->jsonl, sizeof k->jsonl, "%s/uksim-shrink-%d.jsonl",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
}

static int shrink_steps(struct shrink *k) {
  if (load_lines(k) < 0)
    return -1;
  for (size_t i = 0; i < k->nlines; i++)
    find_ranges(k, i);
  if (find_faults(k) < 0 || k->nf == 0 || read_picks(k) < 0)
    return -1;
  if (rewrite_fails(k) != 1) /* PIN */
    return -1;
  drop_faults(k);
  early_points(k);
  return write_scenario(k, k->out);
}

int explore_shrink(const struct explore_opts *o, struct explore_seed *s,
                   const char *dir) {
  if (s->status == -1 || s->status == 127)
    return -1; /* a hang would cost a --timeout per try; 127 never ran */
  struct shrink *k = xcalloc(1, sizeof *k);
  k->o = o;
  k->seed = s->seed;
  k->status = s->status;
  signature(s->output, k->sig, sizeof k->sig);
  paths(k, dir);
  int st = shrink_steps(k);
  if (st == 0)
    say(k, s);
  unlink(k->tmp);
  unlink(k->jsonl);
  for (size_t i = 0; i < k->nlines; i++)
    free(k->lines[i]);
  free(k->lines);
  free(k);
  return st;
}
