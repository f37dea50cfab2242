#!/bin/sh
# uksim new-server (issue 17, the kit): the skeleton it writes builds with
# its Makefile against a DESTDIR install (pkg-config) and its scenario,
# which replaces the server while a client greets it, passes under the
# installed uksim.  It must be able to fail: the same skeleton with its
# restore hook broken (every instance starts from a fresh state) fails the
# scenario, since the greeting count is lost at the replacement.  The
# command's errors: --help, a NAME that is not a C identifier, too long or
# a program uksim already runs, a DIR that is not empty (nothing written),
# an empty DIR (accepted).
#   new_server.sh
. "$(dirname "$0")/install_lib.sh"

work=$KIT_TMP/work
mkdir "$work"

# expect_status WANT TEXT CMD...: CMD exits WANT and prints TEXT.
expect_status() {
  want=$1 text=$2
  shift 2
  out=$("$@" 2>&1)
  got=$?
  [ "$got" = "$want" ] && printf '%s' "$out" | grep -qF -- "$text" && return
  printf '%s\n' "$out"
  kit_fail "$* exited $got (wanted $want, saying \"$text\")"
}

expect_status 0 "usage: uksim new-server NAME" "$KIT_UKSIM" new-server --help
expect_status 2 "'9lives' is not a C identifier" \
  "$KIT_UKSIM" new-server 9lives --dir "$work/a"
expect_status 2 "'my-srv' is not a C identifier" \
  "$KIT_UKSIM" new-server my-srv --dir "$work/a"
expect_status 2 "not a C identifier of at most 24 bytes" \
  "$KIT_UKSIM" new-server abcdefghijklmnopqrstuvwxy --dir "$work/a"
expect_status 2 "uksim already runs a program greet" \
  "$KIT_UKSIM" new-server greet --dir "$work/a"
expect_status 2 "usage" "$KIT_UKSIM" new-server
expect_status 2 "usage" "$KIT_UKSIM" new-server a b
[ -e "$work/a" ] && kit_fail "a refused NAME created its directory"
mkdir "$work/full" && touch "$work/full/keep"
expect_status 1 "exists and is not empty" \
  "$KIT_UKSIM" new-server fine --dir "$work/full"
[ "$(ls "$work/full")" = keep ] && [ ! -s "$work/full/keep" ] ||
  kit_fail "new-server wrote into a directory that was not empty"

# The skeleton, in an existing empty directory, built and run as a
# student would: make check.
mkdir "$work/greeter"
expect_status 0 "wrote $work/greeter/greeter.c" \
  "$KIT_UKSIM" new-server greeter --dir "$work/greeter"
for f in greeter.c greeter.scn Makefile; do
  [ -s "$work/greeter/$f" ] || kit_fail "no $f written"
done
grep -q '@NAME@' "$work/greeter"/* && kit_fail "a placeholder was left"

# check NAME DIR: make check in DIR, its output in $KIT_TMP/NAME.out.
check() {
  make -C "$2" CFLAGS="-O2 -g -Werror" UKSIM="$KIT_UKSIM" check \
    >"$KIT_TMP/$1.out" 2>&1
}
check good "$work/greeter" ||
  { cat "$KIT_TMP/good.out"; kit_fail "the skeleton did not pass"; }
grep -v '^\[' "$KIT_TMP/good.out"
grep -q 'ok   trace contains commit kernel' "$KIT_TMP/good.out" ||
  kit_fail "the scenario printed no commit verdict"

# Broken restore: the successor ignores its predecessor's state.
cp -r "$work/greeter" "$work/broken"
rm -f "$work/broken/greeter"
sed 's/int r = srv_state_get(&state_ica);/int r = -ENOENT;/' \
  "$work/greeter/greeter.c" >"$work/broken/greeter.c"
cmp -s "$work/greeter/greeter.c" "$work/broken/greeter.c" &&
  kit_fail "the skeleton's restore_state changed shape"
check broken "$work/broken" &&
  { cat "$KIT_TMP/broken.out"; kit_fail "a server losing its state passed"; }
grep -q 'greet: count is' "$KIT_TMP/broken.out" ||
  { cat "$KIT_TMP/broken.out"; kit_fail "greet did not see the lost count"; }
echo "new_server.sh: the skeleton built and passed; the broken one failed"
exit 0
