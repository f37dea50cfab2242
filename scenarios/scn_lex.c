/* Tokens and values of the scenario language (scenarios/README.md).
 *
 * A line is split into words, quoted strings and colons.  Words are runs of
 * printable ASCII other than '#' and '"'; a word's meaning (name, number,
 * duration, size, keyword) depends on where it stands, so the value readers
 * below check it there.  Any byte the language has no use for (NUL, control
 * bytes, non-ASCII outside strings) is refused with its column, never
 * skipped: a scenario is read the same way by every tool, or refused.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scn_impl.h"

void scn_err_set(struct scn_err *err, const char *file, int line, int col,
                 const char *fmt, ...) {
  va_list ap;
  int n;
  err->pos.line = line;
  err->pos.col = col;
  if (line <= 0)
    n = snprintf(err->text, sizeof err->text, "%s: ", file);
  else if (col > 0)
    n = snprintf(err->text, sizeof err->text, "%s:%d:%d: ", file, line, col);
  else
    n = snprintf(err->text, sizeof err->text, "%s:%d: ", file, line);
  if (n < 0 || (size_t)n >= sizeof err->text)
    return;
  va_start(ap, fmt);
  vsnprintf(err->text + n, sizeof err->text - n, fmt, ap);
  va_end(ap);
}

int scn__fail(struct scn__parser *p, int col, const char *fmt, ...) {
  char msg[SCN_ERR_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  scn_err_set(p->err, p->file, p->line, col, "%s", msg);
  return -1;
}

/* Words in messages are cut short so one message stays one line. */
#define SHOW "%.40s%s"
#define SHOWN(s) (s), strlen(s) > 40 ? "..." : ""

static bool is_space(unsigned char c) {
  return c == ' ' || c == '\t';
}

static bool is_word_byte(unsigned char c) {
  return c > ' ' && c < 0x7f && c != '#' && c != '"';
}

/* Refuses a byte that has no place outside strings. */
static int bad_byte(struct scn__parser *p, int col, unsigned char c) {
  if (c == 0)
    return scn__fail(p, col, "NUL byte");
  if (c < ' ' || c == 0x7f)
    return scn__fail(p, col, "control byte 0x%02x", c);
  return scn__fail(p, col,
                   "byte 0x%02x outside a string (only strings may "
                   "hold non-ASCII text)",
                   c);
}

static struct scn__tok *new_tok(struct scn__parser *p, int col) {
  if (p->ntok == SCN_TOKENS_MAX) {
    scn__fail(p, col, "more than %d words in one statement", SCN_TOKENS_MAX);
    return NULL;
  }
  struct scn__tok *t = &p->tok[p->ntok++];
  memset(t, 0, sizeof *t);
  t->col = col;
  return t;
}

/* Reads the escape after a backslash at s[*i]; 0 or -1. */
static int unescape(struct scn__parser *p, const char *s, size_t len, size_t *i,
                    char *c) {
  if (*i + 1 >= len)
    return scn__fail(p, (int)*i + 1, "unterminated string");
  switch (s[++*i]) {
  case '"':
  case '\\':
    *c = s[*i];
    return 0;
  case 'n':
    *c = '\n';
    return 0;
  case 't':
    *c = '\t';
    return 0;
  default:
    return scn__fail(p, (int)*i,
                     "unknown escape '\\%c' (use \\\" \\\\ \\n "
                     "or \\t)",
                     is_word_byte((unsigned char)s[*i]) ? s[*i] : '?');
  }
}

/* Reads a quoted string starting at s[*i] == '"'; leaves *i past it. */
static int lex_string(struct scn__parser *p, const char *s, size_t len,
                      size_t *i) {
  int col = (int)*i + 1;
  struct scn__tok *t = new_tok(p, col);
  size_t n = 0;
  if (t == NULL)
    return -1;
  t->kind = SCN__STRING;
  for (++*i; *i < len && s[*i] != '"'; ++*i) {
    char c = s[*i];
    if (c == '\\') {
      if (unescape(p, s, len, i, &c) < 0)
        return -1;
    } else if ((c != '\t' && (unsigned char)c < ' ') || c == 0x7f) {
      return bad_byte(p, (int)*i + 1, (unsigned char)c);
    }
    if (n == SCN_TEXT_MAX)
      return scn__fail(p, col, "string longer than %d bytes", SCN_TEXT_MAX);
    t->text[n++] = c;
  }
  if (*i == len)
    return scn__fail(p, col, "unterminated string");
  ++*i;
  return 0;
}

