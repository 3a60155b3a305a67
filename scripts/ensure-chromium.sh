#!/usr/bin/env bash
# Installs Debian's Chromium (for the Playground browser test) and a Japanese
# font (so screenshots show Japanese text) when they are missing.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
fc-list 2>/dev/null | grep -qi "ipagothic\|noto sans cjk" || need+=(fonts-ipafont-gothic)
[ ${#need[@]} -eq 0 ] && exit 0
echo "installing ${need[*]} ..." >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
$SUDO apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
