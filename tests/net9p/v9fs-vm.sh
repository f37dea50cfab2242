#!/bin/sh
# Mounts a 9P server with the Linux kernel's own 9P client (v9fs), which
# this machine's kernel lacks: boots Debian's kernel under QEMU (TCG, no
# KVM needed) with a busybox initramfs and mounts the server on /mnt
# through a virtio console that QEMU connects to 127.0.0.1:PORT
# (trans=fd, so the guest needs no network), with msize=8192 (large
# files take many messages) and version=VERSION
# (9p2000 is classic 9P2000 as Plan 9 speaks it; 9p2000.L; 9p2000.u).
# Then it runs GUEST_SCRIPT (a busybox sh script) in the guest and powers
# it off.  Everything the guest prints goes to standard output, ending
# with a line "v9fs-vm: exit N" that carries the script's status (QEMU's
# own exit status cannot: this script exits 0 once the guest has run).
#   usage: v9fs-vm.sh PORT VERSION GUEST_SCRIPT
# Needs (scripts/deps.sh): qemu-system-x86, linux-image-amd64,
# busybox-static, cpio.  Exits 2 with a message when one is missing.
set -eu
port=$1
version=$2
script=$3
die() {
  echo "v9fs-vm: $*" >&2
  exit 2
}
kernel=""
for k in /boot/vmlinuz-*; do
  v=${k#/boot/vmlinuz-}
  [ -r "$k" ] && [ -e "/lib/modules/$v/kernel/fs/9p/9p.ko" ] && kernel=$k
done
[ -n "$kernel" ] ||
  die "no Debian kernel with 9p modules in /boot (apt-get install linux-image-amd64)"
mods=/lib/modules/${kernel#/boot/vmlinuz-}
command -v qemu-system-x86_64 >/dev/null ||
  die "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"
[ -x /bin/busybox ] ||
  die "/bin/busybox not found (apt-get install busybox-static)"
command -v cpio >/dev/null || die "cpio not found (apt-get install cpio)"

dir=$(mktemp -d "${TMPDIR:-/tmp}/uksim-v9fs.XXXXXX")
trap 'rm -rf "$dir"' EXIT
root=$dir/root
mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$root/mnt" \
  "$root/lib"
cp /bin/busybox "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
# The modules 9p and 9pnet_fd need, dependencies first (modules.dep order).
: >"$root/modules"
for m in virtio_pci virtio_console 9p 9pnet_fd; do
  line=$(grep "^[^:]*/$m.ko:" "$mods/modules.dep") ||
    die "$m.ko not in $mods/modules.dep"
  # shellcheck disable=SC2086
  for d in $(printf '%s\n' ${line#*:} | tac) "${line%%:*}"; do
    grep -qx "$d" "$root/modules" && continue
    mkdir -p "$root/lib/$(dirname "$d")"
    cp "$mods/$d" "$root/lib/$d"
    echo "$d" >>"$root/modules"
  done
done
cp "$script" "$root/guest.sh"
echo "$version" >"$root/version"
cat >"$root/init" <<'EOF'
#!/bin/sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules); do
  insmod "/lib/$m" || echo "v9fs-vm: insmod $m failed"
done
# The kernel's fd transport needs a file it can read and write: a tty
# (the virtio console hvc0) can, a plain virtio-serial port cannot.  The
# tty must be raw (no echo, no line editing) while the kernel holds it;
# hvc resets its settings on the last close, so stty works on the very
# descriptor the mount takes over.
status=1
exec 3<>/dev/hvc0
stty raw -echo <&3
opts="trans=fd,rfdno=3,wfdno=3,msize=8192,uname=glenda"
if mount -t 9p -o "$opts,version=$(cat /version)" p9 /mnt; then
  exec 3>&-
  echo "v9fs-vm: mounted"
  sh /guest.sh 2>&1
  status=$?
  umount /mnt
else
  echo "v9fs-vm: mount failed"
  dmesg | tail -n 20
fi
echo "v9fs-vm: exit $status"
reboot -f
EOF
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet) >"$dir/initrd"

timeout 300 qemu-system-x86_64 -accel tcg -M pc -m 256 -smp 1 \
  -nodefaults -no-reboot -display none -serial stdio \
  -kernel "$kernel" -initrd "$dir/initrd" \
  -append "console=ttyS0 quiet loglevel=3 panic=-1" \
  -device virtio-serial-pci \
  -chardev "socket,id=p9,host=127.0.0.1,port=$port" \
  -device virtconsole,chardev=p9 </dev/null
