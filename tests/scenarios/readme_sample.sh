#!/bin/sh
# README.md's sample output of the default demonstration is what a run of
# the tour prints today: every line of the sample block (the one that
# opens "uksim: scenarios/tour.scn") must appear in the run's output, in
# order, where "..." in a line stands for any text and a line "..." for
# any lines.  So the trace hash, the event count and the first steps on
# the front page cannot go stale unseen.
#   readme_sample.sh UKSIM README
set -u
. "$(dirname "$0")/../skip.sh"
[ "${UKSIM_UNDER_VALGRIND:-0}" = 1 ] && skip "under valgrind (a shell test: it runs uksim natively)"
uksim=$(realpath "$1") readme=$2
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# As ./demo.sh runs it: from the top of the tree, the tour by its
# relative name.
(cd "$(dirname "$readme")" && "$uksim" run scenarios/tour.scn) >"$out" 2>&1 || {
  echo "readme_sample.sh: the tour failed:"; cat "$out"; exit 1; }
python3 - "$readme" "$out" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
m = re.search(r"```\n(uksim: scenarios/tour\.scn.*?)```\n", text, re.S)
if not m:
    sys.exit("readme_sample.sh: README.md has no sample block of the tour")
want = [l for l in m.group(1).splitlines() if l != "..."]
got = open(sys.argv[2]).read().splitlines()
i = 0
for w in want:
    rx = re.compile("^" + ".*".join(map(re.escape, w.split("..."))) + "$")
    while i < len(got) and not rx.match(got[i]):
        i += 1
    if i == len(got):
        print("README.md's sample output is stale; this line is not in a run "
              "of the tour (in order):\n  " + w + "\nthe run printed:")
        print("\n".join(got[:12] + ["..."] + got[-8:]))
        sys.exit(1)
    i += 1
print(f"readme_sample.sh: {len(want)} sample lines found in the run, in order")
PY
