# Sourced by the scenario tests (orthros.sh, migrate.sh): must_fail TEXT
# LINE runs a copy of the scenario $base with LINE added, which must fail
# (exit 1) with a verdict saying TEXT; otherwise it says why and sets
# fail=1.  Uses $uksim and the test's directory $dir.
must_fail() {
  cp "$base" "$dir/bad.scn"
  echo "$2" >>"$dir/bad.scn"
  if "$uksim" run --quiet "$dir/bad.scn" >"$dir/bad.out" 2>&1; then
    echo "FAIL '$2' held"
    fail=1
  elif ! grep -q "FAIL $1" "$dir/bad.out"; then
    echo "FAIL '$2' did not fail as expected:"
    cat "$dir/bad.out"
    fail=1
  else
    echo "ok   '$2' fails: $(grep "FAIL $1" "$dir/bad.out")"
  fi
}
