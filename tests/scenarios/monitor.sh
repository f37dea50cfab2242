#!/bin/sh
# The seed-003 monitor's scenarios (scenarios/monitor-*.scn, issue 15):
# each in-kernel fault is found by the backup's monitor at every interval
# (1, 10, 100 and 1000 ms: uksim run --monitor-interval wins over the
# scenario's) and missed by the Orthros heartbeat (no failover, no
# os-dead).  They run free (real time), so no hash is compared.  A copy
# without the fault must fail its "monitor" expectation: a finding is the
# fault's, not the run's.  The baseline runs (monitor-baseline-*.scn: no
# monitor, only the heartbeat and the panic notice) each hold their own
# expectations, once: the in-kernel faults are missed, the control (a
# hung kernel) is caught.  Under valgrind the runs skip: the monitor's
# thresholds are real time.
# Usage: monitor.sh UKSIM SCENARIO_DIR
set -u
. "$(dirname "$0")/../skip.sh"
. "$(dirname "$0")/free_run.sh"
[ "${UKSIM_UNDER_VALGRIND:-0}" = 1 ] && skip "real-time monitor under valgrind"
uksim=$1 src=$2
dir=$(mktemp -d "${TMPDIR:-/tmp}/uksim-monitor.XXXXXX") && mkdir "$dir/tmp" ||
  { echo "FAIL: no temporary directory"; exit 1; }
trap 'rm -rf "$dir"' EXIT
export TMPDIR="$dir/tmp"
fail=0
n=0

# What the stalled driver's finding in run $1 says: readers blocked, and
# the longest wait (ms, whole).
blocked() { grep -o '[0-9]* readers blocked' "$1" | head -1 | cut -d' ' -f1; }
longest() { grep -o 'the longest waiting [0-9]*' "$1" | head -1 | cut -d' ' -f4; }

# The readers pile up on the stalled pipe servant (one more every 100 ms
# in the scenario), so the monitor at 1000 ms finds more of them blocked,
# and for longer, than at 1 ms; and it names the servant and the readers.
readers_pile_up() {
  b1=$(blocked "$1.1.out") b1000=$(blocked "$1.1000.out")
  w1=$(longest "$1.1.out") w1000=$(longest "$1.1000.out")
  if [ -n "$b1" ] && [ -n "$b1000" ] && [ "$b1000" -gt "$b1" ] &&
     [ "${w1000:-0}" -gt "${w1:-0}" ] &&
     grep -q 'servant #| (pipe).*proc [0-9]* (r[1-8]) on pipe' "$1.1000.out"
  then
    echo "ok   readers pile up: $b1 blocked (longest $w1 ms) at 1 ms," \
      "$b1000 (longest $w1000 ms) at 1000 ms"
  else
    echo "FAIL readers do not pile up: ${b1:-none} blocked (longest" \
      "${w1:-?} ms) at 1 ms, ${b1000:-none} (longest ${w1000:-?} ms) at 1000 ms"
    grep -h 'stalled-driver' "$1.1.out" "$1.1000.out"
    fail=1
  fi
}

for f in "$src"/monitor-*.scn; do
  name=$(basename "$f" .scn)
  case $name in monitor-baseline-*) continue ;; esac
  n=$((n + 1))
  for ms in 1 10 100 1000; do
    out=$dir/$name.$ms.out
    if "$uksim" run --quiet --monitor-interval $ms "$f" >"$out" 2>&1; then
      echo "ok   $name at $ms ms: $(grep -o 'latency [0-9.]* ms' "$out" | head -1)"
    else
      echo "FAIL $name at $ms ms:"
      cat "$out"
      fail=1
    fi
  done
  [ "$name" = monitor-stalled-driver ] && readers_pile_up "$dir/$name"
  # Without its fault, nothing is found.  (The stalled readers' kills
  # go too: without the fault they have ended by then, and a free run
  # with a kill of an ended app pending does not end.)
  grep -v -e '^at .* fault kernel' -e '^at .* kill r[0-9]*$' "$f" >"$dir/nofault.scn"
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
m=$n
run_each "$src/monitor-baseline-*.scn"
nb=$((n - m))
[ "$nb" -ge 4 ] || { echo "FAIL only $nb baseline scenarios shipped"; fail=1; }
exit $fail
