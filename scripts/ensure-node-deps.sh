#!/usr/bin/env bash
# npm ci when node_modules is missing or older than the lockfile, then compile.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] \
   || [ ! -f node_modules/pkcs11js/build/Release/pkcs11.node ]; then
  npm ci --no-audit --no-fund
fi
npm run --silent build
