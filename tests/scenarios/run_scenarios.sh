#!/bin/sh
# Every shipped scenario, run twice with its own seed: each run must hold
# every expectation (exit 0), and the two traces must be byte-identical
# (same SHA-256): the lock-step scheduler makes a run a function of the
# scenario and the seed.  The second run turns the kernel's cross-cpu
# polling off (--poll-us 0), which may change when a call is noticed but
# never what happens.  Under valgrind the runs are skipped (exit 77):
# the kernel and every server would run under it, for minutes.
set -u
uksim=$1
dir=$2
. "$(dirname "$0")/../skip.sh"
[ "${UKSIM_UNDER_VALGRIND:-0}" = 1 ] && skip "under valgrind"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
n=0
for f in "$dir"/*.scn; do
  name=$(basename "$f" .scn)
  case $name in
  orthros-*) continue ;; # free-running (a failover is real time): orthros.sh
  kupdate-*) continue ;; # free-running too: kupdate.sh
  monitor-*) continue ;; # free-running (the monitor is real time): monitor.sh
  esac
  n=$((n + 1))
  for run in 1 2; do
    poll=100
    [ $run = 2 ] && poll=0
    if ! "$uksim" run --quiet --poll-us $poll --jsonl "$tmp/$name.$run.jsonl" "$f" \
        >"$tmp/$name.$run.out" 2>&1; then
      echo "FAIL $name (run $run):"
      cat "$tmp/$name.$run.out"
      fail=1
    fi
  done
  h1=$("$uksim" trace --hash "$tmp/$name.1.jsonl" 2>/dev/null | cut -d" " -f1)
  h2=$("$uksim" trace --hash "$tmp/$name.2.jsonl" 2>/dev/null | cut -d" " -f1)
  if [ -z "$h1" ] || [ "$h1" != "$h2" ]; then
    echo "FAIL $name: the two runs' traces differ ($h1 / $h2)"
    fail=1
  else
    echo "ok   $name  $h1"
  fi
done
[ "$n" -ge 15 ] || { echo "FAIL only $n scenarios shipped"; fail=1; }
exit $fail
