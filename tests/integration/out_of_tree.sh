#!/bin/sh
# A student's server outside the tree (issue 17, the kit): servers/hello.c
# copied away from the source, built with `cc hello.c $(pkg-config --cflags
# --libs uksim)` against a DESTDIR install, and run in a scenario by the
# installed uksim, which finds it through UKSIM_PATH.  It must fail when
# the server is wrong: the same scenario against a server that answers
# "bye" fails, and so does a run without UKSIM_PATH (the server is nowhere
# else) or naming a program only the build tree has (an installed uksim
# does not search the build).  And the installed uksim alone runs its
# tour, installed in share/uksim/scenarios, with the servers beside it.
#   out_of_tree.sh
. "$(dirname "$0")/install_lib.sh"

student=$KIT_TMP/student
mkdir "$student"
cp "$UKSIM_SOURCE_ROOT/servers/hello.c" "$student/hello.c"
kit_cc "$student/student_hello" "$student/hello.c"
# The same server with a wrong answer: the expectations must catch it.
sed 's/#define GREETING "hello, "/#define GREETING "bye, "/' \
  "$student/hello.c" >"$student/bad.c"
cmp -s "$student/hello.c" "$student/bad.c" && kit_fail "hello.c changed shape"
kit_cc "$student/bad_hello" "$student/bad.c"

# scenario BINARY: a scenario running BINARY as service hello.
scenario() {
  cat <<SCN
scenario "a student's hello server, built outside the tree"
machine --seed 7
server hello --binary $1
app g --binary greet --args "--service hello --count 20"
expect all-answered
expect exactly-one-answer
expect errors == 0
expect trace contains exit g "status 0"
expect no-leaks
SCN
}
scenario student_hello >"$student/hello.scn"
scenario bad_hello >"$student/bad.scn"
scenario hostile_ap >"$student/build-only.scn"

# run NAME UKSIM_PATH SCENARIO: runs it under the installed uksim; the
# output in $KIT_TMP/NAME.out, the status returned.
run() {
  (cd "$KIT_TMP" && UKSIM_PATH=$2 "$KIT_UKSIM" run "$3") \
    >"$KIT_TMP/$1.out" 2>&1
}

run good "$student" "$student/hello.scn" ||
  { cat "$KIT_TMP/good.out"; kit_fail "the student's hello failed"; }
cat "$KIT_TMP/good.out"
grep -q 'trace contains exit g "status 0"' "$KIT_TMP/good.out" ||
  kit_fail "the run printed no verdicts"

run bad "$student" "$student/bad.scn" &&
  { cat "$KIT_TMP/bad.out"; kit_fail "a wrong greeting passed"; }
grep -q 'answered "bye, ' "$KIT_TMP/bad.out" ||
  { cat "$KIT_TMP/bad.out"; kit_fail "greet did not name the wrong answer"; }

# not_found NAME PROGRAM: run NAME failed because PROGRAM was not found.
not_found() {
  grep -q "program $2 not found" "$KIT_TMP/$1.out" && return
  cat "$KIT_TMP/$1.out"
  kit_fail "$1: $2 was found, or the run failed for another reason"
}
run nopath "" "$student/hello.scn" && kit_fail "nopath passed"
not_found nopath student_hello
run buildonly "$student" "$student/build-only.scn" &&
  kit_fail "buildonly passed"
not_found buildonly hostile_ap
# The installed uksim alone, no UKSIM_PATH: its tour from share/uksim, its
# servers and programs from libexec/uksim beside it.
(cd "$KIT_TMP" && env -u UKSIM_PATH "$KIT_UKSIM") >"$KIT_TMP/tour.out" 2>&1 ||
  { cat "$KIT_TMP/tour.out"; kit_fail "the installed tour failed"; }
grep -q "^uksim: $KIT_ROOT/.*share/uksim/scenarios/tour.scn: " \
  "$KIT_TMP/tour.out" ||
  { head -n 3 "$KIT_TMP/tour.out"; kit_fail "the tour was not the installed one"; }
# A 9P server of one's own (lab 06's tallyfs) built against the installed
# net9p (uksim-9p.pc), served on a unix socket and read by the installed
# uksim's 9P client.
kit_cc_9p "$student/tallyfs" "$UKSIM_SOURCE_ROOT/docs/labs/files/tallyfs.c"
mkdir -m 700 "$student/9p" # net9p listens only in a private directory
"$student/tallyfs" "unix!$student/9p/sock" >"$KIT_TMP/tallyfs.out" 2>&1 &
tally=$!
for _ in 1 2 3 4 5 6 7 8 9 10; do
  [ -S "$student/9p/sock" ] && break
  sleep 0.2
done
got=$("$KIT_UKSIM" 9p "unix!$student/9p/sock" cat /hello 2>&1)
kill "$tally" 2>/dev/null
[ "$got" = "hello from tallyfs" ] ||
  kit_fail "the installed 9P client read '$got' from tallyfs: $(cat "$KIT_TMP/tallyfs.out")"
echo "out_of_tree.sh: the student's server built and passed; the wrong ones failed;" \
  "the installed tour passed; a 9P server built against uksim-9p.pc served"
exit 0
