#!/bin/sh
# uksim explore end to end:
#   1. 200 seeds of scenarios/fault-anywhere.scn (faults at seeded points
#      around a seeded replacement) all pass; the JUnit report has one
#      passing test case per seed;
#   2. a scenario that fails for some seeds: explore stops at the first
#      failing seed (every seed below it passed), prints the command that
#      reproduces it, and that command fails the same way;
#   3. a bad scenario is refused with exit status 2 before any run;
#   4. a run longer than --timeout fails and leaves no process behind.
# Skipped under valgrind (exit 77): every run boots a machine.
#   explore.sh UKSIM SCENARIO_DIR
set -u
uksim=$1
dir=$2
. "$(dirname "$0")/../skip.sh"
[ "${UKSIM_UNDER_VALGRIND:-0}" = 1 ] && skip "under valgrind"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "explore.sh: FAIL: $*"; exit 1; }

# 1
"$uksim" explore "$dir/fault-anywhere.scn" --seeds 200 --junit "$tmp/ok.xml" \
  >"$tmp/ok.out" 2>&1 || { cat "$tmp/ok.out"; fail "fault-anywhere failed"; }
cat "$tmp/ok.out"
n=$(grep -c '<testcase ' "$tmp/ok.xml")
[ "$n" = 200 ] || fail "the report has $n test cases, not 200"
grep -q '<failure' "$tmp/ok.xml" && fail "the report has failures"
grep -q 'tests="200" failures="0"' "$tmp/ok.xml" || fail "bad report header"

# 2: a crash at request 1..6000 of 650 fails 'errors == 0' about one time in
# ten.
cat >"$tmp/half.scn" <<'SCN'
server kvs --restart always
app ap1 --count 300 --keys 25
app ap2 --count 300 --keys 25
on event receive kvs 1..6000: crash kvs
expect exactly-one-answer
expect errors == 0
SCN
"$uksim" explore "$tmp/half.scn" --seeds 100 --junit "$tmp/half.xml" \
  >"$tmp/half.out" 2>&1
st=$?
[ "$st" = 1 ] || { cat "$tmp/half.out"; fail "exit status $st, not 1"; }
cmd=$(grep '^reproduce: uksim run' "$tmp/half.out" | tail -1 | cut -d' ' -f2-)
[ -n "$cmd" ] || { cat "$tmp/half.out"; fail "no reproduce command"; }
seed=${cmd##* }
echo "explore.sh: first failing seed $seed: $cmd"
first=$(grep -o 'name="seed [0-9]*"' "$tmp/half.xml" | head -1)
[ "$first" = 'name="seed 1"' ] || fail "the report does not start at seed 1"
# Every seed below the failing one ran and passed.
i=1
while [ "$i" -lt "$seed" ]; do
  grep -q "name=\"seed $i\" time=\"[0-9.]*\"/>" "$tmp/half.xml" ||
    fail "seed $i below the first failing seed $seed did not pass"
  i=$((i + 1))
done
grep -q "name=\"seed $seed\".*>\$" "$tmp/half.xml" ||
  fail "seed $seed is not a failure in the report"
# shellcheck disable=SC2086
set -- $cmd
shift # "uksim"
"$uksim" "$@" >"$tmp/again.out" 2>&1 &&
  fail "the reproduce command passed: $cmd"
grep -q "FAIL errors == 0" "$tmp/again.out" ||
  fail "the reproduce command failed differently"

# 3
printf 'server kvs\nat 9ms..1ms crash kvs\n' >"$tmp/bad.scn"
"$uksim" explore "$tmp/bad.scn" --seeds 5 >"$tmp/bad.out" 2>&1
st=$?
[ "$st" = 2 ] || fail "a bad scenario: exit status $st, not 2"
grep -q "bad.scn:2:4: range" "$tmp/bad.out" || fail "no file:line:col message"
# 4: a run longer than --timeout is killed and fails, and its machine goes
# with it (no process of it is left).
printf 'machine --grace 600s\nserver kvs\napp ap1 --count 100000\nat 1ms hang ap1\n' \
  >"$tmp/hang.scn"
"$uksim" explore "$tmp/hang.scn" --seeds 1 --timeout 2 >"$tmp/hang.out" 2>&1
st=$?
[ "$st" = 1 ] || { cat "$tmp/hang.out"; fail "a timed-out run: exit status $st"; }
grep -q "seed 1 timed out (--timeout 2 s)" "$tmp/hang.out" ||
  { cat "$tmp/hang.out"; fail "no timeout message"; }
sleep 1
left=""
for f in /proc/[0-9]*/cmdline; do
  c=$(tr '\0' ' ' <"$f" 2>/dev/null) || continue
  case $c in *"$tmp/hang.scn"*) left="$left
  $c" ;; esac
done
[ -z "$left" ] || fail "processes of the timed-out run are left:$left"
echo "explore.sh: ok"
