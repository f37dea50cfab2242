/* nsh's parser (apps/nsh/parse.c): words, quotes, ';', '|', redirections,
 * and the errors a person gets for a line that cannot run. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "parse.h"

static struct nsh_line line;
static char err[256];

static int parse(const char *s) {
  return nsh_parse(s, strlen(s), &line, err, sizeof err);
}

static void expect_words(const struct nsh_cmd *c, int n, const char **w) {
  cr_assert_eq(c->argc, n, "argc %d, want %d", c->argc, n);
  for (int i = 0; i < n; i++)
    cr_expect_str_eq(c->argv[i], w[i]);
  cr_expect_null(c->argv[n]);
}

static void expect_error(const char *s, const char *want) {
  cr_expect_eq(parse(s), -1, "'%s' parsed", s);
  cr_expect(strstr(err, want) != NULL, "'%s': error '%s', want '%s'", s, err,
            want);
  cr_expect_eq(line.ncmd, 0);
}

Test(nsh_parse, splits_words_on_blanks_and_tabs) {
  cr_assert_eq(parse("  ls\t-l   /dev  "), 0, "%s", err);
  cr_assert_eq(line.ncmd, 1);
  expect_words(&line.cmd[0], 3, (const char *[]){"ls", "-l", "/dev"});
  cr_expect_null(line.cmd[0].in);
  cr_expect_null(line.cmd[0].out);
  cr_expect_not(line.cmd[0].pipe);
}

Test(nsh_parse, quotes_keep_blanks_operators_and_hash) {
  cr_assert_eq(parse("bind '#c' /dev; echo 'a b;c|d>e' x'y z'w"), 0, "%s", err);
  cr_assert_eq(line.ncmd, 2);
  expect_words(&line.cmd[0], 3, (const char *[]){"bind", "#c", "/dev"});
  expect_words(&line.cmd[1], 3, (const char *[]){"echo", "a b;c|d>e", "xy zw"});
}

Test(nsh_parse, doubled_quote_is_a_quote_and_empty_quotes_a_word) {
  cr_assert_eq(parse("echo 'it''s' '' ''''"), 0, "%s", err);
  expect_words(&line.cmd[0], 4, (const char *[]){"echo", "it's", "", "'"});
}

Test(nsh_parse, semicolons_and_newlines_separate_commands) {
  cr_assert_eq(parse("pwd;cd /n\nls ;; ;\n"), 0, "%s", err);
  cr_assert_eq(line.ncmd, 3);
  expect_words(&line.cmd[0], 1, (const char *[]){"pwd"});
  expect_words(&line.cmd[1], 2, (const char *[]){"cd", "/n"});
  expect_words(&line.cmd[2], 1, (const char *[]){"ls"});
  for (int i = 0; i < 3; i++)
    cr_expect_not(line.cmd[i].pipe);
}

Test(nsh_parse, empty_and_blank_lines_have_no_commands) {
  cr_expect_eq(parse(""), 0);
  cr_expect_eq(line.ncmd, 0);
  cr_expect_eq(parse("   \t ; \n"), 0);
  cr_expect_eq(line.ncmd, 0);
  cr_expect_eq(parse("# only a comment"), 0);
  cr_expect_eq(line.ncmd, 0);
}

Test(nsh_parse, hash_at_a_word_start_is_a_comment_inside_a_word_is_not) {
  cr_assert_eq(parse("echo a#b # the rest; ls\nls"), 0, "%s", err);
  cr_assert_eq(line.ncmd, 2);
  expect_words(&line.cmd[0], 2, (const char *[]){"echo", "a#b"});
  expect_words(&line.cmd[1], 1, (const char *[]){"ls"});
}

Test(nsh_parse, pipes_link_commands) {
  cr_assert_eq(parse("cat /dev/pid|wc | wc -l; ls"), 0, "%s", err);
  cr_assert_eq(line.ncmd, 4);
  cr_expect(line.cmd[0].pipe);
  cr_expect(line.cmd[1].pipe);
  cr_expect_not(line.cmd[2].pipe);
  cr_expect_not(line.cmd[3].pipe);
  expect_words(&line.cmd[2], 2, (const char *[]){"wc", "-l"});
}

Test(nsh_parse, redirections_take_the_next_word) {
  cr_assert_eq(parse("echo hi >/env/x; echo more >> '/env/a b'; cat </env/x"),
               0, "%s", err);
  cr_assert_eq(line.ncmd, 3);
  expect_words(&line.cmd[0], 2, (const char *[]){"echo", "hi"});
  cr_expect_str_eq(line.cmd[0].out, "/env/x");
  cr_expect_not(line.cmd[0].append);
  cr_expect_str_eq(line.cmd[1].out, "/env/a b");
  cr_expect(line.cmd[1].append);
  expect_words(&line.cmd[2], 1, (const char *[]){"cat"});
  cr_expect_str_eq(line.cmd[2].in, "/env/x");
  cr_expect_null(line.cmd[2].out);
}

Test(nsh_parse, redirection_may_come_first_or_alone) {
  cr_assert_eq(parse("> /env/empty; < /dev/pid cat"), 0, "%s", err);
  cr_assert_eq(line.ncmd, 2);
  cr_expect_eq(line.cmd[0].argc, 0);
  cr_expect_str_eq(line.cmd[0].out, "/env/empty");
  expect_words(&line.cmd[1], 1, (const char *[]){"cat"});
  cr_expect_str_eq(line.cmd[1].in, "/dev/pid");
}

Test(nsh_parse, unterminated_quote_is_an_error) {
  expect_error("echo 'abc", "unterminated quote (opened at column 6)");
  expect_error("'", "unterminated quote");
  expect_error("echo 'it''s", "unterminated quote");
}

Test(nsh_parse, empty_command_beside_a_pipe_is_an_error) {
  expect_error("| wc", "empty command before '|'");
  expect_error("ls || wc", "empty command before '|'");
  expect_error("ls |", "empty command after '|'");
  expect_error("ls | ; wc", "empty command after '|'");
  expect_error("ls |\n", "empty command after '|'");
}

Test(nsh_parse, redirection_without_a_file_is_an_error) {
  expect_error("echo >", "missing file name after '>'");
  expect_error("echo >> ; ls", "missing file name after '>>'");
  expect_error("cat < | wc", "missing file name after '<'");
  expect_error("echo > > x", "missing file name after '>'");
  expect_error("echo >x >y", "two '>' redirections");
  expect_error("cat <x <y", "two '<' redirections");
}

Test(nsh_parse, nul_byte_is_an_error) {
  cr_expect_eq(nsh_parse("ls\0x", 4, &line, err, sizeof err), -1);
  cr_expect(strstr(err, "NUL byte at column 3"), "%s", err);
}

Test(nsh_parse, line_at_the_limit_parses_one_byte_over_does_not) {
  static char s[NSH_LINE_MAX + 2];
  memset(s, 'a', NSH_LINE_MAX);
  s[NSH_LINE_MAX] = '\0';
  cr_assert_eq(parse(s), 0, "%s", err);
  cr_expect_eq(strlen(line.cmd[0].argv[0]), NSH_LINE_MAX);
  /* Words one byte each: every byte's terminator fits too. */
  for (int i = 0; i < NSH_LINE_MAX; i++)
    s[i] = i % 2 ? ';' : 'a';
  cr_expect_eq(parse(s), -1); /* 2048 commands: over NSH_CMDS_MAX */
  cr_expect(strstr(err, "too many commands"), "%s", err);
  memset(s, 'a', NSH_LINE_MAX + 1);
  s[NSH_LINE_MAX + 1] = '\0';
  expect_error(s, "line too long (4097 bytes, limit 4096)");
}

Test(nsh_parse, words_and_commands_at_their_limits) {
  char s[NSH_LINE_MAX];
  size_t n = 0;
  for (int i = 0; i < NSH_WORDS_MAX; i++)
    n += (size_t)snprintf(s + n, sizeof s - n, "w%d ", i);
  cr_assert_eq(parse(s), 0, "%s", err);
  cr_expect_eq(line.cmd[0].argc, NSH_WORDS_MAX);
  snprintf(s + n, sizeof s - n, "one-more");
  expect_error(s, "too many words in a command (limit 64)");

  n = 0;
  for (int i = 0; i < NSH_CMDS_MAX; i++)
    n += (size_t)snprintf(s + n, sizeof s - n, "c%d;", i);
  cr_assert_eq(parse(s), 0, "%s", err);
  cr_expect_eq(line.ncmd, NSH_CMDS_MAX);
  snprintf(s + n, sizeof s - n, "one-more");
  expect_error(s, "too many commands in a line (limit 32)");
}

Test(nsh_parse, words_are_copies_of_the_line) {
  char s[] = "echo abc";
  cr_assert_eq(parse(s), 0);
  memset(s, 'x', sizeof s - 1);
  cr_expect_str_eq(line.cmd[0].argv[1], "abc");
}
