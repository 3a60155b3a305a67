#!/usr/bin/env bash
# Installs the Debian packages the tests need when they are missing, with one
# apt-get update and one install: Chromium (the Playground browser test), a
# Japanese font (screenshots show Japanese text), and prometheus/promtool (the
# alerting-rule tests and the real-Prometheus scrape test). make test runs it
# in the background while Go compiles.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
fc-list 2>/dev/null | grep -qi "ipagothic\|noto sans cjk" || need+=(fonts-ipafont-gothic)
{ command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; } || need+=(prometheus)
[ ${#need[@]} -eq 0 ] && exit 0
echo "installing ${need[*]} ..." >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
$SUDO apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
# The prometheus package may start its own daemon on :9090; calsync's tests
# start their own.
if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl stop prometheus >/dev/null 2>&1 || true; fi
pkill -x prometheus >/dev/null 2>&1 || true
