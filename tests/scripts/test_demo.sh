#!/bin/sh
# make demo's script, run as make demo runs it (with the binaries of this
# build): it must finish, every task completed once, each key in order.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
if ! sh examples/demo.sh "${BUILD:-build}" >"$out" 2>&1; then
    tail -40 "$out"
    exit 1
fi
grep -q "every key's tasks ran in the order they were pushed" "$out" || { tail -40 "$out"; exit 1; }
# A task re-run after the kill -9 may complete twice: 900 distinct is the rule.
grep -Eq "pushed 900 tasks; completed [0-9]+ \(900 distinct\); intake 0, dead letters 0" "$out" ||
    { tail -40 "$out"; exit 1; }
grep -q "handed off" "$out" || { echo "the demo's join showed no fenced handoff"; tail -40 "$out"; exit 1; }
