#!/bin/sh
# A short libFuzzer run of taskkey against jansson (make fuzz runs longer).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
make -s build/fuzz_taskkey >/dev/null
mkdir -p build/fuzz-corpus
build/fuzz_taskkey -max_total_time=10 -max_len=4096 build/fuzz-corpus tests/fuzz/corpus 2>&1 | tail -1
