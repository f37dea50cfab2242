#!/bin/sh
# uksim explore shrinks the failure it finds (cli/explore_shrink.c):
#   1. a planted bug that fails only with one of its two faults (a crash of
#      kvs at a seeded time fails 'errors == 0'; a panic at a count no run
#      reaches never strikes): the shrunk reproducer keeps the crash, takes
#      the panic away, and pins the crash at a time not after the seed's
#      pick;
#   2. re-running the reproducer fails the same way, and the crash one
#      nanosecond earlier passes (the point is the earliest that fails), or
#      the point is the range's low end;
#   3. the JUnit report carries the shrunk reproducer; --no-shrink keeps
#      the plain one and writes no shrunk scenario;
#   4. faults that are --fault options of a server: the one that never
#      strikes (a crash at a request number no run reaches) is taken out of
#      the line, the other pinned no later than its pick, and the shrunk
#      scenario fails the same way.
# Skipped under valgrind (exit 77): every run boots a machine.
#   explore_shrink.sh UKSIM
set -u
uksim=$1
. "$(dirname "$0")/../skip.sh"
[ "${UKSIM_UNDER_VALGRIND:-0}" = 1 ] && skip "under valgrind"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "explore_shrink.sh: FAIL: $*"; exit 1; }

cat >"$tmp/two.scn" <<'SCN'
server kvs --restart always
app ap1 --count 60 --keys 10
app ap2 --count 60 --keys 10
at 1us..3ms crash kvs
on event receive kvs 100000..200000: panic kvs
expect errors == 0
SCN

# 1
"$uksim" explore "$tmp/two.scn" --seeds 20 --jobs 1 --junit "$tmp/two.xml" \
  >"$tmp/two.out" 2>&1
st=$?
cat "$tmp/two.out"
[ "$st" = 1 ] || fail "exit status $st, not 1 (the planted bug not hit?)"
seed=$(sed -n 's/^seed \([0-9]*\) failed .*/\1/p' "$tmp/two.out")
shrunk="$tmp/two.seed-$seed.shrunk.scn"
[ -f "$shrunk" ] || fail "no $shrunk"
grep -q "^reproduce: uksim run $shrunk --seed $seed\$" "$tmp/two.out" ||
  fail "the reproducer does not run $shrunk"
grep -q "1 of 2 faults kept" "$tmp/two.out" || fail "not 1 of 2 faults kept"
grep -q "^  line 5: taken away, still fails" "$tmp/two.out" ||
  fail "the panic (line 5) was not taken away"
grep -q "^# shrunk away: on event receive kvs 100000..200000: panic kvs" \
  "$shrunk" || fail "line 5 of the shrunk scenario is not a comment"
at=$(sed -n 's/^at \([0-9]*\)ns crash kvs$/\1/p' "$shrunk")
pick=$(sed -n 's/^  line 4: kept, at [0-9]*ns (the seed picked \([0-9]*\)ns.*/\1/p' \
  "$tmp/two.out")
[ -n "$at" ] && [ -n "$pick" ] || fail "line 4 is not a pinned crash"
[ "$at" -le "$pick" ] || fail "the crash moved later: $at ns > $pick ns"
[ "$(sed -n 4p "$shrunk")" = "at ${at}ns crash kvs" ] || fail "line 4 moved"

# 2
"$uksim" run "$shrunk" --seed "$seed" >"$tmp/again.out" 2>&1 &&
  fail "the shrunk reproducer passed"
grep -q "FAIL errors == 0" "$tmp/again.out" ||
  fail "the shrunk reproducer failed differently"
if [ "$at" -gt 1000 ]; then
  sed "s/^at ${at}ns crash kvs\$/at $((at - 1))ns crash kvs/" "$shrunk" \
    >"$tmp/earlier.scn"
  "$uksim" run "$tmp/earlier.scn" --seed "$seed" >"$tmp/earlier.out" 2>&1 ||
    { cat "$tmp/earlier.out"; fail "the crash at $((at - 1)) ns fails too: not the earliest"; }
fi
echo "explore_shrink.sh: seed $seed: 1 of 2 faults, the crash at $at ns (picked $pick ns)"

# 3
grep -q "reproduce: uksim run $shrunk --seed $seed</failure>" "$tmp/two.xml" ||
  fail "the report does not carry the shrunk reproducer"
rm -f "$shrunk"
"$uksim" explore "$tmp/two.scn" --seeds 20 --jobs 1 --no-shrink --quiet \
  >"$tmp/plain.out" 2>&1
grep -q "^reproduce: uksim run $tmp/two.scn --seed $seed\$" "$tmp/plain.out" ||
  fail "--no-shrink: not the plain reproducer"
[ -f "$shrunk" ] && fail "--no-shrink wrote $shrunk"

# 4
cat >"$tmp/opt.scn" <<'SCN'
server kvs --restart always --fault crash@request:500..900 --fault panic@request:20..80
app ap1 --count 60 --keys 10
app ap2 --count 60 --keys 10
expect errors == 0
SCN
"$uksim" explore "$tmp/opt.scn" --seeds 20 --jobs 1 >"$tmp/opt.out" 2>&1
st=$?
[ "$st" = 1 ] || { cat "$tmp/opt.out"; fail "--fault: exit status $st, not 1"; }
seed=$(sed -n 's/^seed \([0-9]*\) failed .*/\1/p' "$tmp/opt.out")
shrunk="$tmp/opt.seed-$seed.shrunk.scn"
grep -q "1 of 2 faults kept" "$tmp/opt.out" ||
  { cat "$tmp/opt.out"; fail "--fault: not 1 of 2 faults kept"; }
line=$(sed -n 1p "$shrunk")
n=${line##*panic@request:}
pick=$(sed -n 's/^  line 1 (--fault): kept, at [0-9]* (the seed picked \([0-9]*\) from 20..80)$/\1/p' \
  "$tmp/opt.out")
case $line in
"server kvs --restart always --fault panic@request:$n") ;;
*) fail "--fault: line 1 shrunk to '$line'" ;;
esac
[ -n "$pick" ] && [ "$n" -le "$pick" ] || fail "--fault: panic at $n, picked $pick"
"$uksim" run "$shrunk" --seed "$seed" >"$tmp/opt-again.out" 2>&1 &&
  fail "--fault: the shrunk reproducer passed"
grep -q "FAIL errors == 0" "$tmp/opt-again.out" ||
  fail "--fault: the shrunk reproducer failed differently"
echo "explore_shrink.sh: --fault: seed $seed: $line (picked $pick)"
echo "explore_shrink.sh: ok"
