#!/usr/bin/env bash
# Installs what exfiltap needs on Debian 12 (when missing) and builds it into build/.
# Usage: scripts/setup.sh [BUILD_DIR]   (run as root, or with sudo available, for apt-get)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}

packages=(meson ninja-build pkg-config cmake g++ clang python3 libdpdk-dev dpdk
    libhyperscan-dev libpcap-dev libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libssl-dev
    libgtest-dev libgmock-dev zlib1g-dev prometheus-cpp-dev libsystemd-dev
    iproute2 ethtool prometheus publicsuffix libhiredis-dev redis-server tshark)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    # Packages with services (prometheus) must not start them: the tests start their own
    # instance on loopback. policy-rc.d is Debian's switch for that, set only for this install.
    made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee /usr/sbin/policy-rc.d >/dev/null
        "${sudo_cmd[@]}" chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
    [ "$made_policy" -eq 0 ] || "${sudo_cmd[@]}" rm -f /usr/sbin/policy-rc.d
fi

log="$build.setup.log"
if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" >"$log" 2>&1 || { cat "$log"; echo "setup: meson setup failed"; exit 1; }
fi
ninja -C "$build" >"$log" 2>&1 || { tail -50 "$log"; echo "setup: build failed"; exit 1; }
echo "setup: built $build/control/exfiltap"
