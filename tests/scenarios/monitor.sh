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

# What the stalled driver's finding in the trace of run $1 says (ms,
# whole): readers blocked, how long the oldest unread data has waited
# for its reader, and the latency after the fault.
finding() { grep '"ev":"monitor"' "$1.jsonl" | grep stalled-driver | head -1; }
blocked() { finding "$1" | grep -o '[0-9]* readers blocked' | cut -d' ' -f1; }
unread() { finding "$1" | grep -o 'data unread for [0-9]*' | cut -d' ' -f4; }
latency() { finding "$1" | grep -o 'latency [0-9]*' | cut -d' ' -f2; }

# The readers pile up on the stalled pipe servant (one more every 60 ms
# in the scenario), so the monitor at 1000 ms finds more of them blocked,
# their data unread for longer, than at 1 ms; and it names the servant
# and the readers.
# The 1000 ms monitor's first read after the stall falls anywhere in the
# second after it: when it came less than two arrivals (120 ms) after the
# 1 ms monitor's finding, there was no time for more readers to pile up
# and the comparison says nothing, so that run is made again (twice at
# most).
readers_pile_up() {
  for try in 1 2; do
    l1=$(latency "$1.1.out") l1000=$(latency "$1.1000.out")
    [ "${l1000:-0}" -ge $((${l1:-0} + 120)) ] && break
    echo "     the 1000 ms finding came ${l1000:-?} ms after the fault, the" \
      "1 ms one ${l1:-?} ms: once more"
    "$uksim" run --quiet --monitor-interval 1000 --jsonl "$1.1000.out.jsonl" \
      "$src/monitor-stalled-driver.scn" >"$1.1000.out" 2>&1
  done
  b1=$(blocked "$1.1.out") b1000=$(blocked "$1.1000.out")
  w1=$(unread "$1.1.out") w1000=$(unread "$1.1000.out")
  if [ -n "$b1" ] && [ -n "$b1000" ] && [ "$b1000" -gt "$b1" ] &&
     [ "${w1000:-0}" -gt "${w1:-0}" ] &&
     finding "$1.1000.out" |
       grep -q 'servant #| (pipe).*; proc [0-9]* (r[0-9]*) on pipe [0-9]* end'
  then
    echo "ok   readers pile up: $b1 blocked (data unread $w1 ms) at 1 ms," \
      "$b1000 (data unread $w1000 ms) at 1000 ms"
  else
    echo "FAIL readers do not pile up: ${b1:-none} blocked (data unread" \
      "${w1:-?} ms) at 1 ms, ${b1000:-none} (${w1000:-?} ms) at 1000 ms"
    finding "$1.1.out"
    finding "$1.1000.out"
    fail=1
  fi
}

for f in "$src"/monitor-*.scn; do
  name=$(basename "$f" .scn)
  case $name in monitor-baseline-*) continue ;; esac
  n=$((n + 1))
  for ms in 1 10 100 1000; do
    out=$dir/$name.$ms.out
    if "$uksim" run --quiet --monitor-interval $ms --jsonl "$out.jsonl" "$f" \
        >"$out" 2>&1; then
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
