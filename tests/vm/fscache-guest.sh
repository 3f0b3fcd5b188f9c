#!/usr/bin/env bash
# Runs inside the test guest (see run-vm.sh) on a kernel with cachefiles on-demand mode: the Rafs daemon binds
# /dev/cachefiles, images are mounted with --frontend fscache from OCI layouts on the host (read over 9p), and
# every result is written to /run/out for the host-side test to check. Prints "CHECK <name> ok|FAIL <why>".
# Environment: RAFS (command that runs the CLI), LAYOUT (image), TWIN (another image sharing its blob), BAD (the
# image with one chunk damaged), BAD_FILE (the file that chunk belongs to), BIG (a large file of the image).
set -uo pipefail
out=/run/out
here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
export RAFS_STATE_DIR=/run/disk/state RAFS_SOCKET=/run/rafs/rafsd.sock DOTNET_CLI_HOME=/run DOTNET_NOLOGO=1
failures=0
check() { # name, command...
  local name=$1; shift
  if "$@" >"$out/check-$name.log" 2>&1; then echo "CHECK $name ok"; else echo "CHECK $name FAIL (exit $?): $(tail -3 "$out/check-$name.log" | tr '\n' ' ')"; failures=$((failures + 1)); fi
}
rafs() { $RAFS "$@"; }
status_json() { rafs status --json; }

echo "kernel $(uname -r); /dev/cachefiles: $(ls -l /dev/cachefiles 2>&1)"
mkdir -p /run/mnt /run/twin /run/bad
# The daemon runs under its supervisor, which holds the bound /dev/cachefiles across worker crashes.
setsid $RAFS daemon --threads 2 >"$out/daemon.log" 2>&1 &
for _ in $(seq 1 200); do [ -S "$RAFS_SOCKET" ] && break; sleep 0.1; done

check mount rafs mount "$LAYOUT" /run/mnt --frontend fscache --no-start
grep -q " /run/mnt erofs " /proc/mounts && echo "mount options: $(grep ' /run/mnt ' /proc/mounts)"
rafs status >"$out/status-cold.txt" 2>&1
status_json >"$out/status-cold.json"

# Laziness: reading one small file fetches little of the blob.
check small-read cat /run/mnt/hello.txt
status_json >"$out/status-after-small.json"

# kill -9 of the worker while a big file is being read: the supervisor restarts it, the kernel's requests in
# flight are resent (restore) and the closed objects reopened, and the read completes with the right bytes.
( sha256sum </run/mnt/"$BIG" | cut -c1-64 >"$out/big-during-kill.sha" ) &
reader=$!
sleep 0.3
worker=$(pgrep -f -- 'daemon --worker' | head -1)
echo "killing worker $worker"
kill -9 "$worker"
check reader-survives-kill wait "$reader"
for _ in $(seq 1 300); do rafs status >/dev/null 2>&1 && break; sleep 0.1; done
rafs status >"$out/status-after-kill.txt" 2>&1

# Whole tree after the restart: the host compares this listing with the source tree's.
check listing bash "$here/tree-listing.sh" /run/mnt --no-root-mtime
cp "$out/check-listing.log" "$out/listing.txt"
status_json >"$out/status-full.json"
df -k /run/mnt >"$out/df.txt" 2>&1

# A second image sharing the blob, in the same fscache domain: one cache object serves both. Mounted with the
# default frontend choice (auto): this kernel has no fanotify pre-content hooks, so it must pick fscache.
check twin-mount rafs mount "$TWIN" /run/twin --no-start
status_json >"$out/status-twin.json"
check twin-read bash "$here/tree-listing.sh" /run/twin --no-root-mtime

# A damaged chunk: that file reads EIO, every other file reads right.
check bad-mount rafs mount "$BAD" /run/bad --frontend fscache --no-start
if cat "/run/bad/$BAD_FILE" >/dev/null 2>"$out/bad-read.err"; then echo "CHECK bad-chunk-eio FAIL: read succeeded"; failures=$((failures + 1));
else echo "CHECK bad-chunk-eio ok: $(cat "$out/bad-read.err")"; fi
check bad-others bash -c "cd /run/bad && find . -type f ! -path './$BAD_FILE' -exec cat {} + >/dev/null"
rafs status >"$out/status-end.txt" 2>&1

check umount-all bash -c "$RAFS umount /run/mnt && $RAFS umount /run/twin && $RAFS umount /run/bad"
# cachefiles links an object's file into the cache directory when its cookie is withdrawn (at unmount).
find "$RAFS_STATE_DIR/fscache" -type f >"$out/cache-objects.txt" 2>&1
rafs daemon stop >/dev/null 2>&1
grep -q erofs /proc/mounts && { echo "CHECK no-mounts-left FAIL"; failures=$((failures + 1)); }
dmesg >"$out/dmesg.txt" 2>&1
echo "failures: $failures"
exit "$failures"
