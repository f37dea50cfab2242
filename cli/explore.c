/* Seed exploration (explore.h): a libuv loop that keeps `jobs` runs of
 * `uksim run` going, one per seed, and collects their exit statuses. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "explore.h"
#include "timeline.h"
#include "uksim/xalloc.h"
#include "uksim/uv_check.h"

struct job {
  struct explore *x;
  uv_process_t proc;
  uv_timer_t timer;
  int out;    /* memfd: the run's stdout and stderr */
  uint64_t i; /* index of its seed */
  double t0;
  bool timed_out;
  int handles; /* open libuv handles; the slot is free at 0 */
};

struct explore {
  const struct explore_opts *o;
  struct explore_result *r;
  uv_loop_t loop;
  char self[4096];
  uint64_t next; /* index of the next seed to start */
  unsigned running;
  bool stop;
  double t0, drawn;
  struct job job[EXPLORE_JOBS_MAX];
};

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Progress ----------------------------------------------------------------- */

static void draw(struct explore *x, bool last) {
  const struct explore_result *r = x->r;
  double t = now_s();
  if (!x->o->progress || (!last && t - x->drawn < 0.1))
    return;
  x->drawn = t;
  double rate = (double)r->ran / (t - x->t0 > 0 ? t - x->t0 : 1e-9);
  int width = 30,
      full = x->o->seeds
                 ? (int)((double)width * (double)r->ran / (double)x->o->seeds)
                 : width;
  fprintf(stderr,
          "\rexplore [%.*s%*s] %" PRIu64 "/%" PRIu64 " seeds, %" PRIu64
          " failed, %.1f seeds/s ",
          full, "##############################", width - full, "", r->ran,
          x->o->seeds, r->failed, rate);
  if (last)
    fputc('\n', stderr);
}

/* A line at each quarter, for logs that are not a terminal. */
static void log_line(struct explore *x) {
  uint64_t n = x->o->seeds, ran = x->r->ran;
  if (!x->o->log || x->o->progress)
    return;
  for (unsigned q = 1; q <= 4; q++)
    if (ran == (n * q + 3) / 4) {
      fprintf(stderr,
              "explore: %" PRIu64 "/%" PRIu64 " seeds run, %" PRIu64
              " failed\n",
              ran, n, x->r->failed);
      return; /* once, where quarters fall on one count (few seeds) */
    }
}

/* Runs --------------------------------------------------------------------- */

static void start_more(struct explore *x);

/* The first EXPLORE_OUTPUT_MAX bytes of the run's output. */
static char *read_output(int fd) {
  char *buf = xmalloc(EXPLORE_OUTPUT_MAX + 1);
  ssize_t n = pread(fd, buf, EXPLORE_OUTPUT_MAX, 0);
  buf[n > 0 ? n : 0] = '\0';
  return buf;
}

static void on_handle_closed(uv_handle_t *h) {
  struct job *j = h->data;
  if (--j->handles == 0)
    start_more(j->x);
}

static void on_run_exit(uv_process_t *p, int64_t status, int sig) {
  struct job *j = p->data;
  struct explore *x = j->x;
  struct explore_seed *s = &x->r->seed[j->i];
  s->ran = true;
  s->secs = now_s() - j->t0;
  s->status = j->timed_out ? -1 : sig ? 128 + sig : (int)status;
  if (s->status != 0) {
    s->output = read_output(j->out);
    x->r->failed++;
    if (x->r->first_failed < 0 || j->i < (uint64_t)x->r->first_failed)
      x->r->first_failed = (int64_t)j->i;
    x->stop = !x->o->keep_going;
  }
  x->r->ran++;
  x->running--;
  close(j->out);
  j->out = -1;
  UV_CHECK(uv_timer_stop(&j->timer));
  uv_close((uv_handle_t *)&j->timer, on_handle_closed);
  uv_close((uv_handle_t *)p, on_handle_closed);
  draw(x, false);
  log_line(x);
}

static void on_timeout(uv_timer_t *t) {
  struct job *j = t->data;
  j->timed_out = true;
  uv_process_kill(&j->proc, SIGKILL);
}

static int spawn_one(struct explore *x, struct job *j, uint64_t i) {
  char seed[24];
  snprintf(seed, sizeof seed, "%" PRIu64, x->o->first + i);
  char *argv[] = {
      x->self, "run", (char *)x->o->file, "--seed", seed, "--quiet", NULL, NULL,
      NULL,    NULL};
  if (x->o->jsonl != NULL) {
    argv[6] = "--jsonl";
    argv[7] = (char *)x->o->jsonl;
  }
  j->out = memfd_create("explore-run", MFD_CLOEXEC);
  if (j->out < 0)
    return -errno;
  uv_stdio_container_t io[3] = {{.flags = UV_IGNORE},
                                {.flags = UV_INHERIT_FD, .data.fd = j->out},
                                {.flags = UV_INHERIT_FD, .data.fd = j->out}};
  /* The child of fork() execs the very binary this process runs, even if
   * the file was rebuilt or replaced since: runs of one exploration are
   * always of one version. */
  uv_process_options_t po = {.file = "/proc/self/exe",
                             .args = argv,
                             .exit_cb = on_run_exit,
                             .stdio_count = 3,
                             .stdio = io};
  j->x = x;
  j->i = i;
  j->t0 = now_s();
  j->timed_out = false;
  j->proc.data = j;
  int e = uv_spawn(&x->loop, &j->proc, &po);
  if (e < 0) {
    close(j->out);
    uv_close((uv_handle_t *)&j->proc, NULL);
    return e;
  }
  j->timer.data = j;
  UV_CHECK(uv_timer_init(&x->loop, &j->timer));
  if (x->o->timeout_s > 0)
    UV_CHECK(uv_timer_start(&j->timer, on_timeout,
                            (uint64_t)(x->o->timeout_s * 1000), 0));
  j->handles = 2;
  x->running++;
  return 0;
}