/* Reads a word starting at s[*i]; a trailing ':' becomes its own token. */
static int lex_word(struct scn__parser *p, const char *s, size_t len,
                    size_t *i) {
  size_t start = *i;
  while (*i < len && is_word_byte((unsigned char)s[*i]))
    ++*i;
  size_t n = *i - start;
  bool colon = n > 1 && s[*i - 1] == ':';
  if (colon)
    n--;
  if (n > SCN_TEXT_MAX)
    return scn__fail(p, (int)start + 1, "word longer than %d bytes",
                     SCN_TEXT_MAX);
  struct scn__tok *t = new_tok(p, (int)start + 1);
  if (t == NULL)
    return -1;
  memcpy(t->text, s + start, n);
  t->kind = strcmp(t->text, ":") == 0 ? SCN__COLON : SCN__WORD;
  if (colon) {
    t = new_tok(p, (int)(start + n) + 1);
    if (t == NULL)
      return -1;
    t->kind = SCN__COLON;
    t->text[0] = ':';
  }
  return 0;
}

int scn__lex(struct scn__parser *p, const char *s, size_t len) {
  size_t i = 0;
  p->ntok = 0;
  p->ti = 0;
  p->eol_col = (int)len + 1;
  while (i < len) {
    unsigned char c = (unsigned char)s[i];
    int r = 0;
    if (is_space(c))
      i++;
    else if (c == '#')
      break;
    else if (c == '"')
      r = lex_string(p, s, len, &i);
    else if (is_word_byte(c))
      r = lex_word(p, s, len, &i);
    else
      r = bad_byte(p, (int)i + 1, c);
    if (r < 0)
      return -1;
  }
  /* A comment may hold any text but NUL, which C strings cannot show. */
  for (; i < len; i++)
    if (s[i] == '\0')
      return bad_byte(p, (int)i + 1, 0);
  return 0;
}

const struct scn__tok *scn__next(struct scn__parser *p, const char *what) {
  if (p->ti < p->ntok)
    return &p->tok[p->ti++];
  scn__fail(p, p->eol_col, "missing %s at end of line", what);
  return NULL;
}

const struct scn__tok *scn__word(struct scn__parser *p, const char *what) {
  const struct scn__tok *t = scn__next(p, what);
  if (t != NULL && t->kind != SCN__WORD) {
    scn__fail(p, t->col, "expected %s, got %s", what,
              t->kind == SCN__COLON ? "':'" : "a string");
    return NULL;
  }
  return t;
}

int scn__expect_word(struct scn__parser *p, const char *kw) {
  char what[64];
  snprintf(what, sizeof what, "'%s'", kw);
  const struct scn__tok *t = scn__word(p, what);
  if (t == NULL)
    return -1;
  if (strcmp(t->text, kw) != 0)
    return scn__fail(p, t->col, "expected '%s', got '" SHOW "'", kw,
                     SHOWN(t->text));
  return 0;
}

int scn__end(struct scn__parser *p) {
  if (p->ti == p->ntok)
    return 0;
  const struct scn__tok *t = &p->tok[p->ti];
  if (t->kind == SCN__STRING)
    return scn__fail(p, t->col, "unexpected string");
  return scn__fail(p, t->col, "unexpected '" SHOW "'", SHOWN(t->text));
}

/* Reads the decimal digits at the start of s into *v; returns how many
 * bytes it read, or -ERANGE on overflow.  0 means no digit. */
static int digits(const char *s, uint64_t *v) {
  int i;
  *v = 0;
  for (i = 0; s[i] >= '0' && s[i] <= '9'; i++) {
    uint64_t d = (uint64_t)(s[i] - '0');
    if (*v > (UINT64_MAX - d) / 10)
      return -ERANGE;
    *v = *v * 10 + d;
  }
  return i;
}

static int number_part(struct scn__parser *p, const struct scn__tok *t,
                       const char *what, uint64_t *v) {
  int n = t->kind == SCN__WORD ? digits(t->text, v) : 0;
  if (n == -ERANGE)
    return scn__fail(p, t->col, "number too large: '" SHOW "'", SHOWN(t->text));
  if (n == 0)
    return scn__fail(p, t->col, "expected %s, got '" SHOW "'", what,
                     SHOWN(t->text));
  return n;
}

