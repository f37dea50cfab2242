#!/bin/bash
# `uksim bench --help` lists every option each benchmark accepts: the
# options are read from the benchmarks' own sources (bench/bench_NAME.c:
# their getopt_long tables and their strcmp(argv[i], "--x") tests), so a
# bench that gains an option its help does not name fails this test.
#
#   bench_help.sh UKSIM BENCH_SRC_DIR
#
# The checker is tried first on a help text with one option taken out,
# which it must refuse: a test that cannot fail proves nothing.
set -u
uksim=$1
src=$2
fail=0

# The options bench/bench_NAME.c parses, one a line (--help aside).
options_of() {
  tr '\n' ' ' < "$1" | {
    t=$(cat)
    grep -oE '\{ *"[a-z0-9-]+", *(no|required|optional)_argument' <<< "$t" |
      sed -E 's/\{ *"([^"]+)".*/--\1/'
    grep -oE 'strcmp\( *argv\[[^]]*\], *"--[a-z0-9-]+" *\)' <<< "$t" |
      sed -E 's/.*"(--[^"]+)".*/\1/'
  } | grep -vx -- --help | sort -u
}

# The lines of HELP that belong to bench NAME: its own line (two spaces,
# the name) and the indented lines under it, up to the next bench's.
section_of() {
  awk -v name="$2" '
    /^  [^ ]/ { split($0, w, " "); inside = (w[1] == name) }
    inside' <<< "$1"
}

# Checks HELP against every bench source; prints what is missing and
# returns 1 if anything is.
check() {
  local help=$1 bad=0 f name opts opt sec
  for f in "$src"/bench_*.c; do
    name=$(basename "$f" .c)
    name=${name#bench_}
    opts=$(options_of "$f")
    if [ -z "$opts" ]; then
      echo "bench $name: no option found in $f (the reader broke?)"
      bad=1
      continue
    fi
    sec=$(section_of "$help" "$name")
    if [ -z "$sec" ]; then
      echo "bench $name: not in uksim bench --help"
      bad=1
      continue
    fi
    for opt in $opts; do
      if ! grep -qE -- "(^|[[ ])$opt([] =]|$)" <<< "$sec"; then
        echo "bench $name: $opt (parsed in $(basename "$f")) missing from its help"
        bad=1
      fi
    done
  done
  return $bad
}

help=$("$uksim" bench --help)
status=$?
if [ $status -ne 0 ]; then
  echo "uksim bench --help exited $status, not 0"
  exit 1
fi
[ "$(ls "$src"/bench_*.c | wc -l)" -ge 9 ] ||
  { echo "fewer than 9 benchmarks under $src"; exit 1; }

# The checker must see a missing option: take --procs out of kupdate's.
if check "$(sed 's/ \[--procs N[^]]*\]//' <<< "$help")" > /dev/null; then
  echo "the checker passed a help without kupdate's --procs"
  fail=1
fi

check "$help" || fail=1

# A bad bench name or no name is a usage error (exit 2), the text on stderr.
"$uksim" bench no-such-bench > /dev/null 2>&1
[ $? -eq 2 ] || { echo "uksim bench no-such-bench did not exit 2"; fail=1; }
[ -z "$("$uksim" bench 2> /dev/null)" ] ||
  { echo "uksim bench with no name wrote its usage to stdout"; fail=1; }

[ $fail -eq 0 ] && echo "uksim bench --help names every option of $(ls "$src"/bench_*.c | wc -l) benchmarks"
exit $fail
