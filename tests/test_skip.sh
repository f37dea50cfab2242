#!/bin/sh
# A test that cannot run is meson's SKIP, and under CI=true a failure
# unless tests/ci-skips.txt names it: tests/criterion_main.c for Criterion
# binaries (run on tests/skipper.c) and tests/skip.sh for scripts (run on a
# script written here), each against lists written here.
#   test_skip.sh SKIPPER
set -u
. "$(dirname "$0")/skip.sh"
[ "${UKSIM_UNDER_VALGRIND:-0}" = 1 ] && skip "under valgrind"
skipper=$1
dir=$(mktemp -d "${TMPDIR:-/tmp}/uksim-skip.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/tests" "$dir/tests/x"
fails=0

# expect STATUS TEXT CMD...: CMD exits with STATUS and, unless TEXT is
# empty, prints TEXT (a fixed string).
expect() {
  want=$1 text=$2
  shift 2
  "$@" >"$dir/out" 2>&1
  got=$?
  if [ "$got" != "$want" ] ||
    { [ -n "$text" ] && ! grep -qF -- "$text" "$dir/out"; }; then
    echo "FAIL: $* exited $got (want $want${text:+, printing \"$text\"}):"
    cat "$dir/out"
    fails=$((fails + 1))
  fi
}

# list LINE...: the ci-skips.txt the runs below read.
list() {
  printf '%s\n' "# a comment" "$@" >"$dir/tests/ci-skips.txt"
}

export UKSIM_SOURCE_ROOT="$dir"
list
expect 0 "" env -u CI "$skipper" --filter 'skipper/passes'
expect 77 "skipped skipper/skips: skipped on purpose" \
  env -u CI "$skipper" --filter 'skipper/skips'
expect 77 "" env CI=false "$skipper" --filter 'skipper/skips'
expect 1 "" env -u CI "$skipper" --filter 'skipper/fails'
expect 1 "" env -u CI "$skipper" --filter 'skipper/*'
expect 1 "skipper/skips is not in tests/ci-skips.txt" \
  env CI=true "$skipper" --filter 'skipper/skips'
list "valgrind skipper/skips: another setup" "default skipper/skips:"
expect 1 "" env CI=true "$skipper" --filter 'skipper/skips'
list "default skipper/skips: it cannot run here"
expect 77 "" env CI=true "$skipper" --filter 'skipper/skips'
expect 1 "" env CI=true "$skipper" --filter 'skipper/*'
expect 1 "" env CI=true UKSIM_UNDER_VALGRIND=1 "$skipper" \
  --filter 'skipper/skips'

printf '%s\n' ". '$(cd "$(dirname "$0")" && pwd)/skip.sh'" 'skip "no tool"' \
  >"$dir/tests/x/skips.sh"
script="$dir/tests/x/skips.sh"
list
expect 77 "x/skips.sh: skipped: no tool" env -u CI sh "$script"
expect 1 "x/skips.sh: not in tests/ci-skips.txt" env CI=true sh "$script"
list "default x/skips.sh:"
expect 1 "" env CI=true sh "$script"
list "default x/skips.sh: it cannot run here"
expect 77 "" env CI=true sh "$script"
expect 1 "" env CI=true UKSIM_UNDER_VALGRIND=1 sh "$script"

[ "$fails" = 0 ] || exit 1
echo "test_skip.sh: all passed"
