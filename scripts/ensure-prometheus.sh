#!/usr/bin/env bash
# Installs Debian's prometheus package (prometheus and promtool, for the
# alerting-rule tests and the real-Prometheus scrape test) when missing.
set -euo pipefail
command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 && exit 0
echo "installing prometheus (promtool) ..." >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
$SUDO apt-get install -y -q --no-install-recommends prometheus >/dev/null
# The package may start its own daemon on :9090; calsync's tests start their own.
if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl stop prometheus >/dev/null 2>&1 || true; fi
pkill -x prometheus >/dev/null 2>&1 || true
