#!/usr/bin/env bash
# On-demand benchmark: a ≥300 MB image (default /usr/share/dotnet) pushed to Debian's docker-registry on
# 127.0.0.1, then, side by side in one run:
#  1. startup trace: mount + read a fixed 5 % of the files (every 20th path) on demand, against pulling every
#     blob first, then mounting and reading the same files; bytes fetched and wall time. The full tree too.
#  2. warm reads (cache complete): sequential (every file) and random 4 KiB reads through the Rafs mount,
#     against a plain file-backed EROFS mount of the same bootstrap with local device files.
#  3. cold reads with every chunk missing and a local backend (an OCI layout directory): events/s and µs per
#     event that had to fetch, against the plain mount reading the same tree cold.
# Page caches are dropped before every timed read. Needs root.
#
#   bench/ondemand.sh [--work DIR] [--tree DIR] [--port N]
set -euo pipefail
here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
rafs="$here/../rafs"
work=/var/tmp/rafs-bench-ondemand tree=/usr/share/dotnet port=5077
while [ $# -gt 0 ]; do
  case "$1" in --work) work=$2; shift 2;; --tree) tree=$2; shift 2;; --port) port=$2; shift 2;; *) echo "unknown option $1" >&2; exit 2;; esac
done
command -v docker-registry >/dev/null || { echo "docker-registry is missing: run ./setup.sh" >&2; exit 1; }
rm -rf "$work" && mkdir -p "$work"
"$rafs" --help >/dev/null
dotnet build "$here/Rafs.Bench" -c Release -v q -nologo >/dev/null
randread() { dotnet "$here/../artifacts/bin/Rafs.Bench/release/Rafs.Bench.dll" randread "$1" 20000 7; }

ref="127.0.0.1:$port/bench/tree:v1"
mnt="$work/mnt" plain="$work/plain"; mkdir -p "$mnt" "$plain"
export RAFS_SOCKET="$work/rafsd.sock"
registry_pid=
cleanup() {
  for m in "$mnt" "$plain"; do mountpoint -q "$m" && umount -l "$m"; done
  for s in "$work"/state-*; do [ -S "$s/rafsd.sock" ] && RAFS_SOCKET="$s/rafsd.sock" "$rafs" daemon stop >/dev/null 2>&1; done
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null
  return 0
}
trap cleanup EXIT
cat > "$work/registry.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: 127.0.0.1:$port}
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 & registry_pid=$!
for _ in $(seq 50); do curl -s "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.2; done

