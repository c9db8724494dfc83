#!/bin/sh
# The Node client (clients/node): its node:test suite against this build's
# slotd and throwaway redis-servers, with the dependencies of the committed
# lockfile (tests/node-deps.sh: npm ci, again only when the lockfile changed).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
sh "$ROOT/tests/node-deps.sh"
cd "$ROOT/clients/node"
BUILD=${BUILD:-build}
export BUILD
node --test test/units.test.js test/worker.test.js test/shards.test.js test/cluster.test.js
