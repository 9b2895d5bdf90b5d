# syntax=docker/dockerfile:1
# xks-proxy container image. Stages:
#   build    compiles the TypeScript and the pkcs11js addon, then drops dev dependencies
#   app      slim runtime: Node 20, the proxy, a non-root user; no compiler, no HSM library
#   softhsm  app + SoftHSM2; provisions a demo token, TLS and credentials on first start (demos, CI)
#   runtime  the default target: app, for production with your vendor's PKCS#11 library mounted in
#
#   podman build -t xks-proxy .                       # production image
#   podman build -t xks-proxy:softhsm --target softhsm .
#
# BASE_IMAGE must be Debian bookworm-based with Node 20 in /usr/local (the official node image's
# layout). scripts/container-test.sh builds such an image locally and passes it here.
ARG BASE_IMAGE=docker.io/library/node:20-bookworm-slim

FROM ${BASE_IMAGE} AS build
# Behind a TLS-inspecting proxy, mount its CA bundle and name it here (see scripts/container-test.sh).
ARG NODE_EXTRA_CA_CERTS
# node-gyp builds pkcs11js against the headers that come with Node instead of downloading them.
ENV npm_config_nodedir=/usr/local \
    npm_config_update_notifier=false \
    npm_config_fund=false \
    npm_config_audit=false
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p tsconfig.json \
 && npm prune --omit=dev \
 && test -f node_modules/pkcs11js/build/Release/pkcs11.node

FROM ${BASE_IMAGE} AS app
# tini as PID 1: node as PID 1 cannot signal itself, and a process whose PKCS#11 call hangs in the
# HSM library ends by SIGKILL to itself (src/cli/exit-process.ts); tini also forwards signals and
# reaps zombies.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 xks \
 && useradd --system --uid 10001 --gid xks --home-dir /var/lib/xks-proxy --no-create-home --shell /usr/sbin/nologin xks \
 && mkdir -p /etc/xks-proxy /var/lib/xks-proxy \
 && chown xks:xks /var/lib/xks-proxy
WORKDIR /opt/xks-proxy
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY deploy/container/healthcheck.js ./healthcheck.js
RUN ln -s /opt/xks-proxy/dist/src/cli/main.js /usr/local/bin/xks-proxy && chmod 0755 dist/src/cli/main.js
# Config, TLS files, credentials and the PIN are mounted (e.g. /etc/xks-proxy, Kubernetes Secrets) or
# come from the environment (XKS_HSM_PIN, secretAccessKeyEnv). The config names the PKCS#11 library
# (hsm.modulePath): mount the vendor's client library and its own config files, e.g. under /opt/hsm.
ENV NODE_ENV=production \
    XKS_CONFIG=/etc/xks-proxy/config.yaml \
    XKS_HEALTHCHECK_URL=http://127.0.0.1:9090/ping
USER 10001:10001
EXPOSE 8443 9090
# Liveness of the process: /ping on the admin listener (XKS_HEALTHCHECK_URL; set it when admin.port
# differs). HSM readiness is /ready, for orchestrators that route traffic.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 CMD ["node", "/opt/xks-proxy/healthcheck.js"]
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/opt/xks-proxy/dist/src/cli/main.js"]
CMD ["serve"]

FROM app AS softhsm
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends softhsm2 \
 && rm -rf /var/lib/apt/lists/*
COPY deploy/container/softhsm-entrypoint.sh /usr/local/bin/xks-softhsm-entrypoint
RUN chmod 0755 /usr/local/bin/xks-softhsm-entrypoint
# State (token, PINs, self-signed TLS, SigV4 credential, KMS console file) lives here: mount a
# volume to keep it, and to read the credential from the host.
ENV XKS_DEMO_DIR=/var/lib/xks-proxy/demo \
    XKS_HOST=0.0.0.0 \
    XKS_ADMIN_HOST=0.0.0.0 \
    XKS_PORT=8443 \
    XKS_ADMIN_PORT=9090
USER 10001:10001
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/xks-softhsm-entrypoint"]
CMD []

FROM app AS runtime
