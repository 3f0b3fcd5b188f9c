#!/usr/bin/env bash
# Prints a canonical listing of a tree: per entry its path, type, mode, owner, size, mtime to the nanosecond, link
# count, symlink target, content sha256 and xattrs; hard links are named by the first path of their inode. Used to
# compare a mount made inside the test guest with the source tree on the host, with nothing of Rafs involved.
# Three batched passes (metadata, hashes, xattrs) joined by path: a process per file is far too slow under qemu.
# Usage: tree-listing.sh DIR [--no-root-mtime]
set -euo pipefail
cd "$1"
root_mtime=${2:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Fields are split on \037 (unit separator), which no name here contains.
find . -printf '%i\037%p\037%y\037%m\037%U\037%G\037%s\037%T@\037%n\037%l\n' >"$tmp/meta"
find . -type f -print0 | xargs -0 -r sha256sum | sed 's/^\([0-9a-f]*\)  /\1\x1f/' >"$tmp/hash"
getfattr -R -P -h -d -m - -e hex . 2>/dev/null | awk '
  /^# file: / { if (path != "") print path "\037" attrs; path = "./" substr($0, 9); sub(/^\.\/\.\//, "./", path); sub(/^\.\/\.$/, ".", path); attrs = ""; next }
  /=/ { attrs = attrs $0 " " }
  END { if (path != "") print path "\037" attrs }' >"$tmp/xattr"
awk -F'\037' -v OFS='\t' -v noroot="$root_mtime" '
  FILENAME == ARGV[1] { hash[$2] = $1; next }
  FILENAME == ARGV[2] { xattr[$1] = $2; next }
  {
    ino = $1; path = $2; type = $3; size = $7; mtime = $8; nlink = $9
    if (type == "d") size = "-"                         # directory sizes are filesystem-specific
    if (path == "." && noroot == "--no-root-mtime") mtime = "-"
    link = "-"
    if (type != "d" && nlink > 1) { if (!(ino in first)) first[ino] = path; link = first[ino] }
    h = (path in hash) ? hash[path] : "-"
    print link, path, type, $4, $5, $6, size, mtime, nlink, $10, h, xattr[path]
  }' "$tmp/hash" "$tmp/xattr" <(LC_ALL=C sort -t$'\037' -k2,2 "$tmp/meta")
