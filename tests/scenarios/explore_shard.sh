#!/bin/sh
# uksim explore --shard K/N and --merge end to end:
#   1. a scenario with a planted failure (a crash at a seeded point fails
#      'errors == 0' for about half the seeds), run unsharded and as 4
#      shards, each with --keep-going (and --no-shrink: each shard shrinks
#      its own first failure, the unsharded run only the first of all):
#      the merged report equals the unsharded one but for times, and
#      --merge names the same first failing seed and the same reproducer;
#   2. without --keep-going each shard stops at its own first failure and
#      shrinks it, and the merge still names the unsharded run's first
#      failing seed and its shrunk reproducer;
#   3. more shards than seeds: some shards are empty, and the 5 reports of
#      3 seeds still merge into the unsharded report;
#   4. bad input is refused with exit status 2 and a message: K > N, N = 0,
#      K = 0, junk; a truncated report, a report that is not XML, a shard
#      given twice, a missing shard, a shard of another sweep; and no report
#      cut at any point or missing any one line crashes the merge.
# The merge commands are the ones docs/ci.md shows.
# Skipped under valgrind (exit 77): every run boots a machine.
#   explore_shard.sh UKSIM
set -u
uksim=$1
. "$(dirname "$0")/../skip.sh"
[ "${UKSIM_UNDER_VALGRIND:-0}" = 1 ] && skip "under valgrind"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "explore_shard.sh: FAIL: $*"; exit 1; }
# A report without its times: what two runs of the same seeds share.
untimed() { sed 's/time="[0-9.]*"/time="T"/g' "$1"; }

cat >"$tmp/planted.scn" <<'SCN'
server kvs --restart always
app ap1 --count 60 --keys 10
app ap2 --count 60 --keys 10
on event receive kvs 1..260: crash kvs
expect errors == 0
SCN
seeds=12 first=5 # shard 1 (seeds 5..7) passes: the first failure is in another

# 1
"$uksim" explore "$tmp/planted.scn" --first $first --seeds $seeds --keep-going \
  --no-shrink --jobs 2 --quiet --junit "$tmp/all.xml" >"$tmp/all.out" 2>&1
st=$?
[ "$st" = 1 ] || { cat "$tmp/all.out"; fail "unsharded: exit status $st, not 1 (no planted failure hit?)"; }
for k in 1 2 3 4; do
  "$uksim" explore "$tmp/planted.scn" --first $first --seeds $seeds --keep-going \
    --no-shrink --jobs 2 --quiet --shard $k/4 --junit "$tmp/shard-$k.xml" >"$tmp/shard-$k.out" 2>&1
  grep -q "shard $k/4 of $seeds seeds, 3 of 3 seeds run" "$tmp/shard-$k.out" ||
    { cat "$tmp/shard-$k.out"; fail "shard $k/4 did not run 3 seeds"; }
done
"$uksim" explore --merge "$tmp"/shard-1.xml "$tmp"/shard-2.xml \
  "$tmp"/shard-3.xml "$tmp"/shard-4.xml --junit "$tmp/merged.xml" \
  >"$tmp/merge.out" 2>&1
st=$?
cat "$tmp/merge.out"
[ "$st" = 1 ] || fail "merge: exit status $st, not 1"
untimed "$tmp/all.xml" >"$tmp/all.untimed"
untimed "$tmp/merged.xml" >"$tmp/merged.untimed"
diff "$tmp/all.untimed" "$tmp/merged.untimed" ||
  fail "the merged report differs from the unsharded one"
want=$(grep '^reproduce: ' "$tmp/all.out" | head -1)
got=$(grep '^reproduce: ' "$tmp/merge.out" | head -1)
[ -n "$want" ] && [ "$want" = "$got" ] ||
  fail "merge names '$got', the unsharded run '$want'"
grep -q "^seed ${want##* } failed (exit status 1); its output:" \
  "$tmp/merge.out" || fail "merge does not name seed ${want##* } first"
# The same report on stdout when there is no --junit, the summary on stderr.
"$uksim" explore --merge "$tmp"/shard-*.xml >"$tmp/stdout.xml" \
  2>"$tmp/stderr.out"
cmp -s "$tmp/stdout.xml" "$tmp/merged.xml" || fail "stdout is not the report"
grep -q "^$want\$" "$tmp/stderr.out" || fail "no reproducer on stderr"
echo "explore_shard.sh: 4 shards merge into the unsharded report; $want"

# 2
"$uksim" explore "$tmp/planted.scn" --first $first --seeds $seeds --jobs 1 \
  --quiet >"$tmp/one.out" 2>&1
