# Sourced by the free-running scenario tests (orthros.sh, kupdate.sh):
# their runs are real time, so each scenario is run once and must hold
# every expectation; no trace hash is compared.
#   free_run_setup TAG   a temporary directory $dir (removed at exit),
#                        TMPDIR inside it, fail=0, n=0
#   run_each GLOB        runs every scenario matching GLOB (a path), n
#                        counted, fail=1 on any that does not hold
free_run_setup() {
  dir=$(mktemp -d "${TMPDIR:-/tmp}/uksim-$1.XXXXXX") && mkdir "$dir/tmp" ||
    { echo "FAIL: no temporary directory"; exit 1; }
  trap 'rm -rf "$dir"' EXIT
  export TMPDIR="$dir/tmp"
  fail=0
  n=0
}

run_each() {
  for f in $1; do
    name=$(basename "$f" .scn)
    n=$((n + 1))
    if "$uksim" run --quiet "$f" >"$dir/$name.out" 2>&1; then
      echo "ok   $name: $(tail -1 "$dir/$name.out")"
    else
      echo "FAIL $name:"
      cat "$dir/$name.out"
      fail=1
    fi
  done
}
