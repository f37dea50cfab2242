#!/bin/sh
# `uksim trace` end to end on tests/scenarios/fig8.jsonl: the text, the
# binary form and back to the same bytes, the hash, the check, and a bad
# trace refused with exit status 2.  Usage: uksim_trace.sh UKSIM FIG8
set -eu
# Under valgrind the shell itself would be checked (and dash leaks at
# exit); the library underneath is checked by test_trace_io there.
. "$(dirname "$0")/../skip.sh"
[ "${UKSIM_UNDER_VALGRIND:-0}" = 1 ] && skip "under valgrind"
uksim=$1
fig8=$2
dir=$(mktemp -d "${TMPDIR:-/tmp}/uksim-trace.XXXXXX")
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$uksim" trace "$fig8" >"$dir/text"
grep -q 'ap1 -> kvs          send req 65537 kvs.put' "$dir/text" ||
  fail "no send line in the text"
[ "$(wc -l <"$dir/text")" -eq "$(grep -c . "$fig8")" ] ||
  fail "not one line per event"

"$uksim" trace --binary "$dir/t.pb" "$fig8"
"$uksim" trace --json "$dir/t.pb" >"$dir/back.jsonl"
cmp -s "$fig8" "$dir/back.jsonl" || fail "binary round trip changed the trace"
"$uksim" trace "$dir/t.pb" | cmp -s - "$dir/text" || fail "binary text differs"

h1=$("$uksim" trace --hash "$fig8" | cut -d' ' -f1)
h2=$("$uksim" trace --hash "$dir/back.jsonl" | cut -d' ' -f1)
[ "$h1" = "$h2" ] || fail "equal files, different hashes"

"$uksim" trace --check "$dir/t.pb" >/dev/null || fail "check of the binary"

printf '{not json\n' >"$dir/bad"
set +e
"$uksim" trace "$dir/bad" >/dev/null 2>"$dir/err"
rc=$?
set -e
[ $rc -eq 2 ] || fail "bad trace: exit $rc, not 2"
grep -q 'bad:1: bad JSON' "$dir/err" || fail "bad trace: $(cat "$dir/err")"
printf 'garbage' >"$dir/bad"
"$uksim" trace "$dir/bad" 2>&1 >/dev/null | grep -q 'neither JSON Lines nor' ||
  fail "garbage not refused"
echo ok
