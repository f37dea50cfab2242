/* uksim explore --merge: reading back the JUnit reports explore_junit()
 * writes, and joining the reports of the shards of one sweep (explore.h).
 *
 * The reader is strict about the structure and lenient about the layout:
 * any whitespace between elements, comments, an XML declaration, attributes
 * in any order, the five named entities and numeric character references
 * are accepted; anything else -- another element, a missing attribute, a
 * count that disagrees with the test cases, text after the end -- is an
 * error naming the file and line, never a guess.  The report is
 *
 *   <testsuites><testsuite name=FILE tests= failures= time=>
 *     <properties> first, seeds [, shard K/N] </properties>
 *     <testcase name="seed S" time=T/>  or  <testcase ...><failure
 *       message="... (exit status N)">OUTPUT reproduce: uksim CMD</failure>
 *     </testcase> ...
 *   </testsuite></testsuites>
 *
 * Joining checks, as each report is read, that it is of the same sweep
 * (scenario, first seed, seed count, shard count) as the first one, that
 * its slice was not read before, that each of its seeds lies in its slice
 * and appears once; after the last report, that no slice is missing. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explore.h"
#include "uksim/num.h"
#include "uksim/xalloc.h"

#define ATTRS_MAX 8  /* attributes of one element of a report */
#define NAME_MAX_ 32 /* bytes of an element or attribute name, with its NUL */

struct rd {
  const char *file;
  char *buf, *p, *end;
  int line;
};

struct tag {
  char name[NAME_MAX_];
  bool close; /* </name> */
  bool empty; /* <name/> */
  int nattr;
  char key[ATTRS_MAX][NAME_MAX_];
  char *val[ATTRS_MAX]; /* unescaped in place in the report's buffer */
};

/* What the sweep and the join so far are. */
struct join {
  struct explore_opts *o;
  struct explore_result *r;
  bool *seen; /* seen[k - 1]: slice k read */
  const char *first_file;
};

static int bad(const struct rd *d, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "uksim explore --merge: %s:%d: ", d->file, d->line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  if (d->p != NULL && d->p >= d->end)
    fputs(" (at the end of the file: truncated?)", stderr);
  fputc('\n', stderr);
  return -1;
}

static int read_all(struct rd *d, const char *file) {
  FILE *f = fopen(file, "rb");
  d->file = file;
  d->line = 1;
  if (f == NULL)
    return bad(d, "cannot read it: %s", strerror(errno));
  size_t cap = 65536, n = 0;
  d->buf = xmalloc(cap + 1);
  size_t got;
  while ((got = fread(d->buf + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap && cap >= EXPLORE_REPORT_BYTES_MAX) {
      fclose(f);
      return bad(d, "larger than %u bytes", EXPLORE_REPORT_BYTES_MAX);
    }
    if (n == cap) {
      cap *= 2;
      d->buf = xrealloc(d->buf, cap + 1);
    }
  }
  int err = ferror(f);
  fclose(f);
  if (err)
    return bad(d, "cannot read it");
  d->buf[n] = '\0';
  if (strlen(d->buf) != n)
    return bad(d, "a NUL byte: not an XML report");
  d->p = d->buf;
  d->end = d->buf + n;
  return 0;
}

/* XML -------------------------------------------------------------------- */

static void advance(struct rd *d, size_t n) {
  for (size_t i = 0; i < n && d->p < d->end; i++, d->p++)
    if (*d->p == '\n')
      d->line++;
}

static void skip_space(struct rd *d) {
  while (d->p < d->end && strchr(" \t\r\n", *d->p) != NULL)
    advance(d, 1);
}

/* Puts code point c at *w as UTF-8 (c < 0x110000). */
static char *put_utf8(char *w, unsigned long c) {
  if (c < 0x80) {
    *w++ = (char)c;
  } else if (c < 0x800) {
    *w++ = (char)(0xc0 | c >> 6);
    *w++ = (char)(0x80 | (c & 0x3f));
  } else if (c < 0x10000) {
    *w++ = (char)(0xe0 | c >> 12);
    *w++ = (char)(0x80 | (c >> 6 & 0x3f));
    *w++ = (char)(0x80 | (c & 0x3f));
  } else {
    *w++ = (char)(0xf0 | c >> 18);
    *w++ = (char)(0x80 | (c >> 12 & 0x3f));
    *w++ = (char)(0x80 | (c >> 6 & 0x3f));
    *w++ = (char)(0x80 | (c & 0x3f));
  }
  return w;
}

/* One entity at s (after '&'), written at *w; the bytes it took, 0 when it
 * is not one. */
static size_t entity(const char *s, char **w) {
  static const struct {
    const char *name;
    char c;
  } named[] = {{"amp;", '&'},
               {"lt;", '<'},
               {"gt;", '>'},
               {"quot;", '"'},
               {"apos;", '\''}};
  for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
    if (strncmp(s, named[i].name, strlen(named[i].name)) == 0) {
      *(*w)++ = named[i].c;
      return strlen(named[i].name);
    }
  if (s[0] != '#')
    return 0;
  bool hex = s[1] == 'x';
  char *e;
  errno = 0;
  unsigned long c = strtoul(s + 1 + hex, &e, hex ? 16 : 10);
  if (e == s + 1 + hex || *e != ';' || errno || c == 0 || c >= 0x110000)
    return 0;
  *w = put_utf8(*w, c);
  return (size_t)(e + 1 - s);
}

/* Replaces entities in [s, s + n) in place (the text only shrinks) and
 * ends it with a NUL; -1 at a '&' that starts no entity or a '<'. */
static int unescape(struct rd *d, char *s, size_t n) {
  char *w = s, *end = s + n;
  while (s < end) {
    if (*s == '<')
      return bad(d, "'<' inside a value");
    if (*s != '&') {
      *w++ = *s++;
      continue;
    }
    char tmp[8], *t = tmp;
    size_t k = entity(s + 1, &t);
    if (k == 0)
      return bad(d, "an '&' that starts no entity");
    memcpy(w, tmp, (size_t)(t - tmp));
    w += t - tmp;
    s += 1 + k;
  }
  *w = '\0';
  return 0;
}

static bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_' || c == '-' || c == ':' || c == '.';
}

