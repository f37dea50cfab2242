#!/bin/sh
# The seed-003 monitor's scenarios (scenarios/monitor-*.scn, issue 15):
# each in-kernel fault is found by the backup's monitor at every interval
# (1, 10, 100 and 1000 ms: uksim run --monitor-interval wins over the
# scenario's) and missed by the Orthros heartbeat (no failover, no
# os-dead).  They run free (real time), so no hash is compared.  A copy
# without the fault must fail its "monitor" expectation: a finding is the
# fault's, not the run's.  Under valgrind the runs skip: the monitor's
# thresholds are real time.
# Usage: monitor.sh UKSIM SCENARIO_DIR
set -u
. "$(dirname "$0")/../skip.sh"
[ "${UKSIM_UNDER_VALGRIND:-0}" = 1 ] && skip "real-time monitor under valgrind"
uksim=$1 src=$2
dir=$(mktemp -d "${TMPDIR:-/tmp}/uksim-monitor.XXXXXX") && mkdir "$dir/tmp" ||
  { echo "FAIL: no temporary directory"; exit 1; }
trap 'rm -rf "$dir"' EXIT
export TMPDIR="$dir/tmp"
fail=0
n=0
for f in "$src"/monitor-*.scn; do
  name=$(basename "$f" .scn)
  n=$((n + 1))
  for ms in 1 10 100 1000; do
    if "$uksim" run --quiet --monitor-interval $ms "$f" >"$dir/$name.out" 2>&1
    then
      echo "ok   $name at $ms ms: $(grep -o 'latency [0-9.]* ms' "$dir/$name.out" | head -1)"
    else
      echo "FAIL $name at $ms ms:"
      cat "$dir/$name.out"
      fail=1
    fi
  done
  # Without its fault, nothing is found.  (The stalled reader's kill
  # goes too: without the fault it has ended by then, and a free run
  # with a kill of an ended app pending does not end.)
  grep -v -e '^at .* fault kernel' -e '^at .* kill r$' "$f" >"$dir/nofault.scn"
  if "$uksim" run --quiet --monitor-interval 1 "$dir/nofault.scn" \
      >"$dir/nofault.out" 2>&1; then
    echo "FAIL $name without its fault still found something"
    cat "$dir/nofault.out"
    fail=1
  elif ! grep -q 'FAIL trace contains monitor' "$dir/nofault.out"; then
    echo "FAIL $name without its fault did not fail as expected:"
    cat "$dir/nofault.out"
    fail=1
  else
    echo "ok   $name without its fault: nothing found"
  fi
done
[ "$n" -ge 3 ] || { echo "FAIL only $n monitor scenarios shipped"; fail=1; }
exit $fail
