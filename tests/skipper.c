/*
 * skipper.c: Criterion tests that pass, skip and fail, linked with
 * criterion_main.c like every test binary; tests/test_skip.sh runs them
 * with --filter and checks the exit statuses meson sees.
 */
#include <criterion/criterion.h>

Test(skipper, passes) {
  cr_assert(1);
}

Test(skipper, skips) {
  cr_skip_test("skipped on purpose");
}

Test(skipper, fails) {
  cr_assert_fail("failed on purpose");
}
