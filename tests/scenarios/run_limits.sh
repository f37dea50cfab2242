#!/bin/sh
# uksim run and explore do not pass a run that could not run what it
# declares (issue 11): a scenario beyond the kernel's tables or beyond the
# time limit is refused before anything starts (exit 2, file:line:col); a
# declared server or app that cannot start fails the run (exit 1, naming
# it and why); an out-of-range --seed is bad usage naming the option; and
# with --json every line on stdout is JSON (the programs' own lines go to
# stderr).  Usage: run_limits.sh UKSIM SCENARIO_DIR
set -u
fail() { echo "FAIL: $*" >&2; exit 1; }
# Under valgrind the kernel and every server would run under it, for
# minutes; the parser's limits are checked by test_scn there.
. "$(dirname "$0")/../skip.sh"
[ "${UKSIM_UNDER_VALGRIND:-0}" = 1 ] && skip "under valgrind"
uksim=$1 src=$2
dir=$(mktemp -d "${TMPDIR:-/tmp}/uksim-run-limits.XXXXXX") ||
  fail "no temporary directory"
trap 'rm -rf "$dir"' EXIT

# expect RC MESSAGE CMD...: CMD exits with RC and prints MESSAGE (a fixed
# string) on stdout or stderr.
expect() {
  want=$1 msg=$2
  shift 2
  "$@" >"$dir/out" 2>&1
  rc=$?
  [ $rc -eq "$want" ] || fail "$*: exit $rc, not $want: $(cat "$dir/out")"
  grep -qF -- "$msg" "$dir/out" || fail "$*: no '$msg' in: $(cat "$dir/out")"
}

# 40 servers: the kernel has 32 services.  uksim explore parses first too.
i=1
while [ $i -le 40 ]; do echo "server s$i --binary kvs"; i=$((i + 1)); done \
  >"$dir/servers.scn"
printf 'app a --service s1 --count 5\nexpect all-answered\n' >>"$dir/servers.scn"
expect 2 "servers.scn:33:1: more than 32 servers" \
  "$uksim" run --quiet "$dir/servers.scn"
expect 2 "servers.scn:33:1: more than 32 servers" \
  "$uksim" explore --quiet --seeds 2 "$dir/servers.scn"

# 70 apps: more processes than a run's trace can name.
{ echo "server kvs"; i=1
  while [ $i -le 70 ]; do echo "app a$i --count 2"; i=$((i + 1)); done; } \
  >"$dir/apps.scn"
expect 2 "apps.scn:64:1: 64 processes in one run, more than 63" \
  "$uksim" run --quiet "$dir/apps.scn"

# Times near 2^64 ns.
printf 'server kvs\nat 0ns..18446744073709551615ns crash kvs\n' >"$dir/t1.scn"
expect 2 "t1.scn:2:9: time '18446744073709551615ns' is beyond the limit" \
  "$uksim" run --quiet "$dir/t1.scn"
printf 'server kvs\nat 18446744073709551615ns crash kvs\n' >"$dir/t2.scn"
expect 2 "t2.scn:2:4: time '18446744073709551615ns' is beyond the limit" \
  "$uksim" run --quiet "$dir/t2.scn"

# Strict numbers on the command line.
expect 2 "uksim run: --seed: '18446744073709551616' is not a number in 0..18446744073709551615" \
  "$uksim" run --quiet --seed 18446744073709551616 "$src/tour.scn"
expect 2 "uksim run: --seed: '12x' is not a number" \
  "$uksim" run --quiet --seed 12x "$src/tour.scn"
expect 2 "uksim run: --show: '99999999999999999999' is not a number" \
  "$uksim" run --show 99999999999999999999 "$src/tour.scn"
expect 2 "uksim explore: --first: '18446744073709551616' is not a number" \
  "$uksim" explore --first 18446744073709551616 "$src/tour.scn"
expect 2 "the last seed would be beyond 18446744073709551615" \
  "$uksim" explore --first 18446744073709551615 --seeds 2 "$src/tour.scn"

# A declared server or app that cannot start fails the run.
printf 'server kvs\nserver x --binary no-such-server\napp a --count 3\nexpect all-answered\n' \
  >"$dir/s1.scn"
expect 1 "server x could not start: program no-such-server not found" \
  "$uksim" run --quiet "$dir/s1.scn"
printf 'server kvs\napp a --count 3\napp b --binary no-such-app\nexpect all-answered\n' \
  >"$dir/s2.scn"
expect 1 "app b could not start: program no-such-app not found" \
  "$uksim" run --quiet "$dir/s2.scn"
printf 'server kvs\nserver k2 --binary kvs --args "--no-such-option"\napp a --count 3\nexpect all-answered\n' \
  >"$dir/s3.scn"
expect 1 "server k2 could not start: it exited with status 2 before it registered" \
  "$uksim" run --quiet "$dir/s3.scn"
expect 1 "seed 1 failed" \
  "$uksim" explore --quiet --seeds 2 --jobs 1 "$dir/s1.scn"
# ... but a server planned to fail before it registers is the scenario.
printf 'server kvs --fault panic@start\napp a --count 3\nexpect all-answered\n' \
  >"$dir/s4.scn"
expect 0 "1/1 expectations hold" "$uksim" run --quiet "$dir/s4.scn"

# --json: stdout is JSON Lines alone, which the trace reader reads back
# (it refuses any other line); the programs' lines went to stderr.
"$uksim" run "$src/tour.scn" --json >"$dir/tour.jsonl" 2>"$dir/err" ||
  fail "tour --json: exit $?: $(cat "$dir/err")"
"$uksim" trace "$dir/tour.jsonl" >/dev/null 2>"$dir/out" ||
  fail "tour --json: stdout is not JSON Lines: $(cat "$dir/out")"
[ "$(grep -vc '^{.*}$' "$dir/tour.jsonl")" = 0 ] ||
  fail "tour --json: lines that are no JSON object: $(grep -v '^{' "$dir/tour.jsonl" | head -3)"
grep -q '^kvsload: ' "$dir/err" || fail "tour --json: kvsload's lines are lost"
# A free-running run (a machine with a backup) whose last action kills an
# app that has already ended still ends: nothing else would wake it.
cat >"$dir/late-kill.scn" <<'SCN'
machine --seed 1 --backup 1 --heartbeat 10ms --heartbeat-timeout 300ms
app a --binary nscmd --args "echo hi"
at 1s kill a
expect failovers == 0
SCN
expect 0 "1/1 expectations hold" timeout 60 "$uksim" run --quiet "$dir/late-kill.scn"

echo "ok"
