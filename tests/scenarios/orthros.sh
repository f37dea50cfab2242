#!/bin/sh
# The Orthros scenarios (scenarios/orthros-*.scn, issue 14): each one, run
# once with its own seed, holds every expectation (exit 0).  They run free
# (a failover is real time), so unlike run_scenarios.sh no hash is
# compared: their expectations are exact instead (answers, files, counts,
# the machine's usable-memory table).  A copy that expects what did not
# happen fails (exit 1): a failover count, a protected app that "ended",
# a usable-memory row, a TCP client still connected to an echo server
# that was not protected.  Nothing is left in TMPDIR (the OSes' traces, the
# executor's journal, the machine's disk).  Under valgrind the runs skip:
# the kernels would run tens of times slower and fail over by themselves.
# Usage: orthros.sh UKSIM SCENARIO_DIR
set -u
. "$(dirname "$0")/../skip.sh"
[ "${UKSIM_UNDER_VALGRIND:-0}" = 1 ] && skip "real-time failover under valgrind"
uksim=$1 src=$2
. "$(dirname "$0")/free_run.sh"
free_run_setup orthros
run_each "$src/orthros-*.scn"
[ "$n" -ge 13 ] || { echo "FAIL only $n Orthros scenarios shipped"; fail=1; }

# Copies of orthros-panic-syscall.scn expecting what did not happen fail
# (must_fail TEXT LINE: the copy with LINE added fails saying TEXT).
base=$src/orthros-panic-syscall.scn
. "$(dirname "$0")/must_fail.sh"
must_fail "failovers == 2: 1 failover" "expect failovers == 2"
must_fail "ended load: load exited by itself" "expect ended load"
must_fail "usable-mib 1 4096 2 4096: the machine says 1 4096 2 3712" \
  "expect usable-mib 1 4096 2 4096"

# An echo server that is not protected ends with its OS: the runner's
# tcp-client (outside the machine) sees its connection end at the failover,
# before the scenario did anything to the server, and its expectation
# fails.  A copy of orthros-panic-syscall.scn whose load starts at 1 s, so
# that the client has connected before the fault.
sed -e 's/^machine .*/& --nic-port 17100/' -e 's/^app load .*/& --start 1s/' \
  "$src/orthros-panic-syscall.scn" >"$dir/tcp.scn"
cat >>"$dir/tcp.scn" <<'EOF'
app echo --binary techo --args "17103"
tcp-client c1 17103 --every 10ms --server echo
expect tcp-client c1 connected
EOF
if "$uksim" run --quiet "$dir/tcp.scn" >"$dir/tcp.out" 2>&1; then
  echo "FAIL an unprotected echo server's client stayed connected"
  fail=1
elif ! grep -q "FAIL tcp-client c1 connected: the connection broke" \
  "$dir/tcp.out"; then
  echo "FAIL an unprotected echo server's client did not fail as expected:"
  cat "$dir/tcp.out"
  fail=1
else
  echo "ok   unprotected techo: $(grep "FAIL tcp-client" "$dir/tcp.out")"
fi

left=$(ls -A "$dir/tmp")
[ -z "$left" ] || { echo "FAIL left in TMPDIR: $left"; fail=1; }
exit $fail