/* A run that could not start counts as failed, with the reason as its
 * output: the exploration cannot vouch for that seed. */
static void spawn_failed(struct explore *x, uint64_t i, int e) {
  struct explore_seed *s = &x->r->seed[i];
  char msg[160];
  snprintf(msg, sizeof msg, "explore: cannot start the run: %s\n",
           uv_strerror(e));
  s->ran = true;
  s->status = 127;
  s->output = xstrdup(msg);
  x->r->ran++;
  x->r->failed++;
  if (x->r->first_failed < 0)
    x->r->first_failed = (int64_t)i;
  x->stop = true;
}

static void start_more(struct explore *x) {
  for (unsigned k = 0; k < x->o->jobs && !x->stop && x->next < x->o->seeds;
       k++) {
    struct job *j = &x->job[k];
    if (j->handles != 0)
      continue;
    uint64_t i = x->next++;
    int e = spawn_one(x, j, i);
    if (e < 0)
      spawn_failed(x, i, e);
  }
}

int explore(const struct explore_opts *o, struct explore_result *r) {
  struct explore *x = xcalloc(1, sizeof *x);
  memset(r, 0, sizeof *r);
  r->first_failed = -1;
  r->seed =
      xcalloc(o->seeds ? o->seeds : 1, sizeof *r->seed); /* 0: empty shard */
  ssize_t n = readlink("/proc/self/exe", x->self, sizeof x->self - 1);
  if (n <= 0) {
    perror("explore: /proc/self/exe");
    free(x);
    explore_result_free(r);
    return -1;
  }
  x->self[n] = '\0';
  r->n = o->seeds;
  for (uint64_t i = 0; i < o->seeds; i++)
    r->seed[i].seed = o->first + i;
  x->o = o;
  x->r = r;
  uv_loop_init(&x->loop);
  x->t0 = now_s();
  start_more(x);
  uv_run(&x->loop, UV_RUN_DEFAULT);
  uv_loop_close(&x->loop);
  r->secs = now_s() - x->t0;
  draw(x, true);
  free(x);
  return 0;
}

void explore_result_free(struct explore_result *r) {
  for (uint64_t i = 0; r->seed && i < r->n; i++) {
    free(r->seed[i].output);
    free(r->seed[i].repro);
  }
  free(r->seed);
  free(r->name);
  r->seed = NULL;
  r->name = NULL;
}

/* JUnit ------------------------------------------------------------------- */

const char *explore_why(int status) {
  return status == -1  ? "the run timed out"
         : status == 1 ? "an expectation failed or the run could not end"
         : status == 2 ? "bad input"
                       : "the run died";
}

void explore_shard_slice(uint64_t seeds, unsigned k, unsigned n, uint64_t *lo,
                         uint64_t *hi) {
  /* seeds <= EXPLORE_SEEDS_MAX and n <= EXPLORE_SHARDS_MAX: no overflow. */
  *lo = seeds * (k - 1) / n;
  *hi = seeds * k / n;
}

char *explore_repro(const struct explore_opts *o,
                    const struct explore_seed *s) {
  if (s->repro != NULL)
    return xstrdup(s->repro);
  size_t n = strlen(o->file) + 64;
  char *r = xmalloc(n);
  snprintf(r, n, "run %s --seed %" PRIu64, o->file, s->seed);
  return r;
}

/* The sweep and the slice, which explore_merge() checks; a whole sweep
 * (1/1) names no shard, so that joined shards read as one run. */
static void junit_properties(const struct explore_opts *o, FILE *f) {
  fprintf(f,
          "  <properties>\n"
          "    <property name=\"first\" value=\"%" PRIu64 "\"/>\n"
          "    <property name=\"seeds\" value=\"%" PRIu64 "\"/>\n",
          o->sweep_first, o->sweep_seeds);
  if (o->shard_n > 1)
    fprintf(f, "    <property name=\"shard\" value=\"%u/%u\"/>\n", o->shard_k,
            o->shard_n);
  fprintf(f, "  </properties>\n");
}

static void junit_case(const struct explore_opts *o,
                       const struct explore_seed *s, FILE *f) {
  fprintf(f, "  <testcase classname=\"");
  scn_xml_escaped(f, o->file);
  fprintf(f, "\" name=\"seed %" PRIu64 "\" time=\"%.3f\"", s->seed, s->secs);
  if (s->status == 0) {
    fprintf(f, "/>\n");
    return;
  }
  fprintf(f, ">\n    <failure message=\"%s (exit status %d)\">",
          explore_why(s->status), s->status);
  scn_xml_escaped(f, s->output ? s->output : "");
  char *repro = explore_repro(o, s);
  fprintf(f, "reproduce: uksim ");
  scn_xml_escaped(f, repro);
  free(repro);
  fprintf(f, "</failure>\n  </testcase>\n");
}

int explore_junit(const struct explore_opts *o, const struct explore_result *r,
                  FILE *f) {
  fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n"
             "<testsuite name=\"");
  scn_xml_escaped(f, o->file);
  fprintf(f,
          "\" tests=\"%" PRIu64 "\" failures=\"%" PRIu64
          "\" errors=\"0\" skipped=\"0\" time=\"%.3f\">\n",
          r->ran, r->failed, r->secs);
  junit_properties(o, f);
  for (uint64_t i = 0; i < r->n; i++)
    if (r->seed[i].ran)
      junit_case(o, &r->seed[i], f);
  fprintf(f, "</testsuite>\n</testsuites>\n");
  return ferror(f) ? -1 : 0;
}