want=$(grep '^reproduce: uksim run .*shrunk.scn --seed' "$tmp/one.out" | head -1)
[ -n "$want" ] || { cat "$tmp/one.out"; fail "no shrunk reproducer"; }
for k in 1 2 3 4; do
  "$uksim" explore "$tmp/planted.scn" --first $first --seeds $seeds --jobs 1 --quiet \
    --shard $k/4 --junit "$tmp/stop-$k.xml" >/dev/null 2>&1
done
"$uksim" explore --merge "$tmp"/stop-*.xml --junit "$tmp/stop.xml" \
  >"$tmp/stop.out" 2>&1
got=$(grep '^reproduce: uksim run .*shrunk.scn --seed' "$tmp/stop.out" | head -1)
[ "$want" = "$got" ] || fail "stopping shards: merge names '$got', not '$want'"
echo "explore_shard.sh: stopping shards merge to the same first failure; $got"

# 3
"$uksim" explore "$tmp/planted.scn" --seeds 3 --first 7 --keep-going --quiet \
  --no-shrink \
  --junit "$tmp/three.xml" >/dev/null 2>&1
for k in 1 2 3 4 5; do
  "$uksim" explore "$tmp/planted.scn" --seeds 3 --first 7 --keep-going \
    --no-shrink --quiet --shard $k/5 --junit "$tmp/five-$k.xml" >"$tmp/five-$k.out" 2>&1
done
grep -q '0 of 0 seeds run' "$tmp/five-1.out" || fail "shard 1/5 of 3 seeds not empty"
"$uksim" explore --merge "$tmp"/five-*.xml >"$tmp/five.xml" 2>/dev/null
untimed "$tmp/three.xml" >"$tmp/three.untimed"
untimed "$tmp/five.xml" >"$tmp/five.untimed"
diff "$tmp/three.untimed" "$tmp/five.untimed" ||
  fail "5 shards of 3 seeds do not merge into the unsharded report"

# 4
refused() { # WHAT MESSAGE COMMAND...
  what=$1 msg=$2
  shift 2
  "$uksim" "$@" >"$tmp/bad.out" 2>&1
  st=$?
  [ "$st" = 2 ] || { cat "$tmp/bad.out"; fail "$what: exit status $st, not 2"; }
  grep -q "$msg" "$tmp/bad.out" || { cat "$tmp/bad.out"; fail "$what: no '$msg'"; }
}
for s in 5/4 0/4 1/0 1/4x x/4 -1/4 1/100001; do
  refused "--shard $s" "not K/N" explore "$tmp/planted.scn" --shard $s
done
head -c 300 "$tmp/shard-2.xml" >"$tmp/cut.xml"
refused "a truncated report" "cut.xml:[0-9]*: .*truncated" \
  explore --merge "$tmp/shard-1.xml" "$tmp/cut.xml"
echo "not xml" >"$tmp/junk.xml"
refused "not XML" "junk.xml:1: text where an element" explore --merge "$tmp/junk.xml"
refused "a missing report" "nothere.xml:1: cannot read" explore --merge "$tmp/nothere.xml"
refused "a shard twice" "shard 2/4 read twice" \
  explore --merge "$tmp"/shard-1.xml "$tmp"/shard-2.xml "$tmp"/shard-2.xml
refused "a missing shard" "1 of 4 shards missing (the first: 3/4)" \
  explore --merge "$tmp"/shard-1.xml "$tmp"/shard-2.xml "$tmp"/shard-4.xml
refused "another sweep" "reports of different sweeps" \
  explore --merge "$tmp"/shard-1.xml "$tmp"/five-2.xml
sed 's/name="seed 8"/name="seed 1"/' "$tmp/shard-2.xml" >"$tmp/overlap.xml"
refused "a seed outside its shard" "seed 1 is not in shard 2/4 (seeds 8..10)" \
  explore --merge "$tmp/shard-1.xml" "$tmp/overlap.xml"
refused "no reports" "which reports" explore --merge
# Bad input never crashes: shard 2's report cut every 13 bytes, and with
# each of its lines taken out (mut.xml), is merged with the other three:
# exit status 0 to 2, never a signal's 128 + N.
survives() {
  "$uksim" explore --merge "$tmp"/shard-1.xml "$tmp/mut.xml" \
    "$tmp"/shard-3.xml "$tmp"/shard-4.xml >/dev/null 2>&1
  st=$?
  [ "$st" -le 2 ] || fail "a report $1: exit status $st"
}
size=$(wc -c <"$tmp/shard-2.xml")
lines=$(wc -l <"$tmp/shard-2.xml")
n=0
while [ "$n" -lt "$size" ]; do
  head -c "$n" "$tmp/shard-2.xml" >"$tmp/mut.xml"
  survives "cut at byte $n"
  n=$((n + 13))
done
l=1
while [ "$l" -le "$lines" ]; do
  sed "${l}d" "$tmp/shard-2.xml" >"$tmp/mut.xml"
  survives "without line $l"
  l=$((l + 1))
done
echo "explore_shard.sh: ok"
