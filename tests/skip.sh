# Sourced by the test scripts (. "$(dirname "$0")/../skip.sh"): skip WHY
# ends a test that cannot run as meson's SKIP, exit 77.  With CI=true a
# skip fails (exit 1) unless tests/ci-skips.txt under UKSIM_SOURCE_ROOT
# has the line "SETUP SCRIPT: why": SETUP is "valgrind" under meson's
# valgrind setup (UKSIM_UNDER_VALGRIND=1) and "default" otherwise, SCRIPT
# the script's path under tests/ (scenarios/explore.sh).
# tests/criterion_main.c does the same for Criterion tests.
skip() {
  skip_setup=default
  [ "${UKSIM_UNDER_VALGRIND:-0}" = 1 ] && skip_setup=valgrind
  skip_name=${0##*/tests/}
  echo "$skip_name: skipped: $1"
  [ "${CI:-}" = true ] || exit 77
  awk -v s="$skip_setup" -v n="$skip_name:" \
    '$1 == s && $2 == n && NF > 2 { found = 1 } END { exit !found }' \
    "${UKSIM_SOURCE_ROOT:-.}/tests/ci-skips.txt" && exit 77
  echo "$skip_name: not in tests/ci-skips.txt" \
    "(as \"$skip_setup $skip_name: why\"), and under CI=true a skip" \
    "not listed fails"
  exit 1
}
