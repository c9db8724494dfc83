#!/bin/sh
# A small run of the benchmark and of its cluster mode: every run verifies
# its own result (each task once, in its owner's queue or run once, in
# order). No time is asserted here.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
out=$(BUILD=build BENCH_TASKS=20000 build/bench 2>&1)
printf '%s\n' "$out" | grep -q "VERIFY FAILED" && { printf '%s\n' "$out"; exit 1; }
n=$(printf '%s\n' "$out" | grep -c "verified:")
[ "$n" -ge 2 ] || { printf '%s\n' "$out"; exit 1; }
printf '%s\n' "$out" | tail -14
out=$(BUILD=build BENCH_TASKS=6000 build/bench-cluster 2>&1)
printf '%s\n' "$out" | grep -q "VERIFY FAILED\|NOT VERIFIED" && { printf '%s\n' "$out"; exit 1; }
n=$(printf '%s\n' "$out" | grep -c "tasks/s")
[ "$n" -eq 6 ] || { printf '%s\n' "$out"; exit 1; }
printf '%s\n' "$out"
