#!/bin/sh
# meson install runs this (scenarios/meson.build): copies the shipped
# scenarios (scenarios/*.scn, the files they name, scenarios/bench/) to
# DATADIR/uksim/scenarios under the install's DESTDIR, so that an installed
# `uksim run` finds its tour (sim-kernel/kpath.h).  At install time, not
# configure time, so a scenario added to the tree is installed without
# editing a list.
#   install-scenarios.sh SRCDIR DATADIR
set -eu
src=$1
dst=${MESON_INSTALL_DESTDIR_PREFIX:?run by meson install}/$2/uksim/scenarios
mkdir -p "$dst/bench"
cp "$src"/*.scn "$src"/*.expected "$dst/"
cp "$src"/bench/*.scn "$dst/bench/"
