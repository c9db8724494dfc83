#!/bin/sh
# A small run of the benchmark: every run verifies its own result (each task
# once, in its owner's queue, in order). No time is asserted here.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
out=$(BUILD=build BENCH_TASKS=20000 build/bench 2>&1)
printf '%s\n' "$out" | grep -q "VERIFY FAILED" && { printf '%s\n' "$out"; exit 1; }
n=$(printf '%s\n' "$out" | grep -c "verified:")
[ "$n" -ge 2 ] || { printf '%s\n' "$out"; exit 1; }
printf '%s\n' "$out" | tail -14
