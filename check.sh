#!/bin/sh
# Installs what is missing, builds, and runs every test: the unit,
# integration and interoperability suites, the same suites under valgrind
# memcheck, and a short fuzz run (tests/fuzz/run.sh: 9P, scenarios, the
# kernel's call decoder; an input that fails is kept in fuzz-artifacts/).
set -eu
cd "$(dirname "$0")"
sh scripts/deps.sh
[ -d build ] || meson setup build >/dev/null
meson compile -C build
meson test -C build --print-errorlogs
meson test -C build --setup=valgrind --print-errorlogs
FUZZ_SECONDS=${FUZZ_SECONDS:-30} sh tests/fuzz/run.sh
echo "check.sh: all tests passed"
