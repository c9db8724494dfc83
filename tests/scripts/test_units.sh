#!/bin/sh
# The systemd units: systemd-analyze verify accepts them, the hardening of
# slotd.service and slotd-stunnel.service rates 1.5 or lower ("OK") in
# systemd-analyze security, and enabling the TLS sidecar makes slotd and
# every worker require it (and disabling it takes that back).
set -eu
BUILD=${BUILD:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# Point the units at the binaries just built (verify checks they exist).
sed "s|/usr/local/bin/|$ROOT/$BUILD/|g" "$ROOT/systemd/slotd.service" > "$TMP/slotd.service"
sed "s|/usr/local/bin/|$ROOT/$BUILD/|g" "$ROOT/systemd/slotd-worker@.service" > "$TMP/slotd-worker@check.service"
sed "s|/usr/local/bin/|$ROOT/$BUILD/|g" "$ROOT/systemd/slotd@.service" > "$TMP/slotd@orders.service"
cp "$ROOT/systemd/slotd-stunnel.service" "$TMP/slotd-stunnel.service"
systemd-analyze verify --man=no "$TMP/slotd.service" "$TMP/slotd-worker@check.service" \
    "$TMP/slotd@orders.service" "$TMP/slotd-stunnel.service"
# The template's instance names the config file and the shard.
grep -q '^ExecStart=.*/slotd -u %i$' "$ROOT/systemd/slotd@.service" ||
    { echo "slotd@.service: unexpected ExecStart"; exit 1; }

for unit in slotd.service slotd@.service slotd-stunnel.service; do
    score=$(systemd-analyze security --offline=true "$ROOT/systemd/$unit" 2>&1 |
            sed -n "s/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p")
    echo "$unit exposure: $score"
    [ -n "$score" ] || { echo "$unit: no exposure level"; exit 1; }
    awk -v s="$score" 'BEGIN { exit !(s <= 1.5) }' || { echo "$unit: exposure above 1.5"; exit 1; }
done

# Enabling the sidecar: slotd.service and the worker template (so every
# instance) require it; disabling it removes exactly that.
R="$TMP/root"
mkdir -p "$R/etc/systemd/system"
cp "$ROOT"/systemd/*.service "$R/etc/systemd/system/"
systemctl --root="$R" enable slotd-stunnel.service 2>/dev/null
for d in slotd.service.requires slotd@.service.requires slotd-worker@.service.requires; do
    [ -L "$R/etc/systemd/system/$d/slotd-stunnel.service" ] ||
        { echo "enabling slotd-stunnel.service did not make $d"; exit 1; }
done
systemctl --root="$R" disable slotd-stunnel.service 2>/dev/null
left=$(find "$R/etc/systemd/system" -type l)
[ -z "$left" ] || { echo "left after disable: $left"; exit 1; }
