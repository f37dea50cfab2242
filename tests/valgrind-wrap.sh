#!/bin/sh
# meson test --setup=valgrind runs every test through this wrapper.
#
# Criterion forks each test and the integration tests start whole process
# trees (machine, kernel, servers, application processes), so valgrind
# follows children and writes one log per process.  Its exit code alone
# misses errors and leaks in children: every log is checked here.
dir=$(mktemp -d "${TMPDIR:-/tmp}/uksim-vg.XXXXXX") || exit 1
valgrind --trace-children=yes \
  --trace-children-skip='*/diod,*/diodls,*/diodcat,*/diodload,/bin/*,/usr/bin/*,/usr/sbin/*' \
  --suppressions="$(dirname "$0")/criterion.supp" \
  --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
  --error-exitcode=99 --log-file="$dir/vg.%p.log" "$@"
status=$?
# Not --quiet: every log must end with its ERROR SUMMARY line to be read.
bad=$(grep -l -E 'ERROR SUMMARY: [1-9]|definitely lost: [1-9]' "$dir"/vg.*.log 2>/dev/null)
logs=$(ls "$dir"/vg.*.log 2>/dev/null | wc -l)
summaries=$(grep -l 'ERROR SUMMARY' "$dir"/vg.*.log 2>/dev/null | wc -l)
echo "valgrind: $logs processes checked, $summaries with a summary"
if [ -n "$bad" ]; then
  for f in $bad; do
    echo "== valgrind: $f"
    cat "$f"
  done
  rm -rf "$dir"
  exit 1
fi
rm -rf "$dir"
exit $status
