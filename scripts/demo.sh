#!/usr/bin/env bash
# README command 1: installs what is missing, builds, and runs the proxy on the SoftHSM demo token.
# Overrides: XKS_PORT (8443), XKS_DEMO_DIR (./.demo), XKS_URI_PREFIX ("").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
bash scripts/ensure-node-deps.sh
exec node dist/src/cli/main.js demo
