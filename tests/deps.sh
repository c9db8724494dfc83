#!/bin/sh
# Installs the Debian 12 packages slotd needs. As root it installs what is
# missing with apt-get; otherwise it names the missing packages and fails.
#   deps.sh build   to build and run the demo
#   deps.sh check   to run every test too (promtool, chromium, systemd-analyze,
#                   stunnel4 and openssl for the TLS recipe's test,
#                   pytest, node and npm for the client libraries)
set -eu
PKGS="build-essential pkg-config libhiredis-dev libevent-dev libyaml-dev check
libjansson-dev redis-server redis-tools python3 python3-redis"
if [ "${1:-check}" = check ]; then
    PKGS="$PKGS curl systemd prometheus chromium clang libclang-rt-14-dev man-db groff-base
stunnel4 openssl"
    # The client libraries' tests: pytest and PyYAML for Python, a virtualenv
    # and pip to install the package; node and npm (any packaging) for Node.
    PKGS="$PKGS python3-pytest python3-yaml python3-venv python3-pip python3-setuptools"
fi
missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ "${1:-check}" = check ] && { ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; }; then
    missing="$missing nodejs npm"
fi
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "slotd: missing Debian packages:$missing" >&2
    echo "slotd: install them as root: apt-get install$missing" >&2
    exit 1
fi
echo "slotd: installing$missing"
export DEBIAN_FRONTEND=noninteractive
# The packages' own services (a system redis-server, a prometheus server) are
# not wanted for building or testing: keep them from starting meanwhile.
policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    policy=/usr/sbin/policy-rc.d
fi
trap '[ -n "$policy" ] && rm -f "$policy"' EXIT
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
