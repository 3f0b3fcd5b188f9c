#!/usr/bin/env bash
# Installs prerequisites (Debian packages, NuGet restore), builds the rafs CLI with NativeAOT, then runs a
# small end-to-end demo: build an image from a sample tree, mount it with the kernel, list it, unmount.
# Needs root (apt-get, mount). Pass --no-demo to stop after the set-up, --packages-only to stop after apt-get.
# Packages: erofs-utils (fsck.erofs, the reference), attr, docker-registry (a real registry for tests), and for the
# fscache tests a kernel to build and boot: linux-source-6.12 and its build tools, qemu, e2fsprogs.
set -euo pipefail
here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
cd "$here"
need=()
for pkg in erofs-utils attr docker-registry qemu-system-x86 linux-source-6.12 flex bison bc libelf-dev libssl-dev e2fsprogs curl; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
[ "${1:-}" = "--packages-only" ] && exit 0
echo "== restoring and building"
dotnet restore Rafs.slnx -v q
dotnet publish src/Rafs.Cli -c Release -r linux-x64 -v q -nologo
[ "${1:-}" = "--no-demo" ] && exit 0
exec bash "$here/demo.sh"