/* The name at d->p, copied to out; false when there is none or it is too
 * long. */
static bool name_at(struct rd *d, char out[NAME_MAX_]) {
  char *s = d->p;
  while (d->p < d->end && name_char(*d->p))
    advance(d, 1);
  size_t n = (size_t)(d->p - s);
  if (n == 0 || n >= NAME_MAX_)
    return false;
  memcpy(out, s, n);
  out[n] = '\0';
  return true;
}

static int attribute(struct rd *d, struct tag *t, char c) {
  if (t->nattr == ATTRS_MAX)
    return bad(d, "more than %d attributes in <%s>", ATTRS_MAX, t->name);
  char *key = t->key[t->nattr];
  if (!name_at(d, key))
    return bad(d, "'%c' where an attribute was expected in <%s>", c, t->name);
  skip_space(d);
  if (*d->p != '=')
    return bad(d, "attribute %s of <%s> has no value", key, t->name);
  advance(d, 1);
  skip_space(d);
  char q = *d->p;
  if (q != '"' && q != '\'')
    return bad(d, "attribute %s of <%s> is not quoted", key, t->name);
  advance(d, 1);
  char *v = d->p, *e = memchr(v, q, (size_t)(d->end - v));
  if (e == NULL)
    return bad(d, "attribute %s of <%s> never ends", key, t->name);
  advance(d, (size_t)(e - v) + 1);
  *e = '\0'; /* the quote, read: entity() reads no further */
  if (unescape(d, v, (size_t)(e - v)) < 0)
    return -1;
  t->val[t->nattr++] = v;
  return 0;
}

/* Skips a comment or declaration at d->p ("<!--", "<?"); 1 if one was
 * there, 0 if not, -1 if it never ends. */
static int skip_misc(struct rd *d) {
  const char *close = strncmp(d->p, "<!--", 4) == 0 ? "-->"
                      : strncmp(d->p, "<?", 2) == 0 ? "?>"
                                                    : NULL;
  if (close == NULL)
    return 0;
  char *e = strstr(d->p, close);
  if (e == NULL)
    return bad(d, "a comment or declaration that never ends");
  advance(d, (size_t)(e - d->p) + strlen(close));
  return 1;
}

