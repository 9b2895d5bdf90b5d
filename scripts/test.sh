#!/usr/bin/env bash
# The whole test suite, from a fresh clone: system packages, npm deps, build, mocha.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
bash scripts/ensure-node-deps.sh
exec npx mocha "$@"
