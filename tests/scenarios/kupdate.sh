#!/bin/sh
# The kernel-update scenarios (scenarios/kupdate-*.scn, issue 15): each
# one, run once with its own seed, holds every expectation (exit 0).  They
# run free (the update is a takeover in real time), so unlike
# run_scenarios.sh no hash is compared.  A copy that expects a failover
# that did not happen fails.  Nothing is left in TMPDIR.  Under valgrind
# the runs skip: the kernels would fail over by themselves.
# Usage: kupdate.sh UKSIM SCENARIO_DIR
set -u
. "$(dirname "$0")/../skip.sh"
[ "${UKSIM_UNDER_VALGRIND:-0}" = 1 ] && skip "real-time takeover under valgrind"
uksim=$1 src=$2
. "$(dirname "$0")/free_run.sh"
free_run_setup kupdate
run_each "$src/kupdate-*.scn"
[ "$n" -ge 2 ] || { echo "FAIL only $n kernel-update scenarios shipped"; fail=1; }
# An expectation that does not hold must fail the run.
sed 's/^expect failovers == 1$/expect failovers == 2/' \
  "$src/kupdate-hung.scn" >"$dir/broken.scn"
if "$uksim" run --quiet "$dir/broken.scn" >"$dir/broken.out" 2>&1; then
  echo "FAIL a copy expecting 2 failovers passed"
  fail=1
fi
# The old kernel's dirty blocks are adopted: a copy expecting that the
# new kernel adopted none must fail.
sed 's|^expect trace contains failover \* "adopt:"$|expect trace omits failover * "adopt:"|' \
  "$src/kupdate-file-write.scn" >"$dir/unadopted.scn"
grep -q '^expect trace omits failover \* "adopt:"$' "$dir/unadopted.scn" ||
  { echo "FAIL the unadopted copy was not made"; fail=1; }
if "$uksim" run --quiet "$dir/unadopted.scn" >"$dir/unadopted.out" 2>&1; then
  echo "FAIL a copy expecting no adopted block passed"
  fail=1
fi
# kupdate needs a backup of the next version: refused at parse time.
sed 's/ --backup-version 2//' "$src/kupdate-under-load.scn" >"$dir/same.scn"
"$uksim" run --quiet "$dir/same.scn" >"$dir/same.out" 2>&1
st=$?
if [ $st != 2 ] || ! grep -q "kupdate needs a backup of the next kernel version" "$dir/same.out"; then
  echo "FAIL kupdate without --backup-version 2 was not refused (exit $st):"
  cat "$dir/same.out"
  fail=1
fi
[ $fail = 0 ] && echo "$n passed, 0 failed"
exit $fail
