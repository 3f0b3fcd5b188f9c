#!/usr/bin/env bash
# Boots the test kernel under qemu (TCG; no KVM needed) with the host's root shared read-only over virtio-9p,
# OUT_DIR shared read-write (it must hold guest.sh, the commands to run), and a fresh ext4 disk for the cachefiles
# cache directory (cachefiles cannot bind on tmpfs or 9p). Exits with guest.sh's exit code; the guest's console is
# in OUT_DIR/console.log and guest.sh's output in OUT_DIR/guest.log.
# Usage: run-vm.sh BZIMAGE OUT_DIR [TIMEOUT_SECONDS]
set -euo pipefail
here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
kernel=$1 out=$(readlink -f "$2") limit=${3:-900}
[ -f "$out/guest.sh" ] || { echo "run-vm: $out/guest.sh is missing" >&2; exit 2; }
disk="$out/cache-disk.img"
rm -f "$disk" "$out/exit-code"
truncate -s 2G "$disk"
mkfs.ext4 -q -F "$disk"
timeout --kill-after=10 "$limit" qemu-system-x86_64 \
  -machine q35 -accel tcg -cpu max -smp 2 -m 2048 -nographic -no-reboot \
  -kernel "$kernel" \
  -append "console=ttyS0 panic=-1 root=hostroot rootfstype=9p rootflags=trans=virtio,version=9p2000.L,msize=512000,cache=loose ro init=$here/guest-init.sh" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
  -virtfs local,path="$out",mount_tag=out,security_model=none,multidevs=remap \
  -drive file="$disk",if=virtio,format=raw,cache=unsafe \
  -device virtio-rng-pci \
  >"$out/console.log" 2>&1 || { echo "run-vm: qemu failed or timed out after ${limit}s; console:" >&2; tail -40 "$out/console.log" >&2; exit 3; }
rm -f "$disk"
[ -f "$out/exit-code" ] || { echo "run-vm: the guest did not finish guest.sh; console:" >&2; tail -40 "$out/console.log" >&2; exit 4; }
exit "$(cat "$out/exit-code")"
