# Sourced by the install tests (out_of_tree.sh, new_server.sh): installs
# the build into a temporary DESTDIR and sets what a student's shell would
# have after `meson install`:
#   KIT_TMP      the temporary directory (removed at exit)
#   KIT_ROOT     the DESTDIR
#   KIT_UKSIM    the installed uksim
#   KIT_CC       a compile line's prefix: cc with the installed uksim.pc's
#                flags come after the sources (kit_cc OUT SRC...)
# The pkg-config search starts in the install (PKG_CONFIG_LIBDIR) and is
# rooted in it (PKG_CONFIG_SYSROOT_DIR), so a uksim installed on the host
# cannot stand in for this one.
set -u
. "$(dirname "$0")/../skip.sh"
[ "${UKSIM_UNDER_VALGRIND:-0}" = 1 ] &&
  skip "installs and compiles: valgrind would check meson, cc and the shell"

kit_fail() {
  echo "${0##*/}: $*"
  exit 1
}

KIT_TMP=$(mktemp -d "${TMPDIR:-/tmp}/uksim-kit.XXXXXX") || exit 1
trap 'rm -rf "$KIT_TMP"' EXIT
KIT_ROOT=$KIT_TMP/root
DESTDIR=$KIT_ROOT meson install -C "$UKSIM_BUILD_ROOT" --no-rebuild \
  --quiet >"$KIT_TMP/install.log" 2>&1 ||
  { cat "$KIT_TMP/install.log"; kit_fail "meson install failed"; }
KIT_UKSIM=$(find "$KIT_ROOT" -path '*/bin/uksim' -type f | head -n 1)
[ -x "$KIT_UKSIM" ] || kit_fail "no bin/uksim in the install"
kit_pc=$(find "$KIT_ROOT" -name uksim.pc | head -n 1)
[ -n "$kit_pc" ] || kit_fail "no uksim.pc in the install"
# The host's own .pc directories come after the install's, for the
# libraries uksim-9p.pc requires (libuv, libsodium): they are not uksim's,
# and a host uksim would still be found after this one.  The sysroot
# applies to them too, so their paths are the install's: libuv's and
# libsodium's headers live in /usr/include, which cc finds anyway.
export PKG_CONFIG_LIBDIR="${kit_pc%/*}:$(env -u PKG_CONFIG_LIBDIR pkg-config --variable pc_path pkg-config)"
export PKG_CONFIG_SYSROOT_DIR="$KIT_ROOT"
unset PKG_CONFIG_PATH

# kit_cc OUT SRC...: builds a program against the install, as a student
# would, warnings as errors.
kit_cc() {
  kit_out=$1
  shift
  # shellcheck disable=SC2046 # pkg-config's words are meant to split
  cc -Wall -Wextra -Werror -o "$kit_out" "$@" \
    $(pkg-config --cflags --libs uksim) || kit_fail "cc $* failed"
}

# kit_cc_9p OUT SRC...: the same for a 9P program (uksim-9p.pc, net9p).
kit_cc_9p() {
  kit_out=$1
  shift
  # shellcheck disable=SC2046 # pkg-config's words are meant to split
  cc -Wall -Wextra -Werror -o "$kit_out" "$@" \
    $(pkg-config --cflags --libs uksim-9p) || kit_fail "cc $* failed"
}
