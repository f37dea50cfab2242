#!/bin/sh
# Namespaces in scenarios end to end (scenarios/ns-*.scn): expect file's
# readers write what they read into the dump directory (--dump-dir keeps
# read-LINE.out, or read-LINE.out.err for a read that failed), a broken
# expectation of each kind fails the run (exit 1) with what was read, a
# namespace action that fails says why in the trace, and nsread fails on a
# file that is not its pattern.  Usage: ns_files.sh UKSIM SCENARIO_DIR
set -u
fail() { echo "FAIL: $*" >&2; exit 1; }
. "$(dirname "$0")/../skip.sh"
[ "${UKSIM_UNDER_VALGRIND:-0}" = 1 ] && skip "under valgrind"
uksim=$1 src=$2
dir=$(mktemp -d "${TMPDIR:-/tmp}/uksim-ns-files.XXXXXX") && mkdir "$dir/tmp" ||
  fail "no temporary directory"
trap 'rm -rf "$dir"' EXIT
export TMPDIR="$dir/tmp"

run() {
  "$uksim" run --quiet "$@" >"$dir/out" 2>&1
  rc=$?
}

# The shipped union holds; the readers' files are what the verdicts say.
run --dump-dir "$dir/dumps" "$src/ns-union.scn"
[ $rc -eq 0 ] || fail "ns-union.scn: exit $rc: $(cat "$dir/out")"
printf 'one\n' | cmp -s - "$dir/dumps/read-20.out" ||
  fail "read-20.out is not /n/one's bytes"
grep -q 'No such file' "$dir/dumps/read-24.out.err" ||
  fail "read-24.out.err does not say why b's /n/three could not be read"
[ ! -e "$dir/dumps/read-24.out" ] || fail "a failed read left read-24.out"
[ -z "$(ls -A "$dir/tmp")" ] || fail "left in TMPDIR: $(ls -A "$dir/tmp")"

# broken FILE EDIT MESSAGE: FILE edited by the sed script EDIT fails
# with MESSAGE among its verdicts.
broken() {
  sed "$2" "$src/$1" >"$dir/$1"
  cmp -s "$src/$1" "$dir/$1" && fail "sed '$2' changed nothing in $1"
  run "$dir/$1"
  [ $rc -eq 1 ] || fail "$1 edited by '$2': exit $rc, not 1"
  grep -qF "  FAIL $3" "$dir/out" ||
    fail "$1 edited by '$2': not '$3' in: $(cat "$dir/out")"
}
broken ns-union.scn 's|/n/two equals "two|/n/two equals "owt|' \
  'file a /n/two equals "owt\n": a read 4 bytes: "two\n"'
broken ns-differ.scn 's|file b /mnt/null fails|file c /mnt/null fails|' \
  'file c /mnt/null fails: c read it: 0 bytes, ""'
broken ns-differ.scn 's|file a /n/null fails|file a /n/null equals ""|' \
  'file a /n/null equals "": a could not read it: cat: /n/null: No such file'
broken ns-replace-open-file.scn 's|contains "0000249|contains "0000250|' \
  'file a /n/big contains "0000250\n": a read 2000 bytes'
broken ns-servant-bound.scn 's|bind a "#c" /nope/dev|bind a "#c" /mnt|' \
  'trace contains action kernel "bind a #c /nope/dev: failed'

# nsread fails on a file that is not its pattern, and waits for a mount.
cat >"$dir/reader.scn" <<'SCN'
scenario "nsread checks what it reads"
server ramfs
app a --binary nscmd --args "pwd"
at 1ms mount a /srv/ramfs /n --flags c
app w --binary nscmd --ns share:a --start 2ms --args "echo 0000000 > /n/f ; echo 0000001 > /n/g"
app short --binary nsread --ns share:a --start 3ms --args "--path /n/f --size 9 --chunk 3"
app ok --binary nsread --ns share:a --start 3ms --args "--path /n/f --size 8 --chunk 3"
app other --binary nsread --ns share:a --start 3ms --args "--path /n/g --size 8"
app early --binary nsread --ns share:a --start 500us --args "--path /n/h --size 16 --create --wait 5 --pause 200000"
expect trace contains exit short "status 1"
expect trace contains exit ok "status 0"
expect trace contains exit other "status 1"
expect trace contains exit early "status 0"
expect exactly-one-answer
SCN
run "$dir/reader.scn"
[ $rc -eq 0 ] || fail "reader.scn: exit $rc: $(cat "$dir/out")"
grep -q 'nsread: /n/f: 8 bytes, not 9' "$dir/out" || fail "no short-file message"
grep -q 'nsread: /n/g: byte 6 is 0x31' "$dir/out" || fail "no bad-byte message"
echo "ns_files.sh: ok"