/* The next tag after whitespace, comments and declarations. */
static int next_tag(struct rd *d, struct tag *t) {
  int m;
  memset(t, 0, sizeof *t);
  do {
    skip_space(d);
    if (d->p == d->end)
      return bad(d, "the report ends early");
  } while ((m = skip_misc(d)) == 1);
  if (m < 0)
    return -1;
  if (*d->p != '<')
    return bad(d, "text where an element was expected");
  advance(d, 1);
  if (*d->p == '/') {
    t->close = true;
    advance(d, 1);
  }
  if (!name_at(d, t->name))
    return bad(d, "'<' not followed by an element name");
  for (;;) {
    skip_space(d);
    if (d->p == d->end)
      return bad(d, "<%s never ends", t->name);
    if (*d->p == '>')
      break;
    if (d->p[0] == '/' && d->p[1] == '>' && !t->close) {
      t->empty = true;
      advance(d, 1);
      break;
    }
    if (t->close || attribute(d, t, *d->p) < 0)
      return t->close ? bad(d, "junk in </%s>", t->name) : -1;
  }
  advance(d, 1);
  return 0;
}

static int expect_tag(struct rd *d, struct tag *t, const char *name,
                      bool close) {
  if (next_tag(d, t) < 0)
    return -1;
  if (strcmp(t->name, name) != 0 || t->close != close || (close && t->empty))
    return bad(d, "<%s%s%s> where <%s%s> was expected", t->close ? "/" : "",
               t->name, t->empty ? "/" : "", close ? "/" : "", name);
  return 0;
}

static const char *attr(const struct tag *t, const char *key) {
  for (int i = 0; i < t->nattr; i++)
    if (strcmp(t->key[i], key) == 0)
      return t->val[i];
  return NULL;
}

static int need(struct rd *d, const struct tag *t, const char *key,
                const char **v) {
  if ((*v = attr(t, key)) == NULL)
    return bad(d, "<%s> has no attribute %s", t->name, key);
  return 0;
}

static int u64_attr(struct rd *d, const struct tag *t, const char *key,
                    uint64_t max, uint64_t *out) {
  const char *v;
  if (need(d, t, key, &v) < 0)
    return -1;
  char *e;
  errno = 0;
  if (*v < '0' || *v > '9' || (*out = strtoull(v, &e, 10), errno) || *e ||
      *out > max)
    return bad(d, "%s=\"%s\" of <%s>: not a number up to %" PRIu64, key, v,
               t->name, max);
  return 0;
}

static int secs_attr(struct rd *d, const struct tag *t, double *out) {
  const char *v;
  if (need(d, t, "time", &v) < 0)
    return -1;
  char *e;
  *out = strtod(v, &e);
  if (e == v || *e || !(*out >= 0))
    return bad(d, "time=\"%s\" of <%s>: not a time in seconds", v, t->name);
  return 0;
}

/* The text up to the next '<', unescaped, as a heap string. */
static char *text(struct rd *d) {
  char *s = d->p, *e = memchr(s, '<', (size_t)(d->end - s));
  if (e == NULL) {
    bad(d, "text that never ends");
    return NULL;
  }
  advance(d, (size_t)(e - s));
  char *copy = xmalloc((size_t)(e - s) + 1);
  memcpy(copy, s, (size_t)(e - s));
  copy[e - s] = '\0'; /* entity() reads no further */
  if (unescape(d, copy, (size_t)(e - s)) < 0) {
    free(copy);
    return NULL;
  }
  return copy;
}

/* The report's structure --------------------------------------------------- */

/* The sweep a report names: its <testsuite> and <properties>. */
struct sweep {
  const char *name;
  uint64_t tests, failures, first, seeds;
  unsigned k, n;
  double secs;
};

static int shard_value(struct rd *d, const char *v, unsigned *k, unsigned *n) {
  unsigned kk, nn;
  char end;
  if (sscanf(v, "%u/%u%c", &kk, &nn, &end) != 2 || nn == 0 ||
      nn > EXPLORE_SHARDS_MAX || kk == 0 || kk > nn)
    return bad(d, "shard \"%s\": not K/N with 1 <= K <= N <= %u", v,
               EXPLORE_SHARDS_MAX);
  *k = kk;
  *n = nn;
  return 0;
}

static int property(struct rd *d, const struct tag *t, struct sweep *w,
                    unsigned *have) {
  const char *name, *v;
  if (need(d, t, "name", &name) < 0 || need(d, t, "value", &v) < 0)
    return -1;
  if (strcmp(name, "first") == 0) {
    *have |= 1;
    return u64_attr(d, t, "value", UINT64_MAX, &w->first);
  }
  if (strcmp(name, "seeds") == 0) {
    *have |= 2;
    return u64_attr(d, t, "value", EXPLORE_SEEDS_MAX, &w->seeds);
  }
  if (strcmp(name, "shard") == 0)
    return shard_value(d, v, &w->k, &w->n);
  return 0; /* a property some other tool added: not ours to judge */
}

