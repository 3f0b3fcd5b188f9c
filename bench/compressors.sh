#!/usr/bin/env bash
# Chunk codec benchmark: managed zstd (ZstdSharp.Port), Debian's libzstd via LibraryImport, and K4os LZ4,
# on 1 MiB chunks of a real tree, one thread. bench/compressors.sh [TREE] [MAX_MIB]
set -euo pipefail
here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
dotnet run -c Release --project "$here/Rafs.Bench" -- "${1:-/usr/share/dotnet}" "${2:-256}"
