/* Private to libscn: the tokenizer and value readers that scn.c's statement
 * parser is built on.  A statement is one line; scn__lex splits it into
 * tokens (words, quoted strings and the colon that ends a trigger), and
 * the scn__read_* functions turn one token into a checked value.  Every
 * function that can fail fills the parser's error and returns -1, so a
 * caller only passes the failure up. */
#ifndef UKSIM_SCN_IMPL_H
#define UKSIM_SCN_IMPL_H

#include <stdint.h>

#include "scn.h"
#include "uksim/xalloc.h"

enum scn__tok_kind { SCN__WORD, SCN__STRING, SCN__COLON };

struct scn__tok {
  enum scn__tok_kind kind;
  int col;                     /* 1-based byte column of its first byte */
  char text[SCN_TEXT_MAX + 1]; /* a string's text without quotes, unescaped */
};

/* What a declared server may add to a run's processes (scn_count.c). */
struct scn__tally {
  uint32_t later;  /* instances started by replace and restart actions */
  uint32_t faults; /* failures planned: fault entries and fault actions */
  bool dumped;     /* an `expect state S equals "FILE"` starts a dumper */
};

/* What the parser knows while it reads one file. */
struct scn__parser {
  const char *file;
  struct scn_err *err;
  struct scn *s;
  int line;    /* 1-based number of the line being read */
  int eol_col; /* the column just past the line's last byte */
  struct scn__tok tok[SCN_TOKENS_MAX];
  int ntok;
  int ti;         /* the next token to read */
  int nstmt;      /* statements so far */
  int title_line; /* of the scenario statement, 0 before it */
  struct scn__tally tally[SCN_SERVERS_MAX]; /* per server, in file order */
  uint32_t helpers;                         /* scn__count_helper */
};

