/* Unit tests for the strict number parser (lib/num.c): whole strings only,
 * no sign on unsigned numbers, bounds and 64-bit overflow as -ERANGE, the
 * NUM_SIZE suffixes, and the option helper's message. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "uksim/num.h"

#define NONE 0xdeadbeefull /* what *out holds when a parse must not set it */

/* num_parse_u64 over the full range, without flags. */
static int u64(const char *s, uint64_t *v) {
  *v = NONE;
  return num_parse_u64(s, 0, UINT64_MAX, 0, v);
}

Test(num, u64_reads_whole_decimals, .timeout = 10) {
  uint64_t v;
  cr_assert_eq(u64("0", &v), 0);
  cr_assert_eq(v, 0);
  cr_assert_eq(u64("5", &v), 0);
  cr_assert_eq(v, 5);
  cr_assert_eq(u64("007", &v), 0, "leading zeros are decimal");
  cr_assert_eq(v, 7);
  cr_assert_eq(u64("18446744073709551615", &v), 0);
  cr_assert_eq(v, UINT64_MAX);
}

Test(num, u64_refuses_trailing_junk, .timeout = 10) {
  const char *bad[] = {"5x", "5 ", " 5", "5.0", "0x10", "5k", "1e3", "5\n"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    uint64_t v;
    cr_assert_eq(u64(bad[i], &v), -EINVAL, "'%s'", bad[i]);
    cr_assert_eq(v, NONE, "'%s' must leave *out alone", bad[i]);
  }
}

Test(num, u64_refuses_empty_and_signs, .timeout = 10) {
  uint64_t v;
  cr_assert_eq(u64("", &v), -EINVAL);
  cr_assert_eq(u64("-1", &v), -EINVAL, "strtoull reads -1 as 2^64-1");
  cr_assert_eq(u64("-0", &v), -EINVAL);
  cr_assert_eq(u64("+5", &v), -EINVAL);
  cr_assert_eq(u64("-", &v), -EINVAL);
  cr_assert_eq(v, NONE);
}

Test(num, u64_overflow_is_erange, .timeout = 10) {
  uint64_t v;
  cr_assert_eq(u64("18446744073709551616", &v), -ERANGE);
  cr_assert_eq(u64("99999999999999999999999999", &v), -ERANGE);
  cr_assert_eq(v, NONE);
  /* Junk after a too-large number is still junk. */
  cr_assert_eq(u64("99999999999999999999999999x", &v), -EINVAL);
}

Test(num, u64_bounds_are_inclusive, .timeout = 10) {
  uint64_t v = NONE;
  cr_assert_eq(num_parse_u64("1", 1, 10, 0, &v), 0);
  cr_assert_eq(v, 1);
  cr_assert_eq(num_parse_u64("10", 1, 10, 0, &v), 0);
  cr_assert_eq(v, 10);
  v = NONE;
  cr_assert_eq(num_parse_u64("0", 1, 10, 0, &v), -ERANGE);
  cr_assert_eq(num_parse_u64("11", 1, 10, 0, &v), -ERANGE);
  cr_assert_eq(v, NONE);
}

Test(num, size_suffixes_multiply_by_powers_of_1024, .timeout = 10) {
  uint64_t v;
  cr_assert_eq(num_parse_u64("4K", 0, UINT64_MAX, NUM_SIZE, &v), 0);
  cr_assert_eq(v, 4096);
  cr_assert_eq(num_parse_u64("4k", 0, UINT64_MAX, NUM_SIZE, &v), 0);
  cr_assert_eq(v, 4096);
  cr_assert_eq(num_parse_u64("3M", 0, UINT64_MAX, NUM_SIZE, &v), 0);
  cr_assert_eq(v, 3ull << 20);
  cr_assert_eq(num_parse_u64("2G", 0, UINT64_MAX, NUM_SIZE, &v), 0);
  cr_assert_eq(v, 2ull << 30);
  cr_assert_eq(num_parse_u64("64", 0, UINT64_MAX, NUM_SIZE, &v), 0);
  cr_assert_eq(v, 64);
}

Test(num, size_suffix_checked_after_multiplying, .timeout = 10) {
  uint64_t v = NONE;
  cr_assert_eq(num_parse_u64("1G", 0, 1ull << 29, NUM_SIZE, &v), -ERANGE);
  cr_assert_eq(num_parse_u64("1K", 2048, 4096, NUM_SIZE, &v), -ERANGE);
  cr_assert_eq(num_parse_u64("17179869184G", 0, UINT64_MAX, NUM_SIZE, &v),
               -ERANGE, "2^34 G overflows 64 bits");
  cr_assert_eq(v, NONE);
}

Test(num, size_refuses_other_suffixes, .timeout = 10) {
  const char *bad[] = {"4KB", "4T", "K", "4 K", "4x", "-4K", ""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    uint64_t v;
    cr_assert_eq(num_parse_u64(bad[i], 0, UINT64_MAX, NUM_SIZE, &v), -EINVAL,
                 "'%s'", bad[i]);
  }
}

Test(num, i64_reads_signed_decimals, .timeout = 10) {
  int64_t v;
  cr_assert_eq(num_parse_i64("-1", INT64_MIN, INT64_MAX, &v), 0);
  cr_assert_eq(v, -1);
  cr_assert_eq(num_parse_i64("-0", INT64_MIN, INT64_MAX, &v), 0);
  cr_assert_eq(v, 0);
  cr_assert_eq(num_parse_i64("9223372036854775807", INT64_MIN, INT64_MAX, &v),
               0);
  cr_assert_eq(v, INT64_MAX);
  cr_assert_eq(num_parse_i64("-9223372036854775808", INT64_MIN, INT64_MAX, &v),
               0);
  cr_assert_eq(v, INT64_MIN);
}

