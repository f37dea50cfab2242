#!/bin/sh
# A task that comes back to its origin in a scenario (issue 16,
# sim-kernel/migcons.h HOME): scenarios/migrate-return.scn, local -> b ->
# local, holds all its expectations (the census finds the task on local,
# the line typed after its return is echoed there), the same seed gives
# the same trace twice, and a copy expecting it on b fails.  Nothing is
# left in TMPDIR.
# Migration is real time (the tasks and their servers run outside the
# machine's lock-step): under valgrind the script skips.
# Usage: migrate_return.sh UKSIM SCENARIO_DIR
set -u
. "$(dirname "$0")/../skip.sh"
[ "${UKSIM_UNDER_VALGRIND:-0}" = 1 ] && skip "migration is real time"
uksim=$1 src=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/tmp"
export TMPDIR="$dir/tmp"
fail=0
scn=$src/migrate-return.scn

# run NAME FILE: runs FILE with seed 7; its trace's hash on stdout ("" when
# the run failed, its output on stderr).
run() {
  if ! "$uksim" run --quiet --seed 7 --jsonl "$dir/$1.jsonl" "$2" \
      >"$dir/$1.out" 2>&1; then
    echo "FAIL $1:" >&2
    cat "$dir/$1.out" >&2
    return
  fi
  "$uksim" trace --hash "$dir/$1.jsonl" 2>/dev/null | cut -d" " -f1
}

h1=$(run a "$scn")
h2=$(run b "$scn")
if [ -z "$h1" ] || [ "$h1" != "$h2" ]; then
  echo "FAIL seed 7 twice: a run failed or the traces differ ($h1 / $h2)"
  fail=1
else
  echo "ok   back on local, input after the return echoed; seed 7 twice: $h1"
fi

sed 's/^expect task mt on local$/expect task mt on b/' "$scn" >"$dir/on_b.scn"
if "$uksim" run --quiet --seed 7 "$dir/on_b.scn" >"$dir/on_b.out" 2>&1; then
  echo "FAIL a copy expecting the task on b holds"
  fail=1
elif ! grep -q 'FAIL task mt on b' "$dir/on_b.out"; then
  echo "FAIL the copy expecting it on b failed without its verdict:"
  cat "$dir/on_b.out"
  fail=1
else
  echo "ok   a copy expecting it on b fails: $(grep 'FAIL task mt on b' "$dir/on_b.out")"
fi

left=$(ls -A "$dir/tmp")
[ -z "$left" ] || { echo "FAIL left in TMPDIR: $left"; fail=1; }
exit $fail
