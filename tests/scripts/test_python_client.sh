#!/bin/sh
# The Python client (clients/python): its pytest suite against this build's
# slotd and throwaway redis-servers, then `pip install` of the package into a
# fresh virtualenv (offline: Debian's python3-redis and python3-yaml are used).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
export BUILD PYTHONDONTWRITEBYTECODE=1
/usr/bin/python3 -m pytest -q -p no:cacheprovider clients/python/tests

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r clients/python "$tmp/src"
/usr/bin/python3 -m venv --system-site-packages "$tmp/venv"
"$tmp/venv/bin/pip" install -q --no-build-isolation --no-index "$tmp/src" >"$tmp/pip.log" 2>&1 ||
    { cat "$tmp/pip.log"; exit 1; }
cd "$tmp"
"$tmp/venv/bin/python" -c 'import slotd, sys; assert "venv" in slotd.__file__, slotd.__file__; slotd.Worker(id="w", host="127.0.0.1")'
echo "pip install ./clients/python: ok"