int scn__read_u64(struct scn__parser *p, const struct scn__tok *t, uint64_t min,
                  uint64_t max, uint64_t *out) {
  int n = number_part(p, t, "a number", out);
  if (n < 0)
    return -1;
  if (t->text[n] != '\0')
    return scn__fail(p, t->col, "expected a number, got '" SHOW "'",
                     SHOWN(t->text));
  if (*out < min || *out > max)
    return scn__fail(p, t->col, "%s is out of range (%llu to %llu)", t->text,
                     (unsigned long long)min, (unsigned long long)max);
  return 0;
}

/* Multiplies v by unit, refusing overflow. */
static int scale(struct scn__parser *p, const struct scn__tok *t, uint64_t v,
                 uint64_t unit, uint64_t *out) {
  if (v > UINT64_MAX / unit)
    return scn__fail(p, t->col, "number too large: '" SHOW "'", SHOWN(t->text));
  *out = v * unit;
  return 0;
}

int scn__read_duration(struct scn__parser *p, const struct scn__tok *t,
                       uint64_t *ns) {
  static const struct {
    const char *suffix;
    uint64_t ns;
  } units[] = {{"ns", 1}, {"us", 1000}, {"ms", 1000000}, {"s", 1000000000}};
  uint64_t v;
  int n = number_part(p, t, "a duration such as 5ms", &v);
  if (n < 0)
    return -1;
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
    if (strcmp(t->text + n, units[i].suffix) != 0)
      continue;
    if (scale(p, t, v, units[i].ns, ns) < 0)
      return -1;
    /* A day bounds every sum the kernel makes with a time (clock plus
     * delay, whole milliseconds in 32 bits) and every time in a trace. */
    if (*ns > SCN_TIME_MAX_NS)
      return scn__fail(
          p, t->col, "time '" SHOW "' is beyond the limit, %llus (a day)",
          SHOWN(t->text), (unsigned long long)(SCN_TIME_MAX_NS / 1000000000));
    return 0;
  }
  if (t->text[n] == '\0')
    return scn__fail(p, t->col,
                     "duration '" SHOW "' needs a unit (ns, us, "
                     "ms or s)",
                     SHOWN(t->text));
  return scn__fail(p, t->col,
                   "unknown unit in duration '" SHOW "' (ns, us, "
                   "ms or s)",
                   SHOWN(t->text));
}

int scn__read_period(struct scn__parser *p, const struct scn__tok *t,
                     const char *what, uint64_t *ns) {
  if (scn__read_duration(p, t, ns) < 0)
    return -1;
  if (*ns == 0)
    return scn__fail(p, t->col, "%s must be longer than 0", what);
  return 0;
}

int scn__read_size(struct scn__parser *p, const struct scn__tok *t,
                   uint64_t *bytes) {
  uint64_t v;
  int n = number_part(p, t, "a size such as 64K", &v);
  if (n < 0)
    return -1;
  const char *u = t->text + n;
  if (*u == '\0')
    return scale(p, t, v, 1, bytes);
  if (u[1] == '\0' && strchr("KMG", *u) != NULL)
    return scale(p, t, v, 1ull << (10 * (strchr("KMG", *u) - "KMG" + 1)),
                 bytes);
  return scn__fail(p, t->col, "unknown unit in size '" SHOW "' (K, M or G)",
                   SHOWN(t->text));
}

struct scn__tok scn__sub_tok(const struct scn__tok *t, size_t from, size_t n) {
  struct scn__tok sub = {SCN__WORD, t->col + (int)from, ""};
  memcpy(sub.text, t->text + from, n);
  return sub;
}

static int read_one(struct scn__parser *p, const struct scn__tok *t,
                    enum scn__unit unit, uint64_t min, uint64_t max,
                    uint64_t *v) {
  if (unit == SCN__DURATION)
    return scn__read_duration(p, t, v);
  if (unit == SCN__SIZE)
    return scn__read_size(p, t, v);
  return scn__read_u64(p, t, min, max, v);
}

