#!/usr/bin/env bash
# Runs every test suite (unit + kernel tests; the kernel tests need root) and prints one summary line.
set -uo pipefail
here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
cd "$here"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
dotnet build Rafs.slnx -c Release -v q -nologo 2>&1 | tail -3
status=0
for project in tests/Rafs.Tests tests/Rafs.KernelTests; do
  echo "== $project"
  out=$(mktemp)
  dotnet test "$project" -c Release --no-build --logger "console;verbosity=normal" "$@" >"$out" 2>&1 || status=1
  cat "$out" >>"$log"
  grep -E -A4 '^\s*(Failed|Skipped) |SKIP:|Error Message' "$out" | grep -vE '^\s*(at |Stack Trace)' || true
  grep -E 'Total tests|^\s+(Passed|Failed|Skipped): +[0-9]+$|error' "$out" || true
  rm -f "$out"
done
sum() { grep -E "^\s+$1: +[0-9]+\$" "$log" | awk '{s+=$2} END {print s+0}'; }
passed=$(sum Passed); failed=$(sum Failed); skipped=$(sum Skipped)
if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then status=1; fi
[ "$status" -eq 0 ] || [ "$failed" -gt 0 ] || failed=1
echo "$passed passed, $failed failed, $skipped skipped"
exit $status
