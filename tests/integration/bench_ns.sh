#!/bin/sh
# uksim bench ns --quick --json: one JSON object with every key the issue
# names, each a real measurement (positive; a 1 MiB read takes longer than
# a 16-byte one, pinned and unpinned).  The target (ns_read_16_us <= 2 x
# null_rt_us) is the benchmark's to report, not this test's to enforce.
# Skipped under valgrind (exit 77).
#   bench_ns.sh UKSIM
set -u
. "$(dirname "$0")/../skip.sh"
[ "${UKSIM_UNDER_VALGRIND:-0}" = 1 ] && skip "under valgrind"
out=$("$1" bench ns --quick --json) || {
  echo "bench_ns.sh: the benchmark failed"
  exit 1
}
echo "$out"
printf '%s' "$out" | python3 -c '
import json, sys
f = json.load(sys.stdin)
keys = ("ns_read_16_us", "ns_read_1k_us", "ns_read_4k_us", "ns_read_8k_us",
        "ns_read_1m_us", "null_rt_us")
for fig in (f, f["pinned"]):
    for k in keys:
        assert isinstance(fig[k], (int, float)) and fig[k] > 0, k
    assert fig["ns_read_1m_us"] > fig["ns_read_16_us"], fig
    assert abs(fig["ns_read_16_ratio"] - fig["ns_read_16_us"] / fig["null_rt_us"]) < 0.01
assert f["targets_met"] in (True, False)
print("bench_ns.sh: ok")
'