int scn__read_range(struct scn__parser *p, const struct scn__tok *t,
                    enum scn__unit unit, uint64_t min, uint64_t max,
                    uint64_t *lo, uint64_t *hi) {
  const char *dots = t->kind == SCN__WORD ? strstr(t->text, "..") : NULL;
  if (dots == NULL) {
    if (read_one(p, t, unit, min, max, lo) < 0)
      return -1;
    *hi = *lo;
    return 0;
  }
  size_t n = (size_t)(dots - t->text);
  struct scn__tok a = scn__sub_tok(t, 0, n);
  struct scn__tok b = scn__sub_tok(t, n + 2, strlen(t->text) - n - 2);
  if (read_one(p, &a, unit, min, max, lo) < 0 ||
      read_one(p, &b, unit, min, max, hi) < 0)
    return -1;
  if (*lo > *hi)
    return scn__fail(p, t->col,
                     "range '" SHOW "': the first is larger than the second",
                     SHOWN(t->text));
  return 0;
}

static bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_name_byte(char c) {
  return is_name_start(c) || (c >= '0' && c <= '9') || c == '-';
}

/* Checks s[0..n-1] is a name; 0 or -1. */
static int check_name(struct scn__parser *p, const struct scn__tok *t,
                      size_t n) {
  if (t->kind != SCN__WORD)
    return scn__fail(p, t->col, "expected a name, got a string");
  if (n > SCN_NAME_MAX)
    return scn__fail(p, t->col, "name '" SHOW "' is longer than %d bytes",
                     SHOWN(t->text), SCN_NAME_MAX);
  bool ok = n > 0 && is_name_start(t->text[0]);
  for (size_t i = 1; ok && i < n; i++)
    ok = is_name_byte(t->text[i]);
  if (!ok)
    return scn__fail(p, t->col,
                     "bad name '" SHOW "' (letters, digits, '_' "
                     "and '-', not starting with a digit or '-')",
                     SHOWN(t->text));
  return 0;
}

int scn__read_name(struct scn__parser *p, const struct scn__tok *t,
                   char out[SCN_NAME_MAX + 1]) {
  size_t n = strlen(t->text);
  if (check_name(p, t, n) < 0)
    return -1;
  memcpy(out, t->text, n + 1);
  return 0;
}

int scn__read_instance(struct scn__parser *p, const struct scn__tok *t,
                       bool star, char out[SCN_INST_MAX + 1]) {
  const char *dot = strchr(t->text, '.');
  size_t n = dot ? (size_t)(dot - t->text) : strlen(t->text);
  uint64_t gen;
  if (star && strcmp(t->text, "*") == 0) {
    strcpy(out, "*");
    return 0;
  }
  if (check_name(p, t, n) < 0)
    return -1;
  if (dot != NULL) {
    int d = digits(dot + 1, &gen);
    if (d <= 0 || dot[1 + d] != '\0' || gen == 0 || gen > UINT32_MAX)
      return scn__fail(p, t->col,
                       "bad instance '" SHOW "' (a name, or a "
                       "name and a generation such as kvs.2)",
                       SHOWN(t->text));
  }
  snprintf(out, SCN_INST_MAX + 1, "%s", t->text);
  return 0;
}

void scn__base_name(const char *inst, char out[SCN_INST_MAX + 1]) {
  snprintf(out, SCN_INST_MAX + 1, "%.*s", (int)strcspn(inst, "."), inst);
}

int scn__read_text(struct scn__parser *p, const struct scn__tok *t,
                   char out[SCN_TEXT_MAX + 1]) {
  (void)p;
  memcpy(out, t->text, sizeof t->text);
  return 0;
}

int scn__read_args(struct scn__parser *p, const struct scn__tok *t,
                   char out[SCN_TEXT_MAX + 1]) {
  int words = 0;
  for (const char *c = t->text; *c != '\0'; c++)
    words += *c != ' ' && (c == t->text || c[-1] == ' ');
  if (words > SCN_ARGS_WORDS_MAX)
    return scn__fail(p, t->col, "more than %d words in --args",
                     SCN_ARGS_WORDS_MAX);
  return scn__read_text(p, t, out);
}

int scn__read_enum(struct scn__parser *p, const struct scn__tok *t,
                   const char *what, const char *const *names, int n,
                   int *out) {
  char list[256] = "";
  for (int i = 0; i < n; i++) {
    if (t->kind == SCN__WORD && strcmp(t->text, names[i]) == 0) {
      *out = i;
      return 0;
    }
    size_t l = strlen(list);
    snprintf(list + l, sizeof list - l, "%s%s", i ? ", " : "", names[i]);
  }
  if (t->kind == SCN__STRING)
    return scn__fail(p, t->col, "expected %s (%s), got a string", what, list);
  return scn__fail(p, t->col, "unknown %s '" SHOW "' (%s)", what,
                   SHOWN(t->text), list);
}
