#!/usr/bin/env bash
# Builds the container image with podman/buildah and tests it for real: the softhsm variant runs with
# 2 cluster workers, and the host drives it over HTTPS (test/container/container.spec.ts), checks the
# image HEALTHCHECK, then stops it with SIGTERM and checks it drained and exited 0.
#
# No registry images are pulled: the base image (Debian bookworm + this machine's Node 20) is built
# locally with debootstrap and `podman import`. Needs root (apt-get, rootful podman).
# Env: XKS_CT_WORK (work folder, default /tmp/xks-container-test), XKS_CT_KEEP=1 (leave the container).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WORK=${XKS_CT_WORK:-/tmp/xks-container-test}
NAME=xks-ct-$$
WORKERS=2
started=$(date +%s)
step() { echo "[container-test +$(( $(date +%s) - started ))s] $*"; }

if [ "$(id -u)" -ne 0 ]; then echo "container-test.sh needs root (apt-get, rootful podman)" >&2; exit 1; fi

# 1. Tools. runc, not crun: crun fails on cgroup v1 hosts like this one.
missing=()
for tool in podman buildah runc debootstrap; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  step "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq podman buildah runc debootstrap >/dev/null
fi
bash scripts/install-system-deps.sh
bash scripts/ensure-node-deps.sh

mkdir -p "$WORK"
# A project-local containers.conf: runc, and explicit ulimits no higher than this host allows
# (runc cannot raise RLIMIT_NPROC/NOFILE without CAP_SYS_RESOURCE, so the defaults fail).
cat >"$WORK/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF="$WORK/containers.conf"

# 2. Base image: debootstrap bookworm + the host's Node 20 (binary, headers for node-gyp, npm) laid
# out as in the official node image (/usr/local). Debian's own nodejs package is 18 in bookworm.
NODE_BIN=$(readlink -f "$(command -v node)")
NODE_PREFIX=$(dirname "$(dirname "$NODE_BIN")")
NODE_VERSION=$(node -p 'process.versions.node')
case "$NODE_VERSION" in 20.*) ;; *) echo "need Node 20 on the host, found $NODE_VERSION" >&2; exit 1 ;; esac
for needed in "$NODE_PREFIX/include/node/node.h" "$NODE_PREFIX/lib/node_modules/npm/bin/npm-cli.js"; do
  [ -e "$needed" ] || { echo "host Node install lacks $needed (headers and npm are needed in the image)" >&2; exit 1; }
done
BASE=localhost/xks-node-base:$NODE_VERSION-bookworm
if podman image exists "$BASE"; then
  step "base image $BASE exists"
else
  step "debootstrap bookworm (minbase) for $BASE"
  rm -rf "$WORK/rootfs"
  debootstrap --variant=minbase --include=ca-certificates bookworm "$WORK/rootfs" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log"; exit 1; }
  R=$WORK/rootfs
  install -D -m 0755 "$NODE_BIN" "$R/usr/local/bin/node"
  mkdir -p "$R/usr/local/include" "$R/usr/local/lib/node_modules"
  cp -a "$NODE_PREFIX/include/node" "$R/usr/local/include/"
  cp -a "$NODE_PREFIX/lib/node_modules/npm" "$R/usr/local/lib/node_modules/"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$R/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$R/usr/local/bin/npx"
  rm -rf "$R/var/lib/apt/lists/"* "$R/var/cache/apt/"*.bin "$R/usr/share/doc" "$R/usr/share/man"
  chroot "$R" /usr/local/bin/node -e 'process.exit(0)'
  step "podman import $BASE"
  tar -C "$R" -c . | podman import -q \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "LABEL org.opencontainers.image.description=debian-bookworm-node-$NODE_VERSION" \
    --change 'CMD ["/bin/bash"]' - "$BASE" >/dev/null
  rm -rf "$R"
fi

# 3. The images. A TLS-inspecting egress proxy (as on this project's machines) needs its CA inside
# the build for npm; the host's trust bundle is mounted read-only for RUN steps, never copied in.
build_args=(--format docker --build-arg "BASE_IMAGE=$BASE")
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  build_args+=(--volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/xks-build-ca.crt:ro --build-arg NODE_EXTRA_CA_CERTS=/etc/ssl/xks-build-ca.crt)
fi
step "podman build --target softhsm"
podman build "${build_args[@]}" --target softhsm -t localhost/xks-proxy:softhsm . >"$WORK/build-softhsm.log" 2>&1 \
  || { tail -40 "$WORK/build-softhsm.log"; exit 1; }
