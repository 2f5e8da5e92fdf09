#!/usr/bin/env bash
# Profiles one runner under a terminal flood with callgrind (BENCHMARKS.md, "Where the time
# goes"). Needs valgrind and python3-websockets; run from the repo after a release build.
# Usage: bench/profile/runner-callgrind.sh [out-dir]
set -euo pipefail
out=${1:-/tmp/cove-profile}
rm -rf "$out" && mkdir -p "$out/ws"
valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out" \
  target/release/cove runner --workspace-id profile --root "$out/ws" --socket "$out/runner.sock" \
  >"$out/runner.log" 2>&1 &
runner=$!
for _ in $(seq 1 100); do [ -S "$out/runner.sock" ] && break; sleep 0.2; done
timeout 300 python3 "$(dirname "$0")/drive.py" "$out/runner.sock"
kill -TERM "$runner"
wait "$runner" || true
callgrind_annotate --tree=caller "$out/callgrind.out" > "$out/callers.txt"
callgrind_annotate "$out/callgrind.out" | sed -n 1,40p
echo "callers of each function: $out/callers.txt"
