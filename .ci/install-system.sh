#!/usr/bin/env bash
# Debian packages the tests use: Chromium and Firefox ESR (browser interop), coturn (TURN), Go with Debian's
# Pion (third-party WebRTC peer), espeak-ng and sox (offline speech for test audio),
# iproute2/iptables/nftables (network namespaces with an MTU-limited path), PostgreSQL (the service's
# production database; the tests start their own server as the postgres user), redis-server (what
# replicas share; the tests start their own), gcc (webrtc_ext's C extension, built by pip).
set -euo pipefail
packages=(
    gcc
    libc6-dev
    chromium
    firefox-esr
    coturn
    golang-go
    golang-github-pion-webrtc.v3-dev
    espeak-ng
    sox
    iproute2
    iptables
    nftables
    postgresql
    redis-server
)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# coturn's and postgresql's packages start system-wide servers; the tests start their own.
systemctl stop coturn 2>/dev/null || true
pkill -x turnserver 2>/dev/null || true
systemctl stop postgresql redis-server 2>/dev/null || true
