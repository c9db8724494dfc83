#!/bin/sh
# The systemd units: systemd-analyze verify accepts both, and the hardening
# of slotd.service rates 1.5 or lower ("OK") in systemd-analyze security.
set -eu
BUILD=${BUILD:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# Point the units at the binaries just built (verify checks they exist).
sed "s|/usr/local/bin/|$ROOT/$BUILD/|g" "$ROOT/systemd/slotd.service" > "$TMP/slotd.service"
sed "s|/usr/local/bin/|$ROOT/$BUILD/|g" "$ROOT/systemd/slotd-worker@.service" > "$TMP/slotd-worker@check.service"
systemd-analyze verify --man=no "$TMP/slotd.service" "$TMP/slotd-worker@check.service"

score=$(systemd-analyze security --offline=true "$ROOT/systemd/slotd.service" 2>&1 |
        sed -n 's/.*Overall exposure level for slotd.service: \([0-9.]*\).*/\1/p')
echo "slotd.service exposure: $score"
[ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s <= 1.5) }'