step "podman build (default target: runtime)"
podman build "${build_args[@]}" -t localhost/xks-proxy:latest . >"$WORK/build-runtime.log" 2>&1 \
  || { tail -40 "$WORK/build-runtime.log"; exit 1; }
podman images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^localhost/xks-' || true
user=$(podman image inspect --format '{{.Config.User}}' localhost/xks-proxy:latest)
[ "$user" = "10001:10001" ] || { echo "runtime image user is '$user', expected non-root 10001:10001" >&2; exit 1; }
podman run --rm --no-healthcheck --entrypoint sh localhost/xks-proxy:latest -c 'command -v g++ || command -v make || command -v python3' >/dev/null \
  && { echo "runtime image still has build tools" >&2; exit 1; }
podman run --rm --no-healthcheck localhost/xks-proxy:latest --version

# 4. Run the softhsm image: first start provisions the token into the mounted state folder.
STATE=$WORK/state
rm -rf "$STATE" && mkdir -p "$STATE"
cleanup() { [ "${XKS_CT_KEEP:-}" = 1 ] || podman rm -f "$NAME" >/dev/null 2>&1 || true; }
trap cleanup EXIT
step "podman run softhsm image (--workers $WORKERS)"
# --health-interval=disable: no periodic check (no systemd here); `podman healthcheck run` checks it.
podman run -d --name "$NAME" --health-interval=disable -p 127.0.0.1::8443 -p 127.0.0.1::9090 \
  -v "$STATE:/var/lib/xks-proxy/demo:U" localhost/xks-proxy:softhsm --workers "$WORKERS" >/dev/null 2>"$WORK/run.err" \
  || { cat "$WORK/run.err"; exit 1; }
# podman 4.3 still tries to (un)register a systemd timer for the healthcheck and complains when
# systemd is not PID 1; that is noise, the container runs. Other stderr is shown.
grep -v 'systemd connection' "$WORK/run.err" >&2 || true
port_of() { podman port "$NAME" "$1/tcp" | head -1 | sed 's/.*://'; }
PORT=$(port_of 8443)
ADMIN_PORT=$(port_of 9090)
for _ in $(seq 1 120); do
  if curl -fsS "http://127.0.0.1:$ADMIN_PORT/ready" >/dev/null 2>&1; then break; fi
  if [ "$(podman inspect --format '{{.State.Running}}' "$NAME")" != true ]; then podman logs "$NAME"; exit 1; fi
  sleep 0.5
done
curl -fsS "http://127.0.0.1:$ADMIN_PORT/ready" || { podman logs "$NAME"; exit 1; }
echo
step "proxy ready on https://127.0.0.1:$PORT (admin :$ADMIN_PORT)"
podman healthcheck run "$NAME" && echo "HEALTHCHECK: healthy"

# 5. The conformance spec, from the host.
step "mocha test/container/container.spec.ts"
XKS_CONTAINER_URL="https://127.0.0.1:$PORT" XKS_CONTAINER_ADMIN_URL="http://127.0.0.1:$ADMIN_PORT" \
XKS_CONTAINER_STATE="$STATE" XKS_CONTAINER_WORKERS="$WORKERS" \
  npx mocha --no-config --timeout 30000 --exit 'dist/test/container/*.spec.js' \
  || { podman logs "$NAME" | tail -30; exit 1; }

# 6. SIGTERM: drained, HSM sessions closed, exit 0.
step "podman stop (SIGTERM)"
podman stop -t 30 "$NAME" >/dev/null 2>"$WORK/stop.err" || { cat "$WORK/stop.err"; exit 1; }
grep -v 'systemd connection' "$WORK/stop.err" >&2 || true
code=$(podman inspect --format '{{.State.ExitCode}}' "$NAME")
podman logs "$NAME" 2>&1 | grep -E '"message":"(shutting down|worker stopped|shutdown complete)"' || true
podman logs "$NAME" 2>&1 | grep -q '"message":"shutdown complete"' || { echo "no 'shutdown complete' in the logs" >&2; exit 1; }
[ "$code" = 0 ] || { echo "container exited $code after SIGTERM" >&2; exit 1; }
step "container exited 0 after SIGTERM"
step "passed in $(( $(date +%s) - started ))s"
