#!/bin/sh
# Installs the Debian 12 packages slotd needs to build, test and run its demo.
# As root it installs what is missing with apt-get; otherwise it names the
# missing packages and fails.
set -eu
PKGS="build-essential pkg-config libhiredis-dev libevent-dev libyaml-dev check
libjansson-dev redis-server redis-tools python3 python3-redis"
missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "slotd: missing Debian packages:$missing" >&2
    echo "slotd: install them as root: apt-get install$missing" >&2
    exit 1
fi
echo "slotd: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
# The redis-server package may start a system instance; slotd's tests and
# demo never use it (they start their own on a free port).
