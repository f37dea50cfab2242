#!/bin/sh
# Installs what is missing, builds, and runs the default demonstration.
set -eu
cd "$(dirname "$0")"
sh scripts/deps.sh
[ -d build ] || meson setup build >/dev/null
meson compile -C build >/dev/null
exec build/cli/uksim run "$@"
