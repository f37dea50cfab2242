#!/bin/sh
# uksim bench failover --quick --json: one JSON object with every key the
# issue names (each case's total and steps, the target case's steps, the
# usable memory of OS 1..5), each a real measurement, and no request lost:
# every call each protected load made across the failover came back, as
# an answer or as -ECONNRESET (its server died holding it), and the
# counter holds each answered increment once.  The time target (<= 100 ms)
# is the benchmark's to report, not this test's to enforce.
# Skipped under valgrind (exit 77).
#   bench_failover.sh UKSIM
set -u
. "$(dirname "$0")/../skip.sh"
[ "${UKSIM_UNDER_VALGRIND:-0}" = 1 ] && skip "under valgrind"
out=$("$1" bench failover --quick --json) || {
  echo "bench_failover.sh: the benchmark failed"
  echo "$out"
  exit 1
}
echo "$out"
printf '%s' "$out" | python3 -c '
import json, sys
f = json.load(sys.stdin)
steps = ("detect", "fence", "takeover", "devices", "filecache", "processes",
         "cache", "servers", "repartition", "next_backup")
n = f["procs_max"]
cases = ["panic_10p_0m", "panic_10p_64m", "panic_%dp_0m" % n,
         "panic_%dp_64m" % n, "crash_10p_0m", "panic_10p_1024m",
         "panic_10p_64m_writeback", "panic_%dp_64m_writeback" % n]
for c in cases:
    total = f["failover_%s_ms" % c]
    assert isinstance(total, (int, float)) and total > 0, c
    for s in steps:
        assert f["%s_%s_ms" % (c, s)] >= 0, (c, s)
    for s in ("detect", "processes", "next_backup"):
        assert f["%s_%s_ms" % (c, s)] > 0, (c, s)
    assert f["%s_detect_ms" % c] < total, c
    boot = f["boot_%s_ms" % c]
    assert boot > 0 and abs(f["failover_%s_ratio" % c] - total / boot) < 0.01, c
    assert f["%s_calls" % c] > 0 and f["%s_lost" % c] == 0, c
for s in steps:
    assert f[s + "_ms"] == f["panic_%dp_64m_%s_ms" % (n, s)], s
# 64 MiB of dirty blocks take longer to write back than to adopt, and
# longer to write back than none (--quick leaves out 1 GiB written back).
for p in ("10p", "%dp" % n):
    wb = f["panic_%s_64m_writeback_filecache_ms" % p]
    assert wb > f["panic_%s_64m_filecache_ms" % p], p
    assert wb > f["panic_%s_0m_filecache_ms" % p], p
assert "failover_panic_10p_1024m_writeback_ms" not in f
# The panic notice is found well before the heartbeat timeout is.
assert f["panic_10p_0m_detect_ms"] < f["detect_timeout_ms"]
# Table 5: usable memory drops once, at the 1st -> 2nd failover, then
# stays.  Until the machine re-partitions at failover its partition lists
# no OS after the 1st (0: repartitioned is false).
u = [f["usable_mib_os%d" % i] for i in range(1, 6)]
assert u[0] > 0, u
if f["repartitioned"]:
    assert 0 < u[1] <= u[0] and u[2] == u[3] == u[4] == u[1], u
else:
    assert u[1:] == [0, 0, 0, 0] and f["repartition_ms"] == 0, u
assert f["lost"] == 0 and f["errors"] == 0 and f["exactly_once"] is True
assert f["targets_met"] in (True, False)
print("bench_failover.sh: ok")
'
