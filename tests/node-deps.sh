#!/bin/sh
# Installs clients/node's dependencies from its committed lockfile (npm ci)
# when node_modules is missing or was made from another lockfile.
set -eu
cd "$(dirname "$0")/../clients/node"
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat node_modules/.slotd-lockfile 2>/dev/null || true)" != "$want" ]; then
    npm ci --no-audit --no-fund --loglevel=error
    echo "$want" > node_modules/.slotd-lockfile
fi
