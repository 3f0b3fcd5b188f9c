#!/usr/bin/env bash
# End-to-end demo on a built-in sample tree: both layouts, mounted by the kernel, listed, read, unmounted.
set -euo pipefail
here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
rafs="$here/rafs"
work="$here/.demo"
mnt="$work/mnt"
registry_pid=
cleanup() {
  mountpoint -q "$mnt" && "$rafs" umount "$mnt" --socket "$work/state/rafsd.sock" --state-dir "$work/state"
  [ -S "$work/state/rafsd.sock" ] && "$rafs" daemon stop --socket "$work/state/rafsd.sock" --state-dir "$work/state"
  [ -n "$registry_pid" ] && kill "$registry_pid"
  true
}
trap cleanup EXIT
rm -rf "$work" && mkdir -p "$work/sample" "$mnt"
# The sample: this repository's sources plus a few special files.
cp -r "$here/src" "$here/docs" "$work/sample/"
printf 'hello from rafs\n' > "$work/sample/hello.txt"
ln -s hello.txt "$work/sample/greeting"
ln "$work/sample/hello.txt" "$work/sample/hello-hardlink.txt"
truncate -s 64M "$work/sample/sparse.img" && printf 'end' | dd of="$work/sample/sparse.img" bs=1 seek=$((64*1024*1024-3)) conv=notrunc status=none
setfattr -n user.demo -v rafs "$work/sample/hello.txt" 2>/dev/null || true

echo "== self-contained image"
"$rafs" build "$work/sample" -o "$work/sample.erofs"
"$rafs" mount "$work/sample.erofs" "$mnt"
ls -la "$mnt" | head -20
cat "$mnt/greeting"
diff -r "$work/sample" "$mnt" && echo "kernel view == source"
"$rafs" umount "$mnt"

echo "== bootstrap + blob (RAFS v6 layout)"
"$rafs" build "$work/sample" --bootstrap "$work/sample.boot" --blob-dir "$work/blobs"
ls -la "$work/blobs"
"$rafs" inspect "$work/sample.boot"
"$rafs" check "$work/sample.boot" --blob-dir "$work/blobs"
"$rafs" mount "$work/sample.boot" "$mnt" --blob-dir "$work/blobs" --cache-dir "$work/cache"
cat "$mnt/hello.txt"
diff -r "$work/sample" "$mnt" && echo "kernel view == source"
"$rafs" umount "$mnt"
echo "== on demand: push to a local registry, mount through the daemon, read"
port=5000; while curl -s "http://127.0.0.1:$port/" >/dev/null 2>&1; do port=$((port + 1)); done
printf 'version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: 127.0.0.1:%s}\n' \
  "$work/registry" "$port" > "$work/registry.yml"
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 & registry_pid=$!
for _ in $(seq 50); do curl -s "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.2; done
"$rafs" push "$work/sample.boot" "127.0.0.1:$port/demo/sample:v1" --blob-dir "$work/blobs"
daemon=(--socket "$work/state/rafsd.sock" --state-dir "$work/state")
"$rafs" mount "127.0.0.1:$port/demo/sample:v1" "$mnt" "${daemon[@]}"
cat "$mnt/hello.txt"
"$rafs" status "${daemon[@]}"
diff -r "$work/sample" "$mnt" && echo "kernel view == source (fetched on demand)"
"$rafs" status "${daemon[@]}"
"$rafs" umount "$mnt" "${daemon[@]}"
"$rafs" daemon stop "${daemon[@]}"
echo "demo done: see $work"
