#!/bin/sh
# softhsm image: create (first start) or reuse the demo state in $XKS_DEMO_DIR, then run the
# production `serve` path on it (cluster workers, graceful shutdown). Arguments go to `serve`,
# e.g. `--workers 2`.
set -eu
node /opt/xks-proxy/dist/src/cli/main.js demo --prepare-only >/dev/null
export SOFTHSM2_CONF="$XKS_DEMO_DIR/softhsm/softhsm2.conf"
exec node /opt/xks-proxy/dist/src/cli/main.js serve --config "$XKS_DEMO_DIR/config.yaml" "$@"
