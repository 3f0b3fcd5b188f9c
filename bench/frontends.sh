#!/usr/bin/env bash
# Frontend benchmark: one image (default /usr/share/dotnet) read through every kernel path this host offers, side
# by side in one run, against a plain file-backed EROFS mount of the same bootstrap with local device files:
#   plain     file-backed EROFS, devices materialised up front (the baseline)
#   fanotify  rafs daemon, --frontend fanotify (pre-content hooks on the sparse cache files)
#   fuse      rafs daemon, --frontend fuse (Rafs's reader over /dev/fuse)
#   erofsfuse upstream erofs-utils' FUSE server on the same bootstrap and device files, when --erofsfuse PATH is
#             given (Debian's erofs-utils 1.5 ships none; build erofs-utils yourself, beside the project)
# For each: cold (empty blob cache, backend = an OCI layout on this disk) and warm (cache complete); sequential
# (every file, cat) and random (20,000 4 KiB preads at random offsets of random files). Page caches are dropped
# before every timed read; warm figures are the median of 3 alternating rounds. fscache has no host kernel here:
# it is measured inside the test VM by bench/frontends-vm.sh when qemu is available.
#
#   bench/frontends.sh [--work DIR] [--tree DIR] [--erofsfuse PATH]
set -euo pipefail
here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
rafs="$here/../rafs"
work=/var/tmp/rafs-bench-frontends tree=/usr/share/dotnet erofsfuse=
while [ $# -gt 0 ]; do
  case "$1" in --work) work=$2; shift 2;; --tree) tree=$2; shift 2;; --erofsfuse) erofsfuse=$(readlink -f "$2"); shift 2;;
    *) echo "unknown option $1" >&2; exit 2;; esac
done
[ -z "$erofsfuse" ] || [ -x "$erofsfuse" ] || { echo "--erofsfuse $erofsfuse is not an executable" >&2; exit 2; }
rm -rf "$work" && mkdir -p "$work"
"$rafs" --help >/dev/null
dotnet build "$here/Rafs.Bench" -c Release -v q -nologo >/dev/null
randread() { dotnet "$here/../artifacts/bin/Rafs.Bench/release/Rafs.Bench.dll" randread "$1" 20000 7 | awk '{print $3}'; }

frontends=(plain fanotify fuse)
[ -n "$erofsfuse" ] && frontends+=(erofsfuse)
for f in "${frontends[@]}"; do mkdir -p "$work/mnt-$f"; done
cleanup() {
  for f in "${frontends[@]}"; do mountpoint -q "$work/mnt-$f" && umount -l "$work/mnt-$f"; done
  for s in "$work"/state-*; do [ -S "$s/rafsd.sock" ] && RAFS_SOCKET="$s/rafsd.sock" "$rafs" daemon stop >/dev/null 2>&1; done
  return 0
}
trap cleanup EXIT

echo "building $tree" >&2
"$rafs" build "$tree" --bootstrap "$work/img.boot" --blob-dir "$work/blobs" >&2
"$rafs" push "$work/img.boot" "$work/layout:v1" --blob-dir "$work/blobs" >/dev/null 2>&1
tree_bytes=$(cd "$tree" && find . -type f -print0 | xargs -0 stat -c %s | awk '{s+=$1} END {print s}')
"$rafs" mount "$work/img.boot" "$work/mnt-plain" --blob-dir "$work/blobs" --cache-dir "$work/devcache" >/dev/null
devices=$(find "$work/devcache" -name '*.device' | sort)

drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
read_all() { (cd "$1" && find . -type f -print0 | xargs -0 cat > /dev/null); }

# (Re)mounts frontend $1 with an empty cache: a fresh daemon and state directory for the Rafs frontends.
mount_cold() {
  local f=$1 m="$work/mnt-$1"
  case "$f" in
    plain) ;;   # local device files: "cold" is only the dropped page cache
    erofsfuse)
      mountpoint -q "$m" && umount "$m"
      # erofsfuse takes extra devices in table order, like the kernel's device= options
      local args=(); for d in $devices; do args+=("--device=$d"); done
      "$erofsfuse" "${args[@]}" "$work/img.boot" "$m" >"$work/erofsfuse.log" 2>&1
      ;;
    *)
      mountpoint -q "$m" && RAFS_SOCKET="$work/state-$f/rafsd.sock" "$rafs" umount "$m" >/dev/null
      [ -S "$work/state-$f/rafsd.sock" ] && RAFS_SOCKET="$work/state-$f/rafsd.sock" "$rafs" daemon stop >/dev/null
      rm -rf "$work/state-$f"; mkdir -p "$work/state-$f"
      RAFS_SOCKET="$work/state-$f/rafsd.sock" RAFS_STATE_DIR="$work/state-$f" "$rafs" mount "$work/layout:v1" "$m" --frontend "$f" >/dev/null
      ;;
  esac
}

declare -A cold_seq cold_rnd warm_seq warm_rnd
for f in "${frontends[@]}"; do
  echo "cold: $f" >&2
  mount_cold "$f"; drop; t=$(now); read_all "$work/mnt-$f"; cold_seq[$f]=$(since "$t")
  mount_cold "$f"; drop; cold_rnd[$f]=$(randread "$work/mnt-$f")
  read_all "$work/mnt-$f"   # complete the cache for the warm rounds
done
median() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
for f in "${frontends[@]}"; do
  s=() r=()
  for _ in 1 2 3; do
    drop; t=$(now); read_all "$work/mnt-$f"; s+=("$(since "$t")")
    drop; r+=("$(randread "$work/mnt-$f")")
  done
  warm_seq[$f]=$(median "${s[@]}") warm_rnd[$f]=$(median "${r[@]}")
done

mib() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1048576 }'; }
speed() { awk -v b="$tree_bytes" -v t="$1" 'BEGIN { printf "%.0f", b / 1048576 / t }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
echo
echo "image: $tree, $(find "$tree" -type f | wc -l) files, $(mib "$tree_bytes") MiB of file data; $(nproc) cores; page cache dropped before each read"
printf '| %-9s | %-15s | %-15s | %-15s | %-15s | %-14s | %-15s |\n' frontend "cold seq MB/s" "warm seq MB/s" "cold rand MB/s" "warm rand MB/s" "warm seq/plain" "warm rand/plain"
printf '|%s|%s|%s|%s|%s|%s|%s|\n' ----------- ----------------- ----------------- ----------------- ----------------- ---------------- -----------------
for f in "${frontends[@]}"; do
  printf '| %-9s | %-15s | %-15s | %-15s | %-15s | %-14s | %-15s |\n' "$f" "$(speed "${cold_seq[$f]}")" "$(speed "${warm_seq[$f]}")" \
    "${cold_rnd[$f]}" "${warm_rnd[$f]}" "$(ratio "${warm_seq[plain]}" "${warm_seq[$f]}")" "$(ratio "${warm_rnd[$f]}" "${warm_rnd[plain]}")"
done
if [ -n "$erofsfuse" ]; then
  echo "fuse vs erofsfuse: warm seq $(ratio "${warm_seq[erofsfuse]}" "${warm_seq[fuse]}"), warm rand $(ratio "${warm_rnd[fuse]}" "${warm_rnd[erofsfuse]}") (higher: Rafs faster; cold is not comparable: erofsfuse reads local device files, Rafs fetches and verifies)"
fi
echo "ratios: speed through the frontend / speed of the plain mount (higher is better; target ≥ 0.95x warm for fanotify, fscache)"
