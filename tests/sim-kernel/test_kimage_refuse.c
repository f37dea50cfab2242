/* What a kernel update does with a process, judged from its image
 * (sim-kernel/kimage_refuse.c): images packed here by hand, so every
 * transition of its state machine is checked under valgrind as well
 * (the end-to-end tests, integration-kupdate-keep, are real time). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kimage.pb-c.h"
#include "kimage_refuse.h"

/* A packed image of process NAME (pid 42, slot 7) whose cannot_carry
 * holds the n reasons why[]. */
static uint8_t *image(const char *name, const char **why, size_t n,
                      size_t *len) {
  Uksim__Kimage__Image img = UKSIM__KIMAGE__IMAGE__INIT;
  Uksim__Kimage__Process pr = UKSIM__KIMAGE__PROCESS__INIT;
  pr.slot = 7;
  pr.pid = 42;
  pr.name = (char *)name;
  img.proc = &pr;
  img.cannot_carry = (char **)why;
  img.n_cannot_carry = n;
  *len = uksim__kimage__image__get_packed_size(&img);
  uint8_t *b = malloc(*len ? *len : 1);
  uksim__kimage__image__pack(&img, b);
  return b;
}

static struct kimg_refusal judged(const char **why, size_t n) {
  size_t len;
  uint8_t *b = image("far", why, n, &len);
  struct kimg_refusal f;
  cr_assert_eq(kimg_judge(b, len, &f), 0);
  free(b);
  return f;
}

Test(kimage_refuse, an_image_with_nothing_it_cannot_carry_moves,
     .timeout = 10) {
  struct kimg_refusal f = judged(NULL, 0);
  cr_expect_eq(f.verdict, KIMG_MOVES);
  cr_expect_eq(f.slot, 7);
  cr_expect_eq(f.pid, 42);
  cr_expect_str_eq(f.name, "far");
  cr_expect_str_eq(f.why, "");
  char text[128];
  kimg_refusal_text(&f, text, sizeof text);
  cr_expect_str_eq(text, "far (pid 42) moves");
}

Test(kimage_refuse, a_server_restarts, .timeout = 10) {
  const char *why[] = {"server: a server process does not move"};
  struct kimg_refusal f = judged(why, 1);
  cr_expect_eq(f.verdict, KIMG_RESTARTS);
  cr_expect_str_eq(f.why, why[0]);
}

Test(kimage_refuse, other_state_is_refused_at_extract_by_its_name,
     .timeout = 10) {
  const char *why[] = {"server: a server process does not move",
                       "netlink: a file of an external 9P server"};
  struct kimg_refusal f = judged(why, 2);
  cr_expect_eq(f.verdict, KIMG_REFUSED_AT_EXTRACT, "not the server's");
  cr_expect_str_eq(f.why, why[1]);
  char text[KIMG_NAME_MAX + KIMG_WHY_MAX + 64];
  kimg_refusal_text(&f, text, sizeof text);
  cr_expect_str_eq(text, "far (pid 42) cannot move: netlink: a file of an "
                         "external 9P server");
}

Test(kimage_refuse, a_builders_refusal_is_named, .timeout = 10) {
  size_t len;
  uint8_t *b = image("hog", NULL, 0, &len);
  struct kimg_refusal f;
  cr_assert_eq(kimg_judge_build(b, len, -EEXIST, &f), 0);
  cr_expect_eq(f.verdict, KIMG_REFUSED_AT_BUILD);
  cr_expect(strstr(f.why, "another live entry") != NULL, "%s", f.why);
  cr_assert_eq(kimg_judge_build(b, len, -EINVAL, &f), 0);
  cr_expect(strstr(f.why, "out of the new kernel's table bounds"), "%s", f.why);
  cr_assert_eq(kimg_judge_build(b, len, -ENOMEM, &f), 0);
  cr_expect_str_eq(f.why, strerror(ENOMEM));
  cr_assert_eq(kimg_judge_build(b, len, 7, &f), 0);
  cr_expect_eq(f.verdict, KIMG_MOVES, "built in slot 7");
  free(b);
}

Test(kimage_refuse, the_extractors_refusal_stays_its_own_at_build,
     .timeout = 10) {
  const char *why[] = {"netlink: x"};
  size_t len;
  uint8_t *b = image("far", why, 1, &len);
  struct kimg_refusal f;
  cr_assert_eq(kimg_judge_build(b, len, -EXDEV, &f), 0);
  cr_expect_eq(f.verdict, KIMG_REFUSED_AT_EXTRACT);
  cr_expect_str_eq(f.why, "netlink: x");
  free(b);
}

Test(kimage_refuse, bytes_that_are_no_image_are_named, .timeout = 10) {
  struct kimg_refusal f;
  const uint8_t junk[] = {0xff, 0xff, 0xff};
  cr_expect_eq(kimg_judge(junk, sizeof junk, &f), -EBADMSG);
  cr_expect_eq(f.verdict, KIMG_UNREADABLE);
  cr_expect_eq(kimg_judge_build(junk, sizeof junk, -EEXIST, &f), -EBADMSG);
  char text[64];
  kimg_refusal_text(&f, text, sizeof text);
  cr_expect_str_eq(text, "an image that does not read");
  /* An image with no process is not one an update can judge. */
  Uksim__Kimage__Image img = UKSIM__KIMAGE__IMAGE__INIT;
  uint8_t b[16];
  size_t n = uksim__kimage__image__pack(&img, b);
  cr_expect_eq(kimg_judge(b, n, &f), -EBADMSG);
}

Test(kimage_refuse, long_names_and_reasons_are_cut_not_overrun, .timeout = 10) {
  char name[300], reason[600];
  memset(name, 'n', sizeof name - 1);
  name[sizeof name - 1] = '\0';
  memset(reason, 'r', sizeof reason - 1);
  reason[sizeof reason - 1] = '\0';
  const char *why[] = {reason};
  size_t len;
  uint8_t *b = image(name, why, 1, &len);
  struct kimg_refusal f;
  cr_assert_eq(kimg_judge(b, len, &f), 0);
  cr_expect_eq(strlen(f.name), KIMG_NAME_MAX - 1);
  cr_expect_eq(strlen(f.why), KIMG_WHY_MAX - 1);
  free(b);
}
