#!/bin/sh
# Installs the Debian 12 packages uksim needs, if any are missing.  Run as
# root it installs them; otherwise it prints the exact command and stops.
set -eu
pkgs="gcc meson ninja-build pkg-config libuv1-dev libprotobuf-c-dev
protobuf-c-compiler libleveldb-dev libfuse3-dev fuse3 libcriterion-dev
libsodium-dev make valgrind diod drawterm-9front clang libclang-rt-14-dev libjansson-dev
chromium"
# tests/net9p/v9fs-vm.sh: Linux's own 9P client in a QEMU guest.  Installed
# without recommends (a kernel and QEMU recommend a desktop's worth).
vm_pkgs="qemu-system-x86 linux-image-amd64 busybox-static cpio"
missing=""
vm_missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    missing="$missing $p"
done
for p in $vm_pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    vm_missing="$vm_missing $p"
done
[ -z "$missing$vm_missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "uksim needs these Debian packages:$missing$vm_missing" >&2
  echo "install them as root, then run this again:" >&2
  [ -n "$missing" ] && echo "  sudo apt-get install -y$missing" >&2
  [ -n "$vm_missing" ] &&
    echo "  sudo apt-get install -y --no-install-recommends$vm_missing" >&2
  exit 1
fi
echo "installing:$missing$vm_missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
[ -z "$missing" ] || apt-get install -y -qq $missing >/dev/null
# shellcheck disable=SC2086
[ -z "$vm_missing" ] ||
  apt-get install -y -qq --no-install-recommends $vm_missing >/dev/null