echo "building and pushing $tree" >&2
"$rafs" build "$tree" --bootstrap "$work/img.boot" --blob-dir "$work/blobs" >&2
"$rafs" push "$work/img.boot" "$ref" --blob-dir "$work/blobs" >&2 2>/dev/null
"$rafs" push "$work/img.boot" "$work/layout:v1" --blob-dir "$work/blobs" >/dev/null 2>&1
(cd "$tree" && find . -type f | LC_ALL=C sort | awk 'NR % 20 == 0') > "$work/subset"
subset_bytes=$(cd "$tree" && tr '\n' '\0' < "$work/subset" | xargs -0 stat -c %s | awk '{s+=$1} END {print s}')
tree_bytes=$(cd "$tree" && find . -type f -print0 | xargs -0 stat -c %s | awk '{s+=$1} END {print s}')
image_bytes=$(( $(stat -c %s "$work/img.boot") + $(du -cb "$work"/blobs/* | tail -1 | cut -f1) ))

drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
read_subset() { (cd "$1" && tr '\n' '\0' < "$work/subset" | xargs -0 cat > /dev/null); }
read_all() { (cd "$1" && find . -type f -print0 | xargs -0 cat > /dev/null); }
json() { "$rafs" status --json | grep -o "\"$1\": [0-9.]*" | awk '{s+=$2} END {print s+0}'; }
daemon_json() { curl -s --unix-socket "$RAFS_SOCKET" http://rafsd/api/v1/daemon | grep -o "\"$1\": [0-9.]*" | awk '{print $2}'; }
fresh() { export RAFS_STATE_DIR="$work/state-$1" RAFS_SOCKET="$work/state-$1/rafsd.sock"; mkdir -p "$RAFS_STATE_DIR"; }
stop_daemon() { "$rafs" umount "$mnt" >/dev/null; "$rafs" daemon stop >/dev/null; }

# 1. startup trace and full cold read, on demand from the registry (daemon already running: start-up is measured
#    as mount + reads, as on a host where rafsd runs as a service)
fresh trace; "$rafs" daemon >"$work/daemon-trace.log" 2>&1 & sleep 1
for _ in $(seq 100); do [ -S "$RAFS_SOCKET" ] && break; sleep 0.1; done
drop; t=$(now); "$rafs" mount "$ref" "$mnt" >/dev/null; read_subset "$mnt"; od_subset_t=$(since "$t")
od_subset_bytes=$(json backend_bytes)
stop_daemon
fresh full; "$rafs" daemon >"$work/daemon-full.log" 2>&1 & sleep 1
for _ in $(seq 100); do [ -S "$RAFS_SOCKET" ] && break; sleep 0.1; done
drop; t=$(now); "$rafs" mount "$ref" "$mnt" >/dev/null; read_all "$mnt"; od_full_t=$(since "$t")
od_full_bytes=$(json backend_bytes)
# keep this daemon and mount: its cache is now complete, for the warm reads

# pull every blob first (3 at a time, like docker pull), then mount and read
drop; t=$(now)
mkdir -p "$work/pulled"
manifest=$(curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://127.0.0.1:$port/v2/bench/tree/manifests/v1")
echo "$manifest" | grep -o '"digest":"sha256:[0-9a-f]*"' | cut -d'"' -f4 | sed 1d | \
  xargs -P 3 -I{} sh -c 'curl -sf "http://127.0.0.1:'"$port"'/v2/bench/tree/blobs/{}" -o "'"$work"'/pulled/$(echo {} | cut -d: -f2)"'
boot_digest=$(sha256sum "$work/img.boot" | cut -d' ' -f1)
"$rafs" mount "$work/pulled/$boot_digest" "$plain" --blob-dir "$work/pulled" --cache-dir "$work/devcache" >/dev/null
pull_t=$(since "$t")
pulled_bytes=$(du -cb "$work"/pulled/* | tail -1 | cut -f1)
drop; t=$(now); read_subset "$plain"; pull_subset_t=$(awk -v p="$pull_t" -v r="$(since "$t")" 'BEGIN { printf "%.2f", p + r }')
drop; t=$(now); read_all "$plain"; plain_cold_t=$(since "$t"); pull_full_t=$(awk -v p="$pull_t" -v r="$plain_cold_t" 'BEGIN { printf "%.2f", p + r }')

# 2. warm: complete cache through Rafs vs the plain mount of the same bootstrap; alternate, 3 rounds, median
seq_r=() seq_p=() rnd_r=() rnd_p=()
for _ in 1 2 3; do
  drop; t=$(now); read_all "$mnt"; seq_r+=("$(since "$t")")
  drop; t=$(now); read_all "$plain"; seq_p+=("$(since "$t")")
  drop; rnd_r+=("$(randread "$mnt" | awk '{print $3}')")
  drop; rnd_p+=("$(randread "$plain" | awk '{print $3}')")
done
median() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
seq_r_m=$(median "${seq_r[@]}") seq_p_m=$(median "${seq_p[@]}") rnd_r_m=$(median "${rnd_r[@]}") rnd_p_m=$(median "${rnd_p[@]}")
stop_daemon

# 3. cold, local backend: every chunk missing, fetched from an OCI layout directory on this disk
fresh local; "$rafs" daemon >"$work/daemon-local.log" 2>&1 & sleep 1
for _ in $(seq 100); do [ -S "$RAFS_SOCKET" ] && break; sleep 0.1; done
"$rafs" mount "$work/layout:v1" "$mnt" >/dev/null
drop; t=$(now); read_all "$mnt"; local_t=$(since "$t")
events=$(daemon_json events) fills=$(daemon_json events_filled) fill_s=$(daemon_json fill_seconds)
stop_daemon
umount "$plain"

mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
echo
echo "image: $tree, $(find "$tree" -type f | wc -l) files, $(mib "$tree_bytes") of file data; bootstrap + blobs $(mib "$image_bytes")"
echo "subset: $(wc -l < "$work/subset") files (every 20th path), $(mib "$subset_bytes")"
printf '| %-52s | %-30s | %-30s | %-7s |\n' measure rafs baseline ratio
printf '|%s|%s|%s|%s|\n' "------------------------------------------------------" "--------------------------------" "--------------------------------" "---------"
printf '| %-52s | %-30s | %-30s | %-7s |\n' "1. start-up trace: fetched (on demand / pull all)" "$(mib "$od_subset_bytes")" "$(mib "$pulled_bytes")" "$(ratio "$od_subset_bytes" "$pulled_bytes")"
printf '| %-52s | %-30s | %-30s | %-7s |\n' "1. start-up trace: mount + read, s" "$od_subset_t" "$pull_subset_t (pull+mount $pull_t)" "$(ratio "$od_subset_t" "$pull_subset_t")"
printf '| %-52s | %-30s | %-30s | %-7s |\n' "1. whole tree cold from the registry, s" "$od_full_t ($(mib "$od_full_bytes"))" "$pull_full_t" "$(ratio "$od_full_t" "$pull_full_t")"
printf '| %-52s | %-30s | %-30s | %-7s |\n' "2. warm sequential, every file, s (median of 3)" "$seq_r_m" "$seq_p_m (plain mount)" "$(ratio "$seq_p_m" "$seq_r_m")"
printf '| %-52s | %-30s | %-30s | %-7s |\n' "2. warm random 4 KiB reads, MB/s (median of 3)" "$rnd_r_m" "$rnd_p_m (plain mount)" "$(ratio "$rnd_r_m" "$rnd_p_m")"
printf '| %-52s | %-30s | %-30s | %-7s |\n' "3. cold, local backend, whole tree, s" "$local_t" "$plain_cold_t (plain mount)" "$(ratio "$plain_cold_t" "$local_t")"
printf '| %-52s | %-30s | %-30s | %-7s |\n' "3. events/s; events that fetched; µs per fetch" "$(awk -v e="$events" -v t="$local_t" 'BEGIN { printf "%.0f", e / t }'); $fills; $(awk -v s="$fill_s" -v f="$fills" 'BEGIN { printf "%.0f", f ? s / f * 1e6 : 0 }')" "" ""
echo "ratios: sizes and times rafs/baseline (lower is better) for 1; speed rafs/plain (higher is better) for 2 and 3"
