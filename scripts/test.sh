#!/usr/bin/env bash
# The whole test suite, from a fresh clone: system packages, npm deps, build, mocha, then the
# container image built and tested for real with podman (scripts/container-test.sh, ~2-6 min).
# XKS_SKIP_CONTAINER_TEST=1 leaves the container stage out of a quick local loop; CI always runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
bash scripts/ensure-node-deps.sh
npx mocha "$@"
if [ "${XKS_SKIP_CONTAINER_TEST:-0}" != "1" ]; then
  bash scripts/container-test.sh
fi
