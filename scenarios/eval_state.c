/* Expectations about a server's final state.
 *
 * "equals model": every kvsload instance sending to the service ends with
 * a check of its model against the server and exits with status 3 when
 * they differ, so the verdict is read off the applications' exit events.
 * "equals FILE": the kernel's dumper (kvsload --dump, started by
 * cli/scn_exec.c when the applications are done) writes the
 * server's contents to <dump_dir>/<service>.dump; both files are key=value
 * lines, compared as sets of lines (order does not matter).  A file that is
 * missing, too large or not key=value lines makes the expectation fail
 * with a message.  Messages name the dump "SERVICE.dump" and FILE as the
 * scenario writes it, never by their paths: a verdict goes into the trace,
 * whose hash must not depend on where the run's files were.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eval_impl.h"
#include "scn_impl.h"

/* The exit status kvsload gives when the server's state is not its model. */
#define KVSLOAD_STATE_DIFFERS 3

/* Models ------------------------------------------------------------------ */

/* The last exit event of an instance of app, or NULL. */
static const struct scn_event *last_exit(const struct scn_trace *tr,
                                         const char *app) {
  const struct scn_event *x = NULL;
  for (size_t i = 0; i < tr->n; i++)
    if (tr->ev[i].ev == SCN_EV_EXIT && scn__instance_of(tr->ev[i].actor, app))
      x = &tr->ev[i];
  return x;
}

/* Why app's exit says its model and the server differ, or NULL. */
static const char *model_fails(const struct scn_event *x, char *buf,
                               size_t len) {
  char at[64];
  scn__where(x->step, x->line, at, sizeof at);
  if (x->has_status && x->status == KVSLOAD_STATE_DIFFERS)
    scn__fmt(buf, len,
             "%s exited with status 3%s: the server's state differs from "
             "its model",
             x->actor, at);
  else if (x->has_status && x->status != 0)
    scn__fmt(buf, len, "%s exited with status %" PRId64 "%s", x->actor,
             x->status, at);
  else if (strncmp(x->text, "signal", 6) == 0)
    scn__fmt(buf, len, "%s was killed (%s)%s", x->actor, x->text, at);
  else
    return NULL;
  return buf;
}

void scn__eval_model(const struct scn *s, const struct scn_expect *x,
                     const struct scn_trace *tr, struct scn_verdict *v) {
  char why[SCN_ERR_MAX / 2];
  size_t napps = 0;
  for (size_t i = 0; i < s->napps; i++) {
    const struct scn_app *app = &s->apps[i];
    const struct scn_event *e;
    if (strcmp(app->service, x->service) != 0)
      continue;
    napps++;
    if ((e = last_exit(tr, app->name)) == NULL) {
      scn__verdict(v, x, false,
                   "%s never exited, so it never checked its "
                   "model",
                   app->name);
      return;
    }
    if (model_fails(e, why, sizeof why) != NULL) {
      scn__verdict(v, x, false, "%s", why);
      return;
    }
  }
  if (napps == 0)
    scn__verdict(v, x, false, "no app sends to %s: there is no model",
                 x->service);
  else
    scn__verdict(v, x, true,
                 "%zu app%s exited with status 0: the server holds what %s "
                 "stored",
                 napps, scn__s(napps),
                 napps == 1 ? "its model" : "their models");
}

/* Files of key=value lines --------------------------------------------------
 */

struct kv {
  const char *key, *value; /* into the file's buffer */
};

struct kvfile {
  char *buf;
  struct kv *kv;
  size_t n;
};

static void kvfile_free(struct kvfile *f) {
  free(f->buf);
  free(f->kv);
}

/* Reads path whole, at most SCN_DUMP_MAX bytes, NUL-terminated.  Messages
 * call it label. */
static char *read_all(const char *path, const char *label, char *why,
                      size_t len) {
  FILE *f = fopen(path, "rb");
  struct stat st;
  char *buf;
  size_t n, cap;
  const char *bad = NULL;
  if (f == NULL || fstat(fileno(f), &st) < 0) {
    scn__fmt(why, len, "cannot open %s: %s", label, strerror(errno));
    if (f != NULL)
      fclose(f);
    return NULL;
  }
  /* One byte more than the limit shows a file over it. */
  cap = st.st_size < SCN_DUMP_MAX ? (size_t)st.st_size + 1 : SCN_DUMP_MAX + 1;
  buf = xcalloc(cap + 1, 1);
  n = fread(buf, 1, cap, f);
  if (ferror(f))
    bad = "cannot read it";
  else if (n > SCN_DUMP_MAX)
    bad = "larger than SCN_DUMP_MAX (64 MiB)";
  else if (memchr(buf, '\0', n) != NULL)
    bad = "holds a NUL byte: not a text file";
  fclose(f);
  if (bad != NULL) {
    scn__fmt(why, len, "%s: %s", label, bad);
    free(buf);
    return NULL;
  }
  return buf;
}

/* Adds one line (cut out of the buffer) to f->kv; blank lines are skipped.
 * 0, or -1 with why. */
