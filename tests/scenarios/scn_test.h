/* What the scenario language's unit tests share (test_scn.c,
 * test_scn_migrate.c): parsing a text that must be accepted, and one that
 * must be refused with exactly a given "file:line:col: message". */
#ifndef UKSIM_TEST_SCN_TEST_H
#define UKSIM_TEST_SCN_TEST_H

#include <criterion/criterion.h>
#include <string.h>

#include "scn.h"

/* text parsed as "t.scn": the tree (the caller frees it). */
static inline struct scn *parse(const char *text) {
  struct scn_err err = {0};
  struct scn *s = scn_parse("t.scn", text, strlen(text), &err);
  cr_assert_not_null(s, "refused: %s", err.text);
  return s;
}

/* text must be refused with exactly the message want. */
static inline void refused(const char *text, const char *want) {
  struct scn_err err = {0};
  struct scn *s = scn_parse("t.scn", text, strlen(text), &err);
  cr_assert_null(s, "accepted: %s", text);
  cr_assert_str_eq(err.text, want, "for: %s", text);
}

#endif
