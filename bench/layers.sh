#!/usr/bin/env bash
# Layer conversion benchmark: OCI layer tars (gzip) → bootstrap + one zstd blob per layer.
# Prints conversion throughput, stored size against the gzip'd tars, dedup of a second image version with
# --chunk-dict, and rafs vs Debian's mkfs.erofs on the flattened tree.
#
#   bench/layers.sh [--work DIR] [--mkfs PATH]
set -euo pipefail
here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
rafs="$here/../rafs"
work=/var/tmp/rafs-bench-layers mkfs=$(command -v mkfs.erofs || true)
while [ $# -gt 0 ]; do
  case "$1" in --work) work=$2; shift 2;; --mkfs) mkfs=$2; shift 2;; *) echo "unknown option $1" >&2; exit 2;; esac
done
mkdir -p "$work"
"$rafs" --help >/dev/null
layers=("$work/l1-dotnet.tar.gz" "$work/l2-include.tar.gz" "$work/l3-gcc.tar.gz")
srcs=(/usr/share/dotnet /usr/include /usr/lib/gcc)
for i in 0 1 2; do
  [ -f "${layers[$i]}" ] || { echo "making ${layers[$i]}" >&2; tar --format=pax -C "${srcs[$i]}" -czf "${layers[$i]}" .; }
done
# Version 2: the same image with a changed top layer (one more file and a modified one).
v2top="$work/l3-gcc-v2.tar.gz"
if [ ! -f "$v2top" ]; then
  rm -rf "$work/v2src" && cp -a /usr/lib/gcc "$work/v2src"
  head -c 5000000 /dev/urandom > "$work/v2src/added.bin"
  f=$(find "$work/v2src" -type f -size +1M | head -1); printf 'patched' | dd of="$f" bs=1 seek=1000 conv=notrunc status=none
  tar --format=pax -C "$work/v2src" -czf "$v2top" .
fi
tarbytes=0; for l in "${layers[@]}"; do tarbytes=$((tarbytes + $(gzip -l "$l" | awk 'NR==2 {print $2}'))); done
gzbytes=$(stat -c %s "${layers[@]}" | awk '{s+=$1} END {print s}')

out="$work/out"; rm -rf "$out"; mkdir -p "$out"
timed() { /usr/bin/time -f '%e %M' -o "$work/t" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }; cat "$work/t"; }
read -r t1 m1 < <(timed "$rafs" build --layer "${layers[0]}" --layer "${layers[1]}" --layer "${layers[2]}" --bootstrap "$out/v1.boot" --blob-dir "$out/blobs")
blobs1=$(du -cb "$out"/blobs/* | tail -1 | cut -f1)
before=$(ls "$out/blobs")
read -r t2 m2 < <(timed "$rafs" build --layer "${layers[0]}" --layer "${layers[1]}" --layer "$v2top" --bootstrap "$out/v2.boot" --blob-dir "$out/blobs" --chunk-dict "$out/v1.boot")
new=0; for b in $(ls "$out/blobs"); do echo "$before" | grep -qx "$b" || new=$((new + $(stat -c %s "$out/blobs/$b"))); done

flat="$out/flat"; mkdir -p "$flat"; for l in "${layers[@]}"; do tar -C "$flat" -xzf "$l"; done
read -r tr mr < <(timed "$rafs" build "$flat" --bootstrap "$out/flat.boot" --blob-dir "$out/flat-blobs")
read -r tm mm < <(timed "$mkfs" --quiet --chunksize=1048576 --blobdev="$out/flat.blob" "$out/flat.mkfs" "$flat")
read -r trp mrp < <(timed "$rafs" build "$flat" -o "$out/flat.img")
read -r tmp mmp < <(timed "$mkfs" --quiet "$out/flat.mkfs.img" "$flat")

mib() { awk -v b="$1" 'BEGIN { printf "%.0f MiB", b / 1048576 }'; }
echo
echo "layers: 3 gzip'd tars, $(mib "$tarbytes") of tar data, $(mib "$gzbytes") gzip'd"
printf '| %-44s | %-28s |\n' measure value
printf '|%s|%s|\n' "----------------------------------------------" "------------------------------"
printf '| %-44s | %-28s |\n' "convert 3 layers (wall, peak RSS)" "$t1 s, $((m1 / 1024)) MiB"
printf '| %-44s | %-28s |\n' "conversion throughput (tar bytes / wall)" "$(awk -v b="$tarbytes" -v t="$t1" 'BEGIN { printf "%.0f MB/s", b / t / 1e6 }')"
printf '| %-44s | %-28s |\n' "zstd blobs vs gzip'd tars" "$(mib "$blobs1") vs $(mib "$gzbytes") ($(awk -v a="$blobs1" -v b="$gzbytes" 'BEGIN { printf "%.2fx", a / b }'))"
printf '| %-44s | %-28s |\n' "v2 with --chunk-dict v1: new blob bytes" "$(mib "$new") ($t2 s)"
printf '| %-44s | %-28s |\n' "flattened tree, blob layout: rafs / mkfs 1.5" "$tr s / $tm s ($(awk -v a="$tr" -v b="$tm" 'BEGIN { printf "%.2fx", a / b }'))"
printf '| %-44s | %-28s |\n' "flattened tree, plain image: rafs / mkfs 1.5" "$trp s / $tmp s ($(awk -v a="$trp" -v b="$tmp" 'BEGIN { printf "%.2fx", a / b }'))"
printf '| %-44s | %-28s |\n' "flattened sizes: rafs blob / mkfs blob" "$(mib "$(du -cb "$out"/flat-blobs/* | tail -1 | cut -f1)") / $(mib "$(stat -c %s "$out/flat.blob")")"
rm -rf "$out"
