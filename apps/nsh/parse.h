/* nsh's parser: one line of the namespace shell into commands.
 *
 * The syntax is a small part of Plan 9's rc(1):
 *
 *   line     := pipeline { ';' pipeline } [ ';' ]       (newline acts as ';')
 *   pipeline := command { '|' command }
 *   command  := { word | '<' word | '>' word | '>>' word }
 *   word     := a run of characters other than blanks and ; | < > # ',
 *               with '...' quoted parts: inside quotes every character is
 *               itself and '' is one quote, as in rc
 *
 * '#' starts a comment at the start of a word, as in rc, so a servant is
 * written quoted: bind '#c' /dev.  An empty pipeline between ';' is allowed
 * (blank lines, a trailing ';'), an empty command beside '|' is not.  There
 * are no variables, globs or backquotes: the words are what the builtins
 * see.
 *
 * The result holds copies of the words in its own buffer, so the line may
 * be freed at once.  Limits (README "Limits"): NSH_LINE_MAX bytes a line,
 * NSH_WORDS_MAX words a command, NSH_CMDS_MAX commands a line.
 */
#ifndef UKSIM_NSH_PARSE_H
#define UKSIM_NSH_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#define NSH_LINE_MAX 4096
#define NSH_WORDS_MAX 64
#define NSH_CMDS_MAX 32

struct nsh_cmd {
  int argc;
  char *argv[NSH_WORDS_MAX + 1]; /* NULL-terminated */
  char *in;                      /* '<' file, or NULL */
  char *out;                     /* '>' or '>>' file, or NULL */
  bool append;                   /* out was given by '>>' */
  bool pipe;                     /* '|': its output is the next's input */
};

struct nsh_line {
  int ncmd;
  struct nsh_cmd cmd[NSH_CMDS_MAX + 1]; /* + the parser's spare */
  /* The words, each NUL-terminated; a word is never longer than the line,
   * and quotes and blanks it loses pay for the terminators. */
  char buf[NSH_LINE_MAX + 1];
};

/* Parses the n bytes of s into *l.  0, or -1 with a message for a person
 * in err ("unterminated quote", "empty command before '|'", ...); *l is
 * then empty. */
int nsh_parse(const char *s, size_t n, struct nsh_line *l, char *err,
              size_t errlen);

#endif /* UKSIM_NSH_PARSE_H */