Test(num, i64_refuses_junk_and_overflow, .timeout = 10) {
  int64_t v = 7;
  cr_assert_eq(num_parse_i64("", INT64_MIN, INT64_MAX, &v), -EINVAL);
  cr_assert_eq(num_parse_i64("-", INT64_MIN, INT64_MAX, &v), -EINVAL);
  cr_assert_eq(num_parse_i64("+1", INT64_MIN, INT64_MAX, &v), -EINVAL);
  cr_assert_eq(num_parse_i64("--1", INT64_MIN, INT64_MAX, &v), -EINVAL);
  cr_assert_eq(num_parse_i64("-5x", INT64_MIN, INT64_MAX, &v), -EINVAL);
  cr_assert_eq(num_parse_i64("9223372036854775808", INT64_MIN, INT64_MAX, &v),
               -ERANGE);
  cr_assert_eq(num_parse_i64("-9223372036854775809", INT64_MIN, INT64_MAX, &v),
               -ERANGE);
  cr_assert_eq(num_parse_i64("-2", -1, 1, &v), -ERANGE);
  cr_assert_eq(num_parse_i64("2", -1, 1, &v), -ERANGE);
  cr_assert_eq(v, 7);
}

Test(num, double_reads_fractions, .timeout = 10) {
  double v;
  cr_assert_eq(num_parse_double("0.5", 0, 10, &v), 0);
  cr_assert_float_eq(v, 0.5, 1e-12);
  cr_assert_eq(num_parse_double(".5", 0, 10, &v), 0);
  cr_assert_eq(num_parse_double("5.", 0, 10, &v), 0);
  cr_assert_float_eq(v, 5.0, 1e-12);
  cr_assert_eq(num_parse_double("1e3", 0, 1e12, &v), 0);
  cr_assert_float_eq(v, 1000.0, 1e-9);
  cr_assert_eq(num_parse_double("-2.5E-1", -1, 0, &v), 0);
  cr_assert_float_eq(v, -0.25, 1e-12);
}

Test(num, double_refuses_what_strtod_would_take, .timeout = 10) {
  const char *bad[] = {"",    "x",   "5x",    " 1",      "1 ", "inf",
                       "nan", "0x1", "1e",    "e3",      ".",  "-",
                       "+1",  "1e+", "1.2.3", "INFINITY"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    double v = 7;
    cr_assert_eq(num_parse_double(bad[i], -1e300, 1e300, &v), -EINVAL, "'%s'",
                 bad[i]);
    cr_assert_float_eq(v, 7, 0);
  }
}

Test(num, double_bounds_and_overflow, .timeout = 10) {
  double v = 7;
  cr_assert_eq(num_parse_double("86400.5", 0, 86400, &v), -ERANGE);
  cr_assert_eq(num_parse_double("-0.1", 0, 1, &v), -ERANGE);
  cr_assert_eq(num_parse_double("1e999", 0, 1e300, &v), -ERANGE);
  cr_assert_float_eq(v, 7, 0);
  cr_assert_eq(num_parse_double("86400", 0, 86400, &v), 0);
}

/* stderr goes to a temporary file between capture_start and capture_end,
 * which returns what was written there. */
static int saved_stderr = -1;
static FILE *captured;

static void capture_start(void) {
  fflush(stderr);
  saved_stderr = dup(STDERR_FILENO);
  captured = tmpfile();
  cr_assert(saved_stderr >= 0 && captured != NULL);
  dup2(fileno(captured), STDERR_FILENO);
}

static void capture_end(char *buf, size_t size) {
  fflush(stderr);
  dup2(saved_stderr, STDERR_FILENO);
  close(saved_stderr);
  rewind(captured);
  size_t n = fread(buf, 1, size - 1, captured);
  buf[n] = '\0';
  fclose(captured);
}

/* What num_opt_u64 writes on stderr for s, into buf. */
static int opt_message(const char *s, unsigned flags, char *buf, size_t size) {
  uint64_t v = NONE;
  capture_start();
  int r = num_opt_u64("ipcload", "--blocks", s, 1, 1000000, flags, &v);
  capture_end(buf, size);
  if (r < 0)
    cr_assert_eq(v, NONE);
  return r;
}

Test(num, opt_names_program_option_value_and_range, .timeout = 10) {
  char buf[256];
  cr_assert_eq(opt_message("5x", 0, buf, sizeof buf), -EINVAL);
  cr_assert_str_eq(buf,
                   "ipcload: --blocks: '5x' is not a number in 1..1000000\n");
  cr_assert_eq(opt_message("0", 0, buf, sizeof buf), -ERANGE);
  cr_assert_str_eq(buf,
                   "ipcload: --blocks: '0' is not a number in 1..1000000\n");
  cr_assert_eq(opt_message("1M", NUM_SIZE, buf, sizeof buf), -ERANGE);
  cr_assert(strstr(buf, "'1M' is not a size in 1..1000000 bytes") != NULL, "%s",
            buf);
  cr_assert_eq(opt_message("5", 0, buf, sizeof buf), 0);
  cr_assert_str_eq(buf, "", "a good value is not reported");
}

Test(num, opt_leaves_out_missing_parts, .timeout = 10) {
  char buf[256];
  int64_t i;
  double d;
  capture_start();
  int ri = num_opt_i64(NULL, "UKSIM_X", "x", -1, 1, &i);
  int rd = num_opt_double("kvs", NULL, "y", 0, 0.5, &d);
  capture_end(buf, sizeof buf);
  cr_assert_eq(ri, -EINVAL);
  cr_assert_eq(rd, -EINVAL);
  cr_assert_str_eq(buf, "UKSIM_X: 'x' is not a number in -1..1\n"
                        "kvs: 'y' is not a number in 0..0.5\n");
}
