#!/bin/sh
# Installs what is missing, builds, and runs every test: the unit,
# integration and interoperability suites, the same suites under valgrind
# memcheck, and a short fuzz run of the 9P decoder and server.
set -eu
cd "$(dirname "$0")"
sh scripts/deps.sh
[ -d build ] || meson setup build >/dev/null
meson compile -C build
meson test -C build --print-errorlogs
meson test -C build --setup=valgrind --print-errorlogs
FUZZ_SECONDS=${FUZZ_SECONDS:-30} sh tests/fuzz/run.sh
echo "check.sh: all tests passed"