static int properties(struct rd *d, struct sweep *w) {
  struct tag t;
  unsigned have = 0;
  w->k = w->n = 1;
  if (expect_tag(d, &t, "properties", false) < 0)
    return -1;
  for (;;) {
    if (next_tag(d, &t) < 0)
      return -1;
    if (t.close && strcmp(t.name, "properties") == 0)
      break;
    if (strcmp(t.name, "property") != 0 || t.close || !t.empty)
      return bad(d, "<%s> in <properties>", t.name);
    if (property(d, &t, w, &have) < 0)
      return -1;
  }
  if (have != 3)
    return bad(d, "no %s property: not a report of uksim explore",
               have & 1 ? "seeds" : "first");
  if (w->seeds - (w->seeds > 0) > UINT64_MAX - w->first)
    return bad(d, "seeds %" PRIu64 " from %" PRIu64 " pass 2^64-1", w->seeds,
               w->first);
  return 0;
}

static int suite(struct rd *d, struct sweep *w) {
  struct tag t;
  if (expect_tag(d, &t, "testsuites", false) < 0 ||
      expect_tag(d, &t, "testsuite", false) < 0)
    return -1;
  if (need(d, &t, "name", &w->name) < 0 ||
      u64_attr(d, &t, "tests", EXPLORE_SEEDS_MAX, &w->tests) < 0 ||
      u64_attr(d, &t, "failures", EXPLORE_SEEDS_MAX, &w->failures) < 0 ||
      secs_attr(d, &t, &w->secs) < 0)
    return -1;
  return properties(d, w);
}

/* Checks the sweep against the first report's, or makes it the join's. */
static int same_sweep(struct rd *d, struct join *j, const struct sweep *w) {
  struct explore_opts *o = j->o;
  if (j->first_file == NULL) {
    j->r->name = xstrdup(w->name);
    o->file = j->r->name;
    o->first = o->sweep_first = w->first;
    o->seeds = o->sweep_seeds = w->seeds;
    o->shard_k = o->shard_n = 1;
    j->r->n = w->seeds;
    j->r->seed = xcalloc(w->seeds ? w->seeds : 1, sizeof *j->r->seed);
    for (uint64_t i = 0; i < w->seeds; i++)
      j->r->seed[i].seed = w->first + i;
    j->seen = xcalloc(w->n, sizeof *j->seen);
    j->first_file = d->file;
    o->shard_n = w->n; /* remembered until the join is done */
  } else if (strcmp(w->name, o->file) != 0 || w->first != o->first ||
             w->seeds != o->seeds || w->n != o->shard_n)
    return bad(d,
               "a sweep of %s, seeds %" PRIu64 "+%" PRIu64 " in %u shards; "
               "%s's is of %s, seeds %" PRIu64 "+%" PRIu64 " in %u shards: "
               "reports of different sweeps",
               w->name, w->first, w->seeds, w->n, j->first_file, o->file,
               o->first, o->seeds, o->shard_n);
  if (j->seen[w->k - 1])
    return bad(d, "shard %u/%u read twice: reports of two runs of one slice?",
               w->k, w->n);
  j->seen[w->k - 1] = true;
  return 0;
}

/* "OUTPUT reproduce: uksim CMD": splits the body of a <failure>. */
static int failure_body(struct rd *d, char *body, struct explore_seed *s) {
  static const char mark[] = "reproduce: uksim ";
  char *m = NULL;
  for (char *p = strstr(body, mark); p != NULL; p = strstr(p + 1, mark))
    m = p;
  if (m == NULL) {
    free(body);
    return bad(d, "a failure without 'reproduce: uksim ...'");
  }
  s->repro = xstrdup(m + strlen(mark));
  *m = '\0';
  s->output = body;
  return 0;
}

static int failure(struct rd *d, struct explore_seed *s) {
  struct tag t;
  const char *msg, *st;
  if (expect_tag(d, &t, "failure", false) < 0 || need(d, &t, "message", &msg))
    return -1;
  char end;
  if ((st = strstr(msg, "(exit status ")) == NULL ||
      sscanf(st, "(exit status %d)%c", &s->status, &end) != 1 || s->status == 0)
    return bad(d, "failure message \"%s\" names no exit status", msg);
  char *body = text(d);
  if (body == NULL || failure_body(d, body, s) < 0)
    return -1;
  if (expect_tag(d, &t, "failure", true) < 0 ||
      expect_tag(d, &t, "testcase", true) < 0)
    return -1;
  return 0;
}

