#!/usr/bin/env bash
# End-to-end demo on a built-in sample tree: both layouts, mounted by the kernel, listed, read, unmounted.
set -euo pipefail
here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
rafs="$here/rafs"
work="$here/.demo"
mnt="$work/mnt"
cleanup() { mountpoint -q "$mnt" && "$rafs" umount "$mnt" || true; }
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
echo "demo done: see $work"
