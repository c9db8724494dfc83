#!/bin/sh
# A short libFuzzer run of taskkey against jansson (make fuzz runs longer).
# Fails when the fuzzer finds an input on which the two disagree or crash.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
if ! make -s fuzz-smoke FUZZ_SMOKE_TIME=10 >"$out" 2>&1; then
    tail -40 "$out"
    exit 1
fi
tail -1 "$out"
