#!/usr/bin/env bash
# The whole test suite, from a fresh clone: system packages, npm deps, build, mocha (in parallel,
# then the latency tests alone; see .mocharc.js), then the container image built and tested for
# real with podman (scripts/container-test.sh, ~2-6 min). Arguments go to one mocha run instead.
# XKS_SKIP_CONTAINER_TEST=1 leaves the container stage out of a quick local loop; CI always runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
bash scripts/ensure-node-deps.sh
if [ "$#" -gt 0 ]; then
  npx mocha "$@"
else
  # In parallel (one worker per core), then the latency measurements alone (.mocharc.js);
  # both passes run even if the first fails, so one report shows every failure.
  status=0
  XKS_TEST_PASS=parallel npx mocha || status=$?
  XKS_TEST_PASS=timing npx mocha || status=$?
  [ "$status" -eq 0 ] || exit "$status"
fi
if [ "${XKS_SKIP_CONTAINER_TEST:-0}" != "1" ]; then
  bash scripts/container-test.sh
fi
