#!/bin/sh
# The docs checker can fail: small pages written here, each run through
# docrun.py, must pass or fail as docs/README.md ("How the docs are
# checked") says: a drifted output fails with the line it missed, masked
# differences (times, pids, addresses, /tmp paths) and elisions pass,
# counts are compared exactly, and doc: exit, terminal, stop, wait-for,
# skip and timeout do what they say.
#   test_docrun.sh DOCRUN.PY
set -u
. "$(dirname "$0")/../skip.sh"
[ "${UKSIM_UNDER_VALGRIND:-0}" = 1 ] && skip "under valgrind (a shell test of a python tool; it starts no uksim)"
docrun=$(realpath "$1")
root=$(mktemp -d /tmp/test_docrun.XXXXXX)
trap 'rm -rf "$root"' EXIT
failures=0

# page NAME: the page's text from stdin, written as $root/NAME.md
page() { cat > "$root/$1.md"; }

# expect pass|fail NAME [TEXT]: docrun.py on the page must pass (or fail)
# and, given TEXT, print it.
expect() {
  out=$(cd "$root" && python3 "$docrun" "$2.md" 2>&1)
  status=$?
  want=0
  [ "$1" = fail ] && want=1
  if [ $status -ne $want ]; then
    echo "FAIL: $2 should $1 (exit $status); it printed:"
    echo "$out" | sed 's/^/    /'
    failures=$((failures + 1))
    return
  fi
  if [ $# -gt 2 ] && ! printf "%s\n" "$out" | grep -qF -- "$3"; then
    echo "FAIL: $2 ($1s as it should) but does not print: $3; it printed:"
    echo "$out" | sed 's/^/    /'
    failures=$((failures + 1))
    return
  fi
  echo "ok: $2: ${1}${3:+, printing: $3}"
}

page same <<'EOF'
A page whose output is what it shows.
```sh
echo hello
echo world
```
It prints:
```
hello
world
```
EOF
expect pass same "1 blocks ran, 1 outputs matched, 0 skipped"

page drift <<'EOF'
```sh
echo hullo
```
```
hello
```
EOF
expect fail drift "first shown line not found"
expect fail drift "drift.md:1: the output drifted"
expect fail drift "    | hullo"

page order <<'EOF'
```sh
printf 'b\na\n'
```
```
a
b
```
EOF
expect fail order "    b"

page masked <<'EOF'
Times, sizes, pids, step numbers, addresses and /tmp paths are masked.
```sh
echo "took 12.5 ms and 3s, 4 KiB, 97%, pid 4242, [17] step, [  745] step, at 0x7f00aa, in /tmp/run.123/sock"
```
```
took 0.1 ms and 99s, 8 KiB, 3%, pid 1, [2] step, [3] step, at 0xdead, in /tmp/other/place
```
EOF
expect pass masked

page counts <<'EOF'
A count is not masked.
```sh
echo "3 requests answered"
```
```
4 requests answered
```
EOF
expect fail counts "4 requests answered"

page unit_in_word <<'EOF'
A number before a word that starts like a unit is not a time.
```sh
echo "3 steps"
```
```
4 steps
```
EOF
expect fail unit_in_word "4 steps"

page elision <<'EOF'
```sh
seq 1 10
```
Shown as an excerpt:
```
2
...
5
…

9
```
EOF
expect pass elision

page session <<'EOF'
Variables and cd carry over between blocks of a page.
```sh
x=42
cd /
```
Some prose.
```sh
echo "x is $x in $(pwd)"
```
```
x is 42 in /
```
EOF
expect pass session

page other_info <<'EOF'
A block with another info string between a command and its output is
not the output.
```sh
echo printed
```
```c
int main(void);
```
```
printed
```
EOF
expect pass other_info

page fails <<'EOF'
```sh
false
echo never
```
EOF
expect fail fails "a command failed (status 1); the block must exit 0"

page pipefail <<'EOF'
```sh
false | cat
```
EOF
expect fail pipefail "a command failed"

page exit_ok <<'EOF'
<!-- doc: exit 3 -->
```sh
echo "a failing scenario"
exit 3
```
```
a failing scenario
```
```sh
echo after
```
```
after
```
EOF
expect pass exit_ok

page exit_wrong <<'EOF'
<!-- doc: exit 3 -->
```sh
echo "it passed after all"
```
EOF
expect fail exit_wrong "exited 0, not 3"

page terminal <<'EOF'
A second terminal runs in the background; its output is not compared.
<!-- doc: terminal 2 -->
```sh
echo $$ > "$DOC_TMP/t2.pid"
sh -c 'echo $$ > "$DOC_TMP/t2.child"; exec sleep 1000'
```
```
anything at all
```
<!-- doc: wait-for $DOC_TMP/t2.child 10 -->
```sh
kill -0 "$(cat "$DOC_TMP/t2.child")" && echo running
```
```
running
```
<!-- doc: stop 2 -->
```sh
sleep 0.2
kill -0 "$(cat "$DOC_TMP/t2.child")" 2>/dev/null || echo stopped
```
```
stopped
```
EOF
expect pass terminal

page terminal_end <<'EOF'
A terminal still running when the page ends is killed.
<!-- doc: terminal 3 -->
```sh
(sleep 1; sh -c 'echo $$ > "$DOC_TMP/t3.child"; exec sleep 1000') | cat
```
<!-- doc: wait-for $DOC_TMP/t3.child 10 -->
```sh
cp "$DOC_TMP/t3.child" "$(dirname "$DOC_TMP")/$(basename "$DOC_TMP").t3"
```
EOF
expect pass terminal_end
for f in /tmp/docrun.*.t3; do
  [ -e "$f" ] || continue
  if kill -0 "$(cat "$f")" 2>/dev/null; then
    echo "FAIL: terminal 3's sleep outlived its page"
    kill "$(cat "$f")"
    failures=$((failures + 1))
  else
    echo "ok: terminal 3's sleep ended with its page"
  fi
  rm -f "$f"
done

page terminal_twice <<'EOF'
<!-- doc: terminal 5 -->
```sh
sleep 1000
```
<!-- doc: terminal 5 -->
```sh
sleep 1000
```
EOF
expect fail terminal_twice "terminal 5 still runs: doc: stop 5 first"

page stop_none <<'EOF'
<!-- doc: stop 4 -->
```sh
true
```
EOF
expect fail stop_none "doc: stop 4: no terminal 4 runs"

page wait_late <<'EOF'
<!-- doc: wait-for $DOC_TMP/never 1 -->
```sh
true
```
EOF
expect fail wait_late "nothing there after 1 s"

page skip <<'EOF'
<!-- doc: skip it opens a pager -->
```sh
false
```
```
never printed
```
EOF
expect pass skip "skipped: it opens a pager"

page skips <<'EOF'
<!-- doc: skip one -->
```sh
false
```
<!-- doc: skip two -->
```sh
false
```
<!-- doc: skip three -->
```sh
false
```
EOF
expect fail skips "3 blocks skipped, at most 2 may be"

page timeout <<'EOF'
<!-- doc: timeout 1 -->
```sh
echo started
sleep 30
```
EOF
expect fail timeout "still running after 1 s"

page unknown <<'EOF'
<!-- doc: termnial 2 -->
```sh
true
```
EOF
expect fail unknown "unknown directive doc: termnial 2"

page stray <<'EOF'
<!-- doc: exit 1 -->

```sh
true
```
EOF
expect fail stray "not right above a sh block"

page empty <<'EOF'
A lab with no commands.
EOF
expect fail empty "no command block"

# Names of the tests: one per page, docs/ and .md dropped, / as -.
mkdir -p "$root/tree/docs/labs/solutions"
printf '```sh\ntrue\n```\n' > "$root/tree/README.md"
printf '```sh\ntrue\n```\n' > "$root/tree/docs/x-tutorial.md"
printf 'no commands\n' > "$root/tree/docs/api.md"
printf 'no commands\n' > "$root/tree/docs/labs/07-failover.md"
printf 'the index\n' > "$root/tree/docs/labs/README.md"
printf '```sh\ntrue\n```\n' > "$root/tree/docs/labs/solutions/07-failover.md"
want='docs-README README.md
docs-x-tutorial docs/x-tutorial.md
docs-labs-07-failover docs/labs/07-failover.md
docs-labs-solutions-07-failover docs/labs/solutions/07-failover.md'
got=$(python3 "$docrun" --list "$root/tree")
if [ "$got" = "$want" ]; then
  echo "ok: --list names one test per page"
else
  echo "FAIL: --list printed:"; echo "$got"; echo "not:"; echo "$want"
  failures=$((failures + 1))
fi

# --remake rewrites a drifted output from the run, and the page passes.
page remade <<'EOF'
```sh
echo new text
```
```
old text
```
EOF
(cd "$root" && python3 "$docrun" --remake remade.md) > /dev/null
expect pass remade

# ... but never from a block that failed: its shown output stays.
page remade_failing <<'EOF2'
```sh
echo oops; false
```
```
kept as written
```
EOF2
(cd "$root" && python3 "$docrun" --remake remade_failing.md) > /dev/null
if grep -q "kept as written" "$root/remade_failing.md"; then
  echo "ok: --remake leaves a failing block's shown output alone"
else
  echo "FAIL: --remake rewrote a failing block's output:"; cat "$root/remade_failing.md"
  failures=$((failures + 1))
fi

[ $failures -eq 0 ] || { echo "test_docrun.sh: $failures failed"; exit 1; }
echo "test_docrun.sh: every case behaved as specified"
