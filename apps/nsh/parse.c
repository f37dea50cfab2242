/* nsh's parser (see parse.h): one pass over the line, a word at a time.
 * The state is the command being filled, the word being copied into the
 * line's buffer, and a redirection waiting for its file name. */
#include "parse.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct pstate {
  const char *s;
  size_t n, i;
  struct nsh_line *l;
  struct nsh_cmd *c; /* the command being filled */
  char *w;           /* the word being copied, NULL between words */
  size_t used;       /* bytes of l->buf taken */
  int redir;         /* 0, '<', '>' or 'a' ('>>'): waiting for its file */
  char *err;
  size_t errlen;
};

static int fail(struct pstate *p, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->err, p->errlen, fmt, ap);
  va_end(ap);
  return -1;
}

static bool cmd_empty(const struct nsh_cmd *c) {
  return c->argc == 0 && c->in == NULL && c->out == NULL;
}

static const char *redir_name(int r) {
  return r == '<' ? "<" : r == '>' ? ">" : ">>";
}

/* Ends the word being copied and gives it to the command, as an argument
 * or as the file of the waiting redirection. */
static int end_word(struct pstate *p) {
  if (p->w == NULL)
    return 0;
  char *w = p->w;
  p->l->buf[p->used++] = '\0';
  p->w = NULL;
  struct nsh_cmd *c = p->c;
  if (p->redir == '<') {
    c->in = w;
  } else if (p->redir) {
    c->out = w;
    c->append = p->redir == 'a';
  } else if (c->argc == NSH_WORDS_MAX) {
    return fail(p, "too many words in a command (limit %d)", NSH_WORDS_MAX);
  } else {
    c->argv[c->argc++] = w;
  }
  p->redir = 0;
  return 0;
}

static void put(struct pstate *p, char ch) {
  if (p->w == NULL)
    p->w = &p->l->buf[p->used];
  p->l->buf[p->used++] = ch;
}

/* An operator or the end of the line: no redirection may still wait. */
static int no_redir(struct pstate *p, const char *what) {
  if (p->redir)
    return fail(p, "missing file name after '%s' (before %s)",
                redir_name(p->redir), what);
  return 0;
}

/* A command with words or redirections is done: it must be one of the
 * NSH_CMDS_MAX a line may hold (the array has one more, the empty command
 * waiting at the end). */
static int finish_cmd(struct pstate *p) {
  if (p->c - p->l->cmd >= NSH_CMDS_MAX)
    return fail(p, "too many commands in a line (limit %d)", NSH_CMDS_MAX);
  return 0;
}

static int next_cmd(struct pstate *p) {
  if (finish_cmd(p) < 0)
    return -1;
  p->c = &p->l->cmd[p->l->ncmd++];
  return 0;
}

/* ';' or a newline: the pipeline ends.  An empty one is skipped, unless a
 * '|' promised a command. */
static int end_pipeline(struct pstate *p, const char *what) {
  if (no_redir(p, what) < 0)
    return -1;
  if (cmd_empty(p->c)) {
    if (p->l->ncmd > 1 && p->l->cmd[p->l->ncmd - 2].pipe)
      return fail(p, "empty command after '|'");
    return 0;
  }
  return next_cmd(p);
}

/* The end of the line: as ';', but no command follows to make room for. */
static int end_line(struct pstate *p) {
  if (no_redir(p, "the end of the line") < 0)
    return -1;
  if (!cmd_empty(p->c))
    return finish_cmd(p);
  if (p->l->ncmd > 1 && p->l->cmd[p->l->ncmd - 2].pipe)
    return fail(p, "empty command after '|'");
  return 0;
}

static int pipe_op(struct pstate *p) {
  if (no_redir(p, "'|'") < 0)
    return -1;
  if (cmd_empty(p->c))
    return fail(p, "empty command before '|'");
  p->c->pipe = true;
  return next_cmd(p);
}

static int redir_op(struct pstate *p, char ch) {
  if (no_redir(p, ch == '<' ? "'<'" : "'>'") < 0)
    return -1;
  if (ch == '>' && p->i + 1 < p->n && p->s[p->i + 1] == '>') {
    p->i++;
    ch = 'a';
  }
  if ((ch == '<' && p->c->in) || (ch != '<' && p->c->out))
    return fail(p, "two '%s' redirections in one command",
                ch == '<' ? "<" : ">");
  p->redir = ch;
  return 0;
}

/* A quoted part, from the opening quote at p->i; '' inside is a quote. */
static int quoted(struct pstate *p) {
  size_t start = p->i;
  if (p->w == NULL)
    p->w = &p->l->buf[p->used]; /* '' alone is an empty word */
  for (p->i++; p->i < p->n; p->i++) {
    if (p->s[p->i] != '\'') {
      put(p, p->s[p->i]);
    } else if (p->i + 1 < p->n && p->s[p->i + 1] == '\'') {
      put(p, '\'');
      p->i++;
    } else {
      return 0;
    }
  }
  return fail(p, "unterminated quote (opened at column %zu)", start + 1);
}

static void skip_comment(struct pstate *p) {
  while (p->i + 1 < p->n && p->s[p->i + 1] != '\n')
    p->i++;
}

static int step(struct pstate *p) {
  char ch = p->s[p->i];
  switch (ch) {
  case ' ':
  case '\t':
  case '\r':
    return end_word(p);
  case '\n':
  case ';':
    return end_word(p) < 0 ? -1
                           : end_pipeline(p, ch == ';' ? "';'" : "newline");
  case '|':
    return end_word(p) < 0 ? -1 : pipe_op(p);
  case '<':
  case '>':
    return end_word(p) < 0 ? -1 : redir_op(p, ch);
  case '\'':
    return quoted(p);
  case '\0':
    return fail(p, "NUL byte at column %zu", p->i + 1);
  case '#':
    if (p->w == NULL) {
      skip_comment(p);
      return 0;
    }
    put(p, ch);
    return 0;
  default:
    put(p, ch);
    return 0;
  }
}

int nsh_parse(const char *s, size_t n, struct nsh_line *l, char *err,
              size_t errlen) {
  struct pstate p = {.s = s, .n = n, .l = l, .err = err, .errlen = errlen};
  memset(l, 0, sizeof *l);
  if (errlen)
    err[0] = '\0';
  if (n > NSH_LINE_MAX) {
    fail(&p, "line too long (%zu bytes, limit %d)", n, NSH_LINE_MAX);
    return -1;
  }
  p.c = &l->cmd[l->ncmd++];
  int r = 0;
  for (; p.i < n && r == 0; p.i++)
    r = step(&p);
  if (r == 0)
    r = end_word(&p);
  if (r == 0)
    r = end_line(&p);
  if (r < 0) {
    memset(l, 0, sizeof *l);
    return -1;
  }
  /* next_cmd left an unused command at the end. */
  if (l->ncmd > 0 && cmd_empty(&l->cmd[l->ncmd - 1]))
    l->ncmd--;
  return 0;
}
