#!/usr/bin/env bash
# Builds (once) the small x86_64 kernel the fscache tests boot under qemu, from Debian's linux-source-6.12:
# `make tinyconfig` + kernel.config. Prints the bzImage path on stdout. The result is cached under
# $RAFS_VM_CACHE (default /var/cache/rafs-vm) as bzImage-<sha256 of kernel.config + source version>, so a
# second run costs nothing and a fragment change rebuilds. About 6 minutes on 2 cores.
set -euo pipefail
here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
cache=${RAFS_VM_CACHE:-/var/cache/rafs-vm}
source_tar=$(ls /usr/src/linux-source-6.12.tar.* 2>/dev/null | head -1 || true)
if [ -z "$source_tar" ]; then
  echo "build-kernel: /usr/src/linux-source-6.12.tar.* is missing: apt-get install linux-source-6.12" >&2
  exit 2
fi
key=$( (cat "$here/kernel.config"; dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null || stat -c %s "$source_tar") | sha256sum | cut -c1-16)
image="$cache/bzImage-$key"
if [ -s "$image" ]; then echo "$image"; exit 0; fi
mkdir -p "$cache"
exec 9>"$cache/.build.lock"
flock 9
if [ -s "$image" ]; then echo "$image"; exit 0; fi
work="$cache/linux-src"
if [ ! -f "$work/Makefile" ]; then
  echo "build-kernel: unpacking $source_tar" >&2
  rm -rf "$work" && mkdir -p "$work"
  tar -xf "$source_tar" -C "$work" --strip-components=1
fi
cd "$work"
echo "build-kernel: configuring (tinyconfig + $here/kernel.config)" >&2
make -s tinyconfig >/dev/null
./scripts/kconfig/merge_config.sh -m .config "$here/kernel.config" >/dev/null
make -s olddefconfig >/dev/null
missing=0
while IFS= read -r line; do
  case "$line" in CONFIG_*=y) grep -qx "$line" .config || { echo "build-kernel: $line did not stick" >&2; missing=1; } ;; esac
done <"$here/kernel.config"
[ "$missing" -eq 0 ] || exit 3
echo "build-kernel: building bzImage with $(nproc) jobs (about 6 minutes on 2 cores)" >&2
start=$(date +%s)
make -s -j"$(nproc)" bzImage >"$cache/build.log" 2>&1 || { tail -30 "$cache/build.log" >&2; exit 4; }
cp arch/x86/boot/bzImage "$image.tmp" && mv "$image.tmp" "$image"
echo "build-kernel: built in $(( $(date +%s) - start ))s" >&2
echo "$image"
