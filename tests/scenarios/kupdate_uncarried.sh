#!/bin/sh
# The negatives of scenarios/kupdate-uncarried.scn (issue 15: a kernel
# update whose image cannot carry one process).  kupdate.sh runs the
# scenario itself with the other kupdate-*.scn; here, copies whose
# expectations do not hold must fail the run: one expecting that nothing
# was refused for its external 9P session, one expecting that far ended
# with the old kernel (it stays and ends well on the retiring kernel),
# one expecting that the protected load did not move.  Nothing is left in TMPDIR.  Under
# valgrind the runs skip: the kernels would fail over by themselves.
# Usage: kupdate_uncarried.sh UKSIM SCENARIO_DIR
set -u
. "$(dirname "$0")/../skip.sh"
[ "${UKSIM_UNDER_VALGRIND:-0}" = 1 ] && skip "real-time takeover under valgrind"
uksim=$1 src=$2
. "$(dirname "$0")/free_run.sh"
free_run_setup kupdate-uncarried
scn="$src/kupdate-uncarried.scn"
COPY_TIMEOUT_S=80 # a run takes ~4 s here; the test's timeout is 300 s

# must_fail NAME FROM TO: a copy of the scenario with line FROM made TO
# must fail the run (exit 1, the expectation named as failed).
must_fail() {
  sed "s|^$2\$|$3|" "$scn" >"$dir/$1.scn"
  grep -qxF "$3" "$dir/$1.scn" || { echo "FAIL $1: the copy was not made"; fail=1; return; }
  # A copy that hangs (its run waits for what the changed line keeps from
  # happening) is ended and said, not left to the test's own timeout.
  timeout "$COPY_TIMEOUT_S" "$uksim" run --quiet "$dir/$1.scn" \
    >"$dir/$1.out" 2>&1
  st=$?
  if [ $st = 124 ]; then
    echo "FAIL $1: the copy did not end within ${COPY_TIMEOUT_S} s"
    cat "$dir/$1.out"
    fail=1
  elif [ $st != 1 ] || ! grep -q "FAIL" "$dir/$1.out"; then
    echo "FAIL $1: a copy expecting '$3' did not fail (exit $st)"
    cat "$dir/$1.out"
    fail=1
  else
    echo "ok   $1 fails: $(grep -m1 FAIL "$dir/$1.out")"
  fi
}

must_fail carried 'expect trace contains kupdate \* "cannot move: netlink"' \
  'expect trace omits kupdate * "cannot move: netlink"'
must_fail ended 'expect trace contains exit far "status 0"' \
  'expect ended far'
must_fail unmoved 'expect trace contains failover \* "1 moved"' \
  'expect trace contains failover * "0 moved"'
exit $fail
