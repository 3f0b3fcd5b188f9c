#!/usr/bin/env bash
# Installs prerequisites (Debian packages, NuGet restore), builds the rafs CLI with NativeAOT, then runs a
# small end-to-end demo: build an image from a sample tree, mount it with the kernel, list it, unmount.
# Needs root (apt-get, mount). Pass --no-demo to stop after the set-up.
set -euo pipefail
here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
cd "$here"
need=()
for pkg in erofs-utils attr docker-registry; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
echo "== restoring and building"
dotnet restore Rafs.slnx -v q
dotnet publish src/Rafs.Cli -c Release -r linux-x64 -v q -nologo
[ "${1:-}" = "--no-demo" ] && exit 0
exec bash "$here/demo.sh"
