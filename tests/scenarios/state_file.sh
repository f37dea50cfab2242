#!/bin/sh
# expect state S equals "FILE" end to end (scenarios/state-file.scn): the
# kernel's dumper writes the server's final contents and the runner
# compares them with FILE.  A copy of the scenario with a wrong value, a
# missing key or an extra key in FILE fails (exit 1) naming the key; a
# service that is down at the end gets no dump and fails with a message;
# --dump-dir keeps the dump, and otherwise the temporary dump directory is
# removed.  Usage: state_file.sh UKSIM SCENARIO_DIR
set -u
fail() { echo "FAIL: $*" >&2; exit 1; }
# Under valgrind the kernel and every server would run under it, for
# minutes; the evaluator is checked by test_eval there.
. "$(dirname "$0")/../skip.sh"
[ "${UKSIM_UNDER_VALGRIND:-0}" = 1 ] && skip "under valgrind"
uksim=$1 src=$2
# The runs' TMPDIR is $dir/tmp, where nothing must be left.
dir=$(mktemp -d "${TMPDIR:-/tmp}/uksim-state-file.XXXXXX") && mkdir "$dir/tmp" ||
  fail "no temporary directory"
trap 'rm -rf "$dir"' EXIT
export TMPDIR="$dir/tmp"

# run ARGS...: uksim run --quiet ARGS...; its output in $dir/out, its
# exit status in $rc.
run() {
  "$uksim" run --quiet "$@" >"$dir/out" 2>&1
  rc=$?
}

# The shipped scenario holds, and --dump-dir keeps a dump equal to FILE.
cp "$src/state-file.scn" "$src/state-file.expected" "$dir/"
run --dump-dir "$dir/dumps" "$dir/state-file.scn"
[ $rc -eq 0 ] || fail "the shipped scenario: exit $rc: $(cat "$dir/out")"
grep -q '  ok   state kvs equals "state-file.expected": the server holds' \
  "$dir/out" || fail "no ok verdict: $(cat "$dir/out")"
sort "$dir/state-file.expected" | cmp -s - "$dir/dumps/kvs.dump" ||
  fail "--dump-dir: the dump is not the expected file, sorted"
[ -z "$(ls -A "$dir/tmp")" ] || fail "left in TMPDIR: $(ls -A "$dir/tmp")"

# wrong EDIT MESSAGE: the scenario with FILE edited by the sed script EDIT
# fails with MESSAGE.
wrong() {
  sed "$1" "$src/state-file.expected" >"$dir/state-file.expected"
  cmp -s "$src/state-file.expected" "$dir/state-file.expected" &&
    fail "sed '$1' changed nothing"
  run "$dir/state-file.scn"
  [ $rc -eq 1 ] || fail "FILE edited by '$1': exit $rc, not 1"
  grep -qF "  FAIL state kvs equals \"state-file.expected\": $2" "$dir/out" ||
    fail "FILE edited by '$1': not '$2' in: $(cat "$dir/out")"
  [ -z "$(ls -A "$dir/tmp")" ] || fail "left in TMPDIR: $(ls -A "$dir/tmp")"
}
wrong 's/^ap1-2=.*/ap1-2=ap1-2:v4;/' \
  'key ap1-2: the server has "ap1-2:v5;", state-file.expected has "ap1-2:v4;"'
wrong '/^ap1-3=/d' \
  'the server has key ap1-3 (= "ap1-3:v7;"), state-file.expected has not'
wrong '$a ap2-9=ap2-9:v1;' \
  'key ap2-9 (= "ap2-9:v1;") of state-file.expected is not in the server'

# The service is down when the application is done: no dump.
cat >"$dir/down.scn" <<'SCN'
scenario "kvs crashes for good: nothing to dump"
machine --seed 1
server kvs
app ap1 --count 20 --keys 3 --seed 1
on request 10 to kvs: crash kvs
expect state kvs equals "state-file.expected"
SCN
run --jsonl "$dir/down.jsonl" "$dir/down.scn"
[ $rc -eq 1 ] || fail "down: exit $rc, not 1"
grep -q "FAIL state kvs equals \"state-file.expected\": no dump of kvs's final state: kvs was down" \
  "$dir/out" || fail "down: no message in: $(cat "$dir/out")"
grep -q '"text":"dump kvs: the service is down (no dump)"' "$dir/down.jsonl" ||
  fail "down: no action event in the trace"
grep -q '"peer":"kvs.dump"' "$dir/down.jsonl" && fail "down: a dumper ran"
# Binary values (no --text-values) are dumped printable: \xHH escapes.
cat >"$dir/binary.scn" <<'SCN'
scenario "binary values, dumped printable"
machine --seed 2
server kvs
app ap1 --count 40 --keys 4 --value-size 16 --mix 1:0:0 --seed 3
expect state kvs equals model
SCN
printf 'expect state kvs equals "state-file.expected"\n' >>"$dir/binary.scn"
run --dump-dir "$dir/binary" "$dir/binary.scn"
[ $rc -eq 1 ] || fail "binary: exit $rc, not 1 (FILE is another's)"
[ "$(grep -c . "$dir/binary/kvs.dump")" -eq 4 ] ||
  fail "binary: not 4 lines: $(cat "$dir/binary/kvs.dump")"
LC_ALL=C grep -Ev '^ap1-[0-3]=([ -[]|[]-~]|\\\\|\\x[0-9a-f][0-9a-f])*$' \
  "$dir/binary/kvs.dump" && fail "binary: a line not escaped as documented"
grep -q 'x[0-9a-f]' "$dir/binary/kvs.dump" || fail "binary: no \\xHH at all"
echo "ok"