/* One <testcase>, into its seed's slot of the join. */
static int testcase(struct rd *d, struct join *j, const struct sweep *w,
                    const struct tag *t, uint64_t *failures) {
  const char *name;
  uint64_t seed, lo, hi;
  char end;
  if (need(d, t, "name", &name) < 0)
    return -1;
  if (sscanf(name, "seed %" SCNu64 "%c", &seed, &end) != 1)
    return bad(d, "test case \"%s\" is not \"seed N\"", name);
  explore_shard_slice(w->seeds, w->k, w->n, &lo, &hi);
  if (seed < w->first || seed - w->first < lo || seed - w->first >= hi)
    return bad(d,
               "seed %" PRIu64 " is not in shard %u/%u (seeds %" PRIu64
               "..%" PRIu64 ")",
               seed, w->k, w->n, w->first + lo, w->first + hi - 1);
  struct explore_seed *s = &j->r->seed[seed - w->first];
  if (s->ran)
    return bad(d, "seed %" PRIu64 " a second time", seed);
  if (secs_attr(d, t, &s->secs) < 0)
    return -1;
  s->ran = true;
  j->r->ran++;
  if (t->empty)
    return 0;
  (*failures)++;
  j->r->failed++;
  return failure(d, s);
}

static int testcases(struct rd *d, struct join *j, const struct sweep *w) {
  struct tag t;
  uint64_t tests = 0, failures = 0;
  for (;;) {
    if (next_tag(d, &t) < 0)
      return -1;
    if (t.close && strcmp(t.name, "testsuite") == 0)
      break;
    if (strcmp(t.name, "testcase") != 0 || t.close)
      return bad(d, "<%s%s> in <testsuite>", t.close ? "/" : "", t.name);
    tests++;
    if (testcase(d, j, w, &t, &failures) < 0)
      return -1;
  }
  if (tests != w->tests || failures != w->failures)
    return bad(d,
               "the suite says %" PRIu64 " tests, %" PRIu64 " failed, but "
               "holds %" PRIu64 ", %" PRIu64 " failed",
               w->tests, w->failures, tests, failures);
  return 0;
}

static int read_report(struct join *j, const char *file) {
  struct rd d = {.buf = NULL};
  struct sweep w;
  struct tag t;
  int st = -1;
  if (read_all(&d, file) < 0 || suite(&d, &w) < 0 ||
      same_sweep(&d, j, &w) < 0 || testcases(&d, j, &w) < 0 ||
      expect_tag(&d, &t, "testsuites", true) < 0)
    goto error;
  while (skip_space(&d), d.p < d.end) {
    int m = skip_misc(&d);
    if (m == 0)
      bad(&d, "more after </testsuites>");
    if (m <= 0)
      goto error;
  }
  j->r->secs += w.secs;
  st = 0;
error:
  free(d.buf);
  return st;
}

static int missing_slices(const struct join *j, unsigned n) {
  unsigned missing = 0, first = 0;
  for (unsigned k = n; k >= 1; k--)
    if (!j->seen[k - 1]) {
      missing++;
      first = k;
    }
  if (missing == 0)
    return 0;
  fprintf(stderr,
          "uksim explore --merge: %u of %u shards missing (the first: "
          "%u/%u): the join would not be the whole sweep\n",
          missing, n, first, n);
  return -1;
}

int explore_merge(char *const *files, unsigned n, struct explore_opts *o,
                  struct explore_result *r) {
  struct join j = {.o = o, .r = r};
  memset(r, 0, sizeof *r);
  memset(o, 0, sizeof *o);
  r->first_failed = -1;
  int st = 0;
  for (unsigned i = 0; i < n && st == 0; i++)
    st = read_report(&j, files[i]);
  if (st == 0)
    st = missing_slices(&j, o->shard_n);
  o->shard_k = o->shard_n = 1; /* the join is the whole sweep */
  for (uint64_t i = 0; st == 0 && i < r->n && r->first_failed < 0; i++)
    if (r->seed[i].ran && r->seed[i].status != 0)
      r->first_failed = (int64_t)i;
  free(j.seen);
  if (st < 0)
    explore_result_free(r);
  return st;
}
