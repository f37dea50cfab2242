/* Strict number parsing for options, environment variables and fault
 * plans: uksim's one number parser.
 *
 * A number is the whole string and nothing else.  "5x", "", " 5", "5 ",
 * "+5" and "0x10" are not numbers; "007" is seven (never octal).  An
 * unsigned number has no sign: "-1" is not one, rather than being read as
 * 2^64 - 1 as strtoull() does.  A value outside the caller's MIN..MAX,
 * or too large for 64 bits, is out of range.  atol() and strtoull()
 * without an end check read "--blocks 5x" as 5; these refuse it.
 *
 * Each function returns 0 and sets *out, or returns -EINVAL (not a number
 * of that kind) or -ERANGE (a number outside min..max) and leaves *out as
 * it was.  The num_opt_* wrappers also say so on stderr, for a program's
 * option parser, which then exits with its usage status (2):
 *
 *   uint64_t blocks;
 *   if (num_opt_u64("ipcload", "-b", optarg, 1, 1000000, 0, &blocks) < 0)
 *     return 2;
 *
 * prints "ipcload: -b: '5x' is not a number in 1..1000000" for "5x".
 *
 * Linked by every library and program through base_dep (lib/meson.build);
 * libuksim carries it for application processes and servers.
 */
#ifndef UKSIM_NUM_H
#define UKSIM_NUM_H

#include <stdint.h>

/* Flags for num_parse_u64 and num_opt_u64. */
enum {
  /* A size: one K, M or G suffix (either case) multiplies by 1024,
   * 1024^2 or 1024^3 ("4K" is 4096).  min and max are in bytes. */
  NUM_SIZE = 1u << 0,
};

/* An unsigned decimal in s, in [min, max] (after any NUM_SIZE suffix):
 * one or more digits, then with NUM_SIZE an optional suffix, then the
 * end.  0, -EINVAL or -ERANGE. */
int num_parse_u64(const char *s, uint64_t min, uint64_t max, unsigned flags,
                  uint64_t *out);

/* A signed decimal in s, in [min, max]: an optional '-', one or more
 * digits, the end.  0, -EINVAL or -ERANGE. */
int num_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* A decimal fraction in s, in [min, max]: an optional '-', digits with
 * an optional '.' (at least one digit), an optional exponent ("e-3"), the
 * end.  "inf", "nan", hexadecimal and a value that overflows a double
 * are refused: -EINVAL for the first three, -ERANGE for the last.  For
 * options such as seconds that take fractions ("0.5"). */
int num_parse_double(const char *s, double min, double max, double *out);

/* num_parse_u64, saying what was wrong on stderr when it fails:
 * "PROG: OPT: 'S' is not a number in MIN..MAX" (with NUM_SIZE: "... is
 * not a size in MIN..MAX bytes (K, M or G: 1024, 1024^2, 1024^3)").
 * opt is the option as the user wrote it ("--blocks", "-n"), or an
 * environment variable's name.  prog or opt may be NULL: that part of the
 * message is left out.  Returns what num_parse_u64 did. */
int num_opt_u64(const char *prog, const char *opt, const char *s, uint64_t min,
                uint64_t max, unsigned flags, uint64_t *out);

/* num_parse_i64 with num_opt_u64's message. */
int num_opt_i64(const char *prog, const char *opt, const char *s, int64_t min,
                int64_t max, int64_t *out);

/* num_parse_double with num_opt_u64's message (bounds printed by %.15g). */
int num_opt_double(const char *prog, const char *opt, const char *s, double min,
                   double max, double *out);

#endif /* UKSIM_NUM_H */
