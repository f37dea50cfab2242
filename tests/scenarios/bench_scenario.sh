#!/bin/sh
# uksim bench scenario --quick --json: one JSON object whose figures are
# real measurements (positive, consistent with each other), with every key
# the issue names.  The targets are the benchmark's to report, not this
# test's to enforce.  Skipped under valgrind (exit 77).
#   bench_scenario.sh UKSIM
set -u
. "$(dirname "$0")/../skip.sh"
[ "${UKSIM_UNDER_VALGRIND:-0}" = 1 ] && skip "under valgrind"
out=$("$1" bench scenario --quick --json --seeds 10) || {
  echo "bench_scenario.sh: the benchmark failed"
  exit 1
}
echo "$out"
printf '%s' "$out" | python3 -c '
import json, sys
f = json.load(sys.stdin)
for k in ("lockstep_10k_s", "free_10k_s", "explore_seeds_per_min"):
    assert isinstance(f[k], (int, float)) and f[k] > 0, k
assert f["explore_seeds"] == 10, f["explore_seeds"]
assert abs(f["lockstep_over_free"] - f["lockstep_10k_s"] / f["free_10k_s"]) < 0.01
# 10 seeds cannot take less than the fastest single run of the same kind
# of machine, spread over the jobs: a sanity bound, not a target.
assert f["explore_seeds_per_min"] < 60 * f["explore_jobs"] / 0.01
assert f["targets_met"] in (True, False)
print("bench_scenario.sh: ok")
'
