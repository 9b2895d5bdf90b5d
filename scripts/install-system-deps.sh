#!/usr/bin/env bash
# Installs the Debian packages the proxy's demo and tests need, only when missing:
# softhsm2 (the stand-in HSM), opensc (pkcs11-tool), uuid-runtime (uuidgen), curl (SigV4 client in tests),
# systemd (systemd-analyze checks deploy/systemd/xks-proxy.service), awscli (the AWS CLI run against the KMS API),
# libnss3-tools (certutil; its libnss3 dependency brings libsoftokn3.so, NSS's software token: the tests'
# second PKCS#11 implementation), prometheus (prometheus + promtool: the tests scrape the proxy and
# unit-test the alert rules with them), libjemalloc2 (`npm run bench -- --allocator=jemalloc`
# measures with it; a unit test checks that option), and make, g++ and python3 (node-gyp compiles
# pkcs11js, which has no prebuilt binary, during npm ci).
set -euo pipefail
missing=()
command -v make >/dev/null 2>&1 && command -v g++ >/dev/null 2>&1 || missing+=(make g++)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v softhsm2-util >/dev/null 2>&1 && [ -e /usr/lib/softhsm/libsofthsm2.so ] || missing+=(softhsm2)
command -v pkcs11-tool >/dev/null 2>&1 || missing+=(opensc)
command -v uuidgen >/dev/null 2>&1 || missing+=(uuid-runtime)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
[ -x /usr/bin/aws ] || missing+=(awscli)
command -v certutil >/dev/null 2>&1 && compgen -G "/usr/lib*/**/libsoftokn3.so" >/dev/null || missing+=(libnss3-tools libnss3)
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
compgen -G "/usr/lib/*/libjemalloc.so.2" >/dev/null || missing+=(libjemalloc2)
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
echo "installing system packages: ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "need root (or sudo) to apt-get install ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The tests start their own prometheus on a free port; the package's service (which the install may
# have started, on :9090, the admin port the demo uses) is not wanted.
if [[ " ${missing[*]} " == *" prometheus "* ]]; then
  if [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  elif [ -x /etc/init.d/prometheus ]; then
    $SUDO /etc/init.d/prometheus stop >/dev/null 2>&1 || true
  fi
fi
