#!/usr/bin/env bash
# Build benchmark: rafs build (both layouts) side by side with mkfs.erofs on the same tree.
# Prints wall time (median of --rounds), peak RSS and output size for each, and ratios against mkfs.erofs.
#
#   bench/build.sh [--tree DIR] [--rounds N] [--mkfs PATH] [--mkfs-new PATH] [--work DIR]
#
# --tree      source tree (default: a copy of the .NET SDK plus /usr/include: ≥ 300 MB, ≥ 5,000 files)
# --mkfs      Debian's mkfs.erofs (erofs-utils 1.5) by default
# --mkfs-new  optional path to a newer mkfs.erofs (e.g. 1.9.3 built beside the project) to add as a baseline
set -euo pipefail
here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
rafs="$here/../rafs"
tree="" rounds=3 mkfs=$(command -v mkfs.erofs || true) mkfs_new="" work=/var/tmp/rafs-bench
while [ $# -gt 0 ]; do
  case "$1" in
    --tree) tree=$2; shift 2;; --rounds) rounds=$2; shift 2;; --mkfs) mkfs=$2; shift 2;;
    --mkfs-new) mkfs_new=$2; shift 2;; --work) work=$2; shift 2;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
[ -n "$mkfs" ] || { echo "mkfs.erofs not found: apt-get install erofs-utils" >&2; exit 1; }
mkdir -p "$work"
if [ -z "$tree" ]; then
  tree="$work/tree"
  if [ ! -d "$tree" ]; then
    echo "preparing the sample tree in $tree (copy of /usr/share/dotnet and /usr/include)" >&2
    mkdir -p "$tree"
    cp -a /usr/share/dotnet "$tree/dotnet"
    cp -a /usr/include "$tree/include"
  fi
fi
"$rafs" --help >/dev/null   # build the CLI before timing anything
files=$(find "$tree" -type f | wc -l); bytes=$(du -sb "$tree" | cut -f1)
echo "tree: $tree — $files files, $((bytes / 1048576)) MiB, $rounds rounds (median)"

out="$work/out"
declare -A wall rss size
# run NAME OUTPUT_FILES... -- COMMAND: times COMMAND with /usr/bin/time -v, keeps the median wall time.
run() {
  local name=$1; shift
  local outputs=()
  while [ "$1" != "--" ]; do outputs+=("$1"); shift; done; shift
  local times=() mem=0
  for _ in $(seq "$rounds"); do
    rm -rf "$out" && mkdir -p "$out/blobs"
    sync
    /usr/bin/time -v -o "$work/time.txt" "$@" >/dev/null 2>"$work/stderr.txt" || { cat "$work/stderr.txt" >&2; exit 1; }
    local e; e=$(grep 'Elapsed (wall clock)' "$work/time.txt" | awk '{print $NF}')
    times+=("$(echo "$e" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')")
    local m; m=$(grep 'Maximum resident' "$work/time.txt" | awk '{print $NF}')
    [ "$m" -gt "$mem" ] && mem=$m
  done
  wall[$name]=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  rss[$name]=$mem
  local total=0
  for f in "${outputs[@]}"; do for g in $f; do total=$((total + $(stat -c %s "$g"))); done; done
  size[$name]=$total
}

run rafs-plain "$out/img" -- "$rafs" build "$tree" -o "$out/img"
run mkfs-plain "$out/img" -- "$mkfs" --quiet "$out/img" "$tree"
run rafs-blob "$out/boot" "$out/blobs/*" -- "$rafs" build "$tree" --bootstrap "$out/boot" --blob-dir "$out/blobs" --chunk-size 1M
run rafs-blob-raw "$out/boot" "$out/blobs/*" -- "$rafs" build "$tree" --bootstrap "$out/boot" --blob-dir "$out/blobs" --chunk-size 1M --compressor none
run mkfs-blob "$out/boot" "$out/blob" -- "$mkfs" --quiet --chunksize=1048576 --blobdev="$out/blob" "$out/boot" "$tree"
if [ -n "$mkfs_new" ]; then
  run mkfsnew-plain "$out/img" -- "$mkfs_new" --quiet "$out/img" "$tree"
  run mkfsnew-blob "$out/boot" "$out/blob" -- "$mkfs_new" --quiet --chunksize=1048576 --blobdev="$out/blob" "$out/boot" "$tree"
fi

# Holes: a small tree whose sparse files have GiBs of holes.
sparse="$work/sparse-tree"
if [ ! -d "$sparse" ]; then
  mkdir -p "$sparse"
  for i in 1 2 3 4 5; do
    truncate -s 1G "$sparse/disk$i.img"
    head -c 4M /dev/urandom | dd of="$sparse/disk$i.img" bs=1M seek=$((i * 100)) conv=notrunc status=none
  done
fi
run rafs-sparse "$out/img" -- "$rafs" build "$sparse" -o "$out/img"
run mkfs-sparse "$out/img" -- "$mkfs" --quiet "$out/img" "$sparse"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.2f", a / b }'; }
printf '\n| %-14s | %9s | %10s | %12s | %s |\n' run "wall (s)" "peak RSS" "output" "ratio vs mkfs.erofs 1.5 (time / size)"
printf '|%s|%s|%s|%s|%s|\n' "----------------" "-----------" "------------" "--------------" "----------------"
for name in rafs-plain mkfs-plain rafs-blob rafs-blob-raw mkfs-blob mkfsnew-plain mkfsnew-blob rafs-sparse mkfs-sparse; do
  [ -n "${wall[$name]:-}" ] || continue
  base=${name/rafs/mkfs}; base=${base/mkfsnew/mkfs}; base=${base%-raw}
  printf '| %-14s | %9.2f | %7d MiB | %8d MiB | %s / %s |\n' "$name" "${wall[$name]}" $((rss[$name] / 1024)) \
    $((size[$name] / 1048576)) "$(ratio "${wall[$name]}" "${wall[$base]}")" "$(ratio "${size[$name]}" "${size[$base]}")"
done
rm -rf "$out"