static int take_kv(struct kvfile *f, char *line, const char *path, int lineno,
                   char *why, size_t len) {
  size_t n = strlen(line);
  char *eq;
  if (n > 0 && line[n - 1] == '\r')
    line[--n] = '\0';
  if (n == 0)
    return 0;
  if ((eq = strchr(line, '=')) == NULL) {
    scn__fmt(why, len, "%s:%d: not a key=value line", path, lineno);
    return -1;
  }
  if (f->n == SCN_DUMP_LINES_MAX) {
    scn__fmt(why, len, "%s: more than %d lines", path, SCN_DUMP_LINES_MAX);
    return -1;
  }
  *eq = '\0';
  f->kv[f->n++] = (struct kv){line, eq + 1};
  return 0;
}

static int cmp_kv(const void *a, const void *b) {
  const struct kv *x = a, *y = b;
  int c = strcmp(x->key, y->key);
  return c != 0 ? c : strcmp(x->value, y->value);
}

/* Reads a key=value file into f, sorted; messages call it label.  0, or -1
 * with why (f is then still to be freed). */
static int kvfile_read(struct kvfile *f, const char *path, const char *label,
                       char *why, size_t len) {
  size_t cap = 1024;
  int lineno = 0;
  char *line, *next;
  *f = (struct kvfile){0};
  if ((f->buf = read_all(path, label, why, len)) == NULL)
    return -1;
  f->kv = xcalloc(cap, sizeof *f->kv);
  for (line = f->buf; *line != '\0'; line = next) {
    size_t n = strcspn(line, "\n");
    next = line[n] != '\0' ? line + n + 1 : line + n;
    line[n] = '\0';
    lineno++;
    if (f->n == cap)
      f->kv = xreallocarray(f->kv, cap *= 2, sizeof *f->kv);
    if (take_kv(f, line, label, lineno, why, len) < 0)
      return -1;
  }
  qsort(f->kv, f->n, sizeof *f->kv, cmp_kv);
  return 0;
}

/* The first difference of two sorted files, in key order, for a person;
 * false when they hold the same lines. */
static bool first_diff(const struct kvfile *got, const struct kvfile *want,
                       const char *file, char *buf, size_t len) {
  size_t i = 0, j = 0;
  while (i < got->n || j < want->n) {
    const struct kv *g = i < got->n ? &got->kv[i] : NULL;
    const struct kv *w = j < want->n ? &want->kv[j] : NULL;
    int c = g == NULL ? 1 : w == NULL ? -1 : cmp_kv(g, w);
    if (c == 0) {
      i++, j++;
      continue;
    }
    if (g != NULL && w != NULL && strcmp(g->key, w->key) == 0)
      scn__fmt(buf, len,
               "key %.64s: the server has \"%.40s\", %s has \"%.40s\"", g->key,
               g->value, file, w->value);
    else if (c > 0)
      scn__fmt(buf, len, "key %.64s (= \"%.40s\") of %s is not in the server",
               w->key, w->value, file);
    else
      scn__fmt(buf, len, "the server has key %.64s (= \"%.40s\"), %s has not",
               g->key, g->value, file);
    return true;
  }
  return false;
}

/* dir/name, or name alone if it is absolute or dir is NULL. */
static void join(char *out, size_t len, const char *dir, const char *name) {
  if (dir == NULL || name[0] == '/')
    scn__fmt(out, len, "%s", name);
  else
    scn__fmt(out, len, "%s/%s", dir, name);
}

/* Compares the dump (named name) with the file, both read; sets the
 * verdict. */
static void compare_files(const struct scn_expect *x, const char *dump,
                          const char *name, const char *file,
                          struct scn_verdict *v) {
  struct kvfile got = {0}, want = {0};
  char why[SCN_ERR_MAX / 2];
  if (kvfile_read(&got, dump, name, why, sizeof why) < 0 ||
      kvfile_read(&want, file, x->path, why, sizeof why) < 0)
    scn__verdict(v, x, false, "%s", why);
  else if (first_diff(&got, &want, x->path, why, sizeof why))
    scn__verdict(v, x, false, "%s", why);
  else
    scn__verdict(v, x, true, "the server holds the %zu key=value lines of %s",
                 want.n, x->path);
  kvfile_free(&got);
  kvfile_free(&want);
}

void scn__eval_file(const struct scn_expect *x, const struct scn_facts *facts,
                    struct scn_verdict *v) {
  char dump[4096], file[4096], name[SCN_NAME_MAX + 8];
  if (facts == NULL || facts->dump_dir == NULL) {
    scn__verdict(v, x, false, "no dump of %s's final state was made",
                 x->service);
    return;
  }
  scn__fmt(name, sizeof name, "%s.dump", x->service);
  join(dump, sizeof dump, facts->dump_dir, name);
  join(file, sizeof file, facts->scn_dir, x->path);
  if (access(dump, F_OK) < 0 && errno == ENOENT) {
    scn__verdict(v, x, false,
                 "no dump of %s's final state: %s was down when the "
                 "applications were done, or its dumper %s.dump failed (see "
                 "the trace)",
                 x->service, x->service, x->service);
    return;
  }
  compare_files(x, dump, name, file, v);
}
