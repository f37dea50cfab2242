/* The scenario language's kupdate action and its method (issue 15):
 * "kupdate" and "kupdate image" are method A, "kupdate replay" method B
 * (sim-kernel/kreplay.c); another word is refused where it stands. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "scn.h"

TestSuite(scn_kupdate, .timeout = 30);

#define MACHINE "machine --backup 1 --backup-version 2\nserver kvs\n"

/* The one action of a scenario whose last line is `line`. */
static bool replay_of(const char *line) {
  char text[256];
  snprintf(text, sizeof text, MACHINE "%s\n", line);
  struct scn_err err = {0};
  struct scn *s = scn_parse("t.scn", text, strlen(text), &err);
  cr_assert_not_null(s, "refused: %s: %s", line, err.text);
  cr_assert_eq(s->nactions, 1);
  cr_assert_eq(s->actions[0].kind, SCN_ACT_KUPDATE);
  bool r = s->actions[0].kreplay;
  scn_free(s);
  return r;
}

Test(scn_kupdate, no_method_and_image_are_method_a) {
  cr_assert_not(replay_of("at 1s kupdate"));
  cr_assert_not(replay_of("on request 4 to kvs: kupdate image"));
}

Test(scn_kupdate, replay_is_method_b) {
  cr_assert(replay_of("at 1s kupdate replay"));
  cr_assert(replay_of("on request 4 to kvs: kupdate replay"));
}

Test(scn_kupdate, another_method_is_refused) {
  const char *text = MACHINE "at 1s kupdate twice\n";
  struct scn_err err = {0};
  struct scn *s = scn_parse("t.scn", text, strlen(text), &err);
  cr_assert_null(s);
  cr_assert(strstr(err.text, "kupdate method") != NULL, "%s", err.text);
  cr_assert(strstr(err.text, "replay") != NULL, "%s", err.text);
  text = MACHINE "at 1s kupdate replay now\n";
  cr_assert_null(scn_parse("t.scn", text, strlen(text), &err));
}
