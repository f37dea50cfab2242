#!/bin/sh
# Installs the Debian 12 packages uksim needs, if any are missing.  Run as
# root it installs them; otherwise it prints the exact command and stops.
set -eu
pkgs="gcc meson ninja-build pkg-config libuv1-dev libprotobuf-c-dev
protobuf-c-compiler libleveldb-dev libfuse3-dev fuse3 libcriterion-dev
libsodium-dev valgrind diod clang libclang-rt-14-dev"
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "uksim needs these Debian packages:$missing" >&2
  echo "install them as root, then run this again:" >&2
  echo "  sudo apt-get install -y$missing" >&2
  exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq $missing >/dev/null