/* Sets the error at col of the current line; returns -1. */
int scn__fail(struct scn__parser *p, int col, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Splits line (len bytes, no newline) into p->tok.  0 or -1. */
int scn__lex(struct scn__parser *p, const char *line, size_t len);

/* The next token, or NULL (then fails with "what" expected at line end). */
const struct scn__tok *scn__next(struct scn__parser *p, const char *what);
/* The next token if it is a word, else fails. */
const struct scn__tok *scn__word(struct scn__parser *p, const char *what);
/* The next token must be the literal word kw. 0 or -1. */
int scn__expect_word(struct scn__parser *p, const char *kw);
/* Fails if any token is left on the line. 0 or -1. */
int scn__end(struct scn__parser *p);

/* Value readers: each reads one token and checks it. 0 or -1. */
int scn__read_u64(struct scn__parser *p, const struct scn__tok *t, uint64_t min,
                  uint64_t max, uint64_t *out);
int scn__read_duration(struct scn__parser *p, const struct scn__tok *t,
                       uint64_t *ns);
/* A duration above 0; what names it in the message. */
int scn__read_period(struct scn__parser *p, const struct scn__tok *t,
                     const char *what, uint64_t *ns);
int scn__read_size(struct scn__parser *p, const struct scn__tok *t,
                   uint64_t *bytes);
int scn__read_name(struct scn__parser *p, const struct scn__tok *t,
                   char out[SCN_NAME_MAX + 1]);

/* LO..HI, or one value (then *lo == *hi): a number in [min, max], a
 * duration or a size, each part read as above; LO must not exceed HI. */
enum scn__unit { SCN__NUMBER, SCN__DURATION, SCN__SIZE };
int scn__read_range(struct scn__parser *p, const struct scn__tok *t,
                    enum scn__unit unit, uint64_t min, uint64_t max,
                    uint64_t *lo, uint64_t *hi);
/* The n bytes of t from byte from, as a token with its own column. */
struct scn__tok scn__sub_tok(const struct scn__tok *t, size_t from, size_t n);
/* A name, or a name with a generation ("kvs.2"), or "*" if star. */
int scn__read_instance(struct scn__parser *p, const struct scn__tok *t,
                       bool star, char out[SCN_INST_MAX + 1]);
/* A word or a string, copied as it is. */
int scn__read_text(struct scn__parser *p, const struct scn__tok *t,
                   char out[SCN_TEXT_MAX + 1]);
/* The value of --args: a text of at most SCN_ARGS_WORDS_MAX words. */
int scn__read_args(struct scn__parser *p, const struct scn__tok *t,
                   char out[SCN_TEXT_MAX + 1]);
/* One of names[0..n-1]; *out is its index. what names the slot. */
int scn__read_enum(struct scn__parser *p, const struct scn__tok *t,
                   const char *what, const char *const *names, int n, int *out);

/* An option of a statement: "--name value".  set reads the value token
 * into obj (the statement's struct).  repeat: true, may be given more than
 * once; SCN__FLAG, once and without a value ("--protect": set gets the
 * option's own token). */
#define SCN__FLAG 2
struct scn__opt {
  const char *name;
  int (*set)(struct scn__parser *p, const struct scn__tok *v, void *obj);
  int repeat;
};

/* Reads options up to the end of the line; opts ends with a NULL name.
 * stmt names the statement in messages.  0 or -1. */
int scn__read_opts(struct scn__parser *p, const char *stmt,
                   const struct scn__opt *opts, void *obj);

/* Reads a fault plan entry "KIND@POINT" into f[*n] and counts it. */
int scn__read_fault(struct scn__parser *p, const struct scn__tok *t,
                    struct scn_fault f[SCN_FAULTS_MAX], unsigned *n);

/* Reads a state method (single, chain or copy). */
int scn__read_state(struct scn__parser *p, const struct scn__tok *t,
                    enum scn_state *out);

/* Cross references: names must be declared on an earlier line.  Each
 * fails with a message at col unless name is declared as asked. */
int scn__need_server(struct scn__parser *p, int col, const char *name);
int scn__need_app(struct scn__parser *p, int col, const char *name);
/* A process: an instance of a server or app, "kernel" if kernel, "*" if
 * star. */
int scn__need_process(struct scn__parser *p, int col, const char *inst,
                      bool kernel, bool star);

/* Orthros: what names an OS's backup (--protect, fault, an expectation)
 * needs `machine --backup 1` on an earlier line; fails at col naming it
 * ("--protect", "fault kernel" ...) unless the machine has one. */
int scn__need_backup(struct scn__parser *p, int col, const char *what);

/* The line of tcp-client name's statement, or 0 if none is declared. */
int scn__tcp_line(const struct scn *s, const char *name);

/* Counting (scn_count.c): each is called once the statement is in the
 * tree, and fails at col when the run would need more servers or
 * processes than SCN_SERVERS_MAX and SCN_PROCS_MAX. */
int scn__count_server(struct scn__parser *p, int col);
int scn__count_app(struct scn__parser *p, int col);
int scn__count_action(struct scn__parser *p, const struct scn_action *a);
/* A helper the executor starts: one per namespace action (it runs the
 * bind, mount or unmount) and one per `expect file` (it reads the file). */
int scn__count_helper(struct scn__parser *p, int col);
/* An `expect state SERVICE equals "FILE"`: its dumper. */
int scn__count_dump(struct scn__parser *p, int col, const char *service);

/* Appends item (size bytes) to arr, an array of *n items; returns the
 * array, perhaps moved. */
void *scn__append(void *arr, size_t *n, size_t size, const void *item);

/* The statements of scn_action.c. */
int scn__st_at(struct scn__parser *p);
int scn__st_on(struct scn__parser *p);
int scn__st_expect(struct scn__parser *p);

/* A comparison (<, <=, ==, >=, >) into e->cmp. */
int scn__read_cmp(struct scn__parser *p, struct scn_expect *e);

/* A new declared name (a server, app, tcp-client, node or task): not the
 * kernel's, not taken. */
int scn__new_name(struct scn__parser *p, const struct scn__tok *t,
                  char out[SCN_NAME_MAX + 1]);

/* Process migration (scn_mig.c): the task statement, the migrate action's
 * words, `expect task`, a node's --crash-at step; the line of task
 * name's statement, or 0 if none is declared. */
int scn__st_task(struct scn__parser *p);
int scn__migrate_args(struct scn__parser *p, struct scn_action *a);
int scn__input_args(struct scn__parser *p, struct scn_action *a);
int scn__exp_task(struct scn__parser *p, struct scn_expect *e);
int scn__read_step(struct scn__parser *p, const struct scn__tok *t,
                   char out[SCN_STEP_MAX + 1]);
int scn__task_line(const struct scn *s, const char *name);

/* The name part of an instance ("kvs" of "kvs.2"), into out. */
void scn__base_name(const char *inst, char out[SCN_INST_MAX + 1]);

#endif
