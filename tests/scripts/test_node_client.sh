#!/bin/sh
# The Node client (clients/node): its node:test suite against this build's
# slotd and throwaway redis-servers, with the dependencies of the committed
# lockfile (npm ci, again only when package-lock.json changed).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT/clients/node"
BUILD=${BUILD:-build}
export BUILD
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat node_modules/.slotd-lockfile 2>/dev/null || true)" != "$want" ]; then
    npm ci --no-audit --no-fund --loglevel=error
    echo "$want" > node_modules/.slotd-lockfile
fi
node --test test/units.test.js test/worker.test.js
