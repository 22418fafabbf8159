#!/usr/bin/env bash
# Sets up a fresh Debian (bookworm) machine for segvol-webgpu: Mesa's
# lavapipe Vulkan driver from bookworm-backports (Dawn rejects the 22.x one in
# bookworm), then the Node dependencies, the bundle and the type declarations. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

mesa_ok() {
  local v
  v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
  [ -n "$v" ] && dpkg --compare-versions "$v" ge 25 && [ -e /usr/lib/x86_64-linux-gnu/libvulkan.so.1 -o -e /usr/lib/aarch64-linux-gnu/libvulkan.so.1 ]
}

if command -v apt-get >/dev/null 2>&1 && ! mesa_ok; then
  echo "setup: installing Mesa lavapipe (mesa-vulkan-drivers >= 25) from bookworm-backports" >&2
  if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "deb http://deb.debian.org/debian bookworm-backports main" | $SUDO tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null
  fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q -t bookworm-backports mesa-vulkan-drivers libvulkan1
fi

# Services the tests start on 127.0.0.1 themselves (a free port, a temporary
# folder each): redis-server for the job queue, Orthanc with its DICOMweb
# plugin for the PACS tests. Installing them must not start the system-wide
# services, so service starts are denied while apt runs. Also Debian's
# chromium: the browser tests (test/browser) drive it headless with
# puppeteer-core (WebGPU on SwiftShader with --enable-unsafe-webgpu).
SERVICE_PACKAGES="redis-server orthanc orthanc-dicomweb chromium"
missing=""
for p in $SERVICE_PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if command -v apt-get >/dev/null 2>&1 && [ -n "$missing" ]; then
  echo "setup: installing$missing (test services; not started)" >&2
  own_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    own_policy=1
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
  if [ -n "$own_policy" ]; then $SUDO rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
fi

export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/xdg-runtime-$(id -u)}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"

# npm ci runs the package's `prepare` script, which is the build; otherwise
# build here, so the bundle and the declarations follow the sources.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
else
  npm run build --silent
fi
