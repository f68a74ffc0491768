#!/usr/bin/env bash
# System tools the tests and benchmarks need, from Debian's packages, installed only when missing:
#   promtool (package prometheus)  - checks deploy/prometheus alert rules in the tests
#   wrk                            - HTTP load generator for make bench
#   chromium                       - headless browser test of the /ops page (via deploy/ci/install-browser.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."

bash deploy/ci/install-browser.sh >/dev/null
need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
[ ${#need[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-test-tools: installing ${need[*]} from Debian's packages"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# prometheus' package would start a server through its init script where one runs; we only want promtool.
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
command -v promtool >/dev/null && command -v wrk >/dev/null \
  || { echo "install-test-tools: still missing a tool after apt-get install ${need[*]}" >&2; exit 1; }
